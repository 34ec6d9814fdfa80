"""event_ingest on Celery workers, for real: a Redis broker, two ``airflow celery worker`` processes.

One CeleryExecutor stack for the module: its own ``redis-server``, the result backend on the
PostgreSQL metadata database, workers ``celery-a`` and ``celery-b`` (concurrency 2 each), whose task
instances report the worker's name as their ``hostname``. The settings are the ones the compose
``celery`` profile uses (tests/deploy checks them). The scheduler's own schedule is off
(``use_job_schedule``): only the runs the cases trigger exist.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from typing import Any

import pytest

from tests.deploy import interpolate, load_compose
from tests.native.conftest import (
    DAG_ID,
    NativePipeline,
    assert_loaded_exactly,
    run_failure_report,
    running_stack,
)
from tools.airflow_local import AirflowStack, CeleryWorker

pytestmark = pytest.mark.native

WORKERS = (CeleryWorker("celery-a", concurrency=2), CeleryWorker("celery-b", concurrency=2))
BATCH_TASKS = ("filter_existing", "fetch_metadata", "download_audio", "load_to_db")
#: A task whose worker died stops heartbeating; after this many seconds the scheduler fails it, and
#: Airflow's retry sends it to a worker that is alive.
HEARTBEAT_TIMEOUT_S = 15


@pytest.fixture(scope="module")
def stack(
    native_pipeline: NativePipeline, airflow_template: str, tmp_path_factory: pytest.TempPathFactory
) -> AirflowStack:
    env = {
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_S),
    }
    with running_stack(
        native_pipeline,
        airflow_template,
        tmp_path_factory.mktemp("airflow-celery"),
        executor="CeleryExecutor",
        celery_workers=WORKERS,
        env=env,
    ) as stack:
        stack.wait_for_dag(DAG_ID)
        stack.unpause(DAG_ID)
        yield stack


@pytest.fixture
def pipe(native_pipeline: NativePipeline) -> NativePipeline:
    native_pipeline.reset()
    return native_pipeline


def where_it_ran(tis: list[dict[str, Any]]) -> str:
    """A table of the batch task instances: batch, task, try, worker."""
    rows = sorted(
        (ti["map_index"], ti["task_id"].split(".")[-1], ti["try_number"], ti["hostname"], ti["state"])
        for ti in tis
        if ti["map_index"] >= 0
    )
    return "\n".join(f"batch {b:>2} {task:<16} try {t} {host:<9} {state}" for b, task, t, host, state in rows)


class TestTwoWorkers:
    def test_the_compose_workers_healthcheck_passes_on_each_worker(self, stack: AirflowStack) -> None:
        _, command = load_compose()["services"]["airflow-worker"]["healthcheck"]["test"]
        for worker in WORKERS:
            # In a container HOSTNAME is the container's; here it is the worker's name.
            result = stack.shell(interpolate(command, {}), env={"HOSTNAME": worker.name})
            assert result.returncode == 0, result.stdout + result.stderr
            assert f"{worker.node}: OK" in result.stdout

    def test_every_batch_runs_each_of_its_steps_and_both_workers_take_part(
        self, stack: AirflowStack, pipe: NativePipeline
    ) -> None:
        day = dt.date(2026, 6, 20)
        manifest = pipe.seed([day], sessions_per_day=8, tags_per_session=2, seed=81)

        run = stack.trigger(DAG_ID, conf={"start_date": day.isoformat(), "batch_size": 2})
        done = stack.wait_for_run(DAG_ID, run["dag_run_id"])

        assert done["state"] == "success", run_failure_report(stack, DAG_ID, run["dag_run_id"])
        tis = stack.task_instances(DAG_ID, run["dag_run_id"])
        print(where_it_ran(tis))
        batches = [ti for ti in tis if ti["map_index"] >= 0]
        steps = Counter(ti["task_id"].split(".")[-1] for ti in batches if ti["state"] == "success")
        assert steps == {task: 4 for task in BATCH_TASKS}  # 8 sessions in batches of 2
        assert {ti["hostname"] for ti in tis} == {worker.name for worker in WORKERS}
        assert_loaded_exactly(pipe, manifest)


def wait_for_running_on(stack: AirflowStack, run_id: str, worker: str, timeout: float = 120) -> None:
    """Wait until a batch's task instance has just started on ``worker`` (so it is still running)."""
    deadline = time.monotonic() + timeout
    while True:
        now = dt.datetime.now(dt.UTC)
        if any(
            ti["state"] == "running"
            and ti["hostname"] == worker
            and ti["map_index"] >= 0
            and now - dt.datetime.fromisoformat(ti["start_date"]) < dt.timedelta(seconds=1)
            for ti in stack.task_instances(DAG_ID, run_id)
        ):
            return
        assert time.monotonic() < deadline, f"nothing started on {worker}"
        time.sleep(0.1)


class TestWorkerKilled:
    def test_the_killed_workers_tasks_are_retried_on_the_other_and_nothing_is_duplicated(
        self, stack: AirflowStack, pipe: NativePipeline
    ) -> None:
        day = dt.date(2026, 6, 21)
        manifest = pipe.seed([day], sessions_per_day=8, tags_per_session=2, seed=82)
        run = stack.trigger(DAG_ID, conf={"start_date": day.isoformat(), "batch_size": 2})
        run_id = run["dag_run_id"]
        victim, survivor = WORKERS[1].name, WORKERS[0].name
        wait_for_running_on(stack, run_id, victim)

        killed = stack.kill_component(victim)  # the worker, its pool and the task processes in it

        assert killed
        caught = [  # what was running there when it died: it can neither finish nor heartbeat now
            ti
            for ti in stack.task_instances(DAG_ID, run_id)
            if ti["state"] == "running" and ti["hostname"] == victim
        ]
        assert caught, "the worker died between tasks"
        done = stack.wait_for_run(DAG_ID, run_id, timeout=300)
        assert done["state"] == "success", run_failure_report(stack, DAG_ID, run_id)
        for ti in caught:
            tries = stack.task_tries(DAG_ID, run_id, ti["task_id"], ti["map_index"])
            assert tries[0]["hostname"] == victim, tries
            assert tries[-1]["state"] == "success", tries
            assert tries[-1]["hostname"] == survivor, tries
        tis = stack.task_instances(DAG_ID, run_id)
        print(where_it_ran(tis))
        assert_loaded_exactly(pipe, manifest)
        (ledger,) = pipe.ingest_runs().values()
        assert ledger["loaded_sessions"] == len(manifest.sessions)
        assert ledger["loaded_events"] == sum(len(s.events) for s in manifest.sessions.values())
