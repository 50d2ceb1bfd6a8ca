/* The payload header and the publish window of bcast.h. */
#include "bcast.h"

#include <stdlib.h>
#include <string.h>

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Most significant 6 bits first. */
static void put_b64(uint8_t *out, unsigned chars, uint64_t v)
{
    for (unsigned i = 0; i < chars; i++)
        out[i] = (uint8_t)alphabet[(v >> (6 * (chars - 1 - i))) & 63];
}

/* Character -> 6-bit digit, -1 outside the alphabet; filled on first use (the decoder runs
 * once per received message, so it is worth a table). */
static int8_t digits[256];
static bool digits_ready;

static void fill_digits(void)
{
    memset(digits, -1, sizeof digits);
    for (int i = 0; i < 64; i++)
        digits[(uint8_t)alphabet[i]] = (int8_t)i;
    digits_ready = true;
}

/* Characters 0..14 weighted 1, 3, 5, ...: odd weights are invertible modulo 64, so changing
 * any one character changes the sum. d: their digits. */
static uint8_t check_char(const int8_t *d)
{
    unsigned sum = 0;
    for (unsigned i = 0; i < BC_HDR_LEN - 1; i++)
        sum += (2 * i + 1) * (unsigned)d[i];
    return (uint8_t)alphabet[sum & 63];
}

void bc_put_hdr(uint8_t *out, enum bc_kind kind, uint64_t seq, uint64_t t_ns)
{
    if (!digits_ready)
        fill_digits();
    out[0] = (uint8_t)kind;
    put_b64(out + 1, 7, seq & BC_SEQ_MAX);
    put_b64(out + 8, 7, t_ns & BC_TIME_MASK);
    int8_t d[BC_HDR_LEN - 1];
    for (unsigned i = 0; i < BC_HDR_LEN - 1; i++)
        d[i] = digits[out[i]];
    out[15] = check_char(d);
}

bool bc_get_hdr(const uint8_t *in, enum bc_kind *kind, uint64_t *seq, uint64_t *t_ns)
{
    if (in[0] != BC_SYNC && in[0] != BC_DATA)
        return false;
    if (!digits_ready)
        fill_digits();
    int8_t d[BC_HDR_LEN - 1];
    uint64_t s = 0, t = 0;
    for (unsigned i = 0; i < BC_HDR_LEN - 1; i++) {
        d[i] = digits[in[i]];
        if (d[i] < 0)
            return false;
        if (i >= 1 && i < 8)
            s = s << 6 | (uint64_t)d[i];
        else if (i >= 8)
            t = t << 6 | (uint64_t)d[i];
    }
    if (in[15] != check_char(d))
        return false;
    *kind = (enum bc_kind)in[0];
    *seq = s;
    *t_ns = t;
    return true;
}

bool bc_window_init(struct bc_window *w, unsigned cap)
{
    w->left = calloc(cap, sizeof *w->left);
    w->cap = cap;
    w->oldest = w->next = 0;
    return w->left != NULL;
}

void bc_window_free(struct bc_window *w)
{
    free(w->left);
    w->left = NULL;
}

uint64_t bc_window_push(struct bc_window *w, uint32_t audience)
{
    w->left[w->next % w->cap] = audience;
    return w->next++;
}

/* Move the oldest past every complete message. */
static uint64_t advance(struct bc_window *w)
{
    uint64_t before = w->oldest;
    while (w->oldest < w->next && w->left[w->oldest % w->cap] == 0)
        w->oldest++;
    return w->oldest - before;
}

uint64_t bc_window_done(struct bc_window *w, uint64_t seq)
{
    /* Outside the window: already complete, or never sent (a corrupted number; the caller
     * counts that as an error). A zero count means the same subscriber was counted twice,
     * which the callers' per-subscriber order rules out; never wrap it. */
    if (seq < w->oldest || seq >= w->next || w->left[seq % w->cap] == 0)
        return 0;
    w->left[seq % w->cap]--;
    return advance(w);
}

uint64_t bc_window_leave(struct bc_window *w, uint64_t from)
{
    uint64_t seq = from > w->oldest ? from : w->oldest;
    for (; seq < w->next; seq++)
        if (w->left[seq % w->cap] > 0)
            w->left[seq % w->cap]--;
    return advance(w);
}
