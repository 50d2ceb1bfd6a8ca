/* The connection's side of pub/sub: its subscriptions, its route group, and how a shared frame
 * reaches its send queue.
 *
 * Everything here runs on the connection's worker: in its own turns (subscribe, broadcast,
 * frames through the mailbox) or in the turn of that worker's delivery actor (deliveries and
 * requests from other actors). Both are on the same thread, so the subscription lists need no
 * lock. A delivery takes the fast path (straight onto the send queue) only when nothing needs
 * deciding; otherwise the frame goes through the connection's mailbox and is handled on its
 * own turn, where the overflow policy, the watermark callbacks and the send hook apply. Once
 * one frame took the mailbox, the next ones follow it there until it has been handled, so
 * frames never overtake each other.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "internal.h"

static unsigned worker_of(const struct wisp_conn *c)
{
    return c->net->w->index;
}

static struct wispi_sub **find_sub(struct wisp_conn *c, const char *name, size_t len)
{
    struct wispi_sub **p = &c->subs;
    while (*p && !wispi_topic_is((*p)->topic, name, len))
        p = &(*p)->next;
    return p;
}

/* Add c to topic t (whose reference becomes the subscription's). */
static int subscribe(struct wisp_conn *c, struct wispi_topic *t, bool reserved)
{
    struct wispi_sub *s = malloc(sizeof *s);
    if (!s || wispi_group_join(wispi_topic_group(t), worker_of(c), s, reserved) < 0) {
        free(s);
        return -ENOMEM;
    }
    s->topic = t;
    s->conn = c;
    s->next = c->subs;
    c->subs = s;
    c->nsubs++;
    return 0;
}

static void unsubscribe(struct wisp_conn *c, struct wispi_sub **p)
{
    struct wispi_sub *s = *p;
    *p = s->next;
    c->nsubs--;
    wispi_group_leave(s, worker_of(c));
    wispi_topic_put(c->srv->rt, s->topic);
    free(s);
}

int wisp_conn_subscribe(struct wisp_conn *c, const char *topic)
{
    size_t n;
    if (!c || wispi_topic_name_ok(topic, &n) < 0)
        return -EINVAL;
    if (c->phase != PH_OPEN)
        return WISP_ECLOSED;
    if (*find_sub(c, topic, n))
        return 0;
    if (c->nsubs >= WISP_SUBS_MAX)
        return -ENOSPC;
    struct wispi_topic *t = wispi_topic_get(c->srv->rt, topic, n);
    if (!t)
        return -ENOMEM;
    int rc = subscribe(c, t, false);
    if (rc < 0)
        wispi_topic_put(c->srv->rt, t);
    return rc;
}

int wisp_conn_unsubscribe(struct wisp_conn *c, const char *topic)
{
    size_t n;
    if (!c || wispi_topic_name_ok(topic, &n) < 0)
        return -EINVAL;
    struct wispi_sub **p = find_sub(c, topic, n);
    if (!*p)
        return -ENOENT;
    unsubscribe(c, p);
    return 0;
}

bool wisp_conn_subscribed(const struct wisp_conn *c, const char *topic)
{
    size_t n;
    if (!c || wispi_topic_name_ok(topic, &n) < 0)
        return false;
    return *find_sub((struct wisp_conn *)(uintptr_t)c, topic, n) != NULL;
}

void wispi_conn_leave_all(struct wisp_conn *c)
{
    while (c->subs)
        unsubscribe(c, &c->subs);
    if (c->in_route_group) {
        c->in_route_group = false;
        wispi_group_leave(&c->route_sub, worker_of(c));
    }
}

void wispi_conn_join_route(struct wisp_conn *c)
{
    if (c->client || !c->route->group || c->in_route_group)
        return;
    c->route_sub.topic = NULL;
    c->route_sub.conn = c;
    c->route_sub.next = NULL;
    /* Out of memory here only means broadcasts miss this connection: it still works, and the
     * handler hears of it. */
    if (wispi_group_join(c->route->group, worker_of(c), &c->route_sub, false) == 0) {
        c->in_route_group = true;
    } else {
        const struct wisp_handler *h = handler_of(c);
        if (h && h->on_error)
            h->on_error(c, c->state, -ENOMEM, "could not join the route's broadcast group");
    }
}

