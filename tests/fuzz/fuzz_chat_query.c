/* libFuzzer target: the query of a chat upgrade, wispi_chat_parse_query() (actors/chat_query.c),
 * against the rules of chat.h's CONNECTING section.
 *
 * Input: the query string itself (what follows the '?'), any bytes, so that the seed corpus
 * reads like real queries. It and every query built from it are exact-size heap copies, and
 * the result is a heap block of exactly its struct, so ASan sees a read or write past either.
 *
 * Invariants, any broken one aborts:
 *   - the status is 0 or 400;
 *   - it and the room and name are those of a reference reading of chat.h, written
 *     differently (each value decoded whole, then measured and checked with the UTF-8
 *     reference of tests/support/utf8_ref.h): an accepted room or name is 0 bytes (absent, or
 *     given empty) or 1 to 32 bytes of well-formed UTF-8 with no control character and no
 *     U+2028/U+2029;
 *   - other parameters are ignored: "x=1&" before the query or "&x=1" after it changes nothing;
 *   - encoding round-trips: the input taken as a name and as a room, percent-encoded the ways
 *     a client may (unreserved bytes raw or escaped, a space as '+' or %20, hex digits in
 *     either case, chosen from the input), comes back byte for byte when it is a valid name,
 *     is absent when it is empty, and is refused otherwise.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_internal.h"

#include "grow.h"
#include "../support/utf8_ref.h" /* relative: the fuzz build has no support/ include dir */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_chat_query: %s\n", what);
        abort();
    }
}

/* ---- the reference, written from chat.h ---------------------------------------------------- */

/* What chat.h allows in a room or a name: 1 to 32 bytes of well-formed UTF-8, no U+0000-001F,
 * U+007F-009F, U+2028 or U+2029. */
static bool ref_valid_name(const uint8_t *p, size_t n)
{
    if (n < 1 || n > WISP_CHAT_NAME_MAX)
        return false;
    struct utf8_ref u = utf8_ref_check(p, n);
    if (u.bad || !u.boundary)
        return false;
    for (size_t i = 0; i < n;) {
        /* Well-formed: the lead byte's high bits give the length. */
        size_t len = p[i] < 0x80 ? 1 : p[i] < 0xe0 ? 2 : p[i] < 0xf0 ? 3 : 4;
        uint32_t cp = len == 1 ? p[i] : (uint32_t)(p[i] & (0x7f >> len));
        for (size_t k = 1; k < len; k++)
            cp = cp << 6 | (p[i + k] & 0x3fu);
        if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || cp == 0x2028 || cp == 0x2029)
            return false;
        i += len;
    }
    return true;
}

static int hex_digit(uint8_t c)
{
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* Decode a whole value (%XX, '+' is a space) into out (room for n bytes). @return the decoded
 * length, or -1 for a '%' not followed by two hex digits. */
static long ref_decode(const uint8_t *v, size_t n, uint8_t *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '%') {
            if (i + 2 >= n || !isxdigit(v[i + 1]) || !isxdigit(v[i + 2]))
                return -1;
            out[o++] = (uint8_t)(hex_digit(v[i + 1]) * 16 + hex_digit(v[i + 2]));
            i += 2;
        } else {
            out[o++] = v[i] == '+' ? ' ' : v[i];
        }
    }
    return (long)o;
}

/* The reference's answer: same shape as the parser's. */
static int ref_parse(const uint8_t *q, size_t n, struct chat_query *out)
{
    memset(out, 0, sizeof *out);
    bool seen[2] = {false, false}; /* room, name */
    const uint8_t *end = q + n;
    for (const uint8_t *p = q; p < end;) {
        const uint8_t *amp = memchr(p, '&', (size_t)(end - p));
        const uint8_t *seg_end = amp ? amp : end;
        const uint8_t *eq = memchr(p, '=', (size_t)(seg_end - p));
        const uint8_t *key_end = eq ? eq : seg_end;
        int which = -1;
        if (key_end - p == 4 && memcmp(p, "room", 4) == 0)
            which = 0;
        else if (key_end - p == 4 && memcmp(p, "name", 4) == 0)
            which = 1;
        if (which >= 0) {
            if (seen[which])
                return 400; /* given twice, empty or not */
            seen[which] = true;
            const uint8_t *v = eq ? eq + 1 : seg_end;
            size_t vn = (size_t)(seg_end - v);
            uint8_t *dec = malloc(vn ? vn : 1);
            check(dec != NULL, "out of memory");
            long dn = ref_decode(v, vn, dec);
            bool ok = dn == 0 || (dn > 0 && ref_valid_name(dec, (size_t)dn));
            if (ok && dn > 0) {
                memcpy(which ? out->name : out->room, dec, (size_t)dn);
                *(which ? &out->name_len : &out->room_len) = (uint32_t)dn;
            }
            free(dec);
            if (!ok)
                return 400;
        }
        p = seg_end + 1;
    }
    return 0;
}

/* ---- the checks ---------------------------------------------------------------------------- */

struct answer {
    int status;
    struct chat_query q;
};

