/* The connection actor: its init, messages from other actors, I/O completions, re-arming
 * reads, deadlines and the end of its life. The full story is in conn.h. */
#include <errno.h>
#include <liburing.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "internal.h"
#include "tls.h"

struct conn_arg {
    struct wisp_server *srv;
    int fd;
    struct wispi_client *client;  /* a client connection (fd -1), or NULL */
    struct wispi_tls_ctx *tls;    /* the listener's TLS contexts, or NULL */
};

static const struct wispi_sock_ops conn_ops;
static void drop_early(struct wisp_conn *c);

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
        wispi_conn_stop_reading(c);
    } else if (c->paused_mbox && pending <= a->limit / 2) {
        c->paused_mbox = false;
    }
    /* Flush after the turn only if there is something to do: look at the mailbox again, or
     * re-arm a receive that is not armed (an armed one needs nothing). */
    if (c->paused_mbox || (!c->recv_armed && reading_wanted(c)))
        wispi_sock_dirty(c->net, &c->sock);
}

static void deadlines(struct wisp_conn *c)
{
    uint64_t now = now_ms(c);
    const struct wisp_server_opts *o = &c->srv->opts;
    c->tick_due = false;
    if (c->deadline_ms && now >= c->deadline_ms) {
        switch (c->phase) {
        case PH_CONNECTING:
        case PH_HANDSHAKE:
            if (c->client) {
                wispi_client_fail(c, -ETIMEDOUT, "the connection did not open in time");
                return;
            }
            CONN_STAT(c, handshake_failures, 1);
            wispi_conn_close_now(c); /* slowloris */
            return;
        case PH_HTTP:
            wispi_conn_close_now(c); /* a client that does not read our answer */
            return;
        case PH_CLOSING:
            wispi_conn_abort_conn(c, WISP_WHY_CLOSE_TIMEOUT, 0);
            return;
        case PH_DRAIN:
            wispi_txq_drop_unsent(c->net, &c->txq);
            wispi_conn_close_now(c);
            return;
        default:
            break;
        }
    }
    if (c->phase != PH_OPEN || !o->idle_timeout_ms)
        return;
    if (c->ping_ms && now - c->ping_ms >= o->pong_timeout_ms) {
        wispi_conn_abort_conn(c, WISP_WHY_TIMEOUT, 0);
    } else if (!c->ping_ms && now - c->last_rx_ms >= o->idle_timeout_ms) {
        if (wispi_conn_send_control(c, WISP_WS_OP_PING, "wisp", 4) == 0)
            c->ping_ms = now;
    }
}

/* Plain bytes from the peer, to whichever parser the phase needs. */
static void feed(struct wisp_conn *c, uint8_t *p, size_t len)
{
    if (c->phase == PH_HANDSHAKE && c->client)
        wispi_client_feed_head(c, p, len);
    else if (c->phase == PH_HANDSHAKE)
        wispi_conn_feed_head(c, p, len);
    else if (c->phase == PH_OPEN || c->phase == PH_CLOSING)
        wispi_conn_feed_ws(c, p, len);
}

