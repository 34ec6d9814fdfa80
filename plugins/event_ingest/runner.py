"""The pipeline's steps over one batch of sessions: the one implementation everything calls.

The operators run one step per task; :func:`ingest` runs every step of every batch in this process
(the benchmark and the fault tests), each batch crossing each step boundary in its XCom form as it
does between tasks. A :class:`BatchRunner` holds what a step needs: the bucket
(:class:`~event_ingest.source.S3Source`), the event database, the data directory and the run's
options; each task builds only the parts its step uses.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from event_ingest import layout, settings
from event_ingest.assembler import SessionAssembler
from event_ingest.event_db import EventDb, event_db_for
from event_ingest.model import AUDIO_TAG, Batch, Deferral, Reject, SessionListing
from event_ingest.report import ParsedReport
from event_ingest.safe_text import excerpt
from event_ingest.source import S3Source

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class BatchSummary:
    """What a batch (or a run) came to: counts only, the load step's small XCom.

    ``skipped`` counts sessions the database already held unchanged (filtered out before their
    report was read, or read again because of an open reject and found with nothing new).
    ``rejected`` counts rejected objects (reports, audio tags, display logs, other files).
    """

    discovered: int = 0
    skipped: int = 0
    deferred: int = 0
    rejected: int = 0
    loaded_sessions: int = 0
    loaded_events: int = 0

    @classmethod
    def total(cls, parts: Iterable[dict[str, int]]) -> BatchSummary:
        summary = cls()
        for part in parts:
            for name, value in part.items():
                setattr(summary, name, getattr(summary, name) + value)
        return summary


class BatchRunner:
    """The steps of a run over its batches; see the module docstring.

    :param source: the bucket (discover, fetch, download).
    :param db: the event database, connected (filter, fetch, load).
    :param data_dir: where reports and files go.
    :param file_types: what to download besides audio tags (``display_log``, ``raw``).
    :param dag_run_id: the run that writes, recorded with rejects and deferrals.
    """

    def __init__(
        self,
        *,
        source: S3Source | None = None,
        db: EventDb | None = None,
        data_dir: str | Path = ".",
        file_types: Iterable[str] = (AUDIO_TAG,),
        dag_run_id: str | None = None,
    ) -> None:
        self._source = source
        self._db = db
        self.data_dir = Path(data_dir)
        self.file_types = frozenset(file_types) | {AUDIO_TAG}
        self.dag_run_id = dag_run_id

    @property
    def source(self) -> S3Source:
        if self._source is None:
            raise RuntimeError("this step needs the bucket: give the BatchRunner a source")
        return self._source

    @property
    def db(self) -> EventDb:
        if self._db is None:
            raise RuntimeError("this step needs the event database: give the BatchRunner a db")
        return self._db

    def _map(self, func: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if len(items) <= 1:
            return [func(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.source.concurrency, len(items))) as pool:
            return list(pool.map(func, items))

    # -- discover ---------------------------------------------------------------------------------

    def discover(self, days: Iterable[dt.date], *, batch_size: int, max_batches: int = 1024) -> list[Batch]:
        """List the sessions of ``days`` (oldest first) and cut them into batches.

        A session id found under more than one day is the earliest day's session; the later
        folders are marked, to be rejected without being read.
        """
        self.source.connect()
        listings = [
            listing
            for day in sorted(set(days))
            for listing in self.source.list_day(day, file_types=self.file_types)
        ]
        return _batches(_mark_later_folders(listings), batch_size, max_batches)

    def discover_keys(
        self, report_keys: Iterable[str], *, batch_size: int, max_batches: int = 1024
    ) -> list[Batch]:
        """The sessions whose report keys are given (from bucket notifications), cut into batches.

        Keys that are not a session's report (other files, other prefixes, stray keys) are ignored;
        a report gone since the notification gives no session.
        """
        folders = sorted(
            {
                (parts[0], parts[1])
                for key in report_keys
                if (parts := layout.split_session_key(self.source.prefix, key))
                and layout.is_report(parts[1], parts[2])
            }
        )
        if not folders:
            return []
        self.source.connect()
        found = self._map(
            lambda folder: self.source.list_session(*folder, file_types=self.file_types), folders
        )
        return _batches(_mark_later_folders([x for x in found if x is not None]), batch_size, max_batches)

    # -- the batch's steps ------------------------------------------------------------------------

    def filter_existing(self, batch: Batch) -> Batch:
        """Drop the sessions the database holds already, unchanged and without open rejects.

        A session whose report or audio tags changed, that had something rejected, or that misses
        files this run downloads goes on: its events are deduplicated one by one later. A folder
        whose session id the database holds from another day is rejected, and its rows stay.
        """
        states = self.db.session_states([listing.session_id for listing in batch.listings])
        keep = []
        for listing in batch.listings:
            state = states.get(listing.session_id)
            if state is not None and state.session_date != listing.day:
                where = "found under" if state.session_date < listing.day else "loaded from the folder of"
                reason = f"report: session id already {where} {state.session_date}"
                batch.rejects.append(Reject(listing.report_key, listing.session_id, reason, listing.day))
            elif state is not None and state.is_current(listing, self.file_types):
                batch.skipped += 1
            else:
                keep.append(listing)
        batch.listings = keep
        return batch

    def fetch_metadata(self, batch: Batch) -> Batch:
        """Read each session's report; keep the events the database does not hold yet.

        Bad reports and files become rejects, unfinished uploads deferrals; event times missing
        from a report are looked up in the display logs. An audio tag that the database holds with
        another ETag changed after it was loaded: it is rejected, and its row and file stay.
        """
        assembler = SessionAssembler(self.source, self.data_dir, file_types=self.file_types)
        parsed: list[ParsedReport] = []
        for outcome in self._map(assembler.assemble, batch.listings):
            if isinstance(outcome, Deferral):
                log.info("Deferring session %s: %s", excerpt(outcome.session_id), outcome.reason)
                batch.deferrals.append(outcome)
            elif isinstance(outcome, Reject):
                batch.rejects.append(outcome)
            else:
                parsed.append(outcome)
        # By session, not by event id: round trips stay constant as sessions get more tags.
        known = self.db.known_events([p.session.session_id for p in parsed])
        for report in parsed:
            session = report.session
            batch.rejects.extend(report.rejects)
            new = []
            for event in session.events:
                if event.event_id not in known:
                    new.append(event)
                elif event.etag and known[event.event_id] not in (None, event.etag.strip('"')):
                    loaded, now = known[event.event_id], event.etag.strip('"')
                    reason = f"audio tag: changed after it was loaded (ETag {loaded}, now {now})"
                    batch.rejects.append(
                        Reject(event.s3_key, session.session_id, reason, session.session_date)
                    )
            session.events = new
            batch.processed.append(session.session_id)
            batch.sessions.append(session)
        batch.listings = []
        return batch

    def download(self, batch: Batch) -> Batch:
        """Download the batch's new audio tags (and other files asked for) into the data directory.

        Each file is verified (size, MD5, the listed ETag); one that fails leaves its session and
        becomes a reject, and the session loads with the rest.
        """
        assembler = SessionAssembler(self.source, self.data_dir, file_types=self.file_types)
        jobs = []
        for session in batch.sessions:
            planned, rejects = assembler.plan_downloads(session)
            jobs.extend(planned)
            batch.rejects.extend(rejects)
        failures = [r for r in self._map(assembler.download, jobs) if r is not None]
        batch.rejects.extend(failures)
        failed = {r.object_key for r in batch.rejects}
        for session in batch.sessions:
            session.events = [e for e in session.events if e.s3_key not in failed and e.local_path]
            session.files = [f for f in session.files if f.s3_key not in failed and f.local_path]
        return batch

    def load(self, batch: Batch) -> BatchSummary:
        """Write the batch in one transaction: sessions with their new events, rejects, deferrals."""
        result = self.db.load_batch(batch, self.dag_run_id)
        return BatchSummary(
            discovered=batch.discovered,
            skipped=batch.skipped + result.unchanged,
            deferred=len(batch.deferrals),
            rejected=len(batch.rejects) + result.refused,
            loaded_sessions=result.sessions,
            loaded_events=result.events,
        )


def _mark_later_folders(listings: list[SessionListing]) -> list[SessionListing]:
    """Mark each folder whose session id an earlier day's folder (in ``listings``, oldest first) holds too."""
    first_day: dict[str, str] = {}
    for listing in listings:
        earliest = first_day.setdefault(listing.session_id, listing.day)
        listing.earlier_day = earliest if earliest != listing.day else None
    return listings


