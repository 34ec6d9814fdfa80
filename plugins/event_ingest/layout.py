"""The bucket layout (docs/contract.md §1) and its mirror on local disk (§3).

Every key the pipeline builds and every local path it writes comes from here, so the checks that keep
bad input inside the data directory live in one place.

Local names follow the keys, except where the file system cannot: a file or folder name longer than
:data:`NAME_MAX` bytes is stored as its first bytes, ``~`` and 16 hex digits of its SHA-256 (see
:func:`local_name`), and so is a name that already ends that way, so that no name in the bucket can
take the local name of another; ``local_path`` in the database records where each file went.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path

from event_ingest.errors import UnsafePathError
from event_ingest.model import AUDIO_TAG, DISPLAY_LOG
from event_ingest.safe_text import check_storable, excerpt

REPORT_SUFFIX = "_logged_Upload_Report.json"
AUDIO_TAGS_DIR = "AudioTags/"
DISPLAY_LOGS_DIR = "AV_logs/DisplayLogs/"

#: Longest session id the tables hold. A report's key holds its session id twice, so within S3's
#: 1,024 bytes a session with a report has at most 493 bytes of id: this limit is never the data's.
MAX_SESSION_ID = 512
#: Longest key the tables hold: S3's own limit.
MAX_KEY = 1024
#: Longest file name most Linux file systems take, in bytes.
NAME_MAX = 255
#: A name longer than NAME_MAX keeps this many bytes before its hash.
_KEPT_BYTES = 200
_DIGITS = re.compile(r"[0-9]+")
#: How a shortened local name ends.
_HASHED = re.compile(r"~[0-9a-f]{16}\Z")


def normalize_prefix(prefix: str | None) -> str:
    """Return the prefix as keys use it: empty, or ending with exactly one ``/``."""
    prefix = (prefix or "").strip()
    return prefix.rstrip("/") + "/" if prefix else ""


def day_folders(day: dt.date) -> tuple[str, str, str]:
    """The folder names of a day: ``YYYY``, ``MM``, ``DD``, the year in four digits whatever it is.

    (``strftime("%Y")`` writes the year 999 as ``999`` on Linux: the key ``0999/...`` would never match.)
    """
    return f"{day.year:04d}", f"{day.month:02d}", f"{day.day:02d}"


def day_prefix(prefix: str, day: dt.date) -> str:
    """Return the key prefix of one day's partition."""
    return f"{normalize_prefix(prefix)}{'/'.join(day_folders(day))}/"


def session_prefix(prefix: str, day: dt.date, session_id: str) -> str:
    return f"{day_prefix(prefix, day)}{session_id}/"


def split_session_key(prefix: str, key: str) -> tuple[dt.date, str, str] | None:
    """Return (day, session id, path inside the session folder) of a key.

    Keys outside the ``{prefix}YYYY/MM/DD/{session_id}/...`` shape (stray files, other prefixes,
    impossible dates) give ``None``: they are not sessions.
    """
    prefix = normalize_prefix(prefix)
    if not key.startswith(prefix):
        return None
    parts = key[len(prefix) :].split("/", 4)
    if len(parts) < 5 or not parts[3] or not parts[4]:
        return None
    year, month, day, session_id, relpath = parts
    if not (len(year) == 4 and len(month) == 2 and len(day) == 2):
        return None
    if not (_DIGITS.fullmatch(year) and _DIGITS.fullmatch(month) and _DIGITS.fullmatch(day)):
        return None
    try:
        date = dt.date(int(year), int(month), int(day))
    except ValueError:
        return None
    return date, session_id, relpath


def report_name(session_id: str) -> str:
    return f"{session_id}{REPORT_SUFFIX}"


def is_report(session_id: str, relpath: str) -> bool:
    return relpath == report_name(session_id)


def file_type(relpath: str) -> str | None:
    """What the listing takes a file for: an audio tag, a display log, or neither (raw data)."""
    if relpath.startswith(DISPLAY_LOGS_DIR):
        return DISPLAY_LOG if relpath.endswith(".log") else None
    if relpath.startswith(AUDIO_TAGS_DIR) or relpath.lower().endswith(".wav"):
        return AUDIO_TAG
    return None


