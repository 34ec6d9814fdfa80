"""The package installs with ``pip install .`` into a fresh venv and works outside the repository.

It must find its own files (the DDL, the ingest view's assets) through ``importlib.resources``,
declare every runtime dependency in ``pyproject.toml``, and register the ingest view as an Airflow
plugin through its entry point. The venv is installed with uv (what ``make`` uses; pip's resolver
takes minutes), constrained by the lock, from the project directory as a user would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

CHECK = """
import importlib.metadata, pathlib, sys
import event_ingest
from event_ingest.event_db.sqlite import SqliteEventDb
assert "site-packages" in event_ingest.__file__, event_ingest.__file__
path = pathlib.Path(sys.argv[1]) / "events.sqlite3"
with SqliteEventDb.at(path) as db:
    db.start_run(dag_run_id="r", dag_id="event_ingest", run_type="manual", first_day=None, last_day=None)
    print(sorted(row["dag_run_id"] for row in db.latest_runs()))
points = importlib.metadata.entry_points(group="airflow.plugins")
print(sorted(p.value for p in points if p.name == "event_ingest_view"))
"""


def test_pip_install_gives_a_working_package_outside_the_repository(tmp_path: Path) -> None:
    venv, source = tmp_path / "venv", tmp_path / "source"
    # A copy of what the package is built from: setuptools writes build/ and *.egg-info where it builds.
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "plugins", source / "plugins", ignore=shutil.ignore_patterns("__pycache__"))
    uv = Path(sys.executable).parent / "uv"
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow"), "PYTHONPATH": ""}
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    subprocess.run(
        [str(uv), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), str(source),
         "-c", str(ROOT / "requirements.lock")],
        check=True, timeout=600, env=env, cwd=tmp_path,
    )  # fmt: skip

    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", CHECK, str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert result.stdout.splitlines()[-2:] == ["['r']", "['event_ingest.view.plugin:EventIngestViewPlugin']"]
