/* libFuzzer target for the frame engine.
 *
 * Input layout: byte 0 picks the configuration (role, streaming, claimed RSV1, small limits,
 * outgoing fragmentation), bytes 1-2 seed the chunk boundaries, the rest is what the peer sent.
 * The same bytes are parsed twice, whole and in input-chosen chunks, and the two runs must
 * report the same events (streamed fragments folded per message): any difference, crash,
 * over-read (ASan) or UB (UBSan) is a finding. Events that carry data are also echoed back
 * through the send side, which must accept what the receive side accepted.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/ws.h>

#define MAX_EVENTS 4096

/* Compared with memcmp, so it has no padding: six ints, then the 64-bit fields. */
struct digest {
    int type, opcode, rsv, close_code, fault, zero;
    uint64_t len, hash;
};
_Static_assert(sizeof(struct digest) == 6 * sizeof(int) + 2 * sizeof(uint64_t),
               "struct digest must have no padding");

struct run {
    struct digest ev[MAX_EVENTS];
    size_t n;
    uint64_t frag_len, frag_hash; /* streaming: the message being folded */
};

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static void echo_back(struct wisp_ws *ws, const struct wisp_ws_event *ev)
{
    static uint8_t out[1 << 16];
    if (ev->type == WISP_WS_EV_MESSAGE && ev->len < sizeof out - 64) {
        ssize_t r = wisp_ws_send(ws, ev->opcode, ev->data, ev->len, out, sizeof out);
        /* Text accepted by the receiver is valid UTF-8 (unless compressed), so the sender must
         * take it; only a full buffer or our own closing state may refuse. */
        if (r == -EILSEQ && !(ev->rsv & WISP_WS_RSV1))
            abort();
    } else if (ev->type == WISP_WS_EV_PING) {
        if (wisp_ws_send_control(ws, WISP_WS_OP_PONG, ev->data, ev->len, out, sizeof out) ==
            -EMSGSIZE)
            abort();
    } else if (ev->type == WISP_WS_EV_CLOSE || ev->type == WISP_WS_EV_FAULT) {
        ssize_t r = wisp_ws_send_close(ws, ev->close_code, NULL, 0, out, sizeof out);
        if (r == -EINVAL)
            abort(); /* the engine handed us a code it cannot send */
    }
}

static void record(struct run *r, const struct wisp_ws_event *ev)
{
    if (r->n >= MAX_EVENTS)
        return;
    if (ev->type == WISP_WS_EV_FRAGMENT) {
        if (ev->first) {
            r->frag_len = 0;
            r->frag_hash = 0xcbf29ce484222325ull;
        }
        r->frag_len += ev->len;
        r->frag_hash = fnv(r->frag_hash, ev->data, ev->len);
        if (!ev->last)
            return;
        r->ev[r->n++] = (struct digest){ev->type, ev->opcode, ev->rsv, 0, 0, 0, r->frag_len,
                                        r->frag_hash};
        return;
    }
    r->ev[r->n++] = (struct digest){ev->type,  ev->opcode, ev->rsv, ev->close_code, ev->fault,
                                    0,         ev->len,    fnv(0xcbf29ce484222325ull, ev->data,
                                                               ev->len)};
}

static void run(const struct wisp_ws_config *cfg, bool claim, const uint8_t *in, size_t len,
                uint32_t seed, struct run *out)
{
    struct wisp_ws ws;
    if (wisp_ws_init(&ws, cfg))
        abort();
    if (claim)
        wisp_ws_claim_rsv(&ws, WISP_WS_RSV1);
    out->n = 0;
    size_t start = 0;
    while (start < len) {
        size_t n = len - start;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            size_t pick = 1 + (seed >> 16) % 64;
            if (pick < n)
                n = pick;
        }
        /* an exact-size heap copy, so ASan sees any read past the chunk */
        uint8_t *chunk = malloc(n);
        memcpy(chunk, in + start, n);
        size_t off = 0;
        while (off < n) {
            struct wisp_ws_event ev;
            ssize_t used = wisp_ws_recv(&ws, chunk + off, n - off, &ev);
            if (used < 0 || (size_t)used > n - off || (used == 0 && ev.type == WISP_WS_EV_NONE))
                abort();
            off += (size_t)used;
            if (ev.type != WISP_WS_EV_NONE) {
                record(out, &ev);
                echo_back(&ws, &ev);
            }
        }
        free(chunk);
        start += n;
    }
    wisp_ws_deinit(&ws);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct run whole, chunked;
    if (size < 3)
        return 0;
    uint8_t mode = data[0];
    uint32_t seed = (uint32_t)(data[1] << 8 | data[2]) | 1u;
    data += 3;
    size -= 3;

    struct wisp_ws_config cfg;
    wisp_ws_config_init(&cfg, mode & 1 ? WISP_WS_CLIENT : WISP_WS_SERVER);
    if (mode & 2) {
        cfg.flags |= WISP_WS_STREAM;
        cfg.max_message_size = UINT64_MAX;
    }
    if (mode & 8) {
        cfg.max_frame_size = 200;
        cfg.max_message_size = 300;
    }
    if (mode & 16)
        cfg.fragment_size = 1 + (mode >> 5);
    bool claim = mode & 4;

    run(&cfg, claim, data, size, 0, &whole);
    run(&cfg, claim, data, size, seed, &chunked);
    if (whole.n != chunked.n || memcmp(whole.ev, chunked.ev, whole.n * sizeof whole.ev[0]))
        abort();
    return 0;
}
