/* Networking internals: sockets owned by actors, driven by their worker's io_uring.
 *
 * Every socket (a listener or a connection) is a `struct wispi_sock` living inside its actor's
 * state, registered in the slot table of the worker that owns it. That worker's ring does all
 * of its I/O; completions carry [generation:24 | slot:32 | tag:8] in user_data, so a completion
 * that arrives after its slot was reused is recognised and ignored.
 *
 * Completions are never acted on by running actor code in the middle of the CQ: the worker
 * records them in the socket (received buffers, send progress, flags) and queues one SYS_IO
 * message to the actor if none is queued; the actor's turn then does the work (parsing,
 * callbacks). Everything here is owned by one worker thread, except wispi_worker.conns.
 *
 * A registered socket holds a reference on its actor, so the actor's memory (and the socket
 * inside it) outlives the actor's death until the kernel has returned every operation.
 */
#ifndef WISP_RUNTIME_NET_H
#define WISP_RUNTIME_NET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <wisp/server.h>

#include "internal.h"

struct io_uring_buf_ring;
struct wispi_sock;
struct wispi_net;

/* user_data tags of socket operations (the worker's own tags are below 16). */
enum {
    UD_NET_FIRST = 16,
    UD_NET_RECV = 16,   /* multishot recv with buffer select */
    UD_NET_SEND = 17,   /* send / sendmsg: at most one in flight */
    UD_NET_ACCEPT = 18, /* multishot accept */
    UD_NET_CANCEL = 19, /* cancel of another operation */
    UD_NET_CONNECT = 20, /* a client connection's connect */
};

static inline uint64_t wispi_ud(uint32_t slot, uint32_t gen, unsigned tag)
{
    return (uint64_t)(gen & 0xFFFFFFu) << 40 | (uint64_t)slot << 8 | tag;
}

/* What each kind of socket does with its events. All run on the owning worker. */
struct wispi_sock_ops {
    /* A completion for this socket (called from the worker's CQE processing: no actor code,
     * no callbacks; record and notify). */
    void (*cqe)(struct wispi_net *net, struct wispi_sock *s, unsigned tag, int32_t res,
                uint32_t flags);
    /* The actor's turn got the SYS_IO message. */
    void (*io)(struct wisp_ctx *ctx, struct wispi_sock *s);
    /* Before the worker submits: queue whatever SQEs the socket needs (sends, re-arms). */
    void (*flush)(struct wispi_net *net, struct wispi_sock *s);
    /* Periodic (every WISPI_SWEEP_MS): check deadlines. */
    void (*sweep)(struct wispi_net *net, struct wispi_sock *s, uint64_t now_ms);
    /* The socket is gone (its last operation returned, or the runtime is being torn down):
     * release what it owns. The fd is already closed. */
    void (*teardown)(struct wispi_sock *s);
};

struct wispi_sock {
    int fd;
    uint32_t slot;            /* index in the worker's table; 0 = not registered */
    uint32_t gen;
    uint16_t inflight;        /* operations the kernel still owes a final completion */
    bool io_queued;           /* a SYS_IO message waits in the actor's mailbox */
    bool dirty;               /* on the worker's flush list */
    bool closing;             /* close requested: cancel, then close(2) once inflight is 0 */
    uint8_t ops_inflight;     /* which operations are in flight: bit (tag - UD_NET_FIRST) */
    const struct wispi_sock_ops *ops;
    struct wispi_actor *actor; /* the owner to notify; NULL once it died */
    struct wispi_actor *ref;   /* the owner, on which we hold a reference (its memory, which
                                  holds this struct, lives until finish_close drops it) */
};

/* A received buffer waiting for the owning actor, linked through the worker's per-buffer
 * table (so a connection holding no buffers costs nothing). */
#define WISPI_NO_BUF 0xFFFFu

struct wispi_rxq {
    uint16_t head, tail; /* buffer ids, WISPI_NO_BUF when empty */
    uint16_t count;
};

#define WISPI_SWEEP_MS 250u

/* One worker's networking state; created on the worker's thread by the first socket. */
struct wispi_net {
    struct wispi_worker *w;
    struct io_uring *ring;
    /* slot table */
    struct wispi_sock **socks;
    uint32_t *gens;
    uint32_t cap;
    uint32_t *free_slots;
    uint32_t nfree;
    uint32_t used; /* high-water mark of slots handed out (slot 0 is never used) */
    uint32_t live; /* registered sockets */
    /* the provided buffer ring (group 0) */
    struct io_uring_buf_ring *br;
    uint8_t *bufs;
    uint32_t nbufs, bufsize;
    uint32_t out;          /* buffers the kernel filled that are not back in the ring */
    uint32_t adds;         /* buffers added since the last advance */
    uint16_t *buf_next;    /* rx queue links, per buffer id */
    uint32_t *buf_len;     /* bytes received in each held buffer */
    /* Sockets that want flushing before the next submit, as slot keys (a socket closed in
     * the meantime is recognised by its generation, never dereferenced). Two arrays: one
     * filled while the other is flushed. Each holds up to `cap` keys (one per slot). */
    uint64_t *dirty, *flushing;
    uint32_t ndirty;
    /* msghdr/iovec storage for sendmsg SQEs: the kernel copies them when it consumes the SQE
     * (IORING_FEAT_SUBMIT_STABLE), so they only live until the next submit. */
    struct msghdr *msgs;
    struct iovec *iovs;
    uint32_t msgs_used, iovs_used;
    /* cached send chunks, and cached headers of reference segments (conn_tx.c): a publish
     * to n subscribers needs n of those, and malloc was a tenth of the time it took */
    void *chunk_cache;
    uint32_t chunks_cached;
    void *seg_cache;
    uint32_t segs_cached;
    uint64_t next_sweep_ms;
    uint8_t *tls_scratch;    /* decrypted bytes, handed to the parsers (tls.c) */
    uint32_t tls_handshakes; /* TLS handshakes in progress on this worker */
};

