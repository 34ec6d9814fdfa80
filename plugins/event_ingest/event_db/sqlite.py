"""``EventDb`` on SQLite: the embedded default when no MySQL is given."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from event_ingest.event_db.base import (
    EVENT_COLUMNS,
    REJECT_COLUMNS,
    SESSION_COLUMNS,
    SESSION_UPDATED_COLUMNS,
    EventDb,
    event_row,
    session_row,
)
from event_ingest.model import Event, Session

_SESSION_UPDATES = ", ".join(f"{c} = excluded.{c}" for c in (*SESSION_UPDATED_COLUMNS, "report_etag"))


class SqliteEventDb(EventDb):
    """Event database in one SQLite file.

    WAL mode and ``BEGIN IMMEDIATE`` let overlapping runs queue for the write
    lock instead of failing on it.

    :param path: the database file; its folder is created if missing.
    """

    schema_file = "sqlite.sql"

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)

    def connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        self._conn = conn
        self._create_tables()

    def _begin(self, cursor: Any, *, write: bool) -> None:
        cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")

    def _is_transient(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)

    def _create_session(self, cursor: Any, session: Session, now: str) -> bool:
        cursor.execute(
            f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ({', '.join('?' * 12)})"
            f" ON CONFLICT (session_id) DO UPDATE SET {_SESSION_UPDATES}"
            " WHERE sessions.report_etag IS NOT excluded.report_etag",
            session_row(session, now),
        )
        return cursor.rowcount > 0

    def _create_event_in_session(
        self, cursor: Any, session_id: str, events: Sequence[Event], now: str
    ) -> int:
        cursor.executemany(
            f"INSERT INTO events ({EVENT_COLUMNS}) VALUES ({', '.join('?' * 12)}) ON CONFLICT DO NOTHING",
            [event_row(event, now) for event in events],
        )
        return max(cursor.rowcount, 0)

    def _upsert_rejects(self, cursor: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        cursor.executemany(
            f"INSERT INTO ingest_rejects ({REJECT_COLUMNS}) VALUES ({', '.join('?' * 7)})"
            " ON CONFLICT (reject_id) DO UPDATE SET reason = excluded.reason,"
            " last_seen_at = excluded.last_seen_at, dag_run_id = excluded.dag_run_id,"
            " session_id = COALESCE(excluded.session_id, session_id), resolved_at = NULL",
            rows,
        )
