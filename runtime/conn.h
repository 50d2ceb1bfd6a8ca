/* The connection actor: one per accepted socket, pinned to the worker whose ring does its I/O.
 *
 * It reads the request head, routes it, answers plain HTTP or upgrades, then runs the
 * WebSocket engine over the received buffers where the kernel put them and calls the route's
 * handler. Outgoing frames are queued (conn_tx.c) and written by the worker after the turn.
 *
 * Life of a connection (phase):
 *   CONNECTING client only: resolving the name and connecting (handshake deadline)
 *   HANDSHAKE  reading the request head (handshake deadline)
 *   HTTP       a plain answer or a refusal is queued; close once written
 *   OPEN       WebSocket traffic
 *   CLOSING    we sent close and wait for the peer's (close deadline)
 *   DRAIN      on_closed ran; the last bytes (a close frame) are being written
 *   DONE       the socket is closing and the actor stops
 *
 * Files: conn.c (the actor, its I/O, deadlines), conn_recv.c (request head, upgrade, frames
 * in), conn_send.c (frames out, the public calls), conn_close.c (every way it ends).
 */
#ifndef WISP_RUNTIME_CONN_H
#define WISP_RUNTIME_CONN_H

#include "conn_tx.h"
#include "pubsub.h"
#include "server_internal.h"

/* A send or close another actor asked for before the connection opened (replayed after
 * on_open, dropped with a notice if it never opens). */
struct wispi_early {
    struct wispi_early *next;
    uint32_t type;
    wisp_addr from;
    size_t len;
    unsigned char data[];
};

enum phase { PH_CONNECTING, PH_HANDSHAKE, PH_HTTP, PH_OPEN, PH_CLOSING, PH_DRAIN, PH_DONE };

struct wisp_conn {
    struct wispi_sock sock;
    struct wisp_server *srv;
    const struct wispi_route *route; /* known once the request head arrived */
    struct wispi_client *client;     /* client connections only (conn_client.c) */
    struct wisp_ctx *ctx;            /* during the actor's turn */
    struct wispi_net *net;
    struct wisp_ws ws;
    struct wispi_rxq rxq;
    struct wispi_txq txq;  /* frames (plain bytes), in wire order */
    struct wispi_txq ctxq; /* TLS only: ciphertext, what goes on the wire */
    struct wispi_tls *tls; /* TLS state (tls.c), or NULL for plain TCP */
    char *head;          /* the request head being collected (handshake only) */
    uint32_t head_len;
    char *path;          /* NUL-terminated request path, once upgraded */
    char *protocol;      /* chosen subprotocol or NULL */
    struct wisp_http_header *extra; /* response headers added in on_upgrade */
    uint32_t nextra;
    const struct wisp_ws_upgrade *up; /* during on_upgrade only */
    uint8_t *msg;        /* on_frame mode: the message being reassembled */
    size_t msg_len, msg_cap;
    bool msg_passed;     /* some piece of it passed on_frame */
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
    struct wispi_early *early; /* frames other actors sent before the connection opened */
    struct wispi_early *early_tail;
    size_t early_bytes;
    int connect_res;      /* client: the connect's result, once connect_done */
    bool connect_done;
    bool plain_http;      /* the request was plain HTTP, not an upgrade */
    bool in_route_group;  /* route_sub is in the route's group (broadcast/emit) */
    uint32_t nsubs;
    uint32_t frames_queued; /* shared frames on their way through the mailbox: until they
                               are handled, later ones must follow them there (order) */
    struct wispi_sub *subs; /* topic subscriptions (conn_pubsub.c) */
    struct wispi_sub route_sub;
    _Alignas(16) unsigned char state[];
};

static inline struct wisp_conn *of_sock(struct wispi_sock *s)
{
    return (struct wisp_conn *)(void *)s; /* sock is the first member */
}

static inline const struct wisp_handler *handler_of(const struct wisp_conn *c)
{
    return c->route ? c->route->r.handler : NULL;
}

/* Outgoing bytes not yet written: frames still plain plus ciphertext not yet sent. */
static inline size_t conn_buffered(const struct wisp_conn *c)
{
    return c->txq.buffered + c->ctxq.buffered;
}

