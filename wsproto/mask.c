/* Masking (RFC 6455 §5.3): byte i of a payload is XOR-ed with key[i % 4]. See mask.h.
 *
 * The 4-byte key repeats, so a block whose length is a multiple of 4 sees the same key bytes
 * in the same order: with the key laid out 2x in a 64-bit word (or 4x in an SSE2 vector) the
 * payload is XOR-ed 8, 16 or 64 bytes per step. Only where the block starts matters, which is
 * why one helper takes a `phase` (payload position modulo 4): it picks the key byte that lines
 * up with the first byte, and every later block keeps that alignment.
 *
 * All loads and stores go through memcpy (or byte accesses): defined for any alignment and
 * any type, and compiled to plain unaligned moves. Nothing outside [src, src + n) is read and
 * nothing outside [dst, dst + n) is written: each wide step runs only while its width remains.
 */
#include "mask.h"

#include <string.h>

#include <wisp/ws.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* The 4 key bytes as one word, in memory order: one 4-byte load. (Assembling words from
 * separate byte stores and reading them back wider stalls store forwarding, which cost a
 * 16-byte unmask several times its XOR work; so the key lives in registers from here on.) */
static inline uint32_t key_load(const uint8_t key[4])
{
    uint32_t k;
    memcpy(&k, key, sizeof k);
    return k;
}

/* The key word whose memory byte j is byte (j + r) % 4 of k's: the key as seen from payload
 * position r. A rotation by whole bytes, whose direction depends on the byte order. */
static inline uint32_t key_rotate(uint32_t k, size_t r)
{
    unsigned bits = (unsigned)(r & 3) * 8;
    if (bits == 0)
        return k;
#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) &&                                    \
    __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return k << bits | k >> (32 - bits);
#elif defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) &&                               \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return k >> bits | k << (32 - bits);
#else
    /* unknown byte order: go through memory (slower, always right) */
    uint8_t b[4], o[4];
    memcpy(b, &k, 4);
    for (size_t j = 0; j < 4; j++)
        o[j] = b[(j + r) & 3];
    memcpy(&k, o, 4);
    return k;
#endif
}

/* dst[i] = src[i] ^ key[(phase + i) % 4] for i < n. dst == src is allowed (in place); other
 * overlaps are not. */
static void xor_key(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], size_t phase)
{
    size_t i = 0;
    phase &= 3;

    /* On a long run, first bring dst to a 16-byte boundary byte by byte, so the wide stores
     * (and, in place, the loads) never straddle cache lines. Short runs skip this: the head
     * would cost more than the split accesses it avoids. */
    if (n >= 128) {
        size_t head = (size_t)(-(uintptr_t)dst & 15);
        for (; i < head; i++)
            dst[i] = src[i] ^ key[(phase + i) & 3];
    }
    /* From here on blocks are multiples of 4 bytes long, so byte i always meets
     * key[(phase + i) & 3] where the word built for position i puts it. A word whose two
     * halves are equal is the same in either byte order. */
    uint32_t k32 = key_rotate(key_load(key), phase + i);
    uint64_t k = (uint64_t)k32 << 32 | k32;

#if defined(__SSE2__)
    if (n - i >= 16) {
        __m128i kv = _mm_set1_epi32((int)k32);
        for (; n - i >= 64; i += 64) {
            __m128i a, b, c, d;
            memcpy(&a, src + i, 16);
            memcpy(&b, src + i + 16, 16);
            memcpy(&c, src + i + 32, 16);
            memcpy(&d, src + i + 48, 16);
            a = _mm_xor_si128(a, kv);
            b = _mm_xor_si128(b, kv);
            c = _mm_xor_si128(c, kv);
            d = _mm_xor_si128(d, kv);
            memcpy(dst + i, &a, 16);
            memcpy(dst + i + 16, &b, 16);
            memcpy(dst + i + 32, &c, 16);
            memcpy(dst + i + 48, &d, 16);
        }
        for (; n - i >= 16; i += 16) {
            __m128i a;
            memcpy(&a, src + i, 16);
            a = _mm_xor_si128(a, kv);
            memcpy(dst + i, &a, 16);
        }
    }
#endif
    for (; n - i >= 8; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, sizeof w);
        w ^= k;
        memcpy(dst + i, &w, sizeof w);
    }
    /* Tail of 0-7 bytes (a 4-byte step first would save little and add a branch). */
    for (; i < n; i++)
        dst[i] = src[i] ^ key[(phase + i) & 3];
}

void wispi_unmask(uint8_t *p, size_t n, uint8_t key[4])
{
    xor_key(p, p, n, key, 0);
    /* The next piece of this payload starts at position n, which meets key[n % 4]: rotate
     * the key left by n % 4 so that byte is key[0] again and the parser need not store an
     * offset next to the key. */
    uint32_t k = key_rotate(key_load(key), n);
    memcpy(key, &k, sizeof k);
}

void wispi_mask_copy(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4])
{
    xor_key(dst, src, n, key, 0);
}

void wisp_ws_mask(uint8_t *p, size_t len, const uint8_t mask[4], size_t offset)
{
    if (len == 0)
        return;
    xor_key(p, p, len, mask, offset);
}
