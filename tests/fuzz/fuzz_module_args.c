/* libFuzzer target: the mount arguments of the built-in modules "chat" and "pubsub"
 * (`--route /chat=chat:history=100,linger=0`, `--route /ps=pubsub:max_subs=16,prefix=app/`),
 * through their public struct wisp_module (mount needs no running runtime: rt is NULL).
 *
 * Input: byte 0 picks the module, a NULL argument, and the route's limits before the mount;
 * the rest is the argument (a C string, as the program passes it: up to the first NUL).
 *
 * The answer (0 or -EINVAL) must be the one a reference reading of the SETTINGS sections of
 * chat.h and pubsub_bridge.h gives; after a mount the route must be usable (a handler, its data,
 * the chat's 64 KiB message limit, send limits still ordered) and unmount frees everything.
 * Refusals print a line on stderr: the stderr FILE stream points at /dev/null (descriptor 2 is
 * untouched, so sanitizer reports still show).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wisp/pubsub.h>
#include <wisp/server.h>

#include "chat.h"
#include "pubsub_bridge.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *report;

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(report, "fuzz_module_args: %s\n", what);
        fflush(report);
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    report = fdopen(dup(2), "w");
    FILE *null = fopen("/dev/null", "w");
    if (!report || !null) {
        perror("fuzz_module_args: /dev/null");
        abort();
    }
    stderr = null;
    return 0;
}

/* ---- the reference: the settings as the headers describe them --------------------------- */

/* 1 to 10 decimal digits (chat's numbers) or any digits with an optional K/M/G (sizes). */
static bool ref_number(const char *s, size_t n, bool size, uint64_t min, uint64_t max)
{
    uint64_t v = 0;
    size_t i = 0;
    if (n == 0 || (!size && n > 10))
        return false;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        if (v > UINT64_MAX / 10 || v * 10 > UINT64_MAX - (uint64_t)(s[i] - '0'))
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (i == 0)
        return false;
    if (i < n) {
        if (!size || i + 1 != n)
            return false;
        unsigned shift = s[i] == 'k' || s[i] == 'K'   ? 10
                         : s[i] == 'm' || s[i] == 'M' ? 20
                         : s[i] == 'g' || s[i] == 'G' ? 30
                                                      : 0;
        if (!shift || v > (UINT64_MAX >> shift))
            return false;
        v <<= shift;
    }
    return v >= min && v <= max;
}

static bool key_is(const char *p, size_t kl, const char *key)
{
    return strlen(key) == kl && memcmp(p, key, kl) == 0;
}

static bool ref_setting(bool chat, const char *p, size_t n)
{
    const char *eq = memchr(p, '=', n);
    if (!eq)
        return false;
    size_t kl = (size_t)(eq - p), vl = n - kl - 1;
    const char *v = eq + 1;
    if (chat) {
        if (key_is(p, kl, "history"))
            return ref_number(v, vl, false, 0, 1000);
        if (key_is(p, kl, "max_members"))
            return ref_number(v, vl, false, 1, 100000);
        if (key_is(p, kl, "max_rooms"))
            return ref_number(v, vl, false, 1, 1000000);
        if (key_is(p, kl, "linger"))
            return ref_number(v, vl, false, 0, 86400000);
        if (key_is(p, kl, "mailbox"))
            return ref_number(v, vl, false, 16, 1000000);
        return false;
    }
    if (key_is(p, kl, "max_subs")) /* "N": a number, no unit */
        return vl && v[vl - 1] >= '0' && v[vl - 1] <= '9' &&
               ref_number(v, vl, true, 1, WISP_SUBS_MAX);
    if (key_is(p, kl, "prefix"))
        return vl <= 64;
    if (key_is(p, kl, "send_cap"))
        return ref_number(v, vl, true, 64u << 10, 1u << 30);
    return false;
}

/* key=value pairs separated by commas; no empty pair, no trailing comma; NULL or "": none. */
static bool ref_accepts(bool chat, const char *arg)
{
    if (!arg || !*arg)
        return true;
    for (const char *p = arg;;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (!ref_setting(chat, p, n))
            return false;
        if (!end)
            return true;
        p = end + 1;
        if (!*p)
            return false; /* trailing ',' */
    }
}

/* ---- the target ----------------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    bool chat = !(mode & 1);
    char *arg = (mode & 2) ? NULL : strndup((const char *)data + 1, size - 1);
    check((mode & 2) || arg, "out of memory");

    struct wisp_route r;
    check(wisp_route_init(&r, "/m", NULL) == 0, "route init");
    switch ((mode >> 2) & 3) {
    case 1: /* the program's limits, small */
        r.max_message_size = r.max_frame_size = 1000;
        r.send_cap = 100000, r.send_high_watermark = 50000, r.send_low_watermark = 40000;
        break;
    case 2: /* unlimited messages, large buffers */
        r.max_message_size = r.max_frame_size = 0;
        r.send_cap = (size_t)4 << 30, r.send_high_watermark = (size_t)2 << 30;
        break;
    case 3:
        r.max_message_size = (1ull << 32) - 1, r.max_frame_size = 1;
        break;
    }
    bool ordered = r.send_low_watermark <= r.send_high_watermark &&
                   r.send_high_watermark <= r.send_cap;

    const struct wisp_module *m = chat ? &wisp_chat_module : &wisp_pubsub_module;
    void *inst = NULL;
    int rc = m->mount(NULL, &r, arg, &inst);
    bool want = ref_accepts(chat, arg);
    check(rc == 0 || rc == -EINVAL, "mount result");
    if (want != (rc == 0)) {
        fprintf(report, "fuzz_module_args: %s mount %s '%s' (reference: %s)\n",
                chat ? "chat" : "pubsub", rc == 0 ? "accepted" : "refused", arg ? arg : "(null)",
                want ? "accept" : "refuse");
        check(false, "mount disagrees with the documented settings");
    }
    if (rc == 0) {
        check(r.handler != NULL && inst != NULL && r.data == inst, "mounted route");
        if (chat)
            check(r.max_message_size >= 1 && r.max_message_size <= 64u << 10 &&
                      r.max_frame_size >= 1 && r.max_frame_size <= 64u << 10,
                  "chat message limits");
        if (ordered)
            check(r.send_low_watermark <= r.send_high_watermark &&
                      r.send_high_watermark <= r.send_cap,
                  "send limits still ordered");
        m->unmount(inst);
    } else {
        check(inst == NULL, "instance after a refusal");
    }
    free(arg);
    return 0;
}
