"""`archive backup` and `archive restore` for real: a backup taken while a real ingest
runs in another process, restored into a fresh home, serves byte for byte what the
original serves for every record the snapshot holds; incremental second backups;
--verify catching a damaged copy; restore refusing a non-empty catalog."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archive.config import Config

BIN = Path(sys.executable).parent
ARCHIVE = str(BIN / "archive")
TILES = [
    "info.json",
    "0,0,32,32/32,/0/default.jpg",
    "full/max/0/default.png",
    "square/16,/90/gray.jpg",
]


def run(home: Path, *args: str, env: dict | None = None, check: bool = True):
    done = subprocess.run(
        [ARCHIVE, "--home", str(home), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def records_in(catalog: Path) -> int:
    try:
        db = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute("SELECT count(*) FROM records").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def snapshot_of(dest: Path) -> tuple[dict, Path]:
    """The backup's manifest and its catalog snapshot, put together from its pieces."""
    from archive.backup import destination, fetch_catalog

    manifest = json.loads((dest / "manifest.json").read_text())
    path = dest.parent / f"{dest.name}-catalog-{manifest['created']}.sqlite"
    if not path.exists():
        fetch_catalog(destination(str(dest), dest.parent), manifest, path)
    return manifest, path


def chunks_in(dest: Path) -> set[str]:
    return {p.name for p in (dest / "chunks").iterdir()}


def snapshot_images(catalog: Path) -> list[tuple[str, str]]:
    db = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
    try:
        return db.execute(
            "SELECT r.id, i.id FROM records r JOIN images i ON i.record_id = r.id"
            " WHERE r.public = 1 ORDER BY r.id, i.position"
        ).fetchall()
    finally:
        db.close()


def app_client(home: Path, env: dict | None = None):
    from web import create_app

    saved = {k: os.environ.get(k) for k in env or {}}
    os.environ.update(env or {})
    try:
        environ = {k: v for k, v in os.environ.items() if k.startswith(("ARCHIVE_", "AWS_"))}
        application = create_app(Config.load(home, environ=environ))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    application.config["TESTING"] = True
    return application


