"""Integer matrix products through ONNX Runtime: x (float32) @ w, with int8 weights.

The network's products are compute-bound, and this machine's cores multiply int8 four
times faster than float32 (AVX-512 VNNI: ONNX Runtime's ``MatMulInteger``, about 450
billion multiply-adds a second on one core here, against BLAS's 105 in float32). Each
weight column keeps its own scale (``round(w / max|w| * 127)``), and each row of
activations is quantised on the way in with its own scale, so the only loss is the
rounding of both to 8 bits: embeddings within a cosine of 0.999 of the float32 network
(tests/search/test_search_encoder.py).

The one-node model is written as protobuf here (its dozen fields below), so the
``onnx`` package is not needed to build it.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

try:  # the passes around the products in C (search/_int8.c), built by pip install
    from search import _int8
except ImportError:  # not built (no compiler): the same arithmetic in numpy
    _int8 = None

_UINT8, _INT8, _INT32 = 2, 3, 6  # onnx TensorProto.DataType
_ZERO = 128  # activations are int8 stored as uint8 with this offset


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, value: bytes | int) -> bytes:
    """A protobuf field: an int as a varint, bytes length-delimited."""
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _value_info(name: str, elem_type: int, dims: list[int | str]) -> bytes:
    shape = b"".join(
        _field(1, _field(2, d.encode()) if isinstance(d, str) else _field(1, d)) for d in dims
    )
    tensor_type = _field(1, elem_type) + _field(2, shape)
    return _field(1, name.encode()) + _field(2, _field(1, tensor_type))


def _tensor(name: str, elem_type: int, dims: list[int], raw: bytes) -> bytes:
    return (
        b"".join(_field(1, d) for d in dims)
        + _field(2, elem_type)
        + _field(8, name.encode())
        + _field(9, raw)
    )


def matmul_model(weights: np.ndarray) -> bytes:
    """An ONNX model of one ``MatMulInteger``: A (uint8, offset 128) @ weights (int8)."""
    k, n = weights.shape
    node = _field(1, b"A") + _field(1, b"B") + _field(1, b"Z") + _field(2, b"Y")
    node += _field(4, b"MatMulInteger")
    graph = _field(1, node) + _field(2, b"matmul")
    graph += _field(5, _tensor("B", _INT8, [k, n], np.ascontiguousarray(weights).tobytes()))
    graph += _field(5, _tensor("Z", _UINT8, [], struct.pack("B", _ZERO)))
    graph += _field(11, _value_info("A", _UINT8, ["M", k]))
    graph += _field(12, _value_info("Y", _INT32, ["M", n]))
    opset = _field(1, b"") + _field(2, 13)
    return _field(1, 8) + _field(8, opset) + _field(7, graph)


def available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def quantize_rows(x: np.ndarray, kernel: Any = _int8) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 rows offset by 128, float32 scale per row) of float32 rows (``kernel``:
    the C module, or None for numpy)."""
    if kernel is not None:
        x = np.ascontiguousarray(x, dtype=np.float32)
        out = np.empty(x.shape, dtype=np.uint8)
        row_scales = np.empty(x.shape[0], dtype=np.float32)
        kernel.quantize_rows(x, x.shape[1], out, row_scales)
        return out, row_scales
    scales = np.abs(x).max(axis=1)
    scales /= 127.0
    scales[scales == 0] = 1.0
    q = x / scales[:, None]
    np.rint(q, out=q)
    q += _ZERO
    return q.astype(np.uint8), scales


class Dense:
    """x @ w + b for float32 x, by int8 products on one thread."""

    def __init__(self, w: np.ndarray, b: np.ndarray) -> None:
        import onnxruntime as ort

        scales = np.abs(w).max(axis=0) / 127.0
        scales[scales == 0] = 1.0
        self.scales = scales.astype(np.float32)
        self.bias = np.asarray(b, dtype=np.float32)
        q = np.rint(w / self.scales).astype(np.int8)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.enable_cpu_mem_arena = False  # an arena per product held 10 MB or more each
        self._session: Any = ort.InferenceSession(
            matmul_model(q), options, providers=["CPUExecutionProvider"]
        )

    def products(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(int32 products of x's quantised rows, the rows' scales)."""
        q, row_scales = quantize_rows(x)
        (y,) = self._session.run(None, {"A": q})
        return y, row_scales

    def __call__(self, x: np.ndarray, into: np.ndarray | None = None) -> np.ndarray:
        """x @ w + b, or added to ``into`` (a residual) and ``into`` returned."""
        y, row_scales = self.products(x)
        return dequantize(y, row_scales, self.scales, self.bias, into)


def dequantize(
    y: np.ndarray,
    row_scales: np.ndarray,
    col_scales: np.ndarray,
    bias: np.ndarray,
    into: np.ndarray | None = None,
    kernel: Any = _int8,
) -> np.ndarray:
    """y * row scale * column scale + bias as float32, or added to ``into``."""
    if kernel is not None and (into is None or into.flags.c_contiguous):
        accumulate = into is not None
        out = into if into is not None else np.empty(y.shape, dtype=np.float32)
        kernel.dequantize(y, y.shape[1], row_scales, col_scales, bias, out, accumulate)
        return out
    out = np.multiply(y, col_scales, dtype=np.float32)
    out *= row_scales.astype(np.float32)[:, None]
    out += bias
    if into is None:
        return out
    into += out
    return into
