"""Credentials never reach task logs, XComs or the event database."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from event_ingest.model import Batch
from tests.faults.conftest import FaultPipeline
from tests.support.stores import RESULT_TABLES
from tools.services import SeaweedS3

pytestmark = pytest.mark.faults

SECRET = "Zq7-SECRET-canary-4f1e9b2d7a"
DAY = dt.date(2026, 11, 24)


def xcom_texts(run_id: str) -> list[str]:
    """Every XCom of a run as text, batches decoded: their records travel compressed."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        values = [
            XComModel.deserialize_value(row)
            for row in session.scalars(select(XComModel).where(XComModel.run_id == run_id))
        ]
    texts = []
    for value in values:
        if isinstance(value, list):  # discovery's batches
            texts += [json.dumps(Batch.from_xcom(item).to_dict()) for item in value if "payload" in item]
        elif isinstance(value, dict) and "payload" in value:
            texts.append(json.dumps(Batch.from_xcom(value).to_dict()))
        texts.append(json.dumps(value, default=str))
    return texts


@pytest.fixture(scope="module")
def secret_s3() -> Iterator[SeaweedS3]:
    with SeaweedS3(access_key="canary-key", secret_key=SECRET) as server:
        yield server


def test_secret_key_is_in_no_log_xcom_or_table(
    fault_pipeline: FaultPipeline,
    secret_s3: SeaweedS3,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    pipe = fault_pipeline
    pipe.use_s3(secret_s3, pipe.bucket)
    manifest = pipe.seed([DAY], sessions_per_day=2, bad_kinds=["md5_mismatch", "malformed_json"], seed=81)

    good = pipe.run(conf={"start_date": DAY.isoformat()})
    xcoms = xcom_texts(good.run_id)  # read now: a later dag.test() of the DAG may clear them
    # A run whose requests the server refuses: errors are where credentials would leak.
    monkeypatch.setenv(
        "AIRFLOW_CONN_EVENT_INGEST_S3",
        secret_s3.airflow_conn_json().replace(SECRET, SECRET + "-wrong"),
    )
    refused = pipe.run(conf={"start_date": DAY.isoformat()})
    captured = capfd.readouterr()

    assert good.succeeded, good.task_states
    assert set(pipe.sessions()) == set(manifest.sessions)
    assert refused.state == "failed"
    assert "access to bucket" in captured.out  # the refusal is reported, without the key
    assert SECRET not in captured.out + captured.err
    home = Path(os.environ["AIRFLOW_HOME"])
    leaks = [p for p in home.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert leaks == []  # task logs (if any) and the metadata database file
    assert len([text for text in xcoms if '"listings"' in text]) == 4  # the batch after each step, decoded
    assert not [v for v in xcoms if SECRET in v]
    for table in (*RESULT_TABLES, "ingest_runs"):
        assert SECRET not in repr(pipe.query(f"SELECT * FROM {table}"))
    assert not [p for p in pipe.data_dir.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
