"""Good sessions and crashing input in the same batch: every good session loads, the run succeeds.

Each hostile session below once failed a task (and with it every session of its batch): a lone
surrogate in a report string, a 5,000-digit number, nesting 100,000 deep, control characters in keys,
a file name at the file system's limit once a temporary suffix is added, a file and a folder of the
same name, a session id longer than the old 128-character column. They all sit in one batch with two
ordinary sessions, on moto's server (SeaweedFS would normalise the keys with control characters)
and each event-database backend. The run must succeed, load every good session and event, and reject
each bad session or object with a reason that names the problem; a second run changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from pathlib import Path

import pytest

from include import generator
from tests.faults.conftest import BACKENDS, FaultPipeline, assert_loaded_exactly, put_session, task_tries, wav
from tests.support.pipeline import airflow_dags_test
from tests.support.stores import changed_rows
from tools.services import MotoS3

pytestmark = pytest.mark.faults

DAY = dt.date(2026, 11, 25)
CONF = {"start_date": DAY.isoformat()}
FOLDER = f"{DAY:%Y/%m/%d}/"
START = f"{DAY.isoformat()}T08:00:00.000Z"
DIGITS = "7" * 5000
DEEP = "[" * 100_000 + "]" * 100_000
LONG_NAME = (
    "AudioTags/" + "n" * 246 + ".wav"
)  # 250 bytes: fits S3 and the file system, not both with a suffix
CTRL_ID = "S_ctrl_id\x1b[31m"
LONG_BAD_ID = "S_long_bad_" + "x" * 200
LONG_GOOD_ID = "S_long_good_" + "y" * 300  # more than a local name may hold (255 bytes)
#: When and by which run a reject or deferral was last seen: what a rerun may change.
SEEN = {"last_seen_at", "dag_run_id"}


def report_text(session_id: str, extra: str) -> str:
    """A report with one more top-level member written as is (no ``json.dumps`` writes these)."""
    return (
        f'{{"session_id": "{session_id}", "vehicle_id": "v", "start_time": "{START}",'
        f' "files": {{files}}, {extra}}}'
    )


def seed_hostile(pipe: FaultPipeline) -> dict[str, str]:
    """Upload the hostile sessions; return what each must end as: loaded, or the reject's reason."""
    c, b = pipe.client, pipe.bucket
    surrogate = put_session(c, b, DAY, "S_surrogate", {"AudioTags/a.wav": wav(1)}, driver_id="\ud800")
    bignum = put_session(
        c,
        b,
        DAY,
        "S_bignum",
        {"AudioTags/a.wav": wav(2)},
        report_text=report_text("S_bignum", f'"odo": {DIGITS}'),
    )
    deep = put_session(
        c,
        b,
        DAY,
        "S_deep",
        {"AudioTags/a.wav": wav(3)},
        report_text=report_text("S_deep", f'"extra": {DEEP}'),
    )
    long_bad = put_session(c, b, DAY, LONG_BAD_ID, {"AudioTags/a.wav": wav(4)}, vehicle_id=None)
    put_session(c, b, DAY, "S_ctrl", {"AudioTags/bell\x07.wav": wav(5), "AudioTags/ok.wav": wav(6)})
    put_session(c, b, DAY, CTRL_ID, {"AudioTags/a.wav": wav(7)})
    put_session(c, b, DAY, "S_nul", {"AudioTags/nul\x00.wav": wav(8), "AudioTags/ok.wav": wav(9)})
    put_session(c, b, DAY, "S_long_name", {LONG_NAME: wav(10)})
    put_session(
        c, b, DAY, "S_file_folder", {"AudioTags/dup.wav": wav(11), "AudioTags/dup.wav/inner.wav": wav(12)}
    )
    put_session(c, b, DAY, LONG_GOOD_ID, {"AudioTags/a.wav": wav(13)})
    return {
        surrogate: "report: field 'driver_id' holds the lone surrogate U+D800",
        bignum: "report: malformed JSON: Exceeds the limit (4300 digits) for integer string conversion:"
        " value has 5000 digits",
        deep: "report: malformed JSON: nested deeper than the decoder allows",
        long_bad: "report: report misses required field 'vehicle_id'",
        # The reject's key keeps the name readable: U+0000 is escaped, never stored.
        f"{FOLDER}S_nul/AudioTags/nul\\x00.wav": "audio tag: path holds U+0000",
        f"{FOLDER}S_file_folder/AudioTags/dup.wav": "audio tag: IsADirectoryError: [Errno 21] Is a directory",
    }


LOADED = {  # hostile sessions that must load, with the events they must hold
    "S_ctrl": {"AudioTags/bell\x07.wav", "AudioTags/ok.wav"},
    CTRL_ID: {"AudioTags/a.wav"},
    "S_nul": {"AudioTags/ok.wav"},
    "S_long_name": {LONG_NAME},
    "S_file_folder": {"AudioTags/dup.wav/inner.wav"},
    LONG_GOOD_ID: {"AudioTags/a.wav"},
}


