"""Shared fixtures: a temporary archive home, the sample collections ingested once per
session, the Flask app and client on them, and a real `archive serve` on a free port."""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from archive.config import Config

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
COLLECTIONS = REPO / "collections_data"
BIN = Path(sys.executable).parent
# A node loads its search models before it answers: on a busy machine (both cores
# running tests, or other jobs) that has taken over a minute.
SERVE_START_TIMEOUT = 150


def sample_folders() -> list[Path]:
    return sorted(p.parent for p in COLLECTIONS.glob("*/institution.toml"))


# Parallel runs (pytest-xdist; `make test` runs `-n 2 --dist loadfile`): the tests of
# one module stay on one worker, so module-scoped fixtures (servers, ingested homes) are
# set up once, and the files on the session's OpenSearch node share one worker, so one
# node starts. Work goes out in collection order, the slowest modules moved first, so
# that no worker is left with a long one at the end while the other idles. Session
# fixtures are per worker; the expensive ones that do not depend on the worker (the
# sample ingest) are built once for the run (``_shared``).
SCOPE_GROUPS = {"tests/search/test_search_cluster": "opensearch"}  # path prefix: group
SLOW_FIRST = (  # path prefixes, slowest first; the rest in collection order
    "tests/backup/test_backup_remote",
    "tests/search/test_search_cluster",
    "tests/backup/",
    "tests/search/test_search_sqlite_specifics",
    "tests/deploy/",
)


def _scope(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    return next((g for prefix, g in SCOPE_GROUPS.items() if path.startswith(prefix)), path)


def _slow_rank(path: str) -> int:
    return next((n for n, p in enumerate(SLOW_FIRST) if path.startswith(p)), len(SLOW_FIRST))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class ModuleGroups(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _scope(nodeid)

    config.option.loadscopereorder = False  # keep the order set below
    return ModuleGroups(config, log)


def pytest_collection_modifyitems(config, items):
    if os.environ.get("PYTEST_XDIST_WORKER") is not None:  # every worker sorts alike
        items.sort(key=lambda item: _slow_rank(item.nodeid))  # stable: modules stay whole


def _shared(tmp_path_factory, name: str, build, leaf: str = "home") -> Path:
    """``build(path)`` once per run, whatever the number of workers: under xdist the
    first worker builds it in the run's common temporary folder (under a lock) and the
    others wait for it. Returns the built path; callers that mutate it copy it."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        path = tmp_path_factory.mktemp(name) / leaf
        build(path)
        return path
    root = tmp_path_factory.getbasetemp().parent  # shared by the run's workers
    path = root / f"shared-{name}"
    with open(root / f"shared-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / f"shared-{name}.done").exists():
            shutil.rmtree(path, ignore_errors=True)
            build(path)
            (root / f"shared-{name}.done").touch()
    return path


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def config(home: Path) -> Config:
    return Config.load(home, environ={})


@pytest.fixture(scope="session")
def sample_images(tmp_path_factory) -> list[Path]:
    """The sample collections' images, generated (deterministically) if missing."""

    def generate(path: Path) -> None:
        subprocess.run([sys.executable, str(COLLECTIONS / "make_images.py")], check=True)
        path.mkdir(parents=True)

    _shared(tmp_path_factory, "sample-images", generate, leaf="done")
    return sample_folders()


@pytest.fixture(scope="session")
def ingested_home(tmp_path_factory, sample_images) -> Path:
    """An archive home with every sample collection ingested through the real CLI.

    Ingested once per run; under xdist each worker gets its own copy of it (tests
    write derivative caches and metrics into it), taken before any test used it."""
    from archive.cli import cli

    def ingest(path: Path) -> None:
        result = CliRunner().invoke(
            cli, ["--home", str(path), "ingest", *map(str, sample_images)], catch_exceptions=False
        )
        assert result.exit_code == 0, result.output

    built = _shared(tmp_path_factory, "ingested", ingest)
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return built
    path = tmp_path_factory.mktemp("ingested") / "home"
    shutil.copytree(built, path)
    return path


@pytest.fixture(scope="session")
def app(ingested_home: Path):
    from web import create_app

    application = create_app(Config.load(ingested_home, environ={}))
    application.config["TESTING"] = True
    yield application
    application.extensions["archive"].close()


@pytest.fixture
def client(app):
    return app.test_client()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    home: Path,
    *,
    workers: int = 2,
    env: dict | None = None,
    args: tuple[str, ...] = (),
    log: Path | None = None,
    access_log: Path | None = None,
    port: int | None = None,
):
    """Start `archive serve` for real and wait until it answers; returns (process, base URL).

    Its stderr (server and application messages) goes to ``log``, by default a file
    beside the home, so a long run can never block on a full pipe; the tail is shown
    if the server exits before answering. ``args`` are more ``serve`` options; stdout
    (the access log) goes to ``access_log`` if given (appended to), else nowhere.
    ``port`` is a free one unless given (a node restarted where its load balancer
    expects it).
    """
    port = port or free_port()
    log = log or home.parent / f"serve-{port}.log"
    with open(log, "ab") as stderr, open(access_log or os.devnull, "ab") as stdout:
        proc = subprocess.Popen(
            [
                str(BIN / "archive"),
                "--home",
                str(home),
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
                *args,
            ],
            stdout=stdout,
            stderr=stderr,
            env={**os.environ, **(env or {})},
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVE_START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
            raise RuntimeError(f"archive serve exited: {tail}")
        try:
            with urllib.request.urlopen(base + "/api/search?size=1", timeout=2):
                return proc, base
        except OSError:
            time.sleep(0.2)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"archive serve did not answer within {SERVE_START_TIMEOUT} s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def servers() -> SimpleNamespace:
    """The helpers above, for tests in any folder and import mode (conftest modules are
    not importable by name): ``servers.start_server(home)``, ``servers.stop_server(proc)``
    and ``servers.free_port()``."""
    return SimpleNamespace(start_server=start_server, stop_server=stop_server, free_port=free_port)


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """A real S3 server (s3proxy, filesystem backend) for the whole session, with the
    standard AWS_* variables pointing this process's boto3 at it; stopped at the end."""
    from s3server import S3Proxy

    server = S3Proxy(tmp_path_factory.mktemp("s3proxy")).start()
    saved = {name: os.environ.get(name) for name in server.env}
    os.environ.update(server.env)
    try:
        yield server
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def s3_url(s3) -> str:
    """``storage_url`` of a fresh, empty bucket on the session's S3 server."""
    return s3.new_bucket()


@pytest.fixture(scope="session")
def live_server(ingested_home: Path):
    """Base URL of a real `archive serve` (granian) on the ingested sample archive."""
    proc, base = start_server(ingested_home)
    yield base
    stop_server(proc)


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server for the whole session (tests/pg_server.py), stopped at the
    end whatever happened; ``postgres.create_database()`` gives a fresh database URL."""
    from pg_server import PostgresServer

    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def postgres_url(postgres) -> str:
    """A fresh, empty database on the session's PostgreSQL server, for one test."""
    return postgres.create_database()
