"""Public site speed: server time of the home, search and object pages at 100,000 records.

The archive is the data engineer's synthetic one (``archive generate``: 20
institutions, realistic bilingual metadata, tiny images) ingested with the real
``archive ingest``; or an existing home with ``--home``. Pages are requested
in-process through the real Flask app (routing, language, search, catalog,
templates, headers, gzip: everything but the socket), which is what "server time"
means here. Issue 7's target: p95 under 100 ms for each page type.

Anchors, measured in the same run on the same archive: the data each page needs,
fetched directly (the search backend's ``search()`` with the same query plus the
catalog reads), so the ratio is what the site adds by rendering it.
- home: facet counts over everything (which give the per-institution counts too) and
  the featured objects;
- search: the same query, filters, sort and page, and the hits' records;
- object: the record, its institution and the three related-object searches.
Then Lighthouse (npm ``lighthouse``, pinned, on Debian's Chromium, mobile preset with
its simulated throttling) scores the object and search pages served by a real
``archive serve``; targets: performance >= 90, accessibility >= 95. Its anchor is
the help page (server-rendered text, no images, no viewer) scored in the same run.
``home (cache dropped)`` measures the home page with its cache emptied before every
request: what the first visitor after a start waits (afterwards an expired value is
served while one thread recomputes it).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from bench.common import (
    REPO,
    Report,
    Row,
    Stats,
    parser,
    percentile,
    run,
    scratch,
    serve_archive,
    stop,
)

ARCHIVE = str(Path(sys.executable).parent / "archive")
TARGET_P95_MS = 100.0
LIGHTHOUSE = REPO / "node_modules" / ".bin" / "lighthouse"
CHROMIUM = "/usr/bin/chromium"
CHROME_FLAGS = (
    "--headless=new --no-sandbox --disable-gpu --no-first-run "
    "--disable-background-networking --disable-component-update --disable-sync"
)


def _args(argv: list[str]):
    p = parser("site", __doc__)
    p.add_argument("--records", type=int, default=100_000, help="records to generate")
    p.add_argument("--institutions", type=int, default=20)
    p.add_argument("--requests", type=int, default=300, help="requests per page type")
    p.add_argument("--home", type=Path, help="measure an archive home already ingested")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-lighthouse", action="store_true", help="skip the Lighthouse scores")
    args = p.parse_args(argv)
    if args.quick:
        args.records, args.requests = min(args.records, 3000), min(args.requests, 60)
    return args


def ingest_synthetic(tmp: Path, records: int, institutions: int, seed: int) -> Path:
    data, home = tmp / "collections", tmp / "home"
    run(
        [
            ARCHIVE,
            "generate",
            str(data),
            "--institutions",
            str(institutions),
            "--records",
            str(records),
            "--image-size",
            "64x48",
            "--seed",
            str(seed),
        ],
        cwd=REPO,
    )
    folders = sorted(str(p.parent) for p in data.glob("*/institution.toml"))
    print(f"ingesting {records:,} records from {len(folders)} folders...", flush=True)
    result = run([ARCHIVE, "--home", str(home), "ingest", *folders], check=False, timeout=4 * 3600)
    if result.returncode != 0:
        raise RuntimeError(f"ingest failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    print(f"ingested in {result.seconds:.0f} s", flush=True)
    return home


def time_ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def measure(home: Path, requests: int, seed: int, report: Report) -> None:
    from archive.config import Config
    from search.base import SearchQuery
    from web import create_app

    app = create_app(Config.load(home, environ={}))
    archive = app.extensions["archive"]
    catalog, backend = archive.catalog, archive.search
    cache = app.extensions["site_cache"]
    client = app.test_client()
    rng = random.Random(seed)
    ids = catalog.record_ids()
    if not ids:
        raise RuntimeError(f"{home} holds no public records")
    sample = [catalog.get_record(i) for i in rng.sample(ids, min(len(ids), requests))]
    words = [w for r in sample for w in (r.get("object_type"), r.get("material")) if w]
    institutions = [i.id for i in catalog.institutions()]
    eras = [r.era for r in sample if r.era]
    report.params["public_records"] = len(ids)

    def get(url: str, lang: str) -> None:
        resp = client.get(url, headers={"Accept-Language": lang, "Accept-Encoding": "gzip"})
        if resp.status_code != 200:
            raise RuntimeError(f"{url}: {resp.status_code}")

    # Search URLs a visitor makes: words, facets, sorts, page sizes, deep pages.
    searches: list[tuple[str, SearchQuery]] = []
    for n in range(requests):
        word, inst = rng.choice(words), rng.choice(institutions)
        shape = n % 5
        if shape == 0:
            searches.append((f"/search?q={quote(word)}", SearchQuery(q=word)))
        elif shape == 1:
            searches.append(
                (f"/search?institution={inst}", SearchQuery(filters={"institution": (inst,)}))
            )
        elif shape == 2:
            era = rng.choice(eras) if eras else word
            searches.append(
                (
                    f"/search?q={quote(word)}&era={quote(era)}&sort=date_asc",
                    SearchQuery(q=word, filters={"era": (era,)}, sort="date_asc"),
                )
            )
        elif shape == 3:
            page = rng.randint(1, max(1, min(len(ids) // 100, 50)))
            searches.append(
                (f"/search?size=100&view=list&page={page}", SearchQuery(size=100, page=page))
            )
        else:
            page = rng.randint(1, max(1, min(len(ids) // 20, 4000)))
            searches.append((f"/search?page={page}", SearchQuery(page=page)))

    langs = ["ja", "ja", "ja", "en"]  # mostly Japanese visitors
    rows = []

    def home_data() -> None:
        backend.search(SearchQuery(size=1))
        recent = backend.search(
            SearchQuery(filters={"has_images": ("true",)}, sort="added", size=60, facets=False)
        )
        catalog.get_records([h.id for h in recent.hits])
        catalog.institutions()

    def home_uncached(lang: str) -> None:
        cache.clear()
        get("/", lang)

    for url, _ in searches[:5]:  # warm-up: caches, connections, templates
        get(url, "ja")
    get("/", "ja")
    get(f"/object/{sample[0].id}", "ja")

    home_ms = [time_ms(lambda n=n: get("/", langs[n % 4])) for n in range(requests)]
    home_cold = [time_ms(lambda n=n: home_uncached(langs[n % 4])) for n in range(requests)]
    home_anchor = [time_ms(home_data) for _ in range(requests)]
    rows.append(("home", home_ms, home_anchor))
    rows.append(("home (cache dropped)", home_cold, home_anchor))

    search_ms = [
        time_ms(lambda u=u, n=n: get(u, langs[n % 4])) for n, (u, _) in enumerate(searches)
    ]

    def search_data(query: SearchQuery) -> None:
        result = backend.search(query)
        catalog.get_records([h.id for h in result.hits])

    search_anchor = [time_ms(lambda q=q: search_data(q)) for _, q in searches]
    rows.append(("search", search_ms, search_anchor))

    def object_data(rec) -> None:
        catalog.get_record(rec.id)
        catalog.get_institution(rec.institution)
        if rec.get("creator"):
            backend.search(
                SearchQuery(filters={"creator": (rec.get("creator"),)}, size=13, facets=False)
            )
        if rec.get("object_type"):
            backend.search(
                SearchQuery(
                    filters={
                        "object_type": (rec.get("object_type"),),
                        "institution": (rec.institution,),
                    },
                    size=13,
                    facets=False,
                )
            )
        backend.search(
            SearchQuery(
                filters={"institution": (rec.institution,)}, size=13, sort="added", facets=False
            )
        )

    object_ms = [
        time_ms(lambda r=r, n=n: get(f"/object/{r.id}", langs[n % 4])) for n, r in enumerate(sample)
    ]
    object_anchor = [time_ms(lambda r=r: object_data(r)) for r in sample]
    rows.append(("object", object_ms, object_anchor))
    nav = [
        time_ms(lambda r=r: get(f"/object/{r.id}?s=q%3D{quote(words[0])}&i=5", "ja"))
        for r in sample[: max(10, requests // 3)]
    ]
    rows.append(("object from results (prev/next)", nav, object_anchor))

    for name, ms, anchor in rows:
        stats, base = Stats.of(ms), Stats.of(anchor)
        p95, base95 = percentile(ms, 95), percentile(anchor, 95)
        report.add(
            Row(
                f"{name} p95",
                p95,
                "ms",
                anchor=base95,
                anchor_name="its data, fetched directly",
                higher_is_better=False,
                target=TARGET_P95_MS,
                note=f"n={stats.n}, p50 {stats.p50:.1f} ms, max {stats.max:.0f} ms; "
                f"anchor p50 {base.p50:.1f} ms",
            )
        )
    app.extensions["archive"].close()


def _lighthouse(url: str, out: Path) -> dict[str, float]:
    """Performance and accessibility scores (0-100) of one page, mobile preset."""
    subprocess.run(
        [
            str(LIGHTHOUSE),
            url,
            "--quiet",
            "--output=json",
            f"--output-path={out}",
            "--only-categories=performance,accessibility",
            f"--chrome-flags={CHROME_FLAGS}",
        ],
        env={**os.environ, "CHROME_PATH": CHROMIUM},
        check=True,
        timeout=600,
        capture_output=True,
    )
    data = json.loads(out.read_text(encoding="utf-8"))
    return {k: round(v["score"] * 100) for k, v in data["categories"].items()}


def lighthouse(home: Path, tmp: Path, report: Report) -> None:
    from archive.config import Config
    from archive.context import Archive

    archive = Archive(Config.load(home, environ={}))
    with_images = next(r for r in archive.catalog.records() if len(r.images) > 1)
    word = with_images.get("object_type") or ""
    archive.close()
    proc, base = serve_archive(home, probe="/help")
    try:
        anchor = _lighthouse(f"{base}/help", tmp / "lh-help.json")
        for name, path in (
            ("object", f"/object/{with_images.id}"),
            ("search", f"/search?q={quote(word)}"),
        ):
            scores = _lighthouse(base + path, tmp / f"lh-{name}.json")
            report.add(
                Row(
                    f"lighthouse {name} performance",
                    scores["performance"],
                    "score",
                    anchor=anchor["performance"],
                    anchor_name="help page",
                    target=90,
                    note=path,
                )
            )
            report.add(
                Row(
                    f"lighthouse {name} accessibility",
                    scores["accessibility"],
                    "score",
                    anchor=anchor["accessibility"],
                    anchor_name="help page",
                    target=95,
                )
            )
    finally:
        stop(proc)


def main(argv: list[str]) -> int:
    args = _args(argv)
    report = Report("site", params={k: str(v) for k, v in vars(args).items()})
    with scratch("site") as tmp:
        home = args.home or ingest_synthetic(tmp, args.records, args.institutions, args.seed)
        measure(home, args.requests, args.seed, report)
        if args.no_lighthouse:
            pass
        elif not (LIGHTHOUSE.exists() and Path(CHROMIUM).exists()):
            report.add(
                Row(
                    "lighthouse",
                    0,
                    "score",
                    target=90,
                    note=f"not run: needs {LIGHTHOUSE} (npm ci) and {CHROMIUM} (make browser)",
                )
            )
        else:
            lighthouse(home, tmp, report)
    report.print(
        f"site: server time per page ({report.params.get('public_records')} "
        "public records, in-process)"
    )
    report.save()
    return 0 if report.ok else 1
