"""event_ingest_on_upload under a real triggerer and scheduler: S3 notifications from moto's S3 to its SQS.

Each test uses days of its own, so the sessions of one never show in another's rows. Waiting has
generous deadlines that only bound a hung stack; the measured times are printed, never asserted.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics

import pytest

from event_ingest.layout import REPORT_SUFFIX
from tests.on_upload.uploads import UploadStack, s3_event

DAILY_DAG_ID = "event_ingest"
BURST = 200


def new_runs(uploads: UploadStack, before: list[dict[str, object]]) -> list[dict[str, object]]:
    known = {r["dag_run_id"] for r in before}
    return [r for r in uploads.dag_runs() if r["dag_run_id"] not in known]


def test_an_uploaded_session_loads_and_its_run_is_recorded(
    uploads: UploadStack, capsys: pytest.CaptureFixture
) -> None:
    before = uploads.dag_runs()
    upload = uploads.upload([dt.date(2026, 10, 1)], sessions_per_day=1, tags_per_session=3)
    (expected,) = upload.manifest.sessions.values()

    uploads.wait_for_sessions([expected.session_id])
    uploads.settle()

    (latency,) = uploads.latencies(upload)
    with capsys.disabled():
        print(f"\none upload: report -> session row in {latency:.1f} s")
    row = uploads.sessions([expected.session_id])[expected.session_id]
    assert row["report_key"] == expected.report_key
    assert set(uploads.events([expected.session_id])) == {e.key for e in expected.events.values()}
    runs = new_runs(uploads, before)
    assert runs
    assert all(r["state"] == "success" for r in runs)
    ledger = uploads.ingest_runs()
    assert {r["dag_run_id"] for r in runs} <= set(ledger)
    recorded = [ledger[r["dag_run_id"]] for r in runs]
    assert {r["run_type"] for r in recorded} == {"asset_triggered"}
    assert sum(r["loaded_sessions"] for r in recorded) == 1
    assert sum(r["loaded_events"] for r in recorded) == len(expected.events)


def test_a_session_whose_keys_s3_must_url_encode_loads(uploads: UploadStack) -> None:
    # S3 sends keys URL-encoded: a space as "+", a "+" as "%2B", UTF-8 bytes as %XX.
    session_id = "veh 042+Zürich_№7"
    upload = uploads.upload_renamed(dt.date(2026, 10, 7), session_id)
    uploads.wait_for_sessions([session_id])
    uploads.settle()

    (expected,) = upload.manifest.sessions.values()
    assert uploads.sessions([session_id])[session_id]["report_key"] == expected.report_key
    assert set(uploads.events([session_id])) == {e.key for e in expected.events.values()}


def test_duplicate_and_out_of_order_notifications_change_nothing(uploads: UploadStack) -> None:
    day = dt.date(2026, 10, 2)
    upload = uploads.upload([day], sessions_per_day=1, tags_per_session=2)
    (expected,) = upload.manifest.sessions.values()
    first_notice = s3_event(uploads.bucket, expected.report_key)
    # S3 delivers at least once: the same notification again, alone and within a batch of records.
    uploads.post(first_notice, s3_event(uploads.bucket, expected.report_key, expected.report_key))
    uploads.settle()
    loaded = uploads.snapshot([expected.session_id])
    assert set(loaded["events"]) == {e.key for e in expected.events.values()}

    # The session is uploaded again with one more tag; then the first upload's notification
    # arrives late, after the second's, and once more.
    added = uploads.add_audio_tag(day, expected.session_id)
    uploads.post(first_notice, first_notice)
    uploads.settle()

    reloaded = uploads.snapshot([expected.session_id])
    assert set(reloaded["events"]) == set(loaded["events"]) | {added.key}
    assert {k: reloaded["events"][k] for k in loaded["events"]} == loaded["events"]
    assert reloaded["sessions"][expected.session_id]["event_count"] == len(expected.events) + 1


def test_notifications_of_anything_but_a_report_load_nothing(uploads: UploadStack) -> None:
    # A session whose files are there but whose report is not yet: notifications of its other files,
    # and one of its report that does not exist, must not make it a session.
    upload = uploads.upload([dt.date(2026, 10, 3)], sessions_per_day=1, tags_per_session=2, reports=False)
    (expected,) = upload.manifest.sessions.values()
    folder = expected.report_key.rsplit("/", 1)[0]
    before = uploads.dag_runs()
    uploads.post(
        s3_event(uploads.bucket, *(e.key for e in expected.events.values())),
        s3_event(uploads.bucket, f"{folder}/AV_logs/DisplayLogs/display_000.log"),
        s3_event(uploads.bucket, "elsewhere/readme.txt", f"2026/10/03/{REPORT_SUFFIX}"),
        s3_event("another-bucket", expected.report_key),
        s3_event(uploads.bucket, expected.report_key, event="ObjectRemoved:Delete"),
        json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": uploads.bucket}),
        "not a notification",
        s3_event(uploads.bucket, expected.report_key),
    )
    uploads.settle()

    assert uploads.sessions([expected.session_id]) == {}
    runs = new_runs(uploads, before)
    assert runs
    assert all(r["state"] == "success" for r in runs)
    ledger = uploads.ingest_runs()
    assert sum(ledger[r["dag_run_id"]]["discovered"] for r in runs) == 0


def test_an_unfinished_upload_is_deferred_until_a_later_notification_loads_it(uploads: UploadStack) -> None:
    upload = uploads.upload([dt.date(2026, 10, 4)], sessions_per_day=0, bad_kinds=["incomplete_upload"])
    (session_id,) = upload.manifest.deferred
    (report_key,) = upload.report_keys
    uploads.settle()
    assert session_id in uploads.deferrals()
    assert uploads.sessions([session_id]) == {}

    report = uploads.report(report_key)
    report["upload"] = {"status": "complete", "finished_at": "2026-10-04T23:00:00Z"}
    uploads.put_report(report_key, json.dumps(report).encode())
    uploads.wait_for_sessions([session_id])
    uploads.settle()

    tags = [f for f in report["files"] if f.get("type") == "audio_tag"]
    assert uploads.sessions([session_id])[session_id]["event_count"] == len(tags)
    assert session_id not in uploads.deferrals()


def test_the_daily_run_loads_what_no_notification_announced(uploads: UploadStack) -> None:
    day = dt.date(2026, 10, 5)
    uploads.notify_reports(enabled=False)
    try:
        upload = uploads.upload([day], sessions_per_day=2, tags_per_session=2, notified=False)
    finally:
        uploads.notify_reports()
    uploads.settle()
    session_ids = list(upload.manifest.sessions)
    assert uploads.sessions(session_ids) == {}

    uploads.stack.unpause(DAILY_DAG_ID)
    try:
        run = uploads.stack.trigger(DAILY_DAG_ID, conf={"start_date": day.isoformat()})
        finished = uploads.stack.wait_for_run(DAILY_DAG_ID, run["dag_run_id"], timeout=300)
    finally:
        uploads.stack.pause(DAILY_DAG_ID)

    assert finished["state"] == "success"
    assert set(uploads.sessions(session_ids)) == set(session_ids)


def test_a_burst_of_uploads_loads_every_session_in_a_few_runs(
    uploads: UploadStack, capsys: pytest.CaptureFixture
) -> None:
    before = uploads.dag_runs()
    upload = uploads.upload([dt.date(2026, 10, 6)], sessions_per_day=BURST, tags_per_session=2, workers=16)
    session_ids = list(upload.manifest.sessions)
    assert len(session_ids) == BURST

    uploads.wait_for_sessions(session_ids, timeout=600)
    uploads.settle(timeout=600)

    latencies = uploads.latencies(upload)
    runs = new_runs(uploads, before)
    with capsys.disabled():
        print(
            f"\nburst of {BURST} uploads: report -> session row median {statistics.median(latencies):.1f} s,"
            f" worst {latencies[-1]:.1f} s; {len(runs)} run(s)"
        )
    events = uploads.events(session_ids)
    assert set(events) == {e.key for s in upload.manifest.sessions.values() for e in s.events.values()}
    assert all(r["state"] == "success" for r in runs)
    # One run per batch of messages at most (the watcher takes up to ten a receive), never one per session.
    assert len(runs) <= BURST // 10
