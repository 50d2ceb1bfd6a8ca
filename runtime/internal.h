/* Structures and cross-file functions of the runtime (internal: prefix wispi_).
 *
 * Ownership map:
 *   - struct wispi_actor: fields under "worker-owned" are touched only by the thread running
 *     the actor's turn (one at a time, handed over through the run queues); the mailbox head,
 *     `pending` and `home` are atomics any thread may touch.
 *   - An actor's memory lives while its slot's reference count is non-zero: one reference for
 *     being alive, one per sender in the middle of a send (or holding it in its send cache),
 *     and, only once the actor is dead, one for each time it is put in a run queue. An alive
 *     actor needs no reference to sit in a queue: it can only die during its own turn, and
 *     that turn gives up the alive reference only after its last touch of the mailbox.
 *   - struct wispi_worker: everything but `remote`, `sleeping` and `load` belongs to the
 *     worker's thread.
 */
#ifndef WISP_RUNTIME_INTERNAL_H
#define WISP_RUNTIME_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <wisp/actor.h>
#include <wisp/runtime.h>

#include "mpsc.h"

struct io_uring;
struct wispi_worker;
struct wispi_timer;

/* ---- messages ----------------------------------------------------------------------------- */

/* Payloads up to this size travel inside the message allocation. */
#define WISPI_MSG_INLINE 48

enum wispi_msg_storage {
    MSG_INLINE, /* data points at u.bytes */
    MSG_HEAP,   /* data is a malloc'd copy, freed after delivery */
    MSG_OWNED,  /* data belongs to the sender's release callback (u.owned) */
};

/* System operations, carried in messages so that every state change of an actor happens on
 * its own turn, in order with its other messages. */
enum wispi_sys {
    SYS_NONE = 0,  /* an application message */
    SYS_INIT,      /* run init with the spawn argument (the actor's first message) */
    SYS_LINK,      /* from: link me to you */
    SYS_UNLINK,    /* from: remove the link */
    SYS_EXIT,      /* from exited with u.down.reason (link propagation) */
    SYS_MONITOR,   /* from watches you with reference aux */
    SYS_DEMONITOR, /* from stops watching with reference aux */
    SYS_DOWN,      /* a monitored actor exited: u.down */
    SYS_TIMER,     /* a timer fired: aux = timer pointer */
    SYS_SHUTDOWN,  /* the runtime is stopping */
    SYS_KILL,      /* stop now with reason KILLED */
    SYS_DRAINED,   /* from asked to hear (message type aux) when what is ahead is done */
    SYS_IO,        /* the actor's socket (aux: struct wispi_sock *) has completions */
};

struct wispi_msg {
    struct wispi_node node;
    uint32_t type;
    uint8_t storage; /* enum wispi_msg_storage */
    uint8_t sys;     /* enum wispi_sys */
    wisp_addr from;
    uint64_t aux;
    void *data;
    size_t len;
    union {
        unsigned char bytes[WISPI_MSG_INLINE];
        struct {
            wisp_release_fn fn;
            void *arg;
        } owned;
        struct wisp_down down;
    } u;
};

/* Message memory: a worker keeps a free list of message blocks and trades whole batches with
 * the runtime-wide pool, so a message made on one worker and freed on another costs neither
 * thread a trip to malloc (which, for blocks crossing threads, takes arena locks). Threads
 * that are not workers use malloc and free directly; all blocks are interchangeable. */
struct wispi_msg_pool {
    struct wispi_msg *free; /* linked through node.next */
    uint32_t n;
};
void wispi_msg_pool_destroy(struct wispi_msg_pool *p);
void wispi_msg_batches_destroy(struct wisp_runtime *rt);

/* Allocate a message holding a copy of len bytes. NULL on allocation failure. */
struct wispi_msg *wispi_msg_new(uint32_t type, const void *data, size_t len);
/* A message that hands over an owned payload. On failure the payload is released. */
struct wispi_msg *wispi_msg_new_owned(uint32_t type, void *data, size_t len,
                                      wisp_release_fn release, void *arg);
/* A system message with no payload. */
struct wispi_msg *wispi_msg_new_sys(enum wispi_sys sys, wisp_addr from, uint64_t aux);
/* Release the payload (after delivery); the header stays allocated. */
void wispi_msg_release_payload(struct wispi_msg *m);
/* Release the payload and free the message. */
void wispi_msg_free(struct wispi_msg *m);
/* Free a message whose payload is already released. */
void wispi_msg_free_header(struct wispi_msg *m);

