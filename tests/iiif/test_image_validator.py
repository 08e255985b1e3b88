"""The official IIIF Image API validator (iiif-validator 1.0.5, unpatched) against a real
`archive serve` on an archive where the validator's test image was ingested by the real
`archive ingest`.

Three validator tests cannot run on Python 3 (format_webp, format_pdf and format_jp2 call
``urllib.urlopen``); those formats are covered byte for byte in test_image_formats.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from archive.catalog import Catalog

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
VALIDATOR_IMAGE = SHARED / "iiif-validator" / "67352ccc-d1b0-11e1-89ae-279075081939.png"
BIN = Path(sys.executable).parent
PY3_BROKEN = {"format_webp", "format_pdf", "format_jp2"}

pytestmark = pytest.mark.slow


def root_conftest(config: pytest.Config):
    """tests/conftest.py as pytest loaded it (it holds start_server and stop_server)."""
    wanted = REPO / "tests" / "conftest.py"
    for plugin in config.pluginmanager.get_plugins():
        if Path(getattr(plugin, "__file__", "") or "").resolve() == wanted:
            return plugin
    raise RuntimeError("tests/conftest.py is not loaded")


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
        'images = "image"\n',
        encoding="utf-8",
    )
    (folder / "records.csv").write_text(
        f"id,title,image\nV-1,検証画像,images/{VALIDATOR_IMAGE.name}\n", encoding="utf-8")


@pytest.fixture(scope="module")
def served_validator_image(tmp_path_factory, request):
    """(host:port, image id) of the validator image on a real `archive serve`."""
    if not VALIDATOR_IMAGE.is_file():
        pytest.fail(f"missing the validator's test image {VALIDATOR_IMAGE}")
    shared = root_conftest(request.config)
    root = tmp_path_factory.mktemp("validator")
    folder, home = root / "validator", root / "home"
    _collection(folder)
    ingest = subprocess.run([str(BIN / "archive"), "--home", str(home), "ingest", str(folder)],
                            capture_output=True, text=True, timeout=300)
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    catalog = Catalog(home / "catalog.sqlite")
    image_id = catalog.get_record("validator_V-1").images[0].id
    catalog.close()
    proc, base = shared.start_server(home)
    yield base.removeprefix("http://"), image_id
    shared.stop_server(proc)


def run_validator(server: str, prefix: str, image_id: str, version: str) -> dict[str, bool]:
    """Every test the validator runs at level 3, by name: passed or not."""
    out = subprocess.run(
        [sys.executable, str(BIN / "iiif-validate.py"), "-s", server, "-p", prefix,
         "-i", image_id, f"--version={version}", "--level=3"],
        capture_output=True, text=True, timeout=600,
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
    server, image_id = served_validator_image
    results = run_validator(server, prefix, image_id, version)
    assert len(results) == total, sorted(results)
    failed = {name for name, ok in results.items() if not ok}
    assert failed <= PY3_BROKEN, f"validator failures: {sorted(failed - PY3_BROKEN)}"
    assert len(results) - len(failed) >= total - 3
