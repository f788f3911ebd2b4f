# syntax=docker/dockerfile:1
#
# The browser chat page: built with `npm run build:web` (tsc, then esbuild into
# web/dist) and served by nginx-unprivileged (user 101, port 8080).
#
#   docker build -f deploy/web.Dockerfile -t mend-web:0.1.0 .
#
# In Kubernetes the chart mounts its own server block (helm/mend/files/
# nginx-default.conf: the configured port, /healthz, headers) over the image's
# default one, and the gateway routes `/` here so page and API share one origin.
#
# Both base images are pinned by digest (multi-arch indexes copied from public
# Dockerfiles, not pulled here: there was no registry access). Renew a tag and its
# digest together: docker buildx imagetools inspect IMAGE:TAG

ARG NODE_IMAGE=node:22-bookworm-slim@sha256:43ac6c60b8f89723f746e8a92ce91abd5017e627ce1ddfe4238355d3a30b772c
ARG NGINX_IMAGE=nginxinc/nginx-unprivileged:1.31.6-alpine3.24@sha256:b54ac358b83fc6c965793fd271839b4ea4cdb6e99895bb19618cbc2ca152d972

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Installs the versions package-lock.json pins, each checked against the lock's
# integrity hash (as ./scripts/setup does).
RUN npm install --no-audit --no-fund --loglevel=error
COPY web ./web
RUN npm run build:web

FROM ${NGINX_IMAGE}
COPY --from=build /src/web/dist/ /usr/share/nginx/html/
EXPOSE 8080
