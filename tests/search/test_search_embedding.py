"""Embedding records in bulk: processes of their own, the same vectors as in-process."""

from __future__ import annotations

import multiprocessing

import numpy as np

from search import vectors

TEXTS = ["黒楽茶碗 / 茶碗 / 陶器", "Noh mask / 能面 / 木造彩色", "加賀友禅 訪問着 / 染織 / 絹"]


def test_parallel_embeds_in_other_processes_the_same_vectors():
    vectors._passages.clear()
    alone = vectors.embed_passages(TEXTS)
    vectors._passages.clear()
    with vectors.parallel(2):
        started = vectors.submit_passages(TEXTS)
        assert started._futures, "the passages went to the embedding processes"
        rows, scales = started.result()
        children = multiprocessing.active_children()
    assert np.array_equal(rows, alone[0]) and np.allclose(scales, alone[1])
    assert children and not any(p.is_alive() for p in children)  # stopped on leaving


def test_known_vectors_are_reused_by_passage_digest():
    vectors._passages.clear()
    rows, scales = vectors.embed_passages(TEXTS[:1])
    known = {vectors.passage_digest(TEXTS[0]): vectors.to_bytes(rows[0], float(scales[0]))}
    vectors._passages.clear()
    start = vectors.embedded
    again = vectors.submit_passages(TEXTS[:2], known)
    assert again.embedded == 1 and vectors.embedded == start + 1
    assert np.array_equal(again.result()[0][0], rows[0])


def test_a_query_is_embedded_beside_its_caller_and_remembered():
    texts = [f"蒔絵の硯箱 {n}" for n in range(6)]
    vectors._queries.clear()
    pending = [vectors.query_soon(text) for text in texts]  # queued on one thread
    for text, future in zip(texts, pending, strict=True):
        q, scale = future.result(timeout=60)
        alone, alone_scale = vectors.quantize(vectors._get_model().query([text]))
        assert np.array_equal(q, alone[0]) and scale == float(alone_scale[0])
    assert all(text in vectors._queries for text in texts)
    again = vectors.query_soon(texts[0])
    assert again.done()  # remembered: answered at once, no thread
    assert again.result()[0] is vectors.embed_query(texts[0])[0]


def test_query_vectors_are_shared_by_a_nodes_processes(tmp_path):
    path = tmp_path / "cache" / "search" / "query-vectors.sqlite"
    one, other = vectors.SharedQueries(path), vectors.SharedQueries(path)  # two workers
    vectors._queries.clear()
    q, scale = vectors.embed_query("漆塗りの盆", one)
    found = other.get("漆塗りの盆")
    assert found is not None and np.array_equal(found[0], q) and found[1] == scale
    # What the other process finds is used as it is, without the model.
    made_up = (np.full(vectors.DIM, 3, dtype=np.int8), 0.5)
    one.put("能面 小面", *made_up)
    vectors._queries.clear()
    got = vectors.query_soon("能面 小面", other).result(timeout=60)
    assert np.array_equal(got[0], made_up[0]) and got[1] == 0.5


def test_shared_query_vectors_of_another_model_or_a_damaged_file_are_not_used(tmp_path):
    import sqlite3

    path = tmp_path / "query-vectors.sqlite"
    vectors.SharedQueries(path).put("茶碗", np.ones(vectors.DIM, dtype=np.int8), 1.0)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = 'an older model' WHERE key = 'embedding'")
    assert vectors.SharedQueries(path).get("茶碗") is None  # emptied for this model
    damaged = tmp_path / "damaged.sqlite"
    damaged.write_bytes(b"not a database" * 100)
    cache = vectors.SharedQueries(damaged)
    assert cache.get("茶碗") is None
    cache.put("茶碗", np.ones(vectors.DIM, dtype=np.int8), 1.0)  # no error either
    vectors._queries.clear()
    assert vectors.embed_query("茶碗", cache)[1] > 0  # the model, as without a cache
