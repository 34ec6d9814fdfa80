"""Custom operators of the ingest DAGs, one per step.

Each builds what its step needs inside ``execute`` from connection ids (never credentials), runs one
method of :class:`~event_ingest.runner.BatchRunner` and returns a small XCom: a batch in its
compressed form, or counts. The batch steps run once per batch, in a mapped task group
(:mod:`event_ingest.dag_shape`), so one batch's failure never holds another back.

Log records carry structured fields (``dag_run_id``, ``batch``, counts, and ``session_id``,
``object_key``, ``reason`` of each reject) so that JSON task logs, e.g. in Elasticsearch, can be
searched by them. Every value from the bucket is logged :func:`~event_ingest.safe_text.excerpt`-ed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from airflow.sdk import Asset, BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from event_ingest import notifications, settings
from event_ingest.assets import EVENTS_ASSET
from event_ingest.errors import ConfError, S3AccessError
from event_ingest.model import Batch
from event_ingest.run_range import days_to_ingest, file_types_of
from event_ingest.runner import STEP_NEEDS, BatchRunner, BatchSummary, Place
from event_ingest.safe_text import excerpt

#: The XCom key under which discovery says how many batches a run has, and its days.
PLAN_KEY = "plan"
BATCH_GROUP = "ingest_batch"
LOAD_TASK = "load_to_db"


@contextmanager
def log_fields(context: Any, batch: int | None = None) -> Iterator[None]:
    """Bind the fields a log search needs to every record written inside.

    Airflow's task logging merges structlog context variables into each record, from this
    package's loggers and the hooks' alike.
    """
    with structlog.contextvars.bound_contextvars(
        dag_id=context["dag_run"].dag_id, dag_run_id=context["dag_run"].run_id, batch=batch
    ):
        yield


class EventIngestBaseOperator(BaseOperator):
    """What every step shares: where the data is and how to reach it.

    :param bucket: source bucket (templated; the DAGs pass Variable ``event_ingest_bucket``).
    :param prefix: key prefix before the day partitions (templated).
    :param data_dir: where files go (templated); empty means ``$AIRFLOW_HOME/event_ingest_data``.
    :param aws_conn_id: connection of type ``aws`` for the bucket.
    :param db_conn_id: connection of the event database (``mysql``, ``postgres`` or ``sqlite``);
        without one, SQLite in the data directory.
    :param s3_concurrency: concurrent S3 requests within the task.
    """

    template_fields: Sequence[str] = ("bucket", "prefix", "data_dir")
    ui_color = "#d6eaf8"

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        data_dir: str = "",
        aws_conn_id: str = settings.S3_CONN_ID,
        db_conn_id: str = settings.DB_CONN_ID,
        s3_concurrency: int = settings.S3_CONCURRENCY,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bucket = bucket
        self.prefix = prefix
        self.data_dir = data_dir
        self.aws_conn_id = aws_conn_id
        self.db_conn_id = db_conn_id
        self.s3_concurrency = s3_concurrency

    def place(self, context: Any) -> Place:
        """The run's :class:`~event_ingest.runner.Place`, from this task's fields and the run's params."""
        if not self.bucket:
            raise AirflowFailException(f"no bucket: set Airflow Variable {settings.BUCKET_VARIABLE!r}")
        data_dir = settings.data_dir(self.data_dir)
        try:
            file_types = file_types_of(context["params"].get("download_types"))
        except ConfError as exc:
            raise AirflowFailException(f"bad conf: {exc}") from None
        return Place(
            bucket=self.bucket,
            prefix=self.prefix,
            data_dir=data_dir,
            aws_conn_id=self.aws_conn_id,
            db_conn_id=self.db_conn_id,
            concurrency=self.s3_concurrency,
            file_types=file_types,
            dag_run_id=context["dag_run"].run_id,
        )


