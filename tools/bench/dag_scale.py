"""A big day through Airflow itself: the ``event_ingest`` DAG run with ``dag.test()`` at several batch sizes.

Generates one day of ``--sessions`` sessions (SeaweedFS and a throwaway MariaDB, as the benchmark does),
then for each ``--batch-sizes`` value runs the DAG over that day from an empty database and data
directory, and prints the wall time, the mapped task instances and their states. Comparing two batch
sizes gives Airflow's cost per task instance under ``dag.test()``:
(wall_a - wall_b) / (tasks_a - tasks_b).

Run: ``python -m tools.bench.dag_scale --sessions 10000 --batch-sizes 1000,200,50``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tools.bench.harness import ROOT
from tools.dag_runs import airflow_environment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench.dag_scale", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--tags", type=int, default=5)
    parser.add_argument("--batch-sizes", default="1000,200,50")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="event-ingest-dag-scale-"))
    os.environ.update({**airflow_environment(work / "airflow"), "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"})
    sys.path.insert(0, str(ROOT / "plugins"))
    from include import generator
    from tools.bench.harness import BUCKET, DAY
    from tools.dag_runs import delete_runs, run_dag
    from tools.services import MariaDbServer, SeaweedS3

    try:
        with SeaweedS3() as s3, MariaDbServer() as mariadb:
            client = s3.client(max_pool_connections=32)
            generator.ensure_bucket(client, BUCKET)
            started = time.perf_counter()
            generator.generate_bucket(
                client, BUCKET, days=[DAY], sessions_per_day=args.sessions, tags_per_session=args.tags
            )
            print(f"generated {args.sessions} sessions in {time.perf_counter() - started:.0f} s", flush=True)
            os.environ["AIRFLOW_CONN_EVENT_INGEST_S3"] = s3.airflow_conn_json()
            os.environ["AIRFLOW_VAR_EVENT_INGEST_BUCKET"] = BUCKET

            from airflow.dag_processing.dagbag import DagBag
            from airflow.utils import db

            db.initdb()
            rows = []
            for size in [int(s) for s in args.batch_sizes.split(",")]:
                database = mariadb.create_database(f"dag_scale_{size}")
                data_dir = work / f"data_{size}"
                os.environ["AIRFLOW_CONN_EVENT_INGEST_DB"] = mariadb.airflow_conn_uri(database)
                os.environ["AIRFLOW_VAR_EVENT_INGEST_DATA_DIR"] = str(data_dir)
                dag = DagBag(dag_folder=str(ROOT / "dags")).dags["event_ingest"]
                conf = {"start_date": DAY.isoformat(), "end_date": DAY.isoformat(), "batch_size": size}
                t0 = time.perf_counter()
                result = run_dag(dag, logical_date=dt.datetime(2026, 11, 21, tzinfo=dt.UTC), conf=conf)
                wall = time.perf_counter() - t0
                mapped = sum(
                    sum(c.values()) for t, c in result.task_states.items() if t != "discover_sessions"
                )
                rows.append((size, wall, mapped, result))
                print(
                    f"batch_size={size}: {result.state} in {wall:.1f} s, {mapped} task instances"
                    f" ({', '.join(f'{t}={dict(c)}' for t, c in result.task_states.items())}),"
                    f" summary {result.summary}",
                    flush=True,
                )
                delete_runs("event_ingest")
                shutil.rmtree(data_dir, ignore_errors=True)
            for (size_a, wall_a, tasks_a, _), (size_b, wall_b, tasks_b, _) in itertools.pairwise(rows):
                if tasks_a != tasks_b:
                    per_task = (wall_b - wall_a) / (tasks_b - tasks_a)
                    print(f"per task instance, from batch sizes {size_a} -> {size_b}: {per_task:.3f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
