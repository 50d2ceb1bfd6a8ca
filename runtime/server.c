/* Servers: options, routes, binding listeners, and the calls other actors use to reach a
 * connection. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <wisp/version.h>

#include "pubsub.h"
#include "server_internal.h"
#include "tls.h"

const char *wisp_close_why_str(enum wisp_close_why why)
{
    switch (why) {
    case WISP_WHY_NORMAL:
        return "normal";
    case WISP_WHY_PROTOCOL:
        return "protocol error";
    case WISP_WHY_BAD_UTF8:
        return "bad utf-8";
    case WISP_WHY_TOO_BIG:
        return "too big";
    case WISP_WHY_TIMEOUT:
        return "timeout";
    case WISP_WHY_CLOSE_TIMEOUT:
        return "close timeout";
    case WISP_WHY_BACKPRESSURE:
        return "backpressure";
    case WISP_WHY_SHUTDOWN:
        return "shutdown";
    case WISP_WHY_ABNORMAL:
        return "abnormal";
    case WISP_WHY_NO_MEMORY:
        return "no memory";
    case WISP_WHY_IO_ERROR:
        return "i/o error";
    }
    return "unknown";
}

int wisp_route_init(struct wisp_route *r, const char *path, const struct wisp_handler *handler)
{
    if (!r || !path)
        return -EINVAL;
    memset(r, 0, sizeof *r);
    r->path = path;
    r->handler = handler;
    r->max_frame_size = WISP_WS_DEFAULT_MAX_FRAME;
    r->max_message_size = WISP_WS_DEFAULT_MAX_MESSAGE;
    r->fragment_size = WISPI_FRAGMENT_DEFAULT;
    r->send_high_watermark = 1024 * 1024;
    r->send_low_watermark = 256 * 1024;
    r->send_cap = 32 * 1024 * 1024; /* room to echo a largest message with another queued */
    r->overflow = WISP_OVERFLOW_CLOSE;
    return 0;
}

int wisp_server_opts_init(struct wisp_server_opts *o)
{
    if (!o)
        return -EINVAL;
    memset(o, 0, sizeof *o);
    o->handshake_timeout_ms = 10000;
    o->idle_timeout_ms = 30000;
    o->pong_timeout_ms = 10000;
    o->close_timeout_ms = 5000;
    o->max_request_head = WISP_HTTP_DEFAULT_MAX_HEAD_BYTES;
    o->max_held_buffers = 16;
    o->backlog = 1024;
    o->tcp_nodelay = true;
    return 0;
}

void wispi_server_opts_fill(struct wisp_server_opts *o)
{
    if (!o->max_request_head || o->max_request_head > 1024 * 1024)
        o->max_request_head = WISP_HTTP_DEFAULT_MAX_HEAD_BYTES;
    if (!o->max_held_buffers)
        o->max_held_buffers = 16;
    if (!o->close_timeout_ms)
        o->close_timeout_ms = 5000;
    if (!o->handshake_timeout_ms)
        o->handshake_timeout_ms = 10000;
    if (!o->pong_timeout_ms)
        o->pong_timeout_ms = 10000;
    if (o->backlog <= 0)
        o->backlog = 1024;
}

int wisp_server_new(struct wisp_runtime *rt, const struct wisp_server_opts *opts,
                    struct wisp_server **out)
{
    if (!rt || !out)
        return -EINVAL;
    struct wisp_server *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->rt = rt;
    if (opts)
        s->opts = *opts;
    else
        wisp_server_opts_init(&s->opts);
    wispi_server_opts_fill(&s->opts);
    s->max_conns = s->opts.max_connections;
    if (!s->max_conns) {
        struct rlimit rl;
        rlim_t lim = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
        s->max_conns = lim > 64 + 1 ? (uint32_t)(lim > UINT32_MAX ? UINT32_MAX : lim) - 64 : 1;
    }
    wispi_conn_def_init(&s->conn_def, 0);
    s->stats = aligned_alloc(_Alignof(struct wispi_srv_stats),
                             rt->nworkers * sizeof *s->stats);
    if (!s->stats) {
        free(s);
        return -ENOMEM;
    }
    memset(s->stats, 0, rt->nworkers * sizeof *s->stats);
    *out = s;
    return 0;
}

