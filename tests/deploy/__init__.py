"""Static checks of the deployment: docker-compose.yaml, Dockerfile, .env.example, .dockerignore.

No Docker engine runs on the machines that test this project, so the tests read the files and
hold them to the deployment issue and to docs/contract.md §4. The helpers here are the few pieces of
Docker's own behaviour they need: reading the compose file with its YAML anchors, reading an
env file, and Compose's ``${...}`` interpolation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
PYPROJECT = ROOT / "pyproject.toml"

#: Names whose values are secrets: they must come from .env, never be written inline.
SECRET_NAME = re.compile(r"PASSWORD|SECRET|KEY|TOKEN", re.IGNORECASE)

# Compose's interpolation: $$ is a literal $; ${NAME}, ${NAME:-default}, ${NAME-default},
# ${NAME:?error}, ${NAME?error}, ${NAME:+alt}, ${NAME+alt}; and a bare $NAME.
_SUBSTITUTION = re.compile(
    r"\$\$"
    r"|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


class Substitution(NamedTuple):
    """One ``${...}`` of a compose or env file."""

    name: str
    op: str | None  # None, "-", ":-", "?", ":?", "+", ":+"
    arg: str

    @property
    def has_default(self) -> bool:
        """Whether Compose fills it in by itself when the variable is unset."""
        return self.op in ("-", ":-", "+", ":+")


def substitutions(text: str) -> Iterator[Substitution]:
    """Every variable substitution in ``text``, ``$$`` escapes skipped."""
    for match in _SUBSTITUTION.finditer(text):
        if match["name"]:
            yield Substitution(match["name"], match["op"], match["arg"] or "")
        elif match["bare"]:
            yield Substitution(match["bare"], None, "")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """``text`` as Compose resolves it against ``env``; a required variable missing raises KeyError."""

    def resolve(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name = match["name"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        value = env.get(name)
        # With the colon, an empty value counts as unset.
        is_set = bool(value) if op in (":-", ":?", ":+") else value is not None
        if op in ("-", ":-"):
            return value if is_set else arg
        if op in ("+", ":+"):
            return arg if is_set else ""
        if not is_set and op in ("?", ":?"):
            raise KeyError(f"{name}: {arg}")
        return value or ""

    return _SUBSTITUTION.sub(resolve, text)


def read_env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """``KEY=VALUE`` lines as Compose reads an env file: comments skipped, earlier keys interpolated."""
    env: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not a KEY=VALUE line: {line!r}"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key.strip()] = interpolate(value, env)
    return env


def commented_settings(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """The ``# KEY=VALUE`` lines of an env file: the settings it documents but leaves off."""
    settings: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"#\s*([A-Z_][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            settings.setdefault(match[1], match[2].strip())
    return settings


def load_compose() -> dict[str, Any]:
    """docker-compose.yaml with its anchors and ``<<`` merge keys resolved, not yet interpolated."""
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def scalars(node: Any) -> Iterator[str]:
    """Every string value under ``node``: what Compose interpolates (keys are not)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for value in node.values():
            yield from scalars(value)
    elif isinstance(node, list):
        for value in node:
            yield from scalars(value)


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's ``environment`` (mapping or list form) as a dict of strings."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {str(key): "" if value is None else str(value) for key, value in env.items()}
