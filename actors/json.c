/* actors/json.c: JSON writing and strict flat-object reading (see json.h). */
#include "json.h"

#include <stdlib.h>
#include <string.h>

/* ---- writing ----------------------------------------------------------------------------- */

void wjson_buf_init(struct wjson_buf *b, size_t limit)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->limit = limit ? limit : SIZE_MAX / 2;
    b->failed = false;
}

void wjson_buf_reset(struct wjson_buf *b)
{
    free(b->data);
    wjson_buf_init(b, b->limit);
}

char *wjson_buf_take(struct wjson_buf *b, size_t *len)
{
    char *p = NULL;
    size_t n = 0;
    if (!b->failed && b->data) {
        p = b->data;
        n = b->len;
        b->data = NULL;
    }
    wjson_buf_reset(b);
    if (len)
        *len = n;
    return p;
}

bool wjson_reserve(struct wjson_buf *b, size_t n)
{
    if (b->failed)
        return false;
    if (n > b->limit || b->len > b->limit - n) {
        b->failed = true;
        return false;
    }
    size_t need = b->len + n;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 4 ? need : cap * 2;
    if (cap > b->limit)
        cap = b->limit;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

bool wjson_put(struct wjson_buf *b, const void *p, size_t n)
{
    if (!wjson_reserve(b, n))
        return false;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return true;
}

bool wjson_puts(struct wjson_buf *b, const char *s)
{
    return wjson_put(b, s, strlen(s));
}

bool wjson_put_u64(struct wjson_buf *b, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return wjson_put(b, tmp + i, sizeof tmp - i);
}

bool wjson_put_string(struct wjson_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    /* Worst case first, so the loop below writes without checks. */
    if (n > (SIZE_MAX - 2) / 6) {
        b->failed = true;
        return false;
    }
    if (!wjson_reserve(b, wjson_escaped_max(n)))
        return false;
    const unsigned char *p = (const unsigned char *)s;
    char *o = b->data + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = p[i];
        if (ch == '"' || ch == '\\') {
            *o++ = '\\';
            *o++ = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            *o++ = '\\';
            switch (ch) {
            case '\b': *o++ = 'b'; break;
            case '\f': *o++ = 'f'; break;
            case '\n': *o++ = 'n'; break;
            case '\r': *o++ = 'r'; break;
            case '\t': *o++ = 't'; break;
            default:
                *o++ = 'u';
                *o++ = '0';
                *o++ = '0';
                *o++ = hex[ch >> 4];
                *o++ = hex[ch & 15];
                break;
            }
        } else if (ch == 0xe2 && i + 2 < n && p[i + 1] == 0x80 &&
                   (p[i + 2] == 0xa8 || p[i + 2] == 0xa9)) {
            memcpy(o, p[i + 2] == 0xa8 ? "\\u2028" : "\\u2029", 6);
            o += 6;
            i += 2;
        } else {
            *o++ = (char)ch;
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    return true;
}

/* ---- UTF-8 ------------------------------------------------------------------------------- */

/* The length (1-4) of the well-formed UTF-8 sequence at p[0..avail), with its code point in
 * *cp; 0 if it is not well-formed (RFC 3629: no overlongs, no surrogates, <= U+10FFFF). */
static size_t utf8_seq(const unsigned char *p, size_t avail, uint32_t *cp)
{
    unsigned char c = p[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t n;
    uint32_t v, min;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2, v = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3, v = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

bool wjson_printable_utf8(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = utf8_seq(p + i, n - i, &cp);
        if (!k || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029)
            return false;
        i += k;
    }
    return true;
}

/* ---- reading ----------------------------------------------------------------------------- */

struct reader {
    const unsigned char *p;
    size_t len;
    size_t pos;
};

/* Where a decoded string goes: a buffer of cap bytes (room for a NUL kept), or nowhere
 * (cap 0: validate only). overflow: the string did not fit. */
struct sink {
    char *out;
    size_t cap;
    size_t len;
    bool overflow;
};

static void sink_put(struct sink *s, const char *p, size_t n)
{
    if (s->overflow || !s->cap)
        return;
    if (n > s->cap - 1 - s->len) {
        s->overflow = true;
        return;
    }
    memcpy(s->out + s->len, p, n);
    s->len += n;
}

static void skip_ws(struct reader *r)
{
    while (r->pos < r->len) {
        unsigned char c = r->p[r->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        r->pos++;
    }
}

static int hex4(struct reader *r, uint32_t *out)
{
    if (r->len - r->pos < 4)
        return -1;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = r->p[r->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static size_t utf8_encode(uint32_t cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A string, at its opening quote. @return 0 or -1 (malformed). */
static int read_string(struct reader *r, struct sink *s)
{
    if (r->pos >= r->len || r->p[r->pos] != '"')
        return -1;
    r->pos++;
    for (;;) {
        /* A run of plain ASCII at once. */
        size_t start = r->pos;
        while (r->pos < r->len) {
            unsigned char c = r->p[r->pos];
            if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80)
                break;
            r->pos++;
        }
        sink_put(s, (const char *)r->p + start, r->pos - start);
        if (r->pos >= r->len)
            return -1;
        unsigned char c = r->p[r->pos];
        if (c == '"') {
            r->pos++;
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c >= 0x80) {
            uint32_t cp;
            size_t k = utf8_seq(r->p + r->pos, r->len - r->pos, &cp);
            if (!k)
                return -1;
            sink_put(s, (const char *)r->p + r->pos, k);
            r->pos += k;
            continue;
        }
        /* A backslash. */
        if (r->len - r->pos < 2)
            return -1;
        char e = (char)r->p[r->pos + 1];
        r->pos += 2;
        char one;
        switch (e) {
        case '"': one = '"'; break;
        case '\\': one = '\\'; break;
        case '/': one = '/'; break;
        case 'b': one = '\b'; break;
        case 'f': one = '\f'; break;
        case 'n': one = '\n'; break;
        case 'r': one = '\r'; break;
        case 't': one = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (hex4(r, &cp) < 0)
                return -1;
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return -1; /* a low surrogate alone */
            if (cp >= 0xd800 && cp <= 0xdbff) {
                uint32_t lo;
                if (r->len - r->pos < 6 || r->p[r->pos] != '\\' || r->p[r->pos + 1] != 'u')
                    return -1;
                r->pos += 2;
                if (hex4(r, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
                    return -1;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            char tmp[4];
            sink_put(s, tmp, utf8_encode(cp, tmp));
            continue;
        }
        default:
            return -1;
        }
        sink_put(s, &one, 1);
    }
}

static int read_number(struct reader *r)
{
    size_t p = r->pos;
    const unsigned char *b = r->p;
    if (p < r->len && b[p] == '-')
        p++;
    if (p >= r->len)
        return -1;
    if (b[p] == '0') {
        p++;
    } else if (b[p] >= '1' && b[p] <= '9') {
        while (p < r->len && b[p] >= '0' && b[p] <= '9')
            p++;
    } else {
        return -1;
    }
    if (p < r->len && b[p] == '.') {
        p++;
        if (p >= r->len || b[p] < '0' || b[p] > '9')
            return -1;
        while (p < r->len && b[p] >= '0' && b[p] <= '9')
            p++;
    }
    if (p < r->len && (b[p] == 'e' || b[p] == 'E')) {
        p++;
        if (p < r->len && (b[p] == '+' || b[p] == '-'))
            p++;
        if (p >= r->len || b[p] < '0' || b[p] > '9')
            return -1;
        while (p < r->len && b[p] >= '0' && b[p] <= '9')
            p++;
    }
    r->pos = p;
    return 0;
}

static int read_literal(struct reader *r, const char *word)
{
    size_t n = strlen(word);
    if (r->len - r->pos < n || memcmp(r->p + r->pos, word, n) != 0)
        return -1;
    r->pos += n;
    return 0;
}

static int skip_value(struct reader *r, int depth);

/* An array or object body after its opening bracket. */
static int skip_container(struct reader *r, int depth, bool object)
{
    if (depth > WJSON_MAX_DEPTH)
        return -1;
    char close = object ? '}' : ']';
    skip_ws(r);
    if (r->pos < r->len && r->p[r->pos] == close) {
        r->pos++;
        return 0;
    }
    for (;;) {
        skip_ws(r);
        if (object) {
            struct sink none = {0};
            if (read_string(r, &none) < 0)
                return -1;
            skip_ws(r);
            if (r->pos >= r->len || r->p[r->pos] != ':')
                return -1;
            r->pos++;
            skip_ws(r);
        }
        if (skip_value(r, depth) < 0)
            return -1;
        skip_ws(r);
        if (r->pos >= r->len)
            return -1;
        unsigned char c = r->p[r->pos++];
        if (c == close)
            return 0;
        if (c != ',')
            return -1;
    }
}

/* Any value at r->pos (whitespace already skipped); depth: of the container holding it. */
static int skip_value(struct reader *r, int depth)
{
    if (r->pos >= r->len)
        return -1;
    switch (r->p[r->pos]) {
    case '"': {
        struct sink none = {0};
        return read_string(r, &none);
    }
    case '{':
        r->pos++;
        return skip_container(r, depth + 1, true);
    case '[':
        r->pos++;
        return skip_container(r, depth + 1, false);
    case 't':
        return read_literal(r, "true");
    case 'f':
        return read_literal(r, "false");
    case 'n':
        return read_literal(r, "null");
    default:
        return read_number(r);
    }
}

/* Record a field's failure; the first failure across fields is what the call returns. */
static void field_fail(struct wjson_field *f, enum wjson_result why, int *first)
{
    if (f->error == WJSON_OK)
        f->error = why;
    f->found = false;
    f->len = 0;
    if (f->out && f->cap)
        f->out[0] = '\0';
    if (*first == WJSON_OK || why > *first) /* precedence: EDUP > ETYPE > ETOOLONG */
        *first = why;
}

int wjson_get_fields(const char *json, size_t len, struct wjson_field *fields, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fields[i].len = 0;
        fields[i].found = false;
        fields[i].error = WJSON_OK;
        if (fields[i].out && fields[i].cap)
            fields[i].out[0] = '\0';
    }
    if ((!json && len) || n > WJSON_MAX_FIELDS)
        return WJSON_ESYNTAX;
    struct reader r = {(const unsigned char *)json, len, 0};
    bool seen[WJSON_MAX_FIELDS] = {false};
    int first = WJSON_OK;

    skip_ws(&r);
    if (r.pos >= r.len || r.p[r.pos] != '{')
        return WJSON_ESYNTAX;
    r.pos++;
    skip_ws(&r);
    if (r.pos < r.len && r.p[r.pos] == '}') {
        r.pos++;
        goto end;
    }
    for (;;) {
        skip_ws(&r);
        /* The key: decoded into a small buffer; longer keys cannot be wanted ones. */
        char key[64];
        struct sink ks = {key, sizeof key, 0, false};
        if (read_string(&r, &ks) < 0)
            return WJSON_ESYNTAX;
        skip_ws(&r);
        if (r.pos >= r.len || r.p[r.pos] != ':')
            return WJSON_ESYNTAX;
        r.pos++;
        skip_ws(&r);
        struct wjson_field *f = NULL;
        size_t fi = 0;
        if (!ks.overflow) {
            for (fi = 0; fi < n; fi++) {
                size_t kl = strlen(fields[fi].key);
                if (kl == ks.len && memcmp(fields[fi].key, key, kl) == 0) {
                    f = &fields[fi];
                    break;
                }
            }
        }
        if (!f) {
            if (skip_value(&r, 1) < 0)
                return WJSON_ESYNTAX;
        } else {
            bool dup = seen[fi];
            seen[fi] = true;
            if (r.pos < r.len && r.p[r.pos] == '"') {
                struct sink vs = {f->out, f->cap, 0, false};
                if (dup) {
                    struct sink none = {0};
                    if (read_string(&r, &none) < 0)
                        return WJSON_ESYNTAX;
                } else if (read_string(&r, &vs) < 0) {
                    return WJSON_ESYNTAX;
                }
                if (dup) {
                    field_fail(f, WJSON_EDUP, &first);
                } else if (vs.overflow || !f->cap) {
                    field_fail(f, WJSON_ETOOLONG, &first);
                } else {
                    f->out[vs.len] = '\0';
                    f->len = vs.len;
                    f->found = true;
                }
            } else {
                if (skip_value(&r, 1) < 0)
                    return WJSON_ESYNTAX;
                field_fail(f, dup ? WJSON_EDUP : WJSON_ETYPE, &first);
            }
        }
        skip_ws(&r);
        if (r.pos >= r.len)
            return WJSON_ESYNTAX;
        unsigned char c = r.p[r.pos++];
        if (c == '}')
            break;
        if (c != ',')
            return WJSON_ESYNTAX;
    }
end:
    skip_ws(&r);
    if (r.pos != r.len)
        return WJSON_ESYNTAX;
    return first;
}

const char *wjson_strerror(int rc)
{
    switch (rc) {
    case WJSON_OK: return "ok";
    case WJSON_ESYNTAX: return "not a JSON object";
    case WJSON_EDUP: return "duplicate key";
    case WJSON_ETYPE: return "not a string";
    case WJSON_ETOOLONG: return "too long";
    default: return "unknown error";
    }
}
