/* Actors on a real, threaded runtime: spawn, send, reply, stale addresses, owned payloads,
 * links and monitors across workers, the registry, graceful shutdown, idle CPU. Every wait is
 * bounded (wait_for gives up after 10 s and fails the test). */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <wisp/runtime.h>

#define MSG_PING 1
#define MSG_PONG 2
#define MSG_STOP 3
#define MSG_FAIL 4
#define MSG_WATCH 5
#define MSG_LINK 6
#define MSG_SPAWN_LINKED 7

static _Atomic int received, terminated, last_exit_kind, exits_seen, downs_seen;
static _Atomic int down_kind, released, inits;
static _Atomic uint64_t last_down_ref;

static void reset(void)
{
    atomic_store(&received, 0);
    atomic_store(&terminated, 0);
    atomic_store(&last_exit_kind, -1);
    atomic_store(&exits_seen, 0);
    atomic_store(&downs_seen, 0);
    atomic_store(&down_kind, -1);
    atomic_store(&released, 0);
    atomic_store(&inits, 0);
    atomic_store(&last_down_ref, 0);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Poll until *v reaches at least want, for at most 10 s. */
static bool wait_for(_Atomic int *v, int want)
{
    for (int i = 0; i < 10000; i++) {
        if (atomic_load(v) >= want)
            return true;
        sleep_ms(1);
    }
    return false;
}

static struct wisp_runtime *start(unsigned workers)
{
    struct wisp_runtime_opts o;
    wisp_runtime_opts_init(&o);
    o.workers = workers;
    o.shutdown_deadline_ms = 2000;
    struct wisp_runtime *rt;
    int rc = wisp_runtime_new(&o, &rt);
    if (rc < 0)
        fail_msg("wisp_runtime_new: %s", wisp_last_error());
    assert_int_equal(wisp_runtime_start(rt), 0);
    return rt;
}

/* ---- an echo actor: answers PING with PONG, counts what it gets, obeys STOP/FAIL ---------- */

struct echo_state {
    int count;
    bool trap;
    uint64_t watch_ref;
};

static int echo_init(struct wisp_ctx *ctx, void *st, const void *arg, size_t len)
{
    struct echo_state *s = st;
    if (len == sizeof(bool))
        memcpy(&s->trap, arg, len);
    wisp_trap_exits(ctx, s->trap);
    atomic_fetch_add(&inits, 1);
    return 0;
}

static void echo_receive(struct wisp_ctx *ctx, void *st, const struct wisp_msg *m)
{
    struct echo_state *s = st;
    s->count++;
    atomic_fetch_add(&received, 1);
    switch (m->type) {
    case MSG_PING:
        if (!wisp_addr_is_none(m->from))
            wisp_send(ctx, m->from, MSG_PONG, m->data, m->len);
        break;
    case MSG_STOP:
        wisp_stop(ctx, (struct wisp_exit){WISP_EXIT_NORMAL, 0});
        break;
    case MSG_FAIL:
        wisp_stop(ctx, (struct wisp_exit){WISP_EXIT_ERROR, 42});
        break;
    case MSG_WATCH: {
        wisp_addr target;
        memcpy(&target, m->data, sizeof target);
        uint64_t ref;
        assert_int_equal(wisp_monitor(ctx, target, &ref), 0);
        atomic_store(&last_down_ref, ref);
        /* behind our MONITOR in the target's mailbox, so it is seen first */
        wisp_send(ctx, target, MSG_FAIL, NULL, 0);
        break;
    }
    case MSG_LINK: {
        wisp_addr target;
        memcpy(&target, m->data, sizeof target);
        assert_int_equal(wisp_link(ctx, target), 0);
        break;
    }
    case WISP_MSG_EXIT: {
        const struct wisp_down *d = m->data;
        atomic_store(&last_exit_kind, (int)d->reason.kind);
        atomic_fetch_add(&exits_seen, 1);
        break;
    }
    case WISP_MSG_DOWN: {
        const struct wisp_down *d = m->data;
        assert_int_equal(d->monitor, atomic_load(&last_down_ref));
        atomic_store(&down_kind, (int)d->reason.kind);
        atomic_fetch_add(&downs_seen, 1);
        break;
    }
    }
}

static void echo_terminate(struct wisp_ctx *ctx, void *st, struct wisp_exit reason)
{
    atomic_store(&last_exit_kind, (int)reason.kind);
    atomic_fetch_add(&terminated, 1);
}

static const struct wisp_actor_def echo = {
    .name = "echo",
    .state_size = sizeof(struct echo_state),
    .init = echo_init,
    .receive = echo_receive,
    .terminate = echo_terminate,
};

static void test_spawn_send_stop(void **state)
{
    reset();
    struct wisp_runtime *rt = start(2);
    wisp_addr a;
    assert_int_equal(wisp_rt_spawn(rt, &echo, NULL, 0, &a), 0);
    assert_false(wisp_addr_is_none(a));
    for (int i = 0; i < 100; i++)
        assert_true(wisp_rt_send(rt, a, MSG_PING, "x", 1) >= 0);
    assert_true(wait_for(&received, 100));
    assert_int_equal(wisp_rt_send(rt, a, MSG_STOP, NULL, 0), 0);
    assert_true(wait_for(&terminated, 1));
    assert_int_equal(atomic_load(&last_exit_kind), WISP_EXIT_NORMAL);
    /* the address is dead now, and stays dead even once its slot is reused */
    for (int i = 0; i < 50 && wisp_rt_send(rt, a, MSG_PING, NULL, 0) != -ESRCH; i++)
        sleep_ms(1);
    assert_int_equal(wisp_rt_send(rt, a, MSG_PING, NULL, 0), -ESRCH);
    wisp_addr b;
    assert_int_equal(wisp_rt_spawn(rt, &echo, NULL, 0, &b), 0);
    assert_false(wisp_addr_eq(a, b));
    assert_int_equal(wisp_rt_send(rt, a, MSG_PING, NULL, 0), -ESRCH);
    assert_int_equal(wisp_rt_send(rt, b, MSG_PING, NULL, 0), 0);
    assert_int_equal(wisp_rt_send(rt, b, WISP_MSG_EXIT, NULL, 0), -EINVAL);
    assert_int_equal(wisp_rt_send(rt, WISP_ADDR_NONE, MSG_PING, NULL, 0), -ESRCH);
    assert_int_equal(wisp_rt_send(rt, (wisp_addr){0xFFFFFFFF00000001ull}, MSG_PING, NULL, 0),
                     -ESRCH);
    assert_int_equal(wisp_rt_send(rt, (wisp_addr){0x1FFFFFFFFull}, MSG_PING, NULL, 0), -ESRCH);
    wisp_runtime_stop(rt);
    assert_int_equal(wisp_runtime_wait(rt), 0);
    assert_int_equal(atomic_load(&terminated), 2);
    assert_int_equal(atomic_load(&last_exit_kind), WISP_EXIT_SHUTDOWN);
    assert_int_equal(wisp_rt_spawn(rt, &echo, NULL, 0, NULL), WISP_ECLOSED);
    wisp_runtime_free(rt);
}

/* ---- ping-pong between two actors on different workers --------------------------------- */

struct pinger_state {
    wisp_addr peer;
    int left;
};

static _Atomic int pings_done;

static int pinger_init(struct wisp_ctx *ctx, void *st, const void *arg, size_t len)
{
    struct pinger_state *s = st;
    memcpy(&s->peer, arg, sizeof s->peer);
    s->left = 10000;
    wisp_send(ctx, s->peer, MSG_PING, "p", 1);
    return 0;
}

static void pinger_receive(struct wisp_ctx *ctx, void *st, const struct wisp_msg *m)
{
    struct pinger_state *s = st;
    assert_int_equal(m->type, MSG_PONG);
    assert_true(wisp_addr_eq(m->from, s->peer));
    if (--s->left == 0) {
        atomic_store(&pings_done, 1);
        return;
    }
    wisp_send(ctx, s->peer, MSG_PING, "p", 1);
}

static const struct wisp_actor_def pinger = {
    .name = "pinger",
    .state_size = sizeof(struct pinger_state),
    .init = pinger_init,
    .receive = pinger_receive,
};

static void test_ping_pong_across_workers(void **state)
{
    reset();
    atomic_store(&pings_done, 0);
    struct wisp_runtime *rt = start(2);
    wisp_addr e;
    assert_int_equal(wisp_rt_spawn(rt, &echo, NULL, 0, &e), 0);
    assert_int_equal(wisp_rt_spawn(rt, &pinger, &e, sizeof e, NULL), 0);
    assert_true(wait_for(&pings_done, 1));
    assert_int_equal(atomic_load(&received), 10000);
    wisp_runtime_free(rt);
}

/* ---- owned payloads are released exactly once, whatever happens ---------------------------- */

static void count_release(void *data, size_t len, void *arg)
{
    assert_ptr_equal(arg, &released);
    free(data);
    atomic_fetch_add(&released, 1);
}

static void test_owned_payload_release(void **state)
{
    reset();
    struct wisp_runtime *rt = start(1);
    wisp_addr a;
    assert_int_equal(wisp_rt_spawn(rt, &echo, NULL, 0, &a), 0);
    for (int i = 0; i < 10; i++)
        assert_true(wisp_rt_send_owned(rt, a, MSG_PING, malloc(100), 100, count_release,
                                       &released) >= 0);
    assert_true(wait_for(&released, 10));
    assert_int_equal(wisp_rt_send(rt, a, MSG_STOP, NULL, 0), 0);
    assert_true(wait_for(&terminated, 1));
    /* to a dead actor: released before the call returns */
    for (int i = 0; i < 50 && wisp_rt_send(rt, a, MSG_PING, NULL, 0) != -ESRCH; i++)
        sleep_ms(1);
    assert_int_equal(wisp_rt_send_owned(rt, a, MSG_PING, malloc(10), 10, count_release, &released),
                     -ESRCH);
    assert_int_equal(atomic_load(&released), 11);
    assert_int_equal(wisp_rt_send_owned(rt, a, WISP_MSG_DOWN, malloc(10), 10, count_release,
                                        &released),
                     -EINVAL);
    assert_int_equal(atomic_load(&released), 12);
    wisp_runtime_free(rt);
}

/* ---- links, trapping, monitors -------------------------------------------------------------- */

/* The linking actor sends LINK and then fails, so its partner sees the link before the exit:
 * both come from the same sender, in order. */
static void test_link_propagates_abnormal_exit(void **state)
{
    reset();
    struct wisp_runtime *rt = start(2);
    wisp_addr a, b;
    assert_int_equal(wisp_rt_spawn(rt, &echo, NULL, 0, &a), 0);
    assert_int_equal(wisp_rt_spawn(rt, &echo, NULL, 0, &b), 0);
    assert_int_equal(wisp_rt_send(rt, b, MSG_LINK, &a, sizeof a), 0);
    assert_int_equal(wisp_rt_send(rt, b, MSG_FAIL, NULL, 0), 0);
    assert_true(wait_for(&terminated, 2));
    assert_int_equal(atomic_load(&last_exit_kind), WISP_EXIT_ERROR);
    assert_int_equal(wisp_rt_send(rt, a, MSG_PING, NULL, 0), -ESRCH);
    wisp_runtime_free(rt);
}

static void test_trapped_exit(void **state)
{
    reset();
    struct wisp_runtime *rt = start(2);
    wisp_addr a, b, c;
    bool trap = true;
    assert_int_equal(wisp_rt_spawn(rt, &echo, &trap, sizeof trap, &a), 0);
    assert_int_equal(wisp_rt_spawn(rt, &echo, NULL, 0, &b), 0);
    assert_int_equal(wisp_rt_spawn(rt, &echo, NULL, 0, &c), 0);
    /* b links to a (trapping) and c (not), then fails */
    assert_int_equal(wisp_rt_send(rt, b, MSG_LINK, &a, sizeof a), 0);
    assert_int_equal(wisp_rt_send(rt, b, MSG_LINK, &c, sizeof c), 0);
    assert_int_equal(wisp_rt_send(rt, b, MSG_FAIL, NULL, 0), 0);
    assert_true(wait_for(&exits_seen, 1));   /* a got the exit as a message... */
    assert_true(wait_for(&terminated, 2));   /* ...b and c are gone */
    assert_int_equal(atomic_load(&last_exit_kind), WISP_EXIT_ERROR);
    assert_int_equal(wisp_rt_send(rt, c, MSG_PING, NULL, 0), -ESRCH);
    assert_true(wisp_rt_send(rt, a, MSG_PING, NULL, 0) >= 0); /* a lives */

    /* linking to a dead actor: a trapping linker gets EXIT with NOPROC */
    int ex = atomic_load(&exits_seen);
    assert_int_equal(wisp_rt_send(rt, a, MSG_LINK, &b, sizeof b), 0);
    assert_true(wait_for(&exits_seen, ex + 1));
    assert_int_equal(atomic_load(&last_exit_kind), WISP_EXIT_NOPROC);
    wisp_runtime_free(rt);
}

/* The watcher monitors, then tells the target to fail: MONITOR is ahead of FAIL. */
static void test_monitor_down(void **state)
{
    reset();
    struct wisp_runtime *rt = start(2);
    wisp_addr w, t;
    assert_int_equal(wisp_rt_spawn(rt, &echo, NULL, 0, &w), 0);
    assert_int_equal(wisp_rt_spawn(rt, &echo, NULL, 0, &t), 0);
    assert_int_equal(wisp_rt_send(rt, w, MSG_WATCH, &t, sizeof t), 0);
    assert_true(wait_for(&downs_seen, 1));
    assert_int_equal(atomic_load(&down_kind), WISP_EXIT_ERROR);
    /* monitoring an actor that is gone: DOWN with NOPROC at once */
    assert_int_equal(wisp_rt_send(rt, w, MSG_WATCH, &t, sizeof t), 0);
    assert_true(wait_for(&downs_seen, 2));
    assert_int_equal(atomic_load(&down_kind), WISP_EXIT_NOPROC);
    /* the watcher is unaffected */
    assert_true(wisp_rt_send(rt, w, MSG_PING, NULL, 0) >= 0);
    assert_int_equal(atomic_load(&terminated), 1);
    wisp_runtime_free(rt);
}

/* ---- registry --------------------------------------------------------------------------------- */

static void test_registry(void **state)
{
    reset();
    struct wisp_runtime *rt = start(1);
    wisp_addr a, b, found;
    assert_int_equal(wisp_rt_spawn(rt, &echo, NULL, 0, &a), 0);
    assert_int_equal(wisp_rt_spawn(rt, &echo, NULL, 0, &b), 0);
    assert_int_equal(wisp_rt_register(rt, "lobby", a), 0);
    assert_int_equal(wisp_rt_register(rt, "lobby", b), -EEXIST);
    assert_int_equal(wisp_rt_register(rt, "", b), -EINVAL);
    char longname[WISP_NAME_MAX + 2];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    assert_int_equal(wisp_rt_register(rt, longname, b), -EINVAL);
    longname[WISP_NAME_MAX] = 0;
    assert_int_equal(wisp_rt_register(rt, longname, b), 0);
    assert_int_equal(wisp_rt_whereis(rt, "lobby", &found), 0);
    assert_true(wisp_addr_eq(found, a));
    assert_int_equal(wisp_rt_whereis(rt, "nobody", &found), -ENOENT);
    for (int i = 0; i < 200; i++) { /* grow the table, with tombstones */
        char n[16];
        snprintf(n, sizeof n, "n%d", i);
        assert_int_equal(wisp_rt_register(rt, n, b), 0);
        if (i % 2)
            assert_int_equal(wisp_rt_unregister(rt, n), 0);
    }
    assert_int_equal(wisp_rt_whereis(rt, "n100", &found), 0);
    assert_int_equal(wisp_rt_whereis(rt, "n101", &found), -ENOENT);
    /* names go away with their actor */
    assert_int_equal(wisp_rt_send(rt, a, MSG_STOP, NULL, 0), 0);
    assert_true(wait_for(&terminated, 1));
    for (int i = 0; i < 1000 && wisp_rt_whereis(rt, "lobby", &found) == 0; i++)
        sleep_ms(1);
    assert_int_equal(wisp_rt_whereis(rt, "lobby", &found), -ENOENT);
    assert_int_equal(wisp_rt_register(rt, "lobby", a), -ESRCH);
    assert_int_equal(wisp_rt_register(rt, "lobby", b), 0);
    assert_int_equal(wisp_rt_unregister(rt, "lobby"), 0);
    assert_int_equal(wisp_rt_unregister(rt, "lobby"), -ENOENT);
    wisp_runtime_free(rt);
}

/* ---- races: a name registered while its actor dies never outlives it ----------------------- */

static void test_register_races_with_death(void **state)
{
    reset();
    struct wisp_runtime *rt = start(2);
    enum { N = 2000 };
    int registered = 0;
    for (int i = 0; i < N; i++) {
        wisp_addr a;
        assert_int_equal(wisp_rt_spawn(rt, &echo, NULL, 0, &a), 0);
        assert_int_equal(wisp_rt_send(rt, a, MSG_STOP, NULL, 0), 0);
        char name[32];
        snprintf(name, sizeof name, "racer-%d", i);
        int rc = wisp_rt_register(rt, name, a);
        assert_true(rc == 0 || rc == -ESRCH);
        registered += rc == 0;
    }
    assert_true(wait_for(&terminated, N));
    /* every name registered in time must be gone with its actor, none left behind */
    int stale = 0;
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "racer-%d", i);
        wisp_addr found;
        for (int tries = 0; tries < 1000 && wisp_rt_whereis(rt, name, &found) == 0; tries++)
            sleep_ms(1);
        stale += wisp_rt_whereis(rt, name, &found) == 0;
    }
    assert_int_equal(stale, 0);
    print_message("  (%d of %d registrations beat the death)\n", registered, N);
    wisp_runtime_free(rt);
}

