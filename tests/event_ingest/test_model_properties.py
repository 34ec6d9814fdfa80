"""Properties of event_ingest.model: a batch crosses a task boundary whole, whatever its strings hold."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from event_ingest.model import Batch, Deferral, Event, Reject, Session, SessionFile, SessionListing, stable_id
from tests.hypothesis_profiles import pure
from tests.strategies import texts

TEXT = texts(max_size=30)
MAYBE_TEXT = st.none() | TEXT
#: Integers as records hold them (sizes, frame ids, counts), and beyond.
INTS = st.integers(min_value=-(2**200), max_value=2**200)
MAYBE_INT = st.none() | INTS
#: Any float: NaN, infinities and -0.0 too (``repr`` tells them apart where ``==`` cannot).
MAYBE_FLOAT = st.none() | st.floats()

EVENTS = st.builds(
    Event,
    event_id=TEXT,
    session_id=TEXT,
    s3_key=TEXT,
    relpath=TEXT,
    frame_id=MAYBE_INT,
    event_time=MAYBE_TEXT,
    time_source=TEXT,
    duration_s=MAYBE_FLOAT,
    size_bytes=INTS,
    md5=MAYBE_TEXT,
    etag=MAYBE_TEXT,
    local_path=MAYBE_TEXT,
)
FILES = st.builds(
    SessionFile,
    s3_key=TEXT,
    relpath=TEXT,
    file_type=TEXT,
    size_bytes=INTS,
    md5=MAYBE_TEXT,
    etag=MAYBE_TEXT,
    local_path=MAYBE_TEXT,
)
SESSIONS = st.builds(
    Session,
    session_id=TEXT,
    vehicle_id=TEXT,
    driver_id=MAYBE_TEXT,
    started_at=TEXT,
    ended_at=MAYBE_TEXT,
    session_date=TEXT,
    software_version=MAYBE_TEXT,
    report_key=TEXT,
    report_etag=TEXT,
    tags_digest=TEXT,
    file_types=st.lists(TEXT, max_size=3),
    events=st.lists(EVENTS, max_size=3),
    files=st.lists(FILES, max_size=2),
)
LISTINGS = st.builds(
    SessionListing,
    session_id=TEXT,
    day=TEXT,
    prefix=TEXT,
    report_key=TEXT,
    report_etag=TEXT,
    report_size=INTS,
    objects=st.dictionaries(TEXT, st.tuples(INTS, MAYBE_TEXT).map(list), max_size=3),
    tags_digest=TEXT,
    earlier_day=MAYBE_TEXT,
)
REJECTS = st.builds(Reject, object_key=TEXT, session_id=MAYBE_TEXT, reason=TEXT, day=MAYBE_TEXT)
DEFERRALS = st.builds(Deferral, session_id=TEXT, day=TEXT, report_key=TEXT, reason=TEXT)
BATCHES = st.builds(
    Batch,
    index=INTS,
    listings=st.lists(LISTINGS, max_size=3),
    sessions=st.lists(SESSIONS, max_size=3),
    rejects=st.lists(REJECTS, max_size=3),
    deferrals=st.lists(DEFERRALS, max_size=2),
    processed=st.lists(TEXT, max_size=3),
    discovered=INTS,
    skipped=INTS,
)


def through_xcom(value: Any) -> Any:
    """What the task that pulls an XCom gets: the value serialised as Airflow's XCom backend does."""
    return json.loads(json.dumps(value, ensure_ascii=False).encode("utf-8"))


class TestBatchXcom:
    @pure(300)
    @given(BATCHES)
    def test_round_trips_any_content_through_an_xcom(self, batch: Batch) -> None:
        pulled = Batch.from_xcom(through_xcom(batch.to_xcom()))
        assert repr(pulled) == repr(batch)

    @pure(100)
    @given(BATCHES)
    def test_its_xcom_is_small_json_with_the_counts_in_the_clear(self, batch: Batch) -> None:
        value = batch.to_xcom()
        assert set(value) == {"batch", "sessions", "rejects", "payload"}
        assert value["batch"] == batch.index
        assert value["rejects"] == len(batch.rejects)
        assert value["sessions"] == (len(batch.listings) or len(batch.sessions))
        assert value["payload"].isascii()
        assert through_xcom(value) == value


class TestStableId:
    @pure(300)
    @given(st.lists(texts(max_size=20), max_size=3))
    def test_any_text_has_an_id_of_32_hex_digits(self, parts: list[str]) -> None:
        assert re.fullmatch("[0-9a-f]{32}", stable_id(*parts))

    @pure(300)
    @given(texts(max_size=20), texts(max_size=20))
    def test_parts_are_not_confused_with_their_concatenation(self, first: str, second: str) -> None:
        assert stable_id(first, second) != stable_id(first + second)
