"""Tests for event_ingest.notifications: S3 notification messages to the report keys they announce."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from event_ingest import notifications
from event_ingest.layout import REPORT_SUFFIX

BUCKET = "drive-sessions"
SESSION = "20261120T101533Z_veh042"
REPORT = f"2026/11/20/{SESSION}/{SESSION}{REPORT_SUFFIX}"
TAG = f"2026/11/20/{SESSION}/AudioTags/tag_0001.wav"

#: What S3 accepts as a key: any Unicode but lone surrogates, up to 1,024 bytes of UTF-8.
s3_keys = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=300).filter(
    lambda key: len(key.encode()) <= 1024
)
#: Characters an encoder may leave as they are; never ``%`` or ``+``, which the encoding itself uses.
kept_as_is = st.sets(st.sampled_from("-_.~!*'()/:@,;=$&")).map("".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def record(key: str, *, bucket: str = BUCKET, event: str = "ObjectCreated:Put") -> dict[str, Any]:
    """One record of an S3 event notification, its key encoded as S3 encodes it."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-20T13:40:00.000Z",
        "eventName": event,
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "reports",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": quote_plus(key), "size": 1234, "eTag": "9e107d9d372bb6826bd81d3542a419d6"},
        },
    }


def body(*records: dict[str, Any]) -> str:
    return json.dumps({"Records": list(records)})


def sns_wrapped(message: str) -> str:
    """A message as an SNS topic delivers it to a subscribed queue (raw delivery off)."""
    return json.dumps(
        {"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:uploads", "Message": message}
    )


def asset_event_extra(*bodies: str) -> dict[str, Any]:
    """The extra of one asset event the SQS watcher records: the messages of one receive."""
    batch = [{"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": b} for i, b in enumerate(bodies)]
    return {"from_trigger": True, "payload": {"status": "success", "message_batch": batch}}


TEST_EVENT = json.dumps(
    {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-20T13:40:00.000Z", "Bucket": BUCKET}
)


class TestDecodeKey:
    @pytest.mark.parametrize(
        ("encoded", "expected"),
        [
            pytest.param("a+b.json", "a b.json", id="plus-is-space"),
            pytest.param("a%2Bb.json", "a+b.json", id="encoded-plus"),
            pytest.param("caf%C3%A9", "café", id="utf8-bytes"),
            pytest.param("%E2%80%AEevil", "\u202eevil", id="bidi-control"),
            pytest.param("2026/11/20/s/x", "2026/11/20/s/x", id="slashes-kept"),
            pytest.param("100%", "100%", id="stray-percent"),
        ],
    )
    def test_decodes_what_s3_encoded(self, encoded: str, expected: str) -> None:
        assert notifications.decode_key(encoded) == expected

    @pytest.mark.parametrize(
        "encoded",
        [pytest.param("%FF", id="not-utf8"), pytest.param("%ED%A0%80", id="encoded-surrogate")],
    )
    def test_refuses_bytes_that_are_no_utf8(self, encoded: str) -> None:
        assert notifications.decode_key(encoded) is None

    @given(key=s3_keys)
    def test_round_trips_any_key_s3_accepts(self, key: str) -> None:
        assert notifications.decode_key(quote_plus(key)) == key

    @given(key=s3_keys, safe=kept_as_is)
    def test_round_trips_whatever_characters_the_encoder_leaves_alone(self, key: str, safe: str) -> None:
        encoded = quote(key, safe=safe + " ").replace(" ", "+")
        assert notifications.decode_key(encoded) == key


class TestCreatedKeys:
    def test_gives_every_record_of_a_batch_in_order(self) -> None:
        keys = [REPORT, TAG, "elsewhere/readme.txt"]
        assert notifications.created_keys(body(*map(record, keys))) == keys

    def test_unwraps_an_sns_notification(self) -> None:
        assert notifications.created_keys(sns_wrapped(body(record(REPORT)))) == [REPORT]

    @pytest.mark.parametrize(
        "event",
        [
            pytest.param("ObjectCreated:Put", id="put"),
            pytest.param("ObjectCreated:Post", id="post"),
            pytest.param("ObjectCreated:Copy", id="copy"),
            pytest.param("ObjectCreated:CompleteMultipartUpload", id="multipart"),
        ],
    )
    def test_takes_every_kind_of_creation(self, event: str) -> None:
        assert notifications.created_keys(body(record(REPORT, event=event))) == [REPORT]

    @pytest.mark.parametrize(
        "event",
        [
            pytest.param("ObjectRemoved:Delete", id="delete"),
            pytest.param("ObjectRestore:Completed", id="restore"),
            pytest.param("ObjectTagging:Put", id="tagging"),
        ],
    )
    def test_ignores_events_other_than_creation(self, event: str) -> None:
        assert notifications.created_keys(body(record(REPORT, event=event))) == []

    def test_keeps_only_the_buckets_records_when_asked(self) -> None:
        message = body(record(REPORT, bucket="other"), record(TAG))
        assert notifications.created_keys(message, bucket=BUCKET) == [TAG]
        assert notifications.created_keys(message) == [REPORT, TAG]

    @pytest.mark.parametrize(
        "message",
        [
            pytest.param(TEST_EVENT, id="s3-test-event"),
            pytest.param("", id="empty"),
            pytest.param("not json", id="not-json"),
            pytest.param("[" * 100_000, id="deeply-nested"),
            pytest.param("1" * 5000, id="huge-number"),
            pytest.param(json.dumps({"Records": "x"}), id="records-not-a-list"),
            pytest.param(json.dumps({"Records": [1, None, {"s3": 3}]}), id="records-not-objects"),
            pytest.param(
                json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {}}]}), id="no-key"
            ),
            pytest.param(body({**record(REPORT), "s3": {"object": {"key": 7}}}), id="key-not-a-string"),
            pytest.param(sns_wrapped("not json"), id="sns-of-garbage"),
            pytest.param(
                json.dumps({"Type": "Notification", "Message": {"Records": []}}), id="sns-not-a-string"
            ),
            pytest.param(body({**record("x"), "s3": {"object": {"key": "%FF"}}}), id="key-not-utf8"),
        ],
    )
    def test_finds_no_key_in_what_is_no_creation_notification(self, message: str) -> None:
        assert notifications.created_keys(message) == []

    @given(value=json_values)
    def test_never_raises_on_any_json(self, value: Any) -> None:
        keys = notifications.created_keys(json.dumps(value))
        assert all(isinstance(key, str) for key in keys)

    @given(value=json_values)
    def test_never_raises_on_any_records(self, value: Any) -> None:
        notifications.created_keys(
            json.dumps({"Records": [value, {"eventName": "ObjectCreated:Put", "s3": value}]})
        )

    @given(keys=st.lists(s3_keys, min_size=1, max_size=5))
    def test_gives_back_any_keys_as_uploaded(self, keys: list[str]) -> None:
        assert notifications.created_keys(body(*map(record, keys)), bucket=BUCKET) == keys


