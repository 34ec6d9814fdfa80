"""The Dockerfile, .dockerignore and the deploy extra: a pinned base, no secrets, the package in."""

from __future__ import annotations

import re
import tomllib
from typing import NamedTuple

import pytest

from tests.deploy import DOCKERFILE, DOCKERIGNORE, PYPROJECT, SECRET_NAME

BASE_IMAGE = "apache/airflow:3.3.2-python3.11"
AIRFLOW_HOME = "/opt/airflow"
#: What the image may take from the build context: the package's metadata and lock, its code, the DAGs.
ALLOWED_SOURCES = {"pyproject.toml", "requirements.lock", "README.md", "dags/", "plugins/", "include/"}
#: The development harness: never in the image.
HARNESS = ("tests", "tools", "docs")
#: Settings that belong to the running stack (.env, a secrets backend), not to the image.
RUNTIME_ONLY = re.compile(r"^(AIRFLOW_CONN_|AIRFLOW_VAR_|AWS_|AIRFLOW__SECRETS__)")


class Instruction(NamedTuple):
    keyword: str
    arguments: str


def _instructions() -> list[Instruction]:
    """The Dockerfile's instructions, comments dropped and continuation lines joined."""
    logical = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    instructions = []
    for line in logical.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            instructions.append(Instruction(keyword.upper(), " ".join(arguments.split())))
    return instructions


def _of(keyword: str) -> list[str]:
    return [instruction.arguments for instruction in _instructions() if instruction.keyword == keyword]


def _declared_names(arguments: str) -> list[str]:
    """Names an ENV or ARG instruction sets (``NAME=value`` pairs, or the legacy ``NAME value``)."""
    pairs = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", arguments)
    return pairs or [arguments.split()[0]]


def _copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY and ADD, flags such as --chown dropped."""
    copies = []
    for arguments in _of("COPY") + _of("ADD"):
        words = [word for word in arguments.split() if not word.startswith("--")]
        copies.append((words[:-1], words[-1]))
    return copies


class TestDockerfile:
    def test_base_image_is_pinned_airflow(self) -> None:
        assert _of("FROM") == [BASE_IMAGE]

    @pytest.mark.parametrize("keyword", ["ENV", "ARG"])
    def test_no_secret_or_runtime_setting_is_baked_in(self, keyword: str) -> None:
        for arguments in _of(keyword):
            for name in _declared_names(arguments):
                assert not SECRET_NAME.search(name), f"{keyword} {name}"
                assert not RUNTIME_ONLY.match(name), f"{keyword} {name} belongs in .env"

    def test_copies_only_requirements_and_project_code(self) -> None:
        for sources, _ in _copies():
            assert set(sources) <= ALLOWED_SOURCES, sources

    @pytest.mark.parametrize("folder", ["dags", "include"])
    def test_dags_and_the_seed_generator_land_in_airflow_home(self, folder: str) -> None:
        assert ([f"{folder}/"], f"{AIRFLOW_HOME}/{folder}/") in _copies()

    def test_installs_the_package_after_its_locked_dependencies(self) -> None:
        copied = {source for sources, _ in _copies() for source in sources}
        assert {"pyproject.toml", "requirements.lock", "plugins/"} <= copied
        installs = [run for run in _of("RUN") if "pip install" in run]
        assert len(installs) == 2, installs
        assert "optional-dependencies']['deploy']" in installs[0]
        assert re.search(r"-c \S*requirements\.lock", installs[0])
        assert re.search(r"pip install --no-cache-dir --no-deps /opt/airflow/src$", installs[1])

    def test_runs_as_the_airflow_user(self) -> None:
        assert _of("USER")[-1] == "airflow"

    def test_the_package_is_installed_not_put_on_a_path(self) -> None:
        assert not any("PYTHONPATH" in arguments for arguments in _of("ENV"))


class TestDockerignore:
    @pytest.mark.parametrize("pattern", [".env", ".git", ".venv"])
    def test_excludes(self, pattern: str) -> None:
        lines = [line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()]
        assert pattern in lines

    @pytest.mark.parametrize("folder", HARNESS)
    def test_excludes_the_harness(self, folder: str) -> None:
        lines = [line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()]
        assert f"{folder}/" in lines

    def test_excludes_every_env_file(self) -> None:
        lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        assert ".env.*" in lines
        assert not any(line.startswith("!.env") for line in lines)


class TestDeployExtra:
    def project(self) -> dict:
        return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]

    @pytest.mark.parametrize("provider", ["elasticsearch", "celery", "fab"])
    def test_the_stacks_providers_are_in_the_deploy_extra(self, provider: str) -> None:
        assert any(
            r.startswith(f"apache-airflow-providers-{provider}")
            for r in self.project()["optional-dependencies"]["deploy"]
        )

    def test_celery_is_held_below_the_release_its_provider_cannot_import(self) -> None:
        assert any(
            r.startswith("celery") and "<5.7" in r for r in self.project()["optional-dependencies"]["deploy"]
        )

    def test_runtime_dependencies_hold_no_test_tool(self) -> None:
        runtime = " ".join(self.project()["dependencies"])
        for tool in ("pytest", "moto", "seaweedfs", "hypothesis", "playwright"):
            assert tool not in runtime
