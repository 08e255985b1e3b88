"""The storage contract on S3 (a real s3proxy), and what only it has."""

from __future__ import annotations

import pytest
from storage_contract import IMG, StoreContract, commit_bytes

from archive.config import Config
from archive.context import Archive
from archive.records import ImageRef, Institution, Record
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


def count_gets(store: S3Store) -> list[str]:
    """The Range of every GET the store sends from now on (watching its HTTP pool)."""
    pool = store._pool()
    sent, request = [], pool.request

    def counting(method, url, headers=None, **kw):
        sent.append(headers.get("Range") if headers else None)
        return request(method, url, headers=headers, **kw)

    pool.request = counting
    return sent


def test_a_read_range_is_one_ranged_get(s3_url, tmp_path, s3):
    store = S3Store.from_url(s3_url, home=Home(tmp_path), timeout=5.0)
    data = bytes(range(256)) * 100
    commit_bytes(store, IMG, "v1", data)
    sent = count_gets(store)
    with store.open(IMG, "v1") as fh:
        assert fh.read_range(1000, 500) == data[1000:1500]
    assert sent == ["bytes=1000-1499"]


def test_the_image_server_reads_structure_once_then_one_get_per_tile(home, s3_url, s3):
    import pyvips

    from iiif.image_service import ImageService
    from ingest.tiling import write_pyramid

    env = {"ARCHIVE_STORAGE_URL": s3_url, "ARCHIVE_CACHE_SIZE_MB": "0"}
    archive = Archive(Config.load(home, environ=env))
    try:
        x = pyvips.Image.xyz(2000, 1500)
        image = (x[0] % 256).bandjoin([x[1] % 256, (x[0] + x[1]) % 256]).cast("uchar")
        temp = archive.images.temp_path()
        write_pyramid(image.copy(interpretation="srgb"), temp)
        img = "craft_A-1~0123456789"
        archive.images.commit(temp, img, "v1")
        archive.catalog.put_institution(
            Institution(
                "craft",
                {"ja": "工芸館", "en": "Craft"},
                "http://rightsstatements.org/vocab/InC/1.0/",
            )
        )
        archive.catalog.put_record(
            Record(
                id="craft_A-1",
                institution="craft",
                local_id="A-1",
                fields={"id": "A-1", "title": "x"},
                rights="http://rightsstatements.org/vocab/InC/1.0/",
                images=[ImageRef(img, "a.tif", width=2000, height=1500, version="v1")],
            )
        )
        sent = count_gets(archive.images)
        service = ImageService(archive)
        service.info_json("3", img, "http://x")
        structure = len(sent)
        assert 1 <= structure <= 8, sent  # the header and directories, read ahead
        for region in ("0,0,256,256", "512,256,256,256", "1024,1024,256,256"):
            before = len(sent)
            result = service.render(service.plan("3", img, region, "256,", "0", "default.jpg"))
            assert result.body.data[:2] == b"\xff\xd8"
            assert len(sent) == before + 1, sent[before:]
        service.render(service.plan("3", img, "0,0,1024,1024", "256,", "0", "default.jpg"))
        assert len(sent) == structure + 4, "a stored level-2 tile: one GET, no decoding"
    finally:
        archive.close()


def test_a_second_worker_of_the_node_reads_the_structure_from_the_disk_cache(home, s3_url, s3):
    import pyvips

    from iiif import image_service
    from iiif.image_tiff import Pyramid, read_pyramid
    from ingest.tiling import write_pyramid

    env = {"ARCHIVE_STORAGE_URL": s3_url}
    archive = Archive(Config.load(home, environ=env))
    try:
        x = pyvips.Image.xyz(1500, 900)
        image = (x[0] % 256).bandjoin([x[1] % 256, (x[0] * 2) % 256]).cast("uchar")
        temp = archive.images.temp_path()
        write_pyramid(image.copy(interpretation="srgb"), temp)
        local = read_pyramid(temp)
        restored = Pyramid.from_bytes(local.to_bytes())
        assert [
            (lv.width, lv.height, list(lv.offsets), list(lv.counts), lv.jpeg_tables)
            for lv in restored.levels
        ] == [
            (lv.width, lv.height, list(lv.offsets), list(lv.counts), lv.jpeg_tables)
            for lv in local.levels
        ]
        img = "craft_B-1~0123456789"
        archive.images.commit(temp, img, "v1")
        first = image_service.ImageService(archive)
        sent = count_gets(archive.images)
        one = image_service._remote_structure(archive.images, img, "v1")
        assert sent, "the first worker reads the pyramid"
        image_service._remote_structure.cache_clear()  # as in another process of the node
        sent.clear()
        two = image_service._remote_structure(archive.images, img, "v1")
        assert sent == [] and [lv.width for lv in two.levels] == [lv.width for lv in one.levels]
        assert first.cache.enabled
    finally:
        image_service._remote_structure.cache_clear()
        image_service._NODE_CACHE.clear()
        archive.close()