class _DiscoverOperator(EventIngestBaseOperator):
    """Find a run's sessions and cut them into batches, after recording the run's start.

    Returns one XCom entry per batch, which the mapped task group expands over, and pushes the
    run's plan (days, number of batches) under :data:`PLAN_KEY` for ``summarize_run``.

    :param max_batches: most batches one run makes (Airflow's ``max_map_length``); a bigger run
        gets bigger batches.
    """

    def __init__(self, *, max_batches: int = 1024, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_batches = max_batches

    def find(self, runner: BatchRunner, context: Any, batch_size: int) -> tuple[list[str], list[Batch]]:
        """The run's days and its batches."""
        raise NotImplementedError

    def execute(self, context: Any) -> list[dict[str, Any]]:
        dag_run = context["dag_run"]
        place = self.place(context)
        batch_size = context["params"]["batch_size"]
        with log_fields(context), place.runner(**STEP_NEEDS["discover"]) as runner:
            days, batches = self.find(runner, context, batch_size)
            sessions = sum(b.discovered for b in batches)
            self.log.info(
                "Discovered %s session(s) in %s batch(es)",
                sessions,
                len(batches),
                discovered=sessions,
                batches=len(batches),
            )
        # The ledger row only once the conf is known good: a refused conf writes nothing.
        with place.open_db() as db:
            db.start_run(
                dag_run_id=dag_run.run_id,
                dag_id=dag_run.dag_id,
                run_type=str(getattr(dag_run.run_type, "value", dag_run.run_type)),
                first_day=days[0] if days else None,
                last_day=days[-1] if days else None,
            )
        context["ti"].xcom_push(key=PLAN_KEY, value={"days": days, "batches": len(batches)})
        return [batch.to_xcom() for batch in batches]


class DiscoverSessionsOperator(_DiscoverOperator):
    """List the sessions of the run's days.

    The days come from the run's data interval (plus the look-back) or from the conf's
    ``start_date``/``end_date``; a bad conf fails here, before anything is read or written.

    :param max_range_days: longest range a run accepts.
    """

    def __init__(self, *, max_range_days: int = settings.MAX_RANGE_DAYS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_range_days = max_range_days

    def find(self, runner: BatchRunner, context: Any, batch_size: int) -> tuple[list[str], list[Batch]]:
        dag_run = context["dag_run"]
        interval_start = context.get("data_interval_start")
        # Manual runs may have no data interval: they then cover the last whole day.
        interval_day = (interval_start or dag_run.run_after - dt.timedelta(days=1)).date()
        try:
            days = days_to_ingest(
                conf=dag_run.conf or {},
                params=context["params"],
                interval_day=interval_day,
                # The Task SDK's DagRunType is a str enum: compare its value, not str().
                is_backfill=getattr(dag_run.run_type, "value", dag_run.run_type) == "backfill",
                max_range_days=self.max_range_days,
            )
        except ConfError as exc:
            raise AirflowFailException(f"bad conf: {exc}") from None
        self.log.info(
            "Ingesting %s day(s): %s..%s",
            len(days),
            days[0],
            days[-1],
            first_day=str(days[0]),
            last_day=str(days[-1]),
        )
        try:
            batches = runner.discover(days, batch_size=batch_size, max_batches=self.max_batches)
        except S3AccessError as exc:
            raise AirflowFailException(str(exc)) from None
        return [day.isoformat() for day in days], batches


class DiscoverUploadedSessionsOperator(_DiscoverOperator):
    """Take the sessions whose reports the bucket notifications on the ``uploads`` asset announce.

    A run reads its triggering asset events and also every event of ``uploads`` from the run's
    ``run_after`` on, until the moment this task starts. An asset-triggered run consumes only the
    events up to its ``run_after`` (when its asset-queue entry was made), and making the run
    deletes the entry. Events that arrive while the run waits behind ``max_active_runs`` therefore
    fall into no run until another notification arrives. Reading past ``run_after`` leaves none
    behind. An event read by two runs costs the second one a listing, because loading is idempotent.
    See docs/event-driven.md.

    :param uploads: the asset whose watcher records the notifications; it becomes this task's inlet.
    """

    def __init__(self, *, uploads: Asset, **kwargs: Any) -> None:
        super().__init__(inlets=[uploads], **kwargs)
        self.uploads = uploads

    def find(self, runner: BatchRunner, context: Any, batch_size: int) -> tuple[list[str], list[Batch]]:
        triggering = context["triggering_asset_events"].get(self.uploads, [])
        later = context["inlet_events"][self.uploads].after(context["dag_run"].run_after)
        notified = notifications.notified_reports(
            [event.extra for event in [*triggering, *later]], bucket=self.bucket
        )
        try:
            batches = runner.discover_keys(
                notified.report_keys, batch_size=batch_size, max_batches=self.max_batches
            )
        except S3AccessError as exc:
            raise AirflowFailException(str(exc)) from None
        days = sorted({listing.day for batch in batches for listing in batch.listings})
        self.log.info(
            "%s notification message(s) (%s announcing no report), %s report key(s), %s session(s)",
            notified.messages,
            notified.ignored,
            len(notified.report_keys),
            sum(b.discovered for b in batches),
            messages=notified.messages,
            ignored_messages=notified.ignored,
            report_keys=len(notified.report_keys),
        )
        return days, batches


class _BatchOperator(EventIngestBaseOperator):
    """A step mapped over batches: takes one batch, returns it for the next step.

    :param batch: one batch, in the XCom form the previous step returned it.
    """

    template_fields: Sequence[str] = (*EventIngestBaseOperator.template_fields, "batch")
    step: str

    def __init__(self, *, batch: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch = batch

    def execute(self, context: Any) -> dict[str, Any]:
        batch = Batch.from_xcom(self.batch)
        with log_fields(context, batch.index), self.place(context).runner(**STEP_NEEDS[self.step]) as runner:
            return self.run_step(runner, batch)

    def run_step(self, runner: BatchRunner, batch: Batch) -> dict[str, Any]:
        raise NotImplementedError


class FilterExistingOperator(_BatchOperator):
    """Drop the batch's sessions that the event database holds already, unchanged."""

    step = "filter_existing"

    def run_step(self, runner: BatchRunner, batch: Batch) -> dict[str, Any]:
        batch = runner.filter_existing(batch)
        self.log.info(
            "%s new or changed session(s), %s skipped",
            len(batch.listings),
            batch.skipped,
            new_sessions=len(batch.listings),
            skipped=batch.skipped,
        )
        return batch.to_xcom()


class FetchMetadataOperator(_BatchOperator):
    """Read each session's upload report; keep only the events the database lacks."""

    step = "fetch_metadata"

    def run_step(self, runner: BatchRunner, batch: Batch) -> dict[str, Any]:
        batch = runner.fetch_metadata(batch)
        events = sum(len(s.events) for s in batch.sessions)
        self.log.info(
            "%s session(s) with %s new event(s), %s deferred, %s reject(s)",
            len(batch.sessions),
            events,
            len(batch.deferrals),
            len(batch.rejects),
            sessions=len(batch.sessions),
            new_events=events,
            deferred=len(batch.deferrals),
            rejected=len(batch.rejects),
        )
        return batch.to_xcom()


class DownloadFilesOperator(_BatchOperator):
    """Download the batch's new audio tags (and the other files asked for), verified."""

    step = "download"

    def run_step(self, runner: BatchRunner, batch: Batch) -> dict[str, Any]:
        batch = runner.download(batch)
        events = sum(len(s.events) for s in batch.sessions)
        files = sum(len(s.files) for s in batch.sessions)
        self.log.info(
            "%s audio tag(s) and %s other file(s) in place, %s reject(s) so far",
            events,
            files,
            len(batch.rejects),
            events=events,
            files=files,
            rejected=len(batch.rejects),
        )
        return batch.to_xcom()


class LoadToDbOperator(_BatchOperator):
    """Write the batch's sessions with their events, rejects and deferrals in one transaction."""

    step = "load"

    def run_step(self, runner: BatchRunner, batch: Batch) -> dict[str, Any]:
        summary = runner.load(batch)
        for reject in batch.rejects:
            self.log.warning(
                "Rejected %s (session %s): %s",
                excerpt(reject.object_key),
                excerpt(reject.session_id or ""),
                reject.reason,
                object_key=excerpt(reject.object_key, 1024),
                session_id=excerpt(reject.session_id or "", 1024),
                reason=reject.reason,
            )
        self.log.info(
            "Loaded %s session(s) and %s event(s)",
            summary.loaded_sessions,
            summary.loaded_events,
            **vars(summary),
        )
        return vars(summary)


@dataclass
class RunTotals:
    """What the batches of a run came to: the plan discovery pushed, and the sum of those that finished."""

    days: list[str]
    batches: int
    failed: int
    counts: dict[str, int]

    @classmethod
    def of(cls, ti: Any, discover_task_id: str) -> RunTotals | None:
        """Read the run's plan and its batches' ``load_to_db`` results; ``None`` if discovery never finished.

        A batch without a result failed for good (or its group never reached the load).
        """
        plan = ti.xcom_pull(task_ids=discover_task_id, key=PLAN_KEY)
        if plan is None:
            return None
        count = int(plan["batches"])
        results = (
            ti.xcom_pull(task_ids=f"{BATCH_GROUP}.{LOAD_TASK}", map_indexes=list(range(count)))
            if count
            else []
        )
        if isinstance(results, dict):
            results = [results]
        done = [r for r in results or [] if r]
        return cls(list(plan["days"]), count, count - len(done), vars(BatchSummary.total(done)))


class SummarizeRunOperator(EventIngestBaseOperator):
    """Add up the batches that finished, record the run in ``ingest_runs``, and fail it if a batch failed.

    Runs whatever happened upstream (trigger rule ``all_done``). The counts of the batches that
    finished are summed and recorded, with the number that did not; then, if any failed, the task
    fails so that the run shows as failed (its ledger row says so), while every other batch stays
    loaded. Returns the run's counts.

    :param discover_task_id: the task that pushed the run's plan.
    """

    def __init__(self, *, discover_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.discover_task_id = discover_task_id

    def execute(self, context: Any) -> dict[str, int]:
        with log_fields(context):
            totals = RunTotals.of(context["ti"], self.discover_task_id)
            if totals is None:
                raise AirflowFailException("the run did not start: discovering its sessions failed")
            with self.place(context).open_db() as db:
                db.finish_run(
                    dag_run_id=context["dag_run"].run_id,
                    state="failed" if totals.failed else "success",
                    counts=totals.counts,
                    failed_batches=totals.failed,
                )
            self.log.info(
                "Run summary: %s",
                " ".join(f"{k}={v}" for k, v in totals.counts.items()),
                failed_batches=totals.failed,
                **totals.counts,
            )
            if totals.failed:
                raise AirflowFailException(
                    f"{totals.failed} of {totals.batches} batch(es) failed; the others are loaded"
                )
        return totals.counts


class EmitAssetEventOperator(BaseOperator):
    """Announce on the ``event_ingest_events`` asset what a run loaded; skip when it loaded nothing.

    Runs beside ``summarize_run`` once every batch is done (trigger rule ``all_done``), so that a
    run with a failed batch still announces what its other batches loaded (the extra says how many
    failed). The asset event's extra holds the run's days and counts, for downstream DAGs.

    :param discover_task_id: the task that pushed the run's plan.
    """

    def __init__(self, *, discover_task_id: str, **kwargs: Any) -> None:
        super().__init__(outlets=[EVENTS_ASSET], **kwargs)
        self.discover_task_id = discover_task_id

    def execute(self, context: Any) -> None:
        totals = RunTotals.of(context["ti"], self.discover_task_id)
        if totals is None or not (totals.counts["loaded_sessions"] or totals.counts["loaded_events"]):
            raise AirflowSkipException("nothing was loaded: no asset event")
        context["outlet_events"][EVENTS_ASSET].extra = {
            "dag_id": context["dag_run"].dag_id,
            "dag_run_id": context["dag_run"].run_id,
            "first_day": totals.days[0] if totals.days else None,
            "last_day": totals.days[-1] if totals.days else None,
            "days": totals.days,
            "failed_batches": totals.failed,
            **totals.counts,
        }
