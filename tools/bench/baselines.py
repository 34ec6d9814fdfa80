"""What the pipeline is compared with: plain boto3 programs that do the same work their own way.

- ``naive``: the old job's way: the day's session folders by a delimiter listing, then a listing per
  folder, an existence query per session, one autocommitted INSERT per row, one GET at a time.
- ``floor``: the best boto3 program for the day: one paginated listing, as many threads as the
  pipeline has S3 requests in flight (each doing one session's GETs and file writes), and per batch
  one existence query and one ``executemany`` per table, in one transaction.
- ``transfer_manager``: the best boto3 program for big files: ``download_file`` (boto3's transfer
  manager: parallel ranged GETs, a temporary file renamed at the end) for each raw file of the day,
  its MD5 checked against the listed ETag afterwards.

They share the package's pure functions only (report parsing, display-log reading, the local layout,
the atomic file write, the table's columns): their S3 and SQL code is their own.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from event_ingest import display_log, files, layout
from event_ingest.event_db.schema import EVENTS, SESSIONS, event_row, session_row
from event_ingest.model import AUDIO_TAG, TIME_FROM_DISPLAY_LOG, Session, SessionListing
from event_ingest.report import parse_report
from event_ingest.timestamps import to_db


def _client(config: dict[str, Any], pool: int) -> Any:
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


def _database(config: dict[str, Any], *, autocommit: bool) -> Any:
    import MySQLdb

    db = config["db"]
    conn = MySQLdb.connect(
        host=db["host"], port=db["port"], user=db["user"], database=db["database"], charset="utf8mb4"
    )
    conn.autocommit(autocommit)
    with conn.cursor() as cursor:
        cursor.execute("SET time_zone = '+00:00'")
    return conn


def _insert(table: Any) -> str:
    marks = ", ".join(["%s"] * len(table.columns))
    return f"INSERT INTO {table.name} ({', '.join(table.columns)}) VALUES ({marks})"


def _rows(session: Session, now: str) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """The session's row, its event count filled in, and its events' rows."""
    row = list(session_row(session, now))
    row[SESSIONS.columns.index("event_count")] = len(session.events)
    return tuple(row), [event_row(event, now) for event in session.events]


def _folders(items: Iterable[dict[str, Any]], day: dt.date) -> dict[str, SessionListing]:
    """The folders with a report among listed ``items``, by session id."""
    found: dict[str, dict[str, Any]] = {}
    for item in items:
        parts = layout.split_session_key("", item["Key"])
        if parts is not None and parts[0] == day:
            folder = found.setdefault(parts[1], {"objects": {}})
            if layout.is_report(parts[1], parts[2]):
                folder["report"] = item
            else:
                folder["objects"][parts[2]] = [item["Size"], item["ETag"]]
    return {
        sid: SessionListing(
            session_id=sid,
            day=day.isoformat(),
            prefix=layout.session_prefix("", day, sid),
            report_key=folder["report"]["Key"],
            report_etag=folder["report"]["ETag"].strip('"'),
            report_size=folder["report"]["Size"],
            objects=folder["objects"],
        )
        for sid, folder in sorted(found.items())
        if "report" in folder
    }


def _ingest_session(get: Callable[[str], bytes], data_dir: Path, listing: SessionListing) -> Session:
    """Read one session's report and logs, write the report and the audio tags; return the session."""
    raw = get(listing.report_key)
    session = parse_report(raw, listing, file_types=frozenset({AUDIO_TAG})).session
    day = dt.date.fromisoformat(listing.day)
    folder = layout.local_session_dir(data_dir, day, listing.session_id)
    folder.mkdir(parents=True, exist_ok=True)
    files.write_atomically(folder / layout.report_name(listing.session_id), [raw], size=len(raw), md5=None)
    untimed = {e.frame_id for e in session.events if e.event_time is None and e.frame_id is not None}
    logs = sorted(p for p in listing.objects if layout.file_type(p) == "display_log")
    times: dict[int, str] = {}
    while logs and not untimed <= times.keys():
        lines = display_log.iter_lines([get(listing.prefix + logs.pop(0))])
        display_log.find_frames(lines, untimed, times)
    paths = layout.local_paths(data_dir, day, listing.session_id, [e.relpath for e in session.events])
    for event, path in zip(session.events, paths, strict=True):
        if event.event_time is None and event.frame_id in times:
            event.event_time, event.time_source = times[event.frame_id], TIME_FROM_DISPLAY_LOG
        path.parent.mkdir(parents=True, exist_ok=True)
        files.write_atomically(path, [get(event.s3_key)], size=event.size_bytes, md5=event.md5)
        event.local_path = str(path)
    return session


