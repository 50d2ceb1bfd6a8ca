/* libFuzzer target: the little JSON of the actor modules (actors/json.h).
 *
 * Input: byte 0 picks the field set and the buffer sizes, the rest is the text. The text is
 *   - read by wjson_get_fields() with a set of field specs of different kinds (keys that
 *     often appear, an empty key, a non-ASCII key, a key of the longest length the reader
 *     can match and one longer, outputs of 1 byte, a few bytes or room for anything), each
 *     output in a heap block of exactly its cap, so ASan catches a write past it; what it
 *     extracts is checked against the header's promises, and again with room for anything
 *     (and with no fields at all: whether the text is valid must not depend on the fields);
 *   - checked by wjson_printable_utf8() against a separate reference implementation;
 *   - quoted with wjson_put_string() and read back from {"k":<that>}: valid UTF-8 must come
 *     back byte for byte, anything else must be refused.
 * Any broken promise aborts.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#include "grow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_json: %s\n", what);
        abort();
    }
}

/* ---- references, written differently from json.c ---------------------------------------- */

/* Decode one code point at p[0..n) following the well-formed byte sequences of RFC 3629 §4
 * (Table 3-7 of Unicode); 0 if ill-formed. */
static size_t ref_utf8(const unsigned char *p, size_t n, uint32_t *cp)
{
    unsigned char b0 = p[0];
    unsigned char lo = 0x80, hi = 0xbf;
    size_t len;
    if (b0 <= 0x7f) {
        *cp = b0;
        return 1;
    } else if (b0 >= 0xc2 && b0 <= 0xdf) {
        len = 2;
    } else if (b0 == 0xe0) {
        len = 3, lo = 0xa0;
    } else if ((b0 >= 0xe1 && b0 <= 0xec) || b0 == 0xee || b0 == 0xef) {
        len = 3;
    } else if (b0 == 0xed) {
        len = 3, hi = 0x9f;
    } else if (b0 == 0xf0) {
        len = 4, lo = 0x90;
    } else if (b0 >= 0xf1 && b0 <= 0xf3) {
        len = 4;
    } else if (b0 == 0xf4) {
        len = 4, hi = 0x8f;
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    uint32_t v = b0 & (0xff >> (len + 1));
    for (size_t i = 1; i < len; i++)
        v = v << 6 | (p[i] & 0x3f);
    *cp = v;
    return len;
}

static bool ref_valid_utf8(const unsigned char *p, size_t n)
{
    uint32_t cp;
    for (size_t i = 0, k; i < n; i += k)
        if (!(k = ref_utf8(p + i, n - i, &cp)))
            return false;
    return true;
}

static bool ref_printable(const unsigned char *p, size_t n)
{
    uint32_t cp;
    for (size_t i = 0, k; i < n; i += k) {
        if (!(k = ref_utf8(p + i, n - i, &cp)))
            return false;
        if (cp <= 0x1f || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029)
            return false;
    }
    return true;
}

/* ---- wjson_get_fields ------------------------------------------------------------------- */

/* The longest key the reader can match (its key buffer holds 64 bytes, NUL included), and one
 * byte more, which it can never match. */
#define KEY63 "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
#define KEY64 KEY63 "k"

static const char *const keys[] = {
    "type", "text", "room", "name", "k", "", "\xc3\xa9t\xc3\xa9", "a b", "\"", "\\",
    "topic", "data", KEY63, KEY64, "x\xf0\x9f\x98\x80", "id",
};
#define NKEYS (sizeof keys / sizeof keys[0])

struct fieldset {
    struct wjson_field f[WJSON_MAX_FIELDS + 1];
    size_t n;
};

static void fields_free(struct fieldset *fs)
{
    for (size_t i = 0; i < fs->n; i++)
        free(fs->f[i].out);
}

/* The fields mode asks for; big: room for anything the text can decode to. */
static void fields_make(struct fieldset *fs, uint8_t mode, size_t text_len, bool big)
{
    static const size_t small_caps[4] = {1, 2, 5, 33};
    size_t n = (size_t)(mode & 15) + 1; /* 1..16 */
    if ((mode & 0xf0) == 0xf0)
        n = WJSON_MAX_FIELDS + 1; /* too many: refused */
    fs->n = n;
    for (size_t i = 0; i < n; i++) {
        struct wjson_field *f = &fs->f[i];
        memset(f, 0, sizeof *f);
        f->key = keys[(i + (mode >> 4)) % NKEYS];
        f->cap = big ? text_len + 1 : small_caps[(i + (mode >> 6)) & 3];
        if (!big && i % 3 == 0)
            f->cap = text_len + 1;
        f->out = malloc(f->cap);
        check(f->out != NULL, "out of memory");
        memset(f->out, 0xa5, f->cap);
        f->error = WJSON_ESYNTAX; /* never a field's error: the call must reset it */
    }
}

static bool is_result(int rc)
{
    return rc == WJSON_OK || rc == WJSON_ESYNTAX || rc == WJSON_EDUP || rc == WJSON_ETYPE ||
           rc == WJSON_ETOOLONG;
}

/* What wjson_get_fields() promises about its fields after a result other than ESYNTAX. */
static void check_fields(int rc, const struct fieldset *fs)
{
    int worst = WJSON_OK;
    for (size_t i = 0; i < fs->n; i++) {
        const struct wjson_field *f = &fs->f[i];
        check(f->error == WJSON_OK || f->error == WJSON_EDUP || f->error == WJSON_ETYPE ||
                  f->error == WJSON_ETOOLONG,
              "field error");
        if (f->found) {
            check(f->error == WJSON_OK, "found field has no error");
            check(f->len < f->cap && f->out[f->len] == '\0', "value fits and is terminated");
            check(ref_valid_utf8((const unsigned char *)f->out, f->len),
                  "decoded value is valid UTF-8");
        } else {
            check(f->len == 0 && f->out[0] == '\0', "missing field is empty");
        }
        if (f->error != WJSON_OK && (worst == WJSON_OK || f->error > worst))
            worst = f->error; /* EDUP (-2) > ETYPE (-3) > ETOOLONG (-4) */
    }
    /* A field records its first failure; the result is the worst failure met, and a key that
     * failed (too long, not a string) and then came again was also a duplicate. */
    check(rc == worst || (rc == WJSON_EDUP && worst != WJSON_OK),
          "result is the worst failure by precedence");
}

static void exercise_get_fields(const char *text, size_t len, uint8_t mode)
{
    struct fieldset a, b;
    fields_make(&a, mode, len, false);
    int ra = wjson_get_fields(text, len, a.f, a.n);
    check(is_result(ra), "result");
    if (a.n > WJSON_MAX_FIELDS) {
        check(ra == WJSON_ESYNTAX, "too many fields");
        fields_free(&a);
        return;
    }
    int r0 = wjson_get_fields(text, len, NULL, 0);
    check(r0 == WJSON_OK || r0 == WJSON_ESYNTAX, "no fields: valid or not");
    check((ra == WJSON_ESYNTAX) == (r0 == WJSON_ESYNTAX), "validity depends on the fields");
    if (ra == WJSON_ESYNTAX) {
        fields_free(&a);
        return;
    }
    check_fields(ra, &a);

    /* Room for anything: no field is too long any more; the rest is unchanged. */
    fields_make(&b, mode, len, true);
    int rb = wjson_get_fields(text, len, b.f, b.n);
    check(rb != WJSON_ESYNTAX && rb != WJSON_ETOOLONG, "big buffers");
    check_fields(rb, &b);
    for (size_t i = 0; i < a.n; i++) {
        const struct wjson_field *x = &a.f[i], *y = &b.f[i];
        if (x->found) {
            check(y->found && y->len == x->len && memcmp(x->out, y->out, x->len) == 0,
                  "same value with a bigger buffer");
        } else if (x->error == WJSON_ETOOLONG) {
            /* it fits now, unless the key comes again (a duplicate wins over too long) */
            check((y->found && y->len >= x->cap) || y->error == WJSON_EDUP,
                  "too long means longer than cap - 1");
        } else {
            check(y->found == x->found && y->error == x->error, "same outcome");
        }
    }
    fields_free(&b);
    fields_free(&a);
}

/* ---- writing ------------------------------------------------------------------------------ */

static void exercise_round_trip(const char *s, size_t n, bool exact_limit)
{
    struct wjson_buf b;
    wjson_buf_init(&b, 0);
    check(wjson_puts(&b, "{\"k\":"), "puts");
    size_t before = b.len;
    check(wjson_put_string(&b, s, n), "put_string");
    size_t q = b.len - before;
    check(q >= n + 2 && q <= wjson_escaped_max(n), "escaped length");
    check(b.data[before] == '"' && b.data[b.len - 1] == '"', "quoted");
    for (size_t i = before; i < b.len; i++) {
        unsigned char c = (unsigned char)b.data[i];
        check(c >= 0x20 && c != 0x7f, "no raw control characters");
        if (c == 0xe2 && i + 2 < b.len)
            check(!((unsigned char)b.data[i + 1] == 0x80 &&
                    ((unsigned char)b.data[i + 2] == 0xa8 || (unsigned char)b.data[i + 2] == 0xa9)),
                  "no raw U+2028/U+2029");
    }
    check(wjson_put(&b, "}", 1), "put");

    char *out = malloc(n + 1);
    check(out != NULL, "out of memory");
    struct wjson_field f = {"k", out, n + 1, 0, false, WJSON_OK};
    int rc = wjson_get_fields(b.data, b.len, &f, 1);
    if (ref_valid_utf8((const unsigned char *)s, n)) {
        check(rc == WJSON_OK && f.found, "valid UTF-8 reads back");
        check(f.len == n && memcmp(out, s, n) == 0, "the same bytes come back");
    } else {
        check(rc == WJSON_ESYNTAX, "invalid UTF-8 is refused when read back");
    }
    free(out);

    size_t len;
    char *taken = wjson_buf_take(&b, &len);
    check(taken != NULL && b.data == NULL && b.len == 0 && !b.failed, "take");
    free(taken);

    /* A limited buffer: the first failing append sticks, and nothing past the limit. */
    size_t limit = exact_limit ? wjson_escaped_max(n) : n / 2 + 1;
    wjson_buf_init(&b, limit);
    bool ok = wjson_put_string(&b, s, n);
    check(ok == !b.failed && b.len <= limit && b.cap <= limit, "limit");
    check(ok == (wjson_escaped_max(n) <= limit), "put_string reserves the worst case");
    check(!wjson_put(&b, s, limit + 1) && b.failed, "over the limit");
    check(!wjson_put(&b, "", 0), "failed sticks");
    check(wjson_buf_take(&b, &len) == NULL && len == 0 && !b.failed, "take after a failure");
    wjson_buf_reset(&b);
}

static void exercise_u64(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    memcpy(&v, p, n < 8 ? n : 8);
    if (n > 8 && (p[8] & 1))
        v >>= p[8] >> 2; /* short numbers too */
    char ref[24];
    int k = snprintf(ref, sizeof ref, "%" PRIu64, v);
    struct wjson_buf b;
    wjson_buf_init(&b, 0);
    check(wjson_put_u64(&b, v), "put_u64");
    check(b.len == (size_t)k && memcmp(b.data, ref, b.len) == 0, "decimal");
    wjson_buf_reset(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    char *text = fuzz_exact_copy(data, size);
    check(text != NULL, "out of memory");

    exercise_get_fields(text, size, mode);
    check(wjson_printable_utf8(text, size) == ref_printable(data, size), "printable_utf8");
    exercise_round_trip(text, size, mode & 1);
    exercise_u64(data, size);
    check(wjson_strerror(WJSON_OK) != NULL && wjson_strerror(mode) != NULL, "strerror");

    free(text);
    return 0;
}
