"""Start the servers, fill the bucket, run each scenario's variants in processes of their own, report.

Scenarios (``--scenarios``, comma-separated; ``make bench`` runs the default three):

- ``loopback``: the day under test (``--sessions`` x ``--tags`` audio tags of ``--tag-kib`` KiB, plus
  display logs, a raw file and the report per session) through pipeline, floor, naive, limit and
  limit_files, servers on 127.0.0.1;
- ``far``: the same behind proxies that add ``--s3-latency-ms`` to every S3 request and
  ``--db-latency-ms`` to every SQL round trip (naive left out: at 20 ms it needs minutes);
- ``raw``: a day of ``--raw-sessions`` sessions with one ``--raw-mib`` MiB raw file each, through the
  pipeline (``download_types`` with ``raw``), boto3's transfer manager and the limits;
- ``dags-test``: ``airflow dags test event_ingest`` over the day under test, and the floor, in one run;
- ``local-executor``: the same DAG run by a real scheduler with LocalExecutor, and the floor;
- ``celery``: the same under CeleryExecutor, two workers of concurrency 2 (the compose profile's).

Each prints a table and a ``bench:`` line of ratios; ``--other-days`` days around the day under test
hold a few small sessions each and must never be read. Every variant starts from an empty database
and data directory. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from tools.bench import scenarios
from tools.bench.harness import DAY, RAW_DAY, ROOT, Bench

SCENARIOS = ("loopback", "far", "raw", "dags-test", "local-executor", "celery")
DEFAULT_SCENARIOS = ("loopback", "far", "raw")


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    settings = runpy.run_path(str(ROOT / "plugins" / "event_ingest" / "settings.py"))
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenarios", default=",".join(DEFAULT_SCENARIOS), help=f"comma-separated, of {', '.join(SCENARIOS)}"
    )
    parser.add_argument("--sessions", type=int, default=1000, help="sessions on the day under test")
    parser.add_argument("--tags", type=int, default=5, help="audio tags per session")
    parser.add_argument("--tag-kib", type=int, default=32, help="approximate size of an audio tag")
    parser.add_argument("--other-days", type=int, default=30, help="other days in the bucket")
    parser.add_argument("--other-sessions", type=int, default=10, help="sessions on each other day")
    parser.add_argument("--batch-size", type=int, default=settings["BATCH_SIZE"], help="sessions per batch")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=settings["S3_CONCURRENCY"],
        help="S3 requests in flight, pipeline and floor alike (default: EVENT_INGEST_S3_CONCURRENCY)",
    )
    parser.add_argument("--s3-latency-ms", type=float, default=20.0, help="far: delay per S3 request")
    parser.add_argument("--db-latency-ms", type=float, default=2.0, help="far: delay per SQL round trip")
    parser.add_argument("--data-plane", default=settings["DATA_PLANE"], help="pipeline's: obstore or boto3")
    parser.add_argument(
        "--variants",
        default=None,
        help=f"day scenarios' variants, a subset of {','.join(scenarios.DAY_VARIANTS)}",
    )
    parser.add_argument("--raw-sessions", type=int, default=8, help="raw: sessions of the raw day")
    parser.add_argument("--raw-mib", type=int, default=64, help="raw: size of each raw file")
    parser.add_argument(
        "--files-at-once", type=int, default=4, help="raw: files the transfer manager downloads at once"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each scenario this many times, then print the median of each field of its bench: lines",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write every result here")
    args = parser.parse_args(argv)
    unknown = set(args.scenarios.split(",")) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {', '.join(sorted(unknown))}; choose from {', '.join(SCENARIOS)}")
    return args


def _variants(args: argparse.Namespace, scenario: str) -> list[str]:
    chosen = args.variants.split(",") if args.variants else list(scenarios.DAY_VARIANTS)
    if scenario == "far" and not args.variants:
        chosen.remove("naive")
    return [v for v in scenarios.DAY_VARIANTS if v in chosen]


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    wanted = args.scenarios.split(",")
    config: dict[str, Any] = {
        "batch_size": args.batch_size,
        "concurrency": args.concurrency,
        "data_plane": args.data_plane,
    }
    outcomes: list[scenarios.Outcome] = []
    started = time.perf_counter()
    with Bench() as bench:
        if (set(SCENARIOS) - {"raw"}) & set(wanted):
            day = bench.generate(
                DAY,
                sessions=args.sessions,
                tags=args.tags,
                tag_kib=args.tag_kib,
                other_days=args.other_days,
                other_sessions=args.other_sessions,
            )
        for scenario in [s for s in SCENARIOS if s in wanted] * args.repeat:
            print(f"== {scenario}", flush=True)
            if scenario == "loopback":
                bench.set_latency(s3_ms=0, db_ms=0)
                outcome = scenarios.day(bench, day, _variants(args, scenario), config, scenario)
            elif scenario == "far":
                bench.set_latency(s3_ms=args.s3_latency_ms, db_ms=args.db_latency_ms)
                outcome = scenarios.day(bench, day, _variants(args, scenario), config, scenario)
            elif scenario == "raw":
                bench.set_latency(s3_ms=0, db_ms=0)
                raw_day = bench.generate(
                    RAW_DAY,
                    sessions=args.raw_sessions,
                    tags=args.tags,
                    tag_kib=args.tag_kib,
                    raw_bytes=args.raw_mib << 20,
                    workers=4,
                )
                outcome = scenarios.raw(
                    bench,
                    raw_day,
                    list(scenarios.RAW_VARIANTS),
                    {**config, "files_at_once": args.files_at_once},
                )
            else:
                from tools.bench import airflow_runs

                bench.set_latency(s3_ms=0, db_ms=0)
                outcome = airflow_runs.run(bench, day, scenario, config)
            print("\n".join(outcome.lines), flush=True)
            outcomes.append(outcome)
    print(f"\n== summary ({time.perf_counter() - started:.0f} s, {os.cpu_count()} CPUs)")
    lines: dict[str, list[str]] = {}
    for outcome in outcomes:
        line = next(line for line in reversed(outcome.lines) if line.startswith("bench:"))
        lines.setdefault(outcome.name, []).append(line)
        print(line)
    if args.repeat > 1:
        print(f"== medians of {args.repeat} runs each")
        for runs in lines.values():
            print(_median_line(runs))
    if args.json:
        results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
        for outcome in outcomes:  # a scenario's results, or with --repeat the list of its runs'
            if args.repeat > 1:
                results.setdefault(outcome.name, []).append(outcome.results)
            else:
                results[outcome.name] = outcome.results
        args.json.write_text(json.dumps(results))
    return 1 if any(o.problems for o in outcomes) else 0


def _median_line(lines: list[str]) -> str:
    """One ``bench:`` line whose numeric fields are the medians of ``lines``' (the others: the first's)."""
    runs = [dict(field.split("=", 1) for field in line.removeprefix("bench: ").split()) for line in lines]
    merged = {}
    for key, first in runs[0].items():
        try:
            values = [float(run[key]) for run in runs]
        except ValueError:
            merged[key] = first
            continue
        median = statistics.median(values)
        merged[key] = f"{median:.0f}" if first.isdigit() else f"{median:.2f}"
    return "bench: " + " ".join(f"{key}={value}" for key, value in merged.items()) + f" repeats={len(runs)}"


if __name__ == "__main__":
    sys.exit(main())
