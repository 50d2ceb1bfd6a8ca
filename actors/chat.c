/* actors/chat.c: chat rooms, one actor per room (see chat.h for the protocol and the design).
 * Written against the public headers only. */
#include "chat.h"

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
#include <wisp/server.h>

#include "json.h"

#define NAME_MAX_ WISP_CHAT_NAME_MAX
#define TEXT_MAX WISP_CHAT_TEXT_MAX
#define JOIN_ATTEMPTS 8
/* A client frame may hold the 4096-byte text escaped (\uXXXX is 6 bytes per byte) plus the
 * rest of the object; larger frames are refused by the route (1009). */
#define CHAT_MESSAGE_LIMIT (64u * 1024u)

/* Messages between connections and rooms (application range). */
enum {
    MSG_JOIN = 0x43480001u,  /* conn -> room: struct join_req */
    MSG_SAY,                 /* conn -> room: the text as a JSON string literal */
    MSG_JOINED,              /* room -> conn: no payload */
    MSG_CLOSE,               /* room -> conn: struct close_req */
    MSG_LINGER,              /* room -> itself (timer): uint64_t generation */
    MSG_RETRY,               /* conn -> itself (timer): look the room up again */
};

struct join_req {
    uint32_t name_len; /* 0: pick a guest name */
    char name[NAME_MAX_];
};

struct close_req {
    uint16_t code;
    char reason[40]; /* NUL-terminated */
};

/* ---- the mount --------------------------------------------------------------------------- */

struct chat_mount {
    struct wisp_runtime *rt;
    unsigned id;
    uint32_t history;
    uint32_t max_members;
    uint32_t max_rooms;
    uint32_t linger_ms;
    _Atomic uint32_t rooms;      /* room actors alive or being created: the exact limit */
    _Atomic uint32_t live_rooms; /* rooms registered: the upgrade's early 503 */
    struct wisp_actor_def room_def; /* per mount: carries the mailbox limit */
};

static _Atomic unsigned next_mount_id;

/* "chat/M/ROOM": the room's registry name and its topic. At most 5 + 10 + 1 + 32 bytes. */
static void room_key(char out[64], unsigned mount_id, const char *room, size_t room_len)
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

/* ---- the room actor ---------------------------------------------------------------------- */

struct member {
    wisp_addr addr;
    uint64_t mon;
    uint32_t name_len;
    char name[NAME_MAX_];
};

struct room_arg {
    struct chat_mount *m;
    uint32_t room_len;
    char room[NAME_MAX_];
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
        return -EINVAL; /* never: only chat_join spawns rooms */
    struct chat_mount *m = a->m;
    r->m = m;
    memcpy(r->room, a->room, a->room_len);
    r->room_len = a->room_len;
    room_key(r->key, m->id, a->room, a->room_len);
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

/* ---- the connection ---------------------------------------------------------------------- */

enum conn_phase { PHASE_IDLE = 0, PHASE_WAITING, PHASE_JOINING, PHASE_JOINED, PHASE_DONE };

struct chat_conn {
    char room[NAME_MAX_];
    uint32_t room_len;
    char name[NAME_MAX_];
    uint32_t name_len; /* 0: let the room pick */
    wisp_addr room_addr;
    uint64_t room_mon;
    uint8_t phase;
    uint8_t attempts;
};

static void conn_send_error(struct wisp_conn *c, const char *what)
{
    char buf[160];
    int n = snprintf(buf, sizeof buf, "{\"type\":\"error\",\"error\":\"%s\"}", what);
    if (n > 0 && (size_t)n < sizeof buf)
        (void)wisp_conn_send_text(c, buf, (size_t)n);
}

static void conn_close(struct wisp_conn *c, struct chat_conn *st, uint16_t code,
                       const char *reason)
{
    st->phase = PHASE_DONE;
    (void)wisp_conn_close(c, code, reason, strlen(reason));
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) ('+' is a space) into out[NAME_MAX_]. @return the length, or -1 for
 * a bad escape or a result over NAME_MAX_ bytes. */
static long url_decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            int hi, lo;
            if (n - i < 3 || (hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0)
                return -1;
            ch = (char)(hi << 4 | lo);
            i += 2;
        } else if (ch == '+') {
            ch = ' ';
        }
        if (o == NAME_MAX_)
            return -1;
        out[o++] = ch;
    }
    return (long)o;
}

