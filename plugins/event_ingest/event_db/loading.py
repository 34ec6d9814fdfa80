"""Loading a batch: one transaction of multi-row statements, each session atomic with it.

Sessions are inserted once and updated only when their report or audio tags changed, events only
when absent, the per-day counts (``ingest_days``) added to in the same transaction, rejects and
deferrals recorded, and what a processed session no longer raises resolved or cleared. Part of
:class:`~event_ingest.event_db.base.EventDb`, whose statements' building blocks it uses.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from event_ingest.errors import is_database_fault, reason_of
from event_ingest.event_db import schema
from event_ingest.event_db.rows import ROWS_PER_STATEMENT, utc_now
from event_ingest.event_db.schema import DAYS, DEFERRALS, EVENTS, REJECTS, SESSIONS
from event_ingest.model import Batch, Reject, Session
from event_ingest.safe_text import excerpt

log = logging.getLogger(__name__)


@dataclass
class LoadResult:
    """What loading a batch changed.

    :param sessions: sessions inserted, updated or given new events.
    :param events: events inserted.
    :param unchanged: sessions written again with nothing new.
    :param refused: sessions the database refused (rejected with its reason).
    """

    sessions: int = 0
    events: int = 0
    unchanged: int = 0
    refused: int = 0


class BatchLoading:
    """What :meth:`load_batch` does, for :class:`~event_ingest.event_db.base.EventDb`."""

    def load_batch(self, batch: Batch, dag_run_id: str | None) -> LoadResult:
        """Write a batch in one transaction: its sessions with their new events, rejects, deferrals.

        A session and its events are written in the batch's transaction, so each is atomic. If the
        database refuses the batch for its data (not for a fault of the connection), the sessions
        are written one transaction each, so that the one it refuses is rejected with the
        database's reason and the others load.
        """
        try:
            return self._with_retries(
                "the batch", lambda: self._write_batch(batch, batch.sessions, dag_run_id)
            )
        except Exception as exc:
            if is_database_fault(exc):
                raise
            log.warning(
                "The database refused batch %s (%s); writing its sessions one by one",
                batch.index,
                excerpt(str(exc)),
            )
        result = LoadResult()
        refused: list[Reject] = []
        for session in batch.sessions:
            try:
                part = self._with_retries(
                    f"session {session.session_id}", lambda s=session: self._write_sessions([s])
                )
            except Exception as exc:
                if is_database_fault(exc):
                    raise
                reason = reason_of(exc, "database")
                refused.append(Reject(session.report_key, session.session_id, reason, session.session_date))
                continue
            result.sessions += part.sessions
            result.events += part.events
            result.unchanged += part.unchanged
        result.refused = len(refused)
        rest = Batch(index=batch.index, rejects=batch.rejects + refused, deferrals=batch.deferrals)
        rest.processed = [sid for sid in batch.processed if sid not in {r.session_id for r in refused}]
        self._with_retries("rejects", lambda: self._write_batch(rest, [], dag_run_id, reports=batch.sessions))
        return result

    def _write_sessions(self, sessions: Sequence[Session]) -> LoadResult:
        with self.transaction() as cursor:
            return self._load_sessions(cursor, sessions)

    def _write_batch(
        self,
        batch: Batch,
        sessions: Sequence[Session],
        dag_run_id: str | None,
        *,
        reports: Sequence[Session] | None = None,
    ) -> LoadResult:
        with self.transaction() as cursor:
            result = self._load_sessions(cursor, sessions)
            self._record(cursor, batch, reports if reports is not None else sessions, dag_run_id)
        return result

    def _load_sessions(self, cursor: Any, sessions: Sequence[Session]) -> LoadResult:
        """Sessions, events, event counts and per-day counts, in the caller's transaction."""
        result = LoadResult()
        if not sessions:
            return result
        now = utc_now()
        sessions = sorted(sessions, key=lambda s: s.session_id)  # one lock order for every run
        existing = {
            row[0]: row[1:]
            for row in self._query_in(
                cursor,
                "SELECT session_id, report_etag, tags_digest, file_types FROM sessions"
                " WHERE session_id IN ({marks})",
                [s.session_id for s in sessions],
                suffix=self.lock_rows,
            )
        }
        fresh = [s for s in sessions if s.session_id not in existing]
        changed = []
        for session in sessions:
            if session.session_id not in existing:
                continue
            etag, digest, types = existing[session.session_id]
            loaded_types = set(types.split(","))
            if (etag, digest) != (session.report_etag, session.tags_digest) or not loaded_types >= set(
                session.file_types
            ):
                # A run that downloads fewer kinds of file never forgets the ones an earlier run got.
                session.file_types = sorted(loaded_types | set(session.file_types))
                changed.append(session)
        loaded_events = {
            row[0]
            for row in self._query_in(
                cursor,
                "SELECT event_id FROM events WHERE session_id IN ({marks})",
                [s.session_id for s in sessions],
            )
        }
        with_new = [s for s in sessions if any(e.event_id not in loaded_events for e in s.events)]
        new_sessions: dict[str, int] = {}
        new_events: dict[str, int] = {}
        for day, group in _by_day(fresh).items():
            rows = [schema.session_row(s, now) for s in group]
            new_sessions[day] = self._insert(cursor, SESSIONS, rows, self._insert_ignoring(SESSIONS))
        if changed:
            rows = [schema.session_row(s, now) for s in changed]
            self._insert(cursor, SESSIONS, rows, self._upsert(SESSIONS, schema.SESSION_UPDATED))
        for day, group in _by_day(with_new).items():
            rows = sorted(
                schema.event_row(e, now) for s in group for e in s.events if e.event_id not in loaded_events
            )
            new_events[day] = self._insert(cursor, EVENTS, rows, self._insert_ignoring(EVENTS))
        counted = [s.session_id for s in [*fresh, *with_new]]
        for start in range(0, len(counted), ROWS_PER_STATEMENT):
            chunk = counted[start : start + ROWS_PER_STATEMENT]
            cursor.execute(
                "UPDATE sessions SET event_count ="
                " (SELECT COUNT(*) FROM events WHERE events.session_id = sessions.session_id)"
                f" WHERE session_id IN ({', '.join([self.mark] * len(chunk))})",
                chunk,
            )
        days = sorted(set(new_sessions) | set(new_events))
        day_rows = [(day, new_sessions.get(day, 0), new_events.get(day, 0)) for day in days]
        if any(s or e for _, s, e in day_rows):
            self._insert(cursor, DAYS, day_rows, self._add_to(DAYS, ("sessions", "events")))
        touched = {s.session_id for s in [*fresh, *changed, *with_new]}
        result.sessions = len(touched)
        result.events = sum(new_events.values())
        result.unchanged = len(sessions) - len(touched)
        return result

    def _record(self, cursor: Any, batch: Batch, sessions: Sequence[Session], dag_run_id: str | None) -> None:
        """The batch's rejects and deferrals; resolve and clear what its processed sessions do not raise."""
        now = utc_now()
        rejects = {r.reject_id: schema.reject_row(r, now, dag_run_id) for r in batch.rejects}
        if rejects:
            self._insert(
                cursor, REJECTS, sorted(rejects.values()), self._upsert(REJECTS, schema.REJECT_UPDATED)
            )
        deferrals = {
            schema.deferral_id(d.report_key): schema.deferral_row(d, now, dag_run_id) for d in batch.deferrals
        }
        if deferrals:
            self._insert(
                cursor,
                DEFERRALS,
                sorted(deferrals.values()),
                self._upsert(DEFERRALS, schema.DEFERRAL_UPDATED),
            )
        processed = set(batch.processed)
        done = [
            (schema.session_key(s.session_id), s.session_date) for s in sessions if s.session_id in processed
        ]
        raised = set(rejects)
        for start in range(0, len(done), ROWS_PER_STATEMENT):
            chunk = done[start : start + ROWS_PER_STATEMENT]
            cursor.execute(
                "SELECT reject_id FROM ingest_rejects WHERE resolved_at IS NULL AND ("
                + " OR ".join([f"(session_key = {self.mark} AND session_date = {self.mark})"] * len(chunk))
                + ")",
                [value for pair in chunk for value in pair],
            )
            resolved = [rid for (rid,) in cursor.fetchall() if rid not in raised]
            for part in range(0, len(resolved), ROWS_PER_STATEMENT):
                ids = resolved[part : part + ROWS_PER_STATEMENT]
                cursor.execute(
                    f"UPDATE ingest_rejects SET resolved_at = {self.mark}"
                    f" WHERE reject_id IN ({', '.join([self.mark] * len(ids))})",
                    [now, *ids],
                )
        finished = [schema.deferral_id(s.report_key) for s in sessions if s.session_id in processed]
        finished += [schema.deferral_id(r.object_key) for r in batch.rejects]
        finished = sorted(set(finished) - set(deferrals))
        for start in range(0, len(finished), ROWS_PER_STATEMENT):
            chunk = finished[start : start + ROWS_PER_STATEMENT]
            cursor.execute(
                f"DELETE FROM ingest_deferrals WHERE deferral_id IN ({', '.join([self.mark] * len(chunk))})",
                chunk,
            )


def _by_day(sessions: Sequence[Session]) -> dict[str, list[Session]]:
    """Sessions grouped by their day, so that each statement's row count belongs to one day."""
    groups: dict[str, list[Session]] = {}
    for session in sessions:
        groups.setdefault(session.session_date, []).append(session)
    return groups
