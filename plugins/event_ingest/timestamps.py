"""UTC timestamps at millisecond precision, the one form every store shares."""

from __future__ import annotations

import datetime as dt

#: The years every backend's DATETIME holds (MySQL: 1000-9999).
MIN_YEAR, MAX_YEAR = 1000, 9999


def parse_utc(value: str) -> dt.datetime:
    """Parse an ISO-8601 timestamp into an aware UTC datetime cut to milliseconds.

    A timestamp without an offset is taken as UTC, the time zone of docs/contract.md.
    """
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    try:
        parsed = parsed.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError(f"timestamp {value[:64]!r} is out of range") from None
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise ValueError(f"timestamp {value[:64]!r} is outside the years {MIN_YEAR}..{MAX_YEAR}")
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


def to_db(value: dt.datetime) -> str:
    """Format for the database: ``YYYY-MM-DD HH:MM:SS.fff`` in UTC, no offset."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def normalize(value: str) -> str:
    """Return an ISO-8601 timestamp in database form."""
    return to_db(parse_utc(value))
