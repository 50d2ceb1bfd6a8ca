/* The runtime's life: options, the io_uring check, start, run, graceful stop, teardown.
 *
 * Graceful stop: wisp_runtime_stop() only flips an atomic and writes to eventfds (so a signal
 * handler may call it). Worker 0 then sends every live actor a SHUTDOWN system message; each
 * one's terminate runs with reason SHUTDOWN as it gets there. Actors still alive at the
 * deadline are killed (reason KILLED, their backlog released unprocessed). When no actor is
 * left, every worker leaves its loop and the threads are joined.
 */
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "net.h"
#include "pubsub.h"
#include "server_internal.h"

static _Thread_local char last_error[256];

const char *wisp_last_error(void)
{
    return last_error[0] ? last_error : "no error";
}

void wispi_set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
}

uint64_t wispi_now_ms(const struct wisp_runtime *rt)
{
    if (rt->opts.deterministic)
        return rt->virtual_now_ms;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t wisp_runtime_now_ms(const struct wisp_runtime *rt)
{
    return wispi_now_ms(rt);
}

int wisp_runtime_opts_init(struct wisp_runtime_opts *o)
{
    if (!o)
        return -EINVAL;
    memset(o, 0, sizeof *o);
    o->mailbox_limit = 10000;
    o->shutdown_deadline_ms = 5000;
    o->ring_entries = 256;
    o->recv_buffers = 512;
    o->recv_buffer_size = 16384;
    return 0;
}

static unsigned cpus_available(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* Explain why io_uring cannot be used here, in a sentence a user can act on. */
static void explain_uring_failure(int rc)
{
    int disabled = -1;
    FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
    if (f) {
        if (fscanf(f, "%d", &disabled) != 1)
            disabled = -1;
        fclose(f);
    }
    struct rlimit rl = {0};
    getrlimit(RLIMIT_MEMLOCK, &rl);
    switch (-rc) {
    case ENOSYS:
        wispi_set_error("io_uring is not available: the kernel lacks it or a seccomp filter "
                        "blocks io_uring_setup (wisp needs Linux 6.1 or later)");
        break;
    case EPERM:
        if (disabled == 2)
            wispi_set_error("io_uring is disabled by sysctl kernel.io_uring_disabled=2; set it "
                            "to 0 to run wisp");
        else if (disabled == 1)
            wispi_set_error("io_uring is restricted by sysctl kernel.io_uring_disabled=1 to "
                            "the group in kernel.io_uring_group; run wisp as a member of it");
        else
            wispi_set_error("io_uring_setup was refused (EPERM): a seccomp or container policy "
                            "blocks io_uring");
        break;
    case ENOMEM:
        wispi_set_error("io_uring could not lock memory for its rings (RLIMIT_MEMLOCK is %llu "
                        "bytes); raise it with `ulimit -l` or lower ring_entries",
                        (unsigned long long)rl.rlim_cur);
        break;
    case EINVAL:
        wispi_set_error("io_uring refused SINGLE_ISSUER/DEFER_TASKRUN: the kernel is too old "
                        "(wisp needs Linux 6.1 or later)");
        break;
    default:
        wispi_set_error("io_uring_setup failed: %s", strerror(-rc));
    }
}

/* Create and drop a ring with the flags the workers will use. */
static int check_uring(const struct wisp_runtime_opts *o)
{
    struct io_uring ring;
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE |
              IORING_SETUP_SUBMIT_ALL;
    p.cq_entries = o->ring_entries * 16;
    int rc = io_uring_queue_init_params(o->ring_entries, &ring, &p);
    if (rc < 0) {
        explain_uring_failure(rc);
        return rc;
    }
    io_uring_queue_exit(&ring);
    return 0;
}

static void install_signals(struct wisp_runtime *rt);

int wisp_runtime_new(const struct wisp_runtime_opts *opts, struct wisp_runtime **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    struct wisp_runtime_opts o;
    if (opts)
        o = *opts;
    else
        wisp_runtime_opts_init(&o);
    if (!o.mailbox_limit)
        o.mailbox_limit = 10000;
    if (!o.ring_entries)
        o.ring_entries = 256;
    if (o.deterministic)
        o.workers = 1;
    else if (!o.workers)
        o.workers = cpus_available();
    if (o.workers > 1024) {
        wispi_set_error("too many workers (%u; at most 1024)", o.workers);
        return -EINVAL;
    }
    if (!o.deterministic) {
        int rc = check_uring(&o);
        if (rc < 0)
            return rc;
    }
    struct wisp_runtime *rt = calloc(1, sizeof *rt);
    if (!rt) {
        wispi_set_error("out of memory");
        return -ENOMEM;
    }
    rt->opts = o;
    rt->nworkers = o.workers;
    pthread_mutex_init(&rt->slot_lock, NULL);
    pthread_mutex_init(&rt->batch_lock, NULL);
    wispi_registry_init(&rt->registry);
    atomic_init(&rt->next_ref, 1);
    rt->workers = calloc(o.workers, sizeof *rt->workers);
    if (!rt->workers || wispi_pubsub_new(rt) < 0) {
        wisp_runtime_free(rt);
        wispi_set_error("out of memory");
        return -ENOMEM;
    }
    for (unsigned i = 0; i < o.workers; i++) {
        int rc = wispi_worker_init(&rt->workers[i], rt, i);
        if (rc < 0) {
            wispi_set_error("worker %u: %s", i, strerror(-rc));
            wisp_runtime_free(rt);
            return rc;
        }
    }
    *out = rt;
    /* Now, not in wisp_runtime_run(): a signal between here and run must stop gracefully
     * rather than kill the process. */
    if (rt->opts.handle_signals)
        install_signals(rt);
    return 0;
}

/* ---- starting ------------------------------------------------------------------------------- */

struct start_arg {
    struct wispi_worker *w;
    sem_t ready; /* the worker's ring is set up (or failed): rc says which */
    sem_t go;    /* the starter's answer: run, or leave because another worker failed */
    _Atomic bool abort;
    int rc;
};

/* The ring is created on the worker's own thread: SINGLE_ISSUER ties it to its creator. No
 * worker runs an actor until every ring exists, so a partial failure leaves no actor stranded
 * on a worker that never started. */
static void *worker_thread(void *p)
{
    struct start_arg *sa = p;
    struct wispi_worker *w = sa->w;
    sa->rc = wispi_worker_ring_setup(w);
    sem_post(&sa->ready);
    while (sem_wait(&sa->go) && errno == EINTR)
        ;
    /* relaxed: the semaphore orders the starter's store before our load */
    bool leave = atomic_load_explicit(&sa->abort, memory_order_relaxed);
    sem_post(&sa->ready); /* from here on sa belongs to the starter, which frees it */
    if (leave)
        return NULL;
    return wispi_worker_main(w);
}

int wisp_runtime_start(struct wisp_runtime *rt)
{
    if (!rt || rt->opts.deterministic)
        return -EINVAL;
    bool expected = false;
    if (!atomic_compare_exchange_strong(&rt->started, &expected, true))
        return -EALREADY;
    struct start_arg *args = calloc(rt->nworkers, sizeof *args);
    if (!args) {
        atomic_store(&rt->started, false);
        return -ENOMEM;
    }
    int rc = 0;
    unsigned started = 0, inited = 0;
    for (unsigned i = 0; i < rt->nworkers; i++) {
        args[i].w = &rt->workers[i];
        sem_init(&args[i].ready, 0, 0);
        sem_init(&args[i].go, 0, 0);
        inited++;
        int e = pthread_create(&rt->workers[i].thread, NULL, worker_thread, &args[i]);
        if (e) {
            wispi_set_error("cannot start worker thread %u: %s", i, strerror(e));
            rc = -e;
            break;
        }
        started++;
    }
    for (unsigned i = 0; i < started; i++) {
        while (sem_wait(&args[i].ready) && errno == EINTR)
            ;
        if (args[i].rc < 0 && !rc) {
            explain_uring_failure(args[i].rc);
            rc = args[i].rc;
        }
    }
    /* All or nothing: either every worker runs, or none does and the runtime stays as it was
     * (unstarted; its actors are freed by wisp_runtime_free). */
    for (unsigned i = 0; i < started; i++) {
        atomic_store_explicit(&args[i].abort, rc < 0, memory_order_relaxed);
        sem_post(&args[i].go);
    }
    for (unsigned i = 0; i < started; i++) {
        while (sem_wait(&args[i].ready) && errno == EINTR)
            ;
        if (rc < 0) {
            pthread_join(rt->workers[i].thread, NULL);
            wispi_worker_ring_teardown(&rt->workers[i]);
        } else {
            rt->workers[i].started = true;
        }
    }
    for (unsigned i = 0; i < inited; i++) {
        sem_destroy(&args[i].ready);
        sem_destroy(&args[i].go);
    }
    free(args);
    if (rc < 0)
        atomic_store(&rt->started, false);
    return rc;
}

/* ---- stopping ------------------------------------------------------------------------------- */

static _Atomic(struct wisp_runtime *) signal_rt;

static void on_signal(int sig)
{
    (void)sig;
    struct wisp_runtime *rt = atomic_load_explicit(&signal_rt, memory_order_relaxed);
    if (rt)
        wisp_runtime_stop(rt);
}

static void install_signals(struct wisp_runtime *rt)
{
    atomic_store(&signal_rt, rt);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void wisp_runtime_stop(struct wisp_runtime *rt)
{
    if (!rt)
        return;
    int expected = 0;
    /* seq_cst: sleeping workers re-check stop_state after announcing they sleep. */
    if (!atomic_compare_exchange_strong(&rt->stop_state, &expected, 1))
        return;
    for (unsigned i = 0; i < rt->nworkers; i++) {
        struct wispi_worker *w = &rt->workers[i];
        if (w->wake_fd >= 0) {
            uint64_t one = 1;
            ssize_t n = write(w->wake_fd, &one, sizeof one);
            (void)n;
        }
    }
}

static void send_shutdown(struct wispi_actor *a, void *arg)
{
    (void)arg;
    struct wispi_msg *m = wispi_msg_new_sys(SYS_SHUTDOWN, WISP_ADDR_NONE, 0);
    if (!m)
        return;
    /* for_each's reference is released after us; delivery consumes one of its own. */
    if (wispi_actor_acquire(a->rt, a->addr))
        wispi_deliver(a, m, m, 1);
    else
        wispi_msg_free(m);
}

static void send_kill(struct wispi_actor *a, void *arg)
{
    (void)arg;
    wisp_rt_kill(a->rt, a->addr);
}

bool wispi_shutdown_step(struct wispi_worker *w)
{
    struct wisp_runtime *rt = w->rt;
    int st = atomic_load_explicit(&rt->stop_state, memory_order_acquire);
    if (!st)
        return false;
    if (w->index == 0) {
        uint64_t now = wispi_now_ms(rt);
        if (st == 1) {
            atomic_store(&rt->stop_state, 2);
            rt->stop_deadline_ms = now + rt->opts.shutdown_deadline_ms;
            wispi_actor_for_each(rt, send_shutdown, NULL);
        } else if (st == 2 && now >= rt->stop_deadline_ms) {
            atomic_store(&rt->stop_state, 3);
            rt->stop_deadline_ms = now + 50;
            wispi_actor_for_each(rt, send_kill, NULL);
        } else if (st == 3 && now >= rt->stop_deadline_ms &&
                   atomic_load_explicit(&rt->live, memory_order_relaxed)) {
            /* Someone is still alive: an actor spawned during the first pass, or one whose
             * kill message could not be allocated. Look again every 50 ms. */
            rt->stop_deadline_ms = now + 50;
            wispi_actor_for_each(rt, send_kill, NULL);
        }
    }
    /* acquire: pairs with the release decrement in die(), so every terminate has finished. */
    if (atomic_load_explicit(&rt->live, memory_order_acquire) != 0)
        return false;
    if (atomic_load_explicit(&rt->stop_state, memory_order_relaxed) < 2)
        return false; /* worker 0 has not broadcast yet: there may be spawns in flight */
    for (unsigned i = 0; i < rt->nworkers; i++)
        if (&rt->workers[i] != w)
            wispi_worker_wake(&rt->workers[i]);
    return true;
}

int wisp_runtime_wait(struct wisp_runtime *rt)
{
    if (!rt)
        return -EINVAL;
    for (unsigned i = 0; i < rt->nworkers; i++) {
        if (rt->workers[i].started) {
            pthread_join(rt->workers[i].thread, NULL);
            rt->workers[i].started = false;
        }
    }
    return 0;
}

int wisp_runtime_run(struct wisp_runtime *rt)
{
    if (!rt)
        return -EINVAL;
    if (rt->opts.deterministic)
        return wispi_worker_run_deterministic(&rt->workers[0]);
    if (!atomic_load(&rt->started)) {
        int rc = wisp_runtime_start(rt);
        if (rc < 0)
            return rc;
    }
    return wisp_runtime_wait(rt);
}

void wisp_runtime_free(struct wisp_runtime *rt)
{
    if (!rt)
        return;
    if (atomic_load(&rt->started)) {
        wisp_runtime_stop(rt);
        wisp_runtime_wait(rt);
    } else if (rt->opts.deterministic && wisp_runtime_actor_count(rt)) {
        /* Give live actors their terminate, as a threaded runtime's stop would. */
        wisp_runtime_stop(rt);
        wispi_worker_run_deterministic(&rt->workers[0]);
    }
    struct wisp_runtime *expect = rt;
    atomic_compare_exchange_strong(&signal_rt, &expect, NULL);
    /* acquire: pairs with each resolver thread's release decrement after its last use */
    while (atomic_load_explicit(&rt->resolvers, memory_order_acquire))
        usleep(1000);
    /* Rings first, so the kernel touches no buffer of ours; then the sockets, which hold
     * references on their actors; then the actors, whose queued timer messages refer to
     * timers the workers free. */
    for (unsigned i = 0; rt->workers && i < rt->nworkers; i++) {
        wispi_worker_ring_teardown(&rt->workers[i]);
        wispi_net_destroy(&rt->workers[i]);
    }
    wispi_actor_table_destroy(rt);
    wispi_pubsub_destroy(rt); /* after the sockets and actors, whose frames refer to topics */
    for (unsigned i = 0; rt->workers && i < rt->nworkers; i++)
        wispi_worker_destroy(&rt->workers[i]);
    free(rt->workers);
    wispi_msg_batches_destroy(rt);
    wispi_registry_destroy(&rt->registry);
    pthread_mutex_destroy(&rt->slot_lock);
    pthread_mutex_destroy(&rt->batch_lock);
    free(rt);
}

unsigned wisp_runtime_workers(const struct wisp_runtime *rt)
{
    return rt->nworkers;
}

size_t wisp_runtime_actor_count(const struct wisp_runtime *rt)
{
    return atomic_load_explicit(&rt->live, memory_order_relaxed);
}

static void count_mailbox(struct wispi_actor *a, void *arg)
{
    struct wisp_runtime_stats *st = arg;
    /* relaxed: a snapshot for monitoring */
    uint64_t n = atomic_load_explicit(&a->pending, memory_order_relaxed);
    st->mailbox_messages += n;
    if (n > st->mailbox_max)
        st->mailbox_max = n;
}

int wisp_runtime_stats(struct wisp_runtime *rt, struct wisp_runtime_stats *out)
{
    if (!rt || !out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    out->actors = atomic_load_explicit(&rt->live, memory_order_relaxed); /* relaxed: a count */
    wispi_actor_for_each(rt, count_mailbox, out);
    for (unsigned i = 0; i < rt->nworkers; i++) {
        struct wispi_worker *w = &rt->workers[i];
        /* The kernel bumps the overflow count; we only read it (relaxed: a statistic). The
         * ring pointer was set before the workers started (ordered by the start handshake). */
        if (w->ring && w->ring->cq.koverflow)
            out->ring_overflows += __atomic_load_n(w->ring->cq.koverflow, __ATOMIC_RELAXED);
        out->recv_buffer_waits +=
            atomic_load_explicit(&w->recv_buffer_waits, memory_order_relaxed);
    }
    wispi_pubsub_stats(rt, &out->published, &out->topics);
    return 0;
}
