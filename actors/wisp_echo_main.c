/* wisp-echo: a WebSocket echo server on the wisp runtime.
 *
 * Every path answers with the echo handler (actors/echo.h): text comes back as text, binary
 * as binary, which is what conformance suites and load generators expect. It prints one line
 * once it listens, e.g.
 *     wisp-echo listening on 127.0.0.1:9001 (2 workers)
 * and runs until SIGINT or SIGTERM, then closes every connection with 1001 and exits 0.
 * A bad option or an address it cannot listen on is reported on stderr with exit status 1.
 * Run `wisp-echo --help` for the options.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/runtime.h>
#include <wisp/server.h>
#include <wisp/version.h>

#include "cli.h"
#include "echo.h"

#define PROG "wisp-echo"
#define MAX_WORKERS 1024u

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: " PROG " [OPTION]...\n"
            "A WebSocket echo server: every text or binary message comes back unchanged.\n"
            "\n"
            "  --host HOST         address to listen on (default 127.0.0.1; \"::\" or\n"
            "                      \"0.0.0.0\" for every interface)\n"
            "  --port N            TCP port (default 9001; 0 picks a free one, printed)\n"
            "  --workers N         worker threads (default 0: one per CPU)\n"
            "  --path PATH         the WebSocket path that echoes (default \"*\": every path)\n"
            "  --max-conns N       open connections at most; beyond, 503 (default 0: the\n"
            "                      file descriptor limit minus 64)\n"
            "  --max-message SIZE  largest frame and message received; beyond, close 1009\n"
            "                      (default 16M)\n"
            "  --send-cap SIZE     outgoing bytes one connection may buffer; beyond, close\n"
            "                      1008 (default: twice --max-message, so the echo of a\n"
            "                      largest message always fits)\n"
            "  --idle-ms MS        ping a peer silent this long, hang up if it stays silent\n"
            "                      (default 30000; 0 never pings)\n"
            "  --handshake-ms MS   time allowed from accept to the end of the handshake\n"
            "                      (default 10000)\n"
            "  --cert FILE         serve wss:// (TLS) with this PEM certificate chain...\n"
            "  --key FILE          ...and this PEM private key (both or neither)\n"
            "  --version           print the version and exit\n"
            "  --help              print this help and exit\n"
            "\n"
            "SIZE is a number of bytes, optionally followed by K, M or G (powers of 1024).\n"
            "Prints \"" PROG " listening on HOST:PORT (N workers)\" once it listens; SIGINT or\n"
            "SIGTERM closes every connection with 1001 and exits 0.\n");
}

static bool option_number(const char *name, const char *arg, bool size, uint64_t min,
                          uint64_t max, uint64_t *out)
{
    if (wisp_cli_number(arg, size, min, max, out))
        return true;
    fprintf(stderr, PROG ": --%s: invalid value '%s' (expected %s from %" PRIu64 " to %" PRIu64
            ")\n", name, arg, size ? "a size in bytes" : "a whole number", min, max);
    return false;
}

enum {
    OPT_HOST = 256, OPT_PORT, OPT_WORKERS, OPT_PATH, OPT_MAX_CONNS, OPT_MAX_MESSAGE,
    OPT_SEND_CAP, OPT_IDLE_MS, OPT_HANDSHAKE_MS, OPT_VERSION, OPT_HELP, OPT_CERT, OPT_KEY,
};

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"host", required_argument, NULL, OPT_HOST},
        {"port", required_argument, NULL, OPT_PORT},
        {"workers", required_argument, NULL, OPT_WORKERS},
        {"path", required_argument, NULL, OPT_PATH},
        {"max-conns", required_argument, NULL, OPT_MAX_CONNS},
        {"max-message", required_argument, NULL, OPT_MAX_MESSAGE},
        {"send-cap", required_argument, NULL, OPT_SEND_CAP},
        {"idle-ms", required_argument, NULL, OPT_IDLE_MS},
        {"handshake-ms", required_argument, NULL, OPT_HANDSHAKE_MS},
        {"cert", required_argument, NULL, OPT_CERT},
        {"key", required_argument, NULL, OPT_KEY},
        {"version", no_argument, NULL, OPT_VERSION},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };

    const char *host = "127.0.0.1";
    const char *path = "*";
    const char *cert = NULL, *key = NULL;
    uint64_t port = 9001, workers = 0, max_conns = 0;
    uint64_t max_message = 0, send_cap = 0, idle_ms = 0, handshake_ms = 0;
    bool set_max_message = false, set_send_cap = false, set_idle = false, set_handshake = false;

    opterr = 0; /* our own messages */
    int opt;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        bool ok = true;
        switch (opt) {
        case OPT_HOST:
            host = optarg;
            ok = *host != '\0';
            if (!ok)
                fprintf(stderr, PROG ": --host: empty address\n");
            break;
        case OPT_PORT:
            ok = option_number("port", optarg, false, 0, 65535, &port);
            break;
        case OPT_CERT:
            cert = optarg;
            break;
        case OPT_KEY:
            key = optarg;
            break;
        case OPT_WORKERS:
            ok = option_number("workers", optarg, false, 0, MAX_WORKERS, &workers);
            break;
        case OPT_PATH:
            path = optarg;
            ok = strcmp(path, "*") == 0 || path[0] == '/';
            if (!ok)
                fprintf(stderr, PROG ": --path: '%s' is neither \"*\" nor a path starting with "
                                "'/'\n", path);
            break;
        case OPT_MAX_CONNS:
            ok = option_number("max-conns", optarg, false, 0, UINT32_MAX, &max_conns);
            break;
        case OPT_MAX_MESSAGE:
            ok = option_number("max-message", optarg, true, 1, UINT64_MAX >> 1, &max_message);
            set_max_message = true;
            break;
        case OPT_SEND_CAP:
            ok = option_number("send-cap", optarg, true, 1, SIZE_MAX >> 1, &send_cap);
            set_send_cap = true;
            break;
        case OPT_IDLE_MS:
            ok = option_number("idle-ms", optarg, false, 0, UINT32_MAX, &idle_ms);
            set_idle = true;
            break;
        case OPT_HANDSHAKE_MS:
            ok = option_number("handshake-ms", optarg, false, 1, UINT32_MAX, &handshake_ms);
            set_handshake = true;
            break;
        case OPT_VERSION:
            printf(PROG " %s\n", WISP_VERSION);
            return 0;
        case 'h':
        case OPT_HELP:
            usage(stdout);
            return 0;
        case ':':
            fprintf(stderr, PROG ": option '%s' needs a value\n", argv[optind - 1]);
            ok = false;
            break;
        default:
            fprintf(stderr, PROG ": unknown option '%s'\n", argv[optind - 1]);
            ok = false;
            break;
        }
        if (!ok) {
            fprintf(stderr, "Try '" PROG " --help'.\n");
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, PROG ": unexpected argument '%s'\nTry '" PROG " --help'.\n",
                argv[optind]);
        return 1;
    }

    if (!cert != !key) {
        fprintf(stderr, PROG ": --cert and --key go together\nTry '" PROG " --help'.\n");
        return 1;
    }
    wisp_cli_raise_file_limit();
    signal(SIGPIPE, SIG_IGN); /* a peer gone mid-write is an error code, not a death */

    struct wisp_runtime_opts ro;
    wisp_runtime_opts_init(&ro);
    ro.workers = (unsigned)workers;
    ro.handle_signals = true;
    struct wisp_runtime *rt = NULL;
    int rc = wisp_runtime_new(&ro, &rt);
    if (rc < 0) {
        fprintf(stderr, PROG ": cannot start the runtime: %s\n", wisp_cli_error_text(rc));
        return 1;
    }

    struct wisp_server_opts so;
    wisp_server_opts_init(&so);
    so.max_connections = (uint32_t)max_conns;
    if (set_idle)
        so.idle_timeout_ms = (uint32_t)idle_ms;
    if (set_handshake)
        so.handshake_timeout_ms = (uint32_t)handshake_ms;
    struct wisp_server *srv = NULL;
    rc = wisp_server_new(rt, &so, &srv);
    if (rc < 0) {
        fprintf(stderr, PROG ": cannot create the server: %s\n", wisp_strerror(rc));
        goto fail;
    }

    struct wisp_route route;
    wisp_route_init(&route, path, &wisp_echo_handler);
    if (set_max_message) {
        route.max_frame_size = max_message;
        route.max_message_size = max_message;
    }
    /* An echo server must be able to queue the answer to the largest message it accepts, with
     * its framing, even while an earlier answer is still draining: by default the cap is twice
     * the message limit (32 MiB with the route's defaults), never below the route's own. */
    if (!set_send_cap && route.max_message_size <= SIZE_MAX / 4 &&
        route.send_cap < 2 * (size_t)route.max_message_size) {
        send_cap = 2 * (size_t)route.max_message_size;
        set_send_cap = true;
    }
    if (set_send_cap) {
        route.send_cap = (size_t)send_cap;
        if (route.send_high_watermark > route.send_cap) {
            route.send_high_watermark = route.send_cap;
            route.send_low_watermark = route.send_cap / 4;
        }
    }
    rc = wisp_server_route(srv, &route);
    if (rc < 0) {
        fprintf(stderr, PROG ": cannot route '%s': %s\n", path, wisp_strerror(rc));
        goto fail;
    }

    uint16_t bound = 0;
    bool v6 = strchr(host, ':') != NULL;
    if (cert) {
        struct wisp_tls_opts tls = {.cert_file = cert, .key_file = key};
        rc = wisp_server_listen_tls(srv, host, (uint16_t)port, &tls, &bound);
    } else {
        rc = wisp_server_listen(srv, host, (uint16_t)port, &bound);
    }
    if (rc < 0) {
        fprintf(stderr, PROG ": cannot listen on %s%s%s:%" PRIu64 ": %s\n", v6 ? "[" : "", host,
                v6 ? "]" : "", port, wisp_cli_error_text(rc));
        goto fail;
    }

    unsigned n = wisp_runtime_workers(rt);
    printf(PROG " listening on %s%s%s:%u (%u worker%s)\n", v6 ? "[" : "", host, v6 ? "]" : "",
           (unsigned)bound, n, n == 1 ? "" : "s");
    fflush(stdout);

    rc = wisp_runtime_run(rt);
    if (rc < 0) {
        fprintf(stderr, PROG ": %s\n", wisp_cli_error_text(rc));
        goto fail;
    }
    wisp_runtime_free(rt);
    wisp_server_free(srv);
    return 0;

fail:
    wisp_runtime_free(rt);
    wisp_server_free(srv);
    return 1;
}
