/* Actor benchmarks: the workloads of shared/anchors/actors (Erlang/OTP and CAF), run on wisp.
 *
 *   actor_bench pingpong|ring|ring100|fanin|fanin4|spawn [params...] [--workers N]
 *
 * Prints one line in the anchors' format:
 *   anchor=wisp workload=<w> value=<number> unit=<unit> [key=value ...] threads=<workers>
 *
 * Every workload is driven by an ordinary actor, as in the Erlang anchor. Messages are a tag
 * plus a 64-bit integer. fanin differs on purpose: wisp mailboxes are bounded, so the senders
 * use wisp_try_send() and, when the receiver is full, yield (message themselves to continue)
 * instead of growing the receiver's queue; peak memory is then bounded by the mailbox limit.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <wisp/runtime.h>

enum { M_PING = 1, M_PONG, M_NEXT, M_TOKEN, M_DONE, M_GO, M_MSG, M_STOP, M_CONT };

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static long status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t k = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, k) && line[k] == ':')
            v = strtol(line + k + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/* The result, filled by the driver actor; the main thread waits for `done`. */
static char result[512];
static _Atomic int done;

static void finish(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void finish(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(result, sizeof result, fmt, ap);
    va_end(ap);
    atomic_store(&done, 1);
}

static int64_t arg_i64(const struct wisp_msg *m)
{
    int64_t v = 0;
    if (m->len >= sizeof v)
        memcpy(&v, m->data, sizeof v);
    return v;
}

static void send_i64(struct wisp_ctx *ctx, wisp_addr to, uint32_t type, int64_t v)
{
    wisp_send(ctx, to, type, &v, sizeof v);
}

/* ---- a. pingpong ----------------------------------------------------------------------------- */

static void pong_receive(struct wisp_ctx *ctx, void *st, const struct wisp_msg *m)
{
    if (m->type == M_PING)
        send_i64(ctx, m->from, M_PONG, arg_i64(m));
    else if (m->type == M_STOP)
        wisp_stop(ctx, (struct wisp_exit){WISP_EXIT_NORMAL, 0});
}

static const struct wisp_actor_def pong_def = {.name = "pong", .receive = pong_receive};

struct ping_state {
    wisp_addr pong;
    int64_t n;
    uint64_t t0;
};

static int ping_init(struct wisp_ctx *ctx, void *st, const void *arg, size_t len)
{
    struct ping_state *s = st;
    memcpy(&s->n, arg, sizeof s->n);
    if (wisp_spawn(ctx, &pong_def, NULL, 0, &s->pong))
        return -1;
    s->t0 = now_ns();
    send_i64(ctx, s->pong, M_PING, s->n);
    return 0;
}

static void ping_receive(struct wisp_ctx *ctx, void *st, const struct wisp_msg *m)
{
    struct ping_state *s = st;
    int64_t n = arg_i64(m);
    if (n > 1) {
        send_i64(ctx, s->pong, M_PING, n - 1);
        return;
    }
    double t = (double)(now_ns() - s->t0);
    wisp_send(ctx, s->pong, M_STOP, NULL, 0);
    finish("value=%.0f unit=roundtrips/s one_way_ns=%.1f roundtrips=%lld elapsed_s=%.4f",
           s->n * 1e9 / t, t / (2.0 * s->n), (long long)s->n, t / 1e9);
    wisp_stop(ctx, (struct wisp_exit){WISP_EXIT_NORMAL, 0});
}

static const struct wisp_actor_def ping_def = {
    .name = "ping", .state_size = sizeof(struct ping_state), .init = ping_init,
    .receive = ping_receive};

/* ---- b. ring ---------------------------------------------------------------------------------- */

struct node_state {
    wisp_addr next, driver;
};

static void node_receive(struct wisp_ctx *ctx, void *st, const struct wisp_msg *m)
{
    struct node_state *s = st;
    switch (m->type) {
    case M_NEXT:
        memcpy(&s->next, m->data, sizeof s->next);
        s->driver = m->from;
        break;
    case M_TOKEN: {
        int64_t h = arg_i64(m);
        if (h == 0)
            wisp_send(ctx, s->driver, M_DONE, NULL, 0);
        else
            send_i64(ctx, s->next, M_TOKEN, h - 1);
        break;
    }
    case M_STOP:
        wisp_stop(ctx, (struct wisp_exit){WISP_EXIT_NORMAL, 0});
        break;
    }
}

static const struct wisp_actor_def node_def = {
    .name = "ring-node", .state_size = sizeof(struct node_state), .receive = node_receive};

struct ring_args {
    int64_t nodes, laps, tokens;
};

struct ring_state {
    struct ring_args a;
    wisp_addr *nodes;
    int64_t left;
    uint64_t t0;
};

static int ring_init(struct wisp_ctx *ctx, void *st, const void *arg, size_t len)
{
    struct ring_state *s = st;
    memcpy(&s->a, arg, sizeof s->a);
    s->nodes = calloc((size_t)s->a.nodes, sizeof *s->nodes);
    for (int64_t i = 0; i < s->a.nodes; i++)
        if (wisp_spawn(ctx, &node_def, NULL, 0, &s->nodes[i]))
            return -1;
    for (int64_t i = 0; i < s->a.nodes; i++)
        wisp_send(ctx, s->nodes[i], M_NEXT, &s->nodes[(i + 1) % s->a.nodes], sizeof(wisp_addr));
    int64_t hops = s->a.nodes * s->a.laps;
    s->left = s->a.tokens;
    s->t0 = now_ns();
    for (int64_t k = 0; k < s->a.tokens; k++)
        send_i64(ctx, s->nodes[k * s->a.nodes / s->a.tokens], M_TOKEN, hops - 1);
    return 0;
}

static void ring_receive(struct wisp_ctx *ctx, void *st, const struct wisp_msg *m)
{
    struct ring_state *s = st;
    if (m->type != M_DONE || --s->left)
        return;
    double t = (double)(now_ns() - s->t0);
    double msgs = (double)(s->a.nodes * s->a.laps * s->a.tokens);
    for (int64_t i = 0; i < s->a.nodes; i++)
        wisp_send(ctx, s->nodes[i], M_STOP, NULL, 0);
    free(s->nodes);
    finish("value=%.0f unit=msgs/s messages=%.0f nodes=%lld tokens=%lld elapsed_s=%.4f",
           msgs * 1e9 / t, msgs, (long long)s->a.nodes, (long long)s->a.tokens, t / 1e9);
    wisp_stop(ctx, (struct wisp_exit){WISP_EXIT_NORMAL, 0});
}

static const struct wisp_actor_def ring_def = {
    .name = "ring", .state_size = sizeof(struct ring_state), .init = ring_init,
    .receive = ring_receive};

/* ---- c. fan-in -------------------------------------------------------------------------------- */

struct recv_state {
    int64_t count, total;
    wisp_addr driver;
};

static int recv_init(struct wisp_ctx *ctx, void *st, const void *arg, size_t len)
{
    struct recv_state *s = st;
    memcpy(&s->total, arg, sizeof s->total);
    memcpy(&s->driver, (const char *)arg + sizeof s->total, sizeof s->driver);
    return 0;
}

static void recv_receive(struct wisp_ctx *ctx, void *st, const struct wisp_msg *m)
{
    struct recv_state *s = st;
    if (m->type == M_MSG && ++s->count == s->total) {
        wisp_send(ctx, s->driver, M_DONE, NULL, 0);
        wisp_stop(ctx, (struct wisp_exit){WISP_EXIT_NORMAL, 0});
    }
}

static const struct wisp_actor_def recv_def = {
    .name = "fanin-recv", .state_size = sizeof(struct recv_state), .init = recv_init,
    .receive = recv_receive};

struct sender_state {
    wisp_addr to;
    int64_t left;
    int64_t full; /* times the receiver was full */
};

static _Atomic int64_t times_full;

static int sender_init(struct wisp_ctx *ctx, void *st, const void *arg, size_t len)
{
    struct sender_state *s = st;
    memcpy(&s->to, arg, sizeof s->to);
    memcpy(&s->left, (const char *)arg + sizeof s->to, sizeof s->left);
    return 0;
}

static void sender_receive(struct wisp_ctx *ctx, void *st, const struct wisp_msg *m)
{
    struct sender_state *s = st;
    /* Send a slice, then yield so the receiver (and other senders) get the worker too. When
     * the receiver is full, wait for its backlog to drain instead of polling. */
    for (int i = 0; i < 1000 && s->left > 0; i++) {
        int rc = wisp_try_send(ctx, s->to, M_MSG, &s->left, sizeof s->left);
        if (rc == WISP_EFULL) {
            atomic_fetch_add_explicit(&times_full, 1, memory_order_relaxed);
            wisp_notify_drained(ctx, s->to, M_CONT);
            return;
        }
        s->left--;
    }
    if (s->left > 0)
        wisp_send(ctx, wisp_self(ctx), M_CONT, NULL, 0);
    else
        wisp_stop(ctx, (struct wisp_exit){WISP_EXIT_NORMAL, 0});
}

static const struct wisp_actor_def sender_def = {
    .name = "fanin-send", .state_size = sizeof(struct sender_state), .init = sender_init,
    .receive = sender_receive};

struct fanin_state {
    int64_t senders, per;
    uint64_t t0;
    long rss0;
};

static int fanin_init(struct wisp_ctx *ctx, void *st, const void *arg, size_t len)
{
    struct fanin_state *s = st;
    memcpy(&s->senders, arg, sizeof s->senders);
    memcpy(&s->per, (const char *)arg + 8, sizeof s->per);
    s->rss0 = status_kb("VmRSS");
    char rarg[16];
    int64_t total = s->senders * s->per;
    wisp_addr self = wisp_self(ctx), r;
    memcpy(rarg, &total, 8);
    memcpy(rarg + 8, &self, 8);
    if (wisp_spawn(ctx, &recv_def, rarg, sizeof rarg, &r))
        return -1;
    s->t0 = now_ns();
    for (int64_t i = 0; i < s->senders; i++) {
        char sarg[16];
        memcpy(sarg, &r, 8);
        memcpy(sarg + 8, &s->per, 8);
        wisp_addr snd;
        if (wisp_spawn(ctx, &sender_def, sarg, sizeof sarg, &snd))
            return -1;
        wisp_send(ctx, snd, M_GO, NULL, 0);
    }
    return 0;
}

static void fanin_receive(struct wisp_ctx *ctx, void *st, const struct wisp_msg *m)
{
    struct fanin_state *s = st;
    double t = (double)(now_ns() - s->t0);
    double total = (double)(s->senders * s->per);
    finish("value=%.0f unit=msgs/s messages=%.0f senders=%lld elapsed_s=%.4f base_rss_kb=%ld "
           "peak_rss_kb=%ld receiver_full=%lld",
           total * 1e9 / t, total, (long long)s->senders, t / 1e9, s->rss0, status_kb("VmHWM"),
           (long long)atomic_load(&times_full));
    wisp_stop(ctx, (struct wisp_exit){WISP_EXIT_NORMAL, 0});
}

static const struct wisp_actor_def fanin_def = {
    .name = "fanin", .state_size = sizeof(struct fanin_state), .init = fanin_init,
    .receive = fanin_receive};

/* ---- d. spawn --------------------------------------------------------------------------------- */

static _Atomic int64_t started;

static int idle_init(struct wisp_ctx *ctx, void *st, const void *arg, size_t len)
{
    atomic_fetch_add_explicit(&started, 1, memory_order_relaxed);
    return 0;
}

static void idle_receive(struct wisp_ctx *ctx, void *st, const struct wisp_msg *m)
{
    if (m->type == M_STOP)
        wisp_stop(ctx, (struct wisp_exit){WISP_EXIT_NORMAL, 0});
}

static const struct wisp_actor_def idle_def = {
    .name = "idle", .init = idle_init, .receive = idle_receive};

struct spawner_state {
    int64_t n, spawned;
    wisp_addr *all;
};

static _Atomic(wisp_addr *) spawned_addrs;

static int spawner_init(struct wisp_ctx *ctx, void *st, const void *arg, size_t len)
{
    struct spawner_state *s = st;
    memcpy(&s->n, arg, sizeof s->n);
    s->all = malloc((size_t)s->n * sizeof *s->all);
    wisp_send(ctx, wisp_self(ctx), M_CONT, NULL, 0);
    return 0;
}

static void spawner_receive(struct wisp_ctx *ctx, void *st, const struct wisp_msg *m)
{
    struct spawner_state *s = st;
    if (m->type == M_STOP) {
        for (int64_t i = 0; i < s->n; i++)
            wisp_send(ctx, s->all[i], M_STOP, NULL, 0);
        free(s->all);
        wisp_stop(ctx, (struct wisp_exit){WISP_EXIT_NORMAL, 0});
        return;
    }
    /* spawn in slices so the new actors' inits run meanwhile (and other workers get some) */
    for (int i = 0; i < 10000 && s->spawned < s->n; i++, s->spawned++)
        if (wisp_spawn(ctx, &idle_def, NULL, 0, &s->all[s->spawned]))
            abort();
    if (s->spawned < s->n)
        wisp_send(ctx, wisp_self(ctx), M_CONT, NULL, 0);
    else
        atomic_store(&spawned_addrs, s->all);
}

static const struct wisp_actor_def spawner_def = {
    .name = "spawner", .state_size = sizeof(struct spawner_state), .init = spawner_init,
    .receive = spawner_receive};

static void sleep_ms(int ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static void run_spawn(struct wisp_runtime *rt, int64_t n)
{
    size_t base = wisp_runtime_actor_count(rt);
    long rss0 = status_kb("VmRSS");
    uint64_t t0 = now_ns();
    wisp_addr sp;
    if (wisp_rt_spawn(rt, &spawner_def, &n, sizeof n, &sp))
        abort();
    while (atomic_load(&started) < n)
        sleep_ms(1);
    uint64_t t1 = now_ns();
    long rss1 = status_kb("VmRSS");
    uint64_t t2 = now_ns();
    wisp_rt_send(rt, sp, M_STOP, NULL, 0);
    while (wisp_runtime_actor_count(rt) > base)
        sleep_ms(1);
    uint64_t t3 = now_ns();
    double ts = (double)(t1 - t0) / 1e9, te = (double)(t3 - t2) / 1e9;
    snprintf(result, sizeof result,
             "value=%.4f unit=s actors=%lld spawn_per_s=%.0f bytes_per_actor=%.0f exit_s=%.4f "
             "exit_per_s=%.0f rss_before_kb=%ld rss_spawned_kb=%ld rss_after_exit_kb=%ld",
             ts, (long long)n, n / ts, (rss1 - rss0) * 1024.0 / (double)n, te, n / te, rss0,
             rss1, status_kb("VmRSS"));
    atomic_store(&done, 1);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s pingpong|ring|ring100|fanin|fanin4|spawn [params] "
                        "[--workers N]\n", argv[0]);
        return 2;
    }
    const char *w = argv[1];
    unsigned workers = 2;
    int64_t p[3];
    int np = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--workers") && i + 1 < argc)
            workers = (unsigned)atoi(argv[++i]);
        else if (np < 3)
            p[np++] = atoll(argv[i]);
    }
