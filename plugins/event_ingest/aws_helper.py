"""S3 access for the pipeline, on Airflow's ``S3Hook``.

The old job's ``AwsHelper``, kept under its names where they still fit: list
the sessions of a timeframe, read a session's report, resolve event times from
display logs, download audio tags. Listing pages through one day prefix at a
time (never the whole bucket); GETs go through the data plane
(:mod:`event_ingest.data_plane`: obstore, or boto3) on a thread pool sized by
``concurrency``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.utils import parse_timestamp

from event_ingest import display_log, files, layout, settings
from event_ingest.data_plane import ObjectMissingError, ObjectReader, reader_for
from event_ingest.model import TIME_FROM_DISPLAY_LOG, Event, Reject, Session, SessionListing
from event_ingest.report import ParsedReport, parse_report

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class S3AccessError(RuntimeError):
    """The bucket cannot be used: missing, or the credentials are refused."""


__all__ = ["AwsHelper", "ObjectMissingError", "S3AccessError"]


class AwsHelper:
    """Read drive sessions from an S3 bucket laid out as contract §1 says.

    :param aws_conn_id: Airflow connection of type ``aws``; ``endpoint_url`` in
        its extra points it at an S3-compatible store.
    :param bucket: the source bucket.
    :param prefix: key prefix before the ``YYYY/MM/DD/`` partitions; may be empty.
    :param concurrency: concurrent S3 requests.
    :param data_plane: what reads object bodies: ``obstore`` or ``boto3``
        (default: setting ``EVENT_INGEST_DATA_PLANE``).
    """

    def __init__(
        self,
        *,
        aws_conn_id: str,
        bucket: str,
        prefix: str = "",
        concurrency: int = 16,
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

        config = Config(max_pool_connections=self.concurrency + 2, retries={"mode": "standard"})
        return S3Hook(aws_conn_id=self.aws_conn_id, config=config)

    @cached_property
    def client(self) -> Any:
        client = self.hook.get_conn()
        _parse_timestamps_fast(client)
        return client

    @cached_property
    def reader(self) -> ObjectReader:
        return reader_for(self.data_plane, self.hook, self.bucket, concurrency=self.concurrency)

    def _map(self, func: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if len(items) <= 1:
            return [func(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            return list(pool.map(func, items))

    def connect(self) -> None:
        """Check that the bucket exists and the credentials may read it."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchBucket"):
                raise S3AccessError(f"bucket {self.bucket!r} does not exist") from None
            if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise S3AccessError(
                    f"access to bucket {self.bucket!r} is denied: check the credentials of "
                    f"connection {self.aws_conn_id!r}"
                ) from None
            raise
        log.info("Bucket %s is reachable through connection %s", self.bucket, self.aws_conn_id)

    def get_paths_to_available_sessions(self, timeframe: Iterable[dt.date]) -> Iterator[SessionListing]:
        """Yield the sessions of each day of ``timeframe`` whose report exists.

        Lists each day's prefix page by page; keys outside the layout, folders
        without a report (still uploading) and raw files are passed over.
        """
        for day in timeframe:
            yield from self._sessions_of_day(day)

    def _sessions_of_day(self, day: dt.date) -> Iterator[SessionListing]:
        self.client  # noqa: B018 - the listing below uses this client, with its faster timestamps
        folders: dict[str, dict[str, int]] = {}
        etags: dict[str, dict[str, str]] = {}
        reports: dict[str, tuple[str, str]] = {}
        for item in self.hook.iter_file_metadata(
            prefix=layout.day_prefix(self.prefix, day), bucket_name=self.bucket, page_size=1000
        ):
            parts = layout.split_session_key(self.prefix, item["Key"])
            if parts is None or parts[0] != day:
                continue
            _, session_id, relpath = parts
            if layout.is_report(session_id, relpath):
                reports[session_id] = (item["Key"], str(item.get("ETag", "")).strip('"'))
            elif relpath.startswith(layout.DISPLAY_LOGS_DIR):
                folders.setdefault(session_id, {})[relpath] = int(item["Size"])
            elif relpath.startswith(layout.AUDIO_TAGS_DIR) or relpath.lower().endswith(".wav"):
                folders.setdefault(session_id, {})[relpath] = int(item["Size"])
                if item.get("ETag"):
                    etags.setdefault(session_id, {})[relpath] = item["ETag"]
        for session_id in sorted(reports):
            key, etag = reports[session_id]
            yield SessionListing(
                session_id=session_id,
                day=day.isoformat(),
                prefix=layout.session_prefix(self.prefix, day, session_id),
                report_key=key,
                report_etag=etag,
                objects=folders.get(session_id, {}),
                etags=etags.get(session_id, {}),
            )

    def _iter_object(self, key: str, etag: str | None = None) -> Iterator[bytes]:
        return self.reader.iter_object(key, if_match=etag)

    def _get_session_report(self, listing: SessionListing) -> bytes:
        """Return the raw bytes of a session's upload report."""
        return b"".join(self._iter_object(listing.report_key))

    def _get_session_metadata(self, listing: SessionListing, raw: bytes | None = None) -> ParsedReport:
        """Check a session's report, read from S3 unless ``raw`` holds it already."""
        return parse_report(
            self._get_session_report(listing) if raw is None else raw,
            folder_session_id=listing.session_id,
            day=dt.date.fromisoformat(listing.day),
            prefix=listing.prefix,
            report_key=listing.report_key,
            report_etag=listing.report_etag,
            objects=listing.objects,
            etags=listing.etags,
        )

    @staticmethod
    def _get_session_annotations_paths(metadata: ParsedReport) -> list[str]:
        """Return the S3 keys of a session's audio tags."""
        return [event.s3_key for event in metadata.session.events]

    def _get_event_timestamp_from_frame_id(self, listing: SessionListing, metadata: ParsedReport) -> None:
        """Give events without a report timestamp the time their frame was logged.

        Reads the session's display logs in key order and stops as soon as
        every wanted frame is found. Frames that no log holds stay
        ``unresolved``; a log that is not UTF-8 is recorded as a reject.
        """
        wanted = {
            e.frame_id for e in metadata.session.events if e.event_time is None and e.frame_id is not None
        }
        if not wanted:
            return
        found: dict[int, str] = {}
        logs = sorted(
            p for p in listing.objects if p.startswith(layout.DISPLAY_LOGS_DIR) and p.endswith(".log")
        )
        for relpath in logs:
            if wanted <= found.keys():
                break
            key = listing.prefix + relpath
            try:
                display_log.find_frames(display_log.iter_lines(self._iter_object(key)), wanted, found)
            except (display_log.NotUtf8Error, ObjectMissingError) as exc:
                metadata.rejects.append(Reject(key, listing.session_id, str(exc)))
        for event in metadata.session.events:
            if event.event_time is None and event.frame_id in found:
                event.event_time = found[event.frame_id]
                event.time_source = TIME_FROM_DISPLAY_LOG

    def create_session_from_path(
        self, listing: SessionListing, data_dir: str | Path | None = None
    ) -> ParsedReport:
        """Return a session with all its events (maybe none), times resolved.

        With ``data_dir``, a report that parses is also saved there.

        :raises ReportError: the report cannot describe a session.
        :raises NotReady: the upload is still going on.
        """
        raw = self._get_session_report(listing)
        metadata = self._get_session_metadata(listing, raw)
        if data_dir is not None:
            day = dt.date.fromisoformat(listing.day)
            relpath = listing.report_key[len(listing.prefix) :]
            path = layout.local_path(data_dir, day, listing.session_id, relpath)
            md5 = hashlib.md5(raw, usedforsecurity=False).hexdigest()
            files.write_if_needed(path, [raw], size=len(raw), md5=md5)
        self._get_event_timestamp_from_frame_id(listing, metadata)
        return metadata

    def map_sessions(self, func: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """Run ``func`` (which reads one session from S3) over ``items`` concurrently."""
        return self._map(func, items)

    def download_file(
        self,
        remote_path: str,
        local_path: Path,
        *,
        size: int,
        md5: str | None = None,
        etag: str | None = None,
        prepared: bool = False,
    ) -> bool:
        """Copy one object to ``local_path``, verified; return False if it was already there.

        :param etag: the object's ETag when it was listed; an object replaced
            since then is refused by the server (``If-Match``).
        :param prepared: :func:`files.prepare_folder` has made and swept the folder.
        :raises ObjectMissingError: the object is not in the bucket.
        :raises VerificationError: the bytes do not match ``size`` or ``md5``,
            or the object changed since it was listed.
        """
        return files.write_if_needed(
            local_path, self._iter_object(remote_path, etag), size=size, md5=md5, prepared=prepared
        )

    def get_audio_tags_from_session_locally(
        self, sessions: Sequence[Session], data_dir: str | Path
    ) -> list[Reject]:
        """Download the audio tags of ``sessions`` into ``data_dir``, concurrently.

        Each downloaded event gets its ``local_path``; an event whose file is
        missing or does not verify leaves its session and comes back as a
        reject. Other errors (network, server) raise, so Airflow retries.
        """
        jobs: list[tuple[Session, Event, Path]] = []
        for session in sessions:
            paths = layout.local_paths(
                data_dir,
                dt.date.fromisoformat(session.session_date),
                session.session_id,
                [event.relpath for event in session.events],
            )
            jobs.extend((session, event, path) for event, path in zip(session.events, paths, strict=True))
        # One scan per folder instead of a mkdir and a glob per file.
        folders: dict[Path, list[str]] = {}
        for _, _, path in jobs:
            folders.setdefault(path.parent, []).append(path.name)
        for folder, names in folders.items():
            files.prepare_folder(folder, names)

        def one(job: tuple[Session, Event, Path]) -> Reject | None:
            session, event, path = job
            try:
                self.download_file(
                    event.s3_key, path, size=event.size_bytes, md5=event.md5, etag=event.etag, prepared=True
                )
            except (ObjectMissingError, files.VerificationError) as exc:
                return Reject(event.s3_key, session.session_id, f"audio tag: {exc}")
            event.local_path = str(path)
            return None

        results = self._map(one, jobs)
        rejects = [r for r in results if r is not None]
        failed = {r.object_key for r in rejects}
        for session in sessions:
            session.events = [e for e in session.events if e.s3_key not in failed]
        return rejects


def _parse_timestamp(value: Any) -> Any:
    """botocore's timestamp parser, with a fast path for the ISO 8601 of S3 listings."""
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is not None:
                return parsed
    return parse_timestamp(value)


def _parse_timestamps_fast(client: Any) -> None:
    """Give ``client`` a faster parser for response timestamps (same values).

    botocore parses every ``LastModified`` of a listing with dateutil: about 50 us
    each, 0.4 s of a 1,000-session day's 8,500 keys, in the single-threaded
    discover step. ``datetime.fromisoformat`` reads S3's form in about 0.2 us;
    anything else still goes to botocore's parser. The parser factory belongs to
    the hook's own botocore session; where botocore no longer has it, nothing changes.
    """
    factory = getattr(getattr(client, "_endpoint", None), "_response_parser_factory", None)
    if factory is not None and hasattr(factory, "set_parser_defaults"):
        factory.set_parser_defaults(timestamp_parser=_parse_timestamp)