def _now() -> str:
    return to_db(dt.datetime.now(dt.UTC))


def run_naive(config: dict[str, Any]) -> dict[str, Any]:
    client = _client(config, pool=2)
    bucket, day, data_dir = config["bucket"], dt.date.fromisoformat(config["day"]), Path(config["data_dir"])
    conn = _database(config, autocommit=True)
    cursor = conn.cursor()
    started = time.perf_counter()
    day_folders = client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=layout.day_prefix("", day), Delimiter="/"
    )
    sessions = events = 0
    for prefix in [p["Prefix"] for page in day_folders for p in page.get("CommonPrefixes", [])]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for listing in _folders((item for page in pages for item in page.get("Contents", [])), day).values():
            cursor.execute("SELECT 1 FROM sessions WHERE session_id = %s", (listing.session_id,))
            if cursor.fetchall():
                continue
            session = _ingest_session(
                lambda key: client.get_object(Bucket=bucket, Key=key)["Body"].read(), data_dir, listing
            )
            row, event_rows = _rows(session, _now())
            cursor.execute(_insert(SESSIONS), row)
            for event in event_rows:
                cursor.execute(_insert(EVENTS), event)
            sessions, events = sessions + 1, events + len(event_rows)
    wall = time.perf_counter() - started
    conn.close()
    return {"wall_s": wall, "sessions": sessions, "events": events}


def run_floor(config: dict[str, Any]) -> dict[str, Any]:
    threads = config["concurrency"]
    client = _client(config, pool=threads + 2)
    bucket, day, data_dir = config["bucket"], dt.date.fromisoformat(config["day"]), Path(config["data_dir"])
    conn = _database(config, autocommit=False)

    def get(key: str) -> bytes:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()

    started = time.perf_counter()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=layout.day_prefix("", day))
    listings = list(_folders((item for page in pages for item in page.get("Contents", [])), day).values())
    sessions = events = 0
    size = config["batch_size"]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for start in range(0, len(listings), size):
            batch = listings[start : start + size]
            with conn.cursor() as cursor:
                marks = ", ".join(["%s"] * len(batch))
                cursor.execute(
                    f"SELECT session_id FROM sessions WHERE session_id IN ({marks})",
                    [listing.session_id for listing in batch],
                )
                known = {sid for (sid,) in cursor.fetchall()}
                new = [listing for listing in batch if listing.session_id not in known]
                loaded = list(pool.map(lambda listing: _ingest_session(get, data_dir, listing), new))
                now = _now()
                rows = [_rows(session, now) for session in loaded]
                cursor.executemany(_insert(SESSIONS), [row for row, _ in rows])
                cursor.executemany(_insert(EVENTS), [event for _, event_rows in rows for event in event_rows])
            conn.commit()
            sessions += len(loaded)
            events += sum(len(event_rows) for _, event_rows in rows)
    wall = time.perf_counter() - started
    conn.close()
    return {"wall_s": wall, "sessions": sessions, "events": events}


def run_transfer_manager(config: dict[str, Any]) -> dict[str, Any]:
    from boto3.s3.transfer import TransferConfig

    files_at_once = config["files_at_once"]
    threads = max(config["concurrency"] // files_at_once, 1)
    client = _client(config, pool=config["concurrency"] + 2)
    transfer = TransferConfig(max_concurrency=threads)
    bucket, day, data_dir = config["bucket"], dt.date.fromisoformat(config["day"]), Path(config["data_dir"])
    started = time.perf_counter()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=layout.day_prefix("", day))
    raw = [
        (item, parts)
        for page in pages
        for item in page.get("Contents", [])
        if (parts := layout.split_session_key("", item["Key"]))
        and not layout.is_report(parts[1], parts[2])
        and layout.file_type(parts[2]) is None
    ]

    def download(entry: tuple[dict[str, Any], tuple[dt.date, str, str]]) -> int:
        item, (folder_day, session_id, relpath) = entry
        path = layout.local_path(data_dir, folder_day, session_id, relpath)
        path.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(bucket, item["Key"], str(path), Config=transfer)
        if files.md5_of(path) != item["ETag"].strip('"'):
            path.unlink()
            raise RuntimeError(f"{item['Key']}: MD5 differs from the ETag")
        return path.stat().st_size

    with ThreadPoolExecutor(max_workers=files_at_once) as pool:
        size = sum(pool.map(download, raw))
    wall = time.perf_counter() - started
    return {"wall_s": wall, "files": len(raw), "bytes": size}
