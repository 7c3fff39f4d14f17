/* A raw block's payload escaped in C: logcaster.segments._escape (segments/blocks.py).
 *
 * encode_payload turns a batch's texts into escaped lines: "\" -> "\\", LF -> "\n",
 * CR -> "\r", a leading "#" -> "\#", each text ending in a newline. In Python
 * that is a join, a count and one or more replaces over the whole batch, ~15% of
 * the server's GIL time at 8 connections. Here the texts are measured and copied
 * with the GIL released (the writer thread's encoding then runs beside the event
 * loop), and a text with nothing to escape is one memcpy.
 *
 * `escape_lines` does the same for a read of plain lines (pipeline/framing.py):
 * the lines of a body as they lie in it, each an event, after a head already
 * escaped, without a bytes object per line.
 *
 * Built by scripts/build-native (from `make`); without it encode_payload escapes
 * in Python, with the same bytes (tests/test_segments_escape.py), and the framer
 * splits reads into lines.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* Adds to `total` how many i in [0, n) pass `test` (an expression of i), counted
 * in byte lanes 255 at a time: vectorized at -O3, where a wider counter would take
 * a vector per 2-4 bytes. */
#define COUNT_IN_LANES(total, n, test)                                  \
    for (Py_ssize_t at_ = 0; at_ < (n); at_ += 255) {                   \
        Py_ssize_t end_ = (n) - at_ < 255 ? (n) : at_ + 255;            \
        unsigned char lane_ = 0;                                        \
        for (Py_ssize_t i = at_; i < end_; i++) lane_ += (test);        \
        (total) += lane_;                                               \
    }

/* Bytes to escape in a text: each costs one more byte. */
static Py_ssize_t specials(const unsigned char *p, Py_ssize_t n) {
    Py_ssize_t k = 0;
    COUNT_IN_LANES(k, n, (p[i] == '\\') | (p[i] == '\n') | (p[i] == '\r'));
    return k;
}

/* Escapes (backslashes, CRs) in p[0:n]. */
static Py_ssize_t escapes(const unsigned char *p, Py_ssize_t n) {
    Py_ssize_t k = 0;
    COUNT_IN_LANES(k, n, (p[i] == '\\') | (p[i] == '\r'));
    return k;
}

/* Newlines in a body, and the other bytes to escape (a line starting with "#" too):
 * both counts in one pass (two COUNT_IN_LANES passes and escapes() took 40 against
 * 28 us for a 256 KiB read). */
static void count_lines(const unsigned char *p, Py_ssize_t n, Py_ssize_t *lines,
                        Py_ssize_t *more) {
    Py_ssize_t nl = 0, k = 0;
    for (Py_ssize_t at = 0; at + 1 < n; at += 255) {
        Py_ssize_t end = n - 1 - at < 255 ? n - 1 : at + 255;
        unsigned char lane_nl = 0, lane = 0;
        for (Py_ssize_t i = at; i < end; i++) {
            lane_nl += p[i] == '\n';
            lane += (p[i] == '\\') | (p[i] == '\r') | ((p[i] == '\n') & (p[i + 1] == '#'));
        }
        nl += lane_nl;
        k += lane;
    }
    if (n > 0) {
        nl += p[n - 1] == '\n';
        k += (p[n - 1] == '\\') | (p[n - 1] == '\r');
        k += p[0] == '#';
    }
    *lines = nl;
    *more = k;
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

/* As escape(), newlines kept (they end the lines); "#" escaped after each. */
static char *escape_body(char *o, const unsigned char *p, Py_ssize_t n) {
    int start = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c == '\\' || c == '\r') {
            *o++ = '\\';
            *o++ = c == '\\' ? '\\' : 'r';
        } else {
            if (start && c == '#') *o++ = '\\';
            *o++ = (char)c;
        }
        start = c == '\n';
    }
    return o;
}

static PyObject *escape_lines(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer head, body;
    Py_ssize_t end;
    int closed;
    if (!PyArg_ParseTuple(args, "y*y*np", &head, &body, &end, &closed)) return NULL;
    PyObject *result = NULL;
    if (end < 0 || end > body.len) {
        PyErr_SetString(PyExc_ValueError, "end outside the body");
        goto done;
    }
    const unsigned char *p = body.buf;
    Py_ssize_t lines = 0, more = 0;
    Py_BEGIN_ALLOW_THREADS
    count_lines(p, end, &lines, &more);
    Py_END_ALLOW_THREADS
    lines += !closed; /* the last line, without a newline of its own in the body */
    PyObject *out = PyBytes_FromStringAndSize(NULL, head.len + end + !closed + more);
    if (out == NULL) goto done;
    char *o = PyBytes_AS_STRING(out);
    Py_BEGIN_ALLOW_THREADS
    memcpy(o, head.buf, (size_t)head.len);
    o += head.len;
    if (more == 0) {
        memcpy(o, p, (size_t)end);
        o += end;
    } else {
        o = escape_body(o, p, end);
    }
    if (!closed) *o++ = '\n';
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("Nn", out, lines);
done:
    PyBuffer_Release(&head);
    PyBuffer_Release(&body);
    return result;
}

