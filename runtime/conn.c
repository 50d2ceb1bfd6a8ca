/* The connection actor: one per accepted socket, pinned to the worker whose ring does its I/O.
 *
 * It reads the request head, routes it, answers plain HTTP or upgrades, then runs the
 * WebSocket engine over the received buffers where the kernel put them and calls the route's
 * handler. Outgoing frames are queued (conn_tx.c) and written by the worker after the turn.
 *
 * Life of a connection (phase):
 *   HANDSHAKE  reading the request head (handshake deadline)
 *   HTTP       a plain answer or a refusal is queued; close once written
 *   OPEN       WebSocket traffic
 *   CLOSING    we sent close and wait for the peer's (close deadline)
 *   DRAIN      on_closed ran; the last bytes (a close frame) are being written
 *   DONE       the socket is closing and the actor stops
 */
#include <errno.h>
#include <liburing.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn_tx.h"
#include "server_internal.h"

enum phase { PH_HANDSHAKE, PH_HTTP, PH_OPEN, PH_CLOSING, PH_DRAIN, PH_DONE };

struct wisp_conn {
    struct wispi_sock sock;
    struct wisp_server *srv;
    const struct wispi_route *route; /* known once the request head arrived */
    struct wisp_ctx *ctx;            /* during the actor's turn */
    struct wispi_net *net;
    struct wisp_ws ws;
    struct wispi_rxq rxq;
    struct wispi_txq txq;
    char *head;          /* the request head being collected (handshake only) */
    uint32_t head_len;
    char *path;          /* NUL-terminated request path, once upgraded */
    char *protocol;      /* chosen subprotocol or NULL */
    struct wisp_http_header *extra; /* response headers added in on_upgrade */
    uint32_t nextra;
    const struct wisp_ws_upgrade *up; /* during on_upgrade only */
    uint8_t *msg;        /* on_frame mode: the message being reassembled */
    size_t msg_len, msg_cap;
    char *close_reason;  /* storage behind info.reason */
    struct wisp_close_info info;
    uint64_t deadline_ms; /* handshake, close or drain deadline; 0: none */
    uint64_t last_rx_ms;
    uint64_t ping_ms;     /* when our keep-alive ping went out; 0: none outstanding */
    struct sockaddr_in6 peer; /* large enough for IPv4 and IPv6 */
    socklen_t peer_len;
    uint8_t phase;
    bool opened;          /* on_open ran: on_closed is owed */
    bool recv_armed;
    bool recv_parked;     /* the ring had no buffer: re-arm when some come back */
    bool paused_held;     /* holding too many buffers: reading stopped */
    bool paused_mbox;     /* mailbox over its limit: reading stopped */
    bool recv_cancelled;  /* a cancel of the recv is on its way */
    bool eof;
    bool tick_due;        /* the sweep saw a deadline pass */
    bool throttled;
    bool cb_throttled, cb_unthrottled; /* callbacks owed */
    int io_error;
    _Alignas(16) unsigned char state[];
};

struct conn_arg {
    struct wisp_server *srv;
    int fd;
};

static const struct wispi_sock_ops conn_ops;

static struct wisp_conn *of_sock(struct wispi_sock *s)
{
    return (struct wisp_conn *)(void *)s; /* sock is the first member */
}

static const struct wisp_handler *handler_of(const struct wisp_conn *c)
{
    return c->route ? c->route->r.handler : NULL;
}

static uint64_t now_ms(const struct wisp_conn *c)
{
    return c->net->w->now_ms;
}

/* ---- queueing bytes ------------------------------------------------------------------------ */

static int queue_bytes(struct wisp_conn *c, const void *p, size_t n)
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
static void answer_and_close(struct wisp_conn *c, const char *p, size_t n)
{
    queue_bytes(c, p, n); /* if that fails, nothing is queued and the socket just closes */
    c->phase = PH_HTTP;
    c->deadline_ms = now_ms(c) + c->srv->opts.close_timeout_ms;
    free(c->head);
    c->head = NULL;
}

static void reject(struct wisp_conn *c, int status)
{
    char buf[512];
    if (status < 400 || status > 599)
        status = 500;
    ssize_t n = wisp_http_reject(status, buf, sizeof buf);
    answer_and_close(c, buf, n > 0 ? (size_t)n : 0);
}

/* ---- callbacks ------------------------------------------------------------------------------ */

