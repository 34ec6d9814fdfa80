"""Tests for event_ingest.report: an upload report's bytes into a session, its events and rejects."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest

from event_ingest.errors import NotReady, ReportError
from event_ingest.model import Event, SessionListing
from event_ingest.report import FIELD_LIMITS, ParsedReport, decode, parse_report

SESSION = "20261120T101533Z_veh042"
DAY = dt.date(2026, 11, 20)
PREFIX = f"raw/2026/11/20/{SESSION}/"
REPORT_KEY = f"{PREFIX}{SESSION}_logged_Upload_Report.json"
MD5 = "9e107d9d372bb6826bd81d3542a419d6"
TAG_1, TAG_2, LOG = "AudioTags/tag_0001.wav", "AudioTags/tag_0002.wav", "AV_logs/DisplayLogs/display_000.log"
OBJECTS = {TAG_1: 48044, TAG_2: 40044, LOG: 91234}


def example_report() -> dict[str, Any]:
    """The example report of docs/contract.md §1.2, with sizes matching ``OBJECTS``."""
    return {
        "report_version": 1,
        "session_id": SESSION,
        "vehicle_id": "veh042",
        "driver_id": "drv-17",
        "start_time": "2026-11-20T10:15:33.120Z",
        "end_time": "2026-11-20T11:02:10.004Z",
        "software_version": "4.12.0",
        "upload": {"status": "complete", "finished_at": "2026-11-20T13:40:00Z"},
        "files": [
            {
                "path": TAG_1,
                "type": "audio_tag",
                "size_bytes": 48044,
                "md5": MD5,
                "frame_id": 183022,
                "timestamp": "2026-11-20T10:21:07.500Z",
                "duration_s": 3.0,
            },
            {
                "path": TAG_2,
                "type": "audio_tag",
                "size_bytes": 40044,
                "md5": MD5,
                "frame_id": 190411,
                "timestamp": None,
            },
            {"path": LOG, "type": "display_log", "size_bytes": 91234, "md5": MD5},
            {"path": "camera/front_000.mp4", "type": "raw", "size_bytes": 73400320},
        ],
    }


def parse(
    report: dict[str, Any] | bytes,
    *,
    objects: dict[str, int] | None = None,
    folder_session_id: str = SESSION,
    prefix: str = PREFIX,
    file_types: tuple[str, ...] = ("audio_tag",),
) -> ParsedReport:
    raw = report if isinstance(report, bytes) else json.dumps(report).encode()
    sizes = OBJECTS if objects is None else objects
    listing = SessionListing(
        session_id=folder_session_id,
        day=DAY.isoformat(),
        prefix=prefix,
        report_key=f"{prefix}{folder_session_id}_logged_Upload_Report.json",
        report_etag="etag-1",
        report_size=len(raw),
        objects={relpath: [size, f'"etag-of-{relpath}"'] for relpath, size in sizes.items()},
        tags_digest="d" * 32,
    )
    return parse_report(raw, listing, file_types=frozenset(file_types))


def with_tag(**fields: Any) -> dict[str, Any]:
    """The example report with its first audio tag's fields replaced (``None`` removes one)."""
    report = example_report()
    tag = report["files"][0]
    for name, value in fields.items():
        if value is None:
            tag.pop(name, None)
        else:
            tag[name] = value
    return report


class TestDecode:
    def test_returns_the_top_level_object(self) -> None:
        assert decode(b'{"a": 1}') == {"a": 1}

    def test_accepts_a_utf8_bom(self) -> None:
        assert decode(b'\xef\xbb\xbf{"a": "\xc3\xa9"}') == {"a": "é"}

    @pytest.mark.parametrize(
        ("raw", "message"),
        [
            pytest.param(b'{"session_id": ', "malformed JSON", id="truncated"),
            pytest.param(b"", "malformed JSON", id="empty"),
            pytest.param(b"{'a': 1}", "malformed JSON", id="single-quotes"),
            pytest.param(b'{"a": "\xff\xfe"}', "not UTF-8", id="invalid-utf8"),
            pytest.param('{"a": "é"}'.encode("latin-1"), "not UTF-8", id="latin-1"),
            pytest.param(b"[1, 2]", "not a JSON object", id="list"),
            pytest.param(b'"text"', "not a JSON object", id="string"),
            pytest.param(b"null", "not a JSON object", id="null"),
        ],
    )
    def test_refuses_what_is_not_a_utf8_json_object(self, raw: bytes, message: str) -> None:
        with pytest.raises(ReportError, match=message):
            decode(raw)


