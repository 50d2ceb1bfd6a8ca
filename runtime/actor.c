/* Actors: spawning, sending, one turn of an actor, system messages, exits, links, monitors.
 *
 * Every change to an actor's own state (its links, its monitors, its death) happens during
 * its own turn, on the worker that runs it, because requests from other actors arrive as
 * system messages in its mailbox. So none of that state needs a lock, and the order of
 * events is the order of the mailbox.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "net.h"

/* Messages per turn before the actor yields its worker to others (Pony uses 100). */
#define TURN_BATCH 64u

const char *wisp_exit_kind_str(enum wisp_exit_kind kind)
{
    switch (kind) {
    case WISP_EXIT_NORMAL:
        return "normal";
    case WISP_EXIT_SHUTDOWN:
        return "shutdown";
    case WISP_EXIT_ERROR:
        return "error";
    case WISP_EXIT_KILLED:
        return "killed";
    case WISP_EXIT_NOPROC:
        return "noproc";
    }
    return "unknown";
}

/* ---- sending ------------------------------------------------------------------------------ */

void wispi_schedule(struct wispi_actor *a)
{
    /* acquire: pairs with the release store of a worker that moved this actor; see `home`. */
    struct wispi_worker *w = atomic_load_explicit(&a->home, memory_order_acquire);
    wispi_worker_enqueue(w, a);
}

/* Push a chain to an actor we hold a reference on. keep_ref: the reference stays ours (the
 * sender's cache); otherwise it is consumed (released, or handed to the scheduled state). */
static int push_chain(struct wispi_actor *a, struct wispi_msg *first, struct wispi_msg *last,
                      uint32_t count, bool keep_ref)
{
    /* relaxed: `pending` is a counter for the mailbox limit, not a synchronisation point; the
     * limit is approximate under concurrent senders by at most their number. */
    uint32_t before = atomic_fetch_add_explicit(&a->pending, count, memory_order_relaxed);
    int rc = (uint64_t)before + count > a->limit ? WISP_SEND_PRESSURE : 0;
    if (wispi_mailbox_push(&a->mbox, &first->node, &last->node)) {
        /* We made it runnable. A dead actor (still being drained of late messages) needs a
         * reference while it sits in a queue; an alive one does not (see internal.h).
         * acquire: pairs with the dying turn's release; our exchange already synchronised
         * with the mailbox release that followed it. */
        if (atomic_load_explicit(&a->dead, memory_order_acquire)) {
            if (keep_ref)
                wispi_actor_addref(a);
            wispi_schedule(a);
            return rc; /* our reference (or the new one) is the queue's now */
        }
        wispi_schedule(a);
    }
    if (!keep_ref)
        wispi_actor_release(a);
    return rc;
}

int wispi_deliver(struct wispi_actor *a, struct wispi_msg *first, struct wispi_msg *last,
                  uint32_t count)
{
    return push_chain(a, first, last, count, false);
}

static void free_chain(struct wispi_msg *first, uint32_t count)
{
    while (count--) {
        struct wispi_msg *next =
            (struct wispi_msg *)atomic_load_explicit(&first->node.next, memory_order_relaxed);
        wispi_msg_free(first);
        first = next;
    }
}

static void drop_send_cache(struct wispi_actor *sender)
{
    if (sender->cache_actor)
        wispi_actor_release(sender->cache_actor);
    sender->cache_actor = NULL;
    sender->cache_to = WISP_ADDR_NONE;
}

int wispi_send_chain(struct wisp_runtime *rt, struct wispi_actor *sender, wisp_addr to,
                     struct wispi_msg *first, struct wispi_msg *last, uint32_t count,
                     bool try_only)
{
    struct wispi_actor *a;
    bool cached = sender && sender->cache_actor && wisp_addr_eq(sender->cache_to, to);
    if (cached) {
        a = sender->cache_actor;
        if (wispi_actor_is_dead(a)) {
            drop_send_cache(sender);
            free_chain(first, count);
            return -ESRCH;
        }
    } else {
        a = wispi_actor_acquire(rt, to);
        if (!a) {
            free_chain(first, count);
            return -ESRCH;
        }
        if (sender && !(sender->flags & ACTOR_DEAD)) {
            drop_send_cache(sender);
            sender->cache_to = to;
            sender->cache_actor = a; /* our lookup reference becomes the cache's */
            cached = true;
        }
    }
    if (try_only &&
        (uint64_t)atomic_load_explicit(&a->pending, memory_order_relaxed) + count > a->limit) {
        if (!cached)
            wispi_actor_release(a);
        free_chain(first, count);
        return WISP_EFULL;
    }
    return push_chain(a, first, last, count, cached);
}

