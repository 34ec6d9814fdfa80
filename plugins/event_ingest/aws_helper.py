"""``AwsHelper``: the old job's S3 class, under the names its users know, on the new pieces.

Each method delegates: bucket access to :class:`~event_ingest.source.S3Source`, report reading and
time resolution to :class:`~event_ingest.assembler.SessionAssembler`. New code can use those
directly; this class stays for scripts written against the old job.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from event_ingest import settings
from event_ingest.assembler import SessionAssembler
from event_ingest.model import AUDIO_TAG, Deferral, Reject, Session, SessionListing
from event_ingest.report import ParsedReport, parse_report
from event_ingest.source import S3Source

__all__ = ["AwsHelper"]


class AwsHelper:
    """Read drive sessions from an S3 bucket laid out as docs/contract.md §1 says.

    :param aws_conn_id: Airflow connection of type ``aws``.
    :param bucket: the source bucket.
    :param prefix: key prefix before the ``YYYY/MM/DD/`` partitions; may be empty.
    :param concurrency: concurrent S3 requests.
    :param data_plane: what reads object bodies: ``obstore`` or ``boto3``.
    :param file_types: what to download besides audio tags.
    """

    def __init__(
        self,
        *,
        aws_conn_id: str = settings.S3_CONN_ID,
        bucket: str,
        prefix: str = "",
        concurrency: int = settings.S3_CONCURRENCY,
        data_plane: str | None = None,
        file_types: Iterable[str] = (AUDIO_TAG,),
    ) -> None:
        self.source = S3Source(
            aws_conn_id=aws_conn_id,
            bucket=bucket,
            prefix=prefix,
            concurrency=concurrency,
            data_plane=data_plane,
        )
        self.file_types = frozenset(file_types) | {AUDIO_TAG}

    def connect(self) -> None:
        """Check that the bucket exists and the credentials may read it (:class:`S3AccessError` if not)."""
        self.source.connect()

    def get_paths_to_available_sessions(self, timeframe: Iterable[dt.date]) -> Iterator[SessionListing]:
        """Yield the listing of each session of the days of ``timeframe`` whose report exists."""
        for day in timeframe:
            yield from self.source.list_day(day, file_types=self.file_types)

    def _get_session_report(self, listing: SessionListing) -> bytes:
        """The raw bytes of a session's upload report."""
        return self.source.read(listing.report_key, size=listing.report_size)

    def _get_session_metadata(self, listing: SessionListing, raw: bytes | None = None) -> ParsedReport:
        """A session's report checked against its listing (read from S3 unless ``raw`` holds it).

        :raises ReportError: the report cannot describe a session.
        :raises NotReady: the upload is still going on.
        """
        raw = self._get_session_report(listing) if raw is None else raw
        return parse_report(raw, listing, file_types=self.file_types)

    def create_session_from_path(
        self, listing: SessionListing, data_dir: str | Path
    ) -> ParsedReport | Reject | Deferral:
        """A session with its events, times resolved, report saved; or why not (a reject, a deferral)."""
        return SessionAssembler(self.source, data_dir, file_types=self.file_types).assemble(listing)

    def download_file(
        self,
        remote_path: str,
        local_path: Path,
        *,
        size: int,
        md5: str | None = None,
        etag: str | None = None,
    ) -> bool:
        """Copy one object to ``local_path``, verified; return False if a verified copy was there.

        :raises ObjectMissingError: the object is not in the bucket.
        :raises VerificationError: the bytes do not match ``size``, ``md5`` or ``etag``.
        """
        return self.source.download(remote_path, local_path, size=size, md5=md5, etag=etag)

    def get_audio_tags_from_session_locally(
        self, sessions: Sequence[Session], data_dir: str | Path
    ) -> list[Reject]:
        """Download the audio tags of ``sessions`` into ``data_dir``; return what failed, as rejects.

        Each downloaded event gets its ``local_path``; an event whose file could not be stored
        verified is also removed from its session's events.
        """
        assembler = SessionAssembler(self.source, data_dir, file_types=self.file_types)
        rejects: list[Reject] = []
        for session in sessions:
            planned, refused = assembler.plan_downloads(session)
            rejects += refused
            rejects += [r for r in map(assembler.download, planned) if r is not None]
        failed = {r.object_key for r in rejects}
        for session in sessions:
            session.events = [e for e in session.events if e.s3_key not in failed]
        return rejects
