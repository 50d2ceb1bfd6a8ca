/* Intrusive multi-producer single-consumer queues (internal to the runtime).
 *
 * Two variants of Dmitry Vyukov's node-based queue, as the Pony runtime uses them:
 *
 *  - the mailbox: the consumer keeps the last node it popped as the queue's stub, and the low
 *    bit of `head` means "empty and not scheduled". A push is one atomic exchange, and the one
 *    producer whose exchange finds that bit set learns it made the queue non-empty: it alone
 *    schedules the actor. So an actor is scheduled exactly once per empty-to-non-empty
 *    transition, with no other atomic.
 *
 *  - the run queue: nodes are actors, which must be fully out of the queue when popped (an
 *    actor can be queued again right after it runs), so this variant has its own embedded stub
 *    and re-inserts it when it pops the last node.
 *
 * Producers never wait; the consumer may see a queue as empty for a moment while a producer is
 * between its exchange and its link store (the "transient" case) and simply tries again later.
 */
#ifndef WISP_RUNTIME_MPSC_H
#define WISP_RUNTIME_MPSC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct wispi_node {
    _Atomic(struct wispi_node *) next;
};

/* ---- mailbox ------------------------------------------------------------------------------ */

struct wispi_mailbox {
    _Atomic uintptr_t head;  /* newest node, low bit set when empty and unscheduled */
    struct wispi_node *tail; /* consumer only: the stub (last node consumed) */
};

static inline void wispi_mailbox_init(struct wispi_mailbox *mb, struct wispi_node *stub)
{
    atomic_store_explicit(&stub->next, NULL, memory_order_relaxed);
    atomic_store_explicit(&mb->head, (uintptr_t)stub | 1, memory_order_relaxed);
    mb->tail = stub;
}

/* Push the chain first..last (already linked through ->next). Returns true if the mailbox was
 * empty and unscheduled: the caller must then schedule its actor. Any thread. */
static inline bool wispi_mailbox_push(struct wispi_mailbox *mb, struct wispi_node *first,
                                      struct wispi_node *last)
{
    atomic_store_explicit(&last->next, NULL, memory_order_relaxed);
    /* acq_rel: release publishes the chain's contents to the consumer that follows the links;
     * acquire pairs with the consumer's release in wispi_mailbox_mark_empty, so a producer that
     * sees the empty bit also sees everything the actor's last turn wrote before it went idle
     * (the producer may be about to hand the actor to another worker). */
    uintptr_t prev = atomic_exchange_explicit(&mb->head, (uintptr_t)last, memory_order_acq_rel);
    struct wispi_node *p = (struct wispi_node *)(prev & ~(uintptr_t)1);
    /* release: the consumer's acquire load of p->next must see the chain's contents. */
    atomic_store_explicit(&p->next, first, memory_order_release);
    return prev & 1;
}

/* Take the next node, or NULL if none is visible yet. Consumer only. The returned node becomes
 * the stub: it stays in the queue until the next pop, which hands back the previous stub in
 * *old_stub so the caller can free it. */
static inline struct wispi_node *wispi_mailbox_pop(struct wispi_mailbox *mb,
                                                   struct wispi_node **old_stub)
{
    struct wispi_node *tail = mb->tail;
    /* acquire: pairs with the producer's release store of this link. */
    struct wispi_node *next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (!next)
        return NULL;
    mb->tail = next;
    *old_stub = tail;
    return next;
}

/* At the end of a turn: mark the mailbox empty and unscheduled if nothing new arrived.
 * Returns false if a producer got in (the actor must run again). After a true return the
 * caller must not touch the actor: another thread may already be scheduling it. */
static inline bool wispi_mailbox_mark_empty(struct wispi_mailbox *mb)
{
    uintptr_t expect = (uintptr_t)mb->tail;
    /* release: a producer that then sees the empty bit (acq_rel exchange) must see all this
     * turn's writes to the actor. relaxed on failure: we only learn that we must run again. */
    return atomic_compare_exchange_strong_explicit(&mb->head, &expect, expect | 1,
                                                   memory_order_release, memory_order_relaxed);
}

/* ---- run queue ----------------------------------------------------------------------------- */

struct wispi_runq {
    _Atomic(struct wispi_node *) head;
    struct wispi_node *tail; /* consumer only */
    struct wispi_node stub;
};

static inline void wispi_runq_init(struct wispi_runq *q)
{
    atomic_store_explicit(&q->stub.next, NULL, memory_order_relaxed);
    atomic_store_explicit(&q->head, &q->stub, memory_order_relaxed);
    q->tail = &q->stub;
}

/* Any thread. seq_cst on the exchange: the producer next reads the owner's `sleeping` flag,
 * and that read must not be ordered before this push (Dekker with the owner, which sets
 * `sleeping` and then checks wispi_runq_maybe_nonempty). */
static inline void wispi_runq_push(struct wispi_runq *q, struct wispi_node *n)
{
    atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
    struct wispi_node *prev = atomic_exchange_explicit(&q->head, n, memory_order_seq_cst);
    /* release: the consumer's acquire of this link must see n's fields. */
    atomic_store_explicit(&prev->next, n, memory_order_release);
}

/* Consumer only. NULL when empty or transiently empty. */
static inline struct wispi_node *wispi_runq_pop(struct wispi_runq *q)
{
    struct wispi_node *tail = q->tail;
    struct wispi_node *next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (tail == &q->stub) {
        if (!next)
            return NULL;
        q->tail = next;
        tail = next;
        next = atomic_load_explicit(&next->next, memory_order_acquire);
    }
    if (next) {
        q->tail = next;
        return tail;
    }
    /* tail is the last node we can see. If a producer already swapped head past it, its link
     * is still on the way: report empty for now. */
    if (tail != atomic_load_explicit(&q->head, memory_order_acquire))
        return NULL;
    /* Put the stub back behind tail so tail can leave the queue entirely. */
    wispi_runq_push(q, &q->stub);
    next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (next) {
        q->tail = next;
        return tail;
    }
    return NULL;
}

/* Consumer only (also valid from the owner before sleeping): may there be something? seq_cst
 * pairs with wispi_runq_push (see there). A false positive is harmless. */
static inline bool wispi_runq_maybe_nonempty(struct wispi_runq *q)
{
    return atomic_load_explicit(&q->head, memory_order_seq_cst) != &q->stub ||
           q->tail != &q->stub;
}

#endif
