"""The event-ingest test suite: DAG integrity, units, end-to-end runs on real services."""
