"""The day under test through Airflow itself, as users run it, against the floor and the pipeline.

- ``dags-test``: ``airflow dags test event_ingest`` (the CLI, a SQLite metadata database made
  beforehand), timed from the command's start to its exit;
- ``local-executor``: a real scheduler with LocalExecutor (:class:`tools.airflow_local.AirflowStack`,
  PostgreSQL metadata database, ``[core] parallelism`` 4), timed from the REST trigger to the run's
  end; the stack is started (and idle) before, and stopped after;
- ``celery``: the same with CeleryExecutor: a Redis broker and two ``airflow celery worker``
  processes of concurrency 2, as the compose ``celery`` profile runs them.

In the same run, before Airflow starts: the ``floor`` (the best boto3 program) and the ``pipeline``
(the same steps in one process, Airflow left out), so that what Airflow adds is their difference.
Rows and files must equal the floor's. Task instances' times come from Airflow's own records: how
long each step took, how many ran at once, and the XCom each wrote.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from tools.bench import scenarios
from tools.bench.harness import BUCKET, ROOT, Bench, Day
from tools.dag_runs import airflow_environment

DAG_ID = "event_ingest"
AIRFLOW_BIN = str(Path(sys.executable).parent / "airflow")
#: ``[core] parallelism`` of the scheduler runs: 4 task instances at once on this 2-core machine.
PARALLELISM = 4
#: What each scheduler scenario runs its tasks with.
EXECUTORS = {"local-executor": "LocalExecutor", "celery": "CeleryExecutor"}


def _environment(
    bench: Bench, database: str, home: Path, data_dir: Path, config: dict[str, Any]
) -> dict[str, str]:
    env = bench.environment(database, home) | airflow_environment(home)
    env.pop("AIRFLOW__LOGGING__LOGGING_LEVEL")  # what users see: Airflow's own default
    return env | {
        "AIRFLOW_VAR_EVENT_INGEST_BUCKET": BUCKET,
        "AIRFLOW_VAR_EVENT_INGEST_PREFIX": "",
        "AIRFLOW_VAR_EVENT_INGEST_DATA_DIR": str(data_dir),
        "EVENT_INGEST_S3_CONCURRENCY": str(config["concurrency"]),
        "EVENT_INGEST_BATCH_SIZE": str(config["batch_size"]),
        "EVENT_INGEST_DATA_PLANE": config["data_plane"],
    }


def _when(value: Any) -> float:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


_STAMP = re.compile(r"^\[?(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)\]?\s+(.*)$")


def timeline(lines: list[str], limit: int = 40) -> list[str]:
    """The log lines of a task as seconds since its first line, for the first task's profile."""
    stamped = [(m.group(1), m.group(2)) for line in lines if (m := _STAMP.match(line))]
    if not stamped:
        return []
    first = _when(stamped[0][0])
    return [f"  +{_when(stamp) - first:6.2f} s  {text[:120]}" for stamp, text in stamped[:limit]]


def _task_summary(tis: list[dict[str, Any]]) -> tuple[str, float, int]:
    """Per task: instances and their summed duration; the run's span; most instances running at once."""
    by_task: dict[str, list[float]] = defaultdict(list)
    spans = []
    for ti in tis:
        if ti.get("start_date") and ti.get("end_date"):
            start, end = _when(ti["start_date"]), _when(ti["end_date"])
            by_task[ti["task_id"].rsplit(".", 1)[-1]].append(end - start)
            spans.append((start, end))
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    span = max(e for _, e in spans) - min(s for s, _ in spans) if spans else 0.0
    text = ", ".join(f"{task} {len(d)} x {sum(d) / len(d):.2f} s" for task, d in by_task.items())
    return text, span, most


