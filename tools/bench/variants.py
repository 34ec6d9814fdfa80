"""The four ways of ingesting one day that the benchmark compares, each run in a process of its own.

- ``pipeline``: the project's own steps (``event_ingest.steps``), called per batch the way the operators
  call them: a fresh ``AwsHelper`` and ``EventDb`` per task, the batch through its XCom form between
  steps, every batch of a step before the next step (a mapped task's downstream waits for all of it).
  Airflow's own per-task cost (scheduling, process start, XCom storage) is left out.
- ``naive``: the old job's way: boto3, a listing per session, one existence query per session, one
  autocommitted INSERT per row, one download at a time.
- ``floor``: the best boto3-only code: one paginated listing of the day, 16 threads each taking a
  session's GETs, one ``executemany`` per table per batch in one transaction.
- ``limit``: every GET the pipeline made, through obstore's async API at high concurrency, bodies
  discarded.

Run as ``python -m tools.bench.variants CONFIG.json``; the result goes to ``config["result"]``.
Requests and round trips are counted where they leave Python: boto3 operations, obstore GETs and
MySQLdb queries, commits and rollbacks.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import resource
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "include" / "sql" / "mysql.sql"
#: The boto3 operations and obstore calls, by the kind of S3 request they make.
_KINDS = {"ListObjectsV2": "LIST", "ListObjects": "LIST", "GetObject": "GET", "HeadBucket": "HEAD"}


class Counters:
    """S3 requests by kind, SQL round trips and the keys read, counted across threads."""

    def __init__(self) -> None:
        self.s3: Counter[str] = Counter()
        self.sql = 0
        self.keys: list[str] = []
        self._lock = threading.Lock()

    def s3_request(self, kind: str, key: str | None = None) -> None:
        with self._lock:
            self.s3[kind] += 1
            if key is not None:
                self.keys.append(key)

    def sql_round_trip(self) -> None:
        with self._lock:
            self.sql += 1

    def install(self) -> None:
        """Count every boto3 S3 call, obstore GET and MySQLdb round trip of this process."""
        import MySQLdb.connections
        import MySQLdb.cursors
        import obstore
        from botocore.client import BaseClient

        counters = self
        make_api_call = BaseClient._make_api_call

        def counted_api_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
            counters.s3_request(_KINDS.get(operation, operation), params.get("Key"))
            return make_api_call(client, operation, params)

        BaseClient._make_api_call = counted_api_call  # type: ignore[method-assign]

        obstore_get = obstore.get

        def counted_get(store: Any, path: str, **kwargs: Any) -> Any:
            counters.s3_request("GET", path)
            return obstore_get(store, path, **kwargs)

        obstore.get = counted_get
        obstore_get_async = obstore.get_async

        def counted_get_async(store: Any, path: str, **kwargs: Any) -> Any:
            counters.s3_request("GET", path)
            return obstore_get_async(store, path, **kwargs)

        obstore.get_async = counted_get_async

        query = MySQLdb.cursors.BaseCursor._query

        def counted_query(cursor: Any, q: Any) -> Any:
            counters.sql_round_trip()
            return query(cursor, q)

        MySQLdb.cursors.BaseCursor._query = counted_query  # type: ignore[method-assign]
        for name in ("commit", "rollback"):
            method = getattr(MySQLdb.connections.Connection, name)

            def counted(conn: Any, _method: Callable[[Any], Any] = method) -> Any:
                counters.sql_round_trip()
                return _method(conn)

            setattr(MySQLdb.connections.Connection, name, counted)


def peak_rss_mb() -> float:
    """This process's peak resident set, from ``VmHWM`` (``ru_maxrss`` would count the parent's too)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- pipeline -------------------------------------------------------------------------------------------