static int send_copy(struct wisp_runtime *rt, struct wispi_actor *sender, wisp_addr to,
                     uint32_t type, const void *data, size_t len, bool try_only)
{
    if (type >= WISP_MSG_SYSTEM || (!data && len))
        return -EINVAL;
    struct wispi_msg *m = wispi_msg_new(type, data, len);
    if (!m)
        return -ENOMEM;
    m->from = sender ? sender->addr : WISP_ADDR_NONE;
    return wispi_send_chain(rt, sender, to, m, m, 1, try_only);
}

static int send_owned(struct wisp_runtime *rt, struct wispi_actor *sender, wisp_addr to,
                      uint32_t type, void *data, size_t len, wisp_release_fn release, void *arg)
{
    if (type >= WISP_MSG_SYSTEM) {
        if (release)
            release(data, len, arg);
        return -EINVAL;
    }
    struct wispi_msg *m = wispi_msg_new_owned(type, data, len, release, arg);
    if (!m)
        return -ENOMEM;
    m->from = sender ? sender->addr : WISP_ADDR_NONE;
    return wispi_send_chain(rt, sender, to, m, m, 1, false);
}

/* Send a system message; -ESRCH if the target is gone. */
static int send_sys(struct wisp_runtime *rt, wisp_addr to, struct wispi_msg *m)
{
    if (!m)
        return -ENOMEM;
    return wispi_send_chain(rt, NULL, to, m, m, 1, false);
}

int wisp_send(struct wisp_ctx *ctx, wisp_addr to, uint32_t type, const void *data, size_t len)
{
    return send_copy(ctx->actor->rt, ctx->actor, to, type, data, len, false);
}

int wisp_rt_send(struct wisp_runtime *rt, wisp_addr to, uint32_t type, const void *data,
                 size_t len)
{
    return send_copy(rt, NULL, to, type, data, len, false);
}

int wisp_try_send(struct wisp_ctx *ctx, wisp_addr to, uint32_t type, const void *data,
                  size_t len)
{
    return send_copy(ctx->actor->rt, ctx->actor, to, type, data, len, true);
}

int wisp_rt_try_send(struct wisp_runtime *rt, wisp_addr to, uint32_t type, const void *data,
                     size_t len)
{
    return send_copy(rt, NULL, to, type, data, len, true);
}

int wisp_send_owned(struct wisp_ctx *ctx, wisp_addr to, uint32_t type, void *data, size_t len,
                    wisp_release_fn release, void *arg)
{
    return send_owned(ctx->actor->rt, ctx->actor, to, type, data, len, release, arg);
}

int wisp_rt_send_owned(struct wisp_runtime *rt, wisp_addr to, uint32_t type, void *data,
                       size_t len, wisp_release_fn release, void *arg)
{
    return send_owned(rt, NULL, to, type, data, len, release, arg);
}

int wisp_send_batch(struct wisp_ctx *ctx, wisp_addr to, const struct wisp_batch_item *items,
                    size_t n)
{
    if (!n || !items || n > UINT32_MAX)
        return -EINVAL;
    struct wispi_msg *first = NULL, *last = NULL;
    for (size_t i = 0; i < n; i++) {
        if (items[i].type >= WISP_MSG_SYSTEM || (!items[i].data && items[i].len)) {
            free_chain(first, (uint32_t)i);
            return -EINVAL;
        }
        struct wispi_msg *m = wispi_msg_new(items[i].type, items[i].data, items[i].len);
        if (!m) {
            free_chain(first, (uint32_t)i);
            return -ENOMEM;
        }
        m->from = ctx->actor->addr;
        if (last)
            atomic_store_explicit(&last->node.next, &m->node, memory_order_relaxed);
        else
            first = m;
        last = m;
    }
    return wispi_send_chain(ctx->actor->rt, ctx->actor, to, first, last, (uint32_t)n, false);
}

