"""Two runs over overlapping date ranges at the same time, in two OS processes.

Each process runs the DAG's steps (``steps_runner``) with small batches, so their listings, report
reads, downloads into the same data directory and transactions on the same rows interleave. They
start together on a go-file, after both have imported and connected.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from include import generator
from tests.faults.conftest import FaultPipeline, run_steps_process, semantic_state

pytestmark = pytest.mark.faults

DAYS = [dt.date(2026, 11, d) for d in (1, 2, 3, 4)]
OVERLAPPING = [  # Nov 2 and 3 in both
    ("2026-11-01", "2026-11-03"),
    ("2026-11-02", "2026-11-04"),
]


def run_together(runs: list[tuple[str, str, dict[str, str]]], tmp_path: Path) -> list[dict[str, Any]]:
    """Run one steps process per (start, end, env), all released at once; return their summaries."""
    go = tmp_path / f"go-{uuid.uuid4().hex[:6]}"
    procs = [
        run_steps_process("--start", start, "--end", end, "--batch-size", "2", "--go-file", str(go), env=env)
        for start, end, env in runs
    ]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob(f"{go.name}.ready-*"))) < len(procs) and time.monotonic() < deadline:
        time.sleep(0.02)
    go.touch()
    summaries = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err[-4000:]
        for needle in ("Duplicate entry", "IntegrityError", "Deadlock found", "Traceback"):
            assert needle not in err + out, (err + out)[-4000:]
        summaries.append(json.loads(out.strip().splitlines()[-1]))
    return summaries


def sqlite_conn(path: Path) -> str:
    return json.dumps({"conn_type": "sqlite", "host": str(path)})


def sqlite_state(path: Path, data_dir: Path) -> dict[str, list[tuple[Any, ...]]]:
    import sqlite3

    state = {}
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        for table in ("sessions", "events", "ingest_rejects"):
            rows = []
            for row in db.execute(f"SELECT * FROM {table}"):
                item = dict(row)
                if item.get("local_path"):
                    item["local_path"] = str(Path(item["local_path"]).relative_to(data_dir))
                if "resolved_at" in item:
                    item["resolved_at"] = item["resolved_at"] is not None
                volatile = {"ingested_at", "updated_at", "first_seen_at", "last_seen_at", "dag_run_id"}
                rows.append(tuple(v for k, v in item.items() if k not in volatile))
            state[table] = sorted(rows, key=repr)
    return state


@pytest.mark.parametrize("backend", ["mariadb", "sqlite"])
def test_two_overlapping_runs_at_once_leave_exactly_the_state_of_one_run(
    fault_pipeline: FaultPipeline, tmp_path: Path, backend: str
) -> None:
    pipe = fault_pipeline
    manifest = pipe.seed(DAYS, sessions_per_day=4, tags_per_session=4, bad_kinds=generator.BAD_KINDS, seed=31)
    one_run_dir = tmp_path / "one-run"
    if backend == "mariadb":
        one_run_db = pipe.mariadb.create_database(f"{pipe.database}_one")
        overlap_env: dict[str, str] = {}
        one_env = {"AIRFLOW_CONN_EVENT_INGEST_DB": pipe.mariadb.airflow_conn_uri(one_run_db)}
    else:
        overlap_env = {"AIRFLOW_CONN_EVENT_INGEST_DB": sqlite_conn(pipe.data_dir / "events.sqlite3")}
        one_env = {"AIRFLOW_CONN_EVENT_INGEST_DB": sqlite_conn(one_run_dir / "events.sqlite3")}
    one_env["AIRFLOW_VAR_EVENT_INGEST_DATA_DIR"] = str(one_run_dir)

    # The reference run (one range, its own database and data directory) runs alongside.
    *first, single = run_together(
        [(start, end, overlap_env) for start, end in OVERLAPPING] + [("2026-11-01", "2026-11-04", one_env)],
        tmp_path,
    )
    again = run_together([(start, end, overlap_env) for start, end in OVERLAPPING], tmp_path)

    if backend == "mariadb":
        overlapped = semantic_state(pipe.mariadb, pipe.database, pipe.data_dir)
        one_run = semantic_state(pipe.mariadb, one_run_db, one_run_dir)
        pipe.mariadb.drop_database(one_run_db)
    else:
        overlapped = sqlite_state(pipe.data_dir / "events.sqlite3", pipe.data_dir)
        one_run = sqlite_state(one_run_dir / "events.sqlite3", one_run_dir)
    assert overlapped == one_run
    assert len(overlapped["sessions"]) == len(manifest.sessions)
    assert len(overlapped["events"]) == sum(len(s.events) for s in manifest.sessions.values())
    assert single["loaded_sessions"] == len(manifest.sessions)
    # Between them the two runs loaded every session; none was lost to the other's skip.
    assert sum(s["loaded_events"] for s in first) >= single["loaded_events"]
    assert all(s["loaded_events"] == 0 for s in again)
    parts = {p.name for p in pipe.data_dir.rglob("*.part")}
    assert parts == set()
