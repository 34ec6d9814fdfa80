"""The view's JSON API (docs/contract.md §4): read-only, every route behind Airflow's authentication.

- ``GET api/days?start=YYYY-MM-DD&end=YYYY-MM-DD``: one record a day, ascending.
- ``GET api/rejects?day=YYYY-MM-DD[&limit=N]``: the open rejects of that day.
- ``GET api/runs[?limit=N]``: the latest ``ingest_runs`` rows, newest first.
- ``GET api/deferred[?limit=N]``: the sessions whose upload is not complete yet.

Bad parameters are answered 400 with a message, by the app's handler of :class:`BadParameter`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from event_ingest.view import params, reads
from event_ingest.view.auth import airflow_user

#: Rows a list answers with when the request does not say, and the most it may ask for.
RUNS_LIMIT = (20, 500)
REJECTS_LIMIT = (1000, 10_000)
DEFERRED_LIMIT = (1000, 10_000)

router = APIRouter(prefix="/api", tags=["ingest view"], dependencies=[Depends(airflow_user)])


@router.get("/days", summary="Sessions, events, open rejects and deferrals per day")
def days(start: str | None = None, end: str | None = None) -> list[dict[str, Any]]:
    first, last = params.day_range(start, end)
    with reads.event_db() as db:
        return reads.days(db, first, last)


@router.get("/rejects", summary="The open rejects of a day")
def rejects(day: str | None = None, limit: str | None = None) -> list[dict[str, Any]]:
    when = params.day("day", day)
    count = params.limit(limit, default=REJECTS_LIMIT[0], maximum=REJECTS_LIMIT[1])
    with reads.event_db() as db:
        return reads.open_rejects(db, when, count)


@router.get("/runs", summary="The latest ingest runs")
def runs(limit: str | None = None) -> list[dict[str, Any]]:
    count = params.limit(limit, default=RUNS_LIMIT[0], maximum=RUNS_LIMIT[1])
    with reads.event_db() as db:
        return reads.latest_runs(db, count)


@router.get("/deferred", summary="Sessions whose upload is not complete yet")
def deferred(limit: str | None = None) -> list[dict[str, Any]]:
    count = params.limit(limit, default=DEFERRED_LIMIT[0], maximum=DEFERRED_LIMIT[1])
    with reads.event_db() as db:
        return reads.deferred_sessions(db, count)
