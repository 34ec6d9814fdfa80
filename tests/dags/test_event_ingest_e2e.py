"""End-to-end: dag.test() runs of event_ingest against SeaweedFS and a throwaway MariaDB."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from pathlib import Path

import pytest

from event_ingest.timestamps import normalize
from include import generator
from tests.support.pipeline import Pipeline, airflow_dags_test

pytestmark = pytest.mark.e2e

NOV = {d: dt.date(2026, 11, d) for d in range(1, 31)}


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def db_time(value: dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if value else None


def assert_loaded_exactly(pipe: Pipeline, manifest: generator.Manifest) -> None:
    """The sessions and events tables hold exactly the manifest's, times and files included."""
    sessions = pipe.sessions()
    assert set(sessions) == set(manifest.sessions)
    events = pipe.events()
    expected = {e.key: e for s in manifest.sessions.values() for e in s.events.values()}
    assert Counter(r["s3_key"] for r in pipe.query("SELECT s3_key FROM events")) == Counter(set(expected))
    source_md5 = pipe.source_etags()
    for key, want in expected.items():
        row = events[key]
        assert row["time_source"] == want.time_source, key
        assert db_time(row["event_time"]) == (normalize(want.event_time) if want.event_time else None), key
        assert row["frame_id"] == want.frame_id
        assert row["event_type"] == "audio_tag"
        local = Path(row["local_path"])
        assert local.is_relative_to(pipe.data_dir)
        assert hashlib.md5(local.read_bytes()).hexdigest() == source_md5[key], key
        assert row["md5"] in (None, source_md5[key]), key
        assert local.stat().st_size == row["size_bytes"]
    for session_id, want in manifest.sessions.items():
        row = sessions[session_id]
        assert row["event_count"] == len(want.events)
        assert row["report_key"] == want.report_key
        assert row["session_date"].isoformat() == want.day
        assert row["vehicle_id"] == want.vehicle_id
        day = dt.date.fromisoformat(want.day)
        assert (
            pipe.data_dir / f"{day:%Y/%m/%d}" / session_id / f"{session_id}_logged_Upload_Report.json"
        ).exists()


class TestScheduledRun:
    def test_ingests_its_interval_day_and_the_lookback(self, pipeline: Pipeline) -> None:
        inside = pipeline.seed([NOV[18], NOV[20]], sessions_per_day=2, seed=1)
        pipeline.seed([NOV[17], NOV[21]], sessions_per_day=2, seed=2, vehicle_offset=50)

        result = pipeline.run(logical_date=midnight(NOV[21]))  # the interval [Nov 20, Nov 21)

        assert result.succeeded, result.task_states
        assert_loaded_exactly(pipeline, inside)
        assert result.summary["loaded_sessions"] == 4
        assert not pipeline.open_rejects()

    def test_empty_day_succeeds_with_nothing_to_do(self, pipeline: Pipeline) -> None:
        result = pipeline.run(conf={"start_date": "2026-11-05"})

        assert result.succeeded, result.task_states
        assert result.summary == {k: 0 for k in result.summary}
        assert pipeline.local_files() == set()

    def test_late_session_is_found_by_the_lookback(self, pipeline: Pipeline) -> None:
        first = pipeline.seed([NOV[20]], sessions_per_day=2, seed=3)
        pipeline.run(logical_date=midnight(NOV[21]))
        late = pipeline.seed([NOV[20]], sessions_per_day=1, seed=4, vehicle_offset=10)

        result = pipeline.run(logical_date=midnight(NOV[22]))  # interval Nov 21, look-back to Nov 19

        assert result.succeeded, result.task_states
        assert_loaded_exactly(pipeline, first.merge(late))
        assert result.summary["skipped"] == 2
        assert result.summary["loaded_sessions"] == 1


