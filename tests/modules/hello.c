/* tests/modules/hello.c: an example out-of-tree module for the `wisp` program.
 *
 * It answers each text message with "hello, " and the text ("hello, world" for "world"); a
 * route argument replaces the greeting (`--route /hi=hello:bonjour` answers "bonjour, world").
 * Binary messages are ignored. Built against the installed headers only, without -lwisp (the
 * program provides every wisp_* function):
 *
 *     cc -std=c11 -shared -fPIC -o hello.so hello.c $(pkg-config --cflags wisp)
 *     wisp --module ./hello.so --route /hello=hello
 *
 * scripts/check-install.sh builds it that way and talks to it. Defining
 * WISP_MODULE_ABI_VERSION_OVERRIDE=N builds a module that claims ABI version N, which the
 * program must refuse (naming both versions).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/module.h>

#ifdef WISP_MODULE_ABI_VERSION_OVERRIDE
#undef WISP_MODULE_ABI_VERSION
#define WISP_MODULE_ABI_VERSION WISP_MODULE_ABI_VERSION_OVERRIDE
#endif

/* The greeting of one route: mount allocates it, unmount frees it, route data points to it. */
struct greeting {
    size_t len;
    char text[]; /* "hello, " */
};

static void hello_text(struct wisp_conn *c, void *state, const char *data, size_t len)
{
    (void)state;
    const struct greeting *g = wisp_conn_route_data(c);
    char small[512];
    size_t n = g->len + len;
    char *out = n <= sizeof small ? small : malloc(n);
    if (!out) {
        static const char reason[] = "out of memory";
        (void)wisp_conn_close(c, 1011, reason, sizeof reason - 1);
        return;
    }
    memcpy(out, g->text, g->len);
    memcpy(out + g->len, data, len);
    /* 0 or WISP_SEND_PRESSURE: queued; anything else: closing or dropped by the route's
     * overflow policy, which is what the route asked for. */
    (void)wisp_conn_send_text(c, out, n);
    if (out != small)
        free(out);
}

static const struct wisp_handler hello_handler = {
    .on_text = hello_text,
};

static int hello_mount(struct wisp_runtime *rt, struct wisp_route *r, const char *arg,
                       void **instance)
{
    (void)rt;
    const char *word = arg ? arg : "hello";
    size_t len = strlen(word) + 2;
    struct greeting *g = malloc(sizeof *g + len + 1);
    if (!g) {
        fprintf(stderr, "hello: out of memory\n");
        return -ENOMEM;
    }
    g->len = len;
    snprintf(g->text, len + 1, "%s, ", word);
    r->handler = &hello_handler;
    r->data = g;
    *instance = g;
    return 0;
}

static void hello_unmount(void *instance)
{
    free(instance);
}

WISP_MODULE_DEFINE(.name = "hello",
                   .description = "answers each text with \"hello, \" and the text",
                   .mount = hello_mount,
                   .unmount = hello_unmount);
