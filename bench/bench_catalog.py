"""The PostgreSQL catalog beside the embedded SQLite one, measured in the same run.

Issue 11's targets, on the synthetic archive (`archive generate`, tiny images):

- ingest of the whole archive with ``catalog_url = postgresql://...``: at most 1.5x
  the same ingest on SQLite (anchor), same files, same workers;
- manifest, object page and ``/api/search`` p95 from a real ``archive serve`` over
  PostgreSQL: under 50 ms each, beside the same requests on the SQLite server;
- the time from a commit in another process to its visibility in the running server
  over PostgreSQL, for a record (read per request) and for an image hidden (the
  per-thread source cache, dropped when ``generation()`` moves): under 5 s.

The server is Debian's PostgreSQL started for the run (tests/pg_server.py), with
fsync off (a scratch server: the figures are the catalog's, not the disk's).
``--quick`` ingests 2,000 records; the default is 100,000 (two full ingests).

Both sides run with ``search_vectors = false`` (``--vectors`` turns it on): embedding a
record costs the same whichever catalog it goes to (about 180 ms of CPU here, hours at
100,000), so it would only bury the catalog's share; search is text-only on both.
"""

from __future__ import annotations

import os
import random
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from bench.common import REPO, Report, Row, parser, percentile, run, scratch, serve_archive, stop

ARCHIVE = str(Path(sys.executable).parent / "archive")
VECTORS_NOTE = {
    False: "search_vectors = false on both sides: embedding, the same for both, not measured",
    True: "search_vectors = true on both sides: embedding included",
}


def _args(argv: list[str]):
    p = parser("catalog", __doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=100_000, help="records in total")
    p.add_argument("--institutions", type=int, default=20)
    p.add_argument("--requests", type=int, default=300, help="requests per kind and server")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="ingest processes")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--vectors", action="store_true", help="embed records (search_vectors on) on both sides"
    )
    args = p.parse_args(argv)
    if args.quick:
        args.records = min(args.records, 2000)
        args.requests = min(args.requests, 60)
    return args


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as exc:
        exc.read()
        return exc.code


def latencies(bases: dict[str, str], ids: list[str], requests: int, seed: int) -> dict:
    """p95 per (server, kind), requests alternated between the servers one by one."""
    rng = random.Random(seed)
    queries = ["能", "茶碗", "絵巻", "屏風", "kanazawa", "1700", "陶磁", "漆"]
    kinds = {
        "manifest": lambda: f"/iiif/3/manifest/{rng.choice(ids)}",
        "object page": lambda: f"/object/{rng.choice(ids)}",
        "/api/search": lambda: f"/api/search?q={urllib.parse.quote(rng.choice(queries))}",
    }
    times: dict[tuple[str, str], list[float]] = {}
    for kind, make in kinds.items():
        for _ in range(5):  # warm both
            path = make()
            for base in bases.values():
                _get(base + path)
        for _ in range(requests):
            path = make()
            for name, base in bases.items():
                start = time.perf_counter()
                status = _get(base + path)
                times.setdefault((name, kind), []).append(time.perf_counter() - start)
                if status != 200:
                    raise RuntimeError(f"{base}{path} answered {status}")
    return {key: percentile(values, 95) for key, values in times.items()}


def visibility(base: str, catalog, rounds: int = 5) -> tuple[float, float]:
    """Worst seconds from a commit (in this process) to the server showing it: a new
    record on /api/records, and an image hidden on its info.json."""
    from archive.records import Record

    image, rec_id = catalog.public_images()[0]
    _get(f"{base}/iiif/3/{image}/info.json")  # in the server's source cache now
    template = catalog.get_record(rec_id)
    worst_record = worst_image = 0.0
    for n in range(rounds):
        fresh = Record.from_json(template.to_json())
        fresh.local_id = f"VIS-{n}-{time.monotonic_ns()}"
        fresh.id = f"{template.institution}_{fresh.local_id}"
        fresh.images = []
        catalog.put_record(fresh)
        start = time.perf_counter()
        while _get(f"{base}/api/records/{fresh.id}") != 200:
            if time.perf_counter() - start > 60:
                raise RuntimeError("a new record did not show within 60 s")
            time.sleep(0.01)
        worst_record = max(worst_record, time.perf_counter() - start)

        hidden = catalog.get_record(rec_id)
        hidden.public = False
        catalog.put_record(hidden)
        start = time.perf_counter()
        while _get(f"{base}/iiif/3/{image}/info.json") != 404:
            if time.perf_counter() - start > 60:
                raise RuntimeError("a hidden image was still served after 60 s")
            time.sleep(0.01)
        worst_image = max(worst_image, time.perf_counter() - start)
        hidden.public = True
        catalog.put_record(hidden)
        while _get(f"{base}/iiif/3/{image}/info.json") != 200:
            time.sleep(0.01)
    return worst_record, worst_image


