"""Faults of a PostgreSQL catalog, against a real server really stopped (pg_ctl stop) and
started again: 503 with Retry-After while it is away, cached tiles still served,
service back by itself; and clean one-line start-up errors naming catalog_url."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from pg_server import PostgresServer

from archive.config import Config

ARCHIVE = str(Path(sys.executable).parent / "archive")


@pytest.fixture(scope="module")
def server():
    """A server of this module's own: stopping it must not disturb other tests."""
    pg = PostgresServer()
    try:
        pg.start()
        yield pg
    finally:
        pg.destroy()


@pytest.fixture(scope="module")
def pg_archive(tmp_path_factory, sample_images, server):
    from archive.cli import cli

    url = server.create_database()
    home = tmp_path_factory.mktemp("pg-faults") / "home"
    folders = [str(p) for p in sample_images[:1]]
    result = CliRunner().invoke(
        cli, ["--home", str(home), "ingest", *folders], env={"ARCHIVE_CATALOG_URL": url}
    )
    assert result.exit_code == 0, result.output
    return home, url


@pytest.fixture
def client(pg_archive):
    from web import create_app

    home, url = pg_archive
    app = create_app(Config.load(home, environ={"ARCHIVE_CATALOG_URL": url}))
    app.config["TESTING"] = True
    yield app.test_client()
    app.extensions["archive"].close()


def test_away_is_503_with_retry_after_and_back_by_itself(client, server):
    catalog = client.application.extensions["archive"].catalog
    records = catalog.record_ids()
    image, record = catalog.public_images()[0]
    tile = f"/iiif/3/{image}/0,0,256,256/256,/0/default.jpg"
    assert client.get(tile).status_code == 200  # now in this node's caches
    assert client.get("/api/health").get_json()["status"] == "ok"
    server.stop()
    try:
        for path in (
            f"/api/records/{records[-1]}",
            f"/iiif/3/manifest/{records[-1]}",
            "/iiif/3/collection/top",
            f"/object/{records[-1]}",
            "/api/export.jsonl",
        ):
            resp = client.get(path)
            body = resp.get_data(as_text=True)
            assert resp.status_code == 503, path
            assert resp.headers["Retry-After"].isdigit(), path
            assert "Traceback" not in body and "127.0.0.1" not in body, path
        resp = client.get(f"/api/records/{records[-1]}")
        assert resp.get_json() == {
            "error": "the catalog is unavailable at the moment; try again shortly",
            "status": 503,
        }
        health = client.get("/api/health")
        assert health.status_code == 503
        assert health.get_json()["status"] == "unavailable"
        cached = client.get(tile)
        assert cached.status_code == 200, "a tile in the node's cache is still served"
    finally:
        server.start()
    # Back with no restart: the next request connects again.
    assert client.get(f"/api/records/{records[-1]}").status_code == 200
    assert client.get(f"/iiif/3/manifest/{records[-1]}").status_code == 200
    assert client.get("/api/health").get_json()["status"] == "ok"


def run(home: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ARCHIVE, "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "ARCHIVE_CATALOG_URL": url},
    )


CASES = {
    "unreachable": "cannot connect",
    "bad password": "password authentication failed",
    "no such database": "no_such_db",
    "not a database URL": "must be empty",
}


def bad_url(server: PostgresServer, case: str) -> str:
    return {
        "unreachable": server.url().replace(f":{server.port}/", ":1/"),
        "bad password": server.url(password="wrong-secret"),
        "no such database": server.url("no_such_db"),
        "not a database URL": "mysql://u:wrong-secret@127.0.0.1/db",
    }[case]


@pytest.mark.parametrize(
    ("command", "case"),
    [(["status"], case) for case in CASES]
    + [(["serve", "--port", "1"], "unreachable"), (["serve", "--port", "1"], "bad password")]
    + [(["ingest", "."], "unreachable"), (["ingest", "."], "bad password")],
)
def test_startup_errors_are_one_line_naming_catalog_url(tmp_path, server, command, case):
    result = run(tmp_path / "home", bad_url(server, case), *command)
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0
    assert len(lines) == 1, result.stderr
    assert "catalog_url" in lines[0] and CASES[case] in lines[0], lines[0]
    assert "Traceback" not in result.stderr and "wrong-secret" not in result.stderr
