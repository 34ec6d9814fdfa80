"""Airflow's plugins folder loads the ingest view from this file (see event_ingest/view/plugin.py).

Where the package is installed, its ``airflow.plugins`` entry point registers the same plugin; this
file then defines nothing, so that Airflow does not report the plugin as registered twice.
"""

from importlib.metadata import entry_points

_ENTRY_POINT = "event_ingest.view.plugin:EventIngestViewPlugin"

if not any(ep.value == _ENTRY_POINT for ep in entry_points(group="airflow.plugins")):
    from event_ingest.view.plugin import EventIngestViewPlugin

    __all__ = ["EventIngestViewPlugin"]
