"""``archive ingest``: curators' folders in, catalog, pyramids and search index out.

The path of one run::

    institution.toml ─ load_collection ─┐
    records file ─ read_records ─ map_row ─ Draft ─┬─ (no images) ──────────────┐
                                                   └─ process pool: hash, tile ─┴─ finalize
    finalize: compare with the catalog ─ put_record ─ search.index (batched)
    end: removals ─ sweep unreferenced pyramids ─ JSON report

Safe to kill at any moment: a pyramid is written to a temporary file and renamed
into place (its file name carries its version); a record is put in the catalog,
in one transaction, only after all its pyramids are committed; the search index
is marked behind in the catalog before the first write and cleared only once it
has caught up, so the next run (or ``archive reindex``) rebuilds it. A re-run
finds finished pyramids by version and does not tile them again.

Ctrl-C (SIGINT; the CLI turns SIGTERM into the same) stops the run gracefully: no
new image is started, the few being tiled are finished (their pyramids are reused by
the next run), and the report says the run was interrupted. A second Ctrl-C stops the
tiling processes at once. Tiling processes ignore SIGINT themselves, so a terminal's
Ctrl-C, which reaches every process of the group, is decided here, once.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sqlite3
import sys
import time
import unicodedata
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TextIO

from archive.catalog import SEARCH_BEHIND, now
from archive.context import Archive
from archive.errors import (
    ArchiveError,
    CatalogFull,
    CollectionError,
    StorageFull,
    StorageUnavailable,
)
from archive.records import ImageRef, Institution, Record, image_id, record_id, split_images

from .collection import Collection, load_collection
from .images import ImageResult, ImageTask, PageResult, TileParams, process_image, sha256_file
from .mapping import Draft, check_header, map_row
from .matching import build_matcher, scan_records
from .progress import Progress
from .readers import read_records
from .report import Change, InstitutionReport, Report

BATCH = 500
_STOPPED = (
    "The run stopped there: the records committed before it stay, and no record refers to "
    "a pyramid not written whole."
)
_AGAIN = "and run the same command again: it resumes, reusing every pyramid already written"
_RESUME = f"{_STOPPED} Free space on the archive's disk {_AGAIN}"
_RESUME_SERVER = f"{_STOPPED} Free space on the database server {_AGAIN}"


def default_workers(archive: Archive, workers: int | None) -> int:
    return max(1, workers or archive.config.workers or os.cpu_count() or 1)


def _init_worker(concurrency: int, environ: dict[str, str]) -> None:
    """Each tiling process: the ingest's own environment (the forkserver hands a worker
    the environment of the forkserver's start, which an earlier ingest in the same
    process may have made before AWS_* settings changed), libvips threads shared fairly
    between processes, no op cache (every source is read once; caching only holds file
    handles and memory)."""
    import pyvips

    os.environ.clear()
    os.environ.update(environ)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides (see above)
    pyvips.cache_set_max(0)
    pyvips.concurrency_set(concurrency)


@dataclass
class _Pending:
    draft: Draft
    results: dict[int, ImageResult] = field(default_factory=dict)


class _Tiler:
    """A process pool with a bounded number of images in flight (bounded memory)."""

    def __init__(self, workers: int, params: TileParams, dry_run: bool) -> None:
        self.workers = workers
        self.params = params
        self.dry_run = dry_run
        self.window = workers * 4
        self.inflight: dict[Future, tuple[_Pending, int, ImageTask]] = {}
        self.pool: ProcessPoolExecutor | None = None  # started with the first image

    def _new_pool(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["ingest.images"])  # import pyvips once, not per worker
        concurrency = max(1, (os.cpu_count() or 1) // self.workers)
        return ProcessPoolExecutor(
            self.workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(concurrency, dict(os.environ)),
        )

    def submit(self, pending: _Pending, index: int, task: ImageTask):
        """Queue one image; yields the results that had to be collected to make room."""
        while len(self.inflight) >= self.window:
            yield from self.collect(block=True)
        if self.pool is None:
            self.pool = self._new_pool()
        future = self.pool.submit(process_image, task, self.params, self.dry_run)
        self.inflight[future] = (pending, index, task)

    def collect(self, *, block: bool):
        """Finished images as (pending record, image index, result)."""
        if not self.inflight:
            return
        done, _ = wait(self.inflight, timeout=None if block else 0, return_when=FIRST_COMPLETED)
        broken = False
        for future in done:
            pending, index, task = self.inflight.pop(future)
            try:
                result = future.result()
            except BrokenProcessPool:
                broken = True
                result = ImageResult(
                    task,
                    error="the tiling process died while reading this "
                    "image (out of memory, or a crash in the image library)",
                )
            except Exception as exc:  # noqa: BLE001 - reported against the image; the run goes on
                result = ImageResult(task, error=f"{type(exc).__name__}: {exc}")
            yield pending, index, result
        if broken and self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None

    def drain(self):
        while self.inflight:
            yield from self.collect(block=True)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def abort(self, stream: TextIO | None) -> None:
        """On Ctrl-C: start nothing new, let the images being tiled finish, unless
        interrupted again, then stop the tiling processes at once."""
        if self.pool is None:
            return
        pool, self.pool = self.pool, None
        running = sum(1 for future in self.inflight if future.running())
        if stream is not None and running:
            print(
                f"\nInterrupted: finishing the {running} image(s) already handed to the "
                "tiling processes (Ctrl-C again to stop at once)...",
                file=stream,
                flush=True,
            )
        try:
            pool.shutdown(wait=True, cancel_futures=True)
        except KeyboardInterrupt:
            for process in list(getattr(pool, "_processes", {}).values()):
                process.kill()
            pool.shutdown(wait=True, cancel_futures=True)
        self.inflight.clear()


class _Run:
    def __init__(
        self, archive: Archive, report: Report, tiler: _Tiler, progress: Progress, dry_run: bool
    ) -> None:
        self.archive = archive
        self.catalog = archive.catalog
        self.report = report
        self.tiler = tiler
        self.progress = progress
        self.dry_run = dry_run
        self.search = None if dry_run else archive.search
        self.search_error: str | None = None
        self.to_index: list[Record] = []
        self.to_unindex: list[str] = []
        self.unsynced = False  # pyramids written since the last os.sync()
        self.stored: set[tuple[str, str]] | None = None  # a remote store's listing

    # -- one institution ---------------------------------------------------------------------
    def ingest(self, collection: Collection, inst_report: InstitutionReport) -> None:
        inst = collection.institution
        inst_report.id = inst.id
        inst_report.records_file = collection.records_name
        self.inst = inst
        self.inst_report = inst_report
        self.collection = collection
        old = self.catalog.checksums(inst.id)
        self.old_images = self.catalog.image_sizes(inst.id)
        self.old_checksums = {
            record_id(inst.id, unicodedata.normalize("NFKC", local)): checksum
            for local, checksum in old.items()
        }
        self.seen: set[str] = set()
        self.first_row: dict[str, int] = {}
        unknown_rows = 0

        header, codec, rows = read_records(
            collection.records_path,
            encoding=collection.encoding,
            delimiter=collection.delimiter,
            name=collection.records_name,
            sheet=collection.sheet,
            header_row=collection.header_row,
        )
        inst_report.encoding = codec
        check_header(collection, header)
        matcher = build_matcher(collection)
        if matcher is not None:
            inst_report.unmatched_images = matcher.unmatched
            inst_report.ambiguous_images = matcher.ambiguous
        if not self.dry_run:
            self.catalog.put_institution(inst)
        for row in rows:
            try:
                draft = map_row(collection, row, matcher)
            except CollectionError as exc:
                inst_report.fail(exc)
                self.progress.advance(self._image_cells(row))
                if exc.record:
                    self.seen.add(record_id(inst.id, unicodedata.normalize("NFKC", exc.record)))
                else:
                    unknown_rows += 1
                continue
            self.progress.total += draft.matched  # not in the images cells counted up front
            first = self.first_row.get(draft.key)
            if first is not None:
                inst_report.fail(
                    CollectionError(
                        f"duplicate id: {draft.record.local_id!r} is already used on row {first}",
                        file=collection.records_name,
                        row=row.number,
                        field="id",
                        record=draft.record.local_id,
                    )
                )
                self.progress.advance(len(draft.image_paths))
                continue
            self.first_row[draft.key] = row.number
            self.seen.add(draft.record.id)
            if draft.record.public and not draft.image_paths:
                inst_report.without_images.append(draft.record.local_id)
            self._start(draft)
        for pending, index, result in self.tiler.drain():
            self._deliver(pending, index, result)
        self.flush()
        self._remove_missing(unknown_rows)
        self.flush()

    def _image_cells(self, row) -> int:
        column = self.collection.fields.get("images")
        value = row.values.get(column) if column else None
        if not value:
            return 0
        return len(value) if isinstance(value, list) else len(split_images(str(value)))

    def _start(self, draft: Draft) -> None:
        pending = _Pending(draft)
        if not draft.image_paths:
            self._finalize(pending)
            return
        store = self.archive.images
        root, home = store.location(), str(self.archive.home.root)
        timeout = float(self.archive.config.storage_timeout)
        for index, (ref, path) in enumerate(
            zip(draft.record.images, draft.image_paths, strict=True)
        ):
            task = ImageTask(
                str(path), draft.record.id, ref.source, root, home=home, storage_timeout=timeout
            )
            try:
                checksum, size = sha256_file(path)
            except OSError:
                checksum, size = "", 0  # the worker reports the error
            reused = self._unchanged(task, checksum, size) if checksum else None
            if reused is not None:
                self._deliver(pending, index, reused)
                continue
            task = replace(task, checksum=checksum, size=size)
            for done in self.tiler.submit(pending, index, task):
                self._deliver(*done)
        for done in self.tiler.collect(block=False):
            self._deliver(*done)

    def _unchanged(self, task: ImageTask, checksum: str, size: int) -> ImageResult | None:
        """An image whose content the catalog already has as a committed pyramid, found
        here without a round trip to a worker (what makes a no-change re-run fast)."""
        pages: list[PageResult] = []
        while True:
            img_id = image_id(task.record_id, task.source, len(pages))
            old = self.old_images.get(img_id)
            version = self.tiler.params.version(checksum, len(pages))
            if old is None or old[0] != version:
                break
            if not self._stored(img_id, version):
                return None
            pages.append(PageResult(len(pages), version, old[1], old[2], False))
        if not pages:
            return None
        return ImageResult(task, checksum=checksum, pages=pages, bytes_read=size)

    def _stored(self, img_id: str, version: str) -> bool:
        """Whether the store has this pyramid. A remote store is listed once a run (a
        thousand names a request) rather than asked once an image; when it cannot be
        reached the image goes to a tiling process, which reports why."""
        store = self.archive.images
        if store.local:
            return store.exists(img_id, version)
        if self.stored is None:
            try:
                self.stored = {(i, v) for i, v, _ in store.files()}
            except StorageUnavailable:
                return False
        return (img_id, version) in self.stored

    def _deliver(self, pending: _Pending, index: int, result: ImageResult) -> None:
        if result.write_failed:  # every image after this one would fail the same way
            raise StorageFull(f"{result.error}. {_RESUME}")
        pending.results[index] = result
        self.report.bytes_read += result.bytes_read
        self.report.cpu_seconds += result.cpu_seconds
        for page in result.pages:
            if page.tiled:
                self.unsynced = True
                self.report.images_tiled += 1
            else:
                self.report.images_reused += 1
        self.progress.advance(1, pending.draft.record.local_id)
        if len(pending.results) == len(pending.draft.image_paths):
            self._finalize(pending)

    # -- one record --------------------------------------------------------------------------
    def _finalize(self, pending: _Pending) -> None:
        rec = pending.draft.record
        images: list[ImageRef] = []
        for index, ref in enumerate(rec.images):
            result = pending.results[index]
            if result.error:
                self.inst_report.fail(
                    CollectionError(
                        f"image {ref.source!r}: {result.error}",
                        file=rec.source.file,
                        row=rec.source.row,
                        field="images",
                        record=rec.local_id,
                    )
                )
                return
            for page in result.pages:
                images.append(
                    ImageRef(
                        id=image_id(rec.id, ref.source, page.page),
                        source=ref.source,
                        page=page.page,
                        checksum=result.checksum,
                        width=page.width,
                        height=page.height,
                        version=page.version,
                    )
                )
        rec.images = images
        old_checksum = self.old_checksums.get(rec.id)
        if old_checksum == rec.content_checksum():
            self.inst_report.unchanged += 1
            return
        if old_checksum is None:
            self.inst_report.added += 1
        else:
            self.inst_report.updated += 1
        self._describe(rec, old_checksum is None)  # before the catalog has the new version
        if self.dry_run:
            return
        self.to_index.append(rec)
        if len(self.to_index) >= BATCH:
            self.flush()

    def _describe(self, rec: Record, new: bool) -> None:
        shown = [
            {"source": i.source, "page": i.page, "width": i.width, "height": i.height}
            for i in rec.images
        ]  # for the HTML report's thumbnails
        if new:
            self.inst_report.changes.append(
                Change("add", rec.local_id, images=shown, cap=rec.max_image_size)
            )
            return
        old = self.catalog.get_record(rec.id, public_only=False).to_dict()
        now_ = rec.to_dict()
        changed = sorted(
            {
                k
                for k in old["fields"].keys() | now_["fields"].keys()
                if old["fields"].get(k) != now_["fields"].get(k)
            }
        )
        for key in ("extra", "public", "rights", "max_image_size"):
            if old[key] != now_[key] and key not in changed:
                changed.append(key)
        if old["images"] != now_["images"] and "images" not in changed:
            changed.append("images")  # same paths, different pixels
        self.inst_report.changes.append(
            Change("update", rec.local_id, changed, images=shown, cap=rec.max_image_size)
        )

    def _remove_missing(self, unknown_rows: int) -> None:
        existing = set(self.catalog.record_ids(self.inst.id, public_only=False))
        gone = sorted(existing - self.seen)
        if gone and unknown_rows:
            self.inst_report.note = (
                f"{unknown_rows} row(s) could not be read, so the {len(gone)} record(s) "
                "missing from this run were not removed; fix the rows and run again"
            )
            return
        for rid in gone:
            if self.dry_run:
                rec = self.catalog.get_record(rid, public_only=False)
                self.inst_report.changes.append(Change("remove", rec.local_id))
                self.inst_report.removed += 1
                continue
            rec = self.catalog.delete_record(rid)
            if rec is None:
                continue
            for img in rec.images:
                try:
                    self.archive.images.remove(img.id, img.version)
                except StorageUnavailable:
                    pass  # unreferenced now: a later run's sweep removes it
            self.inst_report.changes.append(Change("remove", rec.local_id))
            self.inst_report.removed += 1
            self.to_unindex.append(rid)

    # -- catalog and search, in batches ------------------------------------------------------
    def flush(self) -> None:
        """Put finished records in the catalog (one transaction per batch), then index them."""
        records, self.to_index = self.to_index, []
        if records and self.unsynced and self.archive.images.local:
            os.sync()  # pyramids on disk before the catalog refers to them (see commit)
            self.unsynced = False
        if records:
            try:
                with self.catalog.transaction():
                    for rec in records:
                        self.catalog.put_record(rec)
            except CatalogFull as exc:  # the database server's disk: rolled back whole
                raise CatalogFull(f"{exc}. {_RESUME_SERVER}") from None
            except sqlite3.OperationalError as exc:  # rolled back: none of the batch is in
                if "full" not in str(exc) and "I/O" not in str(exc):
                    raise
                where = getattr(self.catalog, "path", "the catalog")
                raise StorageFull(f"cannot write the catalog {where}: {exc}. {_RESUME}") from None
        deleted, self.to_unindex = self.to_unindex, []
        if self.search is None or self.search_error:
            return
        try:
            if records:
                self.search.index(records, {self.inst.id: self.inst})
            if deleted:
                self.search.delete(deleted)
        except (ArchiveError, sqlite3.Error, OSError) as exc:  # down, or its disk full
            self.search_error = str(exc)
            self.catalog.set_meta(SEARCH_BEHIND, f"{now()}: {exc}")


def _count_images(collection: Collection) -> int:
    """Image cells in the records file: the progress bar's total (one quick pass, shared
    with the image matcher)."""
    if "images" not in collection.fields and not collection.match_images:
        return 0
    return scan_records(collection).image_cells


def _load(paths: list[str], report: Report) -> list[tuple[Collection, InstitutionReport]]:
    loaded: list[tuple[Collection, InstitutionReport]] = []
    by_id: dict[str, str] = {}
    for path in paths:
        inst_report = InstitutionReport(folder=str(path))
        report.institutions.append(inst_report)
        try:
            collection = load_collection(path)
        except CollectionError as exc:
            inst_report.error = str(exc)
            continue
        inst_id = collection.institution.id
        inst_report.id = inst_id
        if inst_id in by_id:
            inst_report.error = (
                f"institution id {inst_id!r} is also used by {by_id[inst_id]} in this run"
            )
            continue
        by_id[inst_id] = str(collection.folder)
        loaded.append((collection, inst_report))
    return loaded


def run_ingest(
    archive: Archive,
    paths: list[str],
    *,
    dry_run: bool = False,
    workers: int | None = None,
    progress: TextIO | None = sys.stderr,
) -> Report:
    """Ingest institution folders (see the module docstring). Never raises for bad input:
    everything is in the returned report; raises LockedError if another ingest writes.

    Tiling runs in a forkserver process pool, so a script calling this must guard its
    entry point with ``if __name__ == "__main__":`` (the `archive` command does)."""
    started, cpu_started = time.monotonic(), time.process_time()
    workers = default_workers(archive, workers)
    report = Report(dry_run=dry_run, started_at=now(), workers=workers)
    loaded = _load(paths, report)
    params = TileParams(
        archive.config.tile_size, archive.config.jpeg_quality, archive.config.max_pixels
    )
    if dry_run:
        try:
            _run_all(archive, report, loaded, params, workers, progress)
        except KeyboardInterrupt:
            report.interrupted = True
    else:
        with archive.catalog.write_lock():
            search = archive.search
            behind = search is not None and archive.catalog.get_meta(SEARCH_BEHIND) is not None
            if search is not None:
                archive.catalog.set_meta(SEARCH_BEHIND, f"{now()}: ingest in progress")
            # Records are embedded in processes of their own while this one analyses,
            # writes and tiles (search.base.SearchBackend.bulk).
            bulk = search.bulk(workers) if search is not None else contextlib.nullcontext()
            try:
                with bulk:
                    run = _run_all(archive, report, loaded, params, workers, progress)
            except StorageFull as exc:
                # As for an interruption: what was committed stays, the rest is resumed.
                report.error = str(exc)
                if search is not None:
                    report.search = "behind: the run stopped early; the next run catches up"
                return _finish(archive, report, started, cpu_started)
            except KeyboardInterrupt:
                # Records committed so far stay; pyramids not yet in the catalog stay too
                # (no sweep), for the next run to reuse; search stays marked behind.
                report.interrupted = True
                if search is not None:
                    report.search = "behind: the run was interrupted; the next run catches up"
                return _finish(archive, report, started, cpu_started)
            try:
                archive.images.sweep(archive.catalog.image_versions())
            except StorageUnavailable as exc:
                report.storage = f"old pyramids not swept: {exc}; the next run does it"
            if search is None:
                report.search = "skipped (no search backend)"
            elif run.search_error:
                report.search = (
                    f"behind: {run.search_error}; run `archive ingest` again "
                    "or `archive reindex` once search is back"
                )
            else:
                _catch_up(archive, report, behind)
    return _finish(archive, report, started, cpu_started)


def _finish(archive: Archive, report: Report, started: float, cpu_started: float) -> Report:
    report.finished_at = now()
    report.seconds = round(time.monotonic() - started, 3)
    report.cpu_seconds = round(report.cpu_seconds + time.process_time() - cpu_started, 3)
    if not report.dry_run:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        try:
            try:
                report.keep(archive.images, stamp)
            except StorageUnavailable as exc:  # kept in the home instead; `archive status` looks
                report.storage = f"report kept in the archive home: {exc}"
                report.write(archive.home.reports, stamp)
        except OSError as exc:  # a full disk: the run's outcome is still printed
            report.path = None
            note = f"the report could not be saved in {archive.home.reports}: {exc.strerror}"
            report.error = f"{report.error}; {note}" if report.error else note
    return report


def _catch_up(archive: Archive, report: Report, behind: bool) -> None:
    """Rebuild the index if an earlier run left it behind; then mark it current."""
    try:
        if behind:
            institutions: dict[str, Institution] = {i.id: i for i in archive.catalog.institutions()}
            archive.search.rebuild(archive.catalog.records(public_only=True), institutions)
            report.search = "rebuilt (an earlier run had left it behind)"
        archive.catalog.set_meta(SEARCH_BEHIND, None)
        if archive.search.follows_log:  # this index has every change: its node need not redo them
            archive.search.set_log_position(archive.catalog.last_seq())
    except ArchiveError as exc:
        archive.catalog.set_meta(SEARCH_BEHIND, f"{now()}: {exc}")
        report.search = f"behind: {exc}"


def _run_all(archive, report, loaded, params, workers, progress_stream) -> _Run:
    total = sum(_count_images(c) for c, _ in loaded)
    progress = Progress(total, progress_stream)
    tiler = _Tiler(workers, params, report.dry_run)
    run = _Run(archive, report, tiler, progress, report.dry_run)
    try:
        for collection, inst_report in loaded:
            try:
                run.ingest(collection, inst_report)
            except CollectionError as exc:
                inst_report.error = str(exc)
    except KeyboardInterrupt:
        progress.close()
        tiler.abort(progress_stream)
        raise
    finally:
        tiler.close()
        progress.close()
    return run
