"""The shape both ingest DAGs share: per-batch task groups after discovery, then the run's summary.

::

    discover_sessions ─┬─► ingest_batch[0] ─┬─► summarize_run      ingest_batch[n] =
                       ├─► ingest_batch[1] ─┤                        filter_existing ─► fetch_metadata
                       └─► ingest_batch[n] ─┴─► emit_asset_event     ─► download_audio ─► load_to_db

The group is mapped over the batches (``expand`` on a ``@task_group``): each batch flows through its
own chain, so batch 3 loading never waits on batch 7 downloading, and a batch that fails for good
leaves the others loaded. Once every batch is done (``all_done``), ``summarize_run`` adds up the
batches that finished, records the run and fails it if one did not, and beside it
``emit_asset_event`` announces what was loaded (a run with a failed batch still announces what its
other batches loaded). The DAG files are wiring only: they build a discover task and call
:func:`add_ingest_steps`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import BaseOperator, Param, TriggerRule, task_group

from event_ingest import settings
from event_ingest.model import AUDIO_TAG, FILE_TYPES
from event_ingest.operators import (
    BATCH_GROUP,
    LOAD_TASK,
    DownloadFilesOperator,
    EmitAssetEventOperator,
    FetchMetadataOperator,
    FilterExistingOperator,
    LoadToDbOperator,
    SummarizeRunOperator,
)
from event_ingest.run_range import ALL_TYPES


def _variable(name: str) -> str:
    """A template that reads Variable ``name`` when the task runs, not at parse time."""
    return "{{ var.value.get('" + name + "', '') }}"


#: Where every task finds the bucket and the data directory: Variables, read when the task runs.
SOURCE: dict[str, Any] = {
    "bucket": _variable(settings.BUCKET_VARIABLE),
    "prefix": _variable(settings.PREFIX_VARIABLE),
    "data_dir": _variable(settings.DATA_DIR_VARIABLE),
    "pool": settings.POOL,
}

DEFAULT_ARGS: dict[str, Any] = {
    "retries": settings.RETRIES,
    "retry_delay": dt.timedelta(seconds=settings.RETRY_DELAY_S),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=30),
}


def batch_params() -> dict[str, Param]:
    """The params both DAGs take: how big a batch is, what to download."""
    return {
        "batch_size": Param(
            settings.BATCH_SIZE, type="integer", minimum=1, maximum=100_000, description="Sessions per batch."
        ),
        "download_types": Param(
            [AUDIO_TAG],
            type="array",
            items={"type": "string", "enum": [*FILE_TYPES, ALL_TYPES]},
            description="What to download: audio_tag (always), display_log, raw, or all.",
        ),
    }


def add_ingest_steps(discover: BaseOperator) -> SummarizeRunOperator:
    """Add the per-batch task group over ``discover``'s batches, then the summary and the asset event."""

    @task_group(group_id=BATCH_GROUP)
    def ingest_batch(batch: Any) -> Any:
        new = FilterExistingOperator(task_id="filter_existing", batch=batch, **SOURCE)
        fetched = FetchMetadataOperator(task_id="fetch_metadata", batch=new.output, **SOURCE)
        local = DownloadFilesOperator(task_id="download_audio", batch=fetched.output, **SOURCE)
        return LoadToDbOperator(task_id=LOAD_TASK, batch=local.output, **SOURCE).output

    loaded = ingest_batch.expand(batch=discover.output)
    summary = SummarizeRunOperator(
        task_id="summarize_run",
        discover_task_id=discover.task_id,
        trigger_rule=TriggerRule.ALL_DONE,
        **SOURCE,
    )
    announce = EmitAssetEventOperator(
        task_id="emit_asset_event",
        discover_task_id=discover.task_id,
        trigger_rule=TriggerRule.ALL_DONE,
        pool=settings.POOL,
    )
    loaded >> [summary, announce]
    return summary
