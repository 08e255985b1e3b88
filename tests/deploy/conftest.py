"""nginx from Debian in front of `archive serve` nodes, with the repository's own
configuration (deploy/nginx/archive.conf), filled in only with node addresses and the
listen port, and run in the foreground from a temporary prefix."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NGINX_CONF = REPO / "deploy" / "nginx" / "archive.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

# The main configuration a machine's nginx.conf would hold; the tests' own. Everything
# nginx writes goes under the temporary prefix.
MAIN_CONF = """\
daemon off;
master_process on;
worker_processes 1;
{user}
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/archive.conf;
}}
"""


def render_config(template: str, nodes: list[str], listen: str) -> str:
    """archive.conf for these nodes, as the sed command in its header does it: every
    @LISTEN@ replaced, the ``server @NODE@`` line once per node."""
    if not nodes:
        raise ValueError("nginx needs at least one node")
    out = []
    for line in template.splitlines():
        if line.lstrip().startswith("server @NODE@"):
            out.extend(line.replace("@NODE@", node) for node in nodes)
        else:
            out.append(line.replace("@LISTEN@", listen))
    left = [line for line in out if "@" in line and not line.lstrip().startswith("#")]
    assert not left, f"archive.conf has a placeholder left: {left}"
    return "\n".join(out) + "\n"


@dataclass
class Nginx:
    proc: subprocess.Popen
    base: str
    prefix: Path

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finish requests, then exit
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_nginx(prefix: Path, nodes: list[str], port: int) -> Nginx:
    """nginx in the foreground (``daemon off``) on 127.0.0.1:``port``, answering from
    ``nodes`` (host:port each); raises with its error log if it does not come up."""
    if not Path(NGINX).exists():
        pytest.fail(f"{NGINX} is missing: run `make nginx`")
    prefix.mkdir(parents=True, exist_ok=True)
    conf = render_config(NGINX_CONF.read_text(encoding="utf-8"), nodes, f"127.0.0.1:{port}")
    (prefix / "archive.conf").write_text(conf, encoding="utf-8")
    # As root the workers would switch to an unprivileged user that cannot reach the
    # temporary prefix; the tests' nginx keeps the user that starts it.
    user = "user root root;" if os.geteuid() == 0 else ""
    (prefix / "nginx.conf").write_text(MAIN_CONF.format(user=user, prefix=prefix))
    args = [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", "stderr"]
    check = subprocess.run([*args, "-t"], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    with open(prefix / "nginx.stderr", "ab") as err:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err)
    server = Nginx(proc, f"http://127.0.0.1:{port}", prefix)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("nginx exited: " + (prefix / "nginx.stderr").read_text()[-2000:])
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError("nginx did not listen within 20 s")


@pytest.fixture(scope="session")
def nginx_config():
    """(the repository's archive.conf, the function that fills it in), for tests of it."""
    return NGINX_CONF, render_config


@pytest.fixture(scope="session")
def nginx_factory(tmp_path_factory) -> Iterator:
    """``start(nodes, port)`` -> Nginx; every nginx started is stopped at the end."""
    started: list[Nginx] = []

    def start(nodes: list[str], port: int) -> Nginx:
        server = start_nginx(tmp_path_factory.mktemp("nginx"), nodes, port)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
