"""A real S3 server for the tests: s3proxy with its filesystem backend, started by the
script developers use (tools/s3proxy/run-s3proxy.sh). The session's server is the
``s3`` fixture in tests/conftest.py; fault tests start their own, to kill."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tools" / "s3proxy" / "run-s3proxy.sh"
IDENTITY, CREDENTIAL = "local-identity", "local-credential"
# For tests a quick start matters more than peak speed (benchmarks pass "" instead).
QUICK_START = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xmx256m"
START_TIMEOUT = 240  # the first run fetches the jar (~40 MB) from Maven Central


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class S3Proxy:
    """One s3proxy process on 127.0.0.1; ``kill`` and ``start`` again keep port and data."""

    def __init__(self, root: Path, java_opts: str = QUICK_START) -> None:
        self.java_opts = java_opts
        self.root = Path(root)
        self.data = self.root / "buckets"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log_path = self.root / "s3proxy.log"

    @property
    def env(self) -> dict[str, str]:
        """The standard AWS settings that point boto3 (and the archive) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": IDENTITY,
            "AWS_SECRET_ACCESS_KEY": CREDENTIAL,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }

    def start(self) -> S3Proxy:
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child holds it; closed below
        try:
            self.proc = subprocess.Popen(
                ["bash", str(SCRIPT), str(self.data)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={
                    **os.environ,
                    "S3PROXY_PORT": str(self.port),
                    "S3PROXY_JAVA_OPTS": self.java_opts,
                },
            )
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"s3proxy exited:\n{self.log_path.read_text()[-3000:]}")
            if self.answers():
                return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"s3proxy did not start:\n{self.log_path.read_text()[-3000:]}")

    def answers(self) -> bool:
        try:
            urllib.request.urlopen(self.url + "/", timeout=2).close()
        except urllib.error.HTTPError:
            return True  # 403 to an anonymous request: it is up
        except OSError:
            return False
        return True

    def kill(self) -> None:
        """SIGKILL, as a crash would: the port stops answering at once."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def client(self):
        import boto3

        env = self.env
        return boto3.session.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_DEFAULT_REGION"],
        ).client("s3", endpoint_url=self.url)

    def new_bucket(self, prefix: str = "pyramids") -> str:
        """A fresh, empty bucket; returns its storage_url."""
        name = f"t-{uuid.uuid4().hex[:20]}"
        self.client().create_bucket(Bucket=name)
        return f"s3://{name}/{prefix}" if prefix else f"s3://{name}"
