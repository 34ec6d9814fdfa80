"""The event database: an abstract base and the logic every backend shares.

The old job's ``EventDb`` (``connect``, ``session_exists``,
``_create_session``, ``_create_event_in_session``) plus the batch forms the
pipeline really uses: which sessions and events of a batch exist (one query
each), load a batch of sessions with their events (one transaction per
session), record and resolve rejects. Backends supply the connection, the
schema file and the few statements whose syntax differs (upserts).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

from event_ingest.model import AUDIO_TAG, Event, Reject, Session
from event_ingest.timestamps import to_db

log = logging.getLogger(__name__)

#: The DDL files live with the project's other non-Python files in include/.
SQL_DIR = Path(__file__).resolve().parents[3] / "include" / "sql"
#: Rows per ``IN (...)`` list: far below every backend's parameter limit.
_IN_CHUNK = 500
_TRANSIENT_RETRIES = 5
_MAX_REASON = 1024


@dataclass(frozen=True)
class SessionState:
    """What the database knows of a session: enough to decide to skip it."""

    report_etag: str
    open_rejects: int


@dataclass
class LoadResult:
    """What loading changed: sessions inserted or updated, events inserted, sessions left as they were."""

    sessions: int = 0
    events: int = 0
    unchanged: int = 0


def utc_now() -> str:
    return to_db(dt.datetime.now(dt.UTC))


class EventDb(ABC):
    """Where sessions, events and rejects go (contract §2).

    Loading is idempotent: sessions are upserted, events inserted only when
    absent (by ``event_id`` and by (``session_id``, ``s3_key``)), so reruns
    and overlapping runs converge on the same rows.
    """

    #: Name of the idempotent DDL file in ``include/sql/``.
    schema_file: ClassVar[str]

    def __init__(self) -> None:
        self._conn: Any = None

    # -- what a backend provides ------------------------------------------------

    @abstractmethod
    def connect(self) -> None:
        """Open the connection and create the tables if they are missing."""

    @abstractmethod
    def _create_session(self, cursor: Any, session: Session, now: str) -> bool:
        """Insert or update one session row, leaving its ``ingested_at`` alone.

        A row whose report ETag is the same is left untouched. Returns whether
        the row was inserted or changed.
        """

    @abstractmethod
    def _create_event_in_session(
        self, cursor: Any, session_id: str, events: Sequence[Event], now: str
    ) -> int:
        """Insert the events of one session that are not there yet, in one statement; return how many."""

    @abstractmethod
    def _upsert_rejects(self, cursor: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert rejects, or refresh reason, ``last_seen_at`` and run of known ones."""

    @abstractmethod
    def _is_transient(self, exc: BaseException) -> bool:
        """Whether a transaction that failed with ``exc`` may simply be run again."""

    def _sql(self, statement: str) -> str:
        """Adapt a ``?``-placeholder statement to the driver's parameter style."""
        return statement

    @abstractmethod
    def _begin(self, cursor: Any, *, write: bool) -> None:
        """Start a transaction (a no-op where the driver starts one implicitly)."""

    # -- connection -------------------------------------------------------------

    @property
    def conn(self) -> Any:
        if self._conn is None:
            raise RuntimeError(f"{type(self).__name__} is not connected: call connect() first")
        return self._conn

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
        statements = (SQL_DIR / self.schema_file).read_text(encoding="utf-8").split(";\n")
        with self._transaction(write=True) as cursor:
            for statement in statements:
                body = "\n".join(line for line in statement.splitlines() if not line.startswith("--"))
                if body.strip():
                    cursor.execute(body)

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Any]:
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

    def _query_in(self, cursor: Any, statement: str, ids: Sequence[str]) -> list[tuple[Any, ...]]:
        """Run ``statement`` (with ``{marks}`` for the IN list) over ``ids`` in chunks, on ``cursor``."""
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            cursor.execute(self._sql(statement.format(marks=",".join("?" * len(chunk)))), tuple(chunk))
            rows.extend(cursor.fetchall())
        return rows

    def _select_in(self, statement: str, ids: Sequence[str]) -> list[tuple[Any, ...]]:
        """:meth:`_query_in` in a read transaction of its own."""
        with self._transaction(write=False) as cursor:
            return self._query_in(cursor, statement, ids)

    # -- reads ------------------------------------------------------------------

    def session_exists(self, session_id: str) -> bool:
        return bool(self._select_in("SELECT 1 FROM sessions WHERE session_id IN ({marks})", [session_id]))

    def session_states(self, session_ids: Sequence[str]) -> dict[str, SessionState]:
        """Return report ETag and open reject count of the known sessions among ``session_ids``."""
        rows = self._select_in(
            "SELECT s.session_id, s.report_etag, (SELECT COUNT(*) FROM ingest_rejects r"
            " WHERE r.session_id = s.session_id AND r.resolved_at IS NULL)"
            " FROM sessions s WHERE s.session_id IN ({marks})",
            list(dict.fromkeys(session_ids)),
        )
        return {sid: SessionState(etag, int(count)) for sid, etag, count in rows}

    def existing_event_ids(self, event_ids: Sequence[str]) -> set[str]:
        rows = self._select_in("SELECT event_id FROM events WHERE event_id IN ({marks})", list(event_ids))
        return {row[0] for row in rows}

    def event_ids_of_sessions(self, session_ids: Sequence[str]) -> set[str]:
        """Return the ids of the events the database holds for ``session_ids``.

        One query per 500 sessions however many events they have: an event's
        id derives from its session, so this finds every known event of them.
        """
        rows = self._select_in(
            "SELECT event_id FROM events WHERE session_id IN ({marks})", list(dict.fromkeys(session_ids))
        )
        return {row[0] for row in rows}

    # -- writes -----------------------------------------------------------------

    def _with_retries(self, what: str, func: Any) -> Any:
        for attempt in range(1, _TRANSIENT_RETRIES + 1):
            try:
                return func()
            except Exception as exc:
                if attempt == _TRANSIENT_RETRIES or not self._is_transient(exc):
                    raise
                log.warning("Retrying %s after transient error (attempt %s): %s", what, attempt, exc)
                time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    def load_session(self, session: Session) -> tuple[bool, int]:
        """Write a session and its events in one transaction.

        Returns whether the session row was inserted or changed, and how many
        of its events were new.
        """

        def write() -> tuple[bool, int]:
            now = utc_now()
            with self._transaction(write=True) as cursor:
                changed = self._create_session(cursor, session, now)
                inserted = (
                    self._create_event_in_session(cursor, session.session_id, session.events, now)
                    if session.events
                    else 0
                )
                if not (changed or inserted):
                    return False, 0
                cursor.execute(
                    self._sql(
                        "UPDATE sessions SET event_count ="
                        " (SELECT COUNT(*) FROM events WHERE session_id = ?) WHERE session_id = ?"
                    ),
                    (session.session_id, session.session_id),
                )
            return changed, inserted

        return self._with_retries(f"session {session.session_id}", write)

    def load_sessions(self, sessions: Sequence[Session]) -> LoadResult:
        """Load each session in its own transaction; return what was written."""
        result = LoadResult()
        for session in sessions:
            changed, inserted = self.load_session(session)
            if changed or inserted:
                result.sessions += 1
                result.events += inserted
            else:
                result.unchanged += 1
        return result

    def record_rejects(self, rejects: Sequence[Reject], dag_run_id: str | None) -> None:
        """Store rejects; a reject seen before keeps its ``first_seen_at``."""
        if not rejects:
            return
        now = utc_now()
        rows = {
            r.reject_id: (
                r.reject_id,
                r.object_key[:1024],
                (r.session_id or None) and r.session_id[:128],
                r.reason[:_MAX_REASON],
                now,
                now,
                dag_run_id,
            )
            for r in rejects
        }

        def write() -> None:
            with self._transaction(write=True) as cursor:
                self._upsert_rejects(cursor, sorted(rows.values()))

        self._with_retries("rejects", write)

    def resolve_rejects(self, session_ids: Sequence[str], still_rejected: Sequence[str]) -> None:
        """Mark resolved the open rejects of loaded sessions that this run did not raise again."""
        if not session_ids:
            return
        now = utc_now()
        keep = set(still_rejected)

        def write() -> None:
            with self._transaction(write=True) as cursor:
                open_rejects = self._query_in(
                    cursor,
                    "SELECT reject_id FROM ingest_rejects"
                    " WHERE resolved_at IS NULL AND session_id IN ({marks})",
                    list(session_ids),
                )
                resolved = [(now, rid) for (rid,) in open_rejects if rid not in keep]
                if resolved:
                    cursor.executemany(
                        self._sql("UPDATE ingest_rejects SET resolved_at = ? WHERE reject_id = ?"), resolved
                    )

        self._with_retries("resolving rejects", write)


