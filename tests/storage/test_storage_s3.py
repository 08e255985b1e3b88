"""The storage contract on S3 (a real s3proxy), and what only it has."""

from __future__ import annotations

import pytest
from storage_contract import IMG, StoreContract, commit_bytes

from archive.config import Config
from archive.context import Archive
from archive.records import ImageRef, Institution, Record
from archive.storage import Home
from archive.storage_s3 import S3Store

RIGHTS = "http://rightsstatements.org/vocab/InC/1.0/"


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
    """The Range of every GET the store sends from now on (watching its requests)."""
    sent, request = [], store._request

    def counting(target, headers, fresh=False):
        sent.append(headers.get("Range"))
        return request(target, headers, fresh)

    store._request = counting
    return sent


def test_a_read_range_is_one_ranged_get(s3_url, tmp_path, s3):
    store = S3Store.from_url(s3_url, home=Home(tmp_path), timeout=5.0)
    data = bytes(range(256)) * 100
    commit_bytes(store, IMG, "v1", data)
    sent = count_gets(store)
    with store.open(IMG, "v1") as fh:
        assert fh.read_range(1000, 500) == data[1000:1500]
    assert sent == ["bytes=1000-1499"]


def test_kept_alive_connections_the_server_closed_are_not_a_failure(s3_url, tmp_path, s3):
    import http.client
    import socket

    store = S3Store.from_url(s3_url, home=Home(tmp_path), timeout=5.0)
    commit_bytes(store, IMG, "v1", b"0123456789" * 100)
    with store.open(IMG, "v1") as fh:
        assert fh.read_range(0, 10) == b"0123456789"
        pool = store._connections()
        (where,) = pool._idle  # the store's endpoint, with the connection kept
        # Connections the server closed while they were idle: some already seen closed,
        # one whose close is not visible yet (it fails only when used).
        listener = socket.create_server(("127.0.0.1", 0))
        dead = []
        for _ in range(3):
            conn = http.client.HTTPConnection(*listener.getsockname(), timeout=5)
            conn.connect()
            listener.accept()[0].close()
            dead.append(conn)
        listener.close()
        hidden = http.client.HTTPConnection(where[1], where[2], timeout=5)
        hidden.sock = socket.socket()  # never connected: sending on it fails
        pool._idle[where] = [*dead, hidden] + pool._idle[where][:0]
        assert fh.read_range(10, 10) == b"0123456789", "a fresh connection, not a 503"
        assert fh.read_range(20, 10) == b"0123456789"
        assert all(conn.sock is None for conn in dead), "the dead ones were closed"


