"""Tests for event_ingest.event_db: one behaviour suite, run on both backends.

Each test runs twice: on :class:`MySqlEventDb` over a fresh database of a throwaway MariaDB (reached
through connection ``event_ingest_db``, as the DAG reaches it) and on :class:`SqliteEventDb` over a file
in ``tmp_path``. What a backend wrote is read back through a separate connection, so a row counts only
once it is committed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import MySQLdb
import pytest

from event_ingest.event_db import (
    DEFAULT_SQLITE_NAME,
    EventDb,
    LoadResult,
    MySqlEventDb,
    SessionState,
    SqliteEventDb,
    event_db_for,
)
from event_ingest.event_db.base import _IN_CHUNK
from event_ingest.model import Event, Reject, Session
from event_ingest.settings import DB_CONN_ID
from include.services import MariaDbServer

SESSION_ID = "20261120T101533Z_veh042"
OTHER_ID = "20261120T120000Z_veh007"
DB_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")
PRIMARY_KEYS = {"sessions": "session_id", "events": "event_id", "ingest_rejects": "reject_id"}


def plain(value: Any) -> Any:
    """A column value as SQLite stores it: MySQL's DATETIME(3) and DATE come back as objects."""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


@dataclass
class Backend:
    """One event database under test.

    :param open: a new, not yet connected, ``EventDb`` on the test's database.
    :param query: runs a SELECT on a separate connection; rows as dicts of plain values.
    :param error: the driver's base exception.
    """

    name: str
    open: Callable[[], EventDb]
    query: Callable[[str], list[dict[str, Any]]]
    error: type[Exception]

    def rows(self, table: str) -> list[dict[str, Any]]:
        return self.query(f"SELECT * FROM {table} ORDER BY {PRIMARY_KEYS[table]}")

    def by_id(self, table: str) -> dict[str, dict[str, Any]]:
        return {row[PRIMARY_KEYS[table]]: row for row in self.rows(table)}

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        return {table: self.rows(table) for table in PRIMARY_KEYS}


def rows_of(cursor: Any) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [{n: plain(v) for n, v in zip(names, row, strict=True)} for row in cursor.fetchall()]


@pytest.fixture(params=[pytest.param("mysql", id="mysql"), pytest.param("sqlite", id="sqlite")])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backend]:
    if request.param == "mysql":
        mariadb: MariaDbServer = request.getfixturevalue("mariadb")
        database = mariadb.create_database(f"t{uuid.uuid4().hex[:12]}")
        monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_DB", mariadb.airflow_conn_uri(database))
        reader = mariadb.connect(database, charset="utf8mb4")
        reader.autocommit(True)

        def query_mysql(statement: str) -> list[dict[str, Any]]:
            cursor = reader.cursor()
            try:
                cursor.execute(statement)
                return rows_of(cursor)
            finally:
                cursor.close()

        try:
            yield Backend("mysql", lambda: MySqlEventDb(DB_CONN_ID), query_mysql, MySQLdb.Error)
        finally:
            reader.close()
            mariadb.drop_database(database)
    else:
        path = tmp_path / "events.sqlite3"

        def query_sqlite(statement: str) -> list[dict[str, Any]]:
            conn = sqlite3.connect(path)
            try:
                return rows_of(conn.execute(statement))
            finally:
                conn.close()

        yield Backend("sqlite", lambda: SqliteEventDb(path), query_sqlite, sqlite3.Error)


@pytest.fixture
def db(backend: Backend) -> Iterator[EventDb]:
    with backend.open() as database:
        yield database


