/* wisp/server.h: WebSocket servers where every connection is an actor.
 *
 * A server is a set of routes (URL paths, each with a handler) and listening sockets, attached
 * to a runtime. Every accepted TCP connection becomes a connection actor, placed on the
 * least-loaded worker and pinned there: its socket, its buffers and its pending io_uring
 * operations belong to that worker's ring. The actor owns the connection's protocol state and
 * calls the route's handler callbacks (struct wisp_handler) on its own turns, one at a time, so
 * handler state needs no locks. Other actors, and outside threads, reach a connection by its
 * address: as plain messages (the handler's on_info) or as frames to send
 * (wisp_conn_send_to()).
 *
 * Typical use:
 *     static void on_text(struct wisp_conn *c, void *st, const char *p, size_t n)
 *     { wisp_conn_send_text(c, p, n); }
 *     static const struct wisp_handler echo = { .on_text = on_text };
 *
 *     struct wisp_server *srv;
 *     wisp_server_new(rt, NULL, &srv);
 *     struct wisp_route r;
 *     wisp_route_init(&r, "/echo", &echo);
 *     wisp_server_route(srv, &r);
 *     uint16_t port;
 *     wisp_server_listen(srv, "127.0.0.1", 8080, &port);
 *     wisp_runtime_run(rt);      // until SIGTERM / wisp_runtime_stop: graceful 1001 close
 *     wisp_runtime_free(rt);
 *     wisp_server_free(srv);
 *
 * Graceful shutdown: wisp_runtime_stop() (or SIGINT/SIGTERM with the runtime's handle_signals)
 * stops every listener, then every connection runs on_shutdown (default: close with 1001),
 * waits for the peer's close frame up to close_timeout_ms, and closes its socket; connections
 * still open at the runtime's shutdown deadline are closed abnormally.
 *
 * Callbacks and wisp_conn_* functions taking a `struct wisp_conn *` run on the connection's own
 * worker, inside its turn; the pointer is borrowed for that callback only.
 */
#ifndef WISP_SERVER_H
#define WISP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <wisp/actor.h>
#include <wisp/error.h>
#include <wisp/http.h>
#include <wisp/runtime.h>
#include <wisp/ws.h>

