"""`make bench`: the pipeline against the best boto3 program, the old job's way and the server's limit.

Scenarios on loopback, behind far-away proxies, with big raw files, and through Airflow itself
(``airflow dags test``, a scheduler with LocalExecutor). Run ``python -m tools.bench --help``; see
docs/performance.md for the numbers and how to read them.
"""
