"""The storage contract on S3 (a real s3proxy), and what only it has."""

from __future__ import annotations

import pytest
from storage_contract import IMG, StoreContract, commit_bytes

from archive.config import Config
from archive.context import Archive
from archive.storage import Home
from archive.storage_s3 import S3Store


class TestS3Store(StoreContract):
    @pytest.fixture
    def store(self, s3_url, tmp_path):
        store = Home(tmp_path).ensure()
        s3 = S3Store.from_url(s3_url, home=store, timeout=5.0)
        s3.multipart_threshold = 5 * 1024 * 1024  # the contract's large file goes multipart
        return s3


def test_storage_url_chooses_the_bucket_and_keys_mirror_the_local_layout(home, s3_url, s3):
    archive = Archive(Config.load(home, environ={"ARCHIVE_STORAGE_URL": s3_url}))
    try:
        store = archive.images
        assert isinstance(store, S3Store) and store.url == s3_url
        commit_bytes(store, IMG, "v1", b"x")
        bucket, _, prefix = s3_url[5:].partition("/")
        listing = s3.client().list_objects_v2(Bucket=bucket)["Contents"]
        keys = [o["Key"] for o in listing if not o["Key"].endswith("/")]  # jclouds' folders
        assert keys == [f"{prefix}/{store.key(IMG, 'v1').split('/', 1)[1]}"]
        assert keys[0].endswith(f"/{IMG}.v1.tif")
        assert not list((home / "images").glob("??/*.tif")), "nothing on the local disk"
    finally:
        archive.close()


def test_a_tile_read_is_one_ranged_get(s3_url, tmp_path, s3):
    store = S3Store.from_url(s3_url, home=Home(tmp_path), timeout=5.0)
    commit_bytes(store, IMG, "v1", bytes(range(256)) * 100)
    calls = []
    store.client.meta.events.register(
        "before-send.s3.GetObject", lambda request, **_: calls.append(request.headers["Range"])
    )
    with store.open(IMG, "v1") as fh:
        assert fh.read_range(1000, 500) == (bytes(range(256)) * 100)[1000:1500]
    assert calls == [b"bytes=1000-1499"] or calls == ["bytes=1000-1499"]
