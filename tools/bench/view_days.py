"""The ingest view's days endpoint on a year of data: ``python -m tools.bench.view_days``.

Fills a throwaway MariaDB (default settings, a 128 MiB buffer pool) with a year of days at 10,000
sessions a day: ``sessions`` rows (3.65 million, multi-row INSERTs), the loader's per-day counts in
``ingest_days`` (50,000 events a day), and per day some open and resolved rejects and a few
deferrals. The events table stays empty: no query of the days endpoint reads it (its per-day counts
are ``ingest_days``'). Then it times, over ``--repeat`` requests each:

- ``EventDb.day_counts`` over 366 days (the three indexed reads);
- ``GET /event-ingest/api/days`` for the same range through Airflow's own API app (``create_app()``,
  the app ``airflow api-server`` serves: its middlewares, the JWT check, the plugin mount, a new
  database connection per request), in process;
- for contrast, the ``GROUP BY session_date`` over ``sessions`` that ``ingest_days`` saves,

prints the query plans (which index serves each read) and writes ``var/bench/view_days.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tools.dag_runs import airflow_environment

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "var" / "bench" / "view_days.json"
ROWS_PER_INSERT = 1000
FIRST_DAY = dt.date(2026, 1, 1)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench.view_days", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--days", type=int, default=365, help="days of data (default 365)")
    parser.add_argument("--sessions-per-day", type=int, default=10_000, help="default 10,000")
    parser.add_argument("--open-rejects-per-day", type=int, default=40, help="default 40")
    parser.add_argument("--resolved-rejects-per-day", type=int, default=60, help="default 60")
    parser.add_argument("--deferred-per-day", type=int, default=5, help="default 5")
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per measurement (default 30)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    home = Path(tempfile.mkdtemp(prefix="view-days-airflow-"))
    os.environ.update(airflow_environment(home))
    os.environ["AIRFLOW__API_AUTH__JWT_SECRET"] = secrets.token_urlsafe(32)
    sys.path.insert(0, str(ROOT / "plugins"))

    from tools.services import MariaDbServer

    with MariaDbServer() as server:
        database = server.create_database(f"view{uuid.uuid4().hex[:8]}")
        os.environ["AIRFLOW_CONN_EVENT_INGEST_DB"] = server.airflow_conn_uri(database)
        os.environ["AIRFLOW_VAR_EVENT_INGEST_DATA_DIR"] = str(home / "data")
        rows, fill_s = _fill(server, database, args)
        print(f"filled {rows:,} rows in {fill_s:.0f} s ({rows / fill_s:,.0f} rows/s)", flush=True)
        result = _measure(server, database, args)
    result |= {"rows": rows, "fill_seconds": round(fill_s, 1), "arguments": vars(args)}
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(result, indent=2, default=str) + "\n")
    _report(result)
    print(f"results: {OUTPUT}")
    return 0


def _days(args: argparse.Namespace) -> list[dt.date]:
    return [FIRST_DAY + dt.timedelta(days=n) for n in range(args.days)]


def _fill(server: Any, database: str, args: argparse.Namespace) -> tuple[int, float]:
    """The tables, made by ``EventDb`` itself, then a year of rows in multi-row INSERTs: rows, seconds."""
    from event_ingest.event_db import event_db_for

    with event_db_for("event_ingest_db", "."):
        pass  # connect() makes the tables
    started = time.monotonic()
    conn = server.connect(database)
    cursor = conn.cursor()
    total = 0
    try:
        for day in _days(args):
            total += _insert(cursor, "sessions", _sessions(day, args.sessions_per_day))
            total += _insert(cursor, "ingest_rejects", _rejects(day, args))
            total += _insert(cursor, "ingest_deferrals", _deferrals(day, args.deferred_per_day))
            conn.commit()
            if day.day == 1:
                print(f"  {day:%Y-%m}: {total:,} rows", flush=True)
        total += _insert(
            cursor,
            "ingest_days",
            [(day, args.sessions_per_day, 5 * args.sessions_per_day) for day in _days(args)],
        )
        conn.commit()
        for table in ("sessions", "ingest_rejects", "ingest_deferrals", "ingest_days"):
            cursor.execute(f"ANALYZE TABLE {table}")
            cursor.fetchall()
    finally:
        conn.close()
    return total, time.monotonic() - started


def _insert(cursor: Any, table: str, rows: list[tuple[Any, ...]]) -> int:
    if not rows:
        return 0
    marks = "(" + ", ".join(["%s"] * len(rows[0])) + ")"
    columns = _COLUMNS[table]
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start : start + ROWS_PER_INSERT]
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([marks] * len(chunk))}",
            [value for row in chunk for value in row],
        )
    return len(rows)


_COLUMNS = {
    "sessions": (
        "session_id", "vehicle_id", "driver_id", "started_at", "ended_at", "session_date",
        "software_version", "report_key", "report_etag", "tags_digest", "file_types", "event_count",
        "ingested_at", "updated_at",
    ),
    "ingest_rejects": (
        "reject_id", "object_key", "session_key", "session_id", "session_date", "reason",
        "first_seen_at", "last_seen_at", "dag_run_id", "resolved_at",
    ),
    "ingest_deferrals": (
        "deferral_id", "session_key", "session_id", "session_date", "report_key", "reason",
        "first_seen_at", "last_seen_at", "dag_run_id",
    ),
    "ingest_days": ("day", "sessions", "events"),
}  # fmt: skip


def _session_id(day: dt.date, n: int) -> str:
    return f"{day:%Y%m%d}T{n % 86400:05d}Z_veh{n:05d}"


def _sessions(day: dt.date, count: int) -> list[tuple[Any, ...]]:
    midnight = dt.datetime(day.year, day.month, day.day)
    loaded = midnight + dt.timedelta(days=1, hours=2)
    rows = []
    for n in range(count):
        session_id = _session_id(day, n)
        start = midnight + dt.timedelta(seconds=(n * 8.64) % 86400)
        rows.append(
            (
                session_id, f"veh{n:05d}", f"drv-{n % 300}", start, start + dt.timedelta(minutes=47), day,
                "4.12.0", f"{day:%Y/%m/%d}/{session_id}/{session_id}_logged_Upload_Report.json",
                uuid.uuid4().hex, uuid.uuid4().hex, "audio_tag", 5, loaded, loaded,
            )
        )  # fmt: skip
    return rows


def _rejects(day: dt.date, args: argparse.Namespace) -> list[tuple[Any, ...]]:
    seen = dt.datetime(day.year, day.month, day.day) + dt.timedelta(days=1, hours=2)
    rows = []
    for n in range(args.open_rejects_per_day + args.resolved_rejects_per_day):
        session_id = _session_id(day, 100_000 + n)
        resolved = seen + dt.timedelta(days=1) if n >= args.open_rejects_per_day else None
        rows.append(
            (
                uuid.uuid4().hex, f"{day:%Y/%m/%d}/{session_id}/AudioTags/tag_0001.wav", uuid.uuid4().hex,
                session_id, day, "audio tag: md5 mismatch", seen, seen, "scheduled__x", resolved,
            )
        )  # fmt: skip
    return rows


def _deferrals(day: dt.date, count: int) -> list[tuple[Any, ...]]:
    seen = dt.datetime(day.year, day.month, day.day) + dt.timedelta(days=1, hours=2)
    rows = []
    for n in range(count):
        session_id = _session_id(day, 200_000 + n)
        rows.append(
            (
                uuid.uuid4().hex, uuid.uuid4().hex, session_id, day,
                f"{day:%Y/%m/%d}/{session_id}/{session_id}_logged_Upload_Report.json",
                "upload status is 'in_progress'", seen, seen, "scheduled__x",
            )
        )  # fmt: skip
    return rows


def _timed(call: Callable[[], Any], repeat: int) -> dict[str, float]:
    call()  # warm: the first request imports Airflow's API modules and opens the pools
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 2),
        "max_ms": round(times[-1], 2),
    }


def _measure(server: Any, database: str, args: argparse.Namespace) -> dict[str, Any]:
    from airflow.utils import db as airflow_db

    airflow_db.initdb()
    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    from event_ingest.event_db import event_db_for

    last = FIRST_DAY + dt.timedelta(days=365)
    path = f"/event-ingest/api/days?start={FIRST_DAY}&end={last}"
    result: dict[str, Any] = {"range": [FIRST_DAY.isoformat(), last.isoformat()]}

    with event_db_for("event_ingest_db", ".") as db:
        days = db.day_counts(FIRST_DAY, last)
        assert len(days) == 366
        assert sum(d["sessions"] for d in days) == args.days * args.sessions_per_day
        result["day_counts"] = _timed(lambda: db.day_counts(FIRST_DAY, last), args.repeat)

    with TestClient(create_app()) as client:
        token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
        headers = {"Authorization": f"Bearer {token}"}

        def request() -> None:
            response = client.get(path, headers=headers)
            response.raise_for_status()
            assert len(response.json()) == 366

        result["endpoint"] = _timed(request, args.repeat)

    conn = server.connect(database)
    cursor = conn.cursor()
    try:
        bounds = (FIRST_DAY, last)
        plans = {}
        for name, statement in _DAY_QUERIES.items():
            cursor.execute("EXPLAIN " + statement, bounds)
            names = [d[0] for d in cursor.description]
            plans[name] = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        result["plans"] = {
            name: [{k: p[k] for k in ("table", "type", "key", "rows", "Extra")} for p in plan]
            for name, plan in plans.items()
        }

        def naive() -> None:
            cursor.execute(
                "SELECT session_date, COUNT(*) FROM sessions WHERE session_date BETWEEN %s AND %s"
                " GROUP BY session_date",
                bounds,
            )
            cursor.fetchall()

        result["group_by_sessions"] = _timed(naive, min(args.repeat, 5))
    finally:
        conn.close()
    return result


#: The three reads of ``EventDb.day_counts``, as MySQL runs them (for EXPLAIN).
_DAY_QUERIES = {
    "ingest_days": "SELECT day, sessions, events FROM ingest_days WHERE day BETWEEN %s AND %s",
    "open_rejects": (
        "SELECT session_date, COUNT(*) FROM ingest_rejects WHERE resolved_at IS NULL"
        " AND session_date BETWEEN %s AND %s GROUP BY session_date"
    ),
    "deferrals": (
        "SELECT session_date, COUNT(*) FROM ingest_deferrals WHERE session_date BETWEEN %s AND %s"
        " GROUP BY session_date"
    ),
}


def _report(result: dict[str, Any]) -> None:
    print(f"\na year of days, {result['range'][0]} .. {result['range'][1]} (366 days):")
    for name, label in (
        ("day_counts", "EventDb.day_counts"),
        ("endpoint", "GET /event-ingest/api/days"),
        ("group_by_sessions", "GROUP BY over sessions"),
    ):
        t = result[name]
        times = "  ".join(
            f"{k.removesuffix('_ms')} {t[k]:>8.2f} ms" for k in ("median_ms", "p95_ms", "max_ms")
        )
        print(f"  {label:<28} {times}")
    print("plans:")
    for name, plan in result["plans"].items():
        for step in plan:
            where = f"{step['table']:<17} {step['type']:<6} key={step['key']}"
            print(f"  {name:<13} {where} rows={step['rows']} {step['Extra']}")


if __name__ == "__main__":
    sys.exit(main())
