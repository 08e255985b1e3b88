"""Records files as curators' systems write them: CSV, TSV, JSON, JSON Lines, workbooks.

Each reader yields ``Row``s carrying their 1-based row number (CSV/TSV: the line
the record starts on, the header being line 1; JSON: position in the array;
JSON Lines: the line; a workbook: the Excel row, with its sheet, see workbook.py)
so every later message can point at the source. A row
that cannot be read carries an ``error`` instead of values; the others go on.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archive.errors import CollectionError

# Windows' superset of Shift_JIS: what Japanese collection systems actually write
# (strict shift_jis fails on 髙, Ⅲ, ㎝ and the like).
JAPANESE_FALLBACK = "cp932"


@dataclass
class Row:
    number: int
    values: dict[str, Any] = field(default_factory=dict)  # column/key -> str | list[str]
    error: str | None = None
    sheet: str | None = None  # a workbook's sheet
    letters: dict[str, str] | None = None  # column -> Excel column letter (shared by rows)

    def cell(self, column: str | None = None) -> str | None:
        """Where this row (or one of its cells) is in a workbook: ``収蔵品台帳!D12``."""
        if self.sheet is None:
            return None
        from .workbook import cell_ref, sheet_ref

        letter = (self.letters or {}).get(column) if column else None
        if letter is None:
            return f"{sheet_ref(self.sheet)} row {self.number}"
        return cell_ref(self.sheet, self.number, _column_index(letter))


class Labelled(str):
    """A cell's text under a second header row (法量 over 縦, 横, 高): the text is the
    value (an image path stays a path), ``label`` the sub-header, shown with it in text."""

    label: str = ""

    def __new__(cls, text: str, label: str) -> Labelled:
        value = super().__new__(cls, text)
        value.label = label
        return value

    def shown(self) -> str:
        return f"{self.label} {self}" if self.label else str(self)


class Header(list):
    """A header's column names; ``cell`` says where a workbook's header is (its row)."""

    cell: str | None = None
    row: int | None = None  # a workbook's header row, as Excel numbers it


def _column_index(letters: str) -> int:
    index = 0
    for char in letters:
        index = index * 26 + ord(char) - 64
    return index - 1


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def decode(data: bytes, encoding: str, file: str) -> tuple[str, str]:
    """Bytes to text: ``auto`` means UTF-8 (BOM or not), else CP932. Returns (text, codec)."""
    if encoding != "auto":
        codec = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
        try:
            return data.decode(codec), codec
        except UnicodeDecodeError as exc:
            raise CollectionError(
                f"not valid {encoding} at line {_line_of(data, exc.start)} (byte {exc.start})",
                file=file,
            ) from None
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as utf8_error:
        try:
            return data.decode(JAPANESE_FALLBACK), JAPANESE_FALLBACK
        except UnicodeDecodeError as cp932_error:
            raise CollectionError(
                f"neither UTF-8 (first bad byte on line {_line_of(data, utf8_error.start)}) nor "
                f"CP932 (line {_line_of(data, cp932_error.start)}); set [records] encoding "
                "in institution.toml",
                file=file,
            ) from None


def _cell(value: Any) -> Any:
    """JSON values to what a CSV cell would hold: text, or a list of texts."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    if isinstance(value, list) and all(
        isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value
    ):
        return [str(v) for v in value]
    raise ValueError(f"unsupported value {json.dumps(value, ensure_ascii=False)[:60]}")


def _object_row(number: int, obj: Any) -> Row:
    if not isinstance(obj, dict):
        return Row(number, error=f"expected an object, got {type(obj).__name__}")
    values = {}
    for key, value in obj.items():
        try:
            values[str(key)] = _cell(value)
        except ValueError as exc:
            return Row(number, error=f"key {key!r}: {exc}")
    return Row(number, values)


def read_delimited(text: str, delimiter: str, file: str) -> tuple[list[str], Iterator[Row]]:
    """Header and rows of a CSV/TSV text. Raises CollectionError for a bad header."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise CollectionError("the file is empty", file=file) from None
    except csv.Error as exc:
        raise CollectionError(f"header: {exc}", file=file, row=1) from None
    header = [h.strip() for h in header]
    seen: set[str] = set()
    for name in header:
        if name and name in seen:
            raise CollectionError(f"column {name!r} appears twice in the header", file=file, row=1)
        seen.add(name)

    def rows() -> Iterator[Row]:
        start = reader.line_num + 1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield Row(start, error=f"cannot parse: {exc}")
                start = reader.line_num + 1
                continue
            number, start = start, reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue  # blank line
            if len(cells) != len(header):
                yield Row(number, error=f"has {len(cells)} cells but the header has {len(header)}")
                continue
            yield Row(number, {h: c for h, c in zip(header, cells, strict=True) if h})

    return header, rows()


def read_json(text: str, file: str) -> Iterator[Row]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CollectionError(
            f"not valid JSON: {exc.msg} at line {exc.lineno}", file=file
        ) from None
    if isinstance(data, dict) and isinstance(data.get("records"), list):
        data = data["records"]
    if not isinstance(data, list):
        raise CollectionError('expected an array of records (or {"records": [...]})', file=file)
    for index, obj in enumerate(data, start=1):
        yield _object_row(index, obj)


def read_jsonl(text: str) -> Iterator[Row]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Row(number, error=f"not valid JSON: {exc.msg} at column {exc.colno}")
            continue
        yield _object_row(number, obj)


def read_records(
    path: Path,
    *,
    encoding: str = "auto",
    delimiter: str | None = None,
    name: str | None = None,
    sheet: str | None = None,
    header_row: int | None = None,
) -> tuple[list[str] | None, str, Iterator[Row]]:
    """(header or None for JSON, codec used, rows) of a records file. Raises CollectionError.

    For a workbook the "codec" is ``sheet 'NAME'``: what the report shows beside the file."""
    file = name or str(path)
    from .workbook import WORKBOOK_SUFFIXES, read_workbook

    if path.suffix.lower() in WORKBOOK_SUFFIXES:
        header, used, rows = read_workbook(path, sheet=sheet, header_row=header_row, file=file)
        return header, f"sheet {used!r}", rows
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CollectionError(f"cannot read: {exc.strerror}", file=file) from None
    text, codec = decode(data, encoding, file)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return None, codec, read_json(text, file)
    if suffix == ".jsonl":
        return None, codec, read_jsonl(text)
    sep = delimiter or ("\t" if suffix == ".tsv" else ",")
    header, rows = read_delimited(text, sep, file)
    return header, codec, rows
