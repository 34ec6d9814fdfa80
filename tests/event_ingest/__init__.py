"""Tests of the event_ingest package, one file per module; the I/O ones against the real servers."""
