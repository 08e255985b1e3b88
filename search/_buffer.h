/* A C-contiguous buffer taken from a Python object (numpy arrays, bytes), checked for
 * its item size, and released: shared by search/_bits.c and search/_int8.c. */
#ifndef SEARCH_BUFFER_H
#define SEARCH_BUFFER_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

typedef struct {
    Py_buffer view;
    int held;
} buffer;

static int take(PyObject *obj, buffer *b, const char *name, size_t item, int writable) {
    int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, &b->view, flags) < 0) {
        return -1;
    }
    b->held = 1;
    if ((size_t)b->view.itemsize != item || b->view.len % (Py_ssize_t)item) {
        PyErr_Format(PyExc_TypeError, "%s: items of %zu bytes expected", name, item);
        return -1;
    }
    return 0;
}

static void release(buffer *b) {
    if (b->held) {
        PyBuffer_Release(&b->view);
        b->held = 0;
    }
}

#endif
