/* Message allocation: small payloads inline, larger ones copied to the heap, or handed over
 * with a release callback. The header outlives delivery briefly (it is the mailbox's stub
 * until the next message), so payloads are released as soon as the receiver is done. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Queues link messages through `node` and cast between the two: it must come first. */
_Static_assert(offsetof(struct wispi_msg, node) == 0, "node must be the first member");

/* A worker's free list gives a batch to the shared pool past 2 * BATCH blocks, and takes one
 * when empty; the shared pool keeps at most MAX_BATCHES (the rest goes back to malloc). */
#define BATCH 128u
#define MAX_BATCHES 256u

static struct wispi_msg *next_of(struct wispi_msg *m)
{
    return (struct wispi_msg *)atomic_load_explicit(&m->node.next, memory_order_relaxed);
}

static void set_next(struct wispi_msg *m, struct wispi_msg *next)
{
    /* node is the first member, so the cast is the node's address (and NULL stays NULL);
     * relaxed: free lists are touched by one thread, or under batch_lock */
    atomic_store_explicit(&m->node.next, (struct wispi_node *)next, memory_order_relaxed);
}

static struct wispi_msg *pool_take(struct wispi_worker *w)
{
    struct wispi_msg_pool *p = &w->pool;
    if (!p->free) {
        struct wisp_runtime *rt = w->rt;
        pthread_mutex_lock(&rt->batch_lock);
        struct wispi_msg *b = rt->batches;
        if (b) {
            rt->batches = b->data;
            rt->nbatches--;
        }
        pthread_mutex_unlock(&rt->batch_lock);
        if (!b)
            return malloc(sizeof(struct wispi_msg));
        p->free = b;
        p->n = BATCH;
    }
    struct wispi_msg *m = p->free;
    p->free = next_of(m);
    p->n--;
    return m;
}

static void pool_give(struct wispi_worker *w, struct wispi_msg *m)
{
    struct wispi_msg_pool *p = &w->pool;
    set_next(m, p->free);
    p->free = m;
    if (++p->n < 2 * BATCH)
        return;
    /* Split the newest BATCH blocks off as one batch. */
    struct wispi_msg *head = p->free, *tail = head;
    for (uint32_t i = 1; i < BATCH; i++)
        tail = next_of(tail);
    p->free = next_of(tail);
    p->n -= BATCH;
    set_next(tail, NULL);
    struct wisp_runtime *rt = w->rt;
    pthread_mutex_lock(&rt->batch_lock);
    bool keep = rt->nbatches < MAX_BATCHES;
    if (keep) {
        head->data = rt->batches;
        rt->batches = head;
        rt->nbatches++;
    }
    pthread_mutex_unlock(&rt->batch_lock);
    while (!keep && head) {
        struct wispi_msg *next = next_of(head);
        free(head);
        head = next;
    }
}

void wispi_msg_pool_destroy(struct wispi_msg_pool *p)
{
    while (p->free) {
        struct wispi_msg *next = next_of(p->free);
        free(p->free);
        p->free = next;
    }
    p->n = 0;
}

void wispi_msg_batches_destroy(struct wisp_runtime *rt)
{
    while (rt->batches) {
        struct wispi_msg *b = rt->batches;
        rt->batches = b->data;
        while (b) {
            struct wispi_msg *next = next_of(b);
            free(b);
            b = next;
        }
    }
    rt->nbatches = 0;
}

void wispi_msg_free_header(struct wispi_msg *m)
{
    struct wispi_worker *w = wispi_current_worker();
    if (w)
        pool_give(w, m);
    else
        free(m);
}

static struct wispi_msg *msg_header(uint32_t type)
{
    struct wispi_worker *w = wispi_current_worker();
    struct wispi_msg *m = w ? pool_take(w) : malloc(sizeof *m);
    if (!m)
        return NULL;
    m->type = type;
    m->storage = MSG_INLINE;
    m->sys = SYS_NONE;
    m->from = WISP_ADDR_NONE;
    m->aux = 0;
    m->data = m->u.bytes;
    m->len = 0;
    return m;
}

struct wispi_msg *wispi_msg_new(uint32_t type, const void *data, size_t len)
{
    struct wispi_msg *m = msg_header(type);
    if (!m)
        return NULL;
    if (len > WISPI_MSG_INLINE) {
        m->data = malloc(len);
        if (!m->data) {
            wispi_msg_free_header(m);
            return NULL;
        }
        m->storage = MSG_HEAP;
    }
    if (len)
        memcpy(m->data, data, len);
    m->len = len;
    return m;
}

struct wispi_msg *wispi_msg_new_owned(uint32_t type, void *data, size_t len,
                                      wisp_release_fn release, void *arg)
{
    struct wispi_msg *m = msg_header(type);
    if (!m) {
        if (release)
            release(data, len, arg);
        return NULL;
    }
    m->storage = MSG_OWNED;
    m->data = data;
    m->len = len;
    m->u.owned.fn = release;
    m->u.owned.arg = arg;
    return m;
}

struct wispi_msg *wispi_msg_new_sys(enum wispi_sys sys, wisp_addr from, uint64_t aux)
{
    struct wispi_msg *m = msg_header(0);
    if (!m)
        return NULL;
    m->sys = (uint8_t)sys;
    m->from = from;
    m->aux = aux;
    return m;
}

void wispi_msg_release_payload(struct wispi_msg *m)
{
    switch (m->storage) {
    case MSG_HEAP:
        free(m->data);
        break;
    case MSG_OWNED:
        if (m->u.owned.fn)
            m->u.owned.fn(m->data, m->len, m->u.owned.arg);
        break;
    default:
        break;
    }
    m->storage = MSG_INLINE;
    m->data = m->u.bytes;
    m->len = 0;
}

void wispi_msg_free(struct wispi_msg *m)
{
    if (!m)
        return;
    wispi_msg_release_payload(m);
    wispi_msg_free_header(m);
}
