"""Properties of event_ingest.report: any report bytes and any folder give a session, a reject or a deferral.

docs/contract.md §1 and §5: whatever a report holds, parsing it ends in a session whose every value
fits its column, a :class:`ReportError` (the session is rejected) or :class:`NotReady` (deferred),
with a reason that names the problem; a bad file entry rejects only that file. The folders come from
:func:`tests.strategies.session_folders` and are listed by the real :class:`S3Source` listing code,
over a stand-in for the one ``S3Hook`` method it calls.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterator
from typing import Any

from hypothesis import event as record
from hypothesis import given
from hypothesis import strategies as st

from event_ingest import layout
from event_ingest.errors import NotReady, ReportError
from event_ingest.model import AUDIO_TAG, DISPLAY_LOG, RAW, Session, SessionListing
from event_ingest.report import FIELD_LIMITS, ParsedReport, parse_report
from event_ingest.safe_text import is_storable, printable
from event_ingest.source import S3Source
from tests.hypothesis_profiles import pure
from tests.strategies import etags, report_bytes, session_folders

DB_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}")
MD5 = re.compile(r"[0-9a-f]{32}")
DAY = dt.date(2026, 11, 20)
BIGINT = 2**63
FILE_TYPE_SETS = st.sampled_from(
    [frozenset(), frozenset({DISPLAY_LOG}), frozenset({RAW}), frozenset({DISPLAY_LOG, RAW})]
)


class ListedSource(S3Source):
    """The real listing code over objects held in memory: ``hook`` is the stand-in for ``S3Hook``."""

    def __init__(self, objects: dict[str, bytes], etags_: dict[str, str], prefix: str) -> None:
        super().__init__(bucket="bucket", prefix=prefix, data_plane="boto3")  # lists through the "hook"
        self.objects, self.etags = objects, etags_

    @property
    def hook(self) -> ListedSource:
        return self

    def iter_file_metadata(self, prefix: str, bucket_name: str, page_size: int) -> Iterator[dict[str, Any]]:
        """What ``S3Hook.iter_file_metadata`` yields: the keys under ``prefix``, in S3's (UTF-8) order."""
        for key in sorted(self.objects, key=lambda k: k.encode("utf-8")):
            if key.startswith(prefix):
                yield {"Key": key, "Size": len(self.objects[key]), "ETag": self.etags[key]}


@st.composite
def listed_folders(draw: st.DrawFn) -> tuple[SessionListing, bytes, frozenset[str]]:
    """A session folder as the day's listing gives it, with its report's bytes and the run's file types."""
    prefix = draw(st.sampled_from(["", "raw/", "a b/\x01/"]))
    day = draw(st.sampled_from([DAY, dt.date(1000, 1, 1), dt.date(9999, 12, 31)]) | st.dates())
    objects = draw(session_folders(prefix=prefix, day=day))
    file_types = draw(FILE_TYPE_SETS)
    source = ListedSource(objects, {key: draw(etags()) for key in objects}, prefix)
    (listing,) = source.list_day(day, file_types=file_types | {AUDIO_TAG})
    return listing, objects[listing.report_key], file_types


def text_values(session: Session) -> Iterator[tuple[str, str]]:
    """Every string the session would write to a row, with where it comes from."""
    for name, value in vars(session).items():
        if isinstance(value, str):
            yield f"session.{name}", value
    yield from (("session.file_types", t) for t in session.file_types)
    for item in (*session.events, *session.files):
        for name, value in vars(item).items():
            if isinstance(value, str):
                yield f"{type(item).__name__}.{name}", value


def check_session(parsed: ParsedReport, listing: SessionListing) -> None:
    session = parsed.session
    for where, value in text_values(session):
        assert is_storable(value), where
    assert session.session_id == listing.session_id
    assert len(session.session_id) <= layout.MAX_SESSION_ID
    assert len(session.report_key.encode("utf-8")) <= layout.MAX_KEY
    assert session.vehicle_id
    for name, limit in FIELD_LIMITS.items():
        value = getattr(session, name)
        assert value is None or len(value) <= limit, name
    for moment in (session.started_at, session.ended_at, *(e.event_time for e in session.events)):
        assert moment is None or (DB_TIME.fullmatch(moment) and 1000 <= int(moment[:4]) <= 9999), moment
    assert session.started_at is not None
    assert len({e.event_id for e in session.events}) == len(session.events)
    for item in (*session.events, *session.files):
        assert item.s3_key == listing.prefix + item.relpath
        assert len(item.s3_key.encode("utf-8")) <= layout.MAX_KEY
        assert item.relpath in listing.objects
        assert 0 <= item.size_bytes < BIGINT
        assert item.size_bytes == listing.objects[item.relpath][0]
        assert item.md5 is None or MD5.fullmatch(item.md5)
    for event in session.events:
        assert event.frame_id is None or 0 <= event.frame_id < BIGINT
        assert event.duration_s is None or (
            isinstance(event.duration_s, float) and math.isfinite(event.duration_s)
        )
        assert event.time_source in ("report", "unresolved")


def check_rejects(parsed: ParsedReport, listing: SessionListing) -> None:
    for reject in parsed.rejects:
        assert reject.reason
        assert printable(reject.reason) == reject.reason
        assert reject.session_id == listing.session_id
        assert reject.day == listing.day
        key = reject.object_key
        if not re.fullmatch(rf"{re.escape(listing.report_key)}#files\[\d+\]", key):
            assert key.startswith(listing.prefix)
            assert len(key.encode("utf-8", "surrogatepass")) <= layout.MAX_KEY


def count(items: list[Any]) -> str:
    return str(len(items)) if len(items) <= 3 else "4+"


def parse_or_refuse(raw: bytes, listing: SessionListing, file_types: frozenset[str]) -> ParsedReport | None:
    """Parse; a refusal must be a ReportError or NotReady with a printable reason (anything else fails)."""
    try:
        parsed = parse_report(raw, listing, file_types=file_types)
    except (ReportError, NotReady) as exc:
        reason = str(exc)
        record(f"{type(exc).__name__}: {' '.join(re.sub(r'[^a-z_ ]', '', reason).split()[:3])}")
    else:
        record(f"session: {count(parsed.session.events)} events, {count(parsed.rejects)} rejects")
        return parsed
    assert reason
    assert printable(reason) == reason
    return None


class TestParseReport:
    @pure(400)
    @given(listed_folders())
    def test_any_folder_gives_a_session_that_fits_its_columns_or_a_reason(
        self, folder: tuple[SessionListing, bytes, frozenset[str]]
    ) -> None:
        listing, raw, file_types = folder
        parsed = parse_or_refuse(raw, listing, file_types)
        if parsed is not None:
            check_session(parsed, listing)
            check_rejects(parsed, listing)

    @pure(500)
    @given(report_bytes(), FILE_TYPE_SETS)
    def test_any_bytes_give_a_session_or_a_reason(self, raw: bytes, file_types: frozenset[str]) -> None:
        prefix = layout.session_prefix("", DAY, "s")
        listing = SessionListing(
            session_id="s",
            day=DAY.isoformat(),
            prefix=prefix,
            report_key=prefix + layout.report_name("s"),
            report_etag="etag",
            objects={"AudioTags/t.wav": [4, '"etag"']},
        )
        parsed = parse_or_refuse(raw, listing, file_types)
        if parsed is not None:
            check_session(parsed, listing)
            check_rejects(parsed, listing)
