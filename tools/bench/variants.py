"""Run one variant in this process and write what it measured: ``python -m tools.bench.variants CONFIG``.

The benchmark runs every variant in a process of its own (same imports, same empty caches, its own
peak memory). The config names the variant, the servers and the day; the result (wall time, the
variant's own counts, S3 requests by kind, SQL round trips, peak RSS) goes to ``config["result"]``.
Setting ``EVENT_INGEST_BENCH_PROFILE=/tmp/prof`` also writes ``/tmp/prof.{variant}.prof`` (cProfile,
main thread only).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tools.bench.measure import S3Requests, SqlRoundTrips, peak_rss_mb


def _run(name: str, config: dict[str, Any], s3: S3Requests, sql: SqlRoundTrips) -> dict[str, Any]:
    # Each variant imports only what it uses: the limits never import Airflow.
    if name == "pipeline":
        from tools.bench import pipeline

        return pipeline.run(config, s3, sql)
    if name in ("limit", "limit_files"):
        from tools.bench import limits

        return (limits.run_limit if name == "limit" else limits.run_limit_files)(config)
    from tools.bench import baselines

    plain: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
        "naive": baselines.run_naive,
        "floor": baselines.run_floor,
        "transfer_manager": baselines.run_transfer_manager,
    }
    return plain[name](config)


def _make_tables(config: dict[str, Any]) -> None:
    """The event database's tables, made by the package as its first task makes them."""
    from event_ingest.event_db import event_db_for

    db = event_db_for("event_ingest_db", config["data_dir"])
    db.connect()
    db.close()


def main(argv: list[str]) -> int:
    config = json.loads(Path(argv[0]).read_text())
    if config["variant"] == "make_tables":
        _make_tables(config)
        return 0
    if config.get("requests_file"):
        config["requests"] = json.loads(Path(config["requests_file"]).read_text())
    s3 = S3Requests()
    s3.install()
    counter = config["sql_counter"]
    sql = SqlRoundTrips(host=counter["host"], port=counter["port"])
    statements = sql.read()
    name = config["variant"]
    profile_to = os.environ.get("EVENT_INGEST_BENCH_PROFILE")
    if profile_to:
        import cProfile

        with cProfile.Profile() as profile:
            result = _run(name, config, s3, sql)
        profile.dump_stats(f"{profile_to}.{name}.prof")
    else:
        result = _run(name, config, s3, sql)
    result.update(
        s3=dict(s3.kinds),
        sql_round_trips=sql.read() - statements,
        peak_rss_mb=peak_rss_mb(),
    )
    sql.close()
    if config.get("requests_out"):
        Path(config["requests_out"]).write_text(json.dumps(s3.requests))
    Path(config["result"]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
