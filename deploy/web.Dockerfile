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

ARG NODE_IMAGE=node:22-bookworm-slim
ARG NGINX_IMAGE=nginxinc/nginx-unprivileged:1.30-alpine

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Installs the versions package-lock.json pins (as ./scripts/setup does).
RUN --mount=type=cache,target=/root/.npm \
    npm install --no-audit --no-fund --loglevel=error
COPY web ./web
RUN npm run build:web

FROM ${NGINX_IMAGE}
COPY --from=build /src/web/dist/ /usr/share/nginx/html/
EXPOSE 8080
