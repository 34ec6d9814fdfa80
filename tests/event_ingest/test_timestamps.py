"""Tests for event_ingest.timestamps: UTC at millisecond precision."""

from __future__ import annotations

import datetime as dt

import pytest

from event_ingest.timestamps import normalize, parse_utc, to_db


class TestParseUtc:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param(
                "2026-11-20T10:15:33.120Z", dt.datetime(2026, 11, 20, 10, 15, 33, 120000), id="zulu"
            ),
            pytest.param("2026-11-20T12:15:33+02:00", dt.datetime(2026, 11, 20, 10, 15, 33), id="plus-two"),
            pytest.param("2026-11-20T01:00:00-03:30", dt.datetime(2026, 11, 20, 4, 30), id="minus-half-hour"),
            pytest.param(
                "2026-11-21T01:00:00+02:00", dt.datetime(2026, 11, 20, 23, 0), id="crosses-midnight"
            ),
            pytest.param("2026-11-20T10:15:33", dt.datetime(2026, 11, 20, 10, 15, 33), id="naive-is-utc"),
            pytest.param("2026-11-20 10:15:33", dt.datetime(2026, 11, 20, 10, 15, 33), id="space-separator"),
            pytest.param(
                "2026-11-20T10:15:33.123999Z", dt.datetime(2026, 11, 20, 10, 15, 33, 123000), id="cuts-to-ms"
            ),
            pytest.param(
                "2026-11-20T10:15:33.5Z", dt.datetime(2026, 11, 20, 10, 15, 33, 500000), id="one-digit"
            ),
        ],
    )
    def test_gives_aware_utc_cut_to_milliseconds(self, value: str, expected: dt.datetime) -> None:
        parsed = parse_utc(value)
        assert parsed == expected.replace(tzinfo=dt.UTC)
        assert parsed.utcoffset() == dt.timedelta(0)

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param("", id="empty"),
            pytest.param("yesterday", id="word"),
            pytest.param("2026-02-30T10:00:00Z", id="impossible-date"),
            pytest.param("2026-11-20T25:00:00Z", id="hour-25"),
        ],
    )
    def test_refuses_what_is_not_a_timestamp(self, value: str) -> None:
        with pytest.raises(ValueError):  # noqa: PT011 - the type is the contract; messages are Python's
            parse_utc(value)


class TestToDb:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param(
                dt.datetime(2026, 11, 20, 10, 15, 33, 120000, tzinfo=dt.UTC),
                "2026-11-20 10:15:33.120",
                id="utc",
            ),
            pytest.param(
                dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "2026-01-02 03:04:05.000", id="padded"
            ),
            pytest.param(
                dt.datetime(2026, 11, 20, 12, 0, 0, 999999, tzinfo=dt.timezone(dt.timedelta(hours=2))),
                "2026-11-20 10:00:00.999",
                id="offset-converted-and-cut",
            ),
        ],
    )
    def test_formats_utc_with_milliseconds(self, value: dt.datetime, expected: str) -> None:
        assert to_db(value) == expected


class TestNormalize:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param("2026-11-20T10:15:33.120Z", "2026-11-20 10:15:33.120", id="zulu"),
            pytest.param("2026-11-20T12:15:33.120+02:00", "2026-11-20 10:15:33.120", id="offset"),
            pytest.param("2026-11-20T10:15:33", "2026-11-20 10:15:33.000", id="naive"),
            pytest.param("2026-11-20T10:15:33.999999Z", "2026-11-20 10:15:33.999", id="never-rounds-up"),
        ],
    )
    def test_gives_database_form(self, value: str, expected: str) -> None:
        assert normalize(value) == expected

    def test_is_idempotent(self) -> None:
        once = normalize("2026-11-20T12:15:33.120+02:00")
        assert normalize(once) == once

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param("0999-12-31T23:59:59Z", id="year-999"),
            pytest.param("0001-01-01T00:00:00+01:00", id="before-year-1"),
            pytest.param("9999-12-31T23:59:59-01:00", id="after-year-9999"),
        ],
    )
    def test_years_outside_what_databases_hold_are_refused(self, value: str) -> None:
        with pytest.raises(ValueError, match="out"):
            normalize(value)
