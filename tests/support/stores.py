"""The event database of one test, on each backend: MariaDB, PostgreSQL or SQLite.

A store is the test's side of the database the pipeline writes: the ``AIRFLOW_CONN_EVENT_INGEST_DB``
value that points the pipeline at it, and reads that open a fresh connection each time (the server may
have been killed and restarted since the last one). A test that kills the pipeline's connection asks
the store for that connection's server-side id and for the statement that ends it, so that the same
test runs on every backend.
"""

from __future__ import annotations

import abc
import json
import pprint
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from tools.services import LocalPostgres, MariaDbServer

#: Columns that say when and by which run a row was written, not what it holds.
VOLATILE = frozenset({"ingested_at", "updated_at", "first_seen_at", "last_seen_at", "dag_run_id"})
#: The tables whose rows are the pipeline's result (the run ledger is per run, so not among them).
RESULT_TABLES = ("sessions", "events", "ingest_rejects", "ingest_deferrals", "ingest_days")
#: Each result table's key: no two rows may share one.
KEYS = {
    "sessions": ("session_id",),
    "events": ("event_id",),
    "ingest_rejects": ("reject_id",),
    "ingest_deferrals": ("deferral_id",),
    "ingest_days": ("day",),
}


class EventStore(abc.ABC):
    """One test's event database. Statements use ``%s`` placeholders on every backend."""

    backend: str

    @abc.abstractmethod
    def airflow_conn(self) -> str:
        """The value of ``AIRFLOW_CONN_EVENT_INGEST_DB`` that points the pipeline here."""

    @abc.abstractmethod
    def connect(self) -> Any:
        """A new autocommit DB-API connection."""

    @abc.abstractmethod
    def table_exists(self, table: str) -> bool: ...

    @abc.abstractmethod
    def drop(self) -> None: ...

    def _statement(self, statement: str) -> str:
        return statement

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        with closing(self.connect()) as conn:
            cursor = conn.cursor()
            try:
                yield cursor
            finally:
                cursor.close()

    def query(self, statement: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Rows of ``statement`` as dicts, read on a fresh connection."""
        with self.cursor() as cursor:
            cursor.execute(self._statement(statement), args)
            names = [d[0] for d in cursor.description] if cursor.description else []
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def execute(self, statement: str, args: tuple[Any, ...] = ()) -> None:
        with self.cursor() as cursor:
            cursor.execute(self._statement(statement), args)

    def rows(self, table: str) -> list[dict[str, Any]]:
        return self.query(f"SELECT * FROM {table}")

    def sessions(self) -> dict[str, dict[str, Any]]:
        return {r["session_id"]: r for r in self.rows("sessions")}

    def events(self) -> dict[str, dict[str, Any]]:
        return {r["s3_key"]: r for r in self.rows("events")}

    def open_rejects(self) -> dict[str, dict[str, Any]]:
        return {
            r["object_key"]: r for r in self.query("SELECT * FROM ingest_rejects WHERE resolved_at IS NULL")
        }

    def half_written_sessions(self) -> list[tuple[Any, ...]]:
        """Sessions whose ``event_count`` disagrees with their rows in ``events``, read in one statement.

        One statement reads one snapshot (InnoDB's consistent read, PostgreSQL's statement snapshot
        under READ COMMITTED), so a session and its events are seen as of the same moment.
        """
        rows = self.query(
            "SELECT s.session_id, s.event_count,"
            " (SELECT COUNT(*) FROM events e WHERE e.session_id = s.session_id) AS found FROM sessions s"
        )
        return [tuple(r.values()) for r in rows if r["event_count"] != r["found"]]

    def duplicate_keys(self) -> dict[str, list[tuple[Any, ...]]]:
        """Keys held by more than one row, per result table (empty lists when all is well).

        The tables' own keys forbid this; the check proves it against the rows, not the DDL.
        """
        found: dict[str, list[tuple[Any, ...]]] = {}
        for table, key in KEYS.items():
            columns = ", ".join(key)
            rows = self.query(
                f"SELECT {columns}, COUNT(*) AS n FROM {table} GROUP BY {columns} HAVING COUNT(*) > 1"
            )
            found[table] = [tuple(r.values()) for r in rows]
        events = self.query(
            "SELECT session_id, s3_key, COUNT(*) AS n FROM events"
            " GROUP BY session_id, s3_key HAVING COUNT(*) > 1"
        )
        found["events by (session_id, s3_key)"] = [tuple(r.values()) for r in events]
        return found

    def snapshot(self, ignore: dict[str, set[str]] | None = None) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of the result tables, every column but those ``ignore`` names per table, sorted."""
        ignore = ignore or {}
        return {
            table: sorted(
                (
                    tuple((k, v) for k, v in row.items() if k not in ignore.get(table, ()))
                    for row in self.rows(table)
                ),
                key=repr,
            )
            for table in RESULT_TABLES
        }

    def semantic_state(self, data_dir: Path) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of the result tables less when and by which run it was written, as sorted lists.

        Lists, not sets: a row written twice shows up twice. ``local_path`` is made relative to
        ``data_dir`` and ``resolved_at`` reduced to open or resolved, so that two databases filled by
        different runs (into different data directories) compare equal when they hold the same data.
        """
        state: dict[str, list[tuple[Any, ...]]] = {}
        for table in RESULT_TABLES:
            rows = []
            for row in self.rows(table):
                if row.get("local_path"):
                    row["local_path"] = str(Path(row["local_path"]).relative_to(data_dir))
                if "resolved_at" in row:
                    row["resolved_at"] = row["resolved_at"] is not None
                rows.append(tuple((k, v) for k, v in row.items() if k not in VOLATILE))
            state[table] = sorted(rows, key=repr)
        return state


class ServerStore(EventStore):
    """A database on a server, whose connections the test can end from the server's side."""

    @staticmethod
    @abc.abstractmethod
    def connection_id(conn: Any) -> int:
        """The server's id of a connection the pipeline holds (``EventDb.conn``)."""

    @abc.abstractmethod
    def kill_connection(self, connection_id: int) -> None:
        """End that connection from the server's side, as an administrator (or a crash) would."""

    @abc.abstractmethod
    def begin(self) -> Any:
        """A new connection with a transaction open (not autocommit): the caller rolls back or commits."""

    @abc.abstractmethod
    @contextmanager
    def lock_waits_fail_at_once(self) -> Iterator[None]:
        """Make the pipeline's statements fail as soon as they would wait for a row lock, until the end.

        Only connections opened inside see it (the pipeline opens one per task).
        """

    @abc.abstractmethod
    @contextmanager
    def user_without_insert(self, table: str, tables: tuple[str, ...]) -> Iterator[str]:
        """A login of this database that may do everything to ``tables`` but INSERT into ``table``.

        Yields its ``AIRFLOW_CONN_EVENT_INGEST_DB`` value; drops the login afterwards.
        """

    @abc.abstractmethod
    def grant_insert(self, table: str) -> None:
        """Give :meth:`user_without_insert`'s login the INSERT it lacks."""

    @contextmanager
    def row_held(self, table: str, row: dict[str, Any]) -> Iterator[None]:
        """Hold ``row`` inserted but uncommitted, as a stuck writer would: anyone writing that key waits."""
        conn = self.begin()
        try:
            cursor = conn.cursor()
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(['%s'] * len(row))})",
                tuple(row.values()),
            )
            yield
        finally:
            conn.rollback()
            conn.close()


