/* actors/broadcast.h: a ready-made broadcast handler and the "broadcast" module.
 *
 * Every text or binary message a client sends goes, unchanged, to every OTHER open connection
 * of the same route, on every worker; the sender does not get it back. Nothing is stored: a
 * connection gets what is sent while it is open. The message is framed once and the same bytes
 * are queued to every receiver (wisp_conn_broadcast, wisp/pubsub.h), so a broadcast to N
 * connections costs one copy, not N.
 *
 *     #include "broadcast.h"
 *     struct wisp_route r;
 *     wisp_route_init(&r, "/room", &wisp_broadcast_handler);
 *     wisp_server_route(srv, &r);
 *
 * or, with the wisp program: `wisp --route /room=broadcast`.
 *
 * Order: the messages of one sender reach each receiver in the order they were sent; messages
 * of different senders interleave in some order. A receiver that reads slower than the room
 * talks falls under its route's backpressure: its messages queue up to send_cap, then the
 * route's overflow policy applies to it alone (WISP_OVERFLOW_CLOSE, the default, closes it
 * with 1008; WISP_OVERFLOW_DROP drops what does not fit for that receiver). The sender is
 * never slowed down by its receivers. A broadcast that fails for want of memory closes the
 * sender with 1011, so no client believes a message went out when it did not.
 *
 * The handler keeps no per-connection state (state_size 0) and never blocks. It needs a
 * threaded runtime (pub/sub is not available in a deterministic one: the sender is then
 * closed with 1011 on its first message).
 *
 * Written against the public headers only; link with wisp_actors_dep (meson) or
 * libwisp_actors.a.
 */
#ifndef WISP_ACTORS_BROADCAST_H
#define WISP_ACTORS_BROADCAST_H

#include <wisp/module.h>
#include <wisp/server.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The broadcast handler: a static table with no state; share it between routes (each route
 *  is its own group). */
extern const struct wisp_handler wisp_broadcast_handler;

/** The module "broadcast": mounts wisp_broadcast_handler; refuses an argument. */
extern const struct wisp_module wisp_broadcast_module;

#ifdef __cplusplus
}
#endif
#endif