/* ---- a spawn racing with stop is still stopped: the runtime does not hang ----------------- */

struct spawner_arg {
    struct wisp_runtime *rt;
    _Atomic int spawned;
};

static void *spawn_until_closed(void *p)
{
    struct spawner_arg *sa = p;
    for (;;) {
        int rc = wisp_rt_spawn(sa->rt, &echo, NULL, 0, NULL);
        if (rc == WISP_ECLOSED)
            return NULL;
        assert_int_equal(rc, 0);
        atomic_fetch_add(&sa->spawned, 1);
    }
}

static void test_spawn_races_with_stop(void **state)
{
    reset();
    struct wisp_runtime_opts o;
    wisp_runtime_opts_init(&o);
    o.workers = 2;
    o.shutdown_deadline_ms = 0; /* the harshest case: the kill pass comes at once */
    struct wisp_runtime *rt;
    assert_int_equal(wisp_runtime_new(&o, &rt), 0);
    assert_int_equal(wisp_runtime_start(rt), 0);
    struct spawner_arg sa = {rt, 0};
    pthread_t t;
    pthread_create(&t, NULL, spawn_until_closed, &sa);
    while (atomic_load(&sa.spawned) < 1000)
        sleep_ms(1);
    wisp_runtime_stop(rt);
    pthread_join(t, NULL);
    assert_int_equal(wisp_runtime_wait(rt), 0); /* returns: every actor was stopped */
    assert_int_equal(wisp_runtime_actor_count(rt), 0);
    assert_int_equal(atomic_load(&inits), atomic_load(&terminated));
    wisp_runtime_free(rt);
}

