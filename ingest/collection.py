"""Reading ``institution.toml``: who the institution is and how its records file maps.

Everything a curator can get wrong here is a ``CollectionError`` naming the file
and the key, because one bad institution.toml stops that folder and nothing else.
"""

from __future__ import annotations

import functools
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archive.errors import CollectionError
from archive.records import FIELDS_BY_NAME, INSTITUTION_ID_RE, Institution, is_valid_rights

TOML_NAME = "institution.toml"
RECORD_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".xlsx", ".xlsm", ".xls", ".ods")
# How image files are named after their record's number (see docs/collection-format.md).
DEFAULT_IMAGE_NAMES = ("{id}", "{id}_{n}", "{id}-{n}", "{id} ({n})")


@dataclass
class Collection:
    """One curator's folder: the institution, its records file and the field mapping."""

    folder: Path  # absolute, resolved
    institution: Institution
    records_path: Path  # absolute
    encoding: str  # "auto" or a codec name
    fields: dict[str, str]  # canonical field -> source column (or JSON key)
    delimiter: str | None = None  # CSV/TSV override
    extra: dict[str, Any] = field(default_factory=dict)
    sheet: str | None = None  # a workbook's sheet (default: the first)
    header_row: int | None = None  # a workbook's header row (default: found)
    match_images: bool = True  # find images by the record's number (see matching.py)
    image_folder: str = ""  # where to look for them, relative to the folder
    image_names: tuple[str, ...] = DEFAULT_IMAGE_NAMES

    @property
    def records_name(self) -> str:
        """The records file as the curator knows it (relative to the folder)."""
        return self.records_path.relative_to(self.folder).as_posix()


def _lang_map(value: Any, key: str, where: str, *, required: bool) -> dict[str, str]:
    if value is None and not required:
        return {}
    if isinstance(value, str):
        value = {"ja": value}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise CollectionError(
            f'{key} must be a string or a table like {{ ja = "…", en = "…" }}',
            file=where,
            field=key,
        )
    cleaned = {k: v.strip() for k, v in value.items() if v.strip()}
    if required and not cleaned:
        raise CollectionError(f"{key} is empty", file=where, field=key)
    return cleaned


def inside(folder: Path, relative: str) -> Path | None:
    """``relative`` resolved under ``folder``; None if it leaves it (``..``, absolute, symlink)."""
    if (
        not relative
        or relative.startswith(("/", "\\"))
        or (len(relative) > 1 and relative[1] == ":")
    ):
        return None
    joined = os.path.normpath(os.path.join(folder, relative))
    parent, name = os.path.split(joined)
    target = os.path.join(_real_dir(parent), name)
    if os.path.islink(target):
        target = os.path.realpath(target)
    root = str(folder)
    if target != root and not target.startswith(root + os.sep):
        return None
    return Path(target)


@functools.lru_cache(maxsize=4096)
def _real_dir(path: str) -> str:
    """Directories resolved once per run (images share a few folders); see load_collection."""
    return os.path.realpath(path)


