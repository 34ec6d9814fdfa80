"""Tests for event_ingest.event_db: one behaviour suite, run on the three backends.

Each test runs on :class:`MySqlEventDb` over a fresh database of a throwaway MariaDB, on
:class:`PostgresEventDb` over a fresh database of the machine's PostgreSQL (both reached through
connection ``event_ingest_db``, as the DAG reaches them), and on :class:`SqliteEventDb` over a file in
``tmp_path``. What a backend wrote is read back through a separate connection, so a row counts only
once it is committed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import sqlite3
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from event_ingest.event_db import DEFAULT_SQLITE_NAME, EventDb, event_db_for, schema
from event_ingest.event_db.mysql import MySqlEventDb
from event_ingest.event_db.postgres import PostgresEventDb
from event_ingest.event_db.sqlite import SqliteEventDb
from event_ingest.model import Batch, Deferral, Event, Reject, Session, stable_id
from event_ingest.settings import DB_CONN_ID
from tools.services import LocalPostgres, MariaDbServer

SESSION_ID = "20261120T101533Z_veh042"
OTHER_ID = "20261120T120000Z_veh007"
DAY = "2026-11-20"
DB_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")
PRIMARY_KEYS = {
    "sessions": "session_id",
    "events": "event_id",
    "ingest_rejects": "reject_id",
    "ingest_deferrals": "deferral_id",
    "ingest_runs": "dag_run_id",
    "ingest_days": "day",
}
#: Columns a backend adds for its own needs, which the loader never writes.
BACKEND_ONLY = {"mysql": {"events": {"s3_key_hash"}}}


def plain(value: Any) -> Any:
    """A column value as SQLite stores it: DATETIME(3)/TIMESTAMP(3) and DATE come back as objects."""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return value


@dataclass
class Backend:
    """One event database under test.

    :param open: a new, not yet connected, ``EventDb`` on the test's database.
    :param query: runs a statement on a separate connection; rows as dicts of plain values.
    """

    name: str
    open: Callable[[], EventDb]
    query: Callable[[str], list[dict[str, Any]]]

    def rows(self, table: str) -> list[dict[str, Any]]:
        return self.query(f"SELECT * FROM {table} ORDER BY {PRIMARY_KEYS[table]}")

    def by_id(self, table: str) -> dict[str, dict[str, Any]]:
        return {row[PRIMARY_KEYS[table]]: row for row in self.rows(table)}

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        return {table: self.rows(table) for table in PRIMARY_KEYS}

    def columns(self, table: str) -> set[str]:
        if self.name == "sqlite":
            return {row["name"] for row in self.query(f"PRAGMA table_info({table})")}
        return {
            row["column_name"].lower() if "column_name" in row else row["COLUMN_NAME"].lower()
            for row in self.query(
                f"SELECT column_name FROM information_schema.columns WHERE table_name = '{table}'"
                + (" AND table_schema = DATABASE()" if self.name == "mysql" else "")
            )
        }


def rows_of(cursor: Any) -> list[dict[str, Any]]:
    if cursor.description is None:
        return []
    names = [d[0] for d in cursor.description]
    return [{n: plain(v) for n, v in zip(names, row, strict=True)} for row in cursor.fetchall()]


@pytest.fixture(params=["mysql", "postgres", "sqlite"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backend]:
    name = f"t{uuid.uuid4().hex[:12]}"
    if request.param == "mysql":
        mariadb: MariaDbServer = request.getfixturevalue("mariadb")
        mariadb.create_database(name)
        monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_DB", mariadb.airflow_conn_uri(name))
        reader = mariadb.connect(name, charset="utf8mb4")
        reader.autocommit(True)

        def query_mysql(statement: str) -> list[dict[str, Any]]:
            cursor = reader.cursor()
            try:
                cursor.execute(statement)
                return rows_of(cursor)
            finally:
                cursor.close()

        try:
            yield Backend("mysql", lambda: event_db_for(DB_CONN_ID, tmp_path), query_mysql)
        finally:
            reader.close()
            mariadb.drop_database(name)
    elif request.param == "postgres":
        postgres: LocalPostgres = request.getfixturevalue("postgres")
        postgres.create_database(name)
        monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_DB", postgres.airflow_conn_uri(name))
        reader = postgres.connect(name)

        def query_postgres(statement: str) -> list[dict[str, Any]]:
            with reader.cursor() as cursor:
                cursor.execute(statement)
                return rows_of(cursor)

        try:
            yield Backend("postgres", lambda: event_db_for(DB_CONN_ID, tmp_path), query_postgres)
        finally:
            reader.close()
            postgres.drop_database(name)
    else:
        path = tmp_path / "events.sqlite3"

        def query_sqlite(statement: str) -> list[dict[str, Any]]:
            conn = sqlite3.connect(path)
            try:
                return rows_of(conn.execute(statement))
            finally:
                conn.close()

        yield Backend("sqlite", lambda: SqliteEventDb.at(path), query_sqlite)


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
        etag=f'"etag-{number}"',
        local_path=f"/data/2026/11/20/{session_id}/{relpath}",
    )
    return replace(event, **fields)


def make_session(
    session_id: str = SESSION_ID, *, etag: str = "etag-1", tags: int = 2, **fields: Any
) -> Session:
    day = fields.pop("session_date", DAY)
    session = Session(
        session_id=session_id,
        vehicle_id="veh042",
        driver_id="drv-17",
        started_at=f"{day} 10:15:33.120",
        ended_at=f"{day} 11:02:10.004",
        session_date=day,
        software_version="4.12.0",
        report_key=f"raw/{day.replace('-', '/')}/{session_id}/{session_id}_logged_Upload_Report.json",
        report_etag=etag,
        tags_digest=stable_id(session_id, etag),
        events=[make_event(session_id, n) for n in range(1, tags + 1)],
    )
    return replace(session, **fields)


def batch_of(
    *sessions: Session, rejects: tuple[Reject, ...] = (), deferrals: tuple[Deferral, ...] = ()
) -> Batch:
    """A batch as fetch/download hand it to load: every session in it was processed."""
    return Batch(
        index=0,
        sessions=list(sessions),
        rejects=list(rejects),
        deferrals=list(deferrals),
        processed=[s.session_id for s in sessions],
        discovered=len(sessions),
    )


def reject_of(session: Session, what: str = "AudioTags/bad.wav", reason: str = "audio tag: bad") -> Reject:
    return Reject(
        session.report_key.rsplit("/", 1)[0] + "/" + what, session.session_id, reason, session.session_date
    )


def let_the_clock_tick() -> None:
    """Times are stored to the millisecond: wait long enough for "now" to change."""
    time.sleep(0.01)


class TestConnect:
    def test_creates_every_table_with_the_columns_the_loader_writes(
        self, backend: Backend, db: EventDb
    ) -> None:
        for table in schema.ALL_TABLES:
            extra = BACKEND_ONLY.get(backend.name, {}).get(table.name, set())
            assert backend.columns(table.name) == {*table.columns, *extra}, table.name
            assert backend.rows(table.name) == []

    def test_connecting_again_keeps_tables_and_rows(self, backend: Backend, db: EventDb) -> None:
        db.load_batch(batch_of(make_session()), "run-1")
        before = backend.snapshot()
        with backend.open() as again:
            assert again.session_exists(SESSION_ID)
        assert backend.snapshot() == before

    def test_use_before_connect_says_so(self, backend: Backend) -> None:
        with pytest.raises(RuntimeError, match="not connected"):
            backend.open().session_states([SESSION_ID])

    def test_each_backend_wraps_its_providers_hook(self, backend: Backend, db: EventDb) -> None:
        expected = {"mysql": "MySqlHook", "postgres": "PostgresHook", "sqlite": "SqliteHook"}[backend.name]
        assert expected in [cls.__name__ for cls in type(db.hook).__mro__]
        assert db.mark == {"mysql": "%s", "postgres": "%s", "sqlite": "?"}[backend.name]


class TestLoadBatch:
    def test_writes_sessions_events_counts_and_days(self, backend: Backend, db: EventDb) -> None:
        session = make_session(tags=3)
        other = make_session(OTHER_ID, tags=1, session_date="2026-11-21")

        result = db.load_batch(batch_of(session, other), "run-1")

        assert (result.sessions, result.events, result.unchanged, result.refused) == (2, 4, 0, 0)
        sessions = backend.by_id("sessions")
        row = sessions[SESSION_ID]
        assert (row["vehicle_id"], row["driver_id"], row["software_version"]) == (
            "veh042",
            "drv-17",
            "4.12.0",
        )
        assert (row["started_at"], row["ended_at"], row["session_date"]) == (
            "2026-11-20 10:15:33.120",
            "2026-11-20 11:02:10.004",
            DAY,
        )
        assert (row["report_key"], row["report_etag"], row["tags_digest"]) == (
            session.report_key,
            "etag-1",
            session.tags_digest,
        )
        assert (row["event_count"], row["file_types"]) == (3, "audio_tag")
        assert DB_TIME.match(row["ingested_at"])
        assert row["ingested_at"] == row["updated_at"]
        assert sessions[OTHER_ID]["event_count"] == 1
        events = backend.by_id("events")
        assert set(events) == {e.event_id for e in session.events + other.events}
        first = events[session.events[0].event_id]
        want = session.events[0]
        assert {k: first[k] for k in ("session_id", "event_type", "s3_key", "frame_id", "event_time")} == {
            "session_id": SESSION_ID,
            "event_type": "audio_tag",
            "s3_key": want.s3_key,
            "frame_id": want.frame_id,
            "event_time": want.event_time,
        }
        assert (first["time_source"], first["duration_s"], first["size_bytes"]) == (
            "report",
            3.25,
            want.size_bytes,
        )
        assert (first["md5"], first["etag"], first["local_path"]) == (
            want.md5,
            want.etag.strip('"'),
            want.local_path,
        )
        assert backend.rows("ingest_days") == [
            {"day": DAY, "sessions": 1, "events": 3},
            {"day": "2026-11-21", "sessions": 1, "events": 1},
        ]

    def test_loading_the_same_batch_again_changes_no_row(self, backend: Backend, db: EventDb) -> None:
        db.load_batch(batch_of(make_session(), make_session(OTHER_ID)), "run-1")
        before = backend.snapshot()
        let_the_clock_tick()

        result = db.load_batch(batch_of(make_session(), make_session(OTHER_ID)), "run-2")

        assert (result.sessions, result.events, result.unchanged) == (0, 0, 2)
        assert backend.snapshot() == before

    def test_reupload_adds_only_the_new_event_and_updates_the_session(
        self, backend: Backend, db: EventDb
    ) -> None:
        db.load_batch(batch_of(make_session(tags=2)), "run-1")
        (before,) = backend.rows("sessions")
        old_events = backend.by_id("events")
        let_the_clock_tick()
        reupload = make_session(etag="etag-2", tags=3, driver_id="drv-99")
        reupload.events = reupload.events[2:]  # fetch keeps only the events the database lacks

        result = db.load_batch(batch_of(reupload), "run-2")

        assert (result.sessions, result.events) == (1, 1)
        (after,) = backend.rows("sessions")
        assert (after["report_etag"], after["driver_id"], after["event_count"]) == ("etag-2", "drv-99", 3)
        assert after["ingested_at"] == before["ingested_at"] < after["updated_at"]
        events = backend.by_id("events")
        assert {k: events[k] for k in old_events} == old_events
        assert backend.rows("ingest_days") == [{"day": DAY, "sessions": 1, "events": 3}]

    def test_a_run_downloading_fewer_kinds_of_file_keeps_what_an_earlier_run_got(
        self, backend: Backend, db: EventDb
    ) -> None:
        db.load_batch(batch_of(make_session(file_types=["audio_tag", "raw"])), "run-1")
        db.load_batch(batch_of(make_session(etag="etag-2", tags=0)), "run-2")
        (row,) = backend.rows("sessions")
        assert (row["report_etag"], row["file_types"]) == ("etag-2", "audio_tag,raw")

    def test_a_session_the_database_refuses_is_rejected_and_the_others_load(
        self, backend: Backend, db: EventDb
    ) -> None:
        good = make_session(tags=2)
        bad = make_session(OTHER_ID, tags=1)
        bad.events[0].size_bytes = 2**63  # beyond BIGINT on every backend

        result = db.load_batch(batch_of(good, bad), "run-1")

        assert (result.sessions, result.events, result.refused) == (1, 2, 1)
        assert set(backend.by_id("sessions")) == {SESSION_ID}
        (reject,) = backend.rows("ingest_rejects")
        assert (reject["object_key"], reject["session_id"], reject["session_date"]) == (
            bad.report_key,
            OTHER_ID,
            DAY,
        )
        assert reject["reason"].startswith("database: ")
        assert backend.rows("ingest_days") == [{"day": DAY, "sessions": 1, "events": 2}]

    def test_a_batch_costs_a_few_dozen_round_trips_whatever_its_size(
        self, backend: Backend, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        sessions = [make_session(f"s{n:04d}", tags=5) for n in range(500)]
        rejects = tuple(reject_of(s) for s in sessions[:50])
        deferrals = tuple(
            Deferral(f"d{n}", DAY, f"raw/2026/11/20/d{n}/r.json", "uploading") for n in range(20)
        )
        db, (conn,) = counted_db(backend, monkeypatch)
        try:
            sent = conn.sent
            db.session_states([s.session_id for s in sessions])
            db.known_events([s.session_id for s in sessions])
            reads = conn.sent - sent
            sent = conn.sent
            db.load_batch(batch_of(*sessions, rejects=rejects, deferrals=deferrals), "run-1")
            first = conn.sent - sent
            sent = conn.sent
            db.load_batch(batch_of(*sessions, rejects=rejects), "run-2")
            again = conn.sent - sent
        finally:
            db.close()

        assert len(backend.rows("events")) == 2500
        assert reads <= 6, reads
        assert first <= 50, first
        assert again <= 50, again

    def test_two_writers_of_the_same_batch_at_once_leave_one_copy(
        self, backend: Backend, db: EventDb
    ) -> None:
        sessions = [make_session(f"s{n:03d}", tags=3) for n in range(40)]
        errors: list[BaseException] = []
        start = threading.Barrier(2)

        def write() -> None:
            try:
                with backend.open() as other:
                    start.wait()
                    other.load_batch(batch_of(*[replace(s) for s in sessions]), "run-x")
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=write) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert errors == []
        assert len(backend.rows("sessions")) == 40
        assert Counter(e["session_id"] for e in backend.rows("events")) == {s.session_id: 3 for s in sessions}
        assert backend.rows("ingest_days") == [{"day": DAY, "sessions": 40, "events": 120}]


class Counted:
    """A DB-API connection that counts what it sends: each statement and each commit is a round trip."""

    def __init__(self, conn: Any) -> None:
        object.__setattr__(self, "_conn", conn)
        object.__setattr__(self, "sent", 0)

    def cursor(self) -> Any:
        counted = self
        cursor = self._conn.cursor()

        class Cursor:
            def execute(self, *args: Any) -> Any:
                object.__setattr__(counted, "sent", counted.sent + 1)
                return cursor.execute(*args)

            def __enter__(self) -> Cursor:
                return self

            def __exit__(self, *exc: object) -> None:
                cursor.close()

            def __getattr__(self, name: str) -> Any:
                return getattr(cursor, name)

        return Cursor()

    def commit(self) -> None:
        object.__setattr__(self, "sent", self.sent + 1)
        self._conn.commit()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._conn, name, value)


def counted_db(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> tuple[EventDb, list[Counted]]:
    """A connected ``EventDb`` of ``backend`` whose hook hands out :class:`Counted` connections."""
    db = backend.open()
    made: list[Counted] = []
    get_conn = db.hook.get_conn

    def counting() -> Counted:
        made.append(Counted(get_conn()))
        return made[-1]

    monkeypatch.setattr(db.hook, "get_conn", counting)
    db.connect()
    return db, made


class TestRejects:
    def test_records_reason_run_day_and_when_it_was_seen(self, backend: Backend, db: EventDb) -> None:
        session = make_session()
        reject = reject_of(session)

        db.load_batch(batch_of(session, rejects=(reject,)), "run-1")

        (row,) = backend.rows("ingest_rejects")
        assert (row["reject_id"], row["object_key"], row["session_id"]) == (
            reject.reject_id,
            reject.object_key,
            SESSION_ID,
        )
        assert (row["session_key"], row["session_date"], row["reason"]) == (
            schema.session_key(SESSION_ID),
            DAY,
            "audio tag: bad",
        )
        assert row["dag_run_id"] == "run-1"
        assert row["resolved_at"] is None
        assert DB_TIME.match(row["first_seen_at"])
        assert row["first_seen_at"] == row["last_seen_at"]

    def test_seen_again_keeps_first_seen_and_refreshes_the_rest(self, backend: Backend, db: EventDb) -> None:
        session = make_session()
        db.load_batch(batch_of(session, rejects=(reject_of(session),)), "run-1")
        (before,) = backend.rows("ingest_rejects")
        let_the_clock_tick()

        db.load_batch(batch_of(session, rejects=(reject_of(session, reason="audio tag: worse"),)), "run-2")

        (after,) = backend.rows("ingest_rejects")
        assert after["first_seen_at"] == before["first_seen_at"] < after["last_seen_at"]
        assert (after["reason"], after["dag_run_id"]) == ("audio tag: worse", "run-2")

    def test_a_processed_session_resolves_what_it_no_longer_raises(
        self, backend: Backend, db: EventDb
    ) -> None:
        session = make_session()
        first, second = reject_of(session, "AudioTags/a.wav"), reject_of(session, "AudioTags/b.wav")
        db.load_batch(batch_of(session, rejects=(first, second)), "run-1")

        db.load_batch(batch_of(session, rejects=(second,)), "run-2")

        rows = backend.by_id("ingest_rejects")
        assert rows[first.reject_id]["resolved_at"] is not None
        assert rows[second.reject_id]["resolved_at"] is None
        assert db.session_states([SESSION_ID])[SESSION_ID].open_rejects == 1

    def test_a_resolved_reject_seen_again_is_open_again(self, backend: Backend, db: EventDb) -> None:
        session = make_session()
        reject = reject_of(session)
        db.load_batch(batch_of(session, rejects=(reject,)), "run-1")
        db.load_batch(batch_of(session), "run-2")
        db.load_batch(batch_of(session, rejects=(reject,)), "run-3")
        (row,) = backend.rows("ingest_rejects")
        assert row["resolved_at"] is None

    def test_a_later_folders_reject_is_not_resolved_by_the_session_and_does_not_block_its_skip(
        self, backend: Backend, db: EventDb
    ) -> None:
        session = make_session()
        later = Reject(
            f"raw/2026/11/21/{SESSION_ID}/{SESSION_ID}_logged_Upload_Report.json",
            SESSION_ID,
            "report: session id already found under 2026-11-20",
            "2026-11-21",
        )
        db.load_batch(Batch(index=0, rejects=[later]), "run-1")

        db.load_batch(batch_of(session), "run-2")

        (row,) = backend.rows("ingest_rejects")
        assert row["resolved_at"] is None
        assert db.session_states([SESSION_ID])[SESSION_ID].open_rejects == 0

    def test_values_are_stored_whole(self, backend: Backend, db: EventDb) -> None:
        long_id = "s" * 493
        key = f"{'p' * 400}/2026/11/20/{long_id}/{long_id}_logged_Upload_Report.json#files[12]"
        reason = "report: " + "r" * 5000
        db.load_batch(Batch(index=0, rejects=[Reject(key, long_id, reason, DAY)]), "run-1")
        (row,) = backend.rows("ingest_rejects")
        assert (row["object_key"], row["session_id"], row["reason"]) == (key, long_id, reason)

    def test_names_no_column_can_hold_are_stored_escaped_and_matched_by_hash(
        self, backend: Backend, db: EventDb
    ) -> None:
        odd = "a\x00b\\c"
        reject = Reject(f"2026/11/20/{odd}/x.json", odd, "report: session id holds U+0000", DAY)
        db.load_batch(Batch(index=0, rejects=[reject]), "run-1")
        (row,) = backend.rows("ingest_rejects")
        assert (row["object_key"], row["session_id"]) == ("2026/11/20/a\\x00b\\\\c/x.json", "a\\x00b\\\\c")
        assert (row["reject_id"], row["session_key"]) == (reject.reject_id, schema.session_key(odd))


class TestDeferrals:
    def test_recorded_refreshed_then_cleared_when_the_session_loads(
        self, backend: Backend, db: EventDb
    ) -> None:
        session = make_session()
        deferral = Deferral(SESSION_ID, DAY, session.report_key, "upload status is 'in_progress'")
        db.load_batch(Batch(index=0, deferrals=[deferral]), "run-1")
        (first,) = backend.rows("ingest_deferrals")
        let_the_clock_tick()
        db.load_batch(Batch(index=0, deferrals=[deferral]), "run-2")
        (again,) = backend.rows("ingest_deferrals")
        assert (again["session_id"], again["session_date"], again["report_key"]) == (
            SESSION_ID,
            DAY,
            session.report_key,
        )
        assert again["first_seen_at"] == first["first_seen_at"] < again["last_seen_at"]
        assert again["dag_run_id"] == "run-2"
        assert db.deferred_sessions()[0]["session_id"] == SESSION_ID

        db.load_batch(batch_of(session), "run-3")

        assert backend.rows("ingest_deferrals") == []

    def test_a_report_rejected_once_complete_is_no_longer_deferred(
        self, backend: Backend, db: EventDb
    ) -> None:
        session = make_session()
        db.load_batch(
            Batch(index=0, deferrals=[Deferral(SESSION_ID, DAY, session.report_key, "uploading")]), "r1"
        )
        rejected = Reject(session.report_key, SESSION_ID, "report: malformed JSON", DAY)
        db.load_batch(Batch(index=0, rejects=[rejected]), "r2")
        assert backend.rows("ingest_deferrals") == []


class TestReads:
    def test_session_states_say_what_a_skip_needs(self, db: EventDb) -> None:
        session = make_session(file_types=["audio_tag", "raw"])
        db.load_batch(batch_of(session, rejects=(reject_of(session),)), "run-1")

        states = db.session_states([SESSION_ID, OTHER_ID, SESSION_ID])

        assert set(states) == {SESSION_ID}
        state = states[SESSION_ID]
        assert (state.report_etag, state.session_date, state.tags_digest) == (
            "etag-1",
            DAY,
            session.tags_digest,
        )
        assert (state.file_types, state.open_rejects) == (frozenset({"audio_tag", "raw"}), 1)
        assert db.session_states([]) == {}

    def test_known_events_give_every_event_of_the_sessions_with_its_etag(self, db: EventDb) -> None:
        sessions = [make_session(f"s{n:04d}", tags=2) for n in range(600)]
        db.load_batch(batch_of(*sessions), "run-1")
        known = db.known_events([s.session_id for s in sessions] + ["nobody"])
        assert known == {e.event_id: e.etag.strip('"') for s in sessions for e in s.events}
        assert db.known_events([]) == {}

    def test_ids_differing_only_in_case_are_different_sessions(self, db: EventDb) -> None:
        db.load_batch(batch_of(make_session("Session_A")), "run-1")
        assert db.session_exists("Session_A")
        assert not db.session_exists("session_a")

    def test_day_counts_give_every_day_of_the_range_with_zeros(self, db: EventDb) -> None:
        session = make_session(tags=2)
        later = make_session(OTHER_ID, tags=3, session_date="2026-11-22")
        deferral = Deferral("waiting", "2026-11-22", "raw/2026/11/22/waiting/r.json", "uploading")
        db.load_batch(batch_of(session, later, rejects=(reject_of(later),), deferrals=(deferral,)), "run-1")

        days = db.day_counts(dt.date(2026, 11, 19), dt.date(2026, 11, 22))

        assert days == [
            {"day": "2026-11-19", "sessions": 0, "events": 0, "open_rejects": 0, "deferred": 0},
            {"day": "2026-11-20", "sessions": 1, "events": 2, "open_rejects": 0, "deferred": 0},
            {"day": "2026-11-21", "sessions": 0, "events": 0, "open_rejects": 0, "deferred": 0},
            {"day": "2026-11-22", "sessions": 1, "events": 3, "open_rejects": 1, "deferred": 1},
        ]
        (reject,) = db.open_rejects(dt.date(2026, 11, 22))
        assert (reject["session_id"], reject["reason"]) == (OTHER_ID, "audio tag: bad")
        assert db.open_rejects(dt.date(2026, 11, 20)) == []


class TestRunLedger:
    def test_a_run_starts_then_finishes_with_its_counts(self, backend: Backend, db: EventDb) -> None:
        db.start_run(
            dag_run_id="run-1", dag_id="event_ingest", run_type="manual", first_day=DAY, last_day=DAY
        )
        (started,) = backend.rows("ingest_runs")
        assert (started["state"], started["finished_at"], started["loaded_sessions"]) == ("running", None, 0)
        assert (started["dag_id"], started["run_type"], started["first_day"]) == (
            "event_ingest",
            "manual",
            DAY,
        )

        counts = {
            "discovered": 9,
            "loaded_sessions": 7,
            "loaded_events": 30,
            "skipped": 1,
            "deferred": 0,
            "rejected": 2,
        }
        db.finish_run(dag_run_id="run-1", state="failed", counts=counts, failed_batches=1)

        (row,) = backend.rows("ingest_runs")
        assert {k: row[k] for k in counts} == counts
        assert (row["state"], row["failed_batches"]) == ("failed", 1)
        assert DB_TIME.match(row["finished_at"])
        assert row["finished_at"] >= row["started_at"]
        (latest,) = db.latest_runs(5)
        assert latest["dag_run_id"] == "run-1"

    def test_a_rerun_of_the_same_run_starts_its_row_afresh(self, backend: Backend, db: EventDb) -> None:
        db.start_run(
            dag_run_id="run-1", dag_id="event_ingest", run_type="manual", first_day=DAY, last_day=DAY
        )
        db.finish_run(dag_run_id="run-1", state="success", counts={"loaded_sessions": 3}, failed_batches=0)
        db.start_run(
            dag_run_id="run-1", dag_id="event_ingest", run_type="manual", first_day=DAY, last_day=DAY
        )
        (row,) = backend.rows("ingest_runs")
        assert (row["state"], row["finished_at"], row["loaded_sessions"]) == ("running", None, 0)


class TestStoredValues:
    def test_unicode_quotes_and_sql_are_stored_literally(self, backend: Backend, db: EventDb) -> None:
        session_id = "20261120T101533Z_vé'h😀 \\ %s"
        tricky = 'Zoë "Ω" 🚗 it\'s %s ? ; DROP TABLE sessions; --'
        session = make_session(
            session_id,
            vehicle_id="veh'); DELETE FROM events; --",
            driver_id=tricky,
            software_version="4.12.0-ünï'\"",
            report_etag='"quoted-etag"',
            tags=1,
        )
        event = session.events[0]
        event.s3_key = f"raw/Ärger 'x' %s?/{session_id}/AudioTags/tag 'ü' 😀.wav"
        event.local_path = f"/data/{session_id}/AudioTags/tag 'ü' 😀.wav"
        reject = Reject(event.s3_key + "?x=1", session_id, tricky, DAY)

        db.load_batch(batch_of(session, rejects=(reject,)), "manual__'run' 😀")

        (row,) = backend.rows("sessions")
        assert (row["session_id"], row["vehicle_id"], row["driver_id"]) == (
            session_id,
            session.vehicle_id,
            tricky,
        )
        assert (row["software_version"], row["report_etag"]) == (session.software_version, '"quoted-etag"')
        (stored_event,) = backend.rows("events")
        assert (stored_event["s3_key"], stored_event["local_path"]) == (event.s3_key, event.local_path)
        (stored_reject,) = backend.rows("ingest_rejects")
        assert (stored_reject["object_key"], stored_reject["reason"], stored_reject["dag_run_id"]) == (
            reject.object_key,
            tricky,
            "manual__'run' 😀",
        )

    def test_the_longest_keys_and_ids_s3_allows_are_stored(self, backend: Backend, db: EventDb) -> None:
        session_id = "é" * 246  # 492 bytes: the most a session with a report can have
        session = make_session(session_id, tags=1)
        session.events[0].s3_key = "k" * 1024
        db.load_batch(batch_of(session), "run-1")
        (row,) = backend.rows("events")
        assert (row["session_id"], row["s3_key"]) == (session_id, "k" * 1024)

    def test_times_keep_their_milliseconds(self, backend: Backend, db: EventDb) -> None:
        session = make_session(
            started_at="2026-11-20 10:15:33.001", ended_at="2026-11-20 23:59:59.999", tags=2
        )
        session.events[0].event_time = "2026-11-20 10:21:07.500"
        session.events[1].event_time = "2026-11-20 10:21:07.010"
        db.load_batch(batch_of(session), "run-1")
        (row,) = backend.rows("sessions")
        assert (row["started_at"], row["ended_at"]) == ("2026-11-20 10:15:33.001", "2026-11-20 23:59:59.999")
        assert sorted(e["event_time"] for e in backend.rows("events")) == [
            "2026-11-20 10:21:07.010",
            "2026-11-20 10:21:07.500",
        ]


class TestOldJobNames:
    def test_create_session_and_its_events_one_at_a_time(self, backend: Backend, db: EventDb) -> None:
        session = make_session(tags=2)
        assert db._create_session(session) is True
        assert db._create_event_in_session(session) == 0
        more = make_session(tags=3)
        more.events = more.events[2:]
        assert db._create_event_in_session(more) == 1
        assert db.session_exists(SESSION_ID)
        assert len(backend.rows("events")) == 3


class TestEventDbFor:
    def test_each_connection_type_gives_its_backend(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        for uri, cls in (
            ("mysql://u:p@127.0.0.1:3306/events", MySqlEventDb),
            ("postgres://u:p@127.0.0.1:5432/events", PostgresEventDb),
            ("postgresql://u:p@127.0.0.1:5432/events", PostgresEventDb),
        ):
            monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_DB", uri)
            db = event_db_for(DB_CONN_ID, tmp_path)
            assert type(db) is cls, uri
            assert db.hook.connection.host == "127.0.0.1"

    @pytest.mark.parametrize(
        ("uri", "relative"),
        [
            pytest.param("sqlite://events.sqlite3", "events.sqlite3", id="host-form"),
            pytest.param("sqlite:///{tmp}/x/events.sqlite3", "x/events.sqlite3", id="absolute-path-form"),
        ],
    )
    def test_sqlite_connection_gives_sqlite_at_its_path(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, uri: str, relative: str
    ) -> None:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_DB", uri.format(tmp=str(tmp_path).lstrip("/")))
        db = event_db_for(DB_CONN_ID, tmp_path / "data")
        assert isinstance(db, SqliteEventDb)
        with db:
            pass
        assert (tmp_path / relative).is_file()

    def test_no_connection_gives_sqlite_in_the_data_dir(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.delenv("AIRFLOW_CONN_EVENT_INGEST_DB", raising=False)
        db = event_db_for(DB_CONN_ID, tmp_path / "data dir with spaces %")
        assert isinstance(db, SqliteEventDb)
        assert db.path == tmp_path / "data dir with spaces %" / DEFAULT_SQLITE_NAME
        with db:
            assert db.session_states(["x"]) == {}
        assert db.path.is_file()

    def test_another_connection_type_is_refused(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_DB", "mssql://u:p@host/events")
        with pytest.raises(ValueError, match="mssql"):
            event_db_for(DB_CONN_ID, tmp_path)
