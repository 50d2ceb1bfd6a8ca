/* Client connections: the URL, name resolution off the workers, connect, the upgrade request
 * and the check of the server's answer. From on_open on, a client connection is the same
 * connection actor as a server one (conn.c), with the engine in the client role. */
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <wisp/client.h>
#include <wisp/version.h>

#include "conn.h"
#include "tls.h"

/* A name being resolved on a short-lived thread of ours (getaddrinfo blocks; a worker must
 * not). Shared by the connection and that thread: whichever lets go last frees it. The
 * runtime counts these threads and waits for them before it is freed, since the thread sends
 * its answer through the runtime. */
struct resolve {
    _Atomic int refs;
    int rc;                   /* getaddrinfo's result, written before the answer is sent */
    struct addrinfo *result;
    char port[8];
    char *host;
    struct wisp_runtime *rt;
    wisp_addr conn;
};

struct wispi_client {
    struct wisp_server srv;   /* settings and counters in the shape the connection code uses */
    struct wispi_route route; /* handler, data, limits, the client-role engine settings */
    char *host;               /* without brackets */
    char *host_header;        /* host[:port] as the Host header wants it */
    char *target;             /* path and query */
    char *origin;
    char **protocols;
    size_t num_protocols;
    struct wisp_http_header *headers;
    size_t num_headers;
    int (*on_request)(struct wisp_conn *c, void *state, struct wisp_ws_client_opts *req);
    int (*on_response)(struct wisp_conn *c, void *state, const struct wisp_http_response *resp);
    uint16_t port;
    bool tls;                        /* wss:// */
    struct wispi_tls_ctx *tls_ctx;   /* its context (verification settings) */
    struct sockaddr_storage addr;
    socklen_t addr_len;
    struct resolve *resolving;
    struct wisp_ws_client_opts req; /* what was offered, for checking the answer */
    char key[WISP_WS_KEY_LEN + 1];
};

static void free_client(struct wispi_client *cl)
{
    if (!cl)
        return;
#if WISP_HAVE_TLS
    wispi_tls_ctx_free(cl->tls_ctx);
#endif
    free(cl->host);
    free(cl->host_header);
    free(cl->target);
    free(cl->origin);
    for (size_t i = 0; i < cl->num_protocols; i++)
        free(cl->protocols[i]);
    free(cl->protocols);
    for (size_t i = 0; i < cl->num_headers; i++) {
        free((char *)(uintptr_t)cl->headers[i].name);
        free((char *)(uintptr_t)cl->headers[i].value);
    }
    free(cl->headers);
    free(cl);
}

static void resolve_put(struct resolve *r)
{
    /* acq_rel: the last one to let go sees every write of the other before freeing */
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (r->result)
        freeaddrinfo(r->result);
    free(r->host);
    free(r);
}

void wispi_client_free(struct wispi_client *cl)
{
    if (cl && cl->resolving)
        resolve_put(cl->resolving); /* the thread, still running, frees it when done */
    free_client(cl);
}

/* ---- options ------------------------------------------------------------------------------ */

int wisp_client_opts_init(struct wisp_client_opts *o, const char *url,
                          const struct wisp_handler *handler)
{
    if (!o)
        return -EINVAL;
    memset(o, 0, sizeof *o);
    o->url = url;
    o->handler = handler;
    wisp_route_init(&o->limits, "/", handler);
    wisp_server_opts_init(&o->timeouts);
    return 0;
}

/* ws[s]://host[:port][/path][?query] into the client's fields. */
static int parse_url(struct wispi_client *cl, const char *url)
{
    const char *p;
    if (strncmp(url, "wss://", 6) == 0) {
        cl->tls = true;
        p = url + 6;
    } else if (strncmp(url, "ws://", 5) == 0) {
        p = url + 5;
    } else {
        return -EINVAL;
    }
    const char *host, *host_end, *after;
    if (*p == '[') {
        host = p + 1;
        host_end = strchr(host, ']');
        if (!host_end)
            return -EINVAL;
        after = host_end + 1;
    } else {
        host = p;
        host_end = host + strcspn(host, ":/?#");
        after = host_end;
    }
    if (host_end == host)
        return -EINVAL;
    unsigned long port = cl->tls ? 443 : 80;
    if (*after == ':') {
        char *end;
        port = strtoul(after + 1, &end, 10);
        if (end == after + 1 || port == 0 || port > 65535)
            return -EINVAL;
        after = end;
    }
    if (*after && *after != '/' && *after != '?')
        return -EINVAL;
    size_t tlen = strcspn(after, "#");
    cl->host = strndup(host, (size_t)(host_end - host));
    cl->host_header = strndup(p, (size_t)(after - p));
    cl->target = *after == '/' ? strndup(after, tlen) : NULL;
    if (!cl->target && (cl->target = malloc(tlen + 2))) {
        cl->target[0] = '/';
        memcpy(cl->target + 1, after, tlen);
        cl->target[tlen + 1] = 0;
    }
    cl->port = (uint16_t)port;
    return cl->host && cl->host_header && cl->target ? 0 : -ENOMEM;
}

