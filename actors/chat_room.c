/* actors/chat_room.c: the room actor of the chat module, one per room: its members (hash-indexed
 * by address and by name), their unique names, the history ring, publishing messages and
 * presence to the room's topic, and the room's life from registration to its linger timer
 * (see chat.h for the protocol and the design). Written against the public headers only. */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wisp/actor.h>
#include <wisp/pubsub.h>

#include "chat_internal.h"
#include "json.h"

void wispi_chat_room_key(char out[64], unsigned mount_id, const char *room, size_t room_len)
{
    int k = snprintf(out, 64, "chat/%u/", mount_id);
    memcpy(out + k, room, room_len);
    out[(size_t)k + room_len] = '\0';
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct member {
    wisp_addr addr;
    uint64_t mon;
    uint32_t name_len;
    char name[NAME_MAX_];
};

struct room {
    struct chat_mount *m;
    char key[64];          /* registry name and topic */
    char room[NAME_MAX_];
    uint32_t room_len;
    struct member *mem;
    uint32_t n, cap;
    /* Open addressing, linear probing, backward-shift deletion; slots hold member index + 1
     * (0: empty). tcap is a power of two, at least twice n. */
    uint32_t *by_addr, *by_name;
    size_t tcap;
    /* The history ring: hist[(head + i) % m->history] for i < hist_n, oldest first. Each entry
     * is a published message frame, {"type":"message",...}. */
    char **hist;
    size_t *hist_len;
    uint32_t head, hist_n;
    uint64_t guest_seq;
    uint64_t last_ts; /* never goes back, even if the wall clock does */
    uint64_t linger_gen;
    wisp_timer linger;
};

/* The prefix of a message frame that the history entries leave out (they start with "{"). */
static const char msg_prefix[] = "{\"type\":\"message\",";
#define MSG_PREFIX_LEN (sizeof msg_prefix - 1)

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t hash_name(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return mix64(h);
}

static uint64_t member_hash(const struct room *r, bool by_name, uint32_t mi)
{
    const struct member *m = &r->mem[mi];
    return by_name ? hash_name(m->name, m->name_len) : mix64(m->addr.id);
}

static void tab_insert(struct room *r, uint32_t *t, bool by_name, uint32_t mi)
{
    size_t mask = r->tcap - 1;
    size_t i = (size_t)member_hash(r, by_name, mi) & mask;
    while (t[i])
        i = (i + 1) & mask;
    t[i] = mi + 1;
}

/* The slot holding member mi (which must be in the table). */
static size_t tab_slot_of(const struct room *r, const uint32_t *t, bool by_name, uint32_t mi)
{
    size_t mask = r->tcap - 1;
    size_t i = (size_t)member_hash(r, by_name, mi) & mask;
    while (t[i] != mi + 1)
        i = (i + 1) & mask;
    return i;
}

static void tab_delete_slot(struct room *r, uint32_t *t, bool by_name, size_t i)
{
    size_t mask = r->tcap - 1;
    for (size_t j = (i + 1) & mask; t[j]; j = (j + 1) & mask) {
        size_t k = (size_t)member_hash(r, by_name, t[j] - 1) & mask; /* its home slot */
        /* The entry at j may move to the hole at i unless its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (k > i && k <= j) : (k > i || k <= j);
        if (!stays) {
            t[i] = t[j];
            i = j;
        }
    }
    t[i] = 0;
}

static long find_addr(const struct room *r, wisp_addr a)
{
    if (!r->tcap)
        return -1;
    size_t mask = r->tcap - 1;
    for (size_t i = (size_t)mix64(a.id) & mask; r->by_addr[i]; i = (i + 1) & mask)
        if (wisp_addr_eq(r->mem[r->by_addr[i] - 1].addr, a))
            return (long)(r->by_addr[i] - 1);
    return -1;
}

static bool name_taken(const struct room *r, const char *s, size_t n)
{
    if (!r->tcap)
        return false;
    size_t mask = r->tcap - 1;
    for (size_t i = (size_t)hash_name(s, n) & mask; r->by_name[i]; i = (i + 1) & mask) {
        const struct member *m = &r->mem[r->by_name[i] - 1];
        if (m->name_len == n && memcmp(m->name, s, n) == 0)
            return true;
    }
    return false;
}

/* Room for one more member in the array and the tables. */
static int room_reserve(struct room *r)
{
    if (r->n == r->cap) {
        uint32_t cap = r->cap ? r->cap * 2 : 8;
        if (cap > r->m->max_members)
            cap = r->m->max_members;
        struct member *v = realloc(r->mem, (size_t)cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        r->mem = v;
        r->cap = cap;
    }
    if ((size_t)(r->n + 1) * 2 > r->tcap) {
        size_t tcap = r->tcap ? r->tcap * 2 : 16;
        uint32_t *a = calloc(tcap, sizeof *a);
        uint32_t *b = calloc(tcap, sizeof *b);
        if (!a || !b) {
            free(a);
            free(b);
            return -ENOMEM;
        }
        free(r->by_addr);
        free(r->by_name);
        r->by_addr = a;
        r->by_name = b;
        r->tcap = tcap;
        for (uint32_t i = 0; i < r->n; i++) {
            tab_insert(r, r->by_addr, false, i);
            tab_insert(r, r->by_name, true, i);
        }
    }
    return 0;
}

/* Add a member (room_reserve done). */
static uint32_t room_add(struct room *r, wisp_addr a, uint64_t mon, const char *name, size_t n)
{
    uint32_t i = r->n++;
    struct member *m = &r->mem[i];
    m->addr = a;
    m->mon = mon;
    m->name_len = (uint32_t)n;
    memcpy(m->name, name, n);
    tab_insert(r, r->by_addr, false, i);
    tab_insert(r, r->by_name, true, i);
    return i;
}

static void room_remove(struct room *r, uint32_t i)
{
    tab_delete_slot(r, r->by_addr, false, tab_slot_of(r, r->by_addr, false, i));
    tab_delete_slot(r, r->by_name, true, tab_slot_of(r, r->by_name, true, i));
    uint32_t last = r->n - 1;
    if (i != last) {
        /* Move the last member into the hole; its table slots follow it. */
        size_t sa = tab_slot_of(r, r->by_addr, false, last);
        size_t sn = tab_slot_of(r, r->by_name, true, last);
        r->mem[i] = r->mem[last];
        r->by_addr[sa] = i + 1;
        r->by_name[sn] = i + 1;
    }
    r->n--;
}

/* The unique name for a joiner: asked (if free), asked-2, asked-3... or guest-N. */
static size_t pick_name(struct room *r, const char *asked, size_t n, char out[NAME_MAX_ + 1])
{
    if (n == 0) {
        for (;;) {
            int k = snprintf(out, NAME_MAX_ + 1, "guest-%" PRIu64, ++r->guest_seq);
            if (!name_taken(r, out, (size_t)k))
                return (size_t)k;
        }
    }
    if (!name_taken(r, asked, n)) {
        memcpy(out, asked, n);
        return n;
    }
    for (uint64_t k = 2;; k++) {
        char suffix[24];
        size_t sl = (size_t)snprintf(suffix, sizeof suffix, "-%" PRIu64, k);
        size_t base = n;
        if (base + sl > NAME_MAX_) {
            base = NAME_MAX_ - sl;
            /* Cut at a character boundary: asked[base] must not continue a character. */
            while (base > 0 && ((unsigned char)asked[base] & 0xc0) == 0x80)
                base--;
        }
        memcpy(out, asked, base);
        memcpy(out + base, suffix, sl);
        if (!name_taken(r, out, base + sl))
            return base + sl;
    }
}

static void put_members(struct wjson_buf *b, const struct room *r)
{
    wjson_put(b, "[", 1);
    for (uint32_t i = 0; i < r->n; i++) {
        if (i)
            wjson_put(b, ",", 1);
        wjson_put_string(b, r->mem[i].name, r->mem[i].name_len);
    }
    wjson_put(b, "]", 1);
}

static void room_publish(struct wisp_ctx *ctx, struct room *r, struct wjson_buf *b)
{
    if (!b->failed)
        (void)wisp_publish(ctx, r->key, WISP_WS_OP_TEXT, b->data, b->len);
    wjson_buf_reset(b);
}

/* A join or leave event to everyone in the room. */
static void room_presence(struct wisp_ctx *ctx, struct room *r, const char *type,
                          const char *name, size_t name_len)
{
    struct wjson_buf b;
    wjson_buf_init(&b, 0);
    wjson_puts(&b, "{\"type\":\"");
    wjson_puts(&b, type);
    wjson_puts(&b, "\",\"name\":");
    wjson_put_string(&b, name, name_len);
    wjson_puts(&b, ",\"members\":");
    put_members(&b, r);
    wjson_puts(&b, "}");
    room_publish(ctx, r, &b);
}

static void room_stop(struct wisp_ctx *ctx, struct room *r)
{
    /* The name goes first: from here on, lookups create a new room; a JOIN already on its way
     * here is dropped with the mailbox and its connection, which monitors us, retries. */
    (void)wisp_rt_unregister(r->m->rt, r->key);
    wisp_stop(ctx, (struct wisp_exit){WISP_EXIT_NORMAL, 0});
}

static void room_emptied(struct wisp_ctx *ctx, struct room *r)
{
    if (r->n)
        return;
    if (!r->m->linger_ms) {
        room_stop(ctx, r);
        return;
    }
    r->linger_gen++;
    if (wisp_send_after(ctx, r->m->linger_ms, MSG_LINGER, &r->linger_gen, sizeof r->linger_gen,
                        &r->linger) < 0)
        room_stop(ctx, r); /* no timer: do not linger rather than live forever */
}

static void send_close(struct wisp_ctx *ctx, wisp_addr conn, uint16_t code, const char *reason)
{
    struct close_req cr = {.code = code};
    snprintf(cr.reason, sizeof cr.reason, "%s", reason);
    (void)wisp_send(ctx, conn, MSG_CLOSE, &cr, sizeof cr);
}

static void room_join(struct wisp_ctx *ctx, struct room *r, wisp_addr from,
                      const struct join_req *req)
{
    if (find_addr(r, from) >= 0)
        return; /* already in: a repeated JOIN changes nothing */
    if (r->linger) {
        (void)wisp_timer_cancel(ctx, r->linger);
        r->linger = 0;
    }
    r->linger_gen++;
    if (r->n >= r->m->max_members) {
        send_close(ctx, from, 1013, "room is full");
        room_emptied(ctx, r);
        return;
    }
    uint64_t mon;
    if (room_reserve(r) < 0 || wisp_monitor(ctx, from, &mon) < 0) {
        send_close(ctx, from, 1011, "cannot join");
        room_emptied(ctx, r);
        return;
    }
    char name[NAME_MAX_ + 1];
    size_t name_len = pick_name(r, req->name, req->name_len, name);
    uint32_t idx = room_add(r, from, mon, name, name_len);

    struct wjson_buf b;
    wjson_buf_init(&b, 0);
    wjson_puts(&b, "{\"type\":\"welcome\",\"you\":");
    wjson_put_string(&b, name, name_len);
    wjson_puts(&b, ",\"room\":");
    wjson_put_string(&b, r->room, r->room_len);
    wjson_puts(&b, ",\"members\":");
    put_members(&b, r);
    wjson_puts(&b, ",\"history\":[");
    uint32_t hcap = r->m->history;
    for (uint32_t i = 0; i < r->hist_n; i++) {
        uint32_t k = (r->head + i) % hcap;
        if (i)
            wjson_put(&b, ",", 1);
        wjson_put(&b, "{", 1);
        wjson_put(&b, r->hist[k] + MSG_PREFIX_LEN, r->hist_len[k] - MSG_PREFIX_LEN);
    }
    wjson_puts(&b, "]}");
    int rc = b.failed ? -ENOMEM
                      : wisp_subscribe_to(ctx, from, r->key, WISP_WS_OP_TEXT, b.data, b.len);
    wjson_buf_reset(&b);
    if (rc < 0) {
        /* Gone already (-ESRCH), or it cannot be subscribed: it never was a member. */
        (void)wisp_demonitor(ctx, mon);
        room_remove(r, idx);
        if (rc != -ESRCH)
            send_close(ctx, from, 1011, "cannot join");
        room_emptied(ctx, r);
        return;
    }
    room_presence(ctx, r, "join", name, name_len);
    (void)wisp_send(ctx, from, MSG_JOINED, NULL, 0);
}

static void room_say(struct wisp_ctx *ctx, struct room *r, wisp_addr from, const char *text,
                     size_t len)
{
    long i = find_addr(r, from);
    if (i < 0 || len < 2)
        return; /* not a member (it left, or never joined): nothing to say */
    const struct member *m = &r->mem[i];
    struct wjson_buf b;
    wjson_buf_init(&b, 0);
    wjson_put(&b, msg_prefix, MSG_PREFIX_LEN);
    wjson_puts(&b, "\"from\":");
    wjson_put_string(&b, m->name, m->name_len);
    wjson_puts(&b, ",\"text\":");
    wjson_put(&b, text, len); /* escaped by the connection */
    uint64_t ts = now_ms();
    if (ts < r->last_ts)
        ts = r->last_ts;
    r->last_ts = ts;
    wjson_puts(&b, ",\"ts\":");
    wjson_put_u64(&b, ts);
    wjson_puts(&b, "}");
    if (b.failed) {
        wjson_buf_reset(&b);
        return;
    }
    (void)wisp_publish(ctx, r->key, WISP_WS_OP_TEXT, b.data, b.len);
    uint32_t hcap = r->m->history;
    if (!hcap) {
        wjson_buf_reset(&b);
        return;
    }
    size_t n;
    char *entry = wjson_buf_take(&b, &n);
    uint32_t k;
    if (r->hist_n < hcap) {
        k = (r->head + r->hist_n) % hcap;
        r->hist_n++;
    } else {
        k = r->head;
        r->head = (r->head + 1) % hcap;
        free(r->hist[k]);
    }
    r->hist[k] = entry;
    r->hist_len[k] = n;
}

static void room_down(struct wisp_ctx *ctx, struct room *r, const struct wisp_down *d)
{
    long i = find_addr(r, d->who);
    if (i < 0 || r->mem[i].mon != d->monitor)
        return;
    char name[NAME_MAX_];
    size_t n = r->mem[i].name_len;
    memcpy(name, r->mem[i].name, n);
    room_remove(r, (uint32_t)i);
    room_presence(ctx, r, "leave", name, n);
    room_emptied(ctx, r);
}

static int room_init(struct wisp_ctx *ctx, void *state, const void *arg, size_t arg_len)
{
    struct room *r = state;
    const struct room_arg *a = arg;
    if (arg_len != sizeof *a || a->room_len == 0 || a->room_len > NAME_MAX_)
        return -EINVAL; /* never: only chat_join (chat.c) spawns rooms */
    struct chat_mount *m = a->m;
    r->m = m;
    memcpy(r->room, a->room, a->room_len);
    r->room_len = a->room_len;
    wispi_chat_room_key(r->key, m->id, a->room, a->room_len);
    int rc = 0;
    if (m->history) {
        r->hist = calloc(m->history, sizeof *r->hist);
        r->hist_len = calloc(m->history, sizeof *r->hist_len);
        if (!r->hist || !r->hist_len)
            rc = -ENOMEM;
    }
    /* Lost the race to create this room (-EEXIST): the connection that spawned us sees our
     * DOWN and joins the winner. */
    if (rc == 0)
        rc = wisp_rt_register(m->rt, r->key, wisp_self(ctx));
    if (rc < 0) {
        free(r->hist);
        free(r->hist_len);
        atomic_fetch_sub_explicit(&m->rooms, 1, memory_order_relaxed);
        return rc; /* terminate does not run: the name, if any, goes with the actor */
    }
    atomic_fetch_add_explicit(&m->live_rooms, 1, memory_order_relaxed);
    return 0;
}

static void room_receive(struct wisp_ctx *ctx, void *state, const struct wisp_msg *msg)
{
    struct room *r = state;
    switch (msg->type) {
    case MSG_JOIN:
        if (msg->len == sizeof(struct join_req) && !wisp_addr_is_none(msg->from)) {
            struct join_req req;
            memcpy(&req, msg->data, sizeof req);
            if (req.name_len <= NAME_MAX_)
                room_join(ctx, r, msg->from, &req);
        }
        break;
    case MSG_SAY:
        room_say(ctx, r, msg->from, msg->data, msg->len);
        break;
    case WISP_MSG_DOWN:
        if (msg->len == sizeof(struct wisp_down)) {
            struct wisp_down d;
            memcpy(&d, msg->data, sizeof d);
            room_down(ctx, r, &d);
        }
        break;
    case MSG_LINGER:
        if (msg->timer && msg->len == sizeof(uint64_t)) {
            uint64_t gen;
            memcpy(&gen, msg->data, sizeof gen);
            if (msg->timer == r->linger)
                r->linger = 0;
            if (gen == r->linger_gen && r->n == 0)
                room_stop(ctx, r);
        }
        break;
    default:
        break;
    }
}

static void room_terminate(struct wisp_ctx *ctx, void *state, struct wisp_exit reason)
{
    (void)ctx;
    (void)reason;
    struct room *r = state;
    if (r->hist) {
        uint32_t hcap = r->m->history;
        for (uint32_t i = 0; i < r->hist_n; i++)
            free(r->hist[(r->head + i) % hcap]);
    }
    free(r->hist);
    free(r->hist_len);
    free(r->mem);
    free(r->by_addr);
    free(r->by_name);
    atomic_fetch_sub_explicit(&r->m->live_rooms, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&r->m->rooms, 1, memory_order_relaxed);
}

struct wisp_actor_def wispi_chat_room_def(uint32_t mailbox_limit)
{
    return (struct wisp_actor_def){
        .name = "chat-room",
        .state_size = sizeof(struct room),
        .init = room_init,
        .receive = room_receive,
        .terminate = room_terminate,
        .mailbox_limit = mailbox_limit,
    };
}
