"""End to end on S3: the sample collections ingested into a bucket (through the real CLI)
and served by a real `archive serve` answer byte for byte what the local disk answers."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from archive.cli import cli
from archive.config import Config
from archive.context import Archive

# What a viewer and a researcher ask for, of every image: exact tiles at several scales
# and at the edges, and renders that decode (scaled, cropped, rotated, grey, PNG, capped).
REQUESTS = [
    "info.json",
    "0,0,256,256/256,/0/default.jpg",
    "full/!400,400/0/default.jpg",
    "full/,90/0/default.jpg",
    "square/128,/90/gray.png",
    "pct:10,10,60,50/300,/0/default.webp",
    "0,0,512,512/256,/0/default.jpg",
    "256,0,256,256/256,/0/default.jpg",
]
# Large renders (libvips reading many tiles through ranged reads), for a few images.
HEAVY = ["full/max/0/default.jpg", "full/!1200,1200/180/default.jpg", "full/1500,/0/default.png"]


def get(base: str, path: str) -> tuple[int, bytes]:
    """Status and body, with the server's own address (in ids) put as ``BASE``."""
    try:
        with urllib.request.urlopen(base + path, timeout=60) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    return status, body.replace(base.encode(), b"BASE")


@pytest.fixture(scope="session")
def s3_home(tmp_path_factory, sample_images, s3) -> tuple[Path, str]:
    """An archive home whose pyramids and reports are in a fresh bucket."""
    url = s3.new_bucket("museum/pyramids")
    home = tmp_path_factory.mktemp("s3-ingested") / "home"
    result = CliRunner().invoke(
        cli,
        ["--home", str(home), "ingest", *map(str, sample_images)],
        env={"ARCHIVE_STORAGE_URL": url},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "Report: s3://" in result.output
    return home, url


@pytest.fixture(scope="session")
def s3_server(s3_home, s3, servers):
    home, url = s3_home
    proc, base = servers.start_server(home, env={**s3.env, "ARCHIVE_STORAGE_URL": url})
    yield base
    servers.stop_server(proc)


def public_images(home: Path) -> list[tuple[str, str]]:
    archive = Archive(Config.load(home, environ={}))
    try:
        return [(r.id, i.id) for r in archive.catalog.records(public_only=True) for i in r.images]
    finally:
        archive.close()


def test_the_pyramids_are_in_the_bucket_not_on_disk(s3_home, ingested_home):
    home, url = s3_home
    assert not list((home / "images").glob("??/*.tif"))
    scratch = home / "tmp"  # where pyramids are tiled before upload: emptied
    assert not scratch.exists() or not list(scratch.iterdir())
    archive = Archive(Config.load(home, environ={"ARCHIVE_STORAGE_URL": url}))
    try:
        stored = {(i, v) for i, v, _ in archive.images.files()}
        assert stored == archive.catalog.image_versions()
    finally:
        archive.close()
    local = {p.name for p in (ingested_home / "images").glob("??/*.tif")}
    assert {f"{i}.{v}.tif" for i, v in stored} == local


def test_s3_serves_byte_identical_images_to_the_local_disk(s3_server, live_server, s3_home):
    home, _ = s3_home
    images = public_images(home)
    assert len(images) >= 10
    compared = 0
    for n, (_, image) in enumerate(images):
        for request in REQUESTS + (HEAVY if n % 8 == 0 else []):
            path = f"/iiif/3/{image}/{request}"
            local_status, local_body = get(live_server, path)
            s3_status, s3_body = get(s3_server, path)
            assert (s3_status, s3_body) == (local_status, local_body), path
            compared += local_status == 200
    assert compared >= len(images) * 8


def test_s3_serves_the_same_manifests_and_v2_info(s3_server, live_server, s3_home):
    home, _ = s3_home
    for record, image in public_images(home)[:8]:
        for path in (f"/iiif/3/manifest/{record}", f"/iiif/2/{image}/info.json"):
            assert get(s3_server, path) == get(live_server, path), path


def test_status_reads_the_last_report_from_the_bucket(s3_home, runner):
    home, url = s3_home
    result = runner.invoke(cli, ["--home", str(home), "status"], env={"ARCHIVE_STORAGE_URL": url})
    assert result.exit_code == 0, result.output
    assert "Last ingest: " in result.output and ", ok (s3://" in result.output
    archive = Archive(Config.load(home, environ={"ARCHIVE_STORAGE_URL": url}))
    try:
        report = json.loads(archive.images.get_report(archive.images.reports()[-1]))
    finally:
        archive.close()
    assert report["ok"] is True and report["path"].startswith(url)
