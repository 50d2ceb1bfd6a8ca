/* Timers: a binary min-heap of deadlines per worker.
 *
 * A timer belongs to the actor that set it and lives on that actor's worker; an actor with
 * live timers is never moved, so the heap, the timers and the actor's timer list are touched by
 * one thread only. The worker passes the nearest deadline to its ring wait, so an idle worker
 * sleeps until then and no timer costs anything while it waits.
 *
 * A fired timer's message carries a pointer to the timer, which stays allocated until that
 * message is delivered: that is what lets wisp_timer_cancel() promise that a cancelled timer's
 * message never reaches the actor, even when it has already fired.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define NOT_IN_HEAP UINT32_MAX
#define MAX_TIMER_PAYLOAD (64u * 1024)

static bool earlier(const struct wispi_timer *a, const struct wispi_timer *b)
{
    /* Ties break on id so that runs replay identically in deterministic mode. */
    return a->deadline_ms < b->deadline_ms || (a->deadline_ms == b->deadline_ms && a->id < b->id);
}

static void heap_set(struct wispi_timer_heap *h, uint32_t i, struct wispi_timer *t)
{
    h->v[i] = t;
    t->heap_index = i;
}

static void sift_up(struct wispi_timer_heap *h, uint32_t i)
{
    struct wispi_timer *t = h->v[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!earlier(t, h->v[parent]))
            break;
        heap_set(h, i, h->v[parent]);
        i = parent;
    }
    heap_set(h, i, t);
}

static void sift_down(struct wispi_timer_heap *h, uint32_t i)
{
    struct wispi_timer *t = h->v[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && earlier(h->v[c + 1], h->v[c]))
            c++;
        if (!earlier(h->v[c], t))
            break;
        heap_set(h, i, h->v[c]);
        i = c;
    }
    heap_set(h, i, t);
}

