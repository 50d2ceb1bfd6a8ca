/* Topics, shared frames and the per-worker delivery actors (see pubsub.h and wisp/pubsub.h).
 *
 * The topic table is a chained hash under one mutex: only subscribe, unsubscribe, a publish's
 * lookup and the last reference of a delivery touch it. A topic lives while something refers
 * to it: a subscription, a pending subscription request or a frame on its way; with no
 * subscriber and nothing in flight it is gone.
 *
 * Each worker has a delivery actor, pinned to it and spawned on first use. Deliveries and
 * subscription requests for a worker's connections go through that actor's mailbox, so the
 * ones one sender makes are applied in the order it made them.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "internal.h"
#include "pubsub.h"

struct wispi_topic {
    struct wispi_group g;
    struct wispi_topic *hnext;
    uint32_t refs; /* under the table lock */
    uint32_t hash;
    size_t len;
    char name[];
};

struct wispi_pubsub {
    pthread_mutex_t lock;
    struct wispi_topic **buckets;
    size_t nbuckets, ntopics;
    wisp_addr *actors; /* the delivery actor of each worker, once started */
    bool started;
    _Atomic uint64_t published; /* relaxed: a statistic */
};

/* ---- groups ----------------------------------------------------------------------------- */

int wispi_group_init(struct wispi_group *g, unsigned nworkers)
{
    g->nworkers = nworkers;
    g->w = calloc(nworkers, sizeof *g->w);
    return g->w ? 0 : -ENOMEM;
}

void wispi_group_free(struct wispi_group *g)
{
    for (unsigned i = 0; g->w && i < g->nworkers; i++)
        free(g->w[i].v);
    free(g->w);
    g->w = NULL;
}

