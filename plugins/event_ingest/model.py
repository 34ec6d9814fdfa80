"""The records that flow between the pipeline's steps.

They cross task boundaries as XComs, so each has a plain-dict form
(``to_dict``/``from_dict``) holding keys, sizes and metadata only, never file
contents.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Self

AUDIO_TAG = "audio_tag"
DISPLAY_LOG = "display_log"

TIME_FROM_REPORT = "report"
TIME_FROM_DISPLAY_LOG = "display_log"
TIME_UNRESOLVED = "unresolved"


def stable_id(*parts: str) -> str:
    """Return a 32-hex-digit id derived only from ``parts``.

    Ids derived from the source (not sequences) let any number of runs, and
    runs in parallel, agree on a row's identity without asking the database.
    """
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


class _Record:
    def to_dict(self) -> dict[str, Any]:
        """The plain-dict form: a shallow copy for a record of str, int, float and None fields.

        Records holding dicts or other records extend it. Cheaper than
        ``dataclasses.asdict``, which matters: a batch goes through this after every step.
        """
        return dict(vars(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls(**data)


@dataclass
class SessionListing(_Record):
    """A session folder as the day's listing shows it, before its report is read.

    :param etags: ETag of each audio tag as listed: a download must get that
        very object, not one replaced since.
    :param objects: size in bytes of each audio tag and display log, by path
        relative to the folder; other raw files are left out to keep XComs small.
    """

    session_id: str
    day: str
    prefix: str
    report_key: str
    report_etag: str
    objects: dict[str, int] = field(default_factory=dict)
    etags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "objects": dict(self.objects), "etags": dict(self.etags)}


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
    local_path: str | None = None
    etag: str | None = None

    @staticmethod
    def make_id(session_id: str, relpath: str) -> str:
        """Event ids ignore the bucket prefix, so moving the bucket keeps them."""
        return stable_id(session_id, relpath)


@dataclass
class Session(_Record):
    """A session ready to load: its report's metadata and its new events."""

    session_id: str
    vehicle_id: str
    driver_id: str | None
    started_at: str
    ended_at: str | None
    session_date: str
    software_version: str | None
    report_key: str
    report_etag: str
    events: list[Event] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "events": [event.to_dict() for event in self.events]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        events = [Event.from_dict(e) for e in data.get("events", [])]
        return cls(**{**data, "events": events})


@dataclass
class Reject(_Record):
    """Something that could not be loaded, and why."""

    object_key: str
    session_id: str | None
    reason: str

    @property
    def reject_id(self) -> str:
        return stable_id(self.object_key)


@dataclass
class Batch(_Record):
    """What one mapped task instance hands the next: sessions, rejects, counts."""

    index: int
    listings: list[SessionListing] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    discovered: int = 0
    skipped: int = 0
    deferred: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            **vars(self),
            "listings": [x.to_dict() for x in self.listings],
            "sessions": [x.to_dict() for x in self.sessions],
            "rejects": [x.to_dict() for x in self.rejects],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls(
            **{
                **data,
                "listings": [SessionListing.from_dict(x) for x in data.get("listings", [])],
                "sessions": [Session.from_dict(x) for x in data.get("sessions", [])],
                "rejects": [Reject.from_dict(x) for x in data.get("rejects", [])],
            }
        )
