"""The Dockerfile, .dockerignore and requirements-deploy.txt: a pinned base, no secrets, the project in."""

from __future__ import annotations

import re
from typing import NamedTuple

import pytest

from tests.deploy import DOCKERFILE, DOCKERIGNORE, REQUIREMENTS_DEPLOY, SECRET_NAME

BASE_IMAGE = "apache/airflow:3.3.2-python3.11"
AIRFLOW_HOME = "/opt/airflow"
#: What the image may take from the build context: the requirements and the project's code.
ALLOWED_SOURCES = {
    "requirements.txt",
    "requirements-deploy.txt",
    "requirements.lock",
    "dags/",
    "plugins/",
    "include/",
}
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

    @pytest.mark.parametrize("folder", ["dags", "plugins", "include"])
    def test_project_folder_lands_in_airflow_home(self, folder: str) -> None:
        assert ([f"{folder}/"], f"{AIRFLOW_HOME}/{folder}/") in _copies()

    def test_installs_requirements_with_the_lock_as_constraints(self) -> None:
        copied = {source for sources, _ in _copies() for source in sources}
        assert {"requirements.txt", "requirements-deploy.txt", "requirements.lock"} <= copied
        installs = [run for run in _of("RUN") if "pip install" in run]
        assert len(installs) == 1, installs
        assert re.search(r"-r \S*requirements-deploy\.txt", installs[0])
        assert re.search(r"-c \S*requirements\.lock", installs[0])

    def test_runs_as_the_airflow_user(self) -> None:
        assert _of("USER")[-1] == "airflow"

    def test_import_roots_match_the_tests(self) -> None:
        """pyproject.toml's ``pythonpath = [".", "plugins"]``, rooted at AIRFLOW_HOME."""
        assert f"PYTHONPATH={AIRFLOW_HOME}:{AIRFLOW_HOME}/plugins" in _of("ENV")


class TestDockerignore:
    @pytest.mark.parametrize("pattern", [".env", ".git", ".venv"])
    def test_excludes(self, pattern: str) -> None:
        lines = [line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()]
        assert pattern in lines

    def test_excludes_every_env_file(self) -> None:
        lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        assert ".env.*" in lines
        assert not any(line.startswith("!.env") for line in lines)


class TestDeployRequirements:
    def test_builds_on_the_runtime_requirements(self) -> None:
        lines = REQUIREMENTS_DEPLOY.read_text(encoding="utf-8").splitlines()
        assert "-r requirements.txt" in lines

    @pytest.mark.parametrize("provider", ["elasticsearch", "celery", "postgres", "fab"])
    def test_provider_is_pinned_exactly(self, provider: str) -> None:
        text = REQUIREMENTS_DEPLOY.read_text(encoding="utf-8")
        assert re.search(rf"^apache-airflow-providers-{provider}==\d+\.\d+\.\d+$", text, re.MULTILINE)
