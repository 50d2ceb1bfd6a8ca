/* What the server, its listeners and its connections share (internal). */
#ifndef WISP_RUNTIME_SERVER_INTERNAL_H
#define WISP_RUNTIME_SERVER_INTERNAL_H

#include <stdatomic.h>

#include <wisp/server.h>

#include "net.h"

struct wispi_group;

/* A route's default fragment_size; published frames are split the same way. */
#define WISPI_FRAGMENT_DEFAULT (64u * 1024u)

struct wispi_route {
    char *path;               /* owned copy of r.path */
    struct wisp_route r;      /* the application's settings, r.path pointing at `path` */
    struct wisp_ws_config cfg; /* the engine settings derived from them */
    /* A server route's open connections, for broadcast and emit (pubsub.h); NULL for a
     * client's route. Allocated apart so that the route table can grow. */
    struct wispi_group *group;
};

/* A server's counters on one worker. Only that worker writes them (its listener, its
 * connections and its delivery actor all run on its thread), so an increment is a relaxed
 * load and store, not a locked add; readers (wisp_server_stats) load them relaxed: a
 * statistic needs no ordering with anything else. */
struct wispi_srv_stats {
    _Atomic uint64_t accepted, refused, handshake_failures, http_requests, opened;
    _Atomic uint64_t messages_in, bytes_in, messages_out, bytes_out, dropped, throttled;
    _Atomic uint64_t closes[WISP_STATS_CLOSE_CODES];
} __attribute__((aligned(64)));

static inline void wispi_stat_add(_Atomic uint64_t *x, uint64_t n)
{
    atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* Count a close code in the slot WISP_STATS_CLOSE_CODE_LIST gives it. */
void wispi_stat_close(struct wispi_srv_stats *st, uint16_t code);

struct wisp_server {
    struct wisp_runtime *rt;
    struct wisp_server_opts opts;
    struct wispi_route *routes;
    size_t nroutes;
    const struct wispi_route *fallback; /* the "*" route, if any */
    /* Connection actors: their state is a struct wisp_conn followed by the largest handler
     * state of the server's routes (the route is known only once the request arrived). */
    struct wisp_actor_def conn_def;
    size_t max_state;
    uint32_t max_conns;
    /* Open connections, for the global limit: incremented by the listener's worker at
     * accept, decremented by the connection's worker when it ends. */
    _Atomic uint32_t conns;
    _Atomic bool listening; /* routes are frozen */
    _Atomic unsigned listeners;
    struct wispi_tls_ctx **tls; /* the TLS listeners' contexts, freed with the server */
    size_t ntls;
    struct wispi_srv_stats *stats; /* one per worker */
};

/* A route's limits are usable: watermarks in order under the cap, receive limits the engine
 * takes, a known overflow policy. (Servers also check the path and handlers.) */
bool wispi_route_limits_ok(const struct wisp_route *r);
/* Copy r into nr and derive the engine settings for the role. */
void wispi_route_set(struct wispi_route *nr, const struct wisp_route *r, enum wisp_ws_role role);
/* Give every zero (or unusable) setting of o its default. */
void wispi_server_opts_fill(struct wisp_server_opts *o);
/* The worker with the fewest connections that is under per_worker_max (0: no limit), or -1. */
int wispi_pick_worker(struct wisp_runtime *rt, uint32_t per_worker_max);

/* The route serving path (len bytes): an exact route, else the longest prefix route
 * ("/files/" then a star), else the "*" route; or NULL. */
const struct wispi_route *wispi_route_find(const struct wisp_server *s, const char *path,
                                           size_t len);
/* Start a listener actor for a bound, listening fd (which it then owns); tls: the contexts of
 * a TLS listener (owned by the server), or NULL. */
int wispi_listener_spawn(struct wisp_server *s, int fd, struct wispi_tls_ctx *tls);
/* The spawn argument of a connection actor for fd (written to out); returns its length. */
struct wispi_tls_ctx;
int wispi_conn_arg(struct wisp_server *srv, struct wispi_tls_ctx *tls, int fd, void *out,
                   size_t cap);
/* Fill a connection actor definition for handler states of up to state_size bytes. */
void wispi_conn_def_init(struct wisp_actor_def *def, size_t state_size);

#endif
