"""The storage contract, as one suite every pyramid store subclass runs (like the search
backends' BackendContract). A subclass provides ``store``: an empty store of its kind."""

from __future__ import annotations

import os

import pytest

from archive.errors import NotFound
from archive.storage import PyramidStore

IMG = "craft_A-1~0123456789"
OTHER = "craft_A-2~abcdef0123"


def commit_bytes(store: PyramidStore, image_id: str, version: str, data: bytes):
    temp = store.temp_path()
    temp.write_bytes(data)
    where = store.commit(temp, image_id, version)
    assert not temp.exists(), "commit takes the temporary file away"
    return where


class StoreContract:
    @pytest.fixture
    def store(self) -> PyramidStore:
        raise NotImplementedError

    def test_a_committed_pyramid_reads_back_by_ranges(self, store):
        data = os.urandom(200_000)
        assert not store.exists(IMG, "v1")
        commit_bytes(store, IMG, "v1", data)
        assert store.exists(IMG, "v1")
        with store.open(IMG, "v1") as fh:
            assert fh.read_range(0, 16) == data[:16]
            assert fh.read_range(150_000, 1000) == data[150_000:151_000]
            assert fh.size == len(data)
            fh.seek(100)
            assert fh.read(10) == data[100:110] and fh.tell() == 110
            fh.seek(-5, 2)
            assert fh.read(100) == data[-5:]

    def test_reads_past_the_end_are_short(self, store):
        commit_bytes(store, IMG, "v1", b"0123456789")
        with store.open(IMG, "v1") as fh:
            assert fh.read_range(5, 100) == b"56789"

    def test_a_missing_pyramid_is_file_not_found(self, store):
        with pytest.raises(FileNotFoundError):
            with store.open(IMG, "v9") as fh:
                fh.read_range(0, 10)

    def test_ids_and_versions_that_could_escape_are_refused(self, store):
        for bad in ("../etc/passwd", "a~0123456789/../../x", "", "craft_A-1~zz"):
            with pytest.raises(NotFound):
                store.exists(bad, "v1")
            with pytest.raises(NotFound):
                store.open(bad, "v1")
        with pytest.raises(NotFound):
            store.exists(IMG, "../v")

    def test_versions_live_side_by_side_and_are_never_overwritten(self, store):
        commit_bytes(store, IMG, "v1", b"old pixels")
        commit_bytes(store, IMG, "v2", b"new pixels")
        commit_bytes(store, IMG, "v1", b"other bytes under a committed name")
        with store.open(IMG, "v1") as fh:
            assert fh.read_range(0, 100) == b"old pixels"
        with store.open(IMG, "v2") as fh:
            assert fh.read_range(0, 100) == b"new pixels"

    def test_files_lists_every_committed_pyramid(self, store):
        commit_bytes(store, IMG, "v1", b"a")
        commit_bytes(store, OTHER, "v7", b"b")
        store.put_report("ingest-20260101T000000000000Z.json", b"{}")
        listed = {(i, v) for i, v, _ in store.files()}
        assert listed == {(IMG, "v1"), (OTHER, "v7")}
        assert all(f.location for f in store.files())

    def test_sweep_keeps_what_the_catalog_refers_to(self, store):
        commit_bytes(store, IMG, "v1", b"a")
        commit_bytes(store, IMG, "v2", b"b")
        commit_bytes(store, OTHER, "v1", b"c")
        abandoned = store.temp_path()
        abandoned.write_bytes(b"half a pyramid")
        assert store.sweep({(IMG, "v2"), (OTHER, "v1")}) == 1
        assert {(i, v) for i, v, _ in store.files()} == {(IMG, "v2"), (OTHER, "v1")}
        assert not abandoned.exists()
        assert store.sweep(set()) == 2
        assert list(store.files()) == []

    def test_remove_is_idempotent(self, store):
        commit_bytes(store, IMG, "v1", b"a")
        store.remove(IMG, "v1")
        store.remove(IMG, "v1")
        assert not store.exists(IMG, "v1")

    def test_a_large_pyramid_is_committed_whole(self, store):
        data = os.urandom(6 * 1024 * 1024 + 123)  # over the S3 store's multipart threshold
        commit_bytes(store, IMG, "big", data)
        with store.open(IMG, "big") as fh:
            assert fh.size == len(data) or fh.read_range(0, 1) and fh.size == len(data)
            assert fh.read_range(len(data) - 200, 200) == data[-200:]
            assert fh.read_range(5 * 1024 * 1024 - 10, 20) == data[5 * 1024 * 1024 - 10 :][:20]

    def test_reports_are_kept_in_order(self, store):
        assert store.reports() == []
        store.put_report("ingest-20260102T000000000000Z.json", b'{"b": 2}')
        store.put_report("ingest-20260101T000000000000Z.json", b'{"a": 1}')
        assert store.reports() == [
            "ingest-20260101T000000000000Z.json",
            "ingest-20260102T000000000000Z.json",
        ]
        assert store.get_report("ingest-20260102T000000000000Z.json") == b'{"b": 2}'
        assert "ingest-20260101" in store.report_location("ingest-20260101T000000000000Z.json")

    def test_check_passes_on_a_usable_store(self, store):
        store.check()

    def test_a_store_survives_pickling_for_tiling_processes(self, store):
        import pickle

        commit_bytes(store, IMG, "v1", b"abc")
        copy = pickle.loads(pickle.dumps(store))
        assert copy.exists(IMG, "v1") and copy.location() == store.location()
