"""Tests for event_ingest.model: the records that cross task boundaries as XComs, and their ids."""

from __future__ import annotations

import json

import pytest

from event_ingest.model import (
    Batch,
    Deferral,
    Event,
    Reject,
    Session,
    SessionFile,
    SessionListing,
    stable_id,
    tags_digest,
)

SESSION = "20261120T101533Z_veh042"


def make_event(relpath: str = "AudioTags/tag_0001.wav", **overrides: object) -> Event:
    fields = {
        "event_id": Event.make_id(SESSION, relpath),
        "session_id": SESSION,
        "s3_key": f"raw/2026/11/20/{SESSION}/{relpath}",
        "relpath": relpath,
        "frame_id": 183022,
        "event_time": "2026-11-20 10:21:07.500",
        "time_source": "report",
        "duration_s": 3.0,
        "size_bytes": 48044,
        "md5": "9e107d9d372bb6826bd81d3542a419d6",
        "local_path": None,
    }
    return Event(**{**fields, **overrides})


def make_batch() -> Batch:
    session = Session(
        session_id=SESSION,
        vehicle_id="veh042",
        driver_id=None,
        started_at="2026-11-20 10:15:33.120",
        ended_at=None,
        session_date="2026-11-20",
        software_version="4.12.0",
        report_key=f"raw/2026/11/20/{SESSION}/{SESSION}_logged_Upload_Report.json",
        report_etag="abc",
        tags_digest="0" * 32,
        file_types=["audio_tag", "raw"],
        files=[SessionFile("raw/x/camera/front.mp4", "camera/front.mp4", "raw", 73400320, None, '"e"')],
        events=[
            make_event(),
            make_event(
                "AudioTags/tag_0002.wav",
                frame_id=None,
                event_time=None,
                time_source="unresolved",
                duration_s=None,
                md5=None,
                local_path="/data/2026/11/20/x/AudioTags/tag_0002.wav",
            ),
        ],
    )
    listing = SessionListing(
        session_id=SESSION,
        day="2026-11-20",
        prefix=f"raw/2026/11/20/{SESSION}/",
        report_key=session.report_key,
        report_etag="abc",
        report_size=1234,
        objects={
            "AudioTags/tag_0001.wav": [48044, '"e1"'],
            "AV_logs/DisplayLogs/display_000.log": [91234, None],
        },
        earlier_day="2026-11-19",
    )
    reject = Reject(
        "raw/2026/11/20/bad/bad_logged_Upload_Report.json", "bad", "report: malformed JSON", "2026-11-20"
    )
    deferral = Deferral(
        "late", "2026-11-20", "raw/2026/11/20/late/late_logged_Upload_Report.json", "uploading"
    )
    return Batch(
        index=3,
        listings=[listing],
        sessions=[session],
        rejects=[reject],
        deferrals=[deferral],
        processed=[SESSION],
        discovered=5,
        skipped=1,
    )


class TestBatch:
    def test_round_trips_through_a_dict(self) -> None:
        batch = make_batch()
        assert Batch.from_dict(batch.to_dict()) == batch

    def test_round_trips_through_its_xcom_form(self) -> None:
        batch = make_batch()
        xcom = batch.to_xcom()
        restored = Batch.from_xcom(json.loads(json.dumps(xcom)))
        assert restored == batch
        assert isinstance(restored.sessions[0].events[0], Event)
        assert isinstance(restored.sessions[0].files[0], SessionFile)
        assert isinstance(restored.listings[0], SessionListing)
        assert isinstance(restored.rejects[0], Reject)
        assert isinstance(restored.deferrals[0], Deferral)

    def test_xcom_form_is_small_ascii_with_readable_counts(self) -> None:
        batch = make_batch()
        batch.sessions = batch.sessions * 500
        xcom = batch.to_xcom()
        assert (xcom["batch"], xcom["sessions"], xcom["rejects"]) == (3, 1, 1)
        assert xcom["payload"].isascii()
        assert len(json.dumps(xcom)) < len(json.dumps(batch.to_dict())) / 5

    def test_xcom_form_carries_strings_no_utf8_can_hold(self) -> None:
        batch = Batch(index=0, rejects=[Reject("k\ud800\x00", "s\udfff", "reason \ud83d", None)])
        xcom = batch.to_xcom()
        json.dumps(xcom, ensure_ascii=False).encode("utf-8")  # what an XCom backend does with it
        assert Batch.from_xcom(xcom) == batch

    def test_dict_holds_only_plain_values(self) -> None:
        data = make_batch().to_dict()
        assert isinstance(data["sessions"][0]["events"][0], dict)
        assert json.loads(json.dumps(data)) == data

    def test_empty_batch_round_trips(self) -> None:
        assert Batch.from_dict(Batch(index=0).to_dict()) == Batch(index=0)

    def test_from_dict_fills_absent_lists(self) -> None:
        assert Batch.from_dict({"index": 1}) == Batch(index=1)


