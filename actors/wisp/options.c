/* actors/wisp/options.c: the command line, config files, and the checks of the whole (see
 * options.h). */
#include "options.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/version.h>

#include "cli.h"
#include "modules.h"

#define MAX_WORKERS 1024u
/* The route's limit: max_message_size must stay below 4 GiB (see wisp_server_route). */
#define MAX_MESSAGE_LIMIT ((1ull << 32) - 1)

enum opt_id {
    O_LISTEN, O_LISTEN_TLS, O_CERT, O_KEY, O_ROUTE, O_STATIC, O_MODULE, O_CONFIG,
    O_WORKERS, O_SHUTDOWN_MS, O_RECV_BUFFERS, O_RECV_BUFFER_SIZE,
    O_MAX_CONNS, O_MAX_CONNS_PER_WORKER, O_HANDSHAKE_MS, O_IDLE_MS, O_PONG_MS, O_CLOSE_MS,
    O_MAX_HEAD, O_BACKLOG,
    O_MAX_MESSAGE, O_MAX_FRAME, O_FRAGMENT_SIZE, O_SEND_HIGH, O_SEND_LOW, O_SEND_CAP,
    O_OVERFLOW, O_MAILBOX_LIMIT,
    O_METRICS_PATH, O_NO_METRICS, O_HEALTH_PATH, O_NO_HEALTH,
    O_LOG_LEVEL, O_LIST_MODULES, O_VERSION, O_HELP,
};

struct optdef {
    const char *name;
    const char *arg;   /* the value's name in --help; NULL for a flag */
    enum opt_id id;
    bool cli_only;     /* refused in a config file */
    const char *group; /* a heading printed before this option in --help, or NULL */
    const char *help;  /* '\n' starts a continuation line */
};

