/* wisp/pubsub.h: topics, broadcast and emit across every worker.
 *
 * A topic is a name ("room:lobby", "prices/EURUSD"); WebSocket connections subscribe to it, and
 * anyone (a connection, another actor, an outside thread) publishes text or binary messages to
 * it. Subscribers may live on any worker. Broadcast and emit are the same thing for a route: every
 * open connection of a route is a member of that route's group, which works like a topic.
 *
 * How a publish travels: the message is framed once (one WebSocket frame, or 64 KiB fragments
 * for a large one) into a reference-counted buffer; one delivery goes to each worker that has
 * subscribers; that worker appends a reference to the same bytes to each of its subscribers'
 * send queues. No subscriber's copy is ever made (TLS connections encrypt from the shared bytes;
 * client-role connections, which must mask, frame their own copy).
 *
 * Guarantees:
 *   - Order: the messages one publisher (one actor, or one outside thread) publishes to a topic
 *     reach each subscriber in the order they were published. Messages of different publishers
 *     interleave in some order, which can differ between subscribers on different workers.
 *   - Exactly once: a subscriber gets each message published while it is subscribed once; a
 *     subscription made by the publisher's own actor, or by an actor it heard from, before a
 *     publish is in place for that publish (the mailbox hand-off orders them).
 *   - No blocking: publishing never waits for subscribers. A subscriber whose peer reads slowly
 *     falls under its own route's backpressure (server.h): below the send cap messages queue;
 *     over it the route's overflow policy applies: WISP_OVERFLOW_CLOSE closes that connection
 *     with 1008, WISP_OVERFLOW_DROP drops the message for that subscriber alone and reports it
 *     to its handler's on_error with WISP_EFULL. Watermark callbacks (on_throttled /
 *     on_unthrottled) run on the subscriber's own turns as for any send.
 *   - Clean up: a connection leaves every topic and its route's group when it closes (before
 *     on_closed), so nobody publishes to a dead connection.
 *
 * Limits: topic names are 1 to WISP_TOPIC_MAX bytes (any bytes but NUL); a connection holds at
 * most WISP_SUBS_MAX subscriptions (-ENOSPC beyond). A topic with no subscriber takes no memory.
 *
 * Shutdown: the per-worker delivery actors stop with the runtime's graceful shutdown, so a
 * publish, broadcast or emit made while it runs (in on_shutdown, say) may be refused with
 * WISP_ECLOSED or delivered only in part; say goodbye with wisp_conn_send_text there.
 *
 * Not available in a deterministic runtime (it has no sockets): the calls return -ENOTSUP.
 */
#ifndef WISP_PUBSUB_H
#define WISP_PUBSUB_H

#include <stdbool.h>
#include <stddef.h>

#include <wisp/actor.h>
#include <wisp/error.h>
#include <wisp/runtime.h>
#include <wisp/server.h>
#include <wisp/ws.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Longest topic name, in bytes. */
#define WISP_TOPIC_MAX 255
/** Most topics one connection may be subscribed to at once. */
#define WISP_SUBS_MAX 1024

/* ---- subscribing ---------------------------------------------------------------------------- */

/**
 * Subscribe the connection to a topic (from inside its own callbacks). Subscribing twice is
 * harmless (one subscription, 0 returned).
 * @param topic  NUL-terminated name, copied.
 * @return 0, -EINVAL (bad name), -ENOSPC (WISP_SUBS_MAX reached), WISP_ECLOSED (the
 *         connection is not open), -ENOTSUP (deterministic runtime), -ENOMEM.
 */
WISP_API int wisp_conn_subscribe(struct wisp_conn *c, const char *topic);

/** Leave a topic (from inside the connection's callbacks). Messages already handed to its send
 *  queue still go out; later ones do not. @return 0, -ENOENT (not subscribed), -EINVAL. */
WISP_API int wisp_conn_unsubscribe(struct wisp_conn *c, const char *topic);

/** Whether the connection is subscribed to topic. */
WISP_API bool wisp_conn_subscribed(const struct wisp_conn *c, const char *topic);

/**
 * Subscribe a connection from another actor (a room, a registry...), and optionally send it a
 * first message in the same step (say, the room's history): the message is queued before any
 * message published to the topic after this call by the same actor, and the subscription is in
 * place for all of those, with no gap and no duplicate. It happens asynchronously on the
 * connection's worker: if the connection is gone or closing by then, nothing happens.
 * @param ctx      the calling actor.
 * @param conn     the connection actor's address (wisp_conn_addr).
 * @param topic    copied.
 * @param op       WISP_WS_OP_TEXT (must be UTF-8) or WISP_WS_OP_BINARY, for the first message.
 * @param first    the first message (copied), or NULL with first_len 0 for none.
 * @return 0 (requested), -ESRCH (no such actor), -EINVAL (bad name, not a connection,
 *         bad op, text not UTF-8), -ENOTSUP, -ENOMEM, WISP_ECLOSED (runtime stopping).
 */
WISP_API int wisp_subscribe_to(struct wisp_ctx *ctx, wisp_addr conn, const char *topic,
                               enum wisp_ws_opcode op, const void *first, size_t first_len);

/** Unsubscribe a connection from another actor (asynchronously, ordered after earlier calls
 *  of the same actor). @return as wisp_subscribe_to. */
WISP_API int wisp_unsubscribe_to(struct wisp_ctx *ctx, wisp_addr conn, const char *topic);

/* ---- publishing ----------------------------------------------------------------------------- */

/**
 * Publish a message to every subscriber of topic. Returns at once; delivery happens on the
 * subscribers' workers.
 * @param ctx   the calling actor (wisp_conn_ctx(c) inside a connection callback).
 * @param op    WISP_WS_OP_TEXT (must be UTF-8) or WISP_WS_OP_BINARY.
 * @param data  copied once (into the shared frame).
 * @return the number of subscribers when the message was published (0 when there are none:
 *         nothing was queued), -EINVAL (bad topic or op), -EILSEQ (text not UTF-8),
 *         -ENOTSUP, -ENOMEM, WISP_ECLOSED (runtime stopping).
 */
WISP_API int wisp_publish(struct wisp_ctx *ctx, const char *topic, enum wisp_ws_opcode op,
                          const void *data, size_t len);
/** The same from any thread outside the runtime's actors. */
WISP_API int wisp_rt_publish(struct wisp_runtime *rt, const char *topic, enum wisp_ws_opcode op,
                             const void *data, size_t len);

/** Subscribers of topic right now, across all workers (approximate while they change). */
WISP_API size_t wisp_topic_subscribers(struct wisp_runtime *rt, const char *topic);

/* ---- broadcast and emit (SimpleWebsockets' names) --------------------------------------------- */

/**
 * Send a message to every other open connection of c's route (c itself excluded), on every
 * worker, framed once as a publish is. From inside c's callbacks.
 * @return the number of other connections it went to (approximate), or as wisp_publish.
 */
WISP_API int wisp_conn_broadcast(struct wisp_conn *c, enum wisp_ws_opcode op, const void *data,
                                 size_t len);

/**
 * Send a message to every open connection of a route, from any thread or actor.
 * @param srv     the server; borrowed.
 * @param path    the route's path as given to wisp_server_route ("/chat", "*").
 * @param except  a connection to leave out, or WISP_ADDR_NONE.
 * @return the number of connections it went to (approximate), -ENOENT (no such route),
 *         or as wisp_publish.
 */
WISP_API int wisp_server_emit(struct wisp_server *srv, const char *path, wisp_addr except,
                              enum wisp_ws_opcode op, const void *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif
