"""Image API speed: our `archive serve` against IIPImage on the same pyramidal TIFFs.

Anchor: IIPImage (Debian ``iipimage-server``) behind lighttpd with 2 FastCGI
processes, measured in the same run on the same files. Load: ``wrk`` with 2
threads and 8 connections, requesting tiles at random from the full set a
deep-zoom viewer asks for on a 6000×4000 image (256-pixel tiles at every scale
factor), then the same mix spread over 1,000 images, then info.json.

"cold" means our derivative cache is off (``cache_size_mb = 0``): every tile is
cut from the pyramid. "cached" means the disk cache is on and every tile was
requested once before the run. IIPImage runs with its defaults (its own
in-memory tile cache). Neither server writes an access log (lighttpd has none
configured; ours runs with ``--no-access-log``). The servers run side by side and
each scenario alternates them for ``--rounds`` runs, reporting the median, so
load from elsewhere on a shared machine falls on both. The 1,000 images are hard
links of one pyramid under 1,000 names and ids, so per-image state (catalog
lookup, file handles, TIFF directory) is exercised, not the disk.

Object storage: the same run also serves the one-image tile mix from an S3-backed
node (``storage_url = s3://...``) over a real s3proxy (tools/s3proxy/run-s3proxy.sh,
filesystem backend, default JVM) on the same machine, "cold" (no derivative cache:
tiles read in 64 KiB blocks, one ranged GET per run of missing ones, kept in a bounded
block cache per worker; the structure read once per node) and "cached" (every tile
requested once before: served from the node's disk cache), and cold over the 1,000
images, whose objects are hard links of one in s3proxy's filesystem backend (as the
local ones are): there the block caches hold a few of them, so nearly every tile is a
GET. s3proxy shares the machine's cores with the servers and wrk, as a local S3
gateway would.

Needs the Debian packages iipimage-server, lighttpd and wrk: installed here with
apt-get when missing (never by the tests), and Maven for s3proxy.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    PeakRSS,
    Report,
    Row,
    free_port,
    mib,
    parser,
    scratch,
    serve_archive,
    wait_until_up,
)

IIPSRV = "/usr/lib/iipimage-server/iipsrv.fcgi"
S3PROXY = Path(__file__).resolve().parents[1] / "tools" / "s3proxy" / "run-s3proxy.sh"
S3_KEYS = {"AWS_ACCESS_KEY_ID": "local-identity", "AWS_SECRET_ACCESS_KEY": "local-credential"}
PACKAGES = {"wrk": "wrk", "lighttpd": "lighttpd", IIPSRV: "iipimage-server"}
WIDTH, HEIGHT, TILE = 6000, 4000, 256
MANY = 1000
BIN = Path(sys.executable).parent

WRK_SCRIPT = """
local paths = {}
init = function(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  math.randomseed(os.time() * 1000 + math.floor(os.clock() * 1e6))
end
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
"""


# -- setup ------------------------------------------------------------------------------------
def ensure_packages() -> None:
    missing = [
        pkg for exe, pkg in PACKAGES.items() if not (shutil.which(exe) or Path(exe).exists())
    ]
    if not missing:
        return
    print(f"installing {' '.join(missing)} with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", *missing],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def test_image(width: int, height: int):
    """A deterministic photo-like image: smooth gradients with texture (JPEG-realistic)."""
    import pyvips

    xyz = pyvips.Image.xyz(width, height)
    x, y = xyz[0], xyz[1]
    texture = pyvips.Image.gaussnoise(width, height, sigma=30, mean=0, seed=7).gaussblur(1.2)
    r = x * (200 / width) + 30 + texture
    g = y * (180 / height) + 40 + texture * 0.8
    b = (x + y) * (150 / (width + height)) + 60 - texture * 0.5
    return r.bandjoin([g, b]).cast("uchar").copy(interpretation="srgb")


def build_archive(root: Path, quick: bool) -> tuple[Path, list[str], Path, list[str]]:
    """An archive home holding the image under 1 + MANY ids, and IIPImage's flat folder."""
    from archive.config import Config
    from archive.context import Archive
    from archive.records import ImageRef, Institution, Record, image_id, record_id
    from ingest.tiling import write_pyramid

    home, iip = root / "home", root / "iip"
    iip.mkdir(parents=True)
    archive = Archive(Config.load(home, environ={}))
    rights = "http://creativecommons.org/publicdomain/zero/1.0/"
    archive.catalog.put_institution(Institution("bench", {"ja": "試験", "en": "Bench"}, rights))
    source = root / "pyramid.tif"
    write_pyramid(test_image(WIDTH, HEIGHT), source, tile_size=TILE)
    ids, names = [], []
    count = 1 + (100 if quick else MANY)
    with archive.catalog.transaction():
        for n in range(count):
            local = f"B-{n:04d}"
            rec = record_id("bench", local)
            img = image_id(rec, f"images/{local}.tif")
            final = archive.images.path(img, "v1")
            final.parent.mkdir(parents=True, exist_ok=True)
            os.link(source, final)
            name = f"img{n:04d}.tif"
            os.link(source, iip / name)
            archive.catalog.put_record(
                Record(
                    id=rec,
                    institution="bench",
                    local_id=local,
                    fields={"id": local, "title": local},
                    rights=rights,
                    images=[
                        ImageRef(
                            img, f"images/{local}.tif", width=WIDTH, height=HEIGHT, version="v1"
                        )
                    ],
                )
            )
            ids.append(img)
            names.append(name)
    archive.close()
    return home, ids, iip, names


def viewer_tiles(width: int, height: int, tile: int = TILE) -> list[str]:
    """Every region/size a deep-zoom viewer asks for: 256-px tiles at every scale factor."""
    out = []
    sf = 1
    while True:
        span = tile * sf
        for y in range(0, height, span):
            for x in range(0, width, span):
                w, h = min(span, width - x), min(span, height - y)
                out.append(f"{x},{y},{w},{h}/{math.ceil(w / sf)},/0/default.jpg")
        if math.ceil(width / sf) <= tile and math.ceil(height / sf) <= tile:
            return out
        sf *= 2


# -- servers ----------------------------------------------------------------------------------
@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    base: str

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_ours(home: Path, probe: str, *, cache_mb: int, metrics: bool = False) -> Server:
    env = {"ARCHIVE_CACHE_SIZE_MB": str(cache_mb)}
    if metrics:  # every request counted and timed, as with /metrics behind a token
        env["ARCHIVE_METRICS_TOKEN"] = "bench"
    proc, base = serve_archive(home, probe=probe, env=env, args=["--no-access-log"], seconds=60)
    name = f"archive serve (cache {'on' if cache_mb else 'off'}{', metrics' if metrics else ''})"
    return Server(name, proc, base)


def start_iipimage(root: Path, iip: Path) -> Server:
    port = free_port()
    conf = root / "lighttpd.conf"
    conf.write_text(
        f"""
server.modules = ("mod_fastcgi")
server.document-root = "{root}"
server.bind = "127.0.0.1"
server.port = {port}
server.errorlog = "{root}/lighttpd-error.log"
server.max-connections = 1024
fastcgi.server = ( "/fcgi-bin/iipsrv.fcgi" => ((
    "socket" => "{root}/iipsrv.sock",
    "bin-path" => "{IIPSRV}",
    "max-procs" => 2,
    "check-local" => "disable",
    "bin-environment" => (
        "FILESYSTEM_PREFIX" => "{iip}/",
        "LOGFILE" => "{root}/iipsrv.log",
        "VERBOSITY" => "0"
    )
)))
""",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        ["lighttpd", "-D", "-f", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    server = Server("IIPImage (lighttpd, 2 FastCGI)", proc, base)
    try:
        wait_until_up(base + "/fcgi-bin/iipsrv.fcgi?IIIF=img0000.tif/info.json", proc)
    except Exception:
        server.stop()
        raise
    return server


def start_s3proxy(root: Path) -> Server:
    port = free_port()
    proc = subprocess.Popen(
        ["bash", str(S3PROXY), str(root / "s3-buckets")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "S3PROXY_PORT": str(port), "S3PROXY_JAVA_OPTS": "-Xmx512m"},
        start_new_session=True,
    )
    server = Server("s3proxy", proc, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 300  # the first run fetches the jar from Maven Central
    while True:
        try:
            urllib.request.urlopen(server.base + "/", timeout=2).close()
            break
        except urllib.error.HTTPError:
            break  # 403 to an anonymous request: up
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError("s3proxy did not start") from None
            time.sleep(0.3)
    return server


def s3_env(s3: Server, url: str) -> dict[str, str]:
    return {
        **S3_KEYS,
        "AWS_ENDPOINT_URL": s3.base,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "ARCHIVE_STORAGE_URL": url,
    }


def build_s3_archive(root: Path, home: Path, ids: list[str], s3: Server) -> tuple[Path, dict]:
    """The benchmark archive's catalog over a bucket holding its pyramids: the first
    uploaded through the store, the others hard links of it in s3proxy's filesystem
    backend (as the local archive's are), which serves them as objects like any other."""
    import boto3

    from archive.config import Config
    from archive.context import Archive

    env = s3_env(s3, "s3://bench/pyramids")
    boto3.session.Session(
        aws_access_key_id=S3_KEYS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_KEYS["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    ).client("s3", endpoint_url=s3.base).create_bucket(Bucket="bench")
    s3_home = root / "s3-home"
    s3_home.mkdir()
    shutil.copy(home / "catalog.sqlite", s3_home / "catalog.sqlite")
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        archive = Archive(Config.load(s3_home))
        temp = archive.images.temp_path()
        shutil.copy(root / "pyramid.tif", temp)
        archive.images.commit(temp, ids[0], "v1")
        bucket = root / "s3-buckets" / "bench"
        first = bucket / archive.images.key(ids[0], "v1")
        for image in ids[1:]:
            final = bucket / archive.images.key(image, "v1")
            final.parent.mkdir(parents=True, exist_ok=True)
            os.link(first, final)
        archive.close()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return s3_home, env


def start_ours_s3(home: Path, probe: str, env: dict, *, cache_mb: int) -> Server:
    proc, base = serve_archive(
        home,
        probe=probe,
        env={**env, "ARCHIVE_CACHE_SIZE_MB": str(cache_mb)},
        args=["--no-access-log"],
        seconds=60,
    )
    return Server(f"archive serve on S3 (cache {'on' if cache_mb else 'off'})", proc, base)


# -- load -------------------------------------------------------------------------------------
@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    bytes_per_request: float
    errors: int
    requests: int
    peak_rss: int
    peak_pss: int


_UNITS_TIME = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}
_UNITS_SIZE = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * _UNITS_TIME[m.group(2)]


def wrk(server: Server, paths: list[str], seconds: int, scratch_dir: Path) -> Load:
    """``wrk -t2 -c8`` on random paths; raises when the output cannot be read."""
    listing = scratch_dir / f"paths-{abs(hash((server.base, len(paths))))}.txt"
    listing.write_text("\n".join(paths) + "\n", encoding="utf-8")
    script = scratch_dir / "random.lua"
    script.write_text(WRK_SCRIPT, encoding="utf-8")
    cmd = [
        "wrk",
        "-t2",
        "-c8",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(script),
        server.base,
        "--",
        str(listing),
    ]
    with PeakRSS(server.proc.pid, proportional=True) as mem:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    m = re.search(r"(\d+) requests in [\d.]+\w+, ([\d.]+)(B|KB|MB|GB|TB) read", out)
    requests = int(m.group(1))
    read = float(m.group(2)) * _UNITS_SIZE[m.group(3)]
    errors = 0
    if e := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(e.group(1))
    if e := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(g) for g in e.groups())
    return Load(rps, p50, p99, read / max(requests, 1), errors, requests, mem.peak, mem.peak_pss)


def warm(server: Server, paths: list[str]) -> None:
    """Request every path once (fills our disk cache)."""
    for path in paths:
        with urllib.request.urlopen(server.base + path, timeout=30) as resp:
            resp.read()


def check_correct(server: Server, image_path: str) -> None:
    """After load: the server still answers a tile and an info.json correctly."""
    import pyvips

    with urllib.request.urlopen(
        f"{server.base}{image_path}/0,0,256,256/256,/0/default.jpg", timeout=10
    ) as resp:
        tile = pyvips.Image.new_from_buffer(resp.read(), "")
    assert (tile.width, tile.height) == (256, 256), "wrong tile after load"
    with urllib.request.urlopen(f"{server.base}{image_path}/info.json", timeout=10) as resp:
        assert b'"width":6000' in resp.read().replace(b" ", b""), "wrong info.json after load"


# -- the benchmark ----------------------------------------------------------------------------
def main(args: list[str]) -> int:
    p = parser("image", __doc__)
    p.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    p.add_argument("--soak", type=int, default=60, help="length of the no-errors run")
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="alternating runs per scenario; the median is reported",
    )
    p.add_argument(
        "--metrics-only",
        action="store_true",
        help="only the cost of /metrics instrumentation: cached tiles/s with and without it",
    )
    opts = p.parse_args(args)
    if opts.metrics_only:
        return metrics_cost(opts)
    seconds = 5 if opts.quick else opts.seconds
    soak = 10 if opts.quick else opts.soak
    rounds = 1 if opts.quick else opts.rounds
    ensure_packages()
    report = Report(
        "image",
        params={
            "seconds": seconds,
            "soak": soak,
            "rounds": rounds,
            "image": [WIDTH, HEIGHT],
            "tile": TILE,
            "wrk": "-t2 -c8",
            "images": MANY,
        },
    )
    with scratch("image") as root:
        print("building the pyramid and the archive...", flush=True)
        home, ids, iip_dir, names = build_archive(root, opts.quick)
        tiles = viewer_tiles(WIDTH, HEIGHT)
        print(f"{len(tiles)} viewer tiles per image, {len(ids) - 1} extra images", flush=True)
        ours_one = [f"/iiif/3/{ids[0]}/{t}" for t in tiles]
        iip_one = [f"/fcgi-bin/iipsrv.fcgi?IIIF={names[0]}/{t}" for t in tiles]
        ours_many = [f"/iiif/3/{i}/{t}" for i in ids[1:] for t in tiles]
        iip_many = [f"/fcgi-bin/iipsrv.fcgi?IIIF={n}/{t}" for n in names[1:] for t in tiles]
        ours_info = [f"/iiif/3/{i}/info.json" for i in ids]
        iip_info = [f"/fcgi-bin/iipsrv.fcgi?IIIF={n}/info.json" for n in names]

        results: dict[str, Load] = {}

        def measure(key: str, server: Server, paths: list[str], length: int) -> Load:
            load = wrk(server, paths, length, root)
            print(
                f"  {key}: {load.rps:,.0f} req/s, p50 {load.p50_ms:.2f} ms, "
                f"p99 {load.p99_ms:.2f} ms, {load.bytes_per_request / 1024:.1f} KiB/req, "
                f"errors {load.errors}, peak RSS {mib(load.peak_rss):.0f} MiB, "
                f"PSS {mib(load.peak_pss):.0f} MiB",
                flush=True,
            )
            return load

        def median_of(key: str, loads: list[Load]) -> None:
            loads = sorted(loads, key=lambda load: load.rps)
            results[key] = loads[len(loads) // 2]

        # All three servers up at once; each scenario alternates them round by round, so a
        # noisy neighbour on this shared machine weighs on both sides alike.
        probe = f"/iiif/3/{ids[0]}/info.json"
        servers = []
        try:
            iip = start_iipimage(root, iip_dir)
            servers.append(iip)
            cold = start_ours(home, probe, cache_mb=0)
            servers.append(cold)
            cached = start_ours(home, probe, cache_mb=2048)
            servers.append(cached)
            warm(cached, ours_one)
            print("starting s3proxy and the S3-backed servers...", flush=True)
            s3 = start_s3proxy(root)
            servers.append(s3)
            s3_home, env = build_s3_archive(root, home, ids, s3)
            s3_cold = start_ours_s3(s3_home, probe, env, cache_mb=0)
            servers.append(s3_cold)
            s3_cached = start_ours_s3(s3_home, probe, env, cache_mb=2048)
            servers.append(s3_cached)
            warm(s3_cached, ours_one)
            warm(s3_cold, ours_one[:200])  # JIT-compile s3proxy; our cold node caches nothing
            metered = start_ours(home, probe, cache_mb=2048, metrics=True)
            servers.append(metered)
            scenarios = [
                (
                    "tiles",
                    [
                        ("iip tiles", iip, iip_one),
                        ("ours tiles cold", cold, ours_one),
                        ("ours tiles cached", cached, ours_one),
                        ("s3 tiles cold", s3_cold, ours_one),
                        ("s3 tiles cached", s3_cached, ours_one),
                    ],
                ),
                (
                    "tiles x1000",
                    [
                        ("iip tiles x1000", iip, iip_many),
                        ("ours tiles x1000 cold", cold, ours_many),
                        ("s3 tiles x1000 cold", s3_cold, ours_many),
                    ],
                ),
                ("info.json", [("iip info", iip, iip_info), ("ours info", cold, ours_info)]),
                (
                    "metrics",
                    [
                        ("ours tiles cached, metrics off", cached, ours_one),
                        ("ours tiles cached, metrics on", metered, ours_one),
                    ],
                ),
            ]
            for title, runs in scenarios:
                print(f"{title}: {rounds} rounds of {seconds} s each, alternating", flush=True)
                collected: dict[str, list[Load]] = {key: [] for key, _, _ in runs}
                for _ in range(rounds):
                    for key, server, paths in runs:
                        collected[key].append(measure(key, server, paths, seconds))
                for key, loads in collected.items():
                    median_of(key, loads)
            print(
                f"soak: {soak} s of the tile mix (one image and many) on the cold server",
                flush=True,
            )
            soak_load = measure("ours soak", cold, ours_one + ours_many[: len(ours_one) * 4], soak)
            check_correct(cold, f"/iiif/3/{ids[0]}")
            check_correct(s3_cold, f"/iiif/3/{ids[0]}")
        finally:
            for server in servers:
                server.stop()

    iip_t, iip_many_t, iip_i = results["iip tiles"], results["iip tiles x1000"], results["iip info"]
    rows = [
        Row(
            "tiles/s, no warm cache",
            results["ours tiles cold"].rps,
            "req/s",
            iip_t.rps,
            "IIPImage tiles/s",
            target_ratio=1.0,
        ),
        Row(
            "tiles/s, cached",
            results["ours tiles cached"].rps,
            "req/s",
            iip_t.rps,
            "IIPImage tiles/s",
            target_ratio=2.0,
        ),
        Row(
            "tiles/s from S3, no warm cache",
            results["s3 tiles cold"].rps,
            "req/s",
            iip_t.rps,
            "IIPImage tiles/s",
            target_ratio=1.0,
            note="no derivative cache; blocks read (64 KiB, one GET per run of missing "
            "ones) kept in memory, 32 MiB per worker: this 5 MB pyramid stays there once "
            "read; s3proxy shares the 2 cores",
        ),
        Row(
            "tiles/s from S3 over 1,000 images, no warm cache",
            results["s3 tiles x1000 cold"].rps,
            "req/s",
            iip_many_t.rps,
            "IIPImage, 1,000 images",
            note="random tiles of 1,000 pyramids (5 GB; 100 with --quick) through 2 x 32 "
            "MiB of blocks: nearly every tile a GET to s3proxy, and each image's structure "
            "(~4 GETs) read once per node; no target (the issue sets one on the one-image mix)",
        ),
        Row(
            "tiles/s from S3, cached",
            results["s3 tiles cached"].rps,
            "req/s",
            iip_t.rps,
            "IIPImage tiles/s",
            target_ratio=2.0,
        ),
        Row(
            "tiles/s from S3 over local disk, no warm cache",
            results["s3 tiles cold"].rps,
            "req/s",
            results["ours tiles cold"].rps,
            "ours, local disk",
        ),
        Row(
            "tile p99 latency from S3, no warm cache",
            results["s3 tiles cold"].p99_ms,
            "ms",
            iip_t.p99_ms,
            "IIPImage p99",
            higher_is_better=False,
        ),
        Row(
            "tiles/s over 1,000 images, no warm cache",
            results["ours tiles x1000 cold"].rps,
            "req/s",
            iip_many_t.rps,
            "IIPImage, 1,000 images",
        ),
        Row(
            "info.json/s",
            results["ours info"].rps,
            "req/s",
            iip_i.rps,
            "IIPImage info.json/s",
            target=2000,
        ),
        Row(
            "tile p50 latency, no warm cache",
            results["ours tiles cold"].p50_ms,
            "ms",
            iip_t.p50_ms,
            "IIPImage p50",
            higher_is_better=False,
        ),
        Row(
            "tile p99 latency, no warm cache",
            results["ours tiles cold"].p99_ms,
            "ms",
            iip_t.p99_ms,
            "IIPImage p99",
            higher_is_better=False,
        ),
        Row(
            "tile p50 latency, cached",
            results["ours tiles cached"].p50_ms,
            "ms",
            iip_t.p50_ms,
            "IIPImage p50",
            higher_is_better=False,
        ),
        Row(
            "tile p99 latency, cached",
            results["ours tiles cached"].p99_ms,
            "ms",
            iip_t.p99_ms,
            "IIPImage p99",
            higher_is_better=False,
        ),
        Row(
            "bytes per tile",
            results["ours tiles cold"].bytes_per_request / 1024,
            "KiB",
            iip_t.bytes_per_request / 1024,
            "IIPImage bytes per tile",
            higher_is_better=False,
            note="ours copies the pyramid's tiles as stored (JPEG at the jpeg_quality "
            "setting, 85 by default, YCbCr 4:2:0); IIPImage re-encodes at Q75",
        ),
        Row(
            "tiles/s cached over tiles/s cold (ours)",
            results["ours tiles cached"].rps,
            "req/s",
            results["ours tiles cold"].rps,
            "ours, no warm cache",
        ),
        Row(
            "server memory (peak RSS, all processes)",
            mib(results["ours tiles x1000 cold"].peak_rss),
            "MiB",
            mib(iip_many_t.peak_rss),
            "IIPImage + lighttpd",
            higher_is_better=False,
            note="RSS counts the pages forked workers share with their parent once per "
            "process; PSS divides them among the sharers",
        ),
        Row(
            "server memory (peak PSS, all processes)",
            mib(results["ours tiles x1000 cold"].peak_pss),
            "MiB",
            mib(iip_many_t.peak_pss),
            "IIPImage + lighttpd",
            higher_is_better=False,
        ),
        Row(
            "S3 node memory, one image (peak RSS, all processes)",
            mib(results["s3 tiles cold"].peak_rss),
            "MiB",
            mib(results["ours tiles cold"].peak_rss),
            "local-disk node, same load",
            higher_is_better=False,
        ),
        Row(
            "S3 node memory, one image (peak PSS, all processes)",
            mib(results["s3 tiles cold"].peak_pss),
            "MiB",
            mib(results["ours tiles cold"].peak_pss),
            "local-disk node, same load",
            higher_is_better=False,
        ),
        Row(
            "S3 node memory, 1,000 images (peak RSS, all processes)",
            mib(results["s3 tiles x1000 cold"].peak_rss),
            "MiB",
            mib(results["ours tiles x1000 cold"].peak_rss),
            "local-disk node, same load",
            higher_is_better=False,
            note="the block caches full (storage_read_cache_mb = 32 per worker)",
        ),
        Row(
            "S3 node memory, 1,000 images (peak PSS, all processes)",
            mib(results["s3 tiles x1000 cold"].peak_pss),
            "MiB",
            mib(results["ours tiles x1000 cold"].peak_pss),
            "local-disk node, same load",
            higher_is_better=False,
        ),
        metrics_row(results),
        Row(
            f"errors in {soak} s of load",
            soak_load.errors,
            "responses",
            None,
            "",
            higher_is_better=False,
            target=0,
            note=f"{soak_load.requests:,} requests; tile and info.json checked after",
        ),
    ]
    report.rows.extend(rows)
    report.print("IIIF Image API: archive serve vs IIPImage (wrk -t2 -c8, random viewer tiles)")
    report.save()
    return 0 if report.ok else 1


def metrics_row(results: dict[str, Load]) -> Row:
    return Row(
        "tiles/s cached, /metrics instrumentation on",
        results["ours tiles cached, metrics on"].rps,
        "req/s",
        results["ours tiles cached, metrics off"].rps,
        "the same server without it",
        target_ratio=0.95,
        note="prometheus_client multiprocess mode: every request counted by route and "
        "status and timed; servers alternated round by round, median of the rounds",
    )


def in_process_tile_cost(home: Path, path: str) -> tuple[float, float]:
    """Microseconds per stored tile through the whole WSGI app, without and with metrics."""
    import time

    from archive.config import Config
    from web import create_app

    apps = [
        create_app(Config.load(home, environ={})),
        create_app(Config.load(home, environ={"ARCHIVE_METRICS_TOKEN": "bench"})),
    ]
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "wsgi.url_scheme": "http",
        "HTTP_HOST": "127.0.0.1",
    }

    def block(app, n: int = 300) -> float:
        call = app.wsgi_app
        started = time.perf_counter()
        for _ in range(n):
            body = call(dict(environ), lambda *a: None)
            for _chunk in body:
                pass
        return (time.perf_counter() - started) / n * 1e6

    best = [min(block(app) for _ in range(3)) for app in apps]  # warm up
    for _ in range(80):
        best = [min(b, block(app)) for b, app in zip(best, apps, strict=True)]
    for app in apps:
        app.extensions["archive"].close()
    return best[0], best[1]


def observer_cost(rounds: int = 15, number: int = 20_000) -> tuple[float, float]:
    """Microseconds per request of a bare WSGI app answering like a stored tile, without
    and with the metrics middleware (``web.metrics.Observer``) around it: the
    instrumentation's own share, free of the tile's I/O (fastest of ``rounds``)."""
    import timeit

    from web.metrics import Observer

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "image/jpeg"), ("Content-Length", "9")])
        environ["archive.route"] = "tile"
        return [b"\xff\xd8tile\xff\xd9"]

    observed = Observer(app, None, metrics=True, log_access=False)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/iiif/3/x/0,0,256,256/256,/0/default.jpg"}

    def ignore(*_args):
        return None

    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        for i, call in enumerate((app, observed)):
            took = timeit.timeit(lambda call=call: call(dict(environ), ignore), number=number)
            best[i] = min(best[i], took / number * 1e6)
    return best[0], best[1]


