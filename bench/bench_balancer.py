"""Two `archive serve` nodes behind nginx (deploy/nginx/archive.conf) against one node.

Anchor: one node with as many workers as the two nodes have together (2), asked
directly, in the same run, for the same paths, with the same load (``wrk -t2 -c8``,
random paths). Measured: tiles per second and manifests per second through nginx, and
the run's failed requests when one node is killed with SIGKILL a third of the way into
it (target: none), then how long nginx takes to send requests to the node again after
it is back on its port (bounded by ``fail_timeout``, 10 s).

On one machine nginx, both nodes and wrk share the cores, so the ratio is the price of
the extra hop on shared cores, not what separate machines would see. The two are
alternated for ``--rounds`` runs and the medians compared.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from bench.bench_image import Server, wrk
from bench.common import REPO, Report, Row, free_port, parser, scratch, serve_archive, stop

BIN = Path(sys.executable).parent
FOLDERS = ("noh-museum", "craft-museum", "city-archives")
NGINX = "/usr/sbin/nginx"
MAIN_CONF = """\
daemon off;
worker_processes 1;
{user}
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/archive.conf;
}}
"""


def start_nginx(prefix: Path, nodes: list[str], port: int) -> Server:
    """The repository's archive.conf, filled in with the nodes and the port."""
    template = (REPO / "deploy" / "nginx" / "archive.conf").read_text(encoding="utf-8")
    lines = []
    for line in template.splitlines():
        if line.lstrip().startswith("server @NODE@"):
            lines += [line.replace("@NODE@", node) for node in nodes]
        else:
            lines.append(line.replace("@LISTEN@", f"127.0.0.1:{port}"))
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "archive.conf").write_text("\n".join(lines) + "\n", encoding="utf-8")
    user = "user root root;" if os.geteuid() == 0 else ""
    (prefix / "nginx.conf").write_text(MAIN_CONF.format(user=user, prefix=prefix))
    proc = subprocess.Popen(
        [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", "stderr"],
        stdout=subprocess.DEVNULL,
        stderr=open(prefix / "stderr", "wb"),  # noqa: SIM115 (lives as long as nginx)
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/api/health", timeout=5):
                return Server("nginx", proc, base)
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError((prefix / "stderr").read_text()[-2000:]) from None
            time.sleep(0.2)
    stop(proc)
    raise RuntimeError("nginx did not answer within 20 s")


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.read()


def paths_of(base: str) -> tuple[list[str], list[str]]:
    """(every tile a viewer asks for, every manifest) of the public archive."""
    ids = [json.loads(line)["id"] for line in get(base + "/api/export.jsonl").splitlines()]
    manifests = [f"/iiif/3/manifest/{i}" for i in ids]
    tiles = []
    for path in manifests:
        for canvas in json.loads(get(base + path))["items"]:
            service = canvas["items"][0]["items"][0]["body"]["service"][0]["id"]
            ident = service.split("/iiif/3/", 1)[1]
            info = json.loads(get(f"{base}/iiif/3/{ident}/info.json"))
            size = info["tiles"][0]["width"]
            for scale in info["tiles"][0]["scaleFactors"]:
                step = size * scale
                for y in range(0, info["height"], step):
                    for x in range(0, info["width"], step):
                        w, h = min(step, info["width"] - x), min(step, info["height"] - y)
                        sw, sh = -(-w // scale), -(-h // scale)
                        tiles.append(f"/iiif/3/{ident}/{x},{y},{w},{h}/{sw},{sh}/0/default.jpg")
    return tiles, manifests


def main(args: list[str]) -> int:
    p = parser("balancer", __doc__)
    p.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    p.add_argument("--rounds", type=int, default=3, help="alternating runs; the median counts")
    opts = p.parse_args(args)
    seconds = 4 if opts.quick else opts.seconds
    rounds = 1 if opts.quick else opts.rounds
    report = Report("balancer", params={"seconds": seconds, "rounds": rounds, "wrk": "-t2 -c8"})
    with scratch("balancer") as root:
        home = root / "home"
        subprocess.run(
            [str(BIN / "archive"), "--home", str(home), "ingest"]
            + [str(REPO / "collections_data" / f) for f in FOLDERS],
            check=True,
            capture_output=True,
        )
        started: list[subprocess.Popen] = []
        try:
            single, single_base = serve_archive(home, workers=2, args=["--no-access-log"])
            started.append(single)
            node_ports = [free_port(), free_port()]
            nodes = []
            for port in node_ports:
                proc = start_node(home, port)
                started.append(proc)
                nodes.append(proc)
            lb = start_nginx(root / "nginx", [f"127.0.0.1:{p}" for p in node_ports], free_port())
            started.append(lb.proc)
            tiles, manifests = paths_of(single_base)
            direct = Server("one node", single, single_base)
            for name, paths, unit in (("tiles", tiles, "tiles/s"), ("manifests", manifests, "/s")):
                ours, anchor = [], []
                for _ in range(rounds):  # alternated, so a noisy neighbour falls on both
                    ours.append(wrk(lb, paths, seconds, root))
                    anchor.append(wrk(direct, paths, seconds, root))
                report.add(
                    Row(
                        f"{name} through nginx, 2 nodes × 1 worker",
                        statistics.median(r.rps for r in ours),
                        unit,
                        anchor=statistics.median(r.rps for r in anchor),
                        anchor_name="1 node × 2 workers, direct",
                        target_ratio=0.5,
                        note=f"errors {sum(r.errors for r in ours)}, median of {rounds}",
                    )
                )
            # A node killed a third of the way into a run: no request may fail.
            victim = nodes[1]
            killer = threading.Timer(seconds / 3, lambda: os.kill(victim.pid, signal.SIGKILL))
            killer.start()
            load = wrk(lb, tiles + manifests, seconds, root)
            killer.join()
            victim.wait(timeout=10)
            report.add(
                Row(
                    "failed requests, a node killed with SIGKILL mid-run",
                    load.errors,
                    "requests",
                    higher_is_better=False,
                    target=0,
                    note=f"of {load.requests}",
                )
            )
            time.sleep(1)  # its worker goes with it
            started.append(start_node(home, node_ports[1], access_log=True))
            # Its access log (stdout) grows when nginx hands it a request again.
            access = home.parent / f"node-{node_ports[1]}.log"
            served = access.stat().st_size
            back = time.monotonic()
            rejoined = None
            while time.monotonic() - back < 60:
                get(lb.base + "/api/health")
                if access.stat().st_size > served:
                    rejoined = time.monotonic() - back
                    break
                time.sleep(0.05)
            report.add(
                Row(
                    "node back on its port until nginx sends it requests",
                    rejoined if rejoined is not None else 60.0,
                    "s",
                    higher_is_better=False,
                    target=15,
                )
            )
        finally:
            for proc in reversed(started):
                stop(proc)
    report.print("Load balancer: 2 nodes behind nginx vs 1 node (wrk -t2 -c8)")
    report.save()
    return 0 if report.ok else 1


def start_node(home: Path, port: int, *, access_log: bool = False) -> subprocess.Popen:
    """A node with one worker on ``port``; its access log (if on) in node-<port>.log."""
    log = open(home.parent / f"node-{port}.log", "ab")  # noqa: SIM115 (the node's stdout)
    proc = subprocess.Popen(
        [
            str(BIN / "archive"),
            "--home",
            str(home),
            "serve",
            "--port",
            str(port),
            "--workers",
            "1",
            "--access-log" if access_log else "--no-access-log",
        ],
        stdout=log,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            get(f"http://127.0.0.1:{port}/api/health")
            return proc
        except OSError:
            time.sleep(0.2)
    stop(proc)
    raise RuntimeError(f"node on {port} did not answer")
