/* Helpers shared by the HTTP files of wsproto (parser, writers, both handshake roles).
 * Nothing here is public API. */
#ifndef WISP_WSPROTO_HTTP_INTERNAL_H
#define WISP_WSPROTO_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <wisp/http.h>

/* Character classes, one bit each, indexed by byte value (table in http_parse.c). */
#define WISPI_HTTP_TCHAR  1u /* token character (RFC 9110 §5.6.2) */
#define WISPI_HTTP_VALUE  2u /* may appear in a field value: HTAB, SP, VCHAR, obs-text */
#define WISPI_HTTP_TARGET 4u /* may appear in an origin-form request-target: VCHAR but '#' */

extern const uint8_t wispi_http_class[256];

static inline bool wispi_http_is(unsigned char c, unsigned cls)
{
    return (wispi_http_class[c] & cls) != 0;
}

/* True if the n bytes at s are all of class cls (vacuously true for n == 0). */
static inline bool wispi_http_all(const char *s, size_t n, unsigned cls)
{
    for (size_t i = 0; i < n; i++)
        if (!wispi_http_is((unsigned char)s[i], cls))
            return false;
    return true;
}

/* A non-empty token. */
static inline bool wispi_http_is_token(const char *s, size_t n)
{
    return n > 0 && wispi_http_all(s, n, WISPI_HTTP_TCHAR);
}

/* ASCII lower case. Header names and the tokens we compare against are ASCII, so no locale is
 * involved (tolower() would consult one). */
static inline unsigned char wispi_http_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* Case-insensitive equality of n bytes at a and b. */
static inline bool wispi_http_ieq_mem(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (wispi_http_lower((unsigned char)a[i]) != wispi_http_lower((unsigned char)b[i]))
            return false;
    return true;
}

/* Case-insensitive equality of s (n bytes) and the NUL-terminated lit. */
static inline bool wispi_http_ieq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && wispi_http_ieq_mem(s, lit, n);
}

/*
 * Output that is measured before it is written, so that a writer either produces the whole
 * message or leaves the caller's buffer untouched: run the same builder once with buf == NULL
 * (only len advances), compare len with the capacity, then run it again for real.
 */
struct wispi_out {
    char *buf; /* NULL while measuring */
    size_t len;
};

static inline void wispi_out_put(struct wispi_out *o, const char *s, size_t n)
{
    if (o->buf && n)
        memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static inline void wispi_out_str(struct wispi_out *o, const char *s)
{
    wispi_out_put(o, s, strlen(s));
}

/* "name: value\r\n" */
static inline void wispi_out_header(struct wispi_out *o, const char *name, size_t name_len,
                                    const char *value, size_t value_len)
{
    wispi_out_put(o, name, name_len);
    wispi_out_put(o, ": ", 2);
    wispi_out_put(o, value, value_len);
    wispi_out_put(o, "\r\n", 2);
}

/* Decimal digits of v. */
void wispi_out_uint(struct wispi_out *o, size_t v);

/*
 * Validate caller-supplied extra headers before they are written: each name a token and not
 * one of the NULL-terminated `reserved` names (which the writer emits itself), each value free
 * of control characters other than HTAB (so CR/LF cannot start a new header or end the head).
 * A NULL array is fine when n is 0. @return 0 or -EINVAL.
 */
int wispi_http_check_headers(const struct wisp_http_header *h, size_t n,
                             const char *const *reserved);

/* Write every header of the array (already checked). */
void wispi_out_headers(struct wispi_out *o, const struct wisp_http_header *h, size_t n);

#endif
