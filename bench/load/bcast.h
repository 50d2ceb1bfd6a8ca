/* Broadcast mode's pieces that know nothing about connections: the payload header and the
 * publish window (see README.md, Broadcast mode). */
#ifndef WISP_LOAD_BCAST_H
#define WISP_LOAD_BCAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Header: a kind letter, 7 characters of sequence number (42 bits), 7 of the send time (the
 * low 42 bits of ns since the run started: latencies are taken modulo 2^42 ns, 73 minutes) and
 * a check character, 6 bits per character from a base64 alphabet: a payload is ASCII (valid
 * UTF-8 for text messages) and can be as short as 16 B. The check (a sum with odd weights,
 * modulo 64) catches any one changed character, which the padding check cannot at 16 B. */
#define BC_HDR_LEN 16
#define BC_SEQ_MAX ((UINT64_C(1) << 42) - 1)
#define BC_TIME_MASK ((UINT64_C(1) << 42) - 1)

enum bc_kind {
    BC_SYNC = 'S', /* before measuring: tells the publisher a subscriber is registered */
    BC_DATA = 'D', /* measured traffic */
};

/** Writes the header of message (kind, seq) sent at t_ns into out[0..BC_HDR_LEN). */
void bc_put_hdr(uint8_t *out, enum bc_kind kind, uint64_t seq, uint64_t t_ns);

/** Reads a header (t_ns: the low 42 bits); false when it is not one of ours (wrong kind, a
 *  character outside the alphabet, or a wrong check), e.g. a greeting the server sends on its
 *  own, or a corrupted one. */
bool bc_get_hdr(const uint8_t *in, enum bc_kind *kind, uint64_t *seq, uint64_t *t_ns);

/** Nanoseconds from send time t_ns (as read by bc_get_hdr) to now_ns (same origin). */
static inline uint64_t bc_elapsed(uint64_t t_ns, uint64_t now_ns)
{
    return (now_ns - t_ns) & BC_TIME_MASK;
}

/* The publisher's window: per message sent and not yet received by every subscriber, how
 * many subscribers still have to receive it. Messages complete in order (the oldest first),
 * since each subscriber receives them in order. */
struct bc_window {
    uint32_t *left; /* subscribers still to receive seq, at [seq % cap] */
    unsigned cap;
    uint64_t oldest; /* the oldest incomplete message (== next when none is outstanding) */
    uint64_t next;   /* the next sequence number to send */
};

bool bc_window_init(struct bc_window *w, unsigned cap);
void bc_window_free(struct bc_window *w);

static inline bool bc_window_full(const struct bc_window *w)
{
    return w->next - w->oldest >= w->cap;
}

/** Records message w->next as sent to `audience` subscribers; returns its sequence number. */
uint64_t bc_window_push(struct bc_window *w, uint32_t audience);

/** One subscriber received seq, or will never receive it (a gap, or it left). Returns the
 *  number of messages that became complete (the oldest moved by that much). */
uint64_t bc_window_done(struct bc_window *w, uint64_t seq);

/** A subscriber left having received everything before `from`: it receives none of
 *  [from, next). Returns the number of messages that became complete. */
uint64_t bc_window_leave(struct bc_window *w, uint64_t from);

#endif
