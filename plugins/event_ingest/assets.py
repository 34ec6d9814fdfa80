"""The asset downstream DAGs schedule on: the events the ingest DAGs loaded.

A run that loaded something emits an asset event on :data:`EVENTS_ASSET` whose extra holds the
run's ``dag_id``, ``dag_run_id``, ``first_day``, ``last_day``, ``days`` and counts
(``discovered``, ``loaded_sessions``, ``loaded_events``, ``skipped``, ``deferred``, ``rejected``).
A downstream DAG::

    from airflow.sdk import DAG, Asset

    with DAG("uses_events", schedule=[Asset(name="event_ingest_events", uri="event-ingest://events")]):
        ...  # read context["triggering_asset_events"]
"""

from __future__ import annotations

from airflow.sdk import Asset

#: Airflow stores the URI normalised, with a trailing slash: ``event-ingest://events/``.
EVENTS_ASSET = Asset(name="event_ingest_events", uri="event-ingest://events")
