/* The test server's pub/sub routes (see pubsub_routes.h), public API only.
 *
 * Commands (text messages; every reply is a text message):
 *   sub T / unsub T        -> "ok sub T" / "ok unsub T", or "err sub T CODE"
 *   pub T PAYLOAD          publish PAYLOAD (the rest of the line) to T  -> nothing, or
 *                          "err pub CODE"
 *   pubn T N SIZE          publish N messages "T SEQ <pad>" of at least SIZE bytes, seq 0..N-1
 *   bcast PAYLOAD          wisp_conn_broadcast to the route's other connections
 *   emit PAYLOAD           wisp_server_emit to every connection of the route
 *   count T                -> "count T N" (wisp_topic_subscribers)
 *   subto T                ask the subber actor to subscribe us with first message "welcome T",
 *                          after which it publishes "after T" to T
 *   actorpub T N           an actor publishes "actor SEQ" to T, seq 0..N-1, then stops
 *   drops                  -> "drops N": published messages this connection lost (on_error
 *                          with WISP_EFULL)
 * /pstats (HTTP) answers with wisp_server_stats and wisp_runtime_stats as JSON.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/wisp.h>

#include "pubsub_routes.h"

static struct wisp_server *g_srv;
static wisp_addr g_subber;

struct ps_state {
    uint64_t drops;
};

static void reply(struct wisp_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(struct wisp_conn *c, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0)
        wisp_conn_send_text(c, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* The word starting at p (up to a space), NUL-terminated into out. Returns what follows. */
static const char *word(const char *p, const char *end, char *out, size_t cap)
{
    size_t n = 0;
    while (p < end && *p != ' ' && n + 1 < cap)
        out[n++] = *p++;
    out[n] = '\0';
    return p < end && *p == ' ' ? p + 1 : p;
}

/* ---- actors -------------------------------------------------------------------------------- */

/* subto: subscribe the asking connection with a first message, then publish after it. */
static void subber_receive(struct wisp_ctx *ctx, void *state, const struct wisp_msg *msg)
{
    if (msg->len < 1 || msg->len > 256)
        return;
    char topic[257], first[300];
    memcpy(topic, msg->data, msg->len);
    topic[msg->len] = '\0';
    int n = snprintf(first, sizeof first, "welcome %s", topic);
    int rc = wisp_subscribe_to(ctx, msg->from, topic, WISP_WS_OP_TEXT, first, (size_t)n);
    if (rc < 0) {
        fprintf(stderr, "pubsub_routes: subscribe_to: %s\n", wisp_strerror(rc));
        return;
    }
    n = snprintf(first, sizeof first, "after %s", topic);
    wisp_publish(ctx, topic, WISP_WS_OP_TEXT, first, (size_t)n);
}

static const struct wisp_actor_def subber_def = {.name = "subber", .receive = subber_receive};

struct actorpub_arg {
    char topic[257];
    uint32_t n;
};

static int actorpub_init(struct wisp_ctx *ctx, void *state, const void *arg, size_t len)
{
    const struct actorpub_arg *a = arg;
    char buf[64];
    for (uint32_t i = 0; i < a->n; i++) {
        int n = snprintf(buf, sizeof buf, "actor %" PRIu32, i);
        int rc = wisp_publish(ctx, a->topic, WISP_WS_OP_TEXT, buf, (size_t)n);
        if (rc < 0)
            fprintf(stderr, "pubsub_routes: actor publish: %s\n", wisp_strerror(rc));
    }
    wisp_stop(ctx, (struct wisp_exit){WISP_EXIT_NORMAL, 0});
    return 0;
}

static void actorpub_receive(struct wisp_ctx *ctx, void *state, const struct wisp_msg *msg) {}

static const struct wisp_actor_def actorpub_def = {
    .name = "actorpub", .init = actorpub_init, .receive = actorpub_receive};

/* ---- the handler ----------------------------------------------------------------------------- */

static void pubn(struct wisp_conn *c, const char *topic, unsigned long n, unsigned long size)
{
    char *buf = malloc(size + 300);
    if (!buf)
        return;
    for (unsigned long i = 0; i < n; i++) {
        int len = snprintf(buf, 300, "%s %lu ", topic, i);
        while ((unsigned long)len < size)
            buf[len++] = 'x';
        int rc = wisp_publish(wisp_conn_ctx(c), topic, WISP_WS_OP_TEXT, buf, (size_t)len);
        if (rc < 0) {
            reply(c, "err pub %d", rc);
            break;
        }
    }
    free(buf);
}

