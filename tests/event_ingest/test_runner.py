"""Tests for event_ingest.runner: the steps of a run over a batch, on SeaweedFS and SQLite.

The bucket is filled by the demo generator, whose manifest says what each step must make of it. Between
steps a batch goes through its XCom form (``Batch.to_xcom()``), as it does between tasks. Each step gets
a runner of its own, as each task builds its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from event_ingest.data_plane import DATA_PLANES
from event_ingest.errors import S3AccessError
from event_ingest.event_db.sqlite import SqliteEventDb
from event_ingest.model import Batch, Reject, Session, SessionListing
from event_ingest.runner import STEP_NEEDS, BatchRunner, BatchSummary, Place, ingest
from event_ingest.settings import S3_CONN_ID
from event_ingest.timestamps import normalize
from include import generator
from tools.services import SeaweedS3

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
    return Batch.from_xcom(json.loads(json.dumps(batch.to_xcom())))


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
    """A fresh bucket, filled by the generator; ``place`` says where a run reads and writes."""

    def __init__(self, seaweed: SeaweedS3, client: Any, data_dir: Path) -> None:
        self.client = client
        self.bucket = seaweed.create_bucket(f"t{uuid.uuid4().hex[:12]}")
        self.data_dir = data_dir

    def seed(self, **kwargs: Any) -> generator.Manifest:
        options = {"days": [DAY], "tags_per_session": 3, "tag_bytes": 512, **kwargs}
        return generator.generate_bucket(self.client, self.bucket, **options)

    def place(self, data_plane: str | None = None, run_id: str = "run-1", **fields: Any) -> Place:
        return Place(
            bucket=self.bucket,
            data_dir=self.data_dir,
            aws_conn_id=S3_CONN_ID,
            concurrency=4,
            data_plane=data_plane,
            dag_run_id=run_id,
            **fields,
        )

    def step(self, name: str, batch: Batch | None = None, **place: Any) -> Any:
        """One step as its task runs it: a runner of its own, the batch through its XCom form."""
        with self.place(**place).runner(**STEP_NEEDS[name]) as runner:
            if name == "discover":
                return [xcom(b) for b in runner.discover([DAY], batch_size=1000)]
            result = getattr(runner, name)(xcom(batch) if batch else batch)
            return xcom(result) if isinstance(result, Batch) else result


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def source(seaweed: SeaweedS3, client: Any, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Source:
    monkeypatch.delenv("AIRFLOW_CONN_EVENT_INGEST_DB", raising=False)  # the embedded SQLite in data_dir
    return Source(seaweed, client, data_dir)


@pytest.fixture
def db(source: Source) -> Iterator[SqliteEventDb]:
    with source.place().open_db() as database:
        assert isinstance(database, SqliteEventDb)
        yield database


def one_batch(source: Source, **place: Any) -> Batch:
    (batch,) = source.step("discover", **place)
    return batch


def run_steps(source: Source, run_id: str, **place: Any) -> BatchSummary:
    """One batch through every step, as the mapped tasks run it."""
    batch = one_batch(source, **place)
    for name in ("filter_existing", "fetch_metadata", "download"):
        batch = source.step(name, batch, run_id=run_id, **place)
    return source.step("load", batch, run_id=run_id, **place)


@pytest.fixture(scope="module")
def two_days(seaweed: SeaweedS3, client: Any) -> dict[str, Any]:
    """Five sessions on DAY, two on NEXT_DAY; read-only."""
    source = Source(seaweed, client, Path("/nonexistent"))
    manifest = source.seed(days=[DAY, NEXT_DAY], sessions_per_day={DAY: 5, NEXT_DAY: 2}, tags_per_session=1)
    ordered = sorted(manifest.sessions.values(), key=lambda s: (s.day, s.session_id))
    return {"source": source, "session_ids": [s.session_id for s in ordered]}


def discover(source: Source, days: list[dt.date], **options: Any) -> list[Batch]:
    return BatchRunner(source=source.place().source()).discover(days, **options)


class TestDiscover:
    def test_cuts_the_sessions_of_the_days_into_batches(self, two_days: dict[str, Any]) -> None:
        batches = discover(two_days["source"], [NEXT_DAY, DAY], batch_size=3, max_batches=100)
        assert [b.index for b in batches] == [0, 1, 2]
        assert [len(b.listings) for b in batches] == [3, 3, 1]
        assert [b.discovered for b in batches] == [3, 3, 1]
        assert [x.session_id for b in batches for x in b.listings] == two_days["session_ids"]
        assert all((b.sessions, b.rejects, b.deferrals, b.skipped) == ([], [], [], 0) for b in batches)

    def test_grows_the_batch_size_to_stay_within_max_batches(self, two_days: dict[str, Any]) -> None:
        batches = discover(two_days["source"], [DAY, NEXT_DAY], batch_size=1, max_batches=2)
        assert [len(b.listings) for b in batches] == [4, 3]
        assert [x.session_id for b in batches for x in b.listings] == two_days["session_ids"]

    def test_empty_day_gives_no_batch(self, two_days: dict[str, Any]) -> None:
        assert discover(two_days["source"], [EMPTY_DAY], batch_size=3, max_batches=100) == []

    def test_missing_bucket_fails_before_listing(self) -> None:
        runner = BatchRunner(source=Place(bucket="no-such-bucket-4711", data_dir=Path("/x")).source())
        with pytest.raises(S3AccessError, match="no-such-bucket-4711"):
            runner.discover([DAY], batch_size=3, max_batches=100)

    def test_a_session_id_under_two_days_is_the_earlier_days_session(
        self, source: Source, client: Any
    ) -> None:
        manifest = source.seed(days=[DAY], sessions_per_day=1)
        (session_id,) = manifest.sessions
        for key in [o["Key"] for o in client.list_objects_v2(Bucket=source.bucket)["Contents"]]:
            body = client.get_object(Bucket=source.bucket, Key=key)["Body"].read()
            client.put_object(
                Bucket=source.bucket, Key=key.replace(f"{DAY:%Y/%m/%d}", f"{NEXT_DAY:%Y/%m/%d}"), Body=body
            )

        (batch,) = discover(source, [NEXT_DAY, DAY], batch_size=10)

        assert [(x.session_id, x.day, x.earlier_day) for x in batch.listings] == [
            (session_id, DAY.isoformat(), None),
            (session_id, NEXT_DAY.isoformat(), DAY.isoformat()),
        ]


class TestDiscoverKeys:
    def test_takes_the_notified_reports_and_ignores_every_other_key(self, source: Source) -> None:
        manifest = source.seed(sessions_per_day=3, tags_per_session=1)
        first, second, _ = sorted(manifest.sessions.values(), key=lambda s: s.session_id)
        keys = [
            first.report_key,
            second.report_key,
            first.report_key,  # notifications come more than once
            next(iter(first.events.values())).key,
            "README.md",
            f"{DAY:%Y/%m/%d}/nobody/nobody_logged_Upload_Report.json",
        ]
        runner = BatchRunner(source=source.place().source())

        (batch,) = runner.discover_keys(keys, batch_size=10)

        assert [x.session_id for x in batch.listings] == [first.session_id, second.session_id]
        assert batch.listings[0] == next(
            x for x in runner.source.list_day(DAY) if x.session_id == first.session_id
        )
        assert runner.discover_keys(["README.md"], batch_size=10) == []


def listing(session_id: str, etag: str) -> SessionListing:
    folder = f"{DAY:%Y/%m/%d}/{session_id}/"
    return SessionListing(
        session_id=session_id,
        day=DAY.isoformat(),
        prefix=folder,
        report_key=f"{folder}{session_id}_logged_Upload_Report.json",
        report_etag=etag,
    )


def load_known(db: SqliteEventDb, session_id: str, etag: str, *, day: dt.date = DAY, **fields: Any) -> None:
    """A session the database holds already, without events."""
    session = Session(
        session_id=session_id,
        vehicle_id="veh001",
        driver_id=None,
        started_at=f"{day} 10:00:00.000",
        ended_at=None,
        session_date=day.isoformat(),
        software_version=None,
        report_key=listing(session_id, etag).report_key,
        report_etag=etag,
        **fields,
    )
    db.load_batch(Batch(index=0, sessions=[session], processed=[session_id]), "run-0")


class TestFilterExisting:
    def test_skips_unchanged_sessions_without_open_rejects(self, db: SqliteEventDb) -> None:
        load_known(db, "s_clean", "etag-1")
        load_known(db, "s_fixed", "etag-1")
        fixed = Reject(
            "k/s_fixed/AudioTags/tag_0001.wav", "s_fixed", "audio tag: md5 mismatch", DAY.isoformat()
        )
        db.load_batch(Batch(index=0, rejects=[fixed]), "run-1")
        fixed_session = load_known  # loading the session again, without the reject, resolves it
        fixed_session(db, "s_fixed", "etag-1")
        batch = Batch(
            index=0, listings=[listing("s_clean", "etag-1"), listing("s_fixed", "etag-1")], discovered=2
        )

        batch = BatchRunner(db=db).filter_existing(batch)

        assert (batch.listings, batch.skipped, batch.discovered) == ([], 2, 2)

    def test_keeps_new_and_changed_sessions_and_those_with_open_rejects(self, db: SqliteEventDb) -> None:
        load_known(db, "s_clean", "etag-1")
        load_known(db, "s_changed", "etag-1")
        load_known(db, "s_rejected", "etag-1")
        load_known(db, "s_retagged", "etag-1")
        load_known(db, "s_audio_only", "etag-1")
        open_reject = Reject(
            "k/s_rejected/AudioTags/tag_0002.wav", "s_rejected", "audio tag: size mismatch", DAY.isoformat()
        )
        db.load_batch(Batch(index=0, rejects=[open_reject]), "run-1")
        listings = [
            listing("s_new", "etag-1"),
            listing("s_clean", "etag-1"),
            listing("s_changed", "etag-2"),
            listing("s_rejected", "etag-1"),
            replace(listing("s_retagged", "etag-1"), tags_digest="an audio tag was replaced"),
            listing("s_audio_only", "etag-1"),
        ]

        batch = BatchRunner(db=db, file_types=["raw"]).filter_existing(
            Batch(index=0, listings=listings, discovered=6)
        )

        # A run that also downloads raw files goes through every session loaded without them.
        assert [x.session_id for x in batch.listings] == [x.session_id for x in listings]
        assert batch.skipped == 0
        batch = BatchRunner(db=db).filter_existing(Batch(index=0, listings=listings, discovered=6))
        assert [x.session_id for x in batch.listings] == ["s_new", "s_changed", "s_rejected", "s_retagged"]
        assert batch.skipped == 2

    @pytest.mark.parametrize(
        ("loaded_day", "reason"),
        [
            pytest.param(
                dt.date(2026, 11, 19), "already found under 2026-11-19", id="loaded-from-an-earlier-day"
            ),
            pytest.param(
                NEXT_DAY, "already loaded from the folder of 2026-11-21", id="loaded-from-a-later-day"
            ),
        ],
    )
    def test_a_folder_of_a_session_loaded_from_another_day_is_rejected(
        self, db: SqliteEventDb, loaded_day: dt.date, reason: str
    ) -> None:
        load_known(db, "s_moved", "etag-1", day=loaded_day)

        batch = BatchRunner(db=db).filter_existing(Batch(index=0, listings=[listing("s_moved", "etag-9")]))

        assert batch.listings == []
        (reject,) = batch.rejects
        assert (reject.object_key, reject.session_id, reject.day) == (
            listing("s_moved", "etag-9").report_key,
            "s_moved",
            DAY.isoformat(),
        )
        assert reason in reject.reason


class TestFetchMetadata:
    def test_reads_the_sessions_and_turns_bad_input_into_rejects(
        self, source: Source, db: SqliteEventDb, data_dir: Path
    ) -> None:
        manifest = source.seed(sessions_per_day=2, bad_kinds=FETCH_KINDS)

        batch = source.step("fetch_metadata", one_batch(source))

        assert batch.listings == []
        assert [d.session_id for d in batch.deferrals] == manifest.deferred
        assert batch.deferrals[0].reason == "upload status is 'in_progress'"
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
        first = source.step("fetch_metadata", one_batch(source))
        known = first.sessions[0]
        known.events = known.events[:1]
        db.load_batch(Batch(index=0, sessions=[known]), "run-0")

        batch = source.step("fetch_metadata", one_batch(source))

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
        batch = one_batch(source, data_plane=data_plane)
        source.client.delete_object(Bucket=source.bucket, Key=batch.listings[0].report_key)

        batch = source.step("fetch_metadata", batch, data_plane=data_plane)

        assert (batch.sessions, batch.rejects) == ([], [])
        assert [d.reason for d in batch.deferrals] == ["the report disappeared after the listing"]

    def test_an_audio_tag_replaced_after_it_was_loaded_is_rejected_and_its_row_stays(
        self, source: Source, db: SqliteEventDb
    ) -> None:
        manifest = source.seed(sessions_per_day=1, tags_per_session=2)
        run_steps(source, "run-1")
        (session,) = manifest.sessions.values()
        tag = sorted(session.events.values(), key=lambda e: e.key)[0]
        body = source.client.get_object(Bucket=source.bucket, Key=tag.key)["Body"].read()
        source.client.put_object(Bucket=source.bucket, Key=tag.key, Body=body[::-1])

        batch = source.step("fetch_metadata", source.step("filter_existing", one_batch(source)))

        (reject,) = batch.rejects
        assert (reject.object_key, reject.session_id) == (tag.key, session.session_id)
        assert "changed after it was loaded" in reject.reason
        assert batch.sessions[0].events == []
        assert batch.processed == [session.session_id]


class TestDownload:
    def test_downloads_the_new_tags_and_rejects_corrupt_ones(
        self, source: Source, db: SqliteEventDb, data_dir: Path
    ) -> None:
        manifest = source.seed(sessions_per_day=2, bad_kinds=["md5_mismatch"])
        batch = source.step("fetch_metadata", one_batch(source))
        assert batch.rejects == []

        batch = source.step("download", batch)

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

        summary = run_steps(source, "run-1")

        want = expected_events(manifest)
        assert summary == BatchSummary(
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
        run_steps(source, "run-1")
        before = {table: rows(db, f"SELECT * FROM {table}") for table in ("sessions", "events")}

        summary = run_steps(source, "run-2")

        # Sessions with open rejects are read again, find nothing new, and count as skipped too.
        assert summary == BatchSummary(
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
        run_steps(source, "run-1")
        (bad,) = manifest.rejects
        report_key = f"{DAY:%Y/%m/%d}/{bad.session_id}/{bad.session_id}_logged_Upload_Report.json"
        report = json.loads(source.client.get_object(Bucket=source.bucket, Key=report_key)["Body"].read())
        real_size = source.client.head_object(Bucket=source.bucket, Key=bad.object_key)["ContentLength"]
        for entry in report["files"]:
            if bad.object_key.endswith(entry["path"]):
                entry["size_bytes"] = real_size
        source.client.put_object(Bucket=source.bucket, Key=report_key, Body=json.dumps(report).encode())

        summary = run_steps(source, "run-2")

        assert (summary.loaded_sessions, summary.loaded_events, summary.rejected) == (1, 1, 0)
        (reject,) = rows(db, "SELECT * FROM ingest_rejects")
        assert reject["object_key"] == bad.object_key
        assert reject["resolved_at"] is not None
        counts = {r["session_id"]: r["event_count"] for r in rows(db, "SELECT * FROM sessions")}
        assert counts[bad.session_id] == len(manifest.sessions[bad.session_id].events) + 1


class TestIngest:
    def test_runs_every_step_of_every_batch_and_a_rerun_loads_nothing(
        self, source: Source, db: SqliteEventDb
    ) -> None:
        manifest = source.seed(
            days=[DAY, NEXT_DAY], sessions_per_day=3, bad_kinds=["file_absent", "incomplete_upload"]
        )
        steps_seen: list[str] = []

        def on_step(name: str, call: Any) -> Any:
            steps_seen.append(name)
            return call()

        first = ingest(source.place(), [DAY, NEXT_DAY], batch_size=4, on_step=on_step)
        again = ingest(source.place(run_id="run-2"), [DAY, NEXT_DAY], batch_size=4)

        loaded = len(manifest.sessions)
        assert (first.discovered, first.loaded_sessions, first.deferred, first.rejected) == (
            loaded + 1,
            loaded,
            1,
            1,
        )
        assert first.loaded_events == len(expected_events(manifest))
        assert (again.loaded_sessions, again.loaded_events, again.skipped) == (0, 0, loaded)
        assert steps_seen[0] == "discover"
        assert steps_seen.count("load") == 2  # 7 sessions in batches of 4
        assert len(rows(db, "SELECT * FROM sessions")) == loaded
