"""Fixtures of the fault tests: servers of their own, which a test may kill, restart or pause.

The session-wide SeaweedFS and MariaDB of ``tests/conftest.py`` serve every other test; a fault test
that crashed them would break its neighbours. These are started once for ``tests/faults`` and survive
any ``kill()`` / ``restart()`` a test does (the fixture starts them again if needed).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from include.services import MariaDbServer, SeaweedS3
from tests.conftest import ROOT
from tests.support.pipeline import Pipeline


@pytest.fixture(scope="package")
def fault_s3() -> Iterator[SeaweedS3]:
    with SeaweedS3() as server:
        yield server


@pytest.fixture(scope="package")
def fault_mariadb() -> Iterator[MariaDbServer]:
    with MariaDbServer() as server:
        yield server


class FaultPipeline(Pipeline):
    """A :class:`Pipeline` whose reads open a fresh connection: the database may restart under it."""

    def query(self, statement: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        conn = self.mariadb.connect(self.database)
        try:
            cursor = conn.cursor()
            cursor.execute(statement, args)
            names = [d[0] for d in cursor.description] if cursor.description else []
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            conn.close()

    def close(self) -> None:
        self._db.close()
        from include.dag_runs import delete_runs

        delete_runs("event_ingest")


@pytest.fixture
def fault_pipeline(
    fault_s3: SeaweedS3,
    fault_mariadb: MariaDbServer,
    airflow_db: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[FaultPipeline]:
    """A fresh bucket, database and data directory on the fault tests' own servers."""
    for server in (fault_s3, fault_mariadb):
        if not server.is_running:
            server.start()
    with FaultPipeline.fresh(
        s3=fault_s3, mariadb=fault_mariadb, data_dir=tmp_path / "data", monkeypatch=monkeypatch
    ) as pipe:
        try:
            yield pipe
        finally:
            for server in (fault_s3, fault_mariadb):
                server.resume()
                if not server.is_running:
                    server.start()


def run_steps_process(*args: str, env: dict[str, str] | None = None, **popen: Any) -> subprocess.Popen[str]:
    """Start ``tests/faults/steps_runner.py`` in a new process (see its docstring for ``args``)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.faults.steps_runner", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {}), "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'plugins'}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


_VOLATILE = {"ingested_at", "updated_at", "first_seen_at", "last_seen_at", "dag_run_id"}


def semantic_state(mariadb: MariaDbServer, database: str, data_dir: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the event database less when and by which run it was written.

    ``local_path`` is made relative to ``data_dir`` and ``resolved_at`` reduced to open or resolved, so
    that two databases filled by different runs compare equal when they hold the same data.
    """
    conn = mariadb.connect(database)
    state: dict[str, list[tuple[Any, ...]]] = {}
    try:
        for table in ("sessions", "events", "ingest_rejects"):
            cursor = conn.cursor()
            cursor.execute(f"SELECT * FROM {table}")
            names = [d[0] for d in cursor.description]
            rows = []
            for values in cursor.fetchall():
                row = dict(zip(names, values, strict=True))
                if row.get("local_path"):
                    row["local_path"] = str(Path(row["local_path"]).relative_to(data_dir))
                if "resolved_at" in row:
                    row["resolved_at"] = row["resolved_at"] is not None
                rows.append(tuple(v for k, v in row.items() if k not in _VOLATILE))
            state[table] = sorted(rows, key=repr)
    finally:
        conn.close()
    return state


def assert_no_half_written_session(mariadb: MariaDbServer, database: str) -> list[tuple[str, int, int]]:
    """Return the sessions whose ``event_count`` disagrees with their rows in ``events`` (one statement).

    One statement reads one consistent snapshot in InnoDB, so a session and its events are seen as of
    the same moment.
    """
    conn = mariadb.connect(database)
    try:
        cursor = conn.cursor()
        cursor.execute(
            "SELECT s.session_id, s.event_count,"
            " (SELECT COUNT(*) FROM events e WHERE e.session_id = s.session_id) FROM sessions s"
        )
        return [row for row in cursor.fetchall() if row[1] != row[2]]
    finally:
        conn.close()


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


def assert_loaded_exactly(pipe: Pipeline, manifest: Any) -> None:
    """Sessions and events are exactly the manifest's, each local file complete and verified."""
    import hashlib

    sessions = pipe.sessions()
    assert set(sessions) == set(manifest.sessions)
    events = pipe.events()
    expected = {e.key: e for s in manifest.sessions.values() for e in s.events.values()}
    assert set(events) == set(expected)
    for row in events.values():
        local = Path(row["local_path"])
        data = local.read_bytes()
        assert len(data) == row["size_bytes"], local
        assert row["md5"] is None or hashlib.md5(data).hexdigest() == row["md5"], local
    for session_id, want in manifest.sessions.items():
        assert sessions[session_id]["event_count"] == len(want.events), session_id