@pytest.mark.parametrize("fault_pipeline", BACKENDS, indirect=True)
def test_crashing_input_in_a_batch_is_rejected_by_name_and_every_good_session_loads(
    fault_pipeline: FaultPipeline, moto: MotoS3
) -> None:
    pipe = fault_pipeline
    pipe.use_s3(moto, f"m{uuid.uuid4().hex[:12]}")
    manifest = pipe.seed([DAY], sessions_per_day=2, tags_per_session=2, seed=91)
    reasons = seed_hostile(pipe)

    first = pipe.run(conf=CONF)

    assert first.succeeded, first.task_states
    assert task_tries(first.run_id) == {
        "discover_sessions": 1,
        **{
            f"ingest_batch.{t}[0]": 1
            for t in ("filter_existing", "fetch_metadata", "download_audio", "load_to_db")
        },
        "summarize_run": 1,
        "emit_asset_event": 1,
    }  # one batch, no task failed or retried
    good = set(manifest.sessions)
    assert_loaded_exactly(pipe, manifest, sessions=good)  # nothing of the good sessions lost or changed
    sessions = pipe.sessions()
    assert set(sessions) == good | set(LOADED)
    events = pipe.events()
    for session_id, relpaths in LOADED.items():
        keys = {f"{FOLDER}{session_id}/{relpath}" for relpath in relpaths}
        assert {k for k, e in events.items() if e["session_id"] == session_id} == keys, session_id
        assert sessions[session_id]["event_count"] == len(keys)
        for key in keys:
            assert events[key]["md5"] == pipe.source_md5(key), key
            assert pipe.source_md5(key) == md5_of_file(events[key]["local_path"]), key
    assert events[f"{FOLDER}S_ctrl/AudioTags/bell\x07.wav"]["local_path"].endswith("/AudioTags/bell\x07.wav")
    rejects = pipe.open_rejects()
    assert set(rejects) == set(reasons)
    for key, reason in reasons.items():
        assert rejects[key]["reason"].startswith(reason), rejects[key]["reason"]
    long_reject = rejects[f"{FOLDER}{LONG_BAD_ID}/{LONG_BAD_ID}_logged_Upload_Report.json"]
    assert long_reject["session_id"] == LONG_BAD_ID  # whole: it names this session, no other
    summary = first.summary
    assert summary["rejected"] == len(reasons)
    assert summary["loaded_sessions"] == len(good) + len(LOADED)
    assert (
        summary["loaded_events"]
        == len(events)
        == sum(len(s.events) for s in manifest.sessions.values()) + sum(len(v) for v in LOADED.values())
    )

    rows = pipe.store.snapshot(ignore={"ingest_rejects": {"last_seen_at", "dag_run_id"}})
    files = pipe.local_files()
    second = pipe.run(conf=CONF)

    assert second.succeeded, second.task_states
    again = pipe.store.snapshot(ignore={"ingest_rejects": {"last_seen_at", "dag_run_id"}})
    assert again == rows, changed_rows(rows, again)
    assert pipe.local_files() == files  # no file written, moved or touched
    assert second.summary == {**summary, "loaded_sessions": 0, "loaded_events": 0, "skipped": len(sessions)}


def test_airflow_dags_test_over_every_bad_kind_and_crashing_input_loads_the_good_and_reruns_change_nothing(
    fault_pipeline: FaultPipeline, moto: MotoS3
) -> None:
    pipe = fault_pipeline
    pipe.use_s3(moto, f"m{uuid.uuid4().hex[:12]}")
    manifest = pipe.seed(
        [DAY], sessions_per_day=2, tags_per_session=2, bad_kinds=generator.BAD_KINDS, seed=92
    )
    reasons = seed_hostile(pipe)

    first = airflow_dags_test(CONF)

    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    good = set(manifest.sessions)
    assert_loaded_exactly(pipe, manifest, sessions=good)
    assert set(pipe.sessions()) == good | set(LOADED)
    rejects = pipe.open_rejects()
    assert set(rejects) == {r.object_key for r in manifest.rejects} | set(reasons)
    for key, reason in reasons.items():
        assert rejects[key]["reason"].startswith(reason), rejects[key]["reason"]
    assert all(reject["reason"] and reject["reason"].isprintable() for reject in rejects.values())
    deferred = {row["session_id"] for row in pipe.query("SELECT session_id FROM ingest_deferrals")}
    assert deferred == set(manifest.deferred)
    rows = pipe.store.snapshot(ignore={"ingest_rejects": SEEN, "ingest_deferrals": SEEN})
    files = files_and_times(pipe.data_dir)

    second = airflow_dags_test(CONF)

    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    again = pipe.store.snapshot(ignore={"ingest_rejects": SEEN, "ingest_deferrals": SEEN})
    assert again == rows, changed_rows(rows, again)
    assert files_and_times(pipe.data_dir) == files  # no file written, moved or touched


def files_and_times(data_dir: Path) -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for path in data_dir.rglob("*") if path.is_file()}


def md5_of_file(path: str) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()