#define P(i, d) (np > (i) ? p[i] : (d))
    struct wisp_runtime_opts o;
    wisp_runtime_opts_init(&o);
    o.workers = workers;
    if (!strcmp(w, "spawn"))
        o.mailbox_limit = 1000;
    struct wisp_runtime *rt;
    if (wisp_runtime_new(&o, &rt) < 0) {
        fprintf(stderr, "actor_bench: %s\n", wisp_last_error());
        return 1;
    }
    if (wisp_runtime_start(rt) < 0) {
        fprintf(stderr, "actor_bench: %s\n", wisp_last_error());
        return 1;
    }
    int rc = 0;
    if (!strcmp(w, "pingpong")) {
        int64_t n = P(0, 1000000);
        rc = wisp_rt_spawn(rt, &ping_def, &n, sizeof n, NULL);
    } else if (!strcmp(w, "ring") || !strcmp(w, "ring100")) {
        bool many = !strcmp(w, "ring100");
        struct ring_args a = {P(0, 1000), P(1, many ? 100 : 1000), P(2, many ? 100 : 1)};
        rc = wisp_rt_spawn(rt, &ring_def, &a, sizeof a, NULL);
    } else if (!strcmp(w, "fanin") || !strcmp(w, "fanin4")) {
        int64_t a[2] = {P(0, !strcmp(w, "fanin") ? 2 : 4), P(1, 2500000)};
        rc = wisp_rt_spawn(rt, &fanin_def, a, sizeof a, NULL);
    } else if (!strcmp(w, "spawn")) {
        run_spawn(rt, P(0, 1000000));
    } else {
        fprintf(stderr, "unknown workload %s\n", w);
        return 2;
    }
    if (rc) {
        fprintf(stderr, "actor_bench: spawn failed: %s\n", wisp_strerror(rc));
        return 1;
    }
    while (!atomic_load(&done))
        sleep_ms(1);
    printf("anchor=wisp workload=%s %s threads=%u\n", w, result, workers);
    fflush(stdout);
    wisp_runtime_free(rt);
    return 0;
}
