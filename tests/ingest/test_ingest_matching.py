"""Images found by their record's number in a camera folder: ``ID.ext``, ``ID_N``,
``ID-N``, ``ID (N)``, any extension case, nested folders, ordered by N; ambiguous
names, images named after no record and public records without images reported."""

from __future__ import annotations

from pathlib import Path

import pytest
from ingest_helpers import INC, write_image, write_records

from archive.cli import cli
from archive.errors import CollectionError
from ingest.collection import load_collection
from ingest.matching import build_matcher, name_patterns
from ingest.pipeline import run_ingest


def folder_with(tmp_path: Path, rows: list[dict], images: list[str], extra: str = "") -> Path:
    folder = tmp_path / "folk"
    folder.mkdir()
    records = write_records(folder, rows, "csv")
    columns = {"id": "番号", "title": "名称", "public": "公開"}
    if any("画像" in r for r in rows):
        columns["images"] = "画像"
    mapping = "\n".join(f'{k} = "{v}"' for k, v in columns.items())
    (folder / "institution.toml").write_text(
        f'id = "folk"\nname = "民俗館"\nrights = "{INC}"\n{extra}\n'
        f'[records]\npath = "{records}"\n[fields]\n{mapping}\n',
        encoding="utf-8",
    )
    for seed, relative in enumerate(images):
        write_image(folder / relative, seed=seed)
    return folder


def rec(number: str, public: str = "") -> dict:
    return {"番号": number, "名称": f"資料 {number}", "公開": public}


CAMERA = [
    "camera/2024-03/F-1.jpg",
    "camera/F-1_2.JPG",
    "camera/deeper/still/F-1 (10).tif",
    "camera/f-1-3.jpeg",  # the number typed in lower case
    "camera/F-10.jpg",  # F-10's own image (also fits "image 10 of F")
    "camera/F-10-1.png",
    "camera/F-99.jpg",  # no record F-99
    "camera/notes.jpg",  # named after nothing
    "camera/._F-2.jpg",  # a macOS companion file: not an image
]


