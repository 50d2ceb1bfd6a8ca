/* actors/wisp/metrics.h: the monitoring endpoints of the wisp program, as on_http hooks.
 *
 * GET /metrics (--metrics-path) answers the server's and the runtime's counters in the
 * Prometheus text format 0.0.4 (Content-Type `text/plain; version=0.0.4; charset=utf-8`):
 *
 *   wisp_connections                      gauge    TCP connections open now
 *   wisp_connections_accepted_total       counter  TCP connections accepted
 *   wisp_connections_refused_total        counter  turned away with 503 (connection limits)
 *   wisp_handshake_failures_total         counter  upgrades refused, TLS handshakes failed,
 *                                                  handshake deadlines passed
 *   wisp_http_requests_total              counter  plain HTTP requests answered
 *   wisp_websockets_opened_total          counter  WebSocket connections opened
 *   wisp_messages_received_total          counter  whole data messages received ...
 *   wisp_received_bytes_total             counter  ... and their payload bytes
 *   wisp_messages_sent_total              counter  data messages queued to peers ...
 *   wisp_sent_bytes_total                 counter  ... and their payload bytes
 *   wisp_messages_dropped_total           counter  dropped under --overflow drop
 *   wisp_throttled_total                  counter  high send watermark crossings
 *   wisp_websockets_closed_total{code=}   counter  WebSocket closes by code: "1000", "1001",
 *                                                  ..., "4xxx" (4000-4999), "other"
 *   wisp_actors                           gauge    live actors (connections included)
 *   wisp_mailbox_messages                 gauge    messages waiting in all mailboxes
 *   wisp_mailbox_max_depth                gauge    the deepest mailbox
 *   wisp_ring_overflows_total             counter  io_uring completion queue overflows
 *   wisp_recv_buffer_waits_total          counter  receives that waited for a free buffer
 *   wisp_published_messages_total         counter  messages published, broadcast or emitted
 *   wisp_topics                           gauge    topics with at least one subscriber
 *   wisp_workers                          gauge    worker threads
 *   wisp_build_info{version=}             gauge    always 1
 *   process_start_time_seconds            gauge    when the program started (Unix time)
 *
 * GET /healthz (--health-path) answers 200 "ok" while the program runs and 503 "shutting
 * down" once a SIGINT or SIGTERM arrived. Other methods get 405 on both.
 */
#ifndef WISP_PROG_METRICS_H
#define WISP_PROG_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <wisp/runtime.h>
#include <wisp/server.h>

/** What the endpoints report on: the route data of both (borrowed; must outlive the server's
 *  workers). */
struct wp_monitor {
    struct wisp_runtime *rt;
    struct wisp_server *srv;
    struct timespec started; /**< CLOCK_REALTIME at program start */
};

/** Render the metrics text into a malloc'd buffer (*out, *len). @return false: no memory or
 *  the statistics could not be read. */
bool wp_metrics_render(const struct wp_monitor *mon, char **out, size_t *len);

/** on_http hooks for struct wisp_route (data: a struct wp_monitor). */
int wp_metrics_http(void *data, const struct wisp_http_request *req, const struct sockaddr *peer,
                    struct wisp_http_reply *reply);
int wp_health_http(void *data, const struct wisp_http_request *req, const struct sockaddr *peer,
                   struct wisp_http_reply *reply);

/** From now on the health check answers 503. Async-signal-safe. */
void wp_health_set_stopping(void);

#endif
