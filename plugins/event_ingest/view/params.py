"""The view's query parameters, checked before anything is read: a bad one is a 400 with a message.

Every parameter arrives as text and is parsed here, so that a missing, malformed or out-of-range
value gets one kind of answer (:class:`BadParameter`, turned into HTTP 400 by the app) whatever is
wrong with it.
"""

from __future__ import annotations

import datetime as dt
import re

from event_ingest import settings

#: The only form a day takes (``date.fromisoformat`` would also take ``20261101`` or ``2026-W45-1``).
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_COUNT = re.compile(r"[0-9]{1,9}")


class BadParameter(ValueError):
    """A query parameter that is missing, malformed or out of bounds; the message says which and why."""


def day(name: str, value: str | None) -> dt.date:
    """The day ``value`` of parameter ``name``, written ``YYYY-MM-DD``.

    :raises BadParameter: the parameter is missing or not a real calendar day.
    """
    if value is None or value == "":
        raise BadParameter(f"{name} is required (a day, YYYY-MM-DD)")
    if not _DAY.fullmatch(value):
        raise BadParameter(f"{name} {value[:40]!r} is not a day written YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadParameter(f"{name} {value!r} is not a valid day") from None


def day_range(
    start: str | None, end: str | None, *, max_days: int = settings.MAX_RANGE_DAYS
) -> tuple[dt.date, dt.date]:
    """The days ``start``..``end`` (both inclusive), at most ``max_days`` of them.

    :raises BadParameter: a bad day, ``end`` before ``start``, or a range longer than ``max_days``.
    """
    return checked_range(day("start", start), day("end", end), max_days=max_days)


def checked_range(
    first: dt.date, last: dt.date, *, max_days: int = settings.MAX_RANGE_DAYS
) -> tuple[dt.date, dt.date]:
    """``first``, ``last`` if they make a range of at most ``max_days`` days.

    :raises BadParameter: ``last`` before ``first``, or a range longer than ``max_days``.
    """
    if last < first:
        raise BadParameter(f"end {last} is before start {first}")
    count = (last - first).days + 1
    if count > max_days:
        raise BadParameter(
            f"the range {first}..{last} covers {count} days; the maximum is {max_days}"
            " (EVENT_INGEST_MAX_RANGE_DAYS)"
        )
    return first, last


def limit(value: str | None, *, default: int, maximum: int) -> int:
    """How many rows to return: ``default`` when not given, else an integer from 1 to ``maximum``.

    :raises BadParameter: not an integer, or out of bounds.
    """
    if value is None or value == "":
        return default
    if not _COUNT.fullmatch(value):
        raise BadParameter(f"limit {value[:40]!r} is not a whole number from 1 to {maximum}")
    number = int(value)
    if not 1 <= number <= maximum:
        raise BadParameter(f"limit must be from 1 to {maximum}, got {number}")
    return number
