/* The two inner loops of search.vectors.VectorIndex, in C.
 *
 * numpy runs them as a dozen whole-array passes (popcounts, ANDs, gathers, sums), each
 * writing a temporary the size of the collection; here each row is read once and its
 * score kept in registers. Same arithmetic as the numpy code they replace (which stays
 * as the reference, and the fallback where this module was not built), so the tests
 * compare the two:
 *
 * first_pass(planes, weights, low, step, words, positions, out)
 *     planes: uint64 (rows, words), the sign plane (as positive bits); weights: uint64
 *     (words, 4), the query's 4 level bit planes; positions: int64 rows to score, or
 *     None for all; out: float32, one per row scored:
 *     out = low * popcount(row) + step * sum_bit 2^bit * popcount(row & weight_bit)
 *
 * dots(planes, low, tables, words, nplanes, positions, out)
 *     low: uint64 (rows, 7, words), bits 6..0, each row's one run of memory; tables: float32 (nplanes, words * 8, 256), the query's weighted sums over each byte's bit
 *     patterns; out: float32, one per position: the sum of the table entries the row's
 *     top nplanes bytes pick.
 *
 * The GIL is released meanwhile: the other request of a server's worker runs.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_buffer.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define HAVE_DISPATCH 1
#define POPCNT_TARGET __attribute__((target("popcnt")))
#else
#define HAVE_DISPATCH 0
#define POPCNT_TARGET
#endif

#define PREFETCH 8  /* candidates ahead whose memory is asked for */

/* -- the binary first pass ------------------------------------------------------------ */

/* With the row's words known at compile time (6: e5's 384 dimensions), the loop over
 * them unrolls and the query's 24 weight words stay in registers (a fifth faster here). */
#define FIRST_PASS_BODY                                                                \
    if (words == 6) {                                                                  \
        FIRST_PASS_ROWS(6)                                                             \
    } else {                                                                           \
        FIRST_PASS_ROWS(words)                                                         \
    }

#define FIRST_PASS_ROWS(WORDS)                                                         \
    for (Py_ssize_t i = 0; i < n; i++) {                                               \
        Py_ssize_t r = positions ? (Py_ssize_t)positions[i] : i;                       \
        unsigned count = 0, h0 = 0, h1 = 0, h2 = 0, h3 = 0;                            \
        for (Py_ssize_t w = 0; w < (WORDS); w++) {                                     \
            uint64_t v = planes[r * (WORDS) + w];                                      \
            const uint64_t *q = weights + 4 * w;                                       \
            count += (unsigned)__builtin_popcountll(v);                                \
            h0 += (unsigned)__builtin_popcountll(v & q[0]);                            \
            h1 += (unsigned)__builtin_popcountll(v & q[1]);                            \
            h2 += (unsigned)__builtin_popcountll(v & q[2]);                            \
            h3 += (unsigned)__builtin_popcountll(v & q[3]);                            \
        }                                                                              \
        float total = (float)h0 + 2.0f * (float)h1 + 4.0f * (float)h2 + 8.0f * (float)h3; \
        out[i] = low * (float)count + step * total;                                    \
    }

static void first_pass_plain(const uint64_t *planes, Py_ssize_t words, Py_ssize_t rows,
                             const uint64_t *weights, float low, float step,
                             const int64_t *positions, Py_ssize_t n, float *out) {
    FIRST_PASS_BODY
}

#if HAVE_DISPATCH
POPCNT_TARGET
static void first_pass_popcnt(const uint64_t *planes, Py_ssize_t words, Py_ssize_t rows,
                              const uint64_t *weights, float low, float step,
                              const int64_t *positions, Py_ssize_t n, float *out) {
    FIRST_PASS_BODY
}
#endif

static int has_popcnt(void) {
#if HAVE_DISPATCH
    static int known = -1;
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("popcnt") ? 1 : 0;
    }
    return known;
#else
    return 0;
#endif
}

static int check_positions(const int64_t *positions, Py_ssize_t n, Py_ssize_t rows) {
    for (Py_ssize_t i = 0; i < n; i++) {
        if (positions[i] < 0 || positions[i] >= rows) {
            PyErr_Format(PyExc_IndexError, "position %lld outside 0..%zd",
                         (long long)positions[i], rows - 1);
            return -1;
        }
    }
    return 0;
}

