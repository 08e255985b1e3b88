"""Two real `archive serve` nodes, each with its own home, over one PostgreSQL catalog:
they answer alike, and a commit made elsewhere (here, in the test process) reaches
both, including the Image API's per-thread source cache and the site's 30-second caches
(both keyed on generation())."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest
from click.testing import CliRunner

from archive.catalog_postgres import PostgresCatalog
from archive.records import Institution, Record

PUBLIC = "http://museum.test"


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def eventually(condition, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.fixture(scope="module")
def nodes(tmp_path_factory, sample_images, postgres, servers):
    from archive.cli import cli

    url = postgres.create_database()
    root = tmp_path_factory.mktemp("nodes")
    first, second = root / "node-a", root / "node-b"
    env = {"ARCHIVE_CATALOG_URL": url, "ARCHIVE_PUBLIC_URL": PUBLIC}
    result = CliRunner().invoke(
        cli, ["--home", str(first), "ingest", str(sample_images[0])], env=env
    )
    assert result.exit_code == 0, result.output
    second.mkdir()
    (second / "images").symlink_to(first / "images")  # stands in for shared storage
    procs, bases = [], []
    try:
        for home in (first, second):
            proc, base = servers.start_server(home, workers=2, env=env)
            procs.append(proc)
            bases.append(base)
        yield url, bases
    finally:
        for proc in procs:
            servers.stop_server(proc)


def test_both_nodes_answer_alike(nodes):
    url, bases = nodes
    catalog = PostgresCatalog(url)
    try:
        image, record = catalog.public_images()[0]
    finally:
        catalog.close()
    for path in (
        f"/api/records/{record}",
        f"/iiif/3/manifest/{record}",
        f"/iiif/3/{image}/info.json",
        f"/iiif/3/{image}/0,0,256,256/256,/0/default.jpg",
        "/iiif/3/collection/top",
    ):
        answers = [get(base + path) for base in bases]
        assert answers[0][0] == 200, path
        assert answers[0] == answers[1], path


def test_a_commit_elsewhere_reaches_every_node(nodes):
    url, bases = nodes
    catalog = PostgresCatalog(url)
    try:
        image, rec_id = catalog.public_images()[0]
        info = f"/iiif/3/{image}/info.json"
        for base in bases:
            for _ in range(4):  # reach both workers' threads, so they cache the source
                assert get(base + info)[0] == 200
        record = catalog.get_record(rec_id)
        record.public = False
        catalog.put_record(record)
        for base in bases:
            assert eventually(lambda base=base: get(base + info)[0] == 404), base
            assert get(base + f"/api/records/{rec_id}")[0] == 404
        record.public = True
        catalog.put_record(record)
        for base in bases:
            assert eventually(lambda base=base: get(base + info)[0] == 200), base
    finally:
        catalog.close()


def test_the_site_caches_follow_a_commit_elsewhere_on_every_node(nodes):
    """Institutions, home facets and counts are cached 30 s per process; keyed on the
    catalog's generation() and the node's own search index position, a new institution
    with a public object shows on both nodes' home pages long before that."""
    url, bases = nodes
    for base in bases:
        for _ in range(4):  # every worker has the home page cached now
            status, body = get(base + "/")
            assert status == 200 and "新設の記念館" not in body.decode()
    catalog = PostgresCatalog(url)
    try:
        template = catalog.get_record(catalog.record_ids()[0])
        catalog.put_institution(
            Institution(
                id="fresh-hall",
                name={"ja": "新設の記念館", "en": "Freshly Opened Hall"},
                rights=template.rights,
            )
        )
        fresh = Record.from_json(template.to_json())
        fresh.institution, fresh.local_id, fresh.id = "fresh-hall", "N-1", "fresh-hall_N-1"
        fresh.images = []
        catalog.put_record(fresh)
    finally:
        catalog.close()
    for base in bases:  # each request may reach either worker: ask until both have it
        for path, name in (("/", "新設の記念館"), ("/?lang=en", "Freshly Opened Hall")):

            def shown(base=base, path=path, name=name) -> bool:
                return all(name in get(base + path)[1].decode() for _ in range(4))

            assert eventually(shown, 20), (base, path)  # the caches' 30 s not yet out
