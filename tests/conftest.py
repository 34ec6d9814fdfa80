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
from pathlib import Path

from tools.dag_runs import airflow_environment

ROOT = Path(__file__).resolve().parents[1]
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="event-ingest-airflow-")
os.environ.update(
    {
        **airflow_environment(Path(_AIRFLOW_HOME)),
        # Failed tasks are retried as in production, but without the minutes of back-off.
        "EVENT_INGEST_RETRY_DELAY_S": "1",
    }
)

import pytest  # noqa: E402

from tests.support.pipeline import Pipeline, load_event_ingest_dag  # noqa: E402
from tests.support.stores import MariaDbStore, PostgresStore  # noqa: E402
from tools.services import LocalPostgres, MariaDbServer, SeaweedS3  # noqa: E402

#: Where the modules that start a real Airflow stack are, longest first. ``make test`` runs the suite
#: on two pytest-xdist workers, a module at a time (``--dist loadfile``), in the order collected:
#: these modules come first. They are most of the suite's time, mostly waiting on Airflow's loops
#: while the other worker runs the rest; started last, one of them would run on alone at the end.
_STACK_FOLDERS = ("tests/on_upload/", "tests/native/", "tests/view/", "tests/tools/test_airflow_local.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return next(
            (n for n, folder in enumerate(_STACK_FOLDERS) if item.nodeid.startswith(folder)),
            len(_STACK_FOLDERS),
        )

    items.sort(key=rank)  # stable: each module's tests stay together and in their order


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


@pytest.fixture(scope="session")
def postgres() -> LocalPostgres:
    """The machine's PostgreSQL server; each user creates (and drops) databases of its own."""
    server = LocalPostgres()
    server.probe()
    return server


@pytest.fixture
def event_ingest_dag(airflow_db: object) -> object:
    return load_event_ingest_dag()


@pytest.fixture(params=["mariadb", "postgres"])
def pipeline(
    request: pytest.FixtureRequest,
    seaweed: SeaweedS3,
    airflow_db: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Pipeline:
    """A fresh bucket, event database and data directory, wired to the DAG through the environment.

    Every end-to-end case runs on both server backends: MariaDB (a throwaway server) and PostgreSQL
    (a database of its own on the machine's server).
    """
    if request.param == "mariadb":
        server = request.getfixturevalue("mariadb")

        def make_store(name: str) -> MariaDbStore:
            return MariaDbStore(server, name)
    else:
        server = request.getfixturevalue("postgres")

        def make_store(name: str) -> PostgresStore:
            return PostgresStore(server, name)

    with Pipeline.fresh(
        s3=seaweed, make_store=make_store, data_dir=tmp_path / "data", monkeypatch=monkeypatch
    ) as pipe:
        yield pipe
