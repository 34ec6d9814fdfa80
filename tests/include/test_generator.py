"""Tests for include.generator, against the suite's real S3 server (SeaweedFS ``weed mini``)."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import re
import threading
import wave
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from include.generator import (
    BAD_KINDS,
    ExpectedEvent,
    ExpectedReject,
    ExpectedSession,
    Manifest,
    add_audio_tag,
    ensure_bucket,
    generate_bucket,
    main,
    session_prefix,
)
from tools.services import SeaweedS3

DAY_1 = date(2026, 11, 20)
DAY_2 = date(2026, 11, 21)
PREFIX = "raw/"
SESSION_ID = re.compile(r"^(\d{8})T\d{6}Z_veh\d{3,}$")
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) frame_id=(\d+)(?: |$)")
REPORT_FIELDS = {
    "report_version",
    "session_id",
    "vehicle_id",
    "driver_id",
    "start_time",
    "end_time",
    "software_version",
    "upload",
    "files",
}
# The shared generation: every good session has exactly 2 untimed tags, 1 of them unlogged.
GENERATED = {
    "prefix": PREFIX,
    "days": [DAY_1, DAY_2],
    "sessions_per_day": 3,
    "tags_per_session": 5,
    "untimed_share": 0.4,
    "unlogged_share": 0.5,
    "bad_kinds": BAD_KINDS,
    "seed": 7,
    "tag_bytes": 4096,
}
_bucket_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def s3_endpoint(seaweed: SeaweedS3) -> str:
    return seaweed.endpoint_url


@pytest.fixture(scope="module")
def s3_client(seaweed: SeaweedS3) -> Any:
    """A client of the suite's SeaweedFS server, pooled for the generator's 16 upload threads."""
    return seaweed.client(max_pool_connections=16)


@pytest.fixture
def new_bucket(s3_client: Any) -> str:
    bucket = f"gen-test-{next(_bucket_numbers)}"
    ensure_bucket(s3_client, bucket)
    return bucket


@pytest.fixture(scope="module")
def generated(s3_client: Any) -> tuple[str, Manifest]:
    bucket = "gen-shared"
    ensure_bucket(s3_client, bucket)
    s3_client.put_object(Bucket=bucket, Key="other/stray.txt", Body=b"not a session")
    return bucket, generate_bucket(s3_client, bucket, **GENERATED)


def _keys(s3_client: Any, bucket: str, prefix: str = "") -> list[str]:
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _body(s3_client: Any, bucket: str, key: str) -> bytes:
    return s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()


def _report(s3_client: Any, bucket: str, report_key: str) -> dict[str, Any]:
    return json.loads(_body(s3_client, bucket, report_key))


def _folder(report_key: str) -> str:
    return report_key.rsplit("/", 1)[0] + "/"


def _report_key(prefix: str, day: date, session_id: str) -> str:
    return f"{session_prefix(prefix, day, session_id)}{session_id}_logged_Upload_Report.json"


def _log_times(s3_client: Any, bucket: str, report_key: str) -> tuple[dict[int, str], list[int]]:
    """Frame -> time as docs/contract.md §1.3 reads display logs (first line wins); frames seen twice."""
    report = _report(s3_client, bucket, report_key)
    times: dict[int, str] = {}
    repeated: list[int] = []
    for entry in report["files"]:
        if entry["type"] != "display_log":
            continue
        for line in _body(s3_client, bucket, _folder(report_key) + entry["path"]).decode().splitlines():
            if match := LOG_LINE.match(line):
                frame = int(match.group(2))
                if frame in times:
                    repeated.append(frame)
                else:
                    times[frame] = match.group(1)
    return times, repeated


def _rejects_of(manifest: Manifest, kind: str) -> list[ExpectedReject]:
    return [reject for reject in manifest.rejects if reject.kind == kind]


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _good_sessions(manifest: Manifest) -> list[ExpectedSession]:
    """Sessions of the shared generation with no bad kind at all."""
    bad_ids = {reject.session_id for reject in manifest.rejects}
    return [session for session in manifest.sessions.values() if session.session_id not in bad_ids]


class _RecordingClient:
    """Delegates to a real client and records the order of put_object keys."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()
        self.puts: list[str] = []

    def put_object(self, **kwargs: Any) -> Any:
        with self._lock:
            self.puts.append(kwargs["Key"])
        return self._client.put_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class TestSessionPrefix:
    @pytest.mark.parametrize(
        ("prefix", "expected"),
        [
            pytest.param("", "2026/11/20/sid/", id="empty"),
            pytest.param("raw/", "raw/2026/11/20/sid/", id="one-level"),
            pytest.param("a/b/", "a/b/2026/11/20/sid/", id="two-levels"),
        ],
    )
    def test_formats_the_session_folder(self, prefix: str, expected: str) -> None:
        assert session_prefix(prefix, DAY_1, "sid") == expected


