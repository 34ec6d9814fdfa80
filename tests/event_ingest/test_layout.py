"""Tests for event_ingest.layout: bucket keys, session folders and safe local paths."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from event_ingest import layout
from event_ingest.errors import UnsafePathError, UnstorableTextError

DAY = dt.date(2026, 11, 20)
SESSION = "20261120T101533Z_veh042"


class TestNormalizePrefix:
    @pytest.mark.parametrize(
        ("prefix", "expected"),
        [
            pytest.param(None, "", id="none"),
            pytest.param("", "", id="empty"),
            pytest.param("   ", "", id="blank"),
            pytest.param("raw", "raw/", id="no-slash"),
            pytest.param("raw/", "raw/", id="one-slash"),
            pytest.param("raw//", "raw/", id="many-slashes"),
            pytest.param(" raw/ ", "raw/", id="surrounding-spaces"),
            pytest.param("a/b", "a/b/", id="nested"),
        ],
    )
    def test_gives_empty_or_exactly_one_trailing_slash(self, prefix: str | None, expected: str) -> None:
        assert layout.normalize_prefix(prefix) == expected


class TestDayPrefix:
    @pytest.mark.parametrize(
        ("prefix", "expected"),
        [
            pytest.param("", "2026/01/05/", id="empty-prefix"),
            pytest.param("raw", "raw/2026/01/05/", id="prefix-without-slash"),
            pytest.param("raw/", "raw/2026/01/05/", id="prefix-with-slash"),
        ],
    )
    def test_zero_pads_the_day_partition(self, prefix: str, expected: str) -> None:
        assert layout.day_prefix(prefix, dt.date(2026, 1, 5)) == expected

    def test_session_prefix_extends_the_day_prefix(self) -> None:
        assert layout.session_prefix("raw", DAY, SESSION) == f"raw/2026/11/20/{SESSION}/"


class TestSplitSessionKey:
    @pytest.mark.parametrize(
        ("prefix", "key", "expected"),
        [
            pytest.param(
                "",
                f"2026/11/20/{SESSION}/{SESSION}_logged_Upload_Report.json",
                (DAY, SESSION, f"{SESSION}_logged_Upload_Report.json"),
                id="empty-prefix",
            ),
            pytest.param(
                "raw/",
                f"raw/2026/11/20/{SESSION}/AudioTags/tag_0001.wav",
                (DAY, SESSION, "AudioTags/tag_0001.wav"),
                id="prefix-with-slash",
            ),
            pytest.param(
                "raw",
                f"raw/2026/11/20/{SESSION}/AudioTags/tag_0001.wav",
                (DAY, SESSION, "AudioTags/tag_0001.wav"),
                id="prefix-without-slash",
            ),
            pytest.param(
                "raw/",
                "raw/2026/11/20/s/AV_logs/DisplayLogs/display_000.log",
                (DAY, "s", "AV_logs/DisplayLogs/display_000.log"),
                id="deep-path",
            ),
            pytest.param(
                "",
                "2024/02/29/s/x",
                (dt.date(2024, 2, 29), "s", "x"),
                id="leap-day",
            ),
        ],
    )
    def test_splits_a_session_key(self, prefix: str, key: str, expected: tuple[dt.date, str, str]) -> None:
        assert layout.split_session_key(prefix, key) == expected

    @pytest.mark.parametrize(
        ("prefix", "key"),
        [
            pytest.param("raw/", "other/2026/11/20/s/r.json", id="other-prefix"),
            pytest.param("raw/", "rawdata/2026/11/20/s/r.json", id="prefix-as-name-start"),
            pytest.param("raw", "raw2026/11/20/s/r.json", id="prefix-without-separator"),
            pytest.param("", "raw/2026/11/20/s/r.json", id="prefixed-key-with-empty-prefix"),
            pytest.param("raw/", "raw/README.txt", id="stray-file-at-top"),
            pytest.param("raw/", "raw/2026/11/README.txt", id="stray-file-in-month"),
            pytest.param("raw/", "raw/2026/11/20/stray.json", id="key-directly-in-day-folder"),
            pytest.param("raw/", "raw/2026/11/20/s/", id="folder-marker"),
            pytest.param("raw/", "raw/2026/11/20//x", id="empty-session-id"),
            pytest.param("raw/", "raw/2026/02/30/s/x", id="february-30"),
            pytest.param("raw/", "raw/2026/13/01/s/x", id="month-13"),
            pytest.param("raw/", "raw/2026/00/10/s/x", id="month-0"),
            pytest.param("raw/", "raw/2026/11/31/s/x", id="november-31"),
            pytest.param("raw/", "raw/2025/02/29/s/x", id="february-29-not-leap"),
            pytest.param("raw/", "raw/2026/1/20/s/x", id="unpadded-month"),
            pytest.param("raw/", "raw/26/11/20/s/x", id="two-digit-year"),
            pytest.param("raw/", "raw/yyyy/mm/dd/s/x", id="letters"),
            pytest.param("", "", id="empty-key"),
        ],
    )
    def test_non_session_keys_give_none(self, prefix: str, key: str) -> None:
        assert layout.split_session_key(prefix, key) is None

    @pytest.mark.parametrize(
        "key",
        [
            pytest.param("raw/2026/+1/20/s/x", id="signed-month"),
            pytest.param("raw/2026/ 1/20/s/x", id="space-in-month"),
            pytest.param("raw/\u0662\u0660\u0662\u0666/11/20/s/x", id="arabic-indic-year"),
        ],
    )
    def test_date_parts_must_be_ascii_digits(self, key: str) -> None:
        assert layout.split_session_key("raw/", key) is None


class TestIsReport:
    @pytest.mark.parametrize(
        ("relpath", "expected"),
        [
            pytest.param(f"{SESSION}_logged_Upload_Report.json", True, id="the-report"),
            pytest.param("other_logged_Upload_Report.json", False, id="another-sessions-report"),
            pytest.param(f"sub/{SESSION}_logged_Upload_Report.json", False, id="report-in-subfolder"),
            pytest.param(f"{SESSION}_logged_Upload_Report.json.bak", False, id="suffixed"),
            pytest.param("AudioTags/tag_0001.wav", False, id="audio-tag"),
        ],
    )
    def test_recognises_only_the_sessions_own_report(self, relpath: str, expected: bool) -> None:
        assert layout.is_report(SESSION, relpath) is expected


class TestCheckSessionId:
    @pytest.mark.parametrize(
        "session_id",
        [
            pytest.param("", id="empty"),
            pytest.param(".", id="dot"),
            pytest.param("..", id="dot-dot"),
            pytest.param("a/b", id="slash"),
            pytest.param("/", id="only-slash"),
            pytest.param("x" * 513, id="513-chars"),
        ],
    )
    def test_refuses_unsafe_ids(self, session_id: str) -> None:
        with pytest.raises(UnsafePathError, match="session id"):
            layout.check_session_id(session_id)

    def test_refuses_an_id_no_column_can_hold(self) -> None:
        with pytest.raises(UnstorableTextError, match="U\\+0000"):
            layout.check_session_id("a\x00b")

    @pytest.mark.parametrize(
        "session_id",
        [
            pytest.param(SESSION, id="usual"),
            pytest.param("with space", id="space"),
            pytest.param('it\'s "quoted"', id="quotes"),
            pytest.param("séance-ß-日本", id="unicode"),
            pytest.param("'; DROP TABLE sessions; --", id="sql-looking"),
            pytest.param("...", id="three-dots"),
            pytest.param("x" * 512, id="512-chars"),
            pytest.param("a\\b", id="backslash-is-a-plain-character"),
            pytest.param("tab\there\x1b[31m", id="control-characters"),
        ],
    )
    def test_accepts_odd_but_safe_ids(self, session_id: str) -> None:
        layout.check_session_id(session_id)


class TestSafeRelpath:
    @pytest.mark.parametrize(
        "relpath",
        [
            pytest.param("../x", id="parent"),
            pytest.param("a/../../x", id="parent-inside"),
            pytest.param("a/..", id="trailing-parent"),
            pytest.param("/etc/x", id="absolute"),
            pytest.param("a//b", id="empty-segment"),
            pytest.param("a/", id="trailing-slash"),
            pytest.param("./a", id="dot-segment"),
            pytest.param("", id="empty"),
            pytest.param(None, id="none"),
            pytest.param(42, id="int"),
            pytest.param(["a"], id="list"),
        ],
    )
    def test_refuses_paths_leaving_the_session_folder(self, relpath: object) -> None:
        with pytest.raises(UnsafePathError):
            layout.safe_relpath(relpath)

    @pytest.mark.parametrize(
        "relpath",
        [
            pytest.param("AudioTags/tag_0001.wav", id="audio-tag"),
            pytest.param("AudioTags/tag one 'x'.wav", id="spaces-and-quotes"),
            pytest.param("AudioTags/été.wav", id="unicode"),
            pytest.param("a/..b/c..", id="dots-inside-names"),
            pytest.param(".hidden", id="hidden-file"),
            pytest.param("a\\..\\..\\x", id="backslashes-are-plain-characters"),
        ],
    )
    def test_returns_safe_paths_unchanged(self, relpath: str) -> None:
        assert layout.safe_relpath(relpath) == relpath


class TestLocalPath:
    def test_mirrors_the_bucket_layout_under_the_data_dir(self, tmp_path: Path) -> None:
        path = layout.local_path(tmp_path, DAY, SESSION, "AudioTags/tag_0001.wav")
        assert path == tmp_path / "2026" / "11" / "20" / SESSION / "AudioTags" / "tag_0001.wav"
        assert path.resolve().is_relative_to(tmp_path.resolve())

    @pytest.mark.parametrize(
        ("session_id", "relpath"),
        [
            pytest.param(SESSION, "../../x.wav", id="parent-path"),
            pytest.param(SESSION, "/etc/passwd", id="absolute-path"),
            pytest.param("..", "x.wav", id="parent-session-id"),
        ],
    )
    def test_refuses_paths_outside_the_data_dir(self, tmp_path: Path, session_id: str, relpath: str) -> None:
        with pytest.raises(UnsafePathError):
            layout.local_path(tmp_path / "data", DAY, session_id, relpath)

    def test_refuses_a_path_no_column_can_hold(self) -> None:
        with pytest.raises(UnstorableTextError):
            layout.safe_relpath("a\x00b")

    def test_names_too_long_for_the_file_system_are_shortened_with_their_hash(self, tmp_path: Path) -> None:
        long_session, long_name = "s" * 300, "é" * 200 + ".wav"
        path = layout.local_path(tmp_path, DAY, long_session, f"AudioTags/{long_name}")
        session_dir, tags_dir, name = path.parts[-3:]
        assert tags_dir == "AudioTags"
        for part, original in ((session_dir, long_session), (name, long_name)):
            assert len(part.encode()) <= layout.NAME_MAX
            assert part.startswith(original[:50])
            assert "~" in part
        assert layout.local_name(long_name) != layout.local_name(long_name[:-5] + "x.wav")
        assert layout.local_name("short.wav") == "short.wav"

    def test_refuses_a_symlink_inside_the_data_dir_pointing_outside(self, tmp_path: Path) -> None:
        data_dir, outside = tmp_path / "data", tmp_path / "outside"
        outside.mkdir()
        session_dir = data_dir / "2026" / "11" / "20" / SESSION
        session_dir.mkdir(parents=True)
        (session_dir / "AudioTags").symlink_to(outside, target_is_directory=True)
        with pytest.raises(UnsafePathError, match="outside the data directory"):
            layout.local_path(data_dir, DAY, SESSION, "AudioTags/tag_0001.wav")

    def test_accepts_a_symlink_that_stays_inside_the_data_dir(self, tmp_path: Path) -> None:
        data_dir = tmp_path / "data"
        session_dir = data_dir / "2026" / "11" / "20" / SESSION
        (data_dir / "elsewhere").mkdir(parents=True)
        session_dir.mkdir(parents=True)
        (session_dir / "AudioTags").symlink_to(data_dir / "elsewhere", target_is_directory=True)
        path = layout.local_path(data_dir, DAY, SESSION, "AudioTags/tag_0001.wav")
        assert path == session_dir / "AudioTags" / "tag_0001.wav"

    def test_accepts_a_data_dir_that_is_itself_a_symlink(self, tmp_path: Path) -> None:
        (tmp_path / "real").mkdir()
        (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
        path = layout.local_path(tmp_path / "link", DAY, SESSION, "AudioTags/tag_0001.wav")
        assert path == tmp_path / "link" / "2026" / "11" / "20" / SESSION / "AudioTags" / "tag_0001.wav"
