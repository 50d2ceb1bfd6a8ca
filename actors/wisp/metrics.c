/* actors/wisp/metrics.c: /metrics and /healthz (see metrics.h). */
#include "metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/version.h>

/* A growing text buffer; any failure sticks. */
struct text {
    char *p;
    size_t len, cap;
    bool failed;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct text *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if (t->p && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap : 4096;
        while (cap - t->len <= (size_t)n)
            cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->failed = true;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
}

static void metric(struct text *t, const char *name, const char *type, const char *help,
                   uint64_t value)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type, name, value);
}

/* A label value, escaped as the text format wants (\\, \" and \n). */
static void put_label(struct text *t, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            put(t, "\\%c", *s);
        else if (*s == '\n')
            put(t, "\\n");
        else
            put(t, "%c", *s);
    }
}

bool wp_metrics_render(const struct wp_monitor *mon, char **out, size_t *len)
{
    struct wisp_server_stats s;
    struct wisp_runtime_stats r;
    if (wisp_server_stats(mon->srv, &s) < 0 || wisp_runtime_stats(mon->rt, &r) < 0)
        return false;
    struct text t = {0};
    metric(&t, "wisp_connections", "gauge",
           "TCP connections open now (handshaking or established).", s.connections);
    metric(&t, "wisp_connections_accepted_total", "counter", "TCP connections accepted.",
           s.accepted);
    metric(&t, "wisp_connections_refused_total", "counter",
           "TCP connections turned away with 503 by the connection limits.", s.refused);
    metric(&t, "wisp_handshake_failures_total", "counter",
           "Upgrades refused, TLS handshakes failed and handshake deadlines passed.",
           s.handshake_failures);
    metric(&t, "wisp_http_requests_total", "counter", "Plain HTTP requests answered.",
           s.http_requests);
    metric(&t, "wisp_websockets_opened_total", "counter", "WebSocket connections opened.",
           s.opened);
    metric(&t, "wisp_messages_received_total", "counter", "Whole data messages received.",
           s.messages_in);
    metric(&t, "wisp_received_bytes_total", "counter",
           "Payload bytes of the data messages received.", s.bytes_in);
    metric(&t, "wisp_messages_sent_total", "counter", "Data messages queued to peers.",
           s.messages_out);
    metric(&t, "wisp_sent_bytes_total", "counter", "Payload bytes of the data messages sent.",
           s.bytes_out);
    metric(&t, "wisp_messages_dropped_total", "counter",
           "Messages dropped over a connection's send cap (overflow drop).", s.dropped);
    metric(&t, "wisp_throttled_total", "counter",
           "Times a connection's buffered output reached the high watermark.", s.throttled);

    static const unsigned codes[WISP_STATS_CLOSE_CODES] = WISP_STATS_CLOSE_CODE_LIST;
    put(&t, "# HELP wisp_websockets_closed_total WebSocket connections closed, by close code "
            "(4xxx: 4000-4999).\n# TYPE wisp_websockets_closed_total counter\n");
    for (unsigned i = 0; i < WISP_STATS_CLOSE_CODES; i++) {
        char label[16];
        if (codes[i] == 0)
            snprintf(label, sizeof label, "other");
        else if (codes[i] == 4000)
            snprintf(label, sizeof label, "4xxx");
        else
            snprintf(label, sizeof label, "%u", codes[i]);
        put(&t, "wisp_websockets_closed_total{code=\"%s\"} %" PRIu64 "\n", label, s.closes[i]);
    }

    metric(&t, "wisp_actors", "gauge", "Live actors, connections included.", r.actors);
    metric(&t, "wisp_mailbox_messages", "gauge", "Messages waiting in all mailboxes.",
           r.mailbox_messages);
    metric(&t, "wisp_mailbox_max_depth", "gauge", "Messages waiting in the deepest mailbox.",
           r.mailbox_max);
    metric(&t, "wisp_ring_overflows_total", "counter",
           "Completions the kernel held back because a worker's completion queue was full.",
           r.ring_overflows);
    metric(&t, "wisp_recv_buffer_waits_total", "counter",
           "Receives that found no free buffer and waited (raise --recv-buffers if high).",
           r.recv_buffer_waits);
    metric(&t, "wisp_published_messages_total", "counter",
           "Messages published to topics, broadcast or emitted.", r.published);
    metric(&t, "wisp_topics", "gauge", "Topics with at least one subscriber.", r.topics);
    metric(&t, "wisp_workers", "gauge", "Worker threads.", wisp_runtime_workers(mon->rt));

    put(&t, "# HELP wisp_build_info The wisp version, as a label.\n"
            "# TYPE wisp_build_info gauge\nwisp_build_info{version=\"");
    put_label(&t, WISP_VERSION);
    put(&t, "\"} 1\n");
    put(&t, "# HELP process_start_time_seconds Start time of the process since the Unix epoch "
            "in seconds.\n# TYPE process_start_time_seconds gauge\n"
            "process_start_time_seconds %lld.%03ld\n", (long long)mon->started.tv_sec,
        mon->started.tv_nsec / 1000000);
    if (t.failed) {
        free(t.p);
        return false;
    }
    *out = t.p;
    *len = t.len;
    return true;
}

static void release_free(void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    free(data);
}

static bool is_get(const struct wisp_http_request *req)
{
    return req->method_len == 3 && memcmp(req->method, "GET", 3) == 0;
}

int wp_metrics_http(void *data, const struct wisp_http_request *req, const struct sockaddr *peer,
                    struct wisp_http_reply *reply)
{
    (void)peer;
    if (!is_get(req))
        return 405;
    char *body;
    size_t len;
    if (!wp_metrics_render(data, &body, &len))
        return 500;
    reply->answer.status = 200;
    reply->answer.content_type = "text/plain; version=0.0.4; charset=utf-8";
    reply->answer.body = body;
    reply->answer.body_len = len;
    reply->release = release_free;
    reply->release_arg = NULL;
    return 0;
}

/* Set by a signal handler, read by workers: a lock-free atomic is both async-signal-safe and
 * race-free. */
static atomic_bool g_stopping;

void wp_health_set_stopping(void)
{
    atomic_store_explicit(&g_stopping, true, memory_order_relaxed);
}

int wp_health_http(void *data, const struct wisp_http_request *req, const struct sockaddr *peer,
                   struct wisp_http_reply *reply)
{
    (void)data;
    (void)peer;
    if (!is_get(req))
        return 405;
    bool stopping = atomic_load_explicit(&g_stopping, memory_order_relaxed);
    static const char ok[] = "ok", down[] = "shutting down";
    reply->answer.status = stopping ? 503 : 200;
    reply->answer.content_type = "text/plain; charset=utf-8";
    reply->answer.body = stopping ? down : ok;
    reply->answer.body_len = stopping ? sizeof down - 1 : sizeof ok - 1;
    return 0;
}
