"""Object storage failing for real: s3proxy killed (and stopped with SIGSTOP, a server
that accepts connections and never answers), wrong settings at start-up, and an ingest
that loses its bucket half-way. Each test runs its own s3proxy, to kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import pyvips
from s3server import S3Proxy

from archive.config import Config
from archive.context import Archive

BIN = Path(sys.executable).parent
TIMEOUT = 1.5  # storage_timeout for these tests: a hung server costs 2 tries of this


def write_collection(folder: Path, count: int, size: int = 640) -> Path:
    """A small institution folder with ``count`` records of one image each."""
    (folder / "images").mkdir(parents=True)
    rows = ["id,title,images"]
    for n in range(count):
        x = pyvips.Image.xyz(size, size)
        image = ((x[0] * (n + 1) + x[1] * 3) % 256).bandjoin([x[1] % 256, (x[0] + n) % 256])
        image.cast("uchar").copy(interpretation="srgb").write_to_file(
            str(folder / "images" / f"F-{n}.jpg")
        )
        rows.append(f"F-{n},資料 {n},images/F-{n}.jpg")
    (folder / "records.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (folder / "institution.toml").write_text(
        'id = "fault-museum"\nname = { ja = "試験館", en = "Fault Museum" }\n'
        'rights = "http://creativecommons.org/publicdomain/zero/1.0/"\n'
        '[records]\npath = "records.csv"\n'
        '[fields]\nid = "id"\ntitle = "title"\nimages = "images"\n',
        encoding="utf-8",
    )
    return folder


def archive_cmd(home: Path, *args: str, env: dict, timeout: float = 120):
    return subprocess.run(
        [str(BIN / "archive"), "--home", str(home), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=timeout,
    )


def get(url: str, timeout: float = 30):
    """Status, headers (case-insensitive) and seconds taken."""
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            resp.read()
            return resp.status, resp.headers, time.monotonic() - started
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, time.monotonic() - started


@pytest.fixture
def proxy(tmp_path):
    server = S3Proxy(tmp_path / "s3").start()
    try:
        yield server
    finally:
        server.kill()


def setting_env(proxy: S3Proxy, url: str) -> dict:
    return {
        **proxy.env,
        "ARCHIVE_STORAGE_URL": url,
        "ARCHIVE_STORAGE_TIMEOUT": str(TIMEOUT),
        "ARCHIVE_WORKERS": "1",
    }


def one_line_error(result, *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "storage_url" in lines[0] and all(n in lines[0] for n in needles), lines[0]


@pytest.mark.parametrize("command", [["serve", "--port", "1"], ["ingest", "."]])
def test_wrong_storage_at_start_up_is_one_line(tmp_path, s3, command, servers):
    proxy = s3  # the session's server: nothing is killed here
    home = tmp_path / "home"
    bucket = proxy.new_bucket("p")
    cases = [
        ({"ARCHIVE_STORAGE_URL": "ftp://museum/p"}, ("not a storage URL",)),
        ({"ARCHIVE_STORAGE_URL": "s3://no-such-bucket/p"}, ("does not exist",)),
        ({"ARCHIVE_STORAGE_URL": bucket, "AWS_SECRET_ACCESS_KEY": "wrong"}, ("denied",)),
        (
            {
                "ARCHIVE_STORAGE_URL": bucket,
                "AWS_ENDPOINT_URL": f"http://127.0.0.1:{servers.free_port()}",
            },
            ("cannot reach",),
        ),
    ]
    for env, needles in cases:
        started = time.monotonic()
        result = archive_cmd(home, *command, env={**setting_env(proxy, bucket), **env}, timeout=60)
        one_line_error(result, *needles)
        assert time.monotonic() - started < 30


def ingest(home: Path, folder: Path, env: dict) -> tuple[int, dict, str]:
    result = archive_cmd(home, "ingest", "--json", str(folder), env=env, timeout=300)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result.returncode, json.loads(result.stdout), result.stderr


def test_serving_through_s3_killed_and_hung_gives_503s_then_recovers(tmp_path, proxy, servers):
    home = tmp_path / "home"
    url = proxy.new_bucket("museum")
    # No node cache at all (derivatives, blocks in memory): every request needs the store.
    env = {
        **setting_env(proxy, url),
        "ARCHIVE_CACHE_SIZE_MB": "0",
        "ARCHIVE_STORAGE_READ_CACHE_MB": "0",
    }
    code, report, _ = ingest(home, write_collection(tmp_path / "src", 6, 700), env)
    assert code == 0, report
    archive = Archive(Config.load(home, environ={}))
    images = [i.id for r in archive.catalog.records() for i in r.images]
    archive.close()
    proc, base = servers.start_server(home, env=env, workers=1)
    try:
        assert get(f"{base}/iiif/3/{images[0]}/0,0,256,256/256,/0/default.jpg")[0] == 200

        def check_unavailable(image: str) -> None:
            for path in ("info.json", "256,256,256,256/256,/0/default.jpg"):
                if path == "info.json" and image == images[0]:
                    continue  # its structure is cached: info.json needs no storage
                status, headers, seconds = get(f"{base}/iiif/3/{image}/{path}")
                assert status == 503, (image, path, status)
                assert int(headers.get("Retry-After", "0")) > 0
                assert seconds < 4 * TIMEOUT + 5, f"{path} took {seconds:.1f} s"

        proxy.kill()  # connections refused
        check_unavailable(images[0])
        check_unavailable(images[1])
        proxy.start()  # same port, same buckets: back by itself, no restart of ours
        deadline = time.monotonic() + 30
        while get(f"{base}/iiif/3/{images[1]}/info.json")[0] != 200:
            assert time.monotonic() < deadline, "did not recover"
            time.sleep(0.5)
        assert get(f"{base}/iiif/3/{images[1]}/256,256,256,256/256,/0/default.jpg")[0] == 200

        os.killpg(proxy.proc.pid, signal.SIGSTOP)  # accepts, never answers: a hung server
        try:
            check_unavailable(images[2])
        finally:
            os.killpg(proxy.proc.pid, signal.SIGCONT)
        deadline = time.monotonic() + 30
        while get(f"{base}/iiif/3/{images[2]}/info.json")[0] != 200:
            assert time.monotonic() < deadline, "did not recover after the hang"
            time.sleep(0.5)
        assert get(f"{base}/iiif/3/{images[3]}/full/!300,300/0/default.png")[0] == 200
    finally:
        servers.stop_server(proc)
    log = next(home.parent.glob("serve-*.log")).read_text(encoding="utf-8")
    assert "Traceback" not in log and " 500 " not in log


def test_ingest_losing_s3_reports_each_image_and_the_next_run_picks_them_up(
    tmp_path, proxy, monkeypatch
):
    home = tmp_path / "home"
    url = proxy.new_bucket("museum")
    env = setting_env(proxy, url)
    folder = write_collection(tmp_path / "src", 24, 700)
    bucket_dir = proxy.data / url[5:].split("/")[0]
    proc = subprocess.Popen(
        [str(BIN / "archive"), "--home", str(home), "ingest", "--json", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )
    deadline = time.monotonic() + 120
    while not list(bucket_dir.rglob("*.tif")):  # the first pyramid is uploaded
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proxy.kill()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1 and "Traceback" not in err, err[-3000:]
    report = json.loads(out)
    inst = report["institutions"][0]
    assert inst["added"] >= 1 and inst["failed"] >= 1 and inst["added"] + inst["failed"] == 24
    for failure in inst["failures"]:
        assert failure["field"] == "images" and failure["record"].startswith("F-")
        assert "could not store the pyramid" in failure["reason"]
    assert "report kept in the archive home" in report["storage"]
    assert report["path"].startswith(str(home))

    archive = Archive(Config.load(home, environ={}))
    try:
        assert len(list(archive.catalog.records(public_only=False))) == inst["added"]
    finally:
        archive.close()
    status = archive_cmd(home, "status", env=env)  # the bucket is down: status says so
    assert status.returncode == 0 and "Traceback" not in status.stderr
    assert "unreachable" in status.stdout and "record(s) failed" in status.stdout

    proxy.start()
    code, again, _ = ingest(home, folder, env)
    assert code == 0, again
    assert again["institutions"][0]["added"] == inst["failed"]
    assert again["images_tiled"] == inst["failed"], "uploaded pyramids are not tiled again"
    assert again["path"].startswith(url)
    for name, value in proxy.env.items():  # this process's boto3 lists the bucket
        monkeypatch.setenv(name, value)
    archive = Archive(Config.load(home, environ=env))
    try:
        assert {(i, v) for i, v, _ in archive.images.files()} == archive.catalog.image_versions()
        assert len(archive.catalog.image_versions()) == 24
    finally:
        archive.close()
