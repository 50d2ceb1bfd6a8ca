/* Masking (RFC 6455 §5.3): byte i of a payload is XOR-ed with key[i % 4]. See mask.h.
 *
 * The 4-byte key repeats, so a block whose length is a multiple of 4 sees the same key bytes
 * in the same order: with the key laid out 2x in a 64-bit word (or 4x in an SSE2 vector) the
 * payload is XOR-ed 8, 16 or 64 bytes per step. Only where the block starts matters, which is
 * why one helper takes a `phase` (payload position modulo 4): it picks the key byte that lines
 * up with the first byte, and every later block keeps that alignment.
 *
 * On x86-64, runs of 32 bytes or more take an AVX2 path (32 bytes per vector) or an AVX-512
 * path (64), when the CPU has them: chosen at run time (wispi_simd_cpu, checked once) and
 * compiled function by function with target attributes, so the library still runs on any
 * x86-64. They need no byte loop at either end (see xor_key_avx2).
 *
 * All loads and stores go through memcpy (or byte accesses, or AVX-512 masked moves): defined
 * for any alignment and any type, and compiled to plain unaligned moves. Nothing outside
 * [src, src + n) is read and nothing outside [dst, dst + n) is written: each wide step runs
 * only while its width remains.
 */
#include "mask.h"

#include <string.h>

#include <wisp/ws.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* AVX2 and AVX-512 paths, compiled for those instruction sets function by function and chosen
 * at run time (wispi_simd_cpu), so the library still runs on any x86-64. */
#define HAVE_WIDE_PATHS 1
#include <immintrin.h>

#include "simd.h"
#include <stdatomic.h>
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
 * overlaps are not. The baseline path: any n, any CPU. */
static void xor_key_base(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], size_t phase)
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

#if defined(HAVE_WIDE_PATHS)
/* The wide paths below take whole vectors only, and cover the bytes a whole number of
 * vectors leaves over with two more, overlapping ones: the first vector of the run (when the
 * loop starts later, at a dst boundary) and the last one. Both are loaded and XOR-ed before
 * anything is stored and written after the loop. In place, that is what makes the overlap
 * harmless: the loop stores into bytes those two vectors also cover, but they were read from
 * the masked input, so writing them just writes the same unmasked bytes a second time. (Read
 * after the loop, they would be unmasked twice.) */

/* xor_key for n >= 32, 32 bytes per step; k is the key word as seen from position 0. */
__attribute__((target("avx2"))) static void xor_key_avx2(uint8_t *dst, const uint8_t *src,
                                                         size_t n, uint32_t k)
{
    __m256i first = _mm256_xor_si256(wispi_load32(src), _mm256_set1_epi32((int)k));
    __m256i last = _mm256_xor_si256(wispi_load32(src + n - 32),
                                    _mm256_set1_epi32((int)key_rotate(k, n - 32)));
    /* Start the loop at a 32-byte boundary of dst, so no store straddles two cache lines
     * (`first` covers the bytes before it). Short runs start at 0: there an extra vector
     * would cost more than the split stores it saves. */
    size_t start = n >= 128 ? (size_t)(-(uintptr_t)dst & 31) : 0, i = start;
    __m256i kv = _mm256_set1_epi32((int)key_rotate(k, i));
    for (; n - i >= 128; i += 128) {
        __m256i a = wispi_load32(src + i), b = wispi_load32(src + i + 32);
        __m256i c = wispi_load32(src + i + 64), d = wispi_load32(src + i + 96);
        wispi_store32(dst + i, _mm256_xor_si256(a, kv));
        wispi_store32(dst + i + 32, _mm256_xor_si256(b, kv));
        wispi_store32(dst + i + 64, _mm256_xor_si256(c, kv));
        wispi_store32(dst + i + 96, _mm256_xor_si256(d, kv));
    }
    for (; n - i >= 32; i += 32)
        wispi_store32(dst + i, _mm256_xor_si256(wispi_load32(src + i), kv));
    if (start != 0)
        wispi_store32(dst, first);
    if (i != n)
        wispi_store32(dst + n - 32, last);
}

/* Bytes 0..n-1 of a 64-lane mask (n <= 64). */
static inline uint64_t lanes(size_t n)
{
    return n >= 64 ? ~UINT64_C(0) : (UINT64_C(1) << n) - 1;
}

/* xor_key for n >= 1, 64 bytes per step. A run of at most 64 bytes is one masked load and
 * store: AVX-512 masked accesses touch no byte outside the mask (and fault on none). */
