"""Unit tests of the event_ingest package: pure modules, no S3, no database, no Airflow run."""
