"""DAG integrity: the DAG folder imports cleanly and event_ingest has the promised shape."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

STEPS = ["discover_sessions", "filter_existing", "fetch_metadata", "download_audio", "load_to_db"]


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
    def test_steps_are_chained_in_order(self, event_ingest_dag: object) -> None:
        dag = event_ingest_dag
        for upstream, downstream in zip(STEPS, [*STEPS[1:], "summarize_run"], strict=True):
            assert downstream in dag.get_task(upstream).downstream_task_ids

    @pytest.mark.parametrize("task_id", STEPS[1:])
    def test_batch_steps_are_mapped(self, event_ingest_dag: object, task_id: str) -> None:
        from airflow.sdk.definitions.mappedoperator import MappedOperator

        assert isinstance(event_ingest_dag.get_task(task_id), MappedOperator)

    def test_schedule_is_daily_over_whole_utc_days(self, event_ingest_dag: object) -> None:
        from airflow.sdk import CronDataIntervalTimetable

        timetable = event_ingest_dag.timetable
        assert isinstance(timetable, CronDataIntervalTimetable)
        assert timetable.expression == "0 0 * * *"
        assert str(timetable.timezone) == "UTC"

    def test_params_cover_the_conf(self, event_ingest_dag: object) -> None:
        from event_ingest.run_range import CONF_KEYS

        assert set(event_ingest_dag.params.keys()) == set(CONF_KEYS)
        assert event_ingest_dag.params["lookback_days"] == 2

    def test_retries_back_off(self, event_ingest_dag: object) -> None:
        task = event_ingest_dag.get_task("discover_sessions")
        assert task.retries >= 1
        assert task.retry_exponential_backoff

    def test_tasks_take_connection_ids_not_credentials(self, event_ingest_dag: object) -> None:
        task = event_ingest_dag.get_task("discover_sessions")
        assert task.aws_conn_id == "event_ingest_s3"
        assert task.db_conn_id == "event_ingest_db"
