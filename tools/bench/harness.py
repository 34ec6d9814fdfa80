"""The benchmark's bench: its servers (and their far-away stand-ins), its days, its variant runs.

One :class:`Bench` starts SeaweedFS and a throwaway MariaDB on 127.0.0.1, optionally a delaying
proxy in front of each (:mod:`tools.bench.proxy`), fills the bucket, and runs each variant in a
process of its own (:mod:`tools.bench.variants`) from an empty database and data directory, after an
``os.sync()`` so that writing back the previous variant's files does not land in the next one's time.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from include import generator
from tools.bench.measure import SqlRoundTrips
from tools.services import HOST, MariaDbServer, SeaweedS3, free_port

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "bench-sessions"
#: The day under test; other days around it must never be read.
DAY = dt.date(2026, 11, 20)
#: The day of big raw files.
RAW_DAY = dt.date(2026, 10, 1)


@dataclass(frozen=True)
class Day:
    """A generated day: its keys, its expected sessions and events, its raw files' bytes."""

    day: dt.date
    sessions: int
    keys: int
    events: int
    raw_bytes: int


class Proxy:
    """A delaying TCP proxy (:mod:`tools.bench.proxy`) in its own process, in front of ``target_port``."""

    def __init__(self, target_port: int, delay_ms: float) -> None:
        self.port = free_port()
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tools.bench.proxy",
                f"--listen-port={self.port}",
                f"--target-port={target_port}",
                f"--delay-ms={delay_ms}",
            ],
            cwd=ROOT,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"the proxy to port {target_port} did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            self._process.wait()


