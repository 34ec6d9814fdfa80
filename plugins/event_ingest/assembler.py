"""One session at a time: its report read and checked, its times resolved, its files downloaded.

This is the per-session bulkhead of docs/contract.md §5. Everything done for one session runs inside
:func:`guard`: an exception that comes from the session's data becomes a reject of that session (or
of the one object it concerns) with the exception's kind and message as the reason; only what
:func:`~event_ingest.errors.is_infrastructure_fault` calls a fault escapes, to fail the task so that
Airflow retries the batch. Whatever a report, a key or a display log holds, a session ends here as a
:class:`~event_ingest.report.ParsedReport`, a :class:`~event_ingest.model.Reject` or a
:class:`~event_ingest.model.Deferral`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from event_ingest import display_log, files, layout
from event_ingest.errors import NotReady, ObjectMissingError, ReportError, is_infrastructure_fault, reason_of
from event_ingest.model import (
    AUDIO_TAG,
    TIME_FROM_DISPLAY_LOG,
    Deferral,
    Event,
    Reject,
    Session,
    SessionFile,
    SessionListing,
)
from event_ingest.report import ParsedReport, decode, session_of, unlisted_paths
from event_ingest.safe_text import check_storable, excerpt
from event_ingest.source import S3Source

log = logging.getLogger(__name__)

T = TypeVar("T")

#: A report larger than this is rejected unread: real ones are kilobytes, and it is read whole.
MAX_REPORT_BYTES = 64 << 20
#: Longest ETag a row holds.
MAX_ETAG = 255


def guard(
    func: Callable[[], T], *, object_key: str, session_id: str | None, day: str | None, what: str
) -> T | Reject:
    """Run ``func``; turn what the data makes it raise into a reject of ``object_key``.

    :param what: what was being done, the start of the reason (``report``, ``audio tag``...).
    :raises Exception: what :func:`~event_ingest.errors.is_infrastructure_fault` calls a fault.
    """
    try:
        return func()
    except Exception as exc:
        if is_infrastructure_fault(exc):
            raise
        return Reject(object_key, session_id, reason_of(exc, what), day)


@dataclass
class Download:
    """One file to fetch for a session: an event (audio tag) or another file of it."""

    session: Session
    item: Event | SessionFile
    path: Path


class SessionAssembler:
    """Turns listed session folders into sessions ready to load, one guarded session at a time.

    :param source: the bucket.
    :param data_dir: where reports and downloaded files go.
    :param file_types: the kinds of file to download besides audio tags (``display_log``, ``raw``).
    """

    def __init__(self, source: S3Source, data_dir: str | Path, *, file_types: frozenset[str]) -> None:
        self.source = source
        self.data_dir = Path(data_dir)
        self.file_types = file_types

    # -- the report -------------------------------------------------------------------------------

    def assemble(self, listing: SessionListing) -> ParsedReport | Reject | Deferral:
        """Read, check and save a session's report and resolve its events' times."""

        def work() -> ParsedReport | Deferral:
            try:
                return self._assemble(listing)
            except NotReady as exc:
                return Deferral(listing.session_id, listing.day, listing.report_key, str(exc))
            except ObjectMissingError:
                reason = "the report disappeared after the listing"
                return Deferral(listing.session_id, listing.day, listing.report_key, reason)

        key, session_id = listing.report_key, listing.session_id
        return guard(work, object_key=key, session_id=session_id, day=listing.day, what="report")

    def _assemble(self, listing: SessionListing) -> ParsedReport:
        if listing.earlier_day:
            raise ReportError(f"session id already found under {listing.earlier_day}")
        layout.check_session_id(listing.session_id)
        check_storable(listing.report_key, "key")
        if listing.report_size > MAX_REPORT_BYTES:
            raise ReportError(f"report is {listing.report_size} bytes, more than {MAX_REPORT_BYTES}")
        raw = self.source.read(listing.report_key, size=listing.report_size)
        report = decode(raw)
        unlisted = unlisted_paths(report, listing, file_types=self.file_types)
        if unlisted:
            found = {path: self.source.head(listing.prefix + path) for path in unlisted}
            listing = replace(listing, objects={**listing.objects, **{p: f for p, f in found.items() if f}})
        parsed = session_of(report, listing, file_types=self.file_types)
        for item in (*parsed.session.events, *parsed.session.files):
            if item.etag is not None and len(check_storable(item.etag, "ETag")) > MAX_ETAG:
                raise ReportError(
                    f"the server gave {excerpt(item.relpath)!r} an ETag over {MAX_ETAG} characters"
                )
        day = dt.date.fromisoformat(listing.day)
        path = layout.local_path(
            self.data_dir, day, listing.session_id, layout.report_name(listing.session_id)
        )
        files.write_if_needed(
            path, [raw], size=len(raw), md5=hashlib.md5(raw, usedforsecurity=False).hexdigest()
        )
        self._resolve_times(listing, parsed)
        return parsed

    def _resolve_times(self, listing: SessionListing, parsed: ParsedReport) -> None:
        """Give events without a report timestamp the time their frame was logged.

        Reads the session's display logs in key order and stops as soon as every wanted frame is
        found. Frames that no log holds stay ``unresolved``; a log that cannot be read (not UTF-8,
        gone, anything else in its bytes) is itself rejected, gives no times (not even those before
        its bad bytes), and the others are still read.
        """
        events = parsed.session.events
        wanted = {e.frame_id for e in events if e.event_time is None and e.frame_id is not None}
        if not wanted:
            return
        found: dict[int, str] = {}
        for relpath in sorted(p for p in listing.objects if layout.file_type(p) == "display_log"):
            if wanted <= found.keys():
                break
            key = listing.prefix + relpath
            size = listing.objects[relpath][0]

            def read(key: str = key, size: int = size, found: dict[int, str] = found) -> dict[int, str]:
                times = dict(found)  # first line wins across logs: start from what earlier logs gave
                display_log.find_frames(
                    display_log.iter_lines(self.source.iter_object(key, size=size)), wanted, times
                )
                return times

            outcome = guard(
                read, object_key=key, session_id=listing.session_id, day=listing.day, what="display log"
            )
            if isinstance(outcome, Reject):
                parsed.rejects.append(outcome)
            else:
                found = outcome
        for event in events:
            if event.event_time is None and event.frame_id in found:
                event.event_time = found[event.frame_id]
                event.time_source = TIME_FROM_DISPLAY_LOG

    # -- the files --------------------------------------------------------------------------------

    def plan_downloads(self, session: Session) -> tuple[list[Download], list[Reject]]:
        """Where each new file of ``session`` goes, its folder made; a file that can go nowhere: rejected."""
        day = dt.date.fromisoformat(session.session_date)
        planned: list[Download] = []
        rejects: list[Reject] = []
        for item in (*session.events, *session.files):
            outcome = self._guard_item(
                session,
                item,
                lambda item=item: layout.local_path(self.data_dir, day, session.session_id, item.relpath),
            )
            if isinstance(outcome, Reject):
                rejects.append(outcome)
            else:
                planned.append(Download(session, item, outcome))
        ready: list[Download] = []
        folders: dict[Path, list[Download]] = {}
        for download in planned:
            folders.setdefault(download.path.parent, []).append(download)
        for folder, downloads in folders.items():
            names = [d.path.name for d in downloads]
            outcome = self._guard_item(
                session, downloads[0].item, lambda f=folder, n=names: files.prepare_folder(f, n)
            )
            if isinstance(outcome, Reject):
                rejects.extend(
                    Reject(d.item.s3_key, session.session_id, outcome.reason, session.session_date)
                    for d in downloads
                )
            else:
                ready.extend(downloads)
        return ready, rejects

    def download(self, job: Download) -> Reject | None:
        """Fetch one planned file, verified, unless a verified copy is there; record where it went."""

        def fetch() -> None:
            item = job.item
            self.source.download(
                item.s3_key, job.path, size=item.size_bytes, md5=item.md5, etag=item.etag, prepared=True
            )
            item.local_path = check_storable(str(job.path), "local path")

        outcome = self._guard_item(job.session, job.item, fetch)
        return outcome if isinstance(outcome, Reject) else None

    @staticmethod
    def _guard_item(session: Session, item: Event | SessionFile, func: Callable[[], T]) -> T | Reject:
        what = AUDIO_TAG if isinstance(item, Event) else item.file_type
        return guard(
            func,
            object_key=item.s3_key,
            session_id=session.session_id,
            day=session.session_date,
            what=what.replace("_", " "),
        )
