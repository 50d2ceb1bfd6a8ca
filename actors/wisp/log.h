/* actors/wisp/log.h: the wisp program's log, on stderr.
 *
 * Every line is `wisp: LEVEL: message` (LEVEL one of error, warn, info, debug), written with
 * one call so lines from several threads do not mix. Lines above the chosen level are
 * skipped; errors are always written. Safe from any thread once the level is set (set it
 * before the runtime starts its workers).
 */
#ifndef WISP_PROG_LOG_H
#define WISP_PROG_LOG_H

#include <stdbool.h>

enum wp_log_level {
    WP_LOG_ERROR = 0,
    WP_LOG_WARN,
    WP_LOG_INFO,
    WP_LOG_DEBUG,
};

/** Set the most verbose level written (default WP_LOG_INFO). Not thread-safe: call it during
 *  setup. */
void wp_log_set_level(enum wp_log_level level);
enum wp_log_level wp_log_get_level(void);

/** Parse "error", "warn", "info" or "debug". @return false for anything else. */
bool wp_log_parse_level(const char *s, enum wp_log_level *out);
/** The name of a level ("info"). */
const char *wp_log_level_name(enum wp_log_level level);

/** Whether a line of this level would be written. */
bool wp_log_enabled(enum wp_log_level level);

/** Write one line (printf format; no newline needed). */
void wp_log(enum wp_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define wp_error(...) wp_log(WP_LOG_ERROR, __VA_ARGS__)
#define wp_warn(...) wp_log(WP_LOG_WARN, __VA_ARGS__)
#define wp_info(...) wp_log(WP_LOG_INFO, __VA_ARGS__)
#define wp_debug(...) wp_log(WP_LOG_DEBUG, __VA_ARGS__)

/** A struct wisp_server_opts log hook: the server's lines, at warn level. */
void wp_log_server_line(void *arg, const char *line);

#endif
