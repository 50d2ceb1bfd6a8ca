/* actors/cli.c: helpers shared by the command-line programs (see cli.h). */
#include "cli.h"

#include <sys/resource.h>

#include <wisp/error.h>
#include <wisp/runtime.h>

bool wisp_cli_number(const char *s, bool size, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (*p != '\0') {
        unsigned shift;
        switch (*p) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        default: return false;
        }
        if (!size || p[1] != '\0' || v > (UINT64_MAX >> shift))
            return false;
        v <<= shift;
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

void wisp_cli_raise_file_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

const char *wisp_cli_error_text(int rc)
{
    const char *e = wisp_last_error();
    return e && *e ? e : wisp_strerror(rc);
}