def event_row(event: Event, now: str) -> tuple[Any, ...]:
    """The ``events`` columns of one event, in the order backends insert them."""
    return (
        event.event_id,
        event.session_id,
        AUDIO_TAG,
        event.s3_key,
        event.frame_id,
        event.event_time,
        event.time_source,
        event.duration_s,
        event.size_bytes,
        event.md5,
        event.local_path,
        now,
    )


EVENT_COLUMNS = (
    "event_id, session_id, event_type, s3_key, frame_id, event_time, time_source,"
    " duration_s, size_bytes, md5, local_path, ingested_at"
)
SESSION_COLUMNS = (
    "session_id, vehicle_id, driver_id, started_at, ended_at, session_date, software_version,"
    " report_key, report_etag, event_count, ingested_at, updated_at"
)
#: What a re-upload of a session (a new report) may change, besides ``report_etag`` itself.
SESSION_UPDATED_COLUMNS = (
    "vehicle_id", "driver_id", "started_at", "ended_at", "session_date", "software_version", "report_key",
    "updated_at",
)  # fmt: skip
REJECT_COLUMNS = "reject_id, object_key, session_id, reason, first_seen_at, last_seen_at, dag_run_id"


def session_row(session: Session, now: str) -> tuple[Any, ...]:
    return (
        session.session_id,
        session.vehicle_id,
        session.driver_id,
        session.started_at,
        session.ended_at,
        session.session_date,
        session.software_version,
        session.report_key,
        session.report_etag,
        0,
        now,
        now,
    )