static const struct optdef opts[] = {
    {"listen", "ADDR:PORT", O_LISTEN, false, "Listeners",
     "listen for ws:// here (repeatable); IPv6 as\n"
     "[::1]:8080; port 0 picks a free one (default\n"
     "127.0.0.1:8080 when no listener is given)"},
    {"listen-tls", "ADDR:PORT", O_LISTEN_TLS, false, NULL,
     "listen for wss:// here (repeatable); needs\n"
     "--cert and --key"},
    {"cert", "FILE", O_CERT, false, NULL, "PEM certificate chain for --listen-tls"},
    {"key", "FILE", O_KEY, false, NULL, "PEM private key for --listen-tls"},
    {"route", "PATH=MODULE[:ARG]", O_ROUTE, false, "Routes",
     "mount a module on PATH (repeatable), giving it\n"
     "ARG; PATH is exact (/chat), a prefix (/files/*)\n"
     "or \"*\" (every path no other route takes)"},
    {"static", "URLPATH=DIR", O_STATIC, false, NULL,
     "serve the files under DIR at URLPATH\n"
     "(repeatable): the route URLPATH/*=static:DIR,\n"
     "or *=static:DIR for \"/\""},
    {"module", "FILE.so", O_MODULE, false, NULL,
     "load a module (repeatable; see wisp/module.h)"},
    {"metrics-path", "PATH", O_METRICS_PATH, false, NULL,
     "where GET answers Prometheus metrics"},
    {"no-metrics", NULL, O_NO_METRICS, false, NULL, "serve no metrics"},
    {"health-path", "PATH", O_HEALTH_PATH, false, NULL,
     "where GET answers 200 \"ok\" (503 once stopping)"},
    {"no-health", NULL, O_NO_HEALTH, false, NULL, "serve no health check"},
    {"workers", "N", O_WORKERS, false, "Runtime", "worker threads (0: one per CPU)"},
    {"shutdown-ms", "MS", O_SHUTDOWN_MS, false, NULL,
     "after SIGTERM/SIGINT, how long connections get\n"
     "to close before they are dropped"},
    {"recv-buffers", "N", O_RECV_BUFFERS, false, NULL,
     "receive buffers per worker (a power of two,\n"
     "at most 32768)"},
    {"recv-buffer-size", "SIZE", O_RECV_BUFFER_SIZE, false, NULL, "size of each receive buffer"},
    {"max-conns", "N", O_MAX_CONNS, false, "Connections",
     "open connections at most, beyond which new ones\n"
     "get 503 (0: the file limit minus 64)"},
    {"max-conns-per-worker", "N", O_MAX_CONNS_PER_WORKER, false, NULL,
     "open connections per worker at most (0: none)"},
    {"handshake-ms", "MS", O_HANDSHAKE_MS, false, NULL,
     "time from accept to the end of the handshake"},
    {"idle-ms", "MS", O_IDLE_MS, false, NULL, "ping a peer silent this long (0: never)"},
    {"pong-ms", "MS", O_PONG_MS, false, NULL, "then hang up if it stays silent this long"},
    {"close-ms", "MS", O_CLOSE_MS, false, NULL, "how long to wait for the peer's close"},
    {"max-head", "SIZE", O_MAX_HEAD, false, NULL, "largest HTTP request head (431 beyond)"},
    {"backlog", "N", O_BACKLOG, false, NULL, "listen(2) backlog"},
    {"max-message", "SIZE", O_MAX_MESSAGE, false, "Every route",
     "largest message received, beyond which the\n"
     "connection is closed with 1009 (below 4G)"},
    {"max-frame", "SIZE", O_MAX_FRAME, false, NULL,
     "largest frame received (default: --max-message)"},
    {"fragment-size", "SIZE", O_FRAGMENT_SIZE, false, NULL,
     "send longer messages in fragments of this size\n"
     "(0: never split)"},
    {"send-high", "SIZE", O_SEND_HIGH, false, NULL,
     "buffered outgoing bytes that throttle a\n"
     "connection (at most --send-cap)"},
    {"send-low", "SIZE", O_SEND_LOW, false, NULL,
     "buffered outgoing bytes that unthrottle it"},
    {"send-cap", "SIZE", O_SEND_CAP, false, NULL,
     "buffered outgoing bytes a connection may hold,\n"
     "beyond which --overflow applies (default: twice\n"
     "--max-message, so the echo of a largest\n"
     "message fits, and never below the library's)"},
    {"overflow", "close|drop", O_OVERFLOW, false, NULL,
     "over --send-cap: close the connection with 1008\n"
     "or drop the message"},
    {"mailbox-limit", "N", O_MAILBOX_LIMIT, false, NULL,
     "messages waiting for a connection before its\n"
     "socket is no longer read (0: the runtime's)"},
    {"log-level", "LEVEL", O_LOG_LEVEL, false, "Program",
     "what goes to stderr: error, warn, info or debug"},
    {"config", "FILE", O_CONFIG, true, NULL,
     "read options from FILE (repeatable): one per\n"
     "line, `name = value` or `name` alone for a\n"
     "flag; lines starting with '#' are comments"},
    {"list-modules", NULL, O_LIST_MODULES, true, NULL,
     "list the modules (built in and loaded), exit"},
    {"version", NULL, O_VERSION, true, NULL, "print the version and exit"},
    {"help", NULL, O_HELP, true, NULL, "print this help and exit"},
};

#define NOPTS (sizeof opts / sizeof opts[0])

/* ---- small helpers ------------------------------------------------------------------------- */

static const struct optdef *find_opt(const char *name, size_t len)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (strlen(opts[i].name) == len && memcmp(opts[i].name, name, len) == 0)
            return &opts[i];
    return NULL;
}

/* "16M", "64K", "1000": the largest K/M/G unit that divides v. */
static void fmt_size(char *buf, size_t cap, uint64_t v)
{
    static const char units[] = "GMK";
    for (int i = 0; i < 3; i++) {
        unsigned shift = (unsigned)(30 - 10 * i);
        if (v && v % (1ull << shift) == 0) {
            snprintf(buf, cap, "%" PRIu64 "%c", v >> shift, units[i]);
            return;
        }
    }
    snprintf(buf, cap, "%" PRIu64, v);
}

