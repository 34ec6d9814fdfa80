"""What the ingest view reads: per-day counts, a day's open rejects, deferred sessions, the latest runs.

Every read is served by an index (``ingest_days`` by day, open rejects and deferrals by day,
runs by start): a year of days answers in milliseconds however many sessions it holds. Part of
:class:`~event_ingest.event_db.base.EventDb`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from event_ingest.event_db.rows import day_text
from event_ingest.event_db.schema import RUNS


class Overview:
    """What the ingest view reads, for :class:`~event_ingest.event_db.base.EventDb`."""

    def day_counts(self, first: dt.date, last: dt.date) -> list[dict[str, Any]]:
        """One entry a day of ``first``..``last``, ascending: sessions, events, open rejects, deferred.

        Reads ``ingest_days`` (one row a day) and the open rejects and deferrals by their day
        indexes: a year of days answers in a few milliseconds however many sessions it holds.
        """
        bounds = [first.isoformat(), last.isoformat()]
        m = self.mark
        with self.transaction(write=False) as cursor:
            cursor.execute(
                f"SELECT day, sessions, events FROM ingest_days WHERE day BETWEEN {m} AND {m}", bounds
            )
            loaded = {day_text(day): (int(s), int(e)) for day, s, e in cursor.fetchall()}
            cursor.execute(
                "SELECT session_date, COUNT(*) FROM ingest_rejects WHERE resolved_at IS NULL"
                f" AND session_date BETWEEN {m} AND {m} GROUP BY session_date",
                bounds,
            )
            rejects = {day_text(day): int(n) for day, n in cursor.fetchall()}
            cursor.execute(
                f"SELECT session_date, COUNT(*) FROM ingest_deferrals WHERE session_date BETWEEN {m} AND {m}"
                " GROUP BY session_date",
                bounds,
            )
            deferred = {day_text(day): int(n) for day, n in cursor.fetchall()}
        days = []
        for n in range((last - first).days + 1):
            day = (first + dt.timedelta(days=n)).isoformat()
            sessions, events = loaded.get(day, (0, 0))
            days.append(
                {
                    "day": day,
                    "sessions": sessions,
                    "events": events,
                    "open_rejects": rejects.get(day, 0),
                    "deferred": deferred.get(day, 0),
                }
            )
        return days

    def open_rejects(self, day: dt.date, limit: int = 1000) -> list[dict[str, Any]]:
        """The open rejects of ``day`` (by the session folder's day), oldest first."""
        columns = ("object_key", "session_id", "reason", "first_seen_at", "last_seen_at")
        with self.transaction(write=False) as cursor:
            cursor.execute(
                f"SELECT {', '.join(columns)} FROM ingest_rejects WHERE resolved_at IS NULL"
                f" AND session_date = {self.mark} ORDER BY first_seen_at, object_key LIMIT {int(limit)}",
                [day.isoformat()],
            )
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def deferred_sessions(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Sessions waiting for their upload to complete, the longest-waiting first."""
        columns = ("session_id", "session_date", "report_key", "reason", "first_seen_at", "last_seen_at")
        with self.transaction(write=False) as cursor:
            cursor.execute(
                f"SELECT {', '.join(columns)} FROM ingest_deferrals"
                f" ORDER BY first_seen_at, session_id LIMIT {int(limit)}"
            )
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def latest_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest ``ingest_runs`` rows, newest first."""
        with self.transaction(write=False) as cursor:
            cursor.execute(
                f"SELECT {', '.join(RUNS.columns)} FROM ingest_runs"
                f" ORDER BY started_at DESC, dag_run_id LIMIT {int(limit)}"
            )
            return [dict(zip(RUNS.columns, row, strict=True)) for row in cursor.fetchall()]
