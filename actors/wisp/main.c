/* wisp: serve actor modules on URL paths.
 *
 *     wisp --listen 0.0.0.0:8080 --route /echo=echo --route /room=broadcast --static /=./www
 *
 * Each --route mounts a module (built in, or loaded with --module FILE.so; see wisp/module.h)
 * on a path; GET /metrics and GET /healthz report on the server. Once every listener is bound
 * it prints one line per listener on stdout, e.g.
 *     wisp listening on 127.0.0.1:8080
 *     wisp listening on [::1]:8443 (tls)
 * and runs until SIGINT or SIGTERM, then closes every connection with 1001 and exits 0. Any
 * setup error (a bad option, a port in use, a missing certificate, an unknown module, two
 * routes on one path...) is one message on stderr and exit status 1. `wisp --help` lists the
 * options; options.h says how config files work, log.h how the log looks, metrics.h what the
 * metrics are.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wisp/module.h>
#include <wisp/runtime.h>
#include <wisp/server.h>
#include <wisp/version.h>

#include "cli.h"
#include "log.h"
#include "metrics.h"
#include "modules.h"
#include "options.h"

/* A module mounted on a route, to unmount at the end. */
struct mount {
    const struct wisp_module *m;
    void *instance;
};

struct app {
    struct wp_config *cfg;
    struct wp_modules *mods;
    struct wisp_runtime *rt;
    struct wisp_server *srv;
    struct mount *mounts;
    size_t nmounts;
    struct wp_monitor mon; /* the monitoring routes' data: read by workers */
    uint16_t *bound;       /* the port each listener got */
};

/* ---- process setup ------------------------------------------------------------------------ */

/* The runtime's handle_signals installs SIGINT/SIGTERM handlers that stop it gracefully. Ours
 * goes in front of them: it marks the health check as shutting down, then calls theirs. */
static struct sigaction g_prev_int, g_prev_term;

static void on_stop_signal(int sig, siginfo_t *info, void *uctx)
{
    wp_health_set_stopping();
    const struct sigaction *prev = sig == SIGINT ? &g_prev_int : &g_prev_term;
    if (prev->sa_flags & SA_SIGINFO) {
        if (prev->sa_sigaction)
            prev->sa_sigaction(sig, info, uctx);
    } else if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
        prev->sa_handler(sig);
    }
}

static void chain_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_stop_signal;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &g_prev_int);
    sigaction(SIGTERM, &sa, &g_prev_term);
}

/* ---- routes ------------------------------------------------------------------------------- */

static bool mount_route(struct app *a, const struct wp_route_spec *spec)
{
    const struct wisp_module *m = wp_modules_find(a->mods, spec->module);
    struct wisp_route r = a->cfg->route; /* the limits of every route */
    r.path = spec->path;
    r.handler = NULL;
    r.data = NULL;
    r.protocols = NULL;
    r.num_protocols = 0;
    r.on_http = NULL;
    void *instance = NULL;
    int rc = m->mount(a->rt, &r, spec->arg, &instance);
    if (rc < 0) {
        wp_error("%s: the module '%s' could not mount %s: %s", spec->origin, m->name,
                 spec->path, wisp_strerror(rc));
        return false;
    }
    struct mount *v = realloc(a->mounts, (a->nmounts + 1) * sizeof *v);
    if (!v) {
        if (m->unmount)
            m->unmount(instance);
        wp_error("out of memory");
        return false;
    }
    a->mounts = v;
    v[a->nmounts++] = (struct mount){m, instance};
    r.path = spec->path; /* the route's path is the program's, whatever mount did */
    if (!r.handler && !r.on_http) {
        wp_error("%s: the module '%s' mounted nothing on %s (no handler, no on_http)",
                 spec->origin, m->name, spec->path);
        return false;
    }
    rc = wisp_server_route(a->srv, &r);
    if (rc == -EEXIST) {
        wp_error("route path clash: %s (%s) is routed twice", spec->path, spec->origin);
        return false;
    }
    if (rc < 0) {
        wp_error("%s: cannot route %s to the module '%s': %s", spec->origin, spec->path,
                 m->name, rc == -EINVAL ? "the route it filled in is not valid" :
                 wisp_strerror(rc));
        return false;
    }
    wp_info("route %s: module %s%s%s", spec->path, m->name, spec->arg ? " " : "",
            spec->arg ? spec->arg : "");
    return true;
}

static bool http_route(struct app *a, const char *path, const char *what,
                       int (*on_http)(void *, const struct wisp_http_request *,
                                      const struct sockaddr *, struct wisp_http_reply *))
{
    struct wisp_route r;
    wisp_route_init(&r, path, NULL);
    r.on_http = on_http;
    r.data = &a->mon;
    int rc = wisp_server_route(a->srv, &r);
    if (rc < 0) {
        wp_error("cannot serve the %s on %s: %s", what, path,
                 rc == -EEXIST ? "the path is routed already" : wisp_strerror(rc));
        return false;
    }
    wp_info("route %s: %s", path, what);
    return true;
}

/* Every route names a module this program has; say which does not before anything starts. */
static bool check_modules(struct app *a)
{
    for (size_t i = 0; i < a->cfg->nroutes; i++) {
        const struct wp_route_spec *s = &a->cfg->routes[i];
        if (wp_modules_find(a->mods, s->module))
            continue;
        if (strcmp(s->module, "static") == 0)
            wp_error("%s: this wisp has no static module (it was built without it)",
                     s->origin);
        else
            wp_error("%s: unknown module '%s' (" WP_PROG " --list-modules lists them; "
                     "--module FILE.so loads one)", s->origin, s->module);
        return false;
    }
    return true;
}

