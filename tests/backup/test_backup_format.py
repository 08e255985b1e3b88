"""The backup format over time: a backup written by an earlier commit of this repository
(format 1, the catalog as one file) still verifies and restores, and a new backup into it
keeps its pyramids; a second backup writes only the catalog pieces that changed; and a
pyramid an ingest replaces and sweeps while a backup runs is reported, not fatal, and
the backup stays self-consistent."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import pyvips
from test_backup import TILES, app_client, assert_same_answers, records_in, run

from archive.backup import backup as run_backup
from archive.config import Config
from archive.context import Archive
from archive.storage import relative_name

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
# The last commit writing backup format 1 (one catalog-<stamp>.sqlite file).
FORMAT_1 = "961ad45"


def old_tree(commit: str, root: Path) -> Path:
    """The tree of ``commit`` from this repository's history, unpacked under ``root``."""
    tree = root / f"code-{commit}"
    if (tree / "archive" / "backup.py").is_file():
        return tree
    done = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit], capture_output=True
    )
    assert done.returncode == 0, f"{commit} is not in this repository's history: {done.stderr}"
    tree.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        tar.extractall(tree, filter="data")
    return tree


def run_old(tree: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("ARCHIVE_HOME", None)
    code = "from archive.cli import main; main()"
    done = subprocess.run(
        [PYTHON, "-c", code, *args], cwd=tree, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def format_1_backup(request, sample_images) -> tuple[Path, Path]:
    """(a home the old commit ingested, its backup written by the old commit), cached."""
    root = Path(request.config.cache.mkdir(f"backup-format1-{FORMAT_1}"))
    home, dest = root / "home", root / "backup"
    if not (dest / "manifest.json").is_file():
        tree = old_tree(FORMAT_1, root)
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(dest, ignore_errors=True)
        folders = [str(p) for p in sample_images[:2]]
        run_old(tree, "--home", str(home), "ingest", *folders)
        run_old(tree, "--home", str(home), "backup", str(dest))
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["format"] == 1 and list(dest.glob("catalog-*.sqlite"))
    return home, dest


def test_a_format_1_backup_restores_and_a_new_backup_keeps_its_pyramids(tmp_path, format_1_backup):
    old_home, cached = format_1_backup
    home, dest = tmp_path / "home", tmp_path / "backup"
    shutil.copytree(old_home, home)
    shutil.copytree(cached, dest)  # the cached one stays as the old release wrote it
    manifest = json.loads((dest / "manifest.json").read_text())
    count = manifest["catalog"]["records"]
    assert count > 10

    restored = tmp_path / "restored"
    done = run(restored, "restore", str(dest))
    assert f"Restored {count} records" in done.stdout
    assert records_in(restored / "catalog.sqlite") == count
    pairs = [(r.id, i.id) for r in records_of(restored) for i in r.images]
    source, copy = app_client(home), app_client(restored)
    try:
        assert assert_same_answers(source, copy, pairs) >= len(pairs) * len(TILES)
    finally:
        source.extensions["archive"].close()
        copy.extensions["archive"].close()

    # Today's backup into the old one: no pyramid copied again, format 2 written, the
    # old catalog file gone, and that verifies and restores too.
    again = run(home, "backup", str(dest), "--verify")
    assert "Verified" in again.stdout
    assert f"Pyramids copied: 0 (0 bytes); already there: {len(manifest['pyramids'])}" in (
        again.stdout
    )
    new = json.loads((dest / "manifest.json").read_text())
    assert new["format"] == 2 and not list(dest.glob("catalog-*"))
    assert [e["sha256"] for e in new["pyramids"]] == [e["sha256"] for e in manifest["pyramids"]]
    done = run(tmp_path / "restored-2", "restore", str(dest))
    assert f"Restored {count} records" in done.stdout


def records_of(home: Path):
    archive = Archive(Config.load(home, environ={}))
    try:
        return list(archive.catalog.records(public_only=True))
    finally:
        archive.close()


def test_a_pyramid_swept_during_a_backup_is_reported_and_the_backup_stays_whole(
    tmp_path, sample_images
):
    folder = tmp_path / "collection"
    shutil.copytree(sample_images[0], folder)
    home, dest = tmp_path / "home", tmp_path / "backup"
    run(home, "ingest", str(folder))
    victim = sorted((folder / "images").rglob("*.jpg"))[0]
    replaced: list[str] = []

    def replace_during_backup(line: str) -> None:
        # Right after the first catalog snapshot, a real ingest re-tiles a changed image
        # and sweeps the old version the snapshot refers to.
        if line.startswith("Catalog snapshot") and not replaced:
            image = pyvips.Image.new_from_file(str(victim))
            image.invert().write_to_file(str(victim))
            done = run(home, "ingest", str(folder))
            replaced.append(done.stdout)

    archive = Archive(Config.load(home, environ={}))
    try:
        before = {i.id: i.version for r in archive.catalog.records() for i in r.images}
        result = run_backup(
            archive.catalog,
            archive.images,
            archive.home,
            str(dest),
            verify=True,
            progress=replace_during_backup,
        )
        after = {i.id: i.version for r in archive.catalog.records() for i in r.images}
    finally:
        archive.close()
    changed = [i for i in before if before[i] != after[i]]
    assert len(changed) == 1, replaced
    old_name = relative_name(changed[0], before[changed[0]])
    assert result.swept == [old_name] == result.manifest["this_run"]["swept"]
    assert result.problems == []
    listed = {(e["id"], e["version"]) for e in result.manifest["pyramids"]}
    assert (changed[0], after[changed[0]]) in listed  # the newer snapshot's version
    stored = {p.name for p in (dest / "images").glob("??/*.tif")}
    assert stored == {e["name"].split("/")[1] for e in result.manifest["pyramids"]}

    restored = tmp_path / "restored"
    run(restored, "restore", str(dest))
    pairs = [(r.id, i.id) for r in records_of(restored) for i in r.images]
    source, copy = app_client(home), app_client(restored)
    try:
        assert assert_same_answers(source, copy, pairs) >= len(pairs) * len(TILES)
    finally:
        source.extensions["archive"].close()
        copy.extensions["archive"].close()
