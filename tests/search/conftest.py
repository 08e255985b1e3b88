"""A real OpenSearch node for the cluster tests, started once per session by the
script developers use (search/opensearch/run-node.sh), and stopped at the end."""

from __future__ import annotations

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
        env={**os.environ, "OPENSEARCH_PORT_BASE": os.environ.get("OPENSEARCH_PORT_BASE", "9250")},
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
                        url = candidate
                except OSError:
                    pass
            time.sleep(0.5)
        if url is None:
            raise RuntimeError(
                f"OpenSearch did not start in {START_TIMEOUT} s:\n{log_path.read_text()[-3000:]}"
            )
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
