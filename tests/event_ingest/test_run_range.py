"""Tests for event_ingest.run_range: which days a scheduled, manual or backfill run ingests."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from event_ingest.errors import ConfError
from event_ingest.run_range import CONF_KEYS, days_to_ingest, file_types_of

D = dt.date(2026, 11, 20)
MAX_RANGE_DAYS = 31
DEFAULTS = {"start_date": None, "end_date": None, "lookback_days": None, "batch_size": 200}


def days(
    conf: dict[str, Any] | None = None, *, is_backfill: bool = False, max_range_days: int = MAX_RANGE_DAYS
):
    conf = conf or {}
    return days_to_ingest(
        conf=conf,
        params={**DEFAULTS, **conf},
        interval_day=D,
        is_backfill=is_backfill,
        max_range_days=max_range_days,
        default_lookback=2,
    )


def day_range(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


class TestDaysToIngest:
    def test_scheduled_run_covers_its_day_and_the_default_lookback(self) -> None:
        assert days() == [D - dt.timedelta(days=2), D - dt.timedelta(days=1), D]

    @pytest.mark.parametrize(
        ("lookback", "expected"),
        [
            pytest.param(0, [D], id="no-lookback"),
            pytest.param(1, [D - dt.timedelta(days=1), D], id="one-day"),
            pytest.param(5, day_range(D - dt.timedelta(days=5), D), id="five-days"),
        ],
    )
    def test_scheduled_run_takes_the_conf_lookback(self, lookback: int, expected: list[dt.date]) -> None:
        assert days({"lookback_days": lookback}) == expected

    def test_backfill_run_covers_exactly_its_day(self) -> None:
        assert days(is_backfill=True) == [D]

    def test_backfill_run_takes_a_lookback_the_conf_sets(self) -> None:
        assert days({"lookback_days": 1}, is_backfill=True) == [D - dt.timedelta(days=1), D]

    def test_conf_range_is_inclusive_without_lookback(self) -> None:
        assert days({"start_date": "2026-11-01", "end_date": "2026-11-03"}) == [
            dt.date(2026, 11, 1),
            dt.date(2026, 11, 2),
            dt.date(2026, 11, 3),
        ]

    def test_a_range_from_the_trigger_form_covers_just_its_days(self) -> None:
        """The UI's form sends every param, ``lookback_days`` null unless the user fills it in."""
        conf = {
            "start_date": "2026-11-25",
            "end_date": "2026-11-25",
            "lookback_days": None,
            "batch_size": 500,
        }
        assert days(conf) == [dt.date(2026, 11, 25)]
        assert days({"lookback_days": None}) == [D - dt.timedelta(days=2), D - dt.timedelta(days=1), D]

    def test_conf_range_takes_a_lookback_the_conf_sets(self) -> None:
        conf = {"start_date": "2026-11-01", "end_date": "2026-11-03", "lookback_days": 1}
        assert days(conf) == day_range(dt.date(2026, 10, 31), dt.date(2026, 11, 3))

    def test_conf_range_ignores_the_interval_and_backfill_flag(self) -> None:
        conf = {"start_date": "2026-01-01", "end_date": "2026-01-02"}
        assert days(conf, is_backfill=True) == [dt.date(2026, 1, 1), dt.date(2026, 1, 2)]

    def test_only_start_date_gives_that_one_day(self) -> None:
        assert days({"start_date": "2026-11-01"}) == [dt.date(2026, 11, 1)]

    def test_start_equal_to_end_gives_one_day(self) -> None:
        assert days({"start_date": "2026-11-01", "end_date": "2026-11-01"}) == [dt.date(2026, 11, 1)]

    def test_range_crosses_year_and_leap_day(self) -> None:
        assert days({"start_date": "2027-12-31", "end_date": "2028-03-01"}, max_range_days=100)[-3:] == [
            dt.date(2028, 2, 28),
            dt.date(2028, 2, 29),
            dt.date(2028, 3, 1),
        ]

    def test_batch_size_is_an_accepted_conf_key(self) -> None:
        assert days({"batch_size": 10}) == days()
        assert "batch_size" in CONF_KEYS

    def test_range_of_exactly_max_range_days_is_accepted(self) -> None:
        result = days({"start_date": "2026-11-01", "end_date": "2026-11-30"}, max_range_days=30)
        assert len(result) == 30

    @pytest.mark.parametrize(
        ("conf", "message"),
        [
            pytest.param({"end_date": "2026-11-03"}, "end_date is given without start_date", id="end-only"),
            pytest.param(
                {"start_date": "2026-11-03", "end_date": "2026-11-01"},
                "before start_date",
                id="end-before-start",
            ),
            pytest.param({"start_date": "2026-11-31"}, "start_date '2026-11-31'", id="november-31"),
            pytest.param(
                {"start_date": "2026-11-01", "end_date": "2026-02-30"}, "end_date", id="february-30"
            ),
            pytest.param({"start_date": "yesterday"}, "start_date 'yesterday'", id="word"),
            pytest.param({"start_date": ""}, "start_date", id="empty-string"),
            pytest.param({"start_date": 20261101}, "start_date must be a date string", id="int"),
            pytest.param({"start_date": ["2026-11-01"]}, "start_date must be a date string", id="list"),
            pytest.param({"start": "2026-11-01"}, "unknown conf key", id="unknown-key"),
            pytest.param({"start_date": "2026-11-01", "dry_run": True}, "dry_run", id="unknown-key-named"),
            pytest.param({"lookback_days": -1}, "lookback_days", id="negative-lookback"),
            pytest.param({"lookback_days": True}, "lookback_days", id="bool-lookback"),
            pytest.param({"lookback_days": "2"}, "lookback_days", id="string-lookback"),
            pytest.param({"lookback_days": 1.5}, "lookback_days", id="float-lookback"),
            pytest.param({"lookback_days": 31}, "maximum is 31", id="lookback-too-long"),
            pytest.param(
                {"start_date": "2026-01-01", "end_date": "2026-12-31"}, "365 days", id="range-too-long"
            ),
        ],
    )
    def test_bad_conf_raises_a_message_naming_the_problem(self, conf: dict[str, Any], message: str) -> None:
        with pytest.raises(ConfError, match=message):
            days(conf)

    def test_scheduled_lookback_counts_towards_the_maximum(self) -> None:
        with pytest.raises(ConfError, match="covers 3 days"):
            days(max_range_days=2)

    @pytest.mark.parametrize(
        "conf",
        [
            pytest.param({"lookback_days": 10**9}, id="beyond-timedelta"),
            pytest.param({"lookback_days": 800_000}, id="before-year-1"),
            pytest.param({"start_date": "0001-01-01", "lookback_days": 1}, id="from-year-1"),
        ],
    )
    def test_huge_lookback_is_a_conf_error(self, conf: dict[str, Any]) -> None:
        with pytest.raises(ConfError):
            days(conf)

    def test_bad_download_types_are_a_conf_error(self) -> None:
        with pytest.raises(ConfError, match="download_types"):
            days({"download_types": ["camera"]})


class TestFileTypesOf:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param(None, ("audio_tag",), id="default"),
            pytest.param(["audio_tag"], ("audio_tag",), id="audio-only"),
            pytest.param(["raw"], ("audio_tag", "raw"), id="audio-always-comes-too"),
            pytest.param(["display_log", "raw"], ("audio_tag", "display_log", "raw"), id="several"),
            pytest.param(["all"], ("audio_tag", "display_log", "raw"), id="all"),
        ],
    )
    def test_names_what_a_run_downloads(self, value: list[str] | None, expected: tuple[str, ...]) -> None:
        assert file_types_of(value) == expected

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param("raw", id="not-a-list"),
            pytest.param([1], id="not-strings"),
            pytest.param(["x"], id="unknown"),
        ],
    )
    def test_refuses_anything_else(self, value: object) -> None:
        with pytest.raises(ConfError, match="download_types"):
            file_types_of(value)
