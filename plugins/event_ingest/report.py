"""Read an upload report (``*_logged_Upload_Report.json``) into a session.

Pure functions: bytes in, a :class:`ParsedReport` or a :class:`ReportError`
out, so every rule of contract §1 about reports is tested without S3.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from event_ingest import layout
from event_ingest.model import (
    AUDIO_TAG,
    TIME_FROM_REPORT,
    TIME_UNRESOLVED,
    Event,
    Reject,
    Session,
)
from event_ingest.timestamps import normalize

#: Widths of the text columns; a longer value rejects the session.
FIELD_LIMITS = {"vehicle_id": 128, "driver_id": 128, "software_version": 64}
_MD5 = re.compile(r"^[0-9a-fA-F]{32}$")
_MAX_BIGINT = 2**63


class ReportError(ValueError):
    """The report cannot describe a session; the message is the reject reason."""


class NotReady(Exception):
    """The upload is not complete yet; try again on a later run."""


@dataclass
class ParsedReport:
    """A report's session, its audio tags as events, and what it got wrong."""

    session: Session
    rejects: list[Reject] = field(default_factory=list)


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
    return value


def _time(report: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = _text(report, name, required=required)
    if value is None:
        return None
    try:
        return normalize(value)
    except ValueError:
        raise ReportError(f"field {name!r} is not an ISO-8601 timestamp: {value[:64]!r}") from None


def decode(raw: bytes) -> dict[str, Any]:
    """Decode a report's bytes into its top-level object."""
    try:
        report = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ReportError(f"report is not UTF-8: {exc.reason} at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise ReportError(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(report, dict):
        raise ReportError("report is not a JSON object")
    return report


def _event(
    entry: dict[str, Any], *, session_id: str, prefix: str, objects: dict[str, int], etags: dict[str, str]
) -> Event:
    """Build the event of one ``audio_tag`` file entry; raise ReportError if it is bad."""
    relpath = layout.safe_relpath(entry.get("path"))
    key = prefix + relpath
    if len(key) > layout.MAX_KEY:
        raise ReportError(f"key is longer than {layout.MAX_KEY} characters")
    if relpath not in objects:
        raise ReportError("listed in the report but absent from the bucket")
    size = entry.get("size_bytes")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise ReportError(f"size_bytes {size!r} is not a non-negative integer")
    if size is not None and size != objects[relpath]:
        raise ReportError(f"size mismatch: report says {size} bytes, bucket holds {objects[relpath]}")
    md5 = entry.get("md5")
    if md5 is not None and (not isinstance(md5, str) or not _MD5.match(md5)):
        raise ReportError(f"md5 {str(md5)[:64]!r} is not 32 hex digits")
    frame_id = entry.get("frame_id")
    if frame_id is not None and (
        not isinstance(frame_id, int) or isinstance(frame_id, bool) or not 0 <= frame_id < _MAX_BIGINT
    ):
        raise ReportError(f"frame_id {str(frame_id)[:64]!r} is not a non-negative 63-bit integer")
    duration = entry.get("duration_s")
    if duration is not None and (
        not isinstance(duration, int | float) or isinstance(duration, bool) or not math.isfinite(duration)
    ):
        raise ReportError(f"duration_s {str(duration)[:64]!r} is not a finite number")
    stamp = entry.get("timestamp")
    event_time: str | None = None
    if stamp is not None:
        try:
            event_time = normalize(stamp) if isinstance(stamp, str) else None
        except ValueError:
            event_time = None
        if event_time is None:
            raise ReportError(f"timestamp {str(stamp)[:64]!r} is not an ISO-8601 timestamp")
    return Event(
        event_id=Event.make_id(session_id, relpath),
        session_id=session_id,
        s3_key=key,
        relpath=relpath,
        frame_id=frame_id,
        event_time=event_time,
        time_source=TIME_FROM_REPORT if event_time else TIME_UNRESOLVED,
        duration_s=float(duration) if duration is not None else None,
        size_bytes=objects[relpath],
        etag=etags.get(relpath),
        md5=md5.lower() if md5 else None,
    )


def parse_report(
    raw: bytes,
    *,
    folder_session_id: str,
    day: dt.date,
    prefix: str,
    report_key: str,
    report_etag: str,
    objects: dict[str, int],
    etags: dict[str, str] | None = None,
) -> ParsedReport:
    """Turn a report into a session with one event per audio tag.

    :param folder_session_id: the session folder's name; the report must agree.
    :param prefix: the session folder's key prefix, ending with ``/``.
    :param objects: sizes of the folder's listed audio tags and display logs.
    :param etags: listed ETags of the audio tags, checked again when downloading.
    :raises ReportError: the whole session is unusable.
    :raises NotReady: ``upload.status`` says the upload is still going on.
    """
    report = decode(raw)
    session_id = _text(report, "session_id", required=True)
    assert session_id is not None
    if session_id != folder_session_id:
        raise ReportError(f"session_id {session_id[:200]!r} differs from its folder {folder_session_id!r}")
    layout.check_session_id(session_id)
    upload = report.get("upload")
    if isinstance(upload, dict) and upload.get("status", "complete") != "complete":
        raise NotReady(f"upload status is {str(upload.get('status'))[:64]!r}")
    files = report.get("files")
    if files is None:
        raise ReportError("report misses required field 'files'")
    if not isinstance(files, list):
        raise ReportError("field 'files' is not a list")
    session = Session(
        session_id=session_id,
        vehicle_id=_text(report, "vehicle_id", required=True) or "",
        driver_id=_text(report, "driver_id", required=False),
        started_at=_time(report, "start_time", required=True) or "",
        ended_at=_time(report, "end_time", required=False),
        session_date=day.isoformat(),
        software_version=_text(report, "software_version", required=False),
        report_key=report_key,
        report_etag=report_etag,
    )
    parsed = ParsedReport(session)
    seen: set[str] = set()
    for position, entry in enumerate(files):
        if not isinstance(entry, dict) or entry.get("type") != AUDIO_TAG:
            continue
        try:
            event = _event(entry, session_id=session_id, prefix=prefix, objects=objects, etags=etags or {})
        except (ReportError, layout.UnsafePathError) as exc:
            raw_path = entry.get("path")
            where = prefix + raw_path if isinstance(raw_path, str) else f"{report_key}#files[{position}]"
            parsed.rejects.append(Reject(where[:1024], session_id, f"audio tag: {exc}"))
            continue
        if event.event_id not in seen:
            seen.add(event.event_id)
            session.events.append(event)
    return parsed