def _dags_test(
    bench: Bench, env: dict[str, str], home: Path
) -> tuple[float, list[dict[str, Any]], dict[str, int], list[str]]:
    """Run the CLI; its wall time, the task instances, the XCom bytes per task (from its SQLite) and
    the first task's log lines."""
    migrate = subprocess.run(
        [AIRFLOW_BIN, "db", "migrate"], env=env, capture_output=True, text=True, check=False
    )
    if migrate.returncode:
        raise SystemExit(f"airflow db migrate failed:\n{migrate.stdout[-3000:]}{migrate.stderr[-3000:]}")
    conf = json.dumps({"start_date": env["BENCH_DAY"], "end_date": env["BENCH_DAY"]})
    logical = (dt.date.fromisoformat(env["BENCH_DAY"]) + dt.timedelta(days=1)).isoformat()
    os.sync()
    print("running airflow dags test ...", flush=True)
    log_path = home / "dags_test.log"
    started = time.perf_counter()
    with log_path.open("wb") as log:
        code = subprocess.run(
            [AIRFLOW_BIN, "dags", "test", DAG_ID, logical, "-c", conf],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        ).returncode
    wall = time.perf_counter() - started
    if code:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
        raise SystemExit(f"airflow dags test exited with {code}:\n{tail}")
    log_lines = log_path.read_text(errors="replace").splitlines()
    begin = next(i for i, line in enumerate(log_lines) if "starting task_id=discover_sessions" in line)
    end = next(i for i, line in enumerate(log_lines) if "end task task_id=discover_sessions" in line)
    first_task = timeline(log_lines[begin : end + 1])
    db = sqlite3.connect(home / "airflow.db")
    try:
        columns = ("task_id", "map_index", "start_date", "end_date", "state")
        tis = [
            dict(zip(columns, row, strict=True))
            for row in db.execute(f"SELECT {', '.join(columns)} FROM task_instance")
        ]
        xcom: dict[str, int] = defaultdict(int)
        for task_id, size in db.execute("SELECT task_id, LENGTH(value) FROM xcom WHERE key = 'return_value'"):
            xcom[task_id.rsplit(".", 1)[-1]] += size or 0
    finally:
        db.close()
    return wall, tis, dict(xcom), first_task


