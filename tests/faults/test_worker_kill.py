"""The worker process SIGKILLed in the middle of a download."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import signal
import time
from pathlib import Path

import pytest

from tests.faults.conftest import FaultPipeline, assert_loaded_exactly, run_steps_process

pytestmark = pytest.mark.faults

DAY = dt.date(2026, 11, 22)


def growing_part(data_dir: Path) -> Path | None:
    for part in data_dir.rglob("*.part"):
        try:
            if part.stat().st_size > 0:
                return part
        except FileNotFoundError:
            continue
    return None


def test_worker_killed_during_a_download_leaves_no_partial_file_and_the_next_run_completes(
    fault_pipeline: FaultPipeline,
) -> None:
    pipe = fault_pipeline
    # Tags big enough to be streamed in chunks, so the kill lands inside one.
    manifest = pipe.seed([DAY], sessions_per_day=2, tags_per_session=2, tag_bytes=16 << 20, seed=61)
    worker = run_steps_process("--start", DAY.isoformat(), "--end", DAY.isoformat())
    deadline = time.monotonic() + 60
    while (part := growing_part(pipe.data_dir)) is None and worker.poll() is None:
        assert time.monotonic() < deadline, "no download started"
        time.sleep(0.002)
    assert part is not None, worker.communicate()
    pipe.s3.pause()  # hold the transfer where it is
    try:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        pipe.s3.resume()
    assert worker.returncode == -signal.SIGKILL

    left = sorted(p.name for p in pipe.data_dir.rglob("*.part"))
    assert left, "the kill left no temporary file: it did not interrupt a download"
    for wav in pipe.data_dir.rglob("*.wav"):  # a final name holds a complete, verified file or nothing
        session_dir = wav.parents[1]
        report = json.loads(next(session_dir.glob("*_logged_Upload_Report.json")).read_text())
        entry = next(f for f in report["files"] if f["path"] == f"AudioTags/{wav.name}")
        data = wav.read_bytes()
        assert len(data) == entry["size_bytes"], wav
        assert hashlib.md5(data).hexdigest() == entry["md5"], wav
    assert not pipe.table_exists("events") or pipe.events() == {}

    result = pipe.run(conf={"start_date": DAY.isoformat()})

    assert result.succeeded, result.task_states
    assert_loaded_exactly(pipe, manifest)
    # The temporary file of the killed worker stays until a later write of that file finds it stale.
    assert {p.name for p in pipe.data_dir.rglob("*.part")} <= set(left)