static PyObject *first_pass(PyObject *self, PyObject *args) {
    PyObject *planes_obj, *weights_obj, *positions_obj, *out_obj;
    float low, step;
    Py_ssize_t words;
    if (!PyArg_ParseTuple(args, "OOffnOO", &planes_obj, &weights_obj, &low, &step, &words,
                          &positions_obj, &out_obj)) {
        return NULL;
    }
    buffer planes = {0}, weights = {0}, positions = {0}, out = {0};
    PyObject *result = NULL;
    if (take(planes_obj, &planes, "planes", 8, 0) < 0 ||
        take(weights_obj, &weights, "weights", 8, 0) < 0 ||
        (positions_obj != Py_None && take(positions_obj, &positions, "positions", 8, 0) < 0) ||
        take(out_obj, &out, "out", 4, 1) < 0) {
        goto done;
    }
    if (words <= 0 || planes.view.len % (8 * words) || weights.view.len != 32 * words) {
        PyErr_SetString(PyExc_ValueError, "planes and weights disagree on the words a row");
        goto done;
    }
    Py_ssize_t rows = planes.view.len / (8 * words);
    const int64_t *at = positions.held ? (const int64_t *)positions.view.buf : NULL;
    Py_ssize_t n = at ? positions.view.len / 8 : rows;
    if (out.view.len / 4 != n) {
        PyErr_SetString(PyExc_ValueError, "out needs one float32 a row scored");
        goto done;
    }
    if (at && check_positions(at, n, rows) < 0) {
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
#if HAVE_DISPATCH
    if (has_popcnt()) {
        first_pass_popcnt(planes.view.buf, words, rows, weights.view.buf, low, step, at, n,
                          out.view.buf);
    } else
#endif
    {
        first_pass_plain(planes.view.buf, words, rows, weights.view.buf, low, step, at, n,
                         out.view.buf);
    }
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    release(&planes);
    release(&weights);
    release(&positions);
    release(&out);
    return result;
}

/* -- table sums over the top bit planes ------------------------------------------------ */

static PyObject *dots(PyObject *self, PyObject *args) {
    PyObject *planes_obj, *low_obj, *tables_obj, *positions_obj, *out_obj;
    Py_ssize_t words, nplanes;
    if (!PyArg_ParseTuple(args, "OOOnnOO", &planes_obj, &low_obj, &tables_obj, &words,
                          &nplanes, &positions_obj, &out_obj)) {
        return NULL;
    }
    buffer planes = {0}, lows = {0}, tables = {0}, positions = {0}, out = {0};
    PyObject *result = NULL;
    if (take(planes_obj, &planes, "planes", 8, 0) < 0 ||
        take(low_obj, &lows, "low", 8, 0) < 0 ||
        take(tables_obj, &tables, "tables", 4, 0) < 0 ||
        take(positions_obj, &positions, "positions", 8, 0) < 0 ||
        take(out_obj, &out, "out", 4, 1) < 0) {
        goto done;
    }
    if (words <= 0 || nplanes < 1 || nplanes > 8 || planes.view.len % (8 * words)) {
        PyErr_SetString(PyExc_ValueError, "1 to 8 planes of a positive number of words");
        goto done;
    }
    Py_ssize_t rows = planes.view.len / (8 * words);
    Py_ssize_t n = positions.view.len / 8;
    if (lows.view.len != rows * 7 * words * 8 ||
        tables.view.len != nplanes * words * 8 * 256 * 4 || out.view.len / 4 != n) {
        PyErr_SetString(PyExc_ValueError, "low planes, tables or out of the wrong size");
        goto done;
    }
    const int64_t *at = positions.view.buf;
    if (check_positions(at, n, rows) < 0) {
        goto done;
    }
    const uint64_t *sign = planes.view.buf, *low = lows.view.buf;
    const float *table = tables.view.buf;
    float *dst = out.view.buf;
    Py_ssize_t stride = words * 8 * 256;  /* floats of one plane's tables */
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t r = (Py_ssize_t)at[i];
        if (i + PREFETCH < n) {  /* candidates are scattered: ask for a later one's lines */
            Py_ssize_t later = (Py_ssize_t)at[i + PREFETCH];
            __builtin_prefetch(sign + later * words);
            for (Py_ssize_t k = 1; k < nplanes; k += 1) {
                __builtin_prefetch(low + (later * 7 + k - 1) * words);
            }
        }
        /* one sum per byte of a word: eight independent chains of additions */
        float acc[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
        for (Py_ssize_t k = 0; k < nplanes; k++) {
            const float *t = table + k * stride;
            for (Py_ssize_t w = 0; w < words; w++) {
                uint64_t v = k == 0 ? sign[r * words + w] : low[(r * 7 + k - 1) * words + w];
                const float *tw = t + w * 8 * 256;
                for (int b = 0; b < 8; b++) {
                    acc[b] += tw[b * 256 + (unsigned)((v >> (8 * b)) & 0xff)];
                }
            }
        }
        float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        dst[i] = sum;
    }
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    release(&planes);
    release(&lows);
    release(&tables);
    release(&positions);
    release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"first_pass", first_pass, METH_VARARGS, "The binary first pass (see search.vectors)."},
    {"dots", dots, METH_VARARGS, "Sums of byte tables over rows' top bit planes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "search._bits", "VectorIndex's inner loops.", -1, methods,
};

PyMODINIT_FUNC PyInit__bits(void) { return PyModule_Create(&module); }
