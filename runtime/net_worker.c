/* A worker's networking state: the socket slot table, the provided receive-buffer ring, the
 * flush list, the deadline sweep, and the routing of completions to sockets.
 *
 * Everything here runs on the worker that owns the ring (SINGLE_ISSUER), so nothing is
 * shared: no locks, no atomics.
 */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "net.h"

#define MSGS_PER_SUBMIT 512u
#define IOVS_PER_SUBMIT 8192u
#define CHUNK_CACHE_MAX 64u

/* ---- creation ------------------------------------------------------------------------------ */

static int setup_buffers(struct wispi_net *net)
{
    const struct wisp_runtime_opts *o = &net->w->rt->opts;
    uint32_t n = o->recv_buffers ? o->recv_buffers : 512;
    uint32_t size = o->recv_buffer_size ? o->recv_buffer_size : 16384;
    if (n & (n - 1) || n > 32768 || size < 256) {
        wispi_set_error("recv_buffers must be a power of two up to 32768 and recv_buffer_size "
                        "at least 256 (got %u and %u)", n, size);
        return -EINVAL;
    }
    /* Anonymous memory: pages are touched only as the kernel fills buffers. */
    net->bufs = mmap(NULL, (size_t)n * size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (net->bufs == MAP_FAILED) {
        net->bufs = NULL;
        return -ENOMEM;
    }
    void *ring_mem;
    if (posix_memalign(&ring_mem, 4096, (size_t)n * sizeof(struct io_uring_buf)))
        return -ENOMEM;
    net->br = ring_mem;
    net->buf_next = calloc(n, sizeof *net->buf_next);
    net->buf_len = calloc(n, sizeof *net->buf_len);
    if (!net->buf_next || !net->buf_len)
        return -ENOMEM;
    /* liburing 2.3 has no io_uring_setup_buf_ring(): register our own page-aligned ring. */
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (uint64_t)(uintptr_t)net->br;
    reg.ring_entries = n;
    reg.bgid = 0;
    io_uring_buf_ring_init(net->br);
    int rc = io_uring_register_buf_ring(net->ring, &reg, 0);
    if (rc < 0) {
        wispi_set_error("cannot register the receive buffer ring: %s", strerror(-rc));
        return rc;
    }
    net->nbufs = n;
    net->bufsize = size;
    int mask = io_uring_buf_ring_mask(n);
    for (uint32_t i = 0; i < n; i++)
        io_uring_buf_ring_add(net->br, net->bufs + (size_t)i * size, size, (uint16_t)i, mask,
                              (int)i);
    /* store-release of the tail: the kernel sees the entries before the new tail */
    io_uring_buf_ring_advance(net->br, (int)n);
    return 0;
}

static void free_net(struct wispi_net *net)
{
    if (net->bufs)
        munmap(net->bufs, (size_t)net->nbufs * net->bufsize);
    free(net->br);
    free(net->buf_next);
    free(net->buf_len);
    free(net->socks);
    free(net->gens);
    free(net->free_slots);
    free(net->dirty);
    free(net->flushing);
    free(net->msgs);
    free(net->iovs);
    free(net->tls_scratch);
    while (net->chunk_cache) {
        void *next = *(void **)net->chunk_cache;
        free(net->chunk_cache);
        net->chunk_cache = next;
    }
    while (net->seg_cache) {
        void *next = *(void **)net->seg_cache;
        free(net->seg_cache);
        net->seg_cache = next;
    }
    free(net);
}

struct wispi_net *wispi_net_get(struct wispi_worker *w)
{
    if (w->net)
        return w->net;
    if (!w->ring) {
        wispi_set_error("sockets need a threaded runtime (not deterministic mode)");
        return NULL;
    }
    struct wispi_net *net = calloc(1, sizeof *net);
    if (!net)
        return NULL;
    net->w = w;
    net->ring = w->ring;
    net->msgs = calloc(MSGS_PER_SUBMIT, sizeof *net->msgs);
    net->iovs = calloc(IOVS_PER_SUBMIT, sizeof *net->iovs);
    if (!net->msgs || !net->iovs || setup_buffers(net) < 0) {
        free_net(net);
        return NULL;
    }
    net->used = 1; /* slot 0 means "not registered" */
    w->net = net;
    return net;
}

/* ---- the slot table ------------------------------------------------------------------------- */

static int grow_table(struct wispi_net *net)
{
    uint32_t cap = net->cap ? net->cap * 2 : 256;
    struct wispi_sock **socks = realloc(net->socks, cap * sizeof *socks);
    if (!socks)
        return -ENOMEM;
    net->socks = socks;
    uint32_t *gens = realloc(net->gens, cap * sizeof *gens);
    if (!gens)
        return -ENOMEM;
    net->gens = gens;
    uint32_t *fr = realloc(net->free_slots, cap * sizeof *fr);
    if (!fr)
        return -ENOMEM;
    net->free_slots = fr;
    uint64_t *d = realloc(net->dirty, cap * sizeof *d);
    if (!d)
        return -ENOMEM;
    net->dirty = d;
    d = realloc(net->flushing, cap * sizeof *d);
    if (!d)
        return -ENOMEM;
    net->flushing = d;
    for (uint32_t i = net->cap; i < cap; i++) {
        socks[i] = NULL;
        gens[i] = 0;
    }
    net->cap = cap;
    return 0;
}

int wispi_sock_register(struct wispi_net *net, struct wispi_sock *s, int fd,
                        const struct wispi_sock_ops *ops, struct wispi_actor *actor)
{
    uint32_t slot;
    if (net->nfree) {
        slot = net->free_slots[--net->nfree];
    } else {
        if (net->used >= net->cap && grow_table(net) < 0)
            return -ENOMEM;
        slot = net->used++;
    }
    memset(s, 0, sizeof *s);
    s->fd = fd;
    s->slot = slot;
    s->gen = net->gens[slot];
    s->ops = ops;
    s->actor = actor;
    s->ref = actor;
    wispi_actor_addref(actor);
    net->socks[slot] = s;
    net->live++;
    return 0;
}

static void unregister(struct wispi_net *net, struct wispi_sock *s)
{
    if (s->dirty) {
        /* Take its key out of the flush list, so a slot appears there at most once. */
        uint64_t key = wispi_ud(s->slot, s->gen, 0);
        for (uint32_t i = 0; i < net->ndirty; i++) {
            if (net->dirty[i] == key) {
                net->dirty[i] = net->dirty[--net->ndirty];
                break;
            }
        }
        s->dirty = false;
    }
    net->socks[s->slot] = NULL;
    /* A new generation: completions still carrying the old one are recognised as stale. */
    net->gens[s->slot] = (net->gens[s->slot] + 1) & 0xFFFFFFu;
    net->free_slots[net->nfree++] = s->slot;
    net->live--;
    s->slot = 0;
}

/* The kernel returned everything: close the fd, let the socket release what it owns, and
 * drop our reference on the actor (which may free the memory s lives in). */
static void finish_close(struct wispi_net *net, struct wispi_sock *s)
{
    struct wispi_actor *a = s->ref;
    unregister(net, s);
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->ops->teardown(s);
    wispi_actor_release(a);
}

/* ---- operations ------------------------------------------------------------------------------ */

struct io_uring_sqe *wispi_sock_sqe(struct wispi_net *net, struct wispi_sock *s, unsigned tag)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(net->ring);
    if (!sqe) {
        /* SQ full: hand what is queued to the kernel, then there is room. */
        io_uring_submit(net->ring);
        sqe = io_uring_get_sqe(net->ring);
        if (!sqe)
            return NULL;
    }
    io_uring_sqe_set_data64(sqe, wispi_ud(s->slot, s->gen, tag));
    s->inflight++;
    if (tag != UD_NET_CANCEL)
        s->ops_inflight |= (uint8_t)(1u << (tag - UD_NET_FIRST));
    return sqe;
}

