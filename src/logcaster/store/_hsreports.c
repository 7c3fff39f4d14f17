/* Hyperscan reports collected in C: logcaster.store._hsreports (store/hs_reports.py).
 *
 * python-hyperscan calls a Python function for every report, and takes the GIL
 * for it: a regex that matches on 4% of lines pays ~0.25 us a report, and two
 * scan threads that both report hand the GIL to each other at every one, so
 * dense scans ran on one thread (store/scan_pool.py). Here a report is an
 * int64 appended to a growing C array while the GIL is released; the scan
 * returns them as bytes (`id << 40 | end`, or `end` for a single expression,
 * `end` absolute in the buffer), what Scanner.hits returns.
 *
 * Built by scripts/build-native (from `make`) where libhs's headers are
 * (Debian: libhyperscan-dev); without it the store uses python-hyperscan's
 * callbacks, with the same results.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <hs/hs.h>
#include <stdint.h>
#include <stdlib.h>

#define SPARE 8 /* scratch spaces kept for reuse: one per concurrent scan */

typedef struct {
    PyObject_HEAD
    hs_database_t *db;
    hs_scratch_t *proto;         /* each concurrent scan needs a scratch of its own */
    hs_scratch_t *spare[SPARE];  /* guarded by the GIL */
    int spares;
    int many;
} Reports;

typedef struct {
    int64_t *at;
    size_t n, cap;
    int64_t base;
    int many;
    int failed;
} Sink;

static int on_match(unsigned int id, unsigned long long from, unsigned long long to,
                    unsigned int flags, void *ctx) {
    (void)from;
    (void)flags;
    Sink *s = (Sink *)ctx;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4096;
        int64_t *at = realloc(s->at, cap * sizeof *at);
        if (at == NULL) {
            s->failed = 1;
            return 1; /* stops the scan */
        }
        s->at = at;
        s->cap = cap;
    }
    int64_t end = (int64_t)to + s->base;
    s->at[s->n++] = s->many ? ((int64_t)id << 40 | end) : end;
    return 0;
}

static int Reports_init(Reports *self, PyObject *args, PyObject *kwds) {
    static char *names[] = {"expressions", NULL};
    PyObject *seq;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O", names, &seq)) return -1;
    if (self->db != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "already compiled");
        return -1;
    }
    /* A tuple of its own: the bytes stay referenced while the GIL is released. */
    PyObject *fast = PySequence_Tuple(seq);
    if (fast == NULL) return -1;
    Py_ssize_t n = PyTuple_GET_SIZE(fast);
    if (n < 1 || n > 1 << 20) {
        Py_DECREF(fast);
        PyErr_SetString(PyExc_ValueError, "expressions: 1 or more");
        return -1;
    }
    const char **exprs = PyMem_Calloc((size_t)n, sizeof *exprs);
    unsigned int *flags = PyMem_Calloc((size_t)n, sizeof *flags);
    unsigned int *ids = PyMem_Calloc((size_t)n, sizeof *ids);
    int rc = -1;
    if (exprs == NULL || flags == NULL || ids == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(fast, i);
        if (!PyBytes_Check(item)) {
            PyErr_SetString(PyExc_TypeError, "expressions: a sequence of bytes");
            goto done;
        }
        exprs[i] = PyBytes_AS_STRING(item);
        flags[i] = HS_FLAG_MULTILINE; /* as Scanner._compile */
        ids[i] = (unsigned int)i;
    }
    hs_compile_error_t *err = NULL;
    hs_database_t *db = NULL;
    hs_error_t status;
    Py_BEGIN_ALLOW_THREADS
    status = hs_compile_multi(exprs, flags, ids, (unsigned int)n, HS_MODE_BLOCK, NULL, &db, &err);
    Py_END_ALLOW_THREADS
    if (status != HS_SUCCESS) {
        PyErr_SetString(PyExc_ValueError, err != NULL ? err->message : "compile failed");
        hs_free_compile_error(err);
        goto done;
    }
    hs_scratch_t *proto = NULL;
    if (hs_alloc_scratch(db, &proto) != HS_SUCCESS) {
        hs_free_database(db);
        PyErr_NoMemory();
        goto done;
    }
    self->db = db;
    self->proto = proto;
    self->many = n > 1;
    rc = 0;
done:
    PyMem_Free(exprs);
    PyMem_Free(flags);
    PyMem_Free(ids);
    Py_DECREF(fast);
    return rc;
}

