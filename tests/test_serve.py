"""`archive serve` as operators run it: granian with forked workers, for real.

Tests that kill workers, signal the server or read its logs start their own server;
those that only send requests share one. What is checked: answers under concurrent
mixed load, a dead worker replaced, SIGTERM and Ctrl-C ending cleanly, a bad
configuration refused before serving, the access log, streaming, HEAD, oversized URLs
and malformed bytes.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def fetch(url: str, method: str = "GET", timeout: float = 30) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def children(pid: int) -> set[int]:
    """Direct child processes (the workers) of ``pid``."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return {int(p) for p in path.read_text().split()}
    except FileNotFoundError:
        return set()


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for its parent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(condition, seconds: float = 30.0, step: float = 0.1):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    return condition()


@pytest.fixture(scope="module")
def paths(ingested_home: Path) -> dict[str, str]:
    """A tile, an info.json, a manifest, a page and a search of the samples."""
    from archive.config import Config
    from archive.context import Archive

    archive = Archive(Config.load(ingested_home, environ={}))
    try:
        rows = archive.catalog.public_images()
    finally:
        archive.close()
    image, record = rows[0]
    return {
        "tile": f"/iiif/3/{image}/0,0,256,256/256,/0/default.jpg",
        "info": f"/iiif/3/{image}/info.json",
        "manifest": f"/iiif/3/manifest/{record}",
        "object": f"/object/{record}",
        "search": "/api/search?q=%E8%83%BD&size=5",
        "home": "/",
    }


@pytest.fixture
def server(ingested_home: Path, servers):
    """A server of this test's own (to kill workers of)."""
    proc, base = servers.start_server(ingested_home)
    yield proc, base
    servers.stop_server(proc)


@pytest.fixture(scope="module")
def shared(ingested_home: Path, servers):
    """One server for the tests that only send requests."""
    proc, base = servers.start_server(ingested_home)
    yield proc, base
    servers.stop_server(proc)


def test_concurrent_mixed_requests_all_answer_the_same_bytes(shared, paths):
    _, base = shared
    expected = {name: fetch(base + path) for name, path in paths.items()}
    assert all(status == 200 for status, _, _ in expected.values()), {
        name: status for name, (status, _, _) in expected.items()
    }
    work = [name for name in paths for _ in range(40)]

    def one(name: str) -> tuple[str, int, bytes]:
        status, _, body = fetch(base + paths[name])
        return name, status, body

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, work))
    assert len(results) == len(work)
    for name, status, body in results:
        assert status == 200, name
        if name in ("tile", "info", "manifest"):  # pages and searches vary (cached HTML)
            assert body == expected[name][2], name


def test_a_killed_worker_is_replaced_and_the_site_keeps_answering(server, paths):
    proc, base = server
    workers = wait_for(lambda: len(children(proc.pid)) == 2 and children(proc.pid))
    assert len(workers) == 2, workers
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: not alive(victim), 10), f"worker {victim} did not die"
    # Each worker listens on its own SO_REUSEPORT socket, so what the dying worker held
    # is lost, as with any server: its requests in flight and the connections queued on
    # its socket (reset). New connections go to the other worker, which answers while a
    # replacement starts: within seconds, 20 requests in a row succeed.
    in_a_row, deadline = 0, time.monotonic() + 10
    while in_a_row < 20 and time.monotonic() < deadline:
        try:
            status = fetch(base + paths["tile"], timeout=5)[0]
        except ConnectionResetError:
            in_a_row = 0
            continue
        assert status == 200
        in_a_row += 1
    assert in_a_row == 20, "the surviving worker did not take over"
    replaced = wait_for(lambda: (c := children(proc.pid)) and len(c) == 2 and victim not in c)
    assert replaced, f"worker {victim} not replaced: {children(proc.pid)}"
    assert proc.poll() is None
    for name, path in paths.items():
        assert fetch(base + path)[0] == 200, name


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_signal_stops_the_server_and_its_workers(ingested_home: Path, servers, paths, sig):
    proc, base = servers.start_server(ingested_home)
    try:
        assert fetch(base + paths["tile"])[0] == 200
        workers = children(proc.pid)
        assert workers
        proc.send_signal(sig)
        assert proc.wait(timeout=40) == 0
        assert wait_for(lambda: not any(Path(f"/proc/{w}").exists() for w in workers), 10)
        with pytest.raises(OSError):
            fetch(base + paths["tile"], timeout=2)
    finally:
        servers.stop_server(proc)


