"""Atomic, verified writes into the data directory (docs/contract.md §3).

A file is written under a temporary name in its final folder and renamed only once its size and MD5
match, so the final path never holds a partial or corrupt file, whatever kills the worker. The
temporary name is short whatever the final one (``.~{16 hex digits of the name's hash}.{random}.part``),
so a name at the file system's limit still has room for it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from event_ingest.errors import VerificationError

_CHUNK = 1 << 20
#: A temporary file older than this was left by a killed worker.
STALE_PART_S = 3600


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def is_verified(path: Path, size: int, md5: str | None) -> bool:
    """Whether ``path`` already holds the expected file."""
    try:
        if path.stat().st_size != size:
            return False
    except (FileNotFoundError, NotADirectoryError):
        return False
    return md5 is None or md5_of(path) == md5


def temporary_prefix(name: str) -> str:
    """The start of every temporary name of final name ``name``: short, whatever the name's length."""
    return f".~{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}."


def prepare_folder(folder: Path, names: Iterable[str]) -> None:
    """Create ``folder`` and delete the stale temporary files of ``names`` in it, in one scan.

    A temporary file older than :data:`STALE_PART_S` was left by a killed worker.
    :func:`write_if_needed` does this for each file unless told the folder is ``prepared`` already.

    :raises OSError: the folder cannot be made (e.g. a file of the same name is in the way).
    """
    try:
        folder.mkdir(parents=True)
        return  # new: nothing to sweep
    except FileExistsError:
        if not folder.is_dir():
            raise
    stems = tuple(temporary_prefix(name) for name in names)
    cutoff = time.time() - STALE_PART_S
    with os.scandir(folder) as entries:
        for entry in entries:
            if not (entry.name.startswith(stems) and entry.name.endswith(".part")):
                continue
            try:
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
            except FileNotFoundError:
                continue


def write_if_needed(
    final: Path, chunks: Iterable[bytes], *, size: int, md5: str | None, prepared: bool = False
) -> bool:
    """Write ``final`` atomically unless it already holds the expected file; return whether it wrote.

    ``chunks`` is not read when the file is already there, so a lazy download is never started.

    :raises IsADirectoryError: a folder holds the final name (another file of the session lives in
        it); raised before any byte is fetched, naming only the final path, so a rerun says the same.
    """
    if not prepared:
        prepare_folder(final.parent, [final.name])
    if is_verified(final, size, md5):
        return False
    if final.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(final))
    write_atomically(final, chunks, size=size, md5=md5)
    return True


def write_atomically(final: Path, chunks: Iterable[bytes], *, size: int, md5: str | None) -> None:
    """Write ``chunks`` to ``final`` (whose folder exists) if they are ``size`` bytes with MD5 ``md5``.

    :raises VerificationError: the bytes differ; nothing is left behind.
    """
    part = final.with_name(f"{temporary_prefix(final.name)}{uuid.uuid4().hex[:12]}.part")
    digest = hashlib.md5(usedforsecurity=False)
    written = 0
    replaced = False
    try:
        with part.open("wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
                digest.update(chunk)
                written += len(chunk)
                if written > size:
                    raise VerificationError(f"size mismatch: expected {size} bytes, got more")
        if written != size:
            raise VerificationError(f"size mismatch: expected {size} bytes, downloaded {written}")
        if md5 is not None and digest.hexdigest() != md5:
            raise VerificationError(f"md5 mismatch: expected {md5}, downloaded {digest.hexdigest()}")
        os.replace(part, final)
        replaced = True
    finally:
        if not replaced:
            part.unlink(missing_ok=True)
