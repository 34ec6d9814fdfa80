"""``EventDb`` on PostgreSQL 13+ through the Postgres provider's ``PostgresHook``."""

from __future__ import annotations

from typing import Any

from event_ingest.event_db.base import EventDb


class PostgresEventDb(EventDb):
    """Event database on PostgreSQL.

    Each connection works in READ COMMITTED (PostgreSQL's default) and UTC, with explicit
    transactions (the driver opens one on the first statement).

    :param hook: a ``PostgresHook`` of the ``event_ingest_db`` connection.
    """

    schema_file = "postgres.sql"

    def _lock_schema(self, cursor: Any) -> None:
        # Two transactions creating the same new table race in the system catalogs (a unique
        # violation on pg_type): an advisory lock held until commit makes them take turns.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('event_ingest schema'))")

    def _configure(self, conn: Any) -> None:
        conn.autocommit = False
        with conn.cursor() as cursor:
            cursor.execute("SET TIME ZONE 'UTC'")
        conn.commit()
