"""`make demo`: the whole pipeline on embedded defaults, on this machine alone.

Starts a local S3 server (SeaweedFS), seeds it with generated sessions (a few
of every bad kind among them), runs the ``event_ingest`` DAG over a date range
with ``dag.test()`` (SQLite for Airflow's metadata and for the event database,
unless ``EVENT_INGEST_DEMO_DB`` names a MySQL URI), runs it again to show that
a rerun only skips, and prints what was loaded, skipped, deferred and rejected.
Everything it writes stays under ``var/demo/``.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tools.dag_runs import airflow_environment

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "var" / "demo"
DAYS = [dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3)]
CONF = {"start_date": DAYS[0].isoformat(), "end_date": DAYS[-1].isoformat()}


def _prepare_environment() -> None:
    """Point Airflow at a fresh home under var/demo, before anything imports it."""
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "airflow").mkdir(parents=True)
    os.environ.update(
        {
            **airflow_environment(WORK / "airflow"),
            "AIRFLOW_VAR_EVENT_INGEST_BUCKET": "drive-sessions",
            "AIRFLOW_VAR_EVENT_INGEST_DATA_DIR": str(WORK / "data"),
        }
    )
    if os.environ.get("EVENT_INGEST_DEMO_DB"):
        os.environ["AIRFLOW_CONN_EVENT_INGEST_DB"] = os.environ["EVENT_INGEST_DEMO_DB"]


@contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (Airflow's task logs among them) to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _event_db_report() -> str:
    """Count what the event database holds, whichever backend the run used."""
    from event_ingest.event_db import event_db_for

    with event_db_for("event_ingest_db", WORK / "data") as db, db.transaction(write=False) as cursor:
        lines = [f"event database: {type(db).__name__}"]
        for table in ("sessions", "events"):
            cursor.execute(f"SELECT COUNT(*) FROM {table}")
            lines.append(f"  {table:<16} {cursor.fetchone()[0]:>5}")
        cursor.execute("SELECT time_source, COUNT(*) FROM events GROUP BY time_source ORDER BY time_source")
        lines += [f"    time_source={source:<12} {count:>5}" for source, count in cursor.fetchall()]
        cursor.execute("SELECT object_key, reason FROM ingest_rejects WHERE resolved_at IS NULL ORDER BY 1")
        rejects = cursor.fetchall()
        lines.append(f"  open rejects     {len(rejects):>5}")
        lines += [f"    {key}\n      -> {reason}" for key, reason in rejects]
    return "\n".join(lines)


def main() -> int:
    _prepare_environment()
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils import db as airflow_db

    from include import generator
    from tools.dag_runs import run_dag, summary_table
    from tools.services import SeaweedS3

    started = time.monotonic()
    log_path = WORK / "airflow-run.log"
    with SeaweedS3(base_dir=WORK) as s3:
        os.environ["AIRFLOW_CONN_EVENT_INGEST_S3"] = s3.airflow_conn_json()
        client = s3.client()
        generator.ensure_bucket(client, "drive-sessions")
        manifest = generator.generate_bucket(
            client,
            "drive-sessions",
            days=DAYS,
            sessions_per_day=20,
            tags_per_session=5,
            bad_kinds=generator.BAD_KINDS,
            seed=42,
        )
        print(
            f"seeded {s3.endpoint_url}/drive-sessions: {len(manifest.sessions)} good sessions,"
            f" {len(manifest.rejects)} bad objects, {len(manifest.deferred)} unfinished upload(s)"
        )
        with _output_to(log_path):
            airflow_db.initdb()
        runs = []
        for attempt in ("first run", "rerun"):
            dag = DagBag(dag_folder=str(ROOT / "dags")).dags["event_ingest"]
            with _output_to(log_path):
                runs.append((attempt, run_dag(dag, conf=CONF)))
    for attempt, result in runs:
        print(f"\nevent_ingest {attempt} over {CONF['start_date']}..{CONF['end_date']}: {result.state}")
        print(summary_table(result.summary))
    print()
    with _output_to(log_path):
        report = _event_db_report()
    print(report)
    print(f"\nfiles under {WORK / 'data'}; Airflow's log in {log_path}; {time.monotonic() - started:.1f} s")
    print(
        "\nTo see it in Airflow's UI: `make airflow` runs Airflow here on the same demo data and prints the"
        "\nUI's address and login; its ingest view, /event-ingest/ (also in the UI's menu), shows per day"
        "\nthe sessions, events and open rejects, the latest runs, each day's rejects and the deferred"
        "\nsessions, and re-ingests a day. `make airflow-stop` stops it."
    )
    return 0 if all(result.succeeded for _, result in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
