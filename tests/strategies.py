"""Hypothesis strategies for what the bucket can hold, shared by the property-based and end-to-end tests.

docs/contract.md §1: anything the bucket can hold is input. These strategies draw it: any text
(lone surrogates and control characters included), any JSON value in any field of a report (numbers
beyond a float or Python's integer-string limit, nesting beyond the decoder's recursion limit, as raw
JSON text no Python value encodes), any S3 key up to 1,024 bytes of UTF-8 (odd segments included),
any display-log bytes, names at the file system's limits, and whole session folders (key -> bytes)
whose report mostly agrees with the folder, so that draws get past the first check and reach the
later ones.

Each strategy leans towards the edges (limits, the characters that broke something once) without
leaving out the plain cases: a property must hold for good input too.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from event_ingest import layout
from event_ingest.display_log import MAX_LINE
from event_ingest.model import AUDIO_TAG, DISPLAY_LOG, RAW

#: S3's longest key, in bytes of UTF-8.
MAX_KEY_BYTES = layout.MAX_KEY
#: The longest file name Linux file systems take, in bytes.
NAME_MAX = layout.NAME_MAX

#: Characters that break something somewhere: NUL and other controls, line and paragraph
#: separators, bidi overrides, zero-width and byte-order marks, noncharacters, lone surrogates,
#: case-folding and normalisation traps, astral characters, and the separators of paths and URLs.
TRICKY_CHARS = (
    *"\x00\x01\x08\t\n\x0b\x0c\r\x1b\x1f\x7f\x80\x85\x9f\xa0\xad",
    *"\u061c\u200b\u200d\u200e\u200f\u2028\u2029\u202a\u202e\u2066\u2069\u2060\ufeff\ufffd\ufffe\uffff",
    *"\ud800\udbff\udc00\udfff",
    *"éßİıﬁ€中한ǅ\u0301\U0001f600\U0010ffff",
    *"/\\.~%+*?&#<>\"' :;=@",
)
_SURROGATES = frozenset(chr(c) for c in range(0xD800, 0xE000))


@functools.cache
def characters(*, surrogates: bool = True, exclude: str = "") -> st.SearchStrategy[str]:
    """Any one character (lone surrogates too, unless told not), often one of :data:`TRICKY_CHARS`."""
    tricky = [c for c in TRICKY_CHARS if c not in exclude and (surrogates or c not in _SURROGATES)]
    return st.one_of(
        st.sampled_from(tricky),
        st.characters(exclude_categories=() if surrogates else ("Cs",), exclude_characters=exclude),
    )


@functools.cache
def texts(
    *, min_size: int = 0, max_size: int = 40, surrogates: bool = True, exclude: str = ""
) -> st.SearchStrategy[str]:
    """Any string: control characters, lone surrogates (unless told not), anything Unicode holds."""
    return st.text(characters(surrogates=surrogates, exclude=exclude), min_size=min_size, max_size=max_size)


@functools.cache
def _indexes(count: int) -> st.SearchStrategy[int]:
    return st.integers(0, count - 1)


def pick(draw: st.DrawFn, options: Sequence[Any]) -> Any:
    """One of ``options``, drawn (like ``draw(st.sampled_from(options))``, without a new strategy)."""
    return options[draw(_indexes(len(options)))]


def truncate_utf8(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8, at a character boundary."""
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


