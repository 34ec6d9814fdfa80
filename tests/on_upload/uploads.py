"""The event-driven pipeline under test: a bucket that notifies an SQS queue, a real Airflow watching it.

moto's server plays S3 and SQS on one endpoint. S3 sends the notifications itself: a bucket
notification configuration, filtered on the report suffix, puts one standard S3 event message on the
queue for each report uploaded, and an ``s3:TestEvent`` when it is configured. A test can also post
messages of its own (duplicates, stale or foreign keys). :class:`UploadStack` uploads sessions the way
uploaders do: every other file first, the report last, and it remembers when each report landed.
:meth:`UploadStack.settle` waits until every message sent so far has reached a run that finished.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from include import generator
from tools.airflow_local import AirflowStack
from tools.services import MotoS3

DAG_ID = "event_ingest_on_upload"
ASSET_NAME = "event_ingest_uploads"
ACTIVE_RUN_STATES = frozenset({"queued", "running"})
NO_SUCH_TABLE = 1146


@dataclass
class Upload:
    """Sessions uploaded by one call: what must load, and when each report landed (epoch seconds)."""

    manifest: generator.Manifest
    report_landed_at: dict[str, float] = field(default_factory=dict)

    @property
    def report_keys(self) -> list[str]:
        return list(self.report_landed_at)


class UploadStack:
    """The watched bucket, its queue, the event database and the Airflow stack, with what tests ask of them.

    :param expected_messages: how many messages the queue has been sent so far (S3's and the test's).
    """

    def __init__(
        self,
        *,
        stack: AirflowStack,
        s3: MotoS3,
        bucket: str,
        queue_url: str,
        queue_arn: str,
        db: Any,
        expected_messages: int = 0,
    ) -> None:
        self.stack = stack
        self.s3 = s3
        self.bucket = bucket
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.db = db
        self.expected_messages = expected_messages
        self.s3_client = s3.client(max_pool_connections=32)
        self.sqs = sqs_client(s3)
        self._asset_id: int | None = None

    # -- what the bucket and the queue are sent ----------------------------------------------------------

    def upload(
        self,
        days: Sequence[dt.date],
        *,
        workers: int = 1,
        reports: bool = True,
        notified: bool = True,
        **generate: Any,
    ) -> Upload:
        """Generate sessions (``include.generator``) and upload them: other files first, reports last.

        The sessions are generated into a bucket of their own, which sends no notification, then
        copied into the watched bucket, so only the report uploads notify, as when uploaders write
        their report last. ``workers`` reports are put at once; none without ``reports`` (an upload
        still under way); ``notified=False`` when the bucket's notifications are off.
        """
        staging = self.s3.create_bucket(f"staging-{uuid.uuid4().hex[:12]}")
        manifest = generator.generate_bucket(
            self.s3_client, staging, days=days, workers=4, tag_bytes=4096, **generate
        )
        keys = [o["Key"] for page in self._pages(staging) for o in page.get("Contents", [])]
        report_keys = [k for k in keys if k.endswith(generator.REPORT_SUFFIX)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda key: self._copy(staging, key), [k for k in keys if k not in report_keys]))
        upload = Upload(manifest)
        if not reports:
            return upload

        def put(key: str) -> tuple[str, float]:
            body = self.s3_client.get_object(Bucket=staging, Key=key)["Body"].read()
            return key, self.put_report(key, body, notified=notified)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            upload.report_landed_at.update(pool.map(put, report_keys))
        return upload

    def upload_renamed(self, day: dt.date, session_id: str) -> Upload:
        """Upload one generated session under the folder and id ``session_id`` (report last)."""
        staging = self.s3.create_bucket(f"staging-{uuid.uuid4().hex[:12]}")
        manifest = generator.generate_bucket(
            self.s3_client, staging, days=[day], sessions_per_day=1, tags_per_session=2, tag_bytes=4096
        )
        (generated,) = manifest.sessions.values()
        old_folder = generated.report_key.rsplit("/", 1)[0] + "/"
        new_folder = old_folder.replace(generated.session_id, session_id)
        report_key = f"{new_folder}{session_id}{generator.REPORT_SUFFIX}"
        for page in self._pages(staging):
            for item in page.get("Contents", []):
                if item["Key"] != generated.report_key:
                    source = {"Bucket": staging, "Key": item["Key"]}
                    target = new_folder + item["Key"].removeprefix(old_folder)
                    self.s3_client.copy_object(Bucket=self.bucket, Key=target, CopySource=source)
        report = json.loads(
            self.s3_client.get_object(Bucket=staging, Key=generated.report_key)["Body"].read()
        )
        report["session_id"] = session_id
        events = {
            rel: replace(event, key=new_folder + event.key.removeprefix(old_folder))
            for rel, event in generated.events.items()
        }
        expected = replace(generated, session_id=session_id, report_key=report_key, events=events)
        upload = Upload(generator.Manifest(sessions={session_id: expected}))
        upload.report_landed_at[report_key] = self.put_report(report_key, json.dumps(report).encode())
        return upload

    def put_report(self, key: str, body: bytes, *, notified: bool = True) -> float:
        """Put a report into the watched bucket; when it landed (epoch seconds)."""
        self.s3_client.put_object(Bucket=self.bucket, Key=key, Body=body)
        self.expected_messages += notified
        return time.time()

    def report(self, key: str) -> dict[str, Any]:
        """A report of the watched bucket, parsed."""
        return json.loads(self.s3_client.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def add_audio_tag(self, day: dt.date, session_id: str) -> generator.ExpectedEvent:
        """Upload a session again with one more audio tag (its report replaced, so S3 notifies)."""
        event = generator.add_audio_tag(
            self.s3_client, self.bucket, prefix="", day=day, session_id=session_id, tag_bytes=4096
        )
        self.expected_messages += 1
        return event

    def notify_reports(self, *, enabled: bool = True) -> None:
        """Have the bucket notify the queue of each report created, or of nothing.

        Turning notifications on makes S3 send an ``s3:TestEvent``.
        """
        rules = [{"Name": "suffix", "Value": generator.REPORT_SUFFIX}]
        queue = {
            "Id": "reports",
            "QueueArn": self.queue_arn,
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": rules}},
        }
        config = {"QueueConfigurations": [queue]} if enabled else {}
        self.s3_client.put_bucket_notification_configuration(
            Bucket=self.bucket, NotificationConfiguration=config
        )
        self.expected_messages += enabled

    def post(self, *bodies: str) -> None:
        """Put messages of the test's own on the queue."""
        for body in bodies:
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)
            self.expected_messages += 1

    # -- waiting for the pipeline ------------------------------------------------------------------------

    def settle(self, timeout: float = 240) -> None:
        """Wait until every message sent so far is in an asset event, and every run they made finished.

        Making a run deletes its asset-queue entry in the same transaction, so once every message is
        in an asset event, no entry is queued and no run is active, nothing is left to happen.
        """
        deadline = time.monotonic() + timeout
        while (received := self.messages_received()) < self.expected_messages:
            self._check_deadline(deadline, f"{received} of {self.expected_messages} messages received")
            time.sleep(0.5)
        while True:
            queued = self.stack.request("GET", f"/dags/{DAG_ID}/assets/queuedEvents")["total_entries"]
            active = [r["dag_run_id"] for r in self.dag_runs() if r["state"] in ACTIVE_RUN_STATES]
            if not queued and not active:
                return
            self._check_deadline(deadline, f"{queued} queued asset event(s), runs still active: {active}")
            time.sleep(0.5)

    def wait_for_sessions(
        self, session_ids: Sequence[str], timeout: float = 240
    ) -> dict[str, dict[str, Any]]:
        """Wait until every one of ``session_ids`` has its row; the rows."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.sessions(session_ids)
            if len(rows) == len(set(session_ids)):
                return rows
            self._check_deadline(deadline, f"{len(rows)} of {len(set(session_ids))} sessions loaded")
            time.sleep(0.5)

    def messages_received(self) -> int:
        """How many messages the watcher has turned into asset events so far."""
        received, offset = 0, 0
        while True:
            page = self.stack.request(
                "GET", "/assets/events", params={"asset_id": self.asset_id(), "limit": 100, "offset": offset}
            )
            events = page["asset_events"]
            received += sum(len(e["extra"].get("payload", {}).get("message_batch", [])) for e in events)
            offset += len(events)
            if not events or offset >= page["total_entries"]:
                return received

    def asset_id(self) -> int:
        if self._asset_id is None:
            assets = self.stack.request("GET", "/assets", params={"name_pattern": ASSET_NAME})["assets"]
            self._asset_id = next(a["id"] for a in assets if a["name"] == ASSET_NAME)
        return self._asset_id

    # -- what Airflow and the event database hold --------------------------------------------------------

    def dag_runs(self) -> list[dict[str, Any]]:
        return self.stack.dag_runs(DAG_ID)

    def query(self, statement: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows as dicts; none while the first run has not created the tables yet."""
        import MySQLdb

        cursor = self.db.cursor()
        try:
            cursor.execute(statement, tuple(args))
        except MySQLdb.ProgrammingError as exc:
            if exc.args[0] != NO_SUCH_TABLE:
                raise
            return []
        names = [d[0] for d in cursor.description] if cursor.description else []
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        cursor.close()
        return rows

    def sessions(self, session_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not session_ids:
            return {}
        marks = ", ".join(["%s"] * len(session_ids))
        rows = self.query(f"SELECT * FROM sessions WHERE session_id IN ({marks})", session_ids)
        return {r["session_id"]: r for r in rows}

    def events(self, session_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        marks = ", ".join(["%s"] * len(session_ids))
        rows = self.query(f"SELECT * FROM events WHERE session_id IN ({marks})", session_ids)
        return {r["s3_key"]: r for r in rows}

    def snapshot(self, session_ids: Sequence[str]) -> dict[str, Any]:
        """The rows of these sessions and their events, as loaded."""
        return {"sessions": self.sessions(session_ids), "events": self.events(session_ids)}

    def latencies(self, upload: Upload) -> list[float]:
        """Seconds from each report landing to its session's row, in order."""
        rows = self.sessions([s.session_id for s in upload.manifest.sessions.values()])
        return sorted(
            row["ingested_at"].replace(tzinfo=dt.UTC).timestamp() - upload.report_landed_at[row["report_key"]]
            for row in rows.values()
        )

    def deferrals(self) -> dict[str, dict[str, Any]]:
        return {r["session_id"]: r for r in self.query("SELECT * FROM ingest_deferrals")}

    def ingest_runs(self) -> dict[str, dict[str, Any]]:
        return {
            r["dag_run_id"]: r for r in self.query("SELECT * FROM ingest_runs WHERE dag_id = %s", [DAG_ID])
        }

    # -- internals ---------------------------------------------------------------------------------------

    def _pages(self, bucket: str) -> Any:
        return self.s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket)

    def _copy(self, source_bucket: str, key: str) -> None:
        self.s3_client.copy_object(
            Bucket=self.bucket, Key=key, CopySource={"Bucket": source_bucket, "Key": key}
        )

    def _check_deadline(self, deadline: float, what: str) -> None:
        if time.monotonic() > deadline:
            runs = [(r["dag_run_id"], r["state"]) for r in self.dag_runs()]
            raise TimeoutError(f"not settled: {what}; runs {runs}")


def sqs_client(s3: MotoS3) -> Any:
    import boto3

    return boto3.client(
        "sqs",
        endpoint_url=s3.endpoint_url,
        aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key,
        region_name=s3.region,
    )


def s3_event(bucket: str, *keys: str, event: str = "ObjectCreated:Put") -> str:
    """A standard S3 event notification for ``keys`` (URL-encoded, as S3 sends them)."""
    from urllib.parse import quote_plus

    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": "us-east-1",
                    "eventTime": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                    "eventName": event,
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                        "object": {"key": quote_plus(key), "size": 1},
                    },
                }
                for key in keys
            ]
        }
    )