int wisp_notify_drained(struct wisp_ctx *ctx, wisp_addr to, uint32_t type)
{
    if (type >= WISP_MSG_SYSTEM)
        return -EINVAL;
    /* The request is let past the limit on purpose (the mailbox is full: that is the point),
     * so the pressure status a full mailbox reports is not a failure here. */
    int rc = send_sys(ctx->actor->rt, to, wispi_msg_new_sys(SYS_DRAINED, ctx->actor->addr, type));
    return rc < 0 ? rc : 0;
}

/* Answer a SYS_DRAINED request. */
static void answer_drained(struct wispi_actor *a, const struct wispi_msg *m)
{
    struct wispi_msg *r = wispi_msg_new((uint32_t)m->aux, NULL, 0);
    if (!r)
        return;
    r->from = a->addr;
    wispi_send_chain(a->rt, NULL, m->from, r, r, 1, false);
}

/* ---- relations (links and monitors), worker-owned ---------------------------------------- */

static struct wispi_relations *relations(struct wispi_actor *a)
{
    if (!a->rel)
        a->rel = calloc(1, sizeof *a->rel);
    return a->rel;
}

/* Grow a small array to hold one more element. */
static bool grow(void **v, uint32_t n, uint32_t *cap, size_t elem)
{
    if (n < *cap)
        return true;
    uint32_t ncap = *cap ? *cap * 2 : 4;
    void *p = realloc(*v, ncap * elem);
    if (!p)
        return false;
    *v = p;
    *cap = ncap;
    return true;
}

static int find_link(const struct wispi_actor *a, wisp_addr who)
{
    if (!a->rel)
        return -1;
    for (uint32_t i = 0; i < a->rel->nlinks; i++)
        if (wisp_addr_eq(a->rel->links[i], who))
            return (int)i;
    return -1;
}

static int add_link(struct wispi_actor *a, wisp_addr who)
{
    if (find_link(a, who) >= 0)
        return 0;
    struct wispi_relations *r = relations(a);
    if (!r || !grow((void **)&r->links, r->nlinks, &r->caplinks, sizeof *r->links))
        return -ENOMEM;
    r->links[r->nlinks++] = who;
    return 0;
}

static bool remove_link(struct wispi_actor *a, wisp_addr who)
{
    int i = find_link(a, who);
    if (i < 0)
        return false;
    a->rel->links[i] = a->rel->links[--a->rel->nlinks];
    return true;
}

static int add_monitor(struct wispi_monitor_ref **v, uint32_t *n, uint32_t *cap, wisp_addr who,
                       uint64_t ref)
{
    if (!grow((void **)v, *n, cap, sizeof **v))
        return -ENOMEM;
    (*v)[(*n)++] = (struct wispi_monitor_ref){who, ref};
    return 0;
}

/* Remove the entry with this reference (and, if who is not none, this actor). */
static bool remove_monitor(struct wispi_monitor_ref *v, uint32_t *n, wisp_addr who, uint64_t ref,
                           wisp_addr *found)
{
    for (uint32_t i = 0; i < *n; i++) {
        if (v[i].ref == ref && (wisp_addr_is_none(who) || wisp_addr_eq(v[i].who, who))) {
            if (found)
                *found = v[i].who;
            v[i] = v[--*n];
            return true;
        }
    }
    return false;
}

/* ---- spawning ----------------------------------------------------------------------------- */

