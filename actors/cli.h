/* actors/cli.h: small helpers shared by the command-line programs (wisp-echo and wisp).
 *
 * Written against the public headers only; part of libwisp_actors.a (wisp_actors_dep).
 */
#ifndef WISP_ACTORS_CLI_H
#define WISP_ACTORS_CLI_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Parse s, a whole decimal number, into *out when it lies in [min, max].
 *
 * With size true, one K, M or G suffix (either case) multiplies the number by 1024, 1024^2 or
 * 1024^3 ("16M" is 16777216); without it, a suffix is refused. Signs, spaces, an empty string,
 * any other character and a value that overflows 64 bits are refused too.
 *
 * @return true with *out set; false with *out untouched. Prints nothing: the caller says what
 *         was wrong, in its own words. */
bool wisp_cli_number(const char *s, bool size, uint64_t min, uint64_t max, uint64_t *out);

/** Raise the soft limit on open files (RLIMIT_NOFILE) to the hard limit: the usual soft limit
 * (often 1024) is far below what a server needs, and max_connections defaults to it. Failure
 * is ignored (the old limit stays). */
void wisp_cli_raise_file_limit(void);

/** The text to print for the wisp error code rc that a call on this thread just returned:
 * wisp_last_error() when that has a detail, else wisp_strerror(rc). Never NULL. */
const char *wisp_cli_error_text(int rc);

#ifdef __cplusplus
}
#endif

#endif
