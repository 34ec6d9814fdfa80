"""Tests of the event database backends, each run against a real MariaDB and a real SQLite file."""
