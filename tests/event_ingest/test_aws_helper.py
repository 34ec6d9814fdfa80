"""Tests for event_ingest.aws_helper: AwsHelper against a real S3 server (SeaweedFS ``weed mini``).

The helper reaches the server the way the DAG does: through connection ``event_ingest_s3``, given as an
``AIRFLOW_CONN_*`` environment variable. Buckets are filled with the demo generator, so layouts and
expectations come from the same source as the end-to-end tests.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from event_ingest.aws_helper import AwsHelper, ObjectMissingError, S3AccessError
from event_ingest.data_plane import DATA_PLANES
from event_ingest.files import VerificationError
from event_ingest.model import SessionListing
from event_ingest.report import NotReady, ParsedReport, ReportError
from event_ingest.settings import S3_CONN_ID
from event_ingest.timestamps import normalize
from include import generator
from include.services import SeaweedS3

DAY = dt.date(2026, 11, 20)
NEXT_DAY = dt.date(2026, 11, 21)
EMPTY_DAY = dt.date(2026, 11, 10)
WRONG_SECRET = "wrong-secret-6f1c0d"
PAYLOAD = b"RIFF" + bytes(range(256)) * 16
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()
PAYLOAD_KEY = "2026/11/20/s/AudioTags/tag_0001.wav"
GONE_KEY = "2026/11/20/s/AudioTags/gone.wav"


def new_bucket(seaweed: SeaweedS3) -> str:
    return seaweed.create_bucket(f"t{uuid.uuid4().hex[:12]}")


def helper_for(bucket: str, prefix: str = "", data_plane: str | None = None) -> AwsHelper:
    return AwsHelper(
        aws_conn_id=S3_CONN_ID, bucket=bucket, prefix=prefix, concurrency=4, data_plane=data_plane
    )


def record_calls(helper: AwsHelper, operation: str) -> list[dict[str, Any]]:
    """The request (URL, query string, headers) of each ``operation`` the helper sends from now on."""
    calls: list[dict[str, Any]] = []
    helper.client.meta.events.register(
        f"before-call.s3.{operation}", lambda params, **_: calls.append(params)
    )
    return calls


def parts_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.part"))


def db_time(iso: str | None) -> str | None:
    return normalize(iso) if iso else None


def listing_of(helper: AwsHelper, day: dt.date, session_id: str) -> SessionListing:
    return next(x for x in helper.get_paths_to_available_sessions([day]) if x.session_id == session_id)


def session_of_kind(manifest: generator.Manifest, kind: str) -> str:
    if kind == "incomplete_upload":
        return manifest.deferred[0]
    return next(r.session_id for r in manifest.rejects if r.kind == kind)


@pytest.fixture(autouse=True)
def s3_connection(seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_S3", seaweed.airflow_conn_json())


@pytest.fixture(scope="module")
def client(seaweed: SeaweedS3) -> Any:
    """A plain boto3 client of the server, to arrange and inspect buckets behind the helper's back."""
    return seaweed.client(max_pool_connections=32)


@pytest.fixture
def bucket(seaweed: SeaweedS3) -> str:
    return new_bucket(seaweed)


@pytest.fixture(params=[pytest.param(name, id=name) for name in DATA_PLANES])
def data_plane(request: pytest.FixtureRequest) -> str:
    """Object bodies come through either reader; both must behave the same."""
    return request.param


