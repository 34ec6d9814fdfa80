"""The view's query parameters: what is accepted, and the message for what is not."""

from __future__ import annotations

import datetime as dt

import pytest

from event_ingest.view import params
from event_ingest.view.params import BadParameter


class TestDay:
    def test_reads_a_day(self) -> None:
        assert params.day("day", "2026-11-02") == dt.date(2026, 11, 2)

    @pytest.mark.parametrize("value", [None, ""])
    def test_a_missing_day_is_required(self, value: str | None) -> None:
        with pytest.raises(BadParameter, match=r"^day is required"):
            params.day("day", value)

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param("20261102", id="basic-form"),
            pytest.param("2026-W45-1", id="iso-week"),
            pytest.param("2026-11-2", id="one-digit-day"),
            pytest.param(" 2026-11-02", id="space"),
            pytest.param("2026-11-02T00:00", id="a-time"),
            pytest.param("\uff12\uff10\uff12\uff16-11-02", id="fullwidth-digits"),
            pytest.param("x" * 5000, id="long"),
        ],
    )
    def test_only_yyyy_mm_dd_is_a_day(self, value: str) -> None:
        with pytest.raises(BadParameter, match="is not a day written YYYY-MM-DD") as raised:
            params.day("start", value)
        assert len(str(raised.value)) < 120

    @pytest.mark.parametrize("value", ["2026-02-29", "2026-13-01", "2026-11-31", "0000-01-01"])
    def test_a_day_the_calendar_lacks_is_refused(self, value: str) -> None:
        with pytest.raises(BadParameter, match=f"start '{value}' is not a valid day"):
            params.day("start", value)


class TestDayRange:
    def test_both_ends_are_included(self) -> None:
        assert params.day_range("2026-11-01", "2026-11-03") == (dt.date(2026, 11, 1), dt.date(2026, 11, 3))

    def test_one_day_is_a_range(self) -> None:
        assert params.day_range("2026-11-01", "2026-11-01") == (dt.date(2026, 11, 1),) * 2

    def test_end_before_start_is_refused(self) -> None:
        with pytest.raises(BadParameter, match="end 2026-10-31 is before start 2026-11-01"):
            params.day_range("2026-11-01", "2026-10-31")

    def test_the_maximum_is_allowed_and_one_more_day_is_not(self) -> None:
        assert params.day_range("2026-01-01", "2026-01-10", max_days=10)
        with pytest.raises(BadParameter, match="covers 11 days; the maximum is 10"):
            params.day_range("2026-01-01", "2026-01-11", max_days=10)

    def test_the_default_maximum_is_the_settings(self) -> None:
        from event_ingest import settings

        first = dt.date(2026, 1, 1)
        last = first + dt.timedelta(days=settings.MAX_RANGE_DAYS - 1)
        assert params.checked_range(first, last) == (first, last)
        with pytest.raises(BadParameter, match=f"the maximum is {settings.MAX_RANGE_DAYS}"):
            params.checked_range(first, last + dt.timedelta(days=1))


class TestLimit:
    @pytest.mark.parametrize("value", [None, ""])
    def test_the_default_when_not_given(self, value: str | None) -> None:
        assert params.limit(value, default=20, maximum=500) == 20

    @pytest.mark.parametrize(("value", "expected"), [("1", 1), ("500", 500), ("007", 7)])
    def test_a_whole_number_within_bounds(self, value: str, expected: int) -> None:
        assert params.limit(value, default=20, maximum=500) == expected

    @pytest.mark.parametrize("value", ["0", "501", "999999999"])
    def test_out_of_bounds_is_refused(self, value: str) -> None:
        with pytest.raises(BadParameter, match=f"limit must be from 1 to 500, got {int(value)}"):
            params.limit(value, default=20, maximum=500)

    @pytest.mark.parametrize("value", ["-1", "+5", "1.5", "1e3", "ten", " 5", "\u0665", "1_000", "1" * 10])
    def test_anything_but_digits_is_refused(self, value: str) -> None:
        with pytest.raises(BadParameter, match="is not a whole number from 1 to 500"):
            params.limit(value, default=20, maximum=500)