class TestGenerateBucket:
    def test_every_key_sits_in_a_session_folder_of_its_start_day(
        self, s3_client: Any, generated: tuple[str, Manifest]
    ) -> None:
        bucket, _ = generated
        layout = re.compile(
            r"^raw/(\d{4})/(\d{2})/(\d{2})/([^/]+)/"
            r"(\4_logged_Upload_Report\.json|AudioTags/tag_\d{4}\.wav"
            r"|AV_logs/DisplayLogs/display_\d{3}\.log|camera/front_000\.mp4)$"
        )
        for key in _keys(s3_client, bucket, PREFIX):
            match = layout.match(key)
            assert match, key
            session_match = SESSION_ID.match(match.group(4))
            assert session_match, key
            assert session_match.group(1) == "".join(match.group(1, 2, 3)), key

    def test_every_session_folder_has_report_tags_logs_and_raw_data(
        self, s3_client: Any, generated: tuple[str, Manifest]
    ) -> None:
        bucket, _ = generated
        folders: dict[str, set[str]] = {}
        for key in _keys(s3_client, bucket, PREFIX):
            *_, folder, rest = key.removeprefix(PREFIX).split("/", 4)
            folders.setdefault(folder, set()).add(rest.split("/")[0])
        assert len(folders) == 2 * 3 + len(BAD_KINDS)
        for folder, tops in folders.items():
            assert tops == {f"{folder}_logged_Upload_Report.json", "AudioTags", "AV_logs", "camera"}

    def test_days_hold_their_sessions_and_bad_ones_go_to_the_first_day(
        self, s3_client: Any, generated: tuple[str, Manifest]
    ) -> None:
        bucket, manifest = generated
        reports = [key for key in _keys(s3_client, bucket) if key.endswith("_Upload_Report.json")]
        assert sum(key.startswith("raw/2026/11/20/") for key in reports) == 3 + len(BAD_KINDS)
        assert sum(key.startswith("raw/2026/11/21/") for key in reports) == 3
        assert [s.day for s in manifest.sessions.values()].count(DAY_2.isoformat()) == 3

    def test_manifest_accounts_for_every_session(self, generated: tuple[str, Manifest]) -> None:
        _, manifest = generated
        loading_bad = len(BAD_KINDS) - 3 - 1  # minus whole-session rejects and the deferred one
        assert len(manifest.sessions) == 6 + loading_bad
        assert sorted(reject.kind for reject in manifest.rejects) == sorted(
            set(BAD_KINDS) - {"incomplete_upload"}
        )
        assert len(manifest.deferred) == 1

    def test_reports_have_the_contract_fields_and_formats(
        self, s3_client: Any, generated: tuple[str, Manifest]
    ) -> None:
        bucket, manifest = generated
        for session in manifest.sessions.values():
            report = _report(s3_client, bucket, session.report_key)
            assert set(report) == REPORT_FIELDS
            assert report["session_id"] == session.session_id
            assert report["vehicle_id"] == session.vehicle_id == session.session_id.rsplit("_", 1)[1]
            assert re.fullmatch(r"drv-\d{2}", report["driver_id"])
            assert re.fullmatch(r"\d+\.\d+\.\d+", report["software_version"])
            assert report["upload"]["status"] == "complete"
            for field in (report["start_time"], report["end_time"], report["upload"]["finished_at"]):
                assert ISO_MS.match(field), field
            start = datetime.fromisoformat(report["start_time"])
            assert start.date().isoformat() == session.day
            assert session.session_id.startswith(f"{start:%Y%m%dT%H%M%SZ}_")
            assert report["start_time"] < report["end_time"] < report["upload"]["finished_at"]

    def test_reports_list_the_uploaded_files_with_their_size_and_md5(
        self, s3_client: Any, generated: tuple[str, Manifest]
    ) -> None:
        bucket, manifest = generated
        for session in _good_sessions(manifest):
            folder = _folder(session.report_key)
            report = _report(s3_client, bucket, session.report_key)
            listed = {folder + entry["path"] for entry in report["files"]}
            assert listed | {session.report_key} == set(_keys(s3_client, bucket, folder))
            for entry in report["files"]:
                data = _body(s3_client, bucket, folder + entry["path"])
                assert entry["size_bytes"] == len(data)
                if entry["type"] != "raw":
                    assert entry["md5"] == _md5(data)

    def test_wavs_are_16khz_mono_pcm_of_the_reported_duration(
        self, s3_client: Any, generated: tuple[str, Manifest]
    ) -> None:
        bucket, manifest = generated
        session = _good_sessions(manifest)[0]
        report = _report(s3_client, bucket, session.report_key)
        for entry in (e for e in report["files"] if e["type"] == "audio_tag"):
            data = _body(s3_client, bucket, _folder(session.report_key) + entry["path"])
            assert 4096 * 0.85 < len(data) < 4096 * 1.15
            with wave.open(io.BytesIO(data)) as wav:
                assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 16_000)
                assert wav.getnframes() / 16_000 == pytest.approx(entry["duration_s"], abs=0.001)

    def test_timed_tags_expect_the_report_timestamp(
        self, s3_client: Any, generated: tuple[str, Manifest]
    ) -> None:
        bucket, manifest = generated
        for session in manifest.sessions.values():
            entries = {e["path"]: e for e in _report(s3_client, bucket, session.report_key)["files"]}
            for relpath, event in session.events.items():
                entry = entries[relpath]
                assert entry["frame_id"] == event.frame_id
                assert event.key == _folder(session.report_key) + relpath
                if event.time_source == "report":
                    assert entry["timestamp"] == event.event_time
                else:
                    assert entry["timestamp"] is None

    def test_untimed_frames_are_logged_except_the_unlogged_ones(
        self, s3_client: Any, generated: tuple[str, Manifest]
    ) -> None:
        bucket, manifest = generated
        for session in _good_sessions(manifest):
            times, _ = _log_times(s3_client, bucket, session.report_key)
            sources = sorted(e.time_source for e in session.events.values())
            assert sources == ["display_log", "report", "report", "report", "unresolved"]
            for event in session.events.values():
                if event.time_source == "display_log":
                    assert times[event.frame_id] == event.event_time
                elif event.time_source == "unresolved":
                    assert event.event_time is None
                    assert event.frame_id not in times

    def test_a_logged_frame_repeats_later_and_the_first_line_is_expected(
        self, s3_client: Any, generated: tuple[str, Manifest]
    ) -> None:
        bucket, manifest = generated
        for session in _good_sessions(manifest):
            times, repeated = _log_times(s3_client, bucket, session.report_key)
            resolved = {
                e.frame_id: e.event_time for e in session.events.values() if e.time_source == "display_log"
            }
            assert repeated, session.session_id
            assert set(repeated) & set(resolved), session.session_id
            for frame in set(repeated) & set(resolved):
                assert times[frame] == resolved[frame]

    def test_display_logs_are_small_and_have_lines_that_do_not_match(
        self, s3_client: Any, generated: tuple[str, Manifest]
    ) -> None:
        bucket, _ = generated
        logs = [key for key in _keys(s3_client, bucket, PREFIX) if key.endswith(".log")]
        for key in logs[:5]:
            body = _body(s3_client, bucket, key)
            assert len(body) < 8 * 1024
            lines = body.decode(errors="replace").splitlines()
            assert any(not LOG_LINE.match(line) for line in lines)

    @pytest.mark.parametrize("kind", BAD_KINDS)
    def test_bad_session_is_written_as_the_manifest_says(
        self, s3_client: Any, generated: tuple[str, Manifest], kind: str
    ) -> None:
        bucket, manifest = generated
        rejects = _rejects_of(manifest, kind)
        if kind == "incomplete_upload":
            assert not rejects
            (session_id,) = manifest.deferred
            assert session_id not in manifest.sessions
            assert all(reject.session_id != session_id for reject in manifest.rejects)
            report = _report(s3_client, bucket, _report_key(PREFIX, DAY_1, session_id))
            assert report["upload"]["status"] == "in_progress"
            return

        (reject,) = rejects
        report_key = _report_key(PREFIX, DAY_1, reject.session_id)
        folder = _folder(report_key)
        body = _body(s3_client, bucket, report_key)
        if kind in ("malformed_json", "missing_fields", "session_id_mismatch"):
            assert reject.object_key == report_key
            assert reject.session_id not in manifest.sessions
            if kind == "malformed_json":
                with pytest.raises(json.JSONDecodeError):
                    json.loads(body)
            elif kind == "missing_fields":
                assert "vehicle_id" not in json.loads(body)
            else:
                assert json.loads(body)["session_id"] != reject.session_id
            return

        report = json.loads(body)
        session = manifest.sessions[reject.session_id]
        entries = {folder + e["path"]: e for e in report["files"]}
        keys = set(_keys(s3_client, bucket, folder))
        tag_keys = {key for key, e in entries.items() if e["type"] == "audio_tag"}
        assert {e.key for e in session.events.values()} == tag_keys - {reject.object_key}
        entry = entries[reject.object_key]
        if kind == "file_absent":
            assert reject.object_key not in keys
        elif kind in ("size_mismatch", "md5_mismatch"):
            data = _body(s3_client, bucket, reject.object_key)
            assert (entry["size_bytes"] == len(data)) is (kind == "md5_mismatch")
            assert (entry["md5"] == _md5(data)) is (kind == "size_mismatch")
        elif kind.startswith("path_escape"):
            raw_path = "../../../escape.wav" if kind == "path_escape_dotdot" else "/etc/escape.wav"
            assert reject.object_key == folder + raw_path
            assert entry["path"] == raw_path
            assert not [key for key in _keys(s3_client, bucket) if "escape" in key]
        else:
            data = _body(s3_client, bucket, reject.object_key)
            with pytest.raises(UnicodeDecodeError):
                data.decode()
            untimed = [e for e in session.events.values() if e.time_source != "report"]
            assert untimed
            assert all(e.time_source == "unresolved" and e.event_time is None for e in untimed)
            assert any(f" frame_id={e.frame_id} ".encode() in data for e in untimed)

    def test_report_is_uploaded_after_the_files_of_its_session(self, s3_client: Any, new_bucket: str) -> None:
        recorder = _RecordingClient(s3_client)
        generate_bucket(
            recorder, new_bucket, days=[DAY_1], sessions_per_day=6, bad_kinds=BAD_KINDS, tag_bytes=512
        )
        reports = [i for i, key in enumerate(recorder.puts) if key.endswith("_Upload_Report.json")]
        assert len(reports) == 6 + len(BAD_KINDS)
        for index in reports:
            folder = _folder(recorder.puts[index])
            assert all(
                i < index for i, key in enumerate(recorder.puts) if key.startswith(folder) and i != index
            )