void wp_format_addr(char *buf, size_t cap, const char *host, unsigned port)
{
    bool v6 = strchr(host, ':') != NULL;
    snprintf(buf, cap, "%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "", port);
}

static bool number(const char *where, const char *val, bool size, uint64_t min, uint64_t max,
                   uint64_t *out)
{
    if (wisp_cli_number(val, size, min, max, out))
        return true;
    wp_error("%s: invalid value '%s' (expected %s from %" PRIu64 " to %" PRIu64 ")", where, val,
             size ? "a size in bytes, with an optional K, M or G," : "a whole number", min, max);
    return false;
}

static bool u32_number(const char *where, const char *val, uint64_t min, uint32_t *out)
{
    uint64_t v;
    if (!number(where, val, false, min, UINT32_MAX, &v))
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool size_number(const char *where, const char *val, uint64_t min, uint64_t max,
                        size_t *out)
{
    uint64_t v;
    if (!number(where, val, true, min, max, &v))
        return false;
    *out = (size_t)v;
    return true;
}

static bool set_string(char **slot, const char *val)
{
    char *s = strdup(val);
    if (!s) {
        wp_error("out of memory");
        return false;
    }
    free(*slot);
    *slot = s;
    return true;
}

static bool grow(void **arr, size_t n, size_t size)
{
    void *v = realloc(*arr, (n + 1) * size);
    if (!v) {
        wp_error("out of memory");
        return false;
    }
    *arr = v;
    return true;
}

/* ---- listen addresses, routes ------------------------------------------------------------- */

/* "ADDR:PORT" or "[IPV6]:PORT". */
static bool parse_listen(struct wp_config *cfg, const char *where, const char *val, bool tls)
{
    const char *host, *host_end, *port;
    if (val[0] == '[') {
        host = val + 1;
        host_end = strchr(host, ']');
        if (!host_end || host_end[1] != ':') {
            wp_error("%s: '%s': expected [IPV6]:PORT, e.g. [::1]:8080", where, val);
            return false;
        }
        port = host_end + 2;
    } else {
        host = val;
        host_end = strrchr(val, ':');
        if (!host_end) {
            wp_error("%s: '%s': expected ADDR:PORT, e.g. 127.0.0.1:8080", where, val);
            return false;
        }
        if (memchr(val, ':', (size_t)(host_end - val))) {
            wp_error("%s: '%s': write an IPv6 address in brackets, e.g. [::1]:8080", where, val);
            return false;
        }
        port = host_end + 1;
    }
    if (host_end == host) {
        wp_error("%s: '%s': no address before the port (0.0.0.0 or [::] for every interface)",
                 where, val);
        return false;
    }
    uint64_t p;
    if (!wisp_cli_number(port, false, 0, 65535, &p)) {
        wp_error("%s: '%s': invalid port '%s' (expected a whole number from 0 to 65535)", where,
                 val, port);
        return false;
    }
    if (!grow((void **)&cfg->listens, cfg->nlistens, sizeof *cfg->listens))
        return false;
    struct wp_listen *l = &cfg->listens[cfg->nlistens];
    l->host = strndup(host, (size_t)(host_end - host));
    if (!l->host) {
        wp_error("out of memory");
        return false;
    }
    l->port = (uint16_t)p;
    l->tls = tls;
    cfg->nlistens++;
    return true;
}

/* Why p cannot be a route path, or NULL if it can: "*", "/exact", or a prefix "/files/" "*". */
static const char *route_path_problem(const char *p, bool prefix_ok)
{
    if (strcmp(p, "*") == 0)
        return prefix_ok ? NULL : "\"*\" is not a path";
    if (p[0] != '/')
        return prefix_ok ? "a path starts with '/' (or is \"*\", for every other path)"
                         : "a path starts with '/'";
    for (const char *q = p; *q; q++) {
        unsigned char ch = (unsigned char)*q;
        if (ch <= 0x20 || ch == 0x7f)
            return "a path has no spaces or control characters";
        if (ch == '?' || ch == '#')
            return "a path has no query ('?') or fragment ('#')";
        if (ch == '*' && (!prefix_ok || q[1] != '\0' || q[-1] != '/'))
            return prefix_ok ? "'*' may only end a prefix path, as in /files/*"
                             : "'*' has no place in this path";
    }
    return NULL;
}

static bool add_route(struct wp_config *cfg, const char *path, size_t path_len,
                      const char *module, size_t module_len, const char *arg,
                      const char *origin)
{
    if (!grow((void **)&cfg->routes, cfg->nroutes, sizeof *cfg->routes))
        return false;
    struct wp_route_spec *r = &cfg->routes[cfg->nroutes];
    memset(r, 0, sizeof *r);
    r->path = strndup(path, path_len);
    r->module = strndup(module, module_len);
    r->arg = arg ? strdup(arg) : NULL;
    r->origin = strdup(origin);
    if (!r->path || !r->module || (arg && !r->arg) || !r->origin) {
        free(r->path);
        free(r->module);
        free(r->arg);
        free(r->origin);
        wp_error("out of memory");
        return false;
    }
    cfg->nroutes++;
    return true;
}

/* PATH=MODULE[:ARG] */
static bool parse_route(struct wp_config *cfg, const char *where, const char *val,
                        const char *origin)
{
    const char *eq = strchr(val, '=');
    if (!eq) {
        wp_error("%s: '%s': expected PATH=MODULE[:ARG], e.g. /chat=chat", where, val);
        return false;
    }
    char path[4096];
    if ((size_t)(eq - val) >= sizeof path) {
        wp_error("%s: the path is too long", where);
        return false;
    }
    memcpy(path, val, (size_t)(eq - val));
    path[eq - val] = '\0';
    const char *why = route_path_problem(path, true);
    if (why) {
        wp_error("%s: bad path '%s': %s", where, path, why);
        return false;
    }
    const char *module = eq + 1;
    const char *colon = strchr(module, ':');
    size_t mlen = colon ? (size_t)(colon - module) : strlen(module);
    char name[WP_MODULE_NAME_MAX + 1];
    if (mlen == 0 || mlen > WP_MODULE_NAME_MAX) {
        wp_error("%s: '%s': %s module name", where, val, mlen ? "too long a" : "no");
        return false;
    }
    memcpy(name, module, mlen);
    name[mlen] = '\0';
    if (!wp_module_name_ok(name)) {
        wp_error("%s: bad module name '%s' (letters, digits, '-' and '_')", where, name);
        return false;
    }
    if (colon && colon[1] == '\0') {
        wp_error("%s: '%s': nothing after ':' (leave the ':' out for no argument)", where, val);
        return false;
    }
    return add_route(cfg, path, strlen(path), module, mlen, colon ? colon + 1 : NULL, origin);
}

/* URLPATH=DIR: the prefix route URLPATH + "/" "*" with static:DIR; "*" for URLPATH "/". */
static bool parse_static(struct wp_config *cfg, const char *where, const char *val,
                         const char *origin)
{
    const char *eq = strchr(val, '=');
    if (!eq || eq == val || eq[1] == '\0') {
        wp_error("%s: '%s': expected URLPATH=DIR, e.g. /=./www or /files=/srv/files", where,
                 val);
        return false;
    }
    size_t n = (size_t)(eq - val);
    char path[4096];
    if (n + 3 > sizeof path) {
        wp_error("%s: the path is too long", where);
        return false;
    }
    memcpy(path, val, n);
    path[n] = '\0';
    const char *why = route_path_problem(path, false);
    if (why) {
        wp_error("%s: bad URL path '%s': %s", where, path, why);
        return false;
    }
    while (n > 0 && path[n - 1] == '/')
        n--;
    if (n == 0)
        strcpy(path, "*");
    else
        memcpy(path + n, "/*", 3);
    return add_route(cfg, path, strlen(path), "static", 6, eq + 1, origin);
}

static bool parse_http_path(const char *where, const char *val, char **slot)
{
    const char *why = route_path_problem(val, false);
    if (why) {
        wp_error("%s: bad path '%s': %s", where, val, why);
        return false;
    }
    return set_string(slot, val);
}

/* ---- --help -------------------------------------------------------------------------------- */

/* The default of an option as text, from the library's own defaults; NULL when there is
 * none worth saying. */
static const char *default_text(enum opt_id id, char *buf, size_t cap)
{
    struct wisp_runtime_opts ro;
    struct wisp_server_opts so;
    struct wisp_route r;
    wisp_runtime_opts_init(&ro);
    wisp_server_opts_init(&so);
    wisp_route_init(&r, "*", NULL);
    switch (id) {
    case O_METRICS_PATH: return "/metrics";
    case O_HEALTH_PATH: return "/healthz";
    case O_WORKERS: snprintf(buf, cap, "%u", ro.workers); return buf;
    case O_SHUTDOWN_MS: snprintf(buf, cap, "%" PRIu32, ro.shutdown_deadline_ms); return buf;
    case O_RECV_BUFFERS: snprintf(buf, cap, "%" PRIu32, ro.recv_buffers); return buf;
    case O_RECV_BUFFER_SIZE: fmt_size(buf, cap, ro.recv_buffer_size); return buf;
    case O_MAX_CONNS: snprintf(buf, cap, "%" PRIu32, so.max_connections); return buf;
    case O_MAX_CONNS_PER_WORKER:
        snprintf(buf, cap, "%" PRIu32, so.max_connections_per_worker);
        return buf;
    case O_HANDSHAKE_MS: snprintf(buf, cap, "%" PRIu32, so.handshake_timeout_ms); return buf;
    case O_IDLE_MS: snprintf(buf, cap, "%" PRIu32, so.idle_timeout_ms); return buf;
    case O_PONG_MS: snprintf(buf, cap, "%" PRIu32, so.pong_timeout_ms); return buf;
    case O_CLOSE_MS: snprintf(buf, cap, "%" PRIu32, so.close_timeout_ms); return buf;
    case O_MAX_HEAD: fmt_size(buf, cap, so.max_request_head); return buf;
    case O_BACKLOG: snprintf(buf, cap, "%d", so.backlog); return buf;
    case O_MAX_MESSAGE: fmt_size(buf, cap, r.max_message_size); return buf;
    case O_FRAGMENT_SIZE: fmt_size(buf, cap, r.fragment_size); return buf;
    case O_SEND_HIGH: fmt_size(buf, cap, r.send_high_watermark); return buf;
    case O_SEND_LOW: fmt_size(buf, cap, r.send_low_watermark); return buf;
    case O_OVERFLOW: return r.overflow == WISP_OVERFLOW_DROP ? "drop" : "close";
    case O_MAILBOX_LIMIT: snprintf(buf, cap, "%" PRIu32, r.mailbox_limit); return buf;
    case O_LOG_LEVEL: return "info";
    default: return NULL;
    }
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: " WP_PROG " [OPTION]...\n"
            "Serve WebSocket modules on URL paths, every connection an actor.\n"
            "  e.g. " WP_PROG " --listen 0.0.0.0:8080 --route /chat=chat --static /=./www\n");
    for (size_t i = 0; i < NOPTS; i++) {
        const struct optdef *d = &opts[i];
        if (d->group)
            fprintf(out, "\n%s:\n", d->group);
        char head[64];
        snprintf(head, sizeof head, "  --%s%s%s", d->name, d->arg ? " " : "",
                 d->arg ? d->arg : "");
        fprintf(out, "%-30s", head);
        if (strlen(head) >= 30)
            fprintf(out, "\n%30s", "");
        size_t col = 30;
        for (const char *p = d->help; *p;) {
            const char *nl = strchr(p, '\n');
            size_t len = nl ? (size_t)(nl - p) : strlen(p);
            fprintf(out, "%.*s", (int)len, p);
            col = 30 + len;
            if (!nl)
                break;
            fprintf(out, "\n%30s", "");
            p = nl + 1;
        }
        char buf[64];
        const char *def = default_text(d->id, buf, sizeof buf);
        if (def) {
            if (col + strlen(def) + 11 > 80) /* " (default X)" would pass column 80 */
                fprintf(out, "\n%30s(default %s)", "", def);
            else
                fprintf(out, " (default %s)", def);
        }
        fputc('\n', out);
    }
    fprintf(out,
            "\n"
            "SIZE is a number of bytes, optionally followed by K, M or G (powers of 1024).\n"
            "Every option works in a config file too (except config, list-modules, version\n"
            "and help); options apply in order, so command-line options after --config\n"
            "override its values and add to its listeners, routes and modules.\n"
            "Modules: " WP_PROG " --list-modules. Each listener is printed on stdout once all\n"
            "are bound (\"" WP_PROG " listening on ADDR:PORT\", \" (tls)\" for wss://); the log\n"
            "goes to stderr as \"" WP_PROG ": LEVEL: message\". SIGINT or SIGTERM closes every\n"
            "connection with 1001 and exits 0; any setup error exits 1 with one message.\n");
}

/* ---- applying one option ------------------------------------------------------------------ */

struct parse_state {
    struct wp_config *cfg;
    enum wp_parse_result result; /* WP_PARSE_DONE after --help / --version */
};

static bool read_config(struct parse_state *st, const char *file);

/* Apply option d with value val (NULL for a flag). where names it in messages ("--workers",
 * "wisp.conf:3: workers"); origin says where a route came from. */
static bool apply(struct parse_state *st, const struct optdef *d, const char *val,
                  const char *where, const char *origin)
{
    struct wp_config *cfg = st->cfg;
    uint64_t v;
    switch (d->id) {
    case O_LISTEN:
    case O_LISTEN_TLS:
        return parse_listen(cfg, where, val, d->id == O_LISTEN_TLS);
    case O_CERT:
        return set_string(&cfg->cert, val);
    case O_KEY:
        return set_string(&cfg->key, val);
    case O_ROUTE:
        return parse_route(cfg, where, val, origin);
    case O_STATIC:
        return parse_static(cfg, where, val, origin);
    case O_MODULE:
        if (!grow((void **)&cfg->module_files, cfg->nmodule_files, sizeof(char *)))
            return false;
        cfg->module_files[cfg->nmodule_files] = NULL;
        if (!set_string(&cfg->module_files[cfg->nmodule_files], val))
            return false;
        cfg->nmodule_files++;
        return true;
    case O_CONFIG:
        return read_config(st, val);
    case O_WORKERS:
        if (!number(where, val, false, 0, MAX_WORKERS, &v))
            return false;
        cfg->rt.workers = (unsigned)v;
        return true;
    case O_SHUTDOWN_MS:
        return u32_number(where, val, 0, &cfg->rt.shutdown_deadline_ms);
    case O_RECV_BUFFERS:
        if (!number(where, val, false, 1, 32768, &v))
            return false;
        if (v & (v - 1)) {
            wp_error("%s: invalid value '%s' (expected a power of two)", where, val);
            return false;
        }
        cfg->rt.recv_buffers = (uint32_t)v;
        return true;
    case O_RECV_BUFFER_SIZE:
        if (!number(where, val, true, 1, 1u << 30, &v))
            return false;
        cfg->rt.recv_buffer_size = (uint32_t)v;
        return true;
    case O_MAX_CONNS:
        return u32_number(where, val, 0, &cfg->srv.max_connections);
    case O_MAX_CONNS_PER_WORKER:
        return u32_number(where, val, 0, &cfg->srv.max_connections_per_worker);
    case O_HANDSHAKE_MS:
        return u32_number(where, val, 1, &cfg->srv.handshake_timeout_ms);
    case O_IDLE_MS:
        return u32_number(where, val, 0, &cfg->srv.idle_timeout_ms);
    case O_PONG_MS:
        return u32_number(where, val, 1, &cfg->srv.pong_timeout_ms);
    case O_CLOSE_MS:
        return u32_number(where, val, 1, &cfg->srv.close_timeout_ms);
    case O_MAX_HEAD:
        if (!number(where, val, true, 64, UINT32_MAX, &v))
            return false;
        cfg->srv.max_request_head = (uint32_t)v;
        return true;
    case O_BACKLOG:
        if (!number(where, val, false, 1, 1u << 20, &v))
            return false;
        cfg->srv.backlog = (int)v;
        return true;
    case O_MAX_MESSAGE:
        return number(where, val, true, 1, MAX_MESSAGE_LIMIT, &cfg->route.max_message_size);
    case O_MAX_FRAME:
        cfg->set_max_frame = true;
        return number(where, val, true, 1, MAX_MESSAGE_LIMIT, &cfg->route.max_frame_size);
    case O_FRAGMENT_SIZE:
        return size_number(where, val, 0, SIZE_MAX >> 1, &cfg->route.fragment_size);
    case O_SEND_HIGH:
        cfg->set_send_high = true;
        return size_number(where, val, 1, SIZE_MAX >> 1, &cfg->route.send_high_watermark);
    case O_SEND_LOW:
        cfg->set_send_low = true;
        return size_number(where, val, 0, SIZE_MAX >> 1, &cfg->route.send_low_watermark);
    case O_SEND_CAP:
        cfg->set_send_cap = true;
        return size_number(where, val, 1, SIZE_MAX >> 1, &cfg->route.send_cap);
    case O_OVERFLOW:
        if (strcmp(val, "close") == 0)
            cfg->route.overflow = WISP_OVERFLOW_CLOSE;
        else if (strcmp(val, "drop") == 0)
            cfg->route.overflow = WISP_OVERFLOW_DROP;
        else {
            wp_error("%s: invalid value '%s' (expected close or drop)", where, val);
            return false;
        }
        return true;
    case O_MAILBOX_LIMIT:
        return u32_number(where, val, 0, &cfg->route.mailbox_limit);
    case O_METRICS_PATH:
        return parse_http_path(where, val, &cfg->metrics_path);
    case O_NO_METRICS:
        free(cfg->metrics_path);
        cfg->metrics_path = NULL;
        return true;
    case O_HEALTH_PATH:
        return parse_http_path(where, val, &cfg->health_path);
    case O_NO_HEALTH:
        free(cfg->health_path);
        cfg->health_path = NULL;
        return true;
    case O_LOG_LEVEL:
        if (!wp_log_parse_level(val, &cfg->log_level)) {
            wp_error("%s: invalid value '%s' (expected error, warn, info or debug)", where, val);
            return false;
        }
        wp_log_set_level(cfg->log_level);
        return true;
    case O_LIST_MODULES:
        cfg->list_modules = true;
        return true;
    case O_VERSION:
        printf(WP_PROG " %s (module ABI %u)\n", WISP_VERSION, WISP_MODULE_ABI_VERSION);
        st->result = WP_PARSE_DONE;
        return true;
    case O_HELP:
        usage(stdout);
        st->result = WP_PARSE_DONE;
        return true;
    }
    return false;
}

/* ---- config files --------------------------------------------------------------------------- */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static bool config_line(struct parse_state *st, const char *file, unsigned lineno, char *line)
{
    char *s = trim(line);
    if (*s == '\0' || *s == '#')
        return true;
    char *name = s, *value = NULL;
    char *eq = strchr(s, '=');
    if (eq) {
        *eq = '\0';
        name = trim(s);
        value = trim(eq + 1);
    }
    const struct optdef *d = find_opt(name, strlen(name));
    if (!d) {
        wp_error("%s:%u: unknown option '%s'", file, lineno, name);
        return false;
    }
    if (d->cli_only) {
        wp_error("%s:%u: '%s' works on the command line only", file, lineno, name);
        return false;
    }
    if (d->arg && (!value || !*value)) {
        wp_error("%s:%u: %s needs a value (%s = %s)", file, lineno, name, name, d->arg);
        return false;
    }
    if (!d->arg && value) {
        wp_error("%s:%u: %s is a flag and takes no value (write '%s' alone)", file, lineno,
                 name, name);
        return false;
    }
    char where[512], origin[512];
    snprintf(where, sizeof where, "%s:%u: %s", file, lineno, name);
    snprintf(origin, sizeof origin, "%s:%u", file, lineno);
    wp_debug("%s:%u: %s%s%s", file, lineno, name, value ? " = " : "", value ? value : "");
    return apply(st, d, value, where, origin);
}

static bool read_config(struct parse_state *st, const char *file)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        wp_error("--config: cannot read '%s': %s", file, strerror(errno));
        return false;
    }
    char *line = NULL;
    size_t cap = 0;
    unsigned lineno = 0;
    bool ok = true;
    ssize_t n;
    while (ok && (n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (memchr(line, '\0', (size_t)n)) {
            wp_error("%s:%u: a NUL byte: not a text file", file, lineno);
            ok = false;
            break;
        }
        ok = config_line(st, file, lineno, line);
    }
    if (ok && ferror(f)) {
        wp_error("--config: cannot read '%s': %s", file, strerror(errno));
        ok = false;
    }
    free(line);
    fclose(f);
    return ok;
}