static int chat_upgrade(struct wisp_conn *c, void *state, const struct wisp_upgrade *req)
{
    struct chat_conn *st = state;
    struct chat_mount *m = wisp_conn_route_data(c);
    const char *q = req->up->query;
    size_t qn = q ? req->up->query_len : 0;
    bool have_room = false, have_name = false;
    for (size_t i = 0; i < qn;) {
        size_t end = i;
        while (end < qn && q[end] != '&')
            end++;
        size_t eq = i;
        while (eq < end && q[eq] != '=')
            eq++;
        const char *key = q + i;
        size_t key_len = eq - i;
        const char *val = eq < end ? q + eq + 1 : q + end;
        size_t val_len = eq < end ? end - eq - 1 : 0;
        bool is_room = key_len == 4 && memcmp(key, "room", 4) == 0;
        bool is_name = key_len == 4 && memcmp(key, "name", 4) == 0;
        if (is_room || is_name) {
            if (is_room ? have_room : have_name)
                return 400; /* given twice */
            char *out = is_room ? st->room : st->name;
            long n = url_decode(val, val_len, out);
            if (n < 0 || !wjson_printable_utf8(out, (size_t)n))
                return 400;
            if (is_room) {
                st->room_len = (uint32_t)n;
                have_room = true;
            } else {
                st->name_len = (uint32_t)n;
                have_name = true;
            }
        }
        i = end + 1;
    }
    if (st->room_len == 0) {
        memcpy(st->room, "lobby", 5);
        st->room_len = 5;
    }
    /* The early answer: every room the mount may have exists and this one is not among them.
     * Rooms still being created are not counted here (one of them may be this room); the
     * exact check comes when the connection creates its room (chat_join). */
    if (atomic_load_explicit(&m->live_rooms, memory_order_relaxed) >= m->max_rooms) {
        char key[64];
        wisp_addr a;
        room_key(key, m->id, st->room, st->room_len);
        if (wisp_rt_whereis(m->rt, key, &a) < 0)
            return 503;
    }
    return 0;
}

/* Try again after a pause that doubles each time (5 ms, 10 ms... 640 ms in all ~1.3 s): a room
 * being created registers its name within moments, and one that is stopping lets go of it. */
static void chat_retry_later(struct wisp_conn *c, struct chat_conn *st, const char *reason)
{
    if (st->attempts >= JOIN_ATTEMPTS) {
        conn_close(c, st, 1013, reason);
        return;
    }
    st->phase = PHASE_WAITING;
    if (wisp_send_after(wisp_conn_ctx(c), 5u << (st->attempts - 1), MSG_RETRY, NULL, 0,
                        NULL) < 0)
        conn_close(c, st, 1011, "cannot join");
}

/* Find or create the room, monitor it, and ask it to let us in. */
static void chat_join(struct wisp_conn *c, struct chat_conn *st)
{
    struct chat_mount *m = wisp_conn_route_data(c);
    struct wisp_ctx *ctx = wisp_conn_ctx(c);
    char key[64];
    room_key(key, m->id, st->room, st->room_len);
    struct join_req jr = {.name_len = st->name_len};
    memcpy(jr.name, st->name, st->name_len);
    if (++st->attempts > JOIN_ATTEMPTS) {
        conn_close(c, st, 1013, "try again later");
        return;
    }
    wisp_addr room;
    if (wisp_rt_whereis(m->rt, key, &room) < 0) {
        if (atomic_fetch_add_explicit(&m->rooms, 1, memory_order_relaxed) >= m->max_rooms) {
            /* At the limit; perhaps because this very room is being created by another
             * connection right now: look again in a moment before giving up. */
            atomic_fetch_sub_explicit(&m->rooms, 1, memory_order_relaxed);
            chat_retry_later(c, st, "too many rooms");
            return;
        }
        struct room_arg ra = {.m = m, .room_len = st->room_len};
        memcpy(ra.room, st->room, st->room_len);
        int rc = wisp_spawn(ctx, &m->room_def, &ra, sizeof ra, &room);
        if (rc < 0) {
            atomic_fetch_sub_explicit(&m->rooms, 1, memory_order_relaxed);
            if (rc == WISP_ECLOSED)
                st->phase = PHASE_DONE; /* shutting down: the 1001 close is coming */
            else
                conn_close(c, st, 1011, "cannot create the room");
            return;
        }
        /* From here the room owns the count (its init or terminate gives it back). */
    }
    uint64_t mon;
    if (wisp_monitor(ctx, room, &mon) < 0) {
        conn_close(c, st, 1011, "cannot join");
        return;
    }
    int rc = wisp_send(ctx, room, MSG_JOIN, &jr, sizeof jr);
    if (rc >= 0) {
        st->room_addr = room;
        st->room_mon = mon;
        st->phase = PHASE_JOINING;
        return;
    }
    (void)wisp_demonitor(ctx, mon);
    if (rc == -ESRCH) /* it died after the lookup, its name not yet gone: look again soon */
        chat_retry_later(c, st, "try again later");
    else if (rc == WISP_ECLOSED)
        st->phase = PHASE_DONE;
    else
        conn_close(c, st, 1011, "cannot join");
}

