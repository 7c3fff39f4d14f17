/* The lines multi-line grouping must look at, found in C: logcaster.parsing._linescan.
 *
 * Grouper._candidates (parsing/multiline.py) runs trace_lines.CANDIDATES over each
 * read. sre tries it at every newline, ~110-150 ns a line on the bench corpora,
 * though almost every line fails at its first bytes: one starting with "[", "{",
 * "<" or a digit, or with a logfmt `key=`, can only be a candidate when the line
 * before it ends in ":" or " " (the pattern's `open` alternative). Here one pass
 * with memchr finds the lines that are not ruled out so (a superset of the
 * pattern's matches: the regex still decides each), with their line numbers, so
 * the walk no longer counts newlines between candidates either, and the body's
 * line count (the framer's escaped reads have no list of lines). The GIL is
 * released during the pass.
 *
 * Built by scripts/build-native (from `make`); without it the grouping scans
 * with the regex alone, with the same candidates.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* First bytes that fail CANDIDATES' `\n(?![\[{<0-9])` */
static int header_byte(unsigned char c) {
    return c == '[' || c == '{' || c == '<' || (c >= '0' && c <= '9');
}

/* Whether the line at s starts with `[a-z]+=` (CANDIDATES' `(?![a-z]++=)`). */
static int starts_key(const unsigned char *b, Py_ssize_t s, Py_ssize_t n) {
    Py_ssize_t i = s;
    while (i < n && b[i] >= 'a' && b[i] <= 'z') i++;
    return i > s && i < n && b[i] == '=';
}

typedef struct {
    Py_ssize_t *at; /* pairs: the line's offset, its number */
    size_t n, cap;
} Found;

static int push(Found *f, Py_ssize_t start, Py_ssize_t line) {
    if (f->n + 2 > f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 256;
        Py_ssize_t *at = realloc(f->at, cap * sizeof *at);
        if (at == NULL) return -1;
        f->at = at;
        f->cap = cap;
    }
    f->at[f->n++] = start;
    f->at[f->n++] = line;
    return 0;
}

static int find(const unsigned char *b, Py_ssize_t n, Found *f, Py_ssize_t *lines) {
    Py_ssize_t line = 0;
    const unsigned char *p = b, *end = b + n;
    while (p < end) {
        const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL) break;
        Py_ssize_t s = nl - b + 1; /* the next line's start */
        line++;
        p = nl + 1;
        if (s < n && header_byte(b[s])) continue;
        /* A key line only after a line ending in ":" or " " (`open`) */
        if (s < n && starts_key(b, s, n) && !(s >= 2 && (b[s - 2] == ':' || b[s - 2] == ' ')))
            continue;
        if (push(f, s, line) < 0) return -1;
    }
    *lines = line;
    return 0;
}

static PyObject *candidate_lines(PyObject *self, PyObject *arg) {
    (void)self;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    Found f = {NULL, 0, 0};
    Py_ssize_t newlines = 0;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = find((const unsigned char *)view.buf, view.len, &f, &newlines);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (rc < 0) {
        free(f.at);
        return PyErr_NoMemory();
    }
    PyObject *out = PyList_New((Py_ssize_t)f.n);
    for (size_t i = 0; out != NULL && i < f.n; i++) {
        PyObject *v = PyLong_FromSsize_t(f.at[i]);
        if (v == NULL) Py_CLEAR(out);
        else PyList_SET_ITEM(out, (Py_ssize_t)i, v);
    }
    free(f.at);
    return out == NULL ? NULL : Py_BuildValue("Nn", out, newlines);
}

static PyMethodDef methods[] = {
    {"candidate_lines", candidate_lines, METH_O,
     "candidate_lines(body) -> ([start, line, start, line, ...], newlines): the lines\n"
     "(offset after a newline, and line number) that trace_lines.CANDIDATES may match,\n"
     "in order, and the body's newline count."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_linescan", "Multi-line grouping's candidate lines, in C.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__linescan(void) { return PyModule_Create(&module); }
