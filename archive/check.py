"""``archive check``: do the catalog, the pyramids and the search index agree?

Like ``git fsck``: the catalog is the source of truth, and everything else is checked
against it. Every image the catalog names must have its pyramid, whole and readable,
of the size the catalog says (``--deep`` also reads every stored tile); every pyramid
on disk must belong to an image of the catalog; the search index must hold exactly
the public records. Each problem names its record and image.

This module knows none of the other packages: the CLI hands it the pyramid readers
(``iiif.image_tiff``) and attaches the search backend, and does the re-tiling of a
repair with ``ingest``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .catalog import SEARCH_BEHIND
from .context import Archive

# Kinds of problem, in the order they are listed.
KINDS = (
    "missing-pyramid",  # the catalog names an image whose pyramid is not on disk
    "damaged-pyramid",  # on disk but unreadable, of the wrong size, or a tile is bad (--deep)
    "orphaned-file",  # a pyramid (or a leftover temporary file) no image of the catalog names
    "missing-from-index",  # a public record the search index lacks
    "left-in-index",  # a document of the index with no public record behind it
    "search",  # the index cannot be read, or is marked behind the catalog
)


@dataclass(frozen=True)
class Problem:
    kind: str
    detail: str
    record: str | None = None
    image: str | None = None
    path: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        where = ", ".join(
            part
            for part in (
                f"record {self.record}" if self.record else "",
                f"image {self.image}" if self.image else "",
            )
            if part
        )
        text = f"{self.kind}: {where}: {self.detail}" if where else f"{self.kind}: {self.detail}"
        return f"{text} ({self.path})" if self.path else text


@dataclass
class CheckReport:
    deep: bool = False
    records: int = 0
    images: int = 0
    pyramids: int = 0  # files in the store
    tiles: int = 0  # read, with --deep
    documents: int | None = None
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def healthy(self) -> bool:
        return not self.problems

    def of(self, *kinds: str) -> list[Problem]:
        return [p for p in self.problems if p.kind in kinds]

    def to_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "deep": self.deep,
            "records": self.records,
            "images": self.images,
            "pyramids": self.pyramids,
            "tiles": self.tiles,
            "documents": self.documents,
            "seconds": round(self.seconds, 3),
            "notes": self.notes,
            "problems": [
                {
                    "kind": p.kind,
                    "record": p.record,
                    "image": p.image,
                    "path": p.path,
                    "detail": p.detail,
                }
                for p in self.problems
            ],
        }

    def render(self) -> str:
        lines = [str(p) for p in sorted(self.problems, key=lambda p: KINDS.index(p.kind))]
        lines += [f"note: {note}" for note in self.notes]
        counted = (
            f"{self.records} records, {self.images} images, {self.pyramids} pyramid files"
            + (f", {self.tiles} tiles read" if self.deep else "")
            + (f", {self.documents} search documents" if self.documents is not None else "")
        )
        verdict = "healthy" if self.healthy else f"{len(self.problems)} problem(s)"
        lines.append(f"Checked {counted} in {self.seconds:.1f} s: {verdict}.")
        return "\n".join(lines)


# What the CLI passes in: path -> (width, height) of level 0, raising on a broken file;
# and path -> number of tiles read, raising on the first bad one.
ReadSize = Callable[[str, Any], tuple[int, int]]  # (name, open pyramid file)
ReadTiles = Callable[[str, Any], int]


def check_archive(
    archive: Archive,
    *,
    read_size: ReadSize,
    read_tiles: ReadTiles | None = None,
    ingest_running: bool = False,
) -> CheckReport:
    """Check ``archive`` (its search backend attached, or None to skip the index)."""
    started = time.monotonic()
    report = CheckReport(deep=read_tiles is not None)
    expected: dict[tuple[str, str], tuple[str, int, int]] = {}  # (image, version) -> facts
    public: set[str] = set()
    for record in archive.catalog.records(public_only=False):
        report.records += 1
        if record.public:
            public.add(record.id)
        for image in record.images:
            expected[(image.id, image.version)] = (record.id, image.width, image.height)
    report.images = len(expected)

    on_disk = {}
    for image_id, version, path in archive.images.files():
        on_disk[(image_id, version)] = path
    report.pyramids = len(on_disk)
    for key, (record_id, width, height) in expected.items():
        image_id, version = key
        path = on_disk.get(key)
        if path is None:
            report.problems.append(
                Problem(
                    "missing-pyramid",
                    f"its pyramid is not in {archive.images.url}",
                    record_id,
                    image_id,
                    None,
                    version,
                )
            )
            continue
        problem = _check_pyramid(
            archive.images, key, str(path), (width, height), read_size, read_tiles, report
        )
        if problem:
            report.problems.append(
                Problem("damaged-pyramid", problem, record_id, image_id, str(path), version)
            )

    if ingest_running:
        report.notes.append(
            "an ingest is running: pyramids not yet in the catalog are not judged orphans"
        )
    else:
        for (image_id, version), path in on_disk.items():
            if (image_id, version) not in expected:
                report.problems.append(
                    Problem(
                        "orphaned-file",
                        f"version {version} is not an image of the catalog",
                        None,
                        image_id,
                        str(path),
                        version,
                    )
                )
        for path in _leftovers(archive):
            report.problems.append(
                Problem("orphaned-file", "a temporary file an ingest left", path=str(path))
            )

    if archive.search is not None:
        _check_index(archive, public, report)
    report.seconds = time.monotonic() - started
    return report


def _check_pyramid(store, key, name, expected, read_size, read_tiles, report) -> str | None:
    """One pyramid, read through the store (a local file, or ranged reads of an object)."""
    width, height = expected
    try:
        with store.open(*key) as fh:
            size = read_size(name, fh)
            if tuple(size) != (width, height):
                return f"pyramid is {size[0]}x{size[1]}, the catalog says {width}x{height}"
            if read_tiles is not None:
                report.tiles += read_tiles(name, fh)
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    except Exception as exc:  # noqa: BLE001 - the reader's error says what is broken
        return f"cannot be read: {exc}"
    return None


def _leftovers(archive: Archive) -> list:
    tmp = getattr(archive.images, "tmp", None)
    if tmp is None or not tmp.is_dir():
        return []
    return sorted(p for p in tmp.iterdir() if p.is_file())


def _check_index(archive: Archive, public: set[str], report: CheckReport) -> None:
    try:
        indexed = archive.search.document_ids()
    except Exception as exc:  # noqa: BLE001 - unreachable or unreadable: one problem, said
        report.problems.append(Problem("search", f"the index cannot be read: {exc}"))
        return
    report.documents = len(indexed)
    for record_id in sorted(public - indexed):
        report.problems.append(
            Problem("missing-from-index", "public, but not in the search index", record_id)
        )
    for record_id in sorted(indexed - public):
        report.problems.append(
            Problem(
                "left-in-index",
                "in the search index, but no public record of the catalog",
                record_id,
            )
        )
    if behind := archive.catalog.get_meta(SEARCH_BEHIND):
        report.problems.append(Problem("search", f"the index is marked behind since {behind}"))


def repair_index(archive: Archive) -> int:
    """Rebuild the index from the catalog (as `archive reindex`); returns documents."""
    institutions = {inst.id: inst for inst in archive.catalog.institutions()}
    count = archive.search.rebuild(archive.catalog.records(public_only=True), institutions)
    archive.catalog.set_meta(SEARCH_BEHIND, None)
    return count


def remove_damaged(archive: Archive, report: CheckReport) -> list[Problem]:
    """Delete the damaged pyramids, so the re-tiling writes them anew; returns them."""
    damaged = report.of("damaged-pyramid")
    for problem in damaged:
        archive.images.remove(problem.image, problem.version)
    return damaged
