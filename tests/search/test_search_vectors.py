"""The vector index both backends rank by: bit planes that rebuild the stored int8 rows
exactly, exact rescoring, and a binary first pass that finds what exact scoring finds."""

from __future__ import annotations

import numpy as np
import pytest

from search import vectors
from search.vectors import DIM, SAMPLE, VectorIndex, quantize, semantic_neighbours, similarities


def clustered(n: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """int8 rows shaped like e5's: one shared direction (similarities bunch together),
    a few hundred topics, and noise; as the backends store them."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=DIM)
    topics = rng.normal(size=(300, DIM))
    rows = 3 * shared + topics[rng.integers(0, 300, n)] + 0.8 * rng.normal(size=(n, DIM))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return quantize(rows)


@pytest.fixture(scope="module")
def collection():
    matrix, scales = clustered(12_000)
    return matrix, scales, VectorIndex(matrix, scales)


def test_bit_planes_hold_the_centred_rows(collection):
    matrix, scales, index = collection
    assert index.planes is not None  # beyond SAMPLE rows: planes, not a plain copy
    positions = np.array([0, 1, 7, 4095, 11_999, 7])
    centred = index._rows(positions).astype(np.float32) * index.scales[positions, None]
    stored = matrix[positions].astype(np.float32) * scales[positions, None]
    assert np.abs(centred + index.mean - stored).max() < 0.01
    row, scale = index.vector(7)
    assert np.abs(row.astype(np.float32) * scale - stored[2]).max() < 0.01


def test_scores_are_the_similarities_to_within_rounding(collection):
    matrix, scales, index = collection
    query = (matrix[42], float(scales[42]))
    positions = np.arange(0, 12_000, 7)
    exact = similarities(matrix, scales, query)[positions]
    assert np.abs(index.scores(query, positions) - exact).max() < 2e-3


def test_memory_is_the_int8_rows_and_little_more(collection):
    _matrix, _scales, index = collection
    fixed = SAMPLE * (DIM + 4 + 8) + DIM * 4
    assert (index.nbytes - fixed) / len(index) == DIM + 4 + 1  # planes, scale, flag


def test_nearest_finds_what_exact_scoring_finds(collection):
    matrix, scales, index = collection
    rng = np.random.default_rng(11)
    overlap = []
    for i in rng.choice(len(matrix), 40, replace=False):
        query = (matrix[i], float(scales[i]))
        exact = similarities(matrix, scales, query)
        tenth = np.sort(exact)[-10]
        found, sims = index.nearest(query, 10)
        assert (np.diff(sims) <= 0).all()  # nearest first
        assert np.allclose(sims, index.scores(query, found))
        overlap.append(float(np.mean(exact[found] >= tenth - 1e-3)))
    assert np.mean(overlap) >= 0.98


def test_nearest_with_a_pool_as_large_as_the_collection_ranks_all(collection):
    matrix, scales, index = collection
    query = (matrix[5], float(scales[5]))
    sims = index.scores(query, np.arange(len(matrix)))
    found, _ = index.nearest(query, 10, pool=len(matrix))
    assert found.tolist() == np.lexsort((np.arange(len(sims)), -sims))[:10].tolist()


def test_rows_without_a_vector_are_never_near():
    matrix, scales = clustered(5000)
    scales[:100] = 0
    index = VectorIndex(matrix, scales)
    assert not index.present[:100].any() and index.present[100:].all()
    assert (index.scores((matrix[0], 0.01), np.arange(100)) == 0).all()


def test_nearest_stays_within_the_positions_given(collection):
    matrix, scales, index = collection
    query = (matrix[5], float(scales[5]))
    allowed = np.arange(1, len(matrix), 3)
    found, _ = index.nearest(query, 25, allowed)
    assert len(found) == 25 and set(found.tolist()) <= set(allowed.tolist())
    few = np.array([9, 3, 600])
    assert sorted(index.nearest(query, 10, few)[0].tolist()) == [3, 9, 600]
    assert len(index.nearest(query, 10, few[:0])[0]) == 0


def _robust(sims: np.ndarray) -> tuple[float, float]:
    """The median and the median absolute deviation as a normal's standard deviation."""
    centre = float(np.median(sims))
    return centre, 1.4826 * float(np.median(np.abs(sims - centre)))


def test_moments_come_from_a_sample_close_to_the_whole(collection):
    matrix, scales, index = collection
    query = (matrix[77], float(scales[77]))
    sims = similarities(matrix, scales, query)
    centre, spread = index.moments(query)
    whole_centre, whole_spread = _robust(sims)
    assert abs(centre - whole_centre) < 0.05 * whole_spread
    assert abs(spread - whole_spread) < 0.1 * whole_spread


def test_the_records_a_query_is_about_do_not_raise_the_bar_for_the_rest():
    """Ten rows far above the rest move a mean and a standard deviation; the median and
    its absolute deviation stay where the bulk of the collection is."""
    rng = np.random.default_rng(3)
    bulk = rng.normal(size=(190, DIM)).astype(np.float32)
    target = rng.normal(size=DIM).astype(np.float32)
    about = target + 0.3 * rng.normal(size=(10, DIM)).astype(np.float32)
    rows = np.vstack([bulk, about])
    matrix, scales = vectors.quantize(rows / np.linalg.norm(rows, axis=1, keepdims=True))
    index = VectorIndex(matrix, scales)
    query = vectors.quantize(target / np.linalg.norm(target))
    query = (query[0][0], float(query[1][0]))
    sims = similarities(matrix, scales, query)
    centre, spread = index.moments(query)
    assert (centre, spread) == pytest.approx(_robust(sims), rel=1e-5)
    assert centre + vectors.SEMANTIC_Z * spread < sims.mean() + vectors.SEMANTIC_Z * sims.std()
    assert abs(centre - float(np.median(sims[:190]))) < 0.1 * spread


def test_a_small_collection_is_scored_exactly_whole():
    matrix, scales = clustered(300)
    index = VectorIndex(matrix, scales)
    assert index.planes is None
    query = (matrix[3], float(scales[3]))
    sims = similarities(matrix, scales, query)
    assert index.moments(query) == pytest.approx(_robust(sims), rel=1e-5)
    found, _ = index.nearest(query, 5)
    assert found.tolist() == np.argsort(-sims, kind="stable")[:5].tolist()


def test_neighbours_are_above_the_collections_spread_and_allowed(collection):
    matrix, scales, index = collection
    query = (matrix[8], float(scales[8]))
    allowed = np.ones(len(matrix), dtype=bool)
    allowed[8] = False
    positions, sims = semantic_neighbours(index, query, allowed)
    centre, spread = index.moments(query)
    assert 8 not in positions.tolist() and len(positions) == vectors.SEMANTIC_K
    assert (sims >= centre + vectors.SEMANTIC_Z * spread).all()
    empty = VectorIndex(np.zeros((0, DIM), np.int8), np.zeros(0, np.float32))
    assert len(semantic_neighbours(empty, query)[0]) == 0


def test_a_first_pass_computed_once_serves_every_subset(collection):
    matrix, scales, index = collection
    query = (matrix[21], float(scales[21]))
    rough = index.first_pass(query, None)
    subset = np.arange(0, len(matrix), 2)
    for positions in (None, subset):
        alone = index.nearest(query, 10, positions)
        shared = index.nearest(query, 10, positions, rough=rough)
        assert alone[0].tolist() == shared[0].tolist()


def test_the_byte_tables_read_the_planes_exactly(collection):
    matrix, scales, index = collection
    query = (matrix[33], float(scales[33]))
    positions = np.array([0, 5, 33, 4096, 11_999])
    q = query[0].astype(np.float32) * np.float32(query[1])
    by_unpacking = index._rows(positions).astype(np.float64) @ q.astype(np.float64)
    assert np.allclose(index._dots(q, positions), by_unpacking, rtol=1e-5, atol=1e-3)


def test_the_three_plane_pass_ranks_closer_to_exact_than_the_sign_bits(collection):
    matrix, scales, index = collection
    query = (matrix[60], float(scales[60]))
    positions = np.arange(0, len(matrix), 3)
    exact = index.scores(query, positions)
    rough = index.first_pass(query, positions)
    finer = index.fine_pass(query, positions)

    def rank_correlation(a, b):
        return np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1]

    # here about 0.5 for the sign bits and 0.89 for three planes
    assert rank_correlation(finer, exact) > rank_correlation(rough, exact) + 0.25
    assert rank_correlation(finer, exact) > 0.85