def check_session_id(session_id: str) -> str:
    """Refuse folder names that cannot name a session row or a local folder.

    A listing never gives an empty id or one with ``/``; they are refused for callers that build ids.

    :raises UnsafePathError: empty, ``.``, ``..``, holding ``/``, or longer than :data:`MAX_SESSION_ID`.
    :raises UnstorableTextError: it holds U+0000.
    """
    if session_id in ("", ".", "..") or "/" in session_id:
        raise UnsafePathError(f"session id {session_id!r} cannot name a folder")
    if len(session_id) > MAX_SESSION_ID:
        raise UnsafePathError(f"session id is longer than {MAX_SESSION_ID} characters ({len(session_id)})")
    return check_storable(session_id, "session id")


def safe_relpath(relpath: object) -> str:
    """Return a report's file path if it stays inside its session folder.

    Refuses absolute paths and ``.``/``..``/empty segments rather than normalising them: a report
    that names such a path is wrong, and guessing what it meant could read or write the wrong file.

    :raises UnsafePathError: not a string, empty, or leaving the folder.
    :raises UnstorableTextError: it holds U+0000 or a lone surrogate.
    """
    if not isinstance(relpath, str) or not relpath:
        raise UnsafePathError(f"path {excerpt(repr(relpath), 80)} is not a non-empty string")
    if relpath.startswith("/") or any(part in ("", ".", "..") for part in relpath.split("/")):
        raise UnsafePathError(f"path {excerpt(relpath)!r} leaves the session folder")
    return check_storable(relpath, "path")


def local_name(name: str) -> str:
    """The local file or folder name for ``name``: itself, or shortened and hashed.

    Shortened when too long for the file system, and when it ends as a shortened name does: a name
    in the bucket could otherwise be the local name of another, longer one, and both files would be
    written to one path.
    """
    encoded = name.encode("utf-8")
    if len(encoded) <= NAME_MAX and not _HASHED.search(name):
        return name
    kept = encoded[:_KEPT_BYTES].decode("utf-8", errors="ignore")
    return f"{kept}~{hashlib.sha256(encoded).hexdigest()[:16]}"


def local_session_dir(data_dir: str | Path, day: dt.date, session_id: str) -> Path:
    return Path(data_dir).joinpath(*day_folders(day), local_name(check_session_id(session_id)))


def local_path(data_dir: str | Path, day: dt.date, session_id: str, relpath: str) -> Path:
    """Return where a session's file goes locally, proven to be inside ``data_dir``."""
    return local_paths(data_dir, day, session_id, [relpath])[0]


def local_paths(data_dir: str | Path, day: dt.date, session_id: str, relpaths: Sequence[str]) -> list[Path]:
    """:func:`local_path` for several files of one session.

    The same proof (the path with every symlink resolved lies inside ``data_dir`` resolved), but the
    data directory and the session folder are resolved once, not once per file: ``Path.resolve``
    costs an ``lstat`` per path segment.

    :raises UnsafePathError: a path leaves the folder, or a symlink takes it out of ``data_dir``.
    """
    base = local_session_dir(data_dir, day, session_id)
    root = os.path.realpath(data_dir)
    inside = root.rstrip("/") + "/"
    base_real = os.path.realpath(base)
    paths = []
    for relpath in relpaths:
        parts = [local_name(part) for part in safe_relpath(relpath).split("/")]
        real = _resolve_below(base_real, parts)
        if not (real == root or real.startswith(inside)):
            raise UnsafePathError(f"path {excerpt(relpath)!r} resolves outside the data directory")
        paths.append(base.joinpath(*parts))
    return paths


def _resolve_below(real_dir: str, parts: Sequence[str]) -> str:
    """``os.path.realpath(real_dir/parts...)`` for a ``real_dir`` without symlinks, one ``lstat`` a part.

    ``parts`` are plain names (:func:`safe_relpath`); the first missing one ends the walk (nothing
    below it can be a symlink), the first symlink hands the rest to ``os.path.realpath``.
    """
    current = real_dir
    for n, part in enumerate(parts):
        candidate = os.path.join(current, part)
        try:
            mode = os.lstat(candidate).st_mode
        except OSError:
            return os.path.join(current, *parts[n:])
        if stat.S_ISLNK(mode):
            return os.path.realpath(os.path.join(candidate, *parts[n + 1 :]))
        current = candidate
    return current