/* Nothing queued and nothing in flight. */
static inline bool conn_tx_idle(const struct wisp_conn *c)
{
    return !c->txq.sending && !c->txq.head && !c->txq.ctrl_head && !c->ctxq.sending &&
           !c->ctxq.head;
}

/* This connection's counters on its worker; NULL for a client connection. */
static inline struct wispi_srv_stats *conn_stats(const struct wisp_conn *c)
{
    return c->srv->stats ? &c->srv->stats[c->net->w->index] : NULL;
}

#define CONN_STAT(c, field, n)                                                                 \
    do {                                                                                       \
        struct wispi_srv_stats *st_ = conn_stats(c);                                           \
        if (st_)                                                                               \
            wispi_stat_add(&st_->field, (n));                                                  \
    } while (0)

static inline uint64_t now_ms(const struct wisp_conn *c)
{
    return c->net->w->now_ms;
}

/* conn_close.c: queueing raw bytes, refusing, and every way a connection ends. */
int wispi_conn_queue_bytes(struct wisp_conn *c, const void *p, size_t n);
void wispi_conn_answer_and_close(struct wisp_conn *c, const char *p, size_t n);
void wispi_conn_reject(struct wisp_conn *c, int status);
void wispi_conn_owed_callbacks(struct wisp_conn *c);
void wispi_conn_record(struct wisp_conn *c, uint16_t code, const char *reason, size_t len,
                       enum wisp_close_by by, enum wisp_close_why why);
void wispi_conn_stop_reading(struct wisp_conn *c);
void wispi_conn_close_now(struct wisp_conn *c);
/* The conversation is over: leave every group, count the close, run on_closed if it is owed
 * (once). Both ways a connection ends (wispi_conn_finish, and a stop from outside) call it. */
void wispi_conn_ended(struct wisp_conn *c);
void wispi_conn_finish(struct wisp_conn *c, bool drain);
int wispi_conn_queue_close(struct wisp_conn *c, uint16_t code, const char *reason, size_t len,
                           bool urgent);
void wispi_conn_library_close(struct wisp_conn *c, uint16_t code, enum wisp_close_why why,
                              const char *reason);
void wispi_conn_abort_conn(struct wisp_conn *c, enum wisp_close_why why, int err);

/* conn_send.c: frames out. */
int wispi_conn_send_message(struct wisp_conn *c, enum wisp_ws_opcode op, const void *data,
                            size_t len);
int wispi_conn_send_control(struct wisp_conn *c, enum wisp_ws_opcode op, const void *data,
                            size_t len);
int wispi_conn_local_close(struct wisp_conn *c, uint16_t code, const char *reason, size_t len);
/* A shared frame, in the connection's turn: the full send path (room check and overflow
 * policy, watermarks, hooks). Returns as wisp_conn_send_text. */
int wispi_conn_send_shared(struct wisp_conn *c, struct wispi_frame *f);
/* Outside the turn: queue a shared frame if that needs no decision (a one-piece frame, server
 * role, no send hook, staying under the high watermark). False: take the mailbox. */
bool wispi_conn_try_shared(struct wisp_conn *c, struct wispi_frame *f);
void wispi_conn_free_extra(struct wisp_conn *c);

/* conn_client.c: client connections before they open. */
struct wispi_client;
void wispi_client_start(struct wisp_conn *c);
void wispi_client_resolved(struct wisp_conn *c, int rc);
void wispi_client_connected(struct wisp_conn *c, int res);
void wispi_client_feed_head(struct wisp_conn *c, uint8_t *p, size_t len);
void wispi_client_fail(struct wisp_conn *c, int err, const char *what);
void wispi_client_free(struct wispi_client *cl);
struct wisp_server *wispi_client_server(struct wispi_client *cl);
const struct wispi_route *wispi_client_route(struct wispi_client *cl);
int wispi_conn_arg_client(struct wispi_client *cl, void *out, size_t cap);

/* conn.c: the upgrade succeeded (either role): open, on_open, then send what other actors
 * sent before it. */
void wispi_conn_opened(struct wisp_conn *c);

/* conn_recv.c: the request head and the frames in. */
void wispi_conn_feed_head(struct wisp_conn *c, uint8_t *p, size_t len);
void wispi_conn_feed_ws(struct wisp_conn *c, uint8_t *p, size_t len);

#endif
