"""What an ingest run did, per institution: on screen for the curator, as JSON for the record."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from archive.errors import CollectionError
from archive.storage import REPORT_PREFIX


@dataclass
class Failure:
    reason: str
    record: str | None = None  # local id, when known
    file: str | None = None
    row: int | None = None
    field: str | None = None
    cell: str | None = None  # a workbook's sheet and cell: 収蔵品台帳!D12
    column: str | None = None  # the source column
    value: str | None = None  # the cell's text

    @classmethod
    def from_error(cls, exc: CollectionError) -> Failure:
        return cls(
            exc.reason, exc.record, exc.file, exc.row, exc.field, exc.cell, exc.column, exc.value
        )

    def where(self) -> str:
        return str(
            CollectionError(
                self.reason,
                file=self.file,
                row=self.row,
                field=self.field,
                record=self.record,
                cell=self.cell,
            )
        )


@dataclass
class Change:
    """A record a run adds, updates (with the fields that change) or removes."""

    kind: str  # add | update | remove
    record: str  # local id
    fields: list[str] = field(default_factory=list)  # what changes, for updates
    images: list[dict] = field(default_factory=list)  # source, page, width, height (adds, updates)
    cap: int = 0  # the record's max_image_size: the longest side the public gets (0 = none)


@dataclass
class InstitutionReport:
    folder: str
    id: str | None = None
    records_file: str | None = None
    encoding: str | None = None
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: int = 0
    failures: list[Failure] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    error: str | None = None  # the folder as a whole could not be ingested
    note: str | None = None
    without_images: list[str] = field(default_factory=list)  # public records with no image
    unmatched_images: list[str] = field(default_factory=list)  # files named after no record
    ambiguous_images: list[str] = field(default_factory=list)  # names to check, and why

    @property
    def ok(self) -> bool:
        return self.error is None and self.failed == 0

    def fail(self, exc: CollectionError) -> None:
        self.failed += 1
        self.failures.append(Failure.from_error(exc))


@dataclass
class Report:
    dry_run: bool = False
    started_at: str = ""
    finished_at: str = ""
    seconds: float = 0.0
    workers: int = 1
    institutions: list[InstitutionReport] = field(default_factory=list)
    images_tiled: int = 0
    images_reused: int = 0
    bytes_read: int = 0
    cpu_seconds: float = 0.0  # the tiling workers' CPU plus this process's, for benchmarks
    search: str = "ok"  # ok | skipped | behind: <reason>
    storage: str = "ok"  # ok, or what could not be done in the pyramid store
    error: str | None = None  # the run as a whole failed
    interrupted: bool = False  # stopped by Ctrl-C or SIGTERM before the end
    path: str | None = None  # where the JSON report was written

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and not self.interrupted
            and not self.search.startswith("behind")
            and all(i.ok for i in self.institutions)
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        for inst, raw in zip(self.institutions, data["institutions"], strict=True):
            raw["ok"] = inst.ok
        return data

    def write(self, folder: Path, stamp: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{REPORT_PREFIX}{stamp}.json"
        self.path = str(path)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
        tmp.replace(path)
        return path

    def keep(self, store, stamp: str) -> str:
        """Keep the JSON report in the archive's pyramid store (``PyramidStore.put_report``)."""
        name = f"{REPORT_PREFIX}{stamp}.json"
        self.path = store.report_location(name)
        data = json.dumps(self.to_dict(), ensure_ascii=False, indent=2).encode("utf-8")
        self.path = store.put_report(name, data)
        return self.path

    def render(self, *, max_failures: int = 50, max_changes: int = 200) -> str:
        """The report as a curator reads it in a terminal."""
        lines = []
        title = "Dry run: nothing was written." if self.dry_run else "Ingest report"
        lines.append(title)
        for inst in self.institutions:
            name = inst.id or inst.folder
            lines.append("")
            if inst.error:
                lines.append(f"{name}: FAILED: {inst.error}")
                continue
            verb = "would be " if self.dry_run else ""
            lines.append(
                f"{name} ({inst.records_file}, {inst.encoding}): {verb}"
                f"{inst.added} added, {inst.updated} updated, {inst.unchanged} unchanged, "
                f"{inst.removed} removed, {inst.failed} failed"
            )
            if inst.note:
                lines.append(f"  note: {inst.note}")
            # A dry run lists everything it would do; a real run lists what it took away.
            shown = [c for c in inst.changes if self.dry_run or c.kind == "remove"]
            for change in shown[:max_changes]:
                detail = f" ({', '.join(change.fields)})" if change.fields else ""
                lines.append(f"  {change.kind:<7} {change.record}{detail}")
            if len(shown) > max_changes:
                lines.append(f"  ... and {len(shown) - max_changes} more (see the JSON report)")
            for failure in inst.failures[:max_failures]:
                lines.append(f"  error   {failure.where()}")
            if len(inst.failures) > max_failures:
                lines.append(
                    f"  ... and {len(inst.failures) - max_failures} more errors "
                    "(all are in the JSON report)"
                )
            for label, items in (
                ("public, no image", inst.without_images),
                ("image named after no record", inst.unmatched_images),
                ("image name to check", inst.ambiguous_images),
            ):
                if items:
                    lines.append(f"  {label} ({len(items)}):")
                    lines.extend(f"    {item}" for item in items[:max_changes])
                    if len(items) > max_changes:
                        lines.append(f"    ... and {len(items) - max_changes} more")
        lines.append("")
        if self.error:
            lines.append(f"Run failed: {self.error}")
        if self.interrupted:
            lines.append(
                "Interrupted before the end: what is listed above was done and is kept. "
                "Run the same command again to finish; finished images are not tiled again."
            )
        done = (
            f"{self.images_reused} checked"
            if self.dry_run
            else f"{self.images_tiled} tiled, {self.images_reused} unchanged"
        )
        lines.append(
            f"Images: {done}; "
            f"{self.bytes_read / 1e6:.1f} MB read in {self.seconds:.1f} s with "
            f"{self.workers} worker(s)."
        )
        if self.search != "ok":
            lines.append(f"Search index: {self.search}")
        if self.storage != "ok":
            lines.append(f"Storage: {self.storage}")
        if self.path:
            lines.append(f"Report: {self.path}")
        if self.interrupted:
            lines.append("Interrupted (exit status 130).")
        else:
            lines.append("OK" if self.ok else "Some records failed (exit status 1).")
        return "\n".join(lines)
