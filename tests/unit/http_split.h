/* Shared by the HTTP unit tests: run a parser over one input in every way a peer could deliver
 * it and insist that all of them agree.
 *
 *   (a) the whole input in one call;
 *   (b) for every split point k: the first k bytes alone (WISP_EINCOMPLETE until the head is
 *       decided, the final answer afterwards), then, if that was incomplete, the whole input
 *       with prev_len = k;
 *   (c) growth one byte at a time, each call passing the previous length as prev_len.
 *
 * Every call's bytes are copied against a guard page (guard.h), so a parser that reads one byte
 * past what it was given crashes the test. Results are compared as text descriptions that hold
 * each field as offset+length from the start of the buffer, since each call sees the bytes at a
 * different address.
 */
#ifndef WISP_TEST_HTTP_SPLIT_H
#define WISP_TEST_HTTP_SPLIT_H

#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <wisp/http.h>

#include "guard.h"

#define SPLIT_MAX_INPUT   20000
#define SPLIT_MAX_HEADERS 160
#define SPLIT_DESC        16384

enum split_kind { SPLIT_REQUEST, SPLIT_RESPONSE };

static struct guard_buf split_guard;

static inline int split_setup(void **state)
{
    (void)state;
    guard_init(&split_guard, SPLIT_MAX_INPUT);
    return 0;
}

static inline int split_teardown(void **state)
{
    (void)state;
    guard_free(&split_guard);
    return 0;
}

static inline size_t split_off(const char *base, const char *p)
{
    return p ? (size_t)(p - base) : (size_t)-1;
}

static inline void split_append(char *desc, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline void split_append(char *desc, size_t *used, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(desc + *used, SPLIT_DESC - *used, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < SPLIT_DESC - *used);
    *used += (size_t)n;
}

static inline void split_describe_headers(char *desc, size_t *used, const char *base,
                                          const struct wisp_http_header *h, size_t n)
{
    for (size_t i = 0; i < n; i++)
        split_append(desc, used, " h%zu=%zu+%zu:%zu+%zu", i, split_off(base, h[i].name),
                     h[i].name_len, split_off(base, h[i].value), h[i].value_len);
}

/* One call; *status gets req.status for requests (0 for responses); desc gets a description
 * of everything the call reported (fields only on success: they are unspecified otherwise). */
static inline ssize_t split_parse(enum split_kind kind, const char *buf, size_t len, size_t prev,
                                  const struct wisp_http_limits *lim, size_t cap, int *status,
                                  char *desc)
{
    struct wisp_http_header hdrs[SPLIT_MAX_HEADERS];
    size_t used = 0;
    ssize_t rc;
    assert_true(cap <= SPLIT_MAX_HEADERS);
    if (kind == SPLIT_REQUEST) {
        struct wisp_http_request req;
        rc = wisp_http_parse_request(buf, len, prev, lim, &req, hdrs, cap);
        *status = req.status;
        split_append(desc, &used, "rc=%zd status=%d", rc, req.status);
        if (rc > 0) {
            assert_int_equal(req.status, 0);
            assert_int_equal(req.head_len, (size_t)rc);
            assert_ptr_equal(req.headers, hdrs);
            split_append(desc, &used, " m=%zu+%zu t=%zu+%zu p=%zu+%zu q=%zu+%zu v=%d n=%zu",
                         split_off(buf, req.method), req.method_len, split_off(buf, req.target),
                         req.target_len, split_off(buf, req.path), req.path_len,
                         split_off(buf, req.query), req.query_len, req.minor_version,
                         req.num_headers);
            split_describe_headers(desc, &used, buf, req.headers, req.num_headers);
        } else {
            assert_true(rc == WISP_EINCOMPLETE ? req.status == 0 : req.status >= 400);
        }
    } else {
        struct wisp_http_response resp;
        rc = wisp_http_parse_response(buf, len, prev, lim, &resp, hdrs, cap);
        *status = 0;
        split_append(desc, &used, "rc=%zd", rc);
        if (rc > 0) {
            assert_int_equal(resp.head_len, (size_t)rc);
            split_append(desc, &used, " v=%d status=%d r=%zu+%zu n=%zu", resp.minor_version,
                         resp.status, split_off(buf, resp.reason), resp.reason_len,
                         resp.num_headers);
            split_describe_headers(desc, &used, buf, resp.headers, resp.num_headers);
        }
    }
    assert_true(rc > 0 || rc == WISP_EINCOMPLETE || rc == WISP_EPROTO || rc == WISP_ELIMIT);
    if (rc > 0)
        assert_true((size_t)rc <= len);
    return rc;
}

/**
 * Run (a), (b) and (c) on in[0..len) and check they agree. Returns the one-shot result; sets
 * *status to the request status and *decided to the shortest prefix that gave a final answer
 * (len + 1 if none did). A successful parse must be decided exactly when its head is complete.
 */
static inline ssize_t split_check(enum split_kind kind, const void *in, size_t len,
                                  const struct wisp_http_limits *lim, size_t cap, int *status,
                                  size_t *decided)
{
    static char want[SPLIT_DESC], got[SPLIT_DESC];
    int want_status, st;
    const char *b;
    ssize_t rc;

    assert_true(len <= SPLIT_MAX_INPUT);
    b = (const char *)guard_place(&split_guard, in, len);
    ssize_t want_rc = split_parse(kind, b, len, 0, lim, cap, &want_status, want);

    /* (b) */
    size_t first = len + 1;
    for (size_t k = 0; k < len; k++) {
        b = (const char *)guard_place(&split_guard, in, k);
        rc = split_parse(kind, b, k, 0, lim, cap, &st, got);
        if (rc == WISP_EINCOMPLETE) {
            if (first <= len)
                fail_msg("prefix %zu incomplete after prefix %zu was decided", k, first);
            b = (const char *)guard_place(&split_guard, in, len);
            rc = split_parse(kind, b, len, k, lim, cap, &st, got);
        } else if (first > len) {
            first = k;
        }
        if (strcmp(got, want) != 0)
            fail_msg("split at %zu: got \"%s\", one-shot gave \"%s\"", k, got, want);
        assert_int_equal(st, want_status);
    }
    if (first > len && want_rc != WISP_EINCOMPLETE)
        first = len;

    /* (c) */
    size_t prev = 0;
    bool done = false;
    for (size_t k = 1; k <= len && !done; k++) {
        b = (const char *)guard_place(&split_guard, in, k);
        rc = split_parse(kind, b, k, prev, lim, cap, &st, got);
        if (rc == WISP_EINCOMPLETE) {
            prev = k;
            continue;
        }
        if (strcmp(got, want) != 0)
            fail_msg("byte-by-byte at %zu: got \"%s\", one-shot gave \"%s\"", k, got, want);
        assert_int_equal(st, want_status);
        assert_int_equal(k, first);
        done = true;
    }
    if (!done)
        assert_int_equal(want_rc, WISP_EINCOMPLETE);
    if (want_rc > 0)
        assert_int_equal(first, (size_t)want_rc);
    if (status)
        *status = want_status;
    if (decided)
        *decided = first;
    return want_rc;
}

#endif
