"""Start the services, generate the bucket, run each variant in its own process, compare and report.

The day under test holds ``--sessions`` sessions of ``--tags`` audio tags of about ``--tag-kib`` KiB
each (plus one or two display logs, a raw file and the report per session, as the generator writes
them); ``--other-days`` days around it hold a few small sessions each and must never be listed.
Every variant starts from an empty database of its own and an empty data directory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from include import generator
from tools.bench.variants import ROOT
from tools.services import HOST, MariaDbServer, SeaweedS3, free_port

DAY = dt.date(2026, 11, 20)
BUCKET = "bench-sessions"
VARIANT_ORDER = ("pipeline", "floor", "naive", "limit")
LIST_PAGE = 1000


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000, help="sessions on the day under test")
    parser.add_argument("--tags", type=int, default=5, help="audio tags per session")
    parser.add_argument("--tag-kib", type=int, default=32, help="approximate size of an audio tag")
    parser.add_argument("--other-days", type=int, default=30, help="other days in the bucket")
    parser.add_argument("--other-sessions", type=int, default=10, help="sessions on each other day")
    parser.add_argument("--batch-size", type=int, default=None, help="sessions per batch (default: settings)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay added to every S3 request")
    parser.add_argument("--data-plane", default=None, help="pipeline's data plane: obstore or boto3")
    parser.add_argument("--variants", default=",".join(VARIANT_ORDER), help="a comma-separated subset")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    return parser.parse_args(argv)


def _generate(s3: SeaweedS3, args: argparse.Namespace) -> tuple[int, int]:
    """Fill the bucket; return the number of keys of the day under test and its expected events."""
    client = s3.client(max_pool_connections=32)
    generator.ensure_bucket(client, BUCKET)
    started = time.perf_counter()
    manifest = generator.generate_bucket(
        client,
        BUCKET,
        days=[DAY],
        sessions_per_day=args.sessions,
        tags_per_session=args.tags,
        tag_bytes=args.tag_kib * 1024,
        workers=16,
    )
    half = args.other_days // 2
    others = [DAY + dt.timedelta(days=d) for d in range(-half, args.other_days - half + 1) if d != 0]
    generator.generate_bucket(
        client, BUCKET, days=others, sessions_per_day=args.other_sessions, tags_per_session=2, workers=16
    )
    day_keys = sum(
        page.get("KeyCount", 0)
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{DAY:%Y/%m/%d}/")
    )
    events = sum(len(s.events) for s in manifest.sessions.values())
    print(
        f"generated {args.sessions} sessions ({day_keys} keys) on {DAY} and {len(others)} other days"
        f" in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return day_keys, events


def _environment(airflow_home: Path, s3_endpoint: str, s3: SeaweedS3, db_uri: str) -> dict[str, str]:
    conn = json.loads(s3.airflow_conn_json())
    conn["extra"]["endpoint_url"] = s3_endpoint
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")]),
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AIRFLOW_CONN_EVENT_INGEST_S3": json.dumps(conn),
        "AIRFLOW_CONN_EVENT_INGEST_DB": db_uri,
    }


def _snapshot(mariadb: MariaDbServer, database: str, data_dir: Path) -> dict[str, Any]:
    """Rows (less the times of writing, local paths made relative) and files, to compare variants."""
    conn = mariadb.connect(database)
    try:
        cursor = conn.cursor()
        cursor.execute(
            "SELECT session_id, vehicle_id, driver_id, started_at, ended_at, session_date, software_version,"
            " report_key, report_etag, event_count FROM sessions ORDER BY session_id"
        )
        sessions = [tuple(map(str, row)) for row in cursor.fetchall()]
        cursor.execute(
            "SELECT event_id, session_id, event_type, s3_key, frame_id, event_time, time_source, duration_s,"
            " size_bytes, md5, local_path FROM events ORDER BY event_id"
        )
        prefix = str(data_dir) + "/"
        events = [(*map(str, row[:-1]), str(row[-1]).removeprefix(prefix)) for row in cursor.fetchall()]
        cursor.execute("SELECT COUNT(*) FROM ingest_rejects")
        rejects = cursor.fetchone()[0]
    finally:
        conn.close()
    files = sorted(
        (str(p.relative_to(data_dir)), p.stat().st_size)
        for p in data_dir.rglob("*")
        if p.is_file() and p.suffix in (".json", ".wav")
    )
    return {"sessions": sessions, "events": events, "rejects": rejects, "files": files}


def _run_variant(name: str, config: dict[str, Any], env: dict[str, str], work: Path) -> dict[str, Any]:
    config_path = work / f"{name}.json"
    config["result"] = str(work / f"{name}.result.json")
    config_path.write_text(json.dumps(config))
    log_path = work / f"{name}.log"
    with log_path.open("wb") as log:
        code = subprocess.run(
            [sys.executable, "-m", "tools.bench.variants", str(config_path)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        ).returncode
    if code != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        raise SystemExit(f"variant {name} failed with exit code {code}:\n{tail}")
    return json.loads(Path(config["result"]).read_text())


def _fmt_s3(s3: dict[str, int]) -> str:
    return " ".join(f"{kind}={count}" for kind, count in sorted(s3.items()))


def _table(results: dict[str, dict[str, Any]], sessions: int) -> str:
    header = ("variant", "wall s", "sessions/s", "GET/s", "S3 requests", "SQL round trips", "peak RSS MB")
    rows = [header]
    for name, r in results.items():
        gets = r["s3"].get("GET", 0)
        rows.append(
            (
                name,
                f"{r['wall_s']:.2f}",
                f"{sessions / r['wall_s']:.0f}",
                f"{gets / r['wall_s']:.0f}",
                _fmt_s3(r["s3"]),
                str(r["sql_round_trips"]),
                f"{r['peak_rss_mb']:.0f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    variants = [v for v in VARIANT_ORDER if v in args.variants.split(",")]
    sys.path.insert(0, str(ROOT / "plugins"))
    from event_ingest import settings

    batch_size = args.batch_size or settings.BATCH_SIZE
    work = Path(tempfile.mkdtemp(prefix="event-ingest-bench-"))
    proxy: subprocess.Popen[bytes] | None = None
    try:
        with SeaweedS3() as s3, MariaDbServer() as mariadb:
            day_keys, expected_events = _generate(s3, args)
            endpoint = s3.endpoint_url
            if args.latency_ms:
                port = free_port()
                proxy = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "tools.bench.proxy",
                        f"--listen-port={port}",
                        f"--target-port={s3.s3_port}",
                        f"--delay-ms={args.latency_ms}",
                    ],
                    cwd=ROOT,
                )
                endpoint = f"http://{HOST}:{port}"
                time.sleep(1.0)
            results: dict[str, dict[str, Any]] = {}
            snapshots: dict[str, dict[str, Any]] = {}
            for name in variants:
                database = mariadb.create_database(f"bench_{name}")
                data_dir = work / name / "data"
                data_dir.mkdir(parents=True)
                (work / name / "airflow").mkdir()
                config = {
                    "variant": name,
                    "bucket": BUCKET,
                    "day": DAY.isoformat(),
                    "endpoint_url": endpoint,
                    "access_key": s3.access_key,
                    "secret_key": s3.secret_key,
                    "data_dir": str(data_dir),
                    "batch_size": batch_size,
                    "data_plane": args.data_plane,
                    "db": {"host": HOST, "port": mariadb.port, "user": "root", "database": database},
                    "keys_out": str(work / "pipeline.keys.json") if name == "pipeline" else None,
                    "keys_file": str(work / "pipeline.keys.json"),
                }
                env = _environment(work / name / "airflow", endpoint, s3, mariadb.airflow_conn_uri(database))
                # Each variant starts with no writes pending: the bucket's generation (and the previous
                # variant's files, deleted) are flushed first instead of during the next variant.
                os.sync()
                print(f"running {name} ...", flush=True)
                results[name] = _run_variant(name, config, env, work)
                if name != "limit":
                    snapshots[name] = _snapshot(mariadb, database, data_dir)
                shutil.rmtree(data_dir, ignore_errors=True)
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait()
        shutil.rmtree(work, ignore_errors=True)

    sessions = args.sessions
    print()
    print(
        f"day {DAY}: {sessions} sessions x {args.tags} tags x ~{args.tag_kib} KiB, batch size {batch_size},"
        f" added S3 latency {args.latency_ms:g} ms, {os.cpu_count()} CPUs"
    )
    print(_table(results, sessions))
    problems = []
    names = list(snapshots)
    for name in names[1:]:
        if snapshots[name] != snapshots[names[0]]:
            problems.append(f"{name} differs from {names[0]} in rows or files")
    for name, snap in snapshots.items():
        if len(snap["sessions"]) != sessions or len(snap["events"]) != expected_events:
            problems.append(
                f"{name} loaded {len(snap['sessions'])} sessions and {len(snap['events'])} events,"
                f" expected {sessions} and {expected_events}"
            )
    pages = math.ceil(day_keys / LIST_PAGE)
    if "pipeline" in results:
        lists = results["pipeline"]["s3"].get("LIST", 0)
        pipe = results["pipeline"]
        per_batch = pipe["sql_round_trips"] / max(pipe["batches"], 1)
        print(
            f"pipeline: {pipe['batches']} batches, {per_batch:.1f} SQL round trips per batch"
            f" ({', '.join(f'{k}={v}' for k, v in pipe['sql_per_step'].items())});"
            f" LIST requests {lists} for {day_keys} keys of the day = {pages} pages;"
            f" steps: {', '.join(f'{k}={v:.2f}s' for k, v in pipe['step_s'].items())}"
        )
        if lists > pages:
            problems.append(f"pipeline made {lists} LIST requests for {pages} pages of the day")
    print("rows and files: " + ("; ".join(problems) if problems else f"equal across {', '.join(names)}"))
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "results": results}))

    def wall(name: str) -> float:
        return results[name]["wall_s"] if name in results else math.nan

    p, n, f, lim = wall("pipeline"), wall("naive"), wall("floor"), wall("limit")
    print(
        f"bench: sessions={sessions} events={expected_events} pipeline_s={p:.2f} naive_s={n:.2f}"
        f" floor_s={f:.2f} limit_s={lim:.2f} speedup_vs_naive={n / p:.2f} pipeline_vs_floor={p / f:.2f}"
        f" pipeline_vs_limit={p / lim:.2f}"
    )
    return 1 if problems else 0
