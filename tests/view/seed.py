"""The ingest view's test data: a bucket of sessions the pipeline loads, and what the view must show.

The sessions are written by the project's generator and loaded by the pipeline itself (``dag.test()``
in the test process, or a run triggered on a real Airflow), never as hand-written rows: what the
view shows is what a run leaves behind. :func:`expected_days` asks the tables themselves (``GROUP
BY session_date``), not ``ingest_days``, so a test holds the view's per-day counts to the rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from include import generator

#: The days the runs load: a busy day with bad sessions and a deferral, a quiet one, an empty one,
#: another with bad objects, a one-session day.
DAYS = [dt.date(2026, 11, d) for d in range(2, 7)]
BUSY, QUIET, EMPTY, FAULTY, SINGLE = DAYS
#: What the view is asked about: the loaded days with an empty day on either side.
FIRST, LAST = dt.date(2026, 11, 1), dt.date(2026, 11, 7)
CONF = {"start_date": DAYS[0].isoformat(), "end_date": DAYS[-1].isoformat()}

Query = Callable[[str, tuple[Any, ...]], list[dict[str, Any]]]


def seed_bucket(s3_client: Any, bucket: str) -> generator.Manifest:
    """Write the sessions of :data:`DAYS`; the manifest of both generator calls, merged."""
    common = {"tags_per_session": 3, "tag_bytes": 2048, "workers": 8}
    manifest = generator.generate_bucket(
        s3_client,
        bucket,
        days=DAYS,
        sessions_per_day={BUSY: 4, QUIET: 2, FAULTY: 3, SINGLE: 1},
        bad_kinds=("malformed_json", "md5_mismatch", "incomplete_upload"),
        **common,
    )
    more = generator.generate_bucket(
        s3_client,
        bucket,
        days=[FAULTY],
        sessions_per_day=0,
        bad_kinds=("file_absent", "path_escape_dotdot"),
        vehicle_offset=100,
        seed=1,
        **common,
    )
    manifest.sessions.update(more.sessions)
    manifest.rejects.extend(more.rejects)
    manifest.deferred.extend(more.deferred)
    return manifest


def expected_days(query: Query, first: dt.date, last: dt.date) -> list[dict[str, Any]]:
    """The days API's answer for ``first``..``last``, from the tables' own rows."""
    bounds = (first, last)
    sessions = query(
        "SELECT session_date AS day, COUNT(*) AS n FROM sessions"
        " WHERE session_date BETWEEN %s AND %s GROUP BY session_date",
        bounds,
    )
    events = query(
        "SELECT s.session_date AS day, COUNT(*) AS n FROM events e JOIN sessions s USING (session_id)"
        " WHERE s.session_date BETWEEN %s AND %s GROUP BY s.session_date",
        bounds,
    )
    rejects = query(
        "SELECT session_date AS day, COUNT(*) AS n FROM ingest_rejects"
        " WHERE resolved_at IS NULL AND session_date BETWEEN %s AND %s GROUP BY session_date",
        bounds,
    )
    deferred = query(
        "SELECT session_date AS day, COUNT(*) AS n FROM ingest_deferrals"
        " WHERE session_date BETWEEN %s AND %s GROUP BY session_date",
        bounds,
    )

    def by_day(rows: list[dict[str, Any]]) -> dict[str, int]:
        return {row["day"].isoformat(): int(row["n"]) for row in rows}

    counts = {
        "sessions": by_day(sessions),
        "events": by_day(events),
        "open_rejects": by_day(rejects),
        "deferred": by_day(deferred),
    }
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    return [
        {"day": day.isoformat(), **{name: values.get(day.isoformat(), 0) for name, values in counts.items()}}
        for day in days
    ]


def open_rejects(query: Query, day: dt.date) -> list[dict[str, Any]]:
    """The open rejects of ``day`` as the rejects API lists them (times left to the caller)."""
    return query(
        "SELECT object_key, session_id, reason FROM ingest_rejects"
        " WHERE resolved_at IS NULL AND session_date = %s ORDER BY first_seen_at, object_key",
        (day,),
    )