def metrics_cost(opts) -> int:
    """The /metrics cost alone: two cached servers on the same archive, alternated."""
    ensure_packages()
    seconds = 5 if opts.quick else opts.seconds
    rounds = 1 if opts.quick else max(opts.rounds, 3)
    report = Report(
        "image-metrics", params={"seconds": seconds, "rounds": rounds, "wrk": "-t2 -c8"}
    )
    with scratch("image") as root:
        print("building the pyramid and the archive...", flush=True)
        home, ids, _, _ = build_archive(root, True)
        paths = [f"/iiif/3/{ids[0]}/{t}" for t in viewer_tiles(WIDTH, HEIGHT)]
        probe = f"/iiif/3/{ids[0]}/info.json"
        servers: list[Server] = []
        loads: dict[str, list[Load]] = {
            "ours tiles cached, metrics off": [],
            "ours tiles cached, metrics on": [],
        }
        try:
            plain = start_ours(home, probe, cache_mb=2048)
            servers.append(plain)
            metered = start_ours(home, probe, cache_mb=2048, metrics=True)
            servers.append(metered)
            warm(plain, paths)
            for n in range(rounds):
                # Alternate which goes first, so neither always runs on a warmer machine.
                order = [("off", plain), ("on", metered)]
                for name, server in order if n % 2 == 0 else order[::-1]:
                    load = wrk(server, paths, seconds, root)
                    print(f"  metrics {name}: {load.rps:,.0f} req/s", flush=True)
                    loads[f"ours tiles cached, metrics {name}"].append(load)
        finally:
            for server in servers:
                server.stop()
        plain_us, metered_us = in_process_tile_cost(home, paths[0])
    results = {k: sorted(v, key=lambda load: load.rps)[len(v) // 2] for k, v in loads.items()}
    report.rows.append(metrics_row(results))
    report.rows.append(
        Row(
            "Python time per stored tile, instrumentation on (in-process)",
            metered_us,
            "us",
            plain_us,
            "the same app without it",
            higher_is_better=False,
            note="the app called directly, 300-call blocks alternated 80 times, fastest "
            "block of each: what instrumentation adds to a tile without HTTP's share",
        )
    )
    bare_us, observed_us = observer_cost()
    report.rows.append(
        Row(
            "the metrics middleware alone, per request",
            observed_us,
            "us",
            bare_us,
            "a bare WSGI app answering a tile",
            higher_is_better=False,
            note="timeit, fastest of 15 rounds of 20,000 calls: per-thread tallies, added "
            "to prometheus_client once a second",
        )
    )
    report.print("/metrics instrumentation cost on cached tiles (wrk -t2 -c8)")
    report.save()
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
