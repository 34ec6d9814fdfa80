"""UTC timestamps at millisecond precision, the one form every store shares."""

from __future__ import annotations

import datetime as dt


def parse_utc(value: str) -> dt.datetime:
    """Parse an ISO-8601 timestamp into an aware UTC datetime cut to milliseconds.

    A timestamp without an offset is taken as UTC, the contract's time zone.
    """
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    parsed = parsed.astimezone(dt.UTC)
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


def to_db(value: dt.datetime) -> str:
    """Format for the database: ``YYYY-MM-DD HH:MM:SS.fff`` in UTC, no offset."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def normalize(value: str) -> str:
    """Return an ISO-8601 timestamp in database form."""
    return to_db(parse_utc(value))