/* The calling worker's network state, created on first use. NULL on allocation or buffer-ring
 * registration failure (wispi_set_error says why). Worker threads only. */
struct wispi_net *wispi_net_get(struct wispi_worker *w);
/* Register a socket in the worker's table; takes a reference on actor. */
int wispi_sock_register(struct wispi_net *net, struct wispi_sock *s, int fd,
                        const struct wispi_sock_ops *ops, struct wispi_actor *actor);
/* Start closing: cancel what is in flight, close(2) when the kernel returned everything, then
 * teardown and drop the actor reference. Idempotent. */
void wispi_sock_close(struct wispi_net *net, struct wispi_sock *s);
/* Queue one SYS_IO message to the owning actor unless one is queued or it is gone. */
void wispi_sock_notify(struct wispi_net *net, struct wispi_sock *s);
/* Put the socket on the flush list. */
void wispi_sock_dirty(struct wispi_net *net, struct wispi_sock *s);
/* An SQE for this socket's operation `tag` (submitting the SQ if it was full); counts it in
 * inflight. NULL only if the ring is unusable. */
struct io_uring_sqe *wispi_sock_sqe(struct wispi_net *net, struct wispi_sock *s, unsigned tag);
/* Cancel the socket's operations with tag (e.g. the multishot recv). */
void wispi_sock_cancel(struct wispi_net *net, struct wispi_sock *s, unsigned tag);
/* Storage for one sendmsg: a msghdr with room for n iovecs; valid until the next submit.
 * Take it before the SQE (it may submit what is queued, which must all be prepared). */
struct msghdr *wispi_net_msghdr(struct wispi_net *net, uint32_t n);

/* Received buffers. */
static inline uint8_t *wispi_buf_addr(const struct wispi_net *net, uint16_t bid)
{
    return net->bufs + (size_t)bid * net->bufsize;
}
void wispi_rxq_push(struct wispi_net *net, struct wispi_rxq *q, uint16_t bid, uint32_t len);
/* Take the oldest buffer off q: its id, and its length in *len. WISPI_NO_BUF if empty. */
uint16_t wispi_rxq_pop(struct wispi_net *net, struct wispi_rxq *q, uint32_t *len);
/* Give a buffer back to the ring (published at the next flush). */
void wispi_buf_return(struct wispi_net *net, uint16_t bid);
/* Buffers available to the kernel right now. */
static inline uint32_t wispi_bufs_free(const struct wispi_net *net)
{
    return net->nbufs - net->out;
}

/* Send chunks: blocks of WISPI_CHUNK bytes, cached per worker. */
#define WISPI_CHUNK 16384u
void *wispi_chunk_get(struct wispi_net *net);
void wispi_chunk_put(struct wispi_net *net, void *chunk);

/* Worker hooks (worker.c). */
void wispi_net_cqe(struct wispi_worker *w, uint64_t ud, int32_t res, uint32_t flags);
/* Flush dirty sockets and publish returned buffers; call before submitting. */
void wispi_net_flush(struct wispi_worker *w);
/* Deadlines: run the sweep if due. Returns the next sweep time (UINT64_MAX if no sockets). */
uint64_t wispi_net_tick(struct wispi_worker *w, uint64_t now_ms);
void wispi_net_destroy(struct wispi_worker *w);
/* SYS_IO reached the actor. */
void wispi_net_io(struct wisp_ctx *ctx, struct wispi_sock *s);

/* Spawn an internal actor on worker `worker` (pinned), with extra ACTOR_* flags. */
int wispi_spawn_internal(struct wisp_runtime *rt, const struct wisp_actor_def *def,
                         const void *arg, size_t arg_len, unsigned worker, uint32_t flags,
                         wisp_addr *out);
/* Send an internal (system-range) message type from ctx's actor (or from no actor). */
int wispi_send_internal(struct wisp_runtime *rt, struct wispi_actor *sender, wisp_addr to,
                        uint32_t type, const void *data, size_t len);

/* The same with an owned payload: release(data, len, arg) runs once it is no longer needed,
 * also when the send fails (before this returns). */
int wispi_send_owned_internal(struct wisp_runtime *rt, struct wispi_actor *sender, wisp_addr to,
                              uint32_t type, void *data, size_t len, wisp_release_fn release,
                              void *arg);

/* Internal message types (never seen by applications). */
#define WISPI_MSG_SHUTDOWN 0xFFFF0100u  /* SYS_SHUTDOWN for actors with ACTOR_TRAP_SHUTDOWN */
#define WISPI_MSG_SEND_TEXT 0xFFFF0101u /* wisp_conn_send_to: payload is the message */
#define WISPI_MSG_SEND_BINARY 0xFFFF0102u
#define WISPI_MSG_CLOSE 0xFFFF0103u     /* wisp_conn_close_to: u16 code, then the reason */
#define WISPI_MSG_RESOLVED 0xFFFF0104u  /* a client's name lookup ended: int gai code */

#endif
