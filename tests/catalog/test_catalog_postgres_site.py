"""End to end: the sample collections ingested with a PostgreSQL catalog serve the same
bytes as with the embedded SQLite one: records API, manifests, collections, Change
Discovery, OAI-PMH, exports, search and pages.

The two archives are ingested at different moments, so the timestamps the catalog
stamps (created, updated, change times) truly differ: they, and only they, are replaced
by one placeholder before comparing. Everything else must be byte-identical.

Records reach the catalog in the order their images finish, which no two ingests
share: what depends on that order (Change Discovery pages, OAI-PMH lists, "recently
added" on pages) is compared on a PostgreSQL catalog filled from the SQLite one in its
log order instead, where every document is compared."""

from __future__ import annotations

import re
import urllib.parse

import pytest
from click.testing import CliRunner

from archive.config import Config

# The catalog's stamps, as ISO text and as HTTP dates (Last-Modified is not compared).
STAMP = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def ingest(home, folders, env) -> None:
    from archive.cli import cli

    result = CliRunner().invoke(
        cli,
        ["--home", str(home), "ingest", "--workers", "1", *map(str, folders)],
        env={"ARCHIVE_CATALOG_URL": "", **env},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def clients(tmp_path_factory, sample_images, postgres):
    from web import create_app

    url = postgres.create_database()
    sqlite_home = tmp_path_factory.mktemp("sqlite-ingested") / "home"
    pg_home = tmp_path_factory.mktemp("pg-ingested") / "home"
    ingest(sqlite_home, sample_images, {})
    ingest(pg_home, sample_images, {"ARCHIVE_CATALOG_URL": url})
    apps = [
        create_app(Config.load(sqlite_home, environ={})),
        create_app(Config.load(pg_home, environ={"ARCHIVE_CATALOG_URL": url})),
    ]
    for app in apps:
        app.config["TESTING"] = True
    yield [app.test_client() for app in apps]
    for app in apps:
        app.extensions["archive"].close()


def paths(client) -> list[str]:
    """Every document the catalog shapes, for every public record and institution."""
    archive = client.application.extensions["archive"]
    catalog = archive.catalog
    records = catalog.record_ids()
    institutions = [i.id for i in catalog.institutions()]
    assert records and institutions
    out = [
        "/iiif/3/collection/top",
        "/iiif/3/activity/all-changes",
        "/api/export.jsonl",
        "/api/export.csv",
        "/api/search?q=%E8%83%BD&size=50",
        "/api/search?size=100",
        "/oai?verb=Identify",
        "/?lang=en",
        "/sitemap.xml",
    ]
    for inst in institutions:
        out += [f"/iiif/3/collection/{inst}", f"/institution/{inst}?lang=en"]
    for rid in records:
        quoted = urllib.parse.quote(rid)
        out += [f"/api/records/{quoted}", f"/iiif/3/manifest/{quoted}", f"/object/{quoted}"]
    return out


def test_the_two_catalogs_hold_the_same_archive(clients):
    sqlite, pg = (c.application.extensions["archive"].catalog for c in clients)
    assert pg.record_ids(public_only=False) == sqlite.record_ids(public_only=False)
    assert pg.image_versions() == sqlite.image_versions()
    assert pg.public_images() == sqlite.public_images()
    strip = ("updated_at",)
    assert [{k: v for k, v in s.items() if k not in strip} for s in pg.stats()] == [
        {k: v for k, v in s.items() if k not in strip} for s in sqlite.stats()
    ]
    assert [c.seq for c in pg.changes()] == [c.seq for c in sqlite.changes()]
    assert sorted((c.record_id, c.kind) for c in pg.changes()) == sorted(
        (c.record_id, c.kind) for c in sqlite.changes()
    )
    fields = ("title", "creator", "material", "object_type")
    assert pg.english_names(fields) == sqlite.english_names(fields)


def fetch(client, path: str) -> tuple[int, str, bytes]:
    """One response, read whole (streamed exports too) before the next request."""
    resp = client.get(path)
    try:
        return resp.status_code, resp.mimetype, resp.get_data()
    finally:
        resp.close()


def test_every_document_is_byte_identical(clients):
    first, second = clients
    checked = 0
    for path in paths(first):
        if not path.startswith(("/api/", "/iiif/", "/oai", "/sitemap")):
            continue  # pages show what was added last: compared on the replayed archive
        (status_a, type_a, body_a), (status_b, type_b, body_b) = (
            fetch(first, path),
            fetch(second, path),
        )
        assert status_a == status_b == 200, path
        assert type_a == type_b, path
        assert STAMP.sub(b"T", body_a) == STAMP.sub(b"T", body_b), path
        checked += 1
    assert checked > 30


def test_tiles_and_info_are_identical(clients):
    first, second = clients
    images = first.application.extensions["archive"].catalog.public_images()
    for image, _ in images[:5]:
        for path in (f"/iiif/3/{image}/info.json", f"/iiif/3/{image}/full/max/0/default.jpg"):
            a, b = fetch(first, path), fetch(second, path)
            assert a[0] == b[0] == 200, path
            assert a == b, path


LOG_ORDERED = (
    "/iiif/3/activity/all-changes",
    "/iiif/3/activity/page/0",
    "/oai?verb=ListRecords&metadataPrefix=oai_dc",
    "/oai?verb=ListIdentifiers&metadataPrefix=oai_dc",
    "/oai?verb=ListRecords&metadataPrefix=oai_dc&set=noh-museum",
)


@pytest.fixture(scope="module")
def replayed(clients, postgres, tmp_path_factory):
    """A PostgreSQL catalog given the SQLite archive's records in its change-log order,
    beside the same pyramids and search index; and a client on it."""
    import sqlite3

    from archive.catalog_postgres import PostgresCatalog
    from web import create_app

    source = clients[0].application.extensions["archive"]
    url = postgres.create_database()
    home = tmp_path_factory.mktemp("pg-replayed") / "home"
    home.mkdir()
    (home / "images").symlink_to(source.home.images)
    src, dst = sqlite3.connect(source.home.search_db), sqlite3.connect(home / "search.sqlite")
    src.backup(dst)
    src.close()
    dst.close()
    target = PostgresCatalog(url)
    for inst in source.catalog.institutions():
        target.put_institution(inst)
    logged = source.catalog.changes(limit=100_000)
    assert {c.kind for c in logged} == {"Create"}  # one ingest: the log is its order
    with target.transaction():
        for change in logged:
            target.put_record(source.catalog.get_record(change.record_id))
        for rid in source.catalog.record_ids(public_only=False):
            record = source.catalog.get_record(rid, public_only=False)
            if not record.public:
                target.put_record(record)
    target.close()
    app = create_app(Config.load(home, environ={"ARCHIVE_CATALOG_URL": url}))
    app.config["TESTING"] = True
    yield app.test_client()
    app.extensions["archive"].close()


def test_replayed_in_log_order_every_document_is_identical(clients, replayed):
    sqlite = clients[0]
    for path in [*paths(sqlite), *LOG_ORDERED]:
        a, b = fetch(sqlite, path), fetch(replayed, path)
        assert a[0] == b[0] == 200, path
        assert a[1] == b[1], path
        assert STAMP.sub(b"T", a[2]) == STAMP.sub(b"T", b[2]), path
    assert fetch(replayed, "/iiif/3/manifest/noh-museum_N-4")[0] == 200