class TestDeterminism:
    def _snapshot(self, s3_client: Any, bucket: str) -> dict[str, str]:
        return {key: _md5(_body(s3_client, bucket, key)) for key in _keys(s3_client, bucket)}

    def test_same_seed_writes_the_same_objects_whatever_the_workers(self, s3_client: Any) -> None:
        snapshots, manifests = [], []
        for workers in (1, 8):
            bucket = f"gen-test-{next(_bucket_numbers)}"
            ensure_bucket(s3_client, bucket)
            manifest = generate_bucket(
                s3_client,
                bucket,
                days=[DAY_1, DAY_2],
                sessions_per_day=2,
                bad_kinds=("md5_mismatch", "non_utf8_display_log"),
                seed=3,
                tag_bytes=1024,
                workers=workers,
            )
            snapshots.append(self._snapshot(s3_client, bucket))
            manifests.append(manifest.to_json())
        assert snapshots[0] == snapshots[1]
        assert manifests[0] == manifests[1]

    def test_other_seed_writes_other_sessions(self, s3_client: Any, new_bucket: str) -> None:
        first = generate_bucket(
            s3_client, new_bucket, days=[DAY_1], sessions_per_day=2, seed=1, tag_bytes=512
        )
        second = generate_bucket(
            s3_client, new_bucket, days=[DAY_1], sessions_per_day=2, seed=2, tag_bytes=512
        )
        assert not set(first.sessions) & set(second.sessions)