def test_blocks_read_neighbours_in_one_get_and_stay_bounded(s3_url, tmp_path, s3):
    import random
    import threading

    store = S3Store.from_url(s3_url, home=Home(tmp_path), timeout=5.0, block_kb=4, read_cache_mb=1)
    store.read_cache = 64 * 1024  # 16 blocks; reads over 8 KiB bypass the cache
    data = random.Random(5).randbytes(100_000)
    commit_bytes(store, IMG, "v1", data)
    sent = count_gets(store)
    with store.open(IMG, "v1") as fh:
        assert fh.read_range(1000, 500) == data[1000:1500]
        assert sent == ["bytes=0-4095"], "the aligned block around it"
        assert fh.read_range(2000, 1000) == data[2000:3000]
        assert fh.read_range(4000, 96) == data[4000:4096]
        assert len(sent) == 1, "a neighbour in a kept block costs no GET"
        assert fh.read_range(4000, 5000) == data[4000:9000]
        assert sent[1:] == ["bytes=4096-12287"], "the missing blocks 1 and 2 in one GET"
        assert fh.read_range(99_990, 100) == data[99_990:]  # short at the end of the object
        assert sent[2:] == ["bytes=98304-102399"] and fh.size == len(data)
        assert fh.read_range(20_000, 9000) == data[20_000:29_000]
        assert sent[3:] == ["bytes=20000-28999"], "a large read bypasses the blocks"
        fh.seek(3000)
        assert fh.read(200) == data[3000:3200] and len(sent) == 4
        for n in range(3, 24):  # 21 more blocks through a cache of 16
            assert fh.read_range(n * 4096, 10) == data[n * 4096 : n * 4096 + 10]
        assert store.blocks.size <= 64 * 1024 and len(store.blocks) == 16
        before = len(sent)
        assert fh.read_range(0, 10) == data[:10]
        assert len(sent) == before + 1, "the least recently used block was dropped"
    with store.open(IMG, "v1") as other:  # a new handle on a kept block learns the size
        assert other.read_range(0, 4) == data[:4] and other.size == len(data)
    # Threads asking for the same missing block at once: one GET, all get the bytes.
    sent.clear()
    barrier, results = threading.Barrier(8), []

    def reader() -> None:
        with store.open(IMG, "v1") as fh:
            barrier.wait()
            results.append(fh.read_range(25_000, 300))  # block 6: dropped above

    threads = [threading.Thread(target=reader) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    block = 6 * 4096
    assert sent == [f"bytes={block}-{block + 4095}"], sent
    assert results == [data[25_000:25_300]] * 8


def test_the_image_server_reads_structure_once_then_one_get_per_tile(home, s3_url, s3):
    import pyvips

    from iiif.image_service import ImageService
    from ingest.tiling import write_pyramid

    env = {
        "ARCHIVE_STORAGE_URL": s3_url,
        "ARCHIVE_CACHE_SIZE_MB": "0",
        "ARCHIVE_STORAGE_READ_CACHE_MB": "0",  # exact ranges: the blocks have their test
    }
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


def test_the_image_server_reads_tiles_from_kept_blocks_or_in_one_get(home, s3_url, s3):
    import pyvips

    from iiif.image_service import ImageService
    from ingest.tiling import write_pyramid

    env = {"ARCHIVE_STORAGE_URL": s3_url, "ARCHIVE_CACHE_SIZE_MB": "0"}  # blocks: default
    archive = Archive(Config.load(home, environ=env))
    try:
        noise = pyvips.Image.gaussnoise(2000, 1500, sigma=12, mean=128, seed=3)
        image = noise.bandjoin([noise.flip("horizontal"), noise.flip("vertical")]).cast("uchar")
        temp = archive.images.temp_path()
        write_pyramid(image.copy(interpretation="srgb"), temp)
        img = "craft_A-2~0123456789"
        archive.images.commit(temp, img, "v1")
        archive.catalog.put_institution(
            Institution("craft", {"ja": "工芸館", "en": "Craft"}, RIGHTS)
        )
        archive.catalog.put_record(
            Record(
                id="craft_A-2",
                institution="craft",
                local_id="A-2",
                fields={"id": "A-2", "title": "x"},
                rights=RIGHTS,
                images=[ImageRef(img, "a.tif", width=2000, height=1500, version="v1")],
            )
        )
        store = archive.images
        sent = count_gets(store)
        service = ImageService(archive)
        service.info_json("3", img, "http://x")
        level = service.source(img).pyramid.levels[0]
        key, bs = store.key(img, "v1"), store.block_size
        assert level.offsets[-1] > 4 * bs, "the level spans several blocks"
        gets, touched = 0, set()
        initial = {n for k, n in list(store.blocks._blocks) if k == key}  # the structure's
        for row in range(5):  # row by row, as a viewer's first view fills in
            for col in range(7):
                index = row * level.tiles_across + col
                start, count = level.offsets[index], level.counts[index]
                needed = set(range(start // bs, (start + count - 1) // bs + 1))
                held = {n for k, n in list(store.blocks._blocks) if k == key}
                before = len(sent)
                region = f"{col * 256},{row * 256},256,256"
                result = service.render(service.plan("3", img, region, "256,", "0", "default.jpg"))
                assert result.body.data[:2] == b"\xff\xd8"
                expected = 1 if needed - held else 0
                assert len(sent) - before == expected, (row, col, needed, held, sent[before:])
                gets += expected
                touched |= needed
        # Each block read once (a tile across two missing ones takes both in one GET).
        assert gets <= len(touched - initial) and 3 * gets < 35, (gets, touched - initial)
    finally:
        archive.close()


@pytest.mark.parametrize("cache_mb", ["0", "64"], ids=["no derivative cache", "cache"])
def test_a_second_worker_of_the_node_reads_the_structure_from_the_disk_cache(
    home, s3_url, s3, cache_mb
):
    import pyvips

    from iiif import image_service
    from iiif.image_tiff import Pyramid, read_pyramid
    from ingest.tiling import write_pyramid

    env = {"ARCHIVE_STORAGE_URL": s3_url, "ARCHIVE_CACHE_SIZE_MB": cache_mb}
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
        image_service._remote_structure.cache_clear()  # as in another process of the node,
        archive.images._blocks = None  # whose block cache starts empty
        sent.clear()
        two = image_service._remote_structure(archive.images, img, "v1")
        assert sent == [] and [lv.width for lv in two.levels] == [lv.width for lv in one.levels]
        assert first.cache.enabled == (cache_mb != "0")
    finally:
        image_service._remote_structure.cache_clear()
        image_service._NODE_CACHE.clear()
        archive.close()