def test_a_bad_configuration_fails_in_the_terminal_before_serving(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "archive.toml").write_text("cache_size_mb = 'lots'\n", encoding="utf-8")
    result = subprocess.run(
        [str(BIN / "archive"), "--home", str(home), "serve", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "archive.toml" in result.stderr and "cache_size_mb" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_bad_serve_options_are_refused_with_the_option_named(ingested_home: Path):
    for args, name in (
        (["--workers", "-1"], "--workers"),
        (["--threads", "0"], "--threads"),
    ):
        result = subprocess.run(
            [str(BIN / "archive"), "--home", str(ingested_home), "serve", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, result.stderr
        assert name in result.stderr and "Traceback" not in result.stderr


def test_access_log_lines_name_the_request_and_status(ingested_home: Path, servers, tmp_path):
    log = tmp_path / "access.log"
    proc, base = servers.start_server(ingested_home, workers=1, access_log=log)
    try:
        assert fetch(base + "/api/search?q=noh&size=2")[0] == 200
        assert fetch(base + "/no/such/page")[0] == 404
        wanted = '"GET /api/search?q=noh&size=2 HTTP/1.1" 200'
        assert wait_for(lambda: wanted in log.read_text("utf-8"), 10), log.read_text("utf-8")
        not_found = '"GET /no/such/page? HTTP/1.1" 404'  # its line may come a moment later
        assert wait_for(lambda: not_found in log.read_text("utf-8"), 10), log.read_text("utf-8")
    finally:
        servers.stop_server(proc)


def test_no_access_log_writes_nothing_per_request(ingested_home, servers, tmp_path, paths):
    log = tmp_path / "access.log"
    proc, base = servers.start_server(
        ingested_home, workers=1, args=("--no-access-log",), access_log=log
    )
    try:
        for _ in range(5):
            assert fetch(base + paths["tile"])[0] == 200
    finally:
        servers.stop_server(proc)
    assert paths["tile"] not in log.read_text("utf-8")
    assert "/api/search" not in log.read_text("utf-8")


def test_streamed_export_arrives_whole(shared):
    _, base = shared
    status, _, body = fetch(base + "/api/search?size=1")
    total = json.loads(body)["total"]
    status, headers, body = fetch(base + "/api/export.jsonl")
    assert status == 200 and headers["Content-Type"].startswith("application/x-ndjson")
    lines = body.decode("utf-8").splitlines()
    assert len(lines) == total
    assert all(json.loads(line)["id"] for line in lines)


def test_head_gives_the_headers_of_get_and_no_body(shared, paths):
    _, base = shared
    for name in ("tile", "info", "object"):
        get_status, get_headers, get_body = fetch(base + paths[name])
        head_status, head_headers, head_body = fetch(base + paths[name], method="HEAD")
        assert (get_status, head_status) == (200, 200), name
        assert head_body == b"", name
        assert head_headers["Content-Type"] == get_headers["Content-Type"], name
        if name != "object":  # the page may be gzipped differently; tiles and JSON are not
            assert int(head_headers["Content-Length"]) == len(get_body), name


def test_oversized_urls_are_refused_without_a_500(shared, paths):
    _, base = shared
    image = paths["tile"].split("/")[3]
    long_region = "1," * 5000 + "1"
    status, _, body = fetch(f"{base}/iiif/3/{image}/{long_region}/max/0/default.jpg")
    assert status == 400 and b"region" in body
    status, _, _ = fetch(f"{base}/api/search?q={'a' * 20000}")
    assert status == 400
    status, _, _ = fetch(f"{base}/{'x' * 100_000}")
    assert status == 414  # the server's own limit: 64 KiB of request line


RAW_REQUESTS = [
    b"GET /iiif/3/%FF%FE/info.json HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /iiif/3/\xff\xfe~abc/info.json HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /iiif/2/a~0123456789/full/max/0/default.jpg%00 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /search?q=%FF%FE%00 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/search?q=\xe8\x83 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /object/%00 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET http://elsewhere/ HTTP/1.1\r\nHost: x\r\n\r\n",
    b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET /?lang=%FF HTTP/1.1\r\nHost: x\r\nAccept-Language: \xff\xfe\r\nCookie: lang=\xff\r\n\r\n",
    b"GET /api/search HTTP/1.1\r\nHost: \xff\r\n\r\n",
    b"POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    b"GET /iiif/3/collection/top HTTP/1.1\r\nHost: x\r\nIf-None-Match: \xff\r\n"
    b"If-Modified-Since: garbage\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Host: \x00\r\nRange: bytes=9-1\r\n\r\n",
]


def raw_status(base: str, request: bytes) -> int:
    """Send bytes no HTTP library would, and read the status the server answers."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        head = b""
        while b"\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    return int(head.split(b" ", 2)[1])


@pytest.mark.parametrize("request_bytes", RAW_REQUESTS, ids=range(len(RAW_REQUESTS)))
def test_malformed_bytes_never_give_a_500(shared, paths, request_bytes):
    _, base = shared
    status = raw_status(base, request_bytes)
    assert 200 <= status < 500, status
    assert fetch(base + paths["tile"])[0] == 200  # and the server answers on


def test_serving_beyond_loopback_without_public_url_says_so(ingested_home: Path, servers, tmp_path):
    """Links would otherwise follow whatever Host header a client sends."""
    log = tmp_path / "serve.log"
    proc, _ = servers.start_server(ingested_home, workers=1, args=("--host", "0.0.0.0"), log=log)
    servers.stop_server(proc)
    assert "public_url is not set" in log.read_text("utf-8")
