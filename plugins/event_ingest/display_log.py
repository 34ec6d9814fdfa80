"""Frame id -> timestamp lookup in display logs (docs/contract.md §1, "Display logs").

Lines look like ``2026-11-20T10:21:07.500Z frame_id=183022 overlay=speed``.
Lines that do not match are skipped and the first line of a frame id wins.
Not every frame is logged, so a lookup may find nothing; callers then load the
event with ``time_source = 'unresolved'``.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator

from event_ingest.errors import EventIngestError
from event_ingest.timestamps import normalize

_LINE = re.compile(r"^(\S+)\s+frame_id=([0-9]{1,19})(?:\s|$)")
#: A line longer than this cannot be a record: it is skipped without being held in memory.
MAX_LINE = 64 << 10


class NotUtf8Error(EventIngestError, ValueError):
    """A display log holds bytes that are not UTF-8."""


def iter_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Decode a stream of byte chunks into lines, strictly as UTF-8.

    Streaming keeps memory flat however long a log is (a line over
    :data:`MAX_LINE` characters is dropped as it comes); strict decoding makes
    a corrupt log an error rather than a silent source of wrong times.
    """
    decoder = codecs.getincrementaldecoder("utf-8-sig")()  # a byte-order mark is no part of a line
    pending = ""
    offset = 0
    dropping = False  # inside a line too long to be a record
    for chunk in chunks:
        buffered = len(decoder.getstate()[0])
        try:
            pending += decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            raise NotUtf8Error(f"display log is not UTF-8 (byte {offset - buffered + exc.start})") from None
        offset += len(chunk)
        *lines, pending = pending.split("\n")
        if lines and dropping:
            lines, dropping = lines[1:], False
        yield from (line for line in lines if len(line) <= MAX_LINE)
        if len(pending) > MAX_LINE:
            pending, dropping = "", True
    try:
        pending += decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise NotUtf8Error(f"display log is not UTF-8 (truncated sequence at byte {offset})") from None
    if pending and not dropping and len(pending) <= MAX_LINE:
        yield pending


def find_frames(lines: Iterable[str], wanted: set[int], found: dict[int, str]) -> None:
    """Record into ``found`` the time of each wanted frame not found yet.

    Stops reading as soon as every wanted frame has a time. ``found`` is shared
    across a session's logs (read in key order) so the first line wins overall.
    """
    missing = wanted - found.keys()
    if not missing:
        return
    for line in lines:
        match = _LINE.match(line)
        if not match:
            continue
        frame_id = int(match.group(2))
        if frame_id not in missing:
            continue
        try:
            found[frame_id] = normalize(match.group(1))
        except ValueError:
            continue
        missing.discard(frame_id)
        if not missing:
            return
