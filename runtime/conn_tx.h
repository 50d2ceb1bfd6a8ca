/* A connection's outgoing byte queue: frames corked between submits, one send in flight,
 * short sends resumed, control frames slipped in at the next frame boundary. Worker-owned. */
#ifndef WISP_RUNTIME_CONN_TX_H
#define WISP_RUNTIME_CONN_TX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net.h"

struct wispi_txseg;

struct wispi_txq {
    struct wispi_txseg *head, *tail;           /* data, in wire order */
    struct wispi_txseg *ctrl_head, *ctrl_tail; /* pings and pongs waiting for a boundary */
    size_t buffered;   /* bytes queued and not yet written (data and control) */
    uint32_t in_flight; /* bytes of the send the kernel is working on */
    bool sending;
    bool mid_frame;    /* the bytes written so far end inside a frame */
};

/* Room for n bytes of whole frames at the end of the queue: returns where to write them, or
 * NULL on allocation failure. Then wispi_txq_commit(n) (or nothing, to abandon it). */
uint8_t *wispi_txq_reserve(struct wispi_net *net, struct wispi_txq *q, size_t n);
/* The n reserved bytes were written; frame_end says whether they end a frame. */
void wispi_txq_commit(struct wispi_txq *q, size_t n, bool frame_end);
/* Queue len bytes at data without copying; release(rel_data, rel_len, arg) runs once the
 * segment is written or dropped (release may be NULL). -ENOMEM (after releasing) on failure. */
int wispi_txq_ref(struct wispi_net *net, struct wispi_txq *q, const void *data, size_t len,
                  bool frame_end, wisp_release_fn release, void *rel_data, size_t rel_len,
                  void *arg);
/* A whole control frame (copied) to send at the next frame boundary. */
int wispi_txq_ctrl(struct wispi_txq *q, const uint8_t *frame, size_t n);
/* Drop everything not yet handed to the kernel (the frame in progress is kept, so the stream
 * stays well-formed); a queued close frame must be added after this. */
void wispi_txq_drop_unsent(struct wispi_net *net, struct wispi_txq *q);
/* Free everything (the socket is closed). */
void wispi_txq_free(struct wispi_net *net, struct wispi_txq *q);
/* If nothing is in flight and something is queued, prepare one send for s. */
void wispi_txq_start(struct wispi_net *net, struct wispi_sock *s, struct wispi_txq *q);
/* Move the waiting control frames into the data queue at the first frame boundary at or
 * after the write position (wispi_txq_start does this; exposed for tests). Only while
 * nothing is in flight. */
void wispi_txq_place_control(struct wispi_txq *q);
/* The unsent bytes of the i-th data segment: false past the last one. */
bool wispi_txq_segment(const struct wispi_txq *q, size_t i, const uint8_t **p, size_t *n);
/* Tests: the unsent bytes of the i-th data segment (0 if there is none). */
size_t wispi_txq_peek(const struct wispi_txq *q, size_t i, const uint8_t **p);
/* The send in flight completed with res bytes written (res > 0). */
void wispi_txq_sent(struct wispi_net *net, struct wispi_txq *q, size_t res);

#endif