class TestParseReport:
    def test_gives_the_session_fields_of_the_contract_example(self) -> None:
        session = parse(example_report()).session
        assert session.session_id == SESSION
        assert session.vehicle_id == "veh042"
        assert session.driver_id == "drv-17"
        assert session.started_at == "2026-11-20 10:15:33.120"
        assert session.ended_at == "2026-11-20 11:02:10.004"
        assert session.session_date == "2026-11-20"
        assert session.software_version == "4.12.0"
        assert session.report_key == REPORT_KEY
        assert session.report_etag == "etag-1"

    def test_gives_one_event_per_audio_tag_of_the_contract_example(self) -> None:
        parsed = parse(example_report())
        assert parsed.rejects == []
        assert parsed.session.events == [
            Event(
                event_id=Event.make_id(SESSION, TAG_1),
                session_id=SESSION,
                s3_key=PREFIX + TAG_1,
                relpath=TAG_1,
                frame_id=183022,
                event_time="2026-11-20 10:21:07.500",
                time_source="report",
                duration_s=3.0,
                size_bytes=48044,
                md5=MD5,
                etag=f'"etag-of-{TAG_1}"',
            ),
            Event(
                event_id=Event.make_id(SESSION, TAG_2),
                session_id=SESSION,
                s3_key=PREFIX + TAG_2,
                relpath=TAG_2,
                frame_id=190411,
                event_time=None,
                time_source="unresolved",
                duration_s=None,
                size_bytes=40044,
                md5=MD5,
                etag=f'"etag-of-{TAG_2}"',
            ),
        ]

    def test_session_date_is_the_folders_day_not_the_start_time(self) -> None:
        report = example_report()
        report["start_time"] = "2026-11-19T23:59:59.999-01:00"
        session = parse(report).session
        assert session.started_at == "2026-11-20 00:59:59.999"
        assert session.session_date == DAY.isoformat()

    def test_ignores_unknown_keys_and_file_types(self) -> None:
        report = example_report()
        report["weather"] = {"rain": True}
        report["files"][0]["colour"] = "blue"
        report["files"] += [
            {"path": "AudioTags/tag_9.wav", "type": "hologram"},
            {"path": "../../etc/passwd", "type": "raw"},
            {"path": "AudioTags/tag_9.wav"},
            "not an entry",
            None,
        ]
        parsed = parse(report)
        assert [e.relpath for e in parsed.session.events] == [TAG_1, TAG_2]
        assert parsed.rejects == []

    def test_minimal_report_gives_a_session_without_events(self) -> None:
        report = {"session_id": SESSION, "vehicle_id": "v", "start_time": "2026-11-20T10:15:33Z", "files": []}
        session = parse(report, objects={}).session
        assert (session.driver_id, session.ended_at, session.software_version) == (None, None, None)
        assert session.started_at == "2026-11-20 10:15:33.000"
        assert session.events == []

    def test_absent_upload_is_complete(self) -> None:
        report = example_report()
        del report["upload"]
        assert len(parse(report).session.events) == 2

    @pytest.mark.parametrize(
        "status",
        [
            pytest.param("in_progress", id="in-progress"),
            pytest.param("failed", id="failed"),
            pytest.param("", id="empty"),
            pytest.param(False, id="false"),
            pytest.param({"x": 1}, id="object"),
        ],
    )
    def test_unfinished_upload_is_not_ready(self, status: object) -> None:
        report = example_report()
        report["upload"]["status"] = status
        with pytest.raises(NotReady):
            parse(report)

    @pytest.mark.parametrize(
        "upload",
        [
            pytest.param({"status": None}, id="null-status"),
            pytest.param({"finished_at": "2026-11-20T13:40:00Z"}, id="no-status"),
            pytest.param(None, id="null-upload"),
            pytest.param("complete", id="upload-not-an-object"),
        ],
    )
    def test_upload_without_a_status_is_complete(self, upload: object) -> None:
        report = example_report()
        report["upload"] = upload
        assert len(parse(report).session.events) == 2

    def test_accepts_a_utf8_bom(self) -> None:
        parsed = parse(b"\xef\xbb\xbf" + json.dumps(example_report()).encode())
        assert len(parsed.session.events) == 2

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("with space", id="space"),
            pytest.param('it\'s "quoted"', id="quotes"),
            pytest.param("séance-日本-🚗", id="unicode"),
            pytest.param("'; DROP TABLE sessions; --", id="sql-looking"),
        ],
    )
    def test_keeps_odd_ids_and_keys_literally(self, text: str) -> None:
        relpath = f"AudioTags/{text}.wav"
        prefix = f"raw/2026/11/20/{text}/"
        report = example_report()
        report.update(session_id=text, vehicle_id=text, driver_id=text, software_version=text[:64])
        report["files"] = [{"path": relpath, "type": "audio_tag", "size_bytes": 5}]
        parsed = parse(report, objects={relpath: 5}, folder_session_id=text, prefix=prefix)
        session = parsed.session
        assert (session.session_id, session.vehicle_id, session.driver_id) == (text, text, text)
        [event] = session.events
        assert (event.session_id, event.relpath, event.s3_key) == (text, relpath, prefix + relpath)
        assert event.event_id == Event.make_id(text, relpath)

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            pytest.param({"session_id": None}, "session_id", id="missing-session-id"),
            pytest.param({"session_id": ""}, "session_id", id="empty-session-id"),
            pytest.param({"session_id": 42}, "session_id", id="session-id-not-string"),
            pytest.param({"session_id": "other_session"}, "differs from its folder", id="other-session-id"),
            pytest.param({"vehicle_id": None}, "vehicle_id", id="missing-vehicle-id"),
            pytest.param({"vehicle_id": ""}, "vehicle_id", id="empty-vehicle-id"),
            pytest.param({"vehicle_id": ["v"]}, "vehicle_id", id="vehicle-id-not-string"),
            pytest.param({"start_time": None}, "start_time", id="missing-start-time"),
            pytest.param({"start_time": "yesterday"}, "start_time", id="bad-start-time"),
            pytest.param({"start_time": "2026-11-31T10:00:00Z"}, "start_time", id="impossible-start-time"),
            pytest.param({"start_time": 1763633733}, "start_time", id="epoch-start-time"),
            pytest.param({"end_time": "soon"}, "end_time", id="bad-end-time"),
            pytest.param({"driver_id": 17}, "driver_id", id="driver-id-not-string"),
            pytest.param({"files": None}, "files", id="missing-files"),
            pytest.param({"files": {"path": TAG_1}}, "files", id="files-not-list"),
            pytest.param({"files": "AudioTags/tag_0001.wav"}, "files", id="files-string"),
            pytest.param({"vehicle_id": "v" * 129}, "vehicle_id", id="long-vehicle-id"),
            pytest.param({"driver_id": "d" * 129}, "driver_id", id="long-driver-id"),
            pytest.param({"software_version": "1" * 65}, "software_version", id="long-software-version"),
            pytest.param({"vehicle_id": "v" * 10_000_000}, "vehicle_id", id="10-mb-vehicle-id"),
            pytest.param({"start_time": "9" * 10_000_000}, "start_time", id="10-mb-start-time"),
            pytest.param({"session_id": "s" * 10_000_000}, "session_id", id="10-mb-session-id"),
        ],
    )
    def test_whole_session_failures_name_the_problem(self, change: dict[str, Any], message: str) -> None:
        report = example_report()
        for name, value in change.items():
            if value is None:
                del report[name]
            else:
                report[name] = value
        with pytest.raises(ReportError, match=message) as caught:
            parse(report)
        assert len(str(caught.value)) < 500

    @pytest.mark.parametrize(
        "start_time",
        [
            pytest.param("0001-01-01T00:00:00+01:00", id="before-year-1"),
            pytest.param("9999-12-31T23:59:59-01:00", id="after-year-9999"),
        ],
    )
    def test_out_of_range_start_time_is_a_report_error(self, start_time: str) -> None:
        report = example_report()
        report["start_time"] = start_time
        with pytest.raises(ReportError, match="start_time"):
            parse(report)

    @pytest.mark.parametrize(
        ("raw", "message"),
        [
            pytest.param(b"{not json", "malformed JSON", id="malformed-json"),
            pytest.param(b'{"session_id": "\xff"}', "not UTF-8", id="non-utf8"),
            pytest.param(b"[]", "not a JSON object", id="not-an-object"),
        ],
    )
    def test_undecodable_report_is_a_report_error(self, raw: bytes, message: str) -> None:
        with pytest.raises(ReportError, match=message):
            parse(raw)

    def test_field_limits_are_inclusive(self) -> None:
        report = example_report()
        for name, limit in FIELD_LIMITS.items():
            report[name] = "x" * limit
        session = parse(report).session
        assert len(session.vehicle_id) == FIELD_LIMITS["vehicle_id"]


