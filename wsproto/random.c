/* Kernel CSPRNG bytes for masking keys (batched per thread) and nonces. See random.h.
 *
 * A client masks every frame it sends with a fresh key (RFC 6455 §5.3), so asking the kernel
 * for 4 bytes per frame would put a syscall on every send. Instead each thread keeps a pool of
 * WISPI_RANDOM_POOL_SIZE getrandom() bytes and hands out 4 at a time: one syscall per 128
 * keys. The pool is _Thread_local, so no lock is needed.
 *
 * fork() copies the pool; a child that went on to use it would send the very keys its parent
 * is about to send. A pthread_atfork() child handler therefore wipes the pool of the thread
 * that forked (the only thread the child has). Limits: a child made by a raw clone()/fork
 * syscall or by glibc's _Fork() runs no atfork handlers and is not covered; such a child must
 * not mask frames before exec. Pools of the parent's other threads stay in the child's memory
 * (no thread of the child can reach them through this file).
 *
 * Failure: masking keys must never be predictable, so if getrandom() fails for the pool (say a
 * seccomp filter forbids it) wispi_random_mask() prints the reason and aborts rather than
 * fall back to a weaker source. wispi_random_bytes() returns -errno instead: its callers
 * (handshake nonces) can fail the one operation.
 */
#include "random.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>

_Static_assert(WISPI_RANDOM_POOL_SIZE % 4 == 0, "the pool hands out whole keys");

struct pool {
    uint8_t bytes[WISPI_RANDOM_POOL_SIZE];
    size_t avail; /* unused bytes: bytes[0 .. avail) */
    uint64_t refills;
};

/* Zero-initialised: avail == 0 is an empty pool, so a thread's first key refills it. */
static _Thread_local struct pool pool;

static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
/* Set once the child handler is registered; until then (or if that failed) no pool is kept,
 * each key is a getrandom() call of its own. */
static bool fork_safe;

/* Runs in a fork() child, in the thread that called fork(). */
static void pool_forget(void)
{
    explicit_bzero(pool.bytes, sizeof pool.bytes);
    pool.avail = 0;
}

static void register_fork_handler(void)
{
    fork_safe = pthread_atfork(NULL, NULL, pool_forget) == 0;
}

/* getrandom() until n bytes are written: it returns fewer than asked when a signal arrives
 * mid-way (for requests over 256 bytes) and -1/EINTR when one arrives first. */
static int fill(uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return -EIO; /* not documented to happen; do not spin on it */
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static void fill_or_die(uint8_t *p, size_t n)
{
    int err = fill(p, n);
    if (err < 0) {
        fprintf(stderr,
                "wisp: getrandom() failed (%s): cannot draw unpredictable WebSocket masking "
                "keys, aborting\n",
                strerror(-err));
        abort();
    }
}

void wispi_random_mask(uint8_t key[4])
{
    if (pool.avail < 4) {
        pthread_once(&fork_once, register_fork_handler);
        if (!fork_safe) {
            fill_or_die(key, 4);
            return;
        }
        fill_or_die(pool.bytes, sizeof pool.bytes);
        pool.avail = sizeof pool.bytes;
        pool.refills++;
    }
    pool.avail -= 4;
    memcpy(key, pool.bytes + pool.avail, 4);
}

uint64_t wispi_random_pool_refills(void)
{
    return pool.refills;
}

int wispi_random_bytes(void *out, size_t n)
{
    if (n == 0)
        return 0;
    if (out == NULL)
        return -EINVAL;
    return fill(out, n);
}