def make_event(session_id: str, number: int, **fields: Any) -> Event:
    relpath = f"AudioTags/tag_{number:04d}.wav"
    event = Event(
        event_id=Event.make_id(session_id, relpath),
        session_id=session_id,
        s3_key=f"raw/2026/11/20/{session_id}/{relpath}",
        relpath=relpath,
        frame_id=183_000 + number,
        event_time=f"2026-11-20 10:21:{number % 60:02d}.500",
        time_source="report",
        duration_s=3.25,
        size_bytes=48_000 + number,
        md5=hashlib.md5(relpath.encode()).hexdigest(),
        local_path=f"/data/2026/11/20/{session_id}/{relpath}",
    )
    return replace(event, **fields)


def make_session(
    session_id: str = SESSION_ID, *, etag: str = "etag-1", tags: int = 2, **fields: Any
) -> Session:
    session = Session(
        session_id=session_id,
        vehicle_id="veh042",
        driver_id="drv-17",
        started_at="2026-11-20 10:15:33.120",
        ended_at="2026-11-20 11:02:10.004",
        session_date="2026-11-20",
        software_version="4.12.0",
        report_key=f"raw/2026/11/20/{session_id}/{session_id}_logged_Upload_Report.json",
        report_etag=etag,
        events=[make_event(session_id, n) for n in range(1, tags + 1)],
    )
    return replace(session, **fields)


def let_the_clock_tick() -> None:
    """Times are stored to the millisecond: wait long enough for "now" to change."""
    time.sleep(0.01)


class TestConnect:
    def test_creates_the_tables(self, backend: Backend, db: EventDb) -> None:
        for table in PRIMARY_KEYS:
            assert backend.rows(table) == []

    def test_connecting_again_keeps_tables_and_rows(self, backend: Backend) -> None:
        with backend.open() as first:
            first.load_session(make_session())
            # The DDL runs on every connect: over existing tables, and while another connection is open.
            with backend.open() as second:
                assert second.session_exists(SESSION_ID)
            before = backend.snapshot()
        with backend.open() as third:
            assert third.session_exists(SESSION_ID)
        assert backend.snapshot() == before

    def test_use_before_connect_says_so(self, backend: Backend) -> None:
        with pytest.raises(RuntimeError, match="not connected"):
            backend.open().session_exists(SESSION_ID)


class TestSessionExists:
    def test_is_true_once_the_session_is_loaded(self, db: EventDb) -> None:
        assert not db.session_exists(SESSION_ID)
        db.load_session(make_session())
        assert db.session_exists(SESSION_ID)
        assert not db.session_exists(OTHER_ID)

    def test_ids_differing_only_in_case_are_different_sessions(self, backend: Backend, db: EventDb) -> None:
        db.load_session(make_session())
        assert not db.session_exists(SESSION_ID.upper())
        db.load_session(make_session(SESSION_ID.upper()))
        assert [row["session_id"] for row in backend.rows("sessions")] == sorted(
            [SESSION_ID, SESSION_ID.upper()]
        )


class TestSessionStates:
    def test_gives_report_etag_and_open_reject_count_of_the_known_sessions(self, db: EventDb) -> None:
        db.load_session(make_session(SESSION_ID, etag="etag-a"))
        db.load_session(make_session(OTHER_ID, etag="etag-b"))
        resolved = Reject(f"raw/{OTHER_ID}/AudioTags/tag_0009.wav", OTHER_ID, "audio tag: md5 mismatch")
        still_open = Reject(f"raw/{OTHER_ID}/AudioTags/tag_0010.wav", OTHER_ID, "audio tag: size mismatch")
        db.record_rejects([resolved, still_open], "run-1")
        db.resolve_rejects([OTHER_ID], still_rejected=[still_open.reject_id])

        states = db.session_states([SESSION_ID, OTHER_ID, "20261120T000000Z_unknown", SESSION_ID])

        assert states == {
            SESSION_ID: SessionState(report_etag="etag-a", open_rejects=0),
            OTHER_ID: SessionState(report_etag="etag-b", open_rejects=1),
        }

    def test_no_ids_no_states(self, db: EventDb) -> None:
        assert db.session_states([]) == {}


