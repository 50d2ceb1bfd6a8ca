/* Topics and route groups (internal): who subscribes where, and the shared frames that
 * publishing hands to subscribers.
 *
 * A group is a set of connections split by worker: members[w] is touched only by worker w (by
 * its connections' turns, its delivery actor's turns and its flush), so it needs no lock. Its
 * `count` is read by publishers on any thread, to skip workers without subscribers. A topic is
 * a named group in the runtime's table; a route group belongs to its route.
 *
 * A publish frames the message once into a struct wispi_frame (reference counted), then sends
 * one DELIVER message to the delivery actor of each worker with members; that actor appends
 * the frame to each member's send queue (conn_pubsub.c), by reference.
 */
#ifndef WISP_RUNTIME_PUBSUB_H
#define WISP_RUNTIME_PUBSUB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <wisp/pubsub.h>

struct wisp_conn;
struct wispi_sub;
struct wispi_topic;

struct wispi_members {
    struct wispi_sub **v;
    uint32_t n, cap;
    /* Members plus subscriptions requested (wisp_subscribe_to) and not yet applied, so a
     * publish right after the request includes this worker. Written by any thread (RMW),
     * read by publishers. relaxed everywhere: a publisher that must see a subscription is
     * ordered after it by a mailbox hand-off (release/acquire) or by program order. */
    _Atomic uint32_t count;
};

struct wispi_group {
    unsigned nworkers;
    struct wispi_members *w; /* [nworkers] */
};

/* One subscription: a connection in a group. */
struct wispi_sub {
    struct wispi_group *group;
    struct wispi_topic *topic; /* NULL for a route group */
    struct wisp_conn *conn;
    uint32_t idx;          /* position in group->w[worker].v */
    struct wispi_sub *next; /* the connection's other subscriptions */
};

/* A message framed once (server role: unmasked), shared by every subscriber's send queue. */
struct wispi_frame {
    _Atomic uint32_t refs;
    uint8_t op;
    uint32_t nfrag;
    size_t len;      /* payload bytes */
    size_t wire_len; /* header and payload bytes of every fragment */
    uint8_t *wire;
    struct wispi_group *group;  /* where it goes (DELIVER) */
    struct wispi_topic *topic;  /* a reference on it, or NULL (route group) */
    wisp_addr except;           /* a connection left out, or none */
    size_t frag_end[];          /* nfrag offsets into wire: where fragment i ends */
};

/* Internal message types. */
#define WISPI_MSG_DELIVER 0xFFFF0110u   /* to a delivery actor: payload a struct wispi_frame */
#define WISPI_MSG_SUBSCRIBE 0xFFFF0111u /* to a delivery actor: payload a struct wispi_subreq */
#define WISPI_MSG_FRAME 0xFFFF0112u     /* to a connection: a frame to send on its own turn */

int wispi_group_init(struct wispi_group *g, unsigned nworkers);
void wispi_group_free(struct wispi_group *g);
/* On worker `worker`: add / remove a subscription. reserved: the count was raised already. */
int wispi_group_join(struct wispi_group *g, unsigned worker, struct wispi_sub *s, bool reserved);
void wispi_group_leave(struct wispi_sub *s, unsigned worker);

/* A reference on a frame, and dropping one (the last frees it); release-callback shaped. */
void wispi_frame_ref(struct wispi_frame *f);
void wispi_frame_release(void *frame, size_t len, void *arg);
/* The payload of a frame, copied into out (f->len bytes); for client-role connections and
 * send hooks, which cannot use the shared unmasked bytes. */
void wispi_frame_payload(const struct wispi_frame *f, uint8_t *out);

/* Topics (pubsub.c). */
struct wispi_topic *wispi_topic_get(struct wisp_runtime *rt, const char *name, size_t len);
void wispi_topic_put(struct wisp_runtime *rt, struct wispi_topic *t);
struct wispi_group *wispi_topic_group(struct wispi_topic *t);
bool wispi_topic_is(const struct wispi_topic *t, const char *name, size_t len);
/* Publish to a group (topic: referenced by the caller, the reference is consumed). */
int wispi_publish_group(struct wisp_runtime *rt, struct wispi_group *g, struct wispi_topic *t,
                        wisp_addr except, enum wisp_ws_opcode op, const void *data, size_t len);
/* The runtime's pub/sub state: made with the runtime, freed after every actor is gone. */
int wispi_pubsub_new(struct wisp_runtime *rt);
void wispi_pubsub_destroy(struct wisp_runtime *rt);
/* Messages published so far and topics alive now, for wisp_runtime_stats. */
void wispi_pubsub_stats(struct wisp_runtime *rt, uint64_t *published, uint64_t *topics);
/* A message that may be published: -EINVAL (op, data), -EILSEQ (text not UTF-8), or 0. */
int wispi_message_ok(enum wisp_ws_opcode op, const void *data, size_t len);
/* -EINVAL unless 1..WISP_TOPIC_MAX bytes; the length in *len. */
int wispi_topic_name_ok(const char *name, size_t *len);

/* conn_pubsub.c: connection side. */
/* On the connection's worker, outside its turn: hand it a frame (fast path onto its send
 * queue, or its mailbox when it must decide itself). Never closes it synchronously. */
void wispi_conn_deliver(struct wisp_conn *c, struct wispi_frame *f);
/* In its turn: a frame that came through its mailbox. */
void wispi_conn_frame_msg(struct wisp_conn *c, struct wispi_frame *f);
/* Leave every topic and the route group (idempotent). */
void wispi_conn_leave_all(struct wisp_conn *c);
/* Join the route's group (a server connection that just opened). */
void wispi_conn_join_route(struct wisp_conn *c);
/* Apply a subscription request on the connection's worker (delivery actor turn). */
struct wispi_subreq {
    struct wispi_topic *topic; /* a reference, moved into the subscription */
    wisp_addr conn;
    struct wispi_frame *first; /* a reference, or NULL */
    unsigned worker;           /* the connection's worker */
    bool subscribe;
};
void wispi_conn_apply_subreq(struct wisp_runtime *rt, unsigned worker, struct wispi_subreq *r);
/* Whether an actor is a connection actor (for wisp_subscribe_to's checks). */
struct wispi_actor;
bool wispi_actor_is_conn(const struct wispi_actor *a);

#endif
