"""`archive ingest` as curators run it: exit status, report, dry run, lock, kill -9,
Ctrl-C and SIGTERM, and resume."""

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
    assert "Last ingest: " in status.output and ", ok (" in status.output
    assert "Search index (sqlite): 1 documents" in status.output  # one public record
    assert "running now" not in status.output
    with write_lock(home / "ingest.lock"):
        busy = runner.invoke(cli, ["--home", str(home), "status"])
    assert f"Ingest: running now (pid {os.getpid()}, started " in busy.output


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


def slow_museum(tmp_path: Path, count: int) -> tuple[Path, Path, list[str]]:
    """A folder of ``count`` noisy 1600x1200 JPEGs (slow enough to interrupt), its home,
    and the one-worker ingest command for it."""
    folder = tmp_path / "museum"
    (folder / "images").mkdir(parents=True)
    noise = pyvips.Image.gaussnoise(1600, 1200, mean=128, sigma=40).cast("uchar")
    noise.bandjoin([noise, noise]).copy(interpretation="srgb").jpegsave(
        str(folder / "images" / "0.jpg"), Q=85
    )
    for n in range(1, count):
        shutil.copy(folder / "images" / "0.jpg", folder / "images" / f"{n}.jpg")
    rows = [row(f"K-{n}", f"資料{n}", f"images/{n}.jpg") for n in range(count)]
    write_toml(folder, write_records(folder, rows, "csv"))
    home = tmp_path / "home"
    return folder, home, [ARCHIVE, "--home", str(home), "ingest", "--workers", "1", str(folder)]


def _terminal_signals() -> None:
    """In the child, before exec: SIGINT and SIGTERM as a shell's foreground job has them."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


def wait_for_pyramids(proc: subprocess.Popen, home: Path, wanted: int) -> None:
    deadline = time.monotonic() + 120
    while len(list(home.glob("images/??/*.tif"))) < wanted:
        assert proc.poll() is None, "the ingest finished before it could be stopped"
        assert time.monotonic() < deadline
        time.sleep(0.01)


def resume_and_check(command: list[str], home: Path, count: int, done_before: int) -> None:
    """Run the same ingest again: it finishes everything without redoing finished work,
    and catalog, pyramids and search agree."""
    result = subprocess.run(
        [*command[:-1], "--json", command[-1]], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
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


def group_gone(pgid: int, seconds: float = 20) -> bool:
    """No process of the group is left (tiling processes, the forkserver)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_kill_9_then_resume(tmp_path: Path) -> None:
    """Kill a real ingest mid-run with SIGKILL; the next run finishes without redoing work."""
    count = 24
    _, home, command = slow_museum(tmp_path, count)
    proc = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        wait_for_pyramids(proc, home, 4)
        os.kill(proc.pid, signal.SIGKILL)  # the main process only, as `kill -9 PID` does
        proc.wait()
        done_before = len(list(home.glob("images/??/*.tif")))
        assert done_before < count
        assert (home / "ingest.lock").read_text().startswith(f"pid {proc.pid},")  # left behind
        status = subprocess.run(
            [ARCHIVE, "--home", str(home), "status"], capture_output=True, text=True, timeout=60
        )
        assert "running now" not in status.stdout, "a dead holder reported as running"
        resume_and_check(command, home, count, done_before)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # orphaned tiling processes, if any
        except ProcessLookupError:
            pass


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "whole_group"),
    [(signal.SIGINT, True), (signal.SIGTERM, False)],
    ids=["Ctrl-C in a terminal", "kill PID"],
)
def test_interrupt_stops_cleanly_then_resume(tmp_path: Path, sig, whole_group) -> None:
    """Ctrl-C (SIGINT to every process of the terminal's group) or SIGTERM to the main
    process: exit status 130, a clear message and report, no traceback, no process left,
    the lock free; the next run finishes without redoing work."""
    count = 24
    _, home, command = slow_museum(tmp_path, count)
    # In a full `make test` the ingest twice ran on through SIGINT and exited 0 (never
    # alone): this worker process had SIGINT ignored or blocked by then, which a child
    # inherits across exec (the cause is not found yet; the message below says). A
    # terminal's foreground job starts with both at their defaults, so this one does.
    inherited = (signal.getsignal(signal.SIGINT), signal.pthread_sigmask(signal.SIG_BLOCK, []))
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_terminal_signals,
    )
    try:
        wait_for_pyramids(proc, home, 4)
        assert proc.poll() is None, "the ingest finished before it could be stopped"
        if whole_group:
            os.killpg(proc.pid, sig)
        else:
            os.kill(proc.pid, sig)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, f"{out}{err}\ntest process SIGINT, mask: {inherited}"
        assert group_gone(proc.pid), "tiling processes left running"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert "Traceback" not in out + err, err
    assert "Interrupted" in out and "Run the same command again" in out
    reports = sorted((home / "reports").glob("ingest-*.json"))
    assert reports and json.loads(reports[-1].read_text("utf-8"))["interrupted"] is True
    with write_lock(home / "ingest.lock"):  # released, not held by a leftover process
        pass
    status = subprocess.run(
        [ARCHIVE, "--home", str(home), "status"], capture_output=True, text=True, timeout=60
    )
    assert "interrupted: run the same command again" in status.stdout, status.stdout
    assert "behind since" in status.stdout and "running now" not in status.stdout
    done_before = len(list(home.glob("images/??/*.tif")))
    assert 4 <= done_before < count
    resume_and_check(command, home, count, done_before)
