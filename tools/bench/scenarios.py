"""The benchmark's scenarios that run variants only (the Airflow ones: :mod:`tools.bench.airflow_runs`).

- :func:`day`: one day of small sessions through pipeline, floor, naive, limit and limit_files, on
  loopback or behind the delaying proxies; rows and files compared across the variants that load.
- :func:`raw`: a day of one big raw file per session through the pipeline (``download_types`` with
  ``raw``), boto3's transfer manager and the limits; the raw files compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.bench.harness import Bench, Day

DAY_VARIANTS = ("pipeline", "floor", "naive", "limit", "limit_files")
RAW_VARIANTS = ("pipeline", "transfer_manager", "limit", "limit_files")
LIST_PAGE = 1000
_MIB = 1 << 20


@dataclass
class Outcome:
    """What a scenario measured: per-variant results, what it printed, what went wrong."""

    name: str
    results: dict[str, dict[str, Any]]
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def wall(self, variant: str) -> float:
        return self.results[variant]["wall_s"] if variant in self.results else math.nan


def snapshot(bench: Bench, database: str, data_dir: Path) -> dict[str, Any]:
    """Rows (less the times of writing, local paths made relative) and files, to compare variants."""
    conn = bench.mariadb.connect(database)
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
    return {"sessions": sessions, "events": events, "rejects": rejects, "files": files_of(data_dir)}


def files_of(data_dir: Path, suffixes: tuple[str, ...] = (".json", ".wav")) -> list[tuple[str, int]]:
    """The files of ``data_dir`` with these suffixes: relative path and size."""
    return sorted(
        (str(p.relative_to(data_dir)), p.stat().st_size)
        for p in data_dir.rglob("*")
        if p.is_file() and p.suffix in suffixes
    )


def _run(bench: Bench, variants: list[str], config: dict[str, Any]) -> dict[str, tuple[dict[str, Any], Path]]:
    """Run ``variants`` in order; the limits replay the GETs of the pipeline's run before them."""
    runs: dict[str, tuple[dict[str, Any], Path]] = {}
    requests = bench.requests_file()
    for name in variants:
        extra: dict[str, Any] = {}
        if name == "pipeline":
            extra["requests_out"] = str(requests)
        elif name.startswith("limit"):
            if "pipeline" not in runs:
                raise SystemExit("the limits replay the pipeline's GETs: run the pipeline variant too")
            extra["requests_file"] = str(requests)
        runs[name] = bench.run_variant(name, {**config, **extra})
    return runs


