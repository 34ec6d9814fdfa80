"""Properties of event_ingest.timestamps: any text is a database time in UTC, or a ValueError."""

from __future__ import annotations

import datetime as dt
import re

from hypothesis import given
from hypothesis import strategies as st

from event_ingest.timestamps import MAX_YEAR, MIN_YEAR, normalize
from tests.hypothesis_profiles import pure
from tests.strategies import iso_timestamps, texts

DB_TIME = re.compile(r"(\d{4})-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}")
OFFSETS = st.integers(-1439, 1439).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
MOMENTS = st.datetimes(dt.datetime(1, 1, 2), dt.datetime(9999, 12, 30), timezones=st.none() | OFFSETS)


class TestNormalize:
    @pure(1000)
    @given(iso_timestamps() | texts(max_size=40))
    def test_any_text_gives_a_database_time_in_range_or_a_value_error(self, text: str) -> None:
        try:
            db = normalize(text)
        except ValueError:
            return
        match = DB_TIME.fullmatch(db)
        assert match
        assert MIN_YEAR <= int(match.group(1)) <= MAX_YEAR
        assert normalize(db.replace(" ", "T") + "Z") == db  # a database time is its own normal form

    @pure(500)
    @given(MOMENTS, st.sampled_from(["auto", "milliseconds", "microseconds", "seconds"]))
    def test_gives_the_same_instant_in_utc_cut_to_milliseconds(
        self, moment: dt.datetime, timespec: str
    ) -> None:
        aware = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
        try:
            utc = aware.astimezone(dt.UTC)
        except OverflowError:
            utc = None
        text = moment.isoformat(timespec=timespec)
        if utc is None or not MIN_YEAR <= utc.year <= MAX_YEAR:
            try:
                normalize(text)
            except ValueError:
                return
            raise AssertionError(f"{text} is outside the years a database holds")
        kept = {"seconds": 0, "milliseconds": moment.microsecond // 1000 * 1000}.get(
            timespec, moment.microsecond
        )
        expected = utc.replace(microsecond=kept // 1000 * 1000)  # what the text says, cut to milliseconds
        assert normalize(text) == f"{expected:%Y-%m-%d %H:%M:%S}.{expected.microsecond // 1000:03d}"

    @pure(300)
    @given(MOMENTS, MOMENTS)
    def test_keeps_the_order_of_instants(self, first: dt.datetime, second: dt.datetime) -> None:
        try:
            a, b = normalize(first.isoformat()), normalize(second.isoformat())
        except ValueError:
            return
        utc = [m.replace(tzinfo=m.tzinfo or dt.UTC).astimezone(dt.UTC) for m in (first, second)]
        if utc[0] < utc[1]:
            assert a <= b
