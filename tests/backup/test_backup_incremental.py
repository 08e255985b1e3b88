"""A second backup of an SQLite catalog writes only the rows that changed into the last
backup's snapshot (kept in the home's cache), following the catalog's row log: what it
stores must be the catalog row for row, whatever was written, and restore whole; a row
log it cannot trust (another catalog file) gives a whole new snapshot; the log is
pruned once backed up."""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
from pathlib import Path

import pytest

from archive.backup import backup as run_backup
from archive.backup import destination, fetch_catalog, read_manifest, restore, table_summary
from archive.catalog import ROW_KEYS, TABLES, SQLiteCatalog
from archive.config import Config
from archive.context import Archive
from archive.storage import relative_name


@pytest.fixture
def home(tmp_path, ingested_home) -> Path:
    path = tmp_path / "home"
    shutil.copytree(ingested_home, path, ignore=shutil.ignore_patterns("cache", "*.lock"))
    return path


def backed_up(archive: Archive, dest: Path) -> dict:
    result = run_backup(archive.catalog, archive.images, archive.home, str(dest))
    return result.manifest


def stored_summary(dest: Path, tmp: Path) -> dict:
    """table_summary of the catalog the backup at ``dest`` holds, put together from its
    pieces (every piece and the whole file checked against the manifest)."""
    path = tmp / "fetched.sqlite"
    path.unlink(missing_ok=True)
    fetch_catalog(destination(str(dest), tmp), read_manifest(destination(str(dest), tmp)), path)
    copy = SQLiteCatalog(path, backups=tmp)
    try:
        return table_summary(copy)
    finally:
        copy.close()


def row_log(home: Path) -> int:
    db = sqlite3.connect(home / "catalog.sqlite")
    try:
        return db.execute("SELECT count(*) FROM row_log").fetchone()[0]
    finally:
        db.close()


def change_everything(archive: Archive) -> None:
    """A write of each kind, to every table a backup carries."""
    catalog = archive.catalog
    ids = catalog.record_ids(public_only=False)
    edited = catalog.get_record(ids[0], public_only=False)
    edited.fields = {**edited.fields, "title": "改題された作品"}
    catalog.put_record(edited)
    hidden = catalog.get_record(ids[1], public_only=False)
    hidden.public = False
    catalog.put_record(hidden)
    catalog.delete_record(ids[2])  # its images go with it (ON DELETE CASCADE)
    source = catalog.get_record(ids[3], public_only=False)
    twin_id = source.id + "-twin"
    twin = dataclasses.replace(
        source,
        id=twin_id,
        local_id=source.local_id + "-twin",
        images=[  # the same pyramids under new image ids
            dataclasses.replace(img, id=f"{twin_id}~{img.id.rsplit('~', 1)[1]}")
            for img in source.images
        ],
    )
    for old, new in zip(source.images, twin.images, strict=True):
        stored = archive.home.images / relative_name(new.id, new.version)
        stored.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(archive.home.images / relative_name(old.id, old.version), stored)
    catalog.put_record(twin)
    inst = catalog.institutions()[0]
    catalog.put_institution(dataclasses.replace(inst, name={**inst.name, "ja": "新館"}))
    catalog.set_meta("incremental-test", "1")
    catalog.set_meta("incremental-test", None)
    catalog.set_meta("kept-key", "2")


def test_every_table_a_backup_carries_is_in_the_row_log():
    assert ROW_KEYS == {table: columns[0] for table, columns in TABLES.items()}


def test_the_second_backup_writes_the_changed_rows_and_stores_the_catalog_as_it_is(tmp_path, home):
    dest = tmp_path / "backup"
    archive = Archive(Config.load(home, environ={}))
    try:
        first = backed_up(archive, dest)
        assert first["this_run"]["catalog_snapshot"]["kind"] == "whole"
        assert row_log(home) == 0  # on from the first backup, empty at its snapshot

        change_everything(archive)
        assert row_log(home) > 0
        second = backed_up(archive, dest)
        snap = second["this_run"]["catalog_snapshot"]
        assert snap["kind"] == "rows" and 0 < snap["rows"] < 100, snap
        live = table_summary(archive.catalog)
        assert stored_summary(dest, tmp_path) == live
        pieces = second["catalog"]["chunks"]
        assert second["pyramids"] != first["pyramids"]  # the twin's images, not the deleted's
        names = {e["name"] for e in second["pyramids"]}
        assert len(names) == second["catalog"]["images"]
        assert row_log(home) == 0  # backed up: pruned

        # Nothing changed since: no row written, no piece stored.
        third = backed_up(archive, dest)
        assert third["this_run"]["catalog_snapshot"] == {"kind": "rows", "rows": 0}
        assert third["this_run"]["catalog_chunks_written"] == 0
        assert third["catalog"]["chunks"] == pieces
    finally:
        archive.close()

    # The kept snapshot is one plain file, its log folded back in.
    kept = list((home / "cache" / "backup").glob("*.sqlite*"))
    assert len(kept) == 1 and kept[0].suffix == ".sqlite", kept

    restored = tmp_path / "restored"
    target = Archive(Config.load(restored, environ={}))
    try:
        restore(target.catalog, target.images, target.home, str(dest))
        assert table_summary(target.catalog) == live
    finally:
        target.close()


def test_a_row_log_it_cannot_trust_gives_a_whole_snapshot(tmp_path, home):
    dest, other = tmp_path / "backup", tmp_path / "other"
    archive = Archive(Config.load(home, environ={}))
    try:
        backed_up(archive, dest)
        backed_up(archive, other)  # a second destination keeps its own place in the log
        change_everything(archive)
        backed_up(archive, dest)
        assert row_log(home) > 0, "the other destination still needs the rows since"
        backed_up(archive, other)
        assert row_log(home) == 0

        # Another catalog file under the same name (copied in by hand, say): its log is
        # not the one the kept snapshot followed.
        db = sqlite3.connect(home / "catalog.sqlite")
        db.execute("UPDATE row_log_state SET token = 'another catalog'")
        db.commit()
        db.close()
        archive.catalog.delete_record(archive.catalog.record_ids(public_only=False)[5])
        again = backed_up(archive, dest)
        assert again["this_run"]["catalog_snapshot"]["kind"] == "whole"
        assert stored_summary(dest, tmp_path) == table_summary(archive.catalog)
    finally:
        archive.close()
