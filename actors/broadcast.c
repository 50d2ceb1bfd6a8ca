/* actors/broadcast.c: the broadcast handler and module (see broadcast.h). */
#include "broadcast.h"

#include <errno.h>
#include <stdio.h>

#include <wisp/pubsub.h>

/* A broadcast returns how many connections it went to, or an error. WISP_ECLOSED means the
 * runtime is stopping: the message could not matter any more. Anything else (-ENOMEM,
 * -ENOTSUP) lost a message the sender believes went out, so the sender hears about it. */
static void relay(struct wisp_conn *c, enum wisp_ws_opcode op, const void *data, size_t len)
{
    int rc = wisp_conn_broadcast(c, op, data, len);
    if (rc >= 0 || rc == WISP_ECLOSED)
        return;
    static const char reason[] = "broadcast failed";
    (void)wisp_conn_close(c, 1011, reason, sizeof reason - 1);
}

static void broadcast_text(struct wisp_conn *c, void *state, const char *data, size_t len)
{
    (void)state;
    relay(c, WISP_WS_OP_TEXT, data, len);
}

static void broadcast_binary(struct wisp_conn *c, void *state, const uint8_t *data, size_t len)
{
    (void)state;
    relay(c, WISP_WS_OP_BINARY, data, len);
}

const struct wisp_handler wisp_broadcast_handler = {
    .on_text = broadcast_text,
    .on_binary = broadcast_binary,
};

static int broadcast_mount(struct wisp_runtime *rt, struct wisp_route *r, const char *arg,
                           void **instance)
{
    (void)rt;
    (void)instance;
    if (arg) {
        fprintf(stderr, "broadcast: takes no argument (got '%s' on %s)\n", arg, r->path);
        return -EINVAL;
    }
    r->handler = &wisp_broadcast_handler;
    return 0;
}

const struct wisp_module wisp_broadcast_module = {
    .abi_version = WISP_MODULE_ABI_VERSION,
    .struct_size = sizeof(struct wisp_module),
    .name = "broadcast",
    .description = "every message goes to every other connection of the route",
    .mount = broadcast_mount,
};
