"""Tests for event_ingest.source: S3Source against real S3 servers (SeaweedFS; moto for odd keys).

The source reaches the server the way the DAG does: through connection ``event_ingest_s3``, given as an
``AIRFLOW_CONN_*`` environment variable. Buckets are filled with the demo generator, so layouts and
expectations come from the same source as the end-to-end tests.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from event_ingest import data_plane as data_plane_module
from event_ingest.data_plane import DATA_PLANES
from event_ingest.errors import ObjectChangedError, ObjectMissingError, S3AccessError, VerificationError
from event_ingest.model import FILE_TYPES, SessionListing
from event_ingest.settings import S3_CONN_ID
from event_ingest.source import S3Source
from include import generator
from tools.services import MotoS3, SeaweedS3

DAY = dt.date(2026, 11, 20)
NEXT_DAY = dt.date(2026, 11, 21)
EMPTY_DAY = dt.date(2026, 11, 10)
WRONG_SECRET = "wrong-secret-6f1c0d"
PAYLOAD = b"RIFF" + bytes(range(256)) * 16
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()
PAYLOAD_KEY = "2026/11/20/s/AudioTags/tag_0001.wav"
GONE_KEY = "2026/11/20/s/AudioTags/gone.wav"


def new_bucket(server: SeaweedS3 | MotoS3) -> str:
    return server.create_bucket(f"t{uuid.uuid4().hex[:12]}")


def source_for(bucket: str, prefix: str = "", data_plane: str | None = None) -> S3Source:
    return S3Source(
        aws_conn_id=S3_CONN_ID, bucket=bucket, prefix=prefix, concurrency=4, data_plane=data_plane
    )


def record_calls(source: S3Source, operation: str) -> list[dict[str, Any]]:
    """The request (URL, query string, headers) of each boto3 ``operation`` the source sends from now on."""
    calls: list[dict[str, Any]] = []
    source.hook.get_conn().meta.events.register(
        f"before-call.s3.{operation}", lambda params, **_: calls.append(params)
    )
    return calls


def record_obstore_list_pages(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The prefix of each page that obstore's listings yield from now on (a page: up to 1,000 keys)."""
    import obstore

    pages: list[str] = []
    original = obstore.list

    def listing(store: Any, prefix: str | None = None, **kwargs: Any) -> Any:
        for page in original(store, prefix, **kwargs):
            pages.append(prefix)
            yield page

    monkeypatch.setattr(obstore, "list", listing)
    return pages


def assert_listed_and_read_exactly(source: S3Source, client: Any, key: str) -> None:
    """Put ``key`` (of session ``s`` on DAY) and its report: the day's listing holds the key as put,
    and reading it as listed gives its bytes back."""
    client.put_object(Bucket=source.bucket, Key=key, Body=PAYLOAD)
    client.put_object(Bucket=source.bucket, Key="2026/11/20/s/s_logged_Upload_Report.json", Body=b"{}")
    (listing,) = source.list_day(DAY)
    relpath = key[len("2026/11/20/s/") :]
    assert set(listing.objects) == {relpath}
    size, etag = listing.objects[relpath]
    assert source.read(key, size=size, if_match=etag) == PAYLOAD


def parts_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.part"))


def listing_of(source: S3Source, day: dt.date, session_id: str) -> SessionListing:
    return next(x for x in source.list_day(day) if x.session_id == session_id)