/* ---- races: senders hammering actors that exit under them ------------------------------------ */

struct hammer_arg {
    struct wisp_runtime *rt;
    wisp_addr *targets;
    int ntargets;
    _Atomic int *ok, *gone;
};

static void *hammer(void *p)
{
    struct hammer_arg *h = p;
    for (int round = 0; round < 2000; round++) {
        wisp_addr to = h->targets[round % h->ntargets];
        int rc = wisp_rt_send_owned(h->rt, to, MSG_PING, malloc(8), 8, count_release, &released);
        if (rc >= 0)
            atomic_fetch_add(h->ok, 1);
        else if (rc == -ESRCH)
            atomic_fetch_add(h->gone, 1);
        else
            fail_msg("unexpected send result %d", rc);
    }
    return NULL;
}

static void test_sends_race_with_exits(void **state)
{
    reset();
    struct wisp_runtime *rt = start(2);
    enum { N = 64, THREADS = 3 };
    wisp_addr t[N];
    for (int i = 0; i < N; i++)
        assert_int_equal(wisp_rt_spawn(rt, &echo, NULL, 0, &t[i]), 0);
    _Atomic int ok = 0, gone = 0;
    struct hammer_arg h = {rt, t, N, &ok, &gone};
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, hammer, &h);
    for (int i = 0; i < N; i++) {
        wisp_rt_send(rt, t[i], i % 2 ? MSG_STOP : MSG_FAIL, NULL, 0);
        if (i % 8 == 0)
            wisp_rt_kill(rt, t[(i + 3) % N]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&ok) + atomic_load(&gone), THREADS * 2000);
    wisp_runtime_free(rt);
    /* every payload was released exactly once: delivered, refused, or drained at death */
    assert_int_equal(atomic_load(&released), THREADS * 2000);
}

