"""A PostgreSQL catalog whose server runs out of disk space, for real.

The server runs under a file-size limit (tests/pg_server.py ``file_limit``: RLIMIT_FSIZE,
which PostgreSQL meets as it meets a full disk when a table must grow: the statement
fails, "Check free disk space.", and the server lives on; on ENOSPC it is SQLSTATE 53100
disk_full, the same path). The records table is filled up to the limit; then:

- an ingest stops with one message naming catalog_url, nothing of its batch committed;
- a catalog write from the web answers 503 with Retry-After, not a 500;
- once space is freed (the server restarted without the limit) the next run resumes,
  tiling nothing twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from folders import make_folder
from pg_server import PostgresServer

from archive.catalog_postgres import PostgresCatalog
from archive.config import Config
from archive.errors import CatalogFull
from archive.records import Record

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
LIMIT = 3 * 1024 * 1024  # bytes per file: the server's own files fit, a full records table not


def filler(n: int) -> Record:
    """A small record of another institution (~400 bytes, incompressible): the room it
    leaves on a full page is too small for any record an ingest writes."""
    return Record(
        id=f"filler_F-{n}",
        institution="filler",
        local_id=f"F-{n}",
        fields={"title": os.urandom(60).hex()},
        public=False,
    )


_FILL = (
    "INSERT INTO records (id, institution, local_id, public, checksum, data, created_at,"
    " updated_at) SELECT 'filler_F-' || g, 'filler', 'F-' || g, 0, md5(g::text),"
    " json_build_object('id', 'filler_F-' || g, 'title', md5(random()::text)"
    " || md5(random()::text) || md5(random()::text) || md5(random()::text))::text,"
    " '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z' FROM generate_series(%s::int, %s::int) AS g"
)


def fill(url: str) -> int:
    """Fill the records table with small incompressible rows (as ``filler``) until the
    server refuses to grow it: 200 a statement, then (the room of the batch refused
    reclaimed by VACUUM) one a statement. Returns how many rows went in."""
    n = 0
    with psycopg.connect(url, autocommit=True) as db:
        for batch in (200, 1):
            for _ in range(LIMIT // 100):
                try:
                    db.execute(_FILL, (n + 1, n + batch))
                except psycopg.Error as exc:
                    assert "File too large" in str(exc), exc
                    break
                n += batch
            else:
                raise AssertionError(f"{n} rows did not fill {LIMIT} bytes")
            db.execute("VACUUM records")
    return n


def ingest(home: Path, url: str, folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "archive"), "--home", str(home), "ingest", "--workers", "1", *args, str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "ARCHIVE_CATALOG_URL": url},
    )


def test_a_full_database_server_stops_the_ingest_cleanly_and_the_next_run_resumes(tmp_path):
    server = PostgresServer(file_limit=LIMIT, options="-c autovacuum=off")
    try:
        server.start()
        url = server.create_database()
        catalog = PostgresCatalog(url)
        filled = fill(url)
        with pytest.raises(CatalogFull, match="out of disk space") as full:
            catalog.put_record(filler(0))
        assert "catalog_url postgresql://" in str(full.value)
        assert "archive-test-password" not in str(full.value)
        assert catalog.count(public_only=False) == filled

        folder = make_folder(tmp_path, "full-museum", records=3, size=200)
        home = tmp_path / "home"
        first = ingest(home, url, folder)
        out = first.stdout + first.stderr
        assert first.returncode == 1, out
        assert "Traceback" not in out
        assert "cannot write the catalog catalog_url postgresql://" in out, out
        assert "out of disk space" in out and "Free space on the database server" in out
        assert "run the same command again" in out
        # Nothing half-committed: none of the batch is in, the filler is untouched.
        assert catalog.record_ids("full-museum", public_only=False) == []
        assert catalog.count(public_only=False) == filled

        # The web: a catalog write that fails on the full server is a 503, not a 500.
        from web import create_app

        app = create_app(Config.load(tmp_path / "web-home", environ={"ARCHIVE_CATALOG_URL": url}))
        archive = app.extensions["archive"]
        app.add_url_rule(
            "/api/test-write", "test_write", lambda: str(archive.catalog.put_record(filler(0)))
        )
        resp = app.test_client().get("/api/test-write")
        assert resp.status_code == 503, resp.get_data(as_text=True)
        assert resp.headers["Retry-After"] == str(CatalogFull.retry_after)
        assert "127.0.0.1" not in resp.get_data(as_text=True)
        archive.close()
        catalog.close()

        # Space freed: the same run again resumes, reusing the pyramids already tiled.
        server.stop()
        server.file_limit = None
        server.start()
        second = ingest(home, url, folder, "--json")
        assert second.returncode == 0, second.stdout + second.stderr
        report = json.loads(second.stdout)
        assert report["ok"] and (report["images_tiled"], report["images_reused"]) == (0, 3)
        catalog = PostgresCatalog(url)
        assert len(catalog.record_ids("full-museum", public_only=False)) == 3
        catalog.close()
    finally:
        server.destroy()