class MariaDbStore(ServerStore):
    """A database of its own on the fault tests' private MariaDB server."""

    backend = "mariadb"

    def __init__(self, server: MariaDbServer, name: str) -> None:
        self.server = server
        self.name = server.create_database(name)

    def airflow_conn(self) -> str:
        return self.server.airflow_conn_uri(self.name)

    def connect(self) -> Any:
        conn = self.server.connect(self.name, charset="utf8mb4")
        conn.autocommit(True)
        return conn

    def table_exists(self, table: str) -> bool:
        return bool(self.query("SHOW TABLES LIKE %s", (table,)))

    def drop(self) -> None:
        self.server.drop_database(self.name)

    @staticmethod
    def connection_id(conn: Any) -> int:
        return int(conn.thread_id())

    def begin(self) -> Any:
        conn = self.server.connect(self.name, charset="utf8mb4")
        conn.autocommit(False)
        return conn

    @contextmanager
    def user_without_insert(self, table: str, tables: tuple[str, ...]) -> Iterator[str]:
        self.user = f"u_{self.name}"[:32]
        self.execute(f"CREATE USER '{self.user}'@'127.0.0.1'")
        try:
            self.execute(f"GRANT SELECT, UPDATE, DELETE ON `{self.name}`.* TO '{self.user}'@'127.0.0.1'")
            for other in tables:
                if other != table:
                    self.execute(f"GRANT INSERT ON `{self.name}`.`{other}` TO '{self.user}'@'127.0.0.1'")
            yield f"mysql://{self.user}@127.0.0.1:{self.server.port}/{self.name}"
        finally:
            self.execute(f"DROP USER '{self.user}'@'127.0.0.1'")

    def grant_insert(self, table: str) -> None:
        self.execute(f"GRANT INSERT ON `{self.name}`.`{table}` TO '{self.user}'@'127.0.0.1'")

    @contextmanager
    def lock_waits_fail_at_once(self) -> Iterator[None]:
        # A server variable of the fault tests' own server (0: no wait at all), restored afterwards.
        (before,) = self.query("SELECT @@GLOBAL.innodb_lock_wait_timeout AS t")[0].values()
        self.execute("SET GLOBAL innodb_lock_wait_timeout = 0")
        try:
            yield
        finally:
            self.execute(f"SET GLOBAL innodb_lock_wait_timeout = {int(before)}")

    def kill_connection(self, connection_id: int) -> None:
        with closing(self.server.connect()) as admin:
            admin.cursor().execute(f"KILL {int(connection_id)}")


