"""
# event_ingest

Ingests the drive sessions of a day from S3 into the event database:

`discover_sessions` → `filter_existing` → `fetch_metadata` → `download_audio`
→ `load_to_db` → `summarize_run`

The four middle steps are mapped over batches of sessions. A scheduled run
covers its data interval, the UTC day [D, D+1), plus `lookback_days` earlier
days for late uploads. Trigger with `{"start_date": "YYYY-MM-DD", "end_date":
"YYYY-MM-DD"}` for a range (both ends inclusive). Connections
`event_ingest_s3` and `event_ingest_db`; Variables `event_ingest_bucket`,
`event_ingest_prefix`, `event_ingest_data_dir`. See the project README.
"""

import datetime as dt

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable, Param

from event_ingest import settings
from event_ingest.operators import (
    DiscoverSessionsOperator,
    DownloadAudioOperator,
    FetchMetadataOperator,
    FilterExistingOperator,
    LoadToDbOperator,
    SummarizeRunOperator,
)


def _variable(name: str) -> str:
    """A template that reads Variable ``name`` when the task runs, not at parse time."""
    return "{{ var.value.get('" + name + "', '') }}"


SOURCE = {
    "bucket": _variable(settings.BUCKET_VARIABLE),
    "prefix": _variable(settings.PREFIX_VARIABLE),
    "data_dir": _variable(settings.DATA_DIR_VARIABLE),
    "pool": settings.POOL,
}

with DAG(
    dag_id="event_ingest",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=4,
    doc_md=__doc__,
    tags=["event-ingest"],
    default_args={
        "retries": settings.RETRIES,
        "retry_delay": dt.timedelta(seconds=settings.RETRY_DELAY_S),
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(minutes=30),
    },
    params={
        "start_date": Param(
            None, type=["null", "string"], format="date", description="First day to ingest (YYYY-MM-DD)."
        ),
        "end_date": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Last day to ingest, inclusive (YYYY-MM-DD); defaults to start_date.",
        ),
        "lookback_days": Param(
            settings.LOOKBACK_DAYS,
            type="integer",
            minimum=0,
            maximum=settings.MAX_RANGE_DAYS,
            description="Earlier days a scheduled run re-scans for late sessions.",
        ),
        "batch_size": Param(
            settings.BATCH_SIZE, type="integer", minimum=1, maximum=100_000, description="Sessions per task."
        ),
    },
) as dag:
    discovered = DiscoverSessionsOperator(task_id="discover_sessions", **SOURCE)
    new = FilterExistingOperator.partial(task_id="filter_existing", **SOURCE).expand(batch=discovered.output)
    fetched = FetchMetadataOperator.partial(task_id="fetch_metadata", **SOURCE).expand(batch=new.output)
    local = DownloadAudioOperator.partial(task_id="download_audio", **SOURCE).expand(batch=fetched.output)
    loaded = LoadToDbOperator.partial(task_id="load_to_db", **SOURCE).expand(batch=local.output)
    SummarizeRunOperator(task_id="summarize_run", results=loaded.output, trigger_rule="none_failed")
