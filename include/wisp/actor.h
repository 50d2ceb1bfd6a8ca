/* wisp/actor.h: actors, messages, timers, links, monitors and the name registry.
 *
 * An actor is a definition (struct wisp_actor_def) plus per-actor state that the runtime
 * allocates together with the actor. The runtime calls the definition's callbacks on one worker
 * thread at a time, so the state needs no locks. Actors talk only by sending messages to
 * addresses (wisp_addr). An address stays safe to use after its actor is gone: sending to it
 * fails with -ESRCH and never touches freed memory. (Addresses carry a 32-bit generation per
 * slot, so an address could only match a new actor after 2^32 actors reused its slot.)
 *
 * Two families of calls:
 *   - wisp_*(struct wisp_ctx *ctx, ...) are for code running inside an actor callback; ctx is
 *     borrowed for the duration of that callback only. The sender of a message is that actor.
 *   - wisp_rt_*(struct wisp_runtime *rt, ...) may be called from any thread, including outside
 *     threads that are not actors; their messages have no sender (WISP_ADDR_NONE).
 */
#ifndef WISP_ACTOR_H
#define WISP_ACTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <wisp/error.h>

#ifdef __cplusplus
extern "C" {
#endif

struct wisp_runtime;
struct wisp_ctx;

/** An actor's address: a slot and a generation, so a reused slot never matches an old address.
 *  Plain data: copy it freely, across threads too. */
typedef struct wisp_addr {
    uint64_t id;
} wisp_addr;

/** The address of no actor (e.g. the sender of a message from an outside thread). */
#define WISP_ADDR_NONE ((wisp_addr){0})

static inline bool wisp_addr_eq(wisp_addr a, wisp_addr b)
{
    return a.id == b.id;
}

static inline bool wisp_addr_is_none(wisp_addr a)
{
    return a.id == 0;
}

/** Why an actor stopped. */
enum wisp_exit_kind {
    WISP_EXIT_NORMAL = 0, /**< it finished; linked actors are not stopped by it */
    WISP_EXIT_SHUTDOWN,   /**< the runtime is shutting down */
    WISP_EXIT_ERROR,      /**< the actor (or init) failed; `code` says how */
    WISP_EXIT_KILLED,     /**< stopped by wisp_rt_kill() (which the target cannot trap; a
                               linked actor may trap the resulting KILLED exit, as in Erlang) */
    WISP_EXIT_NOPROC,     /**< (in EXIT/DOWN messages) the actor did not exist */
};

/** An exit reason: a kind plus an application-defined code (e.g. a negative errno). */
struct wisp_exit {
    enum wisp_exit_kind kind;
    int code;
};

/** A short static name for an exit kind ("normal", "shutdown", ...). Never NULL. */
WISP_API const char *wisp_exit_kind_str(enum wisp_exit_kind kind);

/** Message types from WISP_MSG_SYSTEM up are the runtime's; applications use smaller ones. */
#define WISP_MSG_SYSTEM 0xFFFF0000u
/** A linked actor exited (delivered only while trapping exits). Payload: struct wisp_down. */
#define WISP_MSG_EXIT 0xFFFF0001u
/** A monitored actor exited. Payload: struct wisp_down. */
#define WISP_MSG_DOWN 0xFFFF0002u

/** Payload of WISP_MSG_EXIT and WISP_MSG_DOWN messages. */
struct wisp_down {
    wisp_addr who;      /**< the actor that exited */
    struct wisp_exit reason;
    uint64_t monitor;   /**< DOWN: the reference wisp_monitor() returned; EXIT: 0 */
};

/**
 * A message as an actor receives it. Borrowed: valid only during the receive callback; copy
 * what you need to keep.
 */
struct wisp_msg {
    uint32_t type;   /**< application tag, or a WISP_MSG_* system type */
    wisp_addr from;  /**< sender, or WISP_ADDR_NONE */
    const void *data;
    size_t len;
    uint64_t timer;  /**< for a timer's message: the timer's id; else 0 */
};

/** Called to release a payload handed over with wisp_send_owned() once it is no longer used
 *  (after delivery, or when the message could not be delivered). May run on any thread. */
typedef void (*wisp_release_fn)(void *data, size_t len, void *arg);

/** What an actor is. Usually a static const object; the runtime keeps a pointer to it, so it
 *  must outlive every actor spawned from it. */
struct wisp_actor_def {
    const char *name;   /**< for logs and errors */
    size_t state_size;  /**< bytes of per-actor state, zeroed, allocated with the actor */
    /** Runs first, on the actor's worker. `arg` is the spawn argument (borrowed for the call).
     *  Return 0, or a negative code to stop at once with WISP_EXIT_ERROR and that code
     *  (terminate is not called then). May be NULL. */
    int (*init)(struct wisp_ctx *ctx, void *state, const void *arg, size_t arg_len);
    /** Runs once per message. Required. */
    void (*receive)(struct wisp_ctx *ctx, void *state, const struct wisp_msg *msg);
    /** Runs exactly once when the actor stops after a successful init, whatever the reason.
     *  It may still send messages. May be NULL. */
    void (*terminate)(struct wisp_ctx *ctx, void *state, struct wisp_exit reason);
    /** Mailbox limit in messages: above it wisp_try_send() refuses and wisp_send() reports
     *  pressure. 0 means the runtime's default. */
    uint32_t mailbox_limit;
};

/** Options for wisp_spawn_opts(); zero means the default for every field. */
struct wisp_spawn_opts {
    bool link;    /**< link the new actor to the spawner atomically (only from inside an actor) */
    int worker;   /**< 0: let the runtime choose; n > 0: pin to worker n-1 */
};

/**
 * Create an actor. Its init runs later, on its worker; messages sent to the returned address
 * before that are queued.
 * @param def     borrowed for the actor's whole life (see struct wisp_actor_def).
 * @param arg     copied: arg_len bytes handed to init (NULL if arg_len is 0).
 * @param out     receives the new address; may be NULL.
 * @return 0, or -EINVAL (bad def or arguments), -ENOMEM, WISP_ECLOSED (runtime stopping).
 * Thread-safe: wisp_spawn from inside an actor, wisp_rt_spawn from any thread.
 */
WISP_API int wisp_spawn(struct wisp_ctx *ctx, const struct wisp_actor_def *def, const void *arg,
                        size_t arg_len, wisp_addr *out);
WISP_API int wisp_spawn_opts(struct wisp_ctx *ctx, const struct wisp_actor_def *def,
                             const void *arg, size_t arg_len, const struct wisp_spawn_opts *opts,
                             wisp_addr *out);
WISP_API int wisp_rt_spawn(struct wisp_runtime *rt, const struct wisp_actor_def *def,
                           const void *arg, size_t arg_len, wisp_addr *out);

/** Returned (positive) by the send functions when the message was queued but the receiver is
 *  above its mailbox limit: the sender should slow down. */
#define WISP_SEND_PRESSURE 1

/**
 * Send a copy of len bytes at data to `to`.
 * @return 0 (queued), WISP_SEND_PRESSURE (queued; receiver over its limit), -ESRCH (no such
 *         actor: nothing was queued), -ENOMEM, -EINVAL (type in the system range, or data NULL
 *         with len > 0). A message queued to an actor that stops before reaching it is
 *         released, never leaked (and never delivered).
 */
WISP_API int wisp_send(struct wisp_ctx *ctx, wisp_addr to, uint32_t type, const void *data,
                       size_t len);
WISP_API int wisp_rt_send(struct wisp_runtime *rt, wisp_addr to, uint32_t type, const void *data,
                          size_t len);

/**
 * Like wisp_send, but queue nothing when the receiver is at or above its mailbox limit.
 * @return 0, WISP_EFULL (receiver over its limit; nothing queued), -ESRCH, -ENOMEM, -EINVAL.
 */
WISP_API int wisp_try_send(struct wisp_ctx *ctx, wisp_addr to, uint32_t type, const void *data,
                           size_t len);
WISP_API int wisp_rt_try_send(struct wisp_runtime *rt, wisp_addr to, uint32_t type,
                              const void *data, size_t len);

/**
 * Hand a payload over without copying it. Ownership passes to the runtime in every case: on
 * success release(data, len, arg) runs after the receiver's callback returns; on any failure
 * (including -ESRCH) it runs before this function returns, or later if the actor died with the
 * message queued. release may be NULL (the payload then needs no release).
 * @return as wisp_send.
 */
WISP_API int wisp_send_owned(struct wisp_ctx *ctx, wisp_addr to, uint32_t type, void *data,
                             size_t len, wisp_release_fn release, void *arg);
WISP_API int wisp_rt_send_owned(struct wisp_runtime *rt, wisp_addr to, uint32_t type, void *data,
                                size_t len, wisp_release_fn release, void *arg);

/**
 * Ask `to` to send the running actor a message of `type` (no payload, from `to`) once it has
 * processed everything queued before this request. After wisp_try_send() returned WISP_EFULL,
 * this is how a sender waits for room without polling: the request joins the back of the full
 * mailbox and the answer comes when that backlog is gone. If `to` dies first, the answer still
 * comes (and the next send reports -ESRCH), so a waiting sender is never stranded.
 * @return 0, -ESRCH (no such actor: nothing will arrive), -ENOMEM, -EINVAL (type in the
 *         system range).
 */
WISP_API int wisp_notify_drained(struct wisp_ctx *ctx, wisp_addr to, uint32_t type);

/** One entry of a batched send. */
struct wisp_batch_item {
    uint32_t type;
    const void *data; /**< copied */
    size_t len;
};

/**
 * Send n messages to one actor with a single queue operation; they arrive in order and
 * together. Either all are queued or none.
 * @return as wisp_send.
 */
WISP_API int wisp_send_batch(struct wisp_ctx *ctx, wisp_addr to,
                             const struct wisp_batch_item *items, size_t n);

/** The running actor's own address. */
WISP_API wisp_addr wisp_self(const struct wisp_ctx *ctx);
/** The runtime the running actor belongs to. */
WISP_API struct wisp_runtime *wisp_runtime_of(const struct wisp_ctx *ctx);
/** Index of the worker the actor runs on (0-based). */
WISP_API unsigned wisp_worker_index(const struct wisp_ctx *ctx);

/**
 * Stop the running actor once the current callback returns: terminate(reason) runs, then
 * links and monitors are notified. Calling it again before the callback returns replaces the
 * reason.
 */
WISP_API void wisp_stop(struct wisp_ctx *ctx, struct wisp_exit reason);

/**
 * Stop another actor with reason KILLED, which it cannot trap (its terminate still runs).
 * @return 0, or -ESRCH. Thread-safe.
 */
WISP_API int wisp_rt_kill(struct wisp_runtime *rt, wisp_addr who);

/* ---- timers ---------------------------------------------------------------------------- */

/** A timer's id; 0 is never a valid timer. */
typedef uint64_t wisp_timer;

/**
 * Deliver a message of `type` with a copy of data to the running actor itself after ms
 * milliseconds (millisecond precision, on the actor's worker).
 * @param out  receives the timer id, for wisp_timer_cancel(); may be NULL.
 * @return 0, or -ENOMEM, -EINVAL (type in the system range, len over 64 KiB).
 */
WISP_API int wisp_send_after(struct wisp_ctx *ctx, uint64_t ms, uint32_t type, const void *data,
                             size_t len, wisp_timer *out);

/** Like wisp_send_after, repeating every period_ms (> 0) until cancelled or the actor stops.
 *  Ticks are not queued up behind a busy actor: a tick fires only once the previous one was
 *  delivered. */
WISP_API int wisp_send_every(struct wisp_ctx *ctx, uint64_t period_ms, uint32_t type,
                             const void *data, size_t len, wisp_timer *out);

/**
 * Cancel a timer the running actor set. Once this returns 0 the timer's message will never be
 * delivered, even if it had already fired and sits in the mailbox.
 * @return 0, or -ENOENT (unknown, already delivered, or not this actor's timer).
 */
WISP_API int wisp_timer_cancel(struct wisp_ctx *ctx, wisp_timer timer);

/* ---- links and monitors ------------------------------------------------------------------ */

/**
 * Link the running actor and `other` both ways. When either exits abnormally (any reason but
 * NORMAL), the other stops with the same reason, or, if it traps exits, receives a
 * WISP_MSG_EXIT. Linking to an actor that does not exist (or dies first) acts as its exit with
 * reason NOPROC. Linking twice is the same as once.
 * @return 0, or -EINVAL (other is self or none), -ENOMEM.
 */
WISP_API int wisp_link(struct wisp_ctx *ctx, wisp_addr other);
/** Remove a link (both ways). @return 0, or -ENOENT. */
WISP_API int wisp_unlink(struct wisp_ctx *ctx, wisp_addr other);
/** While on, exits of linked actors arrive as WISP_MSG_EXIT messages instead of stopping the
 *  running actor (wisp_rt_kill() on the running actor itself still stops it). Off by
 *  default. */
WISP_API void wisp_trap_exits(struct wisp_ctx *ctx, bool on);

/**
 * Watch `target`: when it exits, for whatever reason, the running actor receives one
 * WISP_MSG_DOWN carrying the reference. If target does not exist, the DOWN (reason NOPROC)
 * comes at once.
 * @param ref  receives the monitor reference (non-zero); may be NULL.
 * @return 0, or -EINVAL, -ENOMEM.
 */
WISP_API int wisp_monitor(struct wisp_ctx *ctx, wisp_addr target, uint64_t *ref);
/** Stop watching; no DOWN for this reference arrives after this returns 0.
 *  @return 0, or -ENOENT. */
WISP_API int wisp_demonitor(struct wisp_ctx *ctx, uint64_t ref);

/* ---- registry -------------------------------------------------------------------------- */

/** Longest registered name, in bytes. */
#define WISP_NAME_MAX 63

/**
 * Register `name` for `who`. The name is removed automatically when that actor exits.
 * @param name  copied; 1 to WISP_NAME_MAX bytes, NUL-terminated.
 * @return 0, or -EEXIST (name taken), -ESRCH (who does not exist), -EINVAL, -ENOMEM.
 * Thread-safe.
 */
WISP_API int wisp_rt_register(struct wisp_runtime *rt, const char *name, wisp_addr who);
/** Look a name up. @return 0 and *out set, or -ENOENT. Thread-safe. */
WISP_API int wisp_rt_whereis(struct wisp_runtime *rt, const char *name, wisp_addr *out);
/** Remove a name. @return 0, or -ENOENT. Thread-safe. */
WISP_API int wisp_rt_unregister(struct wisp_runtime *rt, const char *name);

#ifdef __cplusplus
}
#endif
#endif