/* ---- listeners ------------------------------------------------------------------------------ */

static bool listen_all(struct app *a)
{
    const struct wp_config *cfg = a->cfg;
    a->bound = calloc(cfg->nlistens, sizeof *a->bound);
    if (!a->bound) {
        wp_error("out of memory");
        return false;
    }
    for (size_t i = 0; i < cfg->nlistens; i++) {
        const struct wp_listen *l = &cfg->listens[i];
        int rc;
        if (l->tls) {
            struct wisp_tls_opts tls = {.cert_file = cfg->cert, .key_file = cfg->key};
            rc = wisp_server_listen_tls(a->srv, l->host, l->port, &tls, &a->bound[i]);
        } else {
            rc = wisp_server_listen(a->srv, l->host, l->port, &a->bound[i]);
        }
        if (rc < 0) {
            char addr[300];
            wp_format_addr(addr, sizeof addr, l->host, l->port);
            /* The library's sentence says more for a certificate, a name or TLS itself; for
             * a socket error the errno's name is the whole story. */
            bool detail = rc == -EINVAL || rc == -ENOENT || rc == -ENOTSUP;
            wp_error("cannot listen on %s%s: %s", addr, l->tls ? " (tls)" : "",
                     detail ? wisp_cli_error_text(rc) : wisp_strerror(rc));
            return false;
        }
    }
    /* Every listener is bound: now say so, one line each (tests read the ports from them). */
    for (size_t i = 0; i < cfg->nlistens; i++) {
        const struct wp_listen *l = &cfg->listens[i];
        char addr[300];
        wp_format_addr(addr, sizeof addr, l->host, a->bound[i]);
        printf(WP_PROG " listening on %s%s\n", addr, l->tls ? " (tls)" : "");
        wp_info("listening on %s%s", addr, l->tls ? " (tls)" : "");
    }
    fflush(stdout);
    return true;
}

/* ---- main ----------------------------------------------------------------------------------- */

static int run(struct app *a)
{
    struct wp_config *cfg = a->cfg;
    a->mods = wp_modules_new();
    if (!a->mods) {
        wp_error("out of memory");
        return 1;
    }
    for (size_t i = 0; i < cfg->nmodule_files; i++)
        if (!wp_modules_load(a->mods, cfg->module_files[i]))
            return 1;
    if (cfg->list_modules) {
        wp_modules_list(a->mods, stdout);
        return 0;
    }
    if (cfg->nroutes == 0) {
        wp_error("no route: mount a module with --route PATH=MODULE (" WP_PROG
                 " --list-modules lists them) or serve files with --static URLPATH=DIR");
        return 1;
    }
    if (!check_modules(a))
        return 1;

    wisp_cli_raise_file_limit();
    signal(SIGPIPE, SIG_IGN); /* a peer gone mid-write is an error code, not a death */

    cfg->rt.handle_signals = true; /* SIGINT/SIGTERM: the graceful 1001 close */
    int rc = wisp_runtime_new(&cfg->rt, &a->rt);
    if (rc < 0) {
        wp_error("cannot start the runtime: %s", wisp_cli_error_text(rc));
        return 1;
    }
    chain_stop_signals();
    cfg->srv.log = wp_log_server_line;
    cfg->srv.log_arg = NULL;
    rc = wisp_server_new(a->rt, &cfg->srv, &a->srv);
    if (rc < 0) {
        wp_error("cannot create the server: %s", wisp_strerror(rc));
        return 1;
    }
    a->mon.rt = a->rt;
    a->mon.srv = a->srv;

    unsigned n = wisp_runtime_workers(a->rt);
    wp_info("wisp %s, %u worker%s", WISP_VERSION, n, n == 1 ? "" : "s");
    for (size_t i = 0; i < cfg->nroutes; i++)
        if (!mount_route(a, &cfg->routes[i]))
            return 1;
    if (cfg->metrics_path && !http_route(a, cfg->metrics_path, "metrics", wp_metrics_http))
        return 1;
    if (cfg->health_path && !http_route(a, cfg->health_path, "health check", wp_health_http))
        return 1;
    if (!listen_all(a))
        return 1;

    rc = wisp_runtime_run(a->rt);
    if (rc < 0) {
        wp_error("%s", wisp_cli_error_text(rc));
        return 1;
    }
    wp_info("stopped");
    return 0;
}

int main(int argc, char **argv)
{
    struct app a;
    memset(&a, 0, sizeof a);
    clock_gettime(CLOCK_REALTIME, &a.mon.started);
    struct wp_config cfg;
    enum wp_parse_result pr = wp_config_parse(&cfg, argc, argv);
    if (pr != WP_PARSE_OK) {
        wp_config_free(&cfg);
        return pr == WP_PARSE_DONE ? 0 : 1;
    }
    a.cfg = &cfg;
    int status = run(&a);

    /* The runtime first (it stops and waits for the workers), then what they used. */
    wisp_runtime_free(a.rt);
    wisp_server_free(a.srv);
    for (size_t i = a.nmounts; i-- > 0;)
        if (a.mounts[i].m->unmount)
            a.mounts[i].m->unmount(a.mounts[i].instance);
    free(a.mounts);
    free(a.bound);
    wp_modules_free(a.mods); /* last: the loaded modules' code ran until here */
    wp_config_free(&cfg);
    return status;
}
