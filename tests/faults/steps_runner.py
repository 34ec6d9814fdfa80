"""Run the pipeline's steps over a date range in this process, as the DAG's operators do.

A run of the DAG that a test can start as a separate OS process: kill it, run two at once, or
measure its memory. Each batch goes through the same functions of :mod:`event_ingest.steps` as the
operators call, and crosses each step boundary as its XCom dict would. Connections and variables come
from the ``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*`` environment, as in the tests' DAG runs.

Prints one JSON line: the summed :class:`~event_ingest.steps.BatchSummary`, plus ``rss_start_kb`` (after
imports) and ``rss_peak_kb`` (the process's peak resident set).

    python -m tests.faults.steps_runner --start 2026-11-01 --end 2026-11-03 [--batch-size N]
        [--go-file PATH] [--run-id ID]

With ``--go-file``, it creates ``PATH.ready-PID`` once imported, then waits for ``PATH``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.steps_runner")
    parser.add_argument("--start", required=True, type=dt.date.fromisoformat)
    parser.add_argument("--end", required=True, type=dt.date.fromisoformat)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--go-file", help="wait until this file exists before starting")
    parser.add_argument("--run-id", default=f"steps_runner__{os.getpid()}")
    args = parser.parse_args(argv)

    from event_ingest import settings, steps
    from event_ingest.aws_helper import AwsHelper
    from event_ingest.event_db import event_db_for
    from event_ingest.model import Batch

    data_dir = Path(os.environ[f"AIRFLOW_VAR_{settings.DATA_DIR_VARIABLE.upper()}"])
    aws = AwsHelper(
        aws_conn_id=settings.S3_CONN_ID,
        bucket=os.environ[f"AIRFLOW_VAR_{settings.BUCKET_VARIABLE.upper()}"],
        prefix=os.environ.get(f"AIRFLOW_VAR_{settings.PREFIX_VARIABLE.upper()}", ""),
    )
    days = [args.start + dt.timedelta(days=n) for n in range((args.end - args.start).days + 1)]
    rss_start = _rss_kb()
    if args.go_file:
        Path(f"{args.go_file}.ready-{os.getpid()}").touch()
        while not os.path.exists(args.go_file):
            time.sleep(0.005)

    def xcom(batch: Batch) -> Batch:
        return Batch.from_dict(json.loads(json.dumps(batch.to_dict())))

    results = []
    for batch in steps.discover(aws, days, args.batch_size, 1024):
        with event_db_for(settings.DB_CONN_ID, data_dir) as db:
            batch = xcom(steps.filter_existing(db, xcom(batch)))
            batch = xcom(steps.fetch_metadata(aws, db, batch, data_dir))
        batch = xcom(steps.download_audio(aws, batch, data_dir))
        with event_db_for(settings.DB_CONN_ID, data_dir) as db:
            results.append(vars(steps.load(db, batch, args.run_id)))
    total = vars(steps.BatchSummary.total(results))
    total.update(rss_start_kb=rss_start, rss_peak_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    print(json.dumps(total), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
