"""The `logging` profile: Airflow accepts the compose file's Elasticsearch task-logging settings.

The settings are taken from docker-compose.yaml (``x-elasticsearch-logging-env``, merged into
every Airflow service), interpolated with .env.example plus the documented switch
``AIRFLOW__LOGGING__REMOTE_LOGGING=true``, and handed to Airflow in a subprocess with a fresh
AIRFLOW_HOME. Airflow builds its task-log handler when it starts, so a setting the
Elasticsearch provider refuses (or a provider missing from the environment) fails right there.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib import metadata
from typing import Any

import pytest

from tests.deploy import (
    PYPROJECT,
    ROOT,
    commented_settings,
    environment,
    interpolate,
    load_compose,
    read_env_file,
)

PROVIDER = "apache-airflow-providers-elasticsearch"
LOGGING_ANCHOR = "x-elasticsearch-logging-env"
SWITCH = "AIRFLOW__LOGGING__REMOTE_LOGGING"
#: (section, option) read back through `airflow config get-value`.
OPTIONS = [
    ("logging", "remote_logging"),
    ("elasticsearch", "host"),
    ("elasticsearch", "json_format"),
    ("elasticsearch", "write_to_es"),
    ("elasticsearch", "write_stdout"),
]
# Runs `airflow config get-value SECTION OPTION` for each option in one process (each CLI start
# costs about two seconds), then reports the remote task-log handler Airflow built at start-up.
_PROBE = """
import contextlib, io, json, sys
from airflow.cli import cli_parser
from airflow.config_templates import airflow_local_settings

parser = cli_parser.get_parser()
values = {}
for section, option in json.loads(sys.argv[1]):
    args = parser.parse_args(["config", "get-value", section, option])
    with contextlib.redirect_stdout(io.StringIO()) as out:
        args.func(args)
    values[f"{section}.{option}"] = out.getvalue().strip()
handler = airflow_local_settings.REMOTE_TASK_LOG
fields = ("host", "write_to_es", "write_stdout", "json_format", "target_index")
print(json.dumps({
    "values": values,
    "handler": type(handler).__name__,
    "settings": {field: getattr(handler, field, None) for field in fields},
}))
"""


def _logging_settings(compose: dict[str, Any]) -> dict[str, str]:
    """The logging anchor of the compose file: an environment mapping, not yet interpolated."""
    return environment({"environment": compose[LOGGING_ANCHOR]})


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def logging_env(compose: dict[str, Any]) -> dict[str, str]:
    """The compose file's logging settings as the `logging` profile's instructions turn them on."""
    dotenv = read_env_file() | {SWITCH: commented_settings()[SWITCH]}
    return {key: interpolate(value, dotenv) for key, value in _logging_settings(compose).items()}


@pytest.fixture(scope="module")
def airflow_view(logging_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What Airflow makes of ``logging_env``: config values and the task-log handler it built."""
    home = tmp_path_factory.mktemp("airflow-home")
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env |= {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", **logging_env}
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(OPTIONS)],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, f"Airflow refused the logging settings:\n{result.stderr[-3000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


class TestComposeLoggingSettings:
    def test_names_the_settings_the_provider_documents(self, logging_env: dict[str, str]) -> None:
        # Writing straight to Elasticsearch: write_to_es and json_format on, write_stdout off.
        assert logging_env[SWITCH] == "true"
        assert logging_env["AIRFLOW__ELASTICSEARCH__WRITE_TO_ES"] == "true"
        assert logging_env["AIRFLOW__ELASTICSEARCH__JSON_FORMAT"] == "true"
        assert logging_env["AIRFLOW__ELASTICSEARCH__WRITE_STDOUT"] == "false"

    def test_host_is_the_logging_profiles_elasticsearch(
        self, compose: dict[str, Any], logging_env: dict[str, str]
    ) -> None:
        elasticsearch = compose["services"]["elasticsearch"]
        assert elasticsearch["profiles"] == ["logging"]
        assert logging_env["AIRFLOW__ELASTICSEARCH__HOST"] == "http://elasticsearch:9200"
        assert any(str(port).endswith(":9200") for port in elasticsearch["ports"])

    def test_server_major_version_matches_the_client_setting(
        self, compose: dict[str, Any], logging_env: dict[str, str]
    ) -> None:
        server_major = compose["services"]["elasticsearch"]["image"].rpartition(":")[2].split(".")[0]
        assert logging_env["AIRFLOW__ELASTICSEARCH__ES_COMPAT_WITH"] == server_major
        client = re.search(r'^\s*"elasticsearch>=(\d+),<', PYPROJECT.read_text(encoding="utf-8"), re.M)
        assert client, "the deploy extra should bound the Elasticsearch client's major version"
        assert client[1] == server_major

    def test_remote_logging_is_off_until_switched_on(self, compose: dict[str, Any]) -> None:
        switch = _logging_settings(compose)[SWITCH]
        assert interpolate(switch, read_env_file()) == "false"

    def test_every_airflow_service_carries_the_settings(self, compose: dict[str, Any]) -> None:
        settings = _logging_settings(compose)
        for name, service in compose["services"].items():
            if name.startswith("airflow-"):
                assert settings.items() <= environment(service).items(), name


class TestAirflowAcceptsTheSettings:
    def test_tested_provider_is_the_images(self) -> None:
        pinned = f"{PROVIDER}=={metadata.version(PROVIDER)}"
        assert pinned in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines()

    @pytest.mark.parametrize(
        ("option", "expected"),
        [
            ("logging.remote_logging", "true"),
            ("elasticsearch.host", "http://elasticsearch:9200"),
            ("elasticsearch.json_format", "true"),
            ("elasticsearch.write_to_es", "true"),
            ("elasticsearch.write_stdout", "false"),
        ],
    )
    def test_config_get_value(self, airflow_view: dict[str, Any], option: str, expected: str) -> None:
        assert airflow_view["values"][option] == expected

    def test_task_logs_go_to_elasticsearch_as_json(self, airflow_view: dict[str, Any]) -> None:
        assert airflow_view["handler"] == "ElasticsearchRemoteLogIO"
        assert airflow_view["settings"] == {
            "host": "http://elasticsearch:9200",
            "write_to_es": True,
            "write_stdout": False,
            "json_format": True,
            "target_index": "airflow-logs",
        }
