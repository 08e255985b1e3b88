"""One ingest writer across machines: with a PostgreSQL catalog the single-writer lock
is an advisory lock in the server. A second ingest (here from another home, as from
another machine) is told who holds it; a holder killed with kill -9 frees it, and the
next run, from the other home, resumes: nothing lost, nothing tiled twice.

The pyramids of both homes are one folder (the second home's ``images`` links to the
first's), standing in for the shared storage a second machine would use."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import pyvips
from click.testing import CliRunner
from test_ingest_cli import ARCHIVE, slow_museum, wait_for_pyramids

from archive.cli import cli
from archive.config import Config
from archive.context import Archive
from search.base import SearchQuery


@pytest.mark.slow
def test_kill_9_on_one_machine_then_resume_on_another(tmp_path: Path, postgres_url) -> None:
    count = 24
    folder, home, command = slow_museum(tmp_path, count)
    env = {**os.environ, "ARCHIVE_CATALOG_URL": postgres_url}
    other = tmp_path / "other-home"
    other.mkdir()
    home.mkdir()
    (home / "images").mkdir()
    (other / "images").symlink_to(home / "images")
    from_other = [ARCHIVE, "--home", str(other)]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=env,
    )
    try:
        wait_for_pyramids(proc, home, 4)
        # A second writer elsewhere is refused at once and told who writes, since when
        # (in this process, to ask while the first is surely still tiling).
        second = CliRunner().invoke(
            cli,
            ["--home", str(other), "ingest", "--workers", "1", str(folder)],
            env={"ARCHIVE_CATALOG_URL": postgres_url},
        )
        assert second.exit_code == 1, second.output
        holder = f"host {socket.gethostname()}, pid {proc.pid}, started "
        assert f"another ingest is writing to this archive ({holder}" in second.output
        assert "Traceback" not in second.output
        status = CliRunner().invoke(
            cli, ["--home", str(other), "status"], env={"ARCHIVE_CATALOG_URL": postgres_url}
        )
        assert f"Ingest: running now ({holder}" in status.output

        os.kill(proc.pid, signal.SIGKILL)  # the main process only, as `kill -9 PID` does
        proc.wait()
        done_before = len(list(home.glob("images/??/*.tif")))
        assert done_before < count
        status = subprocess.run(
            [*from_other, "status"], capture_output=True, text=True, timeout=60, env=env
        )
        assert status.returncode == 0, status.stdout + status.stderr
        assert "running now" not in status.stdout, "a dead holder reported as running"

        result = subprocess.run(
            [*from_other, "ingest", "--workers", "1", "--json", str(folder)],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        report = json.loads(result.stdout)
        assert report["images_tiled"] + report["images_reused"] == count
        assert report["images_reused"] >= done_before, "finished pyramids were tiled again"
        assert report["images_tiled"] <= count - done_before
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # orphaned tiling processes, if any
        except ProcessLookupError:
            pass

    archive = Archive(Config.load(other, environ={"ARCHIVE_CATALOG_URL": postgres_url}))
    try:
        catalog = archive.catalog
        assert catalog.count(public_only=False) == count
        assert len(catalog.image_versions()) == count
        assert catalog.lock_holder() is None
        assert catalog.get_meta("search_behind") is None
        assert [c.seq for c in catalog.changes()] == list(range(1, count + 1))
        pyramids = list(home.glob("images/??/*.tif"))
        assert len(pyramids) == count and not list(home.glob("images/tmp/*"))
        for path in pyramids:
            assert pyvips.Image.new_from_file(str(path), fail_on="truncated").avg() > 0
        from search import get_backend

        backend = get_backend(archive.config)
        assert backend.search(SearchQuery(size=1)).total == count
        backend.close()
    finally:
        archive.close()
