"""The compose ``celery`` profile runs what the Celery tests under a real scheduler prove.

tests/native/test_celery_executor.py runs two ``airflow celery worker`` processes for real, with
:data:`tools.airflow_local.CELERY_WORKER_SETTINGS`, a Redis broker, the result backend on the
metadata database and the compose worker's own healthcheck command; here the compose file is held
to the same settings.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy import environment, interpolate, load_compose
from tools.airflow_local import CELERY_WORKER_SETTINGS


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return load_compose()["services"]


class TestCeleryProfile:
    def test_workers_run_the_settings_the_native_celery_tests_prove(self, services: dict[str, Any]) -> None:
        env = environment(services["airflow-worker"])
        assert {key: interpolate(env[key], {}) for key in CELERY_WORKER_SETTINGS} == CELERY_WORKER_SETTINGS

    def test_result_backend_is_the_metadata_database(self, services: dict[str, Any]) -> None:
        for name in ("airflow-scheduler", "airflow-worker"):
            env = environment(services[name])
            assert (
                env["AIRFLOW__CELERY__RESULT_BACKEND"] == f"db+{env['AIRFLOW__DATABASE__SQL_ALCHEMY_CONN']}"
            )

    def test_broker_is_the_redis_of_the_profile(self, services: dict[str, Any]) -> None:
        assert (
            environment(services["airflow-worker"])["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
        )
        assert services["redis"]["profiles"] == ["celery"]
        assert "6379" in [str(port) for port in services["redis"]["expose"]]

    def test_worker_healthcheck_pings_the_worker_by_its_own_host_name(self, services: dict[str, Any]) -> None:
        kind, command = services["airflow-worker"]["healthcheck"]["test"]
        assert kind == "CMD-SHELL"
        assert interpolate(command, {}).endswith('inspect ping -d "celery@${HOSTNAME}"')
