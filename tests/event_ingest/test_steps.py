"""Tests for event_ingest.steps: the five steps of a run over a batch, on SeaweedFS and SQLite.

The bucket is filled by the demo generator, whose manifest says what each step must make of it. Between
steps a batch goes through its XCom form (JSON of ``Batch.to_dict()``), as it does between tasks.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from event_ingest import steps
from event_ingest.aws_helper import AwsHelper, S3AccessError
from event_ingest.data_plane import DATA_PLANES
from event_ingest.event_db import SqliteEventDb
from event_ingest.model import Batch, Reject, Session, SessionListing
from event_ingest.settings import S3_CONN_ID
from event_ingest.timestamps import normalize
from include import generator
from include.services import SeaweedS3

DAY = dt.date(2026, 11, 20)
NEXT_DAY = dt.date(2026, 11, 21)
EMPTY_DAY = dt.date(2026, 11, 10)
#: What each kind of bad input must say in its reject reason.
REASONS = {
    "malformed_json": "malformed JSON",
    "missing_fields": "vehicle_id",
    "session_id_mismatch": "differs from its folder",
    "file_absent": "absent from the bucket",
    "size_mismatch": "size mismatch",
    "md5_mismatch": "md5 mismatch",
    "path_escape_dotdot": "leaves the session folder",
    "path_escape_absolute": "leaves the session folder",
    "non_utf8_display_log": "not UTF-8",
}
#: Bad input that fetch_metadata finds (md5 mismatches only show once the bytes are downloaded).
FETCH_KINDS = [kind for kind in generator.BAD_KINDS if kind != "md5_mismatch"]


def xcom(batch: Batch) -> Batch:
    """The batch as the next task gets it."""
    return Batch.from_dict(json.loads(json.dumps(batch.to_dict())))


def expected_events(manifest: generator.Manifest) -> dict[str, generator.ExpectedEvent]:
    return {e.key: e for s in manifest.sessions.values() for e in s.events.values()}


def rows(db: SqliteEventDb, statement: str) -> list[dict[str, Any]]:
    """Read committed rows through a connection of their own."""
    conn = sqlite3.connect(db.path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute(statement)]
    finally:
        conn.close()


@pytest.fixture(autouse=True)
def s3_connection(seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_S3", seaweed.airflow_conn_json())


@pytest.fixture(scope="module")
def client(seaweed: SeaweedS3) -> Any:
    return seaweed.client(max_pool_connections=16)


class Source:
    """A fresh bucket, filled by the generator and read through AwsHelper."""

    def __init__(self, seaweed: SeaweedS3, client: Any) -> None:
        self.client = client
        self.bucket = seaweed.create_bucket(f"t{uuid.uuid4().hex[:12]}")

    def seed(self, **kwargs: Any) -> generator.Manifest:
        options = {"days": [DAY], "tags_per_session": 3, "tag_bytes": 512, **kwargs}
        return generator.generate_bucket(self.client, self.bucket, **options)

    def aws(self, data_plane: str | None = None) -> AwsHelper:
        return AwsHelper(aws_conn_id=S3_CONN_ID, bucket=self.bucket, concurrency=4, data_plane=data_plane)


@pytest.fixture
def source(seaweed: SeaweedS3, client: Any) -> Source:
    return Source(seaweed, client)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SqliteEventDb]:
    with SqliteEventDb(tmp_path / "events.sqlite3") as database:
        yield database


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def one_batch(aws: AwsHelper, days: list[dt.date] | None = None) -> Batch:
    (batch,) = steps.discover(aws, days or [DAY], batch_size=1000, max_batches=1024)
    return xcom(batch)


def run_steps(aws: AwsHelper, db: SqliteEventDb, data_dir: Path, run_id: str) -> steps.BatchSummary:
    """One batch through every step, as the mapped tasks run it."""
    batch = xcom(steps.filter_existing(db, one_batch(aws)))
    batch = xcom(steps.fetch_metadata(aws, db, batch, data_dir))
    batch = xcom(steps.download_audio(aws, batch, data_dir))
    return steps.load(db, batch, run_id)


@pytest.fixture(scope="module")
def two_days(seaweed: SeaweedS3, client: Any) -> dict[str, Any]:
    """Five sessions on DAY, two on NEXT_DAY; read-only."""
    source = Source(seaweed, client)
    manifest = source.seed(days=[DAY, NEXT_DAY], sessions_per_day={DAY: 5, NEXT_DAY: 2}, tags_per_session=1)
    ordered = sorted(manifest.sessions.values(), key=lambda s: (s.day, s.session_id))
    return {"source": source, "session_ids": [s.session_id for s in ordered]}


class TestDiscover:
    def test_cuts_the_sessions_of_the_days_into_batches(self, two_days: dict[str, Any]) -> None:
        batches = steps.discover(two_days["source"].aws(), [DAY, NEXT_DAY], batch_size=3, max_batches=100)
        assert [b.index for b in batches] == [0, 1, 2]
        assert [len(b.listings) for b in batches] == [3, 3, 1]
        assert [b.discovered for b in batches] == [3, 3, 1]
        assert [x.session_id for b in batches for x in b.listings] == two_days["session_ids"]
        assert all((b.sessions, b.rejects, b.skipped, b.deferred) == ([], [], 0, 0) for b in batches)

    def test_grows_the_batch_size_to_stay_within_max_batches(self, two_days: dict[str, Any]) -> None:
        batches = steps.discover(two_days["source"].aws(), [DAY, NEXT_DAY], batch_size=1, max_batches=2)
        assert [len(b.listings) for b in batches] == [4, 3]
        assert [x.session_id for b in batches for x in b.listings] == two_days["session_ids"]

    def test_empty_day_gives_no_batch(self, two_days: dict[str, Any]) -> None:
        assert steps.discover(two_days["source"].aws(), [EMPTY_DAY], batch_size=3, max_batches=100) == []

    def test_missing_bucket_fails_before_listing(self) -> None:
        aws = AwsHelper(aws_conn_id=S3_CONN_ID, bucket="no-such-bucket-4711")
        with pytest.raises(S3AccessError, match="no-such-bucket-4711"):
            steps.discover(aws, [DAY], batch_size=3, max_batches=100)


def listing(session_id: str, etag: str) -> SessionListing:
    folder = f"{DAY:%Y/%m/%d}/{session_id}/"
    return SessionListing(
        session_id=session_id,
        day=DAY.isoformat(),
        prefix=folder,
        report_key=f"{folder}{session_id}_logged_Upload_Report.json",
        report_etag=etag,
    )


def load_known(db: SqliteEventDb, session_id: str, etag: str) -> None:
    """A session the database holds already, without events."""
    db.load_session(
        Session(
            session_id=session_id,
            vehicle_id="veh001",
            driver_id=None,
            started_at="2026-11-20 10:00:00.000",
            ended_at=None,
            session_date=DAY.isoformat(),
            software_version=None,
            report_key=listing(session_id, etag).report_key,
            report_etag=etag,
        )
    )


class TestFilterExisting:
    def test_skips_unchanged_sessions_without_open_rejects(self, db: SqliteEventDb) -> None:
        load_known(db, "s_clean", "etag-1")
        load_known(db, "s_fixed", "etag-1")
        fixed = Reject("k/s_fixed/AudioTags/tag_0001.wav", "s_fixed", "audio tag: md5 mismatch")
        db.record_rejects([fixed], "run-1")
        db.resolve_rejects(["s_fixed"], still_rejected=[])
        batch = Batch(
            index=0, listings=[listing("s_clean", "etag-1"), listing("s_fixed", "etag-1")], discovered=2
        )

        batch = steps.filter_existing(db, batch)

        assert (batch.listings, batch.skipped, batch.discovered) == ([], 2, 2)

    def test_keeps_new_and_changed_sessions_and_those_with_open_rejects(self, db: SqliteEventDb) -> None:
        load_known(db, "s_clean", "etag-1")
        load_known(db, "s_changed", "etag-1")
        load_known(db, "s_rejected", "etag-1")
        open_reject = Reject("k/s_rejected/AudioTags/tag_0002.wav", "s_rejected", "audio tag: size mismatch")
        db.record_rejects([open_reject], "run-1")
        listings = [
            listing("s_new", "etag-1"),
            listing("s_clean", "etag-1"),
            listing("s_changed", "etag-2"),
            listing("s_rejected", "etag-1"),
        ]

        batch = steps.filter_existing(db, Batch(index=0, listings=listings, discovered=4))

        assert [x.session_id for x in batch.listings] == ["s_new", "s_changed", "s_rejected"]
        assert batch.skipped == 1


class TestFetchMetadata:
    def test_reads_the_sessions_and_turns_bad_input_into_rejects(
        self, source: Source, db: SqliteEventDb, data_dir: Path
    ) -> None:
        manifest = source.seed(sessions_per_day=2, bad_kinds=FETCH_KINDS)
        aws = source.aws()

        batch = steps.fetch_metadata(aws, db, one_batch(aws), data_dir)

        assert batch.listings == []
        assert batch.deferred == 1
        assert {s.session_id for s in batch.sessions} == set(manifest.sessions)
        want = expected_events(manifest)
        got = {e.s3_key: e for s in batch.sessions for e in s.events}
        assert set(got) == set(want)
        for key, event in got.items():
            assert event.time_source == want[key].time_source, key
            assert event.event_time == (normalize(want[key].event_time) if want[key].event_time else None)
        reasons = {r.object_key: r.reason for r in batch.rejects}
        assert set(reasons) == {r.object_key for r in manifest.rejects}
        for expected in manifest.rejects:
            assert REASONS[expected.kind] in reasons[expected.object_key], expected.kind
        saved = {p.name.removesuffix("_logged_Upload_Report.json") for p in data_dir.rglob("*_Report.json")}
        assert saved == set(manifest.sessions)

    def test_keeps_only_the_events_the_database_lacks(
        self, source: Source, db: SqliteEventDb, data_dir: Path
    ) -> None:
        manifest = source.seed(sessions_per_day=2)
        aws = source.aws()
        first = steps.fetch_metadata(aws, db, one_batch(aws), data_dir)
        known = first.sessions[0]
        known.events = known.events[:1]
        db.load_session(known)

        batch = steps.fetch_metadata(aws, db, one_batch(aws), data_dir)

        events = {s.session_id: {e.s3_key for e in s.events} for s in batch.sessions}
        assert set(events) == set(manifest.sessions)
        all_keys = {sid: {e.key for e in s.events.values()} for sid, s in manifest.sessions.items()}
        assert events[known.session_id] == all_keys[known.session_id] - {known.events[0].s3_key}
        (other,) = set(events) - {known.session_id}
        assert events[other] == all_keys[other]

    @pytest.mark.parametrize("data_plane", [pytest.param(name, id=name) for name in DATA_PLANES])
    def test_a_report_gone_since_the_listing_defers_its_session(
        self, source: Source, db: SqliteEventDb, data_dir: Path, data_plane: str
    ) -> None:
        source.seed(sessions_per_day=1)
        aws = source.aws(data_plane)
        batch = one_batch(aws)
        source.client.delete_object(Bucket=source.bucket, Key=batch.listings[0].report_key)

        batch = steps.fetch_metadata(aws, db, batch, data_dir)

        assert (batch.sessions, batch.rejects, batch.deferred) == ([], [], 1)


class TestDownloadAudio:
    def test_downloads_the_new_tags_and_rejects_corrupt_ones(
        self, source: Source, db: SqliteEventDb, data_dir: Path
    ) -> None:
        manifest = source.seed(sessions_per_day=2, bad_kinds=["md5_mismatch"])
        aws = source.aws()
        batch = xcom(steps.fetch_metadata(aws, db, one_batch(aws), data_dir))
        assert batch.rejects == []

        batch = steps.download_audio(aws, batch, data_dir)

        (corrupt,) = manifest.rejects
        assert [(r.object_key, r.session_id) for r in batch.rejects] == [
            (corrupt.object_key, corrupt.session_id)
        ]
        assert "md5 mismatch" in batch.rejects[0].reason
        events = [e for s in batch.sessions for e in s.events]
        assert {e.s3_key for e in events} == set(expected_events(manifest))
        for event in events:
            local = Path(str(event.local_path))
            assert local.is_relative_to(data_dir)
            assert hashlib.md5(local.read_bytes()).hexdigest() == event.md5
        # Without a prefix, local paths mirror the keys.
        assert not (data_dir / corrupt.object_key).exists()
        assert (data_dir / events[0].s3_key).is_file()


class TestLoad:
    BAD = ["malformed_json", "file_absent", "md5_mismatch", "incomplete_upload"]

    def test_writes_the_batch_and_sums_it_up(self, source: Source, db: SqliteEventDb, data_dir: Path) -> None:
        manifest = source.seed(sessions_per_day=2, bad_kinds=self.BAD)

        summary = run_steps(source.aws(), db, data_dir, "run-1")

        want = expected_events(manifest)
        assert summary == steps.BatchSummary(
            discovered=6,
            skipped=0,
            deferred=1,
            rejected=len(manifest.rejects),
            loaded_sessions=len(manifest.sessions),
            loaded_events=len(want),
        )
        sessions = {r["session_id"]: r for r in rows(db, "SELECT * FROM sessions")}
        assert {sid: r["event_count"] for sid, r in sessions.items()} == {
            sid: len(s.events) for sid, s in manifest.sessions.items()
        }
        assert {r["s3_key"] for r in rows(db, "SELECT * FROM events")} == set(want)
        rejects = rows(db, "SELECT * FROM ingest_rejects")
        assert {r["object_key"] for r in rejects} == {r.object_key for r in manifest.rejects}
        assert {(r["dag_run_id"], r["resolved_at"]) for r in rejects} == {("run-1", None)}

    def test_a_second_run_loads_nothing_new(self, source: Source, db: SqliteEventDb, data_dir: Path) -> None:
        manifest = source.seed(sessions_per_day=2, bad_kinds=self.BAD)
        run_steps(source.aws(), db, data_dir, "run-1")
        before = {table: rows(db, f"SELECT * FROM {table}") for table in ("sessions", "events")}

        summary = run_steps(source.aws(), db, data_dir, "run-2")

        # Sessions with open rejects are read again, find nothing new, and count as skipped too.
        assert summary == steps.BatchSummary(
            discovered=6,
            skipped=len(manifest.sessions),
            deferred=1,
            rejected=len(manifest.rejects),
            loaded_sessions=0,
            loaded_events=0,
        )
        assert {table: rows(db, f"SELECT * FROM {table}") for table in ("sessions", "events")} == before
        rejects = rows(db, "SELECT * FROM ingest_rejects")
        assert {(r["dag_run_id"], r["resolved_at"]) for r in rejects} == {("run-2", None)}

    def test_a_reupload_that_fixes_a_reject_loads_the_event_and_resolves_it(
        self, source: Source, db: SqliteEventDb, data_dir: Path
    ) -> None:
        manifest = source.seed(sessions_per_day=1, bad_kinds=["size_mismatch"])
        run_steps(source.aws(), db, data_dir, "run-1")
        (bad,) = manifest.rejects
        report_key = f"{DAY:%Y/%m/%d}/{bad.session_id}/{bad.session_id}_logged_Upload_Report.json"
        report = json.loads(source.client.get_object(Bucket=source.bucket, Key=report_key)["Body"].read())
        real_size = source.client.head_object(Bucket=source.bucket, Key=bad.object_key)["ContentLength"]
        for entry in report["files"]:
            if bad.object_key.endswith(entry["path"]):
                entry["size_bytes"] = real_size
        source.client.put_object(Bucket=source.bucket, Key=report_key, Body=json.dumps(report).encode())

        summary = run_steps(source.aws(), db, data_dir, "run-2")

        assert (summary.loaded_sessions, summary.loaded_events, summary.rejected) == (1, 1, 0)
        (reject,) = rows(db, "SELECT * FROM ingest_rejects")
        assert reject["object_key"] == bad.object_key
        assert reject["resolved_at"] is not None
        counts = {r["session_id"]: r["event_count"] for r in rows(db, "SELECT * FROM sessions")}
        assert counts[bad.session_id] == len(manifest.sessions[bad.session_id].events) + 1
