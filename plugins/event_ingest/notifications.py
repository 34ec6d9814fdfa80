"""S3 bucket notifications, as the SQS watcher hands them to a run, turned into the report keys they announce.

The watcher of ``event_ingest_on_upload`` (an ``AssetWatcher`` with the common-messaging
``MessageQueueTrigger`` on SQS) receives up to ten messages at a time and records them as one asset
event whose extra is ``{"from_trigger": true, "payload": {"status": "success", "message_batch":
[message, ...]}}``; each message's ``Body`` is what S3 sent:

- an event notification, ``{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket":
  {"name": ...}, "object": {"key": ...}}}, ...]}``, whose keys are URL-encoded (UTF-8 bytes as
  ``%XX``, a space as ``+``) and which may hold several records;
- the same wrapped by SNS (``{"Type": "Notification", "Message": "<the notification as a string>"}``)
  when the bucket notifies a topic the queue subscribes to;
- ``s3:TestEvent``, which S3 sends once when a notification is configured.

Everything here is pure: no I/O, nothing raised whatever a message holds. A message that is not a
notification, a record of another bucket, an event other than ``ObjectCreated:*``, a key that does
not decode as UTF-8 or does not end with the report suffix: each is ignored, never an error, since
the queue may be shared and anyone may post to it. Which report keys name sessions of the bucket's
layout is for :meth:`~event_ingest.runner.BatchRunner.discover_keys` to say.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from event_ingest.layout import REPORT_SUFFIX

CREATED_EVENT_PREFIX = "ObjectCreated:"


@dataclass(frozen=True)
class Notified:
    """What a run's notifications announce.

    :param report_keys: the report keys created in the bucket, each once, in order of first mention.
    :param messages: how many messages were read.
    :param ignored: how many of them announced no report of the bucket.
    """

    report_keys: tuple[str, ...]
    messages: int
    ignored: int


def decode_key(encoded: str) -> str | None:
    """The object key an S3 notification names, or ``None`` if it is no URL-encoded UTF-8."""
    try:
        return unquote_plus(encoded, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        return None


def message_bodies(extra: Any) -> list[str]:
    """The SQS message bodies that one asset event of the watcher carries (none if it is another kind)."""
    payload = extra.get("payload") if isinstance(extra, Mapping) else None
    batch = payload.get("message_batch") if isinstance(payload, Mapping) else None
    if not isinstance(batch, list):
        return []
    return [m["Body"] for m in batch if isinstance(m, Mapping) and isinstance(m.get("Body"), str)]


def created_keys(body: str, *, bucket: str | None = None) -> list[str]:
    """The keys one message body says were created, decoded; only ``bucket``'s when it is given."""
    document = _json(body)
    if isinstance(document, dict) and document.get("Type") == "Notification":
        message = document.get("Message")
        document = _json(message) if isinstance(message, str) else None
    records = document.get("Records") if isinstance(document, dict) else None
    if not isinstance(records, list):
        return []
    keys = []
    for record in records:
        s3 = record.get("s3") if isinstance(record, dict) else None
        if not isinstance(s3, dict) or not str(record.get("eventName", "")).startswith(CREATED_EVENT_PREFIX):
            continue
        bucket_info, object_info = s3.get("bucket"), s3.get("object")
        if bucket is not None and not (isinstance(bucket_info, dict) and bucket_info.get("name") == bucket):
            continue
        encoded = object_info.get("key") if isinstance(object_info, dict) else None
        if isinstance(encoded, str) and (key := decode_key(encoded)) is not None:
            keys.append(key)
    return keys


def notified_reports(extras: Iterable[Any], *, bucket: str | None = None) -> Notified:
    """The report keys that the asset events with these extras announce for ``bucket``.

    Duplicates (S3 delivers at least once, and a run may see one asset event twice) count once.
    """
    keys: dict[str, None] = {}
    messages = ignored = 0
    for extra in extras:
        for body in message_bodies(extra):
            messages += 1
            reports = [k for k in created_keys(body, bucket=bucket) if k.endswith(REPORT_SUFFIX)]
            ignored += not reports
            keys.update(dict.fromkeys(reports))
    return Notified(report_keys=tuple(keys), messages=messages, ignored=ignored)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None