# -- JSON -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """JSON text put into a document as it is: what no Python value serialises to.

    (Not a ``str`` subclass: Hypothesis's shrinker takes those for strings it drew, and fails.)
    """

    text: str

    def __repr__(self) -> str:
        shown = (
            self.text
            if len(self.text) <= 40
            else f"{self.text[:20]}...{self.text[-10:]} ({len(self.text)} chars)"
        )
        return f"Raw({shown!r})"


def to_json(value: Any, *, ensure_ascii: bool = True) -> str:
    """Serialise ``value``, :class:`Raw` fragments verbatim.

    With ``ensure_ascii`` (the default) lone surrogates become ``\\udXXX`` escapes: valid JSON that
    decodes to strings no UTF-8 holds. Without, they stay literal, for the encoder to choke on.
    """
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        items = (
            f"{to_json(str(k), ensure_ascii=ensure_ascii)}:{to_json(v, ensure_ascii=ensure_ascii)}"
            for k, v in value.items()
        )
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(to_json(v, ensure_ascii=ensure_ascii) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ensure_ascii)


@functools.cache
def deep_nesting(max_depth: int = 3000) -> st.SearchStrategy[Raw]:
    """Arrays or objects nested up to ``max_depth`` deep: around and beyond the decoder's limit."""
    depth = st.one_of(st.integers(1, max_depth), st.integers(900, 1100))
    return st.one_of(
        depth.map(lambda d: Raw("[" * d + "]" * d)),
        depth.map(lambda d: Raw('{"a":' * d + "1" + "}" * d)),
        depth.map(lambda d: Raw("[" * d + '"x"' + "]" * d)),
    )


#: Numbers a float cannot hold, constants Python's decoder accepts, odd spellings.
_ODD_NUMBERS = (
    "1e400",
    "-1e400",
    "1e-400",
    "1E308",
    "2e308",
    "-0",
    "-0.0",
    "0e0",
    "1.0",
    "1E5",
    "NaN",
    "Infinity",
    "-Infinity",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "1" + "0" * 400 + ".5",
)


@functools.cache
def huge_numbers() -> st.SearchStrategy[Raw]:
    """Integers around Python's integer-string limit (4,300 digits), floats beyond a double."""
    digits = st.one_of(st.integers(4290, 4310), st.integers(20, 6000))
    return st.one_of(
        st.sampled_from(_ODD_NUMBERS).map(Raw),
        digits.map(lambda n: Raw("9" * n)),
        digits.map(lambda n: Raw("-1" + "0" * n)),
        st.integers(300, 5000).map(lambda n: Raw(f"1e{n}")),
        st.integers(300, 5000).map(lambda n: Raw("0." + "0" * n + "1")),
    )


@functools.cache
def json_scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(),
        texts(),
        huge_numbers(),
    )


@functools.cache
def json_values(*, max_leaves: int = 8) -> st.SearchStrategy[Any]:
    """Any JSON value: scalars of any size, any string, containers, deep nesting as raw text."""
    nested = st.recursive(
        json_scalars(),
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(texts(max_size=8), children, max_size=4)
        ),
        max_leaves=max_leaves,
    )
    return st.one_of(nested, nested, nested, deep_nesting())  # one in four nested deep


# -- times ------------------------------------------------------------------------------------------

_FIRST_DAY = dt.datetime(1, 1, 1)
#: Days (since 0001-01-01) at the edges of the years a database holds: 1000 and 9999.
_EDGE_DAYS = tuple(
    (dt.datetime(*ymd) - _FIRST_DAY).days
    for ymd in ((999, 12, 31), (1000, 1, 1), (9999, 12, 31), (1970, 1, 1))
)


@functools.cache
def iso_timestamps() -> st.SearchStrategy[str]:
    """ISO-8601 timestamps as writers spell them: any precision, ``Z``, offsets, none, any year."""

    def spell(days: int, micros: int, offset: int | None, timespec: str, zulu: bool) -> str:
        moment = _FIRST_DAY + dt.timedelta(days=days, microseconds=micros)
        if offset is not None:
            moment = moment.replace(tzinfo=dt.timezone(dt.timedelta(minutes=offset)))
        text = moment.isoformat(timespec=timespec)
        return text.replace("+00:00", "Z") if zulu else text

    return st.builds(
        spell,
        st.integers(0, (dt.datetime(9999, 12, 31) - _FIRST_DAY).days) | st.sampled_from(_EDGE_DAYS),
        st.integers(0, 86_400_000_000 - 1) | st.sampled_from([0, 86_399_999_999, 86_399_999_500]),
        st.none() | st.sampled_from([0, 60, -60, 1439, -1439]) | st.integers(-1439, 1439),
        st.sampled_from(["auto", "seconds", "milliseconds", "microseconds", "minutes", "hours"]),
        st.booleans(),
    )


