"""Properties of event_ingest.layout: any key splits into what rebuilds it, any path stays local and fits."""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from event_ingest import files, layout
from event_ingest.errors import UnsafePathError, UnstorableTextError, is_infrastructure_fault
from event_ingest.safe_text import is_storable
from tests.hypothesis_profiles import pure
from tests.strategies import PREFIXES, fs_names, json_values, relpaths, s3_keys, segments, texts

#: Any day a date holds, years before 1000 included: a conf range or a key may name them.
ANY_DAY = st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31))
PREFIX_TEXTS = PREFIXES | texts(max_size=10, surrogates=False)
SESSION_IDS = segments(odd=True).filter(bool) | st.just("20261120T101533Z_veh042")
#: How a shortened name ends: ``~`` and 16 hex digits of a hash.
SHORTENED = re.compile(r"~[0-9a-f]{16}\Z")
#: Local relpaths: what a report may name, not only what S3 holds (lone surrogates, NUL, anything).
ANY_RELPATHS = relpaths() | st.lists(texts(max_size=12), min_size=1, max_size=4).map("/".join)


def temporary_names(final: Path) -> list[str]:
    """The names of the temporary files :func:`files.write_atomically` leaves in ``final``'s folder."""
    return [name for name in os.listdir(final.parent) if name.endswith(".part")]


class TestSplitSessionKey:
    @pure(600)
    @given(PREFIX_TEXTS, s3_keys())
    def test_any_key_gives_none_or_parts_that_rebuild_it(self, prefix: str, key: str) -> None:
        parts = layout.split_session_key(prefix, key)
        if parts is not None:
            day, session_id, relpath = parts
            assert session_id
            assert relpath
            assert "/" not in session_id
            assert layout.session_prefix(prefix, day, session_id) + relpath == key

    @pure(500)
    @given(PREFIX_TEXTS, ANY_DAY, SESSION_IDS, relpaths())
    def test_every_key_in_a_session_folder_splits_back(
        self, prefix: str, day: dt.date, session_id: str, relpath: str
    ) -> None:
        key = layout.session_prefix(prefix, day, session_id) + relpath
        assert layout.split_session_key(prefix, key) == (day, session_id, relpath)


class TestSafeRelpath:
    @pure(1000)
    @given(ANY_RELPATHS | json_values(max_leaves=3))
    def test_refuses_or_gives_a_storable_path_below_the_folder(self, relpath: object) -> None:
        try:
            safe = layout.safe_relpath(relpath)
        except (UnsafePathError, UnstorableTextError):
            return
        assert safe == relpath
        assert is_storable(safe)
        assert not safe.startswith("/")
        assert all(part not in ("", ".", "..") for part in safe.split("/"))


class TestLocalName:
    @pure(1000)
    @given(fs_names(min_bytes=1, max_bytes=1100) | segments().filter(bool))
    def test_fits_the_file_system_and_keeps_names_that_fit(self, name: str) -> None:
        local = layout.local_name(name)
        assert 0 < len(local.encode("utf-8")) <= layout.NAME_MAX
        if len(name.encode("utf-8")) <= layout.NAME_MAX and not SHORTENED.search(name):
            assert local == name

    @pure(1000)
    @given(st.data(), fs_names(min_bytes=256, max_bytes=1100))
    def test_two_names_never_share_a_local_name(self, data: st.DataObject, long_name: str) -> None:
        # A name may be the shortened form of another: a bucket can hold both.
        other = data.draw(st.sampled_from([layout.local_name(long_name), long_name[:-1], long_name + "x"]))
        assert layout.local_name(long_name) != layout.local_name(other)


class TestLocalPaths:
    @pure(300)
    @given(ANY_DAY, SESSION_IDS, st.lists(ANY_RELPATHS, min_size=1, max_size=3))
    def test_refuses_or_gives_a_writable_path_inside_the_data_dir(
        self, day: dt.date, session_id: str, relpaths_: list[str]
    ) -> None:
        faults: list[OSError] = []
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = Path(tmp) / "data"
            for relpath in relpaths_:
                try:
                    path = layout.local_path(data_dir, day, session_id, relpath)
                except (UnsafePathError, UnstorableTextError):
                    continue
                inside = path.relative_to(data_dir)
                assert os.path.realpath(path).startswith(os.path.realpath(data_dir) + os.sep)
                assert all(0 < len(os.fsencode(part)) <= layout.NAME_MAX for part in inside.parts)
                # The file can be written there for real, its temporary name included; what goes
                # wrong (a file where a folder must go, or the other way round) is the data's fault.
                try:
                    files.write_if_needed(path, [b"x"], size=1, md5=None)
                except OSError as exc:
                    faults.append(exc)
                    continue
                assert path.read_bytes() == b"x"
                assert not temporary_names(path)
        assert not [exc for exc in faults if is_infrastructure_fault(exc)]

    @pure(200)
    @given(SESSION_IDS, relpaths(odd=False), st.sampled_from(["", "AudioTags", "AudioTags/deeper"]))
    def test_a_symlink_out_of_the_data_dir_is_refused(self, session_id: str, relpath: str, link: str) -> None:
        day = dt.date(2026, 11, 20)
        with tempfile.TemporaryDirectory() as tmp:
            data_dir, outside = Path(tmp) / "data", Path(tmp) / "outside"
            outside.mkdir()
            try:
                folder = layout.local_session_dir(data_dir, day, session_id)
            except (UnsafePathError, UnstorableTextError):
                return
            linked = folder / link if link else folder
            linked.parent.mkdir(parents=True, exist_ok=True)
            linked.symlink_to(outside, target_is_directory=True)
            full = f"{link}/{relpath}" if link else relpath
            with pytest.raises((UnsafePathError, UnstorableTextError)):
                layout.local_path(data_dir, day, session_id, full)
            assert not os.listdir(outside)
