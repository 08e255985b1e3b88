"""A real OpenSearch node for the cluster tests, started once per session by the
script developers use (search/opensearch/run-node.sh), and stopped at the end."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

NODE_SCRIPT = REPO / "search" / "opensearch" / "run-node.sh"
START_TIMEOUT = 300  # first run downloads ~90 MB from Maven Central


def _port_base() -> str:
    """Where this test process's node looks for an HTTP port: a range of its own per
    xdist worker. The runner gives its node the base + 1 without waiting to bind it, so
    two workers' nodes on one base both took 9251: the second failed to bind and closed,
    its worker used the first's node, and lost it when that worker finished first."""
    if "OPENSEARCH_PORT_BASE" in os.environ:
        return os.environ["OPENSEARCH_PORT_BASE"]
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    number = int(worker[2:]) if worker[2:].isdigit() else 0
    return str(9250 + 10 * (number % 5))


def _ours(url: str, data: Path) -> bool:
    """The node answering at ``url`` keeps its data under ``data`` (not another test
    process's node that holds the port)."""
    with urllib.request.urlopen(url + "/_nodes/_local/settings", timeout=5) as answer:
        nodes = json.load(answer).get("nodes", {})
    return any(
        str(data) in json.dumps(node.get("settings", {}).get("path", {})) for node in nodes.values()
    )


@pytest.fixture(scope="session")
def opensearch_url(tmp_path_factory) -> str:
    """Base URL of a fresh single-node OpenSearch with the kuromoji plugin."""
    data = tmp_path_factory.mktemp("opensearch")
    log_path = Path(data) / "node.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed in the finalizer below
    proc = subprocess.Popen(
        ["bash", str(NODE_SCRIPT), str(data / "node")],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "OPENSEARCH_PORT_BASE": _port_base()},
    )
    url = None
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while time.monotonic() < deadline and url is None:
            if proc.poll() is not None:
                raise RuntimeError(f"OpenSearch node exited:\n{log_path.read_text()[-3000:]}")
            match = re.search(r"HTTP Port:\s+(\d+)", log_path.read_text())
            if match:
                candidate = f"http://127.0.0.1:{match.group(1)}"
                try:
                    with urllib.request.urlopen(candidate + "/_cluster/health", timeout=2):
                        ours = _ours(candidate, data)
                except OSError:  # not up yet: asked again
                    ours = None
                if ours is False:
                    raise RuntimeError(
                        f"{candidate} is another process's OpenSearch node (this one's"
                        f" data is {data}):\n{log_path.read_text()[-3000:]}"
                    )
                if ours:
                    url = candidate
            time.sleep(0.5)
        if url is None:
            raise RuntimeError(
                f"OpenSearch did not start in {START_TIMEOUT} s:\n{log_path.read_text()[-3000:]}"
            )
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:  # it exited by itself (the error above says why)
            pass
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
