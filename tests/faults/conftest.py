"""Fixtures of the fault tests: servers of their own, which a test may kill, restart or pause.

The session-wide SeaweedFS and MariaDB of ``tests/conftest.py`` serve every other test; a fault test
that crashed them would break its neighbours. These are started once for ``tests/faults`` and survive
any ``kill()`` / ``restart()`` a test does (the fixture starts them again if needed). PostgreSQL is
the machine's server, shared: tests get a database of their own on it and never kill the server (they
end their connection's backend instead).

``fault_pipeline`` runs on MariaDB unless a test parametrizes it (``indirect``) with a backend of
:data:`BACKENDS`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from event_ingest.timestamps import normalize
from include import generator
from tests.conftest import ROOT
from tests.support.pipeline import load_event_ingest_dag
from tests.support.stores import EventStore, MariaDbStore, PostgresStore, SqliteStore
from tools.dag_runs import RunResult, delete_runs, run_dag
from tools.services import MariaDbServer, MotoS3, SeaweedS3

#: The backends that run the same end-to-end fault cases (SQLite only where a file can take them).
BACKENDS = [pytest.param("mariadb", id="mariadb"), pytest.param("postgres", id="postgres")]


@pytest.fixture(scope="package")
def fault_s3() -> Iterator[SeaweedS3]:
    with SeaweedS3() as server:
        yield server


@pytest.fixture(scope="package")
def fault_mariadb() -> Iterator[MariaDbServer]:
    with MariaDbServer() as server:
        yield server


@pytest.fixture(scope="package")
def moto() -> Iterator[MotoS3]:
    """moto's server, for keys SeaweedFS normalises or refuses (``..``, control characters)."""
    with MotoS3() as server:
        yield server


