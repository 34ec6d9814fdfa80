"""DAG integrity: the DAG folder imports cleanly and event_ingest has the promised shape."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

BATCH_STEPS = [
    f"ingest_batch.{step}" for step in ("filter_existing", "fetch_metadata", "download_audio", "load_to_db")
]
STEPS = ["discover_sessions", *BATCH_STEPS]


class TestDagBag:
    def test_dag_folder_has_no_import_errors(self, airflow_db: object) -> None:
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(ROOT / "dags"))
        assert bag.import_errors == {}
        assert list(bag.dag_ids) == ["event_ingest"]

    def test_airflow_cli_lists_no_import_errors(self, airflow_db: object) -> None:
        result = subprocess.run(
            [str(Path(sys.executable).parent / "airflow"), "dags", "list-import-errors", "--local"],
            capture_output=True,
            text=True,
            env=os.environ.copy(),
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "No data found" in result.stdout

    def test_dag_file_does_no_io_at_parse_time(self) -> None:
        source = (ROOT / "dags" / "event_ingest.py").read_text()
        for forbidden in ("Variable.get", "get_connection", "S3Hook(", "MySqlHook(", "open("):
            assert forbidden not in source


class TestEventIngestDag:
    def test_steps_are_chained_in_order_then_summed_up_and_announced(self, event_ingest_dag: object) -> None:
        dag = event_ingest_dag
        for upstream, downstream in itertools.pairwise(STEPS):
            assert dag.get_task(upstream).downstream_task_ids == {downstream}
        assert dag.get_task(STEPS[-1]).downstream_task_ids == {"summarize_run", "emit_asset_event"}
        assert {t.task_id for t in dag.leaves} == {"summarize_run", "emit_asset_event"}

    def test_each_batch_flows_through_its_own_chain(self, event_ingest_dag: object) -> None:
        from airflow.sdk.definitions.taskgroup import MappedTaskGroup

        groups = [event_ingest_dag.get_task(task_id).task_group for task_id in BATCH_STEPS]
        assert all(group is groups[0] for group in groups)
        assert isinstance(groups[0], MappedTaskGroup)
        assert groups[0].group_id == "ingest_batch"

    def test_the_summary_and_the_asset_event_run_whatever_the_batches_did(
        self, event_ingest_dag: object
    ) -> None:
        from event_ingest.assets import EVENTS_ASSET

        for task_id in ("summarize_run", "emit_asset_event"):
            assert event_ingest_dag.get_task(task_id).trigger_rule == "all_done"
        assert event_ingest_dag.get_task("emit_asset_event").outlets == [EVENTS_ASSET]
        assert (EVENTS_ASSET.name, EVENTS_ASSET.uri) == ("event_ingest_events", "event-ingest://events/")

    def test_schedule_is_daily_over_whole_utc_days(self, event_ingest_dag: object) -> None:
        from airflow.sdk import CronDataIntervalTimetable

        timetable = event_ingest_dag.timetable
        assert isinstance(timetable, CronDataIntervalTimetable)
        assert timetable.expression == "0 0 * * *"
        assert str(timetable.timezone) == "UTC"

    def test_params_cover_the_conf(self, event_ingest_dag: object) -> None:
        from event_ingest.run_range import CONF_KEYS

        assert set(event_ingest_dag.params.keys()) == set(CONF_KEYS)
        assert event_ingest_dag.params["lookback_days"] is None  # the run's usual look-back
        assert event_ingest_dag.params["download_types"] == ["audio_tag"]

    def test_retries_back_off(self, event_ingest_dag: object) -> None:
        task = event_ingest_dag.get_task("discover_sessions")
        assert task.retries >= 1
        assert task.retry_exponential_backoff

    def test_tasks_take_connection_ids_not_credentials(self, event_ingest_dag: object) -> None:
        for task in event_ingest_dag.tasks:
            if hasattr(task, "aws_conn_id"):
                assert (task.aws_conn_id, task.db_conn_id) == ("event_ingest_s3", "event_ingest_db")
