"""The data plane against the real S3 server: both readers, and ``AwsHelper`` downloads through each."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from event_ingest import data_plane, files
from event_ingest.aws_helper import AwsHelper, ObjectMissingError
from include.services import SeaweedS3

CONN_ID = "event_ingest_s3"


@pytest.fixture
def bucket(seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket, reachable through connection ``event_ingest_s3``."""
    monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_S3", seaweed.airflow_conn_json())
    return seaweed.create_bucket(f"dp{uuid.uuid4().hex[:12]}")


def _put(seaweed: SeaweedS3, bucket: str, key: str, body: bytes) -> None:
    seaweed.client().put_object(Bucket=bucket, Key=key, Body=body)


def _helper(bucket: str, plane: str) -> AwsHelper:
    return AwsHelper(aws_conn_id=CONN_ID, bucket=bucket, concurrency=4, data_plane=plane)


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

    def test_obstore_streams_a_large_body_in_chunks(
        self, seaweed: SeaweedS3, bucket: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(data_plane, "_WHOLE_BODY_MAX", 1000)
        body = bytes(range(256)) * 2000
        _put(seaweed, bucket, "big.bin", body)

        chunks = list(_helper(bucket, data_plane.OBSTORE).reader.iter_object("big.bin"))

        assert b"".join(chunks) == body

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


@pytest.mark.parametrize("plane", data_plane.DATA_PLANES)
class TestDownloadFile:
    def test_downloads_verified_then_skips(
        self, seaweed: SeaweedS3, bucket: str, plane: str, tmp_path: Path
    ) -> None:
        body = b"RIFF" + bytes(5000)
        _put(seaweed, bucket, "t.wav", body)
        target = tmp_path / "out" / "t.wav"
        aws = _helper(bucket, plane)
        md5 = hashlib.md5(body).hexdigest()

        assert aws.download_file("t.wav", target, size=len(body), md5=md5) is True
        assert target.read_bytes() == body
        assert aws.download_file("t.wav", target, size=len(body), md5=md5) is False

    @pytest.mark.parametrize(
        ("size_delta", "md5"),
        [pytest.param(1, None, id="size"), pytest.param(0, "0" * 32, id="md5")],
    )
    def test_a_mismatch_leaves_nothing_behind(
        self, seaweed: SeaweedS3, bucket: str, plane: str, tmp_path: Path, size_delta: int, md5: str | None
    ) -> None:
        body = b"abc" * 100
        _put(seaweed, bucket, "m.wav", body)
        target = tmp_path / "m.wav"

        with pytest.raises(files.VerificationError):
            _helper(bucket, plane).download_file("m.wav", target, size=len(body) + size_delta, md5=md5)
        assert list(tmp_path.iterdir()) == []

    def test_an_absent_object_is_missing(self, bucket: str, plane: str, tmp_path: Path) -> None:
        with pytest.raises(ObjectMissingError):
            _helper(bucket, plane).download_file("gone.wav", tmp_path / "gone.wav", size=1)
        assert list(tmp_path.iterdir()) == []