class TestEmptyDay:
    def test_day_with_no_sessions_writes_nothing(self, s3_client: Any, new_bucket: str) -> None:
        manifest = generate_bucket(s3_client, new_bucket, days=[DAY_1], sessions_per_day=0)
        assert _keys(s3_client, new_bucket) == []
        assert manifest == Manifest()

    def test_day_left_out_of_a_per_day_count_stays_empty(self, s3_client: Any, new_bucket: str) -> None:
        manifest = generate_bucket(
            s3_client, new_bucket, days=[DAY_1, DAY_2], sessions_per_day={DAY_1: 2}, tag_bytes=512
        )
        assert _keys(s3_client, new_bucket, "2026/11/21/") == []
        assert {session.day for session in manifest.sessions.values()} == {DAY_1.isoformat()}
        assert len(manifest.sessions) == 2


class TestVehicleOffset:
    def test_late_sessions_leave_earlier_ones_untouched(self, s3_client: Any, new_bucket: str) -> None:
        early = generate_bucket(s3_client, new_bucket, days=[DAY_1], sessions_per_day=2, tag_bytes=512)
        before = {key: _md5(_body(s3_client, new_bucket, key)) for key in _keys(s3_client, new_bucket)}
        late = generate_bucket(
            s3_client, new_bucket, days=[DAY_1], sessions_per_day=2, tag_bytes=512, vehicle_offset=2
        )
        after = {key: _md5(_body(s3_client, new_bucket, key)) for key in _keys(s3_client, new_bucket)}
        assert {key: after[key] for key in before} == before
        folders = {key.split("/")[3] for key in after}
        assert folders == set(early.sessions) | set(late.sessions)
        assert len(folders) == 4
        assert {s.vehicle_id for s in late.sessions.values()} == {"veh003", "veh004"}
        assert len(early.merge(late).sessions) == 4


