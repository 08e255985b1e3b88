"""/metrics and the JSON log, on a real `archive serve` with two worker processes.

One server for most checks (module scope): metrics on a listen address of their own
and behind a token on the public port, JSON logs. What is checked: every worker's
requests are counted (multiprocess mode), by kind of route and status, with latency
histograms; the derivative cache's hits and misses; catalog and search latency; the
last ingest's figures and the search index's lag; the token; one JSON object per log
line with method, path, status, duration and bytes; bad settings refused at start-up;
no process left behind.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from archive.config import Config
from archive.context import Archive

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
TOKEN = "s3cret-token"


def fetch(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` -> value, from the Prometheus text format."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def children(pid: int) -> set[int]:
    try:
        return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except FileNotFoundError:
        return set()


@pytest.fixture(scope="module")
def first_image(ingested_home: Path) -> tuple[str, str]:
    archive = Archive(Config.load(ingested_home, environ={}))
    try:
        record = next(r for r in archive.catalog.records() if r.images)
        return record.id, record.images[0].id
    finally:
        archive.close()


@pytest.fixture(scope="module")
def metered(ingested_home: Path, servers, tmp_path_factory):
    """A server with metrics on a port of their own and behind a token, and JSON logs."""
    logs = tmp_path_factory.mktemp("metered")
    metrics_port = servers.free_port()
    proc, base = servers.start_server(
        ingested_home,
        workers=2,
        env={
            "ARCHIVE_METRICS_LISTEN": f"127.0.0.1:{metrics_port}",
            "ARCHIVE_METRICS_TOKEN": TOKEN,
            "ARCHIVE_LOG_FORMAT": "json",
        },
        log=logs / "stderr.log",
        access_log=logs / "access.log",
    )
    yield proc, base, f"http://127.0.0.1:{metrics_port}/metrics", logs
    servers.stop_server(proc)


def scrape(url: str) -> dict[str, float]:
    status, headers, body = fetch(url)
    assert status == 200, body
    assert headers["Content-Type"].startswith("text/plain; version=")
    return samples(body.decode("utf-8"))


def test_route_kinds_name_a_few_kinds_never_the_path():
    from web.metrics import route_kind

    table = {
        "/iiif/3/a_b~1f/0,0,256,256/256,/0/default.jpg": "image",
        "/iiif/2/a_b~1f/info.json": "info",
        "/iiif/3/manifest/a_b": "manifest",
        "/iiif/3/collection/top": "manifest",
        "/iiif/3/activity/all-changes": "changes",
        "/api/search": "search",
        "/api/records/x": "api",
        "/search": "search",
        "/oai": "oai",
        "/static/site.css": "static",
        "/vendor/mirador/x.js": "static",
        "/object/a_b": "page",
        "/": "page",
        "/metrics": "metrics",
    }
    assert {path: route_kind(path) for path in table} == table


def test_every_workers_requests_are_counted_by_route_and_status(metered, first_image):
    _, base, metrics_url, _ = metered
    record, image = first_image
    time.sleep(1.5)  # start_server's probes (/api/search) are flushed by now
    before = scrape(metrics_url)
    tile = f"{base}/iiif/3/{image}/0,0,256,256/256,/0/default.jpg"
    n = 30  # a new connection each: granian's SO_REUSEPORT spreads them over both workers
    for _ in range(n):
        assert fetch(tile)[0] == 200
    render = f"{base}/iiif/3/{image}/full/73,/0/default.png"
    assert fetch(render)[0] == 200 and fetch(render)[0] == 200  # a miss, then a hit
    assert fetch(f"{base}/iiif/3/manifest/{record}")[0] == 200
    assert fetch(f"{base}/api/search?q=%E8%83%BD")[0] == 200
    assert fetch(f"{base}/no/such/page")[0] == 404
    tiles = 'archive_http_requests_total{route="tile",status="200"}'
    deadline = time.monotonic() + 10  # each worker adds its tallies once a second
    while True:
        after = scrape(metrics_url)
        if after.get(tiles, 0) - before.get(tiles, 0) >= n or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    time.sleep(1.5)
    after = scrape(metrics_url)

    def delta(key: str) -> float:
        return after.get(key, 0) - before.get(key, 0)

    assert delta('archive_http_requests_total{route="tile",status="200"}') == n
    assert delta('archive_http_request_duration_seconds_count{route="tile"}') == n
    assert delta('archive_http_requests_total{route="render",status="200"}') == 2
    assert delta('archive_image_cache_requests_total{result="miss"}') >= 1
    assert delta('archive_image_cache_requests_total{result="hit"}') >= 1
    assert delta('archive_http_requests_total{route="manifest",status="200"}') == 1
    assert delta('archive_http_requests_total{route="search",status="200"}') == 1
    assert delta('archive_http_requests_total{route="page",status="404"}') == 1
    assert delta('archive_search_call_duration_seconds_count{method="search"}') >= 1
    assert delta('archive_catalog_call_duration_seconds_count{method="get_record"}') >= 1
    slow = after['archive_http_request_duration_seconds_bucket{le="10.0",route="tile"}']
    assert slow == after['archive_http_request_duration_seconds_count{route="tile"}']


def test_the_archive_state_last_ingest_and_search_lag(metered, ingested_home):
    _, _, metrics_url, _ = metered
    got = scrape(metrics_url)
    archive = Archive(Config.load(ingested_home, environ={}))
    try:
        public = archive.catalog.count()
        total = archive.catalog.count(public_only=False)
    finally:
        archive.close()
    report = json.loads(sorted((ingested_home / "reports").glob("ingest-*.json"))[-1].read_text())
    assert got['archive_records{visibility="public"}'] == public
    assert got['archive_records{visibility="all"}'] == total
    added = sum(i["added"] for i in report["institutions"])
    assert got['archive_last_ingest_records{outcome="added"}'] == added
    assert got['archive_last_ingest_images{kind="tiled"}'] == report["images_tiled"]
    assert got["archive_last_ingest_ok"] == (1.0 if report["ok"] else 0.0)
    assert got["archive_last_ingest_finished_timestamp_seconds"] <= time.time()
    assert got["archive_search_up"] == 1.0
    assert got["archive_search_documents"] == public
    assert got["archive_search_lag_documents"] == 0
    assert got["archive_search_behind"] == 0


def test_public_port_needs_the_token(metered):
    _, base, _, _ = metered
    status, headers, _ = fetch(base + "/metrics")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert fetch(base + "/metrics", {"Authorization": "Bearer wrong"})[0] == 401
    status, _, body = fetch(base + "/metrics", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and b"archive_http_requests_total" in body
    assert fetch(base + "/metrics/extra", {"Authorization": f"Bearer {TOKEN}"})[0] == 404


def test_metrics_are_not_public_by_default(client):
    """The shared app has neither setting: /metrics is a plain 404, nothing counted."""
    resp = client.get("/metrics")
    assert resp.status_code == 404
    assert b"archive_" not in resp.data


def test_json_log_one_object_per_line_with_duration_status_and_bytes(metered, first_image):
    _, base, _, logs = metered
    _, image = first_image
    path = f"/iiif/3/{image}/info.json"
    status, _, body = fetch(base + path + "?x=1")
    assert status == 200
    assert fetch(base + "/no/such/page")[0] == 404
    access = logs / "access.log"

    def entries() -> list[dict]:
        return [json.loads(line) for line in access.read_text("utf-8").splitlines() if line]

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(
        e.get("path") == "/no/such/page" for e in entries()
    ):
        time.sleep(0.1)
    found = [e for e in entries() if e.get("path") == path and e.get("query") == "x=1"]
    assert found, access.read_text("utf-8")[-2000:]
    entry = found[-1]
    assert entry["method"] == "GET" and entry["status"] == 200
    assert entry["bytes"] == len(body) and entry["route"] == "info"
    assert isinstance(entry["duration_ms"], float) and entry["duration_ms"] >= 0
    assert {"time", "level", "remote_addr", "user_agent"} <= entry.keys()
    missing = [e for e in entries() if e.get("path") == "/no/such/page"]
    assert missing and missing[-1]["status"] == 404
    # The server's own messages are JSON objects too, one per line.
    lines = [line for line in (logs / "stderr.log").read_text("utf-8").splitlines() if line]
    assert lines and all(json.loads(line)["message"] for line in lines)


def test_a_pages_stream_is_counted_when_sent(metered):
    """Flask's responses are iterables the server closes: counted then, bytes and all."""
    _, base, _, logs = metered
    status, _, body = fetch(base + "/api/export.jsonl")
    assert status == 200
    access = logs / "access.log"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [
            json.loads(line)
            for line in access.read_text("utf-8").splitlines()
            if '"/api/export.jsonl"' in line
        ]
        if found:
            break
        time.sleep(0.1)
    assert found and found[-1]["bytes"] == len(body) and found[-1]["route"] == "api"


