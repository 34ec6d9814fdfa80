"""Tests for tests.strategies: the hostile folders are what the stores they are written to can hold.

An end-to-end property that uploads a folder a server refuses or rewrites would test the server, not
the pipeline: every key must be valid UTF-8 of at most 1,024 bytes, and within each store's measured
limits (see :data:`tests.strategies.STORES`).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from event_ingest import layout
from tests.hypothesis_profiles import pure
from tests.strategies import MAX_KEY_BYTES, NAME_MAX, STORES, bucket_days, session_folders


def check_keys(objects: dict[str, bytes], store: str) -> None:
    for key in objects:
        assert 0 < len(key.encode("utf-8")) <= MAX_KEY_BYTES
        if store == "moto":
            assert "\n" not in key
        if store == "seaweedfs":
            assert "\\" not in key
            assert "\x00" not in key
            assert all(part not in ("", ".", "..") for part in key.split("/"))
            assert all(len(part.encode("utf-8")) <= NAME_MAX for part in key.split("/"))


class TestSessionFolders:
    @pure(100)
    @given(st.sampled_from(STORES), st.data())
    def test_keys_fit_the_store_and_the_folder_has_its_report(self, store: str, data: st.DataObject) -> None:
        objects = data.draw(session_folders(prefix="raw/", store=store))
        check_keys(objects, store)
        folders = {layout.split_session_key("raw/", key)[:2] for key in objects}
        assert len(folders) == 1
        ((_, session_id),) = folders
        assert any(key.endswith("/" + layout.report_name(session_id)) for key in objects)


class TestBucketDays:
    @pure(50)
    @given(st.sampled_from(STORES), st.data())
    def test_keys_fit_the_store_and_lie_under_the_day(self, store: str, data: st.DataObject) -> None:
        objects = data.draw(bucket_days(prefix="raw/", store=store))
        check_keys(objects, store)
        assert all(key.startswith("raw/2026/11/2") for key in objects)
