"""The ``pipeline`` variant: the package's own batch runner, :func:`event_ingest.runner.ingest`.

Every step of every batch runs in this process the way the DAG's tasks run them: each step builds
its hook, client and database connection afresh, and each batch crosses each step boundary in its
XCom form. Left out: Airflow's own cost per task instance (scheduling, the task process, XCom
storage), which the ``dags-test`` and ``local-executor`` scenarios measure, and the import of Airflow
and of the DAG file's modules, which a task process has done before its task starts.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tools.bench.measure import S3Requests, SqlRoundTrips

T = TypeVar("T")


def run(config: dict[str, Any], s3: S3Requests, sql: SqlRoundTrips) -> dict[str, Any]:
    # What a task process has imported when its task starts (its DAG file's imports): not the task's
    # time. The hooks, boto3 and obstore are imported inside the steps, as in a task.
    import event_ingest.operators  # noqa: F401
    from event_ingest.runner import Place, ingest

    place = Place(
        bucket=config["bucket"],
        data_dir=Path(config["data_dir"]),
        concurrency=config["concurrency"],
        data_plane=config["data_plane"],
        file_types=tuple(config["file_types"]),
    )
    step_s: dict[str, float] = {}
    sql_per_step: dict[str, int] = {}
    xcom_bytes: dict[str, int] = {}
    batches = 0

    def on_step(name: str, call: Callable[[], T]) -> T:
        nonlocal batches
        started, statements = time.perf_counter(), sql.read()
        result = call()
        step_s[name] = step_s.get(name, 0.0) + time.perf_counter() - started
        sql_per_step[name] = sql_per_step.get(name, 0) + sql.read() - statements
        if name == "discover":
            batches = len(result)  # type: ignore[arg-type]
            size = sum(len(json.dumps(batch.to_xcom())) for batch in result)  # type: ignore[attr-defined]
        else:  # a batch's XCom, or the load step's summary
            size = len(json.dumps(result if isinstance(result, dict) else vars(result)))
        xcom_bytes[name] = xcom_bytes.get(name, 0) + size
        return result

    started = time.perf_counter()
    summary = ingest(
        place, [dt.date.fromisoformat(config["day"])], batch_size=config["batch_size"], on_step=on_step
    )
    wall = time.perf_counter() - started
    return {
        "wall_s": wall,
        "batches": batches,
        "sessions": summary.loaded_sessions,
        "events": summary.loaded_events,
        "rejected": summary.rejected,
        "step_s": step_s,
        "sql_per_step": sql_per_step,
        "xcom_bytes": xcom_bytes,
    }
