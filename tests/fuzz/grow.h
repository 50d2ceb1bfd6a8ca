/* Shared by the HTTP fuzzers: feed a head to an incremental parser the way a socket delivers
 * it, in growing prefixes, each an exact-size heap copy (so ASan sees any read past it). */
#ifndef WISP_FUZZ_GROW_H
#define WISP_FUZZ_GROW_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <wisp/error.h>

/* An exact-size copy of n bytes (a 1-byte block for n == 0); NULL only when out of memory. */
static inline char *fuzz_exact_copy(const uint8_t *p, size_t n)
{
    char *b = malloc(n ? n : 1);
    if (b && n)
        memcpy(b, p, n);
    return b;
}

/* One incremental parse call: parse(buf, len, prev_len, ctx). */
typedef ssize_t (*fuzz_parse_fn)(const char *buf, size_t len, size_t prev, void *ctx);

struct fuzz_grown {
    ssize_t rc;  /* the parser's last answer */
    char *part;  /* the prefix it last saw (heap; the caller frees it) */
    size_t len;  /* its length */
    size_t prev; /* the prev_len of that last call */
};

/* Grow the prefix until the parser stops answering WISP_EINCOMPLETE. mode & 7 == 0 grows one
 * byte at a time; otherwise steps are drawn up to (mode & 7)^2 * 16 bytes from *seed. */
static inline struct fuzz_grown fuzz_parse_growing(const uint8_t *data, size_t size,
                                                   unsigned mode, uint32_t *seed,
                                                   fuzz_parse_fn parse, void *ctx)
{
    size_t max_step = (size_t)(mode & 7) * (mode & 7) * 16;
    struct fuzz_grown g = {WISP_EINCOMPLETE, NULL, 0, 0};
    while (g.len < size) {
        size_t step = 1;
        if (max_step) {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 17;
            *seed ^= *seed << 5;
            step = 1 + *seed % max_step;
        }
        g.len = size - g.len < step ? size : g.len + step;
        free(g.part);
        g.part = fuzz_exact_copy(data, g.len);
        if (!g.part)
            abort();
        g.rc = parse(g.part, g.len, g.prev, ctx);
        if (g.rc != WISP_EINCOMPLETE)
            break;
        g.prev = g.len;
    }
    if (size == 0) {
        g.part = fuzz_exact_copy(data, 0);
        if (!g.part)
            abort();
        g.rc = parse(g.part, 0, 0, ctx);
    }
    return g;
}

#endif
