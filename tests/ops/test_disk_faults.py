"""Disk and file faults, for real.

A full disk during ingest: the `archive ingest` process (and the tiling processes it
starts) runs under a file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored, so a write past
it fails with EFBIG as a full disk fails with ENOSPC). The run stops with one clear
message naming the path, nothing is half-committed, and the next run resumes.

Corrupted pyramids on disk (truncated, overwritten with garbage, a broken directory)
behind a real `archive serve`: their tiles and info.json answer 404 or 503, never a
500, with one log line per file, and the rest of the archive serves on.
"""

from __future__ import annotations

import json
import resource
import signal
import struct
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from archive.config import Config
from archive.context import Archive
from iiif.image_tiff import read_pyramid

pytestmark = pytest.mark.slow
LIMIT = 300_000  # bytes: small records and pyramids fit, a 1400-pixel noisy image does not


def limited() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG from write(), not a killed process
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


def catalogued(home: Path) -> dict[str, list[tuple[str, str]]]:
    """record id -> [(image id, version)], through the catalog's public methods."""
    archive = Archive(Config.load(home, environ={}))
    try:
        return {
            r.id: [(i.id, i.version) for i in r.images]
            for r in archive.catalog.records(public_only=False)
        }
    finally:
        archive.close()


def test_full_disk_during_ingest_stops_cleanly_and_the_next_run_resumes(
    tmp_path, make_folder, archive_cmd
):
    images = {f"S-{n}": (64, 48) for n in range(4)}
    images.update({"BIG-1": (1400, 1000), "BIG-2": (1400, 1000)})
    folder = make_folder(tmp_path, images)
    home = tmp_path / "home"

    first = archive_cmd(home, "ingest", "--workers", "2", str(folder), preexec_fn=limited)
    out = first.stdout + first.stderr
    assert first.returncode == 1, out
    assert "Traceback" not in out
    assert "cannot write the pyramid" in out and "File too large" in out, out
    assert f"{home.resolve()}/images/tmp/" in out, "the message names the path"
    assert "run the same command again" in out

    # Nothing half-committed: every catalogued record has every pyramid, whole; no
    # temporary file is left; every file in the store is a whole pyramid.
    store = Archive(Config.load(home, environ={})).images
    for rec, refs in catalogued(home).items():
        for image, version in refs:
            assert read_pyramid(store.path(image, version)), rec
    assert not any((home / "images" / "tmp").glob("*")), "a half-written pyramid is left"
    for _, _, path in store.files():
        read_pyramid(path)

    second = archive_cmd(home, "ingest", "--workers", "2", "--json", str(folder))
    assert second.returncode == 0, second.stdout + second.stderr
    report = json.loads(second.stdout)
    assert report["ok"] and report["search"] == "rebuilt (an earlier run had left it behind)"
    assert len(catalogued(home)) == len(images)
    assert report["images_tiled"] >= 2  # the two that did not fit; the rest reused
    found = archive_cmd(home, "search", "--json", "茶碗", "--size", "20")
    assert json.loads(found.stdout)["total"] == len(images)

    third = archive_cmd(home, "ingest", "--json", str(folder))
    assert third.returncode == 0 and json.loads(third.stdout)["images_tiled"] == 0


# --- corrupted pyramids behind a real server --------------------------------------------------
def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def garbage(path: Path) -> None:
    size = path.stat().st_size
    path.write_bytes(bytes((n * 7919) % 251 for n in range(size)))


def break_ifd(path: Path) -> None:
    """Keep the header, point the first directory at entries of nonsense."""
    data = bytearray(path.read_bytes())
    (offset,) = struct.unpack_from("<I", data, 4)
    data[offset : offset + 2] = struct.pack("<H", 900)  # 900 entries: reads garbage tags
    data[offset + 2 : offset + 2 + 24] = b"\xff" * 24
    path.write_bytes(bytes(data))


def test_corrupted_pyramids_answer_503_or_404_with_one_log_line(
    tmp_path, make_folder, archive_cmd, servers
):
    names = {"GOOD": (700, 500), "CUT": (700, 500), "JUNK": (700, 500), "IFD": (700, 500)}
    folder = make_folder(tmp_path, names)
    home = tmp_path / "home"
    assert archive_cmd(home, "ingest", str(folder)).returncode == 0
    records = catalogued(home)
    store = Archive(Config.load(home, environ={})).images
    ids = {rid.rsplit("_", 1)[1]: refs[0] for rid, refs in records.items()}
    truncate(store.path(*ids["CUT"]))
    garbage(store.path(*ids["JUNK"]))
    break_ifd(store.path(*ids["IFD"]))

    log = tmp_path / "serve.log"
    proc, base = servers.start_server(home, workers=1, log=log)
    try:
        for _ in range(3):
            for name in ("CUT", "JUNK", "IFD"):
                image = ids[name][0]
                for path in (
                    "info.json",
                    "0,0,256,256/256,/0/default.jpg",
                    "full/100,/0/default.png",
                ):
                    status, body = fetch(f"{base}/iiif/3/{image}/{path}")
                    assert status in (404, 503), (name, path, status, body[:200])
                    assert b"Traceback" not in body
            good = ids["GOOD"][0]
            assert fetch(f"{base}/iiif/3/{good}/0,0,256,256/256,/0/default.jpg")[0] == 200
            assert fetch(f"{base}/iiif/3/{good}/info.json")[0] == 200
            assert fetch(f"{base}/")[0] == 200
            assert fetch(f"{base}/api/search?q=%E8%8C%B6%E7%A2%97")[0] == 200
    finally:
        servers.stop_server(proc)
    text = log.read_text("utf-8")
    assert "Traceback" not in text
    for name in ("CUT", "JUNK", "IFD"):
        lines = [line for line in text.splitlines() if ids[name][0] in line]
        assert len(lines) == 1, (name, lines)
    assert ids["GOOD"][0] not in text


def test_a_full_disk_under_the_catalog_rolls_its_batch_back(tmp_path, make_folder, archive_cmd):
    """The catalog itself cannot grow: its batch is rolled back whole, the message names
    the catalog, and the next run (with room again) puts every record in."""
    folder = make_folder(tmp_path, {f"R-{n}": (32, 32) for n in range(40)})
    home = tmp_path / "home"
    assert archive_cmd(home, "ingest", str(folder)).returncode == 0
    folder = make_folder(tmp_path, {f"R-{n}": (32, 32) for n in range(400)})
    room = (home / "catalog.sqlite").stat().st_size + 8192

    def catalog_full() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (room, room))

    first = archive_cmd(home, "ingest", str(folder), preexec_fn=catalog_full)
    out = first.stdout + first.stderr
    assert first.returncode == 1 and "Traceback" not in out, out
    assert f"cannot write the catalog {home.resolve()}/catalog.sqlite" in out, out
    assert len(catalogued(home)) == 40, "a batch was half-committed"
    second = archive_cmd(home, "ingest", "--json", str(folder))
    assert second.returncode == 0, second.stdout + second.stderr
    assert len(catalogued(home)) == 400
    found = archive_cmd(home, "search", "--json", "茶碗", "--size", "1")
    assert json.loads(found.stdout)["total"] == 400
    assert archive_cmd(home, "check").returncode == 0
