"""Database faults during the load: the connection killed, the server crashed and restarted.

Each batch is written in one transaction (``EventDb.load_batch``). The fault strikes inside the
second batch's transaction, after its rows are written and before the commit. A reader thread
watches the database for the whole run: every session it can see must hold all its events
(``event_count`` equal to its rows in ``events`` and to what the manifest says).

On PostgreSQL, the machine's shared server is never killed: the pipeline's backend is terminated
(``pg_terminate_backend``) instead, which loses the connection mid-transaction just the same.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from event_ingest.errors import is_database_fault
from event_ingest.event_db import EventDb
from event_ingest.runner import Place
from tests.faults.conftest import FaultPipeline, assert_loaded_exactly, task_tries
from tests.support.stores import ServerStore

pytestmark = pytest.mark.faults

DAY = dt.date(2026, 11, 21)
BATCH_SIZE = 2
CONF = {"start_date": DAY.isoformat(), "batch_size": BATCH_SIZE}
#: What the failed attempt must end on: what happened to the connection, not what the clean-up met.
LOST = {
    "mariadb": "MySQLdb.OperationalError: (2013, 'Lost connection to server during query')",
    "postgres": "psycopg.errors.AdminShutdown: terminating connection due to administrator command",
}


class Watcher(threading.Thread):
    """Read the event database as often as it can; collect every half-written session it sees.

    Only a database that cannot be reached (the server down, the connection refused) is passed
    over; any other error is kept and fails the test, like a violation.
    """

    def __init__(self, store: ServerStore, expected_counts: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.store = store
        self.expected_counts = expected_counts
        self.stop = threading.Event()
        self.reads = 0
        self.unreachable = 0
        self.violations: list[Any] = []
        self.errors: list[BaseException] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                half = self.store.half_written_sessions()
                counts = self.store.query("SELECT session_id, event_count FROM sessions")
            except Exception as exc:
                if not is_database_fault(exc):
                    self.errors.append(exc)
                    return
                self.unreachable += 1
                time.sleep(0.02)
                continue
            self.violations += half
            for row in counts:
                if row["event_count"] != self.expected_counts.get(row["session_id"]):
                    self.violations.append((row["session_id"], row["event_count"]))
            self.reads += 1
            time.sleep(0.005)


class FaultInLoad:
    """Strike once, inside the ``nth`` transaction that writes events, between its writes and its commit."""

    def __init__(self, pipe: FaultPipeline, fault: str, nth: int, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pipe = pipe
        self.fault = fault
        self.nth = nth
        self.seen = 0
        self.struck_sessions: list[str] = []
        self.invisible_after: bool | None = None
        real = EventDb.transaction

        @contextmanager
        def transaction(db: EventDb, *, write: bool = True) -> Iterator[Any]:
            with real(db, write=write) as cursor:
                yield cursor
                if write:
                    self._maybe_strike(db, cursor)

        monkeypatch.setattr(EventDb, "transaction", transaction)

    def _maybe_strike(self, db: EventDb, cursor: Any) -> None:
        store = self.pipe.store
        committed = {r["session_id"] for r in store.query("SELECT DISTINCT session_id FROM events")}
        cursor.execute("SELECT DISTINCT session_id FROM events")
        pending = sorted({row[0] for row in cursor.fetchall()} - committed)
        if not pending:
            return  # no events written in this transaction
        self.seen += 1
        if self.seen != self.nth:
            return
        self.struck_sessions = pending
        if self.fault == "crash-server":
            store.server.kill()  # SIGKILL: InnoDB recovers from its redo log at the start
            store.server.start()
        else:
            store.kill_connection(store.connection_id(db.conn))
        visible = store.query("SELECT DISTINCT session_id FROM events")
        self.invisible_after = not {r["session_id"] for r in visible} & set(pending)


@pytest.mark.parametrize(
    ("fault_pipeline", "fault"),
    [
        pytest.param("mariadb", "kill-connection", id="mariadb-kill-connection"),
        pytest.param("mariadb", "crash-server", id="mariadb-crash-server"),
        pytest.param("postgres", "kill-connection", id="postgres-terminate-backend"),
    ],
    indirect=["fault_pipeline"],
)
def test_database_lost_mid_transaction_rolls_back_and_the_retry_loads_once(
    fault_pipeline: FaultPipeline,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    fault: str,
) -> None:
    pipe = fault_pipeline
    manifest = pipe.seed([DAY], sessions_per_day=5, tags_per_session=4, seed=51)
    ids = sorted(manifest.sessions)  # the listing's order: batch n holds ids[2n:2n+2]
    with Place(bucket=pipe.bucket, data_dir=pipe.data_dir).open_db():
        pass  # the tables, so that the watcher's reads are valid from the start
    strike = FaultInLoad(pipe, fault, nth=2, monkeypatch=monkeypatch)
    watcher = Watcher(pipe.store, {sid: len(s.events) for sid, s in manifest.sessions.items()})
    watcher.start()
    try:
        result = pipe.run(conf=CONF)
    finally:
        watcher.stop.set()
        watcher.join()
    output = capfd.readouterr().out

    assert result.succeeded, output[-6000:]
    (batch,) = {ids.index(sid) // BATCH_SIZE for sid in strike.struck_sessions}
    assert strike.invisible_after is True  # written, not committed: gone with the connection
    tries = task_tries(result.run_id)
    assert {name: n for name, n in tries.items() if n > 1} == {f"ingest_batch.load_to_db[{batch}]": 2}
    assert_loaded_exactly(pipe, manifest)
    assert pipe.store.half_written_sessions() == []
    assert watcher.errors == []
    assert watcher.reads > 10
    assert watcher.violations == []
    assert LOST[pipe.store.backend] in output.splitlines(), output[-6000:]
    assert result.summary["loaded_sessions"] == len(manifest.sessions)
