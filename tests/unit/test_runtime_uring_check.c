/* When io_uring is unusable, wisp_runtime_new() fails with a clear sentence instead of
 * crashing later. A forked child forbids io_uring_setup with a seccomp filter (as a container
 * policy would) and checks what the runtime says. */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <wisp/runtime.h>

/* Child: forbid io_uring_setup with `err`, then try to create a runtime. Exit 0 if the
 * runtime refused with -err and a message that names the cause. */
static int child(int err, const char *must_mention)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof filter / sizeof filter[0], .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
        return 77; /* cannot install the filter here: nothing to test */
    struct wisp_runtime *rt = NULL;
    int rc = wisp_runtime_new(NULL, &rt);
    const char *msg = wisp_last_error();
    fprintf(stderr, "runtime_new: %d: %s\n", rc, msg);
    if (rc != -err || rt != NULL)
        return 1;
    return strstr(msg, must_mention) ? 0 : 2;
}

static void expect_refusal(int err, const char *must_mention)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child(err, must_mention));
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77)
        skip();
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_blocked_by_policy(void **state)
{
    expect_refusal(EPERM, "io_uring");
}

static void test_missing_from_kernel(void **state)
{
    expect_refusal(ENOSYS, "not available");
}

/* The deterministic mode does not need io_uring at all. */
static void test_deterministic_needs_no_ring(void **state)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct sock_filter filter[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {.len = 4, .filter = filter};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
            _exit(77);
        struct wisp_runtime_opts o;
        wisp_runtime_opts_init(&o);
        o.deterministic = true;
        struct wisp_runtime *rt;
        int rc = wisp_runtime_new(&o, &rt);
        if (rc == 0)
            wisp_runtime_free(rt);
        _exit(rc == 0 ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
        skip();
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocked_by_policy),
        cmocka_unit_test(test_missing_from_kernel),
        cmocka_unit_test(test_deterministic_needs_no_ring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
