/* actors/wisp/modules.h: the modules the wisp program can mount.
 *
 * The registry starts with the built-in modules (echo, broadcast, and chat, pubsub and static
 * when this build has them) and grows with each `--module FILE.so`: the shared object is
 * opened with dlopen(RTLD_NOW | RTLD_LOCAL) and must export WISP_MODULE_SYMBOL, a struct
 * wisp_module of this program's ABI version, with a well-formed name no other module uses
 * (see wisp/module.h). A FILE without '/' is looked for in the current directory, not in the
 * library search path.
 */
#ifndef WISP_PROG_MODULES_H
#define WISP_PROG_MODULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <wisp/module.h>

/** The longest module name. */
#define WP_MODULE_NAME_MAX 32

struct wp_modules;

/** A registry holding the built-in modules. @return NULL when out of memory. */
struct wp_modules *wp_modules_new(void);

/** Load a module shared object and add it. On failure prints one message naming the file and
 *  the problem (no symbol, ABI version N where this program has M, struct too small, bad or
 *  taken name) and returns false. */
bool wp_modules_load(struct wp_modules *mods, const char *file);

/** The module with this name, or NULL. */
const struct wisp_module *wp_modules_find(const struct wp_modules *mods, const char *name);

/** Print one line per module: name, origin (built in or the file) and description. */
void wp_modules_list(const struct wp_modules *mods, FILE *out);

/** Close the loaded shared objects and free the registry. Only once nothing of theirs can
 *  run any more (the runtime and the server are gone). NULL is a no-op. */
void wp_modules_free(struct wp_modules *mods);

/** Whether name is a well-formed module name: 1 to WP_MODULE_NAME_MAX letters, digits, '-'
 *  and '_'. */
bool wp_module_name_ok(const char *name);

#endif
