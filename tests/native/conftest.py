"""Fixtures of the tests under a real Airflow: real processes, a PostgreSQL metadata database, the REST API.

Each test module starts one :class:`tools.airflow_local.AirflowStack` and reuses it across its cases;
the servers (SeaweedFS, the throwaway MariaDB) are the suite's session fixtures. The DAG reaches its
bucket, event database and data directory through the ``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*``
environment the stack is started with, so every case of a module shares them: ``NativePipeline.reset``
empties the event database and the data directory between cases.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from event_ingest.timestamps import normalize
from include import generator
from tools.airflow_local import AirflowStack, migrated_template
from tools.services import MariaDbServer, SeaweedS3

DAG_ID = "event_ingest"


class NativePipeline:
    """The bucket, event database (MariaDB) and data directory that a stack's DAG works on."""

    def __init__(self, *, s3: SeaweedS3, mariadb: MariaDbServer, data_dir: Path) -> None:
        self.s3 = s3
        self.mariadb = mariadb
        self.data_dir = data_dir
        self.name = f"n{uuid.uuid4().hex[:12]}"
        self.client = s3.client()
        s3.create_bucket(self.name)
        mariadb.create_database(self.name)
        self._db = mariadb.connect(self.name)
        self._db.autocommit(True)

    def airflow_env(self) -> dict[str, str]:
        """The DAG's connections and variables, for the stack's environment."""
        return {
            "AIRFLOW_CONN_EVENT_INGEST_S3": self.s3.airflow_conn_json(),
            "AIRFLOW_CONN_EVENT_INGEST_DB": self.mariadb.airflow_conn_uri(self.name),
            "AIRFLOW_VAR_EVENT_INGEST_BUCKET": self.name,
            "AIRFLOW_VAR_EVENT_INGEST_PREFIX": "",
            "AIRFLOW_VAR_EVENT_INGEST_DATA_DIR": str(self.data_dir),
        }

    def seed(self, days: list[dt.date], **kwargs: Any) -> generator.Manifest:
        return generator.generate_bucket(self.client, self.name, days=days, **kwargs)

    def query(self, statement: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        cursor = self._db.cursor()
        cursor.execute(statement, args)
        names = [d[0] for d in cursor.description] if cursor.description else []
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        cursor.close()
        return rows

    def tables(self) -> list[str]:
        return [next(iter(row.values())) for row in self.query("SHOW TABLES")]

    def row_counts(self) -> dict[str, int]:
        return {table: self.query(f"SELECT COUNT(*) AS n FROM `{table}`")[0]["n"] for table in self.tables()}

    def sessions(self) -> dict[str, dict[str, Any]]:
        return {r["session_id"]: r for r in self.query("SELECT * FROM sessions")}

    def events(self) -> dict[str, dict[str, Any]]:
        return {r["s3_key"]: r for r in self.query("SELECT * FROM events")}

    def open_rejects(self) -> dict[str, dict[str, Any]]:
        return {
            r["object_key"]: r for r in self.query("SELECT * FROM ingest_rejects WHERE resolved_at IS NULL")
        }

    def ingest_runs(self) -> dict[str, dict[str, Any]]:
        return {r["dag_run_id"]: r for r in self.query("SELECT * FROM ingest_runs")}

    def local_files(self) -> set[str]:
        if not self.data_dir.exists():
            return set()
        return {str(p.relative_to(self.data_dir)) for p in self.data_dir.rglob("*") if p.is_file()}

    def reset(self) -> None:
        """Empty every table of the event database and the data directory (the bucket stays)."""
        for table in self.tables():
            self.query(f"TRUNCATE TABLE `{table}`")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def close(self) -> None:
        self._db.close()
        self.mariadb.drop_database(self.name)


def manifest_of_days(manifest: generator.Manifest, days: list[dt.date]) -> generator.Manifest:
    """The part of ``manifest`` whose sessions lie on ``days`` (rejects and deferrals of those days)."""
    wanted = {day.isoformat() for day in days}
    sessions = {sid: s for sid, s in manifest.sessions.items() if s.day in wanted}
    prefixes = tuple(f"{day:%Y/%m/%d}/" for day in days)
    rejects = [r for r in manifest.rejects if r.object_key.startswith(prefixes)]
    return generator.Manifest(sessions=sessions, rejects=rejects, deferred=[])


def db_time(value: dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if value else None


def assert_loaded_exactly(pipe: NativePipeline, manifest: generator.Manifest) -> None:
    """Sessions, events (times, files) and open rejects are exactly the manifest's: none lost, none extra."""
    sessions = pipe.sessions()
    assert set(sessions) == set(manifest.sessions)
    events = pipe.events()
    expected = {e.key: e for s in manifest.sessions.values() for e in s.events.values()}
    assert set(events) == set(expected)
    for key, want in expected.items():
        row = events[key]
        assert row["time_source"] == want.time_source, key
        assert db_time(row["event_time"]) == (normalize(want.event_time) if want.event_time else None), key
        assert row["frame_id"] == want.frame_id, key
        local = Path(row["local_path"])
        assert local.is_relative_to(pipe.data_dir), key
        data = local.read_bytes()
        assert len(data) == row["size_bytes"], key
        assert row["md5"] is None or hashlib.md5(data).hexdigest() == row["md5"], key
    for session_id, want in manifest.sessions.items():
        assert sessions[session_id]["event_count"] == len(want.events), session_id
        assert sessions[session_id]["session_date"].isoformat() == want.day, session_id
    assert set(pipe.open_rejects()) == {r.object_key for r in manifest.rejects}
    wavs = {str(p) for p in pipe.data_dir.rglob("*.wav")}
    assert wavs == {row["local_path"] for row in events.values()}


def run_failure_report(stack: AirflowStack, dag_id: str, run_id: str) -> str:
    """The states of a run's task instances and the logs of the failed ones, for assertion messages."""
    lines = []
    for ti in stack.task_instances(dag_id, run_id):
        lines.append(f"{ti['task_id']}[{ti['map_index']}] try {ti['try_number']}: {ti['state']}")
        if ti["state"] == "failed":
            text = stack.task_log(dag_id, run_id, ti["task_id"], ti["try_number"], ti["map_index"])
            lines.append(text[-3000:])
    return "\n".join(lines)


@contextmanager
def running_stack(
    pipeline: NativePipeline, template: str, home: Path, **options: Any
) -> Iterator[AirflowStack]:
    """A stack on a PostgreSQL metadata database (a copy of ``template``), wired to ``pipeline``;
    afterwards, no process left."""
    env = {**pipeline.airflow_env(), "EVENT_INGEST_RETRY_DELAY_S": "1", **options.pop("env", {})}
    stack = AirflowStack(home, env=env, metadata_template=template, **options)
    stack.start()
    sessions = dict(stack.sessions)
    try:
        yield stack
    finally:
        stack.stop()
        assert not left_behind(sessions), left_behind(sessions)


def left_behind(sessions: dict[int, str]) -> list[str]:
    """What ``ps`` still shows of these sessions."""
    listing = subprocess.run(
        ["ps", "-eo", "sess=,pid=,stat=,args="], capture_output=True, text=True, check=True
    ).stdout
    return [
        line
        for line in listing.splitlines()
        if line.split(None, 1)[0].isdigit()
        and int(line.split(None, 1)[0]) in sessions
        and "Z" not in line.split()[2]
    ]


@pytest.fixture(scope="session")
def airflow_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated metadata database that each module's stack copies (a migration per stack is slow)."""
    with migrated_template(tmp_path_factory.mktemp("airflow-template")) as name:
        yield name


@pytest.fixture(scope="module")
def native_pipeline(seaweed: SeaweedS3, mariadb: MariaDbServer, tmp_path_factory: pytest.TempPathFactory):
    pipe = NativePipeline(s3=seaweed, mariadb=mariadb, data_dir=tmp_path_factory.mktemp("native") / "data")
    try:
        yield pipe
    finally:
        pipe.close()
