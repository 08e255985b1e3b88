"""The sample collections are well-formed, varied enough to exercise the format, and
their images are generated deterministically.

These tests read the folders with the standard library only (not with ingest), so a
bug in the readers cannot hide a broken sample, and the other way round.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import sys
import tomllib
from pathlib import Path

import pytest
from PIL import Image

from archive.records import FIELDS_BY_NAME, INSTITUTION_ID_RE, is_valid_rights, split_images

COLLECTIONS = Path(__file__).resolve().parents[1] / "collections_data"
FOLDERS = sorted(p.parent for p in COLLECTIONS.glob("*/institution.toml"))


def _load_module(name: str):
    spec = importlib.util.spec_from_file_location(name, COLLECTIONS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look the module up while the class is built
    spec.loader.exec_module(module)
    return module


make_images = _load_module("make_images")


def _toml(folder: Path) -> dict:
    return tomllib.loads((folder / "institution.toml").read_text(encoding="utf-8"))


def _decode(data: bytes, encoding: str) -> str:
    if encoding == "auto":
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return data.decode("cp932")
    return data.decode(encoding)


def _rows(folder: Path) -> list[dict]:
    """The records of a folder as dicts keyed by source column/key."""
    meta = _toml(folder)
    path = folder / meta["records"]["path"]
    text = _decode(path.read_bytes(), meta["records"].get("encoding", "auto"))
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if path.suffix == ".json":
        data = json.loads(text)
        return data["records"] if isinstance(data, dict) else data
    delimiter = "\t" if path.suffix == ".tsv" else ","
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter))


def _canonical(folder: Path) -> list[dict]:
    """Rows with canonical field names (as far as this test needs them)."""
    fields = _toml(folder)["fields"]
    out = []
    for row in _rows(folder):
        rec = {name: row.get(column, "") for name, column in fields.items()}
        images = rec.get("images", "")
        rec["images"] = images if isinstance(images, list) else split_images(images)
        rec["_extra"] = [k for k, v in row.items() if k not in fields.values() and v]
        out.append(rec)
    return out


ALL = {folder.name: _canonical(folder) for folder in FOLDERS}


@pytest.fixture(scope="module")
def generated() -> None:
    make_images.generate()


def test_there_are_at_least_four_institutions_in_four_formats():
    assert len(FOLDERS) >= 4
    suffixes = {Path(_toml(f)["records"]["path"]).suffix for f in FOLDERS}
    assert {".csv", ".jsonl", ".tsv", ".json"} <= suffixes


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda f: f.name)
def test_institution_toml_is_complete(folder: Path):
    meta = _toml(folder)
    assert INSTITUTION_ID_RE.match(meta["id"]) and meta["id"] == folder.name
    assert meta["name"]["ja"] and meta["name"]["en"]
    assert is_valid_rights(meta["rights"])
    assert (folder / meta["logo"]).suffix == ".png"
    assert set(meta["fields"]) <= set(FIELDS_BY_NAME), "only canonical field names"
    assert {"id", "title", "title_en", "title_kana", "date", "images"} <= set(meta["fields"])
    assert (folder / meta["records"]["path"]).is_file()


def test_each_institution_names_its_columns_its_own_way():
    title_columns = [_toml(f)["fields"]["title"] for f in FOLDERS]
    id_columns = [_toml(f)["fields"]["id"] for f in FOLDERS]
    assert len(set(title_columns)) >= 4 and len(set(id_columns)) >= 4


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda f: f.name)
def test_records_are_well_formed(folder: Path):
    records = ALL[folder.name]
    assert 8 <= len(records) <= 20
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)), "ids are unique within the institution"
    for rec in records:
        assert rec["title"] and rec["images"], rec["id"]
        if rec.get("rights"):
            assert is_valid_rights(rec["rights"]), rec["id"]
    assert any(rec["_extra"] for rec in records), "some columns are left unmapped"


def test_cp932_file_really_is_cp932():
    craft = COLLECTIONS / "craft-museum"
    meta = _toml(craft)
    data = (craft / meta["records"]["path"]).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    text = data.decode("cp932")
    for only_in_cp932 in "髙㈱Ⅲ㎝":
        assert only_in_cp932 in text
        with pytest.raises(UnicodeEncodeError):
            only_in_cp932.encode("shift_jis")  # strict Shift_JIS would fail on this file
    assert meta["max_image_size"] > 0, "this institution caps its public images"


def test_the_samples_cover_the_format():
    records = [rec for recs in ALL.values() for rec in recs]
    public_values = [str(rec.get("public", "")) for rec in records]
    assert sum(v in ("非公開", "0", "false", "no") for v in public_values) >= 2
    behaviors = {rec.get("behavior") for rec in records}
    assert {"paged", "continuous"} <= behaviors
    assert sum(len(rec["images"]) > 1 for rec in records) >= 5
    assert any(rec.get("max_image_size") for rec in records), "a record with its own cap"
    keyword_cells = [rec.get("keywords") for rec in records]
    assert any(isinstance(k, list) for k in keyword_cells)
    assert any(isinstance(k, str) and "、" in k for k in keyword_cells)
    assert any(isinstance(k, str) and ";" in k for k in keyword_cells)
    dates = {rec.get("date") for rec in records}
    for written in ("江戸時代後期", "明治10年", "寛政三年", "19世紀", "1895", "昭和初期"):
        assert written in dates


def test_every_referenced_image_is_specified_and_nothing_else():
    referenced = set()
    for folder in FOLDERS:
        referenced.add(f"{folder.name}/{_toml(folder)['logo']}")
        for rec in ALL[folder.name]:
            referenced.update(f"{folder.name}/{path}" for path in rec["images"])
    specified = [spec.path for spec in make_images.IMAGES]
    assert len(specified) == len(set(specified))
    assert referenced == set(specified)
    assert all(path.split("/")[1:3] == ["images", "generated"] for path in specified)


def test_images_are_generated_with_the_specified_sizes(generated):
    shapes = []
    for spec in make_images.IMAGES:
        with Image.open(COLLECTIONS / spec.path) as img:
            img.load()  # truncated files fail here
            assert img.size == (spec.width, spec.height), spec.path
            assert img.mode == "RGB"
            shapes.append(spec.width / spec.height)
    assert any(s < 0.8 for s in shapes), "some portrait"
    assert any(s >= 8 for s in shapes), "one very wide, like a scroll"


def test_images_stay_small(generated):
    for folder in FOLDERS:
        specs = [s for s in make_images.IMAGES if s.path.startswith(folder.name + "/")]
        size = sum((COLLECTIONS / s.path).stat().st_size for s in specs)
        assert size < 3_000_000, f"{folder.name}: {size} bytes of images"
        assert max(s.width * s.height for s in specs) <= 5_000_000


def test_rendering_is_deterministic():
    spec = make_images.ImageSpec("x/images/generated/t.jpg", 120, 90, "mask_hannya")
    assert make_images.render(spec) == make_images.render(spec)
    other = make_images.ImageSpec("y/images/generated/t.jpg", 120, 90, "mask_hannya")
    assert make_images.render(other) != make_images.render(spec), "seeded by path"


def test_generate_skips_right_files_and_redraws_damaged_ones(tmp_path, monkeypatch):
    specs = (
        make_images.ImageSpec("a/images/generated/one.jpg", 100, 80, "plate"),
        make_images.ImageSpec("a/images/generated/two.png", 60, 60, "logo"),
        make_images.ImageSpec("a/images/generated/three.tif", 50, 70, "manuscript"),
    )
    monkeypatch.setattr(make_images, "IMAGES", specs)
    assert make_images.generate(tmp_path) == (3, 0)
    first = (tmp_path / specs[0].path).read_bytes()
    assert make_images.generate(tmp_path) == (0, 3)
    (tmp_path / specs[0].path).write_bytes(first[: len(first) // 2])  # truncated
    assert make_images.generate(tmp_path) == (1, 2)
    assert (tmp_path / specs[0].path).read_bytes() == first
    assert not list(tmp_path.rglob("*.tmp")), "no temporary files left behind"
