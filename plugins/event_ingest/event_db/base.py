"""The event database: an abstract base on common-sql's ``DbApiHook`` and the logic every backend shares.

The old job's ``EventDb`` (``connect``, ``session_exists``, ``_create_session``,
``_create_event_in_session``) plus what the pipeline really does, in round trips that do not grow
with the sessions of a batch: read what the database knows of a batch's sessions (two queries),
load a batch in one transaction of multi-row statements (each session atomic with it), record
rejects and deferrals, keep the run ledger and the per-day counts. A backend is its provider's hook,
its DDL file and the few clauses whose syntax differs (upserts, row locks, session settings).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any, ClassVar, Self, TypeVar

from event_ingest.errors import is_database_fault, is_transient_database_error, reason_of
from event_ingest.event_db import schema
from event_ingest.event_db.schema import DAYS, DEFERRALS, EVENTS, REJECTS, RUNS, SESSIONS, Table
from event_ingest.model import Batch, Reject, Session, SessionListing
from event_ingest.safe_text import excerpt
from event_ingest.timestamps import to_db

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Rows per multi-row statement, and ids per ``IN (...)`` list: far below every backend's limits
#: (SQLite's 32,766 parameters, PostgreSQL's 65,535).
ROWS_PER_STATEMENT = 500
_TRANSIENT_RETRIES = 5


@dataclass(frozen=True)
class SessionState:
    """What the database knows of a session: enough to decide to skip it."""

    report_etag: str
    session_date: str
    tags_digest: str
    file_types: frozenset[str]
    open_rejects: int

    def is_current(self, listing: SessionListing, file_types: frozenset[str]) -> bool:
        """Whether the listing shows the session as loaded: same report, same audio tags, nothing open."""
        return (
            self.report_etag == listing.report_etag
            and self.tags_digest == listing.tags_digest
            and self.open_rejects == 0
            and file_types <= self.file_types
        )


@dataclass
class LoadResult:
    """What loading a batch changed.

    :param sessions: sessions inserted, updated or given new events.
    :param events: events inserted.
    :param unchanged: sessions written again with nothing new.
    :param refused: sessions the database refused (rejected with its reason).
    """

    sessions: int = 0
    events: int = 0
    unchanged: int = 0
    refused: int = 0


def utc_now() -> str:
    return to_db(dt.datetime.now(dt.UTC))


def _day(value: Any) -> str:
    """A day as the backends return it (a date, or text on SQLite), as ``YYYY-MM-DD``."""
    return value.isoformat() if isinstance(value, dt.date) else str(value)


class EventDb(ABC):
    """Where sessions, events, rejects, deferrals and the run ledger go (docs/contract.md §2).

    Loading is idempotent: sessions are inserted once and updated only when their report or audio
    tags changed, events inserted only when absent (by ``event_id`` and by (``session_id``,
    ``s3_key``)), so reruns and overlapping runs converge on the same rows.

    :param hook: the provider's ``DbApiHook`` of the connection, resolved once.
    """

    #: Name of the idempotent DDL file in this package's ``sql/`` folder.
    schema_file: ClassVar[str]
    #: Appended to a SELECT to lock the rows it reads until the transaction ends.
    lock_rows: ClassVar[str] = " FOR UPDATE"
    #: The names of the tables of the connection's database (or schema).
    tables_query: ClassVar[str] = (
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    )
    #: The names of the columns of one table (the table's name as the one parameter).
    columns_query: ClassVar[str] = (
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = %s"
    )

    def __init__(self, hook: Any) -> None:
        self.hook = hook
        self._conn: Any = None

    # -- what a backend provides ------------------------------------------------------------------

    @abstractmethod
    def _configure(self, conn: Any) -> None:
        """Session settings of a new connection: UTC, isolation, explicit transactions."""

    def _insert_ignoring(self, table: Table) -> str:
        """The clause after VALUES that leaves rows whose key exists as they are."""
        return f" ON CONFLICT ({', '.join(table.key)}) DO NOTHING"

    def _upsert(self, table: Table, updated: Sequence[str]) -> str:
        """The clause after VALUES that updates ``updated`` of rows whose key exists."""
        return f" ON CONFLICT ({', '.join(table.key)}) DO UPDATE SET " + ", ".join(
            f"{c} = excluded.{c}" for c in updated
        )

    def _add_to(self, table: Table, counters: Sequence[str]) -> str:
        """The clause after VALUES that adds the new values of ``counters`` to existing rows."""
        return f" ON CONFLICT ({', '.join(table.key)}) DO UPDATE SET " + ", ".join(
            f"{c} = {table.name}.{c} + excluded.{c}" for c in counters
        )

    def _begin(self, cursor: Any, *, write: bool) -> None:  # noqa: B027 - most drivers need nothing
        """Start a transaction (a no-op where the driver starts one implicitly)."""

    # -- connection -------------------------------------------------------------------------------

    @property
    def mark(self) -> str:
        """The driver's placeholder, as the hook says."""
        return self.hook.placeholder

    @property
    def conn(self) -> Any:
        if self._conn is None:
            raise RuntimeError(f"{type(self).__name__} is not connected: call connect() first")
        return self._conn

    def connect(self, *, create_tables: bool = True) -> None:
        """Open the connection and create the tables if they are missing.

        :param create_tables: false for a reader (the ingest view): it needs no DDL privilege, and on
            PostgreSQL ``CREATE INDEX IF NOT EXISTS`` waits for every open write transaction on the
            table, so a read would wait for a batch being loaded.
        """
        conn = self.hook.get_conn()
        self._configure(conn)
        self._conn = conn
        if create_tables:
            self._create_tables()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _create_tables(self) -> None:
        """Create what is missing; upgrade a database the first version made (see ``sql/*-upgrade-1.sql``).

        The DDL runs only when a table is missing: on PostgreSQL, ``CREATE INDEX IF NOT EXISTS``
        waits for every open write on its table, so running it on each connect would queue a
        batch's tasks behind another batch's load. Tasks connecting to a new database at once take
        turns (:meth:`_lock_schema`), and each looks again once it has the lock.
        """
        if self._schema_state() == (True, False):
            return
        with self.transaction() as cursor:
            self._lock_schema(cursor)
            complete, first_version = self._schema_state(cursor)
            if complete and not first_version:
                return
            if first_version:
                log.info("Upgrading the event database from the first version's tables")
                self._run_script(cursor, self.schema_file.replace(".sql", "-upgrade-1.sql"))
            self._run_script(cursor, self.schema_file)
            if first_version:
                self._fill_in_first_version(cursor)

    def _schema_state(self, cursor: Any = None) -> tuple[bool, bool]:
        """(every table is there, the tables are the first version's)."""
        if cursor is None:
            with self.transaction(write=False) as reader:
                return self._schema_state(reader)
        tables = {str(name) for (name,) in self._fetch(cursor, self.tables_query, ())}
        first_version = "sessions" in tables and "tags_digest" not in self._columns(cursor, "sessions")
        return {table.name for table in schema.ALL_TABLES} <= tables, first_version

    def _lock_schema(self, cursor: Any) -> None:  # noqa: B027 - a backend whose DDL races overrides it
        """Make concurrent creators of the tables take turns, until the transaction ends."""

    @staticmethod
    def _run_script(cursor: Any, name: str) -> None:
        ddl = resources.files("event_ingest.event_db").joinpath("sql", name).read_text("utf-8")
        for statement in ddl.split(";\n"):
            body = "\n".join(line for line in statement.splitlines() if not line.startswith("--"))
            if body.strip():
                cursor.execute(body)

    def _fill_in_first_version(self, cursor: Any) -> None:
        """What the first version did not keep: rejects' session keys and days, the per-day counts."""
        rows = self._fetch(cursor, "SELECT reject_id, object_key, session_id FROM ingest_rejects", ())
        m = self.mark
        keys = [(schema.session_key(sid) if sid else None, _folder_day(key), rid) for rid, key, sid in rows]
        if keys:
            cursor.executemany(
                f"UPDATE ingest_rejects SET session_key = {m}, session_date = {m} WHERE reject_id = {m}", keys
            )
        cursor.execute(
            "INSERT INTO ingest_days (day, sessions, events)"
            " SELECT session_date, COUNT(*), SUM(event_count) FROM sessions GROUP BY session_date"
        )

    def _columns(self, cursor: Any, table: str) -> set[str]:
        return {str(name).lower() for (name,) in self._fetch(cursor, self.columns_query, (table,))}

    @staticmethod
    def _fetch(cursor: Any, statement: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        if args:
            cursor.execute(statement, args)
        else:
            cursor.execute(statement)
        return [tuple(row) for row in cursor.fetchall()]

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Any]:
        """A cursor in a transaction: committed when the block ends, rolled back if it raises."""
        cursor = self.conn.cursor()
        try:
            self._begin(cursor, write=write)
            yield cursor
            self.conn.commit()
        except BaseException as exc:
            try:
                self.conn.rollback()
            except Exception as rollback_error:
                # A lost connection cannot roll back (the server does that): report the first error,
                # not "server has gone away" from the clean-up.
                log.warning("Rollback after %r failed too: %s", exc, rollback_error)
            raise
        finally:
            cursor.close()

    def _with_retries(self, what: str, func: Callable[[], T]) -> T:
        for attempt in range(1, _TRANSIENT_RETRIES + 1):
            try:
                return func()
            except Exception as exc:
                if (
                    attempt == _TRANSIENT_RETRIES
                    or not is_transient_database_error(exc)
                    or self._connection_lost(exc)
                ):
                    raise
                log.warning(
                    "Retrying %s after a transient error (attempt %s): %s",
                    excerpt(what),
                    attempt,
                    excerpt(str(exc)),
                )
                time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    def _connection_lost(self, exc: BaseException) -> bool:
        """Whether ``exc`` left this connection unusable: only a new task (Airflow's retry) helps."""
        try:
            cursor = self.conn.cursor()
            cursor.execute("SELECT 1")
            cursor.fetchall()
            cursor.close()
            self.conn.rollback()
        except Exception:
            return True
        return False

    # -- statements -------------------------------------------------------------------------------

    def _insert(self, cursor: Any, table: Table, rows: Sequence[tuple[Any, ...]], clause: str) -> int:
        """Insert ``rows`` in multi-row statements ending with ``clause``; return the rows affected."""
        affected = 0
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            chunk = rows[start : start + ROWS_PER_STATEMENT]
            cursor.execute(
                f"INSERT INTO {table.name} ({', '.join(table.columns)})"
                f" VALUES {table.placeholders(self.mark, len(chunk))}{clause}",
                [value for row in chunk for value in row],
            )
            affected += max(cursor.rowcount, 0)
        return affected

    def _query_in(
        self, cursor: Any, statement: str, ids: Sequence[Any], *, suffix: str = ""
    ) -> list[tuple[Any, ...]]:
        """Run ``statement`` (with ``{marks}`` for the IN list) over ``ids`` in chunks."""
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(ids), ROWS_PER_STATEMENT):
            chunk = list(ids[start : start + ROWS_PER_STATEMENT])
            cursor.execute(statement.format(marks=", ".join([self.mark] * len(chunk))) + suffix, chunk)
            rows.extend(cursor.fetchall())
        return rows

    def _select_in(self, statement: str, ids: Sequence[Any]) -> list[tuple[Any, ...]]:
        """:meth:`_query_in` in a read transaction of its own."""
        with self.transaction(write=False) as cursor:
            return self._query_in(cursor, statement, ids)

    # -- reads ------------------------------------------------------------------------------------

    def session_exists(self, session_id: str) -> bool:
        """Whether the database holds ``session_id`` (the old job's test, one query)."""
        return bool(self._select_in("SELECT 1 FROM sessions WHERE session_id IN ({marks})", [session_id]))

    def session_states(self, session_ids: Sequence[str]) -> dict[str, SessionState]:
        """What the database knows of the sessions among ``session_ids``: two queries per 500.

        Open rejects count only those of the session's own folder day: a later folder with the
        same id, rejected for that, does not keep the session from being skipped.
        """
        ids = list(dict.fromkeys(session_ids))
        with self.transaction(write=False) as cursor:
            rows = self._query_in(
                cursor,
                "SELECT session_id, report_etag, session_date, tags_digest, file_types"
                " FROM sessions WHERE session_id IN ({marks})",
                ids,
            )
            keys = {schema.session_key(row[0]): row[0] for row in rows}
            open_rejects = self._query_in(
                cursor,
                "SELECT session_key, session_date, COUNT(*) FROM ingest_rejects"
                " WHERE resolved_at IS NULL AND session_key IN ({marks}) GROUP BY session_key, session_date",
                list(keys),
            )
        counts = {(keys[key], _day(day)): int(count) for key, day, count in open_rejects}
        return {
            sid: SessionState(
                report_etag=etag,
                session_date=_day(day),
                tags_digest=digest,
                file_types=frozenset(types.split(",")),
                open_rejects=counts.get((sid, _day(day)), 0),
            )
            for sid, etag, day, digest, types in rows
        }

    def known_events(self, session_ids: Sequence[str]) -> dict[str, str | None]:
        """The ids (and loaded ETags) of the events the database holds for ``session_ids``.

        One query per 500 sessions however many events they have: an event's id derives from its
        session, so this finds every known event of them.
        """
        rows = self._select_in(
            "SELECT event_id, etag FROM events WHERE session_id IN ({marks})",
            list(dict.fromkeys(session_ids)),
        )
        return dict(rows)

    # -- loading a batch --------------------------------------------------------------------------

    def load_batch(self, batch: Batch, dag_run_id: str | None) -> LoadResult:
        """Write a batch in one transaction: its sessions with their new events, rejects, deferrals.

        A session and its events are written in the batch's transaction, so each is atomic. If the
        database refuses the batch for its data (not for a fault of the connection), the sessions
        are written one transaction each, so that the one it refuses is rejected with the
        database's reason and the others load.
        """
        try:
            return self._with_retries(
                "the batch", lambda: self._write_batch(batch, batch.sessions, dag_run_id)
            )
        except Exception as exc:
            if is_database_fault(exc):
                raise
            log.warning(
                "The database refused batch %s (%s); writing its sessions one by one",
                batch.index,
                excerpt(str(exc)),
            )
        result = LoadResult()
        refused: list[Reject] = []
        for session in batch.sessions:
            try:
                part = self._with_retries(
                    f"session {session.session_id}", lambda s=session: self._write_sessions([s])
                )
            except Exception as exc:
                if is_database_fault(exc):
                    raise
                reason = reason_of(exc, "database")
                refused.append(Reject(session.report_key, session.session_id, reason, session.session_date))
                continue
            result.sessions += part.sessions
            result.events += part.events
            result.unchanged += part.unchanged
        result.refused = len(refused)
        rest = Batch(index=batch.index, rejects=batch.rejects + refused, deferrals=batch.deferrals)
        rest.processed = [sid for sid in batch.processed if sid not in {r.session_id for r in refused}]
        self._with_retries("rejects", lambda: self._write_batch(rest, [], dag_run_id, reports=batch.sessions))
        return result

    def _write_sessions(self, sessions: Sequence[Session]) -> LoadResult:
        with self.transaction() as cursor:
            return self._load_sessions(cursor, sessions)

    def _write_batch(
        self,
        batch: Batch,
        sessions: Sequence[Session],
        dag_run_id: str | None,
        *,
        reports: Sequence[Session] | None = None,
    ) -> LoadResult:
        with self.transaction() as cursor:
            result = self._load_sessions(cursor, sessions)
            self._record(cursor, batch, reports if reports is not None else sessions, dag_run_id)
        return result

    def _load_sessions(self, cursor: Any, sessions: Sequence[Session]) -> LoadResult:
        """Sessions, events, event counts and per-day counts, in the caller's transaction."""
        result = LoadResult()
        if not sessions:
            return result
        now = utc_now()
        sessions = sorted(sessions, key=lambda s: s.session_id)  # one lock order for every run
        existing = {
            row[0]: row[1:]
            for row in self._query_in(
                cursor,
                "SELECT session_id, report_etag, tags_digest, file_types FROM sessions"
                " WHERE session_id IN ({marks})",
                [s.session_id for s in sessions],
                suffix=self.lock_rows,
            )
        }
        fresh = [s for s in sessions if s.session_id not in existing]
        changed = []
        for session in sessions:
            if session.session_id not in existing:
                continue
            etag, digest, types = existing[session.session_id]
            loaded_types = set(types.split(","))
            if (etag, digest) != (session.report_etag, session.tags_digest) or not loaded_types >= set(
                session.file_types
            ):
                # A run that downloads fewer kinds of file never forgets the ones an earlier run got.
                session.file_types = sorted(loaded_types | set(session.file_types))
                changed.append(session)
        loaded_events = {
            row[0]
            for row in self._query_in(
                cursor,
                "SELECT event_id FROM events WHERE session_id IN ({marks})",
                [s.session_id for s in sessions],
            )
        }
        with_new = [s for s in sessions if any(e.event_id not in loaded_events for e in s.events)]
        new_sessions: dict[str, int] = {}
        new_events: dict[str, int] = {}
        for day, group in _by_day(fresh).items():
            rows = [schema.session_row(s, now) for s in group]
            new_sessions[day] = self._insert(cursor, SESSIONS, rows, self._insert_ignoring(SESSIONS))
        if changed:
            rows = [schema.session_row(s, now) for s in changed]
            self._insert(cursor, SESSIONS, rows, self._upsert(SESSIONS, schema.SESSION_UPDATED))
        for day, group in _by_day(with_new).items():
            rows = sorted(
                schema.event_row(e, now) for s in group for e in s.events if e.event_id not in loaded_events
            )
            new_events[day] = self._insert(cursor, EVENTS, rows, self._insert_ignoring(EVENTS))
        counted = [s.session_id for s in [*fresh, *with_new]]
        for start in range(0, len(counted), ROWS_PER_STATEMENT):
            chunk = counted[start : start + ROWS_PER_STATEMENT]
            cursor.execute(
                "UPDATE sessions SET event_count ="
                " (SELECT COUNT(*) FROM events WHERE events.session_id = sessions.session_id)"
                f" WHERE session_id IN ({', '.join([self.mark] * len(chunk))})",
                chunk,
            )
        days = sorted(set(new_sessions) | set(new_events))
        day_rows = [(day, new_sessions.get(day, 0), new_events.get(day, 0)) for day in days]
        if any(s or e for _, s, e in day_rows):
            self._insert(cursor, DAYS, day_rows, self._add_to(DAYS, ("sessions", "events")))
        touched = {s.session_id for s in [*fresh, *changed, *with_new]}
        result.sessions = len(touched)
        result.events = sum(new_events.values())
        result.unchanged = len(sessions) - len(touched)
        return result

    def _record(self, cursor: Any, batch: Batch, sessions: Sequence[Session], dag_run_id: str | None) -> None:
        """The batch's rejects and deferrals; resolve and clear what its processed sessions do not raise."""
        now = utc_now()
        rejects = {r.reject_id: schema.reject_row(r, now, dag_run_id) for r in batch.rejects}
        if rejects:
            self._insert(
                cursor, REJECTS, sorted(rejects.values()), self._upsert(REJECTS, schema.REJECT_UPDATED)
            )
        deferrals = {
            schema.deferral_id(d.report_key): schema.deferral_row(d, now, dag_run_id) for d in batch.deferrals
        }
        if deferrals:
            self._insert(
                cursor,
                DEFERRALS,
                sorted(deferrals.values()),
                self._upsert(DEFERRALS, schema.DEFERRAL_UPDATED),
            )
        processed = set(batch.processed)
        done = [
            (schema.session_key(s.session_id), s.session_date) for s in sessions if s.session_id in processed
        ]
        raised = set(rejects)
        for start in range(0, len(done), ROWS_PER_STATEMENT):
            chunk = done[start : start + ROWS_PER_STATEMENT]
            cursor.execute(
                "SELECT reject_id FROM ingest_rejects WHERE resolved_at IS NULL AND ("
                + " OR ".join([f"(session_key = {self.mark} AND session_date = {self.mark})"] * len(chunk))
                + ")",
                [value for pair in chunk for value in pair],
            )
            resolved = [rid for (rid,) in cursor.fetchall() if rid not in raised]
            for part in range(0, len(resolved), ROWS_PER_STATEMENT):
                ids = resolved[part : part + ROWS_PER_STATEMENT]
                cursor.execute(
                    f"UPDATE ingest_rejects SET resolved_at = {self.mark}"
                    f" WHERE reject_id IN ({', '.join([self.mark] * len(ids))})",
                    [now, *ids],
                )
        finished = [schema.deferral_id(s.report_key) for s in sessions if s.session_id in processed]
        finished += [schema.deferral_id(r.object_key) for r in batch.rejects]
        finished = sorted(set(finished) - set(deferrals))
        for start in range(0, len(finished), ROWS_PER_STATEMENT):
            chunk = finished[start : start + ROWS_PER_STATEMENT]
            cursor.execute(
                f"DELETE FROM ingest_deferrals WHERE deferral_id IN ({', '.join([self.mark] * len(chunk))})",
                chunk,
            )

    # -- the old job's names ----------------------------------------------------------------------

    def _create_session(self, session: Session) -> bool:
        """Insert or update one session with its events (the old job's name); whether anything changed."""
        return (
            self._with_retries(
                f"session {session.session_id}", lambda: self._write_sessions([session])
            ).sessions
            > 0
        )

    def _create_event_in_session(self, session: Session) -> int:
        """Insert the new events of one session (the old job's name); return how many were new."""
        return self._with_retries(
            f"session {session.session_id}", lambda: self._write_sessions([session])
        ).events

    # -- the run ledger ---------------------------------------------------------------------------

    def start_run(
        self, *, dag_run_id: str, dag_id: str, run_type: str, first_day: str | None, last_day: str | None
    ) -> None:
        """Record that a run started (a rerun of the same DAG run starts its row afresh)."""
        row = (
            dag_run_id,
            dag_id,
            run_type,
            first_day,
            last_day,
            utc_now(),
            None,
            "running",
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        )

        def write() -> None:
            with self.transaction() as cursor:
                self._insert(cursor, RUNS, [row], self._upsert(RUNS, schema.RUN_STARTED))

        self._with_retries("the run ledger", write)

    def finish_run(self, *, dag_run_id: str, state: str, counts: dict[str, int], failed_batches: int) -> None:
        """Record how a run ended: its state and counts."""
        names = [*schema.RUN_COUNTS, "failed_batches"]
        values = [counts.get(name, 0) for name in schema.RUN_COUNTS] + [failed_batches]

        def write() -> None:
            with self.transaction() as cursor:
                cursor.execute(
                    f"UPDATE ingest_runs SET finished_at = {self.mark}, state = {self.mark}, "
                    + ", ".join(f"{name} = {self.mark}" for name in names)
                    + f" WHERE dag_run_id = {self.mark}",
                    [utc_now(), state, *values, dag_run_id],
                )

        self._with_retries("the run ledger", write)

    # -- what the ingest view reads ---------------------------------------------------------------

    def day_counts(self, first: dt.date, last: dt.date) -> list[dict[str, Any]]:
        """One entry a day of ``first``..``last``, ascending: sessions, events, open rejects, deferred.

        Reads ``ingest_days`` (one row a day) and the open rejects and deferrals by their day
        indexes: a year of days answers in a few milliseconds however many sessions it holds.
        """
        bounds = [first.isoformat(), last.isoformat()]
        m = self.mark
        with self.transaction(write=False) as cursor:
            cursor.execute(
                f"SELECT day, sessions, events FROM ingest_days WHERE day BETWEEN {m} AND {m}", bounds
            )
            loaded = {_day(day): (int(s), int(e)) for day, s, e in cursor.fetchall()}
            cursor.execute(
                "SELECT session_date, COUNT(*) FROM ingest_rejects WHERE resolved_at IS NULL"
                f" AND session_date BETWEEN {m} AND {m} GROUP BY session_date",
                bounds,
            )
            rejects = {_day(day): int(n) for day, n in cursor.fetchall()}
            cursor.execute(
                f"SELECT session_date, COUNT(*) FROM ingest_deferrals WHERE session_date BETWEEN {m} AND {m}"
                " GROUP BY session_date",
                bounds,
            )
            deferred = {_day(day): int(n) for day, n in cursor.fetchall()}
        days = []
        for n in range((last - first).days + 1):
            day = (first + dt.timedelta(days=n)).isoformat()
            sessions, events = loaded.get(day, (0, 0))
            days.append(
                {
                    "day": day,
                    "sessions": sessions,
                    "events": events,
                    "open_rejects": rejects.get(day, 0),
                    "deferred": deferred.get(day, 0),
                }
            )
        return days

    def open_rejects(self, day: dt.date, limit: int = 1000) -> list[dict[str, Any]]:
        """The open rejects of ``day`` (by the session folder's day), oldest first."""
        columns = ("object_key", "session_id", "reason", "first_seen_at", "last_seen_at")
        with self.transaction(write=False) as cursor:
            cursor.execute(
                f"SELECT {', '.join(columns)} FROM ingest_rejects WHERE resolved_at IS NULL"
                f" AND session_date = {self.mark} ORDER BY first_seen_at, object_key LIMIT {int(limit)}",
                [day.isoformat()],
            )
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def deferred_sessions(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Sessions waiting for their upload to complete, the longest-waiting first."""
        columns = ("session_id", "session_date", "report_key", "reason", "first_seen_at", "last_seen_at")
        with self.transaction(write=False) as cursor:
            cursor.execute(
                f"SELECT {', '.join(columns)} FROM ingest_deferrals"
                f" ORDER BY first_seen_at, session_id LIMIT {int(limit)}"
            )
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def latest_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest ``ingest_runs`` rows, newest first."""
        with self.transaction(write=False) as cursor:
            cursor.execute(
                f"SELECT {', '.join(RUNS.columns)} FROM ingest_runs"
                f" ORDER BY started_at DESC, dag_run_id LIMIT {int(limit)}"
            )
            return [dict(zip(RUNS.columns, row, strict=True)) for row in cursor.fetchall()]


_FOLDER_DAY = re.compile(r"(?:^|/)([0-9]{4})/([0-9]{2})/([0-9]{2})/")


def _folder_day(key: str) -> str | None:
    """The day of the first ``YYYY/MM/DD/`` folder in ``key`` (a first-version reject's day)."""
    match = _FOLDER_DAY.search(key)
    try:
        return dt.date(*map(int, match.groups())).isoformat() if match else None
    except ValueError:
        return None


def _by_day(sessions: Sequence[Session]) -> dict[str, list[Session]]:
    """Sessions grouped by their day, so that each statement's row count belongs to one day."""
    groups: dict[str, list[Session]] = {}
    for session in sessions:
        groups.setdefault(session.session_date, []).append(session)
    return groups
