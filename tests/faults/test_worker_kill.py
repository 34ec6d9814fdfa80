"""The worker process SIGKILLed in the middle of a download that streams in chunks."""

from __future__ import annotations

import datetime as dt
import signal
import time
from pathlib import Path

import pytest

from event_ingest.data_plane import PART
from tests.faults.conftest import FaultPipeline, assert_loaded_exactly, start_ingest_process

pytestmark = pytest.mark.faults

DAY = dt.date(2026, 11, 22)
#: Six parts or more: the ranged GETs keep at most four in flight, so a pause leaves parts unfetched.
TAG_BYTES = 6 * PART + PART // 2


def part_files(folder: Path) -> dict[Path, int]:
    """The temporary files under ``folder``, with their sizes."""
    found = {}
    for part in folder.rglob("*.part"):
        try:
            found[part] = part.stat().st_size
        except FileNotFoundError:
            continue
    return found


def wait_until_stable(folder: Path, seconds: float = 0.5) -> dict[Path, int]:
    """The temporary files under ``folder`` once their sizes stopped changing for ``seconds``."""
    last, since = part_files(folder), time.monotonic()
    while time.monotonic() - since < seconds:
        time.sleep(0.05)
        now = part_files(folder)
        if now != last:
            last, since = now, time.monotonic()
    return last


def test_worker_killed_during_a_chunked_download_leaves_no_partial_file_and_the_next_run_completes(
    fault_pipeline: FaultPipeline,
) -> None:
    pipe = fault_pipeline
    manifest = pipe.seed([DAY], sessions_per_day=1, tags_per_session=1, tag_bytes=TAG_BYTES, seed=61)
    ((relpath, event),) = next(iter(manifest.sessions.values())).events.items()
    size = pipe.client.head_object(Bucket=pipe.bucket, Key=event.key)["ContentLength"]
    final = pipe.data_dir / f"{DAY:%Y/%m/%d}" / next(iter(manifest.sessions)) / relpath
    worker = start_ingest_process("--start", DAY.isoformat(), "--end", DAY.isoformat())
    deadline = time.monotonic() + 120
    # The audio tag's own temporary file (the report's comes and goes before it).
    while (
        not any(part_files(final.parent).values() if final.parent.exists() else ()) and worker.poll() is None
    ):
        assert time.monotonic() < deadline, "no download started"
        time.sleep(0.002)
    pipe.s3.pause()  # the parts not fetched yet stay unfetched
    try:
        assert worker.poll() is None, worker.communicate()
        written = wait_until_stable(final.parent)  # the worker wrote what it had, then waits for S3
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        pipe.s3.resume()
    assert worker.returncode == -signal.SIGKILL

    ((part, part_size),) = written.items()
    # Killed inside the transfer: whole chunks written, at least one, and at least one still to come.
    assert PART <= part_size < size, (part_size, size)
    assert part_size % PART == 0, part_size
    assert not final.exists()  # a final name holds a complete, verified file or nothing
    assert not pipe.table_exists("events") or pipe.events() == {}

    result = pipe.run(conf={"start_date": DAY.isoformat()})

    assert result.succeeded, result.task_states
    assert_loaded_exactly(pipe, manifest)
    # The temporary file of the killed worker stays until a later write of that file finds it stale.
    assert set(part_files(pipe.data_dir)) == {part}
