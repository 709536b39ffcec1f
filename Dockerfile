# The code-location image of bloom_pipeline (docs/deploy.md): the code server, and every run container the
# Docker / K8s run launcher starts, run this image. The webserver and daemon use it too in
# deploy/docker-compose.yaml, so one build serves the whole deployment.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    BLOOM_DATA_DIR=/data \
    BLOOM_MAPPINGS_DIR=/opt/bloom/mappings

WORKDIR /opt/bloom

# Dependencies first (cached across code edits), then the code. The Dagster integrations are pinned with the
# Dagster family (dagster 1.13.27 <-> libraries 0.29.27): Postgres storage, the Docker and K8s run launchers.
COPY pyproject.toml README.md ./
COPY bloom_pipeline ./bloom_pipeline
COPY mappings ./mappings
RUN pip install ".[deploy]"

# The instance configuration; DAGSTER_PG_* and the org keys come from the environment at run time.
COPY deploy/dagster.yaml ${DAGSTER_HOME}/dagster.yaml
COPY deploy/workspace.yaml ${DAGSTER_HOME}/workspace.yaml

# Not root: run containers write only to the data volume.
RUN useradd --create-home --uid 10001 bloom && mkdir -p /data && chown bloom /data ${DAGSTER_HOME}
USER bloom

EXPOSE 4000
CMD ["dagster", "code-server", "start", "-m", "bloom_pipeline.definitions", "-h", "0.0.0.0", "-p", "4000"]