static int heap_push(struct wispi_timer_heap *h, struct wispi_timer *t)
{
    if (h->n == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : 64;
        struct wispi_timer **v = realloc(h->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    heap_set(h, h->n++, t);
    sift_up(h, h->n - 1);
    return 0;
}

static void heap_remove(struct wispi_timer_heap *h, struct wispi_timer *t)
{
    uint32_t i = t->heap_index;
    if (i == NOT_IN_HEAP)
        return;
    t->heap_index = NOT_IN_HEAP;
    struct wispi_timer *last = h->v[--h->n];
    if (i == h->n)
        return;
    heap_set(h, i, last);
    sift_down(h, i);
    sift_up(h, last->heap_index);
}

static void unlink_from_owner(struct wispi_timer *t)
{
    struct wispi_actor *a = t->owner;
    for (struct wispi_timer **p = &a->timers; *p; p = &(*p)->next_of_owner) {
        if (*p == t) {
            *p = t->next_of_owner;
            a->ntimers--;
            return;
        }
    }
}

static int add_timer(struct wisp_ctx *ctx, uint64_t delay, uint64_t period, uint32_t type,
                     const void *data, size_t len, wisp_timer *out)
{
    if (type >= WISP_MSG_SYSTEM || (!data && len) || len > MAX_TIMER_PAYLOAD)
        return -EINVAL;
    struct wispi_worker *w = ctx->worker;
    struct wispi_actor *a = ctx->actor;
    struct wispi_timer *t = malloc(sizeof *t + len);
    if (!t)
        return -ENOMEM;
    /* relaxed: ids only need to be unique. */
    t->id = atomic_fetch_add_explicit(&a->rt->next_ref, 1, memory_order_relaxed);
    uint64_t now = wispi_now_ms(a->rt);
    t->deadline_ms = delay > UINT64_MAX - now ? UINT64_MAX : now + delay; /* saturate */
    t->period_ms = period;
    t->owner = a;
    t->in_flight = false;
    t->cancelled = false;
    t->type = type;
    t->len = len;
    if (len)
        memcpy(t->data, data, len);
    t->heap_index = NOT_IN_HEAP;
    if (heap_push(&w->timers, t)) {
        free(t);
        return -ENOMEM;
    }
    t->next_of_owner = a->timers;
    a->timers = t;
    a->ntimers++;
    if (out)
        *out = t->id;
    return 0;
}

int wisp_send_after(struct wisp_ctx *ctx, uint64_t ms, uint32_t type, const void *data,
                    size_t len, wisp_timer *out)
{
    return add_timer(ctx, ms, 0, type, data, len, out);
}

int wisp_send_every(struct wisp_ctx *ctx, uint64_t period_ms, uint32_t type, const void *data,
                    size_t len, wisp_timer *out)
{
    if (period_ms == 0)
        return -EINVAL;
    return add_timer(ctx, period_ms, period_ms, type, data, len, out);
}

int wisp_timer_cancel(struct wisp_ctx *ctx, wisp_timer id)
{
    struct wispi_actor *a = ctx->actor;
    for (struct wispi_timer *t = a->timers; t; t = t->next_of_owner) {
        if (t->id != id)
            continue;
        heap_remove(&ctx->worker->timers, t);
        unlink_from_owner(t);
        if (t->in_flight)
            t->cancelled = true; /* freed when its queued message comes through */
        else
            free(t);
        return 0;
    }
    return -ENOENT;
}

void wispi_timers_fire(struct wispi_worker *w, uint64_t now_ms)
{
    struct wispi_timer_heap *h = &w->timers;
    while (h->n && h->v[0]->deadline_ms <= now_ms) {
        struct wispi_timer *t = h->v[0];
        heap_remove(h, t);
        if (!t->in_flight) {
            struct wispi_msg *m = wispi_msg_new(t->type, t->data, t->len);
            struct wispi_actor *a = m ? wispi_actor_acquire(w->rt, t->owner->addr) : NULL;
            if (a) {
                m->sys = SYS_TIMER;
                m->aux = (uint64_t)(uintptr_t)t;
                t->in_flight = true;
                wispi_deliver(a, m, m, 1);
            } else {
                /* Out of memory: this tick is lost but the timer lives on (a periodic one
                 * fires again; a one-shot one is retried shortly). */
                wispi_msg_free(m);
                if (!t->period_ms) {
                    t->deadline_ms = now_ms + 1;
                    /* cannot fail: t was just removed, so the heap has room for it */
                    heap_push(h, t);
                    continue;
                }
            }
        }
        if (t->period_ms) {
            /* Next tick on the original grid; if we fell behind, skip the missed ticks. */
            t->deadline_ms += t->period_ms;
            if (t->deadline_ms <= now_ms)
                t->deadline_ms = now_ms + t->period_ms;
            /* cannot fail: t was just removed, so the heap has room for it */
            heap_push(h, t);
        }
    }
}

uint64_t wispi_timers_next(const struct wispi_worker *w)
{
    return w->timers.n ? w->timers.v[0]->deadline_ms : UINT64_MAX;
}

bool wispi_timer_delivered(struct wispi_worker *w, struct wispi_timer *t)
{
    (void)w;
    t->in_flight = false;
    if (t->cancelled) {
        free(t);
        return false;
    }
    if (!t->period_ms) {
        unlink_from_owner(t);
        free(t);
    }
    return true;
}

void wispi_timers_drop_owner(struct wispi_worker *w, struct wispi_actor *a)
{
    struct wispi_timer *t = a->timers;
    while (t) {
        struct wispi_timer *next = t->next_of_owner;
        heap_remove(&w->timers, t);
        if (t->in_flight)
            t->cancelled = true;
        else
            free(t);
        t = next;
    }
    a->timers = NULL;
    a->ntimers = 0;
}

void wispi_timers_destroy(struct wispi_worker *w)
{
    for (uint32_t i = 0; i < w->timers.n; i++)
        free(w->timers.v[i]);
    free(w->timers.v);
    w->timers.v = NULL;
    w->timers.n = w->timers.cap = 0;
}

void wispi_timer_orphan(struct wispi_timer *t)
{
    /* Teardown: a timer message is freed undelivered. A timer still in a heap is freed with
     * the heap; one that is not (a fired one-shot, or a cancelled one) is freed here. */
    if (t->heap_index == NOT_IN_HEAP)
        free(t);
}