static void ps_text(struct wisp_conn *c, void *st, const char *p, size_t len)
{
    const char *end = p + len;
    char cmd[16], topic[300];
    p = word(p, end, cmd, sizeof cmd);
    if (strcmp(cmd, "bcast") == 0 || strcmp(cmd, "emit") == 0) {
        int rc = cmd[0] == 'b'
                     ? wisp_conn_broadcast(c, WISP_WS_OP_TEXT, p, (size_t)(end - p))
                     : wisp_server_emit(g_srv, wisp_conn_path(c), WISP_ADDR_NONE, WISP_WS_OP_TEXT,
                                        p, (size_t)(end - p));
        if (rc < 0)
            reply(c, "err %s %d", cmd, rc);
        return;
    }
    if (strcmp(cmd, "drops") == 0) {
        reply(c, "drops %" PRIu64, ((struct ps_state *)st)->drops);
        return;
    }
    p = word(p, end, topic, sizeof topic);
    if (strcmp(cmd, "sub") == 0 || strcmp(cmd, "unsub") == 0) {
        int rc = cmd[0] == 's' ? wisp_conn_subscribe(c, topic) : wisp_conn_unsubscribe(c, topic);
        if (rc < 0)
            reply(c, "err %s %s %d", cmd, topic, rc);
        else
            reply(c, "ok %s %s", cmd, topic);
    } else if (strcmp(cmd, "pub") == 0) {
        int rc = wisp_publish(wisp_conn_ctx(c), topic, WISP_WS_OP_TEXT, p, (size_t)(end - p));
        if (rc < 0)
            reply(c, "err pub %d", rc);
    } else if (strcmp(cmd, "pubn") == 0) {
        char num[32], size[32];
        p = word(p, end, num, sizeof num);
        word(p, end, size, sizeof size);
        pubn(c, topic, strtoul(num, NULL, 10), strtoul(size, NULL, 10));
    } else if (strcmp(cmd, "count") == 0) {
        reply(c, "count %s %zu", topic, wisp_topic_subscribers(wisp_runtime_of(wisp_conn_ctx(c)),
                                                              topic));
    } else if (strcmp(cmd, "subto") == 0) {
        wisp_send(wisp_conn_ctx(c), g_subber, 1, topic, strlen(topic));
    } else if (strcmp(cmd, "actorpub") == 0) {
        struct actorpub_arg a;
        snprintf(a.topic, sizeof a.topic, "%s", topic);
        char num[32];
        word(p, end, num, sizeof num);
        a.n = (uint32_t)strtoul(num, NULL, 10);
        wisp_spawn(wisp_conn_ctx(c), &actorpub_def, &a, sizeof a, NULL);
    } else {
        reply(c, "err unknown");
    }
}

static void ps_error(struct wisp_conn *c, void *st, int err, const char *what)
{
    if (err == WISP_EFULL)
        ((struct ps_state *)st)->drops++;
}

static const struct wisp_handler ps_handler = {
    .state_size = sizeof(struct ps_state),
    .on_text = ps_text,
    .on_error = ps_error,
};

/* ---- /pstats --------------------------------------------------------------------------------- */

static void release_free(void *data, size_t len, void *arg)
{
    free(data);
}

static int pstats_http(void *data, const struct wisp_http_request *req,
                       const struct sockaddr *peer, struct wisp_http_reply *rep)
{
    struct wisp_server_stats s;
    struct wisp_runtime_stats r;
    if (wisp_server_stats(g_srv, &s) < 0 || wisp_runtime_stats(data, &r) < 0)
        return 500;
    static const uint16_t codes[WISP_STATS_CLOSE_CODES] = WISP_STATS_CLOSE_CODE_LIST;
    size_t cap = 4096;
    char *b = malloc(cap);
    if (!b)
        return 500;
    int n = snprintf(b, cap,
                     "{\"connections\": %" PRIu64 ", \"accepted\": %" PRIu64
                     ", \"refused\": %" PRIu64 ", \"handshake_failures\": %" PRIu64
                     ", \"http_requests\": %" PRIu64 ", \"opened\": %" PRIu64
                     ", \"messages_in\": %" PRIu64 ", \"bytes_in\": %" PRIu64
                     ", \"messages_out\": %" PRIu64 ", \"bytes_out\": %" PRIu64
                     ", \"dropped\": %" PRIu64 ", \"throttled\": %" PRIu64
                     ", \"actors\": %" PRIu64 ", \"mailbox_messages\": %" PRIu64
                     ", \"mailbox_max\": %" PRIu64 ", \"ring_overflows\": %" PRIu64
                     ", \"recv_buffer_waits\": %" PRIu64 ", \"published\": %" PRIu64
                     ", \"topics\": %" PRIu64 ", \"closes\": {",
                     s.connections, s.accepted, s.refused, s.handshake_failures, s.http_requests,
                     s.opened, s.messages_in, s.bytes_in, s.messages_out, s.bytes_out, s.dropped,
                     s.throttled, r.actors, r.mailbox_messages, r.mailbox_max, r.ring_overflows,
                     r.recv_buffer_waits, r.published, r.topics);
    for (size_t i = 0; i < WISP_STATS_CLOSE_CODES; i++)
        n += snprintf(b + n, cap - (size_t)n, "%s\"%u\": %" PRIu64, i ? ", " : "",
                      (unsigned)codes[i], s.closes[i]);
    n += snprintf(b + n, cap - (size_t)n, "}}");
    rep->answer.status = 200;
    rep->answer.content_type = "application/json";
    rep->answer.body = b;
    rep->answer.body_len = (size_t)n;
    rep->release = release_free;
    return 0;
}

int pubsub_routes_add(struct wisp_runtime *rt, struct wisp_server *srv)
{
    g_srv = srv;
    int rc = wisp_rt_spawn(rt, &subber_def, NULL, 0, &g_subber);
    if (rc < 0)
        return rc;
    struct wisp_route r;
    wisp_route_init(&r, "/ps", &ps_handler);
    if ((rc = wisp_server_route(srv, &r)) < 0)
        return rc;
    /* A slow subscriber on these is closed (CLOSE) or loses messages (DROP) past 256 KiB. */
    wisp_route_init(&r, "/ps-close", &ps_handler);
    r.send_cap = 256 * 1024;
    r.send_high_watermark = 128 * 1024;
    r.send_low_watermark = 32 * 1024;
    if ((rc = wisp_server_route(srv, &r)) < 0)
        return rc;
    wisp_route_init(&r, "/ps-drop", &ps_handler);
    r.send_cap = 256 * 1024;
    r.send_high_watermark = 128 * 1024;
    r.send_low_watermark = 32 * 1024;
    r.overflow = WISP_OVERFLOW_DROP;
    if ((rc = wisp_server_route(srv, &r)) < 0)
        return rc;
    wisp_route_init(&r, "/pstats", NULL);
    r.on_http = pstats_http;
    r.data = rt;
    return wisp_server_route(srv, &r);
}