static void chat_open(struct wisp_conn *c, void *state)
{
    chat_join(c, state);
}

static void chat_info(struct wisp_conn *c, void *state, const struct wisp_msg *msg)
{
    struct chat_conn *st = state;
    switch (msg->type) {
    case WISP_MSG_DOWN: {
        if (msg->len != sizeof(struct wisp_down))
            return;
        struct wisp_down d;
        memcpy(&d, msg->data, sizeof d);
        if (d.monitor != st->room_mon || !st->room_mon)
            return;
        st->room_mon = 0;
        st->room_addr = WISP_ADDR_NONE;
        if (d.reason.kind == WISP_EXIT_SHUTDOWN) {
            st->phase = PHASE_DONE; /* the server is stopping: its 1001 close follows */
            return;
        }
        if (st->phase == PHASE_JOINING)
            chat_join(c, st); /* it stopped before letting us in: find the room again */
        else if (st->phase == PHASE_JOINED)
            conn_close(c, st, 1011, "room failed");
        return;
    }
    case MSG_RETRY:
        if (msg->timer && st->phase == PHASE_WAITING)
            chat_join(c, st);
        return;
    case MSG_JOINED:
        if (st->phase == PHASE_JOINING && wisp_addr_eq(msg->from, st->room_addr)) {
            st->phase = PHASE_JOINED;
            st->attempts = 0;
        }
        return;
    case MSG_CLOSE:
        if (msg->len == sizeof(struct close_req) && wisp_addr_eq(msg->from, st->room_addr)) {
            struct close_req cr;
            memcpy(&cr, msg->data, sizeof cr);
            cr.reason[sizeof cr.reason - 1] = '\0';
            conn_close(c, st, cr.code, cr.reason);
        }
        return;
    default:
        return;
    }
}

static void chat_text(struct wisp_conn *c, void *state, const char *data, size_t len)
{
    struct chat_conn *st = state;
    char type[16];
    char *text = malloc(TEXT_MAX + 1);
    if (!text) {
        conn_send_error(c, "out of memory");
        return;
    }
    struct wjson_field f[2] = {
        {.key = "type", .out = type, .cap = sizeof type},
        {.key = "text", .out = text, .cap = TEXT_MAX + 1},
    };
    int rc = wjson_get_fields(data, len, f, 2);
    const char *err = NULL;
    if (rc == WJSON_ESYNTAX || f[0].error == WJSON_EDUP || f[1].error == WJSON_EDUP)
        err = "invalid JSON";
    else if (f[0].error == WJSON_ETOOLONG)
        err = "unknown type";
    else if (!f[0].found)
        err = "missing type";
    else if (strcmp(type, "message") != 0 || f[0].len != 7)
        err = "unknown type";
    else if (f[1].error == WJSON_ETOOLONG)
        err = "text too long (max 4096 bytes)";
    else if (!f[1].found)
        err = "missing text";
    else if (f[1].len == 0)
        err = "empty text";
    else if (st->phase != PHASE_JOINING && st->phase != PHASE_JOINED)
        err = "not in a room";
    if (!err) {
        struct wjson_buf b;
        wjson_buf_init(&b, 0);
        wjson_put_string(&b, text, f[1].len);
        if (b.failed) {
            err = "out of memory";
        } else {
            rc = wisp_try_send(wisp_conn_ctx(c), st->room_addr, MSG_SAY, b.data, b.len);
            if (rc == WISP_EFULL)
                err = "room busy, message dropped";
            else if (rc < 0 && rc != -ESRCH) /* -ESRCH: the room died, its DOWN is coming */
                err = "message dropped";
        }
        wjson_buf_reset(&b);
    }
    free(text);
    if (err)
        conn_send_error(c, err);
}

