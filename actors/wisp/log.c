/* actors/wisp/log.c: the program's log lines (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Written during setup only, before any worker thread exists (thread creation orders it
 * before every later read). */
static enum wp_log_level g_level = WP_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void wp_log_set_level(enum wp_log_level level)
{
    g_level = level;
}

enum wp_log_level wp_log_get_level(void)
{
    return g_level;
}

bool wp_log_parse_level(const char *s, enum wp_log_level *out)
{
    for (unsigned i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum wp_log_level)i;
            return true;
        }
    }
    return false;
}

const char *wp_log_level_name(enum wp_log_level level)
{
    return (unsigned)level < sizeof level_names / sizeof level_names[0] ? level_names[level]
                                                                          : "?";
}

bool wp_log_enabled(enum wp_log_level level)
{
    return level == WP_LOG_ERROR || level <= g_level;
}

void wp_log(enum wp_log_level level, const char *fmt, ...)
{
    if (!wp_log_enabled(level))
        return;
    char line[2048];
    int n = snprintf(line, sizeof line, "wisp: %s: ", wp_log_level_name(level));
    if (n < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2)
        len = sizeof line - 2; /* truncated: keep the newline */
    line[len++] = '\n';
    /* One write per line: stderr is unbuffered, and fwrite holds the stream lock. */
    fwrite(line, 1, len, stderr);
}

void wp_log_server_line(void *arg, const char *line)
{
    (void)arg;
    wp_log(WP_LOG_WARN, "%s", line);
}
