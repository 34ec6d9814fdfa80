"""What the first task of a process pays before its work: each piece of the start-up, timed apart.

Run in a fresh process with a task's environment (connections and variables as ``AIRFLOW_CONN_*`` /
``AIRFLOW_VAR_*``): ``python -m tools.bench.startup --bucket B --day YYYY-MM-DD``. Each line is one
piece, in the order a ``discover_sessions`` task meets them (imports, parsing the DAG file, the
connection lookups, the hook and its client, the bucket check, the first listing page, the obstore
store and its first GET, the event database's connection and tables), then the same pieces again in
the same process: what a second task of that process would pay. The benchmark's ``dags-test``
scenario prints this table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import itertools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _timed(rows: list[tuple[str, float]], name: str, func: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = func()
    rows.append((name, time.perf_counter() - started))
    return result


def _task_pieces(
    rows: list[tuple[str, float]], bucket: str, day: dt.date, data_dir: str, suffix: str
) -> None:
    """The pieces a discover task goes through after its imports, as ``S3Source`` and ``EventDb`` do them."""
    from airflow.sdk import BaseHook

    from event_ingest import settings
    from event_ingest.data_plane import LIST_PAGE
    from event_ingest.event_db import event_db_for
    from event_ingest.source import S3Source

    _timed(rows, f"connection lookup, S3{suffix}", lambda: BaseHook.get_connection(settings.S3_CONN_ID))
    _timed(rows, f"connection lookup, database{suffix}", lambda: BaseHook.get_connection(settings.DB_CONN_ID))
    source = S3Source(bucket=bucket)
    hook = _timed(rows, f"S3Hook built{suffix}", lambda: source.hook)
    client = _timed(rows, f"boto3 client built (hook.get_conn){suffix}", hook.get_conn)
    _timed(rows, f"bucket check (head_bucket){suffix}", lambda: client.head_bucket(Bucket=bucket))
    day_prefix = f"{day:%Y/%m/%d}/"
    _timed(
        rows,
        f"first listing page through boto3{suffix}",
        lambda: client.list_objects_v2(Bucket=bucket, Prefix=day_prefix, MaxKeys=LIST_PAGE),
    )
    reader = _timed(rows, f"obstore store built{suffix}", lambda: source.reader)
    first_page = _timed(
        rows,
        f"first listing page through obstore{suffix}",
        lambda: list(itertools.islice(reader.list_objects(day_prefix), LIST_PAGE)),
    )
    key = first_page[0][0]
    _timed(rows, f"first GET through obstore{suffix}", lambda: b"".join(reader.iter_object(key)))
    db = _timed(
        rows,
        f"event database hook (event_db_for){suffix}",
        lambda: event_db_for(settings.DB_CONN_ID, data_dir),
    )
    _timed(rows, f"event database connect and tables{suffix}", db.connect)
    db.close()


def profile(bucket: str, day: dt.date, data_dir: str) -> list[tuple[str, float]]:
    rows: list[tuple[str, float]] = []
    for module in (
        "airflow",
        "airflow.sdk",
        "airflow.providers.amazon.aws.hooks.s3",
        "airflow.providers.mysql.hooks.mysql",
        "MySQLdb",
        "obstore.store",
        "event_ingest.operators",
    ):
        _timed(rows, f"import {module}", lambda module=module: importlib.import_module(module))
    from airflow.dag_processing.dagbag import DagBag

    _timed(rows, "parse the DAG file (DagBag of dags/)", lambda: DagBag(dag_folder=str(ROOT / "dags")))
    _task_pieces(rows, bucket, day, data_dir, "")
    _task_pieces(rows, bucket, day, data_dir, ", again in the same process")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench.startup", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--day", required=True, type=dt.date.fromisoformat)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    rows = profile(args.bucket, args.day, args.data_dir)
    if args.json:
        print(json.dumps(rows))
    else:
        width = max(len(name) for name, _ in rows)
        print("\n".join(f"{name:<{width}}  {seconds * 1000:8.1f} ms" for name, seconds in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