class TestMessageBodies:
    def test_gives_the_bodies_of_the_watchers_messages(self) -> None:
        assert notifications.message_bodies(asset_event_extra("a", "b")) == ["a", "b"]

    @pytest.mark.parametrize(
        "extra",
        [
            pytest.param({}, id="empty"),
            pytest.param(None, id="none"),
            pytest.param({"payload": "x"}, id="payload-not-an-object"),
            pytest.param({"payload": {"message_batch": {"Body": "x"}}}, id="batch-not-a-list"),
            pytest.param({"payload": {"message_batch": [1, {"Body": 2}, {}]}}, id="messages-without-bodies"),
            pytest.param({"dag_id": "event_ingest", "loaded_sessions": 3}, id="another-kind-of-event"),
        ],
    )
    def test_gives_none_for_other_extras(self, extra: Any) -> None:
        assert notifications.message_bodies(extra) == []


class TestNotifiedReports:
    def test_takes_the_reports_of_every_asset_event(self) -> None:
        other = f"2026/11/21/s2/s2{REPORT_SUFFIX}"
        notified = notifications.notified_reports(
            [asset_event_extra(body(record(REPORT))), asset_event_extra(body(record(other)))], bucket=BUCKET
        )
        assert notified == notifications.Notified(report_keys=(REPORT, other), messages=2, ignored=0)

    def test_counts_a_duplicate_once_in_the_order_first_seen(self) -> None:
        other = f"2026/11/21/s2/s2{REPORT_SUFFIX}"
        extras = [
            asset_event_extra(body(record(other)), body(record(REPORT))),
            asset_event_extra(body(record(REPORT), record(other))),
        ]
        assert notifications.notified_reports(extras).report_keys == (other, REPORT)

    def test_ignores_messages_without_a_report_of_the_bucket(self) -> None:
        extras = [
            asset_event_extra(
                TEST_EVENT,
                body(record(TAG)),
                body(record(REPORT, bucket="other")),
                "garbage",
                sns_wrapped(body(record(REPORT))),
            )
        ]
        notified = notifications.notified_reports(extras, bucket=BUCKET)
        assert notified == notifications.Notified(report_keys=(REPORT,), messages=5, ignored=4)

    def test_a_report_with_a_space_in_its_session_id_is_decoded(self) -> None:
        key = f"2026/11/20/veh 42 run+1/veh 42 run+1{REPORT_SUFFIX}"
        message = body(record(key))
        assert "veh+42+run%2B1" in message
        assert notifications.notified_reports([asset_event_extra(message)]).report_keys == (key,)

    def test_no_events_announce_nothing(self) -> None:
        assert notifications.notified_reports([]) == notifications.Notified((), 0, 0)
