"""Tests for event_ingest.display_log: streaming UTF-8 lines and the frame id -> time lookup."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pytest

from event_ingest.display_log import MAX_LINE, NotUtf8Error, find_frames, iter_lines


def lines_then_fail(lines: Iterable[str]) -> Iterator[str]:
    """Yield ``lines``, then fail: the caller read further than it should."""
    yield from lines
    raise AssertionError("read past the point where every wanted frame was found")


class TestIterLines:
    def test_a_byte_order_mark_is_not_part_of_the_first_line(self) -> None:
        assert list(iter_lines([b"\xef\xbb\xbf2026-11-20T10:00:00Z frame_id=1 x\n"])) == [
            "2026-11-20T10:00:00Z frame_id=1 x"
        ]

    @pytest.mark.parametrize(
        "chunks",
        [
            pytest.param([b"x" * (MAX_LINE + 1) + b"\nnext\n"], id="whole-in-one-chunk"),
            pytest.param([b"x" * 10, b"x" * MAX_LINE + b"\nnext"], id="across-chunks"),
            pytest.param([b"next\n", b"x" * (MAX_LINE + 1)], id="last-line-unterminated"),
        ],
    )
    def test_a_line_longer_than_a_record_can_be_is_skipped_however_it_arrives(
        self, chunks: list[bytes]
    ) -> None:
        assert list(iter_lines(chunks)) == ["next"]

    @pytest.mark.parametrize(
        ("chunks", "expected"),
        [
            pytest.param([b"a\nb\n"], ["a", "b"], id="one-chunk"),
            pytest.param([b"a\nb"], ["a", "b"], id="final-line-without-newline"),
            pytest.param([b"ab", b"c\nd", b"e\n"], ["abc", "de"], id="chunks-split-lines"),
            pytest.param([b"a", b"\n", b"b"], ["a", "b"], id="newline-alone"),
            pytest.param([b"\xc3", b"\xa9t\xc3\xa9\n"], ["été"], id="split-two-byte-char"),
            pytest.param([b"x\xe6", b"\x97", b"\xa5\n"], ["x日"], id="split-three-byte-char"),
            pytest.param([b"\xf0\x9f", b"\x9a\x97"], ["🚗"], id="split-four-byte-char-at-end"),
            pytest.param([b"a\n\nb\n"], ["a", "", "b"], id="empty-line-kept"),
            pytest.param([b"a\r\nb\r\n"], ["a\r", "b\r"], id="crlf-keeps-cr"),
            pytest.param([], [], id="no-chunks"),
            pytest.param([b"", b""], [], id="empty-chunks"),
        ],
    )
    def test_yields_decoded_lines(self, chunks: list[bytes], expected: list[str]) -> None:
        assert list(iter_lines(chunks)) == expected

    @pytest.mark.parametrize(
        "chunks",
        [
            pytest.param([b"ok\n\xff\n"], id="invalid-byte"),
            pytest.param([b"ok\n", b"caf\xe9\n"], id="latin-1"),
            pytest.param([b"\xc3", b"(\n"], id="bad-continuation-across-chunks"),
            pytest.param([b"ok\n\xe6\x97"], id="truncated-sequence-at-end"),
            pytest.param([b"ok\n", b"\xf0"], id="truncated-sequence-in-last-chunk"),
        ],
    )
    def test_invalid_utf8_raises(self, chunks: list[bytes]) -> None:
        with pytest.raises(NotUtf8Error, match="not UTF-8"):
            list(iter_lines(chunks))

    @pytest.mark.parametrize(
        ("chunks", "position"),
        [
            pytest.param([b"ok\n\xff\n"], 3, id="in-one-chunk"),
            pytest.param([b"ok\n", b"ab\xff"], 5, id="in-a-later-chunk"),
        ],
    )
    def test_error_names_the_position_of_the_bad_byte(self, chunks: list[bytes], position: int) -> None:
        with pytest.raises(NotUtf8Error, match=f"byte {position}\\)"):
            list(iter_lines(chunks))

    def test_error_position_counts_bytes_buffered_from_the_previous_chunk(self) -> None:
        with pytest.raises(NotUtf8Error, match=r"byte 2\)"):
            list(iter_lines([b"ab\xc3", b"(\n"]))

    def test_lines_before_the_bad_bytes_are_yielded_first(self) -> None:
        lines = iter_lines([b"first\n", b"\xff\n"])
        assert next(lines) == "first"
        with pytest.raises(NotUtf8Error):
            next(lines)

    def test_reads_chunks_lazily(self) -> None:
        def chunks() -> Iterator[bytes]:
            yield b"first\nsec"
            raise AssertionError("read the second chunk before it was needed")

        assert next(iter_lines(chunks())) == "first"


class TestFindFrames:
    def test_records_normalised_times_of_wanted_frames(self) -> None:
        found: dict[int, str] = {}
        find_frames(
            [
                "2026-11-20T10:21:07.500Z frame_id=183022 overlay=speed",
                "2026-11-20T12:21:08+02:00 frame_id=183023",
                "2026-11-20T10:21:09.000Z frame_id=999 ignored",
            ],
            {183022, 183023},
            found,
        )
        assert found == {183022: "2026-11-20 10:21:07.500", 183023: "2026-11-20 10:21:08.000"}

    def test_first_line_of_a_frame_wins(self) -> None:
        found: dict[int, str] = {}
        find_frames(["2026-11-20T10:00:00Z frame_id=1 a", "2026-11-20T11:00:00Z frame_id=1 b"], {1, 2}, found)
        assert found == {1: "2026-11-20 10:00:00.000"}

    def test_first_line_wins_across_logs_sharing_found(self) -> None:
        found: dict[int, str] = {}
        find_frames(["2026-11-20T10:00:00Z frame_id=1"], {1, 2}, found)
        find_frames(["2026-11-20T11:00:00Z frame_id=1", "2026-11-20T11:00:01Z frame_id=2"], {1, 2}, found)
        assert found == {1: "2026-11-20 10:00:00.000", 2: "2026-11-20 11:00:01.000"}

    @pytest.mark.parametrize(
        "line",
        [
            pytest.param("", id="empty"),
            pytest.param("frame_id=7", id="no-timestamp"),
            pytest.param("2026-11-20T10:00:00Z overlay=speed frame_id=7", id="frame-id-not-second"),
            pytest.param("2026-11-20T10:00:00Z frame_id=", id="frame-id-without-value"),
            pytest.param("2026-11-20T10:00:00Z frame_id=-7", id="negative-frame-id"),
            pytest.param("2026-11-20T10:00:00Z frame_id=7x", id="frame-id-with-suffix"),
            pytest.param("2026-11-20T10:00:00Z frame_id=70", id="longer-frame-id"),
            pytest.param("2026-11-20T10:00:00Z frameid=7", id="misspelt"),
            pytest.param("  2026-11-20T10:00:00Z frame_id=7", id="leading-space"),
            pytest.param("yesterday frame_id=7", id="word-timestamp"),
            pytest.param("2026-02-30T10:00:00Z frame_id=7", id="impossible-timestamp"),
        ],
    )
    def test_skips_lines_that_do_not_give_a_time(self, line: str) -> None:
        found: dict[int, str] = {}
        find_frames([line, "2026-11-20T10:00:05Z frame_id=7 good"], {7}, found)
        assert found == {7: "2026-11-20 10:00:05.000"}

    def test_frame_id_12_does_not_match_frame_id_123(self) -> None:
        found: dict[int, str] = {}
        find_frames(
            ["2026-11-20T10:00:00Z frame_id=123 x", "2026-11-20T10:00:01Z frame_id=12 x"], {12}, found
        )
        assert found == {12: "2026-11-20 10:00:01.000"}

    def test_line_ending_right_after_the_frame_id_matches(self) -> None:
        found: dict[int, str] = {}
        find_frames(
            ["2026-11-20T10:00:00Z frame_id=12", "2026-11-20T10:00:01Z frame_id=13\r"], {12, 13}, found
        )
        assert found == {12: "2026-11-20 10:00:00.000", 13: "2026-11-20 10:00:01.000"}

    def test_frames_not_logged_stay_missing(self) -> None:
        found: dict[int, str] = {}
        find_frames(["2026-11-20T10:00:00Z frame_id=1"], {1, 2}, found)
        assert found == {1: "2026-11-20 10:00:00.000"}

    def test_reads_all_lines_while_a_frame_is_missing(self) -> None:
        with pytest.raises(AssertionError, match="read past"):
            find_frames(lines_then_fail(["2026-11-20T10:00:00Z frame_id=1"]), {1, 2}, {})

    def test_stops_reading_once_all_wanted_frames_are_found(self) -> None:
        found: dict[int, str] = {}
        lines = ["2026-11-20T10:00:00Z frame_id=1", "noise", "2026-11-20T10:00:02Z frame_id=2"]
        find_frames(lines_then_fail(lines), {1, 2}, found)
        assert found == {1: "2026-11-20 10:00:00.000", 2: "2026-11-20 10:00:02.000"}

    def test_does_not_read_the_rest_of_the_log(self) -> None:
        found: dict[int, str] = {}
        lines = ["2026-11-20T10:00:00Z frame_id=1", "2026-11-20T10:00:02Z frame_id=2", "after", "more"]
        find_frames(lines_then_fail(lines), {1, 2}, found)
        assert found == {1: "2026-11-20 10:00:00.000", 2: "2026-11-20 10:00:02.000"}

    def test_reads_nothing_when_every_wanted_frame_is_already_found(self) -> None:
        found = {1: "2026-11-20 10:00:00.000"}
        find_frames(lines_then_fail([]), {1}, found)
        assert found == {1: "2026-11-20 10:00:00.000"}

    def test_corrupt_tail_after_all_frames_found_is_not_read(self) -> None:
        found: dict[int, str] = {}
        chunks = [b"2026-11-20T10:00:00Z frame_id=1\n", b"\xff\xfe garbage\n"]
        find_frames(iter_lines(chunks), {1}, found)
        assert found == {1: "2026-11-20 10:00:00.000"}

    def test_does_not_overwrite_frames_already_found(self) -> None:
        found = {1: "2026-11-20 09:00:00.000"}
        find_frames(["2026-11-20T10:00:00Z frame_id=1", "2026-11-20T10:00:01Z frame_id=2"], {1, 2}, found)
        assert found == {1: "2026-11-20 09:00:00.000", 2: "2026-11-20 10:00:01.000"}

    def test_skips_a_line_whose_time_overflows_in_utc(self) -> None:
        found: dict[int, str] = {}
        find_frames(["0001-01-01T00:00:00+01:00 frame_id=7", "2026-11-20T10:00:05Z frame_id=7"], {7}, found)
        assert found == {7: "2026-11-20 10:00:05.000"}