class TestExistingEventIds:
    def test_finds_the_known_ids_among_more_than_a_chunk(self, db: EventDb) -> None:
        session = make_session(tags=1200)
        db.load_session(session)
        known = [e.event_id for e in session.events]
        unknown = [make_event(OTHER_ID, n).event_id for n in range(1, 301)]
        asked = [event_id for pair in zip(known, unknown, strict=False) for event_id in pair]
        asked += known[len(unknown) :]
        assert len(set(asked)) > 2 * _IN_CHUNK

        assert db.existing_event_ids(asked) == set(known)

    def test_no_ids_none_known(self, db: EventDb) -> None:
        db.load_session(make_session())
        assert db.existing_event_ids([]) == set()


class TestEventIdsOfSessions:
    def test_gives_every_known_event_of_the_sessions_asked_for(self, db: EventDb) -> None:
        many = make_session(SESSION_ID, tags=700)
        few = make_session(OTHER_ID, tags=2)
        db.load_sessions([many, few, make_session("20261120T130000Z_veh009", tags=3)])
        asked = [SESSION_ID, OTHER_ID, "20261120T000000Z_unknown", SESSION_ID]

        assert db.event_ids_of_sessions(asked) == {e.event_id for e in many.events + few.events}

    def test_no_sessions_no_ids(self, db: EventDb) -> None:
        db.load_session(make_session())
        assert db.event_ids_of_sessions([]) == set()


class TestLoadSession:
    def test_writes_the_session_and_its_events(self, backend: Backend, db: EventDb) -> None:
        session = make_session(tags=3)
        session.events[1].event_time = None
        session.events[1].time_source = "unresolved"
        session.events[2].time_source = "display_log"
        session.events[2].md5 = None

        db.load_session(session)

        (row,) = backend.rows("sessions")
        assert row == {
            "session_id": SESSION_ID,
            "vehicle_id": "veh042",
            "driver_id": "drv-17",
            "started_at": "2026-11-20 10:15:33.120",
            "ended_at": "2026-11-20 11:02:10.004",
            "session_date": "2026-11-20",
            "software_version": "4.12.0",
            "report_key": session.report_key,
            "report_etag": "etag-1",
            "event_count": 3,
            "ingested_at": row["ingested_at"],
            "updated_at": row["ingested_at"],
        }
        assert DB_TIME.match(row["ingested_at"])
        events = backend.by_id("events")
        assert set(events) == {e.event_id for e in session.events}
        for event in session.events:
            assert events[event.event_id] == {
                "event_id": event.event_id,
                "session_id": SESSION_ID,
                "event_type": "audio_tag",
                "s3_key": event.s3_key,
                "frame_id": event.frame_id,
                "event_time": event.event_time,
                "time_source": event.time_source,
                "duration_s": event.duration_s,
                "size_bytes": event.size_bytes,
                "md5": event.md5,
                "local_path": event.local_path,
                "ingested_at": row["ingested_at"],
            }

    def test_a_session_without_events_counts_none(self, backend: Backend, db: EventDb) -> None:
        db.load_session(make_session(tags=0))
        assert [row["event_count"] for row in backend.rows("sessions")] == [0]
        assert backend.rows("events") == []

    def test_session_and_events_are_written_in_one_transaction(self, backend: Backend, db: EventDb) -> None:
        broken = make_session(tags=3)
        broken.events[2].size_bytes = None  # NOT NULL: the database refuses the last event

        with pytest.raises(backend.error):
            db.load_session(broken)

        assert backend.snapshot() == {"sessions": [], "events": [], "ingest_rejects": []}
        db.load_session(make_session(tags=3))
        assert [row["event_count"] for row in backend.rows("sessions")] == [3]

    def test_loading_the_same_session_again_changes_no_row(self, backend: Backend, db: EventDb) -> None:
        db.load_session(make_session(tags=3))
        before = backend.snapshot()
        let_the_clock_tick()

        db.load_session(make_session(tags=3))

        assert backend.snapshot() == before

    @pytest.mark.parametrize(
        "given",
        [
            pytest.param("all", id="all-events-again"),
            pytest.param("new", id="only-the-new-event"),
        ],
    )
    def test_reupload_adds_only_the_new_event_and_updates_the_session(
        self, backend: Backend, db: EventDb, given: str
    ) -> None:
        db.load_session(make_session(tags=2))
        before = backend.snapshot()
        let_the_clock_tick()
        reupload = make_session(tags=3, etag="etag-2", ended_at="2026-11-20 11:30:00.250")
        if given == "new":
            reupload.events = reupload.events[2:]

        db.load_session(reupload)

        (old_session,) = before["sessions"]
        (session,) = backend.rows("sessions")
        assert session == {
            **old_session,
            "report_etag": "etag-2",
            "ended_at": "2026-11-20 11:30:00.250",
            "event_count": 3,
            "updated_at": session["updated_at"],
        }
        assert session["updated_at"] > old_session["updated_at"]
        events = backend.by_id("events")
        for old in before["events"]:
            assert events.pop(old["event_id"]) == old
        (new,) = events.values()
        assert new["s3_key"] == make_event(SESSION_ID, 3).s3_key
        assert new["ingested_at"] == session["updated_at"]

    def test_says_whether_the_session_changed_and_how_many_events_are_new(self, db: EventDb) -> None:
        assert db.load_session(make_session(tags=2)) == (True, 2)
        assert db.load_session(make_session(tags=2)) == (False, 0)
        assert db.load_session(make_session(tags=3)) == (False, 1)
        assert db.load_session(make_session(tags=4, etag="etag-2")) == (True, 1)
        assert db.load_session(make_session(tags=4, etag="etag-2")) == (False, 0)

    def test_load_sessions_counts_loaded_and_unchanged_sessions(self, backend: Backend, db: EventDb) -> None:
        db.load_session(make_session(SESSION_ID, tags=2))

        result = db.load_sessions(
            [make_session(SESSION_ID, tags=2), make_session(OTHER_ID, tags=3), make_session("s3", tags=0)]
        )

        assert result == LoadResult(sessions=2, events=3, unchanged=1)
        assert {row["session_id"]: row["event_count"] for row in backend.rows("sessions")} == {
            SESSION_ID: 2,
            OTHER_ID: 3,
            "s3": 0,
        }


