#include "ws_feed.h"

#include <stdarg.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guard.h"

void transcript_free(struct transcript *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->ev[i].data);
    t->n = 0;
}

static void record(struct transcript *t, const struct wisp_ws_event *ev, size_t at)
{
    assert_true(t->n < TRANSCRIPT_MAX);
    struct recorded_event *r = &t->ev[t->n++];
    r->type = ev->type;
    r->opcode = ev->opcode;
    r->rsv = ev->rsv;
    r->first = ev->first;
    r->last = ev->last;
    r->close_code = ev->close_code;
    r->fault = ev->fault;
    r->len = ev->len;
    assert_non_null(ev->data);
    r->data = malloc(ev->len ? ev->len : 1);
    assert_non_null(r->data);
    memcpy(r->data, ev->data, ev->len);
    if (ev->type == WISP_WS_EV_FAULT && t->bytes_at_fault == (size_t)-1)
        t->bytes_at_fault = at;
}

void feed_chunks(const struct wisp_ws_config *cfg, const uint8_t *in, size_t len,
                 const size_t *cuts, size_t ncuts, struct transcript *out)
{
    struct wisp_ws ws;
    assert_int_equal(wisp_ws_init(&ws, cfg), 0);
    memset(out, 0, sizeof *out);
    out->bytes_at_fault = (size_t)-1;
    struct guard_buf g;
    guard_init(&g, len ? len : 1);

    size_t start = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : len;
        if (end <= start)
            continue;
        size_t n = end - start;
        uint8_t *chunk = guard_place(&g, in + start, n);
        size_t off = 0;
        while (off < n) {
            struct wisp_ws_event ev;
            ssize_t used = wisp_ws_recv(&ws, chunk + off, n - off, &ev);
            assert_true(used >= 0 && (size_t)used <= n - off);
            assert_true(used > 0 || ev.type != WISP_WS_EV_NONE);
            off += (size_t)used;
            if (ev.type != WISP_WS_EV_NONE)
                record(out, &ev, start + off);
        }
        start = end;
    }
    wisp_ws_deinit(&ws);
    guard_free(&g);
}

/* In streaming mode, fragments depend on the chunking: fold each message's fragments into
 * one record so runs can be compared. */
static void fold_fragments(struct transcript *t)
{
    size_t w = 0;
    for (size_t i = 0; i < t->n; i++) {
        struct recorded_event *r = &t->ev[i];
        if (r->type != WISP_WS_EV_FRAGMENT || w == 0 || t->ev[w - 1].type != WISP_WS_EV_FRAGMENT ||
            t->ev[w - 1].last) {
            t->ev[w++] = *r;
            continue;
        }
        struct recorded_event *m = &t->ev[w - 1];
        m->data = realloc(m->data, m->len + r->len + 1);
        memcpy(m->data + m->len, r->data, r->len);
        m->len += r->len;
        m->last = r->last;
        free(r->data);
    }
    t->n = w;
}

static void assert_same(const struct transcript *a, const struct transcript *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        const struct recorded_event *x = &a->ev[i], *y = &b->ev[i];
        assert_int_equal(x->type, y->type);
        assert_int_equal(x->opcode, y->opcode);
        assert_int_equal(x->rsv, y->rsv);
        assert_int_equal(x->close_code, y->close_code);
        assert_int_equal(x->fault, y->fault);
        assert_int_equal(x->len, y->len);
        assert_memory_equal(x->data, y->data, x->len ? x->len : 0);
        if (x->type == WISP_WS_EV_FRAGMENT) {
            assert_int_equal(x->first, y->first);
            assert_int_equal(x->last, y->last);
        }
    }
}

void feed_all_splits(const struct wisp_ws_config *cfg, const uint8_t *in, size_t len,
                     struct transcript *out)
{
    feed_chunks(cfg, in, len, NULL, 0, out);
    /* A second whole run, folded, is the reference; *out stays as the engine reported it. */
    struct transcript ref;
    feed_chunks(cfg, in, len, NULL, 0, &ref);
    fold_fragments(&ref);

    for (size_t k = 1; k < len; k++) {
        struct transcript t;
        feed_chunks(cfg, in, len, &k, 1, &t);
        fold_fragments(&t);
        assert_same(&ref, &t);
        transcript_free(&t);
    }
    if (len > 1) {
        size_t *cuts = malloc(len * sizeof *cuts);
        for (size_t k = 0; k < len - 1; k++)
            cuts[k] = k + 1;
        struct transcript t;
        feed_chunks(cfg, in, len, cuts, len - 1, &t);
        fold_fragments(&t);
        assert_same(&ref, &t);
        transcript_free(&t);
        free(cuts);
    }
    transcript_free(&ref);
}

size_t make_frame(uint8_t *out, bool fin, uint8_t rsv, unsigned opcode, const uint8_t *mask,
                  const void *payload, size_t len)
{
    size_t h = wisp_ws_frame_header(out, (enum wisp_ws_opcode)opcode, fin, rsv, len, mask);
    if (len)
        memcpy(out + h, payload, len);
    if (mask)
        for (size_t i = 0; i < len; i++)
            out[h + i] ^= mask[i % 4];
    return h + len;
}