/* The parser on an exact-size copy of q[0..n), into an exact-size result block. */
static struct answer parse(const uint8_t *q, size_t n)
{
    char *copy = fuzz_exact_copy(q, n);
    struct chat_query *out = malloc(sizeof *out);
    check(copy != NULL && out != NULL, "out of memory");
    struct answer a;
    memset(&a, 0, sizeof a);
    a.status = wispi_chat_parse_query(copy, n, out);
    check(a.status == 0 || a.status == 400, "status is 0 or 400");
    if (a.status == 0)
        a.q = *out;
    free(out);
    free(copy);
    return a;
}

static bool same_answer(const struct answer *a, const struct answer *b)
{
    if (a->status != b->status)
        return false;
    if (a->status != 0)
        return true; /* the result of a refusal is unspecified */
    const struct chat_query *x = &a->q, *y = &b->q;
    return x->room_len == y->room_len && x->name_len == y->name_len &&
           memcmp(x->room, y->room, x->room_len) == 0 &&
           memcmp(x->name, y->name, x->name_len) == 0;
}

/* A growing byte string. */
struct text {
    uint8_t *p;
    size_t n, cap;
};

static void put(struct text *t, const void *s, size_t n)
{
    if (t->n + n > t->cap) {
        t->cap = (t->n + n) * 2 + 16;
        t->p = realloc(t->p, t->cap);
        check(t->p != NULL, "out of memory");
    }
    memcpy(t->p + t->n, s, n);
    t->n += n;
}

/* Percent-encode s as a client may, the choices drawn from *seed (xorshift32). */
static void put_encoded(struct text *t, const uint8_t *s, size_t n, uint32_t *seed)
{
    for (size_t i = 0; i < n; i++) {
        *seed ^= *seed << 13, *seed ^= *seed >> 17, *seed ^= *seed << 5;
        uint8_t c = s[i];
        bool unreserved = isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
        if (unreserved && (*seed & 1)) {
            put(t, &c, 1);
        } else if (c == ' ' && (*seed & 2)) {
            put(t, "+", 1);
        } else {
            const char *digits = *seed & 4 ? "0123456789ABCDEF" : "0123456789abcdef";
            char esc[3] = {'%', digits[c >> 4], digits[c & 15]};
            put(t, esc, 3);
        }
    }
}

static void check_reference(const uint8_t *data, size_t size, const struct answer *got)
{
    struct answer want;
    want.status = ref_parse(data, size, &want.q);
    check(same_answer(got, &want), "the reference reading of chat.h");
    if (got->status == 0) {
        const struct chat_query *q = &got->q;
        check(q->room_len <= WISP_CHAT_NAME_MAX && q->name_len <= WISP_CHAT_NAME_MAX, "32 bytes");
        check(!q->room_len || ref_valid_name((const uint8_t *)q->room, q->room_len),
              "an accepted room is printable UTF-8");
        check(!q->name_len || ref_valid_name((const uint8_t *)q->name, q->name_len),
              "an accepted name is printable UTF-8");
    }
}

static void check_other_params_ignored(const uint8_t *data, size_t size,
                                       const struct answer *got)
{
    struct text t = {NULL, 0, 0};
    put(&t, "x=1&", 4);
    put(&t, data, size);
    struct answer before = parse(t.p, t.n);
    check(same_answer(got, &before), "a parameter before changes nothing");
    t.n = 0;
    put(&t, data, size);
    put(&t, "&x=1", 4);
    struct answer after = parse(t.p, t.n);
    check(same_answer(got, &after), "a parameter after changes nothing");
    free(t.p);
}

static void check_round_trip(const uint8_t *data, size_t size)
{
    uint32_t seed = 0x9e3779b9u ^ (uint32_t)size * 0x01000193u;
    if (size)
        seed ^= (uint32_t)data[0] << 8 | data[size - 1];
    struct text t = {NULL, 0, 0};
    bool room_first = seed & 1;
    put(&t, room_first ? "room=" : "name=", 5);
    put_encoded(&t, data, size, &seed);
    put(&t, room_first ? "&name=" : "&room=", 6);
    put_encoded(&t, data, size, &seed);
    struct answer a = parse(t.p, t.n);
    free(t.p);
    if (size == 0) {
        check(a.status == 0 && a.q.room_len == 0 && a.q.name_len == 0, "empty is absent");
    } else if (ref_valid_name(data, size)) {
        check(a.status == 0, "an encoded valid name is accepted");
        check(a.q.name_len == size && memcmp(a.q.name, data, size) == 0, "the name comes back");
        check(a.q.room_len == size && memcmp(a.q.room, data, size) == 0, "the room comes back");
    } else {
        check(a.status == 400, "an encoded invalid name is refused");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct chat_query none;
    check(wispi_chat_parse_query(NULL, 0, &none) == 0 && !none.room_len && !none.name_len,
          "no query");
    struct answer got = parse(data, size);
    check_reference(data, size, &got);
    check_other_params_ignored(data, size, &got);
    check_round_trip(data, size);
    return 0;
}
