"""What the view reads from the event database, as JSON-ready records: the API and the page share it.

The database is the one the DAG writes: connection ``event_ingest_db`` (the embedded SQLite file in
the data directory when there is none) and Variable ``event_ingest_data_dir``, both looked up per
request, so that a changed connection or Variable takes effect without restarting the API server and
nothing is read when the plugin is imported. The reads are :class:`~event_ingest.event_db.EventDb`'s
own; here their values get one form on every backend: days ``YYYY-MM-DD``, times ISO 8601 UTC with
milliseconds (``2026-11-20T10:15:33.120Z``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from event_ingest import settings
from event_ingest.event_db import EventDb, event_db_for

log = logging.getLogger(__name__)

#: Columns that hold a day or a time, by the name every backend gives them.
_DAY_COLUMNS = frozenset({"day", "session_date", "first_day", "last_day"})
_TIME_COLUMNS = frozenset({"first_seen_at", "last_seen_at", "started_at", "finished_at"})


class DatabaseUnavailable(RuntimeError):
    """The event database could not be reached or read (the app answers 503)."""


def data_dir() -> Path:
    """Variable ``event_ingest_data_dir``, else the DAG's default: ``$AIRFLOW_HOME/event_ingest_data``."""
    from airflow.sdk import Variable

    return settings.data_dir(Variable.get(settings.DATA_DIR_VARIABLE, default=None))


@contextmanager
def event_db() -> Iterator[EventDb]:
    """The event database, connected for one request (without DDL: the DAG makes the tables).

    :raises DatabaseUnavailable: the database cannot be reached. The cause is logged, not shown: a
        driver's message can name hosts and users.
    """
    try:
        db = event_db_for(settings.DB_CONN_ID, data_dir())
        db.connect(create_tables=False)
    except Exception as exc:
        log.exception("The ingest view cannot open the event database")
        raise DatabaseUnavailable(f"the event database is unavailable ({type(exc).__name__})") from exc
    try:
        yield db
    finally:
        db.close()


@contextmanager
def _reading(what: str) -> Iterator[None]:
    """Turn a failed read into :class:`DatabaseUnavailable` (logged; also: no run made the tables yet)."""
    try:
        yield
    except Exception as exc:
        log.exception("The ingest view cannot read %s", what)
        raise DatabaseUnavailable(
            f"the event database could not be read ({type(exc).__name__});"
            " event_ingest makes its tables on its first run"
        ) from exc


def days(db: EventDb, first: dt.date, last: dt.date) -> list[dict[str, Any]]:
    """One record a day of ``first``..``last``, ascending: ``day``, ``sessions``, ``events``,
    ``open_rejects``, ``deferred`` (zeros for days with nothing)."""
    with _reading("the day counts"):
        return _records(db.day_counts(first, last))


def open_rejects(db: EventDb, day: dt.date, limit: int) -> list[dict[str, Any]]:
    """The open rejects of ``day`` (the session folder's day), oldest first."""
    with _reading("the open rejects"):
        return _records(db.open_rejects(day, limit=limit))


def deferred_sessions(db: EventDb, limit: int) -> list[dict[str, Any]]:
    """Sessions waiting for their upload to complete, the longest-waiting first."""
    with _reading("the deferred sessions"):
        return _records(db.deferred_sessions(limit=limit))


def latest_runs(db: EventDb, limit: int) -> list[dict[str, Any]]:
    """The latest ``ingest_runs`` rows, newest first."""
    with _reading("the runs"):
        return _records(db.latest_runs(limit=limit))


def _records(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{name: _value(name, value) for name, value in row.items()} for row in rows]


def _value(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _TIME_COLUMNS:
        return iso_time(value)
    if name in _DAY_COLUMNS:
        return value.isoformat() if isinstance(value, dt.date) else str(value)
    return value


def iso_time(value: dt.datetime | str) -> str:
    """A stored UTC time (a naive ``datetime``, or SQLite's text) as ``YYYY-MM-DDTHH:MM:SS.fffZ``."""
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds") + "Z"
