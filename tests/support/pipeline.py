"""One end-to-end pipeline under test: a bucket, an event database and a data directory."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import pytest

from include import generator
from tests.support.stores import EventStore
from tools.dag_runs import RunResult, delete_runs, run_dag
from tools.services import SeaweedS3

ROOT = Path(__file__).resolve().parents[2]


def load_event_ingest_dag() -> Any:
    """Parse the DAG file afresh, as each task process does in production.

    ``dag.test()`` runs tasks in-process and merges a run's conf into the
    task objects' params, so one parsed DAG must not serve two runs.
    """
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags["event_ingest"]


def airflow_dags_test(
    conf: dict[str, Any], logical_date: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``airflow dags test event_ingest`` with ``conf``, as a user runs the CLI, in the test's environment."""
    command = [str(Path(sys.executable).parent / "airflow"), "dags", "test", "event_ingest"]
    command += [logical_date] if logical_date else []
    return subprocess.run(
        [*command, "-c", json.dumps(conf)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=600,
        check=False,
    )


class Pipeline:
    """Wires the DAG to a fresh bucket and event database through ``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*``.

    :param store: the event database the DAG writes (MariaDB or PostgreSQL, see :mod:`tests.support.stores`).
    """

    def __init__(
        self,
        *,
        load_dag: Callable[[], Any],
        s3: SeaweedS3,
        store: EventStore,
        bucket: str,
        data_dir: Path,
        monkeypatch: pytest.MonkeyPatch,
        prefix: str = "",
    ) -> None:
        self.load_dag = load_dag
        self.s3 = s3
        self.store = store
        self.bucket = bucket
        self.data_dir = data_dir
        self.prefix = prefix
        self.client = s3.client()
        monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_S3", s3.airflow_conn_json())
        monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_DB", store.airflow_conn())
        monkeypatch.setenv("AIRFLOW_VAR_EVENT_INGEST_BUCKET", bucket)
        monkeypatch.setenv("AIRFLOW_VAR_EVENT_INGEST_PREFIX", prefix)
        monkeypatch.setenv("AIRFLOW_VAR_EVENT_INGEST_DATA_DIR", str(data_dir))

    @classmethod
    @contextmanager
    def fresh(
        cls,
        *,
        s3: SeaweedS3,
        make_store: Callable[[str], EventStore],
        data_dir: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> Iterator[Self]:
        """A pipeline on a new bucket and a new database (``make_store(name)``), dropped afterwards."""
        name = f"t{uuid.uuid4().hex[:12]}"
        s3.create_bucket(name)
        store = make_store(name)
        pipe = cls(
            load_dag=load_event_ingest_dag,
            s3=s3,
            store=store,
            bucket=name,
            data_dir=data_dir,
            monkeypatch=monkeypatch,
        )
        try:
            yield pipe
        finally:
            delete_runs("event_ingest")
            store.drop()

    def seed(self, days: list[dt.date], **kwargs: Any) -> generator.Manifest:
        return generator.generate_bucket(self.client, self.bucket, prefix=self.prefix, days=days, **kwargs)

    def run(self, logical_date: dt.datetime | None = None, conf: dict[str, Any] | None = None) -> RunResult:
        return run_dag(self.load_dag(), logical_date=logical_date, conf=conf)

    def query(self, statement: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Rows as dicts, read on a connection of their own (``%s`` placeholders on every backend)."""
        return self.store.query(statement, args)

    def table_exists(self, table: str) -> bool:
        return self.store.table_exists(table)

    def sessions(self) -> dict[str, dict[str, Any]]:
        return self.store.sessions()

    def events(self) -> dict[str, dict[str, Any]]:
        return self.store.events()

    def open_rejects(self) -> dict[str, dict[str, Any]]:
        return self.store.open_rejects()

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of the result tables; rejects and deferrals less when and by which run last seen."""
        seen = {"last_seen_at", "dag_run_id"}
        return self.store.snapshot({"ingest_rejects": seen, "ingest_deferrals": seen})

    def source_etags(self) -> dict[str, str]:
        """The ETag of every object in the bucket: an MD5 of the bytes for single-part uploads."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return {o["Key"]: o["ETag"].strip('"') for page in pages for o in page.get("Contents", [])}

    def runs(self) -> dict[str, dict[str, Any]]:
        return {r["dag_run_id"]: r for r in self.query("SELECT * FROM ingest_runs")}

    def local_files(self) -> set[str]:
        if not self.data_dir.exists():
            return set()
        return {str(p.relative_to(self.data_dir)) for p in self.data_dir.rglob("*") if p.is_file()}
