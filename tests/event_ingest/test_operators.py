"""Tests for event_ingest.operators: what the operators decide themselves, without a DAG run.

The steps they call are tested in test_runner.py and the DAGs end to end in tests/dags/. Here: where data
goes by default, how a missing bucket or a bad conf fails the task at once, what discovery records and
hands on, how the run's summary treats failed batches, what the asset event says. ``execute`` gets a
minimal context holding only what the operator reads.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from event_ingest import settings
from event_ingest.assets import EVENTS_ASSET
from event_ingest.event_db import DEFAULT_SQLITE_NAME
from event_ingest.model import Batch
from event_ingest.operators import (
    PLAN_KEY,
    DiscoverSessionsOperator,
    EmitAssetEventOperator,
    EventIngestBaseOperator,
    FetchMetadataOperator,
    SummarizeRunOperator,
)
from include import generator
from tools.services import SeaweedS3

DAY = dt.date(2026, 11, 20)
PARAMS = {
    "start_date": None,
    "end_date": None,
    "lookback_days": None,
    "batch_size": 2,
    "download_types": None,
}
LOADS = "ingest_batch.load_to_db"


class FakeTaskInstance:
    """The XCom side of a task instance: what the operators push and pull."""

    def __init__(self, xcoms: dict[tuple[str, str], Any] | None = None) -> None:
        self.xcoms: dict[tuple[str, str], Any] = dict(xcoms or {})

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[("self", key)] = value

    def xcom_pull(
        self, task_ids: str, key: str = "return_value", map_indexes: list[int] | None = None
    ) -> Any:
        value = self.xcoms.get((task_ids, key))
        if map_indexes is None:
            return value
        return [value[i] if value and i < len(value) else None for i in map_indexes]


def context(
    conf: dict[str, Any] | None = None,
    *,
    run_type: str = "manual",
    interval_start: dt.datetime | None = None,
    ti: FakeTaskInstance | None = None,
    **params: Any,
) -> dict[str, Any]:
    """What the operators read from a task's context, for a run after ``DAY`` (manual by default)."""
    dag_run = SimpleNamespace(
        dag_id="event_ingest",
        run_id="manual__test",
        conf=conf or {},
        run_type=SimpleNamespace(value=run_type),
        run_after=dt.datetime(2026, 11, 21, 6, tzinfo=dt.UTC),
    )
    return {
        "dag_run": dag_run,
        "params": {**PARAMS, **params},
        "data_interval_start": interval_start,
        "ti": ti or FakeTaskInstance(),
        "outlet_events": {EVENTS_ASSET: SimpleNamespace(extra=None)},
    }


def runs_in(data_dir: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(data_dir / DEFAULT_SQLITE_NAME)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute("SELECT * FROM ingest_runs")]
    finally:
        conn.close()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("AIRFLOW_CONN_EVENT_INGEST_DB", raising=False)  # the embedded SQLite
    return tmp_path / "data"


