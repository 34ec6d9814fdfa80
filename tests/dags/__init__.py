"""Tests of the DAG files: integrity, and end-to-end runs of event_ingest."""
