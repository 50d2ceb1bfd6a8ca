/* Outgoing byte queue of a connection (see conn_tx.h).
 *
 * Segments come in three kinds: chunks (16 KiB blocks from the worker's cache, into which
 * small frames are appended back to back), heap blocks (one large frame or fragment), and
 * references to a caller's buffer (zero-copy payloads). Bytes already handed to the kernel are
 * never modified: appending to a chunk that is in flight only writes past what was submitted.
 */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conn_tx.h"

/* iovecs per sendmsg: enough to cork a turn's worth of frames, small enough for the arena. */
#define MAX_IOV 64u

enum seg_kind { SEG_CHUNK, SEG_HEAP, SEG_REF };

struct wispi_txseg {
    struct wispi_txseg *next;
    uint8_t *base;
    size_t len;  /* bytes filled */
    size_t cap;  /* bytes that may be filled (chunks grow by appends) */
    size_t sent; /* bytes written to the socket */
    uint8_t kind;
    bool frame_end; /* the segment's last byte ends a frame */
    wisp_release_fn release;
    void *rel_data;
    size_t rel_len;
    void *arg;
};

static struct wispi_txseg *new_seg(struct wispi_net *net, size_t n)
{
    struct wispi_txseg *s;
    if (n <= WISPI_CHUNK - sizeof *s) {
        s = wispi_chunk_get(net);
        if (!s)
            return NULL;
        s->kind = SEG_CHUNK;
        s->cap = WISPI_CHUNK - sizeof *s;
    } else {
        s = malloc(sizeof *s + n);
        if (!s)
            return NULL;
        s->kind = SEG_HEAP;
        s->cap = n;
    }
    s->next = NULL;
    s->base = (uint8_t *)(s + 1);
    s->len = s->sent = 0;
    s->frame_end = true;
    s->release = NULL;
    return s;
}

/* Reference segments are headers only: a worker keeps up to this many for reuse. */
#define SEG_CACHE_MAX 16384u

static struct wispi_txseg *ref_seg_get(struct wispi_net *net)
{
    struct wispi_txseg *s = net ? net->seg_cache : NULL;
    if (!s)
        return malloc(sizeof *s);
    net->seg_cache = s->next;
    net->segs_cached--;
    return s;
}

static void free_seg(struct wispi_net *net, struct wispi_txseg *s)
{
    if (s->release)
        s->release(s->rel_data, s->rel_len, s->arg);
    if (s->kind == SEG_CHUNK) {
        wispi_chunk_put(net, s);
    } else if (s->kind == SEG_REF && net && net->segs_cached < SEG_CACHE_MAX) {
        s->next = net->seg_cache;
        net->seg_cache = s;
        net->segs_cached++;
    } else {
        free(s);
    }
}

static void append(struct wispi_txq *q, struct wispi_txseg *s)
{
    if (q->tail)
        q->tail->next = s;
    else
        q->head = s;
    q->tail = s;
}

uint8_t *wispi_txq_reserve(struct wispi_net *net, struct wispi_txq *q, size_t n)
{
    struct wispi_txseg *t = q->tail;
    if (t && t->kind == SEG_CHUNK && t->frame_end && t->cap - t->len >= n)
        return t->base + t->len;
    struct wispi_txseg *s = new_seg(net, n);
    if (!s)
        return NULL;
    append(q, s);
    return s->base;
}

void wispi_txq_commit(struct wispi_txq *q, size_t n, bool frame_end)
{
    q->tail->len += n;
    q->tail->frame_end = frame_end;
    q->buffered += n;
}

int wispi_txq_ref(struct wispi_net *net, struct wispi_txq *q, const void *data, size_t len,
                  bool frame_end, wisp_release_fn release, void *rel_data, size_t rel_len,
                  void *arg)
{
    struct wispi_txseg *s = ref_seg_get(net);
    if (!s) {
        if (release)
            release(rel_data, rel_len, arg);
        return -ENOMEM;
    }
    s->next = NULL;
    s->base = (uint8_t *)(uintptr_t)data;
    s->len = s->cap = len;
    s->sent = 0;
    s->kind = SEG_REF;
    s->frame_end = frame_end;
    s->release = release;
    s->rel_data = rel_data;
    s->rel_len = rel_len;
    s->arg = arg;
    append(q, s);
    q->buffered += len;
    return 0;
}

int wispi_txq_ctrl(struct wispi_txq *q, const uint8_t *frame, size_t n)
{
    struct wispi_txseg *s = malloc(sizeof *s + n);
    if (!s)
        return -ENOMEM;
    s->next = NULL;
    s->base = (uint8_t *)(s + 1);
    memcpy(s->base, frame, n);
    s->len = s->cap = n;
    s->sent = 0;
    s->kind = SEG_HEAP;
    s->frame_end = true;
    s->release = NULL;
    if (q->ctrl_tail)
        q->ctrl_tail->next = s;
    else
        q->ctrl_head = s;
    q->ctrl_tail = s;
    q->buffered += n;
    return 0;
}

