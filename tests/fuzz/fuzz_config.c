/* libFuzzer target: the wisp program's options (actors/wisp/options.c): wp_config_parse() on a
 * fuzzed command line and a fuzzed config file.
 *
 * Input: the command line, its arguments separated by NUL bytes, then an empty argument (two
 * NULs in a row), then the bytes of a config file (written to one temporary file, made once).
 * The value of every --config, whatever it is, becomes that file's name, so the parser never
 * reads another file (a FIFO or /dev/zero would hang it). argv[0] is "wisp".
 *
 * Errors are expected; what must hold: no crash, no leak (wp_config_free after every result),
 * a known result, and after WP_PARSE_OK the checks of the whole that options.h promises (at
 * least one listener, unless --list-modules; --cert and --key with --listen-tls only; the send
 * limits ordered; no two routes, nor the metrics or health path, on the same path; route and
 * module names well-formed).
 *
 * The parser prints its errors on stderr and --help on stdout: both FILE streams are pointed
 * at /dev/null (the descriptors stay as they are, so sanitizer and libFuzzer reports, written
 * to descriptor 2, still show).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "modules.h"
#include "options.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *report; /* the real stderr, for our own abort message */

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(report, "fuzz_config: %s\n", what);
        fflush(report);
        abort();
    }
}

static char conf_path[64];
static int conf_fd = -1;

static void remove_conf(void)
{
    if (conf_path[0])
        unlink(conf_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(conf_path, sizeof conf_path, "%s/fuzz_config.XXXXXX",
             tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    conf_fd = mkstemp(conf_path);
    if (conf_fd < 0) {
        perror("fuzz_config: mkstemp");
        abort();
    }
    atexit(remove_conf);

    report = fdopen(dup(2), "w");
    FILE *null = fopen("/dev/null", "w");
    if (!report || !null) {
        perror("fuzz_config: /dev/null");
        abort();
    }
    stderr = null;
    stdout = null;
    return 0;
}

static void write_conf(const uint8_t *p, size_t n)
{
    check(ftruncate(conf_fd, 0) == 0, "ftruncate");
    size_t done = 0;
    while (done < n) {
        ssize_t k = pwrite(conf_fd, p + done, n - done, (off_t)done);
        check(k > 0, "pwrite");
        done += (size_t)k;
    }
}

static bool route_path_ok(const char *p)
{
    if (strcmp(p, "*") == 0)
        return true;
    if (p[0] != '/')
        return false;
    for (const char *q = p; *q; q++) {
        unsigned char c = (unsigned char)*q;
        if (c <= 0x20 || c == 0x7f || c == '?' || c == '#')
            return false;
        if (c == '*' && (q[1] != '\0' || q[-1] != '/'))
            return false;
    }
    return true;
}

static bool http_path_ok(const char *p)
{
    return p == NULL || (route_path_ok(p) && !strchr(p, '*'));
}

/* What options.h promises about a configuration it accepted. */
static void check_config(const struct wp_config *c)
{
    check(c->log_level >= WP_LOG_ERROR && c->log_level <= WP_LOG_DEBUG, "log level");
    check(http_path_ok(c->metrics_path) && http_path_ok(c->health_path), "metrics/health path");
    for (size_t i = 0; i < c->nroutes; i++) {
        const struct wp_route_spec *r = &c->routes[i];
        check(r->path && r->module && r->origin, "route fields");
        check(route_path_ok(r->path), "route path");
        check(wp_module_name_ok(r->module), "module name");
        check(!r->arg || *r->arg, "an empty route argument");
    }
    for (size_t i = 0; i < c->nmodule_files; i++)
        check(c->module_files[i] != NULL, "module file");
    if (c->list_modules)
        return;

    check(c->nlistens >= 1, "no listener");
    size_t ntls = 0;
    for (size_t i = 0; i < c->nlistens; i++) {
        const struct wp_listen *l = &c->listens[i];
        check(l->host && l->host[0], "listener host");
        ntls += l->tls;
        char addr[64], port[8];
        wp_format_addr(addr, sizeof addr, l->host, l->port);
        snprintf(port, sizeof port, ":%u", (unsigned)l->port);
        size_t n = strlen(addr), pn = strlen(port);
        bool v6 = strchr(l->host, ':') != NULL;
        check(n > pn && (n == sizeof addr - 1 || strcmp(addr + n - pn, port) == 0), "HOST:PORT");
        size_t hl = strlen(l->host);
        check(!v6 || (addr[0] == '[' && (hl + 2 >= sizeof addr || addr[hl + 1] == ']')),
              "IPv6 in brackets");
    }
    check(ntls ? c->cert && c->key : !c->cert && !c->key, "--cert and --key with --listen-tls");
    const struct wisp_route *r = &c->route;
    check(r->send_low_watermark <= r->send_high_watermark &&
              r->send_high_watermark <= r->send_cap,
          "send limits ordered");
    check(r->max_message_size >= 1 && r->max_frame_size >= 1 &&
              r->max_message_size < (1ull << 32) && r->max_frame_size < (1ull << 32),
          "message limits");
    for (size_t i = 0; i < c->nroutes; i++) {
        for (size_t j = 0; j < i; j++)
            check(strcmp(c->routes[i].path, c->routes[j].path) != 0, "route path clash");
        check(!c->metrics_path || strcmp(c->routes[i].path, c->metrics_path) != 0,
              "route on the metrics path");
        check(!c->health_path || strcmp(c->routes[i].path, c->health_path) != 0,
              "route on the health path");
    }
    check(!c->metrics_path || !c->health_path || strcmp(c->metrics_path, c->health_path) != 0,
          "metrics and health on one path");
}

#define MAX_ARGS 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* argv: NUL-separated up to an empty argument; the rest is the config file */
    const uint8_t *end = data + size, *p = data;
    char *args[MAX_ARGS + 2];
    int argc = 0;
    args[argc++] = strdup("wisp");
    check(args[0] != NULL, "out of memory");
    while (p < end) {
        const uint8_t *nul = memchr(p, 0, (size_t)(end - p));
        size_t n = nul ? (size_t)(nul - p) : (size_t)(end - p);
        if (n == 0) { /* the empty argument: the file follows */
            p++;
            break;
        }
        if (argc < MAX_ARGS) {
            args[argc] = strndup((const char *)p, n);
            check(args[argc] != NULL, "out of memory");
            argc++;
        }
        p += n + (nul != NULL);
    }
    write_conf(p, (size_t)(end - p));

    /* every --config names the file */
    for (int i = 1; i < argc; i++) {
        if (strcmp(args[i], "--config") == 0 && i + 1 < argc) {
            free(args[i + 1]);
            args[++i] = strdup(conf_path);
            check(args[i] != NULL, "out of memory");
        } else if (strncmp(args[i], "--config=", 9) == 0) {
            free(args[i]);
            size_t n = 9 + strlen(conf_path) + 1;
            args[i] = malloc(n);
            check(args[i] != NULL, "out of memory");
            snprintf(args[i], n, "--config=%s", conf_path);
        }
    }
    args[argc] = NULL;

    struct wp_config cfg;
    enum wp_parse_result r = wp_config_parse(&cfg, argc, args);
    check(r == WP_PARSE_OK || r == WP_PARSE_DONE || r == WP_PARSE_ERROR, "result");
    if (r == WP_PARSE_OK)
        check_config(&cfg);
    wp_config_free(&cfg);
    check(cfg.listens == NULL && cfg.routes == NULL && cfg.metrics_path == NULL, "freed");

    for (int i = 0; i < argc; i++)
        free(args[i]);
    return 0;
}