class TestEventIngestBaseOperator:
    def test_templates_bucket_prefix_and_data_dir(self) -> None:
        op = FetchMetadataOperator(
            task_id="fetch_metadata",
            bucket="{{ params.bucket }}",
            prefix="{{ params.prefix }}",
            data_dir="/data/{{ ds }}",
            batch={},
        )
        assert set(EventIngestBaseOperator.template_fields) == {"bucket", "prefix", "data_dir"}
        assert "batch" in FetchMetadataOperator.template_fields

        op.render_template_fields({"ds": "2026-11-20", "params": {"bucket": "drives", "prefix": "raw/"}})

        assert (op.bucket, op.prefix, op.data_dir) == ("drives", "raw/", "/data/2026-11-20")

    def test_data_dir_defaults_under_airflow_home(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
        place = EventIngestBaseOperator(task_id="t", bucket="drives").place(context())
        assert place.data_dir == tmp_path / "event_ingest_data"

    def test_the_place_comes_from_the_fields_and_the_runs_params(self, tmp_path: Path) -> None:
        op = EventIngestBaseOperator(
            task_id="t",
            bucket="drives",
            prefix="raw",
            data_dir=str(tmp_path),
            aws_conn_id="my_s3",
            db_conn_id="my_db",
            s3_concurrency=3,
        )
        place = op.place(context(download_types=["raw"]))
        assert (place.bucket, place.prefix, place.data_dir, place.concurrency) == (
            "drives",
            "raw",
            tmp_path,
            3,
        )
        assert (place.aws_conn_id, place.db_conn_id, place.dag_run_id) == ("my_s3", "my_db", "manual__test")
        assert place.file_types == ("audio_tag", "raw")
        assert place.source().prefix == "raw/"

    def test_without_a_bucket_fails_naming_the_variable(self) -> None:
        op = EventIngestBaseOperator(task_id="t", bucket="")
        with pytest.raises(AirflowFailException, match=f"Airflow Variable '{settings.BUCKET_VARIABLE}'"):
            op.place(context())

    def test_bad_download_types_fail_at_once(self) -> None:
        op = EventIngestBaseOperator(task_id="t", bucket="drives")
        with pytest.raises(AirflowFailException, match="bad conf: download_types"):
            op.place(context(download_types=["camera"]))


@pytest.fixture
def s3(seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> SeaweedS3:
    monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_S3", seaweed.airflow_conn_json())
    return seaweed


class TestDiscoverSessionsOperator:
    @pytest.mark.parametrize(
        ("conf", "message"),
        [
            pytest.param({"start_date": "2026-13-01"}, "not a valid date", id="unparsable-date"),
            pytest.param(
                {"start_date": "2026-11-03", "end_date": "2026-11-01"},
                "is before start_date",
                id="end-before-start",
            ),
            pytest.param({"start": "2026-11-01"}, "unknown conf key", id="unknown-key"),
        ],
    )
    def test_bad_conf_fails_at_once_and_writes_nothing(
        self, data_dir: Path, conf: dict[str, Any], message: str
    ) -> None:
        # Neither connection nor bucket exists: the conf is checked before either is used.
        op = DiscoverSessionsOperator(
            task_id="discover_sessions", bucket="no-such-bucket-4711", data_dir=str(data_dir)
        )
        params = {name: conf[name] for name in ("start_date", "end_date") if name in conf}
        with pytest.raises(AirflowFailException, match=f"bad conf: .*{message}"):
            op.execute(context(conf, **params))
        assert not data_dir.exists()

    def test_missing_bucket_fails_at_once(self, s3: SeaweedS3, data_dir: Path) -> None:
        op = DiscoverSessionsOperator(
            task_id="discover_sessions", bucket="no-such-bucket-4711", data_dir=str(data_dir)
        )
        with pytest.raises(AirflowFailException, match="'no-such-bucket-4711' does not exist"):
            op.execute(context())
        assert not data_dir.exists()

    def test_hands_on_one_small_xcom_per_batch_its_plan_and_starts_the_ledger(
        self, s3: SeaweedS3, data_dir: Path
    ) -> None:
        bucket = s3.create_bucket(f"t{uuid.uuid4().hex[:12]}")
        manifest = generator.generate_bucket(
            s3.client(), bucket, days=[DAY], sessions_per_day=3, tags_per_session=1, tag_bytes=256
        )
        op = DiscoverSessionsOperator(task_id="discover_sessions", bucket=bucket, data_dir=str(data_dir))
        ti = FakeTaskInstance()

        xcoms = op.execute(context(ti=ti, lookback_days=0))

        batches = [Batch.from_xcom(x) for x in xcoms]
        assert [b.index for b in batches] == [0, 1]
        assert sorted(x.session_id for b in batches for x in b.listings) == sorted(manifest.sessions)
        assert [x["sessions"] for x in xcoms] == [2, 1]
        assert ti.xcoms[("self", PLAN_KEY)] == {"days": ["2026-11-20"], "batches": 2}
        (run,) = runs_in(data_dir)
        assert (run["dag_run_id"], run["dag_id"], run["run_type"], run["state"]) == (
            "manual__test",
            "event_ingest",
            "manual",
            "running",
        )
        assert (run["first_day"], run["last_day"]) == ("2026-11-20", "2026-11-20")

    @pytest.mark.parametrize(
        ("run_type", "days"),
        [
            pytest.param("scheduled", {DAY - dt.timedelta(days=2), DAY}, id="scheduled-looks-back"),
            pytest.param("backfill", {DAY}, id="backfill-covers-its-day-only"),
        ],
    )
    def test_run_type_decides_the_lookback(
        self, s3: SeaweedS3, data_dir: Path, run_type: str, days: set[dt.date]
    ) -> None:
        bucket = s3.create_bucket(f"t{uuid.uuid4().hex[:12]}")
        generator.generate_bucket(
            s3.client(), bucket, days=[DAY - dt.timedelta(days=2), DAY], sessions_per_day=1,
            tags_per_session=1, tag_bytes=256,
        )  # fmt: skip
        op = DiscoverSessionsOperator(task_id="discover_sessions", bucket=bucket, data_dir=str(data_dir))
        interval_start = dt.datetime(DAY.year, DAY.month, DAY.day, tzinfo=dt.UTC)

        xcoms = op.execute(context(run_type=run_type, interval_start=interval_start))  # the default look-back

        listed = {dt.date.fromisoformat(x.day) for b in xcoms for x in Batch.from_xcom(b).listings}
        assert listed == days


def summarize(data_dir: Path, ti: FakeTaskInstance) -> dict[str, int]:
    return SummarizeRunOperator(
        task_id="summarize_run", discover_task_id="discover_sessions", bucket="drives", data_dir=str(data_dir)
    ).execute(context(ti=ti))


def finished_run(loads: list[dict[str, int] | None], days: list[str] | None = None) -> FakeTaskInstance:
    """The XComs a run leaves once its batches are done: the plan and each batch's load result."""
    plan = {"days": days or ["2026-11-20"], "batches": len(loads)}
    return FakeTaskInstance({("discover_sessions", PLAN_KEY): plan, (LOADS, "return_value"): loads})


def started(data_dir: Path) -> None:
    with (
        EventIngestBaseOperator(task_id="t", bucket="drives", data_dir=str(data_dir))
        .place(context())
        .open_db() as db
    ):
        db.start_run(
            dag_run_id="manual__test", dag_id="event_ingest", run_type="manual", first_day=None, last_day=None
        )


class TestSummarizeRunOperator:
    LOADS = [
        {"discovered": 2, "skipped": 1, "loaded_sessions": 1, "loaded_events": 4},
        {"discovered": 3, "deferred": 1, "rejected": 2, "loaded_sessions": 2, "loaded_events": 5},
    ]

    def test_adds_up_the_batches_and_finishes_the_ledger(self, data_dir: Path) -> None:
        started(data_dir)
        total = summarize(data_dir, finished_run(self.LOADS))
        counts = {
            "discovered": 5,
            "skipped": 1,
            "deferred": 1,
            "rejected": 2,
            "loaded_sessions": 3,
            "loaded_events": 9,
        }
        assert total == counts
        (run,) = runs_in(data_dir)
        assert {k: run[k] for k in counts} == counts
        assert (run["state"], run["failed_batches"]) == ("success", 0)
        assert run["finished_at"] is not None

    def test_a_failed_batch_fails_the_run_after_recording_the_others(self, data_dir: Path) -> None:
        started(data_dir)
        with pytest.raises(AirflowFailException, match="1 of 3 batch"):
            summarize(data_dir, finished_run([self.LOADS[0], None, self.LOADS[1]]))
        (run,) = runs_in(data_dir)
        assert (run["state"], run["failed_batches"], run["loaded_sessions"]) == ("failed", 1, 3)

    def test_an_empty_run_gives_zeros(self, data_dir: Path) -> None:
        started(data_dir)
        assert set(summarize(data_dir, finished_run([])).values()) == {0}

    def test_a_run_whose_discovery_failed_fails_and_writes_nothing(self, data_dir: Path) -> None:
        with pytest.raises(AirflowFailException, match="did not start"):
            summarize(data_dir, FakeTaskInstance())
        assert not data_dir.exists()


class TestEmitAssetEventOperator:
    def emit(self, ti: FakeTaskInstance) -> Any:
        ctx = context(ti=ti)
        EmitAssetEventOperator(task_id="emit_asset_event", discover_task_id="discover_sessions").execute(ctx)
        return ctx["outlet_events"][EVENTS_ASSET].extra

    def test_announces_the_runs_days_and_counts(self) -> None:
        extra = self.emit(
            finished_run([TestSummarizeRunOperator.LOADS[1], None], ["2026-11-19", "2026-11-20"])
        )
        assert extra == {
            "dag_id": "event_ingest",
            "dag_run_id": "manual__test",
            "first_day": "2026-11-19",
            "last_day": "2026-11-20",
            "days": ["2026-11-19", "2026-11-20"],
            "failed_batches": 1,
            "discovered": 3,
            "skipped": 0,
            "deferred": 1,
            "rejected": 2,
            "loaded_sessions": 2,
            "loaded_events": 5,
        }
        assert EmitAssetEventOperator(task_id="e", discover_task_id="d").outlets == [EVENTS_ASSET]

    @pytest.mark.parametrize(
        "ti",
        [
            pytest.param(finished_run([{"discovered": 4, "skipped": 4}]), id="nothing-new"),
            pytest.param(finished_run([]), id="empty-run"),
            pytest.param(FakeTaskInstance(), id="discovery-failed"),
        ],
    )
    def test_skips_when_nothing_was_loaded(self, ti: FakeTaskInstance) -> None:
        with pytest.raises(AirflowSkipException):
            self.emit(ti)
