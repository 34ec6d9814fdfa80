"""Database faults during the load: the connection killed, the server crashed and restarted.

A reader thread watches the database for the whole run: every session it can see must hold all its
events (``event_count`` equal to its rows in ``events`` and to what the manifest says).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from typing import Any

import pytest

from event_ingest.event_db.mysql import MySqlEventDb
from tests.faults.conftest import (
    FaultPipeline,
    assert_loaded_exactly,
    assert_no_half_written_session,
    task_tries,
)

pytestmark = pytest.mark.faults

DAY = dt.date(2026, 11, 21)
CONF = {"start_date": DAY.isoformat()}


class Watcher(threading.Thread):
    """Read the event database as often as it can; collect every half-written session it sees."""

    def __init__(self, pipe: FaultPipeline, expected_counts: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.pipe = pipe
        self.expected_counts = expected_counts
        self.stop = threading.Event()
        self.reads = 0
        self.violations: list[Any] = []

    def run(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(Exception):  # the server may be down, the tables not there yet
                self.violations += assert_no_half_written_session(self.pipe.mariadb, self.pipe.database)
                for row in self.pipe.query("SELECT session_id, event_count FROM sessions"):
                    if row["event_count"] != self.expected_counts[row["session_id"]]:
                        self.violations.append((row["session_id"], row["event_count"]))
                self.reads += 1
            time.sleep(0.005)


@pytest.mark.parametrize("fault", ["kill-connection", "crash-server"])
def test_database_lost_mid_transaction_rolls_back_and_the_retry_loads_once(
    fault_pipeline: FaultPipeline,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    fault: str,
) -> None:
    pipe = fault_pipeline
    manifest = pipe.seed([DAY], sessions_per_day=5, tags_per_session=4, seed=51)
    real = MySqlEventDb._create_event_in_session
    calls: list[str] = []
    invisible: list[bool] = []

    def create_events(self: MySqlEventDb, cursor: Any, session_id: str, events: Any, now: str) -> Any:
        inserted = real(self, cursor, session_id, events, now)
        calls.append(session_id)
        if len(calls) != 2:
            return inserted
        # The session's rows are written but not committed: now lose the connection.
        if fault == "kill-connection":
            admin = pipe.mariadb.connect()
            admin.cursor().execute(f"KILL {self.conn.thread_id()}")
            admin.close()
        else:
            pipe.mariadb.kill()  # SIGKILL: InnoDB recovers from its redo log at the start
            pipe.mariadb.start()
        invisible.append(not pipe.query("SELECT 1 FROM sessions WHERE session_id = %s", (session_id,)))
        return inserted

    monkeypatch.setattr(MySqlEventDb, "_create_event_in_session", create_events)
    watcher = Watcher(pipe, {sid: len(s.events) for sid, s in manifest.sessions.items()})
    watcher.start()
    try:
        result = pipe.run(conf=CONF)
    finally:
        watcher.stop.set()
        watcher.join()
    output = capfd.readouterr().out

    assert result.succeeded, output[-6000:]
    assert invisible == [True]
    assert task_tries(result.run_id)["load_to_db[0]"] == 2
    assert_loaded_exactly(pipe, manifest)
    assert assert_no_half_written_session(pipe.mariadb, pipe.database) == []
    assert watcher.reads > 10
    assert watcher.violations == []
    # The failed attempt ends on what happened to the connection, not on what the clean-up met.
    errors = [line for line in output.splitlines() if line.startswith("MySQLdb.OperationalError")]
    assert errors
    assert "Lost connection" in errors[-1], errors