def main(argv: list[str]) -> int:
    args = _args(argv)
    sys.path.insert(0, str(REPO / "tests"))
    from pg_server import PostgresServer

    from archive.config import Config
    from archive.context import Archive

    report = Report("catalog", params={k: str(v) for k, v in vars(args).items()})
    with scratch("catalog") as tmp:
        data = tmp / "collections"
        run(
            [
                ARCHIVE,
                "generate",
                str(data),
                "--institutions",
                str(args.institutions),
                "--records",
                str(args.records),
                "--seed",
                str(args.seed),
            ]
        )
        folders = [str(p.parent) for p in sorted(data.glob("*/institution.toml"))]
        server = PostgresServer()
        procs = []
        try:
            server.start()
            url = server.create_database()
            homes = {"SQLite": tmp / "sqlite-home", "PostgreSQL": tmp / "pg-home"}
            vectors = {"ARCHIVE_SEARCH_VECTORS": "true" if args.vectors else "false"}
            envs = {
                "SQLite": {"ARCHIVE_CATALOG_URL": "", **vectors},
                "PostgreSQL": {"ARCHIVE_CATALOG_URL": url, **vectors},
            }
            took = {}
            for name in ("SQLite", "PostgreSQL"):
                print(f"ingesting {args.records} records with the {name} catalog...", flush=True)
                cmd = [ARCHIVE, "--home", str(homes[name]), "ingest"]
                done = run(
                    [*cmd, "--workers", str(args.workers), *folders],
                    env=envs[name],
                    timeout=6 * 3600,
                )
                took[name] = done
            report.add(
                Row(
                    f"ingest {args.records} records, PostgreSQL",
                    took["PostgreSQL"].seconds,
                    "s",
                    anchor=took["SQLite"].seconds,
                    anchor_name="same ingest, SQLite",
                    higher_is_better=False,
                    target_ratio=1.5,
                    note=VECTORS_NOTE[args.vectors],
                )
            )
            report.add(
                Row(
                    "ingest CPU seconds, PostgreSQL",
                    took["PostgreSQL"].cpu_seconds,
                    "s",
                    anchor=took["SQLite"].cpu_seconds,
                    anchor_name="same ingest, SQLite",
                    higher_is_better=False,
                    note="our processes only (the server's CPU is not counted)",
                )
            )
            bases = {}
            for name in ("SQLite", "PostgreSQL"):
                proc, base = serve_archive(homes[name], env=envs[name], args=("--no-access-log",))
                procs.append(proc)
                bases[name] = base
            archive = Archive(Config.load(homes["PostgreSQL"], environ=envs["PostgreSQL"]))
            ids = archive.catalog.record_ids()
            stats = latencies(bases, ids, args.requests, args.seed)
            for kind in ("manifest", "object page", "/api/search"):
                report.add(
                    Row(
                        f"{kind} p95, PostgreSQL",
                        stats[("PostgreSQL", kind)] * 1000,
                        "ms",
                        anchor=stats[("SQLite", kind)] * 1000,
                        anchor_name="same requests, SQLite server",
                        higher_is_better=False,
                        target=50.0,
                    )
                )
            record_s, image_s = visibility(bases["PostgreSQL"], archive.catalog)
            sqlite_archive = Archive(Config.load(homes["SQLite"], environ=envs["SQLite"]))
            anchor_record, anchor_image = visibility(bases["SQLite"], sqlite_archive.catalog)
            sqlite_archive.close()
            archive.close()
            report.add(
                Row(
                    "commit to visible, new record (worst of 5)",
                    record_s,
                    "s",
                    anchor=anchor_record,
                    anchor_name="SQLite server",
                    higher_is_better=False,
                    target=5.0,
                )
            )
            report.add(
                Row(
                    "commit to visible, image hidden (worst of 5)",
                    image_s,
                    "s",
                    anchor=anchor_image,
                    anchor_name="SQLite server",
                    higher_is_better=False,
                    target=5.0,
                    note="generation() polled at most once a second per process",
                )
            )
        finally:
            for proc in procs:
                stop(proc)
            server.destroy()
    report.print(f"catalog ({VECTORS_NOTE[args.vectors]})")
    report.save()
    return 0 if report.ok else 1