static int copy_opts(struct wispi_client *cl, const struct wisp_client_opts *o)
{
    if (o->origin && !(cl->origin = strdup(o->origin)))
        return -ENOMEM;
    if (o->num_protocols) {
        if (!o->protocols || !(cl->protocols = calloc(o->num_protocols, sizeof(char *))))
            return o->protocols ? -ENOMEM : -EINVAL;
        for (size_t i = 0; i < o->num_protocols; i++, cl->num_protocols++)
            if (!o->protocols[i] || !(cl->protocols[i] = strdup(o->protocols[i])))
                return o->protocols[i] ? -ENOMEM : -EINVAL;
    }
    if (o->num_headers) {
        if (!o->headers || !(cl->headers = calloc(o->num_headers, sizeof *cl->headers)))
            return o->headers ? -ENOMEM : -EINVAL;
        for (size_t i = 0; i < o->num_headers; i++, cl->num_headers++) {
            const struct wisp_http_header *h = &o->headers[i];
            char *n = strndup(h->name, h->name_len), *v = strndup(h->value, h->value_len);
            cl->headers[i] = (struct wisp_http_header){n, h->name_len, v, h->value_len};
            if (!n || !v)
                return -ENOMEM;
        }
    }
    return 0;
}

static int make_client(struct wisp_runtime *rt, const struct wisp_client_opts *o,
                       struct wispi_client **out)
{
    if (!rt || !o || !o->url || !o->handler)
        return -EINVAL;
    struct wispi_client *cl = calloc(1, sizeof *cl);
    if (!cl)
        return -ENOMEM;
    int rc = parse_url(cl, o->url);
    if (rc == 0)
        rc = copy_opts(cl, o);
#if WISP_HAVE_TLS
    if (rc == 0 && cl->tls)
        rc = wispi_tls_client_ctx_new(o->tls_ca_file, o->tls_insecure, &cl->tls_ctx);
#else
    if (rc == 0 && cl->tls) {
        wispi_set_error("wisp was built without TLS: wss:// is not available");
        rc = -ENOTSUP;
    }
#endif
    struct wisp_route r = o->limits;
    r.path = "/";
    r.handler = o->handler;
    r.data = o->data;
    r.on_http = NULL;
    if (rc == 0 && !wispi_route_limits_ok(&r))
        rc = -EINVAL;
    if (rc < 0) {
        free_client(cl);
        return rc;
    }
    cl->srv.rt = rt;
    cl->srv.opts = o->timeouts;
    wispi_server_opts_fill(&cl->srv.opts);
    wispi_route_set(&cl->route, &r, WISP_WS_CLIENT);
    cl->on_request = o->on_request;
    cl->on_response = o->on_response;
    *out = cl;
    return 0;
}

static int connect_common(struct wisp_runtime *rt, const struct wisp_client_opts *o,
                          wisp_addr *out)
{
    struct wispi_client *cl;
    int rc = make_client(rt, o, &cl);
    if (rc < 0)
        return rc;
    unsigned best = (unsigned)wispi_pick_worker(rt, 0); /* no limit: never -1 */
    /* relaxed: counters (see listener.c) */
    atomic_fetch_add_explicit(&rt->workers[best].conns, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&cl->srv.conns, 1, memory_order_relaxed);
    wispi_conn_def_init(&cl->srv.conn_def, (o->handler->state_size + 15) & ~(size_t)15);
    unsigned char arg[64];
    int len = wispi_conn_arg_client(cl, arg, sizeof arg);
    rc = wispi_spawn_internal(rt, &cl->srv.conn_def, arg, (size_t)len, best,
                              ACTOR_TRAP_SHUTDOWN, out);
    if (rc < 0) {
        atomic_fetch_sub_explicit(&rt->workers[best].conns, 1, memory_order_relaxed);
        free_client(cl);
    }
    return rc;
}

int wisp_connect(struct wisp_ctx *ctx, const struct wisp_client_opts *o, wisp_addr *out)
{
    if (!ctx)
        return -EINVAL;
    return connect_common(ctx->actor->rt, o, out);
}

