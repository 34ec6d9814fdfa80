"""The records that flow between the pipeline's steps, and their XCom form.

A batch crosses each task boundary as one small XCom: its counts in the clear, its records as one
compressed ASCII JSON string (:meth:`Batch.to_xcom`). One string instead of thousands of nested
objects keeps Airflow's XCom (de)serialisation out of the run's time, and ``ensure_ascii`` JSON
round-trips any Python string, lone surrogates included, where a plain XCom push would fail.
Records hold keys, sizes and metadata only, never file contents.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from dataclasses import dataclass, field
from typing import Any, Self

AUDIO_TAG = "audio_tag"
DISPLAY_LOG = "display_log"
RAW = "raw"
#: The kinds of file a run can download (param ``download_types``); audio tags are the events.
FILE_TYPES = (AUDIO_TAG, DISPLAY_LOG, RAW)

TIME_FROM_REPORT = "report"
TIME_FROM_DISPLAY_LOG = "display_log"
TIME_UNRESOLVED = "unresolved"


def stable_id(*parts: str) -> str:
    """Return a 32-hex-digit id derived only from ``parts``.

    Ids derived from the source (not sequences) let any number of runs, and runs in parallel, agree
    on a row's identity without asking the database. ``json.dumps`` escapes every string to ASCII,
    so any text (lone surrogates included) has an id.
    """
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


class _Record:
    def to_dict(self) -> dict[str, Any]:
        """The plain-dict form, for records of str, int, float, None and lists of those."""
        return dict(vars(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls(**data)


@dataclass
class SessionListing(_Record):
    """A session folder as the day's listing shows it, before its report is read.

    :param objects: ``[size, etag]`` of the folder's files that a run may read or download (audio
        tags, display logs, and the other files when the run downloads them), by path in the folder.
    :param tags_digest: :func:`tags_digest` of the folder's audio tags as listed.
    :param earlier_day: the day of an earlier folder with the same session id, found in this run:
        this folder's report is then rejected (the earliest folder is the session).
    """

    session_id: str
    day: str
    prefix: str
    report_key: str
    report_etag: str
    report_size: int = 0
    objects: dict[str, list[Any]] = field(default_factory=dict)
    tags_digest: str = ""
    earlier_day: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "objects": dict(self.objects)}


@dataclass
class Event(_Record):
    """One audio tag of a session: the unit of dedup."""

    event_id: str
    session_id: str
    s3_key: str
    relpath: str
    frame_id: int | None
    event_time: str | None
    time_source: str
    duration_s: float | None
    size_bytes: int
    md5: str | None
    etag: str | None = None
    local_path: str | None = None

    @staticmethod
    def make_id(session_id: str, relpath: str) -> str:
        """Event ids ignore the bucket prefix, so moving the bucket keeps them."""
        return stable_id(session_id, relpath)


@dataclass
class SessionFile(_Record):
    """A file of a session that is downloaded but is not an event (a display log, a raw file)."""

    s3_key: str
    relpath: str
    file_type: str
    size_bytes: int
    md5: str | None
    etag: str | None = None
    local_path: str | None = None


@dataclass
class Session(_Record):
    """A session ready to load: its report's metadata, its new events, its other files to download.

    :param tags_digest: the listing's :func:`tags_digest`; a later run skips the session only while
        its listing gives the same digest (no audio tag added, removed or replaced).
    :param file_types: the kinds of file this run downloads for it.
    """

    session_id: str
    vehicle_id: str
    driver_id: str | None
    started_at: str
    ended_at: str | None
    session_date: str
    software_version: str | None
    report_key: str
    report_etag: str
    tags_digest: str = ""
    file_types: list[str] = field(default_factory=lambda: [AUDIO_TAG])
    events: list[Event] = field(default_factory=list)
    files: list[SessionFile] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            **vars(self),
            "file_types": list(self.file_types),
            "events": [event.to_dict() for event in self.events],
            "files": [f.to_dict() for f in self.files],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls(
            **{
                **data,
                "events": [Event.from_dict(e) for e in data.get("events", [])],
                "files": [SessionFile.from_dict(f) for f in data.get("files", [])],
            }
        )


@dataclass
class Reject(_Record):
    """Something that could not be loaded, and why.

    :param object_key: the key of what was rejected (the report for a whole session), or
        ``{report key}#files[N]`` for a report entry whose path is no key at all.
    :param session_id: the session folder's name, as found.
    :param day: the folder's day (``YYYY-MM-DD``), by which the ingest view lists rejects.
    """

    object_key: str
    session_id: str | None
    reason: str
    day: str | None = None

    @property
    def reject_id(self) -> str:
        return stable_id(self.object_key)


@dataclass
class Deferral(_Record):
    """A session whose upload is not complete yet: not loaded now, recorded so it stays visible."""

    session_id: str
    day: str
    report_key: str
    reason: str


@dataclass
class Batch(_Record):
    """What one batch's task hands the next: its sessions, rejects and deferrals, and its counts.

    :param processed: ids of the sessions whose report this run read and accepted (loaded or not):
        their earlier rejects that this run did not raise again get resolved, their deferrals cleared.
    """

    index: int
    listings: list[SessionListing] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    deferrals: list[Deferral] = field(default_factory=list)
    processed: list[str] = field(default_factory=list)
    discovered: int = 0
    skipped: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            **vars(self),
            "listings": [x.to_dict() for x in self.listings],
            "sessions": [x.to_dict() for x in self.sessions],
            "rejects": [x.to_dict() for x in self.rejects],
            "deferrals": [x.to_dict() for x in self.deferrals],
            "processed": list(self.processed),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls(
            **{
                **data,
                "listings": [SessionListing.from_dict(x) for x in data.get("listings", [])],
                "sessions": [Session.from_dict(x) for x in data.get("sessions", [])],
                "rejects": [Reject.from_dict(x) for x in data.get("rejects", [])],
                "deferrals": [Deferral.from_dict(x) for x in data.get("deferrals", [])],
            }
        )

    def to_xcom(self) -> dict[str, Any]:
        """The XCom form: counts to read in the UI, the records as one compressed ASCII string."""
        text = json.dumps(self.to_dict(), ensure_ascii=True, separators=(",", ":"))
        return {
            "batch": self.index,
            "sessions": len(self.listings) or len(self.sessions),
            "rejects": len(self.rejects),
            "payload": base64.b64encode(zlib.compress(text.encode("ascii"), 1)).decode("ascii"),
        }

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> Self:
        return cls.from_dict(json.loads(zlib.decompress(base64.b64decode(value["payload"]))))


def tags_digest(tags: dict[str, str]) -> str:
    """Digest of a session's audio tags as listed (path -> ETag): what "unchanged" means for them."""
    return stable_id(*(f"{relpath}\n{etag}" for relpath, etag in sorted(tags.items())))
