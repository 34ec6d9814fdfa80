"""How text from the bucket is carried on, whatever it holds.

S3 keys are any Unicode (control characters included) and reports may hold any JSON string, lone
surrogates included (``"\\ud800"`` is valid JSON but no UTF-8). What the pipeline passes on must
stay valid everywhere it goes, so:

- **log fields and reasons** are :func:`printable`: control, bidi and line-separator characters and
  lone surrogates are written as Python escapes (``\\x1b``, ``\\u202e``, ``\\ud800``), and
  :func:`excerpt` bounds their length;
- **database columns** take only :func:`is_storable` text: valid Unicode without U+0000 (PostgreSQL
  text cannot hold it, and every backend must hold the same rows). A report value that is not
  storable rejects its session or object, naming the field (:func:`check_storable`);
- **the identifying columns of a reject** (its key and session id) must still name the thing
  rejected: :func:`stored` keeps storable text as it is and escapes the rest. The pipeline never
  matches rejects by these columns: it uses hashes of the raw values (``reject_id``,
  ``session_key``), so an escaped name can never stand for another session;
- **XComs** carry strings as JSON with ``ensure_ascii`` (see :mod:`event_ingest.model`), which
  round-trips any Python string.
"""

from __future__ import annotations

import re

_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_ESCAPED_IN_STORED = re.compile("[\\\\\x00\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\\":
        return "\\\\"
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every character that could break a log line or a terminal written as an escape."""
    return _UNPRINTABLE.sub(_escape, text)


def excerpt(text: str, limit: int = 200) -> str:
    """:func:`printable` ``text``, cut to ``limit`` characters with the full length said."""
    if len(text) > limit:
        return f"{printable(text[:limit])}... ({len(text)} characters)"
    return printable(text)


def is_storable(text: str) -> bool:
    """Whether every event-database backend stores ``text`` as it is: valid Unicode, no U+0000."""
    return _UNSTORABLE.search(text) is None


def check_storable(text: str, what: str) -> str:
    """Return ``text`` if it is storable; else raise, naming ``what`` and the first bad character.

    :raises UnstorableTextError: ``text`` holds a lone surrogate or U+0000.
    """
    bad = _UNSTORABLE.search(text)
    if bad is None:
        return text
    from event_ingest.errors import UnstorableTextError

    kind = "U+0000" if bad.group() == "\x00" else f"the lone surrogate U+{ord(bad.group()):04X}"
    raise UnstorableTextError(f"{what} holds {kind}, which no event-database column can store")


def stored(text: str) -> str:
    """``text`` as a reject's key or session id: itself when storable, else escaped (backslashes doubled)."""
    if is_storable(text):
        return text
    return _ESCAPED_IN_STORED.sub(_escape, text)