static void conn_io(struct wisp_ctx *ctx, struct wispi_sock *s)
{
    struct wisp_conn *c = of_sock(s);
    c->ctx = ctx;
    uint32_t len;
    uint16_t bid;
    while ((bid = wispi_rxq_pop(c->net, &c->rxq, &len)) != WISPI_NO_BUF) {
        uint8_t *p = wispi_buf_addr(c->net, bid);
        if (c->tls && c->phase < PH_DRAIN)
            wispi_tls_input(c, p, len, feed);
        else
            feed(c, p, len);
        wispi_buf_return(c->net, bid); /* events pointing into it are all delivered */
    }
    if (c->paused_held && c->rxq.count < c->srv->opts.max_held_buffers / 2 + 1)
        c->paused_held = false;
    if (c->phase == PH_CONNECTING && c->connect_done) {
        c->connect_done = false;
        wispi_client_connected(c, c->connect_res);
    }
    if (c->client && c->phase < PH_OPEN && (c->io_error || c->eof))
        wispi_client_fail(c, c->io_error ? c->io_error : -ECONNRESET,
                          "the server closed the connection before the upgrade");
    else if (c->io_error)
        wispi_conn_abort_conn(c, WISP_WHY_IO_ERROR, c->io_error);
    else if (c->eof && c->phase < PH_DRAIN && c->phase != PH_HTTP)
        wispi_conn_abort_conn(c, WISP_WHY_ABNORMAL, 0);
    if (c->tick_due)
        deadlines(c);
    wispi_conn_owed_callbacks(c);
    if (c->phase == PH_HTTP && c->eof)
        wispi_conn_close_now(c); /* the client went away before reading our answer */
    if ((c->phase == PH_DRAIN || c->phase == PH_HTTP) && conn_tx_idle(c))
        wispi_conn_close_now(c);
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
                    wispi_conn_stop_reading(c);
                }
            } else {
                wispi_buf_return(net, bid);
            }
        }
        if (!(flags & IORING_CQE_F_MORE)) {
            c->recv_armed = false;
            c->recv_cancelled = false;
            if (res == -ENOBUFS) {
                c->recv_parked = true;
                wispi_stat_add(&net->w->recv_buffer_waits, 1);
            }
            else if (res == 0)
                c->eof = true;
            else if (res < 0 && res != -ECANCELED)
                c->io_error = res;
            wispi_sock_dirty(net, s); /* re-arm, if still wanted, at the flush */
        }
        wispi_sock_notify(net, s);
    } else if (tag == UD_NET_CONNECT) {
        c->connect_res = res;
        c->connect_done = true;
        wispi_sock_notify(net, s);
    } else if (tag == UD_NET_SEND) {
        struct wispi_txq *wire = c->tls ? &c->ctxq : &c->txq;
        if (res > 0) {
            wispi_txq_sent(net, wire, (size_t)res);
        } else {
            wire->sending = false;
            wire->in_flight = 0;
            if (res != -ECANCELED)
                c->io_error = res ? res : -EPIPE;
        }
        if (!conn_tx_idle(c))
            wispi_sock_dirty(net, s);
        if (c->throttled && c->route && conn_buffered(c) <= c->route->r.send_low_watermark) {
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
    if (c->tls) {
        if ((c->txq.head || c->txq.ctrl_head) && wispi_tls_encrypt(c) < 0)
            return;
        wispi_txq_start(net, s, &c->ctxq);
    } else {
        wispi_txq_start(net, s, &c->txq);
    }
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
    wispi_conn_leave_all(c);
    wispi_txq_free(c->net, &c->txq);
    wispi_txq_free(c->net, &c->ctxq);
    wispi_tls_conn_free(c);
    wisp_ws_deinit(&c->ws);
    free(c->head);
    free(c->path);
    free(c->protocol);
    free(c->msg);
    free(c->close_reason);
    wispi_conn_free_extra(c);
    c->head = c->path = c->protocol = c->close_reason = NULL;
    c->msg = NULL;
    drop_early(c);
    /* A client's settings (c->srv, c->route) go with whichever of the socket and the actor
     * ends last (see conn_terminate). */
    if (c->client && !c->sock.actor) {
        wispi_client_free(c->client);
        c->client = NULL;
    }
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
    /* TLS first: over the worker's handshake cap the connection is refused right here. */
    if (!c->net || (a->tls && wispi_tls_conn_new(c, a->tls) < 0) ||
        wispi_sock_register(c->net, &c->sock, a->fd, &conn_ops, ctx->actor) < 0) {
        if (c->net)
            wispi_tls_conn_free(c);
        if (a->fd >= 0)
            close(a->fd);
        /* relaxed: see release_counts */
        atomic_fetch_sub_explicit(&c->srv->conns, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&ctx->worker->conns, 1, memory_order_relaxed);
        wispi_client_free(a->client);
        return -ENOMEM;
    }
    c->rxq.head = c->rxq.tail = WISPI_NO_BUF;
    if (a->client) {
        /* A client connection: resolve, connect, then the upgrade (conn_client.c). */
        c->client = a->client;
        c->route = wispi_client_route(a->client);
        c->phase = PH_CONNECTING;
        c->last_rx_ms = now_ms(c);
        c->deadline_ms = c->last_rx_ms + c->srv->opts.handshake_timeout_ms;
        wispi_client_start(c);
        return 0;
    }
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

static void drop_notice(struct wisp_conn *c, wisp_addr to, size_t len)
{
    if (wisp_addr_is_none(to))
        return;
    struct wisp_ws_dropped d = {wisp_conn_addr(c), len};
    wispi_send_internal(c->srv->rt, NULL, to, WISP_MSG_WS_DROPPED, &d, sizeof d);
}

/* Keep a message that came before the connection opened (within the send cap). */
static bool stash_early(struct wisp_conn *c, const struct wisp_msg *msg)
{
    size_t cap = c->route ? c->route->r.send_cap : (size_t)1 << 20;
    struct wispi_early *e = NULL;
    if (c->early_bytes + msg->len <= cap)
        e = malloc(sizeof *e + msg->len);
    if (!e)
        return false;
    e->next = NULL;
    e->type = msg->type;
    e->from = msg->from;
    e->len = msg->len;
    if (msg->len)
        memcpy(e->data, msg->data, msg->len);
    if (c->early_tail)
        c->early_tail->next = e;
    else
        c->early = e;
    c->early_tail = e;
    c->early_bytes += msg->len;
    return true;
}

static void from_actor(struct wisp_conn *c, const struct wisp_msg *msg)
{
    int rc;
    if (c->phase < PH_OPEN && c->phase != PH_HTTP) {
        if (!stash_early(c, msg) && msg->type != WISPI_MSG_CLOSE)
            drop_notice(c, msg->from, msg->len);
        return;
    }
    if (msg->type == WISPI_MSG_CLOSE) {
        uint16_t code;
        memcpy(&code, msg->data, sizeof code);
        const char *reason = (const char *)msg->data + sizeof code;
        rc = wispi_conn_local_close(c, code, reason, msg->len - sizeof code);
    } else {
        rc = wispi_conn_send_message(c, msg->type == WISPI_MSG_SEND_TEXT ? WISP_WS_OP_TEXT
                                                              : WISP_WS_OP_BINARY,
                          msg->data, msg->len);
        if (rc < 0) /* nothing is dropped silently: the sender hears about it */
            drop_notice(c, msg->from, msg->len);
    }
    const struct wisp_handler *h = handler_of(c);
    if (rc < 0 && rc != WISP_ECLOSED && h && h->on_error)
        h->on_error(c, c->state, rc, "a message from another actor could not be sent");
}

static void replay_early(struct wisp_conn *c)
{
    while (c->early) {
        struct wispi_early *e = c->early;
        c->early = e->next;
        if (!c->early)
            c->early_tail = NULL;
        c->early_bytes -= e->len;
        struct wisp_msg m = {.type = e->type, .from = e->from, .data = e->data, .len = e->len};
        from_actor(c, &m);
        free(e);
    }
}

void wispi_conn_opened(struct wisp_conn *c)
{
    const struct wisp_handler *h = handler_of(c);
    c->phase = PH_OPEN;
    c->deadline_ms = 0;
    c->opened = true; /* on_closed is owed from here on */
    CONN_STAT(c, opened, 1);
    wispi_conn_join_route(c);
    if (h->on_open)
        h->on_open(c, c->state);
    replay_early(c);
    wispi_conn_owed_callbacks(c);
}

/* The connection never opened: whoever sent it something hears of the drop. */
static void drop_early(struct wisp_conn *c)
{
    while (c->early) {
        struct wispi_early *e = c->early;
        c->early = e->next;
        if (e->type != WISPI_MSG_CLOSE)
            drop_notice(c, e->from, e->len);
        free(e);
    }
    c->early_tail = NULL;
    c->early_bytes = 0;
}

static void conn_receive(struct wisp_ctx *ctx, void *state, const struct wisp_msg *msg)
{
    struct wisp_conn *c = state;
    c->ctx = ctx;
    const struct wisp_handler *h = handler_of(c);
    switch (msg->type) {
    case WISPI_MSG_SHUTDOWN:
        if (c->phase == PH_CONNECTING || c->phase == PH_HANDSHAKE) {
            if (c->client)
                wispi_client_fail(c, WISP_ECLOSED, "the runtime is shutting down");
            else
                wispi_conn_close_now(c);
        } else if (c->phase == PH_OPEN) {
            if (h->on_shutdown)
                h->on_shutdown(c, c->state);
            if (c->phase == PH_OPEN &&
                wispi_conn_local_close(c, WISP_CLOSE_GOING_AWAY, "shutting down", 13) == 0) {
                c->info.by = WISP_CLOSED_BY_LIBRARY;
                c->info.why = WISP_WHY_SHUTDOWN;
            }
        }
        break;
    case WISPI_MSG_RESOLVED:
        if (c->client && msg->len == sizeof(int)) {
            int rc;
            memcpy(&rc, msg->data, sizeof rc);
            wispi_client_resolved(c, rc);
        }
        break;
    case WISPI_MSG_FRAME:
        wispi_conn_frame_msg(c, (struct wispi_frame *)(uintptr_t)msg->data);
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
        wispi_conn_owed_callbacks(c);
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
            wispi_conn_record(c, WISP_CLOSE_ABNORMAL, NULL, 0, WISP_CLOSED_BY_LIBRARY, WISP_WHY_SHUTDOWN);
        c->phase = PH_DRAIN; /* so wispi_conn_finish() below does not run again */
        wispi_conn_ended(c);
        c->phase = PH_DONE;
        wispi_sock_close(c->net, &c->sock);
    }
    (void)reason;
    release_counts(c);
    if (c->client && !c->sock.slot) { /* the socket is gone already: the settings go now */
        wispi_client_free(c->client);
        c->client = NULL;
    }
    c->sock.actor = NULL; /* no more notifications; the socket still holds our memory */
}

bool wispi_actor_is_conn(const struct wispi_actor *a)
{
    return a->def && a->def->receive == conn_receive;
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

int wispi_conn_arg_client(struct wispi_client *cl, void *out, size_t cap)
{
    struct conn_arg a = {wispi_client_server(cl), -1, cl, NULL};
    if (cap < sizeof a)
        return -EINVAL;
    memcpy(out, &a, sizeof a);
    return (int)sizeof a;
}

int wispi_conn_arg(struct wisp_server *srv, struct wispi_tls_ctx *tls, int fd, void *out,
                   size_t cap)
{
    struct conn_arg a = {srv, fd, NULL, tls};
    if (cap < sizeof a)
        return -EINVAL;
    memcpy(out, &a, sizeof a);
    return (int)sizeof a;
}
