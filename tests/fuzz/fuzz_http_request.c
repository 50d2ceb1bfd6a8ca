/* libFuzzer target: the request-head parser, its incremental mode, and the server handshake on
 * whatever it accepts.
 *
 * Input: byte 0 picks the limits and the header array size, byte 1 seeds the split schedule,
 * the rest is the request. The request is parsed once whole, then again as a series of growing
 * prefixes (each call passing the previous length as prev_len, as a server reading a socket
 * would), and the two must agree exactly: a mismatch aborts. Every call gets its bytes in a
 * heap block of exactly that size, so AddressSanitizer catches a read past the end.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/http.h>

#include "grow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SLOTS 128

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_http_request: %s\n", what);
        abort();
    }
}

static bool is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* A copy of n bytes in a block of exactly n bytes (1 if n is 0, never read then). */
static char *exact_copy(const uint8_t *p, size_t n)
{
    char *b = fuzz_exact_copy(p, n);
    check(b != NULL, "out of memory");
    return b;
}

static size_t off(const char *base, const char *p)
{
    return p ? (size_t)(p - base) : SIZE_MAX;
}

/* The same result, field by field, for two parses of the same bytes at different addresses. */
static bool same_request(const char *ba, ssize_t ra, const struct wisp_http_request *a,
                         const char *bb, ssize_t rb, const struct wisp_http_request *b)
{
    if (ra != rb || a->status != b->status)
        return false;
    if (ra <= 0)
        return true; /* fields are unspecified after a failure */
    if (off(ba, a->method) != off(bb, b->method) || a->method_len != b->method_len ||
        off(ba, a->target) != off(bb, b->target) || a->target_len != b->target_len ||
        off(ba, a->path) != off(bb, b->path) || a->path_len != b->path_len ||
        off(ba, a->query) != off(bb, b->query) || a->query_len != b->query_len ||
        a->minor_version != b->minor_version || a->num_headers != b->num_headers ||
        a->head_len != b->head_len)
        return false;
    for (size_t i = 0; i < a->num_headers; i++) {
        const struct wisp_http_header *x = &a->headers[i], *y = &b->headers[i];
        if (off(ba, x->name) != off(bb, y->name) || x->name_len != y->name_len ||
            off(ba, x->value) != off(bb, y->value) || x->value_len != y->value_len)
            return false;
    }
    return true;
}

/* What the parser promises about an accepted head. */
static void check_request(const char *buf, size_t len, ssize_t rc,
                          const struct wisp_http_request *r)
{
    size_t head = (size_t)rc;
    check(head <= len && r->head_len == head, "head length");
    check(head >= 4 && memcmp(buf + head - 4, "\r\n\r\n", 4) == 0, "head ends in CRLFCRLF");
    check(r->method == buf && r->method_len > 0, "method");
    for (size_t i = 0; i < r->method_len; i++)
        check(is_tchar((unsigned char)r->method[i]), "method is a token");
    check(r->path == r->target && r->path_len >= 1 && r->path[0] == '/', "path");
    check(memchr(r->path, '?', r->path_len) == NULL, "path has no '?'");
    if (r->query)
        check(r->query == r->path + r->path_len + 1 &&
                  r->path_len + 1 + r->query_len == r->target_len,
              "query follows the path");
    else
        check(r->path_len == r->target_len, "no query: path is the target");
    for (size_t i = 0; i < r->target_len; i++)
        check((unsigned char)r->target[i] > 0x20 && (unsigned char)r->target[i] < 0x7f &&
                  r->target[i] != '#',
              "target bytes");
    check(r->minor_version >= 0 && r->minor_version <= 9, "version");
    for (size_t i = 0; i < r->num_headers; i++) {
        const struct wisp_http_header *h = &r->headers[i];
        check(h->name >= buf && h->value >= h->name && h->value + h->value_len <= buf + head,
              "header inside the head");
        check(h->name_len > 0, "empty name");
        for (size_t j = 0; j < h->name_len; j++)
            check(is_tchar((unsigned char)h->name[j]), "name is a token");
        check(h->name[h->name_len] == ':', "colon after name");
        for (size_t j = 0; j < h->value_len; j++) {
            unsigned char c = (unsigned char)h->value[j];
            check(c == '\t' || (c >= 0x20 && c != 0x7f), "value bytes");
        }
        if (h->value_len)
            check(!is_ows(h->value[0]) && !is_ows(h->value[h->value_len - 1]), "value trimmed");
    }
}

/* The lookup and list helpers on every header the parser found. */
static void exercise_lists(const struct wisp_http_header *hs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char name[64];
        if (hs[i].name_len >= sizeof(name))
            continue;
        memcpy(name, hs[i].name, hs[i].name_len);
        name[hs[i].name_len] = 0;
        size_t pos = 0, seen = 0;
        bool found_self = false;
        const struct wisp_http_header *h;
        while ((h = wisp_http_header_find(hs, n, name, &pos))) {
            seen++;
            found_self |= h == &hs[i];
        }
        check(found_self, "lookup finds every header");
        check(seen == wisp_http_header_count(hs, n, name), "count agrees with find");

        struct wisp_http_list_iter it;
        const char *item;
        size_t item_len, items = 0;
        wisp_http_list_begin(&it, hs, n, name);
        while (wisp_http_list_next(&it, &item, &item_len)) {
            check(item_len > 0 && !is_ows(item[0]) && !is_ows(item[item_len - 1]),
                  "list item trimmed");
            check(items++ < 8192, "list iteration ends");
            if (item_len < 64) {
                char tok[64];
                memcpy(tok, item, item_len);
                tok[item_len] = 0;
                if (!memchr(tok, 0, item_len))
                    check(wisp_http_list_has(hs, n, name, tok), "list_has finds each item");
            }
        }
    }
}

