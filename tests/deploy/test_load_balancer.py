"""Two `archive serve` nodes behind nginx (deploy/nginx/archive.conf, unchanged but for
the node addresses and the port), over one archive that a third process ingests.

Both nodes answer every record, manifest, page and tile byte for byte alike; a node
killed with SIGKILL in the middle of a run of requests through nginx costs none of
them; started again on its port, it gets requests again.

What the processes share comes from one fixture, ``shared_services``: a real PostgreSQL
catalog (ARCHIVE_CATALOG_URL) and a real S3 bucket (s3proxy; ARCHIVE_STORAGE_URL and the
AWS_* settings), as on the city's cloud; each process has a home of its own, empty at
its start, for its cache and its own search index, which follows the catalog's change
log (a new node builds it at start).
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / "collections_data"
pytestmark = pytest.mark.slow

FIRST = ("noh-museum", "craft-museum")  # ingested before the nodes start
LATER = "folk-museum"  # ingested while they serve
HEADERS = ("Content-Type", "ETag", "Cache-Control", "Last-Modified", "Vary")


def fetch(url: str, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items()), err.read()


@pytest.fixture(scope="module")
def shared_services(tmp_path_factory, postgres, s3) -> SimpleNamespace:
    """``env``: settings every process gets (one PostgreSQL database, one bucket);
    ``home(name)``: the home of one process, its own."""
    root = tmp_path_factory.mktemp("deployment")
    env = {
        **s3.env,
        "ARCHIVE_CATALOG_URL": postgres.create_database(),
        "ARCHIVE_STORAGE_URL": s3.new_bucket("museum"),
    }
    return SimpleNamespace(env=env, home=lambda name: root / name)


def ingest(services: SimpleNamespace, *folders: str) -> None:
    """`archive ingest` in a process of its own, as an operator's job would run it."""
    out = subprocess.run(
        [
            str(BIN / "archive"),
            "--home",
            str(services.home("ingest")),
            "ingest",
            *(str(COLLECTIONS / f) for f in folders),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **services.env},
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]


class Node:
    """One `archive serve` behind the load balancer, on a port that stays its own."""

    def __init__(self, name: str, services, servers, public_url: str, logs: Path) -> None:
        self.name = name
        self.services = services
        self.servers = servers
        self.env = {**services.env, "ARCHIVE_PUBLIC_URL": public_url}
        self.port = servers.free_port()
        self.access_log = logs / f"{name}.access.log"
        self.log = logs / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc, self.base = self.servers.start_server(
            self.services.home(self.name),
            workers=1,
            env=self.env,
            port=self.port,
            log=self.log,
            access_log=self.access_log,
        )

    def requests_served(self) -> int:
        return len(self.access_log.read_bytes().splitlines()) if self.access_log.exists() else 0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.servers.stop_server(self.proc)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, shared_services, servers, sample_images, nginx_factory):
    logs = tmp_path_factory.mktemp("deployment-logs")
    ingest(shared_services, *FIRST)
    lb_port = servers.free_port()
    public = f"http://127.0.0.1:{lb_port}"
    nodes = [Node(n, shared_services, servers, public, logs) for n in ("node-a", "node-b")]
    try:
        for node in nodes:
            node.start()
        lb = nginx_factory([f"127.0.0.1:{n.port}" for n in nodes], lb_port)
        yield SimpleNamespace(nodes=nodes, lb=lb, public=public, services=shared_services)
    finally:
        for node in nodes:
            node.stop()


def public_ids(base: str) -> list[str]:
    status, _, body = fetch(f"{base}/api/export.jsonl")
    assert status == 200
    return [json.loads(line)["id"] for line in body.splitlines() if line.strip()]


def tile_paths(info: dict) -> list[str]:
    """Every tile of every level an IIIF 3 viewer asks for, from info.json's tiles."""
    service = info["id"].split("/iiif/3/", 1)[1]
    width, height = info["width"], info["height"]
    [tiles] = info["tiles"]
    size = tiles["width"]
    paths = []
    for scale in tiles["scaleFactors"]:
        step = size * scale
        for y in range(0, height, step):
            for x in range(0, width, step):
                w, h = min(step, width - x), min(step, height - y)
                sw, sh = math.ceil(w / scale), math.ceil(h / scale)
                paths.append(f"/iiif/3/{service}/{x},{y},{w},{h}/{sw},{sh}/0/default.jpg")
    return paths


def every_path(base: str) -> list[str]:
    """Records, manifests, object pages, info.json and all tiles of the public archive."""
    paths = ["/iiif/3/collection/top", "/iiif/3/activity/all-changes"]
    for record_id in public_ids(base):
        manifest_path = f"/iiif/3/manifest/{record_id}"
        paths += [f"/api/records/{record_id}", manifest_path, f"/object/{record_id}?lang=en"]
        status, _, body = fetch(base + manifest_path)
        assert status == 200, manifest_path
        for canvas in json.loads(body)["items"]:
            service = canvas["items"][0]["items"][0]["body"]["service"][0]["id"]
            info_path = service.split("/iiif/3/", 1)[1]
            paths.append(f"/iiif/3/{info_path}/info.json")
            status, _, info = fetch(f"{base}/iiif/3/{info_path}/info.json")
            assert status == 200
            paths += tile_paths(json.loads(info))
    return paths