static void Reports_dealloc(Reports *self) {
    for (int i = 0; i < self->spares; i++) hs_free_scratch(self->spare[i]);
    if (self->proto != NULL) hs_free_scratch(self->proto);
    if (self->db != NULL) hs_free_database(self->db);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A scratch space for one scan (the GIL held): a spare one, or a new clone. */
static hs_scratch_t *take_scratch(Reports *self) {
    hs_scratch_t *scratch = NULL;
    if (self->spares > 0) return self->spare[--self->spares];
    if (hs_clone_scratch(self->proto, &scratch) != HS_SUCCESS) return NULL;
    return scratch;
}

static void give_scratch(Reports *self, hs_scratch_t *scratch) {
    if (self->spares < SPARE) {
        self->spare[self->spares++] = scratch;
    } else {
        hs_free_scratch(scratch);
    }
}

/* The reports as bytes, or the scan's error; frees them. */
static PyObject *reports_bytes(Sink *sink, hs_error_t status) {
    PyObject *out = NULL;
    if (sink->failed) {
        PyErr_NoMemory();
    } else if (status != HS_SUCCESS) {
        PyErr_Format(PyExc_RuntimeError, "hs_scan failed: %d", (int)status);
    } else {
        out = PyBytes_FromStringAndSize((const char *)sink->at, (Py_ssize_t)(sink->n * sizeof(int64_t)));
    }
    free(sink->at);
    return out;
}

/* Each [lo, hi) of the `n` pairs at `at` scanned alone in `obj`'s buffer, under
 * one release of the GIL: what both methods below do. */
static PyObject *scan_pairs(Reports *self, PyObject *obj, const int64_t *at, Py_ssize_t n) {
    if (self->db == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "not compiled");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t lo = at[2 * i], hi = at[2 * i + 1];
        if (lo < 0 || hi < lo || hi > view.len || hi - lo > (int64_t)UINT32_MAX) {
            PyBuffer_Release(&view);
            PyErr_SetString(PyExc_ValueError, "range out of the buffer");
            return NULL;
        }
    }
    hs_scratch_t *scratch = take_scratch(self);
    if (scratch == NULL) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    Sink sink = {NULL, 0, 0, 0, self->many, 0};
    hs_error_t status = HS_SUCCESS;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && status == HS_SUCCESS && !sink.failed; i++) {
        int64_t lo = at[2 * i], hi = at[2 * i + 1];
        sink.base = lo;
        status = hs_scan(self->db, (const char *)view.buf + lo, (unsigned int)(hi - lo), 0,
                         scratch, on_match, &sink);
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    give_scratch(self, scratch);
    return reports_bytes(&sink, status);
}

static PyObject *Reports_scan(Reports *self, PyObject *args) {
    PyObject *obj;
    Py_ssize_t lo, hi;
    if (!PyArg_ParseTuple(args, "Onn", &obj, &lo, &hi)) return NULL;
    int64_t pair[2] = {(int64_t)lo, (int64_t)hi};
    return scan_pairs(self, obj, pair, 1);
}

/* A gather of lines scanned where they lie, without copying them into one buffer. */
static PyObject *Reports_scan_ranges(Reports *self, PyObject *args) {
    PyObject *obj;
    Py_buffer pairs;
    if (!PyArg_ParseTuple(args, "Oy*", &obj, &pairs)) return NULL;
    PyObject *out = NULL;
    if (pairs.len % (2 * (Py_ssize_t)sizeof(int64_t)) != 0) {
        PyErr_SetString(PyExc_ValueError, "ranges: int64 (lo, hi) pairs");
    } else {
        Py_ssize_t n = pairs.len / (Py_ssize_t)(2 * sizeof(int64_t));
        out = scan_pairs(self, obj, (const int64_t *)pairs.buf, n);
    }
    PyBuffer_Release(&pairs);
    return out;
}

static PyMethodDef Reports_methods[] = {
    {"scan", (PyCFunction)Reports_scan, METH_VARARGS,
     "scan(buffer, lo, hi) -> bytes: every report in buffer[lo:hi] as native int64s"},
    {"scan_ranges", (PyCFunction)Reports_scan_ranges, METH_VARARGS,
     "scan_ranges(buffer, ranges) -> bytes: every report in each range alone"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ReportsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "logcaster.store._hsreports.Reports",
    .tp_basicsize = sizeof(Reports),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Reports(expressions): Hyperscan block-mode patterns whose reports are kept in C",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Reports_init,
    .tp_dealloc = (destructor)Reports_dealloc,
    .tp_methods = Reports_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_hsreports", "Hyperscan reports collected in C.", -1, NULL, NULL, NULL,
    NULL, NULL,
};

PyMODINIT_FUNC PyInit__hsreports(void) {
    if (PyType_Ready(&ReportsType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&ReportsType);
    if (PyModule_AddObject(m, "Reports", (PyObject *)&ReportsType) < 0) {
        Py_DECREF(&ReportsType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