static int spawn(struct wisp_runtime *rt, struct wispi_worker *near,
                 const struct wisp_actor_def *def, const void *arg, size_t arg_len,
                 const struct wisp_spawn_opts *opts, struct wispi_actor *parent,
                 uint32_t extra_flags, wisp_addr *out)
{
    if (!def || !def->receive || (!arg && arg_len))
        return -EINVAL;
    if (opts && (opts->worker < 0 || (unsigned)opts->worker > rt->nworkers))
        return -EINVAL;
    if (opts && opts->link && !parent)
        return -EINVAL;
    if (atomic_load_explicit(&rt->stop_state, memory_order_relaxed))
        return WISP_ECLOSED;
    struct wispi_msg *init = wispi_msg_new(0, arg, arg_len);
    if (!init)
        return -ENOMEM;
    init->sys = SYS_INIT;
    struct wispi_actor *a;
    int rc = wispi_actor_alloc(rt, def, &a);
    if (rc) {
        wispi_msg_free(init);
        return rc;
    }
    a->limit = def->mailbox_limit ? def->mailbox_limit : rt->opts.mailbox_limit;
    a->flags |= extra_flags;
    wispi_mailbox_init(&a->mbox, &a->stub);
    if (opts && opts->link) {
        /* Both ends exist before anyone can see the child: its side is written here, before
         * it is published; the parent's by the parent's own worker (we are in its turn). */
        if (add_link(a, parent->addr) || add_link(parent, a->addr)) {
            remove_link(parent, a->addr);
            wispi_msg_free(init);
            wispi_actor_publish(a, 1);
            wispi_actor_mark_dead(a);
            wispi_actor_release(a);
            return -ENOMEM;
        }
    }
    struct wispi_worker *home;
    if (opts && opts->worker > 0) {
        home = &rt->workers[opts->worker - 1];
        a->flags |= ACTOR_PINNED;
    } else {
        home = near ? near : wispi_worker_pick(rt);
    }
    atomic_init(&a->home, home);
    atomic_fetch_add_explicit(&home->load, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&rt->live, 1, memory_order_relaxed);
    /* INIT goes in before the actor is published, so it is always its first message. The
     * fresh mailbox was empty, so this push makes us the scheduler; an alive actor needs only
     * its alive reference to wait in a queue. */
    wispi_mailbox_push(&a->mbox, &init->node, &init->node);
    atomic_store_explicit(&a->pending, 1, memory_order_relaxed);
    wispi_actor_publish(a, 1);
    wisp_addr addr = a->addr;
    if (out)
        *out = addr;
    wispi_schedule(a); /* from here `a` may run, die and be freed on another worker */
    /* A stop that began while we were spawning may have scanned for actors before this one
     * was published; give it its SHUTDOWN ourselves (a second one is harmless). seq_cst pairs
     * with the publishing store and with the stop's state change. */
    if (atomic_load_explicit(&rt->stop_state, memory_order_seq_cst) >= 2) {
        struct wispi_msg *m = wispi_msg_new_sys(SYS_SHUTDOWN, WISP_ADDR_NONE, 0);
        if (m)
            send_sys(rt, addr, m);
    }
    return 0;
}

int wisp_spawn(struct wisp_ctx *ctx, const struct wisp_actor_def *def, const void *arg,
               size_t arg_len, wisp_addr *out)
{
    return spawn(ctx->actor->rt, ctx->worker, def, arg, arg_len, NULL, ctx->actor, 0, out);
}

int wisp_spawn_opts(struct wisp_ctx *ctx, const struct wisp_actor_def *def, const void *arg,
                    size_t arg_len, const struct wisp_spawn_opts *opts, wisp_addr *out)
{
    return spawn(ctx->actor->rt, ctx->worker, def, arg, arg_len, opts, ctx->actor, 0, out);
}

int wisp_rt_spawn(struct wisp_runtime *rt, const struct wisp_actor_def *def, const void *arg,
                  size_t arg_len, wisp_addr *out)
{
    if (!rt)
        return -EINVAL;
    return spawn(rt, NULL, def, arg, arg_len, NULL, NULL, 0, out);
}

int wispi_spawn_internal(struct wisp_runtime *rt, const struct wisp_actor_def *def,
                         const void *arg, size_t arg_len, unsigned worker, uint32_t flags,
                         wisp_addr *out)
{
    struct wisp_spawn_opts o = {.worker = (int)worker + 1};
    return spawn(rt, NULL, def, arg, arg_len, &o, NULL, flags, out);
}

