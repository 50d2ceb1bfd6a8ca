/* Worker threads: run queues, the loop, sleeping in the ring wait, wake-ups, work sharing.
 *
 * Each worker owns an io_uring created on its own thread (SINGLE_ISSUER | DEFER_TASKRUN).
 * Idle workers block in io_uring_submit_and_wait_timeout() with the nearest timer as the
 * timeout, so an idle runtime uses no CPU. A thread that makes an actor runnable on a sleeping
 * worker wakes it once: with IORING_OP_MSG_RING from another worker's ring, or with an eventfd
 * write (a read is always armed on the ring) from threads that have no ring.
 *
 * Completions are copied out of the CQ and the CQ is advanced before any of them is acted on;
 * no actor code runs while the CQ is being read.
 */
#include <errno.h>
#include <liburing.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "net.h"

/* user_data tags of the worker's own operations. */
enum {
    UD_WAKE = 1,        /* a MSG_RING wake from another worker (arrives on the target) */
    UD_EVENTFD = 2,     /* the armed read of wake_fd */
    UD_MSG_RING_TX = 3, /* our MSG_RING submission failed (success CQEs are skipped) */
};

/* Actors run per loop iteration before the worker looks at timers, its remote queue and the
 * ring again: bounds how long a busy worker can ignore the outside world. */
#define TURNS_PER_PASS 128u
#define CQE_BATCH 64

static _Thread_local struct wispi_worker *tls_worker;

struct wispi_worker *wispi_current_worker(void)
{
    return tls_worker;
}

static void local_push(struct wispi_worker *w, struct wispi_actor *a)
{
    a->local_next = NULL;
    if (w->local_tail)
        w->local_tail->local_next = a;
    else
        w->local_head = a;
    w->local_tail = a;
    w->local_len++;
}

static struct wispi_actor *local_pop(struct wispi_worker *w)
{
    struct wispi_actor *a = w->local_head;
    if (!a)
        return NULL;
    w->local_head = a->local_next;
    if (!w->local_head)
        w->local_tail = NULL;
    w->local_len--;
    return a;
}

/* Deterministic mode: take the k-th queued actor. */
static struct wispi_actor *local_take(struct wispi_worker *w, uint32_t k)
{
    struct wispi_actor *prev = NULL, *a = w->local_head;
    while (k--) {
        prev = a;
        a = a->local_next;
    }
    if (prev)
        prev->local_next = a->local_next;
    else
        w->local_head = a->local_next;
    if (w->local_tail == a)
        w->local_tail = prev;
    w->local_len--;
    return a;
}

static struct io_uring_sqe *get_sqe(struct wispi_worker *w)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(w->ring);
    if (!sqe) {
        /* SQ full: hand what is queued to the kernel, then there is room. */
        io_uring_submit(w->ring);
        sqe = io_uring_get_sqe(w->ring);
    }
    return sqe;
}

static void eventfd_wake(struct wispi_worker *w)
{
    uint64_t one = 1;
    /* write(2) is async-signal-safe, which wisp_runtime_stop() relies on. EAGAIN means the
     * counter is saturated: the worker is being woken anyway. */
    ssize_t n = write(w->wake_fd, &one, sizeof one);
    (void)n;
}

static void send_wake(struct wispi_worker *target)
{
    if (!target->ring)
        return; /* deterministic mode: nobody sleeps */
    struct wispi_worker *me = tls_worker;
    if (me && me->ring && me->rt == target->rt) {
        struct io_uring_sqe *sqe = get_sqe(me);
        if (sqe) {
            io_uring_prep_msg_ring(sqe, target->ring->ring_fd, 0, UD_WAKE, 0);
            sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
            io_uring_sqe_set_data64(sqe, UD_MSG_RING_TX | (uint64_t)target->index << 8);
            /* Submit now: a wake that waits for our next loop iteration is a late wake. */
            io_uring_submit(me->ring);
            return;
        }
    }
    eventfd_wake(target);
}

void wispi_worker_wake(struct wispi_worker *w)
{
    /* seq_cst: the Dekker pair of the worker's store of 1 before its last queue check; see
     * wispi_runq_push. Whoever swaps 1 to 0 sends the one wake that sleep needs. */
    if (atomic_exchange_explicit(&w->sleeping, 0, memory_order_seq_cst) == 1)
        send_wake(w);
}

