/* The actor slot table: addresses to actors, safely.
 *
 * An address is (generation << 32 | slot index). Each slot holds one 64-bit control word:
 * the generation, a reference count and a dead bit. Looking an actor up is a CAS that adds a
 * reference only if the generation matches and the actor is alive, so a sender either gets a
 * reference that keeps the actor's memory valid for the whole send, or -ESRCH. When the count
 * drops to zero (the actor is dead, unscheduled and no send is in flight) the actor is freed
 * and the slot's generation is bumped, so old addresses never match again.
 *
 * Slots are grouped in chunks that are never freed while the runtime lives, so reading a slot
 * needs no lock; only allocation and the free list take slot_lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define CTL_DEAD 1ull
#define CTL_REF 2ull
#define CTL_REFS_MASK 0xFFFFFFFEull
#define CTL_GEN(w) ((uint32_t)((w) >> 32))

static struct wispi_slot *slot_at(struct wisp_runtime *rt, uint32_t idx)
{
    if (idx / WISPI_SLOT_CHUNK >= WISPI_SLOT_CHUNKS)
        return NULL; /* a forged or corrupt address */
    /* acquire: pairs with the release store that published the chunk. */
    struct wispi_slot *chunk = atomic_load_explicit(&rt->chunks[idx / WISPI_SLOT_CHUNK],
                                                    memory_order_acquire);
    return chunk ? &chunk[idx % WISPI_SLOT_CHUNK] : NULL;
}

/* Under slot_lock: a free slot index, or 0 if the table is full or memory ran out. */
static uint32_t take_slot(struct wisp_runtime *rt)
{
    if (rt->free_head) {
        uint32_t idx = rt->free_head;
        rt->free_head = slot_at(rt, idx)->next_free;
        return idx;
    }
    uint32_t idx = rt->slots_used + 1; /* slot 0 is never used: address 0 means none */
    uint32_t c = idx / WISPI_SLOT_CHUNK;
    if (c >= WISPI_SLOT_CHUNKS)
        return 0;
    if (!atomic_load_explicit(&rt->chunks[c], memory_order_relaxed)) {
        struct wispi_slot *chunk = calloc(WISPI_SLOT_CHUNK, sizeof *chunk);
        if (!chunk)
            return 0;
        /* Generation 1 for fresh slots; dead until an actor is published in them. */
        for (uint32_t i = 0; i < WISPI_SLOT_CHUNK; i++)
            atomic_init(&chunk[i].ctl, (1ull << 32) | CTL_DEAD);
        /* release: readers that find the chunk see it initialised. */
        atomic_store_explicit(&rt->chunks[c], chunk, memory_order_release);
    }
    rt->slots_used = idx;
    return idx;
}

int wispi_actor_alloc(struct wisp_runtime *rt, const struct wisp_actor_def *def,
                      struct wispi_actor **out)
{
    struct wispi_actor *a = malloc(sizeof *a + def->state_size);
    if (!a)
        return -ENOMEM;
    pthread_mutex_lock(&rt->slot_lock);
    uint32_t idx = take_slot(rt);
    pthread_mutex_unlock(&rt->slot_lock);
    if (!idx) {
        free(a);
        return -ENOMEM;
    }
    memset(a, 0, sizeof *a + def->state_size);
    struct wispi_slot *s = slot_at(rt, idx);
    uint64_t gen = CTL_GEN(atomic_load_explicit(&s->ctl, memory_order_relaxed));
    a->addr.id = gen << 32 | idx;
    a->rt = rt;
    a->def = def;
    atomic_store_explicit(&s->actor, a, memory_order_relaxed);
    *out = a;
    return 0;
}

void wispi_actor_publish(struct wispi_actor *a, uint32_t refs)
{
    struct wispi_slot *s = slot_at(a->rt, (uint32_t)a->addr.id);
    /* release: a sender whose lookup CAS reads this value must see the initialised actor. */
    atomic_store_explicit(&s->ctl, (a->addr.id & 0xFFFFFFFF00000000ull) | refs * CTL_REF,
                          memory_order_release);
}

struct wispi_actor *wispi_actor_acquire(struct wisp_runtime *rt, wisp_addr addr)
{
    uint32_t idx = (uint32_t)addr.id;
    if (!idx)
        return NULL;
    struct wispi_slot *s = slot_at(rt, idx);
    if (!s)
        return NULL;
    uint64_t w = atomic_load_explicit(&s->ctl, memory_order_relaxed);
    do {
        if (CTL_GEN(w) != (uint32_t)(addr.id >> 32) || (w & CTL_DEAD))
            return NULL;
        /* acquire on success: pairs with the publishing release store, so the actor's fields
         * are visible; relaxed on failure: we just retry with the fresh value. */
    } while (!atomic_compare_exchange_weak_explicit(&s->ctl, &w, w + CTL_REF,
                                                    memory_order_acquire, memory_order_relaxed));
    return atomic_load_explicit(&s->actor, memory_order_relaxed);
}

