# The event_ingest image: Airflow 3.3.2 with the event_ingest package installed.
# Built by docker-compose.yaml (`docker compose build`); see "Run it for real" in README.md.
#
# No credentials go into this image: connections, variables and secrets come from the
# environment (.env through compose, or a secrets backend) when a container starts, and
# .dockerignore keeps .env, .git, .venv and the development harness (tests/, tools/, docs/)
# out of the build context.
FROM apache/airflow:3.3.2-python3.11

# mysqlclient (MySQL provider) is compiled when its pinned version is not the image's own.
USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential pkg-config default-libmysqlclient-dev \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*
USER airflow

# Dependencies before code, so that a code change does not reinstall them: the runtime and
# `deploy` dependencies pyproject.toml declares, each at the version requirements.lock pins
# (Airflow 3.3.2 included). The `deploy` extra adds what only the stack needs: Elasticsearch
# task logs, Celery workers with a Redis broker, the FAB login.
COPY --chown=airflow:0 pyproject.toml requirements.lock /opt/airflow/src/
RUN python -c "import tomllib; p = tomllib.load(open('/opt/airflow/src/pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['deploy']))" > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt -c /opt/airflow/src/requirements.lock \
    && rm /tmp/requirements.txt

# The package itself (its DDL and the ingest view's files come with it); Airflow finds the view
# through the package's `airflow.plugins` entry point, so the plugins folder stays empty.
COPY --chown=airflow:0 README.md /opt/airflow/src/
COPY --chown=airflow:0 plugins/ /opt/airflow/src/plugins/
RUN pip install --no-cache-dir --no-deps /opt/airflow/src

# The DAG files, and the demo data generator the compose stack's minio-seed service runs as
# `python -m include.generator` from AIRFLOW_HOME (/opt/airflow, the WORKDIR).
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 include/ /opt/airflow/include/

# Default data directory (Variable event_ingest_data_dir); compose mounts a volume here,
# which Docker initialises with this directory's owner.
RUN mkdir -p /opt/airflow/data

LABEL org.opencontainers.image.title="event-ingest" \
      org.opencontainers.image.description="Airflow 3 DAGs event_ingest and event_ingest_on_upload: drive-session audio tags from S3 into an event database"
