# The event_ingest image: Airflow 3.3.2 with the project's dependencies and code baked in.
# Built by docker-compose.yaml (`docker compose build`); see "Run it for real" in README.md.
#
# No credentials go into this image: connections, variables and secrets come from the
# environment (.env through compose, or a secrets backend) when a container starts, and
# .dockerignore keeps .env, .git and .venv out of the build context.
FROM apache/airflow:3.3.2-python3.11

# mysqlclient (MySQL provider) is compiled when its pinned version is not the image's own.
USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential pkg-config default-libmysqlclient-dev \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*
USER airflow

# Dependencies before code, so that a code change does not reinstall them. requirements.lock
# (the uv-compiled lock of the dev requirements) constrains every version it names, Airflow
# 3.3.2 included; requirements-deploy.txt adds what only the stack needs (Elasticsearch
# logging, Celery, the Postgres metadata DB, the FAB login).
COPY --chown=airflow:0 requirements.txt requirements-deploy.txt requirements.lock /opt/airflow/requirements/
RUN pip install --no-cache-dir \
        -r /opt/airflow/requirements/requirements-deploy.txt \
        -c /opt/airflow/requirements/requirements.lock

# The project keeps its repository layout under AIRFLOW_HOME (/opt/airflow, the WORKDIR):
# event_ingest finds its DDL in include/sql/ relative to plugins/, and the demo data generator
# runs as `python -m include.generator` from here. The import roots are the tests' own
# (pyproject.toml: pythonpath = [".", "plugins"]).
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 include/ /opt/airflow/include/
ENV PYTHONPATH=/opt/airflow:/opt/airflow/plugins

# Default data directory (Variable event_ingest_data_dir); compose mounts a volume here,
# which Docker initialises with this directory's owner.
RUN mkdir -p /opt/airflow/data

LABEL org.opencontainers.image.title="event-ingest" \
      org.opencontainers.image.description="Airflow 3 DAG event_ingest: drive-session audio tags from S3 into an event database"
