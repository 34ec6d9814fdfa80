"""Read an upload report (``*_logged_Upload_Report.json``) into a session.

Pure functions: bytes and the folder's listing in, a :class:`ParsedReport` out, so every rule of
docs/contract.md §1 about reports is tested without S3. Whatever the bytes hold, the outcome is a
session, a :class:`~event_ingest.errors.ReportError` (the whole session is rejected) or
:class:`~event_ingest.errors.NotReady` (deferred); a bad file entry rejects only that file.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from event_ingest import layout
from event_ingest.errors import NotReady, ReportError, UnstorableTextError, is_infrastructure_fault, reason_of
from event_ingest.model import (
    AUDIO_TAG,
    TIME_FROM_REPORT,
    TIME_UNRESOLVED,
    Event,
    Reject,
    Session,
    SessionFile,
    SessionListing,
)
from event_ingest.safe_text import check_storable, excerpt
from event_ingest.timestamps import normalize

#: Widths of the text columns; a longer value rejects the session.
FIELD_LIMITS = {"vehicle_id": 128, "driver_id": 128, "software_version": 64}
_MD5 = re.compile(r"[0-9a-fA-F]{32}")
_MAX_BIGINT = 2**63


@dataclass
class ParsedReport:
    """A report's session (its audio tags as events, its other files to download) and what it got wrong."""

    session: Session
    rejects: list[Reject] = field(default_factory=list)


