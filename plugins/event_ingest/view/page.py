"""The page at ``/event-ingest/``: a range's per-day bars, a day's open rejects, the runs, the deferrals.

Everything is rendered here, on the server, from the same records as the JSON API: the page works
with scripts off, but for its "re-ingest this day" button (``static/view.js``), which triggers
``event_ingest`` through Airflow's REST API with the browser's own session, so with the user's own
rights. Clicking a day in the chart (or in the table under it) reloads the page with that day
selected. Every value from the database is HTML-escaped: object keys hold whatever S3 holds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from event_ingest.view import chart
from event_ingest.view.auth import DAG_ID

#: Days the page shows when the request names no range: a month up to the latest run's last day.
DEFAULT_DAYS = 30
#: The ranges (in days, ending at the range's last day) the header offers in one click.
PRESETS = (7, 30, 90, 365)

#: The counts of an ``ingest_runs`` row, with their column headings.
_RUN_COUNTS = {
    "discovered": "Found",
    "loaded_sessions": "Loaded",
    "loaded_events": "Events",
    "skipped": "Skipped",
    "deferred": "Deferred",
    "rejected": "Rejected",
    "failed_batches": "Failed batches",
}


def shifted(day: dt.date, days: int) -> dt.date:
    """``day`` moved by ``days``, stopping at the calendar's ends (year 1, year 9999)."""
    try:
        return day + dt.timedelta(days=days)
    except OverflowError:
        return dt.date.max if days > 0 else dt.date.min


def default_end(runs: Sequence[dict[str, Any]], today: dt.date) -> dt.date:
    """The last day of the latest runs, so that the page opens on data; today when there are none."""
    last_days = [dt.date.fromisoformat(r["last_day"]) for r in runs if r.get("last_day")]
    return max(last_days, default=today)


def render(
    *,
    first: dt.date,
    last: dt.date,
    days: Sequence[dict[str, Any]],
    selected: dt.date | None,
    rejects: Sequence[dict[str, Any]] | None,
    runs: Sequence[dict[str, Any]],
    deferred: Sequence[dict[str, Any]],
    airflow_root: str,
    static_version: str,
) -> str:
    """The whole page.

    :param airflow_root: where Airflow's API server is mounted (``""`` unless it runs under a path):
        the REST API and the UI's run pages are under it.
    :param static_version: changes when the style sheet or the script does (a cache key).
    """
    span = {"start": first.isoformat(), "end": last.isoformat()}

    def day_href(day: str) -> str:
        return "?" + urlencode({**span, "day": day}) + "#day"

    selected_day = selected.isoformat() if selected else None
    sections = [
        _header(first, last),
        '<section class="card" aria-labelledby="chart-heading">'
        '<h2 id="chart-heading">Per day</h2>'
        + _legend()
        + chart.bar_chart(days, day_href=day_href, selected=selected_day)
        + "</section>",
        _day_section(selected, days, rejects, airflow_root),
        _runs_section(runs, airflow_root),
        _deferred_section(deferred),
        _days_table(days, day_href),
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Event ingest · {first} to {last}</title>"
        f'<link rel="stylesheet" href="static/view.css?v={static_version}">'
        f'<script defer src="static/view.js?v={static_version}"></script>'
        "</head><body>" + "".join(s for s in sections if s) + "</body></html>"
    )


def message_page(title: str, message: str, *, link: tuple[str, str] | None = None) -> str:
    """A short page for an answer that is not the view (a bad parameter, no login, no database)."""
    action = f'<p><a href="{escape(link[0])}">{escape(link[1])}</a></p>' if link else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Event ingest · {escape(title)}</title></head>"
        f'<body style="font-family: system-ui, sans-serif; margin: 2rem"><h1>{escape(title)}</h1>'
        f'<p class="message">{escape(message)}</p>{action}</body></html>'
    )


def _header(first: dt.date, last: dt.date) -> str:
    ranges = {n: {"start": shifted(last, 1 - n).isoformat(), "end": last.isoformat()} for n in PRESETS}
    presets = "".join(f'<a class="preset" href="?{urlencode(q)}">{n} days</a>' for n, q in ranges.items())
    return (
        '<header class="top"><h1>Event ingest</h1>'
        '<form class="range" method="get" action="">'
        f'<label>From <input type="date" name="start" value="{first}" required></label>'
        f'<label>to <input type="date" name="end" value="{last}" required></label>'
        '<button type="submit">Show</button></form>'
        f'<nav class="presets" aria-label="Ranges ending {last}">{presets}</nav></header>'
    )


def _legend() -> str:
    items = "".join(
        f'<span class="key"><span class="swatch" style="background:{s.colour}"></span>'
        f"{escape(s.label)}</span>"
        for s in chart.SERIES
    )
    return f'<p class="legend">{items}<span class="hint">Click a day for its open rejects.</span></p>'


