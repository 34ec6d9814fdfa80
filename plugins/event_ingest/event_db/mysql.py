"""``EventDb`` on MySQL 8 / MariaDB 10.5+ through the MySQL provider's ``MySqlHook``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from event_ingest.event_db.base import EventDb
from event_ingest.event_db.schema import Table


class MySqlEventDb(EventDb):
    """Event database on MySQL or MariaDB.

    Each connection works in READ COMMITTED, UTC and strict mode: the event counts a transaction
    computes see rows other runs committed, times are stored as given, and a value a column cannot
    hold fails instead of being cut.

    :param hook: a ``MySqlHook`` of the ``event_ingest_db`` connection.
    """

    schema_file = "mysql.sql"
    tables_query = "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"
    columns_query = (
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = DATABASE() AND table_name = %s"
    )

    def _configure(self, conn: Any) -> None:
        # Two round trips, not four: each costs the database's latency in every task's connect.
        # The driver knows its character set without asking the server.
        if conn.character_set_name() != "utf8mb4":
            conn.set_character_set("utf8mb4")
        conn.autocommit(False)
        with conn.cursor() as cursor:
            cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            cursor.execute(
                "SET time_zone = '+00:00', SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'"
            )

    def _insert_ignoring(self, table: Table) -> str:
        # A no-op update, not INSERT IGNORE: IGNORE would also hide truncation and other errors.
        key = table.key[0]
        return f" ON DUPLICATE KEY UPDATE {key} = {key}"

    def _upsert(self, table: Table, updated: Sequence[str]) -> str:
        return " ON DUPLICATE KEY UPDATE " + ", ".join(f"{c} = VALUES({c})" for c in updated)

    def _add_to(self, table: Table, counters: Sequence[str]) -> str:
        return " ON DUPLICATE KEY UPDATE " + ", ".join(f"{c} = {c} + VALUES({c})" for c in counters)
