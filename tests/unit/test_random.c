/* Unit tests for wsproto/random.c: pooled masking keys and wispi_random_bytes().
 *
 * Randomness cannot be proven by a test; these check the plumbing instead: keys do not
 * repeat (beyond the birthday odds of 32-bit values), the pool is refilled once per
 * WISPI_RANDOM_POOL_SIZE / 4 keys and not per key, each thread has its own pool, a forked
 * child does not replay its parent's pool, and getrandom() interrupted by signals still
 * fills the whole buffer. getrandom() itself is interposed below to count syscalls and to
 * inject the failures a healthy kernel does not produce on demand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "random.h"

/* getrandom() interposed: the executable's definition takes precedence over libc's for the
 * static library's calls. It counts calls and, when a test asks, injects what the kernel
 * only does in rare conditions: EINTR (a signal while waiting for the CRNG at boot), short
 * counts, a zero count, or failure (a seccomp filter, say). Otherwise it is the syscall. */
enum inject { INJECT_NONE, INJECT_EINTR_SHORT, INJECT_ZERO, INJECT_EPERM };
static _Atomic int inject = INJECT_NONE;
static atomic_ulong getrandom_calls, injected_eintr;

ssize_t getrandom(void *buf, size_t len, unsigned int flags)
{
    unsigned long call = atomic_fetch_add(&getrandom_calls, 1);
    switch (atomic_load(&inject)) {
    case INJECT_EINTR_SHORT:
        if (call % 2 == 0) { /* every other call: interrupted before any byte */
            atomic_fetch_add(&injected_eintr, 1);
            errno = EINTR;
            return -1;
        }
        if (len > 3) /* and the others deliver 1-3 bytes */
            len = 1 + call % 3;
        break;
    case INJECT_ZERO:
        return 0;
    case INJECT_EPERM:
        errno = EPERM;
        return -1;
    default:
        break;
    }
    return syscall(SYS_getrandom, buf, len, flags);
}

