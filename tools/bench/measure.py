"""What the benchmark counts: S3 requests by kind, SQL round trips, peak memory.

S3 requests are counted where they leave a variant's process, through public hooks only: every boto3
call (botocore's built-in handlers, which each new botocore session registers, so the clients that
Airflow's hooks build are counted too), every obstore GET and every page of an obstore listing (its
module functions). SQL round trips
are counted by the database server itself (``Questions``: every statement a client sends, commits and
session settings included), so they are the same whoever sends them, a task process of Airflow's
included; the benchmark's MariaDB serves nothing else.
"""

from __future__ import annotations

import resource
import threading
from collections import Counter
from pathlib import Path
from typing import Any

#: boto3 operations by the kind of S3 request they make.
KINDS = {
    "ListObjectsV2": "LIST",
    "ListObjects": "LIST",
    "GetObject": "GET",
    "HeadObject": "HEAD",
    "HeadBucket": "HEAD",
    "PutObject": "PUT",
}


class S3Requests:
    """S3 requests of this process by kind, and its GETs (key, first byte, end), counted across threads."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()
        self.requests: list[tuple[str, int | None, int | None]] = []
        self._lock = threading.Lock()

    def count(
        self, kind: str, key: str | None = None, byte_range: tuple[int, int | None] | None = None
    ) -> None:
        with self._lock:
            self.kinds[kind] += 1
            if kind == "GET" and key is not None:
                self.requests.append((key, *(byte_range or (None, None))))

    def install(self) -> None:
        """Count every boto3 call and obstore GET that this process makes from now on."""
        import botocore.handlers
        import obstore

        def on_boto3_call(params: dict[str, Any], model: Any, **_: Any) -> None:
            byte_range = None
            if header := params.get("Range"):  # bytes=FIRST-LAST, or bytes=FIRST- to the end
                first, last = header.removeprefix("bytes=").split("-")
                byte_range = (int(first), int(last) + 1 if last else None)
            self.count(KINDS.get(model.name, model.name), params.get("Key"), byte_range)

        botocore.handlers.BUILTIN_HANDLERS.append(("provide-client-params.s3.*", on_boto3_call))
        for name in ("get", "get_async"):
            original = getattr(obstore, name)

            def counted(store: Any, path: str, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
                byte_range = (kwargs.get("options") or {}).get("range")
                self.count("GET", path, tuple(byte_range) if byte_range else None)
                return _original(store, path, *args, **kwargs)

            setattr(obstore, name, counted)
        original_list = obstore.list

        def counted_list(store: Any, *args: Any, **kwargs: Any) -> Any:
            return _CountedPages(original_list(store, *args, **kwargs), self)

        obstore.list = counted_list


class _CountedPages:
    """An obstore listing that counts each chunk it yields as one LIST request (chunks of 1,000 keys
    are S3's pages); everything else goes to the listing itself."""

    def __init__(self, stream: Any, requests: S3Requests) -> None:
        self._stream = stream
        self._requests = requests

    def __iter__(self) -> Any:
        for page in self._stream:
            self._requests.count("LIST")
            yield page

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class SqlRoundTrips:
    """Statements the MariaDB server received, read over a connection of its own (not through a proxy).

    Each reading is itself a statement: :meth:`read` takes that off, so differences of two readings
    count only what others sent in between.
    """

    def __init__(self, *, host: str, port: int, user: str = "root") -> None:
        import MySQLdb

        self._conn = MySQLdb.connect(host=host, port=port, user=user)
        self._lock = threading.Lock()
        self._readings = 0

    def read(self) -> int:
        with self._lock:
            cursor = self._conn.cursor()
            cursor.execute("SHOW GLOBAL STATUS LIKE 'Questions'")
            value = int(cursor.fetchone()[1])
            cursor.close()
            self._readings += 1
            return value - self._readings

    def close(self) -> None:
        self._conn.close()


def peak_rss_mb() -> float:
    """This process's peak resident set, from ``VmHWM`` (``ru_maxrss`` of a child counts its parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
