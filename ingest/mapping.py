"""One source row to one ``Record``: the field mapping and every per-record check.

The record leaves here complete except for its images' pixels facts (checksum,
size, version), which the tiling workers fill in. Every problem is a
``CollectionError`` naming the file, row, field and (when known) the record id.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archive.errors import CollectionError
from archive.records import (
    BEHAVIOR_TERMS,
    FIELDS_BY_NAME,
    VIEWING_DIRECTION_TERMS,
    ImageRef,
    Record,
    SourceRef,
    controlled_term,
    is_valid_rights,
    record_id,
    search_key,
    split_images,
    split_keywords,
)

from .collection import Collection, inside
from .dates import normalise_date
from .matching import ImageMatcher
from .readers import Labelled, Row

_JAPANESE_EXAMPLE = {"behavior": "冊子 or 巻子", "viewing_direction": "右から左"}
_TRUE = {"true", "1", "yes", "y", "公開", "○", "〇", "可", "はい"}
_FALSE = {"false", "0", "no", "n", "非公開", "×", "✕", "不可", "いいえ"}
_SIZE_RE = re.compile(r"^(\d+)\s*(?:px|ピクセル)?$")


@dataclass
class Draft:
    """A mapped record and the source files of its images, still to be hashed and tiled."""

    record: Record
    key: str  # duplicate-detection key of the local id (NFKC, case-folded)
    image_paths: list[Path]  # absolute paths, parallel to record.images (before page expansion)
    matched: int = 0  # how many of them were found by the record's number (not listed)


def _as_text(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(_shown(v) for v in value if v.strip())
    return str(value).strip()


def _shown(value: str) -> str:
    """A value as text: a workbook cell under a sub-header with its label (縦 21.2)."""
    return value.shown().strip() if isinstance(value, Labelled) else value.strip()


def _as_list(value: Any, splitter) -> list[str]:
    if isinstance(value, list):
        return [v.strip() for v in value if v.strip()]
    return splitter(str(value))


def parse_public(value: str) -> bool | None:
    """'false', '0', 'no', '非公開'... -> False; empty -> True; unknown -> None."""
    key = unicodedata.normalize("NFKC", value).strip().casefold()
    if not key or key in _TRUE:
        return True
    if key in _FALSE:
        return False
    return None


def check_header(collection: Collection, header: list[str] | None) -> None:
    """Every column [fields] names must be in the CSV/TSV header."""
    if header is None:
        return
    present = set(header)
    for name, column in collection.fields.items():
        if column not in present:
            raise CollectionError(
                f"column {column!r} (mapped to {name}) is not in the header; columns are: "
                + ", ".join(repr(h) for h in header if h),
                file=collection.records_name,
                row=1 if getattr(header, "cell", None) is None else None,
                field=f"fields.{name}",
                cell=getattr(header, "cell", None),
            )


def map_row(collection: Collection, row: Row, matcher: ImageMatcher | None = None) -> Draft:
    """Map and check one row. Raises CollectionError on the first problem found.

    With a ``matcher``, a record whose images cell is empty (or that has no images
    column) gets the images named after its number."""
    inst = collection.institution
    file = collection.records_name

    def fail(reason: str, field_name: str | None = None, rec: str | None = None):
        column = collection.fields.get(field_name) if field_name else None
        value = row.values.get(column) if column else None
        return CollectionError(
            reason,
            file=file,
            row=row.number,
            field=field_name,
            record=rec,
            cell=row.cell(column),
            column=column,
            value=_as_text(value) if value is not None else None,
        )

    if row.error:
        raise fail(row.error)
    columns = {column: name for name, column in collection.fields.items()}
    fields: dict[str, Any] = {}
    extra: list[list[str]] = []
    for column, value in row.values.items():
        name = columns.get(column)
        if name is None:
            text = _as_text(value)
            if text:
                extra.append([column, text])
            continue
        if FIELDS_BY_NAME[name].multi:
            items = _as_list(value, split_images if name == "images" else split_keywords)
            if items:
                fields[name] = items
        else:
            text = _as_text(value)
            if text:
                fields[name] = text

    local_id = fields.get("id", "")
    if not local_id:
        raise fail("the record has no id", "id")
    key = search_key(local_id)
    rec_id = record_id(inst.id, unicodedata.normalize("NFKC", local_id))
    if not fields.get("title"):
        raise fail("the record has no title", "title", local_id)

    public = parse_public(fields.get("public", ""))
    if public is None:
        raise fail(
            f"public must be yes/no, true/false, 1/0, 公開/非公開 (got {fields['public']!r})",
            "public",
            local_id,
        )
    rights = fields.get("rights") or inst.rights
    if not is_valid_rights(rights):
        raise fail(
            f"rights must be a Creative Commons or RightsStatements.org URI (got {rights!r})",
            "rights",
            local_id,
        )
    cap = inst.max_image_size
    if "max_image_size" in fields:
        m = _SIZE_RE.match(unicodedata.normalize("NFKC", fields["max_image_size"]).replace(",", ""))
        if not m:
            raise fail(
                f"max_image_size must be a whole number of pixels "
                f"(got {fields['max_image_size']!r})",
                "max_image_size",
                local_id,
            )
        cap = int(m.group(1))
    for name, terms in (
        ("behavior", BEHAVIOR_TERMS),
        ("viewing_direction", VIEWING_DIRECTION_TERMS),
    ):
        if name in fields:
            term = controlled_term(fields[name], terms)
            if term is None:
                allowed = ", ".join(dict.fromkeys(terms.values()))
                raise fail(
                    f"{name} must be one of {allowed} (or its Japanese name, such as "
                    f"{_JAPANESE_EXAMPLE[name]}) (got {fields[name]!r})",
                    name,
                    local_id,
                )
            fields[name] = term

    images: list[ImageRef] = []
    paths: list[Path] = []
    seen: set[Path] = set()
    for source in fields.get("images", []):
        relative = source.replace("\\", "/")
        path = inside(collection.folder, relative)
        if path is None:
            raise fail(f"image path {source!r} leaves the institution folder", "images", local_id)
        if not path.is_file():
            # File names copied from a Mac are often decomposed (NFD), records composed (NFC).
            for form in ("NFC", "NFD"):
                other = inside(collection.folder, unicodedata.normalize(form, relative))
                if other is not None and other.is_file():
                    path = other
                    break
            else:
                raise fail(f"image file {source!r} does not exist", "images", local_id)
        if path in seen:
            raise fail(f"image file {source!r} is listed twice", "images", local_id)
        seen.add(path)
        images.append(ImageRef(id="", source=relative))
        paths.append(path)
    matched = 0
    if not images and matcher is not None:
        for match in matcher.images_for(local_id):
            matched += 1
            images.append(ImageRef(id="", source=match.relative))
            paths.append(match.path)

    dates = normalise_date(fields.get("date"))
    record = Record(
        id=rec_id,
        institution=inst.id,
        local_id=local_id,
        fields=fields,
        extra=extra,
        public=public,
        rights=rights.strip(),
        max_image_size=cap,
        date_start=dates.start if dates else None,
        date_end=dates.end if dates else None,
        era=dates.era if dates else None,
        images=images,
        source=SourceRef(file=file, row=row.number),
    )
    return Draft(record=record, key=key, image_paths=paths, matched=matched)
