"""The ingest lock lost under a running ingest, on a real PostgreSQL server.

The lock is a session-level advisory lock: when its session ends while the ingest lives
on (here `pg_terminate_backend`, as a server restart or the network would), the lock
goes silently. The ingest must notice before its next commit: take the lock again if
nobody had it meanwhile, else stop without writing, so that two ingests never write.

The ingest under test runs as `archive ingest` in a process group of its own; it is
paused (SIGSTOP) between two of its transactions, so the second ingest is not left
waiting behind a transaction of a stopped process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from folders import make_folder
from pg_server import PostgresServer

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
KEY = 0x41524348  # archive/catalog_postgres.py: the advisory lock class; the ingest's is 2
INSTITUTIONS = 6


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[list[Path], Path]:
    root = tmp_path_factory.mktemp("lock-lost")
    first = [make_folder(root, f"lock-{n}") for n in range(INSTITUTIONS)]
    return first, make_folder(root, "other", records=1, size=64)


def ingest(home: Path, url: str, *paths: Path, env=None, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "archive"), "--home", str(home), "ingest", "--workers", "1", "--json"]
        + [str(p) for p in paths],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ARCHIVE_CATALOG_URL": url, **(env or {})},
        start_new_session=True,
        **popen,
    )


def one(db: psycopg.Connection, sql: str, args=()):
    return db.execute(sql, args).fetchone()[0]


def pause_between_transactions(proc: subprocess.Popen, db: psycopg.Connection) -> None:
    """SIGSTOP the ingest's process group at a moment none of its sessions is inside a
    transaction (the test's own session is named otherwise)."""
    for _ in range(500):
        os.killpg(proc.pid, signal.SIGSTOP)
        busy = one(
            db,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'archive'"
            " AND datname = current_database() AND state <> 'idle'",
        )
        if not busy:
            return
        os.killpg(proc.pid, signal.SIGCONT)
        time.sleep(0.02)
    raise AssertionError("the ingest was never between two transactions")


def end_lock_session(db: psycopg.Connection) -> None:
    """Terminate the session holding the ingest lock (not the ingest process)."""
    pid = one(
        db,
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = 2"
        " AND objsubid = 2 AND granted AND database = (SELECT oid FROM pg_database"
        " WHERE datname = current_database())",
        (KEY,),
    )
    assert one(db, "SELECT pg_terminate_backend(%s)", (pid,))
    for _ in range(100):
        if not one(db, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)):
            return
        time.sleep(0.05)


def started(proc: subprocess.Popen, db: psycopg.Connection) -> None:
    """Wait until the ingest has committed the first institution's records."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if one(db, "SELECT to_regclass('records') IS NOT NULL") and one(
            db, "SELECT count(*) FROM records WHERE institution = 'lock-0'"
        ):
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("the ingest committed nothing within 120 s")


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return proc.returncode, out, err


@contextmanager
def paused_without_its_lock(home: Path, postgres, paths: list[Path]):
    """An ingest into a fresh database, paused between two transactions after its first
    institution, its lock session ended: yields (the process, a session, the URL) and
    lets the ingest go on (SIGCONT) on leaving."""
    url = postgres.create_database()
    db = psycopg.connect(url, autocommit=True, application_name="test")
    proc = ingest(home, url, *paths)
    try:
        started(proc, db)
        pause_between_transactions(proc, db)
        end_lock_session(db)
        yield proc, db, url
    finally:
        os.killpg(proc.pid, signal.SIGCONT)


def test_a_second_ingest_takes_a_lost_lock_and_the_first_writes_nothing_more(
    tmp_path, folders, postgres
):
    first_folders, other = folders
    with paused_without_its_lock(tmp_path / "first", postgres, first_folders) as (first, db, url):
        # The lock is free: a second ingest, on another home, gets it and finishes.
        second = ingest(tmp_path / "second", url, other)
        code, out, err = finish(second)
        assert code == 0, err
        assert json.loads(out)["ok"]
        generation = one(db, "SELECT generation FROM catalog_state")
        changes = one(db, "SELECT max(seq) FROM changes")
        partial = one(db, "SELECT count(*) FROM records WHERE institution LIKE 'lock-%%'")
        assert partial < 2 * INSTITUTIONS
    code, out, err = finish(first)
    assert code == 1, (out, err)
    assert "Traceback" not in err
    assert "lost its lock" in err and "catalog_url postgresql://" in err, err
    assert "another ingest held it meanwhile" in err and "run the same command again" in err
    assert "archive-test-password" not in err
    # Not one write after the second ingest took the lock: no commit, no change logged.
    assert one(db, "SELECT generation FROM catalog_state") == generation
    assert one(db, "SELECT max(seq) FROM changes") == changes
    assert one(db, "SELECT count(*) FROM ingest_lock") == 0, "the first left a lock row"

    # The next run resumes: every record in, the pyramids tiled before reused.
    again = ingest(tmp_path / "first", url, *first_folders)
    code, out, err = finish(again)
    assert code == 0, err
    report = json.loads(out)
    assert report["ok"], report
    assert one(db, "SELECT count(*) FROM records WHERE institution LIKE 'lock-%%'") == (
        2 * INSTITUTIONS
    )
    assert report["images_reused"] >= partial
    db.close()


def test_a_lost_lock_nobody_took_is_taken_again_and_the_ingest_goes_on(tmp_path, folders, postgres):
    first_folders, _ = folders
    with paused_without_its_lock(tmp_path / "home", postgres, first_folders) as (proc, db, _url):
        pass
    code, out, err = finish(proc)
    assert code == 0, err
    assert "took it again" in err, err
    assert json.loads(out)["ok"]
    assert one(db, "SELECT count(*) FROM records") == 2 * INSTITUTIONS
    assert one(db, "SELECT count(*) FROM ingest_lock") == 0
    db.close()


@pytest.fixture(scope="module")
def restarted_server():
    """A server of this test's own: it is stopped and started under a running ingest."""
    pg = PostgresServer()
    try:
        yield pg.start()
    finally:
        pg.destroy()