int wispi_send_internal(struct wisp_runtime *rt, struct wispi_actor *sender, wisp_addr to,
                        uint32_t type, const void *data, size_t len)
{
    struct wispi_msg *m = wispi_msg_new(type, data, len);
    if (!m)
        return -ENOMEM;
    m->from = sender ? sender->addr : WISP_ADDR_NONE;
    return wispi_send_chain(rt, sender, to, m, m, 1, false);
}

int wispi_send_owned_internal(struct wisp_runtime *rt, struct wispi_actor *sender, wisp_addr to,
                              uint32_t type, void *data, size_t len, wisp_release_fn release,
                              void *arg)
{
    struct wispi_msg *m = wispi_msg_new_owned(type, data, len, release, arg);
    if (!m)
        return -ENOMEM; /* released by wispi_msg_new_owned */
    m->from = sender ? sender->addr : WISP_ADDR_NONE;
    return wispi_send_chain(rt, sender, to, m, m, 1, false);
}

/* ---- context queries ------------------------------------------------------------------------ */

wisp_addr wisp_self(const struct wisp_ctx *ctx)
{
    return ctx->actor->addr;
}

struct wisp_runtime *wisp_runtime_of(const struct wisp_ctx *ctx)
{
    return ctx->actor->rt;
}

unsigned wisp_worker_index(const struct wisp_ctx *ctx)
{
    return ctx->worker->index;
}

void wisp_stop(struct wisp_ctx *ctx, struct wisp_exit reason)
{
    ctx->actor->flags |= ACTOR_STOPPING;
    ctx->actor->stop_reason = reason;
}

int wisp_rt_kill(struct wisp_runtime *rt, wisp_addr who)
{
    struct wispi_actor *a = wispi_actor_acquire(rt, who);
    if (!a)
        return -ESRCH;
    /* relaxed: the message pushed next carries the ordering (release/acquire through the
     * mailbox); the flag lets the actor skip the backlog in front of that message. */
    atomic_store_explicit(&a->kill, true, memory_order_relaxed);
    struct wispi_msg *m = wispi_msg_new_sys(SYS_KILL, WISP_ADDR_NONE, 0);
    if (!m) {
        /* Still killed at its next turn; make sure there is one. */
        wispi_actor_release(a);
        return -ENOMEM;
    }
    wispi_deliver(a, m, m, 1);
    return 0;
}

/* ---- links and monitors (API) --------------------------------------------------------------- */

int wisp_link(struct wisp_ctx *ctx, wisp_addr other)
{
    struct wispi_actor *self = ctx->actor;
    if (wisp_addr_is_none(other) || wisp_addr_eq(other, self->addr))
        return -EINVAL;
    if (find_link(self, other) >= 0)
        return 0;
    int rc = add_link(self, other);
    if (rc)
        return rc;
    rc = send_sys(self->rt, other, wispi_msg_new_sys(SYS_LINK, self->addr, 0));
    if (rc == -ESRCH) {
        /* No such actor: as if it exited with NOPROC, delivered in mailbox order. */
        struct wispi_msg *m = wispi_msg_new_sys(SYS_EXIT, other, 0);
        if (!m)
            return -ENOMEM;
        m->u.down = (struct wisp_down){other, {WISP_EXIT_NOPROC, 0}, 0};
        rc = send_sys(self->rt, self->addr, m);
    }
    if (rc < 0)
        remove_link(self, other);
    return rc < 0 ? rc : 0;
}

int wisp_unlink(struct wisp_ctx *ctx, wisp_addr other)
{
    struct wispi_actor *self = ctx->actor;
    if (!remove_link(self, other))
        return -ENOENT;
    send_sys(self->rt, other, wispi_msg_new_sys(SYS_UNLINK, self->addr, 0));
    return 0;
}

void wisp_trap_exits(struct wisp_ctx *ctx, bool on)
{
    if (on)
        ctx->actor->flags |= ACTOR_TRAP_EXIT;
    else
        ctx->actor->flags &= ~ACTOR_TRAP_EXIT;
}

