"""Names and tunables shared by the DAG, the operators and the tools.

Connection and variable names are those of docs/contract.md §4. Tunables read the
environment so an operator can change them without a code change; reading an
environment variable is not I/O, so this module is safe at DAG parse time.
"""

from __future__ import annotations

import os
from pathlib import Path

S3_CONN_ID = "event_ingest_s3"
DB_CONN_ID = "event_ingest_db"
BUCKET_VARIABLE = "event_ingest_bucket"
PREFIX_VARIABLE = "event_ingest_prefix"
DATA_DIR_VARIABLE = "event_ingest_data_dir"


def data_dir(configured: str | None = None) -> Path:
    """Where files go: ``configured`` (Variable ``event_ingest_data_dir``), else under ``$AIRFLOW_HOME``."""
    home = Path(os.environ.get("AIRFLOW_HOME", "~/airflow"))
    return Path(configured or home / "event_ingest_data").expanduser()


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


#: Sessions per mapped task instance. Measured (docs/performance.md): a task
#: instance costs Airflow about 0.25 s and a session about 6 ms of work, so 500
#: keeps that overhead near 20 %, a batch's XCom near 1.5 MB and a retry to
#: about 3 s of work; a day of 10,000 sessions makes 20 batches, far below
#: Airflow's ``max_map_length`` (1024), enough to keep a pool's slots busy.
BATCH_SIZE = _int_env("EVENT_INGEST_BATCH_SIZE", 500)
#: Days re-scanned before a scheduled run's own day, for sessions uploaded late.
LOOKBACK_DAYS = _int_env("EVENT_INGEST_LOOKBACK_DAYS", 2)
#: Longest date range one run accepts.
MAX_RANGE_DAYS = _int_env("EVENT_INGEST_MAX_RANGE_DAYS", 366)
#: Concurrent S3 requests within one task. Measured (docs/performance.md): a far endpoint needs
#: many in flight (at 20 ms a request, 16 cap a task at 800 GETs a second, 64 at 3,200), and 64
#: cost nothing on loopback, where Python's work per object sets the pace.
S3_CONCURRENCY = _int_env("EVENT_INGEST_S3_CONCURRENCY", 64)
#: Task retries and the first retry delay (doubled on each retry).
RETRIES = _int_env("EVENT_INGEST_RETRIES", 3)
RETRY_DELAY_S = _int_env("EVENT_INGEST_RETRY_DELAY_S", 30)
#: Airflow pool that bounds how many batches hit S3 and the database at once.
POOL = os.environ.get("EVENT_INGEST_POOL", "default_pool")
#: What reads object bodies (reports, display logs, audio tags): ``obstore`` (Rust, about 4x
#: boto3's GETs per second here) or ``boto3`` (the hook's client). Listing always uses ``S3Hook``.
DATA_PLANE = os.environ.get("EVENT_INGEST_DATA_PLANE", "obstore")
