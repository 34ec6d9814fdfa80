"""End to end, by property: any day a bucket can hold ends loaded, deferred or rejected, and stays so.

Hypothesis draws whole days of hostile session folders (``tests/strategies.py``: any key S3 accepts,
names at the file system's limits, a file and a folder of one name, reports with any field hostile,
display logs of any bytes, a session id again under the next day) and writes them to a real S3
server: moto, which keeps every key as given, and SeaweedFS, with the keys it can hold. The whole
pipeline then runs twice over the two days through the package's batch runner (every step, each
batch through its XCom form between steps) into a real MariaDB. For every example:

- no step raises: bad data never fails a run;
- every session folder whose report is listed ends loaded, deferred, or rejected with a reason
  naming the problem (printable, non-empty), its report's key among the rejects;
- every event row has its file in the data directory, of its size, and nothing is written
  outside the data directory;
- the second run changes no row (but when and by which run a reject or deferral was last seen)
  and no file.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

from event_ingest import layout
from event_ingest.runner import Place, ingest
from event_ingest.safe_text import printable
from tests.hypothesis_profiles import end_to_end
from tests.strategies import bucket_days
from tools.services import MariaDbServer, MotoS3, SeaweedS3

pytestmark = pytest.mark.e2e

DAY = dt.date(2026, 11, 20)
DAYS = [DAY, DAY + dt.timedelta(days=1)]
SEEN = {"last_seen_at", "dag_run_id"}
TABLES = ("sessions", "events", "ingest_rejects", "ingest_deferrals", "ingest_days")


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoS3]:
    with MotoS3() as server:
        yield server


class Example:
    """One drawn day in a bucket and a database of its own, run through the pipeline."""

    def __init__(
        self, s3: SeaweedS3 | MotoS3, mariadb: MariaDbServer, objects: dict[str, bytes], workdir: Path
    ) -> None:
        self.name = f"p{uuid.uuid4().hex[:12]}"
        self.s3, self.mariadb, self.objects = s3, mariadb, objects
        self.data_dir = workdir / self.name / "data"
        self.data_dir.mkdir(parents=True)
        s3.create_bucket(self.name)
        client = s3.client()
        for key, body in objects.items():
            client.put_object(Bucket=self.name, Key=key, Body=body)
        mariadb.create_database(self.name)

    def run(self, run_id: str) -> Any:
        return ingest(Place(bucket=self.name, data_dir=self.data_dir, dag_run_id=run_id), DAYS, batch_size=3)

    def rows(self, table: str) -> list[dict[str, Any]]:
        conn = self.mariadb.connect(self.name, charset="utf8mb4")
        try:
            cursor = conn.cursor()
            cursor.execute(f"SELECT * FROM {table}")
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            conn.close()

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        return {
            table: sorted(
                (tuple(v for k, v in r.items() if k not in SEEN) for r in self.rows(table)), key=repr
            )
            for table in TABLES
        }

    def files(self) -> dict[str, tuple[int, int]]:
        return {
            str(p.relative_to(self.data_dir)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in self.data_dir.rglob("*")
            if p.is_file() and not p.name.startswith("event_ingest.sqlite3")
        }

    def report_keys(self) -> set[str]:
        """The keys the listing takes for reports: a folder's ``{id}_logged_Upload_Report.json``."""
        keys = set()
        for key in self.objects:
            parts = layout.split_session_key("", key)
            if parts and parts[0] in DAYS and layout.is_report(parts[1], parts[2]):
                keys.add(key)
        return keys

    def close(self) -> None:
        self.mariadb.drop_database(self.name)


def check(example: Example, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_DB", example.mariadb.airflow_conn_uri(example.name))
    first = example.run("run-1")
    snapshot, files = example.snapshot(), example.files()

    sessions = {r["report_key"] for r in example.rows("sessions")}
    deferred = {r["report_key"] for r in example.rows("ingest_deferrals")}
    rejects = example.rows("ingest_rejects")
    rejected = {r["object_key"] for r in rejects if r["resolved_at"] is None}
    for key in example.report_keys():
        assert key in sessions | deferred | rejected, f"{key!r} ended nowhere"
    for reject in rejects:
        assert reject["reason"]
        assert printable(reject["reason"]) == reject["reason"]
    assert first.discovered == len(example.report_keys())
    for event in example.rows("events"):
        local = Path(event["local_path"])
        assert local.is_relative_to(example.data_dir)
        assert local.stat().st_size == event["size_bytes"]
    assert all(".part" not in name for name in files)

    again = example.run("run-2")

    assert again.loaded_events == 0
    assert example.snapshot() == snapshot
    assert example.files() == files


@pytest.mark.parametrize("store", ["moto", "seaweedfs"])
def test_any_day_ends_loaded_deferred_or_rejected_and_a_rerun_changes_nothing(
    store: str,
    request: pytest.FixtureRequest,
    mariadb: MariaDbServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3: SeaweedS3 | MotoS3 = request.getfixturevalue("moto" if store == "moto" else "seaweed")
    monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_S3", s3.airflow_conn_json())

    @end_to_end(8)
    @given(bucket_days(day=DAY, store=store))
    def property_holds(objects: dict[str, bytes]) -> None:
        example = Example(s3, mariadb, objects, tmp_path)
        try:
            with monkeypatch.context() as patch:
                check(example, patch)
        finally:
            example.close()

    property_holds()
    written = [p.relative_to(tmp_path) for p in tmp_path.rglob("*") if not p.is_dir()]
    assert [p for p in written if len(p.parts) < 3 or p.parts[1] != "data"] == []  # all under a data dir
