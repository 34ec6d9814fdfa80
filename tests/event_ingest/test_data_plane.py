"""The data plane against the real S3 server: both readers, their errors, ranged GETs and the parts budget.

Downloads through each reader are tested with ``S3Source`` (``test_source.py``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from types import SimpleNamespace

import pytest

from event_ingest import data_plane
from event_ingest.errors import ObjectMissingError, is_infrastructure_fault
from event_ingest.source import S3Source
from tools.services import SeaweedS3

CONN_ID = "event_ingest_s3"


@pytest.fixture
def bucket(seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket, reachable through connection ``event_ingest_s3``."""
    monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_S3", seaweed.airflow_conn_json())
    return seaweed.create_bucket(f"dp{uuid.uuid4().hex[:12]}")


def _put(seaweed: SeaweedS3, bucket: str, key: str, body: bytes) -> None:
    seaweed.client().put_object(Bucket=bucket, Key=key, Body=body)


def _helper(bucket: str, plane: str) -> S3Source:
    return S3Source(aws_conn_id=CONN_ID, bucket=bucket, concurrency=4, data_plane=plane)


class TestReaders:
    @pytest.mark.parametrize("plane", data_plane.DATA_PLANES)
    def test_reads_the_body_of_an_object(self, seaweed: SeaweedS3, bucket: str, plane: str) -> None:
        body = b"x" * 70_000 + b"end"
        _put(seaweed, bucket, "a/b.wav", body)

        assert b"".join(_helper(bucket, plane).reader.iter_object("a/b.wav")) == body

    @pytest.mark.parametrize("plane", data_plane.DATA_PLANES)
    def test_an_absent_key_is_object_missing(self, bucket: str, plane: str) -> None:
        with pytest.raises(ObjectMissingError, match=r"no/such\.wav"):
            b"".join(_helper(bucket, plane).reader.iter_object("no/such.wav"))

    @pytest.mark.parametrize("plane", data_plane.DATA_PLANES)
    def test_a_body_larger_than_its_listing_said_streams_in_chunks(
        self, seaweed: SeaweedS3, bucket: str, monkeypatch: pytest.MonkeyPatch, plane: str
    ) -> None:
        monkeypatch.setattr(data_plane, "RANGED_MIN", 100_000)
        monkeypatch.setattr(data_plane, "_CHUNK", 64 << 10)
        body = bytes(range(256)) * 2000  # 512,000 bytes
        _put(seaweed, bucket, "big.bin", body)

        chunks = list(_helper(bucket, plane).reader.iter_object("big.bin"))  # size unknown: one GET

        assert len(chunks) > 1
        assert b"".join(chunks) == body

    @pytest.mark.parametrize("plane", data_plane.DATA_PLANES)
    def test_a_failed_ranged_get_gives_its_parts_budget_back(
        self, seaweed: SeaweedS3, bucket: str, monkeypatch: pytest.MonkeyPatch, plane: str
    ) -> None:
        monkeypatch.setattr(data_plane, "RANGED_MIN", 1000)
        monkeypatch.setattr(data_plane, "PART", 1000)
        _put(seaweed, bucket, "big.bin", b"z" * 10_000)

        for _ in range(data_plane.PARTS_IN_FLIGHT + 2):  # more failures than the budget holds
            with pytest.raises(ObjectMissingError):
                b"".join(_helper(bucket, plane).reader.iter_object("gone.bin", size=10_000))

        body = b"".join(_helper(bucket, plane).reader.iter_object("big.bin", size=10_000))
        assert body == b"z" * 10_000

    def test_obstore_is_built_from_the_connection(self, seaweed: SeaweedS3, bucket: str) -> None:
        reader = _helper(bucket, data_plane.OBSTORE).reader

        assert isinstance(reader, data_plane.ObstoreReader)
        assert reader.store.config["endpoint"] == seaweed.endpoint_url
        assert reader.store.credential_provider.calls == 0  # asked for only when a request needs them

    def test_obstore_refused_credentials_raise_for_a_retry(
        self, seaweed: SeaweedS3, bucket: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        conn = seaweed.airflow_conn_json().replace('"password": "test"', '"password": "wrong-secret"')
        monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_S3", conn)
        _put(seaweed, bucket, "k.wav", b"data")

        with pytest.raises(Exception) as raised:  # noqa: PT011 - any error but "missing" will do
            b"".join(_helper(bucket, data_plane.OBSTORE).reader.iter_object("k.wav"))
        assert not isinstance(raised.value, ObjectMissingError)
        assert is_infrastructure_fault(raised.value)

    def test_an_unknown_data_plane_is_refused(self, bucket: str) -> None:
        with pytest.raises(ValueError, match="unknown data plane 'ftp'"):
            _helper(bucket, "ftp").reader  # noqa: B018


class TestHookCredentialProvider:
    def test_asks_the_hook_each_time_and_says_when_to_ask_again(self) -> None:
        keys = iter(["first", "second"])

        def get_credentials(region_name: str | None = None) -> SimpleNamespace:
            return SimpleNamespace(access_key=next(keys), secret_key="s", token="t")

        provider = data_plane.HookCredentialProvider(
            SimpleNamespace(get_credentials=get_credentials), "eu-west-1"
        )
        before = dt.datetime.now(dt.UTC)

        first, second = provider(), provider()

        assert (first["access_key_id"], second["access_key_id"]) == ("first", "second")
        assert first["token"] == "t"
        assert (
            before + data_plane.CREDENTIAL_TTL
            <= first["expires_at"]
            <= dt.datetime.now(dt.UTC) + (data_plane.CREDENTIAL_TTL)
        )
        assert provider.calls == 2