class TestAddAudioTag:
    def test_appends_exactly_one_file_entry_after_uploading_its_wav(
        self, s3_client: Any, new_bucket: str
    ) -> None:
        manifest = generate_bucket(s3_client, new_bucket, prefix=PREFIX, days=[DAY_1], sessions_per_day=1)
        (session,) = manifest.sessions.values()
        before = _report(s3_client, new_bucket, session.report_key)
        recorder = _RecordingClient(s3_client)

        event = add_audio_tag(
            recorder, new_bucket, prefix=PREFIX, day=DAY_1, session_id=session.session_id, seed=5
        )

        after = _report(s3_client, new_bucket, session.report_key)
        assert after["files"][:-1] == before["files"]
        added = after["files"][-1]
        assert added["path"] == "AudioTags/tag_0006.wav"
        assert recorder.puts == [event.key, session.report_key]
        assert event.key == _folder(session.report_key) + added["path"]
        assert (event.time_source, event.event_time, event.frame_id) == (
            "report",
            added["timestamp"],
            added["frame_id"],
        )
        assert before["start_time"] <= event.event_time <= before["end_time"]
        data = _body(s3_client, new_bucket, event.key)
        assert (added["size_bytes"], added["md5"]) == (len(data), _md5(data))
        assert after["upload"]["finished_at"] > before["upload"]["finished_at"]
        assert {k: v for k, v in after.items() if k not in ("files", "upload")} == {
            k: v for k, v in before.items() if k not in ("files", "upload")
        }

    def test_second_tag_takes_the_next_number(self, s3_client: Any, new_bucket: str) -> None:
        manifest = generate_bucket(
            s3_client, new_bucket, days=[DAY_1], sessions_per_day=1, tags_per_session=2
        )
        (session_id,) = manifest.sessions
        keys = [
            add_audio_tag(s3_client, new_bucket, prefix="", day=DAY_1, session_id=session_id, seed=n).key
            for n in range(2)
        ]
        assert [key.rsplit("/", 1)[1] for key in keys] == ["tag_0003.wav", "tag_0004.wav"]