@functools.cache
def timestamps_or_junk() -> st.SearchStrategy[Any]:
    """What a report's time fields hold: mostly timestamps, sometimes anything at all."""
    return st.one_of(iso_timestamps(), iso_timestamps(), st.none(), json_values(max_leaves=3))


# -- keys and names ---------------------------------------------------------------------------------


@functools.cache
def fs_names(*, min_bytes: int = 240, max_bytes: int = 300) -> st.SearchStrategy[str]:
    """File names of ``min_bytes`` to ``max_bytes`` bytes of UTF-8 (by default around the file
    system's 255-byte limit), multi-byte characters up to the edge."""

    edges = [n for n in (NAME_MAX - 1, NAME_MAX, NAME_MAX + 1) if min_bytes <= n <= max_bytes]
    targets = st.integers(min_bytes, max_bytes)
    if edges:
        targets = st.sampled_from(edges) | targets
    units = st.lists(
        st.sampled_from(["a", "é", "€", "\U0001f600"]) | characters(surrogates=False, exclude="/\x00"),
        min_size=1,
        max_size=6,
    )

    @st.composite
    def build(draw: st.DrawFn) -> str:
        target, chars = draw(targets), draw(units)
        name, size = "", 0
        for char in itertools.cycle(chars):  # as long as the characters fit, then ASCII to the byte
            width = len(char.encode("utf-8"))
            if size + width > target:
                break
            name, size = name + char, size + width
        name += "a" * (target - size)
        return name if name not in (".", "..") else "a" * target

    return build()


@functools.cache
def segments(*, surrogates: bool = False, odd: bool = True, max_size: int = 24) -> st.SearchStrategy[str]:
    """One segment of a key: any name, at the file system's limit, or (``odd``) empty, ``.``, ``..``."""
    plain = texts(min_size=1, max_size=max_size, surrogates=surrogates, exclude="/")
    if not odd:
        plain = plain.filter(lambda s: s not in (".", ".."))
    choices = [plain, plain, fs_names()]
    if odd:
        choices.append(st.sampled_from(["", ".", "..", " ", "...", "~"]))
    return st.one_of(*choices)


@functools.cache
def relpaths(*, odd: bool = True, max_segments: int = 4) -> st.SearchStrategy[str]:
    """A path inside a session folder as S3 can hold it (valid UTF-8): nested, odd segments or not."""
    return st.lists(segments(odd=odd), min_size=1, max_size=max_segments).map("/".join).filter(bool)


@functools.cache
def s3_keys(*, max_bytes: int = MAX_KEY_BYTES, odd: bool = True) -> st.SearchStrategy[str]:
    """Any key S3 accepts: non-empty valid UTF-8 of at most 1,024 bytes, control characters included.

    With ``odd`` (the default) it may hold empty, ``.`` and ``..`` segments and a leading or trailing
    ``/``, which SeaweedFS normalises or refuses (moto keeps them as given).
    """
    session_shaped = st.builds(
        lambda prefix, day, sid, rel: f"{prefix}{day}/{sid}/{rel}",
        st.sampled_from(["", "raw/", "a/b/"]),
        st.one_of(
            st.dates().map(lambda d: d.isoformat().replace("-", "/")), texts(max_size=12, surrogates=False)
        ),
        segments(odd=odd),
        relpaths(odd=odd),
    )
    keys = st.one_of(session_shaped, relpaths(odd=odd, max_segments=8), long_keys(max_bytes))
    return keys.map(lambda k: truncate_utf8(k, max_bytes)).filter(bool)


