/* A raw block's payload escaped in C: logcaster.segments._escape (segments/blocks.py).
 *
 * encode_payload turns a batch's texts into escaped lines: "\" -> "\\", LF -> "\n",
 * CR -> "\r", a leading "#" -> "\#", each text ending in a newline. In Python
 * that is a join, a count and one or more replaces over the whole batch, ~15% of
 * the server's GIL time at 8 connections. Here the texts are measured and copied
 * with the GIL released (the writer thread's encoding then runs beside the event
 * loop), and a text with nothing to escape is one memcpy.
 *
 * Built by scripts/build-native (from `make`); without it encode_payload escapes
 * in Python, with the same bytes (tests/test_segments_escape.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* Bytes to escape in a text: each costs one more byte. Counted in byte lanes,
 * 255 bytes at a time (a wider counter would take a vector per 2-4 bytes). */
static Py_ssize_t specials(const unsigned char *p, Py_ssize_t n) {
    Py_ssize_t k = 0;
    for (Py_ssize_t at = 0; at < n; at += 255) {
        Py_ssize_t end = n - at < 255 ? n : at + 255;
        unsigned char lane = 0;
        for (Py_ssize_t i = at; i < end; i++)
            lane += (p[i] == '\\') | (p[i] == '\n') | (p[i] == '\r');
        k += lane;
    }
    return k;
}

static char *escape(char *o, const unsigned char *p, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c == '\\' || c == '\n' || c == '\r') {
            *o++ = '\\';
            *o++ = c == '\\' ? '\\' : c == '\n' ? 'n' : 'r';
        } else {
            *o++ = (char)c;
        }
    }
    return o;
}

static PyObject *encode_payload(PyObject *self, PyObject *arg) {
    (void)self;
    /* A tuple of our own: the texts stay referenced while the GIL is released. */
    PyObject *texts = PySequence_Tuple(arg);
    if (texts == NULL) return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(texts);
    Py_ssize_t *extra = PyMem_Calloc((size_t)(n ? n : 1), sizeof *extra);
    if (extra == NULL) {
        Py_DECREF(texts);
        return PyErr_NoMemory();
    }
    Py_ssize_t total = n;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PyTuple_GET_ITEM(texts, i);
        if (!PyBytes_Check(t)) {
            PyErr_Format(PyExc_TypeError, "texts must be bytes, not %.100s", Py_TYPE(t)->tp_name);
            PyMem_Free(extra);
            Py_DECREF(texts);
            return NULL;
        }
        total += PyBytes_GET_SIZE(t);
    }
    Py_ssize_t more = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PyTuple_GET_ITEM(texts, i);
        const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(t);
        Py_ssize_t len = PyBytes_GET_SIZE(t);
        extra[i] = specials(p, len) + (len > 0 && p[0] == '#');
        more += extra[i];
    }
    Py_END_ALLOW_THREADS
    PyObject *out = PyBytes_FromStringAndSize(NULL, total + more);
    if (out != NULL) {
        char *o = PyBytes_AS_STRING(out);
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *t = PyTuple_GET_ITEM(texts, i);
            const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(t);
            Py_ssize_t len = PyBytes_GET_SIZE(t);
            if (extra[i] == 0) {
                memcpy(o, p, (size_t)len);
                o += len;
            } else {
                if (p[0] == '#') *o++ = '\\'; /* (the "#" itself is copied below) */
                o = escape(o, p, len);
            }
            *o++ = '\n';
        }
        Py_END_ALLOW_THREADS
    }
    PyMem_Free(extra);
    Py_DECREF(texts);
    return out;
}

static PyMethodDef methods[] = {
    {"encode_payload", encode_payload, METH_O,
     "encode_payload(texts) -> bytes: the escaped lines of texts (segments/blocks.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_escape", "Raw block payloads escaped in C.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__escape(void) { return PyModule_Create(&module); }
