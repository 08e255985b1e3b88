"""Schema versions: an older catalog is migrated in order, each step in its transaction,
after a backup, each reported once; a newer one is refused and never modified. On
SQLite (online backup API into <home>/backups/) and PostgreSQL (pg_dump)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

import archive.catalog as catalog_module
from archive.catalog import SCHEMA_VERSION, Catalog, Migration
from archive.catalog_postgres import PostgresCatalog
from archive.errors import CatalogVersionError
from archive.records import ImageRef, Record

ARCHIVE = str(Path(sys.executable).parent / "archive")


def record(local: str) -> Record:
    return Record(
        id=f"craft_{local}",
        institution="craft",
        local_id=local,
        fields={"id": local, "title": "茶碗"},
        public=True,
        rights="http://rightsstatements.org/vocab/InC/1.0/",
        images=[ImageRef(id=f"craft_{local}~0", source="a.jpg", width=1, height=1, version="v")],
    )


def as_version_1_sqlite(path: Path) -> None:
    """Make the catalog exactly what releases before migrations wrote: schema version 1."""
    db = sqlite3.connect(path)
    db.execute("DROP INDEX changes_at")
    db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    db.commit()
    db.close()


def sqlite_indexes(path: Path) -> set[str]:
    db = sqlite3.connect(path)
    try:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    finally:
        db.close()


def test_sqlite_v1_is_backed_up_migrated_and_reported_once(tmp_path, capfd):
    path = tmp_path / "home" / "catalog.sqlite"
    old = Catalog(path)
    old.put_record(record("1"))
    old.close()
    as_version_1_sqlite(path)
    capfd.readouterr()

    migrated = Catalog(path)
    err = capfd.readouterr().err
    assert migrated.schema_version() == SCHEMA_VERSION == 3
    assert "changes_at" in sqlite_indexes(path)
    assert migrated.get_record("craft_1").local_id == "1"  # nothing lost
    lines = err.strip().splitlines()
    assert len(lines) == 3, err
    assert "backed up schema version 1 to" in lines[0]
    assert "migrated to schema version 2: index the change log by time" in lines[1]
    assert "migrated to schema version 3: log which rows change" in lines[2]
    backups = list((tmp_path / "home" / "backups").glob("catalog-v1-*.sqlite"))
    assert len(backups) == 1 and str(backups[0]) in lines[0]
    copy = sqlite3.connect(backups[0])
    assert copy.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("1",)
    assert copy.execute("SELECT count(*) FROM records").fetchone() == (1,)
    copy.close()
    migrated.close()

    Catalog(path).close()  # current now: nothing to do, nothing said
    assert capfd.readouterr().err == ""
    assert len(list((tmp_path / "home" / "backups").iterdir())) == 1


def test_migrations_run_in_order_each_in_its_transaction(tmp_path, monkeypatch, capfd):
    path = tmp_path / "catalog.sqlite"
    Catalog(path).close()
    n = SCHEMA_VERSION  # three more after the real ones
    steps = (
        *catalog_module.MIGRATIONS,
        Migration(n + 1, "one", ("CREATE TABLE mig (n INTEGER)", "INSERT INTO mig VALUES (1)"), ()),
        Migration(n + 2, "two", ("INSERT INTO mig SELECT 2 FROM mig WHERE n = 1",), ()),
        Migration(
            n + 3, "three", ("INSERT INTO mig VALUES (3)", "INSERT INTO no_such VALUES (1)"), ()
        ),
    )
    monkeypatch.setattr(catalog_module, "MIGRATIONS", steps)
    monkeypatch.setattr(catalog_module, "SCHEMA_VERSION", n + 3)
    with pytest.raises(sqlite3.OperationalError, match="no_such"):
        Catalog(path)
    db = sqlite3.connect(path)
    assert [r[0] for r in db.execute("SELECT n FROM mig ORDER BY rowid")] == [1, 2]
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (
        str(n + 2),
    )
    db.close()
    err = capfd.readouterr().err
    assert f"schema version {n + 1}: one" in err and f"schema version {n + 2}: two" in err
    assert f"schema version {n + 3}" not in err


def test_a_newer_sqlite_catalog_is_refused_untouched(tmp_path):
    home = tmp_path / "home"
    path = home / "catalog.sqlite"
    Catalog(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(CatalogVersionError) as caught:
        Catalog(path)
    message = str(caught.value)
    assert "schema version 99" in message and f"up to {SCHEMA_VERSION}" in message
    assert "not modified" in message
    result = subprocess.run(
        [ARCHIVE, "--home", str(home), "status"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ARCHIVE_CATALOG_URL": ""},
    )
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "schema version 99" in result.stderr
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert not (home / "backups").exists()


def test_postgres_v1_is_dumped_then_migrated(postgres_url, tmp_path, capfd):
    PostgresCatalog(postgres_url).put_record(record("1"))
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP INDEX changes_at")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    capfd.readouterr()
    migrated = PostgresCatalog(postgres_url, backups=tmp_path / "backups")
    err = capfd.readouterr().err
    assert migrated.schema_version() == SCHEMA_VERSION
    assert migrated.get_record("craft_1").local_id == "1"
    assert "backed up schema version 1 to" in err and "migrated to schema version 2" in err
    dumps = list((tmp_path / "backups").glob("catalog-v1-*.dump"))
    assert len(dumps) == 1 and dumps[0].stat().st_size > 0
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT to_regclass('changes_at') IS NOT NULL").fetchone()[0]
    migrated.close()
    PostgresCatalog(postgres_url, backups=tmp_path / "backups").close()
    assert capfd.readouterr().err == ""


def test_a_newer_postgres_catalog_is_refused_untouched(postgres_url):
    PostgresCatalog(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        before = conn.execute("SELECT generation FROM catalog_state").fetchone()
    with pytest.raises(CatalogVersionError, match="schema version 99"):
        PostgresCatalog(postgres_url)
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT generation FROM catalog_state").fetchone() == before
        assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (
            "99",
        )