def test_bad_settings_are_one_line_errors(ingested_home, servers, tmp_path):
    busy = servers.free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", busy))
        holder.listen(1)
        for env, needle in (
            ({"ARCHIVE_LOG_FORMAT": "xml"}, "log_format"),
            ({"ARCHIVE_METRICS_LISTEN": "nowhere"}, "metrics_listen"),
            ({"ARCHIVE_METRICS_LISTEN": f"127.0.0.1:{busy}"}, "metrics_listen"),
        ):
            result = subprocess.run(
                [str(BIN / "archive"), "--home", str(ingested_home), "serve", "--port", "0"],
                capture_output=True,
                text=True,
                timeout=60,
                env={**os.environ, **env},
            )
            assert result.returncode != 0, result.stderr
            assert needle in result.stderr and "Traceback" not in result.stderr
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_the_metrics_process_goes_with_the_server(ingested_home, servers):
    port = servers.free_port()
    proc, _ = servers.start_server(
        ingested_home, workers=1, env={"ARCHIVE_METRICS_LISTEN": f"127.0.0.1:{port}"}
    )
    try:
        kids = children(proc.pid)
        assert len(kids) >= 2  # the worker and the metrics process
        assert fetch(f"http://127.0.0.1:{port}/metrics")[0] == 200
        assert fetch(f"http://127.0.0.1:{port}/other")[0] == 404
    finally:
        servers.stop_server(proc)
    for pid in kids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()


@pytest.fixture
def token_app(home):
    from web import create_app

    app = create_app(Config.load(home, environ={"ARCHIVE_METRICS_TOKEN": TOKEN}))
    yield app
    app.extensions["archive"].close()


def test_one_process_counts_exactly_and_a_broken_catalog_is_a_503(token_app, home):
    client = token_app.test_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for _ in range(3):
        with client.get("/api/search?q=x") as resp:  # counted when closed, as servers do
            assert resp.status_code == 200
    got = samples(client.get("/metrics", headers=auth).get_data(as_text=True))
    assert got['archive_http_requests_total{route="search",status="200"}'] == 3
    assert got['archive_records{visibility="all"}'] == 0
    assert "archive_last_ingest_ok" not in got  # no ingest yet: no figures, not zeros
    archive = token_app.extensions["archive"]
    archive.catalog.close()
    (home / "catalog.sqlite").write_bytes(b"not a database at all " * 512)
    for leftover in ("catalog.sqlite-wal", "catalog.sqlite-shm"):
        (home / leftover).unlink(missing_ok=True)
    resp = client.get("/metrics", headers=auth)
    assert resp.status_code == 503 and b"Traceback" not in resp.data