class TestSession:
    def test_round_trips_with_its_events(self) -> None:
        session = make_batch().sessions[0]
        assert Session.from_dict(json.loads(json.dumps(session.to_dict()))) == session


class TestStableId:
    def test_is_deterministic_32_hex_digits(self) -> None:
        first = stable_id("a", "b")
        assert first == stable_id("a", "b")
        assert len(first) == 32
        assert int(first, 16) >= 0

    @pytest.mark.parametrize(
        ("left", "right"),
        [
            pytest.param(("a", "b"), ("b", "a"), id="order"),
            pytest.param(("ab",), ("a", "b"), id="joined"),
            pytest.param(("a",), ("a", ""), id="trailing-empty"),
        ],
    )
    def test_differs_for_different_parts(self, left: tuple[str, ...], right: tuple[str, ...]) -> None:
        assert stable_id(*left) != stable_id(*right)

    def test_is_pinned(self) -> None:
        """Stored event ids derive from this function: a change would re-key every event in every database."""
        assert stable_id(SESSION, "AudioTags/tag_0001.wav") == "01130a267547e185b281353a896efc8d"
        assert stable_id("raw/2026/11/20/s/AudioTags/x.wav") == "c5880ceb4c35e7eadc5a8b93dcfbe691"

    def test_parts_containing_the_separator_do_not_collide(self) -> None:
        assert Event.make_id("s\x1fAudioTags", "x.wav") != Event.make_id("s", "AudioTags\x1fx.wav")


class TestEvent:
    def test_make_id_is_deterministic(self) -> None:
        assert Event.make_id(SESSION, "AudioTags/a.wav") == Event.make_id(SESSION, "AudioTags/a.wav")

    def test_make_id_is_independent_of_the_bucket_prefix(self) -> None:
        moved = make_event(s3_key=f"archive/2026/11/20/{SESSION}/AudioTags/tag_0001.wav")
        assert moved.event_id == make_event().event_id == Event.make_id(SESSION, "AudioTags/tag_0001.wav")

    @pytest.mark.parametrize(
        ("session_id", "relpath"),
        [
            pytest.param("other", "AudioTags/tag_0001.wav", id="other-session"),
            pytest.param(SESSION, "AudioTags/tag_0002.wav", id="other-path"),
        ],
    )
    def test_make_id_differs_by_session_and_path(self, session_id: str, relpath: str) -> None:
        assert Event.make_id(session_id, relpath) != Event.make_id(SESSION, "AudioTags/tag_0001.wav")


class TestTagsDigest:
    def test_changes_when_a_tag_is_added_removed_or_replaced(self) -> None:
        tags = {"AudioTags/a.wav": '"1"', "AudioTags/b.wav": '"2"'}
        digest = tags_digest(tags)
        assert digest == tags_digest(dict(reversed(list(tags.items()))))
        assert digest != tags_digest({**tags, "AudioTags/c.wav": '"3"'})
        assert digest != tags_digest({"AudioTags/a.wav": '"1"'})
        assert digest != tags_digest({**tags, "AudioTags/b.wav": '"9"'})


class TestReject:
    def test_reject_id_depends_on_object_key_only(self) -> None:
        key = "raw/2026/11/20/s/AudioTags/x.wav"
        first = Reject(key, "s", "audio tag: size mismatch")
        again = Reject(key, None, "audio tag: md5 mismatch")
        assert first.reject_id == again.reject_id == stable_id(key)
        assert Reject("raw/2026/11/20/s/AudioTags/y.wav", "s", first.reason).reject_id != first.reject_id

    def test_round_trips_through_a_dict(self) -> None:
        reject = Reject("k", None, "report: malformed JSON", "2026-11-20")
        assert Reject.from_dict(json.loads(json.dumps(reject.to_dict()))) == reject
