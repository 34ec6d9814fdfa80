"""Tests for event_ingest.operators: what the operators decide themselves, without a DAG run.

The steps they call are tested in test_steps.py and the DAG end to end in tests/dags/. Here: where data
goes by default, how a missing bucket or a bad conf fails the task at once, which fields are templated.
``execute`` is called with a minimal context holding only what the operator reads.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.api.datamodels._generated import DagRunType
from airflow.sdk.exceptions import AirflowFailException

from event_ingest import settings
from event_ingest.event_db import DEFAULT_SQLITE_NAME, SqliteEventDb
from event_ingest.operators import (
    DiscoverSessionsOperator,
    EventIngestBaseOperator,
    FetchMetadataOperator,
    SummarizeRunOperator,
)
from include import generator
from include.services import SeaweedS3

DAY = dt.date(2026, 11, 20)
PARAMS = {"start_date": None, "end_date": None, "lookback_days": 0, "batch_size": 2}


def context(
    conf: dict[str, Any] | None = None,
    *,
    run_type: Any = "manual",
    interval_start: dt.datetime | None = None,
    **params: Any,
) -> dict[str, Any]:
    """What the operators read from a task's context, for a run after ``DAY`` (manual by default)."""
    dag_run = SimpleNamespace(
        dag_id="event_ingest",
        run_id="manual__test",
        conf=conf or {},
        run_type=run_type,
        run_after=dt.datetime(2026, 11, 21, 6, tzinfo=dt.UTC),
    )
    return {"dag_run": dag_run, "params": {**PARAMS, **params}, "data_interval_start": interval_start}


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

        op.render_template_fields({"ds": "2026-11-20", "params": {"bucket": "drives", "prefix": "raw/"}})

        assert (op.bucket, op.prefix, op.data_dir) == ("drives", "raw/", "/data/2026-11-20")

    def test_data_dir_defaults_under_airflow_home(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
        op = EventIngestBaseOperator(task_id="t", bucket="drives")
        assert op._data_dir() == tmp_path / "event_ingest_data"

    def test_given_data_dir_wins(self, tmp_path: Path) -> None:
        op = EventIngestBaseOperator(task_id="t", bucket="drives", data_dir=str(tmp_path / "elsewhere"))
        assert op._data_dir() == tmp_path / "elsewhere"

    def test_aws_without_a_bucket_fails_naming_the_variable(self) -> None:
        op = EventIngestBaseOperator(task_id="t", bucket="")
        with pytest.raises(AirflowFailException, match=f"Airflow Variable '{settings.BUCKET_VARIABLE}'"):
            op._aws()

    def test_aws_reads_the_bucket_through_the_connection_given(self) -> None:
        op = EventIngestBaseOperator(
            task_id="t", bucket="drives", prefix="raw", aws_conn_id="my_s3", s3_concurrency=3
        )
        aws = op._aws()
        assert (aws.aws_conn_id, aws.bucket, aws.prefix, aws.concurrency) == ("my_s3", "drives", "raw/", 3)

    def test_db_without_a_connection_is_sqlite_in_the_data_dir_and_closed_after(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.delenv("AIRFLOW_CONN_EVENT_INGEST_DB", raising=False)
        op = EventIngestBaseOperator(task_id="t", bucket="drives", data_dir=str(tmp_path))
        with op._db() as db:
            assert isinstance(db, SqliteEventDb)
            assert db.path == tmp_path / DEFAULT_SQLITE_NAME
            assert not db.session_exists("s")
        with pytest.raises(RuntimeError, match="not connected"):
            db.session_exists("s")


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
    def test_bad_conf_fails_at_once(self, conf: dict[str, Any], message: str) -> None:
        # Neither connection nor bucket exists: the conf is checked before either is used.
        op = DiscoverSessionsOperator(task_id="discover_sessions", bucket="no-such-bucket-4711")
        params = {name: conf[name] for name in ("start_date", "end_date") if name in conf}
        with pytest.raises(AirflowFailException, match=f"bad conf: .*{message}"):
            op.execute(context(conf, **params))

    def test_missing_bucket_fails_at_once(self, seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_S3", seaweed.airflow_conn_json())
        op = DiscoverSessionsOperator(task_id="discover_sessions", bucket="no-such-bucket-4711")
        with pytest.raises(AirflowFailException, match="'no-such-bucket-4711' does not exist"):
            op.execute(context())

    def test_returns_one_small_xcom_per_batch(
        self, seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_S3", seaweed.airflow_conn_json())
        bucket = seaweed.create_bucket(f"t{uuid.uuid4().hex[:12]}")
        manifest = generator.generate_bucket(
            seaweed.client(), bucket, days=[DAY], sessions_per_day=3, tags_per_session=1, tag_bytes=256
        )
        op = DiscoverSessionsOperator(task_id="discover_sessions", bucket=bucket)

        batches = op.execute(context())

        assert [b["index"] for b in batches] == [0, 1]
        assert sorted(x["session_id"] for b in batches for x in b["listings"]) == sorted(manifest.sessions)
        assert [b["discovered"] for b in batches] == [2, 1]

    @pytest.mark.parametrize(
        ("run_type", "days"),
        [
            pytest.param(DagRunType.SCHEDULED, {DAY - dt.timedelta(days=2), DAY}, id="scheduled-looks-back"),
            pytest.param(DagRunType.BACKFILL, {DAY}, id="backfill-covers-its-day-only"),
        ],
    )
    def test_run_type_decides_the_lookback(
        self, seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch, run_type: DagRunType, days: set[dt.date]
    ) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_S3", seaweed.airflow_conn_json())
        bucket = seaweed.create_bucket(f"t{uuid.uuid4().hex[:12]}")
        generator.generate_bucket(
            seaweed.client(), bucket, days=[DAY - dt.timedelta(days=2), DAY], sessions_per_day=1,
            tags_per_session=1, tag_bytes=256,
        )  # fmt: skip
        op = DiscoverSessionsOperator(task_id="discover_sessions", bucket=bucket)
        interval_start = dt.datetime(DAY.year, DAY.month, DAY.day, tzinfo=dt.UTC)

        batches = op.execute(context(run_type=run_type, interval_start=interval_start, lookback_days=2))

        assert {dt.date.fromisoformat(x["day"]) for b in batches for x in b["listings"]} == days


class TestSummarizeRunOperator:
    def test_adds_up_the_batches(self) -> None:
        results = [
            {"discovered": 2, "skipped": 1, "loaded_sessions": 1, "loaded_events": 4},
            {"discovered": 3, "deferred": 1, "rejected": 2, "loaded_sessions": 2, "loaded_events": 5},
        ]
        total = SummarizeRunOperator(task_id="summarize_run", results=results).execute(context())
        assert total == {
            "discovered": 5,
            "skipped": 1,
            "deferred": 1,
            "rejected": 2,
            "loaded_sessions": 3,
            "loaded_events": 9,
        }

    def test_an_empty_run_gives_zeros(self) -> None:
        total = SummarizeRunOperator(task_id="summarize_run", results=None).execute(context())
        assert set(total.values()) == {0}