/* ---- checks of the whole -------------------------------------------------------------------- */

static bool readable(const char *what, const char *file)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        wp_error("%s: cannot read '%s': %s", what, file, strerror(errno));
        return false;
    }
    fclose(f);
    return true;
}

static bool finish(struct wp_config *cfg)
{
    if (cfg->list_modules)
        return true;
    if (cfg->nlistens == 0 && !parse_listen(cfg, "--listen", "127.0.0.1:8080", false))
        return false;

    size_t ntls = 0;
    for (size_t i = 0; i < cfg->nlistens; i++)
        ntls += cfg->listens[i].tls;
    if (ntls && (!cfg->cert || !cfg->key)) {
        wp_error("--listen-tls needs --cert FILE and --key FILE");
        return false;
    }
    if (!ntls && (cfg->cert || cfg->key)) {
        wp_error("--cert and --key are for --listen-tls listeners, and there is none");
        return false;
    }
    if (ntls && (!readable("--cert", cfg->cert) || !readable("--key", cfg->key)))
        return false;

    /* Route limits: what was not given follows from what was. */
    struct wisp_route *r = &cfg->route;
    if (!cfg->set_max_frame)
        r->max_frame_size = r->max_message_size;
    if (!cfg->set_send_cap && r->max_message_size <= SIZE_MAX / 4 &&
        r->send_cap < 2 * (size_t)r->max_message_size)
        r->send_cap = 2 * (size_t)r->max_message_size;
    if (!cfg->set_send_high && r->send_high_watermark > r->send_cap)
        r->send_high_watermark = r->send_cap;
    if (!cfg->set_send_low && r->send_low_watermark > r->send_high_watermark)
        r->send_low_watermark = r->send_high_watermark / 4;
    if (r->send_low_watermark > r->send_high_watermark ||
        r->send_high_watermark > r->send_cap) {
        wp_error("send limits: --send-low (%zu) <= --send-high (%zu) <= --send-cap (%zu) must "
                 "hold", r->send_low_watermark, r->send_high_watermark, r->send_cap);
        return false;
    }

    /* Path clashes, with a message naming both sides. */
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const struct wp_route_spec *a = &cfg->routes[i];
        for (size_t j = 0; j < i; j++) {
            if (strcmp(a->path, cfg->routes[j].path) == 0) {
                wp_error("route path clash: '%s' is routed by %s and by %s", a->path,
                         cfg->routes[j].origin, a->origin);
                return false;
            }
        }
        static const char *const what[] = {"metrics", "health check"};
        static const char *const opt[] = {"--metrics-path", "--health-path"};
        static const char *const off[] = {"--no-metrics", "--no-health"};
        const char *paths[] = {cfg->metrics_path, cfg->health_path};
        for (int k = 0; k < 2; k++) {
            if (paths[k] && strcmp(a->path, paths[k]) == 0) {
                wp_error("route path clash: '%s' (%s) is where the %s are served: move them "
                         "with %s PATH or turn them off with %s", a->path, a->origin, what[k],
                         opt[k], off[k]);
                return false;
            }
        }
    }
    if (cfg->metrics_path && cfg->health_path &&
        strcmp(cfg->metrics_path, cfg->health_path) == 0) {
        wp_error("route path clash: --metrics-path and --health-path are both '%s'",
                 cfg->metrics_path);
        return false;
    }
    return true;
}

