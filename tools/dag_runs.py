"""Run the ``event_ingest`` DAG in-process with ``dag.test()`` and read what it did.

Shared by the demo and the end-to-end tests: no scheduler, the same tasks and
operators, the run's summary read back from the ``summarize_run`` XCom.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SUMMARY_TASK = "summarize_run"
SUMMARY_FIELDS = ("discovered", "loaded_sessions", "loaded_events", "skipped", "deferred", "rejected")


def airflow_environment(home: Path) -> dict[str, str]:
    """The environment that runs this project's DAGs with Airflow's home at ``home``.

    It must be in ``os.environ`` before anything imports Airflow, which reads
    its configuration once.
    """
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }


@dataclass
class RunResult:
    """A finished run: its state, its summary and how its task instances ended."""

    run_id: str
    state: str
    summary: dict[str, int] | None
    task_states: dict[str, Counter[str]] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.state == "success"


def run_dag(
    dag: Any, *, logical_date: dt.datetime | None = None, conf: dict[str, Any] | None = None
) -> RunResult:
    """Run ``dag`` once through ``dag.test()``; a manual run without a logical date if none is given."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    dag_run = dag.test(logical_date=logical_date, run_conf=conf)
    with create_session() as session:
        rows = session.scalars(
            XComModel.get_many(
                run_id=dag_run.run_id, key="return_value", task_ids=SUMMARY_TASK, dag_ids=dag.dag_id
            )
        ).all()
        summary = XComModel.deserialize_value(rows[0]) if rows else None
        task_states: dict[str, Counter[str]] = {}
        for ti in dag_run.get_task_instances(session=session):
            task_states.setdefault(ti.task_id, Counter())[str(ti.state)] += 1
    return RunResult(dag_run.run_id, str(dag_run.state), summary, task_states)


def delete_runs(dag_id: str) -> None:
    """Forget every run of ``dag_id``, so that ``dag.test()`` of a date starts afresh."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        for dag_run in session.scalars(select(DagRun).where(DagRun.dag_id == dag_id)):
            session.delete(dag_run)


def summary_table(summary: dict[str, int] | None) -> str:
    """Format a run's summary as a two-column text table."""
    summary = summary or {}
    width = max(len(name) for name in SUMMARY_FIELDS)
    lines = [f"{'outcome':<{width}}  count", f"{'-' * width}  -----"]
    lines += [f"{name:<{width}}  {summary.get(name, 0):>5}" for name in SUMMARY_FIELDS]
    return "\n".join(lines)
