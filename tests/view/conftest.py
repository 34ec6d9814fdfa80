"""A real Airflow with the ingest view, and the data a real run of event_ingest loaded into it.

One stack for the session (``tools.airflow_local.AirflowStack``: api-server, scheduler,
dag-processor, triggerer, LocalExecutor on a PostgreSQL metadata database), with two users of the
simple auth manager: ``admin`` (may trigger) and ``viewer`` (may only read). The sessions are
loaded by a run triggered through the REST API, as a user would, before any test looks.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from include import generator
from tests.view import seed
from tools.airflow_local import AirflowApi, AirflowStack
from tools.services import MariaDbServer, SeaweedS3

DAG_ID = "event_ingest"


@dataclass
class ViewServer:
    """The stack, its users' passwords, the event database and what the seeding run loaded."""

    stack: AirflowStack
    passwords: dict[str, str]
    mariadb: MariaDbServer
    database: str
    manifest: generator.Manifest
    seed_run_id: str

    @property
    def url(self) -> str:
        return self.stack.url

    def token(self, username: str) -> str:
        return AirflowApi(self.url, username, self.passwords[username]).token()

    def get(self, path: str, *, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(f"{self.url}{path}", headers=headers, timeout=60, **kwargs)

    def query(self, statement: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        conn = self.mariadb.connect(self.database)
        try:
            cursor = conn.cursor()
            cursor.execute(statement, args)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            conn.close()


@pytest.fixture(scope="session")
def view_server(
    seaweed: SeaweedS3, mariadb: MariaDbServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ViewServer]:
    name = f"v{uuid.uuid4().hex[:12]}"
    seaweed.create_bucket(name)
    mariadb.create_database(name)
    manifest = seed.seed_bucket(seaweed.client(), name)
    home: Path = tmp_path_factory.mktemp("view-airflow")
    passwords = {"admin": secrets.token_urlsafe(12), "viewer": secrets.token_urlsafe(12)}
    # Written before the stack starts, so the API server uses these (and prints none).
    (home / "simple_auth_manager_passwords.json.generated").write_text(json.dumps(passwords))
    env = {
        "AIRFLOW_CONN_EVENT_INGEST_S3": seaweed.airflow_conn_json(),
        "AIRFLOW_CONN_EVENT_INGEST_DB": mariadb.airflow_conn_uri(name),
        "AIRFLOW_VAR_EVENT_INGEST_BUCKET": name,
        "AIRFLOW_VAR_EVENT_INGEST_DATA_DIR": str(home / "data"),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
        "EVENT_INGEST_RETRY_DELAY_S": "1",
    }
    try:
        with AirflowStack(home, env=env) as stack:
            stack.wait_for_dag(DAG_ID)
            stack.unpause(DAG_ID)
            run = stack.trigger(DAG_ID, conf=seed.CONF)
            finished = stack.wait_for_run(DAG_ID, run["dag_run_id"], timeout=600)
            assert finished["state"] == "success", stack.task_instances(DAG_ID, run["dag_run_id"])
            yield ViewServer(stack, passwords, mariadb, name, manifest, run["dag_run_id"])
    finally:
        mariadb.drop_database(name)