def run_pipeline(config: dict[str, Any], counters: Counters) -> dict[str, Any]:
    # A task process has imported these before its task starts: leave the import time out.
    import airflow.providers.amazon.aws.hooks.s3
    import airflow.providers.mysql.hooks.mysql  # noqa: F401
    import MySQLdb  # noqa: F401
    import obstore.store  # noqa: F401

    import event_ingest.operators  # noqa: F401
    from event_ingest import settings, steps
    from event_ingest.aws_helper import AwsHelper
    from event_ingest.event_db import event_db_for
    from event_ingest.model import Batch

    data_dir = Path(config["data_dir"])
    day = dt.date.fromisoformat(config["day"])

    def aws() -> AwsHelper:
        return AwsHelper(
            aws_conn_id=settings.S3_CONN_ID,
            bucket=config["bucket"],
            concurrency=settings.S3_CONCURRENCY,
            data_plane=config.get("data_plane") or settings.DATA_PLANE,
        )

    def db_task(func: Callable[[Any, Batch], Batch | steps.BatchSummary], xcom: dict[str, Any]) -> Any:
        db = event_db_for(settings.DB_CONN_ID, data_dir)
        db.connect()
        try:
            return func(db, Batch.from_dict(xcom))
        finally:
            db.close()

    step_s: dict[str, float] = {}
    sql_per_step: dict[str, int] = {}
    started = time.perf_counter()

    def timed(name: str, func: Callable[[], Any]) -> Any:
        t0, sql0 = time.perf_counter(), counters.sql
        result = func()
        step_s[name] = step_s.get(name, 0.0) + time.perf_counter() - t0
        sql_per_step[name] = sql_per_step.get(name, 0) + counters.sql - sql0
        return result

    batches = timed("discover", lambda: steps.discover(aws(), [day], config["batch_size"], 1024))
    xcoms = [b.to_dict() for b in batches]
    xcoms = [
        timed("filter_existing", lambda x=x: db_task(lambda db, b: steps.filter_existing(db, b), x).to_dict())
        for x in xcoms
    ]
    xcoms = [
        timed(
            "fetch_metadata",
            lambda x=x: db_task(lambda db, b: steps.fetch_metadata(aws(), db, b, data_dir), x).to_dict(),
        )
        for x in xcoms
    ]
    xcoms = [
        timed(
            "download_audio",
            lambda x=x: steps.download_audio(aws(), Batch.from_dict(x), data_dir).to_dict(),
        )
        for x in xcoms
    ]
    summaries = [
        timed("load_to_db", lambda x=x: vars(db_task(lambda db, b: steps.load(db, b, "bench"), x)))
        for x in xcoms
    ]
    wall = time.perf_counter() - started
    total = steps.BatchSummary.total(summaries)
    return {
        "wall_s": wall,
        "batches": len(batches),
        "sessions": total.loaded_sessions,
        "events": total.loaded_events,
        "step_s": step_s,
        "sql_per_step": sql_per_step,
    }


# -- shared by naive and floor --------------------------------------------------------------------------


def _mysql(config: dict[str, Any], *, autocommit: bool) -> Any:
    import MySQLdb

    db = config["db"]
    conn = MySQLdb.connect(
        host=db["host"], port=db["port"], user=db["user"], database=db["database"], charset="utf8mb4"
    )
    conn.autocommit(autocommit)
    cursor = conn.cursor()
    cursor.execute("SET time_zone = '+00:00'")
    for statement in SCHEMA.read_text(encoding="utf-8").split(";\n"):
        body = "\n".join(line for line in statement.splitlines() if not line.startswith("--"))
        if body.strip():
            cursor.execute(body)
    conn.commit()
    return conn


def _body(client: Any, bucket: str, key: str) -> bytes:
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def _read_session(
    get: Callable[[str], bytes],
    data_dir: Path,
    day: dt.date,
    session_id: str,
    prefix: str,
    report_key: str,
    etag: str,
    objects: dict[str, int],
) -> Any:
    """Read, parse and save a session's report, resolve its event times, download its audio tags."""
    from event_ingest import display_log, files, layout
    from event_ingest.model import TIME_FROM_DISPLAY_LOG
    from event_ingest.report import parse_report

    raw = get(report_key)
    parsed = parse_report(
        raw,
        folder_session_id=session_id,
        day=day,
        prefix=prefix,
        report_key=report_key,
        report_etag=etag,
        objects=objects,
    )
    files.write_atomically(
        layout.local_path(data_dir, day, session_id, report_key[len(prefix) :]),
        [raw],
        size=len(raw),
        md5=None,
    )
    events = parsed.session.events
    wanted = {e.frame_id for e in events if e.event_time is None and e.frame_id is not None}
    found: dict[int, str] = {}
    for relpath in sorted(p for p in objects if p.startswith(layout.DISPLAY_LOGS_DIR) and p.endswith(".log")):
        if wanted <= found.keys():
            break
        display_log.find_frames(display_log.iter_lines([get(prefix + relpath)]), wanted, found)
    for event in events:
        if event.event_time is None and event.frame_id in found:
            event.event_time = found[event.frame_id]
            event.time_source = TIME_FROM_DISPLAY_LOG
        path = layout.local_path(data_dir, day, session_id, event.relpath)
        files.write_atomically(path, [get(event.s3_key)], size=event.size_bytes, md5=event.md5)
        event.local_path = str(path)
    return parsed.session


