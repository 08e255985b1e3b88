"""Backup, restore and migrate on the real remote components: S3 (s3proxy) to S3, a
PostgreSQL catalog's snapshot restored into SQLite, and `archive migrate` from an
embedded archive into PostgreSQL and S3 and back, killed once and run again, serving
byte-identical manifests and tiles at every step."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from test_backup import ARCHIVE, app_client, assert_same_answers, records_in, run

from archive.backup import destination
from archive.config import Config
from archive.context import Archive

TILES_OK = 8


def pairs_of(home: Path, env: dict | None = None) -> list[tuple[str, str]]:
    environ = {k: v for k, v in os.environ.items() if k.startswith("AWS_")} | (env or {})
    archive = Archive(Config.load(home, environ=environ))
    try:
        return [(r.id, i.id) for r in archive.catalog.records(public_only=True) for i in r.images]
    finally:
        archive.close()


def compare(home_a: Path, env_a: dict, home_b: Path, env_b: dict) -> int:
    pairs = pairs_of(home_a, env_a)
    assert pairs_of(home_b, env_b) == pairs
    a, b = app_client(home_a, env_a), app_client(home_b, env_b)
    try:
        return assert_same_answers(a, b, pairs)
    finally:
        a.extensions["archive"].close()
        b.extensions["archive"].close()


def test_s3_archive_backs_up_to_another_bucket_and_restores_to_a_third(tmp_path, s3, sample_images):
    source = {"ARCHIVE_STORAGE_URL": s3.new_bucket("museum/pyramids")}
    home = tmp_path / "home"
    run(home, "ingest", *map(str, sample_images), env=source)
    dest = s3.new_bucket("backups/nightly")
    first = run(home, "backup", dest, "--verify", env=source)
    assert "Verified" in first.stdout
    assert "already there: 0" in first.stdout
    second = run(home, "backup", dest, "--verify", env=source)
    assert "Pyramids copied: 0 (0 bytes)" in second.stdout

    bucket, _, prefix = dest[len("s3://") :].partition("/")
    body = destination(dest, tmp_path).get("manifest.json")
    manifest = json.loads(body)
    assert all(e["size"] > 1000 for e in manifest["pyramids"])
    keys = {
        o["Key"]  # (s3proxy's filesystem backend also lists its folders)
        for o in s3.client().list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/images/")["Contents"]
        if o["Key"].endswith(".tif")
    }
    assert keys == {f"{prefix}/images/{e['name']}" for e in manifest["pyramids"]}

    target = {"ARCHIVE_STORAGE_URL": s3.new_bucket("restored")}
    restored = tmp_path / "restored"
    done = run(restored, "restore", dest, env=target)
    assert f"Pyramids copied: {len(manifest['pyramids'])}" in done.stdout
    assert not list((restored / "images").glob("??/*.tif"))  # into the bucket, not the disk
    assert compare(home, source, restored, target) >= TILES_OK


def test_postgres_catalog_snapshot_restores_into_sqlite(tmp_path, postgres, sample_images):
    source = {"ARCHIVE_CATALOG_URL": postgres.create_database()}
    home, dest, restored = tmp_path / "home", tmp_path / "backup", tmp_path / "restored"
    run(home, "ingest", *map(str, sample_images), env=source)
    run(home, "backup", str(dest), "--verify", env=source)
    run(restored, "restore", str(dest))
    assert records_in(restored / "catalog.sqlite") == 62
    assert compare(home, source, restored, {}) >= TILES_OK
    # and the same snapshot into an empty PostgreSQL database
    again = {"ARCHIVE_CATALOG_URL": postgres.create_database()}
    run(tmp_path / "pg-restored", "restore", str(dest), env=again)
    assert compare(home, source, tmp_path / "pg-restored", again) >= TILES_OK


def test_migrate_into_postgres_and_s3_and_back(tmp_path, s3, postgres, ingested_home):
    home = tmp_path / "home"
    run(home, "restore", str(backup_of(ingested_home, tmp_path / "b")))
    remote = {"ARCHIVE_CATALOG_URL": postgres.create_database(), "ARCHIVE_STORAGE_URL": ""}
    remote["ARCHIVE_STORAGE_URL"] = s3.new_bucket("migrated")
    bucket, _, prefix = remote["ARCHIVE_STORAGE_URL"][5:].partition("/")
    args = [
        "migrate",
        "--to-catalog",
        remote["ARCHIVE_CATALOG_URL"],
        "--to-storage",
        remote["ARCHIVE_STORAGE_URL"],
    ]

    # Killed while it copies pyramids: the catalog is untouched, the next run continues.
    proc = subprocess.Popen(
        [ARCHIVE, "--home", str(home), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        listed = s3.client().list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        found = sum(o["Key"].endswith(".tif") for o in listed)
        if found >= 3:
            break
        time.sleep(0.02)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait()

    done = run(home, *args)
    out = done.stdout
    if killed:
        present = int(out.split(" copied, ")[1].split(" already there")[0])
        assert present >= 3, out
    assert "Source and target hold the same rows and pyramids" in out
    source_sum = out.split("source ")[1].split()[0]
    assert out.split("target ")[1].split()[0] == source_sum
    assert compare(home, {}, home, remote) >= TILES_OK

    # Run again once it is done: nothing to do, same figures.
    assert "(copied before)" in run(home, *args).stdout

    # And back, into a fresh embedded home.
    back = tmp_path / "back"
    done = run(home, "migrate", "--to-home", str(back), env=remote)
    assert "Source and target hold the same rows and pyramids" in done.stdout
    assert compare(home, {}, back, {}) >= TILES_OK
    run(back, "reindex")


def backup_of(home: Path, dest: Path) -> Path:
    run(home, "backup", str(dest))
    return dest


@pytest.fixture(autouse=True)
def _no_settings_leak(monkeypatch):
    for name in ("ARCHIVE_CATALOG_URL", "ARCHIVE_STORAGE_URL"):
        monkeypatch.delenv(name, raising=False)


def _fill(catalog, institution: str, count: int, start: int = 0, note: str = "") -> None:
    from archive.records import Institution, Record, record_id

    name = {"ja": "館", "en": "Museum"}
    catalog.put_institution(Institution(id=institution, name=name, rights="CC BY 4.0"))
    with catalog.transaction():
        for n in range(start, start + count):
            local = f"R-{n:05d}"
            catalog.put_record(
                Record(
                    id=record_id(institution, local),
                    institution=institution,
                    local_id=local,
                    fields={"title": f"染付亀甲文鉢 {n}{note}", "description": "江戸前期。" * 20},
                    public=False,  # not indexed: the restore has no records to embed
                    rights="CC BY 4.0",
                )
            )


def test_a_second_backup_of_a_postgres_catalog_writes_the_changed_pages_only(tmp_path, postgres):
    """The PostgreSQL snapshot is brought up to date in the previous backup's SQLite file,
    not copied into a new one, so its unchanged pages keep their bytes; restored, it is
    the source catalog row for row."""
    from archive.backup import table_summary
    from archive.records import record_id

    source = {"ARCHIVE_CATALOG_URL": postgres.create_database()}
    home, dest = tmp_path / "home", tmp_path / "backup"
    archive = Archive(Config.load(home, environ=source))
    try:
        # 6,000 records (85 pieces): at 3,000 (43) the 10 or 11 pieces a small
        # ingest touches sat on the bound of a quarter, and a full make test crossed it.
        _fill(archive.catalog, "big", 6000)
        run(home, "backup", str(dest), env=source)
        first = json.loads((dest / "manifest.json").read_text())
        _fill(archive.catalog, "big", 5, start=6000)  # a small ingest: 5 new,
        _fill(archive.catalog, "big", 3, start=10, note=" (改)")  # 3 changed,
        archive.catalog.delete_record(record_id("big", "R-00020"))  # and one deleted
        run(home, "backup", str(dest), env=source)
        second = json.loads((dest / "manifest.json").read_text())
        # the same from a machine without the last snapshot: read back from the backup
        shutil.rmtree(home / "cache" / "backup")
        _fill(archive.catalog, "big", 1, start=40, note=" (再)")
        run(home, "backup", str(dest), env=source)
        third = json.loads((dest / "manifest.json").read_text())
        expected = table_summary(archive.catalog)
    finally:
        archive.close()
    pieces = len(first["catalog"]["chunks"])
    assert pieces >= 40  # a catalog of many pieces, so the ratio means something
    assert first["this_run"]["catalog_chunks_written"] == pieces
    # 9 records changed: a few pages of each table and index they touch (a new file
    # would have written nearly every piece again)
    for later in (second, third):
        assert 0 < later["this_run"]["catalog_chunks_written"] <= pieces // 4, later["this_run"]
    assert third["catalog"]["records"] == 6004

    restored = tmp_path / "restored"
    run(restored, "restore", str(dest))
    copy = Archive(Config.load(restored, environ={}))
    try:
        assert table_summary(copy.catalog) == expected
    finally:
        copy.close()
