"""Presentation and research API speed: manifests, collections, search and export.

Everything runs in-process through the real Flask app (its test client: the whole
stack of routing, validation, JSON and headers, no network), on a synthetic archive
of one institution with N public records of 1-4 images each (no pixels are needed:
manifests, collections and exports read only the catalog).

Anchors, measured in the same run on the same catalog:
- manifest: ``/api/records/{id}`` through the same app (same catalog read, plain
  JSON instead of iiif-prezi3 models), so the ratio is the cost of building with
  iiif-prezi3;
- collection page of 1,000 manifests: reading those 1,000 records from the catalog
  and ``json.dumps`` of them (the floor any implementation pays);
- /api/search: the search backend's own ``search()`` for the same query, so the
  ratio is what the API adds (validation, catalog lookups, URLs, labels);
- export: iterating the catalog and ``json.dumps`` of each record.
"""

from __future__ import annotations

import json
import random
import time

from bench.common import Report, Row, Stats, parser, scratch, timed

INSTITUTION = "bench-museum"
RIGHTS = "http://rightsstatements.org/vocab/InC/1.0/"


def build(home, count: int):
    """An app on an archive with ``count`` public records, indexed for search."""
    from archive.config import Config
    from archive.context import Archive
    from archive.records import ImageRef, Institution, Record, image_id, record_id
    from search import get_backend
    from web import create_app

    config = Config.load(home, environ={})
    archive = Archive(config)
    inst = Institution(
        INSTITUTION,
        {"ja": "ベンチ美術館", "en": "Bench Museum"},
        RIGHTS,
        homepage="https://example.org/",
    )
    archive.catalog.put_institution(inst)
    rng = random.Random(7)
    kinds = [("能面", "Noh mask"), ("陶磁", "Ceramics"), ("漆工", "Lacquer"), ("絵巻", "Scroll")]
    records = []
    with archive.catalog.transaction():
        for n in range(count):
            local = f"B-{n:06d}"
            rec_id = record_id(INSTITUTION, local)
            kind = kinds[n % len(kinds)]
            year = rng.randint(1300, 1950)
            images = [
                ImageRef(
                    id=image_id(rec_id, f"images/{local}-{i}.tif"),
                    source=f"images/{local}-{i}.tif",
                    width=4000,
                    height=3000,
                    version="v1",
                )
                for i in range(1 + n % 4)
            ]
            record = Record(
                id=rec_id,
                institution=INSTITUTION,
                local_id=local,
                fields={
                    "id": local,
                    "title": f"{kind[0]} 第{n}号",
                    "title_en": f"{kind[1]} {n}",
                    "creator": "作者不詳",
                    "date": f"{year}年",
                    "object_type": kind[0],
                    "object_type_en": kind[1],
                    "material": "木造彩色",
                    "description": "解説文。" * 20,
                    "description_en": "Notes. " * 20,
                    "keywords": ["能", "面", "江戸"],
                },
                extra=[["旧番号", f"OLD-{n}"], ["寄贈者", "市民"]],
                rights=RIGHTS,
                date_start=year,
                date_end=year,
                era="江戸時代",
                images=images,
            )
            archive.catalog.put_record(record)
            records.append(record)
    backend = get_backend(config)
    backend.rebuild(iter(records), {INSTITUTION: inst})
    backend.close()
    archive.close()
    app = create_app(config)
    return app, app.extensions["archive"], [r.id for r in records]


def per_second(seconds: list[float], items: int = 1) -> float:
    return items / Stats.of(seconds).p50