# -- the C kernel (search/_bits.c) against the numpy passes it replaces ---------------------


@pytest.fixture
def numpy_index(collection):
    """The same index on the numpy passes: the reference the C loops must reproduce."""
    matrix, scales, index = collection
    twin = VectorIndex.__new__(VectorIndex)
    twin.__dict__.update(index.__dict__)
    twin.kernel = None
    return twin


def test_the_c_kernel_is_built():
    # pip install builds it (pyproject's ext-modules); numpy is the fallback without a
    # compiler, but this machine has one, and the speed targets assume it
    assert vectors._bits is not None


def test_the_kernels_first_pass_is_the_numpy_one(collection, numpy_index):
    matrix, scales, index = collection
    for i in (0, 77, 5000):
        query = (matrix[i], float(scales[i]))
        assert np.array_equal(index.first_pass(query, None), numpy_index.first_pass(query, None))
        positions = np.array([11_999, 3, 3, 4096, 0])
        assert np.array_equal(
            index.first_pass(query, positions), numpy_index.first_pass(query, positions)
        )


def test_the_kernels_plane_sums_are_the_numpy_ones(collection, numpy_index):
    matrix, scales, index = collection
    query = (matrix[9], float(scales[9]))
    positions = np.arange(0, len(matrix), 5)[::-1].copy()  # any order, not only ascending
    for planes in (1, 3, 8):
        q = vectors._float(query)
        mine, theirs = index._dots(q, positions, planes), numpy_index._dots(q, positions, planes)
        assert np.allclose(mine, theirs, rtol=1e-5, atol=1e-3)  # only the order of sums differs
    assert index.nearest(query, 10)[0].tolist() == numpy_index.nearest(query, 10)[0].tolist()


def test_the_kernel_refuses_what_would_read_outside_the_planes(collection):
    _matrix, _scales, index = collection
    out = np.empty(1, dtype=np.float32)
    weights = np.zeros((vectors._WORDS, 4), dtype=np.uint64)
    tables = np.zeros(3 * DIM * 256 // 8, dtype=np.float32)
    with pytest.raises(IndexError, match="position 12000"):
        vectors._bits.first_pass(
            index.planes, weights, 0.0, 1.0, vectors._WORDS, np.array([12_000]), out
        )
    with pytest.raises(IndexError, match="position -1"):
        vectors._bits.dots(index.planes, index.low, tables, vectors._WORDS, 3, np.array([-1]), out)
    with pytest.raises(ValueError, match="tables"):
        vectors._bits.dots(
            index.planes, index.low, tables[:-1], vectors._WORDS, 3, np.array([0]), out
        )
    with pytest.raises(ValueError, match="out"):
        vectors._bits.first_pass(index.planes, weights, 0.0, 1.0, vectors._WORDS, None, out)
    with pytest.raises(TypeError):
        vectors._bits.first_pass(
            index.planes, weights, 0.0, 1.0, vectors._WORDS, np.array([0], dtype=np.int32), out
        )