int wisp_monitor(struct wisp_ctx *ctx, wisp_addr target, uint64_t *ref_out)
{
    struct wispi_actor *self = ctx->actor;
    if (wisp_addr_is_none(target) || wisp_addr_eq(target, self->addr))
        return -EINVAL;
    struct wispi_relations *r = relations(self);
    if (!r)
        return -ENOMEM;
    /* relaxed: references only need to be unique. */
    uint64_t ref = atomic_fetch_add_explicit(&self->rt->next_ref, 1, memory_order_relaxed);
    int rc = add_monitor(&r->watching, &r->nwatching, &r->capwatching, target, ref);
    if (rc)
        return rc;
    rc = send_sys(self->rt, target, wispi_msg_new_sys(SYS_MONITOR, self->addr, ref));
    if (rc == -ESRCH) {
        struct wispi_msg *m = wispi_msg_new_sys(SYS_DOWN, target, ref);
        if (!m)
            return -ENOMEM;
        m->u.down = (struct wisp_down){target, {WISP_EXIT_NOPROC, 0}, ref};
        rc = send_sys(self->rt, self->addr, m);
    }
    if (rc < 0) {
        remove_monitor(r->watching, &r->nwatching, target, ref, NULL);
        return rc;
    }
    if (ref_out)
        *ref_out = ref;
    return 0;
}

int wisp_demonitor(struct wisp_ctx *ctx, uint64_t ref)
{
    struct wispi_actor *self = ctx->actor;
    wisp_addr target;
    if (!self->rel ||
        !remove_monitor(self->rel->watching, &self->rel->nwatching, WISP_ADDR_NONE, ref, &target))
        return -ENOENT;
    send_sys(self->rt, target, wispi_msg_new_sys(SYS_DEMONITOR, self->addr, ref));
    return 0;
}

/* ---- exits ---------------------------------------------------------------------------------- */

/* Tell linked and monitoring actors that `a` exited. */
static void notify_exit(struct wispi_actor *a, struct wisp_exit reason)
{
    struct wispi_relations *r = a->rel;
    if (!r)
        return;
    for (uint32_t i = 0; i < r->nlinks; i++) {
        struct wispi_msg *m = wispi_msg_new_sys(SYS_EXIT, a->addr, 0);
        if (m)
            m->u.down = (struct wisp_down){a->addr, reason, 0};
        send_sys(a->rt, r->links[i], m);
    }
    r->nlinks = 0;
    for (uint32_t i = 0; i < r->nwatchers; i++) {
        struct wispi_msg *m = wispi_msg_new_sys(SYS_DOWN, a->addr, r->watchers[i].ref);
        if (m)
            m->u.down = (struct wisp_down){a->addr, reason, r->watchers[i].ref};
        send_sys(a->rt, r->watchers[i].who, m);
    }
    r->nwatchers = 0;
    /* The actors this one watched must forget it, or a long-lived actor watched by many
     * short-lived ones would keep one entry per dead watcher. */
    for (uint32_t i = 0; i < r->nwatching; i++)
        send_sys(a->rt, r->watching[i].who,
                 wispi_msg_new_sys(SYS_DEMONITOR, a->addr, r->watching[i].ref));
    r->nwatching = 0;
}

/* A message reached an actor that is dead: release it, but answer the requests that expect
 * an answer, so that a link or monitor set up in a race with the death still reports it. */
static void release_dead_letter(struct wispi_actor *a, struct wispi_msg *m)
{
    struct wispi_msg *reply = NULL;
    if (m->sys == SYS_LINK) {
        reply = wispi_msg_new_sys(SYS_EXIT, a->addr, 0);
        if (reply)
            reply->u.down = (struct wisp_down){a->addr, {WISP_EXIT_NOPROC, 0}, 0};
    } else if (m->sys == SYS_MONITOR) {
        reply = wispi_msg_new_sys(SYS_DOWN, a->addr, m->aux);
        if (reply)
            reply->u.down = (struct wisp_down){a->addr, {WISP_EXIT_NOPROC, 0}, m->aux};
    }
    if (reply)
        send_sys(a->rt, m->from, reply);
    if (m->sys == SYS_DRAINED) /* the waiter must not wait forever: it learns on its next send */
        answer_drained(a, m);
    if (m->sys == SYS_TIMER) /* its timer was cancelled when the actor died: free it */
        wispi_timer_delivered(NULL, (struct wispi_timer *)(uintptr_t)m->aux);
    m->sys = SYS_NONE;
    wispi_msg_release_payload(m);
}

