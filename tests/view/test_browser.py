"""The ingest view in a real browser: Debian's Chromium, driven by Playwright, against the real stack.

Log in through Airflow's own login page, find the view in the UI's navigation, hold the chart's bars
against the database, open a day's rejects, re-ingest that day and see the run it started, and see
that a user without the right to trigger is refused. A screenshot of the view is kept under
``var/test-artifacts/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.view import seed
from tests.view.conftest import DAG_ID, ViewServer

CHROMIUM = "/usr/bin/chromium"
# No download of a browser: Debian's Chromium, with the flags this machine's closed network needs.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = ROOT / "var" / "test-artifacts" / "ingest-view.png"
RANGE = f"start={seed.FIRST}&end={seed.LAST}"


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def browser(playwright: Any, tmp_path: Path) -> Iterator[Any]:
    """A fresh Chromium profile of its own, closed after the test."""
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "chromium-profile"),
        executable_path=CHROMIUM,
        args=CHROMIUM_FLAGS,
        headless=True,
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(30_000)
    try:
        yield context
    finally:
        context.close()


def log_in(browser: Any, server: ViewServer, username: str) -> Any:
    """Open the view without a session, follow its link to Airflow's login page, sign in: back at the view."""
    page = browser.new_page()
    response = page.goto(f"{server.url}/event-ingest/?{RANGE}")
    assert response.status == 401
    page.get_by_role("link", name="Log in to Airflow").click()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(server.passwords[username])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(re.escape(f"{server.url}/event-ingest/")))
    page.wait_for_selector("svg.day-chart")
    return page


def chart_bars(page: Any) -> dict[tuple[str, str], int]:
    bars = page.eval_on_selector_all(
        "svg.day-chart rect.bar",
        "rects => rects.map(r => [r.dataset.series, r.dataset.day, r.dataset.value])",
    )
    return {(series, day): int(value) for series, day, value in bars}


def test_the_view_is_in_the_airflow_uis_navigation(browser: Any, view_server: ViewServer) -> None:
    page = log_in(browser, view_server, "viewer")
    page.goto(f"{view_server.url}/")
    # The home page also links the asset and the DAG, whose names contain "ingest": the sidebar's entry.
    page.get_by_test_id("nav-sidebar").get_by_role("link", name="Ingest", exact=True).click()
    page.wait_for_url(re.compile(r"/plugin/event-ingest$"))
    frame = page.frame_locator("iframe")
    frame.locator("svg.day-chart").wait_for()
    assert frame.locator("h1").inner_text() == "Event ingest"


def test_the_bars_are_the_databases_counts(browser: Any, view_server: ViewServer) -> None:
    page = log_in(browser, view_server, "viewer")
    expected = seed.expected_days(view_server.query, seed.FIRST, seed.LAST)
    assert chart_bars(page) == {(name, d["day"]): d[name] for d in expected for name in d if name != "day"}
    assert sum(d["sessions"] for d in expected) == len(view_server.manifest.sessions)


def test_clicking_a_day_lists_its_open_rejects_with_their_reasons(
    browser: Any, view_server: ViewServer
) -> None:
    page = log_in(browser, view_server, "viewer")
    page.locator(f'svg.day-chart a.day-link[data-day="{seed.FAULTY}"]').click()
    page.wait_for_url(re.compile(f"day={seed.FAULTY}"))
    rows = page.locator("table.rejects tbody tr")
    shown = [
        {"object_key": row.locator("td").nth(0).inner_text(), "reason": row.locator("td").nth(2).inner_text()}
        for row in rows.all()
    ]
    expected = seed.open_rejects(view_server.query, seed.FAULTY)
    assert shown == [{"object_key": r["object_key"], "reason": r["reason"]} for r in expected]
    assert page.locator("#day-heading").inner_text() == seed.FAULTY.isoformat()


def test_reingest_a_day_starts_a_run_for_that_day(
    browser: Any, view_server: ViewServer, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = view_server.stack
    page = log_in(browser, view_server, "admin")
    page.goto(f"{view_server.url}/event-ingest/?{RANGE}&day={seed.FAULTY}")
    page.get_by_role("button", name=f"Re-ingest {seed.FAULTY}").click()
    status = page.locator("output.reingest-status[data-run-id]")
    status.wait_for()
    run_id = status.get_attribute("data-run-id")

    run = stack.dag_run(DAG_ID, run_id)
    assert run["conf"] == {"start_date": seed.FAULTY.isoformat(), "end_date": seed.FAULTY.isoformat()}
    assert run["run_type"] == "manual"
    assert run["logical_date"] is None
    assert stack.wait_for_run(DAG_ID, run_id, timeout=600)["state"] == "success"
    page.locator('output.reingest-status[data-state="success"]').wait_for(timeout=60_000)

    page.reload()
    assert page.locator("table.runs").get_by_text(run_id).count() == 1
    (row,) = view_server.query(
        "SELECT first_day, last_day, state FROM ingest_runs WHERE dag_run_id = %s", (run_id,)
    )
    assert (row["first_day"], row["last_day"], row["state"]) == (seed.FAULTY, seed.FAULTY, "success")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    with capsys.disabled():
        print(f"\ningest view screenshot: {SCREENSHOT}")


def test_a_viewer_may_not_reingest(browser: Any, view_server: ViewServer) -> None:
    """The button acts with the user's own rights: Airflow refuses a viewer's trigger."""
    before = {r["dag_run_id"] for r in view_server.stack.dag_runs(DAG_ID)}
    page = log_in(browser, view_server, "viewer")
    page.goto(f"{view_server.url}/event-ingest/?{RANGE}&day={seed.BUSY}")
    page.get_by_role("button", name=f"Re-ingest {seed.BUSY}").click()
    page.locator('output.reingest-status[data-error="403"]').wait_for()
    assert "your account may not trigger event_ingest" in page.locator("output.reingest-status").inner_text()
    assert {r["dag_run_id"] for r in view_server.stack.dag_runs(DAG_ID)} == before
