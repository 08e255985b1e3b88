"""`archive ingest` as curators run it: exit status, report, dry run, lock, kill -9 and resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pyvips
from ingest_helpers import row, write_records, write_toml

from archive.catalog import Catalog
from archive.cli import cli
from ingest.lock import write_lock
from search.base import SearchQuery

ARCHIVE = str(Path(sys.executable).parent / "archive")


def small_collection(make_collection) -> Path:
    rows = [row("A-1", "小面", "images/a.jpg"), row("A-2", "唐織", "images/b.png", 公開="0")]
    return make_collection(rows, images={"images/a.jpg": 1, "images/b.png": 2})


def test_ingest_then_status(runner, home, make_collection) -> None:
    folder = small_collection(make_collection)
    result = runner.invoke(cli, ["--home", str(home), "ingest", "--workers", "1", str(folder)])
    assert result.exit_code == 0, result.output
    assert "test-museum (records.csv, utf-8): 2 added" in result.output
    assert "Report: " in result.output and "OK" in result.output
    status = runner.invoke(cli, ["--home", str(home), "status"])
    assert status.exit_code == 0, status.output
    assert "test-museum" in status.output and " 2 " in status.output


def test_failed_record_gives_exit_status_1(runner, home, make_collection) -> None:
    rows = [row("A-1", "小面"), row("A-2", "唐織", "images/missing.jpg")]
    folder = make_collection(rows)
    result = runner.invoke(cli, ["--home", str(home), "ingest", str(folder)])
    assert result.exit_code == 1, result.output
    assert (
        "records.csv:3, record A-2, field 'images': image file 'images/missing.jpg' does not exist"
    ) in result.output
    assert "Traceback" not in result.output


def test_json_output_and_report_file(runner, home, make_collection) -> None:
    folder = small_collection(make_collection)
    result = runner.invoke(cli, ["--home", str(home), "ingest", "--json", str(folder)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] and report["institutions"][0]["added"] == 2
    saved = json.loads(Path(report["path"]).read_text(encoding="utf-8"))
    assert saved["institutions"] == report["institutions"]


def test_dry_run_writes_nothing(runner, home, make_collection) -> None:
    folder = small_collection(make_collection)
    result = runner.invoke(cli, ["--home", str(home), "ingest", "--dry-run", str(folder)])
    assert result.exit_code == 0, result.output
    assert "Dry run: nothing was written." in result.output
    assert "add     A-1" in result.output and "add     A-2" in result.output
    assert not list((home / "images").rglob("*.tif"))
    assert Catalog(home / "catalog.sqlite").count(public_only=False) == 0
    assert not list((home / "reports").glob("*"))


def test_second_writer_exits_at_once(runner, home, make_collection) -> None:
    folder = small_collection(make_collection)
    with write_lock(home / "ingest.lock"):
        started = time.monotonic()
        result = runner.invoke(cli, ["--home", str(home), "ingest", str(folder)])
        assert time.monotonic() - started < 10
    assert result.exit_code == 1
    assert "another ingest is writing to this archive (pid" in result.output


def test_help_documents_the_format(runner) -> None:
    result = runner.invoke(cli, ["ingest", "--help"])
    assert result.exit_code == 0
    assert "--dry-run" in result.output and "--workers" in result.output


@pytest.mark.slow
def test_kill_9_then_resume(tmp_path: Path) -> None:
    """Kill a real ingest mid-run with SIGKILL; the next run finishes without redoing work."""
    folder = tmp_path / "museum"
    (folder / "images").mkdir(parents=True)
    count = 24
    noise = pyvips.Image.gaussnoise(1600, 1200, mean=128, sigma=40).cast("uchar")
    noise.bandjoin([noise, noise]).copy(interpretation="srgb").jpegsave(
        str(folder / "images" / "0.jpg"), Q=85
    )
    for n in range(1, count):
        shutil.copy(folder / "images" / "0.jpg", folder / "images" / f"{n}.jpg")
    rows = [row(f"K-{n}", f"資料{n}", f"images/{n}.jpg") for n in range(count)]
    write_toml(folder, write_records(folder, rows, "csv"))
    home = tmp_path / "home"
    command = [ARCHIVE, "--home", str(home), "ingest", "--workers", "1", str(folder)]

    proc = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while len(list(home.glob("images/??/*.tif"))) < 4:
            assert proc.poll() is None, "the ingest finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)  # the main process only, as `kill -9 PID` does
        proc.wait()
        done_before = len(list(home.glob("images/??/*.tif")))
        assert done_before < count

        result = subprocess.run(
            [*command[:-1], "--json", str(folder)], capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # orphaned tiling processes, if any
        except ProcessLookupError:
            pass
    report = json.loads(result.stdout)
    assert report["images_tiled"] + report["images_reused"] == count
    assert report["images_reused"] >= done_before, "finished pyramids were tiled again"
    assert report["institutions"][0]["added"] + report["institutions"][0]["unchanged"] == count

    catalog = Catalog(home / "catalog.sqlite")
    assert catalog.count(public_only=False) == count
    assert len(catalog.image_versions()) == count
    pyramids = list(home.glob("images/??/*.tif"))
    assert len(pyramids) == count and not list(home.glob("images/tmp/*"))
    for path in pyramids:  # every pyramid complete: decode its full-size level
        assert pyvips.Image.new_from_file(str(path), fail_on="truncated").avg() > 0
    assert catalog.get_meta("search_behind") is None
    from archive.config import Config
    from search import get_backend

    backend = get_backend(Config.load(home, environ={}))
    assert backend.search(SearchQuery(size=1)).total == count
    backend.close()