void wispi_txq_place_control(struct wispi_txq *q)
{
    if (!q->ctrl_head)
        return;
    struct wispi_txseg *first = q->ctrl_head, *last = q->ctrl_tail;
    q->ctrl_head = q->ctrl_tail = NULL;
    struct wispi_txseg *h = q->head;
    if (!h || (!q->mid_frame && h->sent == 0)) {
        last->next = h;
        q->head = first;
        if (!h)
            q->tail = last;
        return;
    }
    /* Inside a frame: after the segment that ends it. A chunk whose write stopped midway
     * holds whole frames only, so its end is such a boundary too. */
    struct wispi_txseg *s = h;
    while (!s->frame_end && s->next)
        s = s->next;
    last->next = s->next;
    s->next = first;
    if (q->tail == s)
        q->tail = last;
}

void wispi_txq_start(struct wispi_net *net, struct wispi_sock *sock, struct wispi_txq *q)
{
    if (q->sending)
        return;
    wispi_txq_place_control(q);
    if (!q->head)
        return;
    uint32_t n = 0;
    size_t total = 0;
    for (struct wispi_txseg *s = q->head; s && n < MAX_IOV; s = s->next) {
        if (s->len > s->sent)
            n++;
        else if (s != q->head)
            break; /* an empty chunk being filled: nothing more to write */
    }
    if (!n)
        return;
    struct io_uring_sqe *sqe;
    if (n == 1) {
        struct wispi_txseg *s = q->head;
        while (s->len == s->sent)
            s = s->next;
        sqe = wispi_sock_sqe(net, sock, UD_NET_SEND);
        if (!sqe)
            return;
        total = s->len - s->sent;
        io_uring_prep_send(sqe, sock->fd, s->base + s->sent, total, MSG_NOSIGNAL);
    } else {
        struct msghdr *mh = wispi_net_msghdr(net, n);
        uint32_t i = 0;
        for (struct wispi_txseg *s = q->head; s && i < n; s = s->next) {
            if (s->len == s->sent)
                continue;
            mh->msg_iov[i].iov_base = s->base + s->sent;
            mh->msg_iov[i].iov_len = s->len - s->sent;
            total += s->len - s->sent;
            i++;
        }
        sqe = wispi_sock_sqe(net, sock, UD_NET_SEND);
        if (!sqe)
            return;
        io_uring_prep_sendmsg(sqe, sock->fd, mh, MSG_NOSIGNAL);
    }
    q->sending = true;
    q->in_flight = (uint32_t)(total > UINT32_MAX ? UINT32_MAX : total);
}

void wispi_txq_sent(struct wispi_net *net, struct wispi_txq *q, size_t res)
{
    q->sending = false;
    q->in_flight = 0;
    q->buffered -= res;
    while (res && q->head) {
        struct wispi_txseg *s = q->head;
        size_t take = s->len - s->sent;
        if (take > res)
            take = res;
        s->sent += take;
        res -= take;
        if (s->sent < s->len)
            break;
        /* Fully written. A chunk that is the tail could take more frames, but freeing it
         * keeps an idle connection's memory at zero. */
        q->mid_frame = !s->frame_end;
        q->head = s->next;
        if (q->tail == s)
            q->tail = NULL;
        free_seg(net, s);
    }
}

static void free_list(struct wispi_net *net, struct wispi_txseg *s)
{
    while (s) {
        struct wispi_txseg *next = s->next;
        free_seg(net, s);
        s = next;
    }
}

void wispi_txq_drop_unsent(struct wispi_net *net, struct wispi_txq *q)
{
    /* Keep every segment the send in flight covers (the kernel is reading them), then up to
     * the end of the frame being written. Only the last segment in flight can have grown since
     * the send was prepared (appends go to the tail), so summing what is unsent now never
     * stops short of it. */
    struct wispi_txseg *keep = NULL;
    struct wispi_txseg *s = q->head;
    if (s && (q->sending || s->sent || q->mid_frame)) {
        keep = s;
        size_t covered = keep->len - keep->sent;
        while (q->sending && covered < q->in_flight && keep->next) {
            keep = keep->next;
            covered += keep->len - keep->sent;
        }
        while (!keep->frame_end && keep->next)
            keep = keep->next;
    }
    struct wispi_txseg *drop = keep ? keep->next : q->head;
    if (keep) {
        keep->next = NULL;
        q->tail = keep;
    } else {
        q->head = q->tail = NULL;
    }
    size_t kept = 0;
    for (s = q->head; s; s = s->next)
        kept += s->len - s->sent;
    /* A kept chunk may hold frames after the one in progress: they stay (whole frames). */
    free_list(net, drop);
    free_list(net, q->ctrl_head);
    q->ctrl_head = q->ctrl_tail = NULL;
    q->buffered = kept;
}

void wispi_txq_free(struct wispi_net *net, struct wispi_txq *q)
{
    free_list(net, q->head);
    free_list(net, q->ctrl_head);
    memset(q, 0, sizeof *q);
}

bool wispi_txq_segment(const struct wispi_txq *q, size_t i, const uint8_t **p, size_t *n)
{
    const struct wispi_txseg *s = q->head;
    while (s && i--)
        s = s->next;
    if (!s)
        return false;
    *p = s->base + s->sent;
    *n = s->len - s->sent;
    return true;
}

size_t wispi_txq_peek(const struct wispi_txq *q, size_t i, const uint8_t **p)
{
    const struct wispi_txseg *s = q->head;
    while (s && i--)
        s = s->next;
    if (!s)
        return 0;
    *p = s->base + s->sent;
    return s->len - s->sent;
}
