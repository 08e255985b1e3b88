"""Registers kept as workbooks: Excel (.xlsx, .xlsm, .xls) and OpenDocument (.ods).

Read with python-calamine, which gives each formula's value as last saved by the
spreadsheet program (a file written by a program that never computed its formulas,
such as a script, has no saved values: those cells read as empty) and date cells as
dates. Every cell becomes the text a curator sees in Excel, so 和暦 and Western dates
go through the same normalisation as CSV text: a date cell shows as ``1901/5/3``.

The header is found the way a person finds it: the first row whose cells look like
column names (two or more texts, no numbers or dates, across at least half the
table's width), skipping the title, the date of the export and blank rows above it.
A header cell merged across several columns names all of them (their cells are
read together, as several values), and a second header row under them (法量 over
縦, 横, 高) labels those values; one merged down across rows pushes the data below
the merge. Rows carry their Excel row number and the sheet, so a message can
say ``収蔵品台帳!D12``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from archive.errors import CollectionError

from .readers import Header, Labelled, Row

WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods")
HEADER_SCAN_ROWS = 50  # the header is looked for in this many rows from the top


def column_letter(index: int) -> str:
    """0-based column index to Excel's letters: 0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def sheet_ref(sheet: str) -> str:
    """A sheet's name as a formula writes it: quoted when it has spaces or punctuation."""
    return sheet if sheet.replace("_", "").isalnum() else "'" + sheet.replace("'", "''") + "'"


def cell_ref(sheet: str, row: int, column: int) -> str:
    """``Sheet!D12`` for a 1-based row and 0-based column."""
    return f"{sheet_ref(sheet)}!{column_letter(column)}{row}"