__attribute__((target("avx512f,avx512bw"))) static void
xor_key_avx512(uint8_t *dst, const uint8_t *src, size_t n, uint32_t k)
{
    __m512i k0 = _mm512_set1_epi32((int)k);
    if (n <= 64) {
        __mmask64 m = lanes(n);
        __m512i v = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, src), k0);
        _mm512_mask_storeu_epi8(dst, m, v);
        return;
    }
    __m512i first = _mm512_xor_si512(_mm512_loadu_si512(src), k0);
    __m512i last = _mm512_xor_si512(_mm512_loadu_si512(src + n - 64),
                                    _mm512_set1_epi32((int)key_rotate(k, n - 64)));
    size_t start = n >= 256 ? (size_t)(-(uintptr_t)dst & 63) : 0, i = start;
    __m512i kv = _mm512_set1_epi32((int)key_rotate(k, i));
    for (; n - i >= 256; i += 256) {
        __m512i a = _mm512_loadu_si512(src + i), b = _mm512_loadu_si512(src + i + 64);
        __m512i c = _mm512_loadu_si512(src + i + 128), d = _mm512_loadu_si512(src + i + 192);
        _mm512_storeu_si512(dst + i, _mm512_xor_si512(a, kv));
        _mm512_storeu_si512(dst + i + 64, _mm512_xor_si512(b, kv));
        _mm512_storeu_si512(dst + i + 128, _mm512_xor_si512(c, kv));
        _mm512_storeu_si512(dst + i + 192, _mm512_xor_si512(d, kv));
    }
    for (; n - i >= 64; i += 64)
        _mm512_storeu_si512(dst + i, _mm512_xor_si512(_mm512_loadu_si512(src + i), kv));
    if (start != 0)
        _mm512_storeu_si512(dst, first);
    if (i != n)
        _mm512_storeu_si512(dst + n - 64, last);
}

/* What the CPU has: -1 until checked. */
static atomic_int cpu_level = -1;
/* The level masking uses: -1 until decided (then the CPU's), else what wispi_mask_simd set. */
static atomic_int mask_level = -1;

int wispi_simd_cpu(void)
{
    int c = atomic_load_explicit(&cpu_level, memory_order_relaxed);
    if (c < 0) {
        /* cpu_init is idempotent; it makes the check right even if we run from another
         * constructor before libgcc's own has filled in the CPU model. The AVX checks also
         * cover the OS: they fail unless it saves the wide registers. */
        __builtin_cpu_init();
        c = WISPI_SIMD_BASE;
        if (__builtin_cpu_supports("ssse3")) {
            c = WISPI_SIMD_SSSE3;
            if (__builtin_cpu_supports("avx2")) {
                c = WISPI_SIMD_AVX2;
                if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
                    c = WISPI_SIMD_AVX512;
            }
        }
        atomic_store_explicit(&cpu_level, c, memory_order_relaxed);
    }
    return c;
}

int wispi_mask_simd(int max_level)
{
    int c = wispi_simd_cpu();
    int l = max_level < c ? max_level : c;
    if (l < WISPI_SIMD_BASE)
        l = WISPI_SIMD_BASE;
    atomic_store_explicit(&mask_level, l, memory_order_relaxed);
    return l;
}

static inline int mask_simd_level(void)
{
    int l = atomic_load_explicit(&mask_level, memory_order_relaxed);
    if (l < 0) {
        l = wispi_simd_cpu();
        atomic_store_explicit(&mask_level, l, memory_order_relaxed);
    }
    return l;
}
#else
int wispi_simd_cpu(void)
{
    return WISPI_SIMD_BASE;
}

int wispi_mask_simd(int max_level)
{
    (void)max_level;
    return WISPI_SIMD_BASE;
}
#endif

/* Below 32 bytes the baseline path is as fast as any: a vector or two and a short tail. */
#define WIDE_MIN 32

static void xor_key(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], size_t phase)
{
#if defined(HAVE_WIDE_PATHS)
    if (n >= WIDE_MIN) {
        int l = mask_simd_level();
        if (l >= WISPI_SIMD_AVX512) {
            xor_key_avx512(dst, src, n, key_rotate(key_load(key), phase));
            return;
        }
        if (l >= WISPI_SIMD_AVX2) {
            xor_key_avx2(dst, src, n, key_rotate(key_load(key), phase));
            return;
        }
    }
#endif
    xor_key_base(dst, src, n, key, phase);
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
