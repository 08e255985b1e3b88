"""Search: relevance on the sample collections, and speed at 100,000 records, per backend.

Issue 5's targets, each beside an anchor measured in the same run:

- relevance: recall@10 and MRR of bench/search_relevance.json (70 queries, Japanese
  and English) on the sample collections, for the embedded backend and for a real
  OpenSearch node side by side; they must not differ by more than 5 points.
- indexing 100,000 synthetic records (``archive reindex`` from the catalog) in under
  2 minutes on the embedded backend; anchor: the same text inserted raw into a plain
  SQLite FTS5 table (no folding, bigrams or stemming).
- ``/api/search`` p95 under 50 ms for typical one- and two-word queries with every
  facet, on a real ``archive serve``, measured by a load loop of concurrent keep-alive
  clients; anchor: ``/api/suggest`` with an empty q (the same server, no search).

The cluster figures are reported beside the embedded ones (``--no-cluster`` skips the
node). ``--quick`` runs 5,000 records and short load phases.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

from bench.common import (
    REPO,
    Report,
    Row,
    Stopwatch,
    machine,
    parser,
    percentile,
    run,
    scratch,
    serve_archive,
    stop,
)

BIN = Path(sys.executable).parent
ARCHIVE = str(BIN / "archive")
RELEVANCE = REPO / "bench" / "search_relevance.json"
RELEVANCE_JA = REPO / "bench" / "search_relevance_ja.json"
TARGET_JA_RECALL = {"kana": 95.0, "romaji": 95.0, "english": 80.0}
TARGET_OLD_RECALL = 98.8  # the text-only ranking's figures before the hybrid (issue 13)
TARGET_OLD_MRR = 100.0
NODE_SCRIPT = REPO / "search" / "opensearch" / "run-node.sh"
TARGET_RECORDS = 100_000
TARGET_INDEX_S = 120.0
TARGET_P95_MS = 50.0
MAX_GAP_POINTS = 5.0


def _args(argv: list[str]):
    p = parser("search", __doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=TARGET_RECORDS, help="synthetic records")
    p.add_argument("--seconds", type=float, default=20.0, help="length of each load phase")
    p.add_argument(
        "--clients",
        type=int,
        default=os.cpu_count() or 2,
        help="concurrent load clients (default: one per core of this machine)",
    )
    p.add_argument("--no-cluster", action="store_true", help="skip the OpenSearch node")
    args = p.parse_args(argv)
    if args.quick:
        args.records = min(args.records, 5000)
        args.seconds = min(args.seconds, 5.0)
    return args


# -- the OpenSearch node ------------------------------------------------------------------------


class Node:
    """search/opensearch/run-node.sh in its own process group."""

    def __init__(self, data: Path) -> None:
        self.log = data / "node.log"
        self._log = open(self.log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            ["bash", str(NODE_SCRIPT), str(data / "node")],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "OPENSEARCH_PORT_BASE": "9260"},
        )
        self.url = ""

    def wait(self, timeout: float = 300.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"OpenSearch exited:\n{self.log.read_text()[-2000:]}")
            match = re.search(r"HTTP Port:\s+(\d+)", self.log.read_text())
            if match:
                url = f"http://127.0.0.1:{match.group(1)}"
                try:
                    with urllib.request.urlopen(url + "/_cluster/health", timeout=2):
                        self.url = url
                        return url
                except OSError:
                    pass
            time.sleep(0.5)
        raise RuntimeError("OpenSearch did not start")

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._log.close()


def cluster_env(url: str) -> dict[str, str]:
    return {
        "ARCHIVE_SEARCH_BACKEND": "opensearch",
        "ARCHIVE_SEARCH_URL": url,
        "ARCHIVE_SEARCH_TIMEOUT": "30",
    }


# -- relevance ----------------------------------------------------------------------------------


def score(backend, queries: list[dict], semantic: bool) -> tuple[float, float, int]:
    """(recall@10, MRR, queries) of ``queries`` on a backend."""
    from search import SearchQuery

    recall = mrr = 0.0
    for item in queries:
        query = SearchQuery(q=item["q"], size=10, semantic=semantic)
        hits = [h.id for h in backend.search(query).hits]
        relevant = set(item["relevant"])
        recall += len(relevant & set(hits)) / len(relevant)
        mrr += next((1 / rank for rank, h in enumerate(hits, 1) if h in relevant), 0.0)
    return recall / len(queries), mrr / len(queries), len(queries)


def relevance(home: Path, env: dict[str, str], semantic: bool = True) -> tuple[float, float, int]:
    """(recall@10, MRR, queries) of the relevance set against the backend ``env`` selects
    (``semantic``: the hybrid ranking; off: today's text-only ranking, the anchor)."""
    from archive.config import Config
    from search import get_backend

    config = Config.load(home, environ={**os.environ, **env})
    backend = get_backend(config)
    queries = json.loads(RELEVANCE.read_text(encoding="utf-8"))["queries"]
    try:
        return score(backend, queries, semantic)
    finally:
        backend.close()


JAPANESE_ONLY_DROP = ("title_kana", "title_en", "creator_en", "object_type_en", "material_en")


def japanese_only_relevance(
    samples: Path, scratch_home: Path, env: dict[str, str]
) -> dict[tuple[str, bool], tuple[float, float, int]]:
    """(kind, semantic) -> (recall@10, MRR, n) of the kana/romaji/English set, on copies of
    the sample records with no readings and no English (as many institutions export)."""
    from archive.catalog import Catalog
    from archive.config import Config
    from archive.storage import Home
    from search import get_backend

    catalog = Catalog(Home(samples).catalog)
    records = catalog.get_records(catalog.record_ids(public_only=True))
    institutions = {inst.id: inst for inst in catalog.institutions()}
    catalog.close()
    for record in records:
        for name in (*JAPANESE_ONLY_DROP, "description_en"):
            record.fields.pop(name, None)
    environ = {**os.environ, **env, "ARCHIVE_SEARCH_INDEX": "japanese-only"}
    backend = get_backend(Config.load(scratch_home, environ=environ))
    backend.rebuild(records, institutions)
    queries = json.loads(RELEVANCE_JA.read_text(encoding="utf-8"))["queries"]
    out = {}
    try:
        for kind in ("kana", "romaji", "english"):
            subset = [q for q in queries if q["kind"] == kind]
            for semantic in (True, False):
                out[(kind, semantic)] = score(backend, subset, semantic)
    finally:
        backend.close()
    return out


def relevance_rows(report: Report, label: str, samples: Path, tmp: Path, env: dict) -> None:
    """The hybrid ranking's figures, each beside today's text-only ranking (the anchor)."""
    recall, mrr, n = relevance(samples, env, semantic=True)
    t_recall, t_mrr, _ = relevance(samples, env, semantic=False)
    report.add(
        Row(
            f"{label} recall@10 (70 queries)",
            recall * 100,
            "%",
            anchor=t_recall * 100,
            anchor_name="text-only ranking",
            target=TARGET_OLD_RECALL,
            note=f"{n} queries",
        )
    )
    report.add(
        Row(
            f"{label} MRR (70 queries)",
            mrr * 100,
            "%",
            anchor=t_mrr * 100,
            anchor_name="text-only ranking",
            target=TARGET_OLD_MRR,
        )
    )
    found = japanese_only_relevance(samples, tmp / f"japanese-only-{label}", env)
    for kind, target in TARGET_JA_RECALL.items():
        h_recall, h_mrr, count = found[(kind, True)]
        a_recall, _a_mrr, _ = found[(kind, False)]
        report.add(
            Row(
                f"{label} recall@10 {kind}, Japanese-only",
                h_recall * 100,
                "%",
                anchor=a_recall * 100,
                anchor_name="text-only ranking",
                target=target,
                note=f"{count} queries, MRR {h_mrr * 100:.0f}%",
            )
        )


# -- synthetic records --------------------------------------------------------------------------


def fill_catalog(home: Path, count: int, seed: int = 1) -> int:
    """Put ``count`` synthetic records (collections_data/synth.py vocabularies) in a catalog."""
    sys.path.insert(0, str(REPO / "collections_data"))
    import synth

    from archive.catalog import Catalog
    from archive.records import ImageRef, Institution, Record, image_id, record_id, split_keywords
    from ingest.dates import normalise_date

    catalog = Catalog(home / "catalog.sqlite")
    written = 0
    for plan in synth.plan(20, count, seed):
        catalog.put_institution(
            Institution(
                id=plan.id, name={"ja": plan.name_ja, "en": plan.name_en}, rights=plan.rights
            )
        )
        rng = random.Random(plan.seed)
        with catalog.transaction():
            for i in range(plan.records):
                local = f"S-{i:06d}"
                fields = synth.compose(rng, plan.kind, local)
                rid = record_id(plan.id, local)
                date = normalise_date(fields["date"])
                kept = {k: v for k, v in fields.items() if v and k not in ("rights", "public")}
                kept["keywords"] = split_keywords(fields["keywords"])
                catalog.put_record(
                    Record(
                        id=rid,
                        institution=plan.id,
                        local_id=local,
                        fields=kept,
                        public=fields["public"] != "非公開",
                        rights=fields["rights"] or plan.rights,
                        date_start=date.start if date else None,
                        date_end=date.end if date else None,
                        era=date.era if date else None,
                        images=[
                            ImageRef(
                                id=image_id(rid, f"{local}.jpg"),
                                source=f"{local}.jpg",
                                width=64,
                                height=64,
                                version="v1",
                            )
                        ],
                    )
                )
                written += 1
    catalog.close()
    return written


def raw_fts_anchor(home: Path) -> float:
    """Seconds to insert the catalog's text, unprocessed, into a plain FTS5 table."""
    source = sqlite3.connect(home / "catalog.sqlite")
    target = sqlite3.connect(home / "anchor.sqlite", isolation_level=None)
    target.execute("CREATE VIRTUAL TABLE t USING fts5(title, body)")
    with Stopwatch() as sw:
        target.execute("BEGIN")
        rows = source.execute("SELECT data FROM records WHERE public = 1")
        batch = []
        for (data,) in rows:
            fields = json.loads(data)["fields"]
            batch.append(
                (
                    fields.get("title", ""),
                    " ".join(str(v) for k, v in fields.items() if k != "title"),
                )
            )
            if len(batch) == 2000:
                target.executemany("INSERT INTO t VALUES (?, ?)", batch)
                batch = []
        target.executemany("INSERT INTO t VALUES (?, ?)", batch)
        target.execute("COMMIT")
    source.close()
    target.close()
    return sw.seconds


# -- load ---------------------------------------------------------------------------------------


def typical_queries(seed: int = 7) -> list[str]:
    """One- and two-word queries a visitor types: object types, techniques, motifs (ja, en)."""
    sys.path.insert(0, str(REPO / "collections_data"))
    import synth

    rng = random.Random(seed)
    words_ja, words_en = [], []
    for kind in synth.KINDS:
        for ja, _kana, en in (*kind.objects, *kind.techniques):
            words_ja.append(ja)
            words_en.append(en.split()[-1])
    for ja, _kana, en in synth.MOTIFS:
        words_ja.append(ja)
        words_en.append(en.split()[-1])
    out = []
    for _ in range(200):
        if rng.random() < 0.6:
            out.append(rng.choice(words_ja))
        elif rng.random() < 0.5:
            out.append(f"{rng.choice(words_ja)} {rng.choice(words_ja)}")
        else:
            out.append(rng.choice(words_en))
    return out


def load(base: str, paths: list[str], seconds: float, clients: int) -> tuple[list[float], int]:
    """Latencies (s) of GET requests cycling through ``paths`` from concurrent clients."""
    host, port = urllib.parse.urlsplit(base).netloc.split(":")
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(offset: int) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        mine: list[float] = []
        i = offset
        while time.monotonic() < stop:
            path = paths[i % len(paths)]
            i += clients
            start = time.perf_counter()
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - start)
            if response.status != 200:
                errors[0] += 1
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors[0]


