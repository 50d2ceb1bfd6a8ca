/* actors/url.h: percent-decoding, shared by the modules that read URLs (the static-file
 * responder's paths, the chat room's query). */
#ifndef WISP_ACTORS_URL_H
#define WISP_ACTORS_URL_H

#include <stddef.h>

/** The byte a percent escape "%XY" at s[i] (s[i] == '%', n bytes in s) stands for, hex digits
 *  in either case; -1 when the escape is cut short or not hex. */
int wurl_pct_byte(const char *s, size_t n, size_t i);

#endif
