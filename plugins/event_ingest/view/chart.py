"""The per-day bars, drawn on the server as SVG: the page needs no script library and no network.

One panel a series (sessions, events, open rejects, deferred) over the same days, each with its
own scale: a day's events outnumber its sessions, and its rejects are a few, so one shared axis
would flatten two of them. Every bar carries its day, series and value as ``data-`` attributes; a
zero is a bar of no height, so that the chart holds one bar a day and series, which a test can hold
against the database. Each day's column is a link to ``day_href(day)`` (that day's rejects) whose
tooltip gives the day's four counts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    colour: str


SERIES = (
    Series("sessions", "Sessions", "#3b6fc4"),
    Series("events", "Events", "#2f9467"),
    Series("open_rejects", "Open rejects", "#c8432f"),
    Series("deferred", "Deferred", "#c98a12"),
)

WIDTH = 960
_LEFT, _RIGHT = 64, 12
_PANEL_HEIGHT, _PANEL_GAP, _TOP = 70, 34, 22
_AXIS_HEIGHT = 26
_MAX_DAY_LABELS = 10


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... that is at least ``value``: the top of a panel's scale."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return step * power
    raise AssertionError("unreachable")


def bar_chart(
    days: Sequence[dict[str, Any]], *, day_href: Callable[[str], str], selected: str | None = None
) -> str:
    """The SVG of ``days`` (the records of the days API, ascending), as markup to put in a page."""
    count = max(len(days), 1)
    slot = (WIDTH - _LEFT - _RIGHT) / count
    bar = max(slot * 0.8, 0.5) if slot >= 2 else slot
    height = _TOP + len(SERIES) * (_PANEL_HEIGHT + _PANEL_GAP) + _AXIS_HEIGHT
    bottom = _TOP + len(SERIES) * (_PANEL_HEIGHT + _PANEL_GAP) - _PANEL_GAP
    parts = [
        f'<svg class="day-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}"'
        f' width="100%" role="img" aria-labelledby="chart-title" data-days="{len(days)}">',
        f'<title id="chart-title">{escape(_title(days))}</title>',
    ]
    for index, record in enumerate(days):
        if record["day"] == selected:
            x = _LEFT + index * slot
            parts.append(
                f'<rect class="selected-day" x="{x:.2f}" y="{_TOP - 4}" width="{slot:.2f}"'
                f' height="{bottom - _TOP + 8}"/>'
            )
    for number, series in enumerate(SERIES):
        top = _TOP + number * (_PANEL_HEIGHT + _PANEL_GAP)
        parts.extend(_panel(days, series, top=top, slot=slot, bar=bar))
    parts.extend(_day_axis(days, y=bottom, slot=slot))
    for index, record in enumerate(days):
        day = record["day"]
        x = _LEFT + index * slot
        parts.append(
            f'<a class="day-link" href="{escape(day_href(day))}" data-day="{day}">'
            f"<title>{escape(_day_summary(record))}</title>"
            f'<rect x="{x:.2f}" y="{_TOP - 4}" width="{slot:.2f}" height="{bottom - _TOP + 8}"'
            ' fill="transparent"/></a>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _panel(days: Sequence[dict[str, Any]], series: Series, *, top: int, slot: float, bar: float) -> list[str]:
    peak = nice_ceiling(max((int(d[series.key]) for d in days), default=0))
    base = top + _PANEL_HEIGHT
    parts = [
        f'<g class="series" data-series="{series.key}">',
        f'<text class="series-label" x="{_LEFT}" y="{top - 8}">{escape(series.label)}</text>',
        f'<line class="axis" x1="{_LEFT}" y1="{base}" x2="{WIDTH - _RIGHT}" y2="{base}"/>',
        f'<line class="grid" x1="{_LEFT}" y1="{top}" x2="{WIDTH - _RIGHT}" y2="{top}"/>',
        f'<text class="tick" x="{_LEFT - 6}" y="{top + 4}" text-anchor="end">{peak:,}</text>',
        f'<text class="tick" x="{_LEFT - 6}" y="{base}" text-anchor="end">0</text>',
    ]
    for index, record in enumerate(days):
        value = int(record[series.key])
        tall = _PANEL_HEIGHT * value / peak
        x = _LEFT + index * slot + (slot - bar) / 2
        parts.append(
            f'<rect class="bar" fill="{series.colour}" data-series="{series.key}" data-day="{record["day"]}"'
            f' data-value="{value}" x="{x:.2f}" y="{base - tall:.2f}" width="{bar:.2f}" height="{tall:.2f}"/>'
        )
    parts.append("</g>")
    return parts


def _day_axis(days: Sequence[dict[str, Any]], *, y: int, slot: float) -> list[str]:
    """Labels under the bars: every day when few, else about a dozen evenly spaced."""
    step = max(1, math.ceil(len(days) / _MAX_DAY_LABELS))
    parts = []
    for index in range(0, len(days), step):
        x = _LEFT + (index + 0.5) * slot
        parts.append(
            f'<text class="day-label" x="{x:.2f}" y="{y + 18}" text-anchor="middle">'
            f"{days[index]['day']}</text>"
        )
    return parts


def _title(days: Sequence[dict[str, Any]]) -> str:
    if not days:
        return "No days"
    totals = ", ".join(f"{sum(int(d[s.key]) for d in days):,} {s.label.lower()}" for s in SERIES)
    return f"Per day, {days[0]['day']} to {days[-1]['day']}: {totals}"


def _day_summary(record: dict[str, Any]) -> str:
    counts = ", ".join(f"{int(record[s.key]):,} {s.label.lower()}" for s in SERIES)
    return f"{record['day']}: {counts}. Click for its rejects."
