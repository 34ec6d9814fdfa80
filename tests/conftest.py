"""Shared fixtures: an Airflow home, the real S3 server and MariaDB, one pipeline per test.

Airflow reads its configuration when first imported, so the environment is set
here, at import, before any test module imports it. Connections and variables
are ``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*`` environment variables: tests need no
metadata-database rows for them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="event-ingest-airflow-")
os.environ.update(
    {
        "AIRFLOW_HOME": _AIRFLOW_HOME,
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # Failed tasks are retried as in production, but without the minutes of back-off.
        "EVENT_INGEST_RETRY_DELAY_S": "1",
    }
)

import pytest  # noqa: E402

from include.services import MariaDbServer, SeaweedS3  # noqa: E402
from tests.support.pipeline import Pipeline  # noqa: E402


@pytest.fixture(scope="session")
def airflow_db() -> object:
    """An initialised Airflow metadata database (SQLite in the temporary AIRFLOW_HOME)."""
    from airflow.utils import db

    db.initdb()
    yield _AIRFLOW_HOME
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def seaweed() -> SeaweedS3:
    with SeaweedS3() as server:
        yield server


@pytest.fixture(scope="session")
def mariadb() -> MariaDbServer:
    with MariaDbServer() as server:
        yield server


def load_event_ingest_dag() -> object:
    """Parse the DAG file afresh, as each task process does in production.

    ``dag.test()`` runs tasks in-process and merges a run's conf into the
    task objects' params, so one parsed DAG must not serve two runs.
    """
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags["event_ingest"]


@pytest.fixture
def event_ingest_dag(airflow_db: object) -> object:
    return load_event_ingest_dag()


@pytest.fixture
def pipeline(
    seaweed: SeaweedS3,
    mariadb: MariaDbServer,
    airflow_db: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Pipeline:
    """A fresh bucket, event database and data directory, wired to the DAG through the environment."""
    name = f"t{uuid.uuid4().hex[:12]}"
    seaweed.create_bucket(name)
    mariadb.create_database(name)
    pipe = Pipeline(
        load_dag=load_event_ingest_dag,
        s3=seaweed,
        mariadb=mariadb,
        bucket=name,
        database=name,
        data_dir=tmp_path / "data",
        monkeypatch=monkeypatch,
    )
    yield pipe
    pipe.close()
    mariadb.drop_database(name)
