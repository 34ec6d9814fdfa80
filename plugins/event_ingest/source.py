"""The source bucket, thin: connect, list a day or a session folder, read an object, download it.

Built on Airflow's ``S3Hook`` (connection, credentials, the bucket check) and the data plane
(:mod:`event_ingest.data_plane`) for the GETs and the listings. Listings keep every key exactly as S3
holds it: obstore lists a folder unless a key in it is one obstore's paths cannot hold (a folder
marker ending in ``/``, an empty or dot segment, a control character); then the hook lists it.
Nothing here parses a report or decides about a session: that is :mod:`event_ingest.assembler`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

from event_ingest import files, layout, settings
from event_ingest.data_plane import LIST_PAGE, OBSTORE, Chunk, ObjectReader, ObstoreReader, reader_for
from event_ingest.errors import S3AccessError, UnaddressableKeyError
from event_ingest.model import AUDIO_TAG, RAW, SessionListing, tags_digest
from event_ingest.safe_text import printable

log = logging.getLogger(__name__)

_MISSING_BUCKET = frozenset({"404", "NoSuchBucket"})
_REFUSED = frozenset({"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"})


class S3Source:
    """A bucket of drive sessions laid out as docs/contract.md §1 says.

    :param aws_conn_id: Airflow connection of type ``aws``; ``endpoint_url`` in its extra points it
        at an S3-compatible store.
    :param bucket: the source bucket.
    :param prefix: key prefix before the ``YYYY/MM/DD/`` partitions; may be empty.
    :param concurrency: concurrent S3 requests (sizes the HTTP connection pools).
    :param data_plane: what reads object bodies: ``obstore`` or ``boto3``
        (default: setting ``EVENT_INGEST_DATA_PLANE``).
    """

    def __init__(
        self,
        *,
        aws_conn_id: str = settings.S3_CONN_ID,
        bucket: str,
        prefix: str = "",
        concurrency: int = settings.S3_CONCURRENCY,
        data_plane: str | None = None,
    ) -> None:
        self.aws_conn_id = aws_conn_id
        self.bucket = bucket
        self.prefix = layout.normalize_prefix(prefix)
        self.concurrency = concurrency
        self.data_plane = data_plane or settings.DATA_PLANE

    @cached_property
    def hook(self) -> Any:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook
        from botocore.config import Config

        config = Config(max_pool_connections=self.concurrency + 2, retries={"mode": "standard"})
        return S3Hook(aws_conn_id=self.aws_conn_id, config=config)

    @cached_property
    def reader(self) -> ObjectReader:
        return reader_for(self.data_plane, self.hook, self.bucket, concurrency=self.concurrency)

    def connect(self) -> None:
        """Check that the bucket exists and the credentials may read it.

        :raises S3AccessError: the bucket is missing or the credentials are refused.
        """
        from botocore.exceptions import ClientError

        try:
            self.hook.get_conn().head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING_BUCKET:
                raise S3AccessError(f"bucket {self.bucket!r} does not exist") from None
            if code in _REFUSED:
                raise S3AccessError(
                    f"access to bucket {self.bucket!r} is denied: check the credentials of "
                    f"connection {self.aws_conn_id!r}"
                ) from None
            raise
        log.info("Bucket %s is reachable through connection %s", self.bucket, self.aws_conn_id)

    def list_day(self, day: dt.date, *, file_types: Iterable[str] = (AUDIO_TAG,)) -> Iterator[SessionListing]:
        """Yield the sessions of ``day`` whose report exists, in session id order.

        Lists the day's prefix page by page (never the whole bucket); keys outside the layout and
        folders without a report (still uploading) are passed over.
        """
        yield from self._listings(layout.day_prefix(self.prefix, day), day, frozenset(file_types))

    def list_session(
        self, day: dt.date, session_id: str, *, file_types: Iterable[str] = (AUDIO_TAG,)
    ) -> SessionListing | None:
        """The listing of one session folder, or ``None`` when it holds no report (yet, or any more)."""
        prefix = layout.session_prefix(self.prefix, day, session_id)
        return next(iter(self._listings(prefix, day, frozenset(file_types))), None)

    def _listings(self, prefix: str, day: dt.date, file_types: frozenset[str]) -> list[SessionListing]:
        reader = self.reader if self.data_plane == OBSTORE else None
        if isinstance(reader, ObstoreReader):
            try:
                return self._sessions_in(reader.list_objects(prefix), day, file_types)
            except UnaddressableKeyError as exc:
                log.info("Listing %s through boto3: %s", printable(prefix), exc)
        return self._sessions_in(self._hook_listing(prefix), day, file_types)

    def _hook_listing(self, prefix: str) -> Iterator[tuple[str, int, str]]:
        for item in self.hook.iter_file_metadata(prefix=prefix, bucket_name=self.bucket, page_size=LIST_PAGE):
            yield item["Key"], int(item["Size"]), str(item.get("ETag") or "")

    def _sessions_in(
        self, objects: Iterable[tuple[str, int, str]], day: dt.date, file_types: frozenset[str]
    ) -> list[SessionListing]:
        """The sessions of ``day`` among ``objects`` (key, size, ETag), in session id order."""
        keep_all = RAW in file_types
        folders: dict[str, dict[str, list[Any]]] = {}
        tags: dict[str, dict[str, str]] = {}
        reports: dict[str, tuple[str, str, int]] = {}
        for key, size, etag in objects:
            parts = layout.split_session_key(self.prefix, key)
            if parts is None or parts[0] != day:
                continue
            _, session_id, relpath = parts
            if layout.is_report(session_id, relpath):
                reports[session_id] = (key, etag.strip('"'), size)
                continue
            kind = layout.file_type(relpath)
            if kind is None and not keep_all:
                continue
            folders.setdefault(session_id, {})[relpath] = [size, etag or None]
            if kind == AUDIO_TAG:
                tags.setdefault(session_id, {})[relpath] = etag
        return [
            SessionListing(
                session_id=session_id,
                day=day.isoformat(),
                prefix=layout.session_prefix(self.prefix, day, session_id),
                report_key=reports[session_id][0],
                report_etag=reports[session_id][1],
                report_size=reports[session_id][2],
                objects=folders.get(session_id, {}),
                tags_digest=tags_digest(tags.get(session_id, {})),
            )
            for session_id in sorted(reports)
        ]

    def head(self, key: str) -> list[Any] | None:
        """``[size, etag]`` of ``key``, or ``None`` when it is not in the bucket."""
        from botocore.exceptions import ClientError

        try:
            found = self.hook.get_conn().head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return [int(found["ContentLength"]), found.get("ETag")]

    def read(self, key: str, *, size: int | None = None, if_match: str | None = None) -> bytes:
        """The whole body of ``key``.

        :raises ObjectMissingError: the key is not in the bucket.
        """
        return b"".join(self.reader.iter_object(key, size=size, if_match=if_match))

    def iter_object(
        self, key: str, *, size: int | None = None, if_match: str | None = None
    ) -> Iterator[Chunk]:
        """The body of ``key`` in chunks, in order (large objects in parallel ranges)."""
        return self.reader.iter_object(key, size=size, if_match=if_match)

    def download(
        self, key: str, path: Path, *, size: int, md5: str | None, etag: str | None, prepared: bool = False
    ) -> bool:
        """Copy ``key`` to ``path``, verified; return False if a verified copy was there already.

        :param etag: the object's ETag when it was listed; an object replaced since then is
            refused by the server (``If-Match``).
        :param prepared: :func:`files.prepare_folder` has made and swept the folder.
        :raises ObjectMissingError: the object is not in the bucket.
        :raises VerificationError: the bytes do not match ``size`` or ``md5``, or the object changed.
        """
        return files.write_if_needed(
            path, self.iter_object(key, size=size, if_match=etag), size=size, md5=md5, prepared=prepared
        )