class TestConnect:
    def test_reaches_an_existing_bucket(self, bucket: str) -> None:
        helper_for(bucket).connect()

    def test_missing_bucket_is_named(self) -> None:
        with pytest.raises(S3AccessError, match="'no-such-bucket-4711' does not exist"):
            helper_for("no-such-bucket-4711").connect()

    def test_wrong_secret_key_is_reported_as_a_credentials_problem(
        self, seaweed: SeaweedS3, bucket: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        conn = json.loads(seaweed.airflow_conn_json())
        monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_S3", json.dumps({**conn, "password": WRONG_SECRET}))
        with pytest.raises(S3AccessError, match="denied: check the credentials") as raised:
            helper_for(bucket).connect()
        assert S3_CONN_ID in str(raised.value)
        assert WRONG_SECRET not in str(raised.value)


@pytest.fixture(scope="module")
def layout_bucket(seaweed: SeaweedS3, client: Any) -> dict[str, Any]:
    """Sessions under two prefixes and two days, among keys that are not sessions.

    Read-only: the tests of the listing share it.
    """
    name = new_bucket(seaweed)
    small = {"tags_per_session": 2, "tag_bytes": 256}
    plain = generator.generate_bucket(
        client, name, days=[DAY, NEXT_DAY], sessions_per_day=2, **small, vehicle_offset=0
    )
    raw = generator.generate_bucket(client, name, prefix="raw/", days=[DAY], sessions_per_day=2, **small)
    strays = [
        "README.md",
        f"{DAY:%Y/%m/%d}/stray.txt",
        f"{DAY:%Y/%m/%d}/",
        # Still uploading: tags are there, the report is not yet.
        f"{DAY:%Y/%m/%d}/20261120T000001Z_veh901/AudioTags/tag_0001.wav",
        # A report one folder too deep, and one named after another session.
        f"{DAY:%Y/%m/%d}/20261120T000002Z_veh902/nested/20261120T000002Z_veh902_logged_Upload_Report.json",
        f"{DAY:%Y/%m/%d}/20261120T000003Z_veh903/20261120T000009Z_veh909_logged_Upload_Report.json",
        f"other/{DAY:%Y/%m/%d}/20261120T000004Z_veh904/20261120T000004Z_veh904_logged_Upload_Report.json",
    ]
    for key in strays:
        client.put_object(Bucket=name, Key=key, Body=b"{}")

    def ids(manifest: generator.Manifest, day: dt.date) -> list[str]:
        return sorted(s.session_id for s in manifest.sessions.values() if s.day == day.isoformat())

    return {
        "bucket": name,
        "client": client,
        "plain": {DAY: ids(plain, DAY), NEXT_DAY: ids(plain, NEXT_DAY)},
        "raw": {DAY: ids(raw, DAY)},
        "manifest": plain,
    }


class TestGetPathsToAvailableSessions:
    @pytest.mark.parametrize(
        ("prefix", "which"),
        [
            pytest.param("", "plain", id="no-prefix"),
            pytest.param("raw/", "raw", id="raw-prefix"),
            pytest.param("raw", "raw", id="prefix-without-slash"),
        ],
    )
    def test_lists_exactly_the_sessions_with_a_report_under_the_prefix(
        self, layout_bucket: dict[str, Any], prefix: str, which: str
    ) -> None:
        listings = list(helper_for(layout_bucket["bucket"], prefix).get_paths_to_available_sessions([DAY]))
        assert [x.session_id for x in listings] == layout_bucket[which][DAY]
        assert {x.day for x in listings} == {DAY.isoformat()}

    def test_lists_only_the_requested_days_in_their_order(self, layout_bucket: dict[str, Any]) -> None:
        helper = helper_for(layout_bucket["bucket"])
        plain = layout_bucket["plain"]
        assert [x.session_id for x in helper.get_paths_to_available_sessions([NEXT_DAY])] == plain[NEXT_DAY]
        both = [x.session_id for x in helper.get_paths_to_available_sessions([NEXT_DAY, DAY])]
        assert both == plain[NEXT_DAY] + plain[DAY]

    def test_empty_day_yields_nothing(self, layout_bucket: dict[str, Any]) -> None:
        assert list(helper_for(layout_bucket["bucket"]).get_paths_to_available_sessions([EMPTY_DAY])) == []

    def test_listing_holds_report_key_etag_and_sizes_of_tags_and_logs(
        self, layout_bucket: dict[str, Any]
    ) -> None:
        session_id = layout_bucket["plain"][DAY][0]
        listing = listing_of(helper_for(layout_bucket["bucket"]), DAY, session_id)
        folder = f"{DAY:%Y/%m/%d}/{session_id}/"
        listed = layout_bucket["client"].list_objects_v2(Bucket=layout_bucket["bucket"], Prefix=folder)
        objects = {item["Key"][len(folder) :]: item for item in listed["Contents"]}
        report = f"{session_id}_logged_Upload_Report.json"
        assert listing.prefix == folder
        assert listing.report_key == folder + report
        assert listing.report_etag == objects[report]["ETag"].strip('"')
        assert listing.objects == {
            path: item["Size"]
            for path, item in objects.items()
            if path.startswith(("AudioTags/", "AV_logs/DisplayLogs/"))
        }
        assert listing.objects, "the session has tags and logs"

    def test_pages_through_a_day_of_more_than_1000_keys(self, client: Any, bucket: str) -> None:
        manifest = generator.generate_bucket(
            client, bucket, days=[DAY], sessions_per_day=2, tags_per_session=1, tag_bytes=128
        )
        first, second = sorted(manifest.sessions)
        # Raw files of the first session push the second one's keys onto the second page.
        frames = [f"{DAY:%Y/%m/%d}/{first}/camera/frame_{n:04d}.jpg" for n in range(1000)]
        with ThreadPoolExecutor(max_workers=32) as pool:
            list(pool.map(lambda key: client.put_object(Bucket=bucket, Key=key, Body=b"j"), frames))
        helper = helper_for(bucket)
        list_calls = record_calls(helper, "ListObjectsV2")
        listings = list(helper.get_paths_to_available_sessions([DAY]))
        assert [x.session_id for x in listings] == [first, second]
        assert len(list_calls) == 2
        assert all(call["query_string"]["prefix"] == f"{DAY:%Y/%m/%d}/" for call in list_calls)
        for listing in listings:
            tags = {path for path in listing.objects if path.startswith("AudioTags/")}
            assert tags == set(manifest.sessions[listing.session_id].events)
            assert not any(path.startswith("camera/") for path in listing.objects)


@pytest.fixture(scope="module")
def sessions_bucket(seaweed: SeaweedS3, client: Any) -> dict[str, Any]:
    """One good session whose untimed tags half resolve from the display logs, and bad sessions.

    Read-only: tests that change objects make their own bucket.
    """
    name = new_bucket(seaweed)
    manifest = generator.generate_bucket(
        client,
        name,
        days=[DAY],
        sessions_per_day=1,
        tags_per_session=4,
        untimed_share=1.0,
        unlogged_share=0.5,
        bad_kinds=["non_utf8_display_log", "malformed_json", "missing_fields", "incomplete_upload"],
        tag_bytes=512,
    )
    bad = {r.session_id for r in manifest.rejects} | set(manifest.deferred)
    good = next(sid for sid in manifest.sessions if sid not in bad)
    return {"bucket": name, "manifest": manifest, "good": good}


def assert_events_as_expected(parsed: ParsedReport, expected: generator.ExpectedSession) -> None:
    events = {e.relpath: e for e in parsed.session.events}
    assert set(events) == set(expected.events)
    for relpath, want in expected.events.items():
        assert events[relpath].time_source == want.time_source, relpath
        assert events[relpath].event_time == db_time(want.event_time), relpath
        assert events[relpath].frame_id == want.frame_id


class TestCreateSessionFromPath:
    def test_times_come_from_the_display_logs_and_unlogged_frames_stay_unresolved(
        self, sessions_bucket: dict[str, Any], tmp_path: Path
    ) -> None:
        helper = helper_for(sessions_bucket["bucket"])
        good = sessions_bucket["good"]
        expected = sessions_bucket["manifest"].sessions[good]
        parsed = helper.create_session_from_path(listing_of(helper, DAY, good), tmp_path)
        assert_events_as_expected(parsed, expected)
        sources = sorted(e.time_source for e in parsed.session.events)
        assert sources == ["display_log", "display_log", "unresolved", "unresolved"]
        assert parsed.rejects == []

    def test_non_utf8_display_log_is_rejected_and_its_frames_stay_unresolved(
        self, sessions_bucket: dict[str, Any], tmp_path: Path
    ) -> None:
        helper = helper_for(sessions_bucket["bucket"])
        manifest = sessions_bucket["manifest"]
        session_id = session_of_kind(manifest, "non_utf8_display_log")
        parsed = helper.create_session_from_path(listing_of(helper, DAY, session_id), tmp_path)
        assert_events_as_expected(parsed, manifest.sessions[session_id])
        log_key = next(r.object_key for r in manifest.rejects if r.kind == "non_utf8_display_log")
        assert [(r.object_key, r.session_id) for r in parsed.rejects] == [(log_key, session_id)]
        assert "not UTF-8" in parsed.rejects[0].reason
        assert any(e.time_source == "unresolved" for e in parsed.session.events)

    def test_saves_the_report_atomically_under_the_data_dir(
        self, client: Any, sessions_bucket: dict[str, Any], tmp_path: Path
    ) -> None:
        helper = helper_for(sessions_bucket["bucket"])
        good = sessions_bucket["good"]
        listing = listing_of(helper, DAY, good)
        helper.create_session_from_path(listing, tmp_path)
        saved = tmp_path / "2026" / "11" / "20" / good / f"{good}_logged_Upload_Report.json"
        remote = client.get_object(Bucket=sessions_bucket["bucket"], Key=listing.report_key)
        assert saved.read_bytes() == remote["Body"].read()
        assert parts_under(tmp_path) == []
        assert {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()} == {
            saved.relative_to(tmp_path)
        }

    def test_a_saved_report_that_verifies_is_kept_and_a_wrong_one_replaced(
        self, sessions_bucket: dict[str, Any], tmp_path: Path
    ) -> None:
        helper = helper_for(sessions_bucket["bucket"])
        good = sessions_bucket["good"]
        listing = listing_of(helper, DAY, good)
        helper.create_session_from_path(listing, tmp_path)
        saved = tmp_path / "2026" / "11" / "20" / good / f"{good}_logged_Upload_Report.json"
        right = saved.read_bytes()
        first = saved.stat()
        helper.create_session_from_path(listing, tmp_path)
        assert (saved.stat().st_ino, saved.stat().st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
        saved.write_bytes(b"x" * len(right))
        helper.create_session_from_path(listing, tmp_path)
        assert saved.read_bytes() == right

    def test_local_report_path_leaves_the_prefix_out(
        self, layout_bucket: dict[str, Any], tmp_path: Path
    ) -> None:
        helper = helper_for(layout_bucket["bucket"], "raw/")
        session_id = layout_bucket["raw"][DAY][0]
        parsed = helper.create_session_from_path(listing_of(helper, DAY, session_id), tmp_path)
        assert parsed.session.report_key.startswith(f"raw/{DAY:%Y/%m/%d}/{session_id}/")
        assert all(e.s3_key.startswith("raw/") for e in parsed.session.events)
        saved = [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()]
        assert saved == [f"{DAY:%Y/%m/%d}/{session_id}/{session_id}_logged_Upload_Report.json"]

    def test_without_data_dir_nothing_is_written(
        self, sessions_bucket: dict[str, Any], tmp_path: Path
    ) -> None:
        helper = helper_for(sessions_bucket["bucket"])
        listing = listing_of(helper, DAY, sessions_bucket["good"])
        parsed = helper.create_session_from_path(listing)
        assert parsed.session.session_id == sessions_bucket["good"]
        assert list(tmp_path.iterdir()) == []

    @pytest.mark.parametrize(
        ("kind", "error", "message"),
        [
            pytest.param("malformed_json", ReportError, "malformed JSON", id="malformed-json"),
            pytest.param("missing_fields", ReportError, "vehicle_id", id="missing-fields"),
            pytest.param("incomplete_upload", NotReady, "in_progress", id="incomplete-upload"),
        ],
    )
    def test_unusable_report_raises_and_saves_nothing(
        self,
        sessions_bucket: dict[str, Any],
        tmp_path: Path,
        kind: str,
        error: type[Exception],
        message: str,
    ) -> None:
        helper = helper_for(sessions_bucket["bucket"])
        listing = listing_of(helper, DAY, session_of_kind(sessions_bucket["manifest"], kind))
        with pytest.raises(error, match=message):
            helper.create_session_from_path(listing, tmp_path)
        assert list(tmp_path.iterdir()) == []


@pytest.fixture
def payload_bucket(client: Any, bucket: str) -> str:
    client.put_object(Bucket=bucket, Key=PAYLOAD_KEY, Body=PAYLOAD)
    return bucket


class TestDownloadFile:
    def test_downloads_and_verifies(self, payload_bucket: str, data_plane: str, tmp_path: Path) -> None:
        local = tmp_path / "s" / "AudioTags" / "tag_0001.wav"
        helper = helper_for(payload_bucket, data_plane=data_plane)
        assert helper.download_file(PAYLOAD_KEY, local, size=len(PAYLOAD), md5=PAYLOAD_MD5) is True
        assert local.read_bytes() == PAYLOAD
        assert parts_under(tmp_path) == []

    @pytest.mark.parametrize(
        "md5", [pytest.param(PAYLOAD_MD5, id="with-md5"), pytest.param(None, id="size-only")]
    )
    def test_skips_a_verified_local_file_without_a_get(
        self, client: Any, payload_bucket: str, data_plane: str, tmp_path: Path, md5: str | None
    ) -> None:
        local = tmp_path / "tag.wav"
        local.write_bytes(PAYLOAD)
        helper = helper_for(payload_bucket, data_plane=data_plane)
        gets = record_calls(helper, "GetObject")
        # With the object gone, any GET would fail: returning False proves none was sent.
        client.delete_object(Bucket=payload_bucket, Key=PAYLOAD_KEY)
        assert helper.download_file(PAYLOAD_KEY, local, size=len(PAYLOAD), md5=md5) is False
        assert gets == []
        assert local.read_bytes() == PAYLOAD

    @pytest.mark.parametrize(
        "wrong",
        [
            pytest.param(PAYLOAD[::-1], id="same-size-other-bytes"),
            pytest.param(PAYLOAD[:100], id="truncated"),
            pytest.param(PAYLOAD + b"tail", id="too-long"),
        ],
    )
    def test_replaces_a_wrong_local_file(
        self, payload_bucket: str, data_plane: str, tmp_path: Path, wrong: bytes
    ) -> None:
        local = tmp_path / "tag.wav"
        local.write_bytes(wrong)
        helper = helper_for(payload_bucket, data_plane=data_plane)
        assert helper.download_file(PAYLOAD_KEY, local, size=len(PAYLOAD), md5=PAYLOAD_MD5) is True
        assert local.read_bytes() == PAYLOAD
        assert parts_under(tmp_path) == []

    @pytest.mark.parametrize(
        ("size", "md5", "message"),
        [
            pytest.param(len(PAYLOAD) + 1, PAYLOAD_MD5, "size mismatch", id="size"),
            pytest.param(len(PAYLOAD), "0" * 32, "md5 mismatch", id="md5"),
        ],
    )
    def test_mismatch_raises_and_leaves_nothing_at_the_final_path(
        self, payload_bucket: str, data_plane: str, tmp_path: Path, size: int, md5: str, message: str
    ) -> None:
        local = tmp_path / "tag.wav"
        helper = helper_for(payload_bucket, data_plane=data_plane)
        with pytest.raises(VerificationError, match=message):
            helper.download_file(PAYLOAD_KEY, local, size=size, md5=md5)
        assert not local.exists()
        assert parts_under(tmp_path) == []

    def test_missing_key_raises_object_missing(self, bucket: str, data_plane: str, tmp_path: Path) -> None:
        local = tmp_path / "tag.wav"
        helper = helper_for(bucket, data_plane=data_plane)
        with pytest.raises(ObjectMissingError, match=re.escape(GONE_KEY)):
            helper.download_file(GONE_KEY, local, size=1, md5=None)
        assert not local.exists()
        assert parts_under(tmp_path) == []


@pytest.fixture
def tagged_session(client: Any, bucket: str, data_plane: str) -> dict[str, Any]:
    """A bucket with one parsed session of four audio tags, all timed in the report."""
    manifest = generator.generate_bucket(
        client,
        bucket,
        days=[DAY],
        sessions_per_day=1,
        tags_per_session=4,
        untimed_share=0.0,
        tag_bytes=512,
    )
    (session_id,) = manifest.sessions
    helper = helper_for(bucket, data_plane=data_plane)
    parsed = helper.create_session_from_path(listing_of(helper, DAY, session_id))
    return {"helper": helper, "session": parsed.session, "client": client, "bucket": bucket}


class TestGetAudioTagsFromSessionLocally:
    def test_downloads_every_tag_and_sets_its_local_path(
        self, tagged_session: dict[str, Any], tmp_path: Path
    ) -> None:
        session = tagged_session["session"]
        rejects = tagged_session["helper"].get_audio_tags_from_session_locally([session], tmp_path)
        assert rejects == []
        assert len(session.events) == 4
        for event in session.events:
            local = Path(event.local_path)
            assert local == tmp_path / "2026" / "11" / "20" / session.session_id / event.relpath
            assert hashlib.md5(local.read_bytes()).hexdigest() == event.md5
            assert local.stat().st_size == event.size_bytes

    def test_bad_tags_are_rejected_and_leave_their_session(
        self, tagged_session: dict[str, Any], tmp_path: Path
    ) -> None:
        session = tagged_session["session"]
        client, bucket = tagged_session["client"], tagged_session["bucket"]
        good, gone, tampered, grown = session.events
        client.delete_object(Bucket=bucket, Key=gone.s3_key)
        body = client.get_object(Bucket=bucket, Key=tampered.s3_key)["Body"].read()
        client.put_object(Bucket=bucket, Key=tampered.s3_key, Body=body[::-1])
        client.put_object(Bucket=bucket, Key=grown.s3_key, Body=body + b"more")

        rejects = tagged_session["helper"].get_audio_tags_from_session_locally([session], tmp_path)

        reasons = {r.object_key: r.reason for r in rejects}
        assert set(reasons) == {gone.s3_key, tampered.s3_key, grown.s3_key}
        assert "not in the bucket" in reasons[gone.s3_key]
        # Replaced after the listing: refused by ETag (If-Match) before any byte is compared.
        assert "changed since it was listed" in reasons[tampered.s3_key]
        assert "changed since it was listed" in reasons[grown.s3_key]
        assert all(r.session_id == session.session_id for r in rejects)
        assert all(r.reason.startswith("audio tag: ") for r in rejects)
        assert session.events == [good]
        assert Path(str(good.local_path)).is_file()
        session_dir = tmp_path / "2026" / "11" / "20" / session.session_id
        assert sorted(p.name for p in session_dir.rglob("*") if p.is_file()) == ["tag_0001.wav"]
        assert [e.local_path for e in (gone, tampered, grown)] == [None, None, None]

    def test_no_sessions_no_work(self, bucket: str, tmp_path: Path) -> None:
        assert helper_for(bucket).get_audio_tags_from_session_locally([], tmp_path) == []
        assert list(tmp_path.iterdir()) == []