def test_images_matched_by_number(tmp_path: Path, archive) -> None:
    rows = [rec("F-1"), rec("F-10"), rec("F-2"), rec("F-3", public="非公開")]
    folder = folder_with(tmp_path, rows, CAMERA[:-1])
    (folder / "camera/._F-2.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    report = run_ingest(archive, [str(folder)], workers=1, progress=None)
    inst = report.institutions[0]
    assert inst.failed == 0, report.render()
    f1 = archive.catalog.get_record("folk_F-1", public_only=False)
    assert [i.source for i in f1.images] == [
        "camera/2024-03/F-1.jpg",
        "camera/F-1_2.JPG",
        "camera/f-1-3.jpeg",
        "camera/deeper/still/F-1 (10).tif",
    ]
    f10 = archive.catalog.get_record("folk_F-10", public_only=False)
    assert [i.source for i in f10.images] == ["camera/F-10.jpg", "camera/F-10-1.png"]
    assert inst.unmatched_images == ["camera/F-99.jpg", "camera/notes.jpg"]
    assert inst.without_images == ["F-2"]  # F-3 has none either, but is not public
    text = report.render()
    assert "image named after no record (2):" in text and "camera/F-99.jpg" in text
    assert "public, no image (1):" in text and "    F-2" in text


def test_ambiguous_names_go_to_the_full_number_and_are_reported(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, [rec("F"), rec("F-1"), rec("F-10")], CAMERA[:5])
    matcher = build_matcher(load_collection(folder))
    assert [m.relative for m in matcher.images_for("F-1")] == [
        "camera/2024-03/F-1.jpg",
        "camera/F-1_2.JPG",
        "camera/f-1-3.jpeg",
        "camera/deeper/still/F-1 (10).tif",
    ]
    assert [m.relative for m in matcher.images_for("F-10")] == ["camera/F-10.jpg"]
    assert matcher.images_for("F") == []
    assert "camera/2024-03/F-1.jpg: given to F-1, not to F (image 1)" in matcher.ambiguous
    assert "camera/F-10.jpg: given to F-10, not to F (image 10)" in matcher.ambiguous


def test_two_files_in_the_same_place_are_reported(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, [rec("F-1")], ["camera/F-1_1.jpg", "backup/F-1_1.jpg"])
    matcher = build_matcher(load_collection(folder))
    assert len(matcher.images_for("F-1")) == 2  # nothing is dropped
    assert matcher.ambiguous == [
        "camera/F-1_1.jpg: the same place in the order as backup/F-1_1.jpg "
        "(both are used; remove or rename one)"
    ]


def test_dry_run_lists_unmatched_and_missing(tmp_path: Path, runner, home) -> None:
    folder = folder_with(tmp_path, [rec("F-1"), rec("F-2")], ["F-1.jpg", "F-7_1.jpg"])
    result = runner.invoke(cli, ["--home", str(home), "ingest", "--dry-run", str(folder)])
    assert result.exit_code == 0, result.output
    assert "image named after no record (1):\n    F-7_1.jpg" in result.output
    assert "public, no image (1):\n    F-2" in result.output


def test_listed_images_win_and_empty_cells_fall_back(tmp_path: Path, archive) -> None:
    rows = [
        {**rec("F-1"), "画像": "scans/F-2.jpg"},  # listed by hand: the file is F-1's
        {**rec("F-2"), "画像": ""},  # empty: found by number (F-2_1.jpg, not F-2.jpg)
    ]
    folder = folder_with(tmp_path, rows, ["scans/F-2.jpg", "scans/F-2_1.jpg"])
    report = run_ingest(archive, [str(folder)], workers=1, progress=None)
    assert report.institutions[0].failed == 0, report.render()
    sources = {
        rid: [i.source for i in archive.catalog.get_record(rid, public_only=False).images]
        for rid in ("folk_F-1", "folk_F-2")
    }
    assert sources == {"folk_F-1": ["scans/F-2.jpg"], "folk_F-2": ["scans/F-2_1.jpg"]}
    assert report.institutions[0].unmatched_images == []


def test_names_and_folder_are_configurable(tmp_path: Path) -> None:
    extra = '[images]\nfolder = "photos"\nnames = ["{id}", "{id}.{n}", "写真{id}-{n}"]\n'
    images = ["photos/A-1.2.jpg", "photos/写真A-1-3.JPG", "photos/A-1_4.jpg", "other/A-1.jpg"]
    folder = folder_with(tmp_path, [rec("A-1")], images, extra=extra)
    matcher = build_matcher(load_collection(folder))
    assert [m.relative for m in matcher.images_for("A-1")] == [
        "photos/A-1.2.jpg",
        "photos/写真A-1-3.JPG",
    ]
    assert matcher.unmatched == ["photos/A-1_4.jpg"]  # other/ is not looked at


def test_matching_can_be_switched_off(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, [rec("A-1")], ["A-1.jpg"], extra="[images]\nmatch = false\n")
    assert build_matcher(load_collection(folder)) is None


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ('[images]\nnames = ["{n}"]\n', "images.names"),
        ('[images]\nnames = ["{id}/{n}"]\n', "images.names"),
        ('[images]\nfolder = "../elsewhere"\n', "images.folder"),
        ("[images]\nmatch = 1\n", "images.match"),
        ("[images]\npattern = 'x'\n", "images.pattern"),
    ],
)
def test_bad_images_table_is_named(tmp_path: Path, table: str, key: str) -> None:
    folder = folder_with(tmp_path, [rec("A-1")], [], extra=table)
    with pytest.raises(CollectionError) as err:
        load_collection(folder)
    assert err.value.field == key


def test_name_patterns_order_by_number() -> None:
    (underscore,) = name_patterns(["{id}_{n}"])
    m = underscore.fullmatch("F-1_2_10")
    assert (m.group("id"), m.group("n")) == ("F-1_2", "10")