def restarted_under_an_ingest(server, home: Path, url: str, paths, down: float, env=None):
    """Start an ingest of the first folders, stop the server (fast shutdown: every session
    of the ingest is ended) once it has committed, start it again ``down`` seconds later;
    the ingest's (exit status, stdout, stderr)."""
    db = psycopg.connect(url, autocommit=True, application_name="test")
    proc = ingest(home, url, *paths, env=env)
    try:
        started(proc, db)
        db.close()
        server.stop()
        time.sleep(down)
        server.start()
        return finish(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_a_server_restart_under_an_ingest_is_ridden_through(tmp_path, folders, restarted_server):
    """By default the ingest waits for the server to come back and resumes by itself."""
    first_folders, _ = folders
    url = restarted_server.create_database()
    home = tmp_path / "home"
    code, out, err = restarted_under_an_ingest(restarted_server, home, url, first_folders, 3)
    assert code == 0, (out, err)
    assert "Traceback" not in err and "archive-test-password" not in err
    assert "waiting up to 300 s (ingest_outage_wait)" in err and "Resumed after" in err, err
    report = json.loads(out)
    assert report["ok"], report
    db = psycopg.connect(url, autocommit=True, application_name="test")
    assert one(db, "SELECT count(*) FROM records") == 2 * INSTITUTIONS
    assert report["images_reused"] >= 2  # what was tiled before the outage is not tiled again
    held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s"
    assert one(db, held, (KEY,)) == 0  # the run ended and let its lock go
    assert one(db, "SELECT count(*) FROM ingest_lock") == 0
    db.close()


def test_a_server_restart_under_an_ingest_stops_it_cleanly_and_the_rerun_resumes(
    tmp_path, folders, restarted_server
):
    """With ingest_outage_wait = 0 it stops at once, and the next run resumes."""
    first_folders, _ = folders
    url = restarted_server.create_database()
    wait = {"ARCHIVE_INGEST_OUTAGE_WAIT": "0"}
    home = tmp_path / "home"
    code, out, err = restarted_under_an_ingest(restarted_server, home, url, first_folders, 1, wait)
    assert code == 1, (out, err)
    assert "Traceback" not in err and "archive-test-password" not in err
    assert "catalog_url postgresql://" in err and "run the same command again" in err, err
    db = psycopg.connect(url, autocommit=True, application_name="test")
    kept = one(db, "SELECT count(*) FROM records")
    assert 2 <= kept < 2 * INSTITUTIONS  # the first institution's commit stayed
    # Nobody holds the lock: its session died with the server. (The run clears its
    # ingest_lock row on a new session when the server is back by then; a row left
    # while it was still away names no holder, as nobody holds the advisory lock.)
    held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s"
    assert one(db, held, (KEY,)) == 0

    again = ingest(tmp_path / "home", url, *first_folders)
    code, out, err = finish(again)
    assert code == 0, err
    report = json.loads(out)
    assert report["ok"], report
    assert one(db, "SELECT count(*) FROM records") == 2 * INSTITUTIONS
    assert report["images_reused"] >= kept  # what was tiled before is not tiled again
    db.close()