def test_both_nodes_answer_byte_for_byte_alike(deployment):
    a, b = deployment.nodes
    paths = every_path(a.base)
    assert sum("/default.jpg" in p for p in paths) > 100
    for path in paths:
        status_a, headers_a, body_a = fetch(a.base + path)
        status_b, headers_b, body_b = fetch(b.base + path)
        assert status_a == status_b == 200, path
        assert body_a == body_b, path
        for name in HEADERS:
            assert headers_a.get(name) == headers_b.get(name), (path, name)
    # Every id either node publishes is built from public_url: the load balancer's.
    status, _, manifest = fetch(a.base + next(p for p in paths if "/manifest/" in p))
    assert deployment.public.encode() in manifest and a.base.encode() not in manifest


def test_an_ingest_from_a_third_process_reaches_both_nodes(deployment):
    ingest(deployment.services, *FIRST, LATER)
    deadline = time.monotonic() + 10
    for node in deployment.nodes:
        while True:
            ids = public_ids(node.base)
            if any(i.startswith(f"{LATER}_") for i in ids):
                break
            assert time.monotonic() < deadline, f"{node.name} never saw the new records"
            time.sleep(0.2)
    assert public_ids(deployment.nodes[0].base) == public_ids(deployment.nodes[1].base)
    # Each node's own search index follows the catalog's change log and finds them too.
    query = f"/api/search?institution={LATER}&size=100"
    expected = sorted(i for i in public_ids(deployment.nodes[0].base) if i.startswith(LATER))
    for node in deployment.nodes:
        while True:
            _, _, body = fetch(node.base + query)
            if sorted(item["id"] for item in json.loads(body)["items"]) == expected:
                break
            assert time.monotonic() < deadline + 20, f"{node.name}'s search missed the records"
            time.sleep(0.2)


def test_a_node_killed_mid_run_costs_no_request_and_rejoins(deployment):
    a, b = deployment.nodes
    lb = deployment.lb.base
    paths = [p for p in every_path(a.base) if "/default.jpg" not in p]
    paths += [p for p in every_path(a.base) if "/default.jpg" in p][::7]
    paths += ["/api/search?q=%E8%83%BD&size=5", "/iiif/3/collection/noh-museum"]
    expected = {}
    for path in paths:
        status, _, body = fetch(a.base + path)
        assert status == 200, path
        expected[path] = body
    failures: list[str] = []
    done = [0]
    lock = threading.Lock()
    rounds = 2
    per_client = len(paths) * rounds

    def client(offset: int) -> None:
        for n in range(per_client):
            path = paths[(n + offset) % len(paths)]
            status, _, body = fetch(lb + path)
            if status != 200 or not same(path, body, expected[path]):
                failures.append(f"{status} {path}")
            with lock:
                done[0] += 1

    served_before = b.requests_served()
    clients = [threading.Thread(target=client, args=(i * 17,)) for i in range(3)]
    for thread in clients:
        thread.start()
    total = per_client * len(clients)
    while done[0] < total // 3:  # a third of the run through both nodes, then the crash
        time.sleep(0.01)
    assert b.requests_served() > served_before, "node-b was not being used"
    os.kill(b.proc.pid, signal.SIGKILL)
    b.proc.wait(timeout=10)
    for thread in clients:
        thread.join(timeout=600)
    assert done[0] == total
    assert failures == [], f"{len(failures)} of {total} requests failed: {failures[:10]}"
    # Its worker went with it: nothing answers on its port any more.
    deadline = time.monotonic() + 5
    while fetch_or_none(b.base + "/api/health") is not None:
        assert time.monotonic() < deadline, "node-b's worker outlived its server"
        time.sleep(0.2)

    b.start()  # on the same port, where nginx expects it
    served = b.requests_served()
    deadline = time.monotonic() + 60  # nginx tries a failed node again after fail_timeout
    while b.requests_served() == served:
        assert time.monotonic() < deadline, "nginx never sent node-b a request again"
        path = paths[int(time.monotonic() * 1000) % len(paths)]
        status, _, body = fetch(lb + path)
        assert status == 200 and same(path, body, expected[path]), path
        time.sleep(0.05)


def same(path: str, body: bytes, expected: bytes) -> bool:
    """The answer we expect: the same bytes for documents, tiles and the API. A page may
    come from either node's short-lived page caches (site.py's 30 s and 10 min caches of
    facets, related objects and institutions), which after an ingest can differ for a
    while; a page counts if it is the page of what was asked (its canonical link)."""
    if not path.startswith("/object/"):
        return body == expected
    canonical = re.search(rb'<link rel="canonical" href="([^"]+)"', expected)
    return canonical is not None and canonical.group(0) in body


def fetch_or_none(url: str) -> int | None:
    try:
        return fetch(url, timeout=2)[0]
    except OSError:
        return None


def test_the_documented_sed_fills_in_the_configuration_as_the_tests_do(nginx_config):
    """docs/deployment.md shows operators a sed command; it must give what the tests run."""
    conf, render_config = nginx_config
    docs = (REPO / "docs" / "deployment.md").read_text(encoding="utf-8")
    command = re.search(r"^sed (-e '.*?' \\\n\s+-e '.*?') \\\n", docs, re.M)
    assert command, "docs/deployment.md has no sed command for archive.conf"
    expressions = re.findall(r"-e '(.*?)'", command.group(1))
    out = subprocess.run(
        ["sed", *[a for e in expressions for a in ("-e", e)], str(conf)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    expected = render_config(
        conf.read_text(encoding="utf-8"), ["10.0.0.11:8000", "10.0.0.12:8000"], "80"
    )
    assert out == expected
    assert "    server 10.0.0.12:8000 max_fails=2 fail_timeout=10s;" in out.splitlines()
