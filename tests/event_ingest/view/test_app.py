"""The view's app inside Airflow's API app: authentication, parameters, and answers from a real run."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.event_ingest.view.conftest import Seeded, token_for
from tests.view import seed
from tools.services import free_port

ROUTES = [
    "/event-ingest/",
    "/event-ingest/static/view.js",
    f"/event-ingest/api/days?start={seed.FIRST}&end={seed.LAST}",
    f"/event-ingest/api/rejects?day={seed.BUSY}",
    "/event-ingest/api/runs",
    "/event-ingest/api/deferred",
]
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


class Bars(HTMLParser):
    """The chart's bars, as the page's SVG gives them: (series, day) -> value."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[tuple[str, str], int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "rect" and "bar" in (found.get("class") or "").split():
            self.values[(found["data-series"], found["data-day"])] = int(found["data-value"] or "")


def bars_of(html: str) -> dict[tuple[str, str], int]:
    parser = Bars()
    parser.feed(html)
    return parser.values


class TestAuthentication:
    @pytest.mark.parametrize("path", ROUTES)
    def test_no_token_is_401_with_a_bearer_challenge_and_no_data(self, api: Any, path: str) -> None:
        response = api.get(path)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "sessions" not in response.text
        assert "2026-11" not in response.text

    @pytest.mark.parametrize(
        "authorization",
        [
            pytest.param("Bearer not-a-jwt", id="garbage"),
            pytest.param("Bearer " + "e30." * 2 + "sig", id="unsigned"),
            pytest.param("Basic YWRtaW46YWRtaW4=", id="basic-scheme"),
        ],
    )
    def test_a_token_that_does_not_authenticate_is_401(self, api: Any, authorization: str) -> None:
        response = api.get("/event-ingest/api/runs", headers={"Authorization": authorization})
        assert response.status_code == 401
        assert "detail" in response.json()

    def test_an_expired_token_is_401(self, api: Any) -> None:
        token = token_for("admin", expires_in=-3600)
        response = api.get("/event-ingest/api/runs", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.json() == {"detail": "Token Expired"}

    def test_a_user_who_may_not_read_the_dag_runs_is_403(self, api: Any) -> None:
        response = api.get("/event-ingest/api/runs", headers={"Authorization": f"Bearer {token_for(None)}"})
        assert response.status_code == 403
        assert "may not read the runs of DAG 'event_ingest'" in response.json()["detail"]

    def test_the_ui_login_cookie_authenticates(self, api: Any, seeded: Seeded) -> None:
        response = api.get("/event-ingest/api/runs", cookies={"_token": token_for("viewer")})
        assert response.status_code == 200
        assert [r["dag_run_id"] for r in response.json()] == [seeded.run.run_id]

    def test_a_browser_without_a_login_gets_a_page_that_links_to_airflows_login(self, api: Any) -> None:
        response = api.get("/event-ingest/?day=2026-11-02", headers={"Accept": "text/html"})
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("text/html")
        assert 'href="/auth/login?next=http%3A%2F%2Ftestserver%2Fevent-ingest%2F%3Fday%3D2026-11-02"' in (
            response.text
        )

    def test_no_route_is_left_unprotected(self, api: Any) -> None:
        """The app has no OpenAPI or docs routes (which would answer without a token)."""
        for path in ("/event-ingest/openapi.json", "/event-ingest/docs"):
            response = api.get(path)
            assert response.status_code in (401, 404), path
            assert "openapi" not in response.text


class TestParameters:
    @pytest.mark.parametrize(
        ("query", "message"),
        [
            pytest.param("days", "start is required", id="days-no-start"),
            pytest.param("days?start=2026-11-01", "end is required", id="days-no-end"),
            pytest.param(
                "days?start=2026-11-31&end=2026-12-01", "'2026-11-31' is not a valid day", id="no-such-day"
            ),
            pytest.param(
                "days?start=20261101&end=2026-11-02", "is not a day written YYYY-MM-DD", id="basic-form"
            ),
            pytest.param(
                "days?start=2026-11-05&end=2026-11-01", "end 2026-11-01 is before start", id="reversed"
            ),
            pytest.param(
                "days?start=2025-11-01&end=2026-11-02", "covers 367 days; the maximum is 366", id="too-long"
            ),
            pytest.param("rejects", "day is required", id="rejects-no-day"),
            pytest.param("rejects?day=yesterday", "is not a day written YYYY-MM-DD", id="rejects-bad-day"),
            pytest.param(
                "rejects?day=2026-11-02&limit=0", "limit must be from 1 to 10000", id="rejects-limit"
            ),
            pytest.param("runs?limit=501", "limit must be from 1 to 500, got 501", id="runs-too-many"),
            pytest.param("runs?limit=-1", "is not a whole number", id="runs-negative"),
            pytest.param("runs?limit=ten", "is not a whole number", id="runs-not-a-number"),
            pytest.param("deferred?limit=1.5", "is not a whole number", id="deferred-fraction"),
        ],
    )
    def test_a_bad_parameter_is_400_with_a_message(
        self, api: Any, admin: dict[str, str], query: str, message: str
    ) -> None:
        response = api.get(f"/event-ingest/api/{query}", headers=admin)
        assert response.status_code == 400
        assert message in response.json()["detail"]

    def test_the_longest_range_is_accepted(self, api: Any, admin: dict[str, str], seeded: Seeded) -> None:
        response = api.get("/event-ingest/api/days?start=2026-01-01&end=2027-01-01", headers=admin)
        assert response.status_code == 200
        assert len(response.json()) == 366

    def test_a_bad_page_parameter_is_a_400_page(self, api: Any, admin: dict[str, str]) -> None:
        response = api.get("/event-ingest/?day=2026-02-30", headers={**admin, "Accept": "text/html"})
        assert response.status_code == 400
        assert "&#x27;2026-02-30&#x27; is not a valid day" in response.text

    def test_an_unknown_api_path_is_a_json_404_not_the_ui(self, api: Any, admin: dict[str, str]) -> None:
        response = api.get("/event-ingest/api/sessions", headers=admin)
        assert response.status_code == 404
        assert response.json() == {"detail": "Not Found"}

    def test_the_api_is_read_only(self, api: Any, admin: dict[str, str]) -> None:
        response = api.post(f"/event-ingest/api/days?start={seed.FIRST}&end={seed.LAST}", headers=admin)
        assert response.status_code == 405
        assert response.json() == {"detail": "Method Not Allowed"}


class TestAnswers:
    def test_days_are_the_tables_counts_ascending_with_zeros(
        self, api: Any, admin: dict[str, str], seeded: Seeded
    ) -> None:
        response = api.get(f"/event-ingest/api/days?start={seed.FIRST}&end={seed.LAST}", headers=admin)
        assert response.status_code == 200
        days = response.json()
        assert days == seed.expected_days(seeded.query, seed.FIRST, seed.LAST)
        assert [d["day"] for d in days] == sorted(d["day"] for d in days)
        assert days[0] == {"day": "2026-11-01", "sessions": 0, "events": 0, "open_rejects": 0, "deferred": 0}
        by_day = {d["day"]: d for d in days}
        assert by_day[seed.BUSY.isoformat()]["deferred"] == 1
        assert by_day[seed.FAULTY.isoformat()]["open_rejects"] == 2
        assert sum(d["sessions"] for d in days) == len(seeded.manifest.sessions)

    @pytest.mark.parametrize("day", [seed.BUSY, seed.FAULTY, seed.EMPTY])
    def test_rejects_are_the_days_open_rejects_with_their_reasons(
        self, api: Any, admin: dict[str, str], seeded: Seeded, day: dt.date
    ) -> None:
        response = api.get(f"/event-ingest/api/rejects?day={day}", headers=admin)
        assert response.status_code == 200
        rejects = response.json()
        expected = seed.open_rejects(seeded.query, day)
        assert [{k: r[k] for k in ("object_key", "session_id", "reason")} for r in rejects] == expected
        wanted = {
            r.object_key for r in seeded.manifest.rejects if r.object_key.startswith(f"{day:%Y/%m/%d}/")
        }
        assert {r["object_key"] for r in rejects} == wanted
        for reject in rejects:
            assert set(reject) == {"object_key", "session_id", "reason", "first_seen_at", "last_seen_at"}
            assert ISO_TIME.fullmatch(reject["first_seen_at"])
            assert ISO_TIME.fullmatch(reject["last_seen_at"])
            assert reject["reason"]

    def test_runs_are_the_ledgers_rows(self, api: Any, admin: dict[str, str], seeded: Seeded) -> None:
        response = api.get("/event-ingest/api/runs?limit=5", headers=admin)
        assert response.status_code == 200
        (run,) = response.json()
        assert run["dag_run_id"] == seeded.run.run_id
        assert run["state"] == "success"
        assert (run["first_day"], run["last_day"]) == (seed.CONF["start_date"], seed.CONF["end_date"])
        assert ISO_TIME.fullmatch(run["started_at"])
        assert ISO_TIME.fullmatch(run["finished_at"])
        assert {name: run[name] for name in seeded.run.summary} == seeded.run.summary

    def test_deferred_are_the_sessions_whose_upload_is_not_complete(
        self, api: Any, admin: dict[str, str], seeded: Seeded
    ) -> None:
        response = api.get("/event-ingest/api/deferred", headers=admin)
        assert response.status_code == 200
        deferred = response.json()
        assert [d["session_id"] for d in deferred] == seeded.manifest.deferred
        assert deferred[0]["session_date"] == seed.BUSY.isoformat()

    def test_the_pages_bars_are_the_days_counts(
        self, api: Any, admin: dict[str, str], seeded: Seeded
    ) -> None:
        response = api.get(
            f"/event-ingest/?start={seed.FIRST}&end={seed.LAST}&day={seed.FAULTY}",
            headers={**admin, "Accept": "text/html"},
        )
        assert response.status_code == 200
        expected = seed.expected_days(seeded.query, seed.FIRST, seed.LAST)
        assert bars_of(response.text) == {
            (series, d["day"]): d[series] for d in expected for series in d if series != "day"
        }
        for reject in seed.open_rejects(seeded.query, seed.FAULTY):
            assert reject["reason"].replace("'", "&#x27;") in response.text
        assert f'data-day="{seed.FAULTY}"' in response.text
        assert "Re-ingest 2026-11-05" in response.text

    def test_the_page_opens_on_a_month_up_to_the_latest_runs_last_day(
        self, api: Any, admin: dict[str, str], seeded: Seeded
    ) -> None:
        response = api.get("/event-ingest/", headers={**admin, "Accept": "text/html"})
        assert response.status_code == 200
        days = sorted({day for _, day in bars_of(response.text)})
        assert (days[0], days[-1], len(days)) == ("2026-10-08", "2026-11-06", 30)


class TestDatabaseTrouble:
    def test_an_unreachable_database_is_503_without_its_address(
        self, api: Any, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        port = free_port()
        monkeypatch.setenv("AIRFLOW_CONN_EVENT_INGEST_DB", f"mysql://root:secret@127.0.0.1:{port}/events")
        response = api.get("/event-ingest/api/runs", headers=admin)
        assert response.status_code == 503
        assert response.json()["detail"].startswith("the event database is unavailable")
        assert str(port) not in response.text
        assert "secret" not in response.text

    def test_a_database_without_tables_is_503_and_the_view_makes_none(
        self, api: Any, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """No connection: the embedded SQLite file of the data directory, which no run has made yet."""
        monkeypatch.delenv("AIRFLOW_CONN_EVENT_INGEST_DB", raising=False)
        monkeypatch.setenv("AIRFLOW_VAR_EVENT_INGEST_DATA_DIR", str(tmp_path))
        response = api.get("/event-ingest/api/deferred", headers=admin)
        assert response.status_code == 503
        assert "event_ingest makes its tables on its first run" in response.json()["detail"]
        for path in tmp_path.glob("*.sqlite3"):
            with sqlite3.connect(path) as conn:
                assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []
