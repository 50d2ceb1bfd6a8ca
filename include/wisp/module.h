/* wisp/module.h: actor modules that the `wisp` program mounts on URL paths.
 *
 * A module is a named, ready-made route: `wisp --route /chat=chat` mounts the module "chat" on
 * the path /chat. The modules that ship with wisp (echo, chat, pubsub, broadcast, static) are
 * built in; others are shared objects loaded with `wisp --module path/to/mod.so`, written
 * only against the public headers and built against the installed ones:
 *
 *     cc -shared -fPIC -o hello.so hello.c $(pkg-config --cflags wisp)
 *
 * A shared object exports one symbol, WISP_MODULE_SYMBOL ("wisp_module_v1"), a const
 * struct wisp_module. Define it with WISP_MODULE_DEFINE:
 *
 *     static int hello_mount(struct wisp_runtime *rt, struct wisp_route *r, const char *arg,
 *                            void **instance)
 *     { r->handler = &hello_handler; return 0; }
 *
 *     WISP_MODULE_DEFINE(.name = "hello", .description = "says hello",
 *                        .mount = hello_mount);
 *
 * The program refuses a module whose abi_version differs from its own WISP_MODULE_ABI_VERSION
 * (with both numbers in the message) or whose struct is smaller than the one it knows, so a
 * module built against incompatible headers is never called. Names must be unique: a module
 * that reuses a built-in name or another module's is refused too.
 *
 * Threading: mount and unmount run on the program's main thread, before the runtime starts and
 * after it stopped. The handler's callbacks run on the runtime's workers (see server.h).
 */
#ifndef WISP_MODULE_H
#define WISP_MODULE_H

#include <stdint.h>

#include <wisp/runtime.h>
#include <wisp/server.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The module ABI this header describes. Raised whenever struct wisp_module or the meaning of
 *  a field changes incompatibly. */
#define WISP_MODULE_ABI_VERSION 1u

/** The name of the symbol a module shared object exports. */
#define WISP_MODULE_SYMBOL "wisp_module_v1"

/** A module: what `--route PATH=NAME[:ARG]` mounts. */
struct wisp_module {
    /** WISP_MODULE_ABI_VERSION of the headers the module was built with. */
    uint32_t abi_version;
    /** sizeof(struct wisp_module) as the module saw it. */
    uint32_t struct_size;
    /** The name routes use ("chat"): letters, digits, '-' and '_', at most 32 bytes. */
    const char *name;
    /** One line for `wisp --list-modules`. May be NULL. */
    const char *description;
    /**
     * Mount the module on a route. r arrives filled by wisp_route_init() with the path and the
     * program's limits (max_message_size, send_cap...) already applied; set r->handler
     * and/or r->on_http, and r->data, protocols or limits as needed. Called once per route
     * that names the module.
     * @param rt        the runtime (not started yet); borrowed for the program's life.
     * @param r         the route to fill; copied by the program after mount returns.
     * @param arg       the text after ':' in the route option ("/files=static:./www" gives
     *                  "./www"), or NULL when there is none. Borrowed for the call.
     * @param instance  receives the module's per-mount data (passed to unmount), may stay NULL.
     * @return 0, or a negative errno; the program then exits with status 1 and prints
     *         wisp_last_error()-style text the module wrote with fprintf(stderr) itself.
     */
    int (*mount)(struct wisp_runtime *rt, struct wisp_route *r, const char *arg,
                 void **instance);
    /** Free what mount allocated, after the runtime stopped. May be NULL. */
    void (*unmount)(void *instance);
};

/** Define the exported module symbol with the given designated initializers (name, mount...);
 *  abi_version and struct_size are filled in. */
#define WISP_MODULE_DEFINE(...)                                                                  \
    __attribute__((visibility("default"))) const struct wisp_module wisp_module_v1 = {         \
        .abi_version = WISP_MODULE_ABI_VERSION,                                                 \
        .struct_size = sizeof(struct wisp_module),                                              \
        __VA_ARGS__}

#ifdef __cplusplus
}
#endif
#endif
