/* The store extractor's line shapes matched in C: logcaster.parsing._shapes.
 *
 * `captures(buffer, end)` returns what line_shapes.LINE_SHAPES_HEADS.findall(buffer,
 * 0, end) returns, one bytes per line that starts with one of { t < D E F I T W
 * or a digit: the service, level word or access day its shape captures, or b""
 * (parsing/line_shapes.py has the pattern and the why of each shape). In sre the
 * pattern cost 350-460 ns a line on the bench corpora; each shape here is a walk
 * of the line's fixed prefix. Every shape is deterministic (its classes leave
 * the regex nothing to backtrack into, see the comments), so a walk that fails
 * is the pattern failing; which shape applies follows from the first bytes.
 * The JSON tails are json_tails' (parsing/_linescan.c). Equality with the
 * pattern is tested on random and corpus lines (tests/test_store_shapes.py).
 *
 * Built by scripts/build-native (from `make`); without it the pattern runs.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

enum { TOK, APP, HOST, TAG, JSTR, BARE, NAME, PRINT, CAPTURE, DIGIT, CLASSES };
static unsigned char in[CLASSES][256];

/* `spec`: inclusive ranges as pairs of bytes ("az09" is [a-z0-9]). */
static void ranges(int cls, const char *spec) {
    for (; spec[0] && spec[1]; spec += 2)
        for (int c = (unsigned char)spec[0]; c <= (unsigned char)spec[1]; c++) in[cls][c] = 1;
}

static void init_classes(void) {
    ranges(TOK, "!["
                "]~");                                      /* [!-\[\]-~] */
    ranges(APP, "!!#.09;Z]~");                              /* [!#-.0-9;-Z\]-~] */
    ranges(HOST, "-.09@Z__az//");                           /* [-.0-9@-Z_a-z/] */
    ranges(TAG, "!!#&(.09;;?Z^z||~~");                      /* [!#-&(-.0-9;?-Z^-z|~] */
    ranges(JSTR, " !#[]~");                                 /* [ !#-\[\]-~] */
    ranges(BARE, "!!#&(+-:<<>[]~");                         /* [!#-&(-+\--:<>-\[\]-~] */
    ranges(NAME, "AZaz09__..--");                           /* [A-Za-z0-9_.-] */
    ranges(PRINT, "!~");                                    /* [!-~] */
    ranges(DIGIT, "09");
    for (int c = 0; c < 256; c++) in[CAPTURE][c] = !strchr("/\" \n[:", c) || c == 0;
}

typedef struct {
    const unsigned char *p; /* the walk's position */
    const unsigned char *end;
} Walk;

static int lit(Walk *w, const char *s) {
    size_t n = strlen(s);
    if ((size_t)(w->end - w->p) < n || memcmp(w->p, s, n) != 0) return 0;
    w->p += n;
    return 1;
}

static int byte(Walk *w, unsigned char c) {
    if (w->p >= w->end || *w->p != c) return 0;
    w->p++;
    return 1;
}

/* A maximal run of a class; its length (0: none). */
static Py_ssize_t run(Walk *w, int cls) {
    const unsigned char *s = w->p;
    while (w->p < w->end && in[cls][*w->p]) w->p++;
    return w->p - s;
}

/* \d{lo,hi} followed by what the caller tests next: a maximal digit run, as
 * a shorter one would be followed by a digit. */
static int digits(Walk *w, Py_ssize_t lo, Py_ssize_t hi) {
    Py_ssize_t n = run(w, DIGIT);
    return n >= lo && n <= hi;
}

/* A fixed-width form: 'd' a digit, any other byte itself. */
static int form(Walk *w, const char *f) {
    size_t n = strlen(f);
    if ((size_t)(w->end - w->p) < n) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = w->p[i];
        if (f[i] == 'd' ? !in[DIGIT][c] : c != (unsigned char)f[i]) return 0;
    }
    w->p += n;
    return 1;
}

static const char *T24 = "dddd-dd-ddTdd:dd:dd.dddZ";
static const char *T19 = "dddd-dd-dd dd:dd:dd";

