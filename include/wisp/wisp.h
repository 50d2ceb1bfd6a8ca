/* wisp: a WebSocket runtime in which every connection is an actor.
 *
 * This umbrella header pulls in the whole public API:
 *   wisp/error.h    error codes shared by every module, wisp_strerror()
 *   wisp/ws.h       the sans-IO RFC 6455 engine (frames, messages, close handshake)
 *   wisp/http.h     the HTTP/1.1 upgrade handshake for servers and clients
 *   wisp/actor.h    actors, messages, timers, links, monitors, the registry
 *   wisp/runtime.h  creating, running and stopping the runtime
 *   wisp/server.h   WebSocket servers: routes, listeners, connection actors and handlers
 *   wisp/client.h   WebSocket client connections (the same handlers)
 *   wisp/version.h  version and build features
 */
#ifndef WISP_WISP_H
#define WISP_WISP_H

#include <wisp/version.h>
#include <wisp/error.h>
#include <wisp/ws.h>
#include <wisp/http.h>
#include <wisp/actor.h>
#include <wisp/runtime.h>
#include <wisp/server.h>
#include <wisp/client.h>
#include <wisp/pubsub.h>
#include <wisp/module.h>

#endif