/* ---- graceful shutdown with messages in flight --------------------------------------------- */

static void test_shutdown_with_messages_in_flight(void **state)
{
    reset();
    struct wisp_runtime *rt = start(2);
    enum { N = 200 };
    for (int i = 0; i < N; i++) {
        wisp_addr a;
        assert_int_equal(wisp_rt_spawn(rt, &echo, NULL, 0, &a), 0);
        for (int j = 0; j < 20; j++)
            wisp_rt_send_owned(rt, a, MSG_PING, malloc(16), 16, count_release, &released);
    }
    wisp_runtime_stop(rt);
    wisp_runtime_stop(rt); /* idempotent */
    assert_int_equal(wisp_runtime_wait(rt), 0);
    assert_int_equal(atomic_load(&terminated), N);
    assert_int_equal(atomic_load(&last_exit_kind), WISP_EXIT_SHUTDOWN);
    assert_int_equal(wisp_runtime_actor_count(rt), 0);
    wisp_runtime_free(rt);
    assert_int_equal(atomic_load(&released), N * 20);
}

/* ---- an actor that is slow to stop is killed at the deadline ----------------------------- */

static void slow_receive(struct wisp_ctx *ctx, void *st, const struct wisp_msg *m)
{
    sleep_ms(2);
}

static const struct wisp_actor_def slow = {
    .name = "slow",
    .receive = slow_receive,
    .terminate = echo_terminate,
};