/* Whatever the server side makes of an accepted head must be answerable. */
static void exercise_server(const struct wisp_http_request *req)
{
    struct wisp_ws_upgrade up;
    char out[4096];
    int st = wisp_ws_upgrade_check(req, &up);
    check(st == up.status && up.reason != NULL, "upgrade result");
    if (st != 0) {
        check(st == 400 || st == 405 || st == 426, "upgrade status");
        check(wisp_http_reject(st, out, sizeof(out)) > 0, "reject writes");
        check(wisp_ws_upgrade_accept(&up, NULL, out, sizeof(out)) == -EINVAL,
              "refused upgrade cannot be accepted");
        return;
    }
    check(up.key_len == WISP_WS_KEY_LEN, "key length");

    /* answer with the first offered subprotocol, which must be acceptable */
    struct wisp_http_list_iter it;
    struct wisp_ws_accept_opts o = {0};
    wisp_http_list_begin(&it, up.headers, up.num_headers, "sec-websocket-protocol");
    if (wisp_http_list_next(&it, &o.protocol, &o.protocol_len))
        check(wisp_ws_upgrade_offers(&up, o.protocol, o.protocol_len), "offered");
    ssize_t n = wisp_ws_upgrade_accept(&up, &o, out, sizeof(out));
    check(n > 0, "101 written");

    /* and the 101 must satisfy a client that sent this key */
    struct wisp_http_header rh[16];
    struct wisp_http_response resp;
    check(wisp_http_parse_response(out, (size_t)n, 0, NULL, &resp, rh, 16) == n, "101 parses");
    check(resp.status == 101, "101 status");
    char accept[WISP_WS_ACCEPT_LEN + 1];
    check(wisp_ws_accept_key(accept, up.key, up.key_len) == 0, "accept key");
    const struct wisp_http_header *a =
        wisp_http_header_find(rh, resp.num_headers, "sec-websocket-accept", NULL);
    check(a && a->value_len == WISP_WS_ACCEPT_LEN &&
              memcmp(a->value, accept, WISP_WS_ACCEPT_LEN) == 0,
          "101 carries the accept");
}

/* The raw input as a list value: the iterator must stay in bounds and make progress. */
static void exercise_token_next(const char *buf, size_t len)
{
    size_t pos = 0, prev = 0, count = 0, item_len;
    const char *item;
    while (wisp_http_token_next(buf, len, &pos, &item, &item_len)) {
        check(item >= buf + prev && item + item_len <= buf + len && pos <= len, "item bounds");
        check(item_len > 0 && pos > prev && ++count <= len, "progress");
        prev = pos;
    }
    check(pos == len, "exhausted at the end");
}

struct parse_ctx {
    const struct wisp_http_limits *lim;
    struct wisp_http_request *out;
    struct wisp_http_header *headers;
    size_t cap;
};

static ssize_t parse_request(const char *buf, size_t len, size_t prev, void *ctx)
{
    struct parse_ctx *c = ctx;
    return wisp_http_parse_request(buf, len, prev, c->lim, c->out, c->headers, c->cap);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t caps[8] = {64, 0, 1, 2, 4, 16, 100, MAX_SLOTS};
    struct wisp_http_header ha[MAX_SLOTS], hb[MAX_SLOTS];
    struct wisp_http_request a, b;
    struct wisp_http_limits lim;

    if (size < 2)
        return 0;
    uint8_t mode = data[0];
    uint32_t seed = (uint32_t)data[1] * 2654435761u | 1u;
    data += 2;
    size -= 2;

    wisp_http_limits_init(&lim);
    if (mode & 0x80) { /* small limits, so that they are actually reached */
        lim.max_head_bytes = 16 + (size_t)(mode & 0x3f) * 8;
        lim.max_headers = (size_t)(mode & 0x07);
    }
    size_t cap = caps[(mode >> 3) & 7];

    /* one shot */
    char *whole = exact_copy(data, size);
    ssize_t ra = wisp_http_parse_request(whole, size, 0, &lim, &a, ha, cap);
    check(ra > 0 || ra == WISP_EINCOMPLETE || ra == WISP_EPROTO || ra == WISP_ELIMIT, "rc");
    check((ra == WISP_EPROTO && (a.status == 400 || a.status == 505)) ||
              (ra == WISP_ELIMIT && a.status == 431) || (ra >= 0 && a.status == 0) ||
              (ra == WISP_EINCOMPLETE && a.status == 0),
          "status matches rc");

    /* growing prefixes, as a socket delivers them */
    struct parse_ctx pc = {&lim, &b, hb, cap};
    struct fuzz_grown g = fuzz_parse_growing(data, size, mode, &seed, parse_request, &pc);
    ssize_t rb = g.rc;
    char *part = g.part;
    size_t len = g.len, prev = g.prev;
    check(same_request(whole, ra, &a, part, rb, &b), "incremental parse differs from one-shot");
    if (rb > 0)
        check((size_t)rb <= len && prev < (size_t)rb, "decided exactly when the head ended");

    if (ra > 0) {
        check_request(whole, size, ra, &a);
        exercise_lists(a.headers, a.num_headers);
        exercise_server(&a);
    }
    exercise_token_next(whole, size);
    free(part);
    free(whole);
    return 0;
}
