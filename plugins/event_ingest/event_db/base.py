"""The event database: an abstract base on common-sql's ``DbApiHook`` and the logic every backend shares.

The old job's ``EventDb`` (``connect``, ``session_exists``, ``_create_session``,
``_create_event_in_session``) plus what the pipeline really does, in round trips that do not grow
with the sessions of a batch. This module holds the connection, the tables (made or upgraded on
connect), transactions and retries, the statements' building blocks and what filtering a batch
reads; the rest comes from one module a job: loading a batch (:mod:`.loading`), the run ledger
(:mod:`.ledger`) and the per-day overview the ingest view reads (:mod:`.overview`). A backend is its
provider's hook, its DDL file and the few clauses whose syntax differs (upserts, row locks, session
settings).
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

from event_ingest.errors import is_transient_database_error
from event_ingest.event_db import schema
from event_ingest.event_db.ledger import RunLedger
from event_ingest.event_db.loading import BatchLoading, LoadResult
from event_ingest.event_db.overview import Overview
from event_ingest.event_db.rows import ROWS_PER_STATEMENT, day_text
from event_ingest.event_db.schema import Table
from event_ingest.model import Session, SessionListing
from event_ingest.safe_text import excerpt

log = logging.getLogger(__name__)

T = TypeVar("T")

_TRANSIENT_RETRIES = 5

__all__ = ["EventDb", "LoadResult", "SessionState"]


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


class EventDb(BatchLoading, RunLedger, Overview, ABC):
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

    def _begin(self, cursor: Any, *, write: bool) -> None:
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

    def _lock_schema(self, cursor: Any) -> None:
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
        counts = {(keys[key], day_text(day)): int(count) for key, day, count in open_rejects}
        return {
            sid: SessionState(
                report_etag=etag,
                session_date=day_text(day),
                tags_digest=digest,
                file_types=frozenset(types.split(",")),
                open_rejects=counts.get((sid, day_text(day)), 0),
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


_FOLDER_DAY = re.compile(r"(?:^|/)([0-9]{4})/([0-9]{2})/([0-9]{2})/")


def _folder_day(key: str) -> str | None:
    """The day of the first ``YYYY/MM/DD/`` folder in ``key`` (a first-version reject's day)."""
    match = _FOLDER_DAY.search(key)
    try:
        return dt.date(*map(int, match.groups())).isoformat() if match else None
    except ValueError:
        return None