#ifdef __cplusplus
extern "C" {
#endif

struct wisp_server;
struct wisp_conn;

/* ---- why a connection closed ------------------------------------------------------------- */

/** Who ended the connection. */
enum wisp_close_by {
    WISP_CLOSED_BY_PEER = 1, /**< the peer sent a close frame (or dropped TCP: see why) */
    WISP_CLOSED_BY_LOCAL,    /**< the handler called wisp_conn_close() (or another actor did,
                                  with wisp_conn_close_to()) */
    WISP_CLOSED_BY_LIBRARY,  /**< wisp closed it; `why` says for what */
};

/** The reason behind a close, for logs and metrics. */
enum wisp_close_why {
    WISP_WHY_NORMAL = 0,     /**< a close handshake the peer or the handler started */
    WISP_WHY_PROTOCOL,       /**< the peer broke RFC 6455 (sent 1002; `fault` says how) */
    WISP_WHY_BAD_UTF8,       /**< a text message or close reason was not UTF-8 (sent 1007) */
    WISP_WHY_TOO_BIG,        /**< a frame or message over the route's limits (sent 1009) */
    WISP_WHY_TIMEOUT,        /**< idle, and no pong came back to our ping: TCP closed (1006) */
    WISP_WHY_CLOSE_TIMEOUT,  /**< we sent close and the peer never answered: TCP closed */
    WISP_WHY_BACKPRESSURE,   /**< the send cap was hit under WISP_OVERFLOW_CLOSE (sent 1008) */
    WISP_WHY_SHUTDOWN,       /**< the server is going away (sent 1001) */
    WISP_WHY_ABNORMAL,       /**< TCP ended without a close frame (1006) */
    WISP_WHY_NO_MEMORY,      /**< wisp could not allocate for this connection (sent 1011) */
    WISP_WHY_IO_ERROR,       /**< the socket failed (reset, ...): 1006; `error` has the errno */
};

/** A short static English name for a reason ("protocol error", "timeout", ...). Never NULL. */
WISP_API const char *wisp_close_why_str(enum wisp_close_why why);

/** What on_closed learns. Borrowed for the callback. */
struct wisp_close_info {
    /** The code of the close: the peer's (1005 when its close frame had none), the one we sent,
     *  or 1006 when no close frame was exchanged. */
    uint16_t code;
    const char *reason; /**< UTF-8, reason_len bytes, not NUL-terminated; may be empty */
    size_t reason_len;
    enum wisp_close_by by;
    enum wisp_close_why why;
    enum wisp_ws_fault fault; /**< for PROTOCOL, BAD_UTF8, TOO_BIG: the exact violation */
    int error;                /**< for IO_ERROR: the negative errno */
    bool clean;               /**< both close frames were exchanged */
};

/* ---- the upgrade request ----------------------------------------------------------------- */

/** What on_upgrade sees. Everything is borrowed for the callback. */
struct wisp_upgrade {
    /** The validated upgrade: method (up->req->method), path, query, Host, Origin (NULL when
     *  absent), every header, and the offered subprotocols and extensions (see http.h). */
    const struct wisp_ws_upgrade *up;
    /** The peer's address (IPv4 or IPv6). */
    const struct sockaddr *peer;
    socklen_t peer_len;
};

/* ---- low-level frame hooks ----------------------------------------------------------------- */

/** A frame as on_frame / on_send_frame see it. The hook may change data and len (to alter the
 *  payload: point data at its own bytes, which must stay valid until the hook's caller returns,
 *  i.e. for the rest of the callback) or return WISP_FRAME_DROP. */
struct wisp_frame {
    enum wisp_ws_opcode opcode; /**< TEXT/BINARY for data (continuations carry their message's
                                     opcode), PING, PONG or CLOSE */
    bool first;                 /**< data: the first piece of its message */
    bool fin;                   /**< data: the last piece of its message */
    uint8_t *data;
    size_t len;
};

#define WISP_FRAME_PASS 0 /**< keep the frame (possibly altered) */
#define WISP_FRAME_DROP 1 /**< forget it: not delivered (incoming) or not sent (outgoing) */

/* ---- the handler --------------------------------------------------------------------------- */

/**
 * The callbacks of one route. Every member may be NULL; the comment says what happens then.
 * The struct is borrowed for as long as the server exists (usually a static const).
 * `state` is the connection's private state: state_size bytes, zeroed at accept, freed after
 * on_closed. Data pointers handed to callbacks are borrowed for the callback: copy what you
 * keep.
 */
struct wisp_handler {
    size_t state_size;
    /** The upgrade request arrived. Accept (0: wisp answers 101) or refuse with an HTTP
     *  status 400-599 (e.g. 403 for a bad Origin). May pick a subprotocol
     *  (wisp_conn_accept_protocol) and add response headers (wisp_conn_add_header).
     *  NULL: accept, with the first of the route's protocols the client offered. */
    int (*on_upgrade)(struct wisp_conn *c, void *state, const struct wisp_upgrade *req);
    /** The 101 was queued: the connection is open. */
    void (*on_open)(struct wisp_conn *c, void *state);
    /** A whole text message (valid UTF-8, not NUL-terminated). NULL: ignored. */
    void (*on_text)(struct wisp_conn *c, void *state, const char *data, size_t len);
    /** A whole binary message. NULL: ignored. */
    void (*on_binary)(struct wisp_conn *c, void *state, const uint8_t *data, size_t len);
    /** A ping arrived; wisp has already queued the pong. NULL: nothing more. */
    void (*on_ping)(struct wisp_conn *c, void *state, const uint8_t *data, size_t len);
    /** A pong arrived (wisp's own keep-alive pongs included). NULL: ignored. */
    void (*on_pong)(struct wisp_conn *c, void *state, const uint8_t *data, size_t len);
    /** The connection is over; called exactly once for every connection that was opened, and
     *  the last callback it gets. The peer's close frame was already answered with the same
     *  code and reason. After it returns the state is freed and the actor stops. */
    void (*on_closed)(struct wisp_conn *c, void *state, const struct wisp_close_info *info);
    /** Buffered outgoing bytes rose to the route's high watermark (once per crossing). */
    void (*on_throttled)(struct wisp_conn *c, void *state, size_t buffered);
    /** Buffered outgoing bytes fell to the low watermark after a throttle (once). */
    void (*on_unthrottled)(struct wisp_conn *c, void *state, size_t buffered);
    /** A message from another actor or thread (wisp_send to the connection's address), or a
     *  system message (WISP_MSG_EXIT, WISP_MSG_DOWN, WISP_MSG_WS_DROPPED). NULL: ignored. */
    void (*on_info)(struct wisp_conn *c, void *state, const struct wisp_msg *msg);
    /** A timer set with wisp_send_after/every on wisp_conn_ctx(c) fired. NULL: on_info gets
     *  it (msg->timer is then non-zero). */
    void (*on_timer)(struct wisp_conn *c, void *state, const struct wisp_msg *msg);
    /** Something went wrong that does not by itself end the connection (a frame a hook dropped
     *  could not be, a notice could not be sent...): err is a negative errno or wisp code and
     *  what a static English phrase. NULL: ignored. */
    void (*on_error)(struct wisp_conn *c, void *state, int err, const char *what);
    /** The server is shutting down: the last chance to say goodbye. The connection is closed
     *  with 1001 after it returns unless it already started a close itself. */
    void (*on_shutdown)(struct wisp_conn *c, void *state);
    /** Low level: every incoming data piece (a frame, or the part of one that arrived), ping
     *  and pong before reassembly and before the callbacks above; return WISP_FRAME_PASS or
     *  WISP_FRAME_DROP. Close frames are shown but cannot be dropped. With this hook set the
     *  connection reassembles messages itself from what passed (same size limits; a message
     *  whose every piece was dropped is not delivered, and a dropped ping gets no pong); altering
     *  a text message's bytes is the hook's responsibility (they are not re-validated). */
    int (*on_frame)(struct wisp_conn *c, void *state, struct wisp_frame *f);
    /** Low level: every outgoing text, binary, ping and pong frame the handler or another
     *  actor sends, before it is encoded and queued; WISP_FRAME_DROP makes the send return 0
     *  without sending. Not called for close frames or for wisp's own pongs. */
    int (*on_send_frame)(struct wisp_conn *c, void *state, struct wisp_frame *f);
};

/* ---- routes ------------------------------------------------------------------------------ */

/** What happens when a send would take a connection's buffered bytes over send_cap. */
enum wisp_overflow {
    WISP_OVERFLOW_CLOSE = 0, /**< close the connection with 1008 (WISP_WHY_BACKPRESSURE) */
    WISP_OVERFLOW_DROP,      /**< drop that message: the send returns WISP_EFULL, and an actor
                                  that sent it with wisp_conn_send_to() gets a
                                  WISP_MSG_WS_DROPPED message */
};

/** A plain HTTP answer given by a route's on_http hook. */
struct wisp_http_reply {
    /** Status, content type, extra headers and body (see http.h). wisp writes the answer after
     *  the hook returns, so everything must stay valid until then and, when release is set,
     *  until release runs (static strings, or memory release frees). For a HEAD request, give
     *  the answer GET would get: wisp sends its headers, Content-Length included, without the
     *  body. */
    struct wisp_http_answer answer;
    /** If set, release(body, body_len, release_arg) runs once wisp no longer needs the answer
     *  (on the connection's worker, also when writing it failed, and also when body is NULL),
     *  which lets a hook hand over allocated memory. Not called when the hook returns a
     *  status instead of 0. */
    wisp_release_fn release;
    void *release_arg;
};

/**
 * A route: a URL path and what serves it. Fill with wisp_route_init(), then adjust.
 */
struct wisp_route {
    /** Exact path ("/chat"); or a prefix route, a path ending in "/" and a star
     *  ("/files/" + "*"), which takes every path under it and the bare "/files" (the longest
     *  matching prefix wins); or "*" for every path no other route matches. Exact paths win
     *  over prefixes, prefixes over "*". Copied. */
    const char *path;
    /** The WebSocket handler; NULL for an HTTP-only route (then on_http is required). */
    const struct wisp_handler *handler;
    /** Borrowed pointer handed to the handler through wisp_conn_route_data(). */
    void *data;
    /** Subprotocols this route speaks, in order of preference (borrowed, num_protocols);
     *  without an on_upgrade choice, the first one the client offered is selected. */
    const char *const *protocols;
    size_t num_protocols;
    /** Receive limits (1009 beyond them). Defaults 16 MiB each. */
    uint64_t max_frame_size;
    uint64_t max_message_size;
    /** Outgoing messages longer than this are sent as fragments of this size, so pings and
     *  pongs can pass between them. Default 64 KiB; 0 never splits. */
    size_t fragment_size;
    /** Outgoing buffered bytes (frame headers included): on_throttled at high, on_unthrottled
     *  at low, and the hard cap that is never exceeded. Defaults 1 MiB, 256 KiB, 32 MiB (twice
     *  the default message limit, so a largest message can be echoed). */
    size_t send_high_watermark;
    size_t send_low_watermark;
    size_t send_cap;
    enum wisp_overflow overflow; /**< default WISP_OVERFLOW_CLOSE */
    /** The connection actor's mailbox limit (0: the runtime's default). While more messages
     *  than this wait in its mailbox, wisp stops reading the socket (TCP pushes back on the
     *  peer) and resumes below half of it; nothing read is lost. */
    uint32_t mailbox_limit;
    /**
     * Plain HTTP on this path: a request that is not a WebSocket upgrade. Fill reply and
     * return 0, or return an HTTP status 400-599 for a short canned answer. Runs on a worker:
     * do not block. NULL: such requests get 426 (if handler is set) or 404.
     * @param data  the route's data.
     * @param req   borrowed: method, path, query, headers.
     */
    int (*on_http)(void *data, const struct wisp_http_request *req, const struct sockaddr *peer,
                   struct wisp_http_reply *reply);
};

/** Fill *r with the defaults for path and handler. @return 0, or -EINVAL (NULL r or path). */
WISP_API int wisp_route_init(struct wisp_route *r, const char *path,
                             const struct wisp_handler *handler);

/* ---- servers ----------------------------------------------------------------------------- */

/** Server-wide settings; fill with wisp_server_opts_init(). */
struct wisp_server_opts {
    /** Open connections (handshaking or established) across all workers; beyond it new TCP
     *  connections get `503` and are closed. 0 (default): the process's file limit minus 64. */
    uint32_t max_connections;
    /** Per worker; 0 (default): no limit but the global one. */
    uint32_t max_connections_per_worker;
    /** From accept to the end of the 101 answer (slowloris guard). Default 10000 ms. */
    uint32_t handshake_timeout_ms;
    /** After this long without any byte from the peer, wisp sends a ping. 0 disables.
     *  Default 30000 ms. */
    uint32_t idle_timeout_ms;
    /** After that ping, how long to wait for any byte before hanging up (WISP_WHY_TIMEOUT).
     *  Default 10000 ms. */
    uint32_t pong_timeout_ms;
    /** After we sent close, how long to wait for the peer's close before closing TCP
     *  (WISP_WHY_CLOSE_TIMEOUT). Default 5000 ms. */
    uint32_t close_timeout_ms;
    /** Largest request head (431 beyond). Default 8192. */
    uint32_t max_request_head;
    /** Receive buffers one connection may hold before wisp stops reading its socket (so one
     *  connection cannot take every buffer of its worker). Default 16. */
    uint32_t max_held_buffers;
    /** listen(2) backlog. Default 1024. */
    int backlog;
    /** TCP_NODELAY on accepted sockets. Default true. */
    bool tcp_nodelay;
    /** Where the server's log lines go (a failed TLS handshake, say): log(log_arg, line),
     *  called on a worker, line without a newline. NULL (default): stderr, "wisp: " first. */
    void (*log)(void *log_arg, const char *line);
    void *log_arg;
};

/** Fill *o with the defaults. @return 0, or -EINVAL for NULL. */
WISP_API int wisp_server_opts_init(struct wisp_server_opts *o);

/**
 * Create a server on a runtime (started or not).
 * @param rt    borrowed; must outlive the server's use (free the server after the runtime).
 * @param opts  copied; NULL for the defaults.
 * @param out   receives the server, owned by the caller (wisp_server_free).
 * @return 0, -EINVAL, -ENOMEM.
 */
WISP_API int wisp_server_new(struct wisp_runtime *rt, const struct wisp_server_opts *opts,
                             struct wisp_server **out);

/**
 * Add a route. Call before wisp_server_listen(); routes are fixed once the server listens.
 * @param r  copied (path copied; handler, data and protocols borrowed).
 * @return 0, -EEXIST (path already routed), -EINVAL (bad route, or the server listens
 *         already), -ENOMEM.
 */
WISP_API int wisp_server_route(struct wisp_server *s, const struct wisp_route *r);

/**
 * Bind and listen now (so a port in use is reported here), and accept from a listener actor
 * once the runtime runs. Several calls add several listeners.
 * @param host   numeric IPv4 or IPv6 address ("0.0.0.0", "::", "127.0.0.1") or a host name
 *               resolved now (first address). An IPv6 wildcard also accepts IPv4 where the
 *               system allows it.
 * @param port   0 picks a free port.
 * @param bound  receives the port actually bound; may be NULL.
 * @return 0, or a negative errno (-EADDRINUSE, -EACCES, -EADDRNOTAVAIL, -ENOENT for a name
 *         that does not resolve, WISP_ECLOSED if the runtime is stopping); wisp_last_error()
 *         then says what failed in a sentence.
 */
WISP_API int wisp_server_listen(struct wisp_server *s, const char *host, uint16_t port,
                                uint16_t *bound);

/** One more certificate, chosen when the client asks for `name` with SNI. */
struct wisp_tls_sni {
    const char *name;      /**< host name, exact (case-insensitive) */
    const char *cert_file; /**< PEM certificate chain */
    const char *key_file;  /**< PEM private key */
};

/** TLS settings of a listener (wisp_server_listen_tls). Every file is read at listen time. */
struct wisp_tls_opts {
    const char *cert_file;  /**< PEM certificate chain (leaf first). Required. */
    const char *key_file;   /**< PEM private key. Required. */
    /** Extra certificates chosen by SNI; the default one above serves every other name. */
    const struct wisp_tls_sni *sni;
    size_t num_sni;
    /** Ask clients for a certificate signed by this PEM CA bundle (NULL: do not ask). */
    const char *client_ca_file;
    bool require_client_cert; /**< refuse clients without a valid certificate */
    /** Adjust each SSL_CTX (an `SSL_CTX *`) before use: ciphers, session cache... Return 0,
     *  or a negative code to fail the listen call. May be NULL. */
    int (*configure)(void *ssl_ctx, void *arg);
    void *configure_arg;
    /** TLS handshakes in progress per worker; connections beyond it are closed at once, so a
     *  handshake flood cannot starve established connections. Default (0): 256. */
    uint32_t max_handshakes_per_worker;
};

/**
 * Like wisp_server_listen, for wss:// (TLS 1.2 and 1.3, ALPN http/1.1, close_notify on a clean
 * close). The handshake deadline covers the TLS handshake and the upgrade together. A client
 * that fails the handshake (garbage, plain HTTP, a bad certificate) is closed and logged.
 * @param tls  read during the call (files loaded, strings copied where kept).
 * @return as wisp_server_listen, plus -ENOTSUP (built without TLS), -EINVAL (a certificate or
 *         key that cannot be loaded or do not match: wisp_last_error() names the file).
 */
WISP_API int wisp_server_listen_tls(struct wisp_server *s, const char *host, uint16_t port,
                                    const struct wisp_tls_opts *tls, uint16_t *bound);

/** Connections open right now (approximate while running). */
WISP_API size_t wisp_server_connections(const struct wisp_server *s);

/** The close codes wisp_server_stats counts separately, in the order of its closes[] array;
 *  the last slot (code 0 here) counts every other code. */
#define WISP_STATS_CLOSE_CODES 12
#define WISP_STATS_CLOSE_CODE_LIST {1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1011, 4000, 0}

/** Counters of one server since it was created, summed over its workers (each worker counts
 *  its own connections; a snapshot taken while traffic flows is not atomic across fields). */
struct wisp_server_stats {
    uint64_t connections;       /**< TCP connections open now (handshaking or established) */
    uint64_t accepted;          /**< TCP connections accepted */
    uint64_t refused;           /**< turned away with 503 (connection limits) */
    uint64_t handshake_failures;/**< upgrades refused (4xx/5xx), TLS handshakes failed,
                                     handshake deadlines passed */
    uint64_t http_requests;     /**< plain HTTP requests answered (on_http, 404, 426) */
    uint64_t opened;            /**< WebSocket connections opened */
    uint64_t messages_in;       /**< whole data messages received */
    uint64_t bytes_in;          /**< their payload bytes */
    uint64_t messages_out;      /**< data messages queued to peers (sends and deliveries) */
    uint64_t bytes_out;         /**< their payload bytes */
    uint64_t dropped;           /**< messages dropped under WISP_OVERFLOW_DROP */
    uint64_t throttled;         /**< on_throttled crossings (high watermark reached) */
    /** WebSocket connections closed, by close code (see WISP_STATS_CLOSE_CODE_LIST; 4000 is
     *  any 4000-4999 application code, the last slot any other). */
    uint64_t closes[WISP_STATS_CLOSE_CODES];
};

/** Sum the server's counters into *out. Safe from any thread while the server runs.
 *  @return 0, -EINVAL. */
WISP_API int wisp_server_stats(const struct wisp_server *s, struct wisp_server_stats *out);

/** Free a server after its runtime stopped (wisp_runtime_wait or wisp_runtime_free). NULL is a
 *  no-op. */
WISP_API void wisp_server_free(struct wisp_server *s);

/* ---- inside a connection's callbacks ------------------------------------------------------- */

/**
 * Send a text message (must be UTF-8) / a binary message; the bytes are copied.
 * @return 0 (queued), WISP_SEND_PRESSURE (queued; buffered bytes are at or above the high
 *         watermark: slow down), WISP_EFULL (dropped: over send_cap under WISP_OVERFLOW_DROP),
 *         WISP_ECLOSED (closing or closed, including a close the cap just caused), -EILSEQ
 *         (text not UTF-8), -EINVAL, -ENOMEM.
 */
WISP_API int wisp_conn_send_text(struct wisp_conn *c, const char *data, size_t len);
WISP_API int wisp_conn_send_binary(struct wisp_conn *c, const void *data, size_t len);

/**
 * Send a message without copying its payload: wisp keeps a pointer to data until the bytes are
 * on the wire, then calls release(data, len, arg) (on this worker). release also runs, before
 * this returns, when the send fails. Text must be UTF-8.
 * @return as wisp_conn_send_text.
 */
WISP_API int wisp_conn_send_ref(struct wisp_conn *c, enum wisp_ws_opcode op, const void *data,
                                size_t len, wisp_release_fn release, void *arg);

/** Send a ping (at most 125 bytes). @return 0, WISP_ECLOSED, -EMSGSIZE, -ENOMEM. */
WISP_API int wisp_conn_ping(struct wisp_conn *c, const void *data, size_t len);

/**
 * Start the close handshake: what was queued before is sent first, then the close frame; the
 * connection ends when the peer answers (or after close_timeout_ms).
 * @param code    1000-1003, 1007-1014 or 3000-4999.
 * @param reason  UTF-8, at most 123 bytes; may be NULL when reason_len is 0.
 * @return 0, WISP_ECLOSED (already closing), -EINVAL (code or reason not sendable).
 */
WISP_API int wisp_conn_close(struct wisp_conn *c, uint16_t code, const char *reason,
                             size_t reason_len);

/** Outgoing bytes queued and not yet written to the socket. */
WISP_API size_t wisp_conn_buffered(const struct wisp_conn *c);

/** The context for actor calls (wisp_send, wisp_send_after, wisp_link...) from a callback.
 *  Borrowed for the callback. */
WISP_API struct wisp_ctx *wisp_conn_ctx(struct wisp_conn *c);
/** The connection actor's address: give it to other actors so they can reach it. */
WISP_API wisp_addr wisp_conn_addr(const struct wisp_conn *c);
/** The route's data pointer. */
WISP_API void *wisp_conn_route_data(const struct wisp_conn *c);
/** The request path ("/chat"), NUL-terminated, borrowed for the connection's life. */
WISP_API const char *wisp_conn_path(const struct wisp_conn *c);
/** The chosen subprotocol (NUL-terminated), or NULL. Borrowed for the connection's life. */
WISP_API const char *wisp_conn_protocol(const struct wisp_conn *c);
/** The peer's address; *len receives its length if len is not NULL. */
WISP_API const struct sockaddr *wisp_conn_peer(const struct wisp_conn *c, socklen_t *len);

/** In on_upgrade only: answer with this subprotocol, which the client must have offered.
 *  @return 0, -EINVAL (not offered, or not in on_upgrade), -ENOMEM. */
WISP_API int wisp_conn_accept_protocol(struct wisp_conn *c, const char *protocol);
/** In on_upgrade only: add a header to the 101 answer (e.g. Set-Cookie); both copied.
 *  @return 0, -EINVAL (not a token name, a reserved header, CR/LF in value, not in
 *  on_upgrade), -ENOMEM. */
WISP_API int wisp_conn_add_header(struct wisp_conn *c, const char *name, const char *value);

/* ---- from other actors and threads --------------------------------------------------------- */

/** A connection dropped a message sent with wisp_conn_send_to() (WISP_OVERFLOW_DROP).
 *  Payload: struct wisp_ws_dropped. */
#define WISP_MSG_WS_DROPPED 0xFFFF0010u

/** Payload of WISP_MSG_WS_DROPPED. */
struct wisp_ws_dropped {
    wisp_addr conn; /**< the connection that dropped it */
    size_t len;     /**< the dropped message's payload length */
};

/**
 * Ask a connection actor to send a text or binary message to its peer (the bytes are copied
 * into its mailbox; its handler is not involved). Messages from one sender go out in order.
 * @param op  WISP_WS_OP_TEXT (must be UTF-8, checked by the connection) or WISP_WS_OP_BINARY.
 * @return as wisp_send: 0, WISP_SEND_PRESSURE (the connection's mailbox is over its limit),
 *         -ESRCH (no such actor), -EINVAL, -ENOMEM. A message the connection then drops under
 *         its overflow policy comes back as WISP_MSG_WS_DROPPED (not to outside threads).
 */
WISP_API int wisp_conn_send_to(struct wisp_ctx *ctx, wisp_addr conn, enum wisp_ws_opcode op,
                               const void *data, size_t len);
WISP_API int wisp_rt_conn_send_to(struct wisp_runtime *rt, wisp_addr conn,
                                  enum wisp_ws_opcode op, const void *data, size_t len);

/** Ask a connection actor to start the close handshake with code and reason (see
 *  wisp_conn_close). @return as wisp_send; -EINVAL for a code or reason not sendable. */
WISP_API int wisp_conn_close_to(struct wisp_ctx *ctx, wisp_addr conn, uint16_t code,
                                const char *reason);
WISP_API int wisp_rt_conn_close_to(struct wisp_runtime *rt, wisp_addr conn, uint16_t code,
                                   const char *reason);

#ifdef __cplusplus
}
#endif
#endif