class FaultPipeline:
    """The DAG wired to a fresh bucket, event database and data directory through the environment.

    :param s3: the S3 server holding ``bucket``.
    :param store: the event database (see :mod:`tests.support.stores`).
    """

    def __init__(
        self,
        *,
        s3: SeaweedS3 | MotoS3,
        store: EventStore,
        bucket: str,
        data_dir: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        self.store = store
        self.data_dir = data_dir
        self.monkeypatch = monkeypatch
        monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_DB", store.airflow_conn())
        monkeypatch.setenv("AIRFLOW_VAR_EVENT_INGEST_PREFIX", "")
        monkeypatch.setenv("AIRFLOW_VAR_EVENT_INGEST_DATA_DIR", str(data_dir))
        self.use_s3(s3, bucket)

    def use_s3(self, s3: SeaweedS3 | MotoS3, bucket: str) -> None:
        """Point the pipeline at ``bucket`` of ``s3`` (created if missing)."""
        self.s3 = s3
        self.bucket = bucket
        self.client = s3.client()
        generator.ensure_bucket(self.client, bucket)
        self.monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_S3", s3.airflow_conn_json())
        self.monkeypatch.setenv("AIRFLOW_VAR_EVENT_INGEST_BUCKET", bucket)

    def seed(self, days: list[dt.date], **kwargs: Any) -> generator.Manifest:
        return generator.generate_bucket(self.client, self.bucket, days=days, **kwargs)

    def run(self, conf: dict[str, Any] | None = None) -> RunResult:
        """One ``dag.test()`` run of the DAG, parsed afresh, with its retries."""
        return run_dag(load_event_ingest_dag(), conf=conf)

    def query(self, statement: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return self.store.query(statement, args)

    def table_exists(self, table: str) -> bool:
        return self.store.table_exists(table)

    def sessions(self) -> dict[str, dict[str, Any]]:
        rows = self.query("SELECT * FROM sessions")
        assert_unique([r["session_id"] for r in rows])
        return {r["session_id"]: r for r in rows}

    def events(self) -> dict[str, dict[str, Any]]:
        rows = self.query("SELECT * FROM events")
        assert_unique([r["s3_key"] for r in rows])
        return {r["s3_key"]: r for r in rows}

    def open_rejects(self) -> dict[str, dict[str, Any]]:
        rows = self.query("SELECT * FROM ingest_rejects WHERE resolved_at IS NULL")
        assert_unique([r["object_key"] for r in rows])
        return {r["object_key"]: r for r in rows}

    def runs(self) -> dict[str, dict[str, Any]]:
        return {r["dag_run_id"]: r for r in self.query("SELECT * FROM ingest_runs")}

    def local_files(self) -> dict[str, tuple[int, int, str]]:
        """Every file under the data directory: size, modification time (ns) and MD5, by relative path."""
        if not self.data_dir.exists():
            return {}
        return {
            str(p.relative_to(self.data_dir)): (
                p.stat().st_size,
                p.stat().st_mtime_ns,
                hashlib.md5(p.read_bytes()).hexdigest(),
            )
            for p in self.data_dir.rglob("*")
            if p.is_file()
        }

    def source_md5(self, key: str) -> str:
        """MD5 of the object as the bucket holds it now: what a verified download must match."""
        return hashlib.md5(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()).hexdigest()

    def close(self) -> None:
        delete_runs("event_ingest")


@pytest.fixture
def fault_pipeline(
    request: pytest.FixtureRequest,
    fault_s3: SeaweedS3,
    fault_mariadb: MariaDbServer,
    airflow_db: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[FaultPipeline]:
    """A fresh bucket, event database and data directory on the fault tests' own servers.

    Parametrize it (``indirect=True``) with ``"mariadb"``, ``"postgres"`` or ``"sqlite"``.
    """
    backend = getattr(request, "param", "mariadb")
    for server in (fault_s3, fault_mariadb):
        if not server.is_running:
            server.start()
    name = f"t{uuid.uuid4().hex[:12]}"
    store = new_store(request, backend, name, tmp_path)
    pipe = FaultPipeline(
        s3=fault_s3, store=store, bucket=name, data_dir=tmp_path / "data", monkeypatch=monkeypatch
    )
    try:
        yield pipe
    finally:
        pipe.close()
        for server in (fault_s3, fault_mariadb):
            server.resume()
            if not server.is_running:
                server.start()
        store.drop()


def new_store(request: pytest.FixtureRequest, backend: str, name: str, tmp_path: Path) -> EventStore:
    """A new, empty event database ``name`` of ``backend``."""
    if backend == "mariadb":
        return MariaDbStore(request.getfixturevalue("fault_mariadb"), name)
    if backend == "postgres":
        return PostgresStore(request.getfixturevalue("postgres"), name)
    if backend == "sqlite":
        return SqliteStore(tmp_path / f"{name}.sqlite3")
    raise ValueError(f"unknown backend {backend!r}")


def start_ingest_process(
    *args: str, env: dict[str, str] | None = None, **popen: Any
) -> subprocess.Popen[str]:
    """Start :mod:`tests.faults.ingest_process` (see its docstring for ``args``) in a new process."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.faults.ingest_process", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {}), "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'plugins'}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def task_tries(run_id: str) -> dict[str, int]:
    """Highest try number of each task of a run (``task_id`` or ``task_id[map_index]``)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.map_index, TaskInstance.try_number).where(
                TaskInstance.run_id == run_id
            )
        ).all()
    return {(t if m < 0 else f"{t}[{m}]"): n for t, m, n in rows}


def task_states(run_id: str) -> dict[str, str]:
    """Final state of each task of a run (``task_id`` or ``task_id[map_index]``)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.map_index, TaskInstance.state).where(
                TaskInstance.run_id == run_id
            )
        ).all()
    return {(t if m < 0 else f"{t}[{m}]"): str(s) for t, m, s in rows}


def assert_unique(keys: list[Any]) -> None:
    """No key twice: a dict built from the rows would hide a duplicate."""
    doubled = sorted({k for k in keys if keys.count(k) > 1}, key=repr)
    assert doubled == [], f"rows with the same key: {doubled}"


def db_time(value: dt.datetime | str | None) -> str | None:
    """A time as the backends return it (a naive UTC datetime, or text on SQLite), in database form."""
    if value is None or isinstance(value, str):
        return value
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def assert_loaded_exactly(
    pipe: FaultPipeline, manifest: generator.Manifest, *, sessions: set[str] | None = None
) -> None:
    """The database holds exactly the manifest's sessions and events (with ``sessions``: of those ids).

    Each row is compared with what the generator wrote: the session's day, report key and vehicle;
    each event's session, time, time source and frame; its size and MD5 against the object in the
    bucket (never against the local file alone); and each local file holds exactly those bytes.
    """
    wanted = {sid: s for sid, s in manifest.sessions.items() if sessions is None or sid in sessions}
    rows = [
        r for r in pipe.query("SELECT * FROM sessions") if sessions is None or r["session_id"] in sessions
    ]
    assert sorted(r["session_id"] for r in rows) == sorted(wanted)
    for row in rows:
        want = wanted[row["session_id"]]
        assert (str(row["session_date"]), row["report_key"], row["vehicle_id"]) == (
            want.day,
            want.report_key,
            want.vehicle_id,
        ), row
        assert row["event_count"] == len(want.events), row["session_id"]
    events = [
        r for r in pipe.query("SELECT * FROM events") if sessions is None or r["session_id"] in sessions
    ]
    expected = {e.key: (sid, e) for sid, s in wanted.items() for e in s.events.values()}
    assert sorted(r["s3_key"] for r in events) == sorted(expected)
    for row in events:
        session_id, want = expected[row["s3_key"]]
        assert (row["session_id"], row["time_source"], db_time(row["event_time"]), row["frame_id"]) == (
            session_id,
            want.time_source,
            normalize(want.event_time) if want.event_time else None,
            want.frame_id,
        ), row
        source_md5 = pipe.source_md5(row["s3_key"])
        assert row["md5"] == source_md5, row
        data = Path(row["local_path"]).read_bytes()
        assert (len(data), hashlib.md5(data).hexdigest()) == (row["size_bytes"], source_md5), row


def put_session(
    client: Any,
    bucket: str,
    day: dt.date,
    session_id: str,
    tags: dict[str, bytes],
    *,
    extra_files: Any = (),
    report_text: str | None = None,
    **fields: Any,
) -> str:
    """Upload a session of ``day`` with ``tags`` (relpath -> bytes), its report last; return the report's key.

    The report lists each tag with its size, MD5, a frame id and a timestamp, then ``extra_files``;
    ``fields`` override or add top-level fields (``report_session_id`` sets ``session_id``).
    ``report_text``, when given, is the report as written, with ``{files}`` standing for the file
    list: for reports no ``json.dumps`` of a dict would write (a 5,000-digit number, deep nesting).
    """
    folder = f"{day:%Y/%m/%d}/{session_id}/"
    start = f"{day.isoformat()}T08:00:00.000Z"
    entries = []
    for relpath, body in tags.items():
        client.put_object(Bucket=bucket, Key=folder + relpath, Body=body)
        entries.append(
            {
                "path": relpath,
                "type": "audio_tag",
                "size_bytes": len(body),
                "md5": hashlib.md5(body).hexdigest(),
                "frame_id": 1000 + len(entries),
                "timestamp": start,
            }
        )
    files = entries + list(extra_files)
    if report_text is None:
        report = {
            "session_id": fields.pop("report_session_id", session_id),
            "vehicle_id": "veh-odd",
            "start_time": start,
            "files": files,
            **fields,
        }
        body = json.dumps(report).encode()
    else:
        body = report_text.replace("{files}", json.dumps(files)).encode()
    key = f"{folder}{session_id}{generator.REPORT_SUFFIX}"
    client.put_object(Bucket=bucket, Key=key, Body=body)
    return key


def wav(n: int) -> bytes:
    """A small audio tag body, different for each ``n``."""
    return f"RIFF fake wav {n}".encode() * 8
