"""Custom operators of the ``event_ingest`` DAG, one per step.

Each builds its ``AwsHelper`` and ``EventDb`` inside ``execute`` from
connection ids (never credentials), runs one function of
:mod:`event_ingest.steps` and returns a small XCom: a batch's keys and
metadata, or counts. The mapped ones run once per batch of sessions.

Log records carry structured fields (``dag_run_id``, ``batch``, counts,
``session_id``/``object_key``/``reason`` of rejects) so that JSON task logs,
e.g. in Elasticsearch, can be searched by them.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import structlog
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from event_ingest import settings, steps
from event_ingest.aws_helper import AwsHelper, S3AccessError
from event_ingest.event_db import EventDb, event_db_for
from event_ingest.model import Batch
from event_ingest.run_range import ConfError, days_to_ingest


def _fail(message: str) -> Exception:
    """An error no retry can fix: the task fails at once."""
    return AirflowFailException(message)


@contextmanager
def log_fields(context: Any, batch: int | None = None) -> Iterator[None]:
    """Bind the fields a log search needs to every record written inside.

    Airflow's task logging merges structlog context variables into each
    record, from this package's loggers and the hooks' alike.
    """
    with structlog.contextvars.bound_contextvars(
        dag_id=context["dag_run"].dag_id, dag_run_id=context["dag_run"].run_id, batch=batch
    ):
        yield


class EventIngestBaseOperator(BaseOperator):
    """What every step shares: where the data is and how to reach it.

    :param bucket: source bucket (templated; the DAG passes Variable
        ``event_ingest_bucket``).
    :param prefix: key prefix before the day partitions (templated).
    :param data_dir: where files go (templated); empty means
        ``$AIRFLOW_HOME/event_ingest_data``.
    :param aws_conn_id: connection of type ``aws`` for the bucket.
    :param db_conn_id: connection of the event database (``mysql`` or
        ``sqlite``); without one, SQLite in the data directory.
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

    def _aws(self) -> AwsHelper:
        if not self.bucket:
            raise _fail(f"no bucket: set Airflow Variable {settings.BUCKET_VARIABLE!r}")
        return AwsHelper(
            aws_conn_id=self.aws_conn_id,
            bucket=self.bucket,
            prefix=self.prefix,
            concurrency=self.s3_concurrency,
        )

    def _data_dir(self) -> Path:
        if self.data_dir:
            return Path(self.data_dir)
        return Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "event_ingest_data"

    @contextmanager
    def _db(self) -> Iterator[EventDb]:
        db = event_db_for(self.db_conn_id, self._data_dir())
        db.connect()
        try:
            yield db
        finally:
            db.close()


