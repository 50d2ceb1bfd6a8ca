/* actors/chat.c: the chat module's connections and its mount (see chat.h for the protocol and
 * the design). A connection reads its room and name from the upgrade's query (chat_query.c),
 * finds or creates its room actor (chat_room.c), and passes its client's messages on to it.
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

#include <wisp/actor.h>
#include <wisp/server.h>

#include "chat_internal.h"
#include "json.h"

#define TEXT_MAX WISP_CHAT_TEXT_MAX
#define JOIN_ATTEMPTS 8
/* A client frame may hold the 4096-byte text escaped (\uXXXX is 6 bytes per byte) plus the
 * rest of the object; larger frames are refused by the route (1009). */
#define CHAT_MESSAGE_LIMIT (64u * 1024u)

static _Atomic unsigned next_mount_id;

/* ---- the connection ---------------------------------------------------------------------- */

enum conn_phase { PHASE_IDLE = 0, PHASE_WAITING, PHASE_JOINING, PHASE_JOINED, PHASE_DONE };

struct chat_conn {
    struct chat_query ask; /* room ("lobby" when not asked for) and name (0: let the room pick) */
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

static int chat_upgrade(struct wisp_conn *c, void *state, const struct wisp_upgrade *req)
{
    struct chat_conn *st = state;
    struct chat_mount *m = wisp_conn_route_data(c);
    const char *q = req->up->query;
    int status = wispi_chat_parse_query(q, q ? req->up->query_len : 0, &st->ask);
    if (status)
        return status;
    if (st->ask.room_len == 0) {
        memcpy(st->ask.room, "lobby", 5);
        st->ask.room_len = 5;
    }
    /* The early answer: every room the mount may have exists and this one is not among them.
     * Rooms still being created are not counted here (one of them may be this room); the
     * exact check comes when the connection creates its room (chat_join). */
    if (atomic_load_explicit(&m->live_rooms, memory_order_relaxed) >= m->max_rooms) {
        char key[64];
        wisp_addr a;
        wispi_chat_room_key(key, m->id, st->ask.room, st->ask.room_len);
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
    wispi_chat_room_key(key, m->id, st->ask.room, st->ask.room_len);
    struct join_req jr = {.name_len = st->ask.name_len};
    memcpy(jr.name, st->ask.name, st->ask.name_len);
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
        struct room_arg ra = {.m = m, .room_len = st->ask.room_len};
        memcpy(ra.room, st->ask.room, st->ask.room_len);
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
    m->room_def = wispi_chat_room_def(mailbox);
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
