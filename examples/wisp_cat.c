/* wisp-cat: a command-line WebSocket client. Each line read from stdin is sent as a text
 * message; every message that comes back is printed on stdout (binary ones as
 * "[binary N bytes]"), one per line. At the end of stdin it waits for --expect messages (by
 * default as many as it sent lines: one answer each), or for the connection to end, or for
 * --linger milliseconds without any message (default 10000), then closes with 1000 and exits
 * 0 once the server answered; it exits 1 if the connection fails or closes abnormally.
 *
 *     wisp-cat ws://127.0.0.1:9001/echo
 *     wisp-cat --ca ca.pem wss://localhost:9443/echo
 *     printf 'hello\n' | wisp-cat --protocol chat ws://example.test/chat
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <wisp/wisp.h>

static struct wisp_runtime *g_rt;
static wisp_addr g_conn;
/* Written by the connection's callbacks, read by main after the runtime stopped (the
 * runtime's shutdown joins the workers, which orders these writes before main's reads). */
static int g_status = 1;
/* Messages received, when the last one arrived (ms), and whether the connection is over.
 * relaxed: main only polls them to decide when to close; no other data is published through
 * them. */
static atomic_uint_fast64_t g_received, g_last_rx_ms;
static atomic_bool g_over;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void received(void)
{
    atomic_fetch_add_explicit(&g_received, 1, memory_order_relaxed);
    atomic_store_explicit(&g_last_rx_ms, now_ms(), memory_order_relaxed);
}

static void on_text(struct wisp_conn *c, void *st, const char *p, size_t n)
{
    fwrite(p, 1, n, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    received();
}

static void on_binary(struct wisp_conn *c, void *st, const uint8_t *p, size_t n)
{
    printf("[binary %zu bytes]\n", n);
    fflush(stdout);
    received();
}

static void on_closed(struct wisp_conn *c, void *st, const struct wisp_close_info *info)
{
    static const char *const by[] = {"?", "peer", "local", "library"};
    if (info->clean)
        g_status = 0;
    fprintf(stderr, "wisp-cat: closed %u \"%.*s\" by %s (%s)\n", info->code,
            (int)info->reason_len, info->reason, by[info->by <= 3 ? info->by : 0],
            wisp_close_why_str(info->why));
    atomic_store_explicit(&g_over, true, memory_order_relaxed);
    wisp_runtime_stop(g_rt);
}

static void on_error(struct wisp_conn *c, void *st, int err, const char *what)
{
    fprintf(stderr, "wisp-cat: %s (%s)\n", what, wisp_strerror(err));
    atomic_store_explicit(&g_over, true, memory_order_relaxed);
    wisp_runtime_stop(g_rt);
}

/* --header NAME:VALUE, added by the request hook (which may also compute headers late, e.g. a
 * fresh token, since it runs right before the request is written). */
static struct wisp_http_header g_headers[16];
static size_t g_num_headers;

static int add_headers(struct wisp_conn *c, void *st, struct wisp_ws_client_opts *req)
{
    req->headers = g_headers;
    req->num_headers = g_num_headers;
    return 0;
}

/* The server's answer: say which subprotocol it chose (on stderr, for scripts and tests). */
static int show_answer(struct wisp_conn *c, void *st, const struct wisp_http_response *resp)
{
    const char *p = wisp_conn_protocol(c);
    fprintf(stderr, "wisp-cat: connected (HTTP %d, subprotocol %s)\n", resp->status,
            p ? p : "none");
    return 0;
}

static const struct wisp_handler cat_handler = {
    .on_text = on_text,
    .on_binary = on_binary,
    .on_closed = on_closed,
    .on_error = on_error,
};

int main(int argc, char **argv)
{
    const char *protocol = NULL, *url = NULL, *ca = NULL;
    unsigned long linger = 10000, timeout_ms = 10000;
    long expect = -1; /* -1: as many messages as lines sent */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--protocol") == 0 && i + 1 < argc)
            protocol = argv[++i];
        else if (strcmp(argv[i], "--ca") == 0 && i + 1 < argc)
            ca = argv[++i];
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            timeout_ms = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--header") == 0 && i + 1 < argc &&
                 g_num_headers < sizeof g_headers / sizeof g_headers[0] &&
                 strchr(argv[i + 1], ':')) {
            const char *h = argv[++i], *colon = strchr(h, ':');
            const char *v = colon + 1 + strspn(colon + 1, " ");
            g_headers[g_num_headers++] = (struct wisp_http_header){h, (size_t)(colon - h), v,
                                                                   strlen(v)};
        }
        else if (strcmp(argv[i], "--linger") == 0 && i + 1 < argc)
            linger = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--expect") == 0 && i + 1 < argc)
            expect = strtol(argv[++i], NULL, 10);
        else if (!url && argv[i][0] != '-')
            url = argv[i];
        else
            url = NULL, i = argc;
    }
    if (!url) {
        fprintf(stderr, "usage: wisp-cat [--protocol NAME] [--ca PEM] [--header NAME:VALUE]... "
                        "[--timeout MS] [--expect N] [--linger MS] ws[s]://HOST[:PORT]/PATH\n");
        return 2;
    }
    struct wisp_runtime_opts ro;
    wisp_runtime_opts_init(&ro);
    ro.workers = 1;
    ro.handle_signals = true;
    if (wisp_runtime_new(&ro, &g_rt) < 0) {
        fprintf(stderr, "wisp-cat: %s\n", wisp_last_error());
        return 1;
    }
    struct wisp_client_opts co;
    wisp_client_opts_init(&co, url, &cat_handler);
    co.protocols = protocol ? &protocol : NULL;
    co.num_protocols = protocol ? 1 : 0;
    co.tls_ca_file = ca; /* wss://: trust this CA instead of the system's */
    co.timeouts.handshake_timeout_ms = (uint32_t)timeout_ms; /* connect, TLS and upgrade */
    co.on_request = add_headers;
    co.on_response = show_answer;
    int rc = wisp_rt_connect(g_rt, &co, &g_conn);
    if (rc < 0 || wisp_runtime_start(g_rt) < 0) {
        fprintf(stderr, "wisp-cat: cannot connect to %s: %s (%s)\n", url, wisp_strerror(rc),
                wisp_last_error());
        wisp_runtime_free(g_rt);
        return 1;
    }
    /* Lines sent before the connection opens are kept by it and sent after on_open, in order
     * (they all come from this one thread). */
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long sent = 0;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        if (n && line[n - 1] == '\n')
            n--;
        if (wisp_rt_conn_send_to(g_rt, g_conn, WISP_WS_OP_TEXT, line, (size_t)n) < 0)
            break;
        sent++;
    }
    free(line);
    uint64_t want = (uint64_t)(expect >= 0 ? expect : sent);
    atomic_store_explicit(&g_last_rx_ms, now_ms(), memory_order_relaxed); /* silence from now */
    while (!atomic_load_explicit(&g_over, memory_order_relaxed) &&
           atomic_load_explicit(&g_received, memory_order_relaxed) < want &&
           now_ms() - atomic_load_explicit(&g_last_rx_ms, memory_order_relaxed) < linger)
        usleep(10000);
    wisp_rt_conn_close_to(g_rt, g_conn, 1000, "bye");
    wisp_runtime_wait(g_rt);
    wisp_runtime_free(g_rt);
    return g_status;
}