/* Pop and release everything queued for a dead actor. */
static void drain_dead(struct wispi_actor *a)
{
    struct wispi_node *n, *old;
    uint32_t count = 0;
    while ((n = wispi_mailbox_pop(&a->mbox, &old))) {
        if (old != &a->stub)
            wispi_msg_free((struct wispi_msg *)old);
        release_dead_letter(a, (struct wispi_msg *)n);
        count++;
    }
    if (count)
        atomic_fetch_sub_explicit(&a->pending, count, memory_order_relaxed);
}

static void die(struct wispi_worker *w, struct wispi_actor *a, struct wisp_exit reason)
{
    if (a->flags & ACTOR_DEAD)
        return;
    a->flags |= ACTOR_DEAD;
    a->flags &= ~ACTOR_STOPPING;
    /* New lookups fail from here; senders already holding a reference still deliver, and
     * what they deliver is drained below or by a later turn. */
    wispi_actor_mark_dead(a);
    if ((a->flags & ACTOR_INITED) && a->def->terminate)
        a->def->terminate(w->ctx, a->state, reason);
    /* Names go before the EXIT and DOWN messages: whoever acts on them must not find the dead
     * address under its name any more. acq_rel: see `names` in internal.h */
    if (atomic_exchange_explicit(&a->names, 2, memory_order_acq_rel) == 1)
        wispi_registry_forget(&a->rt->registry, a->addr);
    notify_exit(a, reason);
    if (a->ntimers)
        wispi_timers_drop_owner(w, a);
    drain_dead(a);
    atomic_fetch_sub_explicit(&(atomic_load_explicit(&a->home, memory_order_relaxed))->load, 1,
                              memory_order_relaxed);
    drop_send_cache(a);
    /* release: a producer that then schedules the dead actor must see it as dead. */
    atomic_store_explicit(&a->dead, true, memory_order_release);
    atomic_fetch_sub_explicit(&a->rt->live, 1, memory_order_release);
    /* The alive reference is released at the end of this turn, after the last mailbox
     * access (wispi_actor_run). */
}

/* ---- one turn ------------------------------------------------------------------------------- */

static void deliver_user(struct wispi_worker *w, struct wispi_actor *a, uint32_t type,
                         wisp_addr from, const void *data, size_t len, uint64_t timer)
{
    struct wisp_msg pub = {.type = type, .from = from, .data = data, .len = len, .timer = timer};
    a->def->receive(w->ctx, a->state, &pub);
}