static uint32_t key32(const uint8_t k[4])
{
    return (uint32_t)k[0] | (uint32_t)k[1] << 8 | (uint32_t)k[2] << 16 | (uint32_t)k[3] << 24;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Equal pairs among n 32-bit values (expected n^2 / 2^33 for random ones). */
static size_t duplicates(uint32_t *v, size_t n)
{
    qsort(v, n, sizeof v[0], cmp_u32);
    size_t d = 0;
    for (size_t i = 1; i < n; i++)
        d += v[i] == v[i - 1];
    return d;
}

static size_t popcount_bytes(const uint8_t *p, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += (size_t)__builtin_popcount(p[i]);
    return c;
}

static void test_keys_differ(void **state)
{
    enum { N = 20000 };
    static uint32_t keys[N];
    size_t ones = 0;
    for (size_t i = 0; i < N; i++) {
        uint8_t k[4];
        wispi_random_mask(k);
        keys[i] = key32(k);
        ones += popcount_bytes(k, 4);
        if (i > 0)
            assert_true(keys[i] != keys[i - 1]);
    }
    /* 20000 keys: 0.05 equal pairs expected; 3 would be a one-in-millions event. */
    assert_true(duplicates(keys, N) < 3);
    /* half the 640000 bits set, within ~8 standard deviations (sd = 400) */
    assert_true(ones > 320000 - 3200 && ones < 320000 + 3200);
}

static void test_pool_refills(void **state)
{
    enum { KEYS_PER_POOL = WISPI_RANDOM_POOL_SIZE / 4, POOLS = 10 };
    uint64_t before = wispi_random_pool_refills();
    for (size_t i = 0; i < KEYS_PER_POOL * POOLS; i++) {
        uint8_t k[4];
        wispi_random_mask(k);
    }
    uint64_t refills = wispi_random_pool_refills() - before;
    /* one refill per pool's worth of keys (plus one if the pool was part-used before) */
    assert_true(refills == POOLS || refills == POOLS + 1);

    /* Keys across several refills never repeat a pool: a pool that was reused or not
     * refreshed would show as a run of equal keys one pool apart. */
    static uint32_t keys[KEYS_PER_POOL * 4];
    for (size_t i = 0; i < KEYS_PER_POOL * 4; i++) {
        uint8_t k[4];
        wispi_random_mask(k);
        keys[i] = key32(k);
    }
    size_t same = 0;
    for (size_t i = KEYS_PER_POOL; i < KEYS_PER_POOL * 4; i++)
        same += keys[i] == keys[i - KEYS_PER_POOL];
    assert_true(same < 2);
}

enum { THREADS = 4, THREAD_KEYS = 5000 };

struct thread_result {
    uint32_t keys[THREAD_KEYS];
    uint64_t refills_before, refills_after;
};

static void *draw_keys(void *arg)
{
    struct thread_result *r = arg;
    r->refills_before = wispi_random_pool_refills();
    for (size_t i = 0; i < THREAD_KEYS; i++) {
        uint8_t k[4];
        wispi_random_mask(k);
        r->keys[i] = key32(k);
    }
    r->refills_after = wispi_random_pool_refills();
    return NULL;
}

static void test_threads(void **state)
{
    static struct thread_result res[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, draw_keys, &res[i]), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    static uint32_t all[THREADS * THREAD_KEYS];
    for (int i = 0; i < THREADS; i++) {
        /* a fresh thread starts with an empty pool of its own and refills it itself */
        assert_int_equal(res[i].refills_before, 0);
        uint64_t want = (THREAD_KEYS * 4 + WISPI_RANDOM_POOL_SIZE - 1) / WISPI_RANDOM_POOL_SIZE;
        assert_int_equal(res[i].refills_after, want);
        for (int j = 0; j < i; j++)
            assert_true(memcmp(res[i].keys, res[j].keys, 16 * sizeof(uint32_t)) != 0);
        memcpy(all + (size_t)i * THREAD_KEYS, res[i].keys, sizeof res[i].keys);
    }
    /* 20000 keys over all threads: no pool was shared */
    assert_true(duplicates(all, THREADS * THREAD_KEYS) < 3);
}

enum { FORK_KEYS = 64 };

/* Draw a key (so the pool holds unused bytes), fork, and draw FORK_KEYS keys in both
 * processes. Without the fork handler both would hand out the same pool bytes. */
static void fork_and_compare(void)
{
    uint8_t k[4];
    wispi_random_mask(k);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        uint32_t keys[FORK_KEYS + 1];
        uint64_t before = wispi_random_pool_refills();
        for (size_t i = 0; i < FORK_KEYS; i++) {
            wispi_random_mask(k);
            keys[i] = key32(k);
        }
        /* the child refilled its own pool before its first key */
        keys[FORK_KEYS] = (uint32_t)(wispi_random_pool_refills() - before);
        ssize_t w = write(fds[1], keys, sizeof keys);
        _exit(w == (ssize_t)sizeof keys ? 0 : 1);
    }
    close(fds[1]);
    uint32_t mine[FORK_KEYS], theirs[FORK_KEYS + 1];
    for (size_t i = 0; i < FORK_KEYS; i++) {
        wispi_random_mask(k);
        mine[i] = key32(k);
    }
    size_t got = 0;
    while (got < sizeof theirs) {
        ssize_t r = read(fds[0], (uint8_t *)theirs + got, sizeof theirs - got);
        if (r < 0 && errno == EINTR)
            continue;
        assert_true(r > 0);
        got += (size_t)r;
    }
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(theirs[FORK_KEYS] >= 1);
    size_t same = 0;
    for (size_t i = 0; i < FORK_KEYS; i++)
        for (size_t j = 0; j < FORK_KEYS; j++)
            same += mine[i] == theirs[j];
    assert_true(same < 2);
}

static void test_fork(void **state)
{
    fork_and_compare();
}

static void *fork_from_thread(void *arg)
{
    fork_and_compare();
    return arg;
}

/* fork() from a second thread: the child's only thread is a copy of that one. */
static void test_fork_from_thread(void **state)
{
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fork_from_thread, NULL), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
}

static void test_random_bytes(void **state)
{
    assert_int_equal(wispi_random_bytes(NULL, 0), 0);
    assert_int_equal(wispi_random_bytes(NULL, 16), -EINVAL);
    uint8_t a[64], b[64];
    assert_int_equal(wispi_random_bytes(a, sizeof a), 0);
    assert_int_equal(wispi_random_bytes(b, sizeof b), 0);
    assert_true(memcmp(a, b, sizeof a) != 0);
    /* a request larger than one getrandom() call is guaranteed to return at once */
    size_t n = 1u << 20;
    uint8_t *big = calloc(1, n);
    assert_non_null(big);
    assert_int_equal(wispi_random_bytes(big, n), 0);
    size_t ones = popcount_bytes(big, n);
    assert_true(ones > n * 4 - n / 32 && ones < n * 4 + n / 32);
    /* no 64-byte block left untouched (a short read not continued would leave zeros) */
    static const uint8_t zero[64];
    for (size_t i = 0; i < n; i += 64)
        assert_true(memcmp(big + i, zero, 64) != 0);
    free(big);
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

/* Large requests under a storm of signals (no SA_RESTART): getrandom() returns short counts
 * or EINTR, and wispi_random_bytes() must carry on until the buffer is full. */
static void test_random_bytes_signals(void **state)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
    struct itimerval tv = {{0, 50}, {0, 50}}, off = {{0, 0}, {0, 0}};
    assert_int_equal(setitimer(ITIMER_REAL, &tv, NULL), 0);

    size_t n = 8u << 20;
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    static const uint8_t zero[64];
    for (int round = 0; round < 8; round++) {
        memset(buf, 0, n);
        assert_int_equal(wispi_random_bytes(buf, n), 0);
        for (size_t i = 0; i < n; i += 64)
            assert_true(memcmp(buf + i, zero, 64) != 0);
        for (int j = 0; j < 300; j++) { /* keys too, while signals fly */
            uint8_t k[4];
            wispi_random_mask(k);
        }
    }
    assert_int_equal(setitimer(ITIMER_REAL, &off, NULL), 0);
    assert_int_equal(sigaction(SIGALRM, &old, NULL), 0);
    free(buf);
    print_message("%d signals during the reads\n", (int)alarms);
    assert_true(alarms > 0);
}