def cell_text(value: Any) -> str:
    """A cell's value as Excel shows it in a Japanese locale by default."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        text = f"{value.year}/{value.month}/{value.day}"
        if value.time() != dt.time():
            text += f" {value.hour}:{value.minute:02d}"
        return text
    if isinstance(value, dt.date):
        return f"{value.year}/{value.month}/{value.day}"
    if isinstance(value, dt.time):
        return f"{value.hour}:{value.minute:02d}:{value.second:02d}"
    return str(value)


def _looks_like_header(cells: list[Any], widest: int) -> bool:
    texts = [c.strip() for c in cells if isinstance(c, str) and c.strip()]
    others = [c for c in cells if not isinstance(c, str) and c not in (None, "")]
    return not others and len(texts) >= 2 and len(texts) * 2 >= widest


def _open(path: Path, file: str):
    try:
        from python_calamine import CalamineWorkbook
    except ImportError:  # pragma: no cover - a dependency in pyproject.toml
        raise CollectionError("python-calamine is not installed", file=file) from None
    try:
        return CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # noqa: BLE001 - the library's errors are many and untyped
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CollectionError(
            f"cannot be read as a workbook ({reason}); is it password-protected or damaged?",
            file=file,
        ) from None


def sheet_names(path: Path, file: str) -> list[str]:
    return list(_open(path, file).sheet_names)


def read_workbook(
    path: Path, *, sheet: str | None = None, header_row: int | None = None, file: str
) -> tuple[list[str], str, Iterator[Row]]:
    """(header, sheet name, rows) of one sheet. Raises CollectionError naming the sheet."""
    book = _open(path, file)
    names = list(book.sheet_names)
    if not names:
        raise CollectionError("the workbook has no sheets", file=file)
    name = sheet if sheet is not None else names[0]
    if name not in names:
        raise CollectionError(
            f"no sheet {name!r}; the sheets are: " + ", ".join(repr(n) for n in names),
            file=file,
            field="records.sheet",
        )
    try:
        data = book.get_sheet_by_name(name)
        merged = list(data.merged_cell_ranges or [])
    except Exception as exc:  # noqa: BLE001
        raise CollectionError(f"sheet {name!r} cannot be read: {exc}", file=file) from None
    start = data.start  # (row, column) of the first used cell, 0-based, or None when empty
    offset = start[1] if start else 0  # iter_rows starts at row 0 but at the first used column
    rows = data.iter_rows()

    # The top of the sheet, held to find the header; the rest is streamed.
    top: list[list[Any]] = []
    limit = max(HEADER_SCAN_ROWS, (header_row or 0) + 2)  # and the row below a given header
    for cells in rows:
        top.append([None] * offset + list(cells))
        if len(top) >= limit:
            break
    if header_row is not None:
        if header_row < 1 or header_row > len(top):
            raise CollectionError(
                f"header_row {header_row} is past the end of sheet {name!r} ({len(top)} rows)",
                file=file,
                field="records.header_row",
            )
        head = header_row - 1
    else:
        widest = max((sum(1 for c in r if c not in (None, "")) for r in top), default=0)
        head = next((i for i, r in enumerate(top) if _looks_like_header(r, widest)), None)
        if widest == 0:
            raise CollectionError(
                f"sheet {name!r} is empty; name the sheet with the records in [records] sheet",
                file=file,
                field="records.sheet",
            )
        if head is None:
            raise CollectionError(
                f"sheet {name!r}: no row in the first {HEADER_SCAN_ROWS} looks like a header "
                "(several column names); set [records] header_row in institution.toml",
                file=file,
            )
    header_cells = top[head]
    data_start = head + 1
    spans: dict[int, int] = {}  # first column of a merged header cell -> its last column
    for (r0, c0), (r1, c1) in merged:
        if r0 <= head <= r1:
            data_start = max(data_start, r1 + 1)
            if c1 > c0:
                spans[c0] = c1
    covered = {c for c0, c1 in spans.items() for c in range(c0 + 1, c1 + 1)}

    # Column index -> name; merged header cells fold their columns into the first one.
    names_at: dict[int, str] = {}
    owner: dict[int, int] = {}
    seen: dict[str, int] = {}
    for index, raw in enumerate(header_cells):
        if index in covered:
            continue
        text = cell_text(raw).strip()
        if not text:
            continue
        if text in seen:
            raise CollectionError(
                f"column {text!r} appears twice in the header (also at "
                f"{cell_ref(name, head + 1, seen[text])})",
                file=file,
                row=head + 1,
                cell=cell_ref(name, head + 1, index),
                column=text,
            )
        seen[text] = index
        names_at[index] = text
        for c in range(index, spans.get(index, index) + 1):
            owner[c] = index
    header = Header(names_at[i] for i in sorted(names_at))
    header.cell = f"{sheet_ref(name)} row {head + 1}"
    header.row = head + 1
    letters = {names_at[i]: column_letter(i) for i in names_at}
    unnamed: dict[int, str] = {}

    # A second header row under merged cells (法量 over 縦, 横, 高): texts only, and only
    # under merged cells. Its texts label the values; the data starts below it.
    under = {c for c0, c1 in spans.items() for c in range(c0, c1 + 1)}
    labels: dict[int, str] = {}
    for r in range(head + 1, max(data_start, head + 2)):
        if not under or r >= len(top):
            break
        filled = {i: c for i, c in enumerate(top[r]) if c not in (None, "")}
        if filled and set(filled) <= under and all(isinstance(c, str) for c in filled.values()):
            labels.update((i, c.strip()) for i, c in filled.items())
            data_start = max(data_start, r + 1)

    width = max(len(header_cells), max(owner, default=-1) + 1)
    plan: list[tuple[str, bool, str] | None] = [None] * width  # column -> (name, merged, label)
    for index, first in owner.items():
        plan[index] = (names_at[first], first in spans, labels.get(index, ""))

    def row_of(number: int, cells: list[Any], start: int) -> Row | None:
        values: dict[str, Any] = {}
        for index, raw in enumerate(cells, start):
            if raw is None or raw == "":
                continue
            text = raw.strip() if type(raw) is str else cell_text(raw).strip()
            if not text:
                continue
            target = plan[index] if index < width else None
            if target is None:
                # Data under no header: kept (as extra metadata) under its column letter.
                column = unnamed.get(index)
                if column is None:
                    column = unnamed[index] = f"列{column_letter(index)}"
                    letters[column] = column_letter(index)
                values[column] = text
            elif target[1]:
                values.setdefault(target[0], []).append(
                    Labelled(text, target[2]) if target[2] else text
                )
            else:
                values[target[0]] = text
        if not values:
            return None  # blank row
        return Row(number, values, sheet=name, letters=letters)

    def all_rows() -> Iterator[Row]:
        for position, cells in enumerate(top[data_start:], start=data_start + 1):
            if (row := row_of(position, cells, 0)) is not None:
                yield row
        number = len(top)
        try:
            for cells in rows:
                number += 1
                if number <= data_start:
                    continue
                if (row := row_of(number, cells, offset)) is not None:
                    yield row
        except Exception as exc:  # noqa: BLE001 - a damaged part of the file
            yield Row(number, error=f"cannot read the sheet past this row: {exc}", sheet=name)

    return header, name, all_rows()
