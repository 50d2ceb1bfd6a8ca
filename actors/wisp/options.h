/* actors/wisp/options.h: the wisp program's settings, from the command line and config files.
 *
 * Every option has one long name, used as `--name VALUE` / `--name=VALUE` on the command line
 * and as `name = VALUE` in a config file (`name` alone for a flag). Options apply in the order
 * given; `--config FILE` applies the file's lines at its place, so command-line options after
 * it override single values and add to repeatable ones (--listen, --route...). `wisp --help`
 * lists them all with their defaults.
 */
#ifndef WISP_PROG_OPTIONS_H
#define WISP_PROG_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <wisp/runtime.h>
#include <wisp/server.h>

#include "log.h"

#define WP_PROG "wisp"

/** One listening address. */
struct wp_listen {
    char *host;    /**< numeric address or host name, without IPv6 brackets */
    uint16_t port; /**< 0: a free one */
    bool tls;      /**< --listen-tls */
};

/** One route to mount: PATH=MODULE[:ARG]. */
struct wp_route_spec {
    char *path;   /**< "*", an exact path, or a prefix: a path ending in "/" "*" */
    char *module; /**< a module name */
    char *arg;    /**< the text after ':', or NULL */
    char *origin; /**< where it was given, for messages ("--route /a=echo", "wisp.conf:3") */
};

/** Everything the options say. Fill with wp_config_parse(), free with wp_config_free(). */
struct wp_config {
    struct wp_listen *listens;
    size_t nlistens;
    struct wp_route_spec *routes;
    size_t nroutes;
    char **module_files; /**< --module, in order */
    size_t nmodule_files;
    char *cert, *key;    /**< for the --listen-tls listeners */
    enum wp_log_level log_level;
    char *metrics_path;  /**< NULL: --no-metrics */
    char *health_path;   /**< NULL: --no-health */
    bool list_modules;
    /** Runtime, server and per-route settings: the library's defaults with the options
     *  applied. route's path and handler are unused (every mounted route starts from it). */
    struct wisp_runtime_opts rt;
    struct wisp_server_opts srv;
    struct wisp_route route;
    /* which route limits were given (the others follow from them) */
    bool set_max_frame, set_send_cap, set_send_high, set_send_low;
};

enum wp_parse_result {
    WP_PARSE_OK,    /**< run the server */
    WP_PARSE_DONE,  /**< --help or --version was printed: exit 0 */
    WP_PARSE_ERROR, /**< a message was printed: exit 1 */
};

/**
 * Parse the command line (and the config files it names) into *cfg, then check the whole and
 * fill in what follows from it (the default listener, send limits). On error one message
 * naming the option (or FILE:LINE) is printed.
 */
enum wp_parse_result wp_config_parse(struct wp_config *cfg, int argc, char **argv);

/** Free everything *cfg holds (it may be partly filled). */
void wp_config_free(struct wp_config *cfg);

/** Write "HOST:PORT" ("[::1]:8080" for IPv6) into buf. */
void wp_format_addr(char *buf, size_t cap, const char *host, unsigned port);

#endif
