/* wisp/runtime.h: creating, running and stopping the actor runtime.
 *
 * A runtime owns N worker threads. Each worker owns one io_uring (created on that thread),
 * a local run queue and a queue for actors made runnable by other threads; idle workers sleep
 * in the ring wait and use no CPU. An actor runs on one worker at a time.
 *
 * Typical use:
 *     struct wisp_runtime_opts o;
 *     wisp_runtime_opts_init(&o);
 *     o.handle_signals = true;              // SIGINT/SIGTERM stop it gracefully
 *     struct wisp_runtime *rt;
 *     if (wisp_runtime_new(&o, &rt) < 0) { fprintf(stderr, "%s\n", wisp_last_error()); ... }
 *     wisp_rt_spawn(rt, &my_actor, NULL, 0, NULL);
 *     wisp_runtime_run(rt);                 // returns after a stop and the shutdown
 *     wisp_runtime_free(rt);
 */
#ifndef WISP_RUNTIME_H
#define WISP_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <wisp/actor.h>
#include <wisp/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Runtime settings. Fill with wisp_runtime_opts_init(), then change what you need. */
struct wisp_runtime_opts {
    /** Worker threads; 0 (default) means one per CPU this process may run on. */
    unsigned workers;
    /** Default mailbox limit in messages for actors whose definition sets none. Default 10000. */
    uint32_t mailbox_limit;
    /** How long a graceful stop waits for actors to finish (terminate with reason SHUTDOWN)
     *  before the rest are stopped with reason KILLED. Default 5000 ms. */
    uint32_t shutdown_deadline_ms;
    /** Install SIGINT and SIGTERM handlers that call wisp_runtime_stop(), from
     *  wisp_runtime_new() on (so a signal during setup stops gracefully too). Default false. */
    bool handle_signals;
    /** Testing mode: everything runs on the thread that calls wisp_runtime_run(), in an order
     *  drawn from `seed`, on a virtual clock that jumps to the next timer when nothing is
     *  runnable. The same seed and the same inputs give the same run. No io_uring is used. */
    bool deterministic;
    uint64_t seed;
    /** Submission queue entries per worker ring (default 256); the completion queue gets 16x. */
    uint32_t ring_entries;
    /** Receive buffers per worker, shared by that worker's sockets (a power of two, at most
     *  32768; default 512), and the size of each (default 16384 bytes). Pages are touched only
     *  as data lands in them: small messages touch one page per buffer (2 MiB per worker with
     *  the defaults); a socket that finds none free waits until some come back. */
    uint32_t recv_buffers;
    uint32_t recv_buffer_size;
};

/** Fill *o with the defaults. @return 0, or -EINVAL if o is NULL. */
WISP_API int wisp_runtime_opts_init(struct wisp_runtime_opts *o);

/**
 * Create a runtime (no threads start yet). Checks that io_uring is usable here (not disabled
 * by sysctl or seccomp, enough locked memory) unless opts->deterministic.
 * @param opts  borrowed; NULL means the defaults.
 * @param out   receives the runtime, owned by the caller (wisp_runtime_free).
 * @return 0, or a negative errno; wisp_last_error() then says what went wrong in a sentence.
 */
WISP_API int wisp_runtime_new(const struct wisp_runtime_opts *opts, struct wisp_runtime **out);

/**
 * Start the workers and return. Actors spawned before this wait in their queues.
 * All or nothing: if any worker cannot create its thread or ring, none runs and the runtime
 * stays unstarted (free it with wisp_runtime_free).
 * @return 0, -EALREADY, or a negative errno (thread or ring creation failed; see
 *         wisp_last_error()). Not for deterministic runtimes (use wisp_runtime_run).
 */
WISP_API int wisp_runtime_start(struct wisp_runtime *rt);

/**
 * Run until stopped: start the workers if needed, then wait for wisp_runtime_stop() (or a
 * signal, with handle_signals) and the graceful shutdown. In deterministic mode this runs
 * everything on the calling thread and also returns when no actor is runnable and no timer is
 * pending (the runtime is idle); it may be called again after more spawns or sends.
 * @return 0, or a negative errno.
 */
WISP_API int wisp_runtime_run(struct wisp_runtime *rt);

/**
 * Ask for a graceful stop: every actor is stopped with reason SHUTDOWN (its terminate runs),
 * actors still alive after the deadline are stopped with reason KILLED, then the workers exit.
 * Async-signal-safe, thread-safe, idempotent. Spawns after it fail with WISP_ECLOSED; sends
 * still reach actors until each one has stopped (terminate callbacks may say goodbye), then
 * fail with -ESRCH.
 */
WISP_API void wisp_runtime_stop(struct wisp_runtime *rt);

/** Wait for the workers after wisp_runtime_stop(). @return 0. Not from a worker thread. */
WISP_API int wisp_runtime_wait(struct wisp_runtime *rt);

/** Stop (if running), wait, and free everything, including actors never run. NULL is a no-op.
 *  Not from a worker thread. */
WISP_API void wisp_runtime_free(struct wisp_runtime *rt);

/** Number of worker threads. */
WISP_API unsigned wisp_runtime_workers(const struct wisp_runtime *rt);

/** Live actors right now (approximate while the runtime runs). */
WISP_API size_t wisp_runtime_actor_count(const struct wisp_runtime *rt);

/** Virtual milliseconds elapsed in a deterministic runtime, real ones otherwise. */
WISP_API uint64_t wisp_runtime_now_ms(const struct wisp_runtime *rt);

/** Runtime-wide figures for monitoring (wisp_runtime_stats). */
struct wisp_runtime_stats {
    uint64_t actors;             /**< live actors (connections included) */
    uint64_t mailbox_messages;   /**< messages waiting in all mailboxes right now */
    uint64_t mailbox_max;        /**< the deepest mailbox right now */
    uint64_t ring_overflows;     /**< completions the kernel had to hold back because a
                                      worker's completion queue was full (CQ overflow) */
    uint64_t recv_buffer_waits;  /**< receives that found no free buffer in their worker's
                                      ring and waited for one (raise recv_buffers if high) */
    uint64_t published;          /**< messages published to topics, broadcast or emitted */
    uint64_t topics;             /**< topics with at least one subscriber */
};

/** Take a snapshot of the runtime's figures; walks every actor (O(actors)): meant for a
 *  metrics scrape, not a hot path. Any thread. @return 0, -EINVAL. */
WISP_API int wisp_runtime_stats(struct wisp_runtime *rt, struct wisp_runtime_stats *out);

/** The calling thread's description of the last wisp_runtime_* failure. Never NULL. */
WISP_API const char *wisp_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
