"""DAG integrity of event_ingest_on_upload: only with a queue, the daily DAG's steps, an SQS watcher."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ROOT

QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/drive-uploads"
DAG_ID = "event_ingest_on_upload"


def parse(monkeypatch: pytest.MonkeyPatch, queue_url: str | None) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    if queue_url is None:
        monkeypatch.delenv("EVENT_INGEST_SQS_QUEUE_URL", raising=False)
    else:
        monkeypatch.setenv("EVENT_INGEST_SQS_QUEUE_URL", queue_url)
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag


@pytest.fixture
def on_upload_dag(airflow_db: object, monkeypatch: pytest.MonkeyPatch) -> Any:
    return parse(monkeypatch, QUEUE_URL).dags[DAG_ID]


class TestDefinition:
    def test_is_absent_without_a_queue(self, airflow_db: object, monkeypatch: pytest.MonkeyPatch) -> None:
        assert set(parse(monkeypatch, None).dag_ids) == {"event_ingest"}

    def test_is_there_beside_the_daily_dag_with_a_queue(
        self, airflow_db: object, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        assert set(parse(monkeypatch, QUEUE_URL).dag_ids) == {"event_ingest", DAG_ID}

    def test_dag_file_does_no_io_at_parse_time(self) -> None:
        source = (ROOT / "dags" / f"{DAG_ID}.py").read_text()
        for forbidden in ("Variable.get", "get_connection", "Hook(", "boto3", "open("):
            assert forbidden not in source


class TestOnUploadDag:
    def test_runs_the_daily_dags_steps_after_its_own_discovery(self, on_upload_dag: Any) -> None:
        from tests.support.pipeline import load_event_ingest_dag

        daily = load_event_ingest_dag()
        assert set(on_upload_dag.task_ids) - {"discover_uploaded_sessions"} == set(daily.task_ids) - {
            "discover_sessions"
        }
        for task_id in daily.task_ids:
            if task_id != "discover_sessions":
                assert type(on_upload_dag.get_task(task_id)) is type(daily.get_task(task_id))
        discover = on_upload_dag.get_task("discover_uploaded_sessions")
        assert discover.downstream_task_ids == daily.get_task("discover_sessions").downstream_task_ids

    def test_is_scheduled_on_the_uploads_asset_that_its_discovery_reads(self, on_upload_dag: Any) -> None:
        from airflow.sdk import Asset

        (asset,) = on_upload_dag.timetable.asset_condition.objects
        assert isinstance(asset, Asset)
        assert (asset.name, asset.uri) == ("event_ingest_uploads", "event-ingest://uploads/")
        assert on_upload_dag.get_task("discover_uploaded_sessions").inlets == [asset]

    def test_the_assets_watcher_polls_the_queue_with_the_sqs_trigger(self, on_upload_dag: Any) -> None:
        (asset,) = on_upload_dag.timetable.asset_condition.objects
        (watcher,) = asset.watchers
        classpath, kwargs = watcher.trigger.serialize()
        assert classpath == "airflow.providers.amazon.aws.triggers.sqs.SqsSensorTrigger"
        assert kwargs["sqs_queue"] == QUEUE_URL
        assert kwargs["aws_conn_id"] == "aws_default"
        assert kwargs["max_messages"] == 10

    def test_a_moto_queue_url_is_matched_by_scheme(
        self, airflow_db: object, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        dag = parse(monkeypatch, "http://127.0.0.1:5000/123456789012/uploads").dags[DAG_ID]
        (asset,) = dag.timetable.asset_condition.objects
        assert (
            asset.watchers[0].trigger.serialize()[1]["sqs_queue"]
            == "http://127.0.0.1:5000/123456789012/uploads"
        )

    def test_the_triggers_connection_can_be_changed(
        self, airflow_db: object, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("EVENT_INGEST_SQS_CONN_ID", "event_ingest_sqs")
        (asset,) = parse(monkeypatch, QUEUE_URL).dags[DAG_ID].timetable.asset_condition.objects
        assert asset.watchers[0].trigger.serialize()[1]["aws_conn_id"] == "event_ingest_sqs"

    def test_runs_one_at_a_time(self, on_upload_dag: Any) -> None:
        assert on_upload_dag.max_active_runs == 1

    def test_takes_the_batch_params_and_connection_ids(self, on_upload_dag: Any) -> None:
        from event_ingest.dag_shape import batch_params

        assert set(on_upload_dag.params.keys()) == set(batch_params())
        task = on_upload_dag.get_task("discover_uploaded_sessions")
        assert (task.aws_conn_id, task.db_conn_id) == ("event_ingest_s3", "event_ingest_db")
        assert task.retries >= 1

    def test_serializes_as_the_dag_processor_stores_it(self, on_upload_dag: Any) -> None:
        from airflow.serialization.serialized_objects import DagSerialization

        serialized = DagSerialization.to_dict(on_upload_dag)
        assert DagSerialization.from_dict(serialized).dag_id == DAG_ID
