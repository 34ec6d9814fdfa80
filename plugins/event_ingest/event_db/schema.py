"""The event database's tables as the code writes them: one definition of each table's columns.

The DDL files (``sql/{backend}.sql``) give the types each backend uses; the loader's statements and
rows are built from the column lists here, so a column is named once. A test holds every DDL file
to these lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from event_ingest.model import AUDIO_TAG, Deferral, Event, Reject, Session, stable_id


@dataclass(frozen=True)
class Table:
    """A table: its name, its key columns and the columns the loader writes, in order."""

    name: str
    key: tuple[str, ...]
    columns: tuple[str, ...]

    def placeholders(self, mark: str, rows: int) -> str:
        """``(?, ?, ...), (?, ?, ...)`` for ``rows`` rows, with the driver's ``mark``."""
        row = "(" + ", ".join([mark] * len(self.columns)) + ")"
        return ", ".join([row] * rows)


SESSIONS = Table(
    "sessions",
    key=("session_id",),
    columns=(
        "session_id",
        "vehicle_id",
        "driver_id",
        "started_at",
        "ended_at",
        "session_date",
        "software_version",
        "report_key",
        "report_etag",
        "tags_digest",
        "file_types",
        "event_count",
        "ingested_at",
        "updated_at",
    ),
)
#: What a re-upload of a session (a new report, or new audio tags) may change.
SESSION_UPDATED = (
    "vehicle_id",
    "driver_id",
    "started_at",
    "ended_at",
    "software_version",
    "report_key",
    "report_etag",
    "tags_digest",
    "file_types",
    "updated_at",
)
EVENTS = Table(
    "events",
    key=("event_id",),
    columns=(
        "event_id",
        "session_id",
        "event_type",
        "s3_key",
        "frame_id",
        "event_time",
        "time_source",
        "duration_s",
        "size_bytes",
        "md5",
        "etag",
        "local_path",
        "ingested_at",
    ),
)
REJECTS = Table(
    "ingest_rejects",
    key=("reject_id",),
    columns=(
        "reject_id",
        "object_key",
        "session_key",
        "session_id",
        "session_date",
        "reason",
        "first_seen_at",
        "last_seen_at",
        "dag_run_id",
        "resolved_at",
    ),
)
#: What seeing a reject again refreshes (it keeps ``first_seen_at``).
REJECT_UPDATED = ("reason", "session_date", "last_seen_at", "dag_run_id", "resolved_at")
DEFERRALS = Table(
    "ingest_deferrals",
    key=("deferral_id",),
    columns=(
        "deferral_id",
        "session_key",
        "session_id",
        "session_date",
        "report_key",
        "reason",
        "first_seen_at",
        "last_seen_at",
        "dag_run_id",
    ),
)
DEFERRAL_UPDATED = ("reason", "last_seen_at", "dag_run_id")
RUNS = Table(
    "ingest_runs",
    key=("dag_run_id",),
    columns=(
        "dag_run_id",
        "dag_id",
        "run_type",
        "first_day",
        "last_day",
        "started_at",
        "finished_at",
        "state",
        "discovered",
        "loaded_sessions",
        "loaded_events",
        "skipped",
        "deferred",
        "rejected",
        "failed_batches",
    ),
)
#: What a run's start (or the start of a rerun of it) resets.
RUN_STARTED = tuple(c for c in RUNS.columns if c not in ("dag_run_id",))
#: Sessions and events per day, kept by the loader in the transaction that adds them.
DAYS = Table("ingest_days", key=("day",), columns=("day", "sessions", "events"))
ALL_TABLES = (SESSIONS, EVENTS, REJECTS, DEFERRALS, RUNS, DAYS)
#: The summary counts of a run, in ``ingest_runs`` and in the asset event's extra.
RUN_COUNTS = ("discovered", "loaded_sessions", "loaded_events", "skipped", "deferred", "rejected")


def session_key(session_id: str) -> str:
    """The id rejects and deferrals are matched by: derived from the raw id, however it is stored."""
    return stable_id(session_id)


def session_row(session: Session, now: str) -> tuple[Any, ...]:
    return (
        session.session_id,
        session.vehicle_id,
        session.driver_id,
        session.started_at,
        session.ended_at,
        session.session_date,
        session.software_version,
        session.report_key,
        session.report_etag,
        session.tags_digest,
        ",".join(session.file_types),
        0,
        now,
        now,
    )


def event_row(event: Event, now: str) -> tuple[Any, ...]:
    return (
        event.event_id,
        event.session_id,
        AUDIO_TAG,
        event.s3_key,
        event.frame_id,
        event.event_time,
        event.time_source,
        event.duration_s,
        event.size_bytes,
        event.md5,
        event.etag.strip('"') if event.etag else None,  # as sessions.report_etag: without S3's quotes
        event.local_path,
        now,
    )


def reject_row(reject: Reject, now: str, dag_run_id: str | None) -> tuple[Any, ...]:
    from event_ingest.safe_text import stored

    return (
        reject.reject_id,
        stored(reject.object_key),
        session_key(reject.session_id) if reject.session_id is not None else None,
        stored(reject.session_id) if reject.session_id is not None else None,
        reject.day,
        reject.reason,
        now,
        now,
        dag_run_id,
        None,
    )


def deferral_id(report_key: str) -> str:
    return stable_id("deferral", report_key)


def deferral_row(deferral: Deferral, now: str, dag_run_id: str | None) -> tuple[Any, ...]:
    return (
        deferral_id(deferral.report_key),
        session_key(deferral.session_id),
        deferral.session_id,
        deferral.day,
        deferral.report_key,
        deferral.reason,
        now,
        now,
        dag_run_id,
    )
