"""The per-day SVG: one bar a day and series, scaled per panel, each day a link to its rejects."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from event_ingest.view import chart

SVG = "{http://www.w3.org/2000/svg}"


def record(day: str, sessions: int = 0, events: int = 0, open_rejects: int = 0, deferred: int = 0) -> dict:
    return {
        "day": day,
        "sessions": sessions,
        "events": events,
        "open_rejects": open_rejects,
        "deferred": deferred,
    }


def bars(svg: str) -> dict[tuple[str, str], ET.Element]:
    root = ET.fromstring(svg)
    return {
        (r.get("data-series"), r.get("data-day")): r
        for r in root.iter(f"{SVG}rect")
        if r.get("class") == "bar"
    }


def href(day: str) -> str:
    return f"?start=2026-11-01&end=2026-11-03&day={day}"


DAYS = [record("2026-11-01", 10, 50, 1), record("2026-11-02"), record("2026-11-03", 4, 20, 0, 2)]


class TestBars:
    def test_one_bar_a_day_and_series_with_its_value(self) -> None:
        found = bars(chart.bar_chart(DAYS, day_href=href))
        assert len(found) == len(DAYS) * len(chart.SERIES)
        for day in DAYS:
            for series in chart.SERIES:
                assert found[(series.key, day["day"])].get("data-value") == str(day[series.key])

    def test_a_zero_is_a_bar_of_no_height(self) -> None:
        found = bars(chart.bar_chart(DAYS, day_href=href))
        assert float(found[("sessions", "2026-11-02")].get("height")) == 0

    def test_each_panel_has_its_own_scale(self) -> None:
        found = bars(chart.bar_chart(DAYS, day_href=href))
        tallest = {
            s.key: max(float(found[(s.key, d["day"])].get("height")) for d in DAYS) for s in chart.SERIES
        }
        # 10 sessions on a scale to 10, 50 events to 50, 1 reject to 1, 2 deferred to 2: all full height.
        assert set(tallest.values()) == {70.0}

    def test_heights_are_proportional_within_a_panel(self) -> None:
        found = bars(chart.bar_chart(DAYS, day_href=href))
        assert float(found[("sessions", "2026-11-03")].get("height")) == pytest.approx(70 * 4 / 10)

    def test_a_year_of_days_is_well_formed(self) -> None:
        first = dt.date(2026, 1, 1)
        year = [record((first + dt.timedelta(days=n)).isoformat(), n, 5 * n) for n in range(366)]
        svg = chart.bar_chart(year, day_href=href)
        root = ET.fromstring(svg)
        assert root.get("data-days") == "366"
        assert len(bars(svg)) == 366 * len(chart.SERIES)
        assert len([t for t in root.iter(f"{SVG}text") if t.get("class") == "day-label"]) <= 10

    def test_no_days_is_still_a_chart(self) -> None:
        root = ET.fromstring(chart.bar_chart([], day_href=href))
        assert root.find(f"{SVG}title").text == "No days"


class TestDayLinks:
    def test_each_day_links_to_its_rejects_escaped(self) -> None:
        root = ET.fromstring(chart.bar_chart(DAYS, day_href=href))
        links = {a.get("data-day"): a.get("href") for a in root.iter(f"{SVG}a")}
        assert links == {d["day"]: href(d["day"]) for d in DAYS}

    def test_the_tooltip_gives_the_days_counts(self) -> None:
        root = ET.fromstring(chart.bar_chart(DAYS, day_href=href))
        (link,) = [a for a in root.iter(f"{SVG}a") if a.get("data-day") == "2026-11-01"]
        assert link.find(f"{SVG}title").text == (
            "2026-11-01: 10 sessions, 50 events, 1 open rejects, 0 deferred. Click for its rejects."
        )

    def test_the_selected_day_is_marked(self) -> None:
        root = ET.fromstring(chart.bar_chart(DAYS, day_href=href, selected="2026-11-03"))
        marks = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "selected-day"]
        assert len(marks) == 1


@pytest.mark.parametrize(
    ("value", "ceiling"),
    [(0, 1), (1, 1), (2, 2), (3, 5), (7, 10), (10, 10), (11, 20), (49_999, 50_000), (10_000, 10_000)],
)
def test_nice_ceiling(value: int, ceiling: int) -> None:
    assert chart.nice_ceiling(value) == ceiling


def test_the_chart_needs_nothing_from_the_network(monkeypatch: Any) -> None:
    svg = chart.bar_chart(DAYS, day_href=href)
    assert "http://" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in svg