void wispi_sock_cancel(struct wispi_net *net, struct wispi_sock *s, unsigned tag)
{
    struct io_uring_sqe *sqe = wispi_sock_sqe(net, s, UD_NET_CANCEL);
    if (sqe)
        io_uring_prep_cancel64(sqe, wispi_ud(s->slot, s->gen, tag), 0);
}

void wispi_sock_close(struct wispi_net *net, struct wispi_sock *s)
{
    if (s->closing || !s->slot)
        return;
    s->closing = true;
    if (!s->inflight) {
        finish_close(net, s);
        return;
    }
    /* Cancel before close: nothing of ours may still run on the fd (or on a new socket that
     * reuses its number) once we close it. Each operation is cancelled by its user_data, which
     * the kernel finds by hash; a cancel by fd would scan every pending request of the ring, and
     * closing n sockets at once would cost n^2. */
    for (unsigned tag = UD_NET_FIRST; tag <= UD_NET_CONNECT; tag++)
        if (tag != UD_NET_CANCEL && (s->ops_inflight & (1u << (tag - UD_NET_FIRST))))
            wispi_sock_cancel(net, s, tag);
}

void wispi_sock_notify(struct wispi_net *net, struct wispi_sock *s)
{
    (void)net;
    if (s->io_queued || !s->actor)
        return;
    struct wispi_msg *m = wispi_msg_new_sys(SYS_IO, WISP_ADDR_NONE, (uint64_t)(uintptr_t)s);
    if (!m)
        return; /* the actor learns at its next notification; nothing is lost meanwhile */
    s->io_queued = true;
    wispi_actor_addref(s->actor); /* consumed by the delivery */
    wispi_deliver(s->actor, m, m, 1);
}

