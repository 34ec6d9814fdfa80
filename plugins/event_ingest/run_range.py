"""Which days a run ingests (its data interval, a conf range, a look-back), and what it downloads.

docs/contract.md §4: a scheduled run ingests its interval's day plus a look-back for
late sessions; a manual run with ``start_date``/``end_date`` ingests exactly
those days (both inclusive). A bad conf raises :class:`ConfError` with a
message that says what is wrong, before anything is read or written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from event_ingest import settings
from event_ingest.errors import ConfError
from event_ingest.model import AUDIO_TAG, FILE_TYPES

#: The conf keys a run accepts: the DAG's params.
CONF_KEYS = ("start_date", "end_date", "lookback_days", "batch_size", "download_types")
#: ``download_types`` may say ``all`` for every kind of file.
ALL_TYPES = "all"


def file_types_of(value: Any) -> tuple[str, ...]:
    """The kinds of file a run downloads, from its ``download_types`` param (default: audio tags).

    :raises ConfError: not a list of ``audio_tag``, ``display_log``, ``raw`` or ``all``.
    """
    if value is None:
        return (AUDIO_TAG,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfError(f"download_types must be a list of strings, got {value!r}")
    unknown = sorted(set(value) - {*FILE_TYPES, ALL_TYPES})
    if unknown:
        raise ConfError(f"download_types {unknown} unknown; choose from {[*FILE_TYPES, ALL_TYPES]}")
    if ALL_TYPES in value:
        return FILE_TYPES
    return tuple(t for t in FILE_TYPES if t in value or t == AUDIO_TAG)


def _date(conf: Mapping[str, Any], name: str) -> dt.date | None:
    value = conf.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfError(f"{name} must be a date string YYYY-MM-DD, got {type(value).__name__} {value!r}")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfError(f"{name} {value!r} is not a valid date YYYY-MM-DD") from None


def _non_negative_int(conf: Mapping[str, Any], name: str) -> int:
    value = conf[name]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def days_to_ingest(
    *,
    conf: Mapping[str, Any],
    params: Mapping[str, Any],
    interval_day: dt.date,
    is_backfill: bool,
    max_range_days: int,
    default_lookback: int = settings.LOOKBACK_DAYS,
) -> list[dt.date]:
    """Return the days to scan, oldest first.

    :param conf: the run's conf as given (to refuse unknown keys).
    :param params: the validated params (conf merged over defaults). ``lookback_days`` null (its
        default, what the UI's trigger form sends untouched) means "the run's usual look-back":
        ``default_lookback`` for a scheduled run, none for a range or a backfill.
    :param interval_day: the first day of the run's data interval.
    :param is_backfill: backfill runs cover exactly their day unless the conf
        asks for a look-back: the days around them are backfilled too.
    """
    unknown = sorted(set(conf) - set(CONF_KEYS))
    if unknown:
        raise ConfError(f"unknown conf key(s) {unknown}; accepted keys are {list(CONF_KEYS)}")
    start, end = _date(params, "start_date"), _date(params, "end_date")
    explicit = params.get("lookback_days") is not None
    lookback = _non_negative_int(params, "lookback_days") if explicit else default_lookback
    # The params' JSON schema lets 2.0 pass as an integer; slicing batches with it would fail late.
    if "batch_size" in params and _non_negative_int(params, "batch_size") < 1:
        raise ConfError(f"batch_size must be at least 1, got {params['batch_size']!r}")
    file_types_of(params.get("download_types"))
    if end is not None and start is None:
        raise ConfError("end_date is given without start_date")
    if start is None:
        start = end = interval_day
        if is_backfill and not explicit:
            lookback = 0
    else:
        end = end or start
        if end < start:
            raise ConfError(f"end_date {end} is before start_date {start}")
        if not explicit:
            lookback = 0
    count = (end - start).days + 1 + lookback
    if count > max_range_days:
        raise ConfError(
            f"range ending {end} covers {count} days (with {lookback} look-back days);"
            f" the maximum is {max_range_days}"
        )
    try:
        first = start - dt.timedelta(days=lookback)
    except OverflowError:
        raise ConfError(f"lookback_days {lookback} reaches before year 1 from {start}") from None
    return [first + dt.timedelta(days=n) for n in range(count)]
