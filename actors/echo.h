/* actors/echo.h: a ready-made WebSocket echo handler.
 *
 * Mount it on any route and every message comes back to its sender unchanged: text as text,
 * binary as binary, fragmented messages as one (wisp reassembles them before the handler sees
 * them; the answer is re-fragmented by the route's fragment_size). Pings are answered by wisp
 * itself, and a peer's close is answered with the same code and reason.
 *
 *     #include "echo.h"
 *     struct wisp_route r;
 *     wisp_route_init(&r, "*", &wisp_echo_handler);   // "*": every path echoes
 *     wisp_server_route(srv, &r);
 *
 * The handler keeps no per-connection state and never blocks. It does not slow down when a
 * send reports WISP_SEND_PRESSURE (the peer reads slower than it writes): the message is
 * queued anyway, and the route's send_cap and overflow policy bound the memory one connection
 * can hold (WISP_OVERFLOW_CLOSE, the default, closes a peer that lets more than send_cap bytes
 * pile up with 1008; WISP_OVERFLOW_DROP drops the echo instead). wisp also stops reading a
 * connection whose mailbox is full, so a flooding peer is pushed back by TCP.
 *
 * As a module of the `wisp` program (wisp/module.h): `wisp --route /echo=echo` mounts it on
 * /echo. It takes no argument; the route's limits come from the program's options.
 *
 * Written against the public headers only; link with wisp_actors_dep (meson) or
 * libwisp_actors.a.
 */
#ifndef WISP_ACTORS_ECHO_H
#define WISP_ACTORS_ECHO_H

#include <wisp/module.h>
#include <wisp/server.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The echo handler: a static table with no state (state_size 0); share it between routes. */
extern const struct wisp_handler wisp_echo_handler;

/** The module "echo": mounts wisp_echo_handler; refuses an argument. */
extern const struct wisp_module wisp_echo_module;

#ifdef __cplusplus
}
#endif
#endif
