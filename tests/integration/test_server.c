/* wisp-test-server: the WebSocket server the Python integration tests talk to.
 *
 * Uses only the public API. Prints exactly one line, `listening on 127.0.0.1:PORT`, once the
 * listener is bound, runs until SIGINT/SIGTERM (the runtime's handle_signals), and exits 0 after
 * the graceful shutdown. Routes:
 *
 *   /echo    echoes text and binary messages
 *   /reject  refuses the upgrade with 403 unless the request has `X-Allow: yes`; then echoes
 *   /proto   protocols {"superchat", "chat"}; on_upgrade picks "special" when offered (and adds
 *            `X-Wisp-Test: 1`); every text message is answered with the chosen protocol
 *            ("(none)" when there is none)
 *   /slow    sleeps 20 ms per message, then echoes it (a slow actor)
 *   /flood   on text "go N SIZE" sends N binary messages of SIZE bytes, pausing on
 *            WISP_SEND_PRESSURE until on_unthrottled, then sends text "done SENT DROPPED";
 *            "blast N SIZE" sends all N ignoring pressure (drops counted, no "done")
 *   /chat    one room actor: members get every other member's text messages; a member gets
 *            "*joined" once the room has registered it
 *   /hooks   on_frame drops text starting "drop" and replaces text starting "alter" with
 *            "altered"; on_send_frame drops outgoing text starting "secret"; echoes the rest
 *   /ref     on text "ref N" sends N bytes of a fixed pattern with wisp_conn_send_ref (no
 *            copy); /stats counts the releases
 *   /stats   HTTP only: JSON counters (also "port6": the [::1] listener's port, or 0, and
 *            "tls_port": the TLS listener's, with --cert/--key, or 0)
 *   /health  HTTP only: 200 "ok"
 *   /ps, /ps-close, /ps-drop, /pstats: topics, broadcast and emit (pubsub_routes.c)
 *
 * Options: --port N (0: a free port), --workers N, --max-msg BYTES (frame and message limit of
 * every route), --send-cap/--high/--low BYTES (for /flood), --echo-cap BYTES (send cap of
 * /echo), --idle-ms, --pong-ms, --handshake-ms, --close-ms, --max-conns, --max-head,
 * --shutdown-ms, --slow-ms, --slow-mailbox N; TLS: --cert FILE --key FILE [--sni-name NAME
 * --sni-cert FILE --sni-key FILE] [--client-ca FILE --require-client-cert 0|1]
 * [--max-handshakes N] [--tls12-only 1] (through the SSL_CTX configure hook).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include <wisp/wisp.h>
#include <wisp/server.h>

#include "pubsub_routes.h"

/* ---- counters ------------------------------------------------------------------------------
 * Updated by connection callbacks on every worker and read by /stats on any worker. Every one is
 * an independent statistic: no other memory is published through them and no decision reads two
 * of them together, so relaxed order is enough for each (atomicity alone makes the increments
 * exact, and the tests poll /stats until the value they wait for appears, which needs eventual
 * visibility only). */

#define WHY_SLOTS  16
#define CODE_SLOTS 5000
#define BY_SLOTS   4

static struct {
    atomic_uint_fast64_t opened;         /* relaxed: independent statistic (see above) */
    atomic_uint_fast64_t closed;         /* relaxed: independent statistic */
    atomic_uint_fast64_t throttled;      /* relaxed: independent statistic */
    atomic_uint_fast64_t unthrottled;    /* relaxed: independent statistic */
    atomic_uint_fast64_t dropped;        /* relaxed: independent statistic */
    atomic_uint_fast64_t shutdown_calls; /* relaxed: independent statistic */
    atomic_uint_fast64_t released;       /* relaxed: independent statistic */
    /* relaxed: a monotonic maximum kept with a CAS loop; the CAS makes it exact whatever the
     * order, and nothing else is read with it */
    atomic_uint_fast64_t max_buffered;
    atomic_uint_fast64_t by_why[WHY_SLOTS]; /* relaxed: independent statistics */
    atomic_uint_fast64_t codes[CODE_SLOTS]; /* relaxed: independent statistics */
    atomic_uint_fast64_t by[BY_SLOTS];      /* relaxed: independent statistics */
} g_stats;