def _under_scheduler(
    bench: Bench, env: dict[str, str], home: Path, executor: str
) -> tuple[float, list[dict[str, Any]], float, list[str]]:
    """Run the DAG under a real scheduler; trigger-to-end wall, the task instances, the stack's
    start-up and the first task's log lines."""
    from tools.airflow_local import AirflowStack, CeleryWorker

    passed = {
        k: v for k, v in env.items() if k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_", "EVENT_INGEST_"))
    }
    passed["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] = "False"  # only the run triggered here
    workers = [CeleryWorker("celery-a", concurrency=2), CeleryWorker("celery-b", concurrency=2)]
    started = time.perf_counter()
    with AirflowStack(
        home,
        executor=executor,
        parallelism=PARALLELISM,
        celery_workers=workers if executor == "CeleryExecutor" else (),
        env=passed,
    ) as stack:
        stack.wait_for_dag(DAG_ID)
        stack.unpause(DAG_ID)
        startup = time.perf_counter() - started
        os.sync()
        print(f"running the DAG under {executor} (stack up in {startup:.0f} s) ...", flush=True)
        started = time.perf_counter()
        run = stack.trigger(DAG_ID, conf={"start_date": env["BENCH_DAY"], "end_date": env["BENCH_DAY"]})
        run = stack.wait_for_run(DAG_ID, run["dag_run_id"], timeout=900)
        wall = time.perf_counter() - started
        tis = stack.task_instances(DAG_ID, run["dag_run_id"])
        first_task = timeline(stack.task_log(DAG_ID, run["dag_run_id"], "discover_sessions", 1).splitlines())
        if run["state"] != "success":
            raise SystemExit(f"the run ended {run['state']}: {[(t['task_id'], t['state']) for t in tis]}")
    return wall, tis, startup, first_task


def startup_profile(env: dict[str, str], day: Day, data_dir: Path) -> list[str]:
    """:mod:`tools.bench.startup` in a fresh process with the task's environment: one line a piece."""
    result = subprocess.run(
        [
            *(sys.executable, "-m", "tools.bench.startup", "--bucket", BUCKET),
            *("--day", day.day.isoformat(), "--data-dir", str(data_dir), "--json"),
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        return [f"  (the start-up profile failed: {result.stderr[-500:]})"]
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    width = max(len(name) for name, _ in rows)
    return [f"  {name:<{width}}  {seconds * 1000:8.1f} ms" for name, seconds in rows]


def run(bench: Bench, day: Day, scenario: str, config: dict[str, Any]) -> scenarios.Outcome:
    common = {"day": day.day.isoformat(), "file_types": ["audio_tag"], **config}
    outcome = scenarios.Outcome(scenario, {})
    snapshots = {}
    for variant in ("floor", "pipeline"):
        result, data_dir = bench.run_variant(variant, common)
        outcome.results[variant] = result
        snapshots[variant] = scenarios.snapshot(bench, result["database"], data_dir)
    database = bench.database("bench_airflow")
    home = bench.work / scenario
    shutil.rmtree(home, ignore_errors=True)  # an earlier run's (--repeat)
    data_dir = home / "data"
    data_dir.mkdir(parents=True)
    env = _environment(bench, database, home / "airflow", data_dir, config) | {
        "BENCH_DAY": day.day.isoformat()
    }
    (home / "airflow").mkdir()
    statements = bench.sql_statements()
    xcom: dict[str, int] = {}
    if scenario == "dags-test":
        wall, tis, xcom, first_task = _dags_test(bench, env, home / "airflow")
        extra = ""
        first_task += ["start-up pieces in a fresh process with the task's environment:"]
        first_task += startup_profile(env, day, data_dir)
    else:
        wall, tis, startup, first_task = _under_scheduler(bench, env, home / "airflow", EXECUTORS[scenario])
        extra = f" (stack started and idle before: {startup:.0f} s)"
    sql = bench.sql_statements() - statements
    snapshots[scenario] = scenarios.snapshot(bench, database, data_dir)
    batches = max(sum(1 for ti in tis if ti["task_id"].endswith("load_to_db")), 1)
    tasks, span, most = _task_summary(tis)
    outcome.results[scenario] = {
        "wall_s": wall,
        "run_span_s": span,
        "most_at_once": most,
        "sql_round_trips": sql,
    }
    for name in ("pipeline", scenario):
        if snapshots[name] != snapshots["floor"]:
            outcome.problems.append(f"{name} differs from floor in rows or files")
    if (
        len(snapshots[scenario]["sessions"]) != day.sessions
        or len(snapshots[scenario]["events"]) != day.events
    ):
        outcome.problems.append(f"{scenario} did not load {day.sessions} sessions and {day.events} events")
    f, p = outcome.wall("floor"), outcome.wall("pipeline")
    key = scenario.replace("-", "_")
    outcome.lines += [
        f"day {day.day}: {day.sessions} sessions, {day.events} events, batch size {config['batch_size']},"
        f" S3 concurrency {config['concurrency']}",
        f"{scenario}: {wall:.2f} s{extra}, {len(tis)} task instances ({wall / len(tis):.2f} s each);"
        f" from the first start to the last end {span:.2f} s, at most {most} running at once; {tasks}",
        f"SQL round trips {sql} ({sql / batches:.1f} per batch, the run ledger included)"
        + (
            "; XCom KiB per batch: " + ", ".join(f"{k}={v / batches / 1024:.0f}" for k, v in xcom.items())
            if xcom
            else ""
        ),
        f"floor {f:.2f} s, pipeline {p:.2f} s: Airflow adds {wall - p:.2f} s to the pipeline's work",
        "rows and files: " + ("; ".join(outcome.problems) or f"equal across floor, pipeline, {scenario}"),
        "the first task (discover_sessions), its log lines:",
        *first_task,
        f"bench: scenario={scenario} sessions={day.sessions} events={day.events} {key}_s={wall:.2f}"
        f" floor_s={f:.2f} pipeline_s={p:.2f} {key}_vs_floor={wall / f:.2f}"
        f" run_span_s={span:.2f} most_at_once={most} sql_round_trips_per_batch={sql / batches:.1f}"
        f" concurrency={config['concurrency']}",
    ]
    return outcome
