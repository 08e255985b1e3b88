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
