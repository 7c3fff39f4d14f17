/* Line scans in C: logcaster.parsing._linescan. `candidate_lines` for multi-line
 * grouping (below); for the store's extractor, `json_tails` (the JSON shapes'
 * tails) and `byte_offsets` (a byte's offsets, by memchr), each described where
 * it is defined.
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
    Py_ssize_t *at; /* candidate_lines: pairs (offset, line number); byte_offsets: offsets */
    size_t n, cap;
} Found;

static int append(Found *f, Py_ssize_t value) {
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 256;
        Py_ssize_t *at = realloc(f->at, cap * sizeof *at);
        if (at == NULL) return -1;
        f->at = at;
        f->cap = cap;
    }
    f->at[f->n++] = value;
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
        if (append(f, s) < 0 || append(f, line) < 0) return -1;
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

/* json_tails: the tail of a flat JSON line as line_shapes._json_tail's pattern
 * accepts it (the store's extractor, parsing/extract.py): `,"KEY":VALUE` pairs
 * (KEY [A-Za-z0-9_]+, not one of the shape's first keys; VALUE a string of
 * printable ASCII without '"' or '\\', a number of at most 18 integer and 17
 * fraction digits without a leading zero, true, false or null), then '}' and a
 * newline or an escaped one. In sre that lookahead cost ~1 us a line. */
static int is_word(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static int literal(const unsigned char **p, const unsigned char *end, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(end - *p) < n || memcmp(*p, word, n) != 0) return 0;
    *p += n;
    return 1;
}

static int first_key(const unsigned char *k, Py_ssize_t n, int zap) {
    static const char *flat[] = {"timestamp", "level", "service"};
    static const char *zapped[] = {"level", "ts", "service"};
    const char **keys = zap ? zapped : flat;
    for (int i = 0; i < 3; i++)
        if ((size_t)n == strlen(keys[i]) && memcmp(k, keys[i], (size_t)n) == 0) return 1;
    return 0;
}

static int value(const unsigned char **at, const unsigned char *end) {
    const unsigned char *p = *at;
    if (p < end && *p == '"') {
        for (p++; p < end && *p >= 0x20 && *p <= 0x7e && *p != '"' && *p != '\\'; p++) {
        }
        if (p == end || *p != '"') return 0;
        *at = p + 1;
        return 1;
    }
    if (literal(at, end, "true") || literal(at, end, "false") || literal(at, end, "null")) return 1;
    if (p < end && *p == '-') p++;
    if (p < end && *p == '0') {
        p++;
    } else if (p < end && *p >= '1' && *p <= '9') {
        p++;
        for (int n = 0; n < 17 && p < end && is_digit(*p); n++) p++;
    } else {
        return 0;
    }
    if (p < end && *p == '.') {
        p++;
        int n = 0;
        for (; n < 17 && p < end && is_digit(*p); n++) p++;
        if (n == 0) return 0;
    }
    *at = p;
    return 1;
}

static int tail_ok(const unsigned char *p, const unsigned char *end, int zap) {
    for (;;) {
        if (p < end && *p == '}') {
            p++;
            return p < end && (*p == '\n' || (*p == '\\' && p + 1 < end && p[1] == 'n'));
        }
        if (end - p < 2 || p[0] != ',' || p[1] != '"') return 0;
        p += 2;
        const unsigned char *k = p;
        while (p < end && is_word(*p)) p++;
        if (p == k || end - p < 2 || p[0] != '"' || p[1] != ':' || first_key(k, p - k, zap))
            return 0;
        p += 2;
        if (!value(&p, end)) return 0;
    }
}

static PyObject *json_tails(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer buf, starts;
    int zap;
    if (!PyArg_ParseTuple(args, "y*y*p", &buf, &starts, &zap)) return NULL;
    PyObject *out = NULL;
    Py_ssize_t n = starts.len / (Py_ssize_t)sizeof(int64_t);
    const int64_t *at = starts.buf;
    if (starts.len % (Py_ssize_t)sizeof(int64_t) != 0) {
        PyErr_SetString(PyExc_ValueError, "starts: int64 offsets");
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (at[i] < 0 || at[i] > buf.len) {
            PyErr_SetString(PyExc_ValueError, "a start outside the buffer");
            goto done;
        }
    }
    out = PyBytes_FromStringAndSize(NULL, n);
    if (out == NULL) goto done;
    char *ok = PyBytes_AS_STRING(out);
    const unsigned char *b = buf.buf, *end = b + buf.len;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) ok[i] = (char)tail_ok(b + at[i], end, zap);
    Py_END_ALLOW_THREADS
done:
    PyBuffer_Release(&buf);
    PyBuffer_Release(&starts);
    return out;
}

/* byte_offsets: where a byte occurs in buffer[:end], as int64 offsets; a memchr
 * walk, ~5x np.flatnonzero(buf == byte) for a newline a line (which builds a
 * bool array and then scans it). */
_Static_assert(sizeof(Py_ssize_t) == sizeof(int64_t), "offsets are returned as int64");

static PyObject *byte_offsets(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer buf;
    int byte;
    Py_ssize_t end;
    if (!PyArg_ParseTuple(args, "y*in", &buf, &byte, &end)) return NULL;
    PyObject *out = NULL;
    if (end < 0 || end > buf.len || byte < 0 || byte > 255) {
        PyErr_SetString(PyExc_ValueError, "end outside the buffer, or not a byte");
        goto done;
    }
    Found f = {NULL, 0, 0};
    int rc = 0;
    const unsigned char *b = buf.buf;
    Py_BEGIN_ALLOW_THREADS
    for (const unsigned char *p = b, *stop = b + end; p < stop;) {
        const unsigned char *at = memchr(p, byte, (size_t)(stop - p));
        if (at == NULL) break;
        if (append(&f, at - b) < 0) {
            rc = -1;
            break;
        }
        p = at + 1;
    }
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        PyErr_NoMemory();
    } else {
        out = PyBytes_FromStringAndSize((const char *)f.at, (Py_ssize_t)(f.n * sizeof *f.at));
    }
    free(f.at);
done:
    PyBuffer_Release(&buf);
    return out;
}

static PyMethodDef methods[] = {
    {"candidate_lines", candidate_lines, METH_O,
     "candidate_lines(body) -> ([start, line, start, line, ...], newlines): the lines\n"
     "(offset after a newline, and line number) that trace_lines.CANDIDATES may match,\n"
     "in order, and the body's newline count."},
    {"byte_offsets", byte_offsets, METH_VARARGS,
     "byte_offsets(buffer, byte, end) -> bytes: the int64 offsets of byte in buffer[:end]."},
    {"json_tails", json_tails, METH_VARARGS,
     "json_tails(buffer, starts, zap) -> bytes: for each int64 offset in starts, 1 where a\n"
     "flat JSON line's tail as line_shapes accepts it starts there (zap: the keys\n"
     "level/ts/service may not come again, else timestamp/level/service), else 0."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_linescan", "Line scans for grouping and the store's extractor.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__linescan(void) { return PyModule_Create(&module); }
