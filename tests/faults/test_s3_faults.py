"""S3 faults during a DAG run: the server killed and restarted, objects changed under the run."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from event_ingest.operators import (
    DiscoverSessionsOperator,
    DownloadFilesOperator,
    FetchMetadataOperator,
    FilterExistingOperator,
    LoadToDbOperator,
)
from event_ingest.runner import BatchRunner
from event_ingest.source import S3Source
from include import generator
from tests.faults.conftest import FaultPipeline, assert_loaded_exactly, task_tries

pytestmark = pytest.mark.faults

DAY = dt.date(2026, 11, 20)
CONF = {"start_date": DAY.isoformat(), "batch_size": 3}
OPERATORS = (
    DiscoverSessionsOperator,
    FilterExistingOperator,
    FetchMetadataOperator,
    DownloadFilesOperator,
    LoadToDbOperator,
)


class Outage:
    """Kill the S3 server once, at a chosen moment of the run; start it again when a task is retried.

    The server stays down until Airflow retries a task, so the attempt that met the outage cannot
    ride it out on the clients' own retries: it fails, and the retry is what finishes the work.
    ``failed_while_down`` lists the task attempts that started while the server was down.
    """

    def __init__(self, pipe: FaultPipeline, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pipe = pipe
        self.fired = threading.Event()
        self.restarted = threading.Event()
        self.lock = threading.Lock()
        self.attempts: list[tuple[str, int, int]] = []
        for operator in OPERATORS:
            monkeypatch.setattr(operator, "execute", self._watching(operator.execute))

    def fire(self) -> None:
        with self.lock:
            if self.fired.is_set():
                return
            self.pipe.s3.kill()
            self.fired.set()

    def _watching(self, execute: Callable[..., Any]) -> Callable[..., Any]:
        def watched(operator: Any, context: Any) -> Any:
            ti = context["ti"]
            self.attempts.append((ti.task_id, ti.map_index, ti.try_number))
            with self.lock:
                if self.fired.is_set() and not self.restarted.is_set() and ti.try_number > 1:
                    self.pipe.s3.start()
                    self.restarted.set()
            return execute(operator, context)

        return watched


def kill_before_nth_call(
    outage: Outage, monkeypatch: pytest.MonkeyPatch, cls: type, name: str, nth: int
) -> None:
    """Fire ``outage`` as the ``nth`` call of ``cls.name`` (across threads) begins."""
    real: Callable[..., Any] = getattr(cls, name)
    calls = []
    lock = threading.Lock()

    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            calls.append(args[0] if args else None)
            now = len(calls)
        if now == nth:
            outage.fire()
        return real(self, *args, **kwargs)

    monkeypatch.setattr(cls, name, call)


@pytest.mark.parametrize(
    ("moment", "task"),
    [
        pytest.param("discover", "discover_sessions", id="while-listing"),
        pytest.param("report", "ingest_batch.fetch_metadata", id="while-reading-reports"),
        pytest.param("download", "ingest_batch.download_audio", id="while-downloading-audio"),
    ],
)
def test_s3_server_killed_mid_run_fails_the_attempt_and_the_retry_loads_every_session_once(
    fault_pipeline: FaultPipeline,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    moment: str,
    task: str,
) -> None:
    pipe = fault_pipeline
    manifest = pipe.seed([DAY], sessions_per_day=6, tags_per_session=4, seed=41)
    outage = Outage(pipe, monkeypatch)
    if moment == "discover":
        kill_before_nth_call(outage, monkeypatch, BatchRunner, "discover", 1)
    elif moment == "report":
        kill_before_nth_call(outage, monkeypatch, S3Source, "read", 2)
    else:
        kill_before_nth_call(outage, monkeypatch, S3Source, "download", 3)

    result = pipe.run(conf=CONF)
    output = capfd.readouterr().out

    assert outage.fired.is_set()
    assert outage.restarted.is_set()
    assert result.succeeded, result.task_states
    assert_loaded_exactly(pipe, manifest)
    assert result.summary["loaded_sessions"] == len(manifest.sessions)
    assert result.summary["loaded_events"] == sum(len(s.events) for s in manifest.sessions.values())
    assert result.summary["deferred"] == result.summary["rejected"] == 0
    assert pipe.open_rejects() == {}
    # The attempt that met the dead server failed, and a retry of that task did the work.
    tries = task_tries(result.run_id)
    retried = {name: n for name, n in tries.items() if n > 1}
    assert retried, tries
    assert all(name.startswith(task) for name in retried), tries
    assert max(tries.values()) == 2, tries
    first_failed = next(t for t, m, n in outage.attempts if n == 2)
    assert first_failed == task, outage.attempts
    # ... saying which endpoint it could not reach, as a task failure, not as a reject.
    endpoint = f"127.0.0.1:{pipe.s3.s3_port}"
    failures = [line for line in output.splitlines() if endpoint in line and "rror" in line]
    assert failures, output[-3000:]
    assert "Task failed with exception" in output or "Marking task as UP_FOR_RETRY" in output, output[-3000:]


def replace_object(pipe: FaultPipeline, key: str, body: bytes) -> None:
    pipe.client.put_object(Bucket=pipe.bucket, Key=key, Body=body)


def edit_report_entry(
    pipe: FaultPipeline, report_key: str, relpath: str, edit: Callable[[dict], None]
) -> None:
    """Re-upload a report with ``edit`` applied to its entry for ``relpath``, as a fixed upload would."""
    report = json.loads(pipe.client.get_object(Bucket=pipe.bucket, Key=report_key)["Body"].read())
    for entry in report["files"]:
        if entry.get("path") == relpath:
            edit(entry)
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
    fault_pipeline: FaultPipeline, monkeypatch: pytest.MonkeyPatch, change: str, with_md5: bool
) -> None:
    # Whatever the report says, the download asks for the object it listed (If-Match: its ETag).
    pipe = fault_pipeline
    manifest = pipe.seed([DAY], sessions_per_day=2, tags_per_session=3, untimed_share=0, seed=42)
    session = manifest.sessions[sorted(manifest.sessions)[0]]
    relpath, event = sorted(session.events.items())[0]
    if not with_md5:
        edit_report_entry(pipe, session.report_key, relpath, lambda entry: entry.pop("md5", None))
    old = pipe.client.get_object(Bucket=pipe.bucket, Key=event.key)["Body"].read()
    new = old[::-1] if change == "same-size" else old + b"appended after the listing"
    real = BatchRunner.download
    replaced = []

    def download(self: BatchRunner, batch: Any) -> Any:
        if not replaced:
            replace_object(pipe, event.key, new)  # after listing and report, before the GET
            replaced.append(event.key)
        return real(self, batch)

    with monkeypatch.context() as patch:
        patch.setattr(BatchRunner, "download", download)
        result = pipe.run(conf=CONF)

    assert replaced == [event.key]
    assert result.succeeded, result.task_states
    assert event.key not in pipe.events()
    rejects = pipe.open_rejects()
    assert set(rejects) == {event.key}
    assert rejects[event.key]["reason"].startswith(
        f"audio tag: {event.key} changed since it was listed (ETag"
    )
    local = pipe.data_dir / f"{DAY:%Y/%m/%d}" / session.session_id / relpath
    assert not local.exists()
    assert list(pipe.data_dir.rglob("*.part")) == []
    loaded = sum(len(s.events) for s in manifest.sessions.values()) - 1
    assert len(pipe.events()) == result.summary["loaded_events"] == loaded

    edit_report_entry(
        pipe,
        session.report_key,
        relpath,
        lambda entry: entry.update(size_bytes=len(new), md5=hashlib.md5(new).hexdigest()),
    )
    fixed = pipe.run(conf=CONF)

    assert fixed.succeeded, fixed.task_states
    assert pipe.open_rejects() == {}
    assert fixed.summary["loaded_events"] == 1
    assert pipe.events()[event.key]["md5"] == hashlib.md5(new).hexdigest()
    assert local.read_bytes() == new
    assert pipe.sessions()[session.session_id]["event_count"] == len(session.events)


def test_report_replaced_between_listing_and_reading_converges_on_the_next_run(
    fault_pipeline: FaultPipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe = fault_pipeline
    manifest = pipe.seed([DAY], sessions_per_day=2, tags_per_session=2, seed=43)
    session_id = sorted(manifest.sessions)[0]
    real = BatchRunner.fetch_metadata
    added: list[generator.ExpectedEvent] = []

    def fetch_metadata(self: BatchRunner, batch: Any) -> Any:
        if not added:  # a re-upload with one more tag lands after the listing
            added.append(
                generator.add_audio_tag(
                    pipe.client, pipe.bucket, prefix="", day=DAY, session_id=session_id, seed=43
                )
            )
        return real(self, batch)

    with monkeypatch.context() as patch:
        patch.setattr(BatchRunner, "fetch_metadata", fetch_metadata)
        first = pipe.run(conf=CONF)

    assert first.succeeded, first.task_states
    (new_tag,) = added
    rejects = pipe.open_rejects()
    assert set(rejects) == {new_tag.key}  # not in the listing that the run works from
    assert rejects[new_tag.key]["reason"] == "audio tag: listed in the report but absent from the bucket"

    second = pipe.run(conf=CONF)

    assert second.succeeded, second.task_states
    assert pipe.open_rejects() == {}
    assert second.summary["loaded_events"] == 1
    events = pipe.events()
    assert new_tag.key in events
    assert len(events) == sum(len(s.events) for s in manifest.sessions.values()) + 1
    assert pipe.sessions()[session_id]["event_count"] == len(manifest.sessions[session_id].events) + 1
