"""`archive init`: from a folder with a register to a proposed institution.toml."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import openpyxl
import pytest
from ingest_helpers import write_image

from archive.cli import cli
from ingest.collection import load_collection
from ingest.propose import field_for

COLLECTIONS = Path(__file__).resolve().parents[2] / "collections_data"
SAMPLES = sorted(p.parent.name for p in COLLECTIONS.glob("*/institution.toml"))
ARCHIVE = str(Path(sys.executable).parent / "archive")


def copy_without_toml(name: str, tmp_path: Path) -> tuple[Path, dict]:
    source = COLLECTIONS / name
    folder = tmp_path / name
    folder.mkdir()
    original = tomllib.loads((source / "institution.toml").read_text(encoding="utf-8"))
    shutil.copy(source / original["records"]["path"], folder)
    return folder, original


@pytest.mark.parametrize("name", SAMPLES)
def test_init_proposes_the_hand_written_mapping(name: str, tmp_path: Path, runner) -> None:
    folder, original = copy_without_toml(name, tmp_path)
    result = runner.invoke(cli, ["init", str(folder)])
    assert result.exit_code == 0, result.output
    proposed = tomllib.loads((folder / "institution.toml").read_text(encoding="utf-8"))
    assert proposed["fields"] == original["fields"]
    assert proposed["id"] == name and proposed["records"]["path"] == original["records"]["path"]
    collection = load_collection(folder)  # what init writes is a valid institution.toml
    assert collection.fields == original["fields"]
    assert "Before the first ingest, check" in result.output


def test_init_comments_samples_and_lists_unmapped(tmp_path: Path, runner) -> None:
    folder, _ = copy_without_toml("noh-museum", tmp_path)
    result = runner.invoke(cli, ["init", "--id", "kanazawa-noh", str(folder)])
    assert result.exit_code == 0, result.output
    text = (folder / "institution.toml").read_text(encoding="utf-8")
    assert 'id = "kanazawa-noh"' in text
    assert 'title = "名称"' in text and "# 能面 小面" in text  # a sample value beside it
    assert "#   登録日: 1987/04/01" in text  # unmapped columns listed, with a value
    assert "Not mapped (kept as extra metadata): 所蔵経緯, 登録日, 備考" in result.output


def test_init_never_overwrites_without_force(tmp_path: Path, runner) -> None:
    folder, _ = copy_without_toml("craft-museum", tmp_path)
    (folder / "institution.toml").write_text("# mine\n", encoding="utf-8")
    result = runner.invoke(cli, ["init", str(folder)])
    assert result.exit_code == 1 and "already exists; use --force" in result.output
    assert (folder / "institution.toml").read_text(encoding="utf-8") == "# mine\n"
    result = runner.invoke(cli, ["init", "--force", str(folder)])
    assert result.exit_code == 0, result.output
    assert "# mine" not in (folder / "institution.toml").read_text(encoding="utf-8")
    assert "detected: cp932" in (folder / "institution.toml").read_text(encoding="utf-8")


def test_init_asks_nothing_without_a_terminal(tmp_path: Path) -> None:
    folder, _ = copy_without_toml("folk-museum", tmp_path)
    (folder / "extra.csv").write_text("a,b\n1,2\n", encoding="utf-8")  # a second candidate
    done = subprocess.run(
        [ARCHIVE, "init", "--records", "records.json", str(folder)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "also here, not used: extra.csv" in done.stdout


def test_init_on_an_excel_register_with_camera_images(tmp_path: Path, runner, home) -> None:
    """The two commands of issue 14: init, then a dry run that finds images by number."""
    folder = tmp_path / "記念館"
    folder.mkdir()
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "収蔵品台帳"
    ws["A1"] = "収蔵品台帳（令和6年3月31日現在）"
    ws.append([])
    ws.append(["整理番号", "品名", "ふりがな", "作家名", "年紀", "法量", "備考"])
    ws.append(["M-1", "書簡", "しょかん", "川辺 秋声", dt.date(1901, 5, 3), "縦20cm", ""])
    ws.append(["M-2", "色紙", "しきし", "川辺 秋声", "大正五年", "", "表装あり"])
    book.save(folder / "台帳.xlsx")
    write_image(folder / "写真" / "M-1_1.jpg")
    write_image(folder / "写真" / "M-1_2.JPG", seed=1)
    result = runner.invoke(cli, ["init", str(folder)])
    assert result.exit_code == 1 and "--id" in result.output  # 記念館 makes no id
    result = runner.invoke(cli, ["init", "--id", "memorial", str(folder)])
    assert result.exit_code == 0, result.output
    proposed = tomllib.loads((folder / "institution.toml").read_text(encoding="utf-8"))
    assert proposed["records"] == {"path": "台帳.xlsx", "sheet": "収蔵品台帳"}
    assert "# header_row = 3 " in (folder / "institution.toml").read_text(encoding="utf-8")
    assert proposed["fields"] == {
        "id": "整理番号",
        "title": "品名",
        "title_kana": "ふりがな",
        "creator": "作家名",
        "date": "年紀",
        "dimensions": "法量",
    }
    assert "2 file(s) found by number for 1 record(s), 0 named after no record" in result.output
    dry = runner.invoke(cli, ["--home", str(home), "ingest", "--dry-run", str(folder)])
    assert dry.exit_code == 0, dry.output
    assert "2 added" in dry.output and "public, no image (1):\n    M-2" in dry.output


def test_init_with_hostile_column_names_and_cells(tmp_path: Path, runner) -> None:
    """Escape sequences and line breaks in a header or a cell reach neither the terminal
    nor the TOML file's comments; the column names themselves stay exact in the TOML."""
    folder = tmp_path / "hall"
    folder.mkdir()
    evil = 'メモ\x1b[2J\n[fields]\nid = "x"'
    text = f'資料番号,名称,"{evil}"\nA-1,壺,"\x1b]0;pwned\x07\r\n# not a comment"\n'
    (folder / "records.csv").write_text(text, encoding="utf-8")
    result = runner.invoke(cli, ["init", str(folder)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    written = (folder / "institution.toml").read_text(encoding="utf-8")
    assert "\x1b" not in written
    proposed = tomllib.loads(written)  # still valid TOML, with only the real mapping
    assert proposed["fields"] == {"id": "資料番号", "title": "名称"}
    assert load_collection(folder).fields == {"id": "資料番号", "title": "名称"}


@pytest.mark.parametrize(
    ("column", "field"),
    [
        ("資料番号", "id"),
        ("所蔵品番号", "id"),
        ("資料名", "title"),
        ("カナ", "title_kana"),
        ("制作者", "creator"),
        ("制作年", "date"),
        ("種別", "object_type"),
        ("品質・形状", "material"),
        ("サイズ", "dimensions"),
        ("概要", "description"),
        ("WEB公開", "public"),
        ("ファイル名", "images"),
        ("作品名（英語）", "title_en"),
        ("英文解説", "description_en"),
        ("Title (English)", "title_en"),
        ("descriptionEn", "description_en"),
        ("資料名（よみ）", "title_kana"),
        ("Object Number", "id"),
        ("登録日", None),  # a registration date is not the date of making
        ("受入年", None),
        ("備考", None),
        ("", None),
    ],
)
def test_field_for(column: str, field: str | None) -> None:
    assert field_for(column) == field


def test_init_asks_on_a_terminal(tmp_path: Path) -> None:
    """With a terminal, init asks which file holds the records and the names."""
    from ingest.propose import run_init

    folder, _ = copy_without_toml("noh-museum", tmp_path)
    (folder / "old.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    asked: list[str] = []
    answers = iter(["1", "金沢能楽美術館", "Kanazawa Noh Museum"])

    def prompt(text: str, default: str) -> str:
        asked.append(text)
        return next(answers)

    lines: list[str] = []
    assert run_init(
        folder, inst_id=None, records=None, force=False, echo=lines.append, prompt=prompt
    )
    assert asked[0] == "Which file holds the records?" and "  2. old.csv" in lines
    proposed = tomllib.loads((folder / "institution.toml").read_text(encoding="utf-8"))
    assert proposed["name"] == {"ja": "金沢能楽美術館", "en": "Kanazawa Noh Museum"}
    assert proposed["records"]["path"] == "records.csv"
