/* libFuzzer target: the response-head parser, its incremental mode, and the client's check of
 * whatever it accepts.
 *
 * Input: byte 0 picks the limits and the header array size, byte 1 seeds the split schedule,
 * the rest is the server's answer. It is parsed once whole and again as growing prefixes (each
 * call passing the previous length as prev_len); the results must be identical or the target
 * aborts. Each call's bytes sit in a heap block of exactly their size, so AddressSanitizer
 * catches any read past the end.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <wisp/http.h>

#include "grow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SLOTS 128

/* RFC 6455 §1.3: a key and its accept value, so that seeds can hold a matching 101. */
#define KEY "dGhlIHNhbXBsZSBub25jZQ=="

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_http_response: %s\n", what);
        abort();
    }
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

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

static bool same_response(const char *ba, ssize_t ra, const struct wisp_http_response *a,
                          const char *bb, ssize_t rb, const struct wisp_http_response *b)
{
    if (ra != rb)
        return false;
    if (ra <= 0)
        return true;
    if (a->minor_version != b->minor_version || a->status != b->status ||
        off(ba, a->reason) != off(bb, b->reason) || a->reason_len != b->reason_len ||
        a->num_headers != b->num_headers || a->head_len != b->head_len)
        return false;
    for (size_t i = 0; i < a->num_headers; i++) {
        const struct wisp_http_header *x = &a->headers[i], *y = &b->headers[i];
        if (off(ba, x->name) != off(bb, y->name) || x->name_len != y->name_len ||
            off(ba, x->value) != off(bb, y->value) || x->value_len != y->value_len)
            return false;
    }
    return true;
}

static void check_response(const char *buf, size_t len, ssize_t rc,
                           const struct wisp_http_response *r)
{
    size_t head = (size_t)rc;
    check(head <= len && r->head_len == head, "head length");
    check(head >= 4 && memcmp(buf + head - 4, "\r\n\r\n", 4) == 0, "head ends in CRLFCRLF");
    check(memcmp(buf, "HTTP/1.", 7) == 0, "version");
    check(r->status >= 100 && r->status <= 999, "status range");
    check(r->reason >= buf && r->reason + r->reason_len <= buf + head, "reason bounds");
    for (size_t i = 0; i < r->num_headers; i++) {
        const struct wisp_http_header *h = &r->headers[i];
        check(h->name_len > 0 && h->name[h->name_len] == ':', "name");
        check(h->value >= h->name && h->value + h->value_len <= buf + head, "value bounds");
        for (size_t j = 0; j < h->value_len; j++) {
            unsigned char c = (unsigned char)h->value[j];
            check(c == '\t' || (c >= 0x20 && c != 0x7f), "value bytes");
        }
        if (h->value_len)
            check(!is_ows(h->value[0]) && !is_ows(h->value[h->value_len - 1]), "value trimmed");
    }
}

/* The client's verdict must be consistent with what it reports. */
static void exercise_client(const struct wisp_http_response *resp)
{
    static const char *const protos[] = {"chat", "superchat"};
    const struct wisp_ws_client_opts o = {
        .host = "server.example.com",
        .target = "/chat",
        .protocols = protos,
        .num_protocols = 2,
        .extensions = "permessage-deflate; client_max_window_bits, x-foo",
    };
    struct wisp_ws_client_result res;
    int rc = wisp_ws_client_check(resp, &o, KEY, &res);
    check(res.reason != NULL && res.status == resp->status, "result filled");
    if (rc != 0) {
        check(rc == WISP_EHANDSHAKE && !res.protocol && !res.extensions, "refusal");
        return;
    }
    check(resp->status == 101, "accepted only a 101");
    check(wisp_http_list_has(resp->headers, resp->num_headers, "upgrade", "websocket"),
          "accepted without Upgrade");
    if (res.protocol)
        check((res.protocol_len == 4 && memcmp(res.protocol, "chat", 4) == 0) ||
                  (res.protocol_len == 9 && memcmp(res.protocol, "superchat", 9) == 0),
              "accepted an unoffered protocol");
    if (res.extensions) {
        size_t pos = 0, n;
        const char *item;
        while (wisp_http_token_next(res.extensions, res.extensions_len, &pos, &item, &n))
            check((n >= 18 && strncasecmp(item, "permessage-deflate", 18) == 0) ||
                      (n >= 5 && strncasecmp(item, "x-foo", 5) == 0),
                  "accepted an unoffered extension");
    }
}

struct parse_ctx {
    const struct wisp_http_limits *lim;
    struct wisp_http_response *out;
    struct wisp_http_header *headers;
    size_t cap;
};

static ssize_t parse_response(const char *buf, size_t len, size_t prev, void *ctx)
{
    struct parse_ctx *c = ctx;
    return wisp_http_parse_response(buf, len, prev, c->lim, c->out, c->headers, c->cap);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t caps[8] = {64, 0, 1, 2, 4, 16, 100, MAX_SLOTS};
    struct wisp_http_header ha[MAX_SLOTS], hb[MAX_SLOTS];
    struct wisp_http_response a, b;
    struct wisp_http_limits lim;

    if (size < 2)
        return 0;
    uint8_t mode = data[0];
    uint32_t seed = (uint32_t)data[1] * 2654435761u | 1u;
    data += 2;
    size -= 2;

    wisp_http_limits_init(&lim);
    if (mode & 0x80) {
        lim.max_head_bytes = 16 + (size_t)(mode & 0x3f) * 8;
        lim.max_headers = (size_t)(mode & 0x07);
    }
    size_t cap = caps[(mode >> 3) & 7];

    char *whole = exact_copy(data, size);
    ssize_t ra = wisp_http_parse_response(whole, size, 0, &lim, &a, ha, cap);
    check(ra > 0 || ra == WISP_EINCOMPLETE || ra == WISP_EPROTO || ra == WISP_ELIMIT, "rc");

    struct parse_ctx pc = {&lim, &b, hb, cap};
    struct fuzz_grown g = fuzz_parse_growing(data, size, mode, &seed, parse_response, &pc);
    ssize_t rb = g.rc;
    char *part = g.part;
    size_t len = g.len, prev = g.prev;
    check(same_response(whole, ra, &a, part, rb, &b), "incremental parse differs from one-shot");
    if (rb > 0)
        check((size_t)rb <= len && prev < (size_t)rb, "decided exactly when the head ended");

    if (ra > 0) {
        check_response(whole, size, ra, &a);
        exercise_client(&a);
    }
    free(part);
    free(whole);
    return 0;
}
