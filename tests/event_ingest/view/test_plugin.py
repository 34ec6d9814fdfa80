"""The plugin as Airflow loads it: from the plugins folder or the entry point, once, and nothing else.

Airflow imports every ``.py`` file under its plugins folder as a top-level module named by its stem;
``plugins/.airflowignore`` keeps the ``event_ingest`` package out of that scan. Each test loads the
plugins in a fresh interpreter, as an Airflow process does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import ROOT

PLUGINS = ROOT / "plugins"
PACKAGE_MODULES = sorted({p.stem for p in (PLUGINS / "event_ingest").rglob("*.py")} - {"__init__"})

LOAD = """
import json, sys
from airflow import plugins_manager
plugins_manager.ensure_plugins_loaded()
print("PLUGINS=" + json.dumps({
    "plugins": plugins_manager.get_plugin_info(),
    "errors": plugins_manager.get_import_errors(),
    "modules": sorted(sys.modules),
}, default=str))
"""


def load_plugins(plugins_folder: Path, **env: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", LOAD],
        env={**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins_folder), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("PLUGINS=")]
    return json.loads(line.removeprefix("PLUGINS="))


class TestPluginsFolder:
    def test_loads_the_view_and_nothing_of_the_package_as_top_level_modules(self) -> None:
        loaded = load_plugins(PLUGINS)
        assert loaded["errors"] == {}
        (plugin,) = loaded["plugins"]
        assert plugin["name"] == "event_ingest_view"
        assert plugin["source"] == "$PLUGINS_FOLDER/event_ingest_view.py"
        assert plugin["fastapi_apps"] == [
            {"app": "fastapi.applications.FastAPI", "url_prefix": "/event-ingest", "name": "Event ingest"}
        ]
        (view,) = plugin["external_views"]
        assert (view["href"], view["destination"], view["url_route"]) == (
            "/event-ingest/",
            "nav",
            "event-ingest",
        )
        assert "event_ingest.view.plugin" in loaded["modules"]
        assert set(PACKAGE_MODULES) & set(loaded["modules"]) == set()

    def test_loading_it_does_not_import_the_api_servers_modules(self) -> None:
        """Every Airflow process loads plugins, task processes too: the API stack waits for a request."""
        assert "airflow.api_fastapi.core_api.security" not in load_plugins(PLUGINS)["modules"]

    def test_without_the_ignore_file_airflow_would_import_the_package_as_top_level_modules(
        self, tmp_path: Path
    ) -> None:
        folder = tmp_path / "plugins"
        shutil.copytree(PLUGINS, folder, ignore=shutil.ignore_patterns(".airflowignore", "__pycache__"))
        modules = set(load_plugins(folder)["modules"])
        assert {"errors", "settings", "runner", "chart"} <= modules

    def test_the_airflow_cli_lists_it(self) -> None:
        result = subprocess.run(
            [str(Path(sys.executable).parent / "airflow"), "plugins", "--output", "json"],
            env={**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS)},
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        # The CLI prints a warning of graphviz's before the JSON.
        listing = json.loads(result.stdout[result.stdout.index("[") :])
        assert [p["name"] for p in listing] == ["event_ingest_view"]


class TestEntryPoint:
    def test_an_installed_package_registers_it_once_through_its_entry_point(self, tmp_path: Path) -> None:
        """As ``pip install .`` would: the entry point of pyproject.toml, and the plugins file beside it."""
        dist = tmp_path / "event_ingest-0.0.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: event-ingest\nVersion: 0.0.0\n")
        (dist / "entry_points.txt").write_text(
            "[airflow.plugins]\nevent_ingest_view = event_ingest.view.plugin:EventIngestViewPlugin\n"
        )
        loaded = load_plugins(PLUGINS, PYTHONPATH=os.pathsep.join([str(tmp_path), str(PLUGINS)]))
        assert loaded["errors"] == {}
        (plugin,) = loaded["plugins"]
        assert plugin["name"] == "event_ingest_view"
        assert plugin["source"].startswith("event-ingest==0.0.0: EntryPoint(name='event_ingest_view'")