class TestParseReportAudioTags:
    @pytest.mark.parametrize(
        ("fields", "objects", "message"),
        [
            pytest.param({"path": "../../x.wav"}, None, "leaves the session folder", id="parent-path"),
            pytest.param({"path": "/etc/x.wav"}, None, "leaves the session folder", id="absolute-path"),
            pytest.param({}, {TAG_2: 40044, LOG: 91234}, "absent from the bucket", id="absent"),
            pytest.param({"size_bytes": 48045}, None, "size mismatch", id="size-mismatch"),
            pytest.param({"size_bytes": -1}, None, "size_bytes", id="negative-size"),
            pytest.param({"size_bytes": "48044"}, None, "size_bytes", id="size-as-string"),
            pytest.param({"md5": "xyz"}, None, "md5", id="md5-not-hex"),
            pytest.param({"md5": MD5 + "0"}, None, "md5", id="md5-too-long"),
            pytest.param({"md5": 12345}, None, "md5", id="md5-not-string"),
            pytest.param({"frame_id": "183022"}, None, "frame_id", id="frame-id-string"),
            pytest.param({"frame_id": 1.5}, None, "frame_id", id="frame-id-float"),
            pytest.param({"frame_id": True}, None, "frame_id", id="frame-id-bool"),
            pytest.param({"frame_id": -1}, None, "frame_id", id="frame-id-negative"),
            pytest.param({"frame_id": 2**63}, None, "frame_id", id="frame-id-too-big"),
            pytest.param({"duration_s": float("nan")}, None, "duration_s", id="duration-nan"),
            pytest.param({"duration_s": float("inf")}, None, "duration_s", id="duration-infinity"),
            pytest.param({"duration_s": "3s"}, None, "duration_s", id="duration-string"),
            pytest.param({"duration_s": False}, None, "duration_s", id="duration-bool"),
            pytest.param({"timestamp": "at noon"}, None, "timestamp", id="bad-timestamp"),
            pytest.param({"timestamp": "2026-02-30T10:00:00Z"}, None, "timestamp", id="impossible-timestamp"),
            pytest.param({"timestamp": 1763633733}, None, "timestamp", id="timestamp-number"),
            pytest.param({"timestamp": ""}, None, "timestamp", id="empty-timestamp"),
        ],
    )
    def test_bad_audio_tag_is_rejected_while_others_load(
        self, fields: dict[str, Any], objects: dict[str, int] | None, message: str
    ) -> None:
        report = with_tag(**fields)
        raw_path = report["files"][0]["path"]
        parsed = parse(report, objects=objects)
        assert [e.relpath for e in parsed.session.events] == [TAG_2]
        [reject] = parsed.rejects
        assert reject.object_key == PREFIX + raw_path
        assert reject.session_id == SESSION
        assert reject.reason.startswith("audio tag:")
        assert message in reject.reason

    def test_nan_written_in_the_json_text_is_rejected(self) -> None:
        raw = json.dumps(example_report()).replace('"duration_s": 3.0', '"duration_s": NaN').encode()
        parsed = parse(raw)
        assert [e.relpath for e in parsed.session.events] == [TAG_2]
        assert "duration_s" in parsed.rejects[0].reason

    @pytest.mark.parametrize(
        "path",
        [
            pytest.param(None, id="missing"),
            pytest.param(7, id="number"),
        ],
    )
    def test_entry_without_string_path_is_rejected_by_its_position(self, path: object) -> None:
        parsed = parse(with_tag(path=path))
        [reject] = parsed.rejects
        assert reject.object_key == f"{REPORT_KEY}#files[0]"
        assert reject.reason.startswith("audio tag:")

    def test_duplicate_entries_for_one_path_give_one_event(self) -> None:
        report = example_report()
        report["files"].append(copy.deepcopy(report["files"][0]))
        parsed = parse(report)
        assert [e.relpath for e in parsed.session.events] == [TAG_1, TAG_2]
        assert parsed.rejects == []

    def test_a_later_bad_entry_for_a_path_already_listed_is_ignored(self) -> None:
        report = example_report()
        report["files"].append({**report["files"][0], "size_bytes": 1, "md5": "nonsense"})
        parsed = parse(report)
        assert [e.relpath for e in parsed.session.events] == [TAG_1, TAG_2]
        assert parsed.rejects == []

    @pytest.mark.parametrize(
        ("stamp", "expected"),
        [
            pytest.param("2026-11-20T10:21:07.500Z", "2026-11-20 10:21:07.500", id="zulu"),
            pytest.param("2026-11-20T12:21:07.5+02:00", "2026-11-20 10:21:07.500", id="offset"),
            pytest.param("2026-11-20T10:21:07.123999", "2026-11-20 10:21:07.123", id="naive-microseconds"),
        ],
    )
    def test_event_time_is_normalised_to_utc_milliseconds(self, stamp: str, expected: str) -> None:
        event = parse(with_tag(timestamp=stamp)).session.events[0]
        assert (event.event_time, event.time_source) == (expected, "report")

    def test_absent_timestamp_is_unresolved(self) -> None:
        event = parse(with_tag(timestamp=None)).session.events[0]
        assert (event.event_time, event.time_source) == (None, "unresolved")

    def test_optional_fields_may_be_absent(self) -> None:
        report = example_report()
        report["files"] = [{"path": TAG_1, "type": "audio_tag"}]
        [event] = parse(report).session.events
        assert (event.frame_id, event.duration_s, event.md5, event.size_bytes) == (None, None, None, 48044)

    def test_md5_is_stored_lower_case(self) -> None:
        event = parse(with_tag(md5=MD5.upper())).session.events[0]
        assert event.md5 == MD5

    def test_frame_id_just_below_two_to_the_63_is_accepted(self) -> None:
        event = parse(with_tag(frame_id=2**63 - 1)).session.events[0]
        assert event.frame_id == 2**63 - 1

    def test_key_up_to_s3s_limit_is_an_event(self) -> None:
        relpath = "AudioTags/" + "x" * (1024 - len(PREFIX) - 14) + ".wav"
        parsed = parse(with_tag(path=relpath, size_bytes=48044), objects={**OBJECTS, relpath: 48044})
        assert [e.relpath for e in parsed.session.events] == [relpath, TAG_2]
        assert len(parsed.session.events[0].s3_key.encode()) == 1024

    def test_a_path_no_key_can_have_is_rejected_by_its_position(self) -> None:
        relpath = "AudioTags/" + "é" * 600 + ".wav"
        parsed = parse(with_tag(path=relpath))
        [reject] = parsed.rejects
        assert "longer than 1024 bytes" in reject.reason
        assert reject.object_key == f"{REPORT_KEY}#files[0]"

    def test_reason_of_a_huge_bad_path_stays_short(self) -> None:
        relpath = "../" + "x" * 10_000_000
        parsed = parse(with_tag(path=relpath))
        [reject] = parsed.rejects
        assert reject.object_key == f"{REPORT_KEY}#files[0]"
        assert len(reject.reason) < 2000

    def test_out_of_range_timestamp_rejects_only_its_audio_tag(self) -> None:
        parsed = parse(with_tag(timestamp="0001-01-01T00:00:00+01:00"))
        assert [e.relpath for e in parsed.session.events] == [TAG_2]
        assert "timestamp" in parsed.rejects[0].reason


