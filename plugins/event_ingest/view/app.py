"""The FastAPI app that Airflow's API server mounts at ``/event-ingest``: the page, its files, the API.

Every route depends on :func:`~event_ingest.view.auth.airflow_user`, since Airflow does not
protect plugin apps; the app has no OpenAPI or docs routes, which would be the only ones without.
Errors get one shape: JSON ``{"detail": message}`` for the API, a short HTML page for a browser
(which is sent to Airflow's login page from a 401).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from functools import cache
from importlib import resources

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from event_ingest.view import api, page, params, reads
from event_ingest.view.auth import airflow_user

#: Where the plugin mounts the app on Airflow's API server.
URL_PREFIX = "/event-ingest"
#: The page's own files in ``static/``, with their media types.
STATIC_FILES = {
    "view.css": "text/css; charset=utf-8",
    "view.js": "text/javascript; charset=utf-8",
    "icon.svg": "image/svg+xml",
}
#: Rows of the page's tables: runs, deferred sessions, a day's open rejects.
PAGE_RUNS, PAGE_DEFERRED, PAGE_REJECTS = 20, 200, 1000

app = FastAPI(
    title="Event ingest view",
    description="What each day brought in, what was rejected and why, what is waiting.",
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
)
app.include_router(api.router)


@cache
def static_file(name: str) -> bytes:
    return resources.files("event_ingest.view").joinpath("static", name).read_bytes()


@cache
def static_version() -> str:
    """A key that changes when any of the page's files does, so browsers never keep a stale one."""
    digest = hashlib.sha256()
    for name in sorted(STATIC_FILES):
        digest.update(static_file(name))
    return digest.hexdigest()[:12]


@app.get("/", response_class=HTMLResponse, dependencies=[Depends(airflow_user)])
def view(
    request: Request, start: str | None = None, end: str | None = None, day: str | None = None
) -> HTMLResponse:
    """The page over ``start``..``end``; ``day`` selects the day whose open rejects it lists.

    A range with one end given spans :data:`~event_ingest.view.page.DEFAULT_DAYS` from it; with
    none, it ends on the latest run's last day.
    """
    selected = params.day("day", day) if day else None
    span = page.DEFAULT_DAYS - 1
    first = params.day("start", start) if start else None
    last = params.day("end", end) if end else None
    with reads.event_db() as db:
        runs = reads.latest_runs(db, PAGE_RUNS)
        if last is None:
            last = page.shifted(first, span) if first else page.default_end(runs, _today())
        first, last = params.checked_range(first or page.shifted(last, -span), last)
        days = reads.days(db, first, last)
        rejects = reads.open_rejects(db, selected, PAGE_REJECTS) if selected else None
        deferred = reads.deferred_sessions(db, PAGE_DEFERRED)
    body = page.render(
        first=first,
        last=last,
        days=days,
        selected=selected,
        rejects=rejects,
        runs=runs,
        deferred=deferred,
        airflow_root=airflow_root(request),
        static_version=static_version(),
    )
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


@app.get("/static/{name}", dependencies=[Depends(airflow_user)])
def static(name: str) -> Response:
    if name not in STATIC_FILES:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no file {name[:64]!r}")
    return Response(
        static_file(name),
        media_type=STATIC_FILES[name],
        headers={"Cache-Control": "private, max-age=86400"},
    )


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def airflow_root(request: Request) -> str:
    """The path Airflow's API server is served under (``""`` at the root): the mount less its prefix."""
    return str(request.scope.get("root_path", "")).removesuffix(URL_PREFIX)


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith(f"{airflow_root(request)}{URL_PREFIX}/api/") and (
        "text/html" in request.headers.get("accept", "")
    )


def _error(
    request: Request, code: int, title: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    if not _wants_html(request):
        return JSONResponse({"detail": message}, status_code=code, headers=headers)
    link = None
    if code == status.HTTP_401_UNAUTHORIZED:
        from airflow.api_fastapi.app import get_auth_manager

        link = (get_auth_manager().get_url_login(next_url=str(request.url)), "Log in to Airflow")
    return HTMLResponse(page.message_page(title, message, link=link), status_code=code, headers=headers)


@app.exception_handler(params.BadParameter)
async def _bad_parameter(request: Request, exc: params.BadParameter) -> Response:
    return _error(request, status.HTTP_400_BAD_REQUEST, "Bad request", str(exc))


@app.exception_handler(reads.DatabaseUnavailable)
async def _database_unavailable(request: Request, exc: reads.DatabaseUnavailable) -> Response:
    return _error(request, status.HTTP_503_SERVICE_UNAVAILABLE, "Event database unavailable", str(exc))


@app.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    titles = {401: "Not logged in", 403: "Not allowed", 404: "Not found"}
    return _error(
        request, exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail), exc.headers
    )
