"""Who is asking, on every request: Airflow mounts plugin apps without any authentication of its own.

The user is Airflow's: a JWT in an ``Authorization: Bearer`` header (API clients), else the
``_token`` cookie that the UI's login sets (the page, in the browser). A request without a token,
or with one that is invalid or expired, gets 401 and never data (Airflow's own check answers 403
for a malformed token; the contract says 401 for any token that does not authenticate). A user who
may not read the runs of the ``event_ingest`` DAG gets 403: what the view shows is what those runs
loaded.

Airflow's API modules are imported when the first request is checked, not when the plugin loads:
every Airflow process loads plugins, task processes included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser

#: The DAG whose runs the view shows, and which its button triggers.
DAG_ID = "event_ingest"

_bearer = HTTPBearer(auto_error=False, description="An Airflow API token (POST /auth/token).")


class NotAuthenticated(HTTPException):
    """No token, or one that does not authenticate: 401, with the challenge RFC 7235 asks for."""

    def __init__(self, detail: str) -> None:
        super().__init__(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


async def airflow_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> BaseUser:
    """The authenticated Airflow user who may read ``event_ingest``'s runs.

    :raises NotAuthenticated: no token, or one that Airflow's auth manager refuses.
    :raises HTTPException: 403 when the user may not read the DAG's runs.
    """
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from airflow.api_fastapi.core_api.security import get_user

    try:
        user = await get_user(request, None, credentials)
    except HTTPException as exc:
        if exc.status_code in (status.HTTP_401_UNAUTHORIZED, status.HTTP_403_FORBIDDEN):
            raise NotAuthenticated(str(exc.detail)) from None
        raise
    allowed = get_auth_manager().is_authorized_dag(
        method="GET", access_entity=DagAccessEntity.RUN, details=DagDetails(id=DAG_ID), user=user
    )
    if not allowed:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"{user.get_name()!r} may not read the runs of DAG {DAG_ID!r}"
        )
    return user