static void test_shutdown_deadline_kills(void **state)
{
    reset();
    struct wisp_runtime_opts o;
    wisp_runtime_opts_init(&o);
    o.workers = 1;
    o.shutdown_deadline_ms = 100;
    struct wisp_runtime *rt;
    assert_int_equal(wisp_runtime_new(&o, &rt), 0);
    wisp_addr a;
    assert_int_equal(wisp_rt_spawn(rt, &slow, NULL, 0, &a), 0);
    for (int i = 0; i < 2000; i++) /* 4 s of work queued before the SHUTDOWN message */
        wisp_rt_send(rt, a, MSG_PING, NULL, 0);
    assert_int_equal(wisp_runtime_start(rt), 0);
    sleep_ms(10);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    wisp_runtime_stop(rt);
    wisp_runtime_wait(rt);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(atomic_load(&terminated), 1);
    assert_int_equal(atomic_load(&last_exit_kind), WISP_EXIT_KILLED);
    /* generous bound: killed near the 100 ms deadline, far from the 4 s of queued work */
    assert_true(t1.tv_sec - t0.tv_sec < 3);
    wisp_runtime_free(rt);
}

/* ---- an idle runtime sleeps ---------------------------------------------------------------- */

static void test_idle_runtime_uses_no_cpu(void **state)
{
    reset();
    struct wisp_runtime *rt = start(2);
    wisp_addr a;
    assert_int_equal(wisp_rt_spawn(rt, &echo, NULL, 0, &a), 0);
    assert_true(wait_for(&inits, 1));
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    sleep_ms(500);
    getrusage(RUSAGE_SELF, &r1);
    long us = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) * 1000000L +
              (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) +
              (r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1000000L +
              (r1.ru_stime.tv_usec - r0.ru_stime.tv_usec);
    /* a spinning worker would burn ~500,000 us here; a sleeping one next to nothing */
    assert_true(us < 50000);
    wisp_runtime_free(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spawn_send_stop),
        cmocka_unit_test(test_ping_pong_across_workers),
        cmocka_unit_test(test_owned_payload_release),
        cmocka_unit_test(test_link_propagates_abnormal_exit),
        cmocka_unit_test(test_trapped_exit),
        cmocka_unit_test(test_monitor_down),
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_register_races_with_death),
        cmocka_unit_test(test_spawn_races_with_stop),
        cmocka_unit_test(test_sends_race_with_exits),
        cmocka_unit_test(test_shutdown_with_messages_in_flight),
        cmocka_unit_test(test_shutdown_deadline_kills),
        cmocka_unit_test(test_idle_runtime_uses_no_cpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
