"""``EventDb`` on SQLite through the SQLite provider's ``SqliteHook``: the embedded default."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from airflow.providers.sqlite.hooks.sqlite import SqliteHook

from event_ingest.event_db.base import EventDb


class FileSqliteHook(SqliteHook):
    """``SqliteHook`` on the connection it was given (its ``host`` is the file), opened for concurrent runs.

    The provider's hook builds a URI from the looked-up connection and opens it with the driver's
    defaults; this one takes the path as it is (spaces, ``%`` and all), waits up to a minute for
    the write lock, and leaves transactions to the caller (``isolation_level=None``).
    """

    def get_conn(self) -> sqlite3.Connection:
        path = Path(self.connection.host)
        path.parent.mkdir(parents=True, exist_ok=True)
        return sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)


class SqliteEventDb(EventDb):
    """Event database in one SQLite file.

    WAL mode and ``BEGIN IMMEDIATE`` let overlapping runs queue for the write lock instead of
    failing on it.

    :param hook: a :class:`FileSqliteHook` (see :meth:`at`).
    """

    schema_file = "sqlite.sql"
    lock_rows = ""  # BEGIN IMMEDIATE holds the database's write lock already
    tables_query = "SELECT name FROM sqlite_master WHERE type = 'table'"
    columns_query = "SELECT name FROM pragma_table_info(?)"

    @classmethod
    def at(cls, path: str | Path) -> SqliteEventDb:
        """The event database in file ``path`` (created if missing)."""
        from airflow.sdk import Connection

        return cls(
            FileSqliteHook(
                connection=Connection(conn_id="event_ingest_sqlite", conn_type="sqlite", host=str(path))
            )
        )

    @property
    def path(self) -> Path:
        return Path(self.hook.connection.host)

    def _configure(self, conn: Any) -> None:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")

    def _begin(self, cursor: Any, *, write: bool) -> None:
        cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
