/* actors/wisp/modules.c: the built-in modules and the loaded ones (see modules.h). */
#include "modules.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "broadcast.h"
#include "chat.h"
#include "echo.h"
#include "log.h"
#include "pubsub_bridge.h"
#include "static_files.h"

static const struct wisp_module *const builtins[] = {
    &wisp_echo_module, &wisp_broadcast_module, &wisp_chat_module,
    &wisp_pubsub_module, &wisp_static_module,
};

struct entry {
    const struct wisp_module *m;
    void *dl;   /* dlopen handle; NULL for a built-in module */
    char *file; /* as given to --module; NULL for a built-in module */
};

struct wp_modules {
    struct entry *v;
    size_t n;
};

bool wp_module_name_ok(const char *name)
{
    size_t n = strnlen(name, WP_MODULE_NAME_MAX + 1);
    if (n == 0 || n > WP_MODULE_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return false;
    }
    return true;
}

static const struct entry *find(const struct wp_modules *mods, const char *name)
{
    for (size_t i = 0; i < mods->n; i++)
        if (strcmp(mods->v[i].m->name, name) == 0)
            return &mods->v[i];
    return NULL;
}

static bool add(struct wp_modules *mods, const struct wisp_module *m, void *dl, const char *file)
{
    struct entry *v = realloc(mods->v, (mods->n + 1) * sizeof *v);
    if (!v)
        return false;
    mods->v = v;
    v[mods->n].m = m;
    v[mods->n].dl = dl;
    v[mods->n].file = NULL;
    if (file && !(v[mods->n].file = strdup(file)))
        return false;
    mods->n++;
    return true;
}

struct wp_modules *wp_modules_new(void)
{
    struct wp_modules *mods = calloc(1, sizeof *mods);
    if (!mods)
        return NULL;
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++) {
        if (!add(mods, builtins[i], NULL, NULL)) {
            wp_modules_free(mods);
            return NULL;
        }
    }
    return mods;
}

/* Print a name that may be anything (it failed the check): printable ASCII only, bounded. */
static void safe_name(char *out, size_t cap, const char *name)
{
    size_t j = 0;
    for (size_t i = 0; name[i] && j + 5 < cap && i < 64; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\'')
            out[j++] = (char)ch;
        else
            j += (size_t)snprintf(out + j, cap - j, "\\x%02x", ch);
    }
    out[j] = '\0';
}

bool wp_modules_load(struct wp_modules *mods, const char *file)
{
    /* dlopen searches the library path for a bare name; a module file is a path. */
    size_t flen = strlen(file);
    char *path = malloc(flen + 3);
    if (!path) {
        wp_error("out of memory");
        return false;
    }
    snprintf(path, flen + 3, "%s%s", strchr(file, '/') ? "" : "./", file);
    (void)dlerror();
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    free(path);
    if (!dl) {
        const char *e = dlerror();
        wp_error("--module %s: cannot load it: %s", file, e ? e : "unknown error");
        return false;
    }
    (void)dlerror();
    const struct wisp_module *m = dlsym(dl, WISP_MODULE_SYMBOL);
    if (!m) {
        wp_error("--module %s: no symbol '%s', so not a wisp module (define one with "
                 "WISP_MODULE_DEFINE from <wisp/module.h>)", file, WISP_MODULE_SYMBOL);
        goto refuse;
    }
    if (m->abi_version != WISP_MODULE_ABI_VERSION) {
        wp_error("--module %s: built for module ABI version %u, but this wisp has ABI version "
                 "%u: rebuild it against this wisp's headers", file, (unsigned)m->abi_version,
                 (unsigned)WISP_MODULE_ABI_VERSION);
        goto refuse;
    }
    if (m->struct_size < sizeof(struct wisp_module)) {
        wp_error("--module %s: its struct wisp_module is %u bytes, this wisp needs at least %zu: "
                 "rebuild it against this wisp's headers", file, (unsigned)m->struct_size,
                 sizeof(struct wisp_module));
        goto refuse;
    }
    if (!m->name || !wp_module_name_ok(m->name)) {
        char shown[300];
        safe_name(shown, sizeof shown, m->name ? m->name : "");
        wp_error("--module %s: bad module name '%s' (1 to %d letters, digits, '-' and '_')",
                 file, shown, WP_MODULE_NAME_MAX);
        goto refuse;
    }
    if (!m->mount) {
        wp_error("--module %s: module '%s' has no mount function", file, m->name);
        goto refuse;
    }
    const struct entry *taken = find(mods, m->name);
    if (taken) {
        if (taken->file)
            wp_error("--module %s: the name '%s' is taken by the module in %s", file, m->name,
                     taken->file);
        else
            wp_error("--module %s: the name '%s' is taken by a built-in module", file, m->name);
        goto refuse;
    }
    if (!add(mods, m, dl, file)) {
        wp_error("out of memory");
        goto refuse;
    }
    wp_debug("loaded module '%s' from %s", m->name, file);
    return true;

refuse:
    dlclose(dl);
    return false;
}

const struct wisp_module *wp_modules_find(const struct wp_modules *mods, const char *name)
{
    const struct entry *e = find(mods, name);
    return e ? e->m : NULL;
}

void wp_modules_list(const struct wp_modules *mods, FILE *out)
{
    for (size_t i = 0; i < mods->n; i++) {
        const struct entry *e = &mods->v[i];
        fprintf(out, "%-12s %s%s%s%s\n", e->m->name,
                e->m->description ? e->m->description : "", e->file ? " [" : "",
                e->file ? e->file : "", e->file ? "]" : "");
    }
}

void wp_modules_free(struct wp_modules *mods)
{
    if (!mods)
        return;
    for (size_t i = 0; i < mods->n; i++) {
        free(mods->v[i].file);
        if (mods->v[i].dl)
            dlclose(mods->v[i].dl);
    }
    free(mods->v);
    free(mods);
}
