"""What the server allows: the pipeline's own GETs replayed at high concurrency, nothing else done.

- ``limit``: every GET the pipeline made (same keys, same byte ranges), through obstore's async API
  with :data:`IN_FLIGHT` requests in flight, bodies discarded.
- ``limit_files``: the same GETs, and each object written to a file (a temporary name in its final
  folder, renamed once complete), the pipeline's file work without its checks: the limit for the
  same work.

The GETs come from the ``pipeline`` variant's run of the same day (``config["requests_file"]``).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

#: GETs in flight (obstore's own measured sweet spot on this machine is 64 and up).
IN_FLIGHT = 64
#: Threads that create, write and rename files: file creation waits on the disk.
FILE_THREADS = 16


def _store(config: dict[str, Any]) -> Any:
    from obstore.store import S3Store

    return S3Store(
        config["bucket"],
        endpoint=config["endpoint_url"],
        region="us-east-1",
        access_key_id=config["access_key"],
        secret_access_key=config["secret_key"],
        virtual_hosted_style_request=False,
        client_options={"allow_http": True, "pool_max_idle_per_host": str(IN_FLIGHT)},
    )


def _by_object(requests: list[list[Any]]) -> dict[str, list[tuple[int, int] | None]]:
    """The requests grouped by key, each a byte range or ``None`` for the whole object."""
    objects: dict[str, list[tuple[int, int] | None]] = {}
    for key, start, end in requests:
        objects.setdefault(key, []).append(None if start is None else (start, end))
    return objects


class _Files:
    """Writes objects into ``data_dir``: one temporary file per object, parts at their offsets."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._folders: set[Path] = set()

    def open(self, key: str) -> tuple[Path, Path, int]:
        final = self.data_dir / key
        if final.parent not in self._folders:
            final.parent.mkdir(parents=True, exist_ok=True)
            self._folders.add(final.parent)
        part = final.with_name(f".{final.name}.{uuid.uuid4().hex[:12]}.part")
        return final, part, os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)

    @staticmethod
    def write(fd: int, body: memoryview, offset: int) -> None:
        os.pwrite(fd, body, offset)

    @staticmethod
    def close(final: Path, part: Path, fd: int) -> None:
        os.close(fd)
        os.replace(part, final)


async def _replay(config: dict[str, Any], *, write: bool) -> int:
    import obstore

    store = _store(config)
    objects = _by_object(config["requests"])
    files = _Files(Path(config["data_dir"]))
    gate, open_files = asyncio.Semaphore(IN_FLIGHT), asyncio.Semaphore(IN_FLIGHT)
    loop = asyncio.get_running_loop()
    disk = ThreadPoolExecutor(max_workers=FILE_THREADS)

    def on_disk(func: Callable[..., Any], *args: Any) -> Any:
        return loop.run_in_executor(disk, func, *args)

    async def one(key: str, ranges: list[tuple[int, int] | None]) -> int:
        async with open_files:
            return await fetch(key, ranges)

    async def fetch(key: str, ranges: list[tuple[int, int] | None]) -> int:
        target = await on_disk(files.open, key) if write else None

        async def part(byte_range: tuple[int, int] | None) -> int:
            async with gate:
                result = await obstore.get_async(
                    store, key, options={"range": byte_range} if byte_range else None
                )
                body = memoryview(await result.bytes_async())
            if target is not None:
                await on_disk(files.write, target[2], body, byte_range[0] if byte_range else 0)
            return len(body)

        size = sum(await asyncio.gather(*(part(r) for r in ranges)))
        if target is not None:
            await on_disk(files.close, *target)
        return size

    try:
        return sum(await asyncio.gather(*(one(key, ranges) for key, ranges in objects.items())))
    finally:
        disk.shutdown()


def run_limit(config: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    size = asyncio.run(_replay(config, write=False))
    return {"wall_s": time.perf_counter() - started, "bytes": size}


def run_limit_files(config: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    size = asyncio.run(_replay(config, write=True))
    return {"wall_s": time.perf_counter() - started, "bytes": size}
