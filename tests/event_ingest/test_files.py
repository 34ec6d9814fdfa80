"""Tests for event_ingest.files: atomic, verified writes into the data directory."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from event_ingest.files import (
    STALE_PART_S,
    VerificationError,
    is_verified,
    md5_of,
    temporary_prefix,
    write_atomically,
    write_if_needed,
)

DATA = b"RIFF" + bytes(range(256)) * 40
DATA_MD5 = hashlib.md5(DATA).hexdigest()


def chunks_of(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def parts_in(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.part"))


class TestWriteAtomically:
    def test_verified_write_lands_at_the_final_path(self, tmp_path: Path) -> None:
        final = tmp_path / "2026" / "11" / "20" / "s" / "AudioTags" / "tag_0001.wav"
        assert write_if_needed(final, chunks_of(DATA), size=len(DATA), md5=DATA_MD5)
        assert final.read_bytes() == DATA
        assert parts_in(final.parent) == []

    def test_a_name_at_the_file_systems_limit_still_has_room_for_its_temporary_name(
        self, tmp_path: Path
    ) -> None:
        final = tmp_path / ("n" * 251 + ".wav")
        write_atomically(final, chunks_of(DATA), size=len(DATA), md5=DATA_MD5)
        assert final.read_bytes() == DATA
        assert len(temporary_prefix(final.name)) + len("123456789abc.part") < 40

    def test_write_without_md5_checks_the_size_only(self, tmp_path: Path) -> None:
        final = tmp_path / "tag.wav"
        write_atomically(final, chunks_of(DATA), size=len(DATA), md5=None)
        assert final.read_bytes() == DATA

    def test_empty_file(self, tmp_path: Path) -> None:
        final = tmp_path / "empty.wav"
        write_atomically(final, iter([]), size=0, md5=hashlib.md5(b"").hexdigest())
        assert final.read_bytes() == b""

    def test_replaces_an_existing_file(self, tmp_path: Path) -> None:
        final = tmp_path / "tag.wav"
        final.write_bytes(b"old and wrong")
        write_atomically(final, chunks_of(DATA), size=len(DATA), md5=DATA_MD5)
        assert final.read_bytes() == DATA

    @pytest.mark.parametrize(
        ("size", "md5", "message"),
        [
            pytest.param(len(DATA) + 1, DATA_MD5, "size mismatch", id="too-short"),
            pytest.param(len(DATA) - 1, DATA_MD5, "size mismatch", id="too-long"),
            pytest.param(len(DATA), "0" * 32, "md5 mismatch", id="md5-mismatch"),
        ],
    )
    def test_mismatch_leaves_neither_final_file_nor_part(
        self, tmp_path: Path, size: int, md5: str, message: str
    ) -> None:
        final = tmp_path / "tag.wav"
        with pytest.raises(VerificationError, match=message):
            write_atomically(final, chunks_of(DATA), size=size, md5=md5)
        assert not final.exists()
        assert list(tmp_path.iterdir()) == []

    def test_mismatch_keeps_a_file_already_at_the_final_path(self, tmp_path: Path) -> None:
        final = tmp_path / "tag.wav"
        final.write_bytes(DATA)
        with pytest.raises(VerificationError):
            write_atomically(final, chunks_of(b"corrupt"), size=len(DATA), md5=DATA_MD5)
        assert final.read_bytes() == DATA
        assert parts_in(tmp_path) == []

    def test_failing_download_leaves_nothing_at_the_final_path(self, tmp_path: Path) -> None:
        final = tmp_path / "tag.wav"

        def broken() -> Iterator[bytes]:
            yield DATA[:1000]
            raise ConnectionError("connection reset midway")

        with pytest.raises(ConnectionError, match="midway"):
            write_atomically(final, broken(), size=len(DATA), md5=DATA_MD5)
        assert not final.exists()
        assert parts_in(tmp_path) == []

    @pytest.mark.parametrize(
        "name",
        [
            pytest.param("tag_0001.wav", id="plain-name"),
            pytest.param("tag one 'x'.wav", id="spaces-and-quotes"),
            pytest.param(
                "tag[1].wav",
                id="glob-brackets",
            ),
        ],
    )
    def test_removes_stale_parts_and_keeps_fresh_ones(self, tmp_path: Path, name: str) -> None:
        final = tmp_path / name
        stem = temporary_prefix(name)
        stale, fresh = tmp_path / f"{stem}aaaaaaaaaaaa.part", tmp_path / f"{stem}bbbbbbbbbbbb.part"
        other = tmp_path / f"{temporary_prefix('other.wav')}cccccccccccc.part"
        for part in (stale, fresh, other):
            part.write_bytes(b"partial")
        old = time.time() - STALE_PART_S - 60
        os.utime(stale, (old, old))
        os.utime(other, (old, old))
        write_if_needed(final, chunks_of(DATA), size=len(DATA), md5=DATA_MD5)
        assert not stale.exists()
        assert fresh.exists()
        assert other.exists(), "a stale part of another file is that file's write's business"


class TestIsVerified:
    def test_true_for_the_expected_file(self, tmp_path: Path) -> None:
        path = tmp_path / "tag.wav"
        path.write_bytes(DATA)
        assert is_verified(path, len(DATA), DATA_MD5)
        assert is_verified(path, len(DATA), None)

    @pytest.mark.parametrize(
        ("content", "size", "md5"),
        [
            pytest.param(None, len(DATA), DATA_MD5, id="missing"),
            pytest.param(DATA[:-1], len(DATA), DATA_MD5, id="short"),
            pytest.param(DATA[:-1], len(DATA), None, id="short-without-md5"),
            pytest.param(DATA[:-1] + b"X", len(DATA), DATA_MD5, id="same-size-other-bytes"),
        ],
    )
    def test_false_for_anything_else(
        self, tmp_path: Path, content: bytes | None, size: int, md5: str | None
    ) -> None:
        path = tmp_path / "tag.wav"
        if content is not None:
            path.write_bytes(content)
        assert not is_verified(path, size, md5)

    def test_md5_of_matches_hashlib(self, tmp_path: Path) -> None:
        path = tmp_path / "big.bin"
        path.write_bytes(DATA * 20)
        assert md5_of(path) == hashlib.md5(DATA * 20).hexdigest()