/* ---- actors ------------------------------------------------------------------------------- */

/* Worker-owned actor flags. */
enum {
    ACTOR_INITED = 1u << 0,   /* init succeeded: terminate will run */
    ACTOR_STOPPING = 1u << 1, /* wisp_stop() called: die at the end of this callback */
    ACTOR_DEAD = 1u << 2,     /* terminated: drain and release whatever arrives */
    ACTOR_TRAP_EXIT = 1u << 3,
    ACTOR_PINNED = 1u << 4,   /* never moved to another worker */
    ACTOR_TRAP_SHUTDOWN = 1u << 5, /* SYS_SHUTDOWN arrives as WISPI_MSG_SHUTDOWN (sockets
                                      close their connections gracefully) */
};

/* Links, monitors: allocated the first time an actor uses any of them. */
struct wispi_monitor_ref {
    wisp_addr who;
    uint64_t ref;
};

struct wispi_relations {
    wisp_addr *links;
    uint32_t nlinks, caplinks;
    struct wispi_monitor_ref *watching; /* monitors this actor set */
    uint32_t nwatching, capwatching;
    struct wispi_monitor_ref *watchers; /* monitors set on this actor */
    uint32_t nwatchers, capwatchers;
};

struct wispi_actor {
    struct wispi_mailbox mbox;
    struct wispi_node stub;    /* the mailbox's first stub, so a new actor allocates nothing */
    struct wispi_node rq_node; /* link in a worker's remote run queue */
    /* Any thread: how many messages are queued, for the mailbox limit. */
    _Atomic uint32_t pending;
    uint32_t limit;
    /* The worker that runs this actor. Written by the worker that moves it (while the actor is
     * queued, never while a producer could be scheduling it); read by producers that schedule
     * it (see wispi_schedule). */
    _Atomic(struct wispi_worker *) home;
    struct wisp_runtime *rt;
    const struct wisp_actor_def *def;
    wisp_addr addr;
    /* ---- worker-owned ---- */
    struct wispi_actor *local_next; /* link in the home worker's local run queue */
    uint32_t flags;
    uint32_t ntimers;             /* live timers this actor set (they pin it) */
    struct wisp_exit stop_reason; /* valid with ACTOR_STOPPING */
    struct wispi_relations *rel;
    struct wispi_timer *timers;   /* this actor's live timers (a list) */
    /* The last actor this one sent to, with a reference held: repeated sends to the same
     * address (a reply stream, a ring, a fan-in) skip the lookup's atomic pair. */
    wisp_addr cache_to;
    struct wispi_actor *cache_actor;
    /* Names: 0 none yet, 1 some registered, 2 the actor died (no more may be added). The
     * registry moves 0 -> 1 under its lock after inserting; the dying turn exchanges in 2 and
     * removes the names if it saw 1. Whichever comes second undoes the race. */
    _Atomic uint8_t names;
    /* Set by the dying turn before its last mailbox release; read by a producer that finds
     * the mailbox empty, to know whether the queue needs a reference of its own. */
    _Atomic bool dead;
    _Atomic bool kill;            /* wisp_rt_kill(): die at the next message */
    _Alignas(16) unsigned char state[];
};

/* Find a live actor by address and take a reference on it. NULL if no such actor. */
struct wispi_actor *wispi_actor_acquire(struct wisp_runtime *rt, wisp_addr addr);
/* Take one more reference on an actor we already hold one on. */
void wispi_actor_addref(struct wispi_actor *a);
/* Whether the actor's slot says it is dead (possibly late: see wispi_actor_mark_dead). */
bool wispi_actor_is_dead(const struct wispi_actor *a);
/* Drop a reference; the last one frees the actor. */
void wispi_actor_release(struct wispi_actor *a);
/* Allocate an actor (one reference: alive) and its slot. */
int wispi_actor_alloc(struct wisp_runtime *rt, const struct wisp_actor_def *def,
                      struct wispi_actor **out);
/* Make a new actor findable, holding `refs` references (alive, plus scheduled if its first
 * message is already queued). */
