/* actors/echo.c: the echo handler (see echo.h). */
#include "echo.h"

#include <errno.h>
#include <stdio.h>

/* What to do with the result of an echo send. 0 and WISP_SEND_PRESSURE mean the message was
 * queued: keep going, the route's send_cap protects memory (see echo.h). WISP_EFULL means the
 * route's WISP_OVERFLOW_DROP policy dropped it, which is what that route asked for;
 * WISP_ECLOSED means the connection is already closing (possibly because this very send went
 * over the cap under WISP_OVERFLOW_CLOSE). Anything else (-ENOMEM) would silently lose a
 * message the peer expects back, so the connection is closed with 1011 instead. */
static void echo_sent(struct wisp_conn *c, int rc)
{
    if (rc >= 0 || rc == WISP_EFULL || rc == WISP_ECLOSED)
        return;
    static const char reason[] = "echo failed";
    (void)wisp_conn_close(c, 1011, reason, sizeof reason - 1);
}

static void echo_text(struct wisp_conn *c, void *state, const char *data, size_t len)
{
    (void)state;
    echo_sent(c, wisp_conn_send_text(c, data, len));
}

static void echo_binary(struct wisp_conn *c, void *state, const uint8_t *data, size_t len)
{
    (void)state;
    echo_sent(c, wisp_conn_send_binary(c, data, len));
}

const struct wisp_handler wisp_echo_handler = {
    .on_text = echo_text,
    .on_binary = echo_binary,
};

/* ---- the module ----------------------------------------------------------------------------- */

static int echo_mount(struct wisp_runtime *rt, struct wisp_route *r, const char *arg,
                      void **instance)
{
    (void)rt;
    (void)instance;
    if (arg) {
        fprintf(stderr, "echo: takes no argument (got '%s' on %s)\n", arg, r->path);
        return -EINVAL;
    }
    r->handler = &wisp_echo_handler;
    return 0;
}

const struct wisp_module wisp_echo_module = {
    .abi_version = WISP_MODULE_ABI_VERSION,
    .struct_size = sizeof(struct wisp_module),
    .name = "echo",
    .description = "every text or binary message comes back to its sender",
    .mount = echo_mount,
};
