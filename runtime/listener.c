/* Listener actors: one per listening socket, accepting with a multishot accept on its worker's
 * ring and handing each new connection to the least-loaded worker.
 *
 * Limits: beyond the server's max_connections (or every worker's per-worker limit) a new
 * connection gets a 503 and is closed at once, so clients learn why instead of waiting in the
 * backlog. When the process runs out of descriptors (EMFILE, ENFILE) or memory, accepting
 * pauses for ACCEPT_BACKOFF_MS and resumes: never a spin, never a crash.
 */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server_internal.h"

#define ACCEPT_BACKOFF_MS 100u

struct listener {
    struct wispi_sock sock;
    struct wisp_server *srv;
    struct wispi_tls_ctx *tls;
    struct wispi_net *net;
    uint64_t resume_ms; /* back-off after EMFILE & co; 0: none */
    bool accepting;     /* the multishot accept is armed */
    bool stopped;
};

struct listener_arg {
    struct wisp_server *srv;
    int fd;
    struct wispi_tls_ctx *tls;
};

static struct listener *of_sock(struct wispi_sock *s)
{
    return (struct listener *)(void *)s;
}

static void refuse_busy(int fd)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                               "Content-Length: 20\r\nConnection: close\r\n\r\n"
                               "too many connections";
    /* A fresh socket's send buffer is empty: this never blocks, and if it fails the client
     * still sees the connection close. */
    ssize_t n = send(fd, busy, sizeof busy - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)n;
    close(fd);
}

static void hand_off(struct listener *l, int fd)
{
    struct wisp_server *srv = l->srv;
    struct wisp_runtime *rt = srv->rt;
    struct wispi_srv_stats *st = &srv->stats[wispi_current_worker()->index];
    wispi_stat_add(&st->accepted, 1);
    /* relaxed: the limit is a bound on resources, checked by this thread only; connections
     * ending on other workers may make it briefly stricter than needed, never looser. */
    if (atomic_load_explicit(&srv->conns, memory_order_relaxed) >= srv->max_conns) {
        wispi_stat_add(&st->refused, 1);
        refuse_busy(fd);
        return;
    }
    int wi = wispi_pick_worker(rt, srv->opts.max_connections_per_worker);
    if (wi < 0) {
        wispi_stat_add(&st->refused, 1);
        refuse_busy(fd);
        return;
    }
    /* relaxed: counters (see above); the connection's worker decrements them */
    atomic_fetch_add_explicit(&srv->conns, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&rt->workers[wi].conns, 1, memory_order_relaxed);
    unsigned char arg[64];
    int len = wispi_conn_arg(srv, l->tls, fd, arg, sizeof arg);
    int rc = wispi_spawn_internal(rt, &srv->conn_def, arg, (size_t)len, (unsigned)wi,
                                  ACTOR_TRAP_SHUTDOWN, NULL);
    if (rc < 0) {
        atomic_fetch_sub_explicit(&srv->conns, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&rt->workers[wi].conns, 1, memory_order_relaxed);
        if (rc == WISP_ECLOSED)
            close(fd); /* shutting down */
        else
            refuse_busy(fd);
    }
}

static void listener_cqe(struct wispi_net *net, struct wispi_sock *s, unsigned tag, int32_t res,
                         uint32_t flags)
{
    struct listener *l = of_sock(s);
    if (tag != UD_NET_ACCEPT)
        return;
    if (res >= 0) {
        if (l->stopped)
            close(res);
        else
            hand_off(l, res);
    }
    if (flags & IORING_CQE_F_MORE)
        return;
    l->accepting = false;
    if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM)
        l->resume_ms = net->w->now_ms + ACCEPT_BACKOFF_MS;
    else if (res < 0 && res != -ECANCELED && res != -EINTR && res != -ECONNABORTED &&
             res != -EAGAIN)
        l->resume_ms = net->w->now_ms + ACCEPT_BACKOFF_MS; /* unexpected: retry, slowly */
    wispi_sock_dirty(net, s);
}

static void listener_flush(struct wispi_net *net, struct wispi_sock *s)
{
    struct listener *l = of_sock(s);
    if (l->accepting || l->stopped)
        return;
    if (l->resume_ms && net->w->now_ms < l->resume_ms)
        return; /* the sweep brings us back */
    l->resume_ms = 0;
    struct io_uring_sqe *sqe = wispi_sock_sqe(net, s, UD_NET_ACCEPT);
    if (!sqe)
        return;
    io_uring_prep_multishot_accept(sqe, s->fd, NULL, NULL, SOCK_CLOEXEC);
    l->accepting = true;
}

static void listener_sweep(struct wispi_net *net, struct wispi_sock *s, uint64_t now)
{
    struct listener *l = of_sock(s);
    if (!l->accepting && !l->stopped && l->resume_ms && now >= l->resume_ms)
        wispi_sock_dirty(net, s);
}

static void listener_io(struct wisp_ctx *ctx, struct wispi_sock *s)
{
    (void)ctx;
    (void)s;
}

static void listener_teardown(struct wispi_sock *s)
{
    (void)s;
}

static const struct wispi_sock_ops listener_ops = {
    .cqe = listener_cqe,
    .io = listener_io,
    .flush = listener_flush,
    .sweep = listener_sweep,
    .teardown = listener_teardown,
};

static int listener_init(struct wisp_ctx *ctx, void *state, const void *arg, size_t len)
{
    struct listener *l = state;
    const struct listener_arg *a = arg;
    (void)len;
    l->srv = a->srv;
    l->tls = a->tls;
    l->net = wispi_net_get(ctx->worker);
    if (!l->net || wispi_sock_register(l->net, &l->sock, a->fd, &listener_ops, ctx->actor) < 0) {
        close(a->fd);
        return -ENOMEM;
    }
    wispi_sock_dirty(l->net, &l->sock);
    return 0;
}

static void listener_receive(struct wisp_ctx *ctx, void *state, const struct wisp_msg *msg)
{
    struct listener *l = state;
    if (msg->type == WISPI_MSG_SHUTDOWN) {
        /* Stop accepting first: the connections then close gracefully on their own. */
        l->stopped = true;
        wispi_sock_close(l->net, &l->sock);
        wisp_stop(ctx, (struct wisp_exit){WISP_EXIT_SHUTDOWN, 0});
    }
}

static void listener_terminate(struct wisp_ctx *ctx, void *state, struct wisp_exit reason)
{
    struct listener *l = state;
    (void)ctx;
    (void)reason;
    l->stopped = true;
    wispi_sock_close(l->net, &l->sock);
    l->sock.actor = NULL;
}

static const struct wisp_actor_def listener_def = {
    .name = "wisp-listener",
    .state_size = sizeof(struct listener),
    .init = listener_init,
    .receive = listener_receive,
    .terminate = listener_terminate,
};

int wispi_listener_spawn(struct wisp_server *s, int fd, struct wispi_tls_ctx *tls)
{
    struct listener_arg a = {s, fd, tls};
    /* relaxed: spreads listeners over workers; nothing else depends on it */
    unsigned n = atomic_fetch_add_explicit(&s->listeners, 1, memory_order_relaxed);
    return wispi_spawn_internal(s->rt, &listener_def, &a, sizeof a, n % s->rt->nworkers,
                                ACTOR_TRAP_SHUTDOWN, NULL);
}