void wispi_sock_dirty(struct wispi_net *net, struct wispi_sock *s)
{
    if (s->dirty || !s->slot)
        return;
    s->dirty = true;
    net->dirty[net->ndirty++] = wispi_ud(s->slot, s->gen, 0);
}

struct msghdr *wispi_net_msghdr(struct wispi_net *net, uint32_t n)
{
    if (net->msgs_used == MSGS_PER_SUBMIT || net->iovs_used + n > IOVS_PER_SUBMIT) {
        io_uring_submit(net->ring); /* the kernel has copied every msghdr queued so far */
        net->msgs_used = net->iovs_used = 0;
    }
    struct msghdr *mh = &net->msgs[net->msgs_used++];
    memset(mh, 0, sizeof *mh);
    mh->msg_iov = &net->iovs[net->iovs_used];
    mh->msg_iovlen = n;
    net->iovs_used += n;
    return mh;
}

/* ---- receive buffers ------------------------------------------------------------------------- */

void wispi_rxq_push(struct wispi_net *net, struct wispi_rxq *q, uint16_t bid, uint32_t len)
{
    net->buf_next[bid] = WISPI_NO_BUF;
    net->buf_len[bid] = len;
    if (q->count)
        net->buf_next[q->tail] = bid;
    else
        q->head = bid;
    q->tail = bid;
    q->count++;
}

uint16_t wispi_rxq_pop(struct wispi_net *net, struct wispi_rxq *q, uint32_t *len)
{
    if (!q->count)
        return WISPI_NO_BUF;
    uint16_t bid = q->head;
    q->head = net->buf_next[bid];
    q->count--;
    *len = net->buf_len[bid];
    return bid;
}

void wispi_buf_return(struct wispi_net *net, uint16_t bid)
{
    io_uring_buf_ring_add(net->br, wispi_buf_addr(net, bid), net->bufsize, bid,
                          io_uring_buf_ring_mask(net->nbufs), (int)net->adds);
    net->adds++;
    net->out--;
}

/* ---- send chunks ----------------------------------------------------------------------------- */

void *wispi_chunk_get(struct wispi_net *net)
{
    void *c = net->chunk_cache;
    if (c) {
        net->chunk_cache = *(void **)c;
        net->chunks_cached--;
        return c;
    }
    return malloc(WISPI_CHUNK);
}

