"""Two runs over overlapping date ranges at the same time, in two OS processes, on every backend.

Each process runs the package's batch runner (:mod:`tests.faults.ingest_process`) with small batches,
so their listings, report reads, downloads into the same data directory and transactions on the same
rows interleave. They start together on a go-file, after both have imported. Meanwhile the test's
own process runs the reference: the whole range alone, into a database and data directory of its own.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from event_ingest.runner import Place, ingest
from include import generator
from tests.faults.conftest import BACKENDS, FaultPipeline, new_store, start_ingest_process
from tests.support.stores import changed_rows

pytestmark = pytest.mark.faults

DAYS = [dt.date(2026, 11, d) for d in (1, 2, 3, 4)]
BATCH_SIZE = 3
OVERLAPPING = [  # Nov 2 and 3 in both
    ("2026-11-01", "2026-11-03"),
    ("2026-11-02", "2026-11-04"),
]
#: What a duplicate row, a lost race or a failed task would print, on any backend.
NEEDLES = (
    "Traceback",
    "IntegrityError",
    "Duplicate entry",
    "UniqueViolation",
    "duplicate key value",
    "UNIQUE constraint failed",
    "Deadlock found",
    "deadlock detected",
    "database is locked",
)


def start_together(runs: list[tuple[str, str]], tmp_path: Path) -> list[Any]:
    """Start one ingest process per (start, end) and release them at once, once all have imported."""
    go = tmp_path / f"go-{uuid.uuid4().hex[:6]}"
    procs = [
        start_ingest_process(
            "--start", start, "--end", end, "--batch-size", str(BATCH_SIZE), "--go-file", str(go)
        )
        for start, end in runs
    ]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob(f"{go.name}.ready-*"))) < len(procs) and time.monotonic() < deadline:
        assert all(proc.poll() is None for proc in procs), [proc.communicate() for proc in procs]
        time.sleep(0.02)
    go.touch()
    return procs


def summaries(procs: list[Any]) -> list[dict[str, Any]]:
    """Each process's summary, once it exited cleanly and printed no sign of a lost race."""
    found = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-4000:]
        for needle in NEEDLES:
            assert needle not in err + out, (err + out)[-4000:]
        found.append(json.loads(out.strip().splitlines()[-1]))
    return found


@pytest.mark.parametrize("fault_pipeline", [*BACKENDS, pytest.param("sqlite", id="sqlite")], indirect=True)
def test_two_overlapping_runs_at_once_leave_exactly_the_state_of_one_run(
    fault_pipeline: FaultPipeline,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipe = fault_pipeline
    manifest = pipe.seed(DAYS, sessions_per_day=2, tags_per_session=2, bad_kinds=generator.BAD_KINDS, seed=31)
    reference = new_store(request, pipe.store.backend, f"ref{uuid.uuid4().hex[:12]}", tmp_path)
    monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_REFERENCE", reference.airflow_conn())
    reference_place = Place(
        bucket=pipe.bucket, data_dir=tmp_path / "one-run", db_conn_id="event_ingest_reference"
    )
    whole_range = [DAYS[0] + dt.timedelta(days=n) for n in range(len(DAYS))]
    try:
        procs = start_together(OVERLAPPING, tmp_path)
        # The reference: the whole range in one run, into a database and data directory of its own,
        # in this process while the two others race.
        single = vars(ingest(reference_place, whole_range, batch_size=BATCH_SIZE))
        first = summaries(procs)
        one_run = reference.semantic_state(reference_place.data_dir)
    finally:
        reference.drop()

    overlapped = pipe.store.semantic_state(pipe.data_dir)
    assert overlapped == one_run, changed_rows(one_run, overlapped)
    assert {table: keys for table, keys in pipe.store.duplicate_keys().items() if keys} == {}
    events = sum(len(s.events) for s in manifest.sessions.values())
    assert len(overlapped["sessions"]) == len(manifest.sessions)
    assert len(overlapped["events"]) == events
    assert len(overlapped["ingest_deferrals"]) == len(manifest.deferred)
    # The per-day counters, added to by whichever run inserted a row, count each row once.
    days = {str(r["day"]): (r["sessions"], r["events"]) for r in pipe.query("SELECT * FROM ingest_days")}
    by_day: dict[str, list[int]] = {}
    for session in manifest.sessions.values():
        counts = by_day.setdefault(session.day, [0, 0])
        counts[0] += 1
        counts[1] += len(session.events)
    assert days == {day: tuple(counts) for day, counts in by_day.items()}
    assert single["loaded_sessions"] == len(manifest.sessions)
    # Between them the two runs loaded every event once; none was lost to the other's skip.
    assert sum(s["loaded_events"] for s in first) == single["loaded_events"] == events
    assert list(pipe.data_dir.rglob("*.part")) == []

    again = vars(
        ingest(Place(bucket=pipe.bucket, data_dir=pipe.data_dir), whole_range, batch_size=BATCH_SIZE)
    )

    assert (again["loaded_sessions"], again["loaded_events"]) == (0, 0)
    assert pipe.store.semantic_state(pipe.data_dir) == overlapped