int wisp_rt_connect(struct wisp_runtime *rt, const struct wisp_client_opts *o, wisp_addr *out)
{
    return connect_common(rt, o, out);
}

/* ---- resolve and connect (on the connection's worker) ------------------------------------ */

/* The connection failed before it opened: tell the handler once, then end. */
void wispi_client_fail(struct wisp_conn *c, int err, const char *what)
{
    const struct wisp_handler *h = handler_of(c);
    if (c->phase >= PH_DRAIN)
        return;
    if (h->on_error)
        h->on_error(c, c->state, err, what);
    wispi_conn_close_now(c);
}

static void start_connect(struct wisp_conn *c)
{
    struct wispi_client *cl = c->client;
    int fd = socket(cl->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        wispi_client_fail(c, -errno, "cannot create a socket");
        return;
    }
    c->sock.fd = fd;
    if (c->srv->opts.tcp_nodelay) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    memcpy(&c->peer, &cl->addr, cl->addr_len < sizeof c->peer ? cl->addr_len : sizeof c->peer);
    c->peer_len = cl->addr_len;
    struct io_uring_sqe *sqe = wispi_sock_sqe(c->net, &c->sock, UD_NET_CONNECT);
    if (!sqe) {
        wispi_client_fail(c, -EIO, "the ring is unusable");
        return;
    }
    io_uring_prep_connect(sqe, fd, (struct sockaddr *)&cl->addr, cl->addr_len);
}

static void *resolve_thread(void *arg)
{
    struct resolve *r = arg;
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    r->rc = getaddrinfo(r->host, r->port, &hints, &r->result);
    /* The connection reads rc and result once this message arrives: the mailbox's release
     * and acquire order our writes before its reads. If the connection is gone, the send
     * fails with -ESRCH and nobody reads them. */
    wispi_send_internal(r->rt, NULL, r->conn, WISPI_MSG_RESOLVED, &r->rc, sizeof r->rc);
    struct wisp_runtime *rt = r->rt;
    resolve_put(r);
    /* release: our last touch of the runtime happens before its free sees the count drop */
    atomic_fetch_sub_explicit(&rt->resolvers, 1, memory_order_release);
    return NULL;
}