static void dispatch(struct wispi_worker *w, struct wispi_actor *a, struct wispi_msg *m)
{
    switch ((enum wispi_sys)m->sys) {
    case SYS_NONE:
        deliver_user(w, a, m->type, m->from, m->data, m->len, 0);
        break;
    case SYS_INIT: {
        int rc = a->def->init ? a->def->init(w->ctx, a->state, m->data, m->len) : 0;
        if (rc < 0)
            wisp_stop(w->ctx, (struct wisp_exit){WISP_EXIT_ERROR, rc});
        else
            a->flags |= ACTOR_INITED;
        break;
    }
    case SYS_LINK:
        if (add_link(a, m->from) < 0) {
            /* Cannot record the link: fail the linker rather than leave it half-linked. */
            struct wispi_msg *r = wispi_msg_new_sys(SYS_EXIT, a->addr, 0);
            if (r)
                r->u.down = (struct wisp_down){a->addr, {WISP_EXIT_ERROR, -ENOMEM}, 0};
            send_sys(a->rt, m->from, r);
        }
        break;
    case SYS_UNLINK:
        remove_link(a, m->from);
        break;
    case SYS_EXIT: {
        if (!remove_link(a, m->from))
            break; /* unlinked meanwhile: the exit no longer concerns us */
        if (a->flags & ACTOR_TRAP_EXIT)
            deliver_user(w, a, WISP_MSG_EXIT, m->from, &m->u.down, sizeof m->u.down, 0);
        else if (m->u.down.reason.kind != WISP_EXIT_NORMAL)
            wisp_stop(w->ctx, m->u.down.reason);
        break;
    }
    case SYS_MONITOR: {
        struct wispi_relations *r = relations(a);
        if (!r || add_monitor(&r->watchers, &r->nwatchers, &r->capwatchers, m->from, m->aux)) {
            struct wispi_msg *d = wispi_msg_new_sys(SYS_DOWN, a->addr, m->aux);
            if (d)
                d->u.down = (struct wisp_down){a->addr, {WISP_EXIT_ERROR, -ENOMEM}, m->aux};
            send_sys(a->rt, m->from, d);
        }
        break;
    }
    case SYS_DEMONITOR:
        if (a->rel)
            remove_monitor(a->rel->watchers, &a->rel->nwatchers, m->from, m->aux, NULL);
        break;
    case SYS_DOWN:
        if (a->rel &&
            remove_monitor(a->rel->watching, &a->rel->nwatching, m->from, m->aux, NULL))
            deliver_user(w, a, WISP_MSG_DOWN, m->from, &m->u.down, sizeof m->u.down, 0);
        break;
    case SYS_TIMER: {
        struct wispi_timer *t = (struct wispi_timer *)(uintptr_t)m->aux;
        uint64_t id = t->id;
        if (wispi_timer_delivered(w, t))
            deliver_user(w, a, m->type, a->addr, m->data, m->len, id);
        break;
    }
    case SYS_SHUTDOWN:
        if (a->flags & ACTOR_TRAP_SHUTDOWN)
            deliver_user(w, a, WISPI_MSG_SHUTDOWN, WISP_ADDR_NONE, NULL, 0, 0);
        else
            wisp_stop(w->ctx, (struct wisp_exit){WISP_EXIT_SHUTDOWN, 0});
        break;
    case SYS_KILL:
        wisp_stop(w->ctx, (struct wisp_exit){WISP_EXIT_KILLED, 0});
        break;
    case SYS_DRAINED:
        answer_drained(a, m);
        break;
    case SYS_IO:
        wispi_net_io(w->ctx, (struct wispi_sock *)(uintptr_t)m->aux);
        break;
    }
    wispi_msg_release_payload(m);
}

void wispi_actor_run(struct wispi_worker *w, struct wispi_actor *a)
{
    w->ctx->actor = a;
    uint32_t processed = 0;
    /* An actor that was already dead when queued came with a reference; one that dies in
     * this turn still holds its alive one. Either way, exactly one is released below. */
    if (!(a->flags & ACTOR_DEAD)) {
        while (processed < TURN_BATCH) {
            /* relaxed: see wisp_rt_kill; a kill seen late is seen at the next message. */
            if (atomic_load_explicit(&a->kill, memory_order_relaxed)) {
                die(w, a, (struct wisp_exit){WISP_EXIT_KILLED, 0});
                break;
            }
            struct wispi_node *old;
            struct wispi_node *n = wispi_mailbox_pop(&a->mbox, &old);
            if (!n)
                break;
            if (old != &a->stub) /* its payload went right after its own delivery */
                wispi_msg_free_header((struct wispi_msg *)old);
            processed++;
            dispatch(w, a, (struct wispi_msg *)n);
            if (a->flags & ACTOR_STOPPING) {
                die(w, a, a->stop_reason);
                break;
            }
        }
        if (processed)
            atomic_fetch_sub_explicit(&a->pending, processed, memory_order_relaxed);
    }
    w->ctx->actor = NULL;

    if (a->flags & ACTOR_DEAD) {
        /* Nothing runs any more: release what arrived. If a producer is mid-push, come back
         * later rather than spin; the reference we hold becomes the queue's. */
        drain_dead(a);
        if (wispi_mailbox_mark_empty(&a->mbox))
            wispi_actor_release(a);
        else
            wispi_worker_enqueue(w, a);
        return;
    }
    if (processed == TURN_BATCH || !wispi_mailbox_mark_empty(&a->mbox))
        wispi_worker_enqueue(w, a); /* still runnable: back in the queue */
    /* else idle: the next producer to find the mailbox empty schedules it */
}
