"""
# event_ingest

Ingests the drive sessions of a day from S3 into the event database:

`discover_sessions` → `ingest_batch` (mapped over batches: `filter_existing` → `fetch_metadata` →
`download_audio` → `load_to_db`) → `summarize_run` → `emit_asset_event`

Each batch flows through its own chain; a batch that fails for good leaves the others loaded and
fails the run. A scheduled run covers its data interval, the UTC day [D, D+1), plus `lookback_days`
earlier days for late uploads. Trigger with `{"start_date": "YYYY-MM-DD", "end_date": "YYYY-MM-DD"}`
for a range (both ends inclusive). Connections `event_ingest_s3` and `event_ingest_db`; Variables
`event_ingest_bucket`, `event_ingest_prefix`, `event_ingest_data_dir`. Runs that load something
emit an event on the asset `event_ingest_events`. See the project README and docs/contract.md.
"""

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable, Param

from event_ingest import settings
from event_ingest.dag_shape import DEFAULT_ARGS, SOURCE, add_ingest_steps, batch_params
from event_ingest.operators import DiscoverSessionsOperator

with DAG(
    dag_id="event_ingest",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=4,
    doc_md=__doc__,
    tags=["event-ingest"],
    default_args=DEFAULT_ARGS,
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
            None,
            type=["null", "integer"],
            minimum=0,
            maximum=settings.MAX_RANGE_DAYS,
            description=(
                f"Earlier days to re-scan for late sessions. Empty: {settings.LOOKBACK_DAYS} for a"
                " scheduled run (EVENT_INGEST_LOOKBACK_DAYS), none for a range or a backfill."
            ),
        ),
        **batch_params(),
    },
) as dag:
    add_ingest_steps(DiscoverSessionsOperator(task_id="discover_sessions", **SOURCE))