void wispi_actor_publish(struct wispi_actor *a, uint32_t refs);
/* Mark the actor's slot dead so lookups fail from now on. */
void wispi_actor_mark_dead(struct wispi_actor *a);
/* Free the slot table and any actors left (at runtime teardown, single-threaded). */
void wispi_actor_table_destroy(struct wisp_runtime *rt);
/* Take a reference on every live actor and call fn on it (then release). For shutdown. */
void wispi_actor_for_each(struct wisp_runtime *rt, void (*fn)(struct wispi_actor *, void *),
                          void *arg);

/* Push messages to an actor we hold a reference on; schedules it if needed. Consumes our
 * reference. Returns 0 or WISP_SEND_PRESSURE. */
int wispi_deliver(struct wispi_actor *a, struct wispi_msg *first, struct wispi_msg *last,
                  uint32_t count);
/* Look up, push, schedule: the common send path. -ESRCH frees the messages. `sender` is the
 * sending actor (its send cache is used and updated) or NULL. */
int wispi_send_chain(struct wisp_runtime *rt, struct wispi_actor *sender, wisp_addr to,
                     struct wispi_msg *first, struct wispi_msg *last, uint32_t count,
                     bool try_only);
/* Put a scheduled actor (we hold its scheduled reference) on its home worker's queue. */
void wispi_schedule(struct wispi_actor *a);
/* Run one turn of an actor on worker w. Consumes the scheduled reference unless the actor
 * must run again, in which case it is put back in a run queue. */
void wispi_actor_run(struct wispi_worker *w, struct wispi_actor *a);

/* ---- timers ------------------------------------------------------------------------------- */

struct wispi_timer {
    uint64_t id;
    uint64_t deadline_ms;
    uint64_t period_ms; /* 0 for one-shot */
    struct wispi_actor *owner;
    struct wispi_timer *next_of_owner;
    uint32_t heap_index; /* UINT32_MAX when not in the heap */
    bool in_flight;      /* its message is queued, not yet delivered */
    bool cancelled;
    uint32_t type;
    size_t len;
    unsigned char data[]; /* payload copied into each tick's message */
};

struct wispi_timer_heap {
    struct wispi_timer **v;
    uint32_t n, cap;
};

/* Fire every timer due at now_ms on worker w (pushes messages; runs no actor code). */
void wispi_timers_fire(struct wispi_worker *w, uint64_t now_ms);
/* Milliseconds until the next deadline, or UINT64_MAX if none. */
uint64_t wispi_timers_next(const struct wispi_worker *w);
/* A timer message reached its actor: true if it must be delivered. Frees spent timers. */
bool wispi_timer_delivered(struct wispi_worker *w, struct wispi_timer *t);
/* The actor is dying: drop all its timers. */
void wispi_timers_drop_owner(struct wispi_worker *w, struct wispi_actor *a);
void wispi_timers_destroy(struct wispi_worker *w);
/* Teardown only: a timer's queued message is freed undelivered. */
void wispi_timer_orphan(struct wispi_timer *t);

/* ---- workers ------------------------------------------------------------------------------ */

struct wispi_worker {
    struct wisp_runtime *rt;
    unsigned index;
    pthread_t thread;
    bool started;
    struct io_uring *ring;      /* NULL in deterministic mode */
    int wake_fd;                /* eventfd: wakes from threads that have no ring */
    uint64_t wake_buf;
    bool eventfd_armed;         /* a read of wake_fd is queued on the ring */
    struct wispi_runq remote;   /* actors scheduled by other threads */
    struct wispi_actor *local_head, *local_tail; /* actors scheduled by this thread */
    uint32_t local_len;
    /* 1 while the worker is (about to be) asleep in the ring wait; a producer that swaps it to
     * 0 owes the worker one wake-up. */
    _Atomic int sleeping;
    _Atomic uint32_t load; /* actors homed here (placement and sharing) */
    struct wispi_timer_heap timers;
    uint64_t now_ms;       /* cached clock for this loop iteration */
    struct wisp_ctx *ctx;  /* the context handed to callbacks */
    uint64_t rng;          /* deterministic mode: run-order generator */
    struct wispi_msg_pool pool;
    uint64_t turns;        /* statistics */
    struct wispi_net *net; /* sockets, buffers (net.h); NULL until the first socket */
    /* Connections homed here, for placing new ones; written by this worker, read by the
     * listener's worker. */
    _Atomic uint32_t conns;
    /* Receives that found the buffer ring empty. Written by this worker only (load + store),
     * read by wisp_runtime_stats: relaxed, a statistic. */
    _Atomic uint64_t recv_buffer_waits;
};