bool wispi_route_limits_ok(const struct wisp_route *r)
{
    if (r->send_low_watermark > r->send_high_watermark || r->send_high_watermark > r->send_cap)
        return false;
    if (!r->max_frame_size || !r->max_message_size || r->max_message_size >= (1ull << 32))
        return false;
    return r->overflow == WISP_OVERFLOW_CLOSE || r->overflow == WISP_OVERFLOW_DROP;
}

void wispi_route_set(struct wispi_route *nr, const struct wisp_route *r, enum wisp_ws_role role)
{
    nr->r = *r;
    wisp_ws_config_init(&nr->cfg, role);
    nr->cfg.max_frame_size = r->max_frame_size;
    nr->cfg.max_message_size = r->max_message_size;
    nr->cfg.fragment_size = r->fragment_size;
    if (r->handler && r->handler->on_frame)
        nr->cfg.flags |= WISP_WS_STREAM; /* the connection reassembles what the hook passed */
}

static bool route_ok(const struct wisp_route *r)
{
    if (!r->path || (!r->handler && !r->on_http))
        return false;
    if (strcmp(r->path, "*") != 0 && r->path[0] != '/')
        return false;
    const char *star = strchr(r->path, '*');
    if (star && star != r->path && (star[1] || star[-1] != '/'))
        return false; /* a star only as the whole path or after a final slash */
    return wispi_route_limits_ok(r);
}

