"""`make bench`: the pipeline's throughput against a naive baseline, a boto3 floor and the server's limit.

Run ``python -m tools.bench --help``. See docs/performance.md for the numbers and how to read them.
"""
