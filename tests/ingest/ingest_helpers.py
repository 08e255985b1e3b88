"""Builders for small curator folders: records in every supported shape, images made in code."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyvips

DEFAULT_FIELDS = {
    "id": "資料番号",
    "title": "名称",
    "title_en": "英語名称",
    "creator": "作者",
    "date": "制作年代",
    "keywords": "キーワード",
    "rights": "権利",
    "public": "公開",
    "max_image_size": "公開画像サイズ",
    "behavior": "表示形式",
    "viewing_direction": "閲覧方向",
    "images": "画像ファイル",
}
INC = "http://rightsstatements.org/vocab/InC/1.0/"
CC_BY = "https://creativecommons.org/licenses/by/4.0/"


def rgb(width: int, height: int, seed: int = 0) -> pyvips.Image:
    """A small 8-bit sRGB test image whose pixels depend on ``seed``."""
    x = pyvips.Image.xyz(width, height)
    image = (x[0] * 3 + x[1] * 2 + seed * 17) % 256
    return (
        image.bandjoin([(x[1] + seed * 31) % 256, (x[0] + x[1] + seed) % 256])
        .cast("uchar")
        .copy(interpretation="srgb")
    )


def write_image(path: Path, width: int = 96, height: int = 64, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb(width, height, seed).write_to_file(str(path))
    return path


def write_records(folder: Path, rows: list[dict], fmt: str, encoding: str = "utf-8") -> str:
    """Write ``rows`` as records.<fmt>; returns the file name."""
    name = f"records.{fmt}"
    if fmt in ("csv", "tsv"):
        columns: list[str] = []
        for row in rows:
            columns += [k for k in row if k not in columns]
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, delimiter="," if fmt == "csv" else "\t", lineterminator="\r\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row.get(c, "") for c in columns])
        (folder / name).write_bytes(buffer.getvalue().encode(encoding))
    elif fmt == "json":
        (folder / name).write_text(json.dumps(rows, ensure_ascii=False), encoding=encoding)
    else:
        text = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n"
        (folder / name).write_text(text, encoding=encoding)
    return name


def write_toml(
    folder: Path,
    records: str,
    *,
    inst_id: str = "test-museum",
    fields: dict | None = None,
    encoding: str = "auto",
    extra: str = "",
) -> None:
    mapping = "\n".join(f'{k} = "{v}"' for k, v in (fields or DEFAULT_FIELDS).items())
    (folder / "institution.toml").write_text(
        f'id = "{inst_id}"\n'
        'name = { ja = "試験美術館", en = "Test Museum" }\n'
        f'rights = "{INC}"\n{extra}\n'
        f'[records]\npath = "{records}"\nencoding = "{encoding}"\n\n[fields]\n{mapping}\n',
        encoding="utf-8",
    )


def row(local_id: str, title: str = "", images: str = "", **more: str) -> dict:
    data = dict.fromkeys(DEFAULT_FIELDS.values(), "")
    data.update({"資料番号": local_id, "名称": title or f"資料 {local_id}", "画像ファイル": images})
    data.update(more)
    return data


def save_with_cached_values(book, path: Path, cached: dict[str, object]) -> Path:
    """Save an openpyxl workbook as Excel would: with each formula's last computed value.

    openpyxl writes formulas with an empty value (it computes nothing); Excel and
    LibreOffice store the result beside the formula (`<f>..</f><v>..</v>`). ``cached``
    maps a cell of the first sheet ("E5") to that result."""
    import html
    import re
    import zipfile

    book.save(path)
    with zipfile.ZipFile(path) as zin:
        parts = {name: zin.read(name) for name in zin.namelist()}
    sheet = parts["xl/worksheets/sheet1.xml"].decode("utf-8")
    for ref, value in cached.items():
        kind = ' t="str"' if isinstance(value, str) else ""
        text = html.escape(str(value), quote=False)
        sheet, count = re.subn(
            rf'<c r="{ref}"([^>]*)><f>(.*?)</f><v\s*/?>(?:</v>)?',
            lambda m, ref=ref, kind=kind, text=text: (
                f'<c r="{ref}"{m.group(1)}{kind}><f>{m.group(2)}</f><v>{text}</v>'
            ),
            sheet,
        )
        assert count == 1, f"no formula at {ref}"
    parts["xl/worksheets/sheet1.xml"] = sheet.encode("utf-8")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for name, data in parts.items():
            zout.writestr(name, data)
    return path


def write_ods(path: Path, rows: list[list], sheet: str = "台帳") -> Path:
    """A minimal OpenDocument spreadsheet, as LibreOffice saves one (no library writes
    ODS in this project's dependencies). A cell is text, a number, None (empty) or
    ("1901-05-03", "1901/5/3"): a date and the text LibreOffice shows for it."""
    import zipfile
    from xml.sax.saxutils import escape

    def cell(value) -> str:
        if value is None:
            return "<table:table-cell/>"
        if isinstance(value, (int, float)):
            return (
                f'<table:table-cell office:value-type="float" office:value="{value}">'
                f"<text:p>{value}</text:p></table:table-cell>"
            )
        if isinstance(value, tuple):
            return (
                f'<table:table-cell office:value-type="date" office:date-value="{value[0]}">'
                f"<text:p>{value[1]}</text:p></table:table-cell>"
            )
        return (
            '<table:table-cell office:value-type="string">'
            f"<text:p>{escape(value)}</text:p></table:table-cell>"
        )

    body = "".join(
        "<table:table-row>" + "".join(cell(v) for v in r) + "</table:table-row>" for r in rows
    )
    ns = (
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
    )
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ns} '
        'office:version="1.2"><office:body><office:spreadsheet>'
        f'<table:table table:name="{escape(sheet)}">{body}</table:table>'
        "</office:spreadsheet></office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest='
        '"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
        '<manifest:file-entry manifest:full-path="/" '
        'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zout:
        zout.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet")
        zout.writestr("content.xml", content, zipfile.ZIP_DEFLATED)
        zout.writestr("META-INF/manifest.xml", manifest, zipfile.ZIP_DEFLATED)
    return path