def load_collection(path: str | Path) -> Collection:
    """Parse and check ``<path>/institution.toml``. Raises CollectionError."""
    folder = Path(path).resolve()
    _real_dir.cache_clear()  # symbolic links may have changed since the last run
    toml_path = folder / TOML_NAME
    where = str(toml_path)
    if not toml_path.is_file():
        raise CollectionError(
            f"no {TOML_NAME} in this folder; `archive init {path}` proposes one from its "
            "records file or workbook",
            file=str(folder),
        )
    try:
        data = tomllib.loads(toml_path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        raise CollectionError("must be UTF-8 text", file=where) from None
    except tomllib.TOMLDecodeError as exc:
        raise CollectionError(f"not valid TOML: {exc}", file=where) from None

    inst_id = data.get("id")
    if not isinstance(inst_id, str) or not INSTITUTION_ID_RE.match(inst_id):
        raise CollectionError(
            f"id must be lower-case letters, digits and '-' (got {inst_id!r})",
            file=where,
            field="id",
        )
    name = _lang_map(data.get("name"), "name", where, required=True)
    rights = data.get("rights")
    if not isinstance(rights, str) or not is_valid_rights(rights):
        raise CollectionError(
            f"rights must be a Creative Commons or RightsStatements.org URI (got {rights!r})",
            file=where,
            field="rights",
        )
    homepage = data.get("homepage")
    if homepage is not None and (
        not isinstance(homepage, str) or not homepage.startswith(("http://", "https://"))
    ):
        raise CollectionError(
            f"homepage must be an http(s) URL (got {homepage!r})", file=where, field="homepage"
        )
    logo = data.get("logo")
    if logo is not None:
        logo_path = inside(folder, logo) if isinstance(logo, str) else None
        if logo_path is None:
            raise CollectionError(
                f"logo must be a path inside the folder (got {logo!r})", file=where, field="logo"
            )
        if not logo_path.is_file():
            raise CollectionError(f"logo {logo!r} does not exist", file=where, field="logo")
    cap = data.get("max_image_size", 0)
    if not isinstance(cap, int) or isinstance(cap, bool) or cap < 0:
        raise CollectionError(
            f"max_image_size must be a whole number >= 0 (got {cap!r})",
            file=where,
            field="max_image_size",
        )

    records = data.get("records")
    if not isinstance(records, dict) or not isinstance(records.get("path"), str):
        raise CollectionError("[records] path is required", file=where, field="records.path")
    records_path = inside(folder, records["path"])
    if records_path is None:
        raise CollectionError(
            f"records path must stay inside the folder (got {records['path']!r})",
            file=where,
            field="records.path",
        )
    if records_path.suffix.lower() not in RECORD_SUFFIXES:
        raise CollectionError(
            f"records file must end in one of {', '.join(RECORD_SUFFIXES)}",
            file=where,
            field="records.path",
        )
    if not records_path.is_file():
        raise CollectionError(
            f"records file {records['path']!r} does not exist", file=where, field="records.path"
        )
    encoding = records.get("encoding", "auto")
    if not isinstance(encoding, str):
        raise CollectionError("encoding must be a string", file=where, field="records.encoding")
    if encoding != "auto":
        import codecs

        try:
            codecs.lookup(encoding)
        except LookupError:
            raise CollectionError(
                f"unknown encoding {encoding!r}", file=where, field="records.encoding"
            ) from None
    delimiter = records.get("delimiter")
    if delimiter is not None and (not isinstance(delimiter, str) or len(delimiter) != 1):
        raise CollectionError(
            "delimiter must be one character", file=where, field="records.delimiter"
        )

    sheet = records.get("sheet")
    if sheet is not None and (not isinstance(sheet, str) or not sheet):
        raise CollectionError(
            "sheet must be the name of a sheet", file=where, field="records.sheet"
        )
    header_row = records.get("header_row")
    if header_row is not None and (
        not isinstance(header_row, int) or isinstance(header_row, bool) or header_row < 1
    ):
        raise CollectionError(
            f"header_row must be a row number, 1 or more (got {header_row!r})",
            file=where,
            field="records.header_row",
        )
    match_images, image_folder, image_names = _images_table(data.get("images"), folder, where)

    fields = data.get("fields")
    if not isinstance(fields, dict):
        raise CollectionError("[fields] table is required", file=where, field="fields")
    for key, column in fields.items():
        if key not in FIELDS_BY_NAME:
            raise CollectionError(
                f"unknown field {key!r}; known fields: {', '.join(FIELDS_BY_NAME)}",
                file=where,
                field=f"fields.{key}",
            )
        if not isinstance(column, str) or not column.strip():
            raise CollectionError("must name a source column", file=where, field=f"fields.{key}")
    for required in ("id", "title"):
        if required not in fields:
            raise CollectionError(
                f"[fields] must map {required!r}", file=where, field=f"fields.{required}"
            )

    institution = Institution(
        id=inst_id,
        name=name,
        rights=rights.strip(),
        homepage=homepage,
        logo=logo,
        max_image_size=cap,
        credit=_lang_map(data.get("credit"), "credit", where, required=False),
        description=_lang_map(data.get("description"), "description", where, required=False),
        source=str(folder),
    )
    return Collection(
        folder=folder,
        institution=institution,
        records_path=records_path,
        encoding=encoding,
        fields={k: v.strip() for k, v in fields.items()},
        delimiter=delimiter,
        sheet=sheet,
        header_row=header_row,
        match_images=match_images,
        image_folder=image_folder,
        image_names=image_names,
    )


def _images_table(table: Any, folder: Path, where: str) -> tuple[bool, str, tuple[str, ...]]:
    """The optional ``[images]`` table: match = true, folder = "", names = [...]."""
    if table is None:
        return True, "", DEFAULT_IMAGE_NAMES
    if not isinstance(table, dict):
        raise CollectionError("[images] must be a table", file=where, field="images")
    for key in table:
        if key not in ("match", "folder", "names"):
            raise CollectionError(
                f"unknown key {key!r}; [images] knows match, folder and names",
                file=where,
                field=f"images.{key}",
            )
    match = table.get("match", True)
    if not isinstance(match, bool):
        raise CollectionError(
            f"match must be true or false (got {match!r})", file=where, field="images.match"
        )
    sub = table.get("folder", "")
    if not isinstance(sub, str) or (sub and inside(folder, sub) is None):
        raise CollectionError(
            f"folder must be a folder inside this one (got {sub!r})",
            file=where,
            field="images.folder",
        )
    names = table.get("names", list(DEFAULT_IMAGE_NAMES))
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise CollectionError(
            'names must be a list like ["{id}", "{id}_{n}"]', file=where, field="images.names"
        )
    for name in names:
        if name.count("{id}") != 1 or name.count("{n}") > 1 or "/" in name:
            raise CollectionError(
                f"{name!r}: each name must hold {{id}} once, {{n}} at most once, and no '/'",
                file=where,
                field="images.names",
            )
    return match, sub.strip("/"), tuple(names)
