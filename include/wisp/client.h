/* wisp/client.h: WebSocket client connections, as actors with the same handler callbacks as
 * the server side (struct wisp_handler in wisp/server.h).
 *
 * wisp_connect() spawns a client connection actor on the least-loaded worker. It resolves the
 * host (numeric addresses at once; names on a short-lived thread, so no worker ever blocks;
 * wisp_runtime_free() waits for such a thread still running),
 * connects, sends the upgrade request, checks the 101 answer, and then runs exactly like a
 * server connection: on_open, on_text, on_binary, on_ping, on_pong, on_closed, on_throttled,
 * on_unthrottled, on_info, on_timer, on_error, and the wisp_conn_* calls. Frames it sends are
 * masked with fresh CSPRNG keys (so wisp_conn_send_ref copies in this role). A connection that
 * fails before it opens (resolution, connect, a refused or invalid answer, the deadline)
 * reports on_error once with the reason and never calls on_open or on_closed.
 *
 * wss:// uses TLS 1.2 or 1.3 with SNI, and verifies the server's certificate against the
 * system's store (or tls_ca_file) with the host name checked, unless tls_insecure is set. A
 * failed verification is reported through on_error with OpenSSL's reason ("certificate
 * verify failed: Hostname mismatch", ...).
 */
#ifndef WISP_CLIENT_H
#define WISP_CLIENT_H

#include <wisp/server.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Settings of one client connection. Fill with wisp_client_opts_init(), then adjust. Every
 *  pointer is copied by wisp_connect() (handler and data are borrowed for the connection's
 *  life). */
struct wisp_client_opts {
    /** ws:// or wss://host[:port][/path][?query]; host: a name, an IPv4 address or [IPv6]. */
    const char *url;
    const struct wisp_handler *handler;
    /** Handed to the handler through wisp_conn_route_data(). */
    void *data;
    /** Origin header to send, or NULL. */
    const char *origin;
    /** Subprotocols to offer, in order of preference. */
    const char *const *protocols;
    size_t num_protocols;
    /** Extra request headers (e.g. Authorization). */
    const struct wisp_http_header *headers;
    size_t num_headers;
    /** Called with the request about to be written (borrowed and writable: change the
     *  offered protocols, headers, origin; what it then points to must live until on_open or
     *  on_error, since the server's answer is checked against it).
     *  Return 0 to go on, or a negative code to give up (on_error reports it). May be NULL. */
    int (*on_request)(struct wisp_conn *c, void *state, struct wisp_ws_client_opts *req);
    /** Called with the server's valid 101 answer before on_open; return 0 to accept it or a
     *  negative code to refuse (the connection is closed; on_error reports it). May be NULL.
     *  wisp_conn_protocol(c) already tells the chosen subprotocol. */
    int (*on_response)(struct wisp_conn *c, void *state, const struct wisp_http_response *resp);
    /** Limits, watermarks, send cap and overflow policy as for a server route (its path,
     *  protocols and on_http are ignored). Default: wisp_route_init()'s. */
    struct wisp_route limits;
    /** Timeouts as for a server (handshake_timeout_ms covers resolution, connect, TLS and
     *  the upgrade; idle, pong and close timeouts as documented there). */
    struct wisp_server_opts timeouts;
    /** wss://: trust this PEM CA bundle instead of the system's store. */
    const char *tls_ca_file;
    /** wss://: do not verify the server's certificate at all (tests only). */
    bool tls_insecure;
};

/** Fill *o with the defaults for url and handler (both borrowed until wisp_connect()).
 *  @return 0, or -EINVAL (NULL o). */
WISP_API int wisp_client_opts_init(struct wisp_client_opts *o, const char *url,
                                   const struct wisp_handler *handler);

/**
 * Start a client connection actor. Returns at once; the outcome comes through the handler.
 * @param out  receives the connection actor's address (for wisp_conn_send_to and the like);
 *             may be NULL.
 * @return 0, or -EINVAL (bad options or URL, an unreadable tls_ca_file: wisp_last_error()
 *         says which), -ENOTSUP (wss:// in a build without TLS), -ENOMEM,
 *         WISP_ECLOSED (runtime stopping).
 * wisp_connect from inside an actor, wisp_rt_connect from any thread.
 */
WISP_API int wisp_connect(struct wisp_ctx *ctx, const struct wisp_client_opts *o, wisp_addr *out);
WISP_API int wisp_rt_connect(struct wisp_runtime *rt, const struct wisp_client_opts *o,
                             wisp_addr *out);

#ifdef __cplusplus
}
#endif
#endif
