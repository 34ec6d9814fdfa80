"""Properties of event_ingest.safe_text: whatever text comes in, what leaves is printable or storable."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from event_ingest import safe_text
from event_ingest.errors import UnstorableTextError
from tests.hypothesis_profiles import pure
from tests.strategies import texts

#: Characters that change how a terminal or a log viewer shows what follows them (docs/contract.md §5).
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def breaks_a_line(char: str) -> bool:
    """Control characters, lone surrogates, line and paragraph separators, bidi controls."""
    return unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") or char in BIDI_CONTROLS


def unescape_stored(text: str) -> str:
    r"""Undo :func:`safe_text.stored`'s escapes: ``\\`` is ``\``, ``\xNN`` and ``\uNNNN`` a character."""
    out, n = [], 0
    while n < len(text):
        if text[n] != "\\":
            out.append(text[n])
            n += 1
        elif text[n + 1] == "\\":
            out.append("\\")
            n += 2
        elif text[n + 1] == "x":
            out.append(chr(int(text[n + 2 : n + 4], 16)))
            n += 4
        else:
            assert text[n + 1] == "u", text
            out.append(chr(int(text[n + 2 : n + 6], 16)))
            n += 6
    return "".join(out)


class TestPrintable:
    @pure(1000)
    @given(texts(max_size=80))
    def test_output_holds_no_character_that_breaks_a_line(self, text: str) -> None:
        shown = safe_text.printable(text)
        assert not any(breaks_a_line(c) for c in shown)
        shown.encode("utf-8")  # and so it encodes, whatever went in

    @pure(500)
    @given(texts(max_size=80))
    def test_changes_only_what_it_escapes(self, text: str) -> None:
        if not any(breaks_a_line(c) for c in text):
            assert safe_text.printable(text) == text


class TestExcerpt:
    @pure(1000)
    @given(texts(max_size=300), st.integers(1, 250))
    def test_is_printable_and_bounded(self, text: str, limit: int) -> None:
        shown = safe_text.excerpt(text, limit)
        assert not any(breaks_a_line(c) for c in shown)
        # At most 6 characters an escaped character, and the length said.
        assert len(shown) <= 6 * limit + len(f"... ({len(text)} characters)")
        if len(text) > limit:
            assert shown.endswith(f"... ({len(text)} characters)")
        else:
            assert shown == safe_text.printable(text)


class TestStored:
    @pure(1000)
    @given(texts(max_size=80))
    def test_is_storable_and_the_identity_on_storable_text(self, text: str) -> None:
        kept = safe_text.stored(text)
        assert safe_text.is_storable(kept)
        kept.encode("utf-8")
        if safe_text.is_storable(text):
            assert kept == text
        else:
            assert unescape_stored(kept) == text  # escaped, not lost: it still names what it named

    @pure(500)
    @given(texts(max_size=80))
    def test_check_storable_agrees_with_is_storable(self, text: str) -> None:
        try:
            checked = safe_text.check_storable(text, "field 'x'")
        except UnstorableTextError as exc:
            message = str(exc)
            assert not safe_text.is_storable(text)
            assert message.startswith("field 'x' holds ")
            assert safe_text.printable(message) == message
            return
        assert checked == text
        assert safe_text.is_storable(text)
        assert "\x00" not in text
        text.encode("utf-8")