int wispi_group_join(struct wispi_group *g, unsigned worker, struct wispi_sub *s, bool reserved)
{
    struct wispi_members *m = &g->w[worker];
    if (m->n == m->cap) {
        uint32_t cap = m->cap ? m->cap * 2 : 8;
        struct wispi_sub **v = realloc(m->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        m->v = v;
        m->cap = cap;
    }
    s->group = g;
    s->idx = m->n;
    m->v[m->n++] = s;
    if (!reserved) /* relaxed: see struct wispi_members */
        atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
    return 0;
}

void wispi_group_leave(struct wispi_sub *s, unsigned worker)
{
    struct wispi_members *m = &s->group->w[worker];
    struct wispi_sub *last = m->v[--m->n];
    m->v[s->idx] = last;
    last->idx = s->idx;
    atomic_fetch_sub_explicit(&m->count, 1, memory_order_relaxed); /* relaxed: as above */
    if (m->n == 0 && m->cap > 64) { /* a crowd left: give the memory back */
        free(m->v);
        m->v = NULL;
        m->cap = 0;
    }
}

/* ---- frames -------------------------------------------------------------------------------- */

/* The payload bytes of fragment i of a len-byte message cut in nfrag. */
static size_t piece_len(size_t len, uint32_t nfrag, uint32_t i)
{
    return i + 1 < nfrag ? WISPI_FRAGMENT_DEFAULT : len - (size_t)i * WISPI_FRAGMENT_DEFAULT;
}

static struct wispi_frame *frame_new(enum wisp_ws_opcode op, const void *data, size_t len)
{
    uint32_t nfrag = len ? (uint32_t)((len - 1) / WISPI_FRAGMENT_DEFAULT + 1) : 1;
    /* Room for the longest header per fragment (wisp_ws_frame_header's contract); wire_len
     * is what encoding used. */
    size_t cap = len + (size_t)nfrag * WISP_WS_MAX_HEADER;
    struct wispi_frame *f = malloc(sizeof *f + nfrag * sizeof f->frag_end[0] + cap);
    if (!f)
        return NULL;
    atomic_init(&f->refs, 1);
    f->op = (uint8_t)op;
    f->nfrag = nfrag;
    f->len = len;
    f->wire = (uint8_t *)&f->frag_end[nfrag];
    f->group = NULL;
    f->topic = NULL;
    f->except = WISP_ADDR_NONE;
    size_t at = 0, off = 0;
    for (uint32_t i = 0; i < nfrag; i++) {
        size_t piece = piece_len(len, nfrag, i);
        at += wisp_ws_frame_header(f->wire + at, i ? WISP_WS_OP_CONTINUATION : op,
                                   i + 1 == nfrag, 0, piece, NULL);
        if (piece)
            memcpy(f->wire + at, (const uint8_t *)data + off, piece);
        at += piece;
        off += piece;
        f->frag_end[i] = at;
    }
    f->wire_len = at;
    return f;
}

void wispi_frame_ref(struct wispi_frame *f)
{
    /* relaxed: taking a reference needs no ordering, the holder already sees the frame */
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

static void frame_free(struct wispi_frame *f, struct wisp_runtime *rt);

void wispi_frame_release(void *frame, size_t len, void *arg)
{
    (void)len;
    struct wispi_frame *f = frame;
    /* acq_rel: every holder's reads of the bytes happen before the free that follows the
     * last release (release on each drop, acquire by the one that frees). */
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
        frame_free(f, arg);
}

void wispi_frame_payload(const struct wispi_frame *f, uint8_t *out)
{
    size_t start = 0;
    for (uint32_t i = 0; i < f->nfrag; i++) {
        size_t piece = piece_len(f->len, f->nfrag, i);
        size_t header = f->frag_end[i] - start - piece;
        memcpy(out, f->wire + start + header, piece);
        out += piece;
        start = f->frag_end[i];
    }
}

/* ---- the topic table ------------------------------------------------------------------------- */

static uint32_t hash_name(const char *p, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 16777619u;
    return h;
}

int wispi_topic_name_ok(const char *name, size_t *len)
{
    if (!name)
        return -EINVAL;
    size_t n = strnlen(name, WISP_TOPIC_MAX + 1);
    if (n == 0 || n > WISP_TOPIC_MAX)
        return -EINVAL;
    *len = n;
    return 0;
}

static struct wispi_topic **slot_of(struct wispi_pubsub *ps, const char *name, size_t len,
                                    uint32_t h)
{
    struct wispi_topic **p = &ps->buckets[h & (ps->nbuckets - 1)];
    while (*p && !((*p)->hash == h && (*p)->len == len && memcmp((*p)->name, name, len) == 0))
        p = &(*p)->hnext;
    return p;
}

static void grow_table(struct wispi_pubsub *ps)
{
    size_t n = ps->nbuckets * 2;
    struct wispi_topic **b = calloc(n, sizeof *b);
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < ps->nbuckets; i++) {
        struct wispi_topic *t = ps->buckets[i];
        while (t) {
            struct wispi_topic *next = t->hnext;
            t->hnext = b[t->hash & (n - 1)];
            b[t->hash & (n - 1)] = t;
            t = next;
        }
    }
    free(ps->buckets);
    ps->buckets = b;
    ps->nbuckets = n;
}

struct wispi_topic *wispi_topic_get(struct wisp_runtime *rt, const char *name, size_t len)
{
    struct wispi_pubsub *ps = rt->pubsub;
    uint32_t h = hash_name(name, len);
    pthread_mutex_lock(&ps->lock);
    struct wispi_topic **p = slot_of(ps, name, len, h);
    struct wispi_topic *t = *p;
    if (!t) {
        t = malloc(sizeof *t + len + 1);
        if (t && wispi_group_init(&t->g, rt->nworkers) < 0) {
            free(t);
            t = NULL;
        }
        if (t) {
            t->refs = 0;
            t->hash = h;
            t->len = len;
            memcpy(t->name, name, len);
            t->name[len] = '\0';
            t->hnext = NULL;
            *p = t;
            if (++ps->ntopics > ps->nbuckets * 2)
                grow_table(ps);
        }
    }
    if (t)
        t->refs++;
    pthread_mutex_unlock(&ps->lock);
    return t;
}

/* An existing topic, referenced; NULL if nobody subscribes to that name. */
static struct wispi_topic *topic_find(struct wisp_runtime *rt, const char *name, size_t len)
{
    struct wispi_pubsub *ps = rt->pubsub;
    uint32_t h = hash_name(name, len);
    pthread_mutex_lock(&ps->lock);
    struct wispi_topic *t = *slot_of(ps, name, len, h);
    if (t)
        t->refs++;
    pthread_mutex_unlock(&ps->lock);
    return t;
}

void wispi_topic_put(struct wisp_runtime *rt, struct wispi_topic *t)
{
    struct wispi_pubsub *ps = rt->pubsub;
    pthread_mutex_lock(&ps->lock);
    bool last = --t->refs == 0;
    if (last) {
        *slot_of(ps, t->name, t->len, t->hash) = t->hnext;
        ps->ntopics--;
    }
    pthread_mutex_unlock(&ps->lock);
    if (last) {
        wispi_group_free(&t->g);
        free(t);
    }
}

struct wispi_group *wispi_topic_group(struct wispi_topic *t)
{
    return &t->g;
}

bool wispi_topic_is(const struct wispi_topic *t, const char *name, size_t len)
{
    return t->len == len && memcmp(t->name, name, len) == 0;
}

static void frame_free(struct wispi_frame *f, struct wisp_runtime *rt)
{
    if (f->topic)
        wispi_topic_put(rt, f->topic);
    free(f);
}

/* ---- delivery actors ---------------------------------------------------------------------- */

static void deliver(struct wisp_ctx *ctx, struct wispi_frame *f)
{
    unsigned w = wisp_worker_index(ctx);
    struct wispi_members *m = &f->group->w[w];
    /* Delivery never changes membership synchronously (see wispi_conn_deliver), so the
     * array is stable while we walk it. */
    for (uint32_t i = 0; i < m->n; i++) {
        struct wisp_conn *c = m->v[i]->conn;
        if (!wisp_addr_eq(wisp_conn_addr(c), f->except))
            wispi_conn_deliver(c, f);
    }
}

static void delivery_receive(struct wisp_ctx *ctx, void *state, const struct wisp_msg *msg)
{
    (void)state;
    if (msg->type == WISPI_MSG_DELIVER)
        deliver(ctx, (struct wispi_frame *)(uintptr_t)msg->data);
    else if (msg->type == WISPI_MSG_SUBSCRIBE)
        wispi_conn_apply_subreq(wisp_runtime_of(ctx), wisp_worker_index(ctx),
                                (struct wispi_subreq *)(uintptr_t)msg->data);
}

static const struct wisp_actor_def delivery_def = {
    .name = "wisp-pubsub",
    .receive = delivery_receive,
    .mailbox_limit = UINT32_MAX, /* publishers are never refused; memory is bounded by the
                                    subscribers' send caps, which apply on delivery */
};

static int check_runtime(struct wisp_runtime *rt)
{
    if (!rt)
        return -EINVAL;
    if (rt->opts.deterministic)
        return -ENOTSUP;
    return 0;
}

/* Spawn the delivery actors on first use. */
static int start_actors(struct wisp_runtime *rt)
{
    struct wispi_pubsub *ps = rt->pubsub;
    int rc = 0;
    pthread_mutex_lock(&ps->lock);
    for (unsigned i = 0; !ps->started && i < rt->nworkers && rc == 0; i++)
        if (wisp_addr_is_none(ps->actors[i]))
            rc = wispi_spawn_internal(rt, &delivery_def, NULL, 0, i, 0, &ps->actors[i]);
    if (rc == 0)
        ps->started = true;
    pthread_mutex_unlock(&ps->lock);
    return rc;
}

static int send_to_worker(struct wisp_runtime *rt, unsigned w, uint32_t type, void *data,
                          wisp_release_fn release)
{
    int rc = wispi_send_owned_internal(rt, NULL, rt->pubsub->actors[w], type, data, 0, release,
                                       rt);
    return rc == -ESRCH ? WISP_ECLOSED : rc < 0 ? rc : 0; /* gone: the runtime is stopping */
}

int wispi_publish_group(struct wisp_runtime *rt, struct wispi_group *g, struct wispi_topic *t,
                        wisp_addr except, enum wisp_ws_opcode op, const void *data, size_t len)
{
    uint64_t total = 0;
    for (unsigned w = 0; w < g->nworkers; w++) /* relaxed: see struct wispi_members */
        total += atomic_load_explicit(&g->w[w].count, memory_order_relaxed);
    int rc = total ? start_actors(rt) : 0;
    struct wispi_frame *f = total && rc == 0 ? frame_new(op, data, len) : NULL;
    if (!f) {
        if (t)
            wispi_topic_put(rt, t);
        return rc < 0 ? rc : total ? -ENOMEM : 0;
    }
    f->group = g;
    f->topic = t; /* the frame owns the reference now */
    f->except = except;
    int failed = 0;
    for (unsigned w = 0; w < g->nworkers; w++) {
        if (!atomic_load_explicit(&g->w[w].count, memory_order_relaxed))
            continue;
        wispi_frame_ref(f);
        rc = send_to_worker(rt, w, WISPI_MSG_DELIVER, f, wispi_frame_release);
        if (rc < 0)
            failed = rc;
    }
    wispi_frame_release(f, 0, rt);
    /* relaxed: a statistic */
    atomic_fetch_add_explicit(&rt->pubsub->published, 1, memory_order_relaxed);
    if (failed)
        return failed;
    return total > INT32_MAX ? INT32_MAX : (int)total;
}

int wispi_message_ok(enum wisp_ws_opcode op, const void *data, size_t len)
{
    if ((op != WISP_WS_OP_TEXT && op != WISP_WS_OP_BINARY) || (!data && len))
        return -EINVAL;
    if (op == WISP_WS_OP_TEXT && !wisp_utf8_valid(data, len))
        return -EILSEQ;
    return 0;
}

int wisp_rt_publish(struct wisp_runtime *rt, const char *topic, enum wisp_ws_opcode op,
                    const void *data, size_t len)
{
    size_t n;
    int rc = check_runtime(rt);
    if (rc == 0)
        rc = wispi_topic_name_ok(topic, &n);
    if (rc == 0)
        rc = wispi_message_ok(op, data, len);
    if (rc < 0)
        return rc;
    if (atomic_load_explicit(&rt->stop_state, memory_order_relaxed) >= 2)
        return WISP_ECLOSED;
    struct wispi_topic *t = topic_find(rt, topic, n);
    if (!t)
        return 0;
    return wispi_publish_group(rt, &t->g, t, WISP_ADDR_NONE, op, data, len);
}

int wisp_publish(struct wisp_ctx *ctx, const char *topic, enum wisp_ws_opcode op,
                 const void *data, size_t len)
{
    return wisp_rt_publish(ctx ? wisp_runtime_of(ctx) : NULL, topic, op, data, len);
}

size_t wisp_topic_subscribers(struct wisp_runtime *rt, const char *topic)
{
    size_t n, total = 0;
    if (check_runtime(rt) < 0 || wispi_topic_name_ok(topic, &n) < 0)
        return 0;
    struct wispi_pubsub *ps = rt->pubsub;
    pthread_mutex_lock(&ps->lock);
    struct wispi_topic *t = *slot_of(ps, topic, n, hash_name(topic, n));
    for (unsigned w = 0; t && w < t->g.nworkers; w++) /* relaxed: approximate by contract */
        total += atomic_load_explicit(&t->g.w[w].count, memory_order_relaxed);
    pthread_mutex_unlock(&ps->lock);
    return total;
}

/* ---- subscriptions made by other actors ---------------------------------------------------- */

static void subreq_free(void *data, size_t len, void *arg)
{
    (void)len;
    struct wispi_subreq *r = data;
    struct wisp_runtime *rt = arg;
    if (r->topic) { /* never applied: undo the reservation */
        if (r->subscribe) /* relaxed: see struct wispi_members */
            atomic_fetch_sub_explicit(&wispi_topic_group(r->topic)->w[r->worker].count, 1,
                                      memory_order_relaxed);
        wispi_topic_put(rt, r->topic);
    }
    if (r->first)
        wispi_frame_release(r->first, 0, rt);
    free(r);
}

static int subscription_request(struct wisp_ctx *ctx, wisp_addr conn, const char *topic,
                                bool subscribe, enum wisp_ws_opcode op, const void *first,
                                size_t first_len)
{
    struct wisp_runtime *rt = ctx ? wisp_runtime_of(ctx) : NULL;
    size_t n;
    int rc = check_runtime(rt);
    if (rc == 0)
        rc = wispi_topic_name_ok(topic, &n);
    if (rc == 0 && (first || first_len))
        rc = wispi_message_ok(op, first, first_len);
    if (rc < 0)
        return rc;
    struct wispi_actor *a = wispi_actor_acquire(rt, conn);
    if (!a)
        return -ESRCH;
    bool is_conn = wispi_actor_is_conn(a);
    /* relaxed: connection actors are pinned, their home never changes after spawn */
    unsigned w = atomic_load_explicit(&a->home, memory_order_relaxed)->index;
    wispi_actor_release(a);
    if (!is_conn)
        return -EINVAL;
    if ((rc = start_actors(rt)) < 0)
        return rc;
    struct wispi_subreq *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->topic = wispi_topic_get(rt, topic, n);
    r->conn = conn;
    r->worker = w;
    r->subscribe = subscribe;
    if (r->topic && subscribe) /* relaxed: see struct wispi_members */
        atomic_fetch_add_explicit(&wispi_topic_group(r->topic)->w[w].count, 1,
                                  memory_order_relaxed);
    if (subscribe && (first || first_len))
        r->first = frame_new(op, first, first_len);
    if (!r->topic || (subscribe && (first || first_len) && !r->first)) {
        subreq_free(r, 0, rt);
        return -ENOMEM;
    }
    return send_to_worker(rt, w, WISPI_MSG_SUBSCRIBE, r, subreq_free);
}

int wisp_subscribe_to(struct wisp_ctx *ctx, wisp_addr conn, const char *topic,
                      enum wisp_ws_opcode op, const void *first, size_t first_len)
{
    return subscription_request(ctx, conn, topic, true, op, first, first_len);
}

int wisp_unsubscribe_to(struct wisp_ctx *ctx, wisp_addr conn, const char *topic)
{
    return subscription_request(ctx, conn, topic, false, WISP_WS_OP_BINARY, NULL, 0);
}

/* ---- the runtime's state --------------------------------------------------------------------- */

int wispi_pubsub_new(struct wisp_runtime *rt)
{
    struct wispi_pubsub *ps = calloc(1, sizeof *ps);
    if (!ps)
        return -ENOMEM;
    ps->nbuckets = 64;
    ps->buckets = calloc(ps->nbuckets, sizeof *ps->buckets);
    ps->actors = calloc(rt->nworkers ? rt->nworkers : 1, sizeof *ps->actors);
    if (!ps->buckets || !ps->actors || pthread_mutex_init(&ps->lock, NULL) != 0) {
        free(ps->buckets);
        free(ps->actors);
        free(ps);
        return -ENOMEM;
    }
    rt->pubsub = ps;
    return 0;
}

void wispi_pubsub_destroy(struct wisp_runtime *rt)
{
    struct wispi_pubsub *ps = rt->pubsub;
    if (!ps)
        return;
    /* Every actor is gone, so every subscription and frame was released: whatever topic is
     * left would be a leak, which ASan reports. */
    free(ps->buckets);
    free(ps->actors);
    pthread_mutex_destroy(&ps->lock);
    free(ps);
    rt->pubsub = NULL;
}

void wispi_pubsub_stats(struct wisp_runtime *rt, uint64_t *published, uint64_t *topics)
{
    struct wispi_pubsub *ps = rt->pubsub;
    /* relaxed: a statistic */
    *published = atomic_load_explicit(&ps->published, memory_order_relaxed);
    pthread_mutex_lock(&ps->lock);
    *topics = ps->ntopics;
    pthread_mutex_unlock(&ps->lock);
}
