/* The passes around search.onnx_int8's integer products, in C.
 *
 * numpy quantises a block of activations in five whole-array passes and turns the
 * int32 products back into floats in four; here each is one pass over the rows, in
 * cache. Same arithmetic as the numpy code (the reference and the fallback; the tests
 * compare the two): rounding to nearest, ties to even, as numpy.rint.
 *
 * quantize_rows(x, k, out, scales)
 *     x: float32 (rows, k); out: uint8 (rows, k), round(x / scale) + 128; scales:
 *     float32 (rows,), max |x| of the row / 127 (1 for a row of zeros).
 *
 * dequantize(y, n, row_scales, col_scales, bias, out, accumulate)
 *     y: int32 (rows, n); out: float32 (rows, n), y * row_scale * col_scale + bias,
 *     added to what out holds when accumulate is true (a residual).
 *
 * The GIL is released meanwhile.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "_buffer.h"

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define WIDE __attribute__((target_clones("avx2", "default")))
#else
#define WIDE
#endif

/* 1.5 * 2^23: adding and subtracting it rounds a float below 2^22 to nearest-even. */
#define ROUNDER 12582912.0f

WIDE static void quantize_loop(const float *x, Py_ssize_t rows, Py_ssize_t k, uint8_t *out,
                               float *scales) {
    for (Py_ssize_t r = 0; r < rows; r++) {
        const float *row = x + r * k;
        /* max |x| as the bits of non-negative floats, whose order as integers is
         * theirs as floats: a loop the compiler vectorises (a float max it may not) */
        const uint32_t *bits = (const uint32_t *)row;
        uint32_t top = 0;
        for (Py_ssize_t i = 0; i < k; i++) {
            uint32_t a = bits[i] & 0x7fffffffu;
            top = a > top ? a : top;
        }
        float peak;
        memcpy(&peak, &top, sizeof peak);
        float scale = peak / 127.0f;
        if (scale == 0.0f) {
            scale = 1.0f;
        }
        scales[r] = scale;
        uint8_t *dst = out + r * k;
        for (Py_ssize_t i = 0; i < k; i++) {
            float q = row[i] / scale;
            q = (q + ROUNDER) - ROUNDER;
            dst[i] = (uint8_t)(int32_t)(q + 128.0f);
        }
    }
}

WIDE static void dequantize_loop(const int32_t *y, Py_ssize_t rows, Py_ssize_t n,
                                 const float *row_scales, const float *col_scales,
                                 const float *bias, float *out, int accumulate) {
    for (Py_ssize_t r = 0; r < rows; r++) {
        const int32_t *src = y + r * n;
        float *dst = out + r * n;
        float rs = row_scales[r];
        if (accumulate) {
            for (Py_ssize_t j = 0; j < n; j++) {
                dst[j] += ((float)src[j] * col_scales[j]) * rs + bias[j];
            }
        } else {
            for (Py_ssize_t j = 0; j < n; j++) {
                dst[j] = ((float)src[j] * col_scales[j]) * rs + bias[j];
            }
        }
    }
}

static PyObject *quantize_rows(PyObject *self, PyObject *args) {
    PyObject *x_obj, *out_obj, *scales_obj;
    Py_ssize_t k;
    if (!PyArg_ParseTuple(args, "OnOO", &x_obj, &k, &out_obj, &scales_obj)) {
        return NULL;
    }
    buffer x = {0}, out = {0}, scales = {0};
    PyObject *result = NULL;
    if (take(x_obj, &x, "x", 4, 0) < 0 || take(out_obj, &out, "out", 1, 1) < 0 ||
        take(scales_obj, &scales, "scales", 4, 1) < 0) {
        goto done;
    }
    if (k <= 0 || (x.view.len / 4) % k) {
        PyErr_SetString(PyExc_ValueError, "x is not rows of k floats");
        goto done;
    }
    Py_ssize_t rows = x.view.len / 4 / k;
    if (out.view.len != rows * k || scales.view.len / 4 != rows) {
        PyErr_SetString(PyExc_ValueError, "out or scales of the wrong size");
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    quantize_loop(x.view.buf, rows, k, out.view.buf, scales.view.buf);
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    release(&x);
    release(&out);
    release(&scales);
    return result;
}

static PyObject *dequantize(PyObject *self, PyObject *args) {
    PyObject *y_obj, *rs_obj, *cs_obj, *bias_obj, *out_obj;
    Py_ssize_t n;
    int accumulate;
    if (!PyArg_ParseTuple(args, "OnOOOOp", &y_obj, &n, &rs_obj, &cs_obj, &bias_obj, &out_obj,
                          &accumulate)) {
        return NULL;
    }
    buffer y = {0}, rs = {0}, cs = {0}, bias = {0}, out = {0};
    PyObject *result = NULL;
    if (take(y_obj, &y, "y", 4, 0) < 0 || take(rs_obj, &rs, "row_scales", 4, 0) < 0 ||
        take(cs_obj, &cs, "col_scales", 4, 0) < 0 || take(bias_obj, &bias, "bias", 4, 0) < 0 ||
        take(out_obj, &out, "out", 4, 1) < 0) {
        goto done;
    }
    if (n <= 0 || (y.view.len / 4) % n) {
        PyErr_SetString(PyExc_ValueError, "y is not rows of n products");
        goto done;
    }
    Py_ssize_t rows = y.view.len / 4 / n;
    if (rs.view.len / 4 != rows || cs.view.len / 4 != n || bias.view.len / 4 != n ||
        out.view.len != y.view.len) {
        PyErr_SetString(PyExc_ValueError, "scales, bias or out of the wrong size");
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    dequantize_loop(y.view.buf, rows, n, rs.view.buf, cs.view.buf, bias.view.buf, out.view.buf,
                    accumulate);
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    release(&y);
    release(&rs);
    release(&cs);
    release(&bias);
    release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"quantize_rows", quantize_rows, METH_VARARGS, "float32 rows to uint8 and a scale each."},
    {"dequantize", dequantize, METH_VARARGS, "int32 products to float32, scaled, biased."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "search._int8", "The passes around int8 products.", -1, methods,
};

PyMODINIT_FUNC PyInit__int8(void) { return PyModule_Create(&module); }
