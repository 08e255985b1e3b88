"""Images found by their record's number: ``F-002_1.jpg``, ``F-004-2.tif``, ``F-003 (1).JPG``.

A camera folder named after object numbers needs no images column. When no column
is mapped to ``images``, or a row's cell is empty, every image file under the folder
(at any depth; or under ``[images] folder``) whose name fits one of ``[images] names``
(by default ``{id}``, ``{id}_{n}``, ``{id}-{n}``, ``{id} ({n})``, with any extension in
any case) belongs to the record with that number, in the order of ``n`` (the bare
``ID.jpg`` first). Numbers are compared as ids are (NFKC, case-folded).

Names can be ambiguous when one record's number is a prefix of another's: ``F-10.jpg``
is the image of record ``F-10`` and also fits "image 10 of record ``F``". Every record
number is read before matching, so a name goes to the record whose number it spells
out in full when there is one; when both records exist the choice is reported.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from archive.errors import CollectionError
from archive.records import search_key, split_images

from .collection import Collection
from .readers import read_records

IMAGE_SUFFIXES = frozenset(
    ".jpg .jpeg .jpe .tif .tiff .png .webp .gif .heic .heif .jp2 .j2k .jpf .jpx".split()
)


def name_patterns(names: Iterable[str]) -> list[re.Pattern[str]]:
    """``{id}_{n}`` to a regular expression over a file name without its extension."""
    patterns = []
    for name in names:
        parts = re.split(r"(\{id\}|\{n\})", name)
        regex = "".join(
            "(?P<id>.+)" if p == "{id}" else r"(?P<n>\d+)" if p == "{n}" else re.escape(p)
            for p in parts
        )
        patterns.append(re.compile(regex, re.IGNORECASE))
    return patterns


@dataclass
class Match:
    path: Path
    relative: str
    n: int


@dataclass
class ImageMatcher:
    """Which image files belong to which record number, worked out once per run."""

    by_record: dict[str, list[Match]] = field(default_factory=dict)  # search key -> images
    unmatched: list[str] = field(default_factory=list)  # files named after no record
    ambiguous: list[str] = field(default_factory=list)  # what was decided, for the report

    def images_for(self, local_id: str) -> list[Match]:
        return self.by_record.get(search_key(local_id), [])


@dataclass
class Scan:
    """What one quick pass over the records file tells before the real one."""

    ids: set[str] = field(default_factory=set)  # every record number (search keys)
    listed: set[str] = field(default_factory=set)  # every image cell's path (NFC)
    image_cells: int = 0  # how many images the cells list: the progress bar's total


def scan_records(collection: Collection) -> Scan:
    """Read the records file once for the numbers and image cells; kept on the collection,
    so the progress bar's count and the matcher share one pass."""
    cached = collection.extra.get("scan")
    if cached is not None:
        return cached
    scan = Scan()
    id_column = collection.fields["id"]
    image_column = collection.fields.get("images")
    try:
        _, _, rows = read_records(
            collection.records_path,
            encoding=collection.encoding,
            delimiter=collection.delimiter,
            sheet=collection.sheet,
            header_row=collection.header_row,
        )
        for row in rows:
            value = row.values.get(id_column)
            if isinstance(value, list):
                value = "; ".join(value)
            if value and str(value).strip():
                scan.ids.add(search_key(str(value).strip()))
            cell = row.values.get(image_column) if image_column else None
            if cell:
                items = cell if isinstance(cell, list) else split_images(str(cell))
                scan.image_cells += len(items)
                for item in items:
                    scan.listed.add(unicodedata.normalize("NFC", item.replace("\\", "/").strip()))
    except CollectionError:
        pass  # the real pass reports it
    collection.extra["scan"] = scan
    return scan


def build_matcher(collection: Collection) -> ImageMatcher | None:
    """The images of a folder matched to its record numbers; None when matching is off."""
    if not collection.match_images:
        return None
    scan = scan_records(collection)
    ids, listed = scan.ids, scan.listed
    patterns = [
        (pattern, [p.casefold() for p in re.split(r"\{id\}|\{n\}", name) if p])
        for pattern, name in zip(
            name_patterns(collection.image_names), collection.image_names, strict=True
        )
    ]
    root = collection.folder / collection.image_folder if collection.image_folder else None
    root = root or collection.folder
    logo = collection.institution.logo
    skip = {unicodedata.normalize("NFC", logo)} if logo else set()
    matcher = ImageMatcher()
    base = str(collection.folder)
    found: list[tuple[str, str]] = []  # (relative, absolute); plain strings: 100,000s of files
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        prefix = directory[len(base) + 1 :].replace(os.sep, "/")
        for name in files:
            if name[0] == "." or os.path.splitext(name)[1].lower() not in IMAGE_SUFFIXES:
                continue  # hidden files: .DS_Store, macOS "._F-1.jpg" companions
            relative = unicodedata.normalize("NFC", f"{prefix}/{name}" if prefix else name)
            if relative in skip or relative in listed:
                continue
            found.append((relative, os.path.join(directory, name)))
    found.sort()
    for relative, path in found:
        stem = os.path.splitext(relative.rpartition("/")[2])[0]
        folded = stem.casefold()
        candidates: list[tuple[str, int, str]] = []  # (key, n, number as written)
        for pattern, pieces in patterns:
            if not all(piece in folded for piece in pieces):
                continue  # cheaper than the regular expression, for most names
            m = pattern.fullmatch(stem)
            if m is None:
                continue
            number = m.group("id").strip()
            key = number.casefold() if number.isascii() else search_key(number)
            n = int(m.group("n")) if "n" in pattern.groupindex else 0
            if key in ids and all(c[0] != key for c in candidates):
                candidates.append((key, n, number))
        if not candidates:
            matcher.unmatched.append(relative)
            continue
        # The longest number wins: F-10.jpg is record F-10's, not image 10 of F.
        candidates.sort(key=lambda c: -len(c[0]))
        key, n, number = candidates[0]
        if len(candidates) > 1:
            others = ", ".join(f"{c[2]} (image {c[1]})" for c in candidates[1:])
            matcher.ambiguous.append(f"{relative}: given to {number}, not to {others}")
        matcher.by_record.setdefault(key, []).append(Match(Path(path), relative, n))
    for matches in matcher.by_record.values():
        matches.sort(key=lambda m: (m.n, m.relative))
        for before, after in zip(matches, matches[1:], strict=False):
            if before.n == after.n:  # a copy in a backup folder, or F-1_1 beside F-1-1
                matcher.ambiguous.append(
                    f"{after.relative}: the same place in the order as {before.relative} "
                    "(both are used; remove or rename one)"
                )
    return matcher
