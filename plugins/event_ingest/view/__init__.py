"""The ingest view: what was ingested, day by day, inside the Airflow UI.

An Airflow plugin (:mod:`event_ingest.view.plugin`) mounts :data:`event_ingest.view.app.app` on
Airflow's own API server under ``/event-ingest`` and links its page from the UI's navigation:

- :mod:`~event_ingest.view.params`: the query parameters, checked (a bad one is a 400);
- :mod:`~event_ingest.view.auth`: Airflow's authentication and authorization, on every request
  (Airflow does not protect plugin apps itself);
- :mod:`~event_ingest.view.reads`: the event database's read methods, as JSON-ready records;
- :mod:`~event_ingest.view.api`: the read-only JSON API (docs/contract.md §4);
- :mod:`~event_ingest.view.chart` and :mod:`~event_ingest.view.page`: the page, its per-day bars
  drawn on the server as SVG, so that it needs no script library and no network;
- ``static/``: the page's style sheet and the script of its "re-ingest this day" button.
"""