def _session_rows(session: Any, now: str) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    from event_ingest.event_db.base import event_row, session_row

    row = list(session_row(session, now))
    row[9] = len(session.events)  # event_count
    return tuple(row), [event_row(e, now) for e in session.events]


def _insert_sql() -> tuple[str, str]:
    from event_ingest.event_db.base import EVENT_COLUMNS, SESSION_COLUMNS

    return (
        f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ({', '.join(['%s'] * 12)})",
        f"INSERT INTO events ({EVENT_COLUMNS}) VALUES ({', '.join(['%s'] * 12)})",
    )


def _s3_client(config: dict[str, Any], pool: int = 10) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=config["endpoint_url"],
        aws_access_key_id=config["access_key"],
        aws_secret_access_key=config["secret_key"],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=pool),
    )


def _day_listing(pages: Iterator[dict[str, Any]], day: dt.date) -> dict[str, tuple[str, str, dict[str, int]]]:
    """Session id -> (report key, ETag, sizes of audio tags and display logs), from listing pages."""
    from event_ingest import layout

    reports: dict[str, tuple[str, str]] = {}
    objects: dict[str, dict[str, int]] = {}
    for page in pages:
        for item in page.get("Contents", []):
            parts = layout.split_session_key("", item["Key"])
            if parts is None or parts[0] != day:
                continue
            _, session_id, relpath = parts
            if layout.is_report(session_id, relpath):
                reports[session_id] = (item["Key"], item["ETag"].strip('"'))
            elif relpath.startswith((layout.AUDIO_TAGS_DIR, layout.DISPLAY_LOGS_DIR)):
                objects.setdefault(session_id, {})[relpath] = int(item["Size"])
    return {sid: (key, etag, objects.get(sid, {})) for sid, (key, etag) in sorted(reports.items())}


# -- naive ----------------------------------------------------------------------------------------------


def run_naive(config: dict[str, Any], counters: Counters) -> dict[str, Any]:
    from event_ingest import layout
    from event_ingest.event_db.base import utc_now

    client = _s3_client(config)
    bucket, day, data_dir = config["bucket"], dt.date.fromisoformat(config["day"]), Path(config["data_dir"])
    conn = _mysql(config, autocommit=True)
    cursor = conn.cursor()
    insert_session, insert_event = _insert_sql()
    started = time.perf_counter()
    folders = [
        p["Prefix"]
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=layout.day_prefix("", day), Delimiter="/"
        )
        for p in page.get("CommonPrefixes", [])
    ]
    sessions = events = 0
    for folder in folders:
        session_id = folder.rstrip("/").rsplit("/", 1)[-1]
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder)
        listing = _day_listing(iter(pages), day).get(session_id)
        if listing is None:
            continue
        cursor.execute("SELECT 1 FROM sessions WHERE session_id = %s", (session_id,))
        if cursor.fetchall():
            continue
        report_key, etag, objects = listing
        session = _read_session(
            lambda key: _body(client, bucket, key),
            data_dir,
            day,
            session_id,
            folder,
            report_key,
            etag,
            objects,
        )
        row, event_rows = _session_rows(session, utc_now())
        cursor.execute(insert_session, row)
        for event_row in event_rows:
            cursor.execute(insert_event, event_row)
        sessions += 1
        events += len(event_rows)
    wall = time.perf_counter() - started
    conn.close()
    return {"wall_s": wall, "sessions": sessions, "events": events}


# -- floor ----------------------------------------------------------------------------------------------


