"""Bad input beyond docs/contract.md §1: huge reports and fields, odd keys and ids, bad buckets and confs.

Each case must give a clear message naming the object and the problem, and lose nothing else.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from include import generator
from tests.faults.conftest import (
    BACKENDS,
    FaultPipeline,
    assert_loaded_exactly,
    put_session,
    start_ingest_process,
    task_tries,
    wav,
)
from tools.services import MotoS3

pytestmark = pytest.mark.faults

DAY = dt.date(2026, 11, 23)
CONF = {"start_date": DAY.isoformat()}


def run_ingest_processes(*days: dt.date) -> list[dict[str, Any]]:
    """One ingest process per day, all at once; their summaries (with their peak memory)."""
    procs = [start_ingest_process("--start", day.isoformat(), "--end", day.isoformat()) for day in days]
    summaries = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        summaries.append(json.loads(out.strip().splitlines()[-1]))
    return summaries


def test_report_listing_20000_files_loads_with_bounded_memory(fault_pipeline: FaultPipeline) -> None:
    pipe = fault_pipeline
    small_day = DAY - dt.timedelta(days=1)
    manifest = pipe.seed([small_day, DAY], sessions_per_day=2, tags_per_session=2, seed=71)
    present = {f"AudioTags/tag_{n:05d}.wav": wav(n) for n in range(50)}
    absent = [
        {"path": f"AudioTags/tag_{n:05d}.wav", "type": "audio_tag", "size_bytes": 48044, "frame_id": n}
        for n in range(50, 15_000)
    ]
    raw = [{"path": f"lidar/sweep_{n:05d}.bin", "type": "raw", "size_bytes": 1 << 20} for n in range(5_000)]
    session_id = f"{DAY:%Y%m%d}T080000Z_veh900"
    put_session(pipe.client, pipe.bucket, DAY, session_id, present, extra_files=absent + raw)

    # The same process on a day of ordinary sessions is the yardstick: imports, clients, pools.
    small, big = run_ingest_processes(small_day, DAY)

    extra_mb = (big["rss_peak_kb"] - small["rss_peak_kb"]) / 1024
    print(
        f"peak RSS: {small['rss_peak_kb'] // 1024} MB small day, {big['rss_peak_kb'] // 1024} MB 20,000 files"
    )
    assert extra_mb < 100
    assert big["loaded_sessions"] == 3
    assert big["rejected"] == len(absent)
    sessions = pipe.sessions()
    assert set(sessions) == {*manifest.sessions, session_id}
    assert sessions[session_id]["event_count"] == len(present)
    rejects = pipe.open_rejects()
    assert len(rejects) == len(absent)
    some = rejects[f"{DAY:%Y/%m/%d}/{session_id}/AudioTags/tag_14999.wav"]
    assert "absent from the bucket" in some["reason"]


def test_ten_megabyte_fields_are_rejected_by_name_or_ignored_and_the_rest_loads(
    fault_pipeline: FaultPipeline,
) -> None:
    pipe = fault_pipeline
    manifest = pipe.seed([DAY], sessions_per_day=1, tags_per_session=2, seed=72)
    huge = "x" * (10 << 20)
    long_driver = put_session(
        pipe.client, pipe.bucket, DAY, "S_huge_driver", {"AudioTags/a.wav": wav(1)}, driver_id=huge
    )
    put_session(pipe.client, pipe.bucket, DAY, "S_huge_unknown", {"AudioTags/a.wav": wav(2)}, comment=huge)
    long_path = {"path": "AudioTags/" + huge + ".wav", "type": "audio_tag", "size_bytes": 1}
    put_session(
        pipe.client, pipe.bucket, DAY, "S_huge_path", {"AudioTags/a.wav": wav(3)}, extra_files=[long_path]
    )

    result = pipe.run(conf=CONF)

    assert result.succeeded, result.task_states
    sessions = pipe.sessions()
    assert set(sessions) == {*manifest.sessions, "S_huge_unknown", "S_huge_path"}
    rejects = pipe.open_rejects()
    assert "field 'driver_id' is longer than 128 characters" in rejects[long_driver]["reason"]
    (path_reject,) = [r for r in rejects.values() if r["session_id"] == "S_huge_path"]
    assert "longer than" in path_reject["reason"]
    assert len(path_reject["object_key"]) <= 1024
    assert all(len(r["reason"]) <= 1024 for r in rejects.values())
    assert sessions["S_huge_path"]["event_count"] == 1


ODD_ID = "20261123T080000Z_veh 'O\"Brien' ü€😀; DROP TABLE events;--"
ODD_TAG = "AudioTags/tag 'q\" ü 😀 ; DELETE FROM sessions WHERE 1=1;--.wav"


@pytest.mark.parametrize("fault_pipeline", BACKENDS, indirect=True)
def test_spaces_quotes_unicode_and_sql_in_keys_and_ids_are_stored_literally(
    fault_pipeline: FaultPipeline,
) -> None:
    pipe = fault_pipeline
    manifest = pipe.seed([DAY], sessions_per_day=1, tags_per_session=2, seed=73)
    vehicle = "veh'); DROP TABLE sessions; --"
    put_session(
        pipe.client, pipe.bucket, DAY, ODD_ID, {ODD_TAG: wav(4)}, vehicle_id=vehicle, driver_id="drv \\ %s ?"
    )

    result = pipe.run(conf=CONF)

    assert result.succeeded, result.task_states
    sessions = pipe.sessions()
    assert set(sessions) == {*manifest.sessions, ODD_ID}
    assert sessions[ODD_ID]["vehicle_id"] == vehicle
    assert sessions[ODD_ID]["driver_id"] == "drv \\ %s ?"
    key = f"{DAY:%Y/%m/%d}/{ODD_ID}/{ODD_TAG}"
    event = pipe.events()[key]
    assert event["session_id"] == ODD_ID
    assert Path(event["local_path"]) == pipe.data_dir / f"{DAY:%Y/%m/%d}" / ODD_ID / ODD_TAG
    assert Path(event["local_path"]).read_bytes() == wav(4)
    assert pipe.open_rejects() == {}
    assert pipe.table_exists("events")


def test_session_ids_with_dot_segments_are_rejected_and_nothing_leaves_the_data_dir(
    fault_pipeline: FaultPipeline, moto: MotoS3, tmp_path: Path
) -> None:
    pipe = fault_pipeline
    pipe.use_s3(moto, f"m{uuid.uuid4().hex[:12]}")
    client, bucket = pipe.client, pipe.bucket
    manifest = generator.generate_bucket(client, bucket, days=[DAY], sessions_per_day=1, seed=74)
    dotdot = put_session(client, bucket, DAY, "..", {"AudioTags/a.wav": wav(5)})
    dot = put_session(client, bucket, DAY, ".", {"AudioTags/a.wav": wav(6)})
    # A folder named by an empty segment is outside the layout: not a session, not an error.
    put_session(client, bucket, DAY, "", {"AudioTags/a.wav": wav(7)})
    # A report whose id holds a "/" names another folder than its own.
    slash = put_session(client, bucket, DAY, "a", {}, report_session_id="a/../../b")

    result = pipe.run(conf=CONF)

    assert result.succeeded, result.task_states
    assert set(pipe.sessions()) == set(manifest.sessions)
    rejects = pipe.open_rejects()
    assert "'..' cannot name a folder" in rejects[dotdot]["reason"]
    assert "'.' cannot name a folder" in rejects[dot]["reason"]
    assert "differs from its folder" in rejects[slash]["reason"]
    assert set(rejects) == {dotdot, dot, slash}
    written = {p.resolve() for p in tmp_path.rglob("*") if p.is_file()}
    assert all(p.is_relative_to(pipe.data_dir.resolve()) for p in written)
    assert not (pipe.data_dir / f"{DAY:%Y/%m}" / "AudioTags").exists()


def test_empty_bucket_succeeds_with_nothing_to_do(fault_pipeline: FaultPipeline) -> None:
    result = fault_pipeline.run(conf={"start_date": "2026-11-01", "end_date": "2026-11-30"})

    assert result.succeeded, result.task_states
    assert set(result.summary.values()) == {0}
    assert fault_pipeline.local_files() == {}


def test_missing_bucket_fails_at_once_naming_it(
    fault_pipeline: FaultPipeline, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_EVENT_INGEST_BUCKET", "no-such-bucket-here")

    result = fault_pipeline.run(conf=CONF)

    assert result.state == "failed"
    assert task_tries(result.run_id)["discover_sessions"] == 1  # no retry can create a bucket
    assert "bucket 'no-such-bucket-here' does not exist" in capfd.readouterr().out
    assert not fault_pipeline.table_exists("sessions")
    assert fault_pipeline.local_files() == {}


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        pytest.param({"start_date": 20261101}, "20261101", id="date-as-number"),
        pytest.param({"start_date": ["2026-11-01"]}, "2026-11-01", id="date-as-list"),
        pytest.param({"start_date": "2026-11-01", "batch_size": "10"}, "batch_size", id="size-as-string"),
        pytest.param({"start_date": "2026-11-01", "batch_size": 2.5}, "batch_size", id="size-fractional"),
        pytest.param({"start_date": "2026-11-01", "batch_size": 2.0}, "batch_size", id="size-as-float"),
        pytest.param(
            {"start_date": "2026-11-01", "lookback_days": 1.0}, "lookback_days", id="lookback-float"
        ),
        pytest.param({"start_date": "2026-11-01", "batch_size": True}, "batch_size", id="size-as-bool"),
        pytest.param(
            {"start_date": "2025-11-01", "end_date": "2026-11-02"}, "the maximum is 366", id="range-367-days"
        ),
        pytest.param({"start_date": "2026-11-01", "lookback_days": 400}, "lookback_days", id="lookback-huge"),
    ],
)
def test_conf_of_the_wrong_type_or_too_long_fails_at_once_saying_what_is_wrong(
    fault_pipeline: FaultPipeline, conf: dict[str, Any], message: str, capfd: pytest.CaptureFixture[str]
) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    fault_pipeline.seed([dt.date(2026, 11, 1)], sessions_per_day=1, seed=75)
    refusal: ParamValidationError | None = None
    try:
        result = fault_pipeline.run(conf=conf)
    except ParamValidationError as exc:  # refused before the run is created
        refusal = exc
    if refusal is not None:
        assert message in str(refusal)
    else:
        assert result.state == "failed"
        assert task_tries(result.run_id)["discover_sessions"] == 1
        assert message in capfd.readouterr().out
    assert not fault_pipeline.table_exists("sessions")
    assert fault_pipeline.local_files() == {}


def test_range_of_exactly_the_maximum_is_accepted(fault_pipeline: FaultPipeline) -> None:
    manifest = fault_pipeline.seed([dt.date(2026, 11, 1)], sessions_per_day=1, seed=76)

    result = fault_pipeline.run(conf={"start_date": "2025-11-02", "end_date": "2026-11-02"})

    assert result.succeeded, result.task_states
    assert_loaded_exactly(fault_pipeline, manifest)