/* ---- frames in ------------------------------------------------------------------------------ */

void wispi_conn_deliver(struct wisp_conn *c, struct wispi_frame *f)
{
    if (c->phase != PH_OPEN)
        return; /* closing: it is leaving its groups */
    if (!c->frames_queued && wispi_conn_try_shared(c, f))
        return;
    wispi_frame_ref(f);
    c->frames_queued++;
    int rc = wispi_send_owned_internal(c->srv->rt, NULL, wisp_conn_addr(c), WISPI_MSG_FRAME, f,
                                       0, wispi_frame_release, c->srv->rt);
    if (rc < 0) { /* the actor is gone or memory ran out: nobody is left to tell but counters */
        c->frames_queued--;
        CONN_STAT(c, dropped, 1);
    }
}

void wispi_conn_frame_msg(struct wisp_conn *c, struct wispi_frame *f)
{
    c->frames_queued--;
    int rc = wispi_conn_send_shared(c, f);
    if (rc >= 0 || rc == WISP_ECLOSED)
        return;
    const struct wisp_handler *h = handler_of(c);
    if (rc != WISP_EFULL)
        CONN_STAT(c, dropped, 1);
    if (h && h->on_error)
        h->on_error(c, c->state, rc,
                    rc == WISP_EFULL ? "a published message was dropped: the send buffer is full"
                                     : "a published message could not be queued");
}

void wispi_conn_apply_subreq(struct wisp_runtime *rt, unsigned worker, struct wispi_subreq *r)
{
    struct wispi_actor *a = wispi_actor_acquire(rt, r->conn);
    struct wisp_conn *c = a && wispi_actor_is_conn(a) ? (struct wisp_conn *)(void *)a->state
                                                       : NULL;
    if (c && c->phase == PH_OPEN && worker_of(c) == worker) {
        struct wispi_sub **p = &c->subs;
        while (*p && (*p)->topic != r->topic) /* one topic object per live name */
            p = &(*p)->next;
        if (r->subscribe) {
            if (r->first)
                wispi_conn_deliver(c, r->first); /* before anything published after it */
            /* The reservation becomes the membership; the request's reference, the
             * subscription's. Otherwise (subscribed already, at the limit, no memory) the
             * request's release gives both back. */
            if (!*p && c->nsubs < WISP_SUBS_MAX && subscribe(c, r->topic, true) == 0)
                r->topic = NULL;
        } else if (*p) {
            unsubscribe(c, p);
        }
    }
    if (a)
        wispi_actor_release(a);
}

/* ---- broadcast and emit ---------------------------------------------------------------------- */

int wisp_conn_broadcast(struct wisp_conn *c, enum wisp_ws_opcode op, const void *data,
                        size_t len)
{
    if (!c || c->client || !c->route || !c->route->group)
        return -EINVAL;
    int rc = wispi_message_ok(op, data, len);
    if (rc < 0)
        return rc;
    if (c->phase != PH_OPEN)
        return WISP_ECLOSED;
    rc = wispi_publish_group(c->srv->rt, c->route->group, NULL, wisp_conn_addr(c), op, data,
                             len);
    return rc > 0 && c->in_route_group ? rc - 1 : rc;
}

int wisp_server_emit(struct wisp_server *srv, const char *path, wisp_addr except,
                     enum wisp_ws_opcode op, const void *data, size_t len)
{
    if (!srv || !path)
        return -EINVAL;
    int rc = wispi_message_ok(op, data, len);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < srv->nroutes; i++)
        if (strcmp(srv->routes[i].path, path) == 0)
            return wispi_publish_group(srv->rt, srv->routes[i].group, NULL, except, op, data,
                                       len);
    return -ENOENT;
}
