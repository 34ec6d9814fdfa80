"""Project files that are neither DAGs nor plugins: the demo data generator, SQL."""
