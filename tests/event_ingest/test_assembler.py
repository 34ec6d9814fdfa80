"""Tests for event_ingest.assembler: one session at a time, in its bulkhead (SeaweedFS; moto for odd keys).

Whatever a session's data holds, the assembler gives a parsed report, a reject or a deferral; only a
fault of the infrastructure escapes. Buckets are filled with the demo generator.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from event_ingest import layout
from event_ingest.assembler import SessionAssembler, guard
from event_ingest.errors import ReportError, S3AccessError
from event_ingest.model import Deferral, Reject, Session, SessionListing
from event_ingest.report import ParsedReport
from event_ingest.settings import S3_CONN_ID
from event_ingest.source import S3Source
from event_ingest.timestamps import normalize
from include import generator
from tools.services import MotoS3, SeaweedS3

DAY = dt.date(2026, 11, 20)
AUDIO = frozenset({"audio_tag"})


def new_bucket(server: SeaweedS3 | MotoS3) -> str:
    return server.create_bucket(f"t{uuid.uuid4().hex[:12]}")


def assembler_for(
    bucket: str, data_dir: Path, prefix: str = "", data_plane: str | None = None
) -> SessionAssembler:
    source = S3Source(
        aws_conn_id=S3_CONN_ID, bucket=bucket, prefix=prefix, concurrency=4, data_plane=data_plane
    )
    return SessionAssembler(source, data_dir, file_types=AUDIO)


def parts_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.part"))


def db_time(iso: str | None) -> str | None:
    return normalize(iso) if iso else None


def listing_of(assembler: SessionAssembler, session_id: str, day: dt.date = DAY) -> SessionListing:
    return next(x for x in assembler.source.list_day(day) if x.session_id == session_id)


def session_of_kind(manifest: generator.Manifest, kind: str) -> str:
    if kind == "incomplete_upload":
        return manifest.deferred[0]
    return next(r.session_id for r in manifest.rejects if r.kind == kind)


def parsed(outcome: ParsedReport | Reject | Deferral) -> ParsedReport:
    assert isinstance(outcome, ParsedReport), outcome
    return outcome


@pytest.fixture(autouse=True)
def s3_connection(seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_S3", seaweed.airflow_conn_json())


@pytest.fixture(scope="module")
def client(seaweed: SeaweedS3) -> Any:
    return seaweed.client(max_pool_connections=32)


@pytest.fixture
def bucket(seaweed: SeaweedS3) -> str:
    return new_bucket(seaweed)


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


class TestAssemble:
    def test_times_come_from_the_display_logs_and_unlogged_frames_stay_unresolved(
        self, sessions_bucket: dict[str, Any], tmp_path: Path
    ) -> None:
        assembler = assembler_for(sessions_bucket["bucket"], tmp_path)
        good = sessions_bucket["good"]
        report = parsed(assembler.assemble(listing_of(assembler, good)))
        assert_events_as_expected(report, sessions_bucket["manifest"].sessions[good])
        sources = sorted(e.time_source for e in report.session.events)
        assert sources == ["display_log", "display_log", "unresolved", "unresolved"]
        assert report.rejects == []

    def test_a_non_utf8_display_log_is_rejected_and_gives_no_times(
        self, sessions_bucket: dict[str, Any], tmp_path: Path
    ) -> None:
        assembler = assembler_for(sessions_bucket["bucket"], tmp_path)
        manifest = sessions_bucket["manifest"]
        session_id = session_of_kind(manifest, "non_utf8_display_log")
        report = parsed(assembler.assemble(listing_of(assembler, session_id)))
        assert_events_as_expected(report, manifest.sessions[session_id])
        log_key = next(r.object_key for r in manifest.rejects if r.kind == "non_utf8_display_log")
        assert [(r.object_key, r.session_id, r.day) for r in report.rejects] == [
            (log_key, session_id, "2026-11-20")
        ]
        assert report.rejects[0].reason.startswith("display log: ")
        assert "not UTF-8" in report.rejects[0].reason
        assert any(e.time_source == "unresolved" for e in report.session.events)

    def test_saves_the_report_atomically_under_the_data_dir(
        self, client: Any, sessions_bucket: dict[str, Any], tmp_path: Path
    ) -> None:
        assembler = assembler_for(sessions_bucket["bucket"], tmp_path)
        good = sessions_bucket["good"]
        listing = listing_of(assembler, good)
        assembler.assemble(listing)
        saved = tmp_path / "2026" / "11" / "20" / good / f"{good}_logged_Upload_Report.json"
        remote = client.get_object(Bucket=sessions_bucket["bucket"], Key=listing.report_key)
        assert saved.read_bytes() == remote["Body"].read()
        assert parts_under(tmp_path) == []
        assert [p for p in tmp_path.rglob("*") if p.is_file()] == [saved]

    def test_a_saved_report_that_verifies_is_kept_and_a_wrong_one_replaced(
        self, sessions_bucket: dict[str, Any], tmp_path: Path
    ) -> None:
        assembler = assembler_for(sessions_bucket["bucket"], tmp_path)
        good = sessions_bucket["good"]
        listing = listing_of(assembler, good)
        assembler.assemble(listing)
        saved = tmp_path / "2026" / "11" / "20" / good / f"{good}_logged_Upload_Report.json"
        right = saved.read_bytes()
        first = saved.stat()
        assembler.assemble(listing)
        assert (saved.stat().st_ino, saved.stat().st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
        saved.write_bytes(b"x" * len(right))
        assembler.assemble(listing)
        assert saved.read_bytes() == right

    @pytest.mark.parametrize(
        ("kind", "message"),
        [
            pytest.param("malformed_json", "report: malformed JSON", id="malformed-json"),
            pytest.param(
                "missing_fields", "report: report misses required field 'vehicle_id'", id="missing-fields"
            ),
        ],
    )
    def test_an_unusable_report_is_a_reject_and_saves_nothing(
        self, sessions_bucket: dict[str, Any], tmp_path: Path, kind: str, message: str
    ) -> None:
        assembler = assembler_for(sessions_bucket["bucket"], tmp_path)
        listing = listing_of(assembler, session_of_kind(sessions_bucket["manifest"], kind))
        outcome = assembler.assemble(listing)
        assert isinstance(outcome, Reject)
        assert (outcome.object_key, outcome.session_id, outcome.day) == (
            listing.report_key,
            listing.session_id,
            "2026-11-20",
        )
        assert outcome.reason.startswith(message)
        assert list(tmp_path.iterdir()) == []

    def test_an_unfinished_upload_is_deferred(self, sessions_bucket: dict[str, Any], tmp_path: Path) -> None:
        assembler = assembler_for(sessions_bucket["bucket"], tmp_path)
        listing = listing_of(assembler, session_of_kind(sessions_bucket["manifest"], "incomplete_upload"))
        assert assembler.assemble(listing) == Deferral(
            listing.session_id, listing.day, listing.report_key, "upload status is 'in_progress'"
        )

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            pytest.param(
                {"earlier_day": "2026-11-19"},
                "report: session id already found under 2026-11-19",
                id="later-folder",
            ),
            pytest.param({"report_size": 65 << 20}, "report: report is 68157440 bytes", id="report-too-big"),
        ],
    )
    def test_what_the_listing_says_can_reject_a_session_unread(
        self, sessions_bucket: dict[str, Any], tmp_path: Path, change: dict[str, Any], message: str
    ) -> None:
        assembler = assembler_for(sessions_bucket["bucket"], tmp_path)
        listing = replace(listing_of(assembler, sessions_bucket["good"]), **change)
        outcome = assembler.assemble(replace(listing, report_key="a key that is not there"))
        assert isinstance(outcome, Reject)
        assert outcome.reason.startswith(message)

    def test_an_audio_tag_the_report_puts_outside_audiotags_is_found(
        self, client: Any, bucket: str, tmp_path: Path
    ) -> None:
        folder = f"{DAY:%Y/%m/%d}/s1/"
        client.put_object(Bucket=bucket, Key=folder + "memos/first.mp3", Body=b"w" * 10)
        report = {
            "session_id": "s1",
            "vehicle_id": "v",
            "start_time": "2026-11-20T10:00:00Z",
            "files": [
                {"path": "memos/first.mp3", "type": "audio_tag", "size_bytes": 10},
                {"path": "memos/never-uploaded.mp3", "type": "audio_tag"},
            ],
        }
        client.put_object(
            Bucket=bucket, Key=folder + "s1_logged_Upload_Report.json", Body=json.dumps(report).encode()
        )
        assembler = assembler_for(bucket, tmp_path)

        report_out = parsed(assembler.assemble(listing_of(assembler, "s1")))

        ((event,), (reject,)) = report_out.session.events, report_out.rejects
        assert (event.relpath, event.size_bytes) == ("memos/first.mp3", 10)
        assert event.etag
        assert reject.object_key == folder + "memos/never-uploaded.mp3"
        assert "absent from the bucket" in reject.reason

    def test_a_fault_of_the_bucket_is_raised_not_rejected(
        self,
        seaweed: SeaweedS3,
        sessions_bucket: dict[str, Any],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        listing = listing_of(assembler_for(sessions_bucket["bucket"], tmp_path), sessions_bucket["good"])
        conn = json.loads(seaweed.airflow_conn_json())
        monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_S3", json.dumps({**conn, "password": "refused-secret"}))
        with pytest.raises(ClientError, match=r"SignatureDoesNotMatch|AccessDenied|InvalidAccessKeyId"):
            assembler_for(sessions_bucket["bucket"], tmp_path, data_plane="boto3").assemble(listing)


class TestAssembleOddKeys:
    """Keys SeaweedFS normalises or refuses, on moto: any key S3 accepts is input."""

    @pytest.fixture(scope="class")
    def moto(self) -> Any:
        with MotoS3() as server:
            yield server

    @pytest.mark.parametrize(
        ("session_id", "outcome"),
        [
            pytest.param("tab\there", "loaded", id="control-character"),
            pytest.param("a\\b", "loaded", id="backslash"),
            pytest.param("nul\x00here", "U+0000", id="nul"),
            pytest.param("..", "cannot name a folder", id="dot-dot"),
            pytest.param("é" * 246, "loaded", id="longest-id-with-a-report"),
        ],
    )
    def test_any_folder_name_ends_loaded_or_rejected_with_a_reason(
        self, moto: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session_id: str, outcome: str
    ) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_S3", moto.airflow_conn_json())
        bucket = new_bucket(moto)
        folder = f"{DAY:%Y/%m/%d}/{session_id}/"
        report = {
            "session_id": session_id,
            "vehicle_id": "v",
            "start_time": "2026-11-20T10:00:00Z",
            "files": [],
        }
        moto.client().put_object(
            Bucket=bucket,
            Key=f"{folder}{session_id}_logged_Upload_Report.json",
            Body=json.dumps(report).encode(),
        )
        assembler = assembler_for(bucket, tmp_path)
        (listing,) = assembler.source.list_day(DAY)

        result = assembler.assemble(listing)

        if outcome == "loaded":
            assert parsed(result).session.session_id == session_id
            (saved,) = [p for p in tmp_path.rglob("*") if p.is_file()]
            assert all(len(part.encode()) <= layout.NAME_MAX for part in saved.parts)
        else:
            assert isinstance(result, Reject)
            assert outcome in result.reason
            assert list(tmp_path.iterdir()) == []


class TestGuard:
    @pytest.mark.parametrize(
        ("error", "reason"),
        [
            pytest.param(ReportError("malformed JSON"), "report: malformed JSON", id="ours-without-its-kind"),
            pytest.param(
                RecursionError("too deep"), "report: RecursionError: too deep", id="foreign-with-its-kind"
            ),
            pytest.param(
                OSError(errno.ENAMETOOLONG, "name too long"),
                "report: OSError: [Errno 36] name too long",
                id="name-too-long",
            ),
            pytest.param(
                ValueError("bad \ud800 \x1b[31m"),
                "report: ValueError: bad \\ud800 \\x1b[31m",
                id="unprintable-message",
            ),
        ],
    )
    def test_data_errors_become_a_reject_with_a_printable_reason(self, error: Exception, reason: str) -> None:
        def fail() -> None:
            raise error

        assert guard(fail, object_key="k", session_id="s", day="2026-11-20", what="report") == Reject(
            "k", "s", reason, "2026-11-20"
        )

    @pytest.mark.parametrize(
        "error",
        [
            pytest.param(OSError(errno.ENOSPC, "disk full"), id="disk-full"),
            pytest.param(MemoryError(), id="out-of-memory"),
            pytest.param(S3AccessError("bucket 'x' does not exist"), id="bucket-gone"),
            pytest.param(TimeoutError(), id="timeout"),
        ],
    )
    def test_faults_escape(self, error: Exception) -> None:
        def fail() -> None:
            raise error

        with pytest.raises(type(error)):
            guard(fail, object_key="k", session_id="s", day=None, what="report")


@pytest.fixture
def tagged_session(client: Any, bucket: str, tmp_path: Path) -> dict[str, Any]:
    """A bucket with one parsed session of four audio tags, all timed in the report."""
    manifest = generator.generate_bucket(
        client, bucket, days=[DAY], sessions_per_day=1, tags_per_session=4, untimed_share=0.0, tag_bytes=512
    )
    (session_id,) = manifest.sessions
    assembler = assembler_for(bucket, tmp_path / "data")
    report = parsed(assembler.assemble(listing_of(assembler, session_id)))
    return {"assembler": assembler, "session": report.session, "client": client, "bucket": bucket}


def download_all(assembler: SessionAssembler, session: Any) -> list[Reject]:
    jobs, rejects = assembler.plan_downloads(session)
    return rejects + [r for r in map(assembler.download, jobs) if r is not None]


class TestDownloads:
    def test_downloads_every_tag_and_records_where_it_went(self, tagged_session: dict[str, Any]) -> None:
        assembler, session = tagged_session["assembler"], tagged_session["session"]
        assert download_all(assembler, session) == []
        for event in session.events:
            local = Path(event.local_path)
            assert local == assembler.data_dir / "2026" / "11" / "20" / session.session_id / event.relpath
            assert hashlib.md5(local.read_bytes()).hexdigest() == event.md5
            assert local.stat().st_size == event.size_bytes

    def test_bad_tags_are_rejected_one_by_one(self, tagged_session: dict[str, Any]) -> None:
        assembler, session = tagged_session["assembler"], tagged_session["session"]
        client, bucket = tagged_session["client"], tagged_session["bucket"]
        good, gone, tampered, grown = session.events
        client.delete_object(Bucket=bucket, Key=gone.s3_key)
        body = client.get_object(Bucket=bucket, Key=tampered.s3_key)["Body"].read()
        client.put_object(Bucket=bucket, Key=tampered.s3_key, Body=body[::-1])
        client.put_object(Bucket=bucket, Key=grown.s3_key, Body=body + b"more")

        rejects = download_all(assembler, session)

        reasons = {r.object_key: r.reason for r in rejects}
        assert set(reasons) == {gone.s3_key, tampered.s3_key, grown.s3_key}
        assert "not in the bucket" in reasons[gone.s3_key]
        # Replaced after the listing: refused by ETag (If-Match) before any byte is compared.
        assert "changed since it was listed" in reasons[tampered.s3_key]
        assert "changed since it was listed" in reasons[grown.s3_key]
        assert all(r.session_id == session.session_id and r.reason.startswith("audio tag: ") for r in rejects)
        assert Path(str(good.local_path)).is_file()
        assert [e.local_path for e in (gone, tampered, grown)] == [None, None, None]
        assert parts_under(assembler.data_dir) == []

    def test_a_file_and_a_folder_of_the_same_name_reject_one_and_keep_the_other(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with MotoS3() as moto:  # SeaweedFS cannot hold a key that is also a folder of other keys
            monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_S3", moto.airflow_conn_json())
            bucket = new_bucket(moto)
            folder = f"{DAY:%Y/%m/%d}/s1/"
            paths = ["AudioTags/a.wav", "AudioTags/a.wav/inner.wav"]
            for path in paths:
                moto.client().put_object(Bucket=bucket, Key=folder + path, Body=b"w" * 3)
            report = {
                "session_id": "s1",
                "vehicle_id": "v",
                "start_time": "2026-11-20T10:00:00Z",
                "files": [{"path": path, "type": "audio_tag"} for path in paths],
            }
            moto.client().put_object(
                Bucket=bucket, Key=folder + "s1_logged_Upload_Report.json", Body=json.dumps(report).encode()
            )
            assembler = assembler_for(bucket, tmp_path)
            session = parsed(assembler.assemble(listing_of(assembler, "s1"))).session

            (reject,) = download_all(assembler, session)

        loaded = [e for e in session.events if e.local_path]
        assert [e.s3_key for e in loaded] + [reject.object_key] != []
        assert {e.s3_key for e in loaded} | {reject.object_key} == {folder + p for p in paths}
        assert reject.reason.startswith("audio tag: ")
        assert Path(str(loaded[0].local_path)).read_bytes() == b"www"

    @pytest.mark.parametrize(
        ("length", "hashed"),
        [pytest.param(250, False, id="at-the-limit"), pytest.param(300, True, id="beyond-it")],
    )
    def test_a_name_too_long_for_the_file_system_is_stored_under_a_hashed_name(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, length: int, hashed: bool
    ) -> None:
        relpath = "AudioTags/" + "t" * (length - 4) + ".wav"
        folder = f"{DAY:%Y/%m/%d}/s1/"
        report = {
            "session_id": "s1",
            "vehicle_id": "v",
            "start_time": "2026-11-20T10:00:00Z",
            "files": [{"path": relpath, "type": "audio_tag", "md5": hashlib.md5(b"w" * 7).hexdigest()}],
        }
        with MotoS3() as moto:  # SeaweedFS refuses names over 255 bytes; S3 does not
            monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_S3", moto.airflow_conn_json())
            bucket = new_bucket(moto)
            moto.client().put_object(Bucket=bucket, Key=folder + relpath, Body=b"w" * 7)
            moto.client().put_object(
                Bucket=bucket, Key=folder + "s1_logged_Upload_Report.json", Body=json.dumps(report).encode()
            )
            assembler = assembler_for(bucket, tmp_path)
            session = parsed(assembler.assemble(listing_of(assembler, "s1"))).session

            assert download_all(assembler, session) == []

        local = Path(str(session.events[0].local_path))
        assert local.read_bytes() == b"w" * 7
        name = relpath.split("/")[1]
        assert local.name == layout.local_name(name)
        assert (local.name != name) is hashed
        assert parts_under(tmp_path) == []

    def test_no_files_no_work(self, bucket: str, tmp_path: Path) -> None:
        assembler = assembler_for(bucket, tmp_path)
        session = Session("s", "v", None, "2026-11-20 10:00:00.000", None, "2026-11-20", None, "k", "e")
        assert assembler.plan_downloads(session) == ([], [])
        assert list(tmp_path.iterdir()) == []