void wispi_actor_mark_dead(struct wispi_actor *a)
{
    struct wispi_slot *s = slot_at(a->rt, (uint32_t)a->addr.id);
    /* relaxed is enough: a lookup that still sees the actor alive just takes a reference and
     * delivers to a dead actor, whose queue is drained and released; correctness rests on the
     * reference count, not on when this bit becomes visible. */
    atomic_fetch_or_explicit(&s->ctl, CTL_DEAD, memory_order_relaxed);
}

/* Free every message still queued and the stub the mailbox holds. */
static void drain_and_free_mailbox(struct wispi_actor *a)
{
    struct wispi_node *n, *old;
    while ((n = wispi_mailbox_pop(&a->mbox, &old))) {
        struct wispi_msg *m = (struct wispi_msg *)n;
        if (m->sys == SYS_TIMER)
            wispi_timer_orphan((struct wispi_timer *)(uintptr_t)m->aux);
        m->sys = SYS_NONE; /* it stays as the stub; do not look at its timer twice */
        if (old != &a->stub)
            wispi_msg_free((struct wispi_msg *)old);
    }
    if (a->mbox.tail != &a->stub)
        wispi_msg_free((struct wispi_msg *)a->mbox.tail);
}

/* Free the actor's memory and everything it still holds. */
static void destroy_actor(struct wispi_actor *a)
{
    drain_and_free_mailbox(a);
    if (a->rel) {
        free(a->rel->links);
        free(a->rel->watching);
        free(a->rel->watchers);
        free(a->rel);
    }
    free(a);
}

static void free_actor(struct wispi_actor *a)
{
    struct wisp_runtime *rt = a->rt;
    uint32_t idx = (uint32_t)a->addr.id;
    struct wispi_slot *s = slot_at(rt, idx);
    destroy_actor(a);
    atomic_store_explicit(&s->actor, NULL, memory_order_relaxed);
    /* A new generation, still dead: no old address can match it, and a lookup racing with
     * this store fails its CAS on the changed word. */
    uint64_t gen = CTL_GEN(atomic_load_explicit(&s->ctl, memory_order_relaxed)) + 1u;
    if ((uint32_t)gen == 0)
        gen = 1;
    atomic_store_explicit(&s->ctl, gen << 32 | CTL_DEAD, memory_order_release);
    pthread_mutex_lock(&rt->slot_lock);
    s->next_free = rt->free_head;
    rt->free_head = idx;
    pthread_mutex_unlock(&rt->slot_lock);
}

void wispi_actor_addref(struct wispi_actor *a)
{
    struct wispi_slot *s = slot_at(a->rt, (uint32_t)a->addr.id);
    /* relaxed: the caller already holds a reference, so the actor cannot be freed meanwhile;
     * the new reference is handed over through a queue that orders what follows. */
    atomic_fetch_add_explicit(&s->ctl, CTL_REF, memory_order_relaxed);
}

bool wispi_actor_is_dead(const struct wispi_actor *a)
{
    struct wispi_slot *s = slot_at(a->rt, (uint32_t)a->addr.id);
    /* relaxed: a stale "alive" only delivers to a dead actor, which releases the message. */
    return atomic_load_explicit(&s->ctl, memory_order_relaxed) & CTL_DEAD;
}

void wispi_actor_release(struct wispi_actor *a)
{
    struct wispi_slot *s = slot_at(a->rt, (uint32_t)a->addr.id);
    /* acq_rel: release makes this holder's writes (its pushes) visible to whoever frees the
     * actor; acquire makes the freeing thread see every other holder's writes. */
    uint64_t w = atomic_fetch_sub_explicit(&s->ctl, CTL_REF, memory_order_acq_rel);
    if (((w - CTL_REF) & CTL_REFS_MASK) == 0)
        free_actor(a);
}

void wispi_actor_for_each(struct wisp_runtime *rt, void (*fn)(struct wispi_actor *, void *),
                          void *arg)
{
    pthread_mutex_lock(&rt->slot_lock);
    uint32_t used = rt->slots_used;
    pthread_mutex_unlock(&rt->slot_lock);
    for (uint32_t idx = 1; idx <= used; idx++) {
        struct wispi_slot *s = slot_at(rt, idx);
        uint64_t w = atomic_load_explicit(&s->ctl, memory_order_relaxed);
        if (w & CTL_DEAD)
            continue;
        struct wispi_actor *a = wispi_actor_acquire(rt, (wisp_addr){(w & 0xFFFFFFFF00000000ull) | idx});
        if (a) {
            fn(a, arg);
            wispi_actor_release(a);
        }
    }
}

void wispi_actor_table_destroy(struct wisp_runtime *rt)
{
    /* Single-threaded now: free whatever is left (actors that never ran, or were still
     * referenced when the workers stopped). */
    for (uint32_t c = 0; c < WISPI_SLOT_CHUNKS; c++) {
        struct wispi_slot *chunk = atomic_load_explicit(&rt->chunks[c], memory_order_relaxed);
        if (!chunk)
            break;
        for (uint32_t i = 0; i < WISPI_SLOT_CHUNK; i++) {
            struct wispi_actor *a = atomic_load_explicit(&chunk[i].actor, memory_order_relaxed);
            if (a)
                destroy_actor(a);
        }
        free(chunk);
        rt->chunks[c] = NULL;
    }
}