int wisp_server_route(struct wisp_server *s, const struct wisp_route *r)
{
    if (!s || !r || !route_ok(r) || atomic_load(&s->listening))
        return -EINVAL;
    for (size_t i = 0; i < s->nroutes; i++)
        if (strcmp(s->routes[i].path, r->path) == 0)
            return -EEXIST;
    struct wispi_route *v = realloc(s->routes, (s->nroutes + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    s->routes = v;
    struct wispi_route *nr = &v[s->nroutes];
    nr->path = strdup(r->path);
    nr->group = malloc(sizeof *nr->group);
    if (!nr->path || !nr->group || wispi_group_init(nr->group, s->rt->nworkers) < 0) {
        free(nr->path);
        free(nr->group);
        return -ENOMEM;
    }
    wispi_route_set(nr, r, WISP_WS_SERVER);
    nr->r.path = nr->path;
    s->nroutes++;
    if (r->handler && r->handler->state_size > s->max_state)
        s->max_state = r->handler->state_size;
    return 0;
}

const struct wispi_route *wispi_route_find(const struct wisp_server *s, const char *path,
                                           size_t len)
{
    const struct wispi_route *fallback = NULL, *prefix = NULL;
    size_t prefix_len = 0;
    for (size_t i = 0; i < s->nroutes; i++) {
        const char *p = s->routes[i].path;
        size_t n = strlen(p);
        if (p[0] == '*')
            fallback = &s->routes[i];
        else if (p[n - 1] == '*') {
            /* a prefix route ("/files/" and a star) takes "/files/..." and "/files" */
            size_t base = n - 1;
            bool under = len >= base && memcmp(p, path, base) == 0;
            bool bare = len == base - 1 && memcmp(p, path, len) == 0;
            if ((under || bare) && base > prefix_len) {
                prefix = &s->routes[i];
                prefix_len = base;
            }
        } else if (n == len && memcmp(p, path, len) == 0)
            return &s->routes[i];
    }
    return prefix ? prefix : fallback;
}

int wispi_pick_worker(struct wisp_runtime *rt, uint32_t per_worker_max)
{
    int best = -1;
    uint32_t best_n = UINT32_MAX;
    for (unsigned i = 0; i < rt->nworkers; i++) {
        /* relaxed: a placement hint */
        uint32_t n = atomic_load_explicit(&rt->workers[i].conns, memory_order_relaxed);
        if (per_worker_max && n >= per_worker_max)
            continue;
        if (n < best_n) {
            best = (int)i;
            best_n = n;
        }
    }
    return best;
}

/* Freeze the routes (the route table is read by every worker from now on). */
static void freeze(struct wisp_server *s)
{
    if (atomic_load(&s->listening))
        return;
    wispi_conn_def_init(&s->conn_def, (s->max_state + 15) & ~(size_t)15);
    /* seq_cst: orders the route table and definition before any listener can spawn a
     * connection that reads them (the spawn itself also publishes through the run queue). */
    atomic_store(&s->listening, true);
}

static int bind_one(struct wisp_server *s, const struct addrinfo *ai, uint16_t *bound)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6) {
        int zero = 0; /* let [::] take IPv4 too where the system allows it */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    }
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, s->opts.backlog) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (bound && getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        *bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static int listen_common(struct wisp_server *s, const char *host, uint16_t port,
                         struct wispi_tls_ctx *tls, uint16_t *bound)
{
    if (!s->nroutes) {
        wispi_set_error("the server has no route: add one with wisp_server_route() first");
        return -EINVAL;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%u", (unsigned)port);
    int gai = getaddrinfo(*host ? host : NULL, portstr, &hints, &res);
    if (gai != 0) {
        wispi_set_error("cannot resolve listen address '%s': %s", host, gai_strerror(gai));
        return -ENOENT;
    }
    int fd = bind_one(s, res, bound);
    freeaddrinfo(res);
    if (fd < 0) {
        wispi_set_error("cannot listen on %s port %u: %s", host, (unsigned)port, strerror(-fd));
        return fd;
    }
    freeze(s);
    int rc = wispi_listener_spawn(s, fd, tls);
    if (rc < 0) {
        close(fd);
        wispi_set_error("cannot start a listener on %s port %u: %s", host, (unsigned)port,
                        rc == WISP_ECLOSED ? "the runtime is stopping" : strerror(-rc));
        return rc;
    }
    return 0;
}

int wisp_server_listen(struct wisp_server *s, const char *host, uint16_t port, uint16_t *bound)
{
    if (!s || !host)
        return -EINVAL;
    return listen_common(s, host, port, NULL, bound);
}

int wisp_server_listen_tls(struct wisp_server *s, const char *host, uint16_t port,
                           const struct wisp_tls_opts *tls, uint16_t *bound)
{
    if (!s || !host || !tls)
        return -EINVAL;
#if WISP_HAVE_TLS
    struct wispi_tls_ctx **v = realloc(s->tls, (s->ntls + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    s->tls = v;
    int rc = wispi_tls_ctx_new(tls, &v[s->ntls]);
    if (rc < 0)
        return rc;
    rc = listen_common(s, host, port, v[s->ntls], bound);
    if (rc < 0) {
        wispi_tls_ctx_free(v[s->ntls]);
        return rc;
    }
    s->ntls++;
    return 0;
#else
    (void)port;
    (void)bound;
    wispi_set_error("wisp was built without TLS (OpenSSL's libssl was not found)");
    return -ENOTSUP;
#endif
}

size_t wisp_server_connections(const struct wisp_server *s)
{
    /* relaxed: a snapshot for display */
    return s ? atomic_load_explicit(&((struct wisp_server *)(uintptr_t)s)->conns,
                                    memory_order_relaxed)
             : 0;
}

void wisp_server_free(struct wisp_server *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nroutes; i++) {
        free(s->routes[i].path);
        if (s->routes[i].group)
            wispi_group_free(s->routes[i].group);
        free(s->routes[i].group);
    }
    free(s->routes);
    free(s->stats);
#if WISP_HAVE_TLS
    for (size_t i = 0; i < s->ntls; i++)
        wispi_tls_ctx_free(s->tls[i]);
#endif
    free(s->tls);
    free(s);
}

/* ---- statistics --------------------------------------------------------------------------- */

void wispi_stat_close(struct wispi_srv_stats *st, uint16_t code)
{
    static const uint16_t codes[WISP_STATS_CLOSE_CODES] = WISP_STATS_CLOSE_CODE_LIST;
    size_t i = 0;
    if (code >= 4000 && code <= 4999)
        code = 4000;
    while (i + 1 < WISP_STATS_CLOSE_CODES && codes[i] != code)
        i++;
    wispi_stat_add(&st->closes[i], 1);
}

int wisp_server_stats(const struct wisp_server *s, struct wisp_server_stats *out)
{
    if (!s || !out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    /* relaxed: counters (see struct wispi_srv_stats) */
    out->connections = atomic_load_explicit(&s->conns, memory_order_relaxed);
    for (unsigned w = 0; w < s->rt->nworkers; w++) {
        const struct wispi_srv_stats *st = &s->stats[w];
#define SUM(f) out->f += atomic_load_explicit(&st->f, memory_order_relaxed)
        SUM(accepted);
        SUM(refused);
        SUM(handshake_failures);
        SUM(http_requests);
        SUM(opened);
        SUM(messages_in);
        SUM(bytes_in);
        SUM(messages_out);
        SUM(bytes_out);
        SUM(dropped);
        SUM(throttled);
#undef SUM
        for (size_t i = 0; i < WISP_STATS_CLOSE_CODES; i++)
            out->closes[i] += atomic_load_explicit(&st->closes[i], memory_order_relaxed);
    }
    return 0;
}

/* ---- reaching a connection from other actors ---------------------------------------------- */

static int send_to(struct wisp_runtime *rt, struct wispi_actor *sender, wisp_addr conn,
                   enum wisp_ws_opcode op, const void *data, size_t len)
{
    if (!rt || (!data && len) || (op != WISP_WS_OP_TEXT && op != WISP_WS_OP_BINARY))
        return -EINVAL;
    return wispi_send_internal(rt, sender, conn,
                               op == WISP_WS_OP_TEXT ? WISPI_MSG_SEND_TEXT : WISPI_MSG_SEND_BINARY,
                               data, len);
}

int wisp_conn_send_to(struct wisp_ctx *ctx, wisp_addr conn, enum wisp_ws_opcode op,
                      const void *data, size_t len)
{
    if (!ctx)
        return -EINVAL;
    return send_to(ctx->actor->rt, ctx->actor, conn, op, data, len);
}

int wisp_rt_conn_send_to(struct wisp_runtime *rt, wisp_addr conn, enum wisp_ws_opcode op,
                         const void *data, size_t len)
{
    return send_to(rt, NULL, conn, op, data, len);
}

static int close_to(struct wisp_runtime *rt, struct wispi_actor *sender, wisp_addr conn,
                    uint16_t code, const char *reason)
{
    size_t len = reason ? strlen(reason) : 0;
    if (!rt || !wisp_close_code_is_valid(code) || len > WISP_WS_MAX_CONTROL - 2 ||
        (len && !wisp_utf8_valid(reason, len)))
        return -EINVAL;
    unsigned char buf[sizeof(uint16_t) + WISP_WS_MAX_CONTROL];
    memcpy(buf, &code, sizeof code);
    if (len)
        memcpy(buf + sizeof code, reason, len);
    return wispi_send_internal(rt, sender, conn, WISPI_MSG_CLOSE, buf, sizeof code + len);
}

int wisp_conn_close_to(struct wisp_ctx *ctx, wisp_addr conn, uint16_t code, const char *reason)
{
    if (!ctx)
        return -EINVAL;
    return close_to(ctx->actor->rt, ctx->actor, conn, code, reason);
}

int wisp_rt_conn_close_to(struct wisp_runtime *rt, wisp_addr conn, uint16_t code,
                          const char *reason)
{
    return close_to(rt, NULL, conn, code, reason);
}