def decode(raw: bytes) -> dict[str, Any]:
    """Decode a report's bytes into its top-level object.

    :raises ReportError: not UTF-8, not JSON (numbers beyond Python's limits and nesting beyond the
        decoder's included), or not an object.
    """
    try:
        report = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ReportError(f"report is not UTF-8: {exc.reason} at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise ReportError(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ReportError("malformed JSON: nested deeper than the decoder allows") from None
    except ValueError as exc:  # an integer longer than Python's digit limit
        raise ReportError(f"malformed JSON: {excerpt(str(exc))}") from None
    if not isinstance(report, dict):
        raise ReportError("report is not a JSON object")
    return report


def _text(report: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = report.get(name)
    if value is None:
        if required:
            raise ReportError(f"report misses required field {name!r}")
        return None
    if not isinstance(value, str) or (required and not value):
        raise ReportError(f"field {name!r} must be a non-empty string")
    limit = FIELD_LIMITS.get(name)
    if limit and len(value) > limit:
        raise ReportError(f"field {name!r} is longer than {limit} characters ({len(value)})")
    try:
        return check_storable(value, f"field {name!r}")
    except UnstorableTextError as exc:
        raise ReportError(str(exc)) from None


def _time(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return normalize(value)
        except ValueError:
            pass
    raise ReportError(f"{name} {excerpt(repr(value), 64)} is not an ISO-8601 timestamp")


def _int(entry: dict[str, Any], name: str, upper: int) -> int | None:
    value = entry.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < upper:
        raise ReportError(f"{name} {excerpt(repr(value), 64)} is not an integer from 0 to {upper - 1}")
    return value


def _file(entry: dict[str, Any], listing: SessionListing) -> tuple[str, str, int, str | None, str | None]:
    """Check one file entry against the listing: (path, key, size, md5, etag)."""
    relpath = layout.safe_relpath(entry.get("path"))
    key = listing.prefix + relpath
    if len(key.encode("utf-8")) > layout.MAX_KEY:
        raise ReportError(f"key is longer than {layout.MAX_KEY} bytes")
    listed = listing.objects.get(relpath)
    if listed is None:
        raise ReportError("listed in the report but absent from the bucket")
    listed_size, etag = listed
    size = _int(entry, "size_bytes", _MAX_BIGINT)
    if size is not None and size != listed_size:
        raise ReportError(f"size mismatch: report says {size} bytes, bucket holds {listed_size}")
    md5 = entry.get("md5")
    if md5 is not None and (not isinstance(md5, str) or not _MD5.fullmatch(md5)):
        raise ReportError(f"md5 {excerpt(repr(md5), 64)} is not 32 hex digits")
    return relpath, key, listed_size, md5.lower() if md5 else None, etag


def _event(entry: dict[str, Any], listing: SessionListing) -> Event:
    """Build the event of one ``audio_tag`` file entry; raise if it is bad."""
    relpath, key, size, md5, etag = _file(entry, listing)
    frame_id = _int(entry, "frame_id", _MAX_BIGINT)
    duration = entry.get("duration_s")
    if duration is not None:
        if not isinstance(duration, int | float) or isinstance(duration, bool):
            raise ReportError(f"duration_s {excerpt(repr(duration), 64)} is not a number")
        try:
            duration = float(duration)
        except OverflowError:
            duration = math.inf
        if not math.isfinite(duration):
            raise ReportError("duration_s is not a finite number")
    event_time = _time(entry.get("timestamp"), "timestamp")
    return Event(
        event_id=Event.make_id(listing.session_id, relpath),
        session_id=listing.session_id,
        s3_key=key,
        relpath=relpath,
        frame_id=frame_id,
        event_time=event_time,
        time_source=TIME_FROM_REPORT if event_time else TIME_UNRESOLVED,
        duration_s=duration,
        size_bytes=size,
        md5=md5,
        etag=etag,
    )


def _where(entry: Any, position: int, listing: SessionListing) -> str:
    """The key a bad entry is rejected under: its key when it is one, else its place in the report."""
    path = entry.get("path") if isinstance(entry, dict) else None
    if isinstance(path, str):
        key = listing.prefix + path
        if len(key.encode("utf-8", "surrogatepass")) <= layout.MAX_KEY:
            return key
    return f"{listing.report_key}#files[{position}]"


def parse_report(raw: bytes, listing: SessionListing, *, file_types: frozenset[str]) -> ParsedReport:
    """Turn a report's bytes into a session, one event per audio tag (:func:`decode`, :func:`session_of`)."""
    return session_of(decode(raw), listing, file_types=file_types)


def unlisted_paths(
    report: dict[str, Any], listing: SessionListing, *, file_types: frozenset[str]
) -> list[str]:
    """Paths of the report's entries (of the kinds asked for) that the listing did not keep.

    The listing keeps the files whose path says what they are (``AudioTags/``, ``*.wav``, display
    logs); a report may put a file of its kind elsewhere. Only such unconventional paths are given:
    a conventional one the listing lacks is absent from the bucket.
    """
    entries = report.get("files")
    paths = []
    for entry in entries if isinstance(entries, list) else []:
        kind = entry.get("type") if isinstance(entry, dict) else None
        path = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(kind, str) or not isinstance(path, str) or path in listing.objects:
            continue
        if (kind == AUDIO_TAG or kind in file_types) and layout.file_type(path) != kind:
            paths.append(path)
    return sorted(set(paths))


def session_of(
    report: dict[str, Any], listing: SessionListing, *, file_types: frozenset[str]
) -> ParsedReport:
    """Turn a decoded report into a session with one event per audio tag.

    :param listing: the session folder as listed: its name, day, prefix and the sizes and ETags of
        its files; the report must agree with it.
    :param file_types: the kinds of file to download; entries of the other kinds (audio tags apart,
        which are always events) are not checked.
    :raises ReportError: the whole session is unusable.
    :raises NotReady: ``upload.status`` says the upload is still going on.
    """
    session_id = _text(report, "session_id", required=True)
    if session_id != listing.session_id:
        raise ReportError(f"session_id {excerpt(repr(session_id))} differs from its folder")
    upload = report.get("upload")
    status = upload.get("status") if isinstance(upload, dict) else None
    if status is not None and status != "complete":
        raise NotReady(f"upload status is {excerpt(repr(status), 64)}")
    entries = report.get("files")
    if entries is None:
        raise ReportError("report misses required field 'files'")
    if not isinstance(entries, list):
        raise ReportError("field 'files' is not a list")
    started_at = _time(report.get("start_time"), "start_time")
    if started_at is None:
        raise ReportError("report misses required field 'start_time'")
    session = Session(
        session_id=session_id,
        vehicle_id=_text(report, "vehicle_id", required=True) or "",
        driver_id=_text(report, "driver_id", required=False),
        started_at=started_at,
        ended_at=_time(report.get("end_time"), "end_time"),
        session_date=listing.day,
        software_version=_text(report, "software_version", required=False),
        report_key=listing.report_key,
        report_etag=listing.report_etag,
        tags_digest=listing.tags_digest,
        file_types=sorted(file_types | {AUDIO_TAG}),
    )
    parsed = ParsedReport(session)
    seen: set[str] = set()
    for position, entry in enumerate(entries):
        kind = entry.get("type") if isinstance(entry, dict) else None
        if not isinstance(kind, str) or (kind != AUDIO_TAG and kind not in file_types):
            continue
        path = entry.get("path")
        if isinstance(path, str):
            if path in seen:  # the first entry naming a path is the one that counts
                continue
            seen.add(path)
        try:
            if kind == AUDIO_TAG:
                session.events.append(_event(entry, listing))
            else:
                relpath, key, size, md5, etag = _file(entry, listing)
                session.files.append(SessionFile(key, relpath, kind, size, md5, etag))
        except Exception as exc:  # the entry's own bulkhead: one bad entry rejects only its file
            if is_infrastructure_fault(exc):
                raise
            where = _where(entry, position, listing)
            reason = reason_of(exc, kind.replace("_", " "))
            parsed.rejects.append(Reject(where, listing.session_id, reason, listing.day))
    return parsed