class DiscoverSessionsOperator(EventIngestBaseOperator):
    """List the sessions of the run's days and cut them into batches.

    The days come from the run's data interval (plus the look-back) or from
    the conf's ``start_date``/``end_date``; a bad conf fails here, before
    anything is read or written. Returns one XCom entry per batch, which the
    mapped steps expand over.

    :param max_range_days: longest range a run accepts.
    :param max_batches: most batches one run makes (Airflow's ``max_map_length``);
        a bigger run gets bigger batches.
    """

    def __init__(
        self, *, max_range_days: int = settings.MAX_RANGE_DAYS, max_batches: int = 1024, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.max_range_days = max_range_days
        self.max_batches = max_batches

    def execute(self, context: Any) -> list[dict[str, Any]]:
        dag_run = context["dag_run"]
        interval_start = context.get("data_interval_start")
        # Manual runs may have no data interval: they then cover the last whole day.
        interval_day = (interval_start or dag_run.run_after - dt.timedelta(days=1)).date()
        with log_fields(context):
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
                raise _fail(f"bad conf: {exc}") from None
            self.log.info(
                "Ingesting %s day(s): %s..%s",
                len(days),
                days[0],
                days[-1],
                first_day=str(days[0]),
                last_day=str(days[-1]),
            )
            try:
                batches = steps.discover(self._aws(), days, context["params"]["batch_size"], self.max_batches)
            except S3AccessError as exc:
                raise _fail(str(exc)) from None
            sessions = sum(b.discovered for b in batches)
            self.log.info(
                "Discovered %s session(s) in %s batch(es)",
                sessions,
                len(batches),
                discovered=sessions,
                batches=len(batches),
            )
        return [batch.to_dict() for batch in batches]


class _BatchOperator(EventIngestBaseOperator):
    """A step mapped over batches: takes one batch, returns it for the next step.

    :param batch: one batch, as the previous step returned it.
    """

    def __init__(self, *, batch: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch = batch

    def execute(self, context: Any) -> dict[str, Any]:
        batch = Batch.from_dict(self.batch)
        with log_fields(context, batch.index):
            return self.run_step(context, batch)

    def run_step(self, context: Any, batch: Batch) -> dict[str, Any]:
        raise NotImplementedError


class FilterExistingOperator(_BatchOperator):
    """Drop the batch's sessions that the event database holds already, unchanged."""

    def run_step(self, context: Any, batch: Batch) -> dict[str, Any]:
        with self._db() as db:
            batch = steps.filter_existing(db, batch)
        self.log.info(
            "%s new or changed session(s), %s skipped",
            len(batch.listings),
            batch.skipped,
            new_sessions=len(batch.listings),
            skipped=batch.skipped,
        )
        return batch.to_dict()


class FetchMetadataOperator(_BatchOperator):
    """Read each session's upload report; keep only the events the database lacks."""

    def run_step(self, context: Any, batch: Batch) -> dict[str, Any]:
        with self._db() as db:
            batch = steps.fetch_metadata(self._aws(), db, batch, self._data_dir())
        events = sum(len(s.events) for s in batch.sessions)
        self.log.info(
            "%s session(s) with %s new event(s), %s deferred, %s reject(s)",
            len(batch.sessions),
            events,
            batch.deferred,
            len(batch.rejects),
            sessions=len(batch.sessions),
            new_events=events,
            deferred=batch.deferred,
            rejected=len(batch.rejects),
        )
        return batch.to_dict()


class DownloadAudioOperator(_BatchOperator):
    """Download the batch's new audio tags into the data directory, verified."""

    def run_step(self, context: Any, batch: Batch) -> dict[str, Any]:
        batch = steps.download_audio(self._aws(), batch, self._data_dir())
        events = sum(len(s.events) for s in batch.sessions)
        self.log.info(
            "%s audio tag(s) in place, %s reject(s) so far",
            events,
            len(batch.rejects),
            events=events,
            rejected=len(batch.rejects),
        )
        return batch.to_dict()


class LoadToDbOperator(_BatchOperator):
    """Write the batch's sessions with their events (a transaction each) and its rejects."""

    def run_step(self, context: Any, batch: Batch) -> dict[str, int]:
        with self._db() as db:
            summary = steps.load(db, batch, context["dag_run"].run_id)
        for reject in batch.rejects:
            self.log.warning(
                "Rejected %s (session %s): %s",
                reject.object_key,
                reject.session_id,
                reject.reason,
                object_key=reject.object_key,
                session_id=reject.session_id,
                reason=reject.reason,
            )
        self.log.info(
            "Loaded %s session(s) and %s event(s)",
            summary.loaded_sessions,
            summary.loaded_events,
            **vars(summary),
        )
        return vars(summary)


class SummarizeRunOperator(BaseOperator):
    """Add up the batches' counts into the run's summary (an empty run gives zeros).

    :param results: the ``load_to_db`` XComs, one per batch.
    """

    template_fields: Sequence[str] = ("results",)

    def __init__(self, *, results: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.results = results

    def execute(self, context: Any) -> dict[str, int]:
        results = self.results or []
        total = steps.BatchSummary.total(results[n] for n in range(len(results)))
        with log_fields(context):
            self.log.info(
                "Run summary: %s",
                " ".join(f"{name}={value}" for name, value in vars(total).items()),
                **vars(total),
            )
        return vars(total)