class TestDateRangeConf:
    def test_ingests_both_ends_inclusive_and_nothing_else(self, pipeline: Pipeline) -> None:
        wanted = pipeline.seed([NOV[1], NOV[2], NOV[3]], sessions_per_day=2, tags_per_session=4, seed=5)
        pipeline.seed([NOV[4]], sessions_per_day=1, seed=6, vehicle_offset=20)

        result = pipeline.run(conf={"start_date": "2026-11-01", "end_date": "2026-11-03", "batch_size": 4})

        assert result.succeeded, result.task_states
        assert_loaded_exactly(pipeline, wanted)
        assert result.task_states["ingest_batch.load_to_db"]["success"] == 2  # 6 sessions in batches of 4
        sources = {row["time_source"] for row in pipeline.events().values()}
        assert sources == {"report", "display_log", "unresolved"}

    def test_rerun_changes_no_row(self, pipeline: Pipeline) -> None:
        pipeline.seed([NOV[1], NOV[2]], sessions_per_day=3, seed=7)
        conf = {"start_date": "2026-11-01", "end_date": "2026-11-02"}
        pipeline.run(conf=conf)
        before, files_before = pipeline.snapshot(), pipeline.local_files()

        again = pipeline.run(conf=conf)

        assert again.succeeded
        assert pipeline.snapshot() == before
        assert pipeline.local_files() == files_before
        assert again.summary["skipped"] == again.summary["discovered"] == 6
        assert again.summary["loaded_events"] == 0

    def test_reupload_with_one_more_tag_adds_only_that_event(self, pipeline: Pipeline) -> None:
        manifest = pipeline.seed([NOV[2]], sessions_per_day=2, seed=8)
        conf = {"start_date": "2026-11-02"}
        pipeline.run(conf=conf)
        session_id = sorted(manifest.sessions)[0]
        old_events = {k: v for k, v in pipeline.events().items() if v["session_id"] == session_id}

        added = generator.add_audio_tag(
            pipeline.client, pipeline.bucket, prefix="", day=NOV[2], session_id=session_id
        )
        result = pipeline.run(conf=conf)

        assert result.succeeded
        assert result.summary["loaded_events"] == 1
        events = {k: v for k, v in pipeline.events().items() if v["session_id"] == session_id}
        assert set(events) == set(old_events) | {added.key}
        assert all(events[k] == row for k, row in old_events.items())
        assert pipeline.sessions()[session_id]["event_count"] == len(old_events) + 1


class TestBadInput:
    def test_every_bad_session_is_rejected_with_its_reason_and_the_rest_loads(
        self, pipeline: Pipeline, tmp_path: Path
    ) -> None:
        manifest = pipeline.seed([NOV[10]], sessions_per_day=2, bad_kinds=generator.BAD_KINDS, seed=9)

        result = pipeline.run(conf={"start_date": "2026-11-10"})

        assert result.succeeded, result.task_states
        assert_loaded_exactly(pipeline, manifest)
        rejects = pipeline.open_rejects()
        assert set(rejects) == {r.object_key for r in manifest.rejects}
        reasons = {r.kind: rejects[r.object_key]["reason"] for r in manifest.rejects}
        assert "malformed JSON" in reasons["malformed_json"]
        assert "vehicle_id" in reasons["missing_fields"]
        assert "differs from its folder" in reasons["session_id_mismatch"]
        assert "absent" in reasons["file_absent"]
        assert "size mismatch" in reasons["size_mismatch"]
        assert "md5 mismatch" in reasons["md5_mismatch"]
        assert "leaves the session folder" in reasons["path_escape_dotdot"]
        assert "leaves the session folder" in reasons["path_escape_absolute"]
        assert "not UTF-8" in reasons["non_utf8_display_log"]
        assert all(r["dag_run_id"] == result.run_id for r in rejects.values())
        assert result.summary["deferred"] == len(manifest.deferred) == 1
        assert not set(manifest.deferred) & set(pipeline.sessions())
        outside = [p for p in tmp_path.rglob("*escape*")] + [p for p in Path("/etc").glob("escape*")]
        assert outside == []

    def test_a_fixed_reupload_resolves_the_reject(self, pipeline: Pipeline) -> None:
        manifest = pipeline.seed([NOV[10]], sessions_per_day=0, bad_kinds=["malformed_json"], seed=10)
        pipeline.run(conf={"start_date": "2026-11-10"})
        (reject,) = manifest.rejects
        assert reject.object_key in pipeline.open_rejects()

        good = pipeline.seed([NOV[10]], sessions_per_day=1, seed=10)  # same id, a valid report now
        result = pipeline.run(conf={"start_date": "2026-11-10"})

        assert result.succeeded
        assert set(good.sessions) == {reject.session_id}
        assert pipeline.open_rejects() == {}
        (row,) = pipeline.query("SELECT resolved_at FROM ingest_rejects")
        assert row["resolved_at"] is not None