def _batches(listings: list[SessionListing], batch_size: int, max_batches: int) -> list[Batch]:
    """Cut ``listings`` into batches of ``batch_size`` (more when that would exceed ``max_batches``)."""
    size = max(batch_size, math.ceil(len(listings) / max_batches))
    if size > batch_size:
        log.warning(
            "%s sessions: batches grow to %s sessions to stay within %s", len(listings), size, max_batches
        )
    chunks = [listings[start : start + size] for start in range(0, len(listings), size)]
    return [Batch(index=n, listings=chunk, discovered=len(chunk)) for n, chunk in enumerate(chunks)]


@dataclass(frozen=True)
class Place:
    """Where a run's data comes from and goes, and how to reach it: what every step is built from.

    :param bucket: the source bucket.
    :param data_dir: where reports and files go (and the embedded SQLite database, without a
        database connection).
    :param prefix: key prefix before the day partitions.
    :param aws_conn_id: connection of type ``aws`` for the bucket.
    :param db_conn_id: connection of the event database (``mysql``, ``postgres`` or ``sqlite``).
    :param concurrency: concurrent S3 requests within a step.
    :param data_plane: ``obstore`` or ``boto3`` (default: setting ``EVENT_INGEST_DATA_PLANE``).
    :param file_types: what to download besides audio tags.
    :param dag_run_id: the run that writes.
    """

    bucket: str
    data_dir: Path
    prefix: str = ""
    aws_conn_id: str = settings.S3_CONN_ID
    db_conn_id: str = settings.DB_CONN_ID
    concurrency: int = settings.S3_CONCURRENCY
    data_plane: str | None = None
    file_types: tuple[str, ...] = (AUDIO_TAG,)
    dag_run_id: str | None = None

    def with_run(self, dag_run_id: str | None, file_types: Iterable[str]) -> Place:
        return replace(self, dag_run_id=dag_run_id, file_types=tuple(file_types))

    def source(self) -> S3Source:
        return S3Source(
            aws_conn_id=self.aws_conn_id,
            bucket=self.bucket,
            prefix=self.prefix,
            concurrency=self.concurrency,
            data_plane=self.data_plane,
        )

    @contextmanager
    def open_db(self) -> Iterator[EventDb]:
        """The event database, connected (its tables made), closed afterwards."""
        db = event_db_for(self.db_conn_id, self.data_dir)
        db.connect()
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def runner(self, *, source: bool = True, db: bool = True) -> Iterator[BatchRunner]:
        """A :class:`BatchRunner` with the bucket and/or the event database, as the step needs."""
        with ExitStack() as stack:
            yield BatchRunner(
                source=self.source() if source else None,
                db=stack.enter_context(self.open_db()) if db else None,
                data_dir=self.data_dir,
                file_types=self.file_types,
                dag_run_id=self.dag_run_id,
            )