@pytest.fixture(autouse=True)
def s3_connection(seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_S3", seaweed.airflow_conn_json())


@pytest.fixture(scope="module")
def client(seaweed: SeaweedS3) -> Any:
    """A plain boto3 client of the server, to arrange and inspect buckets behind the source's back."""
    return seaweed.client(max_pool_connections=32)


@pytest.fixture
def bucket(seaweed: SeaweedS3) -> str:
    return new_bucket(seaweed)


@pytest.fixture(params=[pytest.param(name, id=name) for name in DATA_PLANES])
def data_plane(request: pytest.FixtureRequest) -> str:
    """Object bodies come through either reader; both must behave the same."""
    return request.param


class TestConnect:
    def test_reaches_an_existing_bucket(self, bucket: str) -> None:
        source_for(bucket).connect()

    def test_missing_bucket_is_named(self) -> None:
        with pytest.raises(S3AccessError, match="'no-such-bucket-4711' does not exist"):
            source_for("no-such-bucket-4711").connect()

    def test_wrong_secret_key_is_reported_as_a_credentials_problem(
        self, seaweed: SeaweedS3, bucket: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        conn = json.loads(seaweed.airflow_conn_json())
        monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_S3", json.dumps({**conn, "password": WRONG_SECRET}))
        with pytest.raises(S3AccessError, match="denied: check the credentials") as raised:
            source_for(bucket).connect()
        assert S3_CONN_ID in str(raised.value)
        assert WRONG_SECRET not in str(raised.value)


@pytest.fixture(scope="module")
def layout_bucket(seaweed: SeaweedS3, client: Any) -> dict[str, Any]:
    """Sessions under two prefixes and two days, among keys that are not sessions.

    Read-only: the tests of the listing share it.
    """
    name = new_bucket(seaweed)
    small = {"tags_per_session": 2, "tag_bytes": 256}
    plain = generator.generate_bucket(
        client, name, days=[DAY, NEXT_DAY], sessions_per_day=2, **small, vehicle_offset=0
    )
    raw = generator.generate_bucket(client, name, prefix="raw/", days=[DAY], sessions_per_day=2, **small)
    strays = [
        "README.md",
        f"{DAY:%Y/%m/%d}/stray.txt",
        f"{DAY:%Y/%m/%d}/",
        # Still uploading: tags are there, the report is not yet.
        f"{DAY:%Y/%m/%d}/20261120T000001Z_veh901/AudioTags/tag_0001.wav",
        # A report one folder too deep, and one named after another session.
        f"{DAY:%Y/%m/%d}/20261120T000002Z_veh902/nested/20261120T000002Z_veh902_logged_Upload_Report.json",
        f"{DAY:%Y/%m/%d}/20261120T000003Z_veh903/20261120T000009Z_veh909_logged_Upload_Report.json",
        f"other/{DAY:%Y/%m/%d}/20261120T000004Z_veh904/20261120T000004Z_veh904_logged_Upload_Report.json",
    ]
    for key in strays:
        client.put_object(Bucket=name, Key=key, Body=b"{}")

    def ids(manifest: generator.Manifest, day: dt.date) -> list[str]:
        return sorted(s.session_id for s in manifest.sessions.values() if s.day == day.isoformat())

    return {
        "bucket": name,
        "client": client,
        "plain": {DAY: ids(plain, DAY), NEXT_DAY: ids(plain, NEXT_DAY)},
        "raw": {DAY: ids(raw, DAY)},
        "manifest": plain,
    }


class TestListDay:
    @pytest.mark.parametrize(
        ("prefix", "which"),
        [
            pytest.param("", "plain", id="no-prefix"),
            pytest.param("raw/", "raw", id="raw-prefix"),
            pytest.param("raw", "raw", id="prefix-without-slash"),
        ],
    )
    def test_lists_exactly_the_sessions_with_a_report_under_the_prefix(
        self, layout_bucket: dict[str, Any], prefix: str, which: str
    ) -> None:
        listings = list(source_for(layout_bucket["bucket"], prefix).list_day(DAY))
        assert [x.session_id for x in listings] == layout_bucket[which][DAY]
        assert {x.day for x in listings} == {DAY.isoformat()}

    def test_lists_only_the_requested_day(self, layout_bucket: dict[str, Any]) -> None:
        source = source_for(layout_bucket["bucket"])
        plain = layout_bucket["plain"]
        assert [x.session_id for x in source.list_day(NEXT_DAY)] == plain[NEXT_DAY]

    def test_empty_day_yields_nothing(self, layout_bucket: dict[str, Any]) -> None:
        assert list(source_for(layout_bucket["bucket"]).list_day(EMPTY_DAY)) == []

    def test_listing_holds_report_key_etag_and_sizes_of_tags_and_logs(
        self, layout_bucket: dict[str, Any]
    ) -> None:
        session_id = layout_bucket["plain"][DAY][0]
        listing = listing_of(source_for(layout_bucket["bucket"]), DAY, session_id)
        folder = f"{DAY:%Y/%m/%d}/{session_id}/"
        listed = layout_bucket["client"].list_objects_v2(Bucket=layout_bucket["bucket"], Prefix=folder)
        objects = {item["Key"][len(folder) :]: item for item in listed["Contents"]}
        report = f"{session_id}_logged_Upload_Report.json"
        assert listing.prefix == folder
        assert listing.report_key == folder + report
        assert listing.report_etag == objects[report]["ETag"].strip('"')
        assert listing.report_size == objects[report]["Size"]
        assert listing.objects == {
            path: [item["Size"], item["ETag"]]
            for path, item in objects.items()
            if path.startswith(("AudioTags/", "AV_logs/DisplayLogs/"))
        }
        assert listing.objects, "the session has tags and logs"
        assert listing.earlier_day is None
        assert len(listing.tags_digest) == 32

    def test_keeps_the_other_files_only_when_they_are_downloaded(self, layout_bucket: dict[str, Any]) -> None:
        session_id = layout_bucket["plain"][DAY][0]
        source = source_for(layout_bucket["bucket"])
        audio_only = next(x for x in source.list_day(DAY) if x.session_id == session_id)
        everything = next(
            x for x in source.list_day(DAY, file_types=("audio_tag", "raw")) if x.session_id == session_id
        )
        raw = set(everything.objects) - set(audio_only.objects)
        assert raw
        assert all(not p.startswith(("AudioTags/", "AV_logs/")) for p in raw)
        assert everything.tags_digest == audio_only.tags_digest

    def test_pages_through_a_day_of_more_than_1000_keys(
        self, client: Any, bucket: str, data_plane: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        manifest = generator.generate_bucket(
            client, bucket, days=[DAY], sessions_per_day=2, tags_per_session=1, tag_bytes=128
        )
        first, second = sorted(manifest.sessions)
        # Raw files of the first session push the second one's keys onto the second page.
        frames = [f"{DAY:%Y/%m/%d}/{first}/camera/frame_{n:04d}.jpg" for n in range(1000)]
        with ThreadPoolExecutor(max_workers=32) as pool:
            list(pool.map(lambda key: client.put_object(Bucket=bucket, Key=key, Body=b"j"), frames))
        source = source_for(bucket, data_plane=data_plane)
        boto3_lists = record_calls(source, "ListObjectsV2")
        obstore_pages = record_obstore_list_pages(monkeypatch)

        listings = list(source.list_day(DAY))

        assert [x.session_id for x in listings] == [first, second]
        day_prefix = f"{DAY:%Y/%m/%d}/"
        if data_plane == "obstore":
            assert (boto3_lists, obstore_pages) == ([], [day_prefix, day_prefix])
        else:
            assert ([call["query_string"]["prefix"] for call in boto3_lists], obstore_pages) == (
                [day_prefix, day_prefix],
                [],
            )
        for listing in listings:
            tags = {path for path in listing.objects if path.startswith("AudioTags/")}
            assert tags == set(manifest.sessions[listing.session_id].events)
            assert not any(path.startswith("camera/") for path in listing.objects)

    def test_both_data_planes_list_the_same(self, layout_bucket: dict[str, Any]) -> None:
        by_plane = {
            plane: list(
                source_for(layout_bucket["bucket"], data_plane=plane).list_day(DAY, file_types=FILE_TYPES)
            )
            for plane in DATA_PLANES
        }
        assert by_plane["obstore"] == by_plane["boto3"]
        assert by_plane["obstore"]

    @pytest.mark.parametrize(
        "name",
        [
            pytest.param("bell\x07.wav", id="control-character"),
            pytest.param("\ufffe.wav", id="xml-noncharacter"),
            pytest.param("\ufffd.wav", id="replacement-character"),
        ],
    )
    def test_a_key_xml_cannot_carry_is_listed_exactly(
        self, client: Any, bucket: str, data_plane: str, name: str
    ) -> None:
        # SeaweedFS sends such characters as U+FFFD when the listing does not ask for URL-encoded keys.
        source = source_for(bucket, data_plane=data_plane)
        assert_listed_and_read_exactly(source, client, f"2026/11/20/s/AudioTags/{name}")


class TestListSession:
    def test_lists_one_session_folder(self, layout_bucket: dict[str, Any]) -> None:
        session_id = layout_bucket["plain"][DAY][1]
        source = source_for(layout_bucket["bucket"])
        listing = source.list_session(DAY, session_id)
        assert listing == listing_of(source, DAY, session_id)

    def test_a_folder_without_a_report_gives_none(self, layout_bucket: dict[str, Any]) -> None:
        source = source_for(layout_bucket["bucket"])
        assert source.list_session(DAY, "20261120T000001Z_veh901") is None
        assert source.list_session(DAY, "nobody") is None

    def test_a_session_whose_id_is_the_start_of_another_gets_only_its_own_files(
        self, client: Any, bucket: str
    ) -> None:
        for session_id in ("s1", "s10"):
            folder = f"{DAY:%Y/%m/%d}/{session_id}/"
            client.put_object(
                Bucket=bucket, Key=f"{folder}{session_id}_logged_Upload_Report.json", Body=b"{}"
            )
            client.put_object(Bucket=bucket, Key=f"{folder}AudioTags/{session_id}.wav", Body=b"w")
        listing = source_for(bucket).list_session(DAY, "s1")
        assert listing is not None
        assert set(listing.objects) == {"AudioTags/s1.wav"}


@pytest.fixture
def payload_bucket(client: Any, bucket: str) -> str:
    client.put_object(Bucket=bucket, Key=PAYLOAD_KEY, Body=PAYLOAD)
    return bucket


class TestDownload:
    def test_downloads_and_verifies(self, payload_bucket: str, data_plane: str, tmp_path: Path) -> None:
        local = tmp_path / "s" / "AudioTags" / "tag_0001.wav"
        source = source_for(payload_bucket, data_plane=data_plane)
        assert source.download(PAYLOAD_KEY, local, size=len(PAYLOAD), md5=PAYLOAD_MD5, etag=None) is True
        assert local.read_bytes() == PAYLOAD
        assert parts_under(tmp_path) == []

    @pytest.mark.parametrize(
        "md5", [pytest.param(PAYLOAD_MD5, id="with-md5"), pytest.param(None, id="size-only")]
    )
    def test_skips_a_verified_local_file_without_a_get(
        self, client: Any, payload_bucket: str, data_plane: str, tmp_path: Path, md5: str | None
    ) -> None:
        local = tmp_path / "tag.wav"
        local.write_bytes(PAYLOAD)
        source = source_for(payload_bucket, data_plane=data_plane)
        gets = record_calls(source, "GetObject")
        # With the object gone, any GET would fail: returning False proves none was sent.
        client.delete_object(Bucket=payload_bucket, Key=PAYLOAD_KEY)
        assert source.download(PAYLOAD_KEY, local, size=len(PAYLOAD), md5=md5, etag=None) is False
        assert gets == []
        assert local.read_bytes() == PAYLOAD

    @pytest.mark.parametrize(
        "wrong",
        [
            pytest.param(PAYLOAD[::-1], id="same-size-other-bytes"),
            pytest.param(PAYLOAD[:100], id="truncated"),
            pytest.param(PAYLOAD + b"tail", id="too-long"),
        ],
    )
    def test_replaces_a_wrong_local_file(
        self, payload_bucket: str, data_plane: str, tmp_path: Path, wrong: bytes
    ) -> None:
        local = tmp_path / "tag.wav"
        local.write_bytes(wrong)
        source = source_for(payload_bucket, data_plane=data_plane)
        assert source.download(PAYLOAD_KEY, local, size=len(PAYLOAD), md5=PAYLOAD_MD5, etag=None) is True
        assert local.read_bytes() == PAYLOAD
        assert parts_under(tmp_path) == []

    @pytest.mark.parametrize(
        ("size", "md5", "message"),
        [
            pytest.param(len(PAYLOAD) + 1, PAYLOAD_MD5, "size mismatch", id="size"),
            pytest.param(len(PAYLOAD), "0" * 32, "md5 mismatch", id="md5"),
        ],
    )
    def test_mismatch_raises_and_leaves_nothing_at_the_final_path(
        self, payload_bucket: str, data_plane: str, tmp_path: Path, size: int, md5: str, message: str
    ) -> None:
        local = tmp_path / "tag.wav"
        source = source_for(payload_bucket, data_plane=data_plane)
        with pytest.raises(VerificationError, match=message):
            source.download(PAYLOAD_KEY, local, size=size, md5=md5, etag=None)
        assert not local.exists()
        assert parts_under(tmp_path) == []

    def test_missing_key_raises_object_missing(self, bucket: str, data_plane: str, tmp_path: Path) -> None:
        local = tmp_path / "tag.wav"
        source = source_for(bucket, data_plane=data_plane)
        with pytest.raises(ObjectMissingError, match=re.escape(GONE_KEY)):
            source.download(GONE_KEY, local, size=1, md5=None, etag=None)
        assert not local.exists()
        assert parts_under(tmp_path) == []

    def test_an_object_replaced_since_its_listing_is_refused(
        self, client: Any, payload_bucket: str, data_plane: str, tmp_path: Path
    ) -> None:
        etag = client.head_object(Bucket=payload_bucket, Key=PAYLOAD_KEY)["ETag"]
        client.put_object(Bucket=payload_bucket, Key=PAYLOAD_KEY, Body=PAYLOAD[::-1])
        local = tmp_path / "tag.wav"
        with pytest.raises(ObjectChangedError, match="changed since it was listed"):
            source_for(payload_bucket, data_plane=data_plane).download(
                PAYLOAD_KEY, local, size=len(PAYLOAD), md5=None, etag=etag
            )
        assert not local.exists()
        assert parts_under(tmp_path) == []

    def test_a_large_object_comes_in_parallel_ranges_in_order(
        self, client: Any, bucket: str, data_plane: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(data_plane_module, "RANGED_MIN", 256 << 10)
        monkeypatch.setattr(data_plane_module, "PART", 64 << 10)
        body = hashlib.sha256(b"seed").digest() * (1 << 15)  # 1 MiB that no two parts share
        client.put_object(Bucket=bucket, Key="big.bin", Body=body)
        etag = client.head_object(Bucket=bucket, Key="big.bin")["ETag"]
        source = source_for(bucket, data_plane=data_plane)
        chunks = list(source.iter_object("big.bin", size=len(body), if_match=etag))
        assert len(chunks) == 16
        assert b"".join(chunks) == body
        local = tmp_path / "big.bin"
        md5 = hashlib.md5(body).hexdigest()
        assert source.download("big.bin", local, size=len(body), md5=md5, etag=etag)
        assert local.read_bytes() == body


@pytest.fixture(scope="module")
def moto() -> Any:
    with MotoS3() as server:
        yield server


class TestKeysSeaweedfsCannotHold:
    @pytest.mark.parametrize(
        "key",
        [
            pytest.param("2026/11/20/s/AudioTags/bell\x07\x1b[31m.wav", id="control-characters"),
            pytest.param("2026/11/20/s/AudioTags//double-slash.wav", id="empty-segment"),
            pytest.param("2026/11/20/s/AudioTags/./dot.wav", id="dot-segment"),
        ],
    )
    def test_any_key_s3_holds_is_listed_and_read_exactly(
        self, moto: Any, data_plane: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str
    ) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_S3", moto.airflow_conn_json())
        source = source_for(new_bucket(moto), data_plane=data_plane)
        boto3_lists = record_calls(source, "ListObjectsV2")
        assert_listed_and_read_exactly(source, moto.client(), key)
        assert boto3_lists, "obstore cannot hold the key: the day is listed through boto3"