def _day_section(
    selected: dt.date | None,
    days: Sequence[dict[str, Any]],
    rejects: Sequence[dict[str, Any]] | None,
    airflow_root: str,
) -> str:
    if selected is None:
        return ""
    day = selected.isoformat()
    counts = next((d for d in days if d["day"] == day), None)
    summary = (
        " · ".join(f"{int(counts[s.key]):,} {escape(s.label.lower())}" for s in chart.SERIES)
        if counts
        else "outside the range shown"
    )
    trigger = f"{airflow_root}/api/v2/dags/{DAG_ID}/dagRuns"
    button = (
        f'<button type="button" class="reingest" data-day="{day}" data-trigger-url="{escape(trigger)}"'
        f' data-run-url="{escape(airflow_root)}/dags/{DAG_ID}/runs/">Re-ingest {day}</button>'
        '<output class="reingest-status" role="status" aria-live="polite"></output>'
    )
    rows = rejects or []
    table = (
        _table(
            ("Object", "Session", "Reason", "First seen", "Last seen"),
            [
                (
                    f'<code class="key">{escape(r["object_key"])}</code>',
                    f"<code>{escape(r['session_id'] or '')}</code>",
                    escape(r["reason"]),
                    _time(r["first_seen_at"]),
                    _time(r["last_seen_at"]),
                )
                for r in rows
            ],
            css="rejects",
        )
        if rows
        else '<p class="empty">No open rejects on this day.</p>'
    )
    return (
        '<section class="card" id="day" aria-labelledby="day-heading">'
        f'<h2 id="day-heading">{day}</h2><p class="day-counts">{summary}</p>'
        f'<div class="actions">{button}</div>'
        f"<h3>Open rejects ({len(rows):,})</h3>{table}</section>"
    )


def _runs_section(runs: Sequence[dict[str, Any]], airflow_root: str) -> str:
    rows = [
        (
            f'<a href="{escape(airflow_root)}/dags/{DAG_ID}/runs/{quote(r["dag_run_id"], safe="")}"'
            f' target="_top"><code>{escape(r["dag_run_id"])}</code></a>',
            escape(r["run_type"]),
            f'<span class="days">{escape(_span(r.get("first_day"), r.get("last_day")))}</span>',
            _time(r["started_at"]),
            _took(r["started_at"], r["finished_at"]),
            f'<span class="state state-{escape(r["state"])}">{escape(r["state"])}</span>',
            *(f"{int(r[name]):,}" for name in _RUN_COUNTS),
        )
        for r in runs
    ]
    headings = ("Run", "Type", "Days", "Started", "Took", "State", *_RUN_COUNTS.values())
    body = _table(headings, rows, css="runs", numeric_from=6) if rows else '<p class="empty">No runs yet.</p>'
    return (
        '<section class="card" aria-labelledby="runs-heading">'
        f'<h2 id="runs-heading">Latest runs</h2>{body}</section>'
    )


def _deferred_section(deferred: Sequence[dict[str, Any]]) -> str:
    rows = [
        (
            f"<code>{escape(d['session_id'])}</code>",
            escape(d["session_date"]),
            escape(d["reason"]),
            _time(d["first_seen_at"]),
            _time(d["last_seen_at"]),
        )
        for d in deferred
    ]
    body = (
        _table(("Session", "Day", "Why", "First seen", "Last seen"), rows, css="deferred")
        if rows
        else '<p class="empty">No session is waiting for its upload.</p>'
    )
    return (
        '<section class="card" aria-labelledby="deferred-heading">'
        f'<h2 id="deferred-heading">Deferred sessions ({len(rows):,})</h2>{body}</section>'
    )


def _days_table(days: Sequence[dict[str, Any]], day_href: Any) -> str:
    """The chart's numbers, folded away: for reading exact counts, and for screen readers."""
    rows = [
        (
            f'<a href="{escape(day_href(d["day"]))}">{d["day"]}</a>',
            *(f"{int(d[s.key]):,}" for s in chart.SERIES),
        )
        for d in reversed(days)
    ]
    table = _table(("Day", *(s.label for s in chart.SERIES)), rows, css="days", numeric_from=1)
    return (
        '<section class="card"><details><summary>The numbers, day by day</summary>'
        f"{table}</details></section>"
    )


def _table(
    headings: Sequence[str], rows: Sequence[Sequence[str]], *, css: str, numeric_from: int | None = None
) -> str:
    """A table of cells already escaped; columns from ``numeric_from`` on are right-aligned."""

    def cell(tag: str, index: int, content: str) -> str:
        numeric = numeric_from is not None and index >= numeric_from
        return f'<{tag} class="num">{content}</{tag}>' if numeric else f"<{tag}>{content}</{tag}>"

    head = "".join(cell("th", i, escape(h)) for i, h in enumerate(headings))
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>" for row in rows)
    return (
        f'<div class="scroll"><table class="{css}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _time(value: str | None) -> str:
    """An ISO time as ``YYYY-MM-DD HH:MM:SS`` UTC, the exact value in its tooltip."""
    if not value:
        return "—"
    shown = escape(value[:19].replace("T", " "))
    return f'<time datetime="{escape(value)}" title="{escape(value)}">{shown}</time>'


def _took(started: str, finished: str | None) -> str:
    """How long a run took (its end time in the tooltip); a dash while it runs."""
    if not finished:
        return "—"
    seconds = (dt.datetime.fromisoformat(finished) - dt.datetime.fromisoformat(started)).total_seconds()
    minutes, rest = divmod(round(seconds), 60)
    took = f"{minutes} min {rest} s" if minutes else f"{rest} s"
    return f'<time datetime="{escape(finished)}" title="finished {escape(finished)}">{took}</time>'


def _span(first: str | None, last: str | None) -> str:
    if not first:
        return "—"
    return first if first == last or not last else f"{first} → {last}"
