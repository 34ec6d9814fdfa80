"""S3 faults during a DAG run: the server killed and restarted, objects changed under the run."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from event_ingest import files, steps
from include import generator
from tests.faults.conftest import FaultPipeline, assert_loaded_exactly, task_tries

pytestmark = pytest.mark.faults

DAY = dt.date(2026, 11, 20)
CONF = {"start_date": DAY.isoformat(), "batch_size": 3}
#: Long enough to outlast the clients' own retries, short enough for Airflow's (1 s, 2 s, 4 s here).
OUTAGE_S = 3.0


class Outage:
    """Kill the S3 server once, at a chosen moment of the run, and start it again ``OUTAGE_S`` later."""

    def __init__(self, pipe: FaultPipeline) -> None:
        self.pipe = pipe
        self.fired = threading.Event()
        self.restarted = threading.Event()
        self._lock = threading.Lock()

    def fire(self) -> None:
        with self._lock:
            if self.fired.is_set():
                return
            self.fired.set()
        self.pipe.s3.kill()

        def restart() -> None:
            self.restarted.wait(OUTAGE_S)
            self.pipe.s3.start()
            self.restarted.set()

        threading.Thread(target=restart, daemon=True).start()


def kill_at_nth_write(outage: Outage, monkeypatch: pytest.MonkeyPatch, suffix: str, nth: int) -> None:
    """Fire ``outage`` when the ``nth`` file ending with ``suffix`` starts to be written locally."""
    real = files.write_atomically
    seen = []

    def write_atomically(final: Any, chunks: Any, **kwargs: Any) -> None:
        if str(final).endswith(suffix):
            seen.append(final)
            if len(seen) == nth:
                outage.fire()
        return real(final, chunks, **kwargs)

    monkeypatch.setattr(files, "write_atomically", write_atomically)


def kill_before(outage: Outage, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    real: Callable[..., Any] = getattr(steps, name)

    def step(*args: Any, **kwargs: Any) -> Any:
        outage.fire()
        return real(*args, **kwargs)

    monkeypatch.setattr(steps, name, step)


@pytest.mark.parametrize(
    "moment",
    [
        pytest.param("discover", id="while-listing"),
        pytest.param("report", id="while-reading-reports"),
        pytest.param("download", id="while-downloading-audio"),
    ],
)
def test_s3_server_killed_mid_run_and_restarted_loads_every_session_once(
    fault_pipeline: FaultPipeline,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    moment: str,
) -> None:
    pipe = fault_pipeline
    manifest = pipe.seed([DAY], sessions_per_day=6, tags_per_session=4, seed=41)
    outage = Outage(pipe)
    if moment == "discover":
        kill_before(outage, monkeypatch, "discover")
    elif moment == "report":
        kill_at_nth_write(outage, monkeypatch, generator.REPORT_SUFFIX, 2)
    else:
        kill_at_nth_write(outage, monkeypatch, ".wav", 3)

    result = pipe.run(conf=CONF)
    output = capfd.readouterr().out

    assert outage.fired.is_set()
    assert outage.restarted.wait(30)
    assert result.succeeded, result.task_states
    assert_loaded_exactly(pipe, manifest)
    assert result.summary["loaded_sessions"] == len(manifest.sessions)
    assert result.summary["loaded_events"] == sum(len(s.events) for s in manifest.sessions.values())
    assert result.summary["deferred"] == result.summary["rejected"] == 0
    # The attempt that met the dead server failed, saying which endpoint it could not reach; a retry
    # finished the work (the clients' own retries may also have ridden out the outage).
    tries = task_tries(result.run_id)
    endpoint = f"127.0.0.1:{pipe.s3.s3_port}"
    failed = [line for line in output.splitlines() if endpoint in line and "rror" in line]
    if max(tries.values()) > 1:
        assert failed, output[-3000:]
    assert max(tries.values()) > 1 or moment != "discover", tries


def replace_object(pipe: FaultPipeline, key: str, body: bytes) -> None:
    pipe.client.put_object(Bucket=pipe.bucket, Key=key, Body=body)


def rewrite_report_entry(pipe: FaultPipeline, report_key: str, relpath: str, body: bytes) -> None:
    """Re-upload a report whose entry for ``relpath`` describes ``body``, as a fixed upload would."""
    report = json.loads(pipe.client.get_object(Bucket=pipe.bucket, Key=report_key)["Body"].read())
    for entry in report["files"]:
        if entry.get("path") == relpath:
            entry.update(size_bytes=len(body), md5=hashlib.md5(body).hexdigest())
    replace_object(pipe, report_key, json.dumps(report).encode())


def drop_md5(pipe: FaultPipeline, report_key: str, relpath: str) -> None:
    """Re-upload a report whose entry for ``relpath`` gives no MD5 (it is optional)."""
    report = json.loads(pipe.client.get_object(Bucket=pipe.bucket, Key=report_key)["Body"].read())
    for entry in report["files"]:
        if entry.get("path") == relpath:
            entry.pop("md5", None)
    replace_object(pipe, report_key, json.dumps(report).encode())


@pytest.mark.parametrize(
    ("change", "with_md5"),
    [
        pytest.param("same-size", True, id="same-size-new-bytes"),
        pytest.param("longer", True, id="different-size"),
        pytest.param("same-size", False, id="same-size-new-bytes-no-md5-in-report"),
    ],
)
def test_audio_tag_changed_between_listing_and_download_is_rejected_then_loaded_once_fixed(
    fault_pipeline: FaultPipeline, change: str, with_md5: bool
) -> None:
    # Whatever the report says, the download asks for the object it listed (If-Match: its ETag).
    reason = "changed since it was listed"
    pipe = fault_pipeline
    manifest = pipe.seed([DAY], sessions_per_day=2, tags_per_session=3, untimed_share=0, seed=42)
    session = manifest.sessions[sorted(manifest.sessions)[0]]
    relpath, event = sorted(session.events.items())[0]
    if not with_md5:
        drop_md5(pipe, session.report_key, relpath)
    old = pipe.client.get_object(Bucket=pipe.bucket, Key=event.key)["Body"].read()
    new = old[::-1] if change == "same-size" else old + b"appended after the listing"
    real = steps.download_audio

    def download_audio(*args: Any, **kwargs: Any) -> Any:
        replace_object(pipe, event.key, new)  # after listing and report, before the GET
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(steps, "download_audio", download_audio)
        result = pipe.run(conf=CONF)

    assert result.succeeded, result.task_states
    assert event.key not in pipe.events()
    rejects = pipe.open_rejects()
    assert set(rejects) == {event.key}
    assert reason in rejects[event.key]["reason"]
    local = pipe.data_dir / f"{DAY:%Y/%m/%d}" / session.session_id / relpath
    assert not local.exists()
    assert list(pipe.data_dir.rglob("*.part")) == []
    loaded = sum(len(s.events) for s in manifest.sessions.values()) - 1
    assert len(pipe.events()) == result.summary["loaded_events"] == loaded

    rewrite_report_entry(pipe, session.report_key, relpath, new)
    fixed = pipe.run(conf=CONF)

    assert fixed.succeeded
    assert pipe.open_rejects() == {}
    assert pipe.events()[event.key]["md5"] == hashlib.md5(new).hexdigest()
    assert local.read_bytes() == new
    assert pipe.sessions()[session.session_id]["event_count"] == len(session.events)


def test_report_replaced_between_listing_and_reading_converges_on_the_next_run(
    fault_pipeline: FaultPipeline,
) -> None:
    pipe = fault_pipeline
    manifest = pipe.seed([DAY], sessions_per_day=2, tags_per_session=2, seed=43)
    session_id = sorted(manifest.sessions)[0]
    real = steps.fetch_metadata
    added: list[generator.ExpectedEvent] = []

    def fetch_metadata(*args: Any, **kwargs: Any) -> Any:
        if not added:  # a re-upload with one more tag lands after the listing
            added.append(
                generator.add_audio_tag(
                    pipe.client, pipe.bucket, prefix="", day=DAY, session_id=session_id, seed=43
                )
            )
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(steps, "fetch_metadata", fetch_metadata)
        first = pipe.run(conf=CONF)

    assert first.succeeded
    (new_tag,) = added
    rejects = pipe.open_rejects()
    assert set(rejects) == {new_tag.key}  # not in the listing that the run works from
    assert "absent from the bucket" in rejects[new_tag.key]["reason"]

    second = pipe.run(conf=CONF)

    assert second.succeeded
    assert pipe.open_rejects() == {}
    assert second.summary["loaded_events"] == 1
    events = pipe.events()
    assert new_tag.key in events
    assert len(events) == sum(len(s.events) for s in manifest.sessions.values()) + 1
    assert pipe.sessions()[session_id]["event_count"] == len(manifest.sessions[session_id].events) + 1