def search_paths(queries: list[str]) -> list[str]:
    return [f"/api/search?q={urllib.parse.quote(q)}" for q in queries]


def measure_api(
    home: Path, env: dict[str, str], seconds: float, clients: int
) -> tuple[list[float], list[float], int]:
    """(search latencies, anchor latencies, non-200 answers) on a fresh ``archive serve``."""
    proc, base = serve_archive(home, env=env)
    try:
        paths = search_paths(typical_queries())
        load(base, paths, min(3.0, seconds), clients)  # warm: workers load their columns
        searched, errors = load(base, paths, seconds, clients)
        anchor, _ = load(base, ["/api/suggest?q="], seconds / 2, clients)
    finally:
        stop(proc)
    return searched, anchor, errors


# -- main ---------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    args = _args(argv)
    print(f"machine: {machine()}", flush=True)
    report = Report("search", params=vars(args))
    node = None
    with scratch("search") as tmp:
        try:
            if not args.no_cluster:
                node = Node(tmp)
            # Relevance on the sample collections.
            samples = tmp / "samples"
            run([sys.executable, str(REPO / "collections_data" / "make_images.py")])
            folders = sorted(
                str(p.parent) for p in (REPO / "collections_data").glob("*/institution.toml")
            )
            run([ARCHIVE, "--home", str(samples), "ingest", *folders])
            recall, mrr, n = relevance(samples, {})
            relevance_rows(report, "sqlite", samples, tmp, {})
            cluster_url = node.wait() if node else ""
            if node:
                env = cluster_env(cluster_url)
                run([ARCHIVE, "--home", str(samples), "reindex"], env=env)
                c_recall, c_mrr, _ = relevance(samples, env)
                relevance_rows(report, "opensearch", samples, tmp, env)
                report.add(
                    Row(
                        "recall@10 gap",
                        abs(recall - c_recall) * 100,
                        "points",
                        higher_is_better=False,
                        target=MAX_GAP_POINTS,
                    )
                )
                report.add(
                    Row(
                        "MRR gap",
                        abs(mrr - c_mrr) * 100,
                        "points",
                        higher_is_better=False,
                        target=MAX_GAP_POINTS,
                    )
                )

            # Scale.
            big = tmp / "big"
            big.mkdir()
            with Stopwatch() as sw:
                count = fill_catalog(big, args.records)
            print(f"catalog: {count} synthetic records in {sw.seconds:.0f} s", flush=True)
            anchor_s = raw_fts_anchor(big)
            indexed = run([ARCHIVE, "--home", str(big), "reindex"])
            scale = TARGET_RECORDS / args.records
            report.add(
                Row(
                    "sqlite reindex",
                    indexed.seconds * scale,
                    "s",
                    anchor=anchor_s * scale,
                    anchor_name="raw FTS5 insert",
                    higher_is_better=False,
                    target=TARGET_INDEX_S,
                    note=f"{args.records} records, projected to {TARGET_RECORDS}"
                    if scale != 1
                    else indexed.stdout.strip(),
                )
            )
            report.add(
                Row(
                    "sqlite reindex CPU",
                    indexed.cpu_seconds * scale,
                    "s",
                    anchor=anchor_s * scale,
                    anchor_name="raw FTS5 insert (wall)",
                    higher_is_better=False,
                    target=TARGET_INDEX_S,
                    note="user+system seconds: what neighbours cannot inflate",
                )
            )
            searched, anchor, errors = measure_api(big, {}, args.seconds, args.clients)
            report.add(
                Row(
                    "sqlite /api/search p95",
                    _ms(searched, 95),
                    "ms",
                    anchor=_ms(anchor, 95),
                    anchor_name="/api/suggest (no search)",
                    higher_is_better=False,
                    target=TARGET_P95_MS,
                    note=f"{len(searched)} requests, {args.clients} clients, "
                    f"p50 {_ms(searched, 50):.1f} ms, {errors} non-200",
                )
            )
            if node:
                env = cluster_env(cluster_url)
                indexed = run([ARCHIVE, "--home", str(big), "reindex"], env=env)
                report.add(
                    Row(
                        "opensearch reindex",
                        indexed.seconds * scale,
                        "s",
                        anchor=anchor_s * scale,
                        anchor_name="raw FTS5 insert",
                        higher_is_better=False,
                    )
                )
                searched, anchor, errors = measure_api(big, env, args.seconds, args.clients)
                report.add(
                    Row(
                        "opensearch /api/search p95",
                        _ms(searched, 95),
                        "ms",
                        anchor=_ms(anchor, 95),
                        anchor_name="/api/suggest (no search)",
                        higher_is_better=False,
                        note=f"{len(searched)} requests, p50 {_ms(searched, 50):.1f} ms,"
                        f" {errors} non-200",
                    )
                )
        finally:
            if node:
                node.stop()
    report.print()
    print(f"saved {report.save()}")
    return 0 if report.ok else 1


def _ms(latencies: list[float], pct: float) -> float:
    return percentile(latencies, pct) * 1000


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