#: What each step reads: the bucket, the database, or both.
STEP_NEEDS = {
    "discover": {"source": True, "db": False},
    "filter_existing": {"source": False, "db": True},
    "fetch_metadata": {"source": True, "db": True},
    "download": {"source": True, "db": False},
    "load": {"source": False, "db": True},
}


def ingest(
    place: Place,
    days: Iterable[dt.date],
    *,
    batch_size: int = settings.BATCH_SIZE,
    on_step: Callable[[str, Callable[[], T]], T] | None = None,
) -> BatchSummary:
    """Run every step of every batch of ``days`` in this process, as the DAG's tasks do.

    Each step builds what it needs afresh (as each task does), and each batch goes through its
    XCom form between steps. ``on_step(name, call)`` may wrap each step (the benchmark times them);
    it must return ``call()``.
    """

    def step(name: str, call: Callable[[BatchRunner], T]) -> T:
        def run() -> T:
            with place.runner(**STEP_NEEDS[name]) as runner:
                return call(runner)

        return on_step(name, run) if on_step else run()

    batches = step("discover", lambda runner: runner.discover(days, batch_size=batch_size))
    summaries = []
    for xcom in [batch.to_xcom() for batch in batches]:
        for name in ("filter_existing", "fetch_metadata", "download"):
            xcom = step(
                name,
                lambda runner, name=name, xcom=xcom: getattr(runner, name)(Batch.from_xcom(xcom)).to_xcom(),
            )
        summaries.append(vars(step("load", lambda runner, xcom=xcom: runner.load(Batch.from_xcom(xcom)))))
    return BatchSummary.total(summaries)