@functools.cache
def long_keys(max_bytes: int = MAX_KEY_BYTES) -> st.SearchStrategy[str]:
    """Keys at S3's limit: a session folder and a file name padded to exactly ``max_bytes``."""

    heads = st.sampled_from(["2026/11/20/s/AudioTags/", "raw/2026/11/20/", "x/"])
    pads = st.sampled_from(["a", "é", "€", "\U0001f600"])
    slashes = st.lists(st.integers(0, max_bytes), max_size=6)  # where the padding has a "/"

    @st.composite
    def build(draw: st.DrawFn) -> str:
        head, pad = draw(heads), draw(pads)
        chars = list(pad * (max_bytes // len(pad.encode("utf-8")) + 1))
        for n in draw(slashes):
            chars[n % len(chars)] = "/"
        return truncate_utf8(head + "".join(chars), max_bytes - draw(st.integers(0, 4)))

    return build()


# -- display logs -----------------------------------------------------------------------------------


#: Sources of randomness for :func:`corrupt` (drawn, so shrinking and replaying still work).
_RANDOMS = st.randoms(use_true_random=False)
_LOG_TIMES = st.one_of(iso_timestamps(), texts(max_size=30, surrogates=False, exclude="\n"))
_LOG_FRAMES = st.integers(0, 2**63 - 1) | st.integers()
_LOG_SEPARATORS = st.sampled_from([" ", "  ", "\t", " \u3000", "\u2028"])
_LOG_AFTER_FRAME = st.sampled_from(["", " ", "\t", "\r", "x", "0", " overlay=speed"])
_LOG_JUNK = texts(max_size=40, surrogates=False, exclude="\n")
_LOG_LONG = st.integers(MAX_LINE - 40, MAX_LINE + 2).map(
    lambda n: "2026-11-20T10:21:07Z frame_id=1 " + "x" * n
)


@st.composite
def display_log_lines(draw: st.DrawFn, frames: tuple[int, ...] = ()) -> str:
    """One line of a display log: a record (of one of ``frames``, often), junk, or a line too long."""
    kind = draw(st.integers(0, 19))
    if kind == 0:
        return draw(_LOG_LONG)
    if kind < 5:
        return draw(_LOG_JUNK)
    frame = pick(draw, frames) if frames and kind < 15 else draw(_LOG_FRAMES)
    zeros = "0" * pick(draw, (0, 0, 0, 1, 20))
    spelled = f"-{zeros}{-frame}" if frame < 0 else f"{zeros}{frame}"
    head = f"{draw(_LOG_TIMES)}{draw(_LOG_SEPARATORS)}frame_id={spelled}"
    return f"{head}{draw(_LOG_AFTER_FRAME)}{draw(_LOG_JUNK)}"


@st.composite
def display_log_bytes(draw: st.DrawFn, frames: tuple[int, ...] = ()) -> bytes:
    """Any display log: records and junk lines, LF or CRLF, a BOM, valid UTF-8 or not, any bytes."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.binary(max_size=200))
    if kind == 1:
        return draw(texts(max_size=60)).encode("utf-8", "surrogatepass")
    lines = [draw(display_log_lines(frames)) for _ in range(draw(_indexes(11)))]
    eol = pick(draw, ("\n", "\n", "\r\n"))
    text = eol.join(lines) + pick(draw, ("", eol))
    data = pick(draw, (b"", b"", b"\xef\xbb\xbf")) + text.encode("utf-8")
    return corrupt(data, draw(_RANDOMS)) if kind == 2 else data


def corrupt(data: bytes, rnd: Any) -> bytes:
    """``data`` with a few bytes flipped, cut, or invalid sequences inserted."""
    data = bytearray(data)
    for _ in range(rnd.randint(1, 3)):
        place = rnd.randint(0, len(data))
        choice = rnd.randint(0, 3)
        if choice == 0 and data:
            data[min(place, len(data) - 1)] = rnd.randint(0x80, 0xFF)
        elif choice == 1:
            data[place:place] = rnd.choice(
                [b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xe2\x82", b"\xf4\x90\x80\x80"]
            )
        elif choice == 2:
            del data[place:]
        else:
            data[place:place] = b"\x00"
    return bytes(data)


def chunked(data: bytes) -> st.SearchStrategy[list[bytes]]:
    """``data`` cut into chunks at any places, empty chunks included, as a stream delivers it."""
    cuts = st.lists(st.integers(0, len(data)), max_size=8).map(sorted)
    return cuts.map(lambda c: [data[a:b] for a, b in zip([0, *c], [*c, len(data)], strict=True)])


# -- reports and session folders ----------------------------------------------------------------------


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


@functools.cache
def etags() -> st.SearchStrategy[str]:
    """ETags as S3-compatible servers give them: a quoted MD5, a multipart ``-N`` one, or bare."""
    digest = st.binary(min_size=16, max_size=16).map(bytes.hex)
    return st.one_of(
        digest.map(lambda d: f'"{d}"'),
        st.builds(lambda d, n: f'"{d}-{n}"', digest, st.integers(1, 10000)),
        digest,
    )


_ABSENT = object()
_HOSTILE = json_values(max_leaves=2)
_LIMIT_TEXTS = st.sampled_from([128, 129, 64, 65, 512, 513]).map(lambda n: "v" * n)
_HOSTILE_TEXTS = texts(max_size=140) | _LIMIT_TEXTS | _HOSTILE
#: What a report's top-level fields may hold instead of the right value.
_HOSTILE_FIELDS = {
    "report_version": _HOSTILE,
    "vehicle_id": _HOSTILE_TEXTS,
    "driver_id": _HOSTILE_TEXTS,
    "start_time": timestamps_or_junk(),
    "end_time": timestamps_or_junk(),
    "software_version": _HOSTILE_TEXTS,
    "upload": st.sampled_from([{"status": None}, {"status": "uploading"}, {}, None, {"status": "COMPLETE"}])
    | st.fixed_dictionaries({"status": json_values(max_leaves=3)})
    | _HOSTILE,
    "files": json_values(max_leaves=3),
}
#: What a file entry's fields may hold instead of the right value (besides a value of the entry's own).
_HOSTILE_ENTRY_FIELDS = {
    "path": texts() | _HOSTILE,
    "type": st.sampled_from([AUDIO_TAG, DISPLAY_LOG, RAW, "AUDIO_TAG", ""]) | _HOSTILE,
    "size_bytes": st.sampled_from([-1, 2**63, 2**63 - 1, True]) | _HOSTILE,
    "md5": st.sampled_from(["", "z" * 32, md5_hex(b"other")]) | _HOSTILE,
    "frame_id": st.sampled_from([-1, 2**63, 2**63 - 1, 0, 1.5, True, "12"]) | _HOSTILE,
    "timestamp": timestamps_or_junk(),
    "duration_s": st.floats() | st.integers() | _HOSTILE,
}
#: Keys the contract does not know, which a report may hold.
_UNKNOWN_FIELDS = st.dictionaries(texts(max_size=8), _HOSTILE, max_size=2)


_FIELD_NAMES = st.lists(st.sampled_from(sorted({*_HOSTILE_FIELDS, "session_id"})), max_size=2, unique=True)
_ENTRY_FIELD_NAMES = st.lists(st.sampled_from(sorted(_HOSTILE_ENTRY_FIELDS)), max_size=3, unique=True)
_SPOILINGS = st.sampled_from(["absent", "near", "hostile", "hostile"])
_ENTRY_TIMES = st.sampled_from([None, "2026-11-20T10:21:07.500Z"]) | iso_timestamps()
_START_TIMES = st.just("2026-11-20T10:15:33.120Z") | iso_timestamps()
_ANY_FRAME = st.integers(0, 2**63 - 1) | st.integers(0, 1000)


def spoil(
    draw: st.DrawFn,
    right: dict[str, Any],
    names: list[str],
    hostile: dict[str, st.SearchStrategy[Any]],
    near: dict[str, list[Any]],
) -> dict[str, Any]:
    """``right`` with each of ``names`` left out, wrong by a little (``near``) or hostile.

    (The strategies are built once, at import: combining them anew for each draw costs Hypothesis
    more than drawing from them.)
    """
    spoilt = dict(right)
    for name in names:
        how = draw(_SPOILINGS)
        if how == "absent":
            spoilt.pop(name, None)
        elif how == "near" and name in near:
            spoilt[name] = pick(draw, near[name])
        else:
            spoilt[name] = draw(hostile[name])
    return spoilt


@st.composite
def file_entries(
    draw: st.DrawFn, relpath: str, kind: str, body: bytes, frames: tuple[int, ...] = ()
) -> dict[str, Any]:
    """A report's entry for a file of the folder: right, or with a few fields wrong, hostile or absent.

    :param frames: frame ids its display logs hold records of (the entry's is often one of them).
    """
    right = {
        "path": relpath,
        "type": kind,
        "size_bytes": len(body),
        "md5": md5_hex(body),
        "frame_id": pick(draw, frames) if frames else draw(_ANY_FRAME),
        "timestamp": draw(_ENTRY_TIMES),
        "duration_s": 3.0,
    }
    near = {
        "path": ["../" + relpath, "/" + relpath, relpath + "\ud800", relpath + "/", "./" + relpath],
        "size_bytes": [len(body) + 1, float(len(body)), str(len(body))],
        "md5": [md5_hex(body).upper(), md5_hex(body)[:31]],
    }
    return spoil(draw, right, draw(_ENTRY_FIELD_NAMES), _HOSTILE_ENTRY_FIELDS, near)


@st.composite
def report_documents(
    draw: st.DrawFn, session_id: str, files: dict[str, tuple[str, bytes]], frames: tuple[int, ...] = ()
) -> dict[str, Any]:
    """A report for a folder's files (relpath -> (kind, body)): right, or with a few fields hostile.

    Its entries are in any order, with now and then a stray one (any JSON value, an audio tag that is
    not in the folder) or one file listed twice.
    """
    entries = [draw(file_entries(relpath, kind, body, frames)) for relpath, (kind, body) in files.items()]
    stray = draw(st.integers(0, 5))
    if stray == 0:
        entries.append(draw(_HOSTILE))
    elif stray == 1:
        entries.append(draw(file_entries(draw(relpaths()), AUDIO_TAG, b"")))
    objects = [e for e in entries if isinstance(e, dict)]
    if objects and draw(st.integers(0, 5)) == 0:  # one file listed twice
        entries.append(dict(pick(draw, objects)))
    right = {
        "report_version": 1,
        "session_id": session_id,
        "vehicle_id": "veh042",
        "driver_id": "drv-17",
        "start_time": draw(_START_TIMES),
        "end_time": "2026-11-20T11:02:10.004Z",
        "software_version": "4.12.0",
        "upload": {"status": "complete", "finished_at": "2026-11-20T13:40:00Z"},
        "files": draw(st.permutations(entries)),
    }
    near = {
        "session_id": [session_id + "\x00", session_id + "\ud800", session_id.upper() + "x", session_id[:-1]]
    }
    hostile = {**_HOSTILE_FIELDS, "session_id": _HOSTILE_TEXTS}
    document = spoil(draw, right, draw(_FIELD_NAMES), hostile, near)
    return document | draw(_UNKNOWN_FIELDS)


@st.composite
def encoded(draw: st.DrawFn, document: Any) -> bytes:
    """A report's bytes: mostly its JSON in UTF-8; else with a BOM, corrupted, UTF-16, surrogates raw."""
    utf8 = to_json(document).encode("utf-8")
    how = draw(_indexes(8))
    if how == 5:
        return b"\xef\xbb\xbf" + utf8
    if how == 6:
        return pick(
            draw,
            (
                to_json(document, ensure_ascii=False).encode("utf-8", "surrogatepass"),
                utf8.decode().encode("utf-16"),
            ),
        )
    if how == 7:
        return corrupt(utf8, draw(_RANDOMS))
    return utf8


@functools.cache
def report_bytes() -> st.SearchStrategy[bytes]:
    """Any report bytes: any bytes at all, any JSON document, or a report with any field hostile."""
    return st.one_of(
        st.binary(max_size=300),
        json_values().flatmap(encoded),
        report_documents("s", {"AudioTags/t.wav": (AUDIO_TAG, b"RIFF")}).flatmap(encoded),
    )


#: The stores a folder can be written to: any S3 (what S3 holds), and the two test servers, each
#: with its own limits (measured): moto answers 404 to a key holding a line feed; SeaweedFS refuses
#: a key holding U+0000 or a segment over 255 bytes, turns ``\\`` into ``/`` and normalises empty,
#: ``.`` and ``..`` segments.
STORES = ("s3", "moto", "seaweedfs")


def fit(text: str, store: str) -> str:
    """``text`` (a session id, a path in a session folder) changed as little as ``store`` needs."""
    if store == "moto":
        return text.replace("\n", "_")
    if store == "seaweedfs":
        parts = (
            truncate_utf8(part.replace("\\", "_").replace("\x00", "_"), NAME_MAX) for part in text.split("/")
        )
        return "/".join(part for part in parts if part not in ("", ".", ".."))
    return text


_SESSION_ID_TEXTS = texts(min_size=1, max_size=30, surrogates=False, exclude="/")


@st.composite
def session_ids(draw: st.DrawFn, budget: int, *, store: str = "s3") -> str:
    """A folder name: plain, any text without ``/``, ``.``/``..``, or as long as the report key allows.

    :param budget: bytes the id may take (its report key holds it twice).
    """
    kind = draw(_indexes(5))
    if kind == 0:
        sid = "20261120T101533Z_veh042"
    elif kind == 1:
        sid = draw(_SESSION_ID_TEXTS)
    elif kind == 2:
        sid = pick(draw, (".", "..", " ", "~", "\x00", "s\x1b[31m", "a\\b"))
    elif kind == 3:  # as long as the report's key allows
        sid = pick(draw, ("a", "é", "\U0001f600", "\x01")) * budget
    else:
        sid = draw(fs_names())
    return fit(truncate_utf8(sid, budget), store) or "s"


_FILE_NAMES = segments(odd=False) | fs_names()
#: Bucket prefixes: none, a plain one, one with a space and a control character.
PREFIXES = st.sampled_from(["", "raw/", "a b/\x01/"])
#: Days a folder may be under: any the event database's DATE columns hold.
DAYS = st.dates(dt.date(1000, 1, 1), dt.date(9999, 12, 31))


@st.composite
def session_folders(
    draw: st.DrawFn,
    *,
    prefix: str | st.SearchStrategy[str] = PREFIXES,
    day: dt.date | st.SearchStrategy[dt.date] = DAYS,
    store: str = "s3",
    session_id: str | None = None,
    max_files: int = 5,
) -> dict[str, bytes]:
    """A whole session folder as it lands in the bucket, key -> bytes, its report included.

    Its files are audio tags, display logs (with records of the tags' frames) and other files, under
    any names the store holds (names at the file system's limit, keys at S3's, a file and a folder of
    the same name, empty, ``.`` and ``..`` segments where the store keeps them); its report lists
    them, mostly right, with a few fields hostile; a few unreported objects and a reported absent
    one too. Every key is a valid S3 key (UTF-8, at most 1,024 bytes) that ``store`` keeps as given.

    :param prefix: the bucket prefix (normalised as the pipeline does), or a strategy for it.
    :param day: the folder's day, or a strategy for it.
    :param store: one of :data:`STORES`: where the folder will be written.
    :param session_id: the folder's name (drawn when not given); it must fit the store and the day.
    """
    assert store in STORES, store
    prefix = layout.normalize_prefix(prefix if isinstance(prefix, str) else draw(prefix))
    day = day if isinstance(day, dt.date) else draw(day)
    folder_bytes = len(layout.day_prefix(prefix, day).encode("utf-8")) + 1
    budget = (MAX_KEY_BYTES - folder_bytes - len(layout.REPORT_SUFFIX)) // 2
    if store == "seaweedfs":  # the report's name is one segment
        budget = min(budget, NAME_MAX - len(layout.REPORT_SUFFIX))
    sid = session_id or draw(session_ids(budget, store=store))
    folder = layout.session_prefix(prefix, day, sid)
    room = MAX_KEY_BYTES - len(folder.encode("utf-8"))
    frames = tuple(draw(st.lists(st.integers(0, 2**63 - 1) | st.integers(0, 50), max_size=4)))
    odd = store != "seaweedfs"

    files: dict[str, tuple[str, bytes]] = {}
    for _ in range(draw(st.integers(0, max_files))):
        kind = pick(draw, (AUDIO_TAG, AUDIO_TAG, DISPLAY_LOG, RAW))
        name = draw(_FILE_NAMES)
        if kind == AUDIO_TAG:
            relpath = pick(
                draw, (f"{layout.AUDIO_TAGS_DIR}{name}.wav", f"{name}.WAV", f"{layout.AUDIO_TAGS_DIR}{name}")
            )
            body = draw(st.binary(max_size=64))
        elif kind == DISPLAY_LOG:
            relpath = f"{layout.DISPLAY_LOGS_DIR}{name}.log"
            body = draw(display_log_bytes(frames))
        else:
            relpath = draw(relpaths(odd=odd)) if draw(st.booleans()) else name
            body = draw(st.binary(max_size=32))
        if draw(st.integers(0, 6)) == 0:  # pad the key to S3's limit, in segments of 200 bytes
            relpath = truncate_utf8(relpath + ("/" + "p" * 199) * (room // 200 + 1), room)
        relpath = fit(truncate_utf8(relpath, room), store)
        if relpath:
            files[relpath] = (kind, body)
    if files and draw(st.integers(0, 4)) == 0:  # a file and a folder of the same name
        existing = pick(draw, sorted(files))
        nested = fit(truncate_utf8(existing + "/inner.wav", room), store)
        if nested != existing:
            files[nested] = (AUDIO_TAG, b"nested")

    report_files = dict(files)
    for relpath in draw(st.lists(st.sampled_from(sorted(files)), max_size=2, unique=True)) if files else []:
        del report_files[relpath]  # listed, not reported
    if draw(st.booleans()):
        report_files.setdefault("AudioTags/absent.wav", (AUDIO_TAG, b"gone"))  # reported, maybe not listed
    document = draw(report_documents(sid, report_files, frames))
    objects = {folder + relpath: body for relpath, (_, body) in files.items()}
    objects[folder + layout.report_name(sid)] = draw(encoded(document))
    return objects


@st.composite
def bucket_days(
    draw: st.DrawFn,
    *,
    prefix: str = "",
    day: dt.date = dt.date(2026, 11, 20),
    store: str = "s3",
    max_sessions: int = 4,
) -> dict[str, bytes]:
    """A day of a bucket, key -> bytes: hostile session folders with distinct ids, stray keys, and
    now and then one of the session ids again under the next day (where its report is rejected).
    """
    objects: dict[str, bytes] = {}
    sessions: set[str] = set()
    for _ in range(draw(st.integers(1, max_sessions))):
        folder = draw(session_folders(prefix=prefix, day=day, store=store))
        _, session_id, _ = layout.split_session_key(prefix, next(iter(folder)))
        if session_id not in sessions:
            sessions.add(session_id)
            objects |= folder
    day_prefix = layout.day_prefix(prefix, day)
    for key in draw(st.lists(s3_keys(odd=store != "seaweedfs"), max_size=2)):
        stray = truncate_utf8(fit(day_prefix + key, store), MAX_KEY_BYTES)
        if stray.startswith(day_prefix) and stray not in objects:
            objects[stray] = b"stray"
    if draw(st.integers(0, 3)) == 0:
        again = draw(st.sampled_from(sorted(sessions)))
        later = day + dt.timedelta(days=1)
        objects |= draw(session_folders(prefix=prefix, day=later, store=store, session_id=again))
    return objects