class TestParseReportHostileValues:
    """What a report's JSON can hold that Python's own decoders and numbers trip over."""

    @pytest.mark.parametrize(
        ("raw", "message"),
        [
            pytest.param(
                b'{"a": ' + b"9" * 5000 + b"}", "malformed JSON", id="integer-beyond-the-digit-limit"
            ),
            pytest.param(b"[" * 100_000 + b"]" * 100_000, "nested deeper", id="nesting-beyond-recursion"),
            pytest.param(b'{"a": 1e999999}', "not a JSON object|report misses", id="float-beyond-double"),
        ],
    )
    def test_numbers_and_nesting_beyond_pythons_limits_are_report_errors(
        self, raw: bytes, message: str
    ) -> None:
        with pytest.raises(ReportError, match=message):
            parse(raw)

    @pytest.mark.parametrize(
        "field", [pytest.param("vehicle_id", id="vehicle"), pytest.param("driver_id", id="driver")]
    )
    def test_a_lone_surrogate_in_a_field_rejects_the_session_naming_the_field(self, field: str) -> None:
        raw = json.dumps(example_report()).replace(
            '"drv-17"' if field == "driver_id" else '"veh042"', '"x\\ud800"'
        )
        with pytest.raises(ReportError, match=f"{field}.*surrogate"):
            parse(raw.encode())

    def test_a_nul_in_a_field_rejects_the_session(self) -> None:
        report = example_report()
        report["software_version"] = "4\x00"
        with pytest.raises(ReportError, match="U\\+0000"):
            parse(report)

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            pytest.param({"duration_s": 10**400}, "duration_s", id="duration-beyond-double"),
            pytest.param({"frame_id": 10**30}, "frame_id", id="frame-id-huge"),
            pytest.param({"size_bytes": 10**30}, "size_bytes", id="size-huge"),
            pytest.param({"path": "AudioTags/x\ud800.wav"}, "surrogate", id="path-with-a-lone-surrogate"),
            pytest.param({"path": {"nested": [1, 2]}}, "not a non-empty string", id="path-an-object"),
            pytest.param({"md5": ["x"] * 3}, "md5", id="md5-a-list"),
        ],
    )
    def test_hostile_entry_values_reject_only_their_file(self, fields: dict[str, Any], message: str) -> None:
        parsed = parse(with_tag(**fields))
        assert [e.relpath for e in parsed.session.events] == [TAG_2]
        [reject] = parsed.rejects
        assert message in reject.reason

    def test_entries_that_are_not_objects_or_have_odd_types_are_ignored(self) -> None:
        report = example_report()
        report["files"] += [None, 5, "x", [1], {"type": ["audio_tag"]}, {"type": None}, {"type": 3}]
        parsed = parse(report)
        assert [e.relpath for e in parsed.session.events] == [TAG_1, TAG_2]
        assert parsed.rejects == []


class TestParseReportOtherFiles:
    def test_files_of_the_kinds_asked_for_are_checked_and_kept(self) -> None:
        raw_file = "camera/front_000.mp4"
        objects = {**OBJECTS, raw_file: 73400320}
        parsed = parse(example_report(), objects=objects, file_types=("audio_tag", "display_log", "raw"))
        assert [(f.relpath, f.file_type, f.size_bytes) for f in parsed.session.files] == [
            (LOG, "display_log", 91234),
            (raw_file, "raw", 73400320),
        ]
        assert parsed.session.file_types == ["audio_tag", "display_log", "raw"]
        assert parsed.rejects == []

    def test_files_of_other_kinds_are_not_even_checked(self) -> None:
        parsed = parse(example_report())  # the raw file is not in OBJECTS: nobody asked for it
        assert parsed.session.files == []
        assert parsed.rejects == []

    def test_a_raw_file_absent_from_the_bucket_is_rejected_when_asked_for(self) -> None:
        parsed = parse(example_report(), file_types=("audio_tag", "raw"))
        [reject] = parsed.rejects
        assert reject.object_key == PREFIX + "camera/front_000.mp4"
        assert reject.reason.startswith("raw: ")
        assert "absent" in reject.reason
