/* What the server, its listeners and its connections share (internal). */
#ifndef WISP_RUNTIME_SERVER_INTERNAL_H
#define WISP_RUNTIME_SERVER_INTERNAL_H

#include <stdatomic.h>

#include <wisp/server.h>

#include "net.h"

struct wispi_route {
    char *path;               /* owned copy of r.path */
    struct wisp_route r;      /* the application's settings, r.path pointing at `path` */
    struct wisp_ws_config cfg; /* the engine settings derived from them */
};

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

/* The route serving path (len bytes), or NULL. */
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