REJECT = Reject(f"raw/2026/11/20/{SESSION_ID}/AudioTags/tag_0003.wav", SESSION_ID, "audio tag: md5 mismatch")


class TestRecordRejects:
    def test_records_reason_run_and_when_it_was_seen(self, backend: Backend, db: EventDb) -> None:
        db.record_rejects([REJECT], "manual__2026-11-21")
        (row,) = backend.rows("ingest_rejects")
        assert row == {
            "reject_id": REJECT.reject_id,
            "object_key": REJECT.object_key,
            "session_id": SESSION_ID,
            "reason": "audio tag: md5 mismatch",
            "first_seen_at": row["first_seen_at"],
            "last_seen_at": row["first_seen_at"],
            "dag_run_id": "manual__2026-11-21",
            "resolved_at": None,
        }
        assert DB_TIME.match(row["first_seen_at"])

    def test_seen_again_keeps_first_seen_and_updates_last_seen_reason_and_run(
        self, backend: Backend, db: EventDb
    ) -> None:
        db.record_rejects([REJECT], "run-1")
        (first,) = backend.rows("ingest_rejects")
        let_the_clock_tick()

        db.record_rejects([replace(REJECT, reason="audio tag: size mismatch")], "run-2")

        (again,) = backend.rows("ingest_rejects")
        assert again["first_seen_at"] == first["first_seen_at"]
        assert again["last_seen_at"] > first["last_seen_at"]
        assert (again["reason"], again["dag_run_id"]) == ("audio tag: size mismatch", "run-2")

    def test_a_resolved_reject_seen_again_is_open_again(self, backend: Backend, db: EventDb) -> None:
        db.record_rejects([REJECT], "run-1")
        db.resolve_rejects([SESSION_ID], still_rejected=[])
        assert backend.rows("ingest_rejects")[0]["resolved_at"] is not None

        db.record_rejects([REJECT], "run-2")

        assert backend.rows("ingest_rejects")[0]["resolved_at"] is None

    def test_keeps_rejects_without_a_session_and_cuts_long_reasons(
        self, backend: Backend, db: EventDb
    ) -> None:
        orphan = Reject("raw/2026/11/20/stray.json", None, "x" * 5000)
        db.record_rejects([orphan, orphan], None)
        (row,) = backend.rows("ingest_rejects")
        assert row["session_id"] is None
        assert row["dag_run_id"] is None
        assert row["reason"] == "x" * 1024

    def test_nothing_to_record_writes_nothing(self, backend: Backend, db: EventDb) -> None:
        db.record_rejects([], "run-1")
        assert backend.rows("ingest_rejects") == []


