/* actors/pubsub_bridge.h: wisp's topics for WebSocket clients, the built-in module "pubsub".
 *
 *     wisp --route /ps=pubsub                          # defaults
 *     wisp --route /ps=pubsub:max_subs=16,prefix=app/  # settings, comma-separated
 *
 * Clients subscribe to topics and publish to them with a small JSON text protocol; every
 * publish is framed once and shared by all subscribers (wisp/pubsub.h).
 *
 * PROTOCOL (JSON text frames, one object per frame; other keys are ignored)
 *
 * Client to server:
 *   {"type":"subscribe","topic":"x"}
 *       Answered with {"type":"subscribed","topic":"x"} once the subscription is in place:
 *       everything published to x after that answer was sent is delivered. Subscribing again
 *       to a topic the connection already has is answered the same way (one subscription).
 *   {"type":"unsubscribe","topic":"x"}
 *       Answered with {"type":"unsubscribed","topic":"x"}; nothing published after it is
 *       delivered (deliveries already queued for the socket still go out, so a message may
 *       arrive between the request and the answer). Unsubscribing from a topic the
 *       connection does not have is an error ("not subscribed").
 *   {"type":"publish","topic":"x","data":"..."}
 *       Publish data (any JSON string) to every subscriber of x, the publisher included if
 *       it is subscribed. No answer on success.
 *
 * Server to client:
 *   {"type":"message","topic":"x","data":"..."}
 *       A delivery. Built once by the publishing connection and published as is, so every
 *       subscriber gets the same bytes. The messages of one publisher to one topic arrive in
 *       the order it published them, each exactly once; messages of several publishers
 *       interleave in some order, which may differ between subscribers (wisp/pubsub.h).
 *   {"type":"error","error":"..."}
 *       The last request was refused; the connection stays open. The texts:
 *         "invalid JSON"          not a JSON object (RFC 8259, strict), or a key twice
 *         "missing type"          no "type" string
 *         "unknown type"          a type other than the three above
 *         "missing topic"         no "topic" string
 *         "bad topic"             empty, longer than the topic limit (255 bytes minus the
 *                                 prefix's length, in UTF-8 bytes), or holding U+0000
 *         "missing data"          a publish without a "data" string
 *         "too many subscriptions (max N)"
 *         "not subscribed"
 *         "binary messages are not supported"
 *         "out of memory", "publish failed", "subscribe failed"   (should not happen)
 *   Strings in answers are escaped JSON (control characters, '"', '\\', U+2028/U+2029).
 *
 * Binary messages from clients are refused with the error above: a topic for raw bytes would
 * need a framing of its own, and JSON keeps the protocol one thing. Deliveries are always
 * text.
 *
 * Delivery to a slow reader: a subscriber whose peer does not read falls under the route's
 * send cap and overflow policy like any connection (by default it is closed with 1008 once
 * send_cap bytes are waiting); the others are not slowed down. Publishing never blocks.
 *
 * SETTINGS (the mount argument: key=value pairs separated by commas; an unknown key or a bad
 * value fails the mount with -EINVAL and a line on stderr)
 *   max_subs=N     subscriptions per connection, 1-1024 (WISP_SUBS_MAX; default 64)
 *   prefix=TEXT    prepended to every client topic to make the runtime's topic name (default
 *                  "pubsub/", up to 64 bytes, no ','). It keeps clients out of other
 *                  modules' topics (the chat rooms use "chat/..."): with prefix= (empty),
 *                  clients can read and write every topic of the process. Two mounts with the
 *                  same prefix share their topics. Server code publishes to the clients'
 *                  topic "x" with wisp_rt_publish(rt, "pubsub/x", ...) of a frame in the
 *                  delivery format above.
 *   send_cap=SIZE  the route's send cap in bytes (K, M, G suffixes; 64K-1G); the high
 *                  watermark is lowered to it if above
 *
 * Written against the public headers only (<wisp/...>).
 */
#ifndef WISP_ACTORS_PUBSUB_BRIDGE_H
#define WISP_ACTORS_PUBSUB_BRIDGE_H

#include <wisp/module.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The "pubsub" module (built in: a plain const struct, not WISP_MODULE_DEFINE). */
extern const struct wisp_module wisp_pubsub_module;

#ifdef __cplusplus
}
#endif
#endif