def main(args: list[str]) -> int:
    p = parser("presentation", __doc__)
    p.add_argument("--records", type=int, default=5000, help="public records in the archive")
    opts = p.parse_args(args)
    count = 1500 if opts.quick else opts.records
    report = Report("presentation", params={"records": count, "images_per_record": "1-4"})
    with scratch("presentation") as root:
        print(f"building an archive of {count} records...", flush=True)
        start = time.perf_counter()
        app, archive, ids = build(root / "home", count)
        print(f"  built in {time.perf_counter() - start:.1f} s", flush=True)
        client = app.test_client()
        shuffled = random.Random(1).sample(ids, len(ids))
        batches = [shuffled[i * 200 : (i + 1) * 200] for i in range(5)]

        def fetch_all(prefix: str, batch: list[str]) -> None:
            for rec_id in batch:
                resp = client.get(f"{prefix}{rec_id}")
                assert resp.status_code == 200, resp.status_code

        # Cold: every manifest built for the first time (five fresh batches of 200).
        fresh = iter(batches)
        manifests_cold = per_second(
            timed(lambda: fetch_all("/iiif/3/manifest/", next(fresh)), repeat=5, warmup=0), 200
        )
        # Warm: the same 200 again, served from the document cache.
        manifests_warm = per_second(
            timed(lambda: fetch_all("/iiif/3/manifest/", batches[0]), repeat=5), 200
        )
        records = per_second(timed(lambda: fetch_all("/api/records/", batches[1]), repeat=5), 200)

        # A collection page of 1,000 manifests (the institution has more than 1,000).
        def page() -> None:
            resp = client.get(f"/iiif/3/collection/{INSTITUTION}/1")
            assert resp.status_code == 200, resp.status_code

        def page_floor() -> None:
            json.dumps(
                [r.to_dict() for r in archive.catalog.get_records(ids[:1000])], ensure_ascii=False
            )

        page_cold_ms = timed(page, repeat=1, warmup=0)[0] * 1000  # the first build
        page_ms = Stats.of(timed(page, repeat=7)).p50 * 1000
        floor_ms = Stats.of(timed(page_floor, repeat=7)).p50 * 1000

        # Search: the API against the backend it wraps, same queries.
        from search.base import SearchQuery

        queries = ["能面", "江戸", "", "Noh mask", "陶磁 木造"]

        def api_search() -> None:
            for q in queries:
                resp = client.get("/api/search", query_string={"q": q, "size": 20})
                assert resp.status_code == 200, resp.status_code

        def backend_search() -> None:
            for q in queries:
                archive.search.search(SearchQuery(q=q, size=20))

        api_ms = Stats.of(timed(api_search, repeat=7)).p50 * 1000 / len(queries)
        backend_ms = Stats.of(timed(backend_search, repeat=7)).p50 * 1000 / len(queries)

        # Export: JSON Lines through the app against catalog + json.dumps.
        def export() -> None:
            resp = client.get("/api/export.jsonl")
            lines = sum(1 for _ in resp.response)
            assert lines == count, lines

        def export_floor() -> None:
            for record in archive.catalog.records():
                json.dumps(record.to_dict(), ensure_ascii=False)

        export_rate = per_second(timed(export, repeat=3), count)
        export_floor_rate = per_second(timed(export_floor, repeat=3), count)

        changes_ms = (
            Stats.of(timed(lambda: client.get("/iiif/3/activity/page/0"), repeat=20)).p50 * 1000
        )
        archive.close()

    report.rows.extend(
        [
            Row(
                "manifests/s, first request (built with iiif-prezi3)",
                manifests_cold,
                "req/s",
                records,
                "/api/records/s, same app",
                note="1-4 canvases each",
            ),
            Row(
                "manifests/s, repeated (document cache)",
                manifests_warm,
                "req/s",
                records,
                "/api/records/s, same app",
            ),
            Row(
                "collection page of 1,000 manifests, first request",
                page_cold_ms,
                "ms",
                floor_ms,
                "read 1,000 records + json.dumps",
                higher_is_better=False,
            ),
            Row(
                "collection page of 1,000 manifests, repeated",
                page_ms,
                "ms",
                floor_ms,
                "read 1,000 records + json.dumps",
                higher_is_better=False,
            ),
            Row(
                "/api/search latency (p50 of 5 queries)",
                api_ms,
                "ms",
                backend_ms,
                "backend.search() alone",
                higher_is_better=False,
            ),
            Row(
                "export.jsonl",
                export_rate,
                "records/s",
                export_floor_rate,
                "catalog read + json.dumps",
            ),
            Row(
                "Change Discovery page (100 activities)",
                changes_ms,
                "ms",
                None,
                "",
                higher_is_better=False,
            ),
        ]
    )
    report.print(f"IIIF Presentation and research API, {count} records, in-process")
    report.save()
    return 0 if report.ok else 1