class TestResolveRejects:
    def test_resolves_open_rejects_of_loaded_sessions_except_those_still_rejected(
        self, backend: Backend, db: EventDb
    ) -> None:
        fixed = Reject(f"raw/{SESSION_ID}/AudioTags/tag_0001.wav", SESSION_ID, "audio tag: size mismatch")
        still = Reject(f"raw/{SESSION_ID}/AudioTags/tag_0002.wav", SESSION_ID, "audio tag: md5 mismatch")
        elsewhere = Reject(f"raw/{OTHER_ID}/AudioTags/tag_0001.wav", OTHER_ID, "audio tag: md5 mismatch")
        orphan = Reject("raw/stray.json", None, "not a session")
        db.record_rejects([fixed, still, elsewhere, orphan], "run-1")

        db.resolve_rejects([SESSION_ID], still_rejected=[still.reject_id])

        resolved = {rid: row["resolved_at"] for rid, row in backend.by_id("ingest_rejects").items()}
        assert DB_TIME.match(resolved.pop(fixed.reject_id) or "")
        assert resolved == {still.reject_id: None, elsewhere.reject_id: None, orphan.reject_id: None}

    def test_resolving_again_keeps_the_first_resolution_time(self, backend: Backend, db: EventDb) -> None:
        db.record_rejects([REJECT], "run-1")
        db.resolve_rejects([SESSION_ID], still_rejected=[])
        before = backend.rows("ingest_rejects")
        let_the_clock_tick()

        db.resolve_rejects([SESSION_ID], still_rejected=[])

        assert backend.rows("ingest_rejects") == before

    def test_no_loaded_sessions_resolve_nothing(self, backend: Backend, db: EventDb) -> None:
        db.record_rejects([REJECT], "run-1")
        db.resolve_rejects([], still_rejected=[])
        assert backend.rows("ingest_rejects")[0]["resolved_at"] is None