def run_floor(config: dict[str, Any], counters: Counters) -> dict[str, Any]:
    from event_ingest import layout
    from event_ingest.event_db.base import utc_now

    threads = 16
    client = _s3_client(config, pool=threads + 2)
    bucket, day, data_dir = config["bucket"], dt.date.fromisoformat(config["day"]), Path(config["data_dir"])
    conn = _mysql(config, autocommit=False)
    insert_session, insert_event = _insert_sql()
    started = time.perf_counter()
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=layout.day_prefix("", day), PaginationConfig={"PageSize": 1000}
    )
    listing = list(_day_listing(iter(pages), day).items())
    sessions = events = 0
    size = config["batch_size"]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for start in range(0, len(listing), size):
            batch = listing[start : start + size]
            cursor = conn.cursor()
            marks = ",".join(["%s"] * len(batch))
            cursor.execute(
                f"SELECT session_id FROM sessions WHERE session_id IN ({marks})", [sid for sid, _ in batch]
            )
            known = {row[0] for row in cursor.fetchall()}
            conn.commit()

            def one(item: tuple[str, tuple[str, str, dict[str, int]]]) -> Any:
                session_id, (report_key, etag, objects) = item
                return _read_session(
                    lambda key: _body(client, bucket, key),
                    data_dir,
                    day,
                    session_id,
                    layout.session_prefix("", day, session_id),
                    report_key,
                    etag,
                    objects,
                )

            loaded = list(pool.map(one, [item for item in batch if item[0] not in known]))
            now = utc_now()
            rows = [_session_rows(s, now) for s in loaded]
            cursor.executemany(insert_session, [r for r, _ in rows])
            cursor.executemany(insert_event, [e for _, es in rows for e in es])
            conn.commit()
            sessions += len(loaded)
            events += sum(len(es) for _, es in rows)
    wall = time.perf_counter() - started
    conn.close()
    return {"wall_s": wall, "sessions": sessions, "events": events}


# -- limit ----------------------------------------------------------------------------------------------


def run_limit(config: dict[str, Any], counters: Counters) -> dict[str, Any]:
    import obstore
    from obstore.store import S3Store

    keys = json.loads(Path(config["keys_file"]).read_text())
    store = S3Store(
        config["bucket"],
        endpoint=config["endpoint_url"],
        region="us-east-1",
        access_key_id=config["access_key"],
        secret_access_key=config["secret_key"],
        virtual_hosted_style_request=False,
        client_options={"allow_http": True, "pool_max_idle_per_host": "64"},
    )
    concurrency = config.get("limit_concurrency", 64)

    async def get_all() -> int:
        gate = asyncio.Semaphore(concurrency)

        async def one(key: str) -> int:
            async with gate:
                result = await obstore.get_async(store, key)
                return len(await result.bytes_async())

        return sum(await asyncio.gather(*(one(key) for key in keys)))

    started = time.perf_counter()
    size = asyncio.run(get_all())
    wall = time.perf_counter() - started
    # Counted by the obstore.get_async that Counters.install wraps.
    return {"wall_s": wall, "bytes": size}


VARIANTS: dict[str, Callable[[dict[str, Any], Counters], dict[str, Any]]] = {
    "pipeline": run_pipeline,
    "naive": run_naive,
    "floor": run_floor,
    "limit": run_limit,
}


def main(argv: list[str]) -> int:
    config = json.loads(Path(argv[0]).read_text())
    sys.path.insert(0, str(ROOT / "plugins"))
    counters = Counters()
    counters.install()
    rss_before = peak_rss_mb()
    profile_to = os.environ.get("EVENT_INGEST_BENCH_PROFILE")
    if profile_to:  # e.g. /tmp/prof: writes /tmp/prof.pipeline.prof etc., for pstats or snakeviz
        import cProfile

        with cProfile.Profile() as profile:
            result = VARIANTS[config["variant"]](config, counters)
        profile.dump_stats(f"{profile_to}.{config['variant']}.prof")
    else:
        result = VARIANTS[config["variant"]](config, counters)
    result.update(
        s3=dict(counters.s3),
        sql_round_trips=counters.sql,
        peak_rss_mb=peak_rss_mb(),
        rss_after_imports_mb=rss_before,
        pid=os.getpid(),
    )
    if config.get("keys_out"):
        Path(config["keys_out"]).write_text(json.dumps(counters.keys))
    Path(config["result"]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
