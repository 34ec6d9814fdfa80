"""Properties of event_ingest.run_range: any conf gives a range of consecutive days, or a ConfError."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from event_ingest.errors import ConfError
from event_ingest.model import AUDIO_TAG, FILE_TYPES
from event_ingest.run_range import ALL_TYPES, CONF_KEYS, days_to_ingest, file_types_of
from tests.hypothesis_profiles import pure
from tests.strategies import texts

MAX_RANGE_DAYS = 366
DEFAULTS = {
    "start_date": None,
    "end_date": None,
    "lookback_days": None,
    "batch_size": 500,
    "download_types": None,
}
#: A scheduled run's look-back when its conf gives none.
DEFAULT_LOOKBACK = 2
#: Any value a conf (JSON) can hold.
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts(max_size=6), inner, max_size=3),
    max_leaves=5,
)
DAYS = st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31))
DATE_TEXTS = DAYS.map(dt.date.isoformat) | st.sampled_from(["2026-02-30", "2026-11-20T00:00", "20261120", ""])
VALUES = {
    "start_date": st.none() | DATE_TEXTS | JSON,
    "end_date": st.none() | DATE_TEXTS | JSON,
    "lookback_days": st.integers(0, 10) | st.integers() | JSON,
    "batch_size": st.integers(1, 1000) | st.integers() | JSON,
    "download_types": st.none() | st.lists(st.sampled_from([*FILE_TYPES, ALL_TYPES, "video"])) | JSON,
}


@st.composite
def confs(draw: st.DrawFn) -> dict[str, Any]:
    """A run's conf: some of the accepted keys with any values, now and then an unknown key."""
    keys = draw(st.lists(st.sampled_from(CONF_KEYS), unique=True))
    conf = {key: draw(VALUES[key]) for key in keys}
    if draw(st.integers(0, 9)) == 0:
        conf[draw(texts(max_size=8))] = draw(JSON)
    return conf


def ingest_days(conf: dict[str, Any], interval_day: dt.date, is_backfill: bool) -> list[dt.date] | None:
    try:
        return days_to_ingest(
            conf=conf,
            params={**DEFAULTS, **conf},
            interval_day=interval_day,
            is_backfill=is_backfill,
            max_range_days=MAX_RANGE_DAYS,
            default_lookback=DEFAULT_LOOKBACK,
        )
    except ConfError as exc:
        message = str(exc)
    assert message
    return None


class TestDaysToIngest:
    @pure(400)
    @given(confs(), DAYS, st.booleans())
    def test_any_conf_gives_consecutive_days_or_a_conf_error(
        self, conf: dict[str, Any], interval_day: dt.date, is_backfill: bool
    ) -> None:
        days = ingest_days(conf, interval_day, is_backfill)
        if days is not None:
            assert 1 <= len(days) <= MAX_RANGE_DAYS
            assert days == [days[0] + dt.timedelta(days=n) for n in range(len(days))]

    @pure(300)
    @given(DAYS, st.integers(0, MAX_RANGE_DAYS + 5), DAYS, st.booleans())
    def test_a_date_range_gives_exactly_its_days(
        self, start: dt.date, length: int, interval_day: dt.date, is_backfill: bool
    ) -> None:
        try:
            end = start + dt.timedelta(days=length)
        except OverflowError:
            return
        days = ingest_days(
            {"start_date": start.isoformat(), "end_date": end.isoformat()}, interval_day, is_backfill
        )
        if length + 1 > MAX_RANGE_DAYS:
            assert days is None
        else:
            assert days == [start + dt.timedelta(days=n) for n in range(length + 1)]

    @pure(300)
    @given(DAYS, st.none() | st.integers(0, MAX_RANGE_DAYS + 5), st.booleans())
    def test_a_scheduled_run_covers_its_day_and_the_look_back(
        self, interval_day: dt.date, lookback: int | None, is_backfill: bool
    ) -> None:
        conf = {} if lookback is None else {"lookback_days": lookback}
        days = ingest_days(conf, interval_day, is_backfill)
        back = DEFAULT_LOOKBACK if lookback is None else lookback
        if lookback is None and is_backfill:
            back = 0
        if back + 1 > MAX_RANGE_DAYS or interval_day.toordinal() - back < 1:
            assert days is None
        else:
            assert days is not None
            assert days[-1] == interval_day
            assert len(days) == back + 1


class TestFileTypesOf:
    @pure(300)
    @given(VALUES["download_types"])
    def test_any_value_gives_known_types_with_audio_tags_or_a_conf_error(self, value: Any) -> None:
        try:
            types = file_types_of(value)
        except ConfError:
            return
        assert AUDIO_TAG in types
        assert list(types) == [t for t in FILE_TYPES if t in types]