static void count(atomic_uint_fast64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static uint64_t get(atomic_uint_fast64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static void note_buffered(size_t n)
{
    uint_fast64_t cur = atomic_load_explicit(&g_stats.max_buffered, memory_order_relaxed);
    while (n > cur &&
           !atomic_compare_exchange_weak_explicit(&g_stats.max_buffered, &cur, n,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

/* ---- settings ------------------------------------------------------------------------------
 * Written by main() before the runtime starts its workers and never after: thread creation
 * orders these writes before every read on a worker. */

static unsigned g_slow_ms = 20;
static size_t g_flood_high; /* /flood's high watermark */
static wisp_addr g_room;    /* the chat room actor, spawned before the runtime runs */

/* ---- callbacks every WebSocket route shares ------------------------------------------------ */

static void common_open(struct wisp_conn *c, void *st)
{
    count(&g_stats.opened);
}

static void common_closed(struct wisp_conn *c, void *st, const struct wisp_close_info *info)
{
    count(&g_stats.closed);
    count(&g_stats.by_why[(unsigned)info->why < WHY_SLOTS ? (unsigned)info->why : 0]);
    count(&g_stats.codes[info->code < CODE_SLOTS ? info->code : 0]);
    count(&g_stats.by[(unsigned)info->by < BY_SLOTS ? (unsigned)info->by : 0]);
}

static void common_shutdown(struct wisp_conn *c, void *st)
{
    count(&g_stats.shutdown_calls);
}

static void common_throttled(struct wisp_conn *c, void *st, size_t buffered)
{
    count(&g_stats.throttled);
    note_buffered(buffered);
}

static void common_unthrottled(struct wisp_conn *c, void *st, size_t buffered)
{
    count(&g_stats.unthrottled);
}

/* ---- /echo --------------------------------------------------------------------------------- */

static void echo_text(struct wisp_conn *c, void *st, const char *p, size_t n)
{
    note_buffered(wisp_conn_buffered(c));
    int r = wisp_conn_send_text(c, p, n);
    if (r < 0 && r != WISP_ECLOSED)
        fprintf(stderr, "wisp-test-server: echo send_text(%zu): %s\n", n, wisp_strerror(r));
    note_buffered(wisp_conn_buffered(c));
}

static void echo_binary(struct wisp_conn *c, void *st, const uint8_t *p, size_t n)
{
    int r = wisp_conn_send_binary(c, p, n);
    if (r < 0 && r != WISP_ECLOSED)
        fprintf(stderr, "wisp-test-server: echo send_binary(%zu): %s\n", n, wisp_strerror(r));
    note_buffered(wisp_conn_buffered(c));
}

static const struct wisp_handler echo_handler = {
    .on_open = common_open,
    .on_text = echo_text,
    .on_binary = echo_binary,
    .on_closed = common_closed,
    .on_shutdown = common_shutdown,
    .on_throttled = common_throttled,
    .on_unthrottled = common_unthrottled,
};

/* ---- /reject ------------------------------------------------------------------------------- */

static int reject_upgrade(struct wisp_conn *c, void *st, const struct wisp_upgrade *req)
{
    const struct wisp_http_header *h =
        wisp_http_header_find(req->up->headers, req->up->num_headers, "x-allow", NULL);
    if (h != NULL && h->value_len == 3 && memcmp(h->value, "yes", 3) == 0)
        return 0;
    return 403;
}

static const struct wisp_handler reject_handler = {
    .on_upgrade = reject_upgrade,
    .on_open = common_open,
    .on_text = echo_text,
    .on_binary = echo_binary,
    .on_closed = common_closed,
    .on_shutdown = common_shutdown,
};

/* ---- /proto -------------------------------------------------------------------------------- */

static const char *const proto_list[] = {"superchat", "chat"};

static int proto_upgrade(struct wisp_conn *c, void *st, const struct wisp_upgrade *req)
{
    if (wisp_ws_upgrade_offers(req->up, "special", strlen("special"))) {
        int r = wisp_conn_accept_protocol(c, "special");
        if (r < 0) {
            fprintf(stderr, "wisp-test-server: accept_protocol: %s\n", wisp_strerror(r));
            return 500;
        }
        r = wisp_conn_add_header(c, "X-Wisp-Test", "1");
        if (r < 0) {
            fprintf(stderr, "wisp-test-server: add_header: %s\n", wisp_strerror(r));
            return 500;
        }
    }
    return 0;
}

static void proto_text(struct wisp_conn *c, void *st, const char *p, size_t n)
{
    const char *proto = wisp_conn_protocol(c);
    if (proto == NULL)
        proto = "(none)";
    wisp_conn_send_text(c, proto, strlen(proto));
}

static const struct wisp_handler proto_handler = {
    .on_upgrade = proto_upgrade,
    .on_open = common_open,
    .on_text = proto_text,
    .on_closed = common_closed,
    .on_shutdown = common_shutdown,
};

/* ---- /slow --------------------------------------------------------------------------------- */

static void slow_text(struct wisp_conn *c, void *st, const char *p, size_t n)
{
    usleep(g_slow_ms * 1000u);
    echo_text(c, st, p, n);
}

static void slow_binary(struct wisp_conn *c, void *st, const uint8_t *p, size_t n)
{
    usleep(g_slow_ms * 1000u);
    echo_binary(c, st, p, n);
}

static const struct wisp_handler slow_handler = {
    .on_open = common_open,
    .on_text = slow_text,
    .on_binary = slow_binary,
    .on_closed = common_closed,
    .on_shutdown = common_shutdown,
    .on_throttled = common_throttled,
    .on_unthrottled = common_unthrottled,
};

/* ---- /flood -------------------------------------------------------------------------------- */

#define FLOOD_MAX_SIZE (1u << 20)
/* Filled by main() before the workers start; read-only afterwards. */
static uint8_t g_flood_buf[FLOOD_MAX_SIZE];

struct flood {
    uint64_t remaining;
    uint64_t sent;
    uint64_t dropped;
    size_t size;
    bool waiting; /* paused on pressure until on_unthrottled */
    bool blast;   /* ignore pressure */
};

static void flood_pump(struct wisp_conn *c, struct flood *f)
{
    while (f->remaining > 0) {
        int r = wisp_conn_send_binary(c, g_flood_buf, f->size);
        note_buffered(wisp_conn_buffered(c));
        if (r == 0) {
            f->remaining--;
            f->sent++;
        } else if (r == WISP_SEND_PRESSURE) {
            f->remaining--;
            f->sent++;
            if (!f->blast) {
                f->waiting = true;
                return;
            }
        } else if (r == WISP_EFULL) {
            count(&g_stats.dropped);
            f->remaining--;
            f->dropped++;
            /* Wait only if an on_unthrottled can come (we are at the high watermark). */
            if (!f->blast && wisp_conn_buffered(c) >= g_flood_high) {
                f->waiting = true;
                return;
            }
        } else {
            if (r != WISP_ECLOSED)
                fprintf(stderr, "wisp-test-server: flood send: %s\n", wisp_strerror(r));
            f->remaining = 0;
            return;
        }
    }
    if (!f->blast) {
        char msg[64];
        int n = snprintf(msg, sizeof msg, "done %" PRIu64 " %" PRIu64, f->sent, f->dropped);
        wisp_conn_send_text(c, msg, (size_t)n);
    }
}

static void flood_text(struct wisp_conn *c, void *st, const char *p, size_t n)
{
    struct flood *f = st;
    char cmd[64];
    if (n >= sizeof cmd)
        return;
    memcpy(cmd, p, n);
    cmd[n] = '\0';
    char verb[16];
    unsigned long long num, size;
    if (sscanf(cmd, "%15s %llu %llu", verb, &num, &size) != 3 || size > FLOOD_MAX_SIZE)
        return;
    f->blast = strcmp(verb, "blast") == 0;
    if (!f->blast && strcmp(verb, "go") != 0)
        return;
    f->remaining = num;
    f->size = (size_t)size;
    f->sent = 0;
    f->dropped = 0;
    f->waiting = false;
    flood_pump(c, f);
}

static void flood_unthrottled(struct wisp_conn *c, void *st, size_t buffered)
{
    struct flood *f = st;
    common_unthrottled(c, st, buffered);
    if (f->waiting) {
        f->waiting = false;
        flood_pump(c, f);
    }
}

static const struct wisp_handler flood_handler = {
    .state_size = sizeof(struct flood),
    .on_open = common_open,
    .on_text = flood_text,
    .on_closed = common_closed,
    .on_shutdown = common_shutdown,
    .on_throttled = common_throttled,
    .on_unthrottled = flood_unthrottled,
};

/* ---- /hooks and /ref ------------------------------------------------------------------------ */

static uint8_t g_altered[] = "altered";

static bool starts(const uint8_t *p, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && memcmp(p, prefix, k) == 0;
}

static int hooks_frame(struct wisp_conn *c, void *st, struct wisp_frame *f)
{
    if (f->opcode != WISP_WS_OP_TEXT || !f->first)
        return WISP_FRAME_PASS;
    if (starts(f->data, f->len, "drop"))
        return WISP_FRAME_DROP;
    if (starts(f->data, f->len, "alter")) {
        f->data = g_altered;
        f->len = sizeof g_altered - 1;
    }
    return WISP_FRAME_PASS;
}

static int hooks_send_frame(struct wisp_conn *c, void *st, struct wisp_frame *f)
{
    return f->opcode == WISP_WS_OP_TEXT && starts(f->data, f->len, "secret") ? WISP_FRAME_DROP
                                                                           : WISP_FRAME_PASS;
}

static void hooks_text(struct wisp_conn *c, void *st, const char *p, size_t n)
{
    wisp_conn_send_text(c, p, n);
}

static const struct wisp_handler hooks_handler = {
    .on_open = common_open,
    .on_text = hooks_text,
    .on_closed = common_closed,
    .on_shutdown = common_shutdown,
    .on_frame = hooks_frame,
    .on_send_frame = hooks_send_frame,
};

#define REF_MAX (4u << 20)
/* Filled by main() before the workers start; read-only afterwards. */
static uint8_t g_ref_buf[REF_MAX];

static void ref_released(void *data, size_t len, void *arg)
{
    count(&g_stats.released);
}

static void ref_text(struct wisp_conn *c, void *st, const char *p, size_t n)
{
    char cmd[32];
    unsigned long len;
    if (n >= sizeof cmd)
        return;
    memcpy(cmd, p, n);
    cmd[n] = '\0';
    if (sscanf(cmd, "ref %lu", &len) != 1 || len > REF_MAX)
        return;
    int rc = wisp_conn_send_ref(c, WISP_WS_OP_BINARY, g_ref_buf, len, ref_released, NULL);
    if (rc < 0)
        fprintf(stderr, "wisp-test-server: send_ref: %s\n", wisp_strerror(rc));
}

static const struct wisp_handler ref_handler = {
    .on_open = common_open,
    .on_text = ref_text,
    .on_closed = common_closed,
    .on_shutdown = common_shutdown,
};

/* ---- /chat --------------------------------------------------------------------------------- */

enum { ROOM_JOIN = 1, ROOM_LEAVE, ROOM_SAY };

struct room {
    wisp_addr *members;
    size_t n, cap;
};

static void room_receive(struct wisp_ctx *ctx, void *state, const struct wisp_msg *msg)
{
    struct room *rm = state;
    wisp_addr who;
    if (msg->len < sizeof who)
        return;
    memcpy(&who, msg->data, sizeof who);
    switch (msg->type) {
    case ROOM_JOIN:
        if (rm->n == rm->cap) {
            size_t cap = rm->cap ? rm->cap * 2 : 16;
            wisp_addr *m = realloc(rm->members, cap * sizeof *m);
            if (m == NULL)
                return;
            rm->members = m;
            rm->cap = cap;
        }
        rm->members[rm->n++] = who;
        wisp_conn_send_to(ctx, who, WISP_WS_OP_TEXT, "*joined", strlen("*joined"));
        break;
    case ROOM_LEAVE:
        for (size_t i = 0; i < rm->n; i++) {
            if (wisp_addr_eq(rm->members[i], who)) {
                rm->members[i] = rm->members[--rm->n];
                break;
            }
        }
        break;
    case ROOM_SAY: {
        const uint8_t *text = (const uint8_t *)msg->data + sizeof who;
        size_t len = msg->len - sizeof who;
        for (size_t i = 0; i < rm->n; i++) {
            if (wisp_addr_eq(rm->members[i], who))
                continue;
            int r = wisp_conn_send_to(ctx, rm->members[i], WISP_WS_OP_TEXT, text, len);
            if (r < 0 && r != -ESRCH)
                fprintf(stderr, "wisp-test-server: room send_to: %s\n", wisp_strerror(r));
        }
        break;
    }
    default:
        break;
    }
}

static void room_terminate(struct wisp_ctx *ctx, void *state, struct wisp_exit reason)
{
    struct room *rm = state;
    free(rm->members);
}

static const struct wisp_actor_def room_def = {
    .name = "chat-room",
    .state_size = sizeof(struct room),
    .receive = room_receive,
    .terminate = room_terminate,
};

static void chat_open(struct wisp_conn *c, void *st)
{
    common_open(c, st);
    wisp_addr me = wisp_conn_addr(c);
    wisp_send(wisp_conn_ctx(c), g_room, ROOM_JOIN, &me, sizeof me);
}

static void chat_text(struct wisp_conn *c, void *st, const char *p, size_t n)
{
    wisp_addr me = wisp_conn_addr(c);
    uint8_t *buf = malloc(sizeof me + n);
    if (buf == NULL)
        return;
    memcpy(buf, &me, sizeof me);
    memcpy(buf + sizeof me, p, n);
    int r = wisp_send(wisp_conn_ctx(c), g_room, ROOM_SAY, buf, sizeof me + n);
    if (r < 0)
        fprintf(stderr, "wisp-test-server: chat send: %s\n", wisp_strerror(r));
    free(buf);
}

static void chat_closed(struct wisp_conn *c, void *st, const struct wisp_close_info *info)
{
    common_closed(c, st, info);
    wisp_addr me = wisp_conn_addr(c);
    wisp_send(wisp_conn_ctx(c), g_room, ROOM_LEAVE, &me, sizeof me); /* -ESRCH at shutdown */
}

static const struct wisp_handler chat_handler = {
    .on_open = chat_open,
    .on_text = chat_text,
    .on_closed = chat_closed,
    .on_shutdown = common_shutdown,
};

/* ---- /stats and /health -------------------------------------------------------------------- */

struct jbuf {
    char *p;
    size_t len, cap;
};

static void jprintf(struct jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void jprintf(struct jbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (b->p != NULL && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 1024;
        while (cap - b->len <= (size_t)n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL)
            return;
        b->p = p;
        b->cap = cap;
    }
}

/* A JSON string literal for s (the why names are plain English, but escape anyway). */
static void jstring(struct jbuf *b, const char *s)
{
    jprintf(b, "\"");
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            jprintf(b, "\\%c", ch);
        else if (ch < 0x20)
            jprintf(b, "\\u%04x", ch);
        else
            jprintf(b, "%c", ch);
    }
    jprintf(b, "\"");
}

static void release_free(void *data, size_t len, void *arg)
{
    free(data);
}

/* Written by main() before the runtime runs; read-only afterwards. */
static uint16_t g_port6, g_tls_port;

static int stats_http(void *data, const struct wisp_http_request *req, const struct sockaddr *peer,
                      struct wisp_http_reply *reply)
{
    struct jbuf b = {0};
    jprintf(&b,
            "{\"opened\": %" PRIu64 ", \"closed\": %" PRIu64 ", \"throttled\": %" PRIu64
            ", \"unthrottled\": %" PRIu64 ", \"dropped\": %" PRIu64 ", \"max_buffered\": %" PRIu64
            ", \"shutdown_calls\": %" PRIu64 ", \"released\": %" PRIu64 ", \"port6\": %u",
            get(&g_stats.opened), get(&g_stats.closed), get(&g_stats.throttled),
            get(&g_stats.unthrottled), get(&g_stats.dropped), get(&g_stats.max_buffered),
            get(&g_stats.shutdown_calls), get(&g_stats.released), (unsigned)g_port6);
    jprintf(&b, ", \"tls_port\": %u", (unsigned)g_tls_port);
    /* by why: keyed by wisp_close_why_str(), and by the enum's number (closed_why_ids) */
    jprintf(&b, ", \"closed_by_why\": {");
    const char *sep = "";
    for (unsigned i = 0; i <= WISP_WHY_IO_ERROR; i++) {
        uint64_t v = get(&g_stats.by_why[i]);
        if (v == 0)
            continue;
        jprintf(&b, "%s", sep);
        jstring(&b, wisp_close_why_str((enum wisp_close_why)i));
        jprintf(&b, ": %" PRIu64, v);
        sep = ", ";
    }
    jprintf(&b, "}, \"closed_why_ids\": {");
    sep = "";
    for (unsigned i = 0; i < WHY_SLOTS; i++) {
        uint64_t v = get(&g_stats.by_why[i]);
        if (v != 0) {
            jprintf(&b, "%s\"%u\": %" PRIu64, sep, i, v);
            sep = ", ";
        }
    }
    jprintf(&b, "}, \"closed_codes\": {");
    sep = "";
    for (unsigned i = 0; i < CODE_SLOTS; i++) {
        uint64_t v = get(&g_stats.codes[i]);
        if (v != 0) {
            jprintf(&b, "%s\"%u\": %" PRIu64, sep, i, v);
            sep = ", ";
        }
    }
    jprintf(&b, "}, \"closed_by\": {");
    static const char *const by_names[BY_SLOTS] = {"unknown", "peer", "local", "library"};
    sep = "";
    for (unsigned i = 0; i < BY_SLOTS; i++) {
        uint64_t v = get(&g_stats.by[i]);
        if (v != 0) {
            jprintf(&b, "%s\"%s\": %" PRIu64, sep, by_names[i], v);
            sep = ", ";
        }
    }
    jprintf(&b, "}}\n");
    if (b.p == NULL)
        return 500;
    reply->answer.status = 200;
    reply->answer.content_type = "application/json";
    reply->answer.body = b.p;
    reply->answer.body_len = b.len;
    reply->release = release_free;
    reply->release_arg = NULL;
    return 0;
}

static int health_http(void *data, const struct wisp_http_request *req, const struct sockaddr *peer,
                       struct wisp_http_reply *reply)
{
    reply->answer.status = 200;
    reply->answer.content_type = "text/plain";
    reply->answer.body = "ok";
    reply->answer.body_len = 2;
    return 0;
}

/* ---- signals before the runtime runs ---------------------------------------------------------
 * handle_signals installs the runtime's handlers when wisp_runtime_run() starts, but the tests
 * may send SIGTERM as soon as they read the listening line, printed just before. Until run()
 * replaces it, this handler does what the runtime's does: wisp_runtime_stop() is
 * async-signal-safe. g_rt is set before the handler is installed and never changes after. */

static struct wisp_runtime *g_rt;

static void early_signal(int sig)
{
    wisp_runtime_stop(g_rt);
}

static void install_early_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = early_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* ---- main ---------------------------------------------------------------------------------- */

struct opts {
    unsigned long port, workers;
    unsigned long max_msg;
    unsigned long send_cap, high, low, echo_cap;
    unsigned long idle_ms, pong_ms, handshake_ms, close_ms, max_conns, max_head, shutdown_ms;
    unsigned long slow_ms, slow_mailbox;
    /* which of the optional ones were given */
    bool has_idle, has_pong, has_handshake, has_close, has_max_conns, has_max_head, has_shutdown;
};

static void usage(void)
{
    fprintf(stderr, "usage: wisp-test-server [--port N] [--workers N] [--max-msg BYTES]\n"
                    "         [--send-cap BYTES] [--high BYTES] [--low BYTES] [--echo-cap BYTES]\n"
                    "         [--idle-ms MS] [--pong-ms MS] [--handshake-ms MS] [--close-ms MS]\n"
                    "         [--max-conns N] [--max-head BYTES] [--shutdown-ms MS]\n"
                    "         [--slow-ms MS] [--slow-mailbox N]\n");
    exit(2);
}

static unsigned long parse_num(const char *opt, const char *s)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-') {
        fprintf(stderr, "wisp-test-server: %s: not a number: %s\n", opt, s);
        exit(2);
    }
    return v;
}

/* TLS options (strings, so not in struct opts' numbers). */
static const char *g_cert, *g_key, *g_client_ca, *g_sni_name, *g_sni_cert, *g_sni_key;
static unsigned long g_require_client_cert, g_max_handshakes, g_tls12_only;

/* The SSL_CTX hook (--tls12-only 1): cap the protocol at TLS 1.2. */
static int tls12_only(void *ssl_ctx, void *arg)
{
    (void)arg;
    return SSL_CTX_set_max_proto_version((SSL_CTX *)ssl_ctx, TLS1_2_VERSION) == 1 ? 0 : -1;
}

static bool tls_arg(const char *a, const char *v)
{
    const char **slot = strcmp(a, "--cert") == 0        ? &g_cert
                        : strcmp(a, "--key") == 0       ? &g_key
                        : strcmp(a, "--client-ca") == 0 ? &g_client_ca
                        : strcmp(a, "--sni-name") == 0  ? &g_sni_name
                        : strcmp(a, "--sni-cert") == 0  ? &g_sni_cert
                        : strcmp(a, "--sni-key") == 0   ? &g_sni_key
                                                        : NULL;
    if (slot)
        *slot = v;
    else if (strcmp(a, "--require-client-cert") == 0)
        g_require_client_cert = parse_num(a, v);
    else if (strcmp(a, "--max-handshakes") == 0)
        g_max_handshakes = parse_num(a, v);
    else if (strcmp(a, "--tls12-only") == 0)
        g_tls12_only = parse_num(a, v);
    else
        return false;
    return true;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            usage();
        if (tls_arg(a, argv[i + 1])) {
            i++;
            continue;
        }
        unsigned long v = parse_num(a, argv[++i]);
        if (strcmp(a, "--port") == 0 && v <= 65535)
            o->port = v;
        else if (strcmp(a, "--workers") == 0)
            o->workers = v;
        else if (strcmp(a, "--max-msg") == 0)
            o->max_msg = v;
        else if (strcmp(a, "--send-cap") == 0)
            o->send_cap = v;
        else if (strcmp(a, "--high") == 0)
            o->high = v;
        else if (strcmp(a, "--low") == 0)
            o->low = v;
        else if (strcmp(a, "--echo-cap") == 0)
            o->echo_cap = v;
        else if (strcmp(a, "--idle-ms") == 0)
            o->idle_ms = v, o->has_idle = true;
        else if (strcmp(a, "--pong-ms") == 0)
            o->pong_ms = v, o->has_pong = true;
        else if (strcmp(a, "--handshake-ms") == 0)
            o->handshake_ms = v, o->has_handshake = true;
        else if (strcmp(a, "--close-ms") == 0)
            o->close_ms = v, o->has_close = true;
        else if (strcmp(a, "--max-conns") == 0)
            o->max_conns = v, o->has_max_conns = true;
        else if (strcmp(a, "--max-head") == 0)
            o->max_head = v, o->has_max_head = true;
        else if (strcmp(a, "--shutdown-ms") == 0)
            o->shutdown_ms = v, o->has_shutdown = true;
        else if (strcmp(a, "--slow-ms") == 0)
            o->slow_ms = v;
        else if (strcmp(a, "--slow-mailbox") == 0)
            o->slow_mailbox = v;
        else
            usage();
    }
}

static int add_route(struct wisp_server *srv, struct wisp_route *r)
{
    int rc = wisp_server_route(srv, r);
    if (rc < 0)
        fprintf(stderr, "wisp-test-server: route %s: %s\n", r->path, wisp_strerror(rc));
    return rc;
}

static void set_limits(struct wisp_route *r, const struct opts *o)
{
    if (o->max_msg != 0) {
        r->max_frame_size = o->max_msg;
        r->max_message_size = o->max_msg;
    }
}

int main(int argc, char **argv)
{
    struct opts o = {.slow_ms = 20, .slow_mailbox = 8};
    parse_args(argc, argv, &o);
    g_slow_ms = (unsigned)o.slow_ms;
    for (size_t i = 0; i < sizeof g_flood_buf; i++)
        g_flood_buf[i] = (uint8_t)(i * 7 + 1);
    for (size_t i = 0; i < sizeof g_ref_buf; i++)
        g_ref_buf[i] = (uint8_t)(i * 13 + 5);

    struct wisp_runtime_opts ro;
    wisp_runtime_opts_init(&ro);
    ro.workers = (unsigned)o.workers;
    ro.handle_signals = true;
    if (o.has_shutdown)
        ro.shutdown_deadline_ms = (uint32_t)o.shutdown_ms;
    struct wisp_runtime *rt;
    int rc = wisp_runtime_new(&ro, &rt);
    if (rc < 0) {
        fprintf(stderr, "wisp-test-server: runtime: %s\n", wisp_last_error());
        return 1;
    }

    struct wisp_server_opts so;
    wisp_server_opts_init(&so);
    if (o.has_idle)
        so.idle_timeout_ms = (uint32_t)o.idle_ms;
    if (o.has_pong)
        so.pong_timeout_ms = (uint32_t)o.pong_ms;
    if (o.has_handshake)
        so.handshake_timeout_ms = (uint32_t)o.handshake_ms;
    if (o.has_close)
        so.close_timeout_ms = (uint32_t)o.close_ms;
    if (o.has_max_conns)
        so.max_connections = (uint32_t)o.max_conns;
    if (o.has_max_head)
        so.max_request_head = (uint32_t)o.max_head;
    struct wisp_server *srv;
    rc = wisp_server_new(rt, &so, &srv);
    if (rc < 0) {
        fprintf(stderr, "wisp-test-server: server: %s\n", wisp_strerror(rc));
        wisp_runtime_free(rt);
        return 1;
    }

    rc = wisp_rt_spawn(rt, &room_def, NULL, 0, &g_room);
    if (rc < 0) {
        fprintf(stderr, "wisp-test-server: room: %s\n", wisp_strerror(rc));
        goto fail;
    }

    struct wisp_route r;
    wisp_route_init(&r, "/echo", &echo_handler);
    set_limits(&r, &o);
    if (o.echo_cap != 0)
        r.send_cap = o.echo_cap;
    if (add_route(srv, &r) < 0)
        goto fail;

    wisp_route_init(&r, "/reject", &reject_handler);
    set_limits(&r, &o);
    if (add_route(srv, &r) < 0)
        goto fail;

    wisp_route_init(&r, "/proto", &proto_handler);
    set_limits(&r, &o);
    r.protocols = proto_list;
    r.num_protocols = sizeof proto_list / sizeof proto_list[0];
    if (add_route(srv, &r) < 0)
        goto fail;

    wisp_route_init(&r, "/slow", &slow_handler);
    set_limits(&r, &o);
    r.mailbox_limit = (uint32_t)o.slow_mailbox;
    if (add_route(srv, &r) < 0)
        goto fail;

    wisp_route_init(&r, "/flood", &flood_handler);
    set_limits(&r, &o);
    r.overflow = WISP_OVERFLOW_DROP;
    if (o.send_cap != 0)
        r.send_cap = o.send_cap;
    if (o.high != 0)
        r.send_high_watermark = o.high;
    if (o.low != 0)
        r.send_low_watermark = o.low;
    g_flood_high = r.send_high_watermark;
    if (add_route(srv, &r) < 0)
        goto fail;

    wisp_route_init(&r, "/chat", &chat_handler);
    set_limits(&r, &o);
    if (add_route(srv, &r) < 0)
        goto fail;

    wisp_route_init(&r, "/hooks", &hooks_handler);
    set_limits(&r, &o);
    if (add_route(srv, &r) < 0)
        goto fail;

    wisp_route_init(&r, "/ref", &ref_handler);
    set_limits(&r, &o);
    r.fragment_size = 256 * 1024; /* a large reference goes out in several frames */
    if (add_route(srv, &r) < 0)
        goto fail;

    wisp_route_init(&r, "/stats", NULL);
    r.on_http = stats_http;
    if (add_route(srv, &r) < 0)
        goto fail;

    wisp_route_init(&r, "/health", NULL);
    r.on_http = health_http;
    if (add_route(srv, &r) < 0)
        goto fail;

    rc = pubsub_routes_add(rt, srv);
    if (rc < 0) {
        fprintf(stderr, "wisp-test-server: pub/sub routes: %s\n", wisp_strerror(rc));
        goto fail;
    }

    uint16_t port = 0;
    rc = wisp_server_listen(srv, "127.0.0.1", (uint16_t)o.port, &port);
    if (rc < 0) {
        fprintf(stderr, "wisp-test-server: listen: %s\n", wisp_last_error());
        goto fail;
    }
    /* A second listener on IPv6 loopback, where the system has it (its port is in /stats). */
    if (wisp_server_listen(srv, "::1", 0, &g_port6) < 0)
        g_port6 = 0;
    /* With --cert/--key, a TLS listener too (its port is in /stats as tls_port). */
    if (g_cert) {
        struct wisp_tls_sni sni = {g_sni_name, g_sni_cert, g_sni_key};
        struct wisp_tls_opts tls = {
            .cert_file = g_cert,
            .key_file = g_key,
            .sni = g_sni_name ? &sni : NULL,
            .num_sni = g_sni_name ? 1 : 0,
            .client_ca_file = g_client_ca,
            .require_client_cert = g_require_client_cert != 0,
            .max_handshakes_per_worker = (uint32_t)g_max_handshakes,
            .configure = g_tls12_only ? tls12_only : NULL,
        };
        if (wisp_server_listen_tls(srv, "127.0.0.1", 0, &tls, &g_tls_port) < 0) {
            fprintf(stderr, "wisp-test-server: listen tls: %s\n", wisp_last_error());
            goto fail;
        }
    }
    g_rt = rt;
    install_early_signals();
    printf("listening on 127.0.0.1:%u\n", (unsigned)port);
    fflush(stdout);

    rc = wisp_runtime_run(rt);
    wisp_runtime_free(rt);
    wisp_server_free(srv);
    if (rc < 0) {
        fprintf(stderr, "wisp-test-server: run: %s\n", wisp_strerror(rc));
        return 1;
    }
    fprintf(stderr,
            "wisp-test-server: exiting: opened %" PRIu64 " closed %" PRIu64
            " shutdown_calls %" PRIu64 "\n",
            get(&g_stats.opened), get(&g_stats.closed), get(&g_stats.shutdown_calls));
    return 0;

fail:
    wisp_runtime_free(rt);
    wisp_server_free(srv);
    return 1;
}