class TestStoredValues:
    def test_unicode_quotes_and_sql_are_stored_literally(self, backend: Backend, db: EventDb) -> None:
        session_id = "20261120T101533Z_vé'h😀"
        tricky = 'Zoë "Ω" 🚗 it\'s %s ? ; DROP TABLE sessions; --'
        session = make_session(
            session_id,
            vehicle_id="veh'); DELETE FROM events; --",
            driver_id=tricky,
            software_version="4.12.0-ünï'\"",
            report_key=f"raw/Ärger 'x' %s?/{session_id}/{session_id}_logged_Upload_Report.json",
            report_etag='"quoted-etag"',
            tags=1,
        )
        event = session.events[0]
        event.s3_key = f"raw/Ärger 'x' %s?/{session_id}/AudioTags/tag 'ü' 😀.wav"
        event.local_path = f"/data/{session_id}/AudioTags/tag 'ü' 😀.wav"
        reject = Reject(event.s3_key + "?x=1", session_id, tricky)

        db.load_session(session)
        db.record_rejects([reject], "manual__'run' 😀")

        (row,) = backend.rows("sessions")
        assert (row["session_id"], row["vehicle_id"], row["driver_id"]) == (
            session_id,
            session.vehicle_id,
            tricky,
        )
        assert (row["software_version"], row["report_key"], row["report_etag"]) == (
            session.software_version,
            session.report_key,
            '"quoted-etag"',
        )
        (stored_event,) = backend.rows("events")
        assert (stored_event["s3_key"], stored_event["local_path"]) == (event.s3_key, event.local_path)
        (stored_reject,) = backend.rows("ingest_rejects")
        assert (stored_reject["object_key"], stored_reject["reason"], stored_reject["dag_run_id"]) == (
            reject.object_key,
            tricky,
            "manual__'run' 😀",
        )
        assert db.session_exists(session_id)
        assert db.existing_event_ids([event.event_id]) == {event.event_id}

    def test_times_keep_their_milliseconds(self, backend: Backend, db: EventDb) -> None:
        session = make_session(
            started_at="2026-11-20 10:15:33.001", ended_at="2026-11-20 23:59:59.999", tags=2
        )
        session.events[0].event_time = "2026-11-20 10:21:07.500"
        session.events[1].event_time = "2026-11-20 10:21:07.010"
        db.load_session(session)
        (row,) = backend.rows("sessions")
        assert (row["started_at"], row["ended_at"]) == ("2026-11-20 10:15:33.001", "2026-11-20 23:59:59.999")
        assert sorted(e["event_time"] for e in backend.rows("events")) == [
            "2026-11-20 10:21:07.010",
            "2026-11-20 10:21:07.500",
        ]


class TestEventDbFor:
    def test_mysql_connection_gives_mysql(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_DB", "mysql://root@127.0.0.1:3306/events")
        db = event_db_for(DB_CONN_ID, tmp_path)
        assert isinstance(db, MySqlEventDb)
        assert db.mysql_conn_id == DB_CONN_ID

    def test_sqlite_connection_gives_sqlite_at_its_host_path(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        path = tmp_path / "elsewhere" / "events.sqlite3"
        monkeypatch.setenv(
            "AIRFLOW_CONN_EVENT_INGEST_DB", json.dumps({"conn_type": "sqlite", "host": str(path)})
        )
        db = event_db_for(DB_CONN_ID, tmp_path / "data")
        assert isinstance(db, SqliteEventDb)
        assert db.path == path
        with db:
            db.load_session(make_session())
        assert path.is_file()
        assert not (tmp_path / "data").exists()

    def test_sqlite_connection_in_uri_form_gives_sqlite_at_its_path(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        path = tmp_path / "elsewhere" / "events.sqlite3"
        monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_DB", f"sqlite://{path}")
        db = event_db_for(DB_CONN_ID, tmp_path / "data")
        assert isinstance(db, SqliteEventDb)
        assert db.path == path

    def test_no_connection_gives_sqlite_in_the_data_dir(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.delenv("AIRFLOW_CONN_EVENT_INGEST_DB", raising=False)
        db = event_db_for(DB_CONN_ID, tmp_path / "data")
        assert isinstance(db, SqliteEventDb)
        assert db.path == tmp_path / "data" / DEFAULT_SQLITE_NAME
        with db:
            assert not db.session_exists(SESSION_ID)
        assert db.path.is_file()

    def test_another_connection_type_is_refused(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_DB", "postgres://user:secret@127.0.0.1:5432/events")
        with pytest.raises(ValueError, match="type 'postgres'; event_ingest supports mysql and sqlite"):
            event_db_for(DB_CONN_ID, tmp_path)
