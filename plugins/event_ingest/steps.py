"""The five steps of a run, one function each, over one batch of sessions.

The operators call these with the run's ``AwsHelper`` and ``EventDb``; the
benchmark calls them the same way. Each takes and returns a
:class:`~event_ingest.model.Batch`, which carries the batch's sessions,
rejects and counts from step to step.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from event_ingest.aws_helper import AwsHelper, ObjectMissingError
from event_ingest.event_db import EventDb
from event_ingest.layout import UnsafePathError, check_session_id
from event_ingest.model import Batch, Reject, SessionListing
from event_ingest.report import NotReady, ParsedReport, ReportError

log = logging.getLogger(__name__)


def discover(aws: AwsHelper, days: Iterable[dt.date], batch_size: int, max_batches: int) -> list[Batch]:
    """List the sessions of ``days`` and cut them into batches.

    Batches hold ``batch_size`` sessions, or more when that many batches would
    exceed ``max_batches`` (Airflow's ``max_map_length``).
    """
    aws.connect()
    listings = list(aws.get_paths_to_available_sessions(days))
    size = max(batch_size, math.ceil(len(listings) / max_batches))
    if size > batch_size:
        log.warning(
            "%s sessions: batches grow to %s sessions to stay within %s", len(listings), size, max_batches
        )
    chunks = [listings[start : start + size] for start in range(0, len(listings), size)]
    return [Batch(index=n, listings=chunk, discovered=len(chunk)) for n, chunk in enumerate(chunks)]


def filter_existing(db: EventDb, batch: Batch) -> Batch:
    """Drop the sessions the database holds already, unchanged and without open rejects.

    A session whose report changed (re-uploaded with more files) or that had
    something rejected goes on: its events are deduplicated one by one later.
    """
    states = db.session_states([listing.session_id for listing in batch.listings])
    keep = []
    for listing in batch.listings:
        state = states.get(listing.session_id)
        if state and state.report_etag == listing.report_etag and state.open_rejects == 0:
            batch.skipped += 1
        else:
            keep.append(listing)
    batch.listings = keep
    return batch


def fetch_metadata(aws: AwsHelper, db: EventDb, batch: Batch, data_dir: str | Path) -> Batch:
    """Read each session's report, keep the events the database does not hold yet.

    Bad reports become rejects, unfinished uploads are deferred; event times
    missing from a report are looked up in the display logs.
    """

    def read(listing: SessionListing) -> ParsedReport | Reject | None:
        try:
            # Before any GET: some clients cannot even request a key with a "." or ".." folder.
            check_session_id(listing.session_id)
            return aws.create_session_from_path(listing, data_dir)
        except (ReportError, UnsafePathError) as exc:
            return Reject(listing.report_key, listing.session_id, f"report: {exc}")
        except NotReady as exc:
            log.info("Deferring session %s: %s", listing.session_id, exc)
            return None
        except ObjectMissingError:
            log.info("Deferring session %s: its report disappeared since the listing", listing.session_id)
            return None

    parsed: list[ParsedReport] = []
    for result in aws.map_sessions(read, batch.listings):
        if result is None:
            batch.deferred += 1
        elif isinstance(result, Reject):
            batch.rejects.append(result)
        else:
            parsed.append(result)
            batch.rejects.extend(result.rejects)
    # By session, not by event id: round trips stay constant as sessions get more tags.
    known = db.event_ids_of_sessions([p.session.session_id for p in parsed])
    for report in parsed:
        report.session.events = [e for e in report.session.events if e.event_id not in known]
        batch.sessions.append(report.session)
    batch.listings = []
    return batch


def download_audio(aws: AwsHelper, batch: Batch, data_dir: str | Path) -> Batch:
    """Download the new audio tags, verified; failed ones become rejects."""
    batch.rejects.extend(aws.get_audio_tags_from_session_locally(batch.sessions, data_dir))
    return batch


@dataclass
class BatchSummary:
    """What a batch came to: counts only, the load step's small XCom.

    ``skipped`` counts sessions the database already held: filtered out before
    their report was read, or read again (they had open rejects) with nothing new.
    ``rejected`` counts rejected objects (reports, audio tags, display logs).
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


def load(db: EventDb, batch: Batch, dag_run_id: str | None) -> BatchSummary:
    """Write the batch: sessions with their new events, then its rejects."""
    result = db.load_sessions(batch.sessions)
    db.record_rejects(batch.rejects, dag_run_id)
    loaded: Sequence[str] = [s.session_id for s in batch.sessions]
    db.resolve_rejects(loaded, [r.reject_id for r in batch.rejects])
    return BatchSummary(
        discovered=batch.discovered,
        skipped=batch.skipped + result.unchanged,
        deferred=batch.deferred,
        rejected=len(batch.rejects),
        loaded_sessions=result.sessions,
        loaded_events=result.events,
    )
