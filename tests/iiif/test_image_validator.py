"""The official IIIF Image API validator (iiif-validator 1.0.5, unpatched) against a real
`archive serve` on an archive where the validator's test image was ingested by the real
`archive ingest`.

Three validator tests cannot run on Python 3 (format_webp, format_pdf and format_jp2 call
``urllib.urlopen``); those formats are covered byte for byte in test_image_formats.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path

import pytest
import pyvips

from archive.catalog import Catalog

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
VALIDATOR_IMAGE = SHARED / "iiif-validator" / "67352ccc-d1b0-11e1-89ae-279075081939.png"
BIN = Path(sys.executable).parent
PY3_BROKEN = {"format_webp", "format_pdf", "format_jp2"}

pytestmark = pytest.mark.slow


def get(url: str, headers: dict | None = None) -> tuple[int, Message, bytes]:
    """Status, headers (looked up case-insensitively, as HTTP names are) and body."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def _collection(folder: Path) -> None:
    (folder / "images").mkdir(parents=True)
    shutil.copy(VALIDATOR_IMAGE, folder / "images" / VALIDATOR_IMAGE.name)
    (folder / "institution.toml").write_text(
        'id = "validator"\n'
        'name = { ja = "検証用", en = "Validator" }\n'
        'rights = "http://creativecommons.org/publicdomain/zero/1.0/"\n'
        "[records]\n"
        'path = "records.csv"\n'
        "[fields]\n"
        'id = "id"\n'
        'title = "title"\n'
        'images = "image"\n'
        'public = "public"\n'
        'max_image_size = "cap"\n',
        encoding="utf-8",
    )
    name = VALIDATOR_IMAGE.name
    (folder / "records.csv").write_text(
        "id,title,image,public,cap\n"
        f"V-1,検証画像,images/{name},,\n"
        f"V-2,非公開,images/{name},非公開,\n"
        f"V-3,縮小公開,images/{name},,300\n",
        encoding="utf-8",
    )


@pytest.fixture(scope="module")
def served_validator_image(tmp_path_factory, servers):
    """(host:port, image id) of the validator image on a real `archive serve`."""
    if not VALIDATOR_IMAGE.is_file():
        pytest.fail(f"missing the validator's test image {VALIDATOR_IMAGE}")
    root = tmp_path_factory.mktemp("validator")
    folder, home = root / "validator", root / "home"
    _collection(folder)
    ingest = subprocess.run(
        [str(BIN / "archive"), "--home", str(home), "ingest", str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    catalog = Catalog(home / "catalog.sqlite")
    ids = {
        local: catalog.get_record(f"validator_{local}", public_only=False).images[0].id
        for local in ("V-1", "V-2", "V-3")
    }
    catalog.close()
    proc, base = servers.start_server(home)
    yield base.removeprefix("http://"), ids
    servers.stop_server(proc)


def run_validator(server: str, prefix: str, image_id: str, version: str) -> dict[str, bool]:
    """Every test the validator runs at level 3, by name: passed or not."""
    out = subprocess.run(
        [
            sys.executable,
            str(BIN / "iiif-validate.py"),
            "-s",
            server,
            "-p",
            prefix,
            "-i",
            image_id,
            f"--version={version}",
            "--level=3",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = out.stdout + out.stderr
    results = {}
    for name, verdict in re.findall(r"test (\w+) (PASS|FAIL)", log):
        results[name] = verdict == "PASS"
    assert results, log[-3000:]
    return results


@pytest.mark.parametrize(
    ("version", "prefix", "total"), [("3.0", "iiif/3", 45), ("2.0", "iiif/2", 42)]
)
def test_official_validator_passes(served_validator_image, version, prefix, total):
    server, ids = served_validator_image
    results = run_validator(server, prefix, ids["V-1"], version)
    assert len(results) == total, sorted(results)
    failed = {name for name, ok in results.items() if not ok}
    assert failed <= PY3_BROKEN, f"validator failures: {sorted(failed - PY3_BROKEN)}"
    assert len(results) - len(failed) >= total - 3


def test_ingested_images_through_the_real_server(served_validator_image):
    """`archive ingest` then `archive serve`: thumbnails, caps and non-public records."""
    server, ids = served_validator_image
    base = f"http://{server}/iiif/3"
    status, headers, body = get(f"{base}/{ids['V-1']}/full/!400,400/0/default.jpg")
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert body.startswith(b"\xff\xd8")
    status, headers, body = get(f"{base}/{ids['V-3']}/info.json")
    info = json.loads(body)
    assert (info["width"], info["height"]) == (300, 300)
    status, _, body = get(f"{base}/{ids['V-3']}/full/max/0/default.png")
    assert status == 200
    assert pyvips.Image.new_from_buffer(body, "").width == 300
    for path in ("/info.json", "/full/max/0/default.jpg", ""):
        status, headers, _ = get(f"{base}/{ids['V-2']}{path}")
        assert status == 404
        assert headers["Access-Control-Allow-Origin"] == "*"
    status, headers, _ = get(
        f"{base}/{ids['V-1']}/full/max/0/default.jpg",
        {"If-None-Match": get(f"{base}/{ids['V-1']}/full/max/0/default.jpg")[1]["ETag"]},
    )
    assert status == 304


def test_reingest_while_serving_never_serves_old_pixels(tmp_path, servers):
    """A running `archive serve` sees a re-ingested image at once: new size, new pixels,
    new validators; the old version's tiles are never served again."""
    folder, home = tmp_path / "museum", tmp_path / "home"
    (folder / "images").mkdir(parents=True)
    image = folder / "images" / "a.png"
    pyvips.Image.black(600, 400, bands=3).copy(interpretation="srgb").pngsave(str(image))
    (folder / "institution.toml").write_text(
        'id = "reingest"\nname = { ja = "再取込", en = "Re-ingest" }\n'
        'rights = "http://creativecommons.org/publicdomain/zero/1.0/"\n'
        '[records]\npath = "records.csv"\n'
        '[fields]\nid = "id"\ntitle = "title"\nimages = "image"\n',
        encoding="utf-8",
    )
    (folder / "records.csv").write_text("id,title,image\nR-1,画像,images/a.png\n", encoding="utf-8")

    def ingest() -> str:
        out = subprocess.run(
            [str(BIN / "archive"), "--home", str(home), "ingest", str(folder)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        catalog = Catalog(home / "catalog.sqlite")
        try:
            return catalog.get_record("reingest_R-1").images[0].id
        finally:
            catalog.close()

    image_id = ingest()
    proc, base = servers.start_server(home)
    try:
        tile = f"{base}/iiif/3/{image_id}/0,0,256,256/256,/0/default.png"
        status, before, body = get(tile)
        assert status == 200 and pyvips.Image.new_from_buffer(body, "").avg() < 3
        (pyvips.Image.black(800, 500, bands=3) + 255).cast("uchar").copy(
            interpretation="srgb"
        ).pngsave(str(image))
        assert ingest() == image_id
        status, after, body = get(tile)
        assert status == 200 and pyvips.Image.new_from_buffer(body, "").avg() > 250
        assert after["ETag"] != before["ETag"]
        assert get(tile, {"If-None-Match": before["ETag"]})[0] == 200
        info = json.loads(get(f"{base}/iiif/3/{image_id}/info.json")[2])
        assert (info["width"], info["height"]) == (800, 500)
    finally:
        servers.stop_server(proc)
