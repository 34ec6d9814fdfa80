"""``make airflow`` and ``make airflow-stop`` as a user runs them: ``python -m tools.airflow_local``.

The demo's Airflow comes up on a port of its own with the demo's sessions in its local S3, the
scheduled run made on unpause loads the last three seeded days, a range of the earlier days triggered
as the UI's trigger form does (``POST /api/v2/dags/event_ingest/dagRuns`` with the form's conf, as the
printed login) loads exactly those days, the ingest view's days are the tables' own counts (and
refused without a token), and the stop command leaves no process and no metadata database behind.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT
from tests.view import seed
from tools.airflow_local import AirflowApi, find_processes
from tools.services import LocalPostgres, free_port

pytestmark = pytest.mark.native

DAG_ID = "event_ingest"
# The API server answers in milliseconds on a quiet machine, but beside the other test worker's
# Airflow it once took over httpx's default 5 s (CI): a user's browser waits longer than that too.
HTTP_TIMEOUT = 60


def read_until(process: subprocess.Popen[str], last_line: str) -> str:
    """What ``process`` prints up to the line that starts with ``last_line``; fails if it exits first."""
    printed = []
    while True:
        line = process.stdout.readline() if process.stdout else ""
        if not line:
            pytest.fail(f"make airflow exited with {process.wait()}:\n{''.join(printed)}")
        printed.append(line)
        if line.startswith(last_line):
            return "".join(printed)


def sqlite_query(data_dir: Path) -> seed.Query:
    """What ``seed.expected_days`` asks, put to the demo's embedded SQLite event database."""

    def query(statement: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
        with sqlite3.connect(data_dir / "event_ingest.sqlite3") as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(statement.replace("%s", "?"), [arg.isoformat() for arg in args]).fetchall()
        return [{**dict(row), "day": dt.date.fromisoformat(row["day"])} for row in rows]

    return query


def sessions_per_day(data_dir: Path) -> dict[str, int]:
    with sqlite3.connect(data_dir / "event_ingest.sqlite3") as db:
        return dict(db.execute("SELECT session_date, COUNT(*) FROM sessions GROUP BY session_date"))


def test_make_airflow_loads_the_scheduled_days_and_a_triggered_range_and_stop_leaves_nothing(
    tmp_path: Path,
) -> None:
    work = tmp_path / "airflow"
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env |= {"AIRFLOW_PORT": str(free_port()), "EVENT_INGEST_AIRFLOW_WORK": str(work)}
    command = [sys.executable, "-m", "tools.airflow_local"]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        printed = read_until(process, "Stop: Ctrl-C here")
        url, user, password = re.search(r"UI and REST API\s+(\S+)\s+login: (\S+) / (\S+)", printed).groups()
        first, last = re.search(r"with start_date ([\d-]+) and end_date ([\d-]+)", printed).groups()
        state = (work / "state.json").read_text()
        api = AirflowApi(url, user, password)

        (run,) = api.wait_for_runs(DAG_ID, 1, timeout=300)  # the scheduler makes it on unpause
        assert run["run_type"] == "scheduled"
        assert run["state"] == "success"
        loaded_by_schedule = sessions_per_day(work / "data")
        assert len(loaded_by_schedule) == 3
        assert min(loaded_by_schedule) > last

        triggered = api.trigger(DAG_ID, conf={"start_date": first, "end_date": last})
        assert api.wait_for_run(DAG_ID, triggered["dag_run_id"])["state"] == "success"
        loaded = sessions_per_day(work / "data")
        assert sorted(set(loaded) - set(loaded_by_schedule)) == [
            day for day in sorted(loaded) if first <= day <= last
        ]
        assert len(set(loaded) - set(loaded_by_schedule)) == 4  # every day of the range, none else

        # The ingest view on the demo's data: each day's bars are the tables' own counts.
        week = {"start": min(loaded), "end": max(loaded)}
        days_url = f"{url}/event-ingest/api/days"
        bearer = {"Authorization": f"Bearer {api.token()}"}
        days = httpx.get(days_url, params=week, headers=bearer, timeout=HTTP_TIMEOUT)
        assert days.status_code == 200, days.text
        first_day, last_day = (dt.date.fromisoformat(week[end]) for end in ("start", "end"))
        assert days.json() == seed.expected_days(sqlite_query(work / "data"), first_day, last_day)
        assert sum(day["open_rejects"] for day in days.json()) > 0  # the demo's bad sessions
        assert httpx.get(days_url, params=week, timeout=HTTP_TIMEOUT).status_code == 401
    finally:
        stop = subprocess.run(
            [*command, "stop"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        process.wait(timeout=60)

    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert "nothing is left" in stop.stdout
    recorded = json.loads(state)
    sessions = {int(pid): name for pid, name in recorded["sessions"].items()}
    assert find_processes(sessions, recorded["stack_id"]) == []
    with LocalPostgres().connect() as postgres:
        names = [row[0] for row in postgres.execute("SELECT datname FROM pg_database").fetchall()]
    assert recorded["metadata_database"] not in names
