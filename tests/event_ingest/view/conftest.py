"""The view's in-process fixtures: Airflow's own API app (with the plugin) and a pipeline run's data.

``create_app()`` is the app ``airflow api-server`` serves, plugins and auth manager included, here
in the test process behind FastAPI's ``TestClient``; tokens are signed by its auth manager. The
real server is tested in ``tests/view/``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from include import generator
from tests.support.pipeline import Pipeline
from tests.support.stores import MariaDbStore
from tests.view import seed
from tools.dag_runs import RunResult
from tools.services import MariaDbServer, SeaweedS3


@dataclass
class Seeded:
    """A bucket loaded by one ``dag.test()`` run of ``event_ingest``: its pipeline, manifest, run."""

    pipe: Pipeline
    manifest: generator.Manifest
    run: RunResult

    def query(self, statement: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return self.pipe.query(statement, args)


@pytest.fixture(scope="module")
def seeded(
    seaweed: SeaweedS3, mariadb: MariaDbServer, airflow_db: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Seeded]:
    data_dir: Path = tmp_path_factory.mktemp("view") / "data"
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        Pipeline.fresh(
            s3=seaweed,
            make_store=lambda name: MariaDbStore(mariadb, name),
            data_dir=data_dir,
            monkeypatch=monkeypatch,
        ) as pipe,
    ):
        manifest = seed.seed_bucket(pipe.client, pipe.bucket)
        run = pipe.run(conf=seed.CONF)
        assert run.succeeded, run
        yield Seeded(pipe, manifest, run)


@pytest.fixture(scope="module")
def api(airflow_db: object) -> Iterator[Any]:
    """A client of Airflow's API app, the way ``airflow api-server`` builds it (tokens signed by a
    secret of its own)."""
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_urlsafe(32))
        with TestClient(create_app()) as client:
            yield client


def token_for(role: str | None, *, expires_in: int = 600) -> str:
    """A JWT of Airflow's auth manager for a user of ``role`` (None: a user with no permission)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    user = SimpleAuthManagerUser(username=role or "nobody", role=role)
    return get_auth_manager().generate_jwt(user, expiration_time_in_seconds=expires_in)


@pytest.fixture(scope="module")
def admin(api: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for('admin')}"}
