"""Event database backends, chosen by the type of connection ``event_ingest_db``."""

from __future__ import annotations

import logging
from pathlib import Path

from event_ingest.event_db.base import EventDb, LoadResult, SessionState
from event_ingest.event_db.mysql import MySqlEventDb
from event_ingest.event_db.sqlite import SqliteEventDb

__all__ = ["EventDb", "LoadResult", "MySqlEventDb", "SessionState", "SqliteEventDb", "event_db_for"]

log = logging.getLogger(__name__)

#: The embedded default's file name inside the data directory.
DEFAULT_SQLITE_NAME = "event_ingest.sqlite3"


def event_db_for(conn_id: str, data_dir: str | Path) -> EventDb:
    """Return the backend for connection ``conn_id`` (not yet connected).

    ``mysql`` connections get :class:`MySqlEventDb`, ``sqlite`` ones
    :class:`SqliteEventDb` on the connection's path; with no such connection
    the embedded default is a SQLite file in the data directory.
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        path = Path(data_dir) / DEFAULT_SQLITE_NAME
        log.info("No connection %s: using the embedded SQLite database %s", conn_id, path)
        return SqliteEventDb(path)
    if conn.conn_type == "mysql":
        return MySqlEventDb(conn_id)
    if conn.conn_type == "sqlite":
        # ``sqlite://relative.db`` puts the path in host, ``sqlite:///abs/path.db`` in schema.
        if conn.host:
            return SqliteEventDb(conn.host)
        if conn.schema:
            return SqliteEventDb("/" + conn.schema.lstrip("/"))
        return SqliteEventDb(Path(data_dir) / DEFAULT_SQLITE_NAME)
    raise ValueError(
        f"connection {conn_id!r} has type {conn.conn_type!r}; event_ingest supports mysql and sqlite"
    )