def _table(results: dict[str, dict[str, Any]], sessions: int) -> str:
    header = ("variant", "wall s", "sessions/s", "GET/s", "S3 requests", "SQL round trips", "peak RSS MB")
    rows = [header]
    for name, r in results.items():
        rows.append(
            (
                name,
                f"{r['wall_s']:.2f}",
                f"{sessions / r['wall_s']:.0f}",
                f"{r['s3'].get('GET', 0) / r['wall_s']:.0f}",
                " ".join(f"{kind}={count}" for kind, count in sorted(r["s3"].items())),
                str(r["sql_round_trips"]),
                f"{r['peak_rss_mb']:.0f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _pipeline_line(pipe: dict[str, Any], day: Day) -> tuple[str, list[str]]:
    batches = max(pipe["batches"], 1)
    pages = math.ceil(day.keys / LIST_PAGE)
    lists = pipe["s3"].get("LIST", 0)
    xcom = {k: round(v / batches / 1024) for k, v in pipe["xcom_bytes"].items()}
    line = (
        f"pipeline: {pipe['batches']} batches,"
        f" {pipe['sql_round_trips'] / batches:.1f} SQL round trips per batch"
        f" ({', '.join(f'{k}={v}' for k, v in pipe['sql_per_step'].items())});"
        f" LIST requests {lists} for {day.keys} keys of the day = {pages} pages;"
        f" steps: {', '.join(f'{k}={v:.2f}s' for k, v in pipe['step_s'].items())};"
        f" XCom KiB per batch: {', '.join(f'{k}={v}' for k, v in xcom.items())}"
    )
    problems = [f"pipeline made {lists} LIST requests for {pages} pages of the day"] if lists > pages else []
    return line, problems


def day(bench: Bench, day: Day, variants: list[str], config: dict[str, Any], name: str) -> Outcome:
    """The day of small sessions through ``variants``; see the module docstring."""
    common = {"day": day.day.isoformat(), "file_types": ["audio_tag"], **config}
    runs = _run(bench, variants, common)
    outcome = Outcome(name, {variant: result for variant, (result, _) in runs.items()})
    snapshots = {
        variant: snapshot(bench, result["database"], data_dir)
        for variant, (result, data_dir) in runs.items()
        if not variant.startswith("limit")
    }
    outcome.lines.append(
        f"day {day.day}: {day.sessions} sessions, {day.events} events, batch size {config['batch_size']},"
        f" S3 concurrency {config['concurrency']}, added latency S3 {bench.s3_latency_ms:g} ms"
        f" DB {bench.db_latency_ms:g} ms"
    )
    outcome.lines.append(_table(outcome.results, day.sessions))
    names = list(snapshots)
    for other in names[1:]:
        if snapshots[other] != snapshots[names[0]]:
            outcome.problems.append(f"{other} differs from {names[0]} in rows or files")
    for variant, snap in snapshots.items():
        if len(snap["sessions"]) != day.sessions or len(snap["events"]) != day.events:
            outcome.problems.append(
                f"{variant} loaded {len(snap['sessions'])} sessions and {len(snap['events'])} events,"
                f" expected {day.sessions} and {day.events}"
            )
    per_batch = math.nan
    if "pipeline" in outcome.results:
        pipe = outcome.results["pipeline"]
        per_batch = pipe["sql_round_trips"] / max(pipe["batches"], 1)
        line, problems = _pipeline_line(pipe, day)
        outcome.lines.append(line)
        outcome.problems += problems
    outcome.lines.append(
        "rows and files: "
        + ("; ".join(outcome.problems) if outcome.problems else f"equal across {', '.join(names)}")
    )
    p, n, f = outcome.wall("pipeline"), outcome.wall("naive"), outcome.wall("floor")
    lim, lim_files = outcome.wall("limit"), outcome.wall("limit_files")
    outcome.lines.append(
        f"bench: scenario={name} sessions={day.sessions} events={day.events}"
        f" pipeline_s={p:.2f} naive_s={n:.2f}"
        f" floor_s={f:.2f} limit_s={lim:.2f} limit_files_s={lim_files:.2f} speedup_vs_naive={n / p:.2f}"
        f" pipeline_vs_floor={p / f:.2f} pipeline_vs_limit={p / lim:.2f}"
        f" pipeline_vs_limit_files={p / lim_files:.2f} sql_round_trips_per_batch={per_batch:.1f}"
        f" s3_latency_ms={bench.s3_latency_ms:g} db_latency_ms={bench.db_latency_ms:g}"
        f" concurrency={config['concurrency']}"
    )
    return outcome


def raw(bench: Bench, day: Day, variants: list[str], config: dict[str, Any]) -> Outcome:
    """The day of big raw files through ``variants``; see the module docstring."""
    common = {"day": day.day.isoformat(), "file_types": ["audio_tag", "raw"], **config}
    runs = _run(bench, variants, common)
    outcome = Outcome("raw", {variant: result for variant, (result, _) in runs.items()})
    mib = day.raw_bytes / _MIB
    outcome.lines.append(
        f"day {day.day}: {day.sessions} sessions with one"
        f" {day.raw_bytes // day.sessions // _MIB} MiB raw file each"
        f" ({mib:.0f} MiB), S3 concurrency {config['concurrency']}"
    )
    outcome.lines.append(_table(outcome.results, day.sessions))
    raw_files = {
        variant: files_of(data_dir, (".mp4",))
        for variant, (_, data_dir) in runs.items()
        if variant in ("pipeline", "transfer_manager")
    }
    for variant, found in raw_files.items():
        if len(found) != day.sessions or sum(size for _, size in found) != day.raw_bytes:
            outcome.problems.append(
                f"{variant} wrote {len(found)} raw files, {sum(s for _, s in found)} bytes"
            )
    if len(raw_files) == 2 and raw_files["pipeline"] != raw_files["transfer_manager"]:
        outcome.problems.append("pipeline and transfer_manager wrote different raw files")
    if "pipeline" in outcome.results:
        line, problems = _pipeline_line(outcome.results["pipeline"], day)
        outcome.lines.append(line)
        outcome.problems += problems
    outcome.lines.append("raw files: " + ("; ".join(outcome.problems) or "equal, all there"))
    rates = {variant: mib / outcome.wall(variant) for variant in outcome.results}
    outcome.lines.append(
        "throughput MiB/s (raw bytes / wall, whole runs): "
        + ", ".join(f"{variant}={rate:.0f}" for variant, rate in rates.items())
    )
    p, tm = outcome.wall("pipeline"), outcome.wall("transfer_manager")
    rss = outcome.results.get("pipeline", {}).get("peak_rss_mb", math.nan)
    outcome.lines.append(
        f"bench: scenario=raw sessions={day.sessions} raw_mib={mib:.0f} pipeline_s={p:.2f}"
        f" transfer_manager_s={tm:.2f} limit_s={outcome.wall('limit'):.2f}"
        f" limit_files_s={outcome.wall('limit_files'):.2f} pipeline_mib_s={mib / p:.0f}"
        f" transfer_manager_mib_s={mib / tm:.0f} pipeline_vs_transfer_manager_throughput={tm / p:.2f}"
        f" pipeline_peak_rss_mb={rss:.0f} concurrency={config['concurrency']}"
    )
    return outcome
