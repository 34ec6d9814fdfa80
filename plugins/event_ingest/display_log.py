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

#: A record: its timestamp, and its frame id without leading zeros (a frame id has at most 19 digits).
_LINE = re.compile(r"^(\S+)\s+frame_id=0*([0-9]{1,19})(?:\s|$)")
#: A line longer than this cannot be a record: it is skipped without being held in memory.
MAX_LINE = 64 << 10


class NotUtf8Error(EventIngestError, ValueError):
    """A display log holds bytes that are not UTF-8."""


def iter_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Decode a stream of byte chunks into lines, strictly as UTF-8.

    Streaming keeps memory flat however long a log is: chunks are decoded :data:`MAX_LINE` bytes at
    a time, and a line longer than :data:`MAX_LINE` characters is dropped as it comes, whether it
    spans chunks or lies inside one. Strict decoding makes a corrupt log an error rather than a
    silent source of wrong times. A byte-order mark at the start is not part of the first line.

    :raises NotUtf8Error: naming the offset of the first byte that is not UTF-8 (the lines before
        it may have been yielded).
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    pending = ""  # the start of the current line, at most MAX_LINE characters
    dropping = False  # inside a line too long to be a record
    offset = 0  # bytes given to the decoder so far
    at_start = True  # nothing decoded yet: a byte-order mark may come
    for chunk in chunks:
        view = memoryview(chunk)
        for start in range(0, len(view), MAX_LINE):
            piece = view[start : start + MAX_LINE]
            text = _decode(decoder, piece, offset, final=False)
            offset += len(piece)
            if at_start and text:
                text, at_start = text.removeprefix("\ufeff"), False
            *complete, rest = text.split("\n")
            for line in complete:
                line, pending = pending + line, ""
                if dropping:
                    dropping = False  # the end of the long line
                elif len(line) <= MAX_LINE:
                    yield line
            if not dropping:
                pending += rest
                if len(pending) > MAX_LINE:
                    pending, dropping = "", True
    pending += _decode(decoder, b"", offset, final=True)
    if pending and not dropping and len(pending) <= MAX_LINE:
        yield pending


def _decode(
    decoder: codecs.IncrementalDecoder, piece: bytes | memoryview, offset: int, *, final: bool
) -> str:
    """Decode the next ``piece`` of a log, the first ``offset`` bytes given already.

    :raises NotUtf8Error: naming the offset in the log of the first byte that is not UTF-8.
    """
    held = len(decoder.getstate()[0])  # bytes of an unfinished character, from earlier pieces
    try:
        return decoder.decode(piece, final=final)
    except UnicodeDecodeError as exc:
        raise NotUtf8Error(f"display log is not UTF-8 (byte {offset - held + exc.start})") from None


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