typedef struct {
    const unsigned char *p;
    Py_ssize_t n;
    const Py_ssize_t *joins; /* line numbers that continue the line before, ascending */
    Py_ssize_t njoins;
    Py_ssize_t hold; /* lines from this one on are not written */
} Grouped;

/* Pass 1: where line `hold` starts, the events before it, the "#"s that start
 * them; 0 when an event breaks a bound (or the body has fewer lines). */
static int measure(const Grouped *g, Py_ssize_t max_lines, Py_ssize_t max_bytes,
                   Py_ssize_t *hold_at, Py_ssize_t *events, Py_ssize_t *hashes) {
    Py_ssize_t off = 0, start = 0, lines = 0, ji = 0;
    *events = *hashes = 0;
    for (Py_ssize_t li = 0; li < g->hold; li++) {
        const unsigned char *nl = memchr(g->p + off, '\n', (size_t)(g->n - off));
        if (nl == NULL) return 0;
        if (ji < g->njoins && g->joins[ji] == li) {
            ji++;
            lines++;
        } else {
            if (lines > max_lines || off - start > max_bytes) return 0;
            ++*events;
            *hashes += g->p[off] == '#';
            start = off;
            lines = 1;
        }
        off = nl - g->p + 1;
    }
    if (lines > max_lines || off - start > max_bytes) return 0;
    *hold_at = off;
    return 1;
}

/* Pass 2: the events' lines, joined ones after an escaped newline. */
static char *write_events(const Grouped *g, char *o, int plain) {
    Py_ssize_t off = 0, ji = 0;
    for (Py_ssize_t li = 0; li < g->hold; li++) {
        const unsigned char *line = g->p + off;
        const unsigned char *nl = memchr(line, '\n', (size_t)(g->n - off));
        Py_ssize_t len = nl - line;
        if (ji < g->njoins && g->joins[ji] == li) {
            ji++;
            o[-1] = '\\'; /* the newline just written is inside the event */
            *o++ = 'n';
        } else if (line[0] == '#') {
            *o++ = '\\';
        }
        if (plain) {
            memcpy(o, line, (size_t)len);
            o += len;
        } else {
            o = escape(o, line, len);
        }
        *o++ = '\n';
        off += len + 1;
    }
    return o;
}

static PyObject *escape_events(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer head, body;
    PyObject *joins_obj;
    Py_ssize_t hold, max_lines, max_bytes;
    if (!PyArg_ParseTuple(args, "y*y*O!nnn", &head, &body, &PyList_Type, &joins_obj, &hold,
                          &max_lines, &max_bytes))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t nj = PyList_GET_SIZE(joins_obj);
    Py_ssize_t *joins = PyMem_Calloc((size_t)(nj ? nj : 1), sizeof *joins);
    if (joins == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t used = 0;
    for (Py_ssize_t i = 0; i < nj; i++) {
        Py_ssize_t j = PyLong_AsSsize_t(PyList_GET_ITEM(joins_obj, i));
        if (j == -1 && PyErr_Occurred()) goto done;
        if (j <= 0 || (used && j <= joins[used - 1])) {
            PyErr_SetString(PyExc_ValueError, "joins: ascending line numbers above 0");
            goto done;
        }
        if (j < hold) joins[used++] = j;
    }
    Grouped g = {body.buf, body.len, joins, used, hold < 0 ? 0 : hold};
    Py_ssize_t hold_at = 0, events = 0, hashes = 0, more = 0;
    int ok;
    Py_BEGIN_ALLOW_THREADS
    ok = measure(&g, max_lines, max_bytes, &hold_at, &events, &hashes);
    if (ok) more = escapes(g.p, hold_at);
    Py_END_ALLOW_THREADS
    if (!ok) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, head.len + hold_at + used + hashes + more);
    if (out == NULL) goto done;
    char *o = PyBytes_AS_STRING(out);
    Py_BEGIN_ALLOW_THREADS
    memcpy(o, head.buf, (size_t)head.len);
    write_events(&g, o + head.len, more == 0);
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("Nnn", out, events, hold_at);
done:
    PyMem_Free(joins);
    PyBuffer_Release(&head);
    PyBuffer_Release(&body);
    return result;
}

static PyMethodDef methods[] = {
    {"encode_payload", encode_payload, METH_O,
     "encode_payload(texts) -> bytes: the escaped lines of texts (segments/blocks.py)."},
    {"escape_lines", escape_lines, METH_VARARGS,
     "escape_lines(head, body, end, closed) -> (payload, lines): `head` (a payload\n"
     "already escaped), then each line of body[:end] escaped as an event of its own;\n"
     "closed: body[:end] ends with its last line's newline (else one is added)."},
    {"escape_events", escape_events, METH_VARARGS,
     "escape_events(head, body, joins, hold, max_lines, max_bytes) -> (payload, events,\n"
     "held_at) | None: `head`, then the events of body's lines before line `hold`, the\n"
     "lines in `joins` (ascending, above 0) continuing the line before them; None if an\n"
     "event has more than max_lines lines or max_bytes bytes with its newlines."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_escape", "Raw block payloads escaped in C.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__escape(void) { return PyModule_Create(&module); }