def assert_same_answers(a_app, b_app, pairs: list[tuple[str, str]]) -> int:
    """Every record's manifest and each image's info.json and tiles: byte-identical."""
    a, b = a_app.test_client(), b_app.test_client()
    compared = 0
    for n, (record, image) in enumerate(pairs):
        paths = [f"/iiif/3/manifest/{record}"] if n == 0 or pairs[n - 1][0] != record else []
        paths += [f"/iiif/3/{image}/{t}" for t in TILES]
        for path in paths:
            ra, rb = a.get(path), b.get(path)
            assert (rb.status_code, rb.data) == (ra.status_code, ra.data), path
            assert ra.status_code == 200, path
            compared += 1
    return compared


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("backup-data") / "data"
    done = subprocess.run(
        [
            ARCHIVE,
            "generate",
            str(out),
            "--institutions",
            "2",
            "--records",
            "900",
            "--jobs",
            "1",
            "--seed",
            "7",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return out


def backup_during_ingest(home: Path, dest: Path, synthetic: Path, env: dict | None = None):
    """Start a real ingest, wait until it has committed some records, back up meanwhile."""
    folders = sorted(str(p) for p in synthetic.iterdir() if p.is_dir())
    ingest = subprocess.Popen(
        [ARCHIVE, "--home", str(home), "ingest", "--workers", "1", *folders],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,  # its tiling processes are killed with it, if it comes to that
    )
    try:
        deadline = time.monotonic() + 120
        while records_in(home / "catalog.sqlite") < 50:
            assert ingest.poll() is None, ingest.stdout.read()
            assert time.monotonic() < deadline, "the ingest committed nothing"
            time.sleep(0.1)
        done = run(home, "backup", str(dest), "--verify", env=env)
        still_running = ingest.poll() is None
        out, _ = ingest.communicate(timeout=900)
        assert ingest.returncode == 0, out
    finally:
        if ingest.poll() is None:
            os.killpg(ingest.pid, signal.SIGKILL)
            ingest.wait()
    return done, still_running


def test_a_backup_during_an_ingest_restores_byte_identical(tmp_path, synthetic):
    home, dest, restored = tmp_path / "home", tmp_path / "backup", tmp_path / "restored"
    done, still_running = backup_during_ingest(home, dest, synthetic)
    assert still_running, "the ingest ended before the backup did: make it bigger"
    assert "Verified" in done.stdout
    manifest, catalog = snapshot_of(dest)
    total = records_in(home / "catalog.sqlite")
    in_snapshot = records_in(catalog)
    assert 50 <= in_snapshot < total == 900
    assert manifest["catalog"]["records"] == in_snapshot
    assert manifest["search"].startswith("derived")
    # Self-consistent: exactly the pyramids the snapshot refers to, nothing more.
    stored = {p.name for p in (dest / "images").glob("??/*.tif")}
    assert stored == {e["name"].split("/")[1] for e in manifest["pyramids"]}
    assert len(stored) == manifest["catalog"]["images"]

    done = run(restored, "restore", str(dest))
    assert f"Restored {in_snapshot} records" in done.stdout
    assert records_in(restored / "catalog.sqlite") == in_snapshot
    public = len({record for record, _ in snapshot_images(catalog)})
    assert f"Indexed {public} public records" in done.stdout  # search rebuilt
    status = run(restored, "status").stdout
    assert f"Search index (sqlite): {public} documents" in status
    pairs = snapshot_images(catalog)
    source, copy = app_client(home), app_client(restored)
    try:
        assert assert_same_answers(source, copy, pairs) >= len(pairs) * len(TILES)
    finally:
        source.extensions["archive"].close()
        copy.extensions["archive"].close()

    # A second backup copies only what the finished ingest added, then verifies.
    again = run(home, "backup", str(dest), "--verify")
    manifest2, _ = snapshot_of(dest)
    assert manifest2["catalog"]["records"] == 900
    new = manifest2["catalog"]["images"] - manifest["catalog"]["images"]
    assert manifest2["this_run"]["copied"] == new > 0
    assert manifest2["this_run"]["reused"] == manifest["catalog"]["images"]
    assert "Verified" in again.stdout
    assert not list(dest.glob("catalog-*"))
    assert chunks_in(dest) == set(manifest2["catalog"]["chunks"])  # older pieces removed

    # Nothing changed: nothing is written, no pyramid read.
    run(home, "backup", str(dest))
    manifest3, _ = snapshot_of(dest)
    assert manifest3["this_run"]["copied"] == manifest3["this_run"]["catalog_chunks_written"] == 0
    assert manifest3["catalog"]["chunks"] == manifest2["catalog"]["chunks"]

    # A small ingest: its pyramids and the catalog pieces holding its pages, not the rest.
    extra = tmp_path / "extra"
    subprocess.run(
        [ARCHIVE, "generate", str(extra), "--institutions", "1", "--records", "5", "--seed", "99"],
        check=True,
        capture_output=True,
    )
    toml = next(extra.glob("*/institution.toml"))
    toml.write_text(re.sub(r'(?m)^id = ".*"$', 'id = "zz-extra"', toml.read_text(), count=1))
    run(home, "ingest", str(toml.parent))
    run(home, "backup", str(dest))
    manifest4, _ = snapshot_of(dest)
    pieces = manifest4["catalog"]["chunks"]
    assert (
        manifest4["this_run"]["copied"]
        == manifest4["catalog"]["images"] - manifest2["catalog"]["images"]
    )
    assert len(pieces) >= 4
    assert 0 < manifest4["this_run"]["catalog_chunks_written"] <= len(pieces) // 2, manifest4[
        "this_run"
    ]
    assert chunks_in(dest) == set(pieces)

    # restore refuses a catalog that holds records, and names it.
    refused = run(restored, "restore", str(dest), check=False)
    assert refused.returncode == 1 and "not empty" in refused.stderr
    assert "Traceback" not in refused.stderr
    forced = run(restored, "restore", str(dest), "--force")
    assert manifest4["catalog"]["records"] == 905  # the 900 and the small ingest's 5
    assert "Restored 905 records" in forced.stdout
    assert records_in(restored / "catalog.sqlite") == 905


def test_verify_names_a_damaged_pyramid_and_restore_refuses_it(tmp_path, ingested_home):
    dest, restored = tmp_path / "backup", tmp_path / "restored"
    run(ingested_home, "backup", str(dest), "--verify")
    manifest, _ = snapshot_of(dest)
    victim = dest / "images" / manifest["pyramids"][3]["name"]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    done = run(ingested_home, "backup", str(dest), "--verify", check=False)
    assert done.returncode == 1
    assert f"{victim}: checksum differs from the manifest" in done.stderr
    refused = run(restored, "restore", str(dest), check=False)
    assert refused.returncode == 1 and "checksum differs" in refused.stderr
    assert records_in(restored / "catalog.sqlite") == 0  # nothing half-restored
    assert "Traceback" not in refused.stderr


def test_backup_refuses_a_destination_inside_the_home_and_a_bad_url(tmp_path, ingested_home):
    inside = run(ingested_home, "backup", str(ingested_home / "b"), check=False)
    assert inside.returncode == 1 and "outside the archive home" in inside.stderr
    bad = run(ingested_home, "backup", "ftp://x/y", check=False)
    assert bad.returncode == 1 and "s3://bucket/prefix" in bad.stderr
    missing = run(tmp_path / "r", "restore", str(tmp_path / "nothing"), check=False)
    assert missing.returncode == 1 and "manifest.json" in missing.stderr