void wispi_chunk_put(struct wispi_net *net, void *chunk)
{
    if (!net || net->chunks_cached >= CHUNK_CACHE_MAX) {
        free(chunk);
        return;
    }
    *(void **)chunk = net->chunk_cache;
    net->chunk_cache = chunk;
    net->chunks_cached++;
}

/* ---- worker hooks ----------------------------------------------------------------------------- */

/* The socket a key (user_data or dirty entry) names, or NULL if that socket is gone. */
static struct wispi_sock *lookup(const struct wispi_net *net, uint64_t key)
{
    uint32_t slot = (uint32_t)(key >> 8);
    uint32_t gen = (uint32_t)(key >> 40);
    if (slot >= net->cap || !net->socks[slot] || net->gens[slot] != gen)
        return NULL;
    return net->socks[slot];
}

void wispi_net_cqe(struct wispi_worker *w, uint64_t ud, int32_t res, uint32_t flags)
{
    struct wispi_net *net = w->net;
    if (!net)
        return;
    unsigned tag = ud & 0xFF;
    if (flags & IORING_CQE_F_BUFFER)
        net->out++;
    struct wispi_sock *s = lookup(net, ud);
    if (!s) {
        /* Stale: its socket is gone. A buffer it carries still goes back to the ring. */
        if (flags & IORING_CQE_F_BUFFER)
            wispi_buf_return(net, (uint16_t)(flags >> IORING_CQE_BUFFER_SHIFT));
        return;
    }
    /* Multishot operations end with the first completion that lacks F_MORE. */
    bool final = tag == UD_NET_SEND || tag == UD_NET_CANCEL || tag == UD_NET_CONNECT ||
                 !(flags & IORING_CQE_F_MORE);
    if (final) {
        s->inflight--;
        if (tag != UD_NET_CANCEL)
            s->ops_inflight &= (uint8_t)~(1u << (tag - UD_NET_FIRST));
    }
    if (tag != UD_NET_CANCEL)
        s->ops->cqe(net, s, tag, res, flags);
    if (s->closing && s->slot && !s->inflight)
        finish_close(net, s);
}

void wispi_net_io(struct wisp_ctx *ctx, struct wispi_sock *s)
{
    s->io_queued = false;
    if (s->slot)
        s->ops->io(ctx, s);
}

void wispi_net_flush(struct wispi_worker *w)
{
    struct wispi_net *net = w->net;
    if (!net)
        return;
    if (!io_uring_sq_ready(net->ring))
        net->msgs_used = net->iovs_used = 0; /* everything queued before was submitted */
    uint64_t *keys = net->dirty;
    uint32_t n = net->ndirty;
    net->dirty = net->flushing; /* sockets dirtied while flushing wait for the next round */
    net->flushing = keys;
    net->ndirty = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct wispi_sock *s = lookup(net, keys[i]);
        if (!s)
            continue;
        s->dirty = false;
        if (!s->closing)
            s->ops->flush(net, s);
    }
    if (net->adds) {
        /* One release store of the tail for every buffer given back this round. */
        io_uring_buf_ring_advance(net->br, (int)net->adds);
        net->adds = 0;
    }
}

uint64_t wispi_net_tick(struct wispi_worker *w, uint64_t now_ms)
{
    struct wispi_net *net = w->net;
    if (!net || !net->live)
        return UINT64_MAX;
    if (now_ms >= net->next_sweep_ms) {
        net->next_sweep_ms = now_ms + WISPI_SWEEP_MS;
        for (uint32_t i = 1; i < net->used; i++) {
            struct wispi_sock *s = net->socks[i];
            if (s && s->ops->sweep)
                s->ops->sweep(net, s, now_ms);
        }
    }
    return net->next_sweep_ms;
}

void wispi_net_destroy(struct wispi_worker *w)
{
    struct wispi_net *net = w->net;
    if (!net)
        return;
    /* The ring is gone (torn down first), so the kernel holds nothing of ours any more. */
    for (uint32_t i = 1; i < net->used; i++) {
        struct wispi_sock *s = net->socks[i];
        if (s)
            finish_close(net, s);
    }
    free_net(net);
    w->net = NULL;
}
