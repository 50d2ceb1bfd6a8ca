/* How a connection ends: raw answers, the close handshake, failures, aborts. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "tls.h"

int wispi_conn_queue_bytes(struct wisp_conn *c, const void *p, size_t n)
{
    uint8_t *out = wispi_txq_reserve(c->net, &c->txq, n);
    if (!out)
        return -ENOMEM;
    memcpy(out, p, n);
    wispi_txq_commit(&c->txq, n, true);
    wispi_sock_dirty(c->net, &c->sock);
    return 0;
}

/* A plain HTTP answer or refusal, after which the connection closes. */
void wispi_conn_answer_and_close(struct wisp_conn *c, const char *p, size_t n)
{
    if (n)
        wispi_conn_queue_bytes(c, p, n); /* on failure nothing is queued: the socket just closes */
    wispi_sock_dirty(c->net, &c->sock);
    c->phase = PH_HTTP;
    c->deadline_ms = now_ms(c) + c->srv->opts.close_timeout_ms;
    free(c->head);
    c->head = NULL;
}

void wispi_conn_reject(struct wisp_conn *c, int status)
{
    char buf[512];
    if (status < 400 || status > 599)
        status = 500;
    if (!c->plain_http && !c->client)
        CONN_STAT(c, handshake_failures, 1);
    ssize_t n = wisp_http_reject(status, buf, sizeof buf);
    wispi_conn_answer_and_close(c, buf, n > 0 ? (size_t)n : 0);
}

/* ---- callbacks ------------------------------------------------------------------------------ */

/* Run the throttle callbacks a send or a completion made due (never from inside a send). */
void wispi_conn_owed_callbacks(struct wisp_conn *c)
{
    const struct wisp_handler *h = handler_of(c);
    /* A callback may send (and cross the high watermark again): loop until nothing is owed,
     * in the order the crossings happened. */
    while (c->cb_throttled || c->cb_unthrottled) {
        if (c->cb_throttled) {
            c->cb_throttled = false;
            if (h && h->on_throttled && c->phase == PH_OPEN)
                h->on_throttled(c, c->state, conn_buffered(c));
        }
        if (c->cb_unthrottled) {
            c->cb_unthrottled = false;
            if (h && h->on_unthrottled && c->phase == PH_OPEN)
                h->on_unthrottled(c, c->state, conn_buffered(c));
        }
    }
}

static void set_reason(struct wisp_conn *c, const char *reason, size_t len)
{
    free(c->close_reason);
    c->close_reason = NULL;
    c->info.reason = "";
    c->info.reason_len = 0;
    if (!len)
        return;
    c->close_reason = malloc(len);
    if (c->close_reason) {
        memcpy(c->close_reason, reason, len);
        c->info.reason = c->close_reason;
        c->info.reason_len = len;
    }
}

void wispi_conn_record(struct wisp_conn *c, uint16_t code, const char *reason, size_t len,
                   enum wisp_close_by by, enum wisp_close_why why)
{
    c->info.code = code;
    c->info.by = by;
    c->info.why = why;
    c->info.clean = false;
    set_reason(c, reason, len);
}

/* Stop reading: the connection is ending. */
void wispi_conn_stop_reading(struct wisp_conn *c)
{
    if (c->recv_armed && !c->recv_cancelled) {
        wispi_sock_cancel(c->net, &c->sock, UD_NET_RECV);
        c->recv_cancelled = true;
    }
}

/* The socket can go: close it (after cancelling what is in flight) and stop the actor. */
void wispi_conn_close_now(struct wisp_conn *c)
{
    if (c->phase == PH_DONE)
        return;
    c->phase = PH_DONE;
    wispi_sock_close(c->net, &c->sock);
    wisp_stop(c->ctx, (struct wisp_exit){WISP_EXIT_NORMAL, 0});
}

void wispi_conn_ended(struct wisp_conn *c)
{
    wispi_conn_leave_all(c); /* nobody publishes to a closed connection */
    if (!c->opened)
        return;
    c->opened = false;
    if (conn_stats(c))
        wispi_stat_close(conn_stats(c), c->info.code);
    const struct wisp_handler *h = handler_of(c);
    if (h && h->on_closed)
        h->on_closed(c, c->state, &c->info);
}

/* The WebSocket conversation is over: tell the handler (once), then write what is queued
 * (if `drain`) and close. */
void wispi_conn_finish(struct wisp_conn *c, bool drain)
{
    if (c->phase >= PH_DRAIN)
        return;
    c->phase = PH_DRAIN;
    wispi_conn_stop_reading(c);
    wispi_conn_ended(c);
    if (!drain || c->io_error)
        wispi_txq_drop_unsent(c->net, &c->txq);
    else if (c->tls)
        wispi_tls_shutdown(c); /* the last records, then close_notify */
    c->deadline_ms = now_ms(c) + c->srv->opts.close_timeout_ms;
    if (!drain || conn_tx_idle(c))
        wispi_conn_close_now(c);
}

/* Queue our close frame (first dropping unsent data if `urgent`). */
int wispi_conn_queue_close(struct wisp_conn *c, uint16_t code, const char *reason, size_t len,
                       bool urgent)
{
    if (urgent)
        wispi_txq_drop_unsent(c->net, &c->txq);
    uint8_t frame[WISP_WS_MAX_HEADER + WISP_WS_MAX_CONTROL];
    ssize_t n = wisp_ws_send_close(&c->ws, code, reason, len, frame, sizeof frame);
    if (n < 0)
        return (int)n;
    return wispi_conn_queue_bytes(c, frame, (size_t)n);
}

/* wisp fails the connection: send code (at the next frame boundary) and close. */
void wispi_conn_library_close(struct wisp_conn *c, uint16_t code, enum wisp_close_why why,
                          const char *reason)
{
    if (c->phase >= PH_DRAIN)
        return;
    size_t len = strlen(reason);
    wispi_conn_record(c, code, reason, len, WISP_CLOSED_BY_LIBRARY, why);
    if (c->phase == PH_OPEN || c->phase == PH_CLOSING)
        wispi_conn_queue_close(c, code, reason, len, true);
    wispi_conn_finish(c, true);
}

/* TCP ended (or failed) under us. */
void wispi_conn_abort_conn(struct wisp_conn *c, enum wisp_close_why why, int err)
{
    if (c->phase >= PH_DRAIN)
        return;
    if (c->phase == PH_CLOSING) {
        /* We had sent close: keep our code, but the handshake never completed. */
        c->info.clean = false;
        if (why == WISP_WHY_CLOSE_TIMEOUT)
            c->info.why = why;
    } else {
        wispi_conn_record(c, WISP_CLOSE_ABNORMAL, NULL, 0,
               why == WISP_WHY_TIMEOUT ? WISP_CLOSED_BY_LIBRARY : WISP_CLOSED_BY_PEER, why);
        c->info.error = err;
    }
    wispi_conn_finish(c, false);
}

