"""Properties of event_ingest.files: a write lands exactly the bytes expected, or nothing at all."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from event_ingest import files, layout
from event_ingest.errors import VerificationError
from tests.hypothesis_profiles import pure
from tests.strategies import fs_names

#: Final names: plain, and at the file system's limit (255 bytes, multi-byte characters at the edge).
NAMES = st.sampled_from(["tag.wav", "a"]) | fs_names(min_bytes=200, max_bytes=layout.NAME_MAX)
CHUNKS = st.lists(st.binary(max_size=64), max_size=6)


class Interrupted(Exception):
    """The download broke off (a connection reset, say)."""


@st.composite
def expectations(draw: st.DrawFn, data: bytes) -> tuple[int, str | None]:
    """The size and MD5 a report and a listing expect of ``data``: right, or wrong by a little."""
    size = draw(st.sampled_from([len(data), len(data), len(data) + 1, max(0, len(data) - 1), 0]))
    md5 = draw(st.sampled_from([hashlib.md5(data).hexdigest(), None, hashlib.md5(data + b"x").hexdigest()]))
    return size, md5


def stream(chunks: list[bytes], fail_after: int | None) -> Iterator[bytes]:
    for n, chunk in enumerate(chunks):
        if n == fail_after:
            raise Interrupted("connection reset")
        yield chunk


def snapshot(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in os.listdir(folder)}


class TestWriteAtomically:
    @pure(1000)
    @given(st.data(), NAMES, CHUNKS, st.booleans(), st.none() | st.integers(0, 6))
    def test_writes_exactly_the_bytes_or_leaves_the_folder_as_it_was(
        self, data: st.DataObject, name: str, chunks: list[bytes], existing: bool, fail_after: int | None
    ) -> None:
        content = b"".join(chunks)
        size, md5 = data.draw(expectations(content))
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            final = folder / name
            if existing:
                final.write_bytes(b"what was there before")
            before = snapshot(folder)
            interrupted = fail_after is not None and fail_after < len(chunks)
            right = size == len(content) and md5 in (None, hashlib.md5(content).hexdigest())
            if interrupted:  # or refused already, for more bytes than expected before the break
                with pytest.raises((Interrupted, VerificationError)):
                    files.write_atomically(final, stream(chunks, fail_after), size=size, md5=md5)
            elif not right:
                with pytest.raises(VerificationError):
                    files.write_atomically(final, stream(chunks, fail_after), size=size, md5=md5)
            else:
                files.write_atomically(final, stream(chunks, fail_after), size=size, md5=md5)
                assert snapshot(folder) == {name: content}
                return
            assert snapshot(folder) == before

    @pure(300)
    @given(NAMES, CHUNKS, st.booleans())
    def test_write_if_needed_writes_once_and_then_finds_the_file(
        self, name: str, chunks: list[bytes], with_md5: bool
    ) -> None:
        content = b"".join(chunks)
        md5 = hashlib.md5(content).hexdigest() if with_md5 else None
        with tempfile.TemporaryDirectory() as tmp:
            final = Path(tmp) / "day" / "session" / name
            assert files.write_if_needed(final, iter(chunks), size=len(content), md5=md5)
            assert final.read_bytes() == content
            assert not files.write_if_needed(final, iter([b"never read"]), size=len(content), md5=md5)
            assert os.listdir(final.parent) == [name]