void wispi_worker_enqueue(struct wispi_worker *w, struct wispi_actor *a)
{
    if (tls_worker == w) {
        local_push(w, a);
        return;
    }
    wispi_runq_push(&w->remote, &a->rq_node);
    wispi_worker_wake(w);
}

struct wispi_worker *wispi_worker_pick(struct wisp_runtime *rt)
{
    /* relaxed: a placement hint; a slightly stale load count only makes placement less even. */
    unsigned start = atomic_fetch_add_explicit(&rt->spawn_rr, 1, memory_order_relaxed);
    struct wispi_worker *best = NULL;
    uint32_t best_load = UINT32_MAX;
    for (unsigned i = 0; i < rt->nworkers; i++) {
        struct wispi_worker *w = &rt->workers[(start + i) % rt->nworkers];
        uint32_t l = atomic_load_explicit(&w->load, memory_order_relaxed);
        if (l < best_load) {
            best = w;
            best_load = l;
        }
    }
    return best;
}

static void drain_remote(struct wispi_worker *w)
{
    struct wispi_node *n;
    while ((n = wispi_runq_pop(&w->remote)))
        local_push(w, (struct wispi_actor *)(void *)((char *)n - offsetof(struct wispi_actor, rq_node)));
}

/* If another worker sleeps while we have a queue, hand it one actor that owns nothing tied to
 * this worker (no timers, not pinned). Sharing, started by the busy side, does what stealing
 * would, without a second consumer on any queue. */
static void share_work(struct wispi_worker *w)
{
    struct wisp_runtime *rt = w->rt;
    if (w->local_len < 2 || rt->nworkers < 2)
        return;
    struct wispi_worker *idle = NULL;
    for (unsigned i = 1; i < rt->nworkers && !idle; i++) {
        struct wispi_worker *o = &rt->workers[(w->index + i) % rt->nworkers];
        /* relaxed: a hint; a worker that just woke up gets one actor it did not need. */
        if (atomic_load_explicit(&o->sleeping, memory_order_relaxed))
            idle = o;
    }
    if (!idle)
        return;
    struct wispi_actor *prev = NULL;
    for (struct wispi_actor *a = w->local_head->local_next; a; prev = a, a = a->local_next) {
        if (a->flags & (ACTOR_PINNED | ACTOR_DEAD) || a->ntimers)
            continue;
        struct wispi_actor *before = prev ? prev : w->local_head;
        before->local_next = a->local_next;
        if (w->local_tail == a)
            w->local_tail = before;
        w->local_len--;
        atomic_fetch_sub_explicit(&w->load, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&idle->load, 1, memory_order_relaxed);
        /* release: whoever later reads `home` (the producer that schedules the actor after
         * it ran on `idle`) must see the new home; that producer synchronises through the
         * mailbox with idle's turn, which acquired this actor through idle's run queue. */
        atomic_store_explicit(&a->home, idle, memory_order_release);
        wispi_runq_push(&idle->remote, &a->rq_node);
        wispi_worker_wake(idle);
        return;
    }
}

static void arm_eventfd(struct wispi_worker *w)
{
    struct io_uring_sqe *sqe = get_sqe(w);
    /* No room even after a submit: try again next loop (wait_for_work checks), so wakes from
     * outside threads are late at worst, never lost. */
    w->eventfd_armed = sqe != NULL;
    if (!sqe)
        return;
    io_uring_prep_read(sqe, w->wake_fd, &w->wake_buf, sizeof w->wake_buf, 0);
    io_uring_sqe_set_data64(sqe, UD_EVENTFD);
}