class TestBadConf:
    @pytest.mark.parametrize(
        ("conf", "message"),
        [
            pytest.param(
                {"start_date": "2026-11-03", "end_date": "2026-11-01"}, "before", id="end-before-start"
            ),
            pytest.param({"start_date": "2026-11-01", "colour": "red"}, "unknown conf key", id="unknown-key"),
            pytest.param({"end_date": "2026-11-01"}, "without start_date", id="end-without-start"),
        ],
    )
    def test_fails_at_once_and_writes_nothing(
        self, pipeline: Pipeline, conf: dict[str, str], message: str, capfd: pytest.CaptureFixture[str]
    ) -> None:
        pipeline.seed([NOV[1]], sessions_per_day=1, seed=11)

        result = pipeline.run(conf=conf)

        assert result.state == "failed"
        assert result.task_states["discover_sessions"] == {"failed": 1}
        assert not pipeline.table_exists("sessions")
        assert pipeline.local_files() == set()
        assert message in capfd.readouterr().out

    @pytest.mark.parametrize(
        "conf",
        [
            pytest.param({"start_date": "2026-11-31"}, id="impossible-date"),
            pytest.param({"start_date": "yesterday"}, id="not-a-date"),
            pytest.param({"start_date": "2026-11-01", "lookback_days": "two"}, id="wrong-type"),
        ],
    )
    def test_params_refuse_an_invalid_value_before_the_run_starts(
        self, pipeline: Pipeline, conf: dict
    ) -> None:
        from airflow.sdk.exceptions import ParamValidationError

        with pytest.raises(ParamValidationError):
            pipeline.run(conf=conf)
        assert not pipeline.table_exists("sessions")


