"""Properties of event_ingest.display_log: any log bytes, cut into chunks anyhow, give the same lookup.

The reference below restates docs/contract.md §1 ("Display logs") on the whole log at once: UTF-8
text, one record a line (``<ISO-8601 timestamp> frame_id=<integer> <free text>``), lines that do not
match skipped, the first line of a frame id winning; lines longer than ``MAX_LINE`` are no records.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from event_ingest.display_log import MAX_LINE, NotUtf8Error, find_frames, iter_lines
from event_ingest.timestamps import normalize
from tests.hypothesis_profiles import pure
from tests.strategies import chunked, display_log_bytes

DB_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}")
RECORD = re.compile(r"(\S+)\s+frame_id=([0-9]+)(?:\s|$)")


def reference_lines(data: bytes) -> list[str]:
    """The log's lines, as the contract reads them: split at LF, the long ones dropped.

    A log that is not UTF-8 gives the lines wholly before its first bad byte. A byte-order mark is
    no part of the first line.
    """
    try:
        lines = data.decode("utf-8").removeprefix("\ufeff").split("\n")
    except UnicodeDecodeError as exc:
        lines = data[: exc.start].decode("utf-8").removeprefix("\ufeff").split("\n")[:-1]
    if lines and lines[-1] == "":
        lines.pop()
    return [line for line in lines if len(line) <= MAX_LINE]


def reference_frames(data: bytes, wanted: set[int]) -> dict[int, str]:
    """The time of each wanted frame: the first line naming it with a time that parses."""
    found: dict[int, str] = {}
    for line in reference_lines(data):
        match = RECORD.match(line)
        if not match or int(match.group(2)) not in wanted or int(match.group(2)) in found:
            continue
        try:
            found[int(match.group(2))] = normalize(match.group(1))
        except ValueError:
            continue
    return found


def frames_in(data: bytes) -> list[int]:
    """The frame ids the log's lines name (valid or not), to look up."""
    return [int(n) for n in re.findall(rb"frame_id=-?([0-9]{1,25})", data)]


@st.composite
def logs(draw: st.DrawFn) -> tuple[bytes, list[bytes], set[int]]:
    """A log, the chunks it arrives in, and the frames looked up (some in it, some not)."""
    frames = draw(st.lists(st.integers(0, 2**63 - 1) | st.integers(0, 30), max_size=4))
    data = draw(display_log_bytes(tuple(frames)))
    named = frames_in(data)
    wanted = set(draw(st.lists(st.sampled_from(named), max_size=4))) if named else set()
    wanted |= set(draw(st.lists(st.integers(0, 2**63 - 1), max_size=2)))
    return data, draw(chunked(data)), wanted


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class TestIterLines:
    @pure(400)
    @given(logs())
    def test_any_chunking_gives_the_lines_of_the_whole_log_or_not_utf8(
        self, log: tuple[bytes, list[bytes], set[int]]
    ) -> None:
        data, chunks, _ = log
        if is_utf8(data):
            assert list(iter_lines(chunks)) == reference_lines(data)
        else:
            with pytest.raises(NotUtf8Error):
                list(iter_lines(chunks))

    @pure(200)
    @given(logs())
    def test_no_line_is_longer_than_max_line(self, log: tuple[bytes, list[bytes], set[int]]) -> None:
        _, chunks, _ = log
        try:
            lines = list(iter_lines(chunks))
        except NotUtf8Error:
            return
        assert all(len(line) <= MAX_LINE for line in lines)

    @pure(300)
    @given(logs())
    def test_not_utf8_names_the_first_bad_byte(self, log: tuple[bytes, list[bytes], set[int]]) -> None:
        data, chunks, _ = log
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            with pytest.raises(NotUtf8Error, match=rf"\bbyte {exc.start}\)"):
                list(iter_lines(chunks))

    @pure(100)
    @given(
        st.integers(1, 4),
        st.integers(MAX_LINE - 3, 3 * MAX_LINE),
        st.sampled_from([1 << 10, 1 << 16, 1 << 20]),
    )
    def test_lines_around_max_line_in_chunks_of_any_size(self, before: int, length: int, chunk: int) -> None:
        data = b"a\n" * before + b"x" * length + b"\nlast"
        chunks = [data[n : n + chunk] for n in range(0, len(data), chunk)]
        assert list(iter_lines(chunks)) == reference_lines(data)


def look_up(
    logs_: list[tuple[bytes, list[bytes], set[int]]], wanted: set[int]
) -> tuple[dict[int, str], bool]:
    """Look ``wanted`` up in the logs in order, as the assembler does; whether one was not UTF-8."""
    found: dict[int, str] = {}
    failed = False
    for _, chunks, _ in logs_:
        try:
            find_frames(iter_lines(chunks), wanted, found)
        except NotUtf8Error:
            failed = True
    return found, failed


class TestFindFrames:
    @pure(400)
    @given(logs())
    def test_finds_what_the_contract_says_or_raises_not_utf8(
        self, log: tuple[bytes, list[bytes], set[int]]
    ) -> None:
        data, _, wanted = log
        found, failed = look_up([log], wanted)
        expected = reference_frames(data, wanted)
        assert failed <= (not is_utf8(data))
        if failed:  # what was found before the bad bytes is still right
            assert found.items() <= expected.items()
        elif is_utf8(data):
            assert found == expected
        else:  # it stopped reading before the bad bytes: every frame was found
            assert found == expected
            assert found.keys() == wanted
        assert all(DB_TIME.fullmatch(t) and 1000 <= int(t[:4]) <= 9999 for t in found.values())

    @pure(150)
    @given(logs(), logs())
    def test_first_log_wins_across_logs(
        self, first: tuple[bytes, list[bytes], set[int]], second: tuple[bytes, list[bytes], set[int]]
    ) -> None:
        wanted = first[2] | second[2]
        found, failed = look_up([first, second], wanted)
        if failed:
            return
        expected = reference_frames(second[0], wanted - reference_frames(first[0], wanted).keys())
        expected.update(reference_frames(first[0], wanted))
        assert found == expected
