"""The bucket layout of contract §1 and its mirror on local disk (§3).

Every key the pipeline builds and every local path it writes comes from here,
so the checks that keep bad input inside the data directory live in one place.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path

REPORT_SUFFIX = "_logged_Upload_Report.json"
AUDIO_TAGS_DIR = "AudioTags/"
DISPLAY_LOGS_DIR = "AV_logs/DisplayLogs/"

#: Column widths of the event database; longer values are rejected, not cut.
MAX_SESSION_ID = 128
MAX_KEY = 640
_DIGITS = re.compile(r"[0-9]+")


class UnsafePathError(ValueError):
    """A path from a report that would leave its session folder."""


def normalize_prefix(prefix: str | None) -> str:
    """Return the prefix as keys use it: empty, or ending with exactly one ``/``."""
    prefix = (prefix or "").strip()
    return prefix.rstrip("/") + "/" if prefix else ""


def day_prefix(prefix: str, day: dt.date) -> str:
    """Return the key prefix of one day's partition."""
    return f"{normalize_prefix(prefix)}{day:%Y/%m/%d}/"


def split_session_key(prefix: str, key: str) -> tuple[dt.date, str, str] | None:
    """Return (day, session id, path inside the session folder) of a key.

    Keys outside the ``{prefix}YYYY/MM/DD/{session_id}/...`` shape (stray
    files, other prefixes, impossible dates) give ``None``: they are not
    sessions.
    """
    prefix = normalize_prefix(prefix)
    if not key.startswith(prefix):
        return None
    parts = key[len(prefix) :].split("/", 4)
    if len(parts) < 5 or not parts[3] or not parts[4]:
        return None
    year, month, day, session_id, relpath = parts
    if not (_DIGITS.fullmatch(year) and _DIGITS.fullmatch(month) and _DIGITS.fullmatch(day)):
        return None
    if not (len(year) == 4 and len(month) == 2 and len(day) == 2):
        return None
    try:
        date = dt.date(int(year), int(month), int(day))
    except ValueError:
        return None
    return date, session_id, relpath


def session_prefix(prefix: str, day: dt.date, session_id: str) -> str:
    return f"{day_prefix(prefix, day)}{session_id}/"


def is_report(session_id: str, relpath: str) -> bool:
    return relpath == f"{session_id}{REPORT_SUFFIX}"


def check_session_id(session_id: str) -> None:
    """Refuse ids that cannot name a folder or a database key safely."""
    if session_id in ("", ".", "..") or "/" in session_id or "\\" in session_id or "\x00" in session_id:
        raise UnsafePathError(f"session id {session_id!r} cannot name a folder")
    if len(session_id) > MAX_SESSION_ID:
        raise UnsafePathError(f"session id is longer than {MAX_SESSION_ID} characters")


def safe_relpath(relpath: object) -> str:
    """Return a report's file path if it stays inside its session folder.

    Refuses absolute paths, ``.``/``..``/empty segments and backslashes rather
    than normalising them: a report that names such a path is wrong, and
    guessing what it meant could read or write the wrong file.
    """
    if not isinstance(relpath, str) or not relpath:
        raise UnsafePathError(f"path {relpath!r} is not a non-empty string")
    if (
        relpath.startswith("/")
        or "\\" in relpath
        or "\x00" in relpath
        or any(part in ("", ".", "..") for part in relpath.split("/"))
    ):
        raise UnsafePathError(f"path {relpath[:200]!r} leaves the session folder")
    return relpath


def local_session_dir(data_dir: str | Path, day: dt.date, session_id: str) -> Path:
    check_session_id(session_id)
    return Path(data_dir) / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}" / session_id


def local_path(data_dir: str | Path, day: dt.date, session_id: str, relpath: str) -> Path:
    """Return where a session's file goes locally, proven to be inside ``data_dir``."""
    return local_paths(data_dir, day, session_id, [relpath])[0]


def local_paths(data_dir: str | Path, day: dt.date, session_id: str, relpaths: Sequence[str]) -> list[Path]:
    """:func:`local_path` for several files of one session.

    The same proof (the path with every symlink resolved lies inside ``data_dir``
    resolved), but the data directory and the session folder are resolved once,
    not once per file: ``Path.resolve`` costs an ``lstat`` per path segment.
    """
    base = local_session_dir(data_dir, day, session_id)
    root = os.path.realpath(data_dir)
    inside = root.rstrip("/") + "/"
    base_real = os.path.realpath(base)
    paths = []
    for relpath in relpaths:
        parts = safe_relpath(relpath).split("/")
        real = _resolve_below(base_real, parts)
        if not (real == root or real.startswith(inside)):
            raise UnsafePathError(f"path {relpath!r} resolves outside the data directory")
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
