"""The view's JSON API on a real ``airflow api-server``: every endpoint, its authentication, its checks."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.view import seed
from tests.view.conftest import ViewServer

API = [
    f"/event-ingest/api/days?start={seed.FIRST}&end={seed.LAST}",
    f"/event-ingest/api/rejects?day={seed.BUSY}",
    "/event-ingest/api/runs",
    "/event-ingest/api/deferred",
]


@pytest.fixture(scope="module")
def token(view_server: ViewServer) -> str:
    return view_server.token("viewer")


class TestAuthentication:
    @pytest.mark.parametrize("path", [*API, "/event-ingest/", "/event-ingest/static/view.js"])
    def test_without_a_token_401_and_no_data(self, view_server: ViewServer, path: str) -> None:
        response = view_server.get(path)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert seed.BUSY.isoformat() not in response.text

    @pytest.mark.parametrize("path", API)
    def test_an_invalid_token_is_401(self, view_server: ViewServer, path: str) -> None:
        response = view_server.get(path, token="invalid." + "x" * 40)
        assert response.status_code == 401

    def test_the_ui_sessions_cookie_is_a_login(self, view_server: ViewServer, token: str) -> None:
        response = view_server.get("/event-ingest/api/deferred", cookies={"_token": token})
        assert response.status_code == 200
        assert [d["session_id"] for d in response.json()] == view_server.manifest.deferred


class TestEndpoints:
    def test_days_are_the_tables_counts(self, view_server: ViewServer, token: str) -> None:
        response = view_server.get(API[0], token=token)
        assert response.status_code == 200
        assert response.json() == seed.expected_days(view_server.query, seed.FIRST, seed.LAST)

    @pytest.mark.parametrize("day", [seed.BUSY, seed.FAULTY, seed.EMPTY])
    def test_rejects_are_the_days_open_rejects(
        self, view_server: ViewServer, token: str, day: dt.date
    ) -> None:
        response = view_server.get(f"/event-ingest/api/rejects?day={day}", token=token)
        assert response.status_code == 200
        rejects = [{k: r[k] for k in ("object_key", "session_id", "reason")} for r in response.json()]
        assert rejects == seed.open_rejects(view_server.query, day)
        assert len(rejects) == {seed.BUSY: 2, seed.FAULTY: 2, seed.EMPTY: 0}[day]

    def test_runs_hold_the_seeding_run_with_its_counts(self, view_server: ViewServer, token: str) -> None:
        response = view_server.get("/event-ingest/api/runs?limit=50", token=token)
        assert response.status_code == 200
        runs = {r["dag_run_id"]: r for r in response.json()}
        run = runs[view_server.seed_run_id]
        (row,) = view_server.query(
            "SELECT * FROM ingest_runs WHERE dag_run_id = %s", (view_server.seed_run_id,)
        )
        assert run["state"] == row["state"] == "success"
        for name in ("discovered", "loaded_sessions", "loaded_events", "skipped", "deferred", "rejected"):
            assert run[name] == row[name], name
        assert run["loaded_sessions"] == len(view_server.manifest.sessions)

    def test_runs_are_limited(self, view_server: ViewServer, token: str) -> None:
        response = view_server.get("/event-ingest/api/runs?limit=1", token=token)
        assert response.status_code == 200
        assert len(response.json()) == 1

    def test_deferred_are_the_incomplete_uploads(self, view_server: ViewServer, token: str) -> None:
        response = view_server.get("/event-ingest/api/deferred", token=token)
        assert response.status_code == 200
        assert [(d["session_id"], d["session_date"]) for d in response.json()] == [
            (session_id, seed.BUSY.isoformat()) for session_id in view_server.manifest.deferred
        ]

    @pytest.mark.parametrize(
        ("path", "message"),
        [
            pytest.param("days?start=2026-11-07&end=2026-11-01", "is before start", id="reversed"),
            pytest.param("days?start=2026-01-01&end=2027-01-02", "the maximum is 366", id="too-long"),
            pytest.param("days?start=2026-1-1&end=2026-01-02", "YYYY-MM-DD", id="malformed"),
            pytest.param("rejects?day=2026-02-29", "is not a valid day", id="no-such-day"),
            pytest.param("runs?limit=100000", "limit must be from 1 to 500", id="limit"),
        ],
    )
    def test_a_bad_parameter_is_400(
        self, view_server: ViewServer, token: str, path: str, message: str
    ) -> None:
        response = view_server.get(f"/event-ingest/api/{path}", token=token)
        assert response.status_code == 400
        assert message in response.json()["detail"]


class TestRouting:
    def test_an_unknown_view_path_is_the_views_json_404(self, view_server: ViewServer, token: str) -> None:
        response = view_server.get("/event-ingest/api/nothing", token=token)
        assert response.status_code == 404
        assert response.json() == {"detail": "Not Found"}

    def test_outside_the_view_the_uis_catch_all_answers_200(self, view_server: ViewServer) -> None:
        """Why the tests read the JSON: a path no route serves still gets the UI's index.html."""
        response = view_server.get("/event-ingest-nothing/api/days")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")

    def test_the_ui_gets_the_plugins_nav_entry(self, view_server: ViewServer, token: str) -> None:
        response = view_server.get("/api/v2/plugins", token=view_server.token("admin"))
        (plugin,) = [p for p in response.json()["plugins"] if p["name"] == "event_ingest_view"]
        (view,) = plugin["external_views"]
        assert (view["name"], view["href"], view["url_route"]) == ("Ingest", "/event-ingest/", "event-ingest")
        assert plugin["fastapi_apps"][0]["url_prefix"] == "/event-ingest"