class Bench:
    """Servers, proxies and a work directory; see the module docstring.

    :param s3_latency_ms: delay added to every S3 request (0: no proxy).
    :param db_latency_ms: delay added to every SQL round trip (0: no proxy).
    """

    def __init__(self, *, s3_latency_ms: float = 0.0, db_latency_ms: float = 0.0) -> None:
        self.s3_latency_ms = s3_latency_ms
        self.db_latency_ms = db_latency_ms
        self._stack = ExitStack()
        self.work = Path(tempfile.mkdtemp(prefix="event-ingest-bench-"))
        self._stack.callback(shutil.rmtree, self.work, ignore_errors=True)
        self.s3 = self._stack.enter_context(SeaweedS3())
        self.mariadb = self._stack.enter_context(MariaDbServer())
        self.s3_endpoint = self.s3.endpoint_url
        self.db_port = self.mariadb.port
        self._template: str | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def set_latency(self, *, s3_ms: float, db_ms: float) -> None:
        """Put proxies of these delays in front of the servers (0: talk to the server directly)."""
        self.s3_latency_ms, self.db_latency_ms = s3_ms, db_ms
        self.s3_endpoint, self.db_port = self.s3.endpoint_url, self.mariadb.port
        if s3_ms:
            proxy = Proxy(self.s3.s3_port, s3_ms)
            self._stack.callback(proxy.stop)
            self.s3_endpoint = f"http://{HOST}:{proxy.port}"
        if db_ms:
            proxy = Proxy(self.mariadb.port, db_ms)
            self._stack.callback(proxy.stop)
            self.db_port = proxy.port

    # -- the bucket -------------------------------------------------------------------------------

    def generate(
        self,
        day: dt.date,
        *,
        sessions: int,
        tags: int,
        tag_kib: int,
        raw_bytes: int | None = None,
        other_days: int = 0,
        other_sessions: int = 0,
        workers: int = 16,
    ) -> Day:
        """Fill the bucket with ``day`` (and ``other_days`` small days around it)."""
        client = self.s3.client(max_pool_connections=32)
        generator.ensure_bucket(client, BUCKET)
        started = time.perf_counter()
        manifest = generator.generate_bucket(
            client,
            BUCKET,
            days=[day],
            sessions_per_day=sessions,
            tags_per_session=tags,
            tag_bytes=tag_kib * 1024,
            raw_bytes=raw_bytes,
            workers=workers,
        )
        half = other_days // 2
        others = [day + dt.timedelta(days=d) for d in range(-half, other_days - half + 1) if d != 0]
        if others and other_sessions:
            generator.generate_bucket(
                client, BUCKET, days=others, sessions_per_day=other_sessions, tags_per_session=2, workers=16
            )
        keys = sum(
            page.get("KeyCount", 0)
            for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=BUCKET, Prefix=f"{day:%Y/%m/%d}/"
            )
        )
        events = sum(len(s.events) for s in manifest.sessions.values())
        print(
            f"generated {sessions} sessions ({keys} keys) on {day}"
            + (f" and {len(others)} other days" if others and other_sessions else "")
            + f" in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        return Day(day, sessions, keys, events, (raw_bytes or 0) * sessions)

    # -- the event databases ----------------------------------------------------------------------

    def database(self, name: str) -> str:
        """A new database ``name`` with the package's tables (copied from one the package made)."""
        if self._template is None:
            self._template = self.mariadb.create_database("bench_template")
            self._subprocess("make_tables", {"data_dir": str(self.work)}, database=self._template)
        self.mariadb.drop_database(name)
        self.mariadb.create_database(name)
        conn = self.mariadb.connect(name)
        try:
            cursor = conn.cursor()
            cursor.execute(f"SHOW TABLES FROM `{self._template}`")
            for (table,) in cursor.fetchall():
                cursor.execute(f"CREATE TABLE `{table}` LIKE `{self._template}`.`{table}`")
        finally:
            conn.close()
        return name

    def sql_statements(self) -> int:
        """Statements the MariaDB server has received so far (:class:`~tools.bench.measure.SqlRoundTrips`)."""
        counter = SqlRoundTrips(host=HOST, port=self.mariadb.port)
        try:
            return counter.read()
        finally:
            counter.close()

    def environment(self, database: str, airflow_home: Path) -> dict[str, str]:
        """A variant's (or Airflow's) environment: the connections through the proxies, if any."""
        conn = json.loads(self.s3.airflow_conn_json())
        conn["extra"]["endpoint_url"] = self.s3_endpoint
        return {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")]),
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "AIRFLOW_CONN_EVENT_INGEST_S3": json.dumps(conn),
            "AIRFLOW_CONN_EVENT_INGEST_DB": f"mysql://root@{HOST}:{self.db_port}/{database}",
        }

    # -- the variants -----------------------------------------------------------------------------

    def _subprocess(self, variant: str, config: dict[str, Any], *, database: str) -> Path:
        folder = self.work / variant
        (folder / "airflow").mkdir(parents=True, exist_ok=True)
        config = {
            "variant": variant,
            "bucket": BUCKET,
            "endpoint_url": self.s3_endpoint,
            "access_key": self.s3.access_key,
            "secret_key": self.s3.secret_key,
            "db": {"host": HOST, "port": self.db_port, "user": "root", "database": database},
            "sql_counter": {"host": HOST, "port": self.mariadb.port},
            "result": str(folder / "result.json"),
            **config,
        }
        config_path = folder / "config.json"
        config_path.write_text(json.dumps(config))
        log_path = folder / "log.txt"
        with log_path.open("wb") as log:
            code = subprocess.run(
                [sys.executable, "-m", "tools.bench.variants", str(config_path)],
                cwd=ROOT,
                env=self.environment(database, folder / "airflow"),
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
            ).returncode
        if code != 0:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
            raise SystemExit(f"variant {variant} failed with exit code {code}:\n{tail}")
        return Path(config["result"])

    def run_variant(self, variant: str, config: dict[str, Any]) -> tuple[dict[str, Any], Path]:
        """Run ``variant`` from an empty database and data directory; its result and its data directory."""
        database = self.database(f"bench_{variant}")
        data_dir = self.work / variant / "data"
        shutil.rmtree(data_dir, ignore_errors=True)
        data_dir.mkdir(parents=True)
        os.sync()
        print(f"running {variant} ...", flush=True)
        result_path = self._subprocess(variant, {"data_dir": str(data_dir), **config}, database=database)
        result = json.loads(result_path.read_text())
        result["database"] = database
        return result, data_dir

    def requests_file(self) -> Path:
        """Where the ``pipeline`` variant writes its GETs for the limits to replay."""
        return self.work / "pipeline.requests.json"
