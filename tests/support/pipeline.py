"""One end-to-end pipeline under test: a bucket, an event database and a data directory."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import pytest

from include import generator
from tools.dag_runs import RunResult, delete_runs, run_dag
from tools.services import MariaDbServer, SeaweedS3

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


class Pipeline:
    """Wires the DAG to a fresh bucket and database through ``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*``."""

    def __init__(
        self,
        *,
        load_dag: Callable[[], Any],
        s3: SeaweedS3,
        mariadb: MariaDbServer,
        bucket: str,
        database: str,
        data_dir: Path,
        monkeypatch: pytest.MonkeyPatch,
        prefix: str = "",
    ) -> None:
        self.load_dag = load_dag
        self.s3 = s3
        self.mariadb = mariadb
        self.bucket = bucket
        self.database = database
        self.data_dir = data_dir
        self.prefix = prefix
        self.client = s3.client()
        self._db = mariadb.connect(database)
        self._db.autocommit(True)
        monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_S3", s3.airflow_conn_json())
        monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_DB", mariadb.airflow_conn_uri(database))
        monkeypatch.setenv("AIRFLOW_VAR_EVENT_INGEST_BUCKET", bucket)
        monkeypatch.setenv("AIRFLOW_VAR_EVENT_INGEST_PREFIX", prefix)
        monkeypatch.setenv("AIRFLOW_VAR_EVENT_INGEST_DATA_DIR", str(data_dir))

    @classmethod
    @contextmanager
    def fresh(
        cls, *, s3: SeaweedS3, mariadb: MariaDbServer, data_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> Iterator[Self]:
        """A pipeline on a new bucket and database of these servers, dropped afterwards."""
        name = f"t{uuid.uuid4().hex[:12]}"
        s3.create_bucket(name)
        mariadb.create_database(name)
        pipe = cls(
            load_dag=load_event_ingest_dag,
            s3=s3,
            mariadb=mariadb,
            bucket=name,
            database=name,
            data_dir=data_dir,
            monkeypatch=monkeypatch,
        )
        try:
            yield pipe
        finally:
            pipe.close()
            mariadb.drop_database(name)

    def seed(self, days: list[dt.date], **kwargs: Any) -> generator.Manifest:
        return generator.generate_bucket(self.client, self.bucket, prefix=self.prefix, days=days, **kwargs)

    def run(self, logical_date: dt.datetime | None = None, conf: dict[str, Any] | None = None) -> RunResult:
        return run_dag(self.load_dag(), logical_date=logical_date, conf=conf)

    def query(self, statement: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        cursor = self._db.cursor()
        cursor.execute(statement, args)
        names = [d[0] for d in cursor.description] if cursor.description else []
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        cursor.close()
        return rows

    def table_exists(self, table: str) -> bool:
        return bool(self.query("SHOW TABLES LIKE %s", (table,)))

    def sessions(self) -> dict[str, dict[str, Any]]:
        return {r["session_id"]: r for r in self.query("SELECT * FROM sessions")}

    def events(self) -> dict[str, dict[str, Any]]:
        return {r["s3_key"]: r for r in self.query("SELECT * FROM events")}

    def open_rejects(self) -> dict[str, dict[str, Any]]:
        return {
            r["object_key"]: r for r in self.query("SELECT * FROM ingest_rejects WHERE resolved_at IS NULL")
        }

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of the result tables; rejects and deferrals less when and by which run last seen."""
        seen = {"last_seen_at", "dag_run_id"}

        def rows(table: str, leave_out: set[str] = frozenset()) -> list[tuple[Any, ...]]:
            return sorted(
                (
                    tuple(v for k, v in r.items() if k not in leave_out)
                    for r in self.query(f"SELECT * FROM {table}")
                ),
                key=repr,
            )

        return {
            "sessions": rows("sessions"),
            "events": rows("events"),
            "ingest_rejects": rows("ingest_rejects", seen),
            "ingest_deferrals": rows("ingest_deferrals", seen),
            "ingest_days": rows("ingest_days"),
        }

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

    def close(self) -> None:
        self._db.close()
        delete_runs("event_ingest")
