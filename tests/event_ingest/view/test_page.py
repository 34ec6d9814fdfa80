"""The page's markup: escaped values from the bucket, the re-ingest button, the default range."""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser
from typing import Any

import pytest

from event_ingest.view import page

HOSTILE = '<script>alert("key")</script>&amp;\u202e\x07'
DAY = dt.date(2026, 11, 2)


class Elements(HTMLParser):
    """Every start tag of a page, with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Elements()
    parser.feed(html)
    return parser.tags


def run(**overrides: Any) -> dict[str, Any]:
    return {
        "dag_run_id": "manual__2026-11-07T10:00:00+00:00",
        "run_type": "manual",
        "first_day": "2026-11-02",
        "last_day": "2026-11-06",
        "started_at": "2026-11-07T10:00:00.000Z",
        "finished_at": None,
        "state": "running",
        **dict.fromkeys(
            (
                "discovered",
                "loaded_sessions",
                "loaded_events",
                "skipped",
                "deferred",
                "rejected",
                "failed_batches",
            ),
            0,
        ),
        **overrides,
    }


def render(**overrides: Any) -> str:
    arguments: dict[str, Any] = {
        "first": DAY,
        "last": DAY,
        "days": [{"day": "2026-11-02", "sessions": 1, "events": 2, "open_rejects": 1, "deferred": 1}],
        "selected": DAY,
        "rejects": [
            {
                "object_key": HOSTILE,
                "session_id": HOSTILE,
                "reason": HOSTILE,
                "first_seen_at": "2026-11-07T10:00:00.123Z",
                "last_seen_at": "2026-11-07T10:00:00.123Z",
            }
        ],
        "runs": [run(dag_run_id=HOSTILE, state=HOSTILE)],
        "deferred": [
            {
                "session_id": HOSTILE,
                "session_date": "2026-11-02",
                "report_key": HOSTILE,
                "reason": HOSTILE,
                "first_seen_at": "2026-11-07T10:00:00.123Z",
                "last_seen_at": "2026-11-07T10:00:00.123Z",
            }
        ],
        "airflow_root": "",
        "static_version": "v1",
    }
    return page.render(**{**arguments, **overrides})


class TestEscaping:
    def test_values_from_the_bucket_never_become_markup(self) -> None:
        html = render()
        assert "<script>alert" not in html
        scripts = [attrs for tag, attrs in elements(html) if tag == "script"]
        assert scripts == [{"defer": None, "src": "static/view.js?v=v1"}]
        assert html.count("&lt;script&gt;alert(&quot;key&quot;)&lt;/script&gt;&amp;amp;") >= 5

    def test_a_run_id_is_quoted_in_its_link(self) -> None:
        links = [
            a["href"] for tag, a in elements(render()) if tag == "a" and "/runs/" in (a.get("href") or "")
        ]
        assert links == [
            "/dags/event_ingest/runs/%3Cscript%3Ealert%28%22key%22%29%3C%2Fscript%3E%26amp%3B%E2%80%AE%07"
        ]


class TestReingestButton:
    def test_the_selected_day_gets_a_button_for_airflows_rest_api(self) -> None:
        (button,) = [
            a for tag, a in elements(render(airflow_root="/airflow")) if tag == "button" and a.get("data-day")
        ]
        assert button["data-day"] == "2026-11-02"
        assert button["data-trigger-url"] == "/airflow/api/v2/dags/event_ingest/dagRuns"
        assert button["data-run-url"] == "/airflow/dags/event_ingest/runs/"

    def test_no_day_selected_no_button_and_no_rejects(self) -> None:
        html = render(selected=None, rejects=None)
        assert 'class="reingest"' not in html
        assert "Click a day for its open rejects." in html

    def test_a_day_without_open_rejects_says_so(self) -> None:
        assert "No open rejects on this day." in render(rejects=[])


class TestSections:
    def test_runs_show_their_counts_state_and_duration(self) -> None:
        finished = "2026-11-07T10:01:05.400Z"
        html = render(runs=[run(state="success", discovered=12, loaded_sessions=10, finished_at=finished)])
        assert '<span class="state state-success">success</span>' in html
        assert '<td class="num">12</td><td class="num">10</td>' in html
        assert "2026-11-02 → 2026-11-06" in html
        assert f'title="finished {finished}">1 min 5 s</time>' in html

    def test_a_running_run_has_no_duration_yet(self) -> None:
        html = render(runs=[run(state="running", finished_at=None)])
        assert '<td>—</td><td><span class="state state-running">running</span>' in html

    def test_empty_sections_say_so(self) -> None:
        html = render(runs=[], deferred=[])
        assert "No runs yet." in html
        assert "No session is waiting for its upload." in html

    def test_the_numbers_table_lists_every_day(self) -> None:
        days = [
            {"day": f"2026-11-0{n}", "sessions": n, "events": 0, "open_rejects": 0, "deferred": 0}
            for n in (1, 2, 3)
        ]
        html = render(days=days, first=dt.date(2026, 11, 1), last=dt.date(2026, 11, 3))
        assert html.index(">2026-11-03</a>") < html.index(">2026-11-01</a>")


class TestDefaultRange:
    def test_ends_on_the_latest_runs_last_day(self) -> None:
        runs = [run(last_day="2026-11-06"), run(last_day="2026-11-09"), run(first_day=None, last_day=None)]
        assert page.default_end(runs, today=dt.date(2026, 12, 1)) == dt.date(2026, 11, 9)

    def test_ends_today_without_runs(self) -> None:
        assert page.default_end([], today=dt.date(2026, 12, 1)) == dt.date(2026, 12, 1)

    @pytest.mark.parametrize(
        ("day", "days", "expected"),
        [
            (dt.date(2026, 11, 30), 1, dt.date(2026, 12, 1)),
            (dt.date.max, 29, dt.date.max),
            (dt.date.min, -29, dt.date.min),
        ],
    )
    def test_shifting_stops_at_the_calendars_ends(self, day: dt.date, days: int, expected: dt.date) -> None:
        assert page.shifted(day, days) == expected


def test_a_message_page_escapes_and_links() -> None:
    html = page.message_page("Bad request", HOSTILE, link=("/auth/login?next=x&y", "Log in"))
    assert "<script>alert" not in html
    assert 'href="/auth/login?next=x&amp;y"' in html
