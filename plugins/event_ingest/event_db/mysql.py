"""``EventDb`` on MySQL 8 / MariaDB through Airflow's ``MySqlHook``."""

from __future__ import annotations

from collections.abc import Sequence
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

#: Deadlock and lock-wait timeout: InnoDB rolled the transaction back; rerun it.
_TRANSIENT_CODES = {1205, 1213}
#: A re-upload (new report ETag) updates the row; the same report again leaves it as it is.
#: MySQL assigns left to right, so ``report_etag`` must come last.
_SESSION_UPDATES = (
    ", ".join(
        f"{c} = IF(report_etag <=> VALUES(report_etag), {c}, VALUES({c}))" for c in SESSION_UPDATED_COLUMNS
    )
    + ", report_etag = VALUES(report_etag)"
)


class MySqlEventDb(EventDb):
    """Event database on MySQL or MariaDB.

    Each connection works in READ COMMITTED, UTC and strict mode: the event
    count a transaction computes sees rows other runs committed, times are
    stored as given, and an over-long value fails instead of being cut.

    :param mysql_conn_id: Airflow connection of type ``mysql``.
    """

    schema_file = "mysql.sql"

    def __init__(self, mysql_conn_id: str) -> None:
        super().__init__()
        self.mysql_conn_id = mysql_conn_id

    def connect(self) -> None:
        from airflow.providers.mysql.hooks.mysql import MySqlHook

        conn = MySqlHook(mysql_conn_id=self.mysql_conn_id).get_conn()
        conn.set_character_set("utf8mb4")
        conn.autocommit(False)
        with conn.cursor() as cursor:
            cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            cursor.execute("SET time_zone = '+00:00'")
            cursor.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'")
        self._conn = conn
        self._create_tables()

    def _begin(self, cursor: Any, *, write: bool) -> None:
        """MySQLdb starts a transaction implicitly: autocommit is off."""

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s")

    def _is_transient(self, exc: BaseException) -> bool:
        import MySQLdb

        return (
            isinstance(exc, MySQLdb.OperationalError) and bool(exc.args) and exc.args[0] in _TRANSIENT_CODES
        )

    def _create_session(self, cursor: Any, session: Session, now: str) -> bool:
        cursor.execute(
            f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ({', '.join(['%s'] * 12)})"
            f" ON DUPLICATE KEY UPDATE {_SESSION_UPDATES}",
            session_row(session, now),
        )
        return cursor.rowcount > 0

    def _create_event_in_session(
        self, cursor: Any, session_id: str, events: Sequence[Event], now: str
    ) -> int:
        # A no-op update, not INSERT IGNORE: IGNORE would also hide truncation and other errors.
        cursor.executemany(
            f"INSERT INTO events ({EVENT_COLUMNS}) VALUES ({', '.join(['%s'] * 12)})"
            " ON DUPLICATE KEY UPDATE event_id = event_id",
            [event_row(event, now) for event in events],
        )
        return max(cursor.rowcount, 0)

    def _upsert_rejects(self, cursor: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        cursor.executemany(
            f"INSERT INTO ingest_rejects ({REJECT_COLUMNS}) VALUES ({', '.join(['%s'] * 7)})"
            " ON DUPLICATE KEY UPDATE reason = VALUES(reason), last_seen_at = VALUES(last_seen_at),"
            " dag_run_id = VALUES(dag_run_id), session_id = COALESCE(VALUES(session_id), session_id),"
            " resolved_at = NULL",
            rows,
        )
