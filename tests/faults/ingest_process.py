"""A whole ingest run in an OS process of its own: the package's batch runner, nothing re-implemented.

Fault tests start this where a run must be a separate process: to SIGKILL it, to run two at once, or
to measure its memory. It calls :func:`event_ingest.runner.ingest` (every step of every batch, each
batch crossing each step boundary in its XCom form) with the ``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*``
environment that the tests' DAG runs use.

Prints one JSON line: the run's :class:`~event_ingest.runner.BatchSummary`, plus ``rss_start_kb``
(after imports) and ``rss_peak_kb`` (the process's peak resident set).

    python -m tests.faults.ingest_process --start 2026-11-01 --end 2026-11-03 [--batch-size N]
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
    parser = argparse.ArgumentParser(prog="python -m tests.faults.ingest_process")
    parser.add_argument("--start", required=True, type=dt.date.fromisoformat)
    parser.add_argument("--end", required=True, type=dt.date.fromisoformat)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--go-file", help="wait until this file exists before starting")
    parser.add_argument("--run-id", default=f"ingest_process__{os.getpid()}")
    args = parser.parse_args(argv)

    from event_ingest import settings
    from event_ingest.runner import Place, ingest

    place = Place(
        bucket=os.environ[f"AIRFLOW_VAR_{settings.BUCKET_VARIABLE.upper()}"],
        prefix=os.environ.get(f"AIRFLOW_VAR_{settings.PREFIX_VARIABLE.upper()}", ""),
        data_dir=Path(os.environ[f"AIRFLOW_VAR_{settings.DATA_DIR_VARIABLE.upper()}"]),
        dag_run_id=args.run_id,
    )
    days = [args.start + dt.timedelta(days=n) for n in range((args.end - args.start).days + 1)]
    rss_start = _rss_kb()
    if args.go_file:
        Path(f"{args.go_file}.ready-{os.getpid()}").touch()
        while not os.path.exists(args.go_file):
            time.sleep(0.005)
    summary = vars(ingest(place, days, batch_size=args.batch_size))
    summary.update(rss_start_kb=rss_start, rss_peak_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
