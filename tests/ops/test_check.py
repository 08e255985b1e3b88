"""`archive check [--deep] [--repair]` on a real archive, damaged in every way it checks:
each problem is found and names its record and image, the exit status says healthy or
not, and --repair leaves a healthy archive that serves the repaired images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archive.config import Config
from archive.context import Archive
from iiif.image_tiff import read_pyramid

pytestmark = pytest.mark.slow
IMAGES = {"A": (600, 400), "B": (600, 400), "C": (300, 200), "D": (300, 200), "E": (520, 300)}


def check(archive_cmd, home: Path, *args: str) -> tuple[int, dict, str]:
    result = archive_cmd(home, "check", "--json", *args)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout), result.stderr


def kinds(doc: dict) -> dict[tuple[str, str | None, str | None], str]:
    return {(p["kind"], p["record"], p["image"]): p["detail"] for p in doc["problems"]}


@pytest.fixture
def built(tmp_path, make_folder, archive_cmd):
    folder = make_folder(tmp_path, IMAGES)
    home = tmp_path / "home"
    result = archive_cmd(home, "ingest", str(folder))
    assert result.returncode == 0, result.stdout + result.stderr
    archive = Archive(Config.load(home, environ={}))
    from search import get_backend

    archive.search = get_backend(archive.config)
    records = {r.local_id: r for r in archive.catalog.records(public_only=False)}
    yield home, folder, archive, records
    archive.close()


def test_a_healthy_archive_checks_healthy(built, archive_cmd):
    home, _, _, records = built
    status, doc, _ = check(archive_cmd, home)
    assert status == 0 and doc["healthy"] and doc["problems"] == []
    assert doc["records"] == len(IMAGES) and doc["documents"] == len(IMAGES)
    status, doc, _ = check(archive_cmd, home, "--deep")
    assert status == 0 and doc["tiles"] > len(IMAGES)
    text = archive_cmd(home, "check")
    assert text.returncode == 0 and "healthy" in text.stdout


def test_every_kind_of_damage_is_found_and_named_then_repaired(built, archive_cmd, servers):
    home, folder, archive, records = built
    store = archive.images
    image = {name: records[name].images[0] for name in IMAGES}
    path = {name: store.path(image[name].id, image[name].version) for name in IMAGES}
    data = path["A"].read_bytes()
    path["A"].write_bytes(data[: len(data) // 2])  # truncated
    path["B"].write_bytes(b"\x00garbage" * 500)  # overwritten
    path["C"].unlink()  # gone
    orphan = store.path(image["D"].id, "0ld")
    orphan.write_bytes(path["D"].read_bytes())  # a version the catalog does not name
    store.tmp.mkdir(exist_ok=True)
    (store.tmp / "left-over.tif").write_bytes(b"half")
    archive.search.delete([records["D"].id])  # missing from the index
    archive.catalog.delete_record(records["E"].id)  # left in the index; its pyramid orphaned

    status, doc, _ = check(archive_cmd, home)
    assert status == 1 and not doc["healthy"]
    found = kinds(doc)
    assert ("damaged-pyramid", records["A"].id, image["A"].id) in found
    assert "truncated" in found[("damaged-pyramid", records["A"].id, image["A"].id)]
    assert ("damaged-pyramid", records["B"].id, image["B"].id) in found
    assert ("missing-pyramid", records["C"].id, image["C"].id) in found
    assert ("orphaned-file", None, image["D"].id) in found
    assert ("orphaned-file", None, image["E"].id) in found
    assert ("orphaned-file", None, None) in found  # the temporary file
    assert ("missing-from-index", records["D"].id, None) in found
    assert ("left-in-index", records["E"].id, None) in found
    assert len(doc["problems"]) == 8, doc["problems"]
    text = archive_cmd(home, "check").stdout
    assert f"record {records['A'].id}, image {image['A'].id}" in text

    # Without folders, --repair fixes the index and orphans, and says what it cannot.
    result = archive_cmd(home, "check", "--repair")
    assert result.returncode == 1 and "give the institution folders" in result.stderr
    assert "re-indexed" in result.stderr and "swept" in result.stderr
    status, doc, _ = check(archive_cmd, home)
    assert {p["kind"] for p in doc["problems"]} == {"missing-pyramid"}

    result = archive_cmd(home, "check", "--repair", str(folder))
    assert result.returncode == 0, result.stdout + result.stderr
    status, doc, _ = check(archive_cmd, home, "--deep")
    assert status == 0 and doc["healthy"], doc["problems"]
    for name in ("A", "B", "C"):
        assert read_pyramid(path[name]).width == IMAGES[name][0]
    proc, base = servers.start_server(home, workers=1)
    try:
        import urllib.request

        for name in ("A", "B", "C"):
            url = f"{base}/iiif/3/{image[name].id}/0,0,256,256/256,/0/default.jpg"
            with urllib.request.urlopen(url, timeout=30) as resp:
                assert resp.status == 200 and resp.read()[:2] == b"\xff\xd8"
    finally:
        servers.stop_server(proc)


def test_deep_reads_every_tile(built, archive_cmd):
    """A tile damaged inside a pyramid whose structure is intact: only --deep sees it."""
    home, _, archive, records = built
    ref = records["A"].images[0]
    path = archive.images.path(ref.id, ref.version)
    level = read_pyramid(path).levels[0]
    data = bytearray(path.read_bytes())
    end = level.offsets[1] + level.counts[1]
    data[end - 2 : end] = b"\x00\x00"  # the JPEG's end marker of one tile
    path.write_bytes(bytes(data))
    assert check(archive_cmd, home)[0] == 0
    status, doc, _ = check(archive_cmd, home, "--deep")
    assert status == 1
    assert [(p["kind"], p["image"]) for p in doc["problems"]] == [("damaged-pyramid", ref.id)]
    assert "level 0, tile 1,0" in doc["problems"][0]["detail"]