static void chat_binary(struct wisp_conn *c, void *state, const uint8_t *data, size_t len)
{
    (void)state;
    (void)data;
    (void)len;
    conn_send_error(c, "binary messages are not supported");
}

static const struct wisp_handler chat_handler = {
    .state_size = sizeof(struct chat_conn),
    .on_upgrade = chat_upgrade,
    .on_open = chat_open,
    .on_text = chat_text,
    .on_binary = chat_binary,
    .on_info = chat_info,
};

/* ---- mounting ---------------------------------------------------------------------------- */

static bool parse_u32(const char *s, size_t n, uint32_t min, uint32_t max, uint32_t *out)
{
    if (n == 0 || n > 10)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v < min || v > max)
        return false;
    *out = (uint32_t)v;
    return true;
}

struct setting {
    const char *key;
    uint32_t min, max;
    size_t offset; /* of the uint32_t in struct chat_mount, or SIZE_MAX: the mailbox */
};

static int chat_mount_fn(struct wisp_runtime *rt, struct wisp_route *r, const char *arg,
                         void **instance)
{
    struct chat_mount *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->rt = rt;
    m->id = atomic_fetch_add(&next_mount_id, 1);
    m->history = 50;
    m->max_members = 10000;
    m->max_rooms = 10000;
    m->linger_ms = 30000;
    uint32_t mailbox = 10000;
    static const struct setting settings[] = {
        {"history", 0, 1000, offsetof(struct chat_mount, history)},
        {"max_members", 1, 100000, offsetof(struct chat_mount, max_members)},
        {"max_rooms", 1, 1000000, offsetof(struct chat_mount, max_rooms)},
        {"linger", 0, 86400000, offsetof(struct chat_mount, linger_ms)},
        {"mailbox", 16, 1000000, SIZE_MAX},
    };
    for (const char *p = arg; p && *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        const struct setting *s = NULL;
        for (size_t i = 0; eq && i < sizeof settings / sizeof settings[0]; i++) {
            size_t kl = (size_t)(eq - p);
            if (strlen(settings[i].key) == kl && memcmp(settings[i].key, p, kl) == 0)
                s = &settings[i];
        }
        if (!s) {
            fprintf(stderr, "chat: bad setting '%.*s' in '%s' (expected history=N, "
                    "max_members=N, max_rooms=N, linger=MS or mailbox=N, separated by "
                    "commas)\n", (int)n, p, arg);
            free(m);
            return -EINVAL;
        }
        uint32_t *dst = s->offset == SIZE_MAX ? &mailbox
                                              : (uint32_t *)(void *)((char *)m + s->offset);
        if (!parse_u32(eq + 1, n - (size_t)(eq - p) - 1, s->min, s->max, dst)) {
            fprintf(stderr, "chat: '%.*s': %s must be a whole number from %" PRIu32 " to %"
                    PRIu32 "\n", (int)n, p, s->key, s->min, s->max);
            free(m);
            return -EINVAL;
        }
        if (end && !end[1]) {
            fprintf(stderr, "chat: trailing ',' in '%s'\n", arg);
            free(m);
            return -EINVAL;
        }
        p = end ? end + 1 : p + n;
    }
    m->room_def = (struct wisp_actor_def){
        .name = "chat-room",
        .state_size = sizeof(struct room),
        .init = room_init,
        .receive = room_receive,
        .terminate = room_terminate,
        .mailbox_limit = mailbox,
    };
    r->handler = &chat_handler;
    r->data = m;
    if (r->max_message_size > CHAT_MESSAGE_LIMIT || r->max_message_size == 0)
        r->max_message_size = CHAT_MESSAGE_LIMIT;
    if (r->max_frame_size > CHAT_MESSAGE_LIMIT || r->max_frame_size == 0)
        r->max_frame_size = CHAT_MESSAGE_LIMIT;
    *instance = m;
    return 0;
}

static void chat_unmount(void *instance)
{
    free(instance);
}

const struct wisp_module wisp_chat_module = {
    .abi_version = WISP_MODULE_ABI_VERSION,
    .struct_size = sizeof(struct wisp_module),
    .name = "chat",
    .description = "chat rooms: /PATH?room=R&name=N, JSON messages, presence and history",
    .mount = chat_mount_fn,
    .unmount = chat_unmount,
};