class PostgresStore(ServerStore):
    """A database of its own on the machine's PostgreSQL server."""

    backend = "postgres"

    def __init__(self, server: LocalPostgres, name: str) -> None:
        self.server = server
        self.name = server.create_database(name)

    def airflow_conn(self) -> str:
        return self.server.airflow_conn_uri(self.name)

    def connect(self) -> Any:
        return self.server.connect(self.name)

    def table_exists(self, table: str) -> bool:
        return self.query("SELECT to_regclass(%s) IS NOT NULL AS found", (table,))[0]["found"]

    def drop(self) -> None:
        self.server.drop_database(self.name)

    @staticmethod
    def connection_id(conn: Any) -> int:
        return int(conn.info.backend_pid)

    def begin(self) -> Any:
        conn = self.server.connect(self.name)
        conn.autocommit = False
        return conn

    @contextmanager
    def user_without_insert(self, table: str, tables: tuple[str, ...]) -> Iterator[str]:
        # Roles are the server's, not the database's: the name is this test's own.
        self.user = f"u_{self.name}"
        with closing(self.server.connect()) as admin:
            admin.execute(f"CREATE ROLE {self.user} LOGIN")
        try:
            self.execute(f"GRANT SELECT, UPDATE, DELETE ON {', '.join(tables)} TO {self.user}")
            self.execute(f"GRANT INSERT ON {', '.join(t for t in tables if t != table)} TO {self.user}")
            yield f"postgres://{self.user}@{self.server.host}:{self.server.port}/{self.name}"
        finally:
            self.execute(f"REVOKE ALL ON {', '.join(tables)} FROM {self.user}")
            with closing(self.server.connect(self.name)) as admin:
                admin.execute(
                    f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{self.user}'"
                )
                admin.execute(f"DROP ROLE {self.user}")

    def grant_insert(self, table: str) -> None:
        self.execute(f"GRANT INSERT ON {table} TO {self.user}")

    @contextmanager
    def lock_waits_fail_at_once(self) -> Iterator[None]:
        # A setting of this test's own database, on the shared server: the pipeline's sessions take it.
        self.execute(f"ALTER DATABASE {self.name} SET lock_timeout = '50ms'")
        try:
            yield
        finally:
            self.execute(f"ALTER DATABASE {self.name} RESET lock_timeout")

    def kill_connection(self, connection_id: int) -> None:
        # The shared server must not be killed: ending the backend loses the connection just the same.
        with closing(self.server.connect()) as admin:
            (ended,) = admin.execute("SELECT pg_terminate_backend(%s)", (connection_id,)).fetchone()
        assert ended, f"no PostgreSQL backend {connection_id} to terminate"


class SqliteStore(EventStore):
    """The embedded backend: one SQLite file, written by every process that runs on it."""

    backend = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path

    def airflow_conn(self) -> str:
        return json.dumps({"conn_type": "sqlite", "host": str(self.path)})

    def connect(self) -> Any:
        return sqlite3.connect(self.path, isolation_level=None)

    def _statement(self, statement: str) -> str:
        return statement.replace("%s", "?")

    def table_exists(self, table: str) -> bool:
        return bool(self.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = %s", (table,)))

    def drop(self) -> None:
        for path in self.path.parent.glob(f"{self.path.name}*"):
            path.unlink()


def changed_rows(before: dict[str, list[tuple[Any, ...]]], after: dict[str, list[tuple[Any, ...]]]) -> str:
    """The rows only one of two snapshots holds, per table: what an assertion message should show."""
    changed = {}
    for table in sorted(set(before) | set(after)):
        old, new = before.get(table, []), after.get(table, [])
        gone = [row for row in old if row not in new]
        added = [row for row in new if row not in old]
        if gone or added:
            changed[table] = {"before": gone, "after": added}
    return pprint.pformat(changed, width=110)