class TestEmbeddedSqlite:
    def test_without_a_db_connection_loads_into_sqlite_in_the_data_dir(
        self, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import sqlite3

        monkeypatch.delenv("AIRFLOW_CONN_EVENT_INGEST_DB")
        manifest = pipeline.seed([NOV[12]], sessions_per_day=2, seed=12)

        result = pipeline.run(conf={"start_date": "2026-11-12"})

        assert result.succeeded, result.task_states
        with sqlite3.connect(pipeline.data_dir / "event_ingest.sqlite3") as db:
            assert {r[0] for r in db.execute("SELECT session_id FROM sessions")} == set(manifest.sessions)
            events = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        assert events == sum(len(s.events) for s in manifest.sessions.values())


class TestAirflowCli:
    def test_dags_test_with_a_date_range_conf_loads_that_range(self, pipeline: Pipeline) -> None:
        manifest = pipeline.seed([NOV[7], NOV[8]], sessions_per_day=2, bad_kinds=["md5_mismatch"], seed=13)

        result = airflow_dags_test({"start_date": "2026-11-07", "end_date": "2026-11-08"}, "2026-11-20")

        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert_loaded_exactly(pipeline, manifest)
        assert set(pipeline.open_rejects()) == {r.object_key for r in manifest.rejects}


def asset_events(run_id: str) -> list[dict]:
    """The extras of the asset events ``run_id`` emitted, from Airflow's metadata database."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetModel.name, AssetModel.uri, AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetEvent.source_run_id == run_id)
        ).all()
    return [{"name": name, "uri": uri, **extra} for name, uri, extra in rows]


class TestRunLedgerAndAsset:
    def test_a_run_records_itself_and_announces_what_it_loaded(self, pipeline: Pipeline) -> None:
        manifest = pipeline.seed([NOV[14], NOV[15]], sessions_per_day=2, bad_kinds=["file_absent"], seed=21)

        result = pipeline.run(conf={"start_date": "2026-11-14", "end_date": "2026-11-15"})

        assert result.succeeded, result.task_states
        run = pipeline.runs()[result.run_id]
        assert (run["dag_id"], run["run_type"], run["state"], run["failed_batches"]) == (
            "event_ingest",
            "manual",
            "success",
            0,
        )
        assert (run["first_day"].isoformat(), run["last_day"].isoformat()) == ("2026-11-14", "2026-11-15")
        assert {k: run[k] for k in result.summary} == result.summary
        assert run["finished_at"] >= run["started_at"]
        (event,) = asset_events(result.run_id)
        assert (event["name"], event["uri"]) == ("event_ingest_events", "event-ingest://events/")
        assert event["days"] == ["2026-11-14", "2026-11-15"]
        assert event["loaded_sessions"] == len(manifest.sessions) == result.summary["loaded_sessions"]
        assert event["loaded_events"] == result.summary["loaded_events"]

    def test_a_run_that_loads_nothing_records_itself_and_announces_nothing(self, pipeline: Pipeline) -> None:
        result = pipeline.run(conf={"start_date": "2026-11-16"})

        assert result.succeeded, result.task_states
        assert result.task_states["emit_asset_event"] == {"skipped": 1}
        assert pipeline.runs()[result.run_id]["state"] == "success"
        assert asset_events(result.run_id) == []


class TestDeferredSessions:
    def test_an_unfinished_upload_is_recorded_then_loads_once_complete(self, pipeline: Pipeline) -> None:
        import json

        manifest = pipeline.seed([NOV[17]], sessions_per_day=1, bad_kinds=["incomplete_upload"], seed=22)
        (waiting,) = manifest.deferred
        conf = {"start_date": "2026-11-17"}

        first = pipeline.run(conf=conf)

        assert first.summary["deferred"] == 1
        (row,) = pipeline.query("SELECT * FROM ingest_deferrals")
        assert (row["session_id"], row["session_date"].isoformat()) == (waiting, "2026-11-17")
        assert "in_progress" in row["reason"]
        key = row["report_key"]
        report = json.loads(pipeline.client.get_object(Bucket=pipeline.bucket, Key=key)["Body"].read())
        report["upload"]["status"] = "complete"
        pipeline.client.put_object(Bucket=pipeline.bucket, Key=key, Body=json.dumps(report).encode())

        second = pipeline.run(conf=conf)

        assert (second.summary["deferred"], second.summary["loaded_sessions"]) == (0, 1)
        assert waiting in pipeline.sessions()
        assert pipeline.query("SELECT * FROM ingest_deferrals") == []


class TestOneSessionIdUnderTwoDays:
    def test_the_earliest_folder_is_the_session_and_reruns_leave_the_rows(self, pipeline: Pipeline) -> None:
        manifest = pipeline.seed([NOV[1]], sessions_per_day=1, seed=23)
        (session_id,) = manifest.sessions
        for item in pipeline.client.list_objects_v2(Bucket=pipeline.bucket)["Contents"]:
            body = pipeline.client.get_object(Bucket=pipeline.bucket, Key=item["Key"])["Body"].read()
            pipeline.client.put_object(
                Bucket=pipeline.bucket, Key=item["Key"].replace("2026/11/01", "2026/11/02"), Body=body
            )
        conf = {"start_date": "2026-11-01", "end_date": "2026-11-02"}

        result = pipeline.run(conf=conf)

        assert result.succeeded, result.task_states
        assert_loaded_exactly(pipeline, manifest)
        (reject,) = pipeline.open_rejects().values()
        assert reject["object_key"] == f"2026/11/02/{session_id}/{session_id}_logged_Upload_Report.json"
        assert reject["session_id"] == session_id
        assert "session id already found under 2026-11-01" in reject["reason"]
        before = pipeline.snapshot()
        pipeline.run(conf=conf)
        pipeline.run(conf={"start_date": "2026-11-02"})
        assert pipeline.snapshot() == before