class TestManifest:
    def _manifest(self, session_id: str, relpaths: list[str], kind: str = "md5_mismatch") -> Manifest:
        events = {
            rel: ExpectedEvent(f"{session_id}/{rel}", "report", "2026-11-20T00:00:00.000Z", 1)
            for rel in relpaths
        }
        return Manifest(
            sessions={
                session_id: ExpectedSession(
                    session_id, "2026-11-20", f"{session_id}/r.json", "veh001", events
                )
            },
            rejects=[ExpectedReject(f"{session_id}/x.wav", session_id, kind)],
            deferred=["deferred_sid"],
        )

    def test_merge_unites_the_events_of_a_session_in_both(self) -> None:
        merged = self._manifest("s1", ["a.wav"]).merge(self._manifest("s1", ["b.wav"]))
        assert set(merged.sessions["s1"].events) == {"a.wav", "b.wav"}
        assert len(merged.rejects) == 1
        assert merged.deferred == ["deferred_sid"]

    def test_merge_keeps_sessions_of_both(self) -> None:
        merged = self._manifest("s1", ["a.wav"]).merge(self._manifest("s2", ["a.wav"], kind="file_absent"))
        assert set(merged.sessions) == {"s1", "s2"}
        assert len(merged.rejects) == 2

    def test_json_round_trips(self, generated: tuple[str, Manifest]) -> None:
        _, manifest = generated
        assert Manifest.from_json(manifest.to_json()) == manifest
        assert json.loads(manifest.to_json())["deferred"] == manifest.deferred


class TestValidation:
    @pytest.mark.parametrize(
        "overrides",
        [
            pytest.param({"bad_kinds": ("no_such_kind",)}, id="unknown-bad-kind"),
            pytest.param({"prefix": "raw"}, id="prefix-without-slash"),
            pytest.param({"untimed_share": 1.5}, id="share-above-one"),
            pytest.param({"tag_bytes": 10}, id="wav-smaller-than-header"),
        ],
    )
    def test_bad_arguments_raise_before_any_upload(self, overrides: dict[str, Any]) -> None:
        with pytest.raises(ValueError, match=r"."):
            generate_bucket(None, "unused", **{"days": [DAY_1], **overrides})


class TestCli:
    def _args(self, endpoint: str, bucket: str, *extra: str) -> list[str]:
        return ["--endpoint-url", endpoint, "--bucket", bucket, "--start-date", "2026-11-20", *extra]

    def test_creates_the_bucket_writes_the_manifest_and_prints_a_summary(
        self, s3_endpoint: str, s3_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
    ) -> None:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
        bucket = f"gen-test-{next(_bucket_numbers)}"
        manifest_path = tmp_path / "manifest.json"
        extra = ["--days", "2", "--sessions-per-day", "2", "--bad", "file_absent,incomplete_upload"]
        extra += ["--tag-bytes", "512", "--create-bucket", "--manifest", str(manifest_path)]
        for _ in range(2):  # the second run finds the bucket there
            assert main(self._args(s3_endpoint, bucket, *extra)) == 0

        summary = capsys.readouterr().out.strip().splitlines()
        assert len(summary) == 2
        assert "6 sessions, 29 tags" in summary[0]
        manifest = Manifest.from_json(manifest_path.read_text())
        assert len(manifest.sessions) == 5
        assert [reject.kind for reject in manifest.rejects] == ["file_absent"]
        assert len(manifest.deferred) == 1
        reports = [key for key in _keys(s3_client, bucket) if key.endswith("_Upload_Report.json")]
        assert len(reports) == 6

    def test_unknown_bad_kind_is_a_usage_error(self, s3_endpoint: str, capsys: Any) -> None:
        with pytest.raises(SystemExit) as exit_info:
            main(self._args(s3_endpoint, "unused", "--bad", "nope"))
        assert exit_info.value.code == 2
        assert "unknown bad kinds" in capsys.readouterr().err
