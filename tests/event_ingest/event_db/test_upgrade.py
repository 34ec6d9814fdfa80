"""An event database the first version made (MySQL/MariaDB or SQLite) is upgraded on first connect.

``v1/*.sql`` are the first version's schema files, as it shipped them; rows are written the way it wrote
them. After the upgrade the tables have today's columns, the old rows are all there, the rejects can be
matched by session key and day, the per-day counts hold the old sessions, and loading goes on.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from event_ingest.event_db import EventDb, event_db_for, schema
from event_ingest.event_db.sqlite import SqliteEventDb
from event_ingest.model import Batch, Event, Session
from event_ingest.settings import DB_CONN_ID
from tools.services import MariaDbServer

V1 = Path(__file__).parent / "v1"
SESSION = "20261120T101533Z_veh042"
DAY = "2026-11-20"
V1_ROWS = [
    "INSERT INTO sessions VALUES ('{s}', 'veh042', NULL, '2026-11-20 10:15:33.120', NULL, '2026-11-20', NULL,"
    " 'raw/2026/11/20/{s}/{s}_logged_Upload_Report.json', 'etag-1', 2, '2026-11-21 00:01:00.000',"
    " '2026-11-21 00:01:00.000')",
    *[
        f"INSERT INTO events VALUES ('{Event.make_id(SESSION, f'AudioTags/tag_000{n}.wav')}', '{{s}}',"
        f" 'audio_tag', 'raw/2026/11/20/{{s}}/AudioTags/tag_000{n}.wav', {n}, NULL, 'unresolved', NULL, 10,"
        f" NULL, '/d/{n}.wav', '2026-11-21 00:01:00.000')"
        for n in (1, 2)
    ],
    "INSERT INTO ingest_rejects VALUES ('r1', 'raw/2026/11/20/{s}/AudioTags/tag_0003.wav', '{s}',"
    " 'audio tag: md5 mismatch', '2026-11-21 00:01:00.000', '2026-11-21 00:01:00.000', 'run-0', NULL)",
]


def statements(path: Path) -> list[str]:
    text = "\n".join(line for line in path.read_text().splitlines() if not line.startswith("--"))
    return [part.strip() for part in text.split(";\n") if part.strip()]


@pytest.fixture(params=["mysql", "sqlite"])
def first_version(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Callable[[], EventDb], Callable[[str], list[tuple[Any, ...]]]]]:
    """A database holding the first version's tables and rows: (open the new EventDb on it, run SQL)."""
    v1 = statements(V1 / f"{request.param}.sql") + [row.format(s=SESSION) for row in V1_ROWS]
    if request.param == "mysql":
        mariadb: MariaDbServer = request.getfixturevalue("mariadb")
        name = mariadb.create_database(f"t{uuid.uuid4().hex[:12]}")
        conn = mariadb.connect(name, charset="utf8mb4")
        conn.autocommit(True)
        for statement in v1:
            conn.cursor().execute(statement)
        monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_DB", mariadb.airflow_conn_uri(name))

        def query(statement: str) -> list[tuple[Any, ...]]:
            cursor = conn.cursor()
            cursor.execute(statement)
            return list(cursor.fetchall())

        yield (lambda: event_db_for(DB_CONN_ID, tmp_path)), query
        conn.close()
        mariadb.drop_database(name)
    else:
        path = tmp_path / "events.sqlite3"
        with sqlite3.connect(path) as conn:
            for statement in v1:
                conn.execute(statement)

        def query_sqlite(statement: str) -> list[tuple[Any, ...]]:
            with sqlite3.connect(path) as reader:
                return list(reader.execute(statement))

        yield (lambda: SqliteEventDb.at(path)), query_sqlite


def test_the_first_versions_database_is_upgraded_and_loading_goes_on(
    first_version: tuple[Callable[[], EventDb], Callable[[str], list[tuple[Any, ...]]]],
) -> None:
    open_db, query = first_version

    with open_db() as db:
        state = db.session_states([SESSION])[SESSION]
        assert (state.report_etag, state.session_date, state.open_rejects) == ("etag-1", DAY, 1)
        assert set(db.known_events([SESSION])) == {
            Event.make_id(SESSION, f"AudioTags/tag_000{n}.wav") for n in (1, 2)
        }
        assert db.day_counts(dt.date(2026, 11, 20), dt.date(2026, 11, 20))[0]["sessions"] == 1
        with db.transaction(write=False) as cursor:
            for table in schema.ALL_TABLES:
                cursor.execute(db.columns_query, (table.name,))
                assert set(table.columns) <= {str(name).lower() for (name,) in cursor.fetchall()}, table.name
        session = Session(
            SESSION,
            "veh042",
            None,
            "2026-11-20 10:15:33.120",
            None,
            DAY,
            None,
            "raw/k",
            "etag-2",
            tags_digest="d" * 32,
        )
        result = db.load_batch(Batch(index=0, sessions=[session], processed=[SESSION]), "run-1")

    assert (result.sessions, result.events) == (1, 0)
    assert query("SELECT session_key, session_date FROM ingest_rejects") != []
    ((key, day),) = query("SELECT session_key, session_date FROM ingest_rejects")
    assert (key, str(day)) == (schema.session_key(SESSION), DAY)
    assert [tuple(map(int, row[1:])) for row in query("SELECT day, sessions, events FROM ingest_days")] == [
        (1, 2)
    ]
    assert query("SELECT report_etag, tags_digest FROM sessions") == [("etag-2", "d" * 32)]
    with open_db() as again:  # connecting again upgrades nothing twice
        assert again.session_states([SESSION])[SESSION].report_etag == "etag-2"
