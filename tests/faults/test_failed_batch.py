"""One batch fails for good on a real fault: the other batches load, the run fails saying so, a rerun heals.

The fault is the database's own: another client holds a row of one batch's sessions (inserted, not
committed, as a stuck writer would), and the server refuses to wait for it (MariaDB:
``innodb_lock_wait_timeout = 0``; PostgreSQL: ``lock_timeout``). Only that batch writes that row, so
only its ``load_to_db`` fails: a lock wait is a fault of the infrastructure, so each attempt fails and
Airflow retries it until it gives up, while the run's other batches, each in its own task group, load.
Once the lock is gone, a rerun loads the last batch, and nothing is loaded twice.
"""

from __future__ import annotations

import datetime as dt

import pytest

from event_ingest import settings
from event_ingest.event_db.schema import ALL_TABLES
from event_ingest.runner import Place
from tests.faults.conftest import (
    BACKENDS,
    FaultPipeline,
    assert_loaded_exactly,
    task_states,
    task_tries,
)

pytestmark = pytest.mark.faults

DAY = dt.date(2026, 11, 26)
CONF = {"start_date": DAY.isoformat(), "batch_size": 2}
LOCK_ERRORS = {
    "mariadb": "(1205, 'Lock wait timeout exceeded; try restarting transaction')",
    "postgres": "canceling statement due to lock timeout",
}

PERMISSION_ERRORS = {
    "mariadb": "INSERT command denied to user",
    "postgres": "permission denied for table sessions",
}


def blocking_row(session_id: str) -> dict[str, str]:
    """A session row another client is writing: enough for the key to be locked."""
    now = f"{DAY.isoformat()} 12:00:00.000"
    return {
        "session_id": session_id,
        "vehicle_id": "a stuck writer",
        "started_at": now,
        "session_date": DAY.isoformat(),
        "report_key": "none",
        "report_etag": "none",
        "ingested_at": now,
        "updated_at": now,
    }


@pytest.mark.parametrize("fault_pipeline", BACKENDS, indirect=True)
def test_a_batch_the_database_refuses_fails_alone_and_a_rerun_completes_the_day(
    fault_pipeline: FaultPipeline, capfd: pytest.CaptureFixture[str]
) -> None:
    pipe = fault_pipeline
    manifest = pipe.seed([DAY], sessions_per_day=6, tags_per_session=2, seed=95)
    ids = sorted(manifest.sessions)  # the listing's order: batch n holds ids[2n:2n+2]
    refused, others = set(ids[2:4]), set(ids[:2] + ids[4:])
    with Place(bucket=pipe.bucket, data_dir=pipe.data_dir).open_db():
        pass  # the tables, as the first task would make them
    store = pipe.store

    with store.lock_waits_fail_at_once(), store.row_held("sessions", blocking_row(ids[2])):
        failed = pipe.run(conf=CONF)
    output = capfd.readouterr().out

    assert failed.state == "failed"
    states = task_states(failed.run_id)
    assert {name: state for name, state in states.items() if state != "success"} == {
        "ingest_batch.load_to_db[1]": "failed",
        "summarize_run": "failed",
    }
    tries = task_tries(failed.run_id)
    assert tries["ingest_batch.load_to_db[1]"] == settings.RETRIES + 1  # retried until Airflow gave up
    assert {name: n for name, n in tries.items() if n > 1} == {
        "ingest_batch.load_to_db[1]": settings.RETRIES + 1
    }
    assert LOCK_ERRORS[store.backend] in output, output[-4000:]
    assert "1 of 3 batch(es) failed; the others are loaded" in output
    assert_loaded_exactly(pipe, manifest, sessions=others)
    assert set(pipe.sessions()) == others
    assert pipe.open_rejects() == {}  # a fault is no reason to reject anything
    events_of_others = sum(len(manifest.sessions[sid].events) for sid in others)
    run = pipe.runs()[failed.run_id]
    assert (run["state"], run["failed_batches"]) == ("failed", 1)
    assert (run["discovered"], run["loaded_sessions"], run["loaded_events"], run["rejected"]) == (
        len(others),
        len(others),
        events_of_others,
        0,
    )

    healed = pipe.run(conf=CONF)

    assert healed.succeeded, healed.task_states
    assert_loaded_exactly(pipe, manifest)
    assert {table: keys for table, keys in store.duplicate_keys().items() if keys} == {}
    all_events = sum(len(s.events) for s in manifest.sessions.values())
    assert healed.summary == {
        "discovered": len(ids),
        "skipped": len(others),
        "deferred": 0,
        "rejected": 0,
        "loaded_sessions": len(refused),
        "loaded_events": all_events - events_of_others,
    }
    days = pipe.query("SELECT * FROM ingest_days")
    assert [(str(d["day"]), d["sessions"], d["events"]) for d in days] == [
        (DAY.isoformat(), len(ids), all_events)
    ]
    run = pipe.runs()[healed.run_id]
    assert (run["state"], run["failed_batches"], run["loaded_sessions"]) == ("success", 0, len(refused))


@pytest.mark.parametrize("fault_pipeline", BACKENDS, indirect=True)
def test_writes_the_database_refuses_by_privilege_fail_the_batch_and_reject_nothing(
    fault_pipeline: FaultPipeline, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # A login that lost INSERT on one table (a REVOKE, a read-only replica behind the same name) is
    # the database refusing, as refused credentials are: a fault, never a reason to reject a session.
    pipe = fault_pipeline
    manifest = pipe.seed([DAY], sessions_per_day=2, tags_per_session=2, seed=96)
    with Place(bucket=pipe.bucket, data_dir=pipe.data_dir).open_db():
        pass  # the tables, made by their owner
    store = pipe.store
    tables = tuple(table.name for table in ALL_TABLES)

    with store.user_without_insert("sessions", tables) as conn:
        monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_DB", conn)
        refused = pipe.run(conf={"start_date": DAY.isoformat()})
        output = capfd.readouterr().out

        assert refused.state == "failed"
        assert task_tries(refused.run_id)["ingest_batch.load_to_db[0]"] == settings.RETRIES + 1
        assert PERMISSION_ERRORS[store.backend] in output, output[-4000:]
        assert pipe.open_rejects() == {}
        assert pipe.sessions() == {}
        run = pipe.runs()[refused.run_id]
        assert (run["state"], run["failed_batches"], run["rejected"]) == ("failed", 1, 0)

        store.grant_insert("sessions")
        healed = pipe.run(conf={"start_date": DAY.isoformat()})

    assert healed.succeeded, healed.task_states
    assert_loaded_exactly(pipe, manifest)
    assert pipe.open_rejects() == {}
