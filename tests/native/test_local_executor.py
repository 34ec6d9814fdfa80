"""event_ingest under a real scheduler: LocalExecutor, PostgreSQL metadata database, the REST API.

One stack for the module (api-server, scheduler, dag-processor, triggerer). Its DAGs folder is a
temporary one holding a copy of ``dags/event_ingest.py`` and a downstream DAG scheduled on the
``event_ingest_events`` asset. The scheduled run that unpausing creates comes first (module fixture);
every case after it starts on an empty event database.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from include import generator
from tests.native.conftest import (
    DAG_ID,
    NativePipeline,
    assert_loaded_exactly,
    manifest_of_days,
    run_failure_report,
    running_stack,
)
from tools.airflow_local import AirflowApiError, AirflowStack

pytestmark = pytest.mark.native

ROOT = Path(__file__).resolve().parents[2]
DOWNSTREAM_ID = "event_ingest_downstream"
DOWNSTREAM_DAG = '''"""Runs on the event_ingest_events asset and returns what its events said."""

import pendulum
from airflow.sdk import DAG, Asset, task

with DAG(
    dag_id="event_ingest_downstream",
    schedule=[Asset(name="event_ingest_events", uri="event-ingest://events")],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
):

    @task
    def read_asset_events(*, triggering_asset_events=None):
        return [
            {"source_run_id": event.source_run_id, "extra": dict(event.extra)}
            for events in triggering_asset_events.values()
            for event in events
        ]

    read_asset_events()
'''
JUNE = [dt.date(2026, 6, 1), dt.date(2026, 6, 2), dt.date(2026, 6, 3)]
JUNE_CONF = {"start_date": "2026-06-01", "end_date": "2026-06-03", "batch_size": 8}
LOOKBACK_DAYS = 2


@pytest.fixture(scope="module")
def stack(
    native_pipeline: NativePipeline, airflow_template: str, tmp_path_factory: pytest.TempPathFactory
) -> AirflowStack:
    dags = tmp_path_factory.mktemp("dags")
    shutil.copy(ROOT / "dags" / "event_ingest.py", dags / "event_ingest.py")
    (dags / "event_ingest_downstream.py").write_text(DOWNSTREAM_DAG)
    home = tmp_path_factory.mktemp("airflow")
    with running_stack(native_pipeline, airflow_template, home, dags_folder=dags) as stack:
        stack.wait_for_dag(DAG_ID)
        stack.wait_for_dag(DOWNSTREAM_ID)
        yield stack


@pytest.fixture(scope="module")
def scheduled(stack: AirflowStack, native_pipeline: NativePipeline) -> dict[str, Any]:
    """Unpause the DAG once the bucket holds the last days: the scheduler creates the latest run."""
    today = dt.datetime.now(dt.UTC).date()
    days = [today - dt.timedelta(days=n) for n in range(LOOKBACK_DAYS + 3, -1, -1)]
    manifest = native_pipeline.seed(days, sessions_per_day=2, tags_per_session=3, seed=11)
    stack.unpause(DAG_ID)
    (run,) = stack.wait_for_runs(DAG_ID, 1, run_type="scheduled")
    return {
        "run": run,
        "manifest": manifest,
        "sessions": native_pipeline.sessions(),
        "events": native_pipeline.events(),
        "ingest_runs": native_pipeline.ingest_runs(),
        "report": run_failure_report(stack, DAG_ID, run["dag_run_id"]),
    }


@pytest.fixture(scope="module")
def june(native_pipeline: NativePipeline) -> generator.Manifest:
    """Three days of sessions in the bucket, every bad kind among them (on the first day)."""
    return native_pipeline.seed(
        JUNE, sessions_per_day=2, tags_per_session=3, bad_kinds=generator.BAD_KINDS, seed=5
    )


@pytest.fixture
def pipe(scheduled: dict[str, Any], native_pipeline: NativePipeline) -> NativePipeline:
    """The pipeline after the scheduled run, its event database and data directory emptied."""
    native_pipeline.reset()
    return native_pipeline


def assert_succeeded(stack: AirflowStack, run: dict[str, Any], dag_id: str = DAG_ID) -> None:
    assert run["state"] == "success", run_failure_report(stack, dag_id, run["dag_run_id"])


class TestScheduledRun:
    def test_unpausing_creates_the_latest_interval_run_which_loads_it_and_its_lookback(
        self, scheduled: dict[str, Any]
    ) -> None:
        run = scheduled["run"]
        assert run["state"] == "success", scheduled["report"]
        interval_day = dt.date.fromisoformat(run["data_interval_start"][:10])
        assert dt.date.fromisoformat(run["data_interval_end"][:10]) == interval_day + dt.timedelta(days=1)
        covered = [interval_day - dt.timedelta(days=n) for n in range(LOOKBACK_DAYS, -1, -1)]
        wanted = manifest_of_days(scheduled["manifest"], covered)
        assert set(scheduled["sessions"]) == set(wanted.sessions)
        assert len(scheduled["events"]) == sum(len(s.events) for s in wanted.sessions.values())
        ledger = scheduled["ingest_runs"][run["dag_run_id"]]
        assert (ledger["run_type"], ledger["state"]) == ("scheduled", "success")
        assert (str(ledger["first_day"]), str(ledger["last_day"])) == (str(covered[0]), str(covered[-1]))


class TestTriggerThroughTheRestApi:
    def test_date_range_conf_loads_exactly_the_generated_rows(
        self, stack: AirflowStack, pipe: NativePipeline, june: generator.Manifest
    ) -> None:
        run = stack.trigger(DAG_ID, conf=JUNE_CONF)
        assert run["conf"] == JUNE_CONF
        assert run["run_type"] == "manual"

        done = stack.wait_for_run(DAG_ID, run["dag_run_id"])

        assert_succeeded(stack, done)
        assert_loaded_exactly(pipe, june)
        summary = stack.xcom(DAG_ID, run["dag_run_id"], "summarize_run")
        assert summary["loaded_sessions"] == len(june.sessions)
        assert summary["loaded_events"] == sum(len(s.events) for s in june.sessions.values())
        tis = stack.task_instances(DAG_ID, run["dag_run_id"])
        batches = {ti["map_index"] for ti in tis if ti["task_id"] == "ingest_batch.load_to_db"}
        assert len(batches) > 1, "the range ran as a single batch"
        log = stack.task_log(DAG_ID, run["dag_run_id"], "summarize_run", 1)
        assert f"loaded_sessions={len(june.sessions)}" in log


class TestBadConf:
    @pytest.mark.parametrize(
        ("conf", "named"),
        [
            pytest.param({"start_date": "2026-02-30"}, "2026-02-30", id="impossible-date"),
            pytest.param({"start_date": "2026-06-01", "end_date": "June 3"}, "June 3", id="not-a-date"),
            pytest.param({"start_date": "2026-06-01", "batch_size": 0}, "batch_size", id="batch-size-zero"),
        ],
    )
    def test_a_value_the_params_refuse_is_a_400_and_no_run(
        self, stack: AirflowStack, pipe: NativePipeline, conf: dict[str, Any], named: str
    ) -> None:
        before = len(stack.dag_runs(DAG_ID))

        with pytest.raises(AirflowApiError) as refused:
            stack.trigger(DAG_ID, conf=conf)

        assert refused.value.status == 400
        assert named in str(refused.value.detail)
        assert len(stack.dag_runs(DAG_ID)) == before

    @pytest.mark.parametrize(
        ("conf", "message"),
        [
            pytest.param(
                {"start_date": "2026-06-03", "end_date": "2026-06-01"},
                "end_date 2026-06-01 is before start_date 2026-06-03",
                id="end-before-start",
            ),
            pytest.param({"start_date": "2026-06-01", "colour": "red"}, "colour", id="unknown-key"),
        ],
    )
    def test_a_conf_only_the_dag_can_judge_fails_its_first_task_at_once_and_writes_nothing(
        self, stack: AirflowStack, pipe: NativePipeline, june: generator.Manifest, conf: dict, message: str
    ) -> None:
        run = stack.trigger(DAG_ID, conf=conf)  # Params check values one by one: this one passes

        done = stack.wait_for_run(DAG_ID, run["dag_run_id"])

        assert done["state"] == "failed"
        tries = stack.task_tries(DAG_ID, run["dag_run_id"], "discover_sessions")
        assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed")], "retried a bad conf"
        log = stack.task_log(DAG_ID, run["dag_run_id"], "discover_sessions", 1)
        assert "bad conf" in log
        assert message in log
        assert not any(pipe.row_counts().values()), pipe.row_counts()
        assert pipe.local_files() == set()


class TestBackfill:
    def test_backfill_create_runs_each_day_once_and_loads_the_same_rows_as_a_range_trigger(
        self, stack: AirflowStack, pipe: NativePipeline, june: generator.Manifest
    ) -> None:
        stack.cli(
            "backfill", "create", "--dag-id", DAG_ID, "--from-date", "2026-06-01", "--to-date", "2026-06-03"
        )

        runs = stack.wait_for_runs(DAG_ID, 3, run_type="backfill")

        assert len(runs) == 3
        for run in runs:
            assert_succeeded(stack, run)
        assert sorted(run["data_interval_start"][:10] for run in runs) == [d.isoformat() for d in JUNE]
        ledger = pipe.ingest_runs()
        for run in runs:
            day = run["data_interval_start"][:10]
            row = ledger[run["dag_run_id"]]
            assert (str(row["first_day"]), str(row["last_day"])) == (day, day), "a backfill run left its day"
        assert_loaded_exactly(pipe, june)


def growing_part(data_dir: Path) -> Path | None:
    for part in data_dir.rglob("*.part"):
        try:
            if part.stat().st_size > 0:
                return part
        except FileNotFoundError:
            continue
    return None


class TestKilledTaskProcess:
    def test_a_download_killed_mid_transfer_is_retried_by_airflow_and_nothing_is_lost_or_doubled(
        self, stack: AirflowStack, pipe: NativePipeline
    ) -> None:
        day = dt.date(2026, 6, 10)
        # Tags big enough that a download lasts while the test finds and kills its process.
        manifest = pipe.seed([day], sessions_per_day=1, tags_per_session=2, tag_bytes=16 << 20, seed=61)
        run = stack.trigger(DAG_ID, conf={"start_date": day.isoformat()})
        run_id = run["dag_run_id"]
        deadline = time.monotonic() + 120
        while growing_part(pipe.data_dir) is None:
            assert time.monotonic() < deadline, "no download started"
            time.sleep(0.01)
        pipe.s3.pause()  # hold the transfer where it is
        try:
            (ti,) = [
                ti
                for ti in stack.task_instances(DAG_ID, run_id)
                if ti["task_id"] == "ingest_batch.download_audio" and ti["state"] == "running"
            ]
            pid = stack.task_process(ti["id"])
            assert pid is not None, stack.processes()
            os.kill(pid, signal.SIGKILL)
        finally:
            pipe.s3.resume()

        done = stack.wait_for_run(DAG_ID, run_id)

        assert_succeeded(stack, done)
        tries = stack.task_tries(DAG_ID, run_id, "ingest_batch.download_audio", ti["map_index"])
        states = [t["state"] for t in tries]
        assert states[0] == "failed", tries
        assert states[-1] == "success", tries
        assert_loaded_exactly(pipe, manifest)


class TestDownstreamOfTheAsset:
    def test_a_dag_scheduled_on_the_asset_runs_after_a_load_and_reads_its_days_and_counts(
        self, stack: AirflowStack, pipe: NativePipeline
    ) -> None:
        day = dt.date(2026, 6, 15)
        manifest = pipe.seed([day], sessions_per_day=2, tags_per_session=2, seed=71)
        stack.unpause(DOWNSTREAM_ID)
        try:
            run = stack.trigger(DAG_ID, conf={"start_date": day.isoformat()})
            assert_succeeded(stack, stack.wait_for_run(DAG_ID, run["dag_run_id"]))

            (downstream,) = stack.wait_for_runs(DOWNSTREAM_ID, 1, run_type="asset_triggered")
        finally:
            stack.pause(DOWNSTREAM_ID)

        assert_succeeded(stack, downstream, DOWNSTREAM_ID)
        events = stack.xcom(DOWNSTREAM_ID, downstream["dag_run_id"], "read_asset_events")
        (event,) = [e for e in events if e["source_run_id"] == run["dag_run_id"]]
        extra = event["extra"]
        assert extra["days"] == [day.isoformat()]
        assert (extra["first_day"], extra["last_day"]) == (day.isoformat(), day.isoformat())
        assert extra["loaded_sessions"] == len(manifest.sessions)
        assert extra["loaded_events"] == sum(len(s.events) for s in manifest.sessions.values())
