/* client_bench: echo ping-pong through wisp's own client connections, for what wisp-load
 * cannot do (wss://). N connections each keep one message of SIZE bytes in flight against an
 * echo server for SECONDS; prints one line: msgs/s and payload bytes/s each way.
 *
 *     client_bench URL CONNS SIZE SECONDS [CA_FILE]
 *
 * bench/tls_compare.sh runs it against wisp-echo with and without TLS, interleaved. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <wisp/wisp.h>

static struct wisp_runtime *g_rt;
static size_t g_size;
static uint8_t *g_payload;
/* relaxed: statistics read by main after the measured window; exactness is not needed to
 * the message, and nothing else is published through them */
static atomic_uint_fast64_t g_msgs, g_open, g_errors;

static void send_one(struct wisp_conn *c)
{
    if (wisp_conn_send_binary(c, g_payload, g_size) < 0)
        atomic_fetch_add_explicit(&g_errors, 1, memory_order_relaxed);
}

static void on_open(struct wisp_conn *c, void *st)
{
    atomic_fetch_add_explicit(&g_open, 1, memory_order_relaxed);
    send_one(c);
}

static void on_binary(struct wisp_conn *c, void *st, const uint8_t *p, size_t n)
{
    if (n != g_size || memcmp(p, g_payload, n) != 0)
        atomic_fetch_add_explicit(&g_errors, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_msgs, 1, memory_order_relaxed);
    send_one(c);
}

static void on_error(struct wisp_conn *c, void *st, int err, const char *what)
{
    fprintf(stderr, "client_bench: %s\n", what);
    atomic_fetch_add_explicit(&g_errors, 1, memory_order_relaxed);
}

static const struct wisp_handler bench_handler = {
    .on_open = on_open,
    .on_binary = on_binary,
    .on_error = on_error,
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: client_bench URL CONNS SIZE SECONDS [CA_FILE]\n");
        return 2;
    }
    const char *url = argv[1];
    long conns = atol(argv[2]);
    g_size = (size_t)atol(argv[3]);
    double seconds = atof(argv[4]);
    g_payload = malloc(g_size ? g_size : 1);
    for (size_t i = 0; i < g_size; i++)
        g_payload[i] = (uint8_t)(i * 31 + 7);
    struct wisp_runtime_opts ro;
    wisp_runtime_opts_init(&ro);
    ro.workers = 1;
    if (wisp_runtime_new(&ro, &g_rt) < 0 || wisp_runtime_start(g_rt) < 0) {
        fprintf(stderr, "client_bench: %s\n", wisp_last_error());
        return 1;
    }
    struct wisp_client_opts co;
    wisp_client_opts_init(&co, url, &bench_handler);
    co.tls_ca_file = argc > 5 ? argv[5] : NULL;
    co.timeouts.idle_timeout_ms = 0;
    for (long i = 0; i < conns; i++) {
        if (wisp_rt_connect(g_rt, &co, NULL) < 0) {
            fprintf(stderr, "client_bench: connect: %s\n", wisp_last_error());
            return 1;
        }
    }
    double t0 = now_s();
    while (atomic_load(&g_open) < (uint64_t)conns && now_s() - t0 < 10)
        usleep(10000);
    usleep(500000); /* warm-up */
    uint64_t m0 = atomic_load_explicit(&g_msgs, memory_order_relaxed);
    double t1 = now_s();
    usleep((useconds_t)(seconds * 1e6));
    uint64_t m1 = atomic_load_explicit(&g_msgs, memory_order_relaxed);
    double dt = now_s() - t1;
    printf("client_bench url=%s conns=%ld size=%zu open=%lu msgs_per_s=%.0f bytes_per_s=%.0f "
           "errors=%lu\n",
           url, conns, g_size, (unsigned long)atomic_load(&g_open), (double)(m1 - m0) / dt,
           (double)(m1 - m0) * (double)g_size / dt, (unsigned long)atomic_load(&g_errors));
    wisp_runtime_stop(g_rt);
    wisp_runtime_free(g_rt);
    free(g_payload);
    return 0;
}