/* Copy a batch of CQEs out, advance the CQ, then act on them. */
static void reap(struct wispi_worker *w)
{
    struct io_uring_cqe *cqes[CQE_BATCH];
    struct {
        uint64_t ud;
        int32_t res;
        uint32_t flags;
    } done[CQE_BATCH];
    for (;;) {
        unsigned n = io_uring_peek_batch_cqe(w->ring, cqes, CQE_BATCH);
        if (!n)
            break;
        for (unsigned i = 0; i < n; i++) {
            done[i].ud = cqes[i]->user_data;
            done[i].res = cqes[i]->res;
            done[i].flags = cqes[i]->flags;
        }
        io_uring_cq_advance(w->ring, n);
        for (unsigned i = 0; i < n; i++) {
            if ((done[i].ud & 0xFF) >= UD_NET_FIRST) {
                wispi_net_cqe(w, done[i].ud, done[i].res, done[i].flags);
                continue;
            }
            switch (done[i].ud & 0xFF) {
            case UD_EVENTFD:
                arm_eventfd(w); /* the wake itself is already done: we are awake */
                break;
            case UD_MSG_RING_TX:
                /* The MSG_RING did not reach its target: wake it the other way. */
                if (done[i].res < 0)
                    eventfd_wake(&w->rt->workers[done[i].ud >> 8]);
                break;
            default:
                break; /* UD_WAKE: nothing to do but be awake */
            }
        }
    }
}

static struct __kernel_timespec ms_to_ts(uint64_t ms)
{
    struct __kernel_timespec ts = {.tv_sec = (long long)(ms / 1000),
                                   .tv_nsec = (long long)(ms % 1000) * 1000000};
    return ts;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

/* Before paying for a sleep and a wake-up (a syscall on both sides), watch the remote queue
 * for a few microseconds: under cross-worker traffic the next actor usually arrives that
 * soon. Bounded, so an idle runtime still sleeps almost at once. */
static bool brief_spin(struct wispi_worker *w)
{
    for (int i = 0; i < 256; i++) {
        if (wispi_runq_maybe_nonempty(&w->remote))
            return true;
        cpu_relax();
    }
    return false;
}

/* Sleep in the ring until woken, a completion arrives, or the next timer is due. */
static void wait_for_work(struct wispi_worker *w)
{
    if (!w->eventfd_armed)
        arm_eventfd(w);
    /* Hand the kernel what this pass queued (sends above all) before spinning: the spin only
     * watches the remote queue, and a reply must not wait for it. */
    if (io_uring_sq_ready(w->ring))
        io_uring_submit(w->ring);
    if (brief_spin(w))
        return;
    /* seq_cst store, then seq_cst loads of the queues: the Dekker handshake with producers
     * (wispi_runq_push then wispi_worker_wake). Either they see 1 and wake us, or we see
     * their push here and do not sleep. */
    atomic_store_explicit(&w->sleeping, 1, memory_order_seq_cst);
    int stopping = atomic_load_explicit(&w->rt->stop_state, memory_order_seq_cst);
    if (wispi_runq_maybe_nonempty(&w->remote) || stopping == 1 ||
        (stopping && atomic_load_explicit(&w->rt->live, memory_order_seq_cst) == 0)) {
        /* work arrived, or the shutdown needs this worker to look (or to leave) */
        atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed);
        return;
    }
    uint64_t next = wispi_timers_next(w);
    uint64_t sweep = wispi_net_tick(w, wispi_now_ms(w->rt));
    if (sweep < next)
        next = sweep;
    if (stopping) {
        /* While stopping, never sleep long: worker 0 watches the deadline, and every worker
         * must notice when the last actor is gone even if a wake-up crossed its sleep. */
        uint64_t soon = wispi_now_ms(w->rt) + 10;
        if (soon < next)
            next = soon;
    }
    struct io_uring_cqe *cqe;
    if (next == UINT64_MAX) {
        int rc;
        do
            rc = io_uring_submit_and_wait(w->ring, 1);
        while (rc == -EINTR);
    } else {
        uint64_t now = wispi_now_ms(w->rt);
        struct __kernel_timespec ts = ms_to_ts(next > now ? next - now : 0);
        int rc;
        do
            rc = io_uring_submit_and_wait_timeout(w->ring, &cqe, 1, &ts, NULL);
        while (rc == -EINTR);
    }
    /* relaxed: only this thread acts on its own flag; a producer that swapped it already owes
     * (and sends) a wake that will simply find us awake. */
    atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed);
}

static void block_signals(void)
{
    sigset_t all;
    sigfillset(&all);
    /* Signals go to the application's threads, not to workers in the middle of a turn. */
    pthread_sigmask(SIG_BLOCK, &all, NULL);
}