/* The worker whose thread is calling, or NULL (outside threads). */
struct wispi_worker *wispi_current_worker(void);
/* Make an actor runnable on worker w from the calling thread (local or remote queue). */
void wispi_worker_enqueue(struct wispi_worker *w, struct wispi_actor *a);
/* Wake worker w if it is asleep. Any thread. */
void wispi_worker_wake(struct wispi_worker *w);
void *wispi_worker_main(void *arg);
int wispi_worker_init(struct wispi_worker *w, struct wisp_runtime *rt, unsigned index);
int wispi_worker_ring_setup(struct wispi_worker *w);
void wispi_worker_ring_teardown(struct wispi_worker *w);
void wispi_worker_destroy(struct wispi_worker *w);
/* Deterministic mode: run everything on this thread until idle or stopped. */
int wispi_worker_run_deterministic(struct wispi_worker *w);
/* Pick a worker for a new actor spawned from an outside thread. */
struct wispi_worker *wispi_worker_pick(struct wisp_runtime *rt);

/* ---- the context handed to callbacks ------------------------------------------------------ */

struct wisp_ctx {
    struct wispi_worker *worker;
    struct wispi_actor *actor;
};

/* ---- registry ----------------------------------------------------------------------------- */

struct wispi_registry_entry {
    char name[WISP_NAME_MAX + 1];
    wisp_addr who;
    bool used;
    bool tomb; /* removed: keeps probe chains intact */
};

struct wispi_registry {
    pthread_mutex_t lock;
    struct wispi_registry_entry *v;
    size_t cap, n, tombs;
};

void wispi_registry_init(struct wispi_registry *r);
void wispi_registry_destroy(struct wispi_registry *r);
/* Remove every name bound to addr (the actor is exiting). */
void wispi_registry_forget(struct wispi_registry *r, wisp_addr addr);

/* ---- the runtime ---------------------------------------------------------------------------- */

#define WISPI_SLOT_CHUNK 4096u
#define WISPI_SLOT_CHUNKS 65536u /* up to 268M actor slots */

struct wispi_slot {
    /* generation (high 32 bits) | reference count (bits 1-31) | dead (bit 0) */
    _Atomic uint64_t ctl;
    _Atomic(struct wispi_actor *) actor;
    uint32_t next_free; /* free-list link, under slot_lock */
};

struct wispi_pubsub;
struct wisp_runtime {
    struct wisp_runtime_opts opts;
    unsigned nworkers;
    struct wispi_worker *workers;
    /* Slot table: chunks are allocated on demand and never freed before teardown, so any
     * thread may read a slot without a lock. */
    _Atomic(struct wispi_slot *) chunks[WISPI_SLOT_CHUNKS];
    pthread_mutex_t slot_lock; /* free list and table growth */
    uint32_t free_head;        /* 0 = none (slot 0 is never used) */
    uint32_t slots_used;       /* high-water mark */
    _Atomic size_t live;       /* live actors */
    _Atomic uint64_t next_ref; /* monitor references and timer ids */
    _Atomic unsigned spawn_rr; /* round robin for outside spawns */
    /* 0 running, 1 stop requested, 2 shutdown broadcast sent, 3 killing stragglers */
    _Atomic int stop_state;
    _Atomic bool started;
    uint64_t stop_deadline_ms;
    struct wispi_registry registry;
    uint64_t virtual_now_ms; /* deterministic mode */
    /* Batches of free message blocks shared by the workers (see struct wispi_msg_pool). */
    pthread_mutex_t batch_lock;
    struct wispi_msg *batches; /* each batch linked through node.next; batches via `data` */
    uint32_t nbatches;
    /* Name-resolution threads of client connections still running (conn_client.c): the
     * runtime is not freed under them. */
    _Atomic unsigned resolvers;
    struct wispi_pubsub *pubsub; /* topics and delivery actors (pubsub.c) */
};

/* Clock in milliseconds: virtual in deterministic mode, CLOCK_MONOTONIC otherwise. */
uint64_t wispi_now_ms(const struct wisp_runtime *rt);
/* Called by a worker loop: drive the shutdown (broadcast, deadline). Returns true when the
 * worker may exit (stop requested and no actor left). */
bool wispi_shutdown_step(struct wispi_worker *w);
/* Record the calling thread's last error sentence. */
void wispi_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
