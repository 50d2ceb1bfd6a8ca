/* The test server's pub/sub routes: /ps, /ps-close and /ps-drop (a command protocol over
 * topics, broadcast and emit) and /pstats (the server's and runtime's statistics as JSON).
 * See pubsub_routes.c for the commands. */
#ifndef WISP_TEST_PUBSUB_ROUTES_H
#define WISP_TEST_PUBSUB_ROUTES_H

#include <wisp/wisp.h>

/* Add the routes (before listening) and spawn their helper actor. 0 or a negative code. */
int pubsub_routes_add(struct wisp_runtime *rt, struct wisp_server *srv);

#endif