void *wispi_worker_main(void *arg)
{
    struct wispi_worker *w = arg;
    tls_worker = w;
    block_signals();
    arm_eventfd(w);
    for (;;) {
        w->now_ms = wispi_now_ms(w->rt);
        wispi_timers_fire(w, w->now_ms);
        drain_remote(w);
        /* Only the actors queued now: one that used its whole batch goes to the back and
         * waits for the next pass, after timers, other threads' work and the ring. */
        uint32_t pass = w->local_len < TURNS_PER_PASS ? w->local_len : TURNS_PER_PASS;
        while (pass--) {
            wispi_actor_run(w, local_pop(w));
            w->turns++;
        }
        share_work(w);
        if (wispi_shutdown_step(w))
            break;
        if (io_uring_cq_has_overflow(w->ring))
            io_uring_get_events(w->ring); /* flush the kernel's overflow list into the CQ */
        wispi_net_tick(w, w->now_ms);
        wispi_net_flush(w); /* sends corked during the turns above, re-arms, buffers */
        if (w->local_len)
            io_uring_submit(w->ring); /* keep submissions moving while busy */
        else
            wait_for_work(w);
        reap(w);
    }
    tls_worker = NULL;
    return NULL;
}

int wispi_worker_run_deterministic(struct wispi_worker *w)
{
    struct wisp_runtime *rt = w->rt;
    tls_worker = w;
    for (;;) {
        w->now_ms = rt->virtual_now_ms;
        wispi_timers_fire(w, w->now_ms);
        drain_remote(w);
        if (wispi_shutdown_step(w))
            break;
        if (w->local_len) {
            /* xorshift64: the seeded run order that makes a test replay */
            w->rng ^= w->rng << 13;
            w->rng ^= w->rng >> 7;
            w->rng ^= w->rng << 17;
            wispi_actor_run(w, local_take(w, (uint32_t)(w->rng % w->local_len)));
            w->turns++;
            continue;
        }
        uint64_t next = wispi_timers_next(w);
        if (atomic_load_explicit(&rt->stop_state, memory_order_relaxed) == 2 &&
            rt->stop_deadline_ms < next)
            next = rt->stop_deadline_ms;
        if (next == UINT64_MAX)
            break; /* idle: nothing runnable, nothing due */
        if (next > rt->virtual_now_ms)
            rt->virtual_now_ms = next; /* jump the virtual clock to the next event */
    }
    tls_worker = NULL;
    return 0;
}

int wispi_worker_init(struct wispi_worker *w, struct wisp_runtime *rt, unsigned index)
{
    memset(w, 0, sizeof *w);
    w->rt = rt;
    w->index = index;
    w->wake_fd = -1;
    wispi_runq_init(&w->remote);
    w->ctx = calloc(1, sizeof *w->ctx);
    if (!w->ctx)
        return -ENOMEM;
    w->ctx->worker = w;
    w->rng = rt->opts.seed ? rt->opts.seed : 0x9E3779B97F4A7C15ull;
    if (!rt->opts.deterministic) {
        w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->wake_fd < 0)
            return -errno;
    }
    return 0;
}

int wispi_worker_ring_setup(struct wispi_worker *w)
{
    w->ring = calloc(1, sizeof *w->ring);
    if (!w->ring)
        return -ENOMEM;
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    uint32_t entries = w->rt->opts.ring_entries ? w->rt->opts.ring_entries : 256;
    /* The recommended setup for a ring used by one thread (io_uring_setup_flags(7)); the large
     * CQ keeps bursts of completions from overflowing. */
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE |
              IORING_SETUP_SUBMIT_ALL;
    p.cq_entries = entries * 16;
    int rc = io_uring_queue_init_params(entries, w->ring, &p);
    if (rc < 0) {
        free(w->ring);
        w->ring = NULL;
        return rc;
    }
    return 0;
}

void wispi_worker_ring_teardown(struct wispi_worker *w)
{
    if (w->ring) {
        io_uring_queue_exit(w->ring);
        free(w->ring);
        w->ring = NULL;
    }
}

void wispi_worker_destroy(struct wispi_worker *w)
{
    wispi_worker_ring_teardown(w);
    if (w->wake_fd >= 0)
        close(w->wake_fd);
    w->wake_fd = -1;
    wispi_timers_destroy(w);
    wispi_msg_pool_destroy(&w->pool);
    free(w->ctx);
    w->ctx = NULL;
}
