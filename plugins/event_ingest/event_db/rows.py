"""Small pieces every part of the event database shares: statement size, times and days as stored."""

from __future__ import annotations

import datetime as dt
from typing import Any

from event_ingest.timestamps import to_db

#: Rows per multi-row statement, and ids per ``IN (...)`` list: far below every backend's limits
#: (SQLite's 32,766 parameters, PostgreSQL's 65,535).
ROWS_PER_STATEMENT = 500


def utc_now() -> str:
    return to_db(dt.datetime.now(dt.UTC))


def day_text(value: Any) -> str:
    """A day as the backends return it (a date, or text on SQLite), as ``YYYY-MM-DD``."""
    return value.isoformat() if isinstance(value, dt.date) else str(value)