/* ---- the command line ------------------------------------------------------------------------ */

static enum wp_parse_result usage_error(void)
{
    fprintf(stderr, "Try '" WP_PROG " --help'.\n");
    return WP_PARSE_ERROR;
}

enum wp_parse_result wp_config_parse(struct wp_config *cfg, int argc, char **argv)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->log_level = WP_LOG_INFO;
    wp_log_set_level(cfg->log_level);
    wisp_runtime_opts_init(&cfg->rt);
    wisp_server_opts_init(&cfg->srv);
    wisp_route_init(&cfg->route, "*", NULL);
    if (!set_string(&cfg->metrics_path, "/metrics") || !set_string(&cfg->health_path, "/healthz"))
        return WP_PARSE_ERROR;

    struct parse_state st = {cfg, WP_PARSE_OK};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0) {
            usage(stdout);
            return WP_PARSE_DONE;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            wp_error("unexpected argument '%s' (every option is a --name)", a);
            return usage_error();
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const struct optdef *d = find_opt(name, nlen);
        if (!d) {
            wp_error("unknown option '--%.*s'", (int)nlen, name);
            return usage_error();
        }
        const char *val = NULL;
        if (d->arg) {
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else {
                wp_error("option '--%s' needs a value (%s)", d->name, d->arg);
                return usage_error();
            }
        } else if (eq) {
            wp_error("option '--%s' takes no value", d->name);
            return usage_error();
        }
        char where[64], origin[4200];
        snprintf(where, sizeof where, "--%s", d->name);
        snprintf(origin, sizeof origin, "--%s %s", d->name, val ? val : "");
        if (!apply(&st, d, val, where, origin))
            return d->id == O_CONFIG ? WP_PARSE_ERROR : usage_error();
        if (st.result == WP_PARSE_DONE)
            return WP_PARSE_DONE;
    }
    return finish(cfg) ? WP_PARSE_OK : WP_PARSE_ERROR;
}

void wp_config_free(struct wp_config *cfg)
{
    for (size_t i = 0; i < cfg->nlistens; i++)
        free(cfg->listens[i].host);
    free(cfg->listens);
    for (size_t i = 0; i < cfg->nroutes; i++) {
        free(cfg->routes[i].path);
        free(cfg->routes[i].module);
        free(cfg->routes[i].arg);
        free(cfg->routes[i].origin);
    }
    free(cfg->routes);
    for (size_t i = 0; i < cfg->nmodule_files; i++)
        free(cfg->module_files[i]);
    free(cfg->module_files);
    free(cfg->cert);
    free(cfg->key);
    free(cfg->metrics_path);
    free(cfg->health_path);
    memset(cfg, 0, sizeof *cfg);
}
