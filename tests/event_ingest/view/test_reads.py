"""The view's reads give the same records on every backend, from the database ``event_ingest_db`` names."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from event_ingest.model import Batch, Deferral, Reject
from event_ingest.view import reads
from tools.services import LocalPostgres, MariaDbServer

DAY = dt.date(2026, 11, 2)
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
REJECT = Reject("2026/11/02/s1/s1_logged_Upload_Report.json", "s1", "report: malformed JSON", "2026-11-02")
DEFERRAL = Deferral(
    "s2", "2026-11-02", "2026/11/02/s2/s2_logged_Upload_Report.json", "upload status is 'partial'"
)


@pytest.fixture(params=["sqlite", "mariadb", "postgres"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """``event_ingest_db`` on each backend, with the rows a run writes through ``EventDb``'s own API."""
    name = f"v{uuid.uuid4().hex[:12]}"
    drop = None
    monkeypatch.setenv("AIRFLOW_VAR_EVENT_INGEST_DATA_DIR", str(tmp_path))
    if request.param == "sqlite":
        monkeypatch.delenv("AIRFLOW_CONN_EVENT_INGEST_DB", raising=False)
    elif request.param == "mariadb":
        server: MariaDbServer = request.getfixturevalue("mariadb")
        server.create_database(name)
        monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_DB", server.airflow_conn_uri(name))
        drop = server.drop_database
    else:
        postgres: LocalPostgres = request.getfixturevalue("postgres")
        postgres.create_database(name)
        monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_DB", postgres.airflow_conn_uri(name))
        drop = postgres.drop_database
    from event_ingest.event_db import event_db_for

    with event_db_for("event_ingest_db", tmp_path) as db:
        db.start_run(
            dag_run_id="manual__1",
            dag_id="event_ingest",
            run_type="manual",
            first_day="2026-11-02",
            last_day=None,
        )
        db.load_batch(Batch(index=0, rejects=[REJECT], deferrals=[DEFERRAL]), "manual__1")
        db.finish_run(
            dag_run_id="manual__1", state="success", counts={"discovered": 2, "rejected": 1}, failed_batches=0
        )
    try:
        yield request.param
    finally:
        if drop is not None:
            drop(name)


class TestRecords:
    def test_days_count_open_rejects_and_deferrals_with_zeros_around(self, backend: str) -> None:
        with reads.event_db() as db:
            days = reads.days(db, DAY - dt.timedelta(days=1), DAY + dt.timedelta(days=1))
        assert days == [
            {"day": "2026-11-01", "sessions": 0, "events": 0, "open_rejects": 0, "deferred": 0},
            {"day": "2026-11-02", "sessions": 0, "events": 0, "open_rejects": 1, "deferred": 1},
            {"day": "2026-11-03", "sessions": 0, "events": 0, "open_rejects": 0, "deferred": 0},
        ]

    def test_open_rejects_have_the_contracts_fields(self, backend: str) -> None:
        with reads.event_db() as db:
            (reject,) = reads.open_rejects(db, DAY, limit=10)
            assert reads.open_rejects(db, DAY + dt.timedelta(days=1), limit=10) == []
        assert {k: reject[k] for k in ("object_key", "session_id", "reason")} == {
            "object_key": REJECT.object_key,
            "session_id": "s1",
            "reason": "report: malformed JSON",
        }
        assert ISO_TIME.fullmatch(reject["first_seen_at"])
        assert ISO_TIME.fullmatch(reject["last_seen_at"])

    def test_deferred_sessions_give_their_day_and_why(self, backend: str) -> None:
        with reads.event_db() as db:
            (deferred,) = reads.deferred_sessions(db, limit=10)
        assert deferred["session_id"] == "s2"
        assert deferred["session_date"] == "2026-11-02"
        assert deferred["reason"] == "upload status is 'partial'"
        assert ISO_TIME.fullmatch(deferred["first_seen_at"])

    def test_runs_give_days_times_and_counts(self, backend: str) -> None:
        with reads.event_db() as db:
            (run,) = reads.latest_runs(db, limit=10)
        assert (run["dag_run_id"], run["state"], run["first_day"], run["last_day"]) == (
            "manual__1",
            "success",
            "2026-11-02",
            None,
        )
        assert ISO_TIME.fullmatch(run["started_at"])
        assert ISO_TIME.fullmatch(run["finished_at"])
        assert (run["discovered"], run["rejected"], run["loaded_sessions"]) == (2, 1, 0)


class TestWhichDatabase:
    def test_without_a_connection_the_embedded_sqlite_of_the_data_directory(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.delenv("AIRFLOW_CONN_EVENT_INGEST_DB", raising=False)
        monkeypatch.setenv("AIRFLOW_VAR_EVENT_INGEST_DATA_DIR", str(tmp_path / "data"))
        assert reads.data_dir() == tmp_path / "data"

    def test_without_the_variable_the_dags_default(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.delenv("AIRFLOW_VAR_EVENT_INGEST_DATA_DIR", raising=False)
        monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
        assert reads.data_dir() == tmp_path / "event_ingest_data"

    def test_an_unreachable_database_is_unavailable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_DB", "postgres://nobody@127.0.0.1:1/none")
        with (
            pytest.raises(reads.DatabaseUnavailable, match=r"unavailable \(OperationalError\)"),
            reads.event_db(),
        ):
            pass


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        pytest.param(
            dt.datetime(2026, 11, 20, 10, 15, 33, 120000), "2026-11-20T10:15:33.120Z", id="naive-utc"
        ),
        pytest.param("2026-11-20 10:15:33.120", "2026-11-20T10:15:33.120Z", id="sqlite-text"),
        pytest.param("2026-11-20 10:15:33", "2026-11-20T10:15:33.000Z", id="whole-seconds"),
        pytest.param(
            dt.datetime(2026, 11, 20, 11, 15, 33, 120000, tzinfo=dt.timezone(dt.timedelta(hours=1))),
            "2026-11-20T10:15:33.120Z",
            id="aware",
        ),
    ],
)
def test_times_are_iso_utc_with_milliseconds(stored: Any, shown: str) -> None:
    assert reads.iso_time(stored) == shown