/* One getrandom() call per pool's worth of keys, not one per key. */
static void test_one_syscall_per_pool(void **state)
{
    enum { KEYS_PER_POOL = WISPI_RANDOM_POOL_SIZE / 4, POOLS = 20 };
    uint8_t k[4];
    /* drain the pool to a refill boundary first */
    uint64_t r0 = wispi_random_pool_refills();
    while (wispi_random_pool_refills() == r0)
        wispi_random_mask(k);
    for (int i = 1; i < KEYS_PER_POOL; i++)
        wispi_random_mask(k);
    unsigned long calls = atomic_load(&getrandom_calls);
    for (int i = 0; i < KEYS_PER_POOL * POOLS; i++)
        wispi_random_mask(k);
    assert_int_equal(atomic_load(&getrandom_calls) - calls, POOLS);
}

/* EINTR and short counts: both functions retry until every byte is filled. */
static void test_eintr_and_short_counts(void **state)
{
    atomic_store(&injected_eintr, 0);
    atomic_store(&inject, INJECT_EINTR_SHORT);
    uint8_t buf[1000];
    memset(buf, 0, sizeof buf);
    unsigned long calls = atomic_load(&getrandom_calls);
    int rc = wispi_random_bytes(buf, sizeof buf);
    unsigned long used = atomic_load(&getrandom_calls) - calls;
    /* keys across several refills, each refill now taking hundreds of calls */
    uint64_t r0 = wispi_random_pool_refills();
    uint32_t keys[3 * WISPI_RANDOM_POOL_SIZE / 4];
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        uint8_t k[4];
        wispi_random_mask(k);
        keys[i] = key32(k);
    }
    atomic_store(&inject, INJECT_NONE);
    assert_int_equal(rc, 0);
    assert_true(used > 2 * sizeof buf / 3); /* really was fed 1-3 bytes at a time */
    assert_true(atomic_load(&injected_eintr) > 100);
    size_t zeros = 0;
    for (size_t i = 0; i < sizeof buf; i++)
        zeros += buf[i] == 0;
    assert_true(zeros < 20); /* ~4 expected from random bytes */
    assert_true(wispi_random_pool_refills() - r0 >= 3);
    assert_true(duplicates(keys, sizeof keys / sizeof keys[0]) < 2);
}

/* wispi_random_bytes() reports failure as -errno, and a zero count as -EIO (not a spin). */
static void test_random_bytes_failure(void **state)
{
    uint8_t buf[16];
    atomic_store(&inject, INJECT_EPERM);
    int rc = wispi_random_bytes(buf, sizeof buf);
    atomic_store(&inject, INJECT_ZERO);
    int rc0 = wispi_random_bytes(buf, sizeof buf);
    atomic_store(&inject, INJECT_NONE);
    assert_int_equal(rc, -EPERM);
    assert_int_equal(rc0, -EIO);
}

/* A masking key is never made up: if the kernel refuses, the process aborts with a message.
 * Run in a child whose pool is empty (fork wiped it) and whose stderr is a pipe. */
static void test_mask_failure_aborts(void **state)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGABRT, SIG_DFL);
        dup2(fds[1], STDERR_FILENO);
        atomic_store(&inject, INJECT_EPERM);
        uint8_t k[4];
        wispi_random_mask(k);
        _exit(0); /* not reached */
    }
    close(fds[1]);
    char msg[512];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof msg - 1 && (r = read(fds[0], msg + got, sizeof msg - 1 - got)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        assert_true(r > 0);
        got += (size_t)r;
    }
    msg[got] = 0;
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    assert_non_null(strstr(msg, "getrandom() failed"));
    assert_non_null(strstr(msg, "masking keys"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_differ),
        cmocka_unit_test(test_pool_refills),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_fork),
        cmocka_unit_test(test_fork_from_thread),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_random_bytes_signals),
        cmocka_unit_test(test_one_syscall_per_pool),
        cmocka_unit_test(test_eintr_and_short_counts),
        cmocka_unit_test(test_random_bytes_failure),
        cmocka_unit_test(test_mask_failure_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
