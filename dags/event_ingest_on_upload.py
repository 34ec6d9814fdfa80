"""
# event_ingest_on_upload

Loads a session within about a minute of its upload. The bucket's `ObjectCreated` notifications
arrive on the SQS queue `EVENT_INGEST_SQS_QUEUE_URL`. This DAG exists only when that variable is set.
An `AssetWatcher` on the queue turns each poll's messages (up to 50) into an event of the asset
`event_ingest_uploads`, and the scheduler makes runs from those events. A run takes the upload reports
its notifications name and ingests those sessions through the same steps and tables as `event_ingest`:

`discover_uploaded_sessions` → `ingest_batch` (mapped: `filter_existing` → `fetch_metadata` →
`download_audio` → `load_to_db`) → `summarize_run` → `emit_asset_event`

Notifications about other keys are ignored. Delivery is at least once and unordered, and loading is
idempotent. The trigger deletes each message when it receives it, so a message lost on the way or a
run that failed for good is left to the daily `event_ingest` run, which is the reconciliation.
The trigger reads the queue through connection `EVENT_INGEST_SQS_CONN_ID` (default `aws_default`).
See docs/event-driven.md.
"""

import os

from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger
from airflow.sdk import DAG, Asset, AssetWatcher

from event_ingest.dag_shape import DEFAULT_ARGS, SOURCE, add_ingest_steps, batch_params
from event_ingest.operators import DiscoverUploadedSessionsOperator

QUEUE_URL = os.environ.get("EVENT_INGEST_SQS_QUEUE_URL", "")

if QUEUE_URL:
    uploads = Asset(
        name="event_ingest_uploads",
        uri="event-ingest://uploads",
        watchers=[
            AssetWatcher(
                name="event_ingest_sqs",
                trigger=MessageQueueTrigger(
                    # By scheme: matching by `queue=` knows only AWS-style queue URLs.
                    scheme="sqs",
                    sqs_queue=QUEUE_URL,
                    aws_conn_id=os.environ.get("EVENT_INGEST_SQS_CONN_ID", "aws_default"),
                    # A poll is up to five receives of ten messages, recorded as one asset event, and
                    # the trigger restarts about 2 s after each: a burst reaches Airflow at about 25
                    # messages a second. One-second waits hold a lone message back at most 4 s;
                    # an idle queue costs under one receive a second (docs/event-driven.md).
                    max_messages=10,
                    num_batches=5,
                    wait_time_seconds=1,
                    waiter_delay=1,
                ),
            )
        ],
    )

    with DAG(
        dag_id="event_ingest_on_upload",
        schedule=[uploads],
        catchup=False,
        # One run at a time: each run takes every notification there is when it starts (see
        # DiscoverUploadedSessionsOperator), so a burst of uploads makes a few runs, not one per
        # session, and two runs never load the same sessions at once.
        max_active_runs=1,
        doc_md=__doc__,
        tags=["event-ingest"],
        default_args=DEFAULT_ARGS,
        params=batch_params(),
    ) as dag:
        add_ingest_steps(
            DiscoverUploadedSessionsOperator(task_id="discover_uploaded_sessions", uploads=uploads, **SOURCE)
        )
