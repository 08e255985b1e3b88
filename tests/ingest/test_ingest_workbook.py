"""Registers kept as Excel workbooks (and ODS), read directly: title rows above the
header, Excel dates, formulas, merged header cells, empty trailing rows and columns,
hostile cell contents, and every problem located as Excel shows it (収蔵品台帳!D12)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_helpers import INC, save_with_cached_values, write_image, write_ods

from archive.errors import CollectionError
from ingest.collection import load_collection
from ingest.pipeline import run_ingest
from ingest.readers import read_records
from ingest.workbook import cell_text, column_letter

SHEET = "収蔵品台帳"
HOSTILE = "<script>window.pwned=1</script>\"&'<img src=x onerror=alert(1)>\u202e"


def register(path: Path, *, rows=None, cached=None, title_rows=True, sheet=SHEET) -> Path:
    """A register as a small memorial hall keeps it: a merged title row, the date of the
    list, a blank row, then the header (画像 merged over two columns) and the records."""
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = sheet
    ws.append(["ダミー"])  # replaced below: openpyxl needs the sheet to exist first
    ws.delete_rows(1)
    if title_rows:
        ws["A1"] = "市立文学記念館 収蔵品台帳"
        ws.merge_cells("A1:G1")
        ws["A2"] = dt.date(2024, 3, 31)  # "as of": a date, so not a header
    header_at = 4 if title_rows else 1
    for index, name in enumerate(["資料番号", "名称", "作者", "制作年", "数量", "画像", None]):
        ws.cell(header_at, index + 1, name)
    ws.merge_cells(start_row=header_at, start_column=6, end_row=header_at, end_column=7)
    data = rows or [
        ["L-1", "書簡", "川辺 秋声", dt.date(1901, 5, 3), 2, "L-1_a.jpg", "L-1_b.jpg"],
        ["L-2", "日記", "川辺 秋声", "明治34年5月3日", "=E5*2", None, None],
        ["L-3", HOSTILE, None, dt.datetime(1950, 1, 2, 0, 0), 1.5, None, None],
    ]
    for values in data:
        ws.append(values)
    for _ in range(5):
        ws.append([None] * 7)  # trailing empty rows, as a sheet kept by hand has
    ws.cell(40, 12, None)  # a formatted, empty cell far to the right
    path.parent.mkdir(parents=True, exist_ok=True)
    if cached is None:
        book.save(path)
        return path
    return save_with_cached_values(book, path, cached)


def toml(folder: Path, records: str = "register.xlsx", extra: str = "", fields=None) -> None:
    fields = fields or {
        "id": "資料番号",
        "title": "名称",
        "creator": "作者",
        "date": "制作年",
        "images": "画像",
    }
    mapping = "\n".join(f'{k} = "{v}"' for k, v in fields.items())
    (folder / "institution.toml").write_text(
        f'id = "memorial"\nname = {{ ja = "記念館" }}\nrights = "{INC}"\n'
        f'[records]\npath = "{records}"\n{extra}\n[fields]\n{mapping}\n',
        encoding="utf-8",
    )


def test_cell_text_is_what_excel_shows() -> None:
    assert cell_text(dt.date(1901, 5, 3)) == "1901/5/3"
    assert cell_text(dt.datetime(1950, 1, 2)) == "1950/1/2"
    assert cell_text(dt.datetime(1950, 1, 2, 9, 5)) == "1950/1/2 9:05"
    assert cell_text(3.0) == "3" and cell_text(21.2) == "21.2" and cell_text(True) == "TRUE"
    assert [column_letter(i) for i in (0, 25, 26, 701, 702)] == ["A", "Z", "AA", "ZZ", "AAA"]


def test_title_rows_dates_formulas_merged_header(tmp_path: Path) -> None:
    path = register(tmp_path / "register.xlsx", cached={"E6": 4})
    header, sheet, rows = read_records(path)
    assert sheet == f"sheet {SHEET!r}"
    assert header == ["資料番号", "名称", "作者", "制作年", "数量", "画像"]
    rows = list(rows)
    assert [r.number for r in rows] == [5, 6, 7]  # Excel's row numbers; trailing rows gone
    first, second, third = (r.values for r in rows)
    assert first["制作年"] == "1901/5/3" and first["数量"] == "2"
    assert first["画像"] == ["L-1_a.jpg", "L-1_b.jpg"]  # both columns under the merged cell
    assert second["数量"] == "4"  # the formula's cached value
    assert second["制作年"] == "明治34年5月3日"
    assert third["名称"] == HOSTILE and third["数量"] == "1.5" and third["制作年"] == "1950/1/2"
    assert rows[0].cell("制作年") == f"{SHEET}!D5" and rows[0].cell("画像") == f"{SHEET}!F5"


def test_formula_without_a_saved_value_reads_as_empty(tmp_path: Path) -> None:
    """openpyxl (like any script) saves no formula results; such a cell holds nothing to
    read. Documented in docs/collection-format.md: open and save the file in Excel."""
    path = register(tmp_path / "register.xlsx")
    _, _, rows = read_records(path)
    assert "数量" not in list(rows)[1].values


def test_ingest_workbook_dates_and_located_errors(tmp_path: Path, archive) -> None:
    folder = tmp_path / "memorial"
    rows = [
        ["L-1", "書簡", "川辺 秋声", dt.date(1901, 5, 3), 1, "L-1_a.jpg", None],
        ["L-2", "日記", None, "明治34年", 1, None, None],
        ["L-3", None, None, "昭和", 1, None, None],  # no title, in cell B7
        ["L-4", "草稿", None, None, 1, "../outside.jpg", None],
    ]
    register(folder / "register.xlsx", rows=rows)
    write_image(folder / "L-1_a.jpg")
    toml(folder)
    report = run_ingest(archive, [str(folder)], workers=1, progress=None)
    inst = report.institutions[0]
    assert inst.encoding == f"sheet {SHEET!r}"
    assert (inst.added, inst.failed) == (2, 2), report.render()
    by_record = {f.record: f for f in inst.failures}
    assert by_record["L-3"].cell == f"{SHEET}!B7" and by_record["L-3"].field == "title"
    bad = by_record["L-4"]
    assert bad.cell == f"{SHEET}!F8" and bad.column == "画像" and bad.value == "../outside.jpg"
    assert f"register.xlsx {SHEET}!F8" in report.render()
    saved = {f["record"]: f for f in report.to_dict()["institutions"][0]["failures"]}
    assert saved["L-4"] | {"reason": None} == {
        "reason": None,
        "record": "L-4",
        "file": "register.xlsx",
        "row": 8,
        "field": "images",
        "cell": f"{SHEET}!F8",
        "column": "画像",
        "value": "../outside.jpg",
    }
    rec = archive.catalog.get_record("memorial_L-1", public_only=False)
    assert (rec.fields["date"], rec.date_start, rec.era) == ("1901/5/3", 1901, "明治時代")
    rec2 = archive.catalog.get_record("memorial_L-2", public_only=False)
    assert (rec2.date_start, rec2.date_end) == (1901, 1901)


def test_hostile_cells_are_kept_as_text(tmp_path: Path, archive) -> None:
    folder = tmp_path / "memorial"
    register(folder / "register.xlsx")
    toml(folder, fields={"id": "資料番号", "title": "名称"})
    report = run_ingest(archive, [str(folder)], dry_run=False, workers=1, progress=None)
    assert report.institutions[0].failed == 0, report.render()
    assert archive.catalog.get_record("memorial_L-3", public_only=False).fields["title"] == (
        HOSTILE
    )


def test_sheet_and_header_row_settings(tmp_path: Path) -> None:
    folder = tmp_path / "memorial"
    path = register(folder / "register.xlsx")
    toml(folder, extra=f'sheet = "{SHEET}"\nheader_row = 4')
    collection = load_collection(folder)
    assert (collection.sheet, collection.header_row) == (SHEET, 4)
    header, _, rows = read_records(path, sheet=SHEET, header_row=4)
    assert header[0] == "資料番号" and len(list(rows)) == 3
    with pytest.raises(CollectionError, match="no sheet '台帳'; the sheets are: '収蔵品台帳'"):
        read_records(path, sheet="台帳")
    with pytest.raises(CollectionError, match="header_row 99 is past the end"):
        read_records(path, header_row=99)
    book = openpyxl.load_workbook(path)
    book.create_sheet("空")
    book.save(path)
    with pytest.raises(CollectionError, match="sheet '空' is empty") as err:
        read_records(path, sheet="空")
    assert err.value.field == "records.sheet"


def test_duplicate_header_and_no_header_are_named(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "台帳"
    ws.append(["番号", "名称", "名称"])
    book.save(tmp_path / "dup.xlsx")
    with pytest.raises(CollectionError) as err:
        read_records(tmp_path / "dup.xlsx")
    assert err.value.cell == "台帳!C1" and "also at 台帳!B1" in err.value.reason
    book = openpyxl.Workbook()
    book.active.append([1, 2, 3])
    book.save(tmp_path / "numbers.xlsx")
    with pytest.raises(CollectionError, match="set \\[records\\] header_row"):
        read_records(tmp_path / "numbers.xlsx")


def test_two_header_rows_under_merged_cells(tmp_path: Path, archive) -> None:
    """法量 merged over 縦, 横, 高 in a second header row; 資料番号 merged down both rows."""
    folder = tmp_path / "memorial"
    folder.mkdir()
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = SHEET
    ws.append(["資料番号", "名称", "法量", None, None, "画像", None])
    ws.append([None, None, "縦", "横", "高", "表", "裏"])
    ws.merge_cells("A1:A2")
    ws.merge_cells("B1:B2")
    ws.merge_cells("C1:E1")
    ws.merge_cells("F1:G1")
    ws.append(["T-1", "茶碗", "8.5cm", "12.0cm", None, "T-1a.jpg", "T-1b.jpg"])
    book.save(folder / "register.xlsx")
    write_image(folder / "T-1a.jpg")
    write_image(folder / "T-1b.jpg", seed=1)
    toml(folder, fields={"id": "資料番号", "title": "名称", "dimensions": "法量", "images": "画像"})
    report = run_ingest(archive, [str(folder)], workers=1, progress=None)
    assert report.institutions[0].added == 1, report.render()
    rec = archive.catalog.get_record("memorial_T-1")
    assert rec.fields["dimensions"] == "縦 8.5cm; 横 12.0cm"  # labelled by the second row
    assert [i.source for i in rec.images] == ["T-1a.jpg", "T-1b.jpg"]  # paths stay paths
    assert rec.source.row == 3
    _, _, rows = read_records(folder / "register.xlsx", header_row=1)  # the same when given
    assert [r.number for r in rows] == [3]


def test_a_mapped_column_missing_names_the_header_row(tmp_path: Path, archive) -> None:
    folder = tmp_path / "memorial"
    register(folder / "register.xlsx")
    toml(folder, fields={"id": "資料番号", "title": "名称", "date": "年代"})
    report = run_ingest(archive, [str(folder)], workers=1, progress=None)
    error = report.institutions[0].error
    assert error.startswith(f"register.xlsx {SHEET} row 4, field 'fields.date': column '年代'")


def test_not_a_workbook_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "broken.xlsx").write_bytes(b"PK\x03\x04 this is not a zip")
    with pytest.raises(CollectionError, match="cannot be read as a workbook") as err:
        read_records(tmp_path / "broken.xlsx", name="broken.xlsx")
    assert err.value.file == "broken.xlsx"


def test_data_under_no_header_is_kept(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "台帳"
    ws.append(["番号", "名称", None])
    ws.append(["A-1", "壺", "メモ"])
    book.save(tmp_path / "r.xlsx")
    _, _, rows = read_records(tmp_path / "r.xlsx")
    assert list(rows)[0].values == {"番号": "A-1", "名称": "壺", "列C": "メモ"}


def test_cp932_csv_beside_a_workbook(tmp_path: Path, archive) -> None:
    """The same register saved as CSV by Excel on Windows (CP932) gives the same records."""
    folder = tmp_path / "memorial"
    register(folder / "register.xlsx", cached={"E6": 4})
    text = (
        "資料番号,名称,作者,制作年\r\nL-1,書簡,髙橋 秋声,1901/5/3\r\n"
        "L-2,日記,川辺 秋声,明治34年5月3日\r\n"
    )
    (folder / "register.csv").write_bytes(text.encode("cp932"))
    toml(
        folder, records="register.csv", fields={"id": "資料番号", "title": "名称", "date": "制作年"}
    )
    report = run_ingest(archive, [str(folder)], workers=1, progress=None)
    assert report.institutions[0].encoding == "cp932" and report.institutions[0].added == 2
    rec = archive.catalog.get_record("memorial_L-1", public_only=False)
    assert rec.date_start == 1901


def test_ods_register(tmp_path: Path, archive) -> None:
    folder = tmp_path / "memorial"
    rows = [
        ["記念館 収蔵品台帳"],
        [],
        ["資料番号", "名称", "制作年"],
        ["A-1", "壺", ("1901-05-03", "1901/5/3")],
        ["A-2", "皿", 1895],
    ]
    write_ods(folder / "register.ods", rows)
    toml(
        folder, records="register.ods", fields={"id": "資料番号", "title": "名称", "date": "制作年"}
    )
    report = run_ingest(archive, [str(folder)], workers=1, progress=None)
    assert report.institutions[0].added == 2, report.render()
    rec = archive.catalog.get_record("memorial_A-1", public_only=False)
    assert (rec.fields["date"], rec.date_start, rec.source.row) == ("1901/5/3", 1901, 4)
    assert archive.catalog.get_record("memorial_A-2", public_only=False).date_start == 1895


CELL = st.one_of(
    st.none(),
    st.text(alphabet=st.sampled_from("資料番号名称A-1 <>&\"'=#;"), max_size=6),
    st.integers(-5, 40000),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    st.dates(dt.date(1900, 3, 1), dt.date(2030, 1, 1)),
    st.booleans(),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(grid=st.lists(st.lists(CELL, max_size=6), max_size=8))
def test_any_sheet_reads_or_says_why_and_keeps_every_cell(tmp_path: Path, grid) -> None:
    """Whatever a sheet holds, it is read or refused with a CollectionError; every row
    read holds exactly the texts of its cells (nothing lost, nothing invented)."""
    book = openpyxl.Workbook()
    for values in grid:
        book.active.append(values)
    path = tmp_path / "any.xlsx"
    book.save(path)
    try:
        _, _, rows = read_records(path)
        rows = list(rows)
    except CollectionError:
        return
    for row in rows:
        source = grid[row.number - 1]
        expected = sorted(t for t in (cell_text(v).strip() for v in source) if t)
        got = sorted(t for v in row.values.values() for t in (v if isinstance(v, list) else [v]))
        assert got == expected, (row.number, source, row.values)


def test_date_cells_in_any_format_and_serial_numbers(tmp_path: Path) -> None:
    """A date cell shown in 和暦 (ggge"年"m"月"d"日") or as yyyy/m/d is a date whatever its
    format; a plain number in a General cell stays the number the curator sees."""
    book = openpyxl.Workbook()
    ws = book.active
    ws.append(["番号", "名称", "年"])
    ws.append(["A-1", "x", dt.date(1901, 5, 3)])
    ws["C2"].number_format = '[$-ja-JP-x-gannen]ggge"年"m"月"d"日"'
    ws.append(["A-2", "y", 44287])  # Excel's serial number of 2021-04-01, shown as a date
    ws["C3"].number_format = "yyyy/m/d"
    ws.append(["A-3", "z", 1895])  # a year typed as a number
    book.save(tmp_path / "dates.xlsx")
    _, _, rows = read_records(tmp_path / "dates.xlsx")
    assert [r.values["年"] for r in rows] == ["1901/5/3", "2021/4/1", "1895"]
    from ingest.dates import normalise_date

    assert normalise_date("1901/5/3").era == "明治時代"
