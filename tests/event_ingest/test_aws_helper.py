"""Tests for event_ingest.aws_helper: the old job's names still do their job, on SeaweedFS.

Each method delegates to S3Source or SessionAssembler, which have suites of their own
(``test_source.py``, ``test_assembler.py``); these tests hold the names to what the old job's users
call them for.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from pathlib import Path
from typing import Any

import pytest

from event_ingest import AwsHelper
from event_ingest.errors import NotReady, ObjectMissingError, S3AccessError
from event_ingest.model import Deferral, Reject
from event_ingest.report import ParsedReport
from include import generator
from tools.services import SeaweedS3

DAY = dt.date(2026, 11, 20)


@pytest.fixture(autouse=True)
def s3_connection(seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_S3", seaweed.airflow_conn_json())


@pytest.fixture(scope="module")
def seeded(seaweed: SeaweedS3) -> dict[str, Any]:
    """Two good sessions and an unfinished upload; read-only."""
    client = seaweed.client()
    bucket = seaweed.create_bucket(f"t{uuid.uuid4().hex[:12]}")
    manifest = generator.generate_bucket(
        client,
        bucket,
        days=[DAY],
        sessions_per_day=2,
        tags_per_session=2,
        tag_bytes=256,
        bad_kinds=["incomplete_upload", "malformed_json"],
    )
    return {"bucket": bucket, "manifest": manifest, "client": client}


def helper(seeded: dict[str, Any]) -> AwsHelper:
    return AwsHelper(bucket=seeded["bucket"], concurrency=4)


class TestOldNames:
    def test_connect_names_a_missing_bucket(self) -> None:
        with pytest.raises(S3AccessError, match="does not exist"):
            AwsHelper(bucket="no-such-bucket-4711").connect()

    def test_get_paths_to_available_sessions_yields_the_listings_of_the_days(
        self, seeded: dict[str, Any]
    ) -> None:
        listings = list(helper(seeded).get_paths_to_available_sessions([DAY, dt.date(2026, 11, 21)]))
        manifest = seeded["manifest"]
        rejected = {r.session_id for r in manifest.rejects}
        assert {x.session_id for x in listings} == set(manifest.sessions) | set(manifest.deferred) | rejected

    def test_report_and_metadata_of_a_session(self, seeded: dict[str, Any]) -> None:
        aws = helper(seeded)
        listings = {x.session_id: x for x in aws.get_paths_to_available_sessions([DAY])}
        good = listings[sorted(seeded["manifest"].sessions)[0]]
        raw = aws._get_session_report(good)
        assert raw == seeded["client"].get_object(Bucket=seeded["bucket"], Key=good.report_key)["Body"].read()
        assert aws._get_session_metadata(good).session.session_id == good.session_id
        with pytest.raises(NotReady):
            aws._get_session_metadata(listings[seeded["manifest"].deferred[0]])

    def test_create_session_from_path_gives_a_session_a_reject_or_a_deferral(
        self, seeded: dict[str, Any], tmp_path: Path
    ) -> None:
        aws = helper(seeded)
        manifest = seeded["manifest"]
        outcomes = {
            x.session_id: aws.create_session_from_path(x, tmp_path)
            for x in aws.get_paths_to_available_sessions([DAY])
        }
        assert all(isinstance(outcomes[sid], ParsedReport) for sid in manifest.sessions)
        assert isinstance(outcomes[manifest.deferred[0]], Deferral)
        assert isinstance(outcomes[manifest.rejects[0].session_id], Reject)

    def test_download_file_and_the_audio_tags_of_sessions(
        self, seeded: dict[str, Any], tmp_path: Path
    ) -> None:
        aws = helper(seeded)
        manifest = seeded["manifest"]
        listing = next(
            x for x in aws.get_paths_to_available_sessions([DAY]) if x.session_id in manifest.sessions
        )
        report = aws.create_session_from_path(listing, tmp_path)
        assert isinstance(report, ParsedReport)
        session = report.session

        assert aws.get_audio_tags_from_session_locally([session], tmp_path) == []

        event = session.events[0]
        assert Path(str(event.local_path)).stat().st_size == event.size_bytes
        again = tmp_path / "copy.wav"
        assert aws.download_file(event.s3_key, again, size=event.size_bytes, md5=event.md5, etag=event.etag)
        assert hashlib.md5(again.read_bytes()).hexdigest() == event.md5
        with pytest.raises(ObjectMissingError):
            aws.download_file("gone.wav", tmp_path / "gone.wav", size=1)
