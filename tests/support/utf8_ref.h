/* Test support: a reference UTF-8 checker, written to be obviously right rather than fast.
 *
 * It shares nothing with wsproto/utf8.c (no tables, no byte ranges): it decodes by the bit
 * patterns of RFC 3629 and, after each byte, asks whether the code points that the bytes so
 * far could still become include a valid one:
 *   - a character of L bytes encodes exactly U+0000..7F (L=1), U+0080..7FF (2),
 *     U+0800..FFFF (3) or U+10000..10FFFF (4), and never a surrogate U+D800..DFFF;
 *   - with k of its L bytes read, the code point lies in [v << 6(L-k), (v << 6(L-k)) | ones]
 *     where v holds the bits read so far: the prefix is viable iff that interval meets the
 *     valid set.
 * The first byte after which no completion is viable is the "fail-fast position" a validator
 * must report, and it is what the tests compare against.
 */
#ifndef WISP_TEST_UTF8_REF_H
#define WISP_TEST_UTF8_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct utf8_ref {
    bool bad;      /* some byte makes the input impossible */
    size_t bad_at; /* if bad: index of the first such byte */
    bool boundary; /* if !bad: the input ends between characters (so it is valid) */
};

/* Can a character of len bytes, whose first `have` bytes gave the value bits v, still be a
 * valid code point? */
static inline bool utf8_ref_viable(uint32_t v, int len, int have)
{
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    static const uint32_t max[5] = {0, 0x7F, 0x7FF, 0xFFFF, 0x10FFFF};
    int shift = 6 * (len - have);
    uint32_t lo = v << shift;
    uint32_t hi = lo | ((UINT32_C(1) << shift) - 1);
    if (lo < min[len])
        lo = min[len];
    if (hi > max[len])
        hi = max[len];
    if (lo > hi)
        return false;
    if (lo >= 0xD800 && hi <= 0xDFFF)
        return false; /* only surrogates left */
    return true;
}

static inline struct utf8_ref utf8_ref_check(const uint8_t *p, size_t n)
{
    struct utf8_ref r = {false, 0, true};
    size_t i = 0;
    while (i < n) {
        uint8_t b = p[i];
        int len;
        uint32_t v;
        if (b < 0x80) {
            i++;
            continue;
        } else if ((b & 0xE0) == 0xC0) {
            len = 2, v = b & 0x1F;
        } else if ((b & 0xF0) == 0xE0) {
            len = 3, v = b & 0x0F;
        } else if ((b & 0xF8) == 0xF0) {
            len = 4, v = b & 0x07;
        } else {
            r.bad = true, r.bad_at = i; /* 10xxxxxx, or a 5+ byte form */
            return r;
        }
        if (!utf8_ref_viable(v, len, 1)) {
            r.bad = true, r.bad_at = i;
            return r;
        }
        for (int k = 1; k < len; k++) {
            if (i + (size_t)k >= n) {
                r.boundary = false; /* cut short, but nothing impossible yet */
                return r;
            }
            uint8_t c = p[i + (size_t)k];
            if ((c & 0xC0) != 0x80) {
                r.bad = true, r.bad_at = i + (size_t)k;
                return r;
            }
            v = v << 6 | (c & 0x3F);
            if (!utf8_ref_viable(v, len, k + 1)) {
                r.bad = true, r.bad_at = i + (size_t)k;
                return r;
            }
        }
        i += (size_t)len;
    }
    return r;
}

/* Encode one code point (any value up to 0x1FFFFF, surrogates included: tests build invalid
 * input with it). Returns the length, 1-4. */
static inline size_t utf8_ref_encode(uint32_t cp, uint8_t out[4])
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18 & 0x07));
    out[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

#endif
