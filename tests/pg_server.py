"""A real PostgreSQL server for the tests: Debian's initdb and pg_ctl in a temporary
folder, run as an unprivileged user (CI runs as root, and postgres refuses root), on
a free port of 127.0.0.1 with password authentication.

``PostgresServer().start()`` ... ``.stop()``; ``.create_database()`` hands out a fresh,
empty database URL. ``PostgresServer(file_limit=N)`` runs the server under a file-size
limit (RLIMIT_FSIZE: PostgreSQL ignores SIGXFSZ, so a table that would grow past N bytes
fails as on a full disk, and the server lives on), with 1 MB WAL segments that fit under
it. tests/conftest.py starts one per session (``postgres``, ``postgres_url``); a test
that stops and starts the server (faults) starts its own.
"""

from __future__ import annotations

import glob
import os
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

USER = "archive"
PASSWORD = "archive-test-password"


def pg_bin() -> Path | None:
    """Debian's PostgreSQL programs, newest major version first."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(found[0]).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    def __init__(self, *, file_limit: int | None = None, options: str = "") -> None:
        bindir = pg_bin()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed: run `make test` (or `make postgres`)")
        self.bin = bindir
        self.root = Path(tempfile.mkdtemp(prefix="archive-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.log = self.root / "server.log"
        self._databases = 0
        self.file_limit = file_limit  # bytes per file, for the server processes
        self.options = options
        self._as_user: list[str] = []
        if os.geteuid() == 0:  # postgres refuses to run as root
            self._as_user = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
            os.chmod(self.root, 0o755)  # mkdtemp makes it 0700, and ours
            shutil.chown(self.root, "nobody", "nogroup")

    def _limit(self) -> None:
        if self.file_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (self.file_limit, self.file_limit))

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*self._as_user, *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            cwd=self.root,
            preexec_fn=self._limit if self.file_limit is not None else None,
        )

    def start(self) -> PostgresServer:
        if not self.data.exists():
            pwfile = self.root / "pw"
            pwfile.write_text(PASSWORD + "\n")
            if self._as_user:
                shutil.chown(pwfile, "nobody", "nogroup")
            done = self._run(
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                USER,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                *(["--wal-segsize=1"] if self.file_limit is not None else []),
            )
            if done.returncode != 0:
                raise RuntimeError(f"initdb failed: {done.stderr or done.stdout}")
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            f" {self.options}"
        )
        done = self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        if done.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {done.stderr or done.stdout}\n{tail}")
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown: sessions are ended); kill it if it will not go."""
        if not (self.data / "postmaster.pid").exists():
            return
        done = self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        if done.returncode != 0 and (self.data / "postmaster.pid").exists():
            try:
                pid = int((self.data / "postmaster.pid").read_text().split()[0])
                os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError, IndexError):
                pass

    def destroy(self) -> None:
        self.stop()
        deadline = time.monotonic() + 10
        while (self.data / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, dbname: str = "postgres", *, password: str = PASSWORD) -> str:
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        self._databases += 1
        name = f"archive_{os.getpid()}_{self._databases}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