static bool numeric(struct wispi_client *cl)
{
    struct sockaddr_in *v4 = (struct sockaddr_in *)&cl->addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&cl->addr;
    if (inet_pton(AF_INET, cl->host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(cl->port);
        cl->addr_len = sizeof *v4;
        return true;
    }
    if (inet_pton(AF_INET6, cl->host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(cl->port);
        cl->addr_len = sizeof *v6;
        return true;
    }
    return false;
}

void wispi_client_start(struct wisp_conn *c)
{
    struct wispi_client *cl = c->client;
    if (numeric(cl)) {
        start_connect(c);
        return;
    }
    struct resolve *r = calloc(1, sizeof *r);
    if (!r || !(r->host = strdup(cl->host))) {
        free(r);
        wispi_client_fail(c, -ENOMEM, "out of memory");
        return;
    }
    atomic_init(&r->refs, 2); /* the connection and the thread */
    snprintf(r->port, sizeof r->port, "%u", (unsigned)cl->port);
    r->rt = c->srv->rt;
    r->conn = wisp_conn_addr(c);
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* relaxed: the thread's own release decrement is what the runtime's free waits on */
    atomic_fetch_add_explicit(&r->rt->resolvers, 1, memory_order_relaxed);
    int rc = pthread_create(&t, &attr, resolve_thread, r);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        atomic_fetch_sub_explicit(&r->rt->resolvers, 1, memory_order_relaxed);
        free(r->host);
        free(r);
        wispi_client_fail(c, -rc, "cannot start name resolution");
        return;
    }
    cl->resolving = r;
}

void wispi_client_resolved(struct wisp_conn *c, int rc)
{
    struct wispi_client *cl = c->client;
    struct resolve *r = cl->resolving;
    if (!r || c->phase != PH_CONNECTING)
        return;
    cl->resolving = NULL;
    if (rc == 0 && r->result && r->result->ai_addrlen <= sizeof cl->addr) {
        memcpy(&cl->addr, r->result->ai_addr, r->result->ai_addrlen);
        cl->addr_len = r->result->ai_addrlen;
        resolve_put(r);
        start_connect(c);
        return;
    }
    resolve_put(r);
    wispi_client_fail(c, -ENOENT, rc ? gai_strerror(rc) : "no address for the host");
}

/* The connect completed (res 0) or failed. */
void wispi_client_connected(struct wisp_conn *c, int res)
{
    struct wispi_client *cl = c->client;
    if (res < 0) {
        wispi_client_fail(c, res, "cannot connect");
        return;
    }
    cl->req = (struct wisp_ws_client_opts){
        .host = cl->host_header,
        .target = cl->target,
        .origin = cl->origin,
        .protocols = (const char *const *)cl->protocols,
        .num_protocols = cl->num_protocols,
        .headers = cl->headers,
        .num_headers = cl->num_headers,
    };
#if WISP_HAVE_TLS
    if (cl->tls_ctx) {
        int rc = wispi_tls_client_start(c, cl->tls_ctx, cl->host);
        if (rc < 0) {
            wispi_client_fail(c, rc, "cannot start TLS");
            return;
        }
    }
#endif
    if (cl->on_request) {
        int rc = cl->on_request(c, c->state, &cl->req);
        if (rc < 0) {
            wispi_client_fail(c, rc, "the request hook gave up");
            return;
        }
    }
    char buf[8192];
    ssize_t n = wisp_ws_client_request(&cl->req, cl->key, buf, sizeof buf);
    /* The hook's pointers were only good during the call: keep our own copies for the check
     * (the protocols it offered are checked against ours or its, whichever it left). */
    if (n < 0 || wispi_conn_queue_bytes(c, buf, (size_t)n) < 0) {
        wispi_client_fail(c, n < 0 ? (int)n : -ENOMEM, "cannot write the upgrade request");
        return;
    }
    c->phase = PH_HANDSHAKE;
    wispi_sock_dirty(c->net, &c->sock); /* send it and arm the first recv */
}

/* Bytes of the server's answer (and maybe the first frames behind it). */
void wispi_client_feed_head(struct wisp_conn *c, uint8_t *p, size_t len)
{
    struct wispi_client *cl = c->client;
    uint32_t max = c->srv->opts.max_request_head;
    if (!c->head && !(c->head = malloc(max))) {
        wispi_client_fail(c, -ENOMEM, "out of memory");
        return;
    }
    size_t take = max - c->head_len < len ? max - c->head_len : len;
    size_t prev = c->head_len;
    memcpy(c->head + c->head_len, p, take);
    c->head_len += (uint32_t)take;
    struct wisp_http_header hdrs[WISP_HTTP_DEFAULT_MAX_HEADERS];
    struct wisp_http_response resp;
    struct wisp_http_limits lim = {max, WISP_HTTP_DEFAULT_MAX_HEADERS};
    ssize_t n = wisp_http_parse_response(c->head, c->head_len, prev, &lim, &resp, hdrs,
                                         WISP_HTTP_DEFAULT_MAX_HEADERS);
    if (n == WISP_EINCOMPLETE) {
        if (c->head_len == max)
            wispi_client_fail(c, WISP_EHANDSHAKE, "the server's answer is too long");
        return;
    }
    if (n < 0) {
        wispi_client_fail(c, WISP_EHANDSHAKE, "the server's answer is not HTTP");
        return;
    }
    struct wisp_ws_client_result res;
    int rc = wisp_ws_client_check(&resp, &cl->req, cl->key, &res);
    if (rc != 0) {
        static _Thread_local char why[160];
        snprintf(why, sizeof why, "upgrade refused: status %d, %s", res.status, res.reason);
        wispi_client_fail(c, rc < 0 ? rc : WISP_EHANDSHAKE, why);
        return;
    }
    if (res.protocol && !(c->protocol = strndup(res.protocol, res.protocol_len))) {
        wispi_client_fail(c, -ENOMEM, "out of memory");
        return;
    }
    if (wisp_ws_init(&c->ws, &c->route->cfg) < 0) {
        wispi_client_fail(c, -EINVAL, "bad engine settings");
        return;
    }
    if (cl->on_response && (rc = cl->on_response(c, c->state, &resp)) < 0) {
        wispi_client_fail(c, rc, "the response hook refused the answer");
        return;
    }
    c->path = strdup(cl->target);
    wispi_conn_opened(c);
    /* Frames right behind the answer: in our copy, then the rest of this buffer. */
    size_t rest = c->head_len - (size_t)n;
    if (rest && c->phase == PH_OPEN)
        wispi_conn_feed_ws(c, (uint8_t *)c->head + n, rest);
    free(c->head);
    c->head = NULL;
    if (take < len && c->phase == PH_OPEN)
        wispi_conn_feed_ws(c, p + take, len - take);
}

struct wisp_server *wispi_client_server(struct wispi_client *cl)
{
    return &cl->srv;
}

const struct wispi_route *wispi_client_route(struct wispi_client *cl)
{
    return &cl->route;
}