/* Run the throttle callbacks a send or a completion made due (never from inside a send). */
static void owed_callbacks(struct wisp_conn *c)
{
    const struct wisp_handler *h = handler_of(c);
    if (c->cb_throttled) {
        c->cb_throttled = false;
        if (h && h->on_throttled && c->phase == PH_OPEN)
            h->on_throttled(c, c->state, c->txq.buffered);
    }
    if (c->cb_unthrottled) {
        c->cb_unthrottled = false;
        if (h && h->on_unthrottled && c->phase == PH_OPEN)
            h->on_unthrottled(c, c->state, c->txq.buffered);
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

static void record(struct wisp_conn *c, uint16_t code, const char *reason, size_t len,
                   enum wisp_close_by by, enum wisp_close_why why)
{
    c->info.code = code;
    c->info.by = by;
    c->info.why = why;
    c->info.clean = false;
    set_reason(c, reason, len);
}

/* Stop reading: the connection is ending. */
static void stop_reading(struct wisp_conn *c)
{
    if (c->recv_armed && !c->recv_cancelled) {
        wispi_sock_cancel(c->net, &c->sock, UD_NET_RECV);
        c->recv_cancelled = true;
    }
}

/* The socket can go: close it (after cancelling what is in flight) and stop the actor. */
static void close_now(struct wisp_conn *c)
{
    if (c->phase == PH_DONE)
        return;
    c->phase = PH_DONE;
    wispi_sock_close(c->net, &c->sock);
    wisp_stop(c->ctx, (struct wisp_exit){WISP_EXIT_NORMAL, 0});
}

/* The WebSocket conversation is over: tell the handler (once), then write what is queued
 * (if `drain`) and close. */
static void finish(struct wisp_conn *c, bool drain)
{
    if (c->phase >= PH_DRAIN)
        return;
    c->phase = PH_DRAIN;
    stop_reading(c);
    if (c->opened) {
        c->opened = false;
        const struct wisp_handler *h = handler_of(c);
        if (h && h->on_closed)
            h->on_closed(c, c->state, &c->info);
    }
    if (!drain || c->io_error)
        wispi_txq_drop_unsent(c->net, &c->txq);
    c->deadline_ms = now_ms(c) + c->srv->opts.close_timeout_ms;
    if (!drain || (!c->txq.sending && !c->txq.head && !c->txq.ctrl_head))
        close_now(c);
}

/* Queue our close frame (first dropping unsent data if `urgent`). */
static int queue_close(struct wisp_conn *c, uint16_t code, const char *reason, size_t len,
                       bool urgent)
{
    if (urgent)
        wispi_txq_drop_unsent(c->net, &c->txq);
    uint8_t frame[WISP_WS_MAX_HEADER + WISP_WS_MAX_CONTROL];
    ssize_t n = wisp_ws_send_close(&c->ws, code, reason, len, frame, sizeof frame);
    if (n < 0)
        return (int)n;
    return queue_bytes(c, frame, (size_t)n);
}

/* wisp fails the connection: send code (at the next frame boundary) and close. */
static void library_close(struct wisp_conn *c, uint16_t code, enum wisp_close_why why,
                          const char *reason)
{
    if (c->phase >= PH_DRAIN)
        return;
    size_t len = strlen(reason);
    record(c, code, reason, len, WISP_CLOSED_BY_LIBRARY, why);
    if (c->phase == PH_OPEN || c->phase == PH_CLOSING)
        queue_close(c, code, reason, len, true);
    finish(c, true);
}

/* TCP ended (or failed) under us. */
static void abort_conn(struct wisp_conn *c, enum wisp_close_why why, int err)
{
    if (c->phase >= PH_DRAIN)
        return;
    if (c->phase == PH_CLOSING) {
        /* We had sent close: keep our code, but the handshake never completed. */
        c->info.clean = false;
        if (why == WISP_WHY_CLOSE_TIMEOUT)
            c->info.why = why;
    } else {
        record(c, WISP_CLOSE_ABNORMAL, NULL, 0,
               why == WISP_WHY_TIMEOUT ? WISP_CLOSED_BY_LIBRARY : WISP_CLOSED_BY_PEER, why);
        c->info.error = err;
    }
    finish(c, false);
}

/* ---- sending --------------------------------------------------------------------------------- */

static int check_room(struct wisp_conn *c, size_t need)
{
    const struct wisp_route *r = &c->route->r;
    if (c->txq.buffered + need <= r->send_cap)
        return 0;
    if (r->overflow == WISP_OVERFLOW_DROP)
        return WISP_EFULL;
    library_close(c, WISP_CLOSE_POLICY, WISP_WHY_BACKPRESSURE, "send buffer full");
    return WISP_ECLOSED;
}

static int after_queued(struct wisp_conn *c)
{
    wispi_sock_dirty(c->net, &c->sock);
    if (c->txq.buffered >= c->route->r.send_high_watermark) {
        if (!c->throttled) {
            c->throttled = true;
            c->cb_throttled = true;
        }
        return WISP_SEND_PRESSURE;
    }
    return 0;
}

/* Encode a whole message. Large ones go out as separate fragment segments so that control
 * frames can be placed between them. */
static int encode_message(struct wisp_conn *c, enum wisp_ws_opcode op, const uint8_t *data,
                          size_t len)
{
    size_t need = wisp_ws_send_size(&c->ws, len);
    size_t frag = c->route->cfg.fragment_size;
    if (need <= WISPI_CHUNK / 2 || !frag || len <= frag) {
        uint8_t *out = wispi_txq_reserve(c->net, &c->txq, need);
        if (!out)
            return -ENOMEM;
        ssize_t n = wisp_ws_send(&c->ws, op, data, len, out, need);
        if (n < 0)
            return (int)n;
        wispi_txq_commit(&c->txq, (size_t)n, true);
        return 0;
    }
    if (op == WISP_WS_OP_TEXT && !wisp_utf8_valid(data, len))
        return -EILSEQ;
    for (size_t off = 0; off < len;) {
        size_t piece = len - off < frag ? len - off : frag;
        size_t cap = WISP_WS_MAX_HEADER + piece;
        uint8_t *out = wispi_txq_reserve(c->net, &c->txq, cap);
        if (!out)
            return -ENOMEM; /* a partial message: the caller fails the connection */
        ssize_t n = wisp_ws_send_fragment(&c->ws, op, data + off, piece, off + piece == len, out,
                                          cap);
        if (n < 0)
            return (int)n;
        wispi_txq_commit(&c->txq, (size_t)n, true);
        off += piece;
    }
    return 0;
}

static bool send_hook(struct wisp_conn *c, struct wisp_frame *f)
{
    const struct wisp_handler *h = handler_of(c);
    return h && h->on_send_frame && h->on_send_frame(c, c->state, f) == WISP_FRAME_DROP;
}

static int send_message(struct wisp_conn *c, enum wisp_ws_opcode op, const void *data,
                        size_t len)
{
    if (!c || (op != WISP_WS_OP_TEXT && op != WISP_WS_OP_BINARY) || (!data && len))
        return -EINVAL;
    if (c->phase != PH_OPEN)
        return WISP_ECLOSED;
    struct wisp_frame f = {op, true, true, (uint8_t *)(uintptr_t)data, len};
    if (send_hook(c, &f))
        return 0;
    int rc = check_room(c, wisp_ws_send_size(&c->ws, f.len));
    if (rc)
        return rc;
    size_t before = c->txq.buffered;
    rc = encode_message(c, op, f.data, f.len);
    if (rc == -EILSEQ || (rc < 0 && c->txq.buffered == before))
        return rc;
    if (rc < 0) {
        /* Part of a fragmented message is queued: the stream cannot continue. */
        library_close(c, WISP_CLOSE_INTERNAL_ERROR, WISP_WHY_NO_MEMORY, "out of memory");
        return rc;
    }
    return after_queued(c);
}

int wisp_conn_send_text(struct wisp_conn *c, const char *data, size_t len)
{
    return send_message(c, WISP_WS_OP_TEXT, data, len);
}

int wisp_conn_send_binary(struct wisp_conn *c, const void *data, size_t len)
{
    return send_message(c, WISP_WS_OP_BINARY, data, len);
}

int wisp_conn_send_ref(struct wisp_conn *c, enum wisp_ws_opcode op, const void *data,
                       size_t len, wisp_release_fn release, void *arg)
{
    int rc;
    if (!c || (op != WISP_WS_OP_TEXT && op != WISP_WS_OP_BINARY) || (!data && len)) {
        rc = -EINVAL;
        goto fail;
    }
    if (c->phase != PH_OPEN) {
        rc = WISP_ECLOSED;
        goto fail;
    }
    if (op == WISP_WS_OP_TEXT && !wisp_utf8_valid(data, len)) {
        rc = -EILSEQ;
        goto fail;
    }
    struct wisp_frame f = {op, true, true, (uint8_t *)(uintptr_t)data, len};
    if (send_hook(c, &f)) {
        rc = 0;
        goto fail;
    }
    if (f.data != data || f.len != len) {
        /* The hook substituted its own bytes, which live only for this call: copy them. */
        rc = send_message(c, op, f.data, f.len);
        goto fail;
    }
    size_t frag = c->route->cfg.fragment_size ? c->route->cfg.fragment_size : len;
    size_t pieces = len ? (len + frag - 1) / frag : 1;
    rc = check_room(c, len + pieces * WISP_WS_MAX_HEADER);
    if (rc)
        goto fail;
    /* The server role sends unmasked frames, so the payload goes out as it is: a header we
     * encode, then the caller's bytes. */
    size_t off = 0;
    do {
        size_t piece = len - off < frag ? len - off : frag;
        bool fin = off + piece == len;
        uint8_t *out = wispi_txq_reserve(c->net, &c->txq, WISP_WS_MAX_HEADER);
        if (!out) {
            rc = -ENOMEM;
            goto partial;
        }
        size_t hl = wisp_ws_frame_header(out, off ? WISP_WS_OP_CONTINUATION : op, fin, 0, piece,
                                         NULL);
        wispi_txq_commit(&c->txq, hl, piece == 0);
        if (piece) {
            rc = wispi_txq_ref(&c->txq, (const uint8_t *)data + off, piece, true,
                               fin ? release : NULL, (void *)(uintptr_t)data, len, arg);
            if (rc < 0) {
                release = NULL; /* released by wispi_txq_ref */
                goto partial;
            }
        }
        off += piece;
    } while (off < len);
    return after_queued(c);
partial:
    if (release)
        release((void *)(uintptr_t)data, len, arg);
    library_close(c, WISP_CLOSE_INTERNAL_ERROR, WISP_WHY_NO_MEMORY, "out of memory");
    return rc;
fail:
    if (release)
        release((void *)(uintptr_t)data, len, arg);
    return rc;
}

static int send_control(struct wisp_conn *c, enum wisp_ws_opcode op, const void *data,
                        size_t len)
{
    uint8_t frame[WISP_WS_MAX_HEADER + WISP_WS_MAX_CONTROL];
    ssize_t n = wisp_ws_send_control(&c->ws, op, data, len, frame, sizeof frame);
    if (n < 0)
        return (int)n;
    if (wispi_txq_ctrl(&c->txq, frame, (size_t)n) < 0)
        return -ENOMEM;
    wispi_sock_dirty(c->net, &c->sock);
    return 0;
}

int wisp_conn_ping(struct wisp_conn *c, const void *data, size_t len)
{
    if (!c || (!data && len))
        return -EINVAL;
    if (len > WISP_WS_MAX_CONTROL)
        return -EMSGSIZE;
    if (c->phase != PH_OPEN)
        return WISP_ECLOSED;
    struct wisp_frame f = {WISP_WS_OP_PING, true, true, (uint8_t *)(uintptr_t)data, len};
    if (send_hook(c, &f))
        return 0;
    if (f.len > WISP_WS_MAX_CONTROL)
        return -EMSGSIZE;
    return send_control(c, WISP_WS_OP_PING, f.data, f.len);
}

static int local_close(struct wisp_conn *c, uint16_t code, const char *reason, size_t len)
{
    if (!wisp_close_code_is_valid(code) || len > WISP_WS_MAX_CONTROL - 2 || (!reason && len) ||
        (len && !wisp_utf8_valid(reason, len)))
        return -EINVAL;
    if (c->phase != PH_OPEN)
        return WISP_ECLOSED;
    int rc = queue_close(c, code, reason, len, false);
    if (rc < 0) {
        library_close(c, WISP_CLOSE_INTERNAL_ERROR, WISP_WHY_NO_MEMORY, "out of memory");
        return rc;
    }
    record(c, code, reason, len, WISP_CLOSED_BY_LOCAL, WISP_WHY_NORMAL);
    c->phase = PH_CLOSING;
    c->deadline_ms = now_ms(c) + c->srv->opts.close_timeout_ms;
    return 0;
}

int wisp_conn_close(struct wisp_conn *c, uint16_t code, const char *reason, size_t reason_len)
{
    if (!c)
        return -EINVAL;
    return local_close(c, code, reason, reason_len);
}

size_t wisp_conn_buffered(const struct wisp_conn *c)
{
    return c ? c->txq.buffered : 0;
}

struct wisp_ctx *wisp_conn_ctx(struct wisp_conn *c)
{
    return c->ctx;
}

wisp_addr wisp_conn_addr(const struct wisp_conn *c)
{
    return c->sock.ref->addr;
}

void *wisp_conn_route_data(const struct wisp_conn *c)
{
    return c->route ? c->route->r.data : NULL;
}

const char *wisp_conn_path(const struct wisp_conn *c)
{
    return c->path ? c->path : "";
}

const char *wisp_conn_protocol(const struct wisp_conn *c)
{
    return c->protocol;
}

const struct sockaddr *wisp_conn_peer(const struct wisp_conn *c, socklen_t *len)
{
    if (len)
        *len = c->peer_len;
    return (const struct sockaddr *)&c->peer;
}

int wisp_conn_accept_protocol(struct wisp_conn *c, const char *protocol)
{
    if (!c || !protocol || !c->up || !wisp_ws_upgrade_offers(c->up, protocol, strlen(protocol)))
        return -EINVAL;
    char *p = strdup(protocol);
    if (!p)
        return -ENOMEM;
    free(c->protocol);
    c->protocol = p;
    return 0;
}

int wisp_conn_add_header(struct wisp_conn *c, const char *name, const char *value)
{
    if (!c || !name || !value || !c->up || !*name)
        return -EINVAL;
    for (const char *p = value; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t')
            return -EINVAL;
    struct wisp_http_header *v = realloc(c->extra, (c->nextra + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    c->extra = v;
    char *n = strdup(name), *val = strdup(value);
    if (!n || !val) {
        free(n);
        free(val);
        return -ENOMEM;
    }
    v[c->nextra++] = (struct wisp_http_header){n, strlen(n), val, strlen(val)};
    /* The name's validity (a token, not one wisp writes) is checked by the 101 writer; check
     * it now so the caller hears about it here. */
    char probe[1024];
    struct wisp_ws_accept_opts o = {.headers = &v[c->nextra - 1], .num_headers = 1};
    if (wisp_ws_upgrade_accept(c->up, &o, probe, sizeof probe) == -EINVAL) {
        c->nextra--;
        free(n);
        free(val);
        return -EINVAL;
    }
    return 0;
}

static void free_extra(struct wisp_conn *c)
{
    for (uint32_t i = 0; i < c->nextra; i++) {
        free((char *)(uintptr_t)c->extra[i].name);
        free((char *)(uintptr_t)c->extra[i].value);
    }
    free(c->extra);
    c->extra = NULL;
    c->nextra = 0;
}

/* ---- receiving: WebSocket events ------------------------------------------------------------- */

static void deliver(struct wisp_conn *c, enum wisp_ws_opcode op, const uint8_t *data, size_t len)
{
    const struct wisp_handler *h = handler_of(c);
    if (op == WISP_WS_OP_TEXT) {
        if (h->on_text)
            h->on_text(c, c->state, (const char *)data, len);
    } else if (h->on_binary) {
        h->on_binary(c, c->state, data, len);
    }
}

/* on_frame mode: the engine streams pieces; the hook filters them; we reassemble. */
static void piece(struct wisp_conn *c, const struct wisp_ws_event *ev)
{
    const struct wisp_handler *h = handler_of(c);
    struct wisp_frame f = {ev->opcode, ev->first, ev->last, ev->data, ev->len};
    bool pass = h->on_frame(c, c->state, &f) != WISP_FRAME_DROP;
    if (pass && f.len && !(ev->first && ev->last)) {
        if (c->msg_len + f.len > c->msg_cap) {
            size_t cap = c->msg_cap ? c->msg_cap : 4096;
            while (cap < c->msg_len + f.len)
                cap *= 2;
            uint8_t *m = realloc(c->msg, cap);
            if (!m) {
                library_close(c, WISP_CLOSE_INTERNAL_ERROR, WISP_WHY_NO_MEMORY, "out of memory");
                return;
            }
            c->msg = m;
            c->msg_cap = cap;
        }
        memcpy(c->msg + c->msg_len, f.data, f.len);
        c->msg_len += f.len;
    }
    if (!ev->last)
        return;
    if (ev->first && pass) {
        deliver(c, ev->opcode, f.data, f.len); /* arrived whole: no copy */
    } else {
        deliver(c, ev->opcode, c->msg, c->msg_len);
    }
    c->msg_len = 0;
    if (c->msg_cap > 65536) {
        free(c->msg);
        c->msg = NULL;
        c->msg_cap = 0;
    }
}

static bool control_hook(struct wisp_conn *c, const struct wisp_ws_event *ev,
                         struct wisp_frame *f)
{
    const struct wisp_handler *h = handler_of(c);
    *f = (struct wisp_frame){ev->opcode, true, true, ev->data, ev->len};
    return h->on_frame && h->on_frame(c, c->state, f) == WISP_FRAME_DROP;
}

static enum wisp_close_why why_of_fault(uint16_t code)
{
    switch (code) {
    case WISP_CLOSE_INVALID_DATA:
        return WISP_WHY_BAD_UTF8;
    case WISP_CLOSE_TOO_BIG:
        return WISP_WHY_TOO_BIG;
    case WISP_CLOSE_INTERNAL_ERROR:
        return WISP_WHY_NO_MEMORY;
    default:
        return WISP_WHY_PROTOCOL;
    }
}

static void on_event(struct wisp_conn *c, const struct wisp_ws_event *ev)
{
    const struct wisp_handler *h = handler_of(c);
    struct wisp_frame f;
    switch (ev->type) {
    case WISP_WS_EV_NONE:
        break;
    case WISP_WS_EV_MESSAGE:
        if (c->phase == PH_OPEN)
            deliver(c, ev->opcode, ev->data, ev->len);
        break;
    case WISP_WS_EV_FRAGMENT:
        if (c->phase == PH_OPEN)
            piece(c, ev);
        break;
    case WISP_WS_EV_PING:
        if (control_hook(c, ev, &f))
            break;
        if (c->phase == PH_OPEN) {
            /* The automatic pong skips on_send_frame: it is wisp's answer, not the app's. */
            if (send_control(c, WISP_WS_OP_PONG, f.data, f.len) < 0)
                library_close(c, WISP_CLOSE_INTERNAL_ERROR, WISP_WHY_NO_MEMORY, "out of memory");
            else if (h->on_ping)
                h->on_ping(c, c->state, f.data, f.len);
        }
        break;
    case WISP_WS_EV_PONG:
        if (control_hook(c, ev, &f))
            break;
        c->ping_ms = 0;
        if (h->on_pong && c->phase == PH_OPEN)
            h->on_pong(c, c->state, f.data, f.len);
        break;
    case WISP_WS_EV_CLOSE:
        control_hook(c, ev, &f); /* shown, never dropped */
        if (c->phase == PH_OPEN) {
            record(c, ev->close_code, (const char *)ev->data, ev->len, WISP_CLOSED_BY_PEER,
                   WISP_WHY_NORMAL);
            /* Echo the peer's code (1005 echoes as an empty close). */
            queue_close(c, ev->close_code, NULL, 0, false);
        }
        c->info.clean = true;
        finish(c, true);
        break;
    case WISP_WS_EV_FAULT:
        c->info.fault = ev->fault;
        library_close(c, ev->close_code, why_of_fault(ev->close_code), wisp_ws_fault_str(ev->fault));
        c->info.fault = ev->fault;
        break;
    }
}

static void feed_ws(struct wisp_conn *c, uint8_t *p, size_t len)
{
    while (len && c->phase < PH_DRAIN) {
        struct wisp_ws_event ev;
        ssize_t n = wisp_ws_recv(&c->ws, p, len, &ev);
        if (n < 0)
            break;
        p += n;
        len -= (size_t)n;
        on_event(c, &ev);
        owed_callbacks(c);
    }
}

/* ---- receiving: the request head ------------------------------------------------------------ */

static void plain_http(struct wisp_conn *c, const struct wispi_route *route,
                       const struct wisp_http_request *req)
{
    if (!route) {
        reject(c, 404);
        return;
    }
    if (!route->r.on_http) {
        reject(c, route->r.handler ? 426 : 404);
        return;
    }
    struct wisp_http_reply reply;
    memset(&reply, 0, sizeof reply);
    int st = route->r.on_http(route->r.data, req, (const struct sockaddr *)&c->peer, &reply);
    if (st != 0) {
        reject(c, st);
        return;
    }
    size_t cap = 1024 + reply.answer.body_len;
    for (size_t i = 0; i < reply.answer.num_headers; i++)
        cap += reply.answer.headers[i].name_len + reply.answer.headers[i].value_len + 4;
    if (reply.answer.content_type)
        cap += strlen(reply.answer.content_type);
    uint8_t *out = wispi_txq_reserve(c->net, &c->txq, cap);
    ssize_t n = out ? wisp_http_write_response(&reply.answer, (char *)out, cap) : -ENOMEM;
    if (reply.release)
        reply.release((void *)(uintptr_t)reply.answer.body, reply.answer.body_len,
                      reply.release_arg);
    if (n < 0) {
        reject(c, 500);
        return;
    }
    wispi_txq_commit(&c->txq, (size_t)n, true);
    answer_and_close(c, NULL, 0);
}

static const char *pick_protocol(const struct wispi_route *route, const struct wisp_ws_upgrade *up)
{
    for (size_t i = 0; i < route->r.num_protocols; i++) {
        const char *p = route->r.protocols[i];
        if (wisp_ws_upgrade_offers(up, p, strlen(p)))
            return p;
    }
    return NULL;
}

static int open_ws(struct wisp_conn *c, const struct wispi_route *route,
                   const struct wisp_ws_upgrade *up)
{
    const struct wisp_handler *h = route->r.handler;
    c->route = route;
    if (wisp_ws_init(&c->ws, &route->cfg) < 0)
        return 500;
    if (h->on_upgrade) {
        struct wisp_upgrade req = {up, (const struct sockaddr *)&c->peer, c->peer_len};
        c->up = up;
        int st = h->on_upgrade(c, c->state, &req);
        c->up = NULL;
        if (st != 0)
            return st;
    }
    if (!c->protocol) {
        const char *p = pick_protocol(route, up);
        if (p && !(c->protocol = strdup(p)))
            return 500;
    }
    c->path = strndup(up->path, up->path_len);
    if (!c->path)
        return 500;
    struct wisp_ws_accept_opts o = {
        .protocol = c->protocol,
        .protocol_len = c->protocol ? strlen(c->protocol) : 0,
        .headers = c->extra,
        .num_headers = c->nextra,
    };
    size_t cap = 512 + o.protocol_len;
    for (uint32_t i = 0; i < c->nextra; i++)
        cap += c->extra[i].name_len + c->extra[i].value_len + 4;
    uint8_t *out = wispi_txq_reserve(c->net, &c->txq, cap);
    if (!out)
        return 500;
    ssize_t n = wisp_ws_upgrade_accept(up, &o, (char *)out, cap);
    free_extra(c);
    if (n < 0)
        return 500;
    wispi_txq_commit(&c->txq, (size_t)n, true);
    wispi_sock_dirty(c->net, &c->sock);
    c->phase = PH_OPEN;
    c->deadline_ms = 0;
    c->opened = true;
    if (h->on_open)
        h->on_open(c, c->state);
    owed_callbacks(c);
    return 0;
}

/* A whole request head is in c->head (head_len bytes of it). */
static void on_request(struct wisp_conn *c, const struct wisp_http_request *req, size_t head_len)
{
    const struct wispi_route *route = wispi_route_find(c->srv, req->path, req->path_len);
    bool upgrade = wisp_http_list_has(req->headers, req->num_headers, "Upgrade", "websocket");
    if (!upgrade) {
        plain_http(c, route, req);
        return;
    }
    if (!route || !route->r.handler) {
        reject(c, 404);
        return;
    }
    struct wisp_ws_upgrade up;
    int st = wisp_ws_upgrade_check(req, &up);
    if (st == 0)
        st = open_ws(c, route, &up);
    free_extra(c);
    if (st != 0) {
        c->opened = false;
        reject(c, st);
        return;
    }
    /* Frames that came right behind the head. */
    size_t rest = c->head_len - head_len;
    if (rest)
        feed_ws(c, (uint8_t *)c->head + head_len, rest);
    free(c->head);
    c->head = NULL;
}

static void feed_head(struct wisp_conn *c, const uint8_t *p, size_t len)
{
    uint32_t max = c->srv->opts.max_request_head;
    if (!c->head && !(c->head = malloc(max))) {
        reject(c, 503);
        return;
    }
    while (len && c->phase == PH_HANDSHAKE) {
        size_t take = max - c->head_len < len ? max - c->head_len : len;
        size_t prev = c->head_len;
        memcpy(c->head + c->head_len, p, take);
        c->head_len += (uint32_t)take;
        p += take;
        len -= take;
        struct wisp_http_header hdrs[WISP_HTTP_DEFAULT_MAX_HEADERS];
        struct wisp_http_request req;
        struct wisp_http_limits lim = {max, WISP_HTTP_DEFAULT_MAX_HEADERS};
        ssize_t n = wisp_http_parse_request(c->head, c->head_len, prev, &lim, &req, hdrs,
                                            WISP_HTTP_DEFAULT_MAX_HEADERS);
        if (n == WISP_EINCOMPLETE) {
            if (c->head_len == max)
                reject(c, 431);
            continue;
        }
        if (n < 0) {
            reject(c, req.status >= 400 ? req.status : 400);
            return;
        }
        on_request(c, &req, (size_t)n);
        if (len && c->phase >= PH_OPEN && c->phase < PH_DRAIN)
            feed_ws(c, (uint8_t *)(uintptr_t)p, len); /* the rest of this buffer */
        return;
    }
}

/* ---- the actor's side of I/O ------------------------------------------------------------------ */

static bool reading_wanted(const struct wisp_conn *c)
{
    return !c->eof && !c->io_error && !c->paused_held && !c->paused_mbox &&
           (c->phase == PH_HANDSHAKE || c->phase == PH_OPEN || c->phase == PH_CLOSING);
}

static void check_mailbox(struct wisp_conn *c)
{
    struct wispi_actor *a = c->sock.ref;
    /* relaxed: a load-dependent heuristic; the counter is exact enough to pause and resume */
    uint32_t pending = atomic_load_explicit(&a->pending, memory_order_relaxed);
    if (!c->paused_mbox && pending > a->limit) {
        c->paused_mbox = true;
        stop_reading(c);
    } else if (c->paused_mbox && pending <= a->limit / 2) {
        c->paused_mbox = false;
    }
    if (c->paused_mbox || reading_wanted(c))
        wispi_sock_dirty(c->net, &c->sock); /* re-check after the turn / re-arm */
}

static void deadlines(struct wisp_conn *c)
{
    uint64_t now = now_ms(c);
    const struct wisp_server_opts *o = &c->srv->opts;
    c->tick_due = false;
    if (c->deadline_ms && now >= c->deadline_ms) {
        switch (c->phase) {
        case PH_HANDSHAKE:
        case PH_HTTP:
            close_now(c); /* slowloris, or a client that does not read our answer */
            return;
        case PH_CLOSING:
            abort_conn(c, WISP_WHY_CLOSE_TIMEOUT, 0);
            return;
        case PH_DRAIN:
            wispi_txq_drop_unsent(c->net, &c->txq);
            close_now(c);
            return;
        default:
            break;
        }
    }
    if (c->phase != PH_OPEN || !o->idle_timeout_ms)
        return;
    if (c->ping_ms && now - c->ping_ms >= o->pong_timeout_ms) {
        abort_conn(c, WISP_WHY_TIMEOUT, 0);
    } else if (!c->ping_ms && now - c->last_rx_ms >= o->idle_timeout_ms) {
        if (send_control(c, WISP_WS_OP_PING, "wisp", 4) == 0)
            c->ping_ms = now;
    }
}

static void conn_io(struct wisp_ctx *ctx, struct wispi_sock *s)
{
    struct wisp_conn *c = of_sock(s);
    c->ctx = ctx;
    uint32_t len;
    uint16_t bid;
    while ((bid = wispi_rxq_pop(c->net, &c->rxq, &len)) != WISPI_NO_BUF) {
        uint8_t *p = wispi_buf_addr(c->net, bid);
        if (c->phase == PH_HANDSHAKE)
            feed_head(c, p, len);
        else if (c->phase == PH_OPEN || c->phase == PH_CLOSING)
            feed_ws(c, p, len);
        wispi_buf_return(c->net, bid); /* events pointing into it are all delivered */
    }
    if (c->paused_held && c->rxq.count < c->srv->opts.max_held_buffers / 2 + 1)
        c->paused_held = false;
    if (c->io_error)
        abort_conn(c, WISP_WHY_IO_ERROR, c->io_error);
    else if (c->eof && c->phase < PH_DRAIN && c->phase != PH_HTTP)
        abort_conn(c, WISP_WHY_ABNORMAL, 0);
    if (c->tick_due)
        deadlines(c);
    owed_callbacks(c);
    if (c->phase == PH_HTTP && c->eof)
        close_now(c); /* the client went away before reading our answer */
    if ((c->phase == PH_DRAIN || c->phase == PH_HTTP) && !c->txq.sending && !c->txq.head &&
        !c->txq.ctrl_head)
        close_now(c);
    if (c->phase != PH_DONE)
        check_mailbox(c);
}

static void conn_cqe(struct wispi_net *net, struct wispi_sock *s, unsigned tag, int32_t res,
                     uint32_t flags)
{
    struct wisp_conn *c = of_sock(s);
    if (tag == UD_NET_RECV) {
        if (flags & IORING_CQE_F_BUFFER) {
            uint16_t bid = (uint16_t)(flags >> IORING_CQE_BUFFER_SHIFT);
            if (res > 0 && !s->closing && c->phase < PH_DRAIN) {
                wispi_rxq_push(net, &c->rxq, bid, (uint32_t)res);
                c->last_rx_ms = net->w->now_ms;
                c->ping_ms = 0; /* any byte shows the peer is alive */
                if (c->rxq.count >= c->srv->opts.max_held_buffers && !c->paused_held) {
                    c->paused_held = true;
                    stop_reading(c);
                }
            } else {
                wispi_buf_return(net, bid);
            }
        }
        if (!(flags & IORING_CQE_F_MORE)) {
            c->recv_armed = false;
            c->recv_cancelled = false;
            if (res == -ENOBUFS)
                c->recv_parked = true;
            else if (res == 0)
                c->eof = true;
            else if (res < 0 && res != -ECANCELED)
                c->io_error = res;
            wispi_sock_dirty(net, s); /* re-arm, if still wanted, at the flush */
        }
        wispi_sock_notify(net, s);
    } else if (tag == UD_NET_SEND) {
        if (res > 0) {
            wispi_txq_sent(net, &c->txq, (size_t)res);
        } else {
            c->txq.sending = false;
            c->txq.in_flight = 0;
            if (res != -ECANCELED)
                c->io_error = res ? res : -EPIPE;
        }
        if (c->txq.head || c->txq.ctrl_head)
            wispi_sock_dirty(net, s);
        if (c->throttled && c->route && c->txq.buffered <= c->route->r.send_low_watermark) {
            c->throttled = false;
            c->cb_unthrottled = true;
            wispi_sock_notify(net, s);
        }
        if (c->io_error || c->phase == PH_DRAIN || c->phase == PH_HTTP)
            wispi_sock_notify(net, s);
    }
}

static void arm_recv(struct wispi_net *net, struct wisp_conn *c)
{
    struct io_uring_sqe *sqe = wispi_sock_sqe(net, &c->sock, UD_NET_RECV);
    if (!sqe)
        return;
    io_uring_prep_recv_multishot(sqe, c->sock.fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = 0;
    c->recv_armed = true;
    c->recv_parked = false;
}

static void conn_flush(struct wispi_net *net, struct wispi_sock *s)
{
    struct wisp_conn *c = of_sock(s);
    wispi_txq_start(net, s, &c->txq);
    if (c->paused_mbox && c->sock.actor) {
        struct wispi_actor *a = c->sock.ref;
        /* relaxed: see check_mailbox */
        if (atomic_load_explicit(&a->pending, memory_order_relaxed) <= a->limit / 2)
            c->paused_mbox = false;
        else
            wispi_sock_dirty(net, s); /* look again after the next turns */
    }
    if (c->recv_armed || !reading_wanted(c))
        return;
    /* After ENOBUFS, wait until a useful share of the ring is back rather than fail again. */
    if (c->recv_parked && wispi_bufs_free(net) < net->nbufs / 8) {
        wispi_sock_dirty(net, s);
        return;
    }
    arm_recv(net, c);
}

static void conn_sweep(struct wispi_net *net, struct wispi_sock *s, uint64_t now)
{
    struct wisp_conn *c = of_sock(s);
    const struct wisp_server_opts *o = &c->srv->opts;
    bool due = c->deadline_ms && now >= c->deadline_ms;
    if (c->phase == PH_OPEN && o->idle_timeout_ms) {
        if (c->ping_ms ? now - c->ping_ms >= o->pong_timeout_ms
                       : now - c->last_rx_ms >= o->idle_timeout_ms)
            due = true;
    }
    if (due && c->sock.actor) {
        c->tick_due = true;
        wispi_sock_notify(net, s);
    }
}

static void conn_teardown(struct wispi_sock *s)
{
    struct wisp_conn *c = of_sock(s);
    /* Buffers still queued go back (unless the ring is gone: then the memory is too). */
    if (c->net->w->ring) {
        uint32_t len;
        uint16_t bid;
        while ((bid = wispi_rxq_pop(c->net, &c->rxq, &len)) != WISPI_NO_BUF)
            wispi_buf_return(c->net, bid);
    }
    wispi_txq_free(c->net, &c->txq);
    wisp_ws_deinit(&c->ws);
    free(c->head);
    free(c->path);
    free(c->protocol);
    free(c->msg);
    free(c->close_reason);
    free_extra(c);
    c->head = c->path = c->protocol = c->close_reason = NULL;
    c->msg = NULL;
}

static const struct wispi_sock_ops conn_ops = {
    .cqe = conn_cqe,
    .io = conn_io,
    .flush = conn_flush,
    .sweep = conn_sweep,
    .teardown = conn_teardown,
};

/* ---- the actor --------------------------------------------------------------------------------- */

static void release_counts(struct wisp_conn *c)
{
    /* relaxed: counters for the connection limits; placement tolerates a stale value */
    atomic_fetch_sub_explicit(&c->srv->conns, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&c->net->w->conns, 1, memory_order_relaxed);
}

static int conn_init(struct wisp_ctx *ctx, void *state, const void *arg, size_t len)
{
    struct wisp_conn *c = state;
    const struct conn_arg *a = arg;
    c->srv = a->srv;
    c->ctx = ctx;
    c->net = wispi_net_get(ctx->worker);
    if (!c->net || wispi_sock_register(c->net, &c->sock, a->fd, &conn_ops, ctx->actor) < 0) {
        close(a->fd);
        /* relaxed: see release_counts */
        atomic_fetch_sub_explicit(&c->srv->conns, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&ctx->worker->conns, 1, memory_order_relaxed);
        return -ENOMEM;
    }
    c->rxq.head = c->rxq.tail = WISPI_NO_BUF;
    c->peer_len = sizeof c->peer;
    if (getpeername(a->fd, (struct sockaddr *)&c->peer, &c->peer_len) < 0)
        c->peer_len = 0;
    if (c->srv->opts.tcp_nodelay) {
        int one = 1;
        setsockopt(a->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    c->phase = PH_HANDSHAKE;
    c->last_rx_ms = now_ms(c);
    c->deadline_ms = c->last_rx_ms + c->srv->opts.handshake_timeout_ms;
    wispi_sock_dirty(c->net, &c->sock); /* arm the first recv at the flush */
    return 0;
}

static void from_actor(struct wisp_conn *c, const struct wisp_msg *msg)
{
    int rc;
    if (msg->type == WISPI_MSG_CLOSE) {
        uint16_t code;
        memcpy(&code, msg->data, sizeof code);
        const char *reason = (const char *)msg->data + sizeof code;
        rc = local_close(c, code, reason, msg->len - sizeof code);
    } else {
        rc = send_message(c, msg->type == WISPI_MSG_SEND_TEXT ? WISP_WS_OP_TEXT
                                                              : WISP_WS_OP_BINARY,
                          msg->data, msg->len);
        if (rc < 0 && !wisp_addr_is_none(msg->from)) {
            /* Nothing is dropped silently: the sender hears about it. */
            struct wisp_ws_dropped d = {wisp_conn_addr(c), msg->len};
            wispi_send_internal(c->srv->rt, c->sock.ref, msg->from, WISP_MSG_WS_DROPPED, &d,
                                sizeof d);
        }
    }
    const struct wisp_handler *h = handler_of(c);
    if (rc < 0 && rc != WISP_ECLOSED && h && h->on_error)
        h->on_error(c, c->state, rc, "a message from another actor could not be sent");
}

static void conn_receive(struct wisp_ctx *ctx, void *state, const struct wisp_msg *msg)
{
    struct wisp_conn *c = state;
    c->ctx = ctx;
    const struct wisp_handler *h = handler_of(c);
    switch (msg->type) {
    case WISPI_MSG_SHUTDOWN:
        if (c->phase == PH_HANDSHAKE) {
            close_now(c);
        } else if (c->phase == PH_OPEN) {
            if (h->on_shutdown)
                h->on_shutdown(c, c->state);
            if (c->phase == PH_OPEN && local_close(c, WISP_CLOSE_GOING_AWAY, "server shutdown",
                                                   15) == 0) {
                c->info.by = WISP_CLOSED_BY_LIBRARY;
                c->info.why = WISP_WHY_SHUTDOWN;
            }
        }
        break;
    case WISPI_MSG_SEND_TEXT:
    case WISPI_MSG_SEND_BINARY:
    case WISPI_MSG_CLOSE:
        if (c->phase == PH_DONE)
            break;
        from_actor(c, msg);
        break;
    default:
        if (!h)
            break; /* not upgraded yet: nobody to tell */
        if (msg->timer && h->on_timer)
            h->on_timer(c, c->state, msg);
        else if (h->on_info)
            h->on_info(c, c->state, msg);
        break;
    }
    if (c->phase != PH_DONE) {
        owed_callbacks(c);
        check_mailbox(c);
    }
}

static void conn_terminate(struct wisp_ctx *ctx, void *state, struct wisp_exit reason)
{
    struct wisp_conn *c = state;
    c->ctx = ctx;
    if (c->phase != PH_DONE) {
        /* Stopped from outside (killed at the shutdown deadline, or the runtime ended). */
        if (c->phase < PH_DRAIN && c->opened)
            record(c, WISP_CLOSE_ABNORMAL, NULL, 0, WISP_CLOSED_BY_LIBRARY, WISP_WHY_SHUTDOWN);
        c->phase = PH_DRAIN; /* so finish() below does not run again */
        if (c->opened) {
            c->opened = false;
            const struct wisp_handler *h = handler_of(c);
            if (h && h->on_closed)
                h->on_closed(c, c->state, &c->info);
        }
        c->phase = PH_DONE;
        wispi_sock_close(c->net, &c->sock);
    }
    (void)reason;
    release_counts(c);
    c->sock.actor = NULL; /* no more notifications; the socket still holds our memory */
}

void wispi_conn_def_init(struct wisp_actor_def *def, size_t state_size)
{
    memset(def, 0, sizeof *def);
    def->name = "wisp-connection";
    def->state_size = sizeof(struct wisp_conn) + state_size;
    def->init = conn_init;
    def->receive = conn_receive;
    def->terminate = conn_terminate;
}

int wispi_conn_arg(struct wisp_server *srv, int fd, void *out, size_t cap)
{
    struct conn_arg a = {srv, fd};
    if (cap < sizeof a)
        return -EINVAL;
    memcpy(out, &a, sizeof a);
    return (int)sizeof a;
}