/* [A-Z][a-z]{2}: a month's abbreviation. */
static int month(Walk *w) {
    if (w->end - w->p < 3 || !(w->p[0] >= 'A' && w->p[0] <= 'Z')) return 0;
    for (int i = 1; i < 3; i++)
        if (!(w->p[i] >= 'a' && w->p[i] <= 'z')) return 0;
    w->p += 3;
    return 1;
}

/* TRACE|DEBUG|INFO|WARN|ERROR|FATAL, and (any_case) the same in lower case. */
static int level(Walk *w, int any_case) {
    static const char *upper[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"};
    static const char *lower[] = {"trace", "debug", "info", "warn", "error", "fatal"};
    for (int i = 0; i < 6; i++)
        if (lit(w, upper[i]) || (any_case && lit(w, lower[i]))) return 1;
    return 0;
}

/* (?=[A-Za-z0-9_.-]+<then>): a maximal name run, then one of `then`. */
static int name_then(Walk w, const char *then) {
    if (run(&w, NAME) == 0 || w.p >= w.end) return 0;
    return strchr(then, *w.p) != NULL && *w.p != 0;
}

static int line_holds(const unsigned char *p, const unsigned char *end, const char *s) {
    const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = (size_t)((nl ? nl : end) - p);
    return memmem(p, n, s, strlen(s)) != NULL;
}

/* The shape of the line at w->p (its first byte is one the pattern looks at):
 * where its capture starts, or NULL (the pattern's empty alternative). */
static const unsigned char *shape(Walk w) {
    const unsigned char *s = w.p;
    Walk v;
    switch (*s) {
    case '{':
        v = w;
        if (lit(&v, "{\"timestamp\":\"") && form(&v, T24) && lit(&v, "\",\"level\":\"") &&
            level(&v, 1) && lit(&v, "\",\"service\":\"") && name_then(v, "\""))
            return v.p;
        v = w;
        if (lit(&v, "{\"level\":\"")) {
            const unsigned char *at = v.p;
            if (level(&v, 1) && lit(&v, "\",\"ts\":\"") && form(&v, T24) && byte(&v, '"'))
                return at;
        }
        return NULL;
    case 't':
        v = w;
        if (lit(&v, "ts=") && form(&v, T24) && lit(&v, " level=") && level(&v, 1) &&
            lit(&v, " service=") && name_then(v, " \n"))
            return v.p;
        v = w;
        if (!(lit(&v, "time=") && form(&v, T24) && lit(&v, " level=") && level(&v, 1) &&
              lit(&v, " msg=")))
            return NULL;
        if (v.p < v.end && *v.p == '"') { /* a JSON string: its content has no '"' */
            v.p++;
            run(&v, JSTR);
            if (!byte(&v, '"')) return NULL;
        } else if (run(&v, BARE) == 0) {
            return NULL;
        }
        if (lit(&v, " service=") && name_then(v, " \n")) return v.p;
        return NULL;
    case '<':
        v = w;
        v.p++;
        if (!digits(&v, 1, 3) || !byte(&v, '>')) return NULL;
        if (v.p < v.end && *v.p == '1') { /* RFC 5424 */
            if (!(lit(&v, "1 ") && form(&v, T24) && byte(&v, ' ') && run(&v, TOK) &&
                  byte(&v, ' ')))
                return NULL;
            const unsigned char *app = v.p;
            if (v.end - v.p >= 2 && v.p[0] == '-' && (v.p[1] == ' ' || v.p[1] == '\n'))
                return NULL;
            if (run(&v, APP) && byte(&v, ' ') && run(&v, TOK) && byte(&v, ' ') &&
                run(&v, TOK) && lit(&v, " -"))
                return app;
            return NULL;
        }
        /* RFC 3164: Mmm dd hh:mm:ss host app[pid]: */
        if (!(month(&v) && byte(&v, ' '))) return NULL;
        if (!(v.p < v.end && (*v.p == ' ' || in[DIGIT][*v.p]))) return NULL;
        v.p++;
        if (!form(&v, "d dd:dd:dd ") || run(&v, HOST) == 0 || !byte(&v, ' ')) return NULL;
        {
            const unsigned char *app = v.p;
            if (run(&v, TAG) == 0) return NULL;
            if (byte(&v, '[')) {
                if (run(&v, DIGIT) == 0 || !byte(&v, ']')) return NULL;
            }
            return byte(&v, ':') ? app : NULL;
        }
    default:
        if (in[DIGIT][*s]) {
            v = w;
            if (form(&v, T19) && byte(&v, ' ')) { /* YYYY-MM-DD hh:mm:ss LEVEL[:] */
                const unsigned char *at = v.p;
                if (!level(&v, 0)) return NULL;
                byte(&v, ':');
                if (!(v.p < v.end && (*v.p == ' ' || *v.p == '\n'))) return NULL;
                return line_holds(v.p, v.end, "service=") ? NULL : at;
            }
            v = w; /* an access line from an IPv4 client */
            for (int i = 0; i < 3; i++)
                if (!digits(&v, 1, 3) || !byte(&v, '.')) return NULL;
            if (!digits(&v, 1, 3) || !byte(&v, ' ')) return NULL;
            if (!run(&v, PRINT) || !byte(&v, ' ') || !run(&v, PRINT) || !lit(&v, " ["))
                return NULL;
            const unsigned char *day = v.p;
            if (form(&v, "dd/") && month(&v) && form(&v, "/dddd:")) return day;
            return NULL;
        }
        /* LEVEL: service/version, no ts=, time= or timestamp= pair after it */
        v = w;
        if (!(level(&v, 0) && lit(&v, ": "))) return NULL;
        {
            const unsigned char *at = v.p;
            Walk n = v;
            if (run(&n, NAME) == 0 || !byte(&n, '/')) return NULL;
            byte(&n, 'v');
            if (!(n.p < n.end && in[DIGIT][*n.p])) return NULL;
            if (line_holds(at, v.end, "ts=") || line_holds(at, v.end, "time=") ||
                line_holds(at, v.end, "timestamp="))
                return NULL;
            return at;
        }
    }
}

static int looked_at(unsigned char c) {
    return c == '{' || c == 't' || c == '<' || in[DIGIT][c] || (c && strchr("DEFITW", c));
}

static PyObject *captures(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer buf;
    Py_ssize_t end;
    if (!PyArg_ParseTuple(args, "y*n", &buf, &end)) return NULL;
    PyObject *out = NULL, *empty = NULL;
    if (end < 0 || end > buf.len) {
        PyErr_SetString(PyExc_ValueError, "end outside the buffer");
        goto done;
    }
    out = PyList_New(0);
    empty = PyBytes_FromStringAndSize(NULL, 0);
    if (out == NULL || empty == NULL) goto fail;
    const unsigned char *b = buf.buf, *stop = b + end, *p = b;
    while (p < stop) {
        const unsigned char *nl = memchr(p, '\n', (size_t)(stop - p));
        if (nl == NULL || nl + 1 >= stop) break;
        p = nl + 1;
        if (!looked_at(*p)) continue;
        Walk w = {p, stop};
        const unsigned char *at = shape(w);
        PyObject *item;
        if (at == NULL) {
            item = Py_NewRef(empty);
        } else {
            const unsigned char *e = at;
            while (e < stop && in[CAPTURE][*e]) e++;
            item = PyBytes_FromStringAndSize((const char *)at, e - at);
            if (item == NULL) goto fail;
        }
        int rc = PyList_Append(out, item);
        Py_DECREF(item);
        if (rc < 0) goto fail;
    }
    goto done;
fail:
    Py_CLEAR(out);
done:
    Py_XDECREF(empty);
    PyBuffer_Release(&buf);
    return out;
}

static PyMethodDef methods[] = {
    {"captures", captures, METH_VARARGS,
     "captures(buffer, end) -> list[bytes]: LINE_SHAPES_HEADS.findall(buffer, 0, end)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_shapes", "The store extractor's line shapes, in C.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__shapes(void) {
    init_classes();
    return PyModule_Create(&module);
}
