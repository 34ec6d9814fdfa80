"""The Airflow plugin of the ingest view: its FastAPI app on the API server, its entry in the UI's nav.

Airflow finds it two ways: ``plugins/event_ingest_view.py`` in the plugins folder (a native
deployment; ``plugins/.airflowignore`` keeps the rest of the folder from being imported as plugin
modules), or the ``airflow.plugins`` entry point ``event_ingest_view`` when the package is installed
(the image). Either way it is this one class.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from event_ingest.view.app import URL_PREFIX, app


class EventIngestViewPlugin(AirflowPlugin):
    """The page ``/event-ingest/``, shown inside the Airflow UI from its navigation, and the JSON API.

    The external view's ``url_route`` makes the UI show the page in its own frame at
    ``/plugin/event-ingest``; the app authenticates each request itself.
    """

    name = "event_ingest_view"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "Event ingest"}]
    external_views = [
        {
            "name": "Ingest",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "url_route": "event-ingest",
            "nav_top_level": True,
            "icon": f"{URL_PREFIX}/static/icon.svg",
        }
    ]
