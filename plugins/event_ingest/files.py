"""Atomic, verified writes into the data directory (contract §3).

A file is written under a temporary name in its final folder and renamed only
once its size and MD5 match, so the final path never holds a partial or
corrupt file, whatever kills the worker.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

_CHUNK = 1 << 16
#: A temporary file older than this was left by a killed worker.
STALE_PART_S = 3600


class VerificationError(ValueError):
    """The bytes are not what the report and the listing say they are."""


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
    except FileNotFoundError:
        return False
    return md5 is None or md5_of(path) == md5


def prepare_folder(folder: Path, names: Iterable[str]) -> None:
    """Create ``folder`` and delete the stale temporary files of ``names`` in it, in one scan.

    Temporary files are ``.{name}.{random}.part``; one older than
    :data:`STALE_PART_S` was left by a killed worker. :func:`write_if_needed`
    does this for each file unless told the folder is ``prepared`` already.
    """
    try:
        folder.mkdir(parents=True)
        return  # new: nothing to sweep
    except FileExistsError:
        pass
    wanted = set(names)
    cutoff = time.time() - STALE_PART_S
    with os.scandir(folder) as entries:
        for entry in entries:
            name = entry.name
            if not (name.startswith(".") and name.endswith(".part")) or not _names_a_part_of(
                name[1:-5], wanted
            ):
                continue
            try:
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
            except FileNotFoundError:
                continue


def _names_a_part_of(middle: str, names: set[str]) -> bool:
    """Whether ``middle`` is ``{name}.{anything}`` for one of ``names``."""
    dot = middle.find(".")
    while dot != -1:
        if middle[:dot] in names:
            return True
        dot = middle.find(".", dot + 1)
    return False


def write_if_needed(
    final: Path, chunks: Iterable[bytes], *, size: int, md5: str | None, prepared: bool = False
) -> bool:
    """Write ``final`` atomically unless it already holds the expected file; return whether it wrote.

    ``chunks`` is not read when the file is already there, so a lazy download
    is never started.
    """
    if is_verified(final, size, md5):
        if not prepared:
            prepare_folder(final.parent, [final.name])
        return False
    write_atomically(final, chunks, size=size, md5=md5, prepared=prepared)
    return True


def write_atomically(
    final: Path, chunks: Iterable[bytes], *, size: int, md5: str | None, prepared: bool = False
) -> None:
    """Write ``chunks`` to ``final`` if they are ``size`` bytes with MD5 ``md5``.

    :param prepared: :func:`prepare_folder` has made the folder and swept it already.
    :raises VerificationError: the bytes differ; nothing is left behind.
    """
    if not prepared:
        prepare_folder(final.parent, [final.name])
    part = final.with_name(f".{final.name}.{uuid.uuid4().hex[:12]}.part")
    digest = hashlib.md5(usedforsecurity=False)
    written = 0
    replaced = False
    try:
        with part.open("wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
                digest.update(chunk)
                written += len(chunk)
        if written != size:
            raise VerificationError(f"size mismatch: expected {size} bytes, downloaded {written}")
        if md5 is not None and digest.hexdigest() != md5:
            raise VerificationError(f"md5 mismatch: expected {md5}, downloaded {digest.hexdigest()}")
        os.replace(part, final)
        replaced = True
    finally:
        if not replaced:
            part.unlink(missing_ok=True)
