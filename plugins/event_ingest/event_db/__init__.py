"""Event database backends, chosen by the type of connection ``event_ingest_db``."""

from __future__ import annotations

import logging
from pathlib import Path

from event_ingest.event_db.base import EventDb, LoadResult, SessionState

__all__ = ["EventDb", "LoadResult", "SessionState", "event_db_for"]

log = logging.getLogger(__name__)

#: The embedded default's file name inside the data directory.
DEFAULT_SQLITE_NAME = "event_ingest.sqlite3"


def event_db_for(conn_id: str, data_dir: str | Path) -> EventDb:
    """Return the backend for connection ``conn_id`` (not yet connected).

    The connection is looked up once and handed to its provider's hook: ``mysql`` connections get a
    ``MySqlEventDb`` on ``MySqlHook``, ``postgres`` ones a ``PostgresEventDb`` on ``PostgresHook``,
    ``sqlite`` ones a ``SqliteEventDb`` on the connection's file; with no such connection the
    embedded default is a SQLite file in the data directory.
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    from event_ingest.event_db.sqlite import SqliteEventDb

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        path = Path(data_dir) / DEFAULT_SQLITE_NAME
        log.info("No connection %s: using the embedded SQLite database %s", conn_id, path)
        return SqliteEventDb.at(path)
    if conn.conn_type == "mysql":
        from airflow.providers.mysql.hooks.mysql import MySqlHook

        from event_ingest.event_db.mysql import MySqlEventDb

        return MySqlEventDb(MySqlHook(mysql_conn_id=conn_id, connection=conn))
    if conn.conn_type in ("postgres", "postgresql"):
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        from event_ingest.event_db.postgres import PostgresEventDb

        return PostgresEventDb(PostgresHook(postgres_conn_id=conn_id, connection=conn))
    if conn.conn_type == "sqlite":
        # ``sqlite://relative.db`` puts the path in host, ``sqlite:///abs/path.db`` in schema.
        if conn.host:
            return SqliteEventDb.at(conn.host)
        if conn.schema:
            return SqliteEventDb.at("/" + conn.schema.lstrip("/"))
        return SqliteEventDb.at(Path(data_dir) / DEFAULT_SQLITE_NAME)
    raise ValueError(
        f"connection {conn_id!r} has type {conn.conn_type!r}; event_ingest takes mysql, postgres or sqlite"
    )
