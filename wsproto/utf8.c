/* Incremental, fail-fast UTF-8 validation (RFC 3629 / Unicode Table 3-7): see utf8.h.
 *
 * Four paths, fastest first:
 *  - ASCII runs are skipped 16 bytes per step with SSE2 (64 per step once a run is long, 128
 *    with AVX2 when the CPU has it), or 8 bytes per step with a portable word fallback;
 *  - a multi-byte character that lies wholly inside the chunk is checked in one go: a table
 *    lookup on the lead byte gives its length and the allowed range of its second byte (the
 *    only byte whose range varies: that range is what excludes overlongs, surrogates and code
 *    points above U+10FFFF), and the other continuation bytes are checked together with one
 *    mask-and-compare, so the character's length costs no branch;
 *  - text dense in multi-byte characters (where the scalar path stalls on the unpredictable
 *    ASCII / non-ASCII branch) is checked 16 bytes per step with SSSE3 nibble lookups, when the
 *    CPU has SSSE3 (runtime check; see validate_ssse3);
 *  - only the last three bytes of a chunk (where a character may be cut) and the first bytes
 *    of the next one go through the byte-at-a-time state machine that carries a character
 *    across chunks.
 * wispi_utf8_unmask_feed() adds a fifth, with AVX2 or AVX-512: unmasking fused with the ASCII
 * test, one pass over each block (unmask_feed_wide); any block with a byte >= 0x80 goes to
 * the paths above. The vector level is chosen at run time (wispi_simd_cpu in mask.c).
 *
 * The state between chunks is S(need, lo, hi): `need` continuation bytes are still expected and
 * the next one must lie in lo..hi (lo >= 0x80, so the state is never WISPI_UTF8_OK and, as need
 * <= 3, never WISPI_UTF8_BAD).
 *
 * Fail fast, per chunk: a call returns BAD iff its chunk holds the first byte after which the
 * text seen so far cannot be completed to valid UTF-8. The scalar paths check each byte
 * against the exact set of bytes that may follow the prefix before it (Table 3-7 is built so
 * that every prefix accepted that way can still be completed: after the second byte, any
 * continuation bytes give a valid code point). The SIMD path checks every pair of bytes it
 * covers, and leaves a character cut at the end of its run to the scalar paths. So an
 * impossible prefix is reported by the call that sees its last byte, and nothing that can
 * still become valid is ever refused early.
 *
 * Reads: every load is of bytes inside [p, p + n); the wide loads only run while at least
 * their width of bytes remains.
 */
#include "utf8.h"

#include <stdbool.h>

#include "mask.h"
#include <string.h>

#include <wisp/ws.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#include <stdatomic.h>

/* An unaligned 16-byte load without a pointer cast: memcpy into the vector is defined for any
 * alignment and compiles to one movdqu. */
static inline __m128i load16(const uint8_t *p)
{
    __m128i v;
    memcpy(&v, p, sizeof v);
    return v;
}
#endif

#if defined(__SSE2__) && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_SSSE3_PATH 1
/* AVX2 and AVX-512 paths too (see unmask_feed_wide), chosen at run time like SSSE3. */
#define HAVE_WIDE_PATHS 1
#include <immintrin.h>

#include "simd.h"
#include <tmmintrin.h>

/* SSSE3 validation of a run of text, after the nibble-lookup method of Keiser and Lemire
 * ("Validating UTF-8 in less than one instruction per byte", 2021).
 *
 * Every byte b2 is checked against the byte b1 before it: almost every way UTF-8 can go
 * wrong is a bad pair, and each kind of bad pair is a product "high nibble of b1 in H1, low
 * nibble of b1 in L1, high nibble of b2 in H2". Give each kind a bit; three 16-entry tables
 * (indexed by those nibbles, looked up 16 at a time with pshufb) hold the bits whose
 * condition the nibble meets, and the AND of the three lookups is non-zero exactly where a
 * pair is bad. The kinds (b1 -> b2):
 *
 *   TOO_SHORT  lead C0-FF   -> not a continuation (00-7F, C0-FF)
 *   TOO_LONG   ASCII 00-7F  -> continuation 80-BF
 *   OVERLONG_2 C0, C1       -> 80-BF
 *   OVERLONG_3 E0           -> 80-9F
 *   SURROGATE  ED           -> A0-BF
 *   OVERLONG_4 F0           -> 80-8F, and F5-FF -> 80-8F (one bit: both products are bad)
 *   TOO_LARGE  F4-FF        -> 90-BF
 *   TWO_CONTS  80-BF        -> 80-BF: not bad in itself, see below
 *
 * (F5-FF followed by a non-continuation is TOO_SHORT.) The third and fourth bytes of a
 * character are the continuation bytes that follow a continuation byte: exactly where the
 * byte two back is E0-FF or the byte three back is F0-FF ("must23"). There TWO_CONTS must be
 * set, and anywhere else it must not, so XOR-ing must23 into the TWO_CONTS bit turns both
 * mistakes into a set bit and the right answer into zero.
 *
 * A character cut by the end of the run has not been checked against the bytes after it;
 * the caller gets back the index of its lead byte and checks it with the scalar code. */
/* clang-format off */
enum {
    TOO_SHORT = 0x01, TOO_LONG = 0x02, OVERLONG_3 = 0x04, TOO_LARGE = 0x08,
    SURROGATE = 0x10, OVERLONG_2 = 0x20, OVERLONG_4 = 0x40, TWO_CONTS = 0x80,
    CARRY = TOO_SHORT | TOO_LONG | TWO_CONTS, /* kinds with any low nibble of b1 */
};

static const uint8_t by_b1_high[16] = {
    TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, /* 0-7 */
    TWO_CONTS, TWO_CONTS, TWO_CONTS, TWO_CONTS,                                     /* 8-B */
    TOO_SHORT | OVERLONG_2,                                                          /* C */
    TOO_SHORT,                                                                       /* D */
    TOO_SHORT | OVERLONG_3 | SURROGATE,                                              /* E */
    TOO_SHORT | TOO_LARGE | OVERLONG_4,                                              /* F */
};
static const uint8_t by_b1_low[16] = {
    CARRY | OVERLONG_2 | OVERLONG_3 | OVERLONG_4,   /* x0: C0, E0, F0 */
    CARRY | OVERLONG_2,                             /* x1: C1 */
    CARRY, CARRY,                                   /* x2, x3 */
    CARRY | TOO_LARGE,                              /* x4: F4 */
    CARRY | TOO_LARGE | OVERLONG_4,                 /* x5: F5 */
    CARRY | TOO_LARGE | OVERLONG_4,                 /* x6 */
    CARRY | TOO_LARGE | OVERLONG_4,                 /* x7 */
    CARRY | TOO_LARGE | OVERLONG_4,                 /* x8 */
    CARRY | TOO_LARGE | OVERLONG_4,                 /* x9 */
    CARRY | TOO_LARGE | OVERLONG_4,                 /* xA */
    CARRY | TOO_LARGE | OVERLONG_4,                 /* xB */
    CARRY | TOO_LARGE | OVERLONG_4,                 /* xC */
    CARRY | TOO_LARGE | OVERLONG_4 | SURROGATE,     /* xD: ED (and FD) */
    CARRY | TOO_LARGE | OVERLONG_4,                 /* xE */
    CARRY | TOO_LARGE | OVERLONG_4,                 /* xF */
};
static const uint8_t by_b2_high[16] = {
    TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT,
    TOO_LONG | TWO_CONTS | OVERLONG_2 | OVERLONG_3 | OVERLONG_4, /* 80-8F */
    TOO_LONG | TWO_CONTS | OVERLONG_2 | OVERLONG_3 | TOO_LARGE,  /* 90-9F */
    TOO_LONG | TWO_CONTS | OVERLONG_2 | SURROGATE | TOO_LARGE,   /* A0-AF */
    TOO_LONG | TWO_CONTS | OVERLONG_2 | SURROGATE | TOO_LARGE,   /* B0-BF */
    TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT,
};
/* A block ending in one of these is inside a character: any byte of the last three above
 * (bytes 13, 14, 15) FF, EF, BF. */
static const uint8_t open_at_end[16] = {
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xEF, 0xDF, 0xBF,
};

/* clang-format on */

#define SIMD_BAD SIZE_MAX
/* Switch to validate_ssse3 after this many multi-byte characters on the scalar path, if at
 * least SSSE3_MIN bytes remain. */
#define SSSE3_AFTER 8
#define SSSE3_MIN   64
/* ... and back to the ASCII path after this many all-ASCII 16-byte blocks in a row. */
#define SSSE3_ASCII_EXIT 4

/* Validate from p[i], a character boundary holding a non-ASCII byte, through the last whole
 * 16-byte block of p[i..n), stopping early after SSSE3_ASCII_EXIT all-ASCII blocks in a row
 * (a long ASCII run: the ASCII path is faster there). Returns where the caller resumes: the
 * end of that ASCII run, or the lead byte of a character cut by the last block, or the end
 * of the last block; SIMD_BAD for a bad pair. Each resume point is a character boundary.
 * Needs n - i >= 16. */
__attribute__((target("ssse3"))) static size_t validate_ssse3(const uint8_t *p, size_t i, size_t n)
{
    const __m128i t1 = load16(by_b1_high), t2 = load16(by_b1_low), t3 = load16(by_b2_high);
    const __m128i nibble = _mm_set1_epi8(0x0F), zero = _mm_setzero_si128();
    const __m128i third = _mm_set1_epi8(0x60), fourth = _mm_set1_epi8(0x70);
    const __m128i bit7 = _mm_set1_epi8(-128);
    /* The bytes before p[i] count as ASCII: p[i] starts a character. */
    __m128i prev = zero;
    unsigned ascii_blocks = 0;
    for (; n - i >= 16; i += 16) {
        __m128i in = load16(p + i);
        if (_mm_movemask_epi8(in) == 0) {
            /* All ASCII: fine unless the previous block left a character open. No pair
             * inside the block can be bad, so the lookups are skipped. */
            __m128i open = _mm_subs_epu8(prev, load16(open_at_end));
            if (_mm_movemask_epi8(_mm_cmpeq_epi8(open, zero)) != 0xFFFF)
                return SIMD_BAD;
            if (++ascii_blocks == SSSE3_ASCII_EXIT)
                return i + 16;
            prev = in;
            continue;
        }
        ascii_blocks = 0;
        /* b1 for each b2 of this block: the block shifted one byte, fed from prev */
        __m128i prev1 = _mm_alignr_epi8(in, prev, 15);
        __m128i b1_high = _mm_and_si128(_mm_srli_epi16(prev1, 4), nibble);
        __m128i b1_low = _mm_and_si128(prev1, nibble);
        __m128i b2_high = _mm_and_si128(_mm_srli_epi16(in, 4), nibble);
        __m128i bad = _mm_and_si128(
            _mm_and_si128(_mm_shuffle_epi8(t1, b1_high), _mm_shuffle_epi8(t2, b1_low)),
            _mm_shuffle_epi8(t3, b2_high));
        /* must23: saturating subtraction leaves bit 7 set iff the byte two back is >= E0
         * (0xE0 - 0x60 = 0x80) or the byte three back is >= F0 (0xF0 - 0x70). */
        __m128i prev2 = _mm_alignr_epi8(in, prev, 14);
        __m128i prev3 = _mm_alignr_epi8(in, prev, 13);
        __m128i must23 = _mm_and_si128(
            _mm_or_si128(_mm_subs_epu8(prev2, third), _mm_subs_epu8(prev3, fourth)), bit7);
        bad = _mm_xor_si128(bad, must23);
        if (_mm_movemask_epi8(_mm_cmpeq_epi8(bad, zero)) != 0xFFFF)
            return SIMD_BAD;
        prev = in;
    }
    /* The run ends inside a character if one of its last three bytes is a lead whose
     * continuation bytes would lie past it: resume at that lead. */
    if (p[i - 1] >= 0xC0)
        return i - 1;
    if (p[i - 2] >= 0xE0)
        return i - 2;
    if (p[i - 3] >= 0xF0)
        return i - 3;
    return i;
}

/* The vector level (WISPI_SIMD_*) validation uses: -1 until decided (then the CPU's, see
 * wispi_simd_cpu), else what wispi_utf8_simd_max() set. SSSE3 enables validate_ssse3, AVX2
 * and AVX-512 the wide ASCII paths below. */
static atomic_int utf8_level = -1;

static int simd_level(void)
{
    int l = atomic_load_explicit(&utf8_level, memory_order_relaxed);
    if (l < 0) {
        l = wispi_simd_cpu();
        atomic_store_explicit(&utf8_level, l, memory_order_relaxed);
    }
    return l;
}

/* Index of the first byte >= 0x80 in p[i..n), or where fewer than 32 bytes remain (the
 * caller looks at those): 128 bytes per step while the run lasts, then 32. */
__attribute__((target("avx2"))) static size_t skip_ascii_avx2(const uint8_t *p, size_t i,
                                                              size_t n)
{
    for (; n - i >= 128; i += 128) {
        __m256i any = _mm256_or_si256(_mm256_or_si256(wispi_load32(p + i), wispi_load32(p + i + 32)),
                                      _mm256_or_si256(wispi_load32(p + i + 64), wispi_load32(p + i + 96)));
        if (_mm256_movemask_epi8(any))
            break;
    }
    for (; n - i >= 32; i += 32) {
        unsigned m = (unsigned)_mm256_movemask_epi8(wispi_load32(p + i));
        if (m)
            return i + (size_t)__builtin_ctz(m);
    }
    return i;
}

/* Unmasking fused with the ASCII check: XOR a block with the key, store it, OR it into a test
 * of the high bits, one branch per block. Both functions below unmask p[i..n) in place (k is
 * the key word as seen from position i) while the bytes come out ASCII. They return the end
 * of what they unmasked, and set *ascii to the end of what they know to be ASCII: n and n when
 * all of it is; else the start of the block that holds a byte >= 0x80 (unmasked, not checked)
 * and its end. Nothing outside [p + i, p + n) is read or written. */

/* Needs n - i >= 32. The bytes a whole number of vectors leaves over are covered by one more
 * vector that ends at n, overlapping the last block: it is loaded (masked) before anything is
 * stored, so storing it only rewrites bytes of that block with the same unmasked values. */
__attribute__((target("avx2"))) static size_t unmask_ascii_avx2(uint8_t *p, size_t i, size_t n,
                                                                uint32_t k, size_t *ascii)
{
    const __m256i kv = _mm256_set1_epi32((int)k), high = _mm256_set1_epi8(-128);
    unsigned r = (unsigned)((n - i) & 3) * 8; /* position n - 32 sees the key rotated by this */
    uint32_t kl = r ? k >> r | k << (32 - r) : k;
    __m256i last = _mm256_xor_si256(wispi_load32(p + n - 32), _mm256_set1_epi32((int)kl));
    for (; n - i >= 128; i += 128) {
        __m256i a = _mm256_xor_si256(wispi_load32(p + i), kv);
        __m256i b = _mm256_xor_si256(wispi_load32(p + i + 32), kv);
        __m256i c = _mm256_xor_si256(wispi_load32(p + i + 64), kv);
        __m256i d = _mm256_xor_si256(wispi_load32(p + i + 96), kv);
        wispi_store32(p + i, a);
        wispi_store32(p + i + 32, b);
        wispi_store32(p + i + 64, c);
        wispi_store32(p + i + 96, d);
        __m256i any = _mm256_or_si256(_mm256_or_si256(a, b), _mm256_or_si256(c, d));
        if (!_mm256_testz_si256(any, high)) {
            *ascii = i;
            return i + 128;
        }
    }
    for (; n - i >= 32; i += 32) {
        __m256i a = _mm256_xor_si256(wispi_load32(p + i), kv);
        wispi_store32(p + i, a);
        if (!_mm256_testz_si256(a, high)) {
            *ascii = i;
            return i + 32;
        }
    }
    if (i != n) {
        wispi_store32(p + n - 32, last);
        if (!_mm256_testz_si256(last, high)) {
            *ascii = i;
            return n;
        }
    }
    *ascii = n;
    return n;
}

/* Any n - i. The bytes a whole number of vectors leaves over go through one masked load and
 * store, which touch no byte outside the mask (and fault on none). */
__attribute__((target("avx512f,avx512bw"))) static size_t
unmask_ascii_avx512(uint8_t *p, size_t i, size_t n, uint32_t k, size_t *ascii)
{
    const __m512i kv = _mm512_set1_epi32((int)k), high = _mm512_set1_epi8(-128);
    for (; n - i >= 256; i += 256) {
        __m512i a = _mm512_xor_si512(_mm512_loadu_si512(p + i), kv);
        __m512i b = _mm512_xor_si512(_mm512_loadu_si512(p + i + 64), kv);
        __m512i c = _mm512_xor_si512(_mm512_loadu_si512(p + i + 128), kv);
        __m512i d = _mm512_xor_si512(_mm512_loadu_si512(p + i + 192), kv);
        _mm512_storeu_si512(p + i, a);
        _mm512_storeu_si512(p + i + 64, b);
        _mm512_storeu_si512(p + i + 128, c);
        _mm512_storeu_si512(p + i + 192, d);
        __m512i any = _mm512_or_si512(_mm512_or_si512(a, b), _mm512_or_si512(c, d));
        if (_mm512_test_epi8_mask(any, high)) {
            *ascii = i;
            return i + 256;
        }
    }
    for (; n - i >= 64; i += 64) {
        __m512i a = _mm512_xor_si512(_mm512_loadu_si512(p + i), kv);
        _mm512_storeu_si512(p + i, a);
        if (_mm512_test_epi8_mask(a, high)) {
            *ascii = i;
            return i + 64;
        }
    }
    if (i != n) {
        __mmask64 m = (UINT64_C(1) << (n - i)) - 1; /* n - i < 64 */
        __m512i a = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, p + i), kv);
        _mm512_mask_storeu_epi8(p + i, m, a);
        if (_mm512_mask_test_epi8_mask(m, a, high)) {
            *ascii = i;
            return n;
        }
    }
    *ascii = n;
    return n;
}
#endif

/* State after a lead byte: `need` continuation bytes to come, the next one in lo..hi. */
#define S(need, lo, hi) (((uint32_t)(need) << 16) | ((uint32_t)(lo) << 8) | (uint32_t)(hi))

/* clang-format off */
#define A_  WISPI_UTF8_OK      /* ASCII: still at a character boundary */
#define X_  WISPI_UTF8_BAD     /* never starts a character: continuation, C0, C1, F5-FF */
#define C2_ S(1, 0x80, 0xBF)   /* C2-DF: U+0080-U+07FF (C0, C1 would be overlong) */
#define E0_ S(2, 0xA0, 0xBF)   /* E0: A0 minimum, else overlong (below U+0800) */
#define E1_ S(2, 0x80, 0xBF)   /* E1-EC, EE, EF */
#define ED_ S(2, 0x80, 0x9F)   /* ED: up to 9F, else a surrogate U+D800-U+DFFF */
#define F0_ S(3, 0x90, 0xBF)   /* F0: 90 minimum, else overlong (below U+10000) */
#define F1_ S(3, 0x80, 0xBF)   /* F1-F3 */
#define F4_ S(3, 0x80, 0x8F)   /* F4: up to 8F, else above U+10FFFF */
#define R4(v)  v, v, v, v
#define R16(v) R4(v), R4(v), R4(v), R4(v)

/* The state reached from a character boundary by each byte. */
static const uint32_t lead_state[] = {
    R16(A_), R16(A_), R16(A_), R16(A_), R16(A_), R16(A_), R16(A_), R16(A_), /* 00-7F */
    R16(X_), R16(X_), R16(X_), R16(X_),                                     /* 80-BF */
    X_, X_, C2_, C2_, R4(C2_), R4(C2_), R4(C2_),                            /* C0-CF */
    R16(C2_),                                                               /* D0-DF */
    E0_, R4(E1_), R4(E1_), R4(E1_), ED_, E1_, E1_,                          /* E0-EF */
    F0_, F1_, F1_, F1_, F4_, R4(X_), R4(X_), X_, X_, X_,                    /* F0-FF */
};
/* clang-format on */
_Static_assert(sizeof lead_state / sizeof lead_state[0] == 256, "one entry per byte value");

/* Masks over bytes 3 and 4 of a character (read as b3 | b4 << 8), by `need`: those of its
 * bytes that must be continuation bytes 10xxxxxx. Byte 2 is range-checked separately. */
static const uint16_t cont_mask[4] = {0, 0, 0x00C0, 0xC0C0};

/* Advance the state by one byte (never called with WISPI_UTF8_BAD). */
static inline uint32_t step(uint32_t st, uint8_t b)
{
    if (st == WISPI_UTF8_OK)
        return lead_state[b];
    uint32_t lo = (st >> 8) & 0xFF, hi = st & 0xFF;
    if (b < lo || b > hi)
        return WISPI_UTF8_BAD;
    uint32_t need = (st >> 16) - 1;
    return need ? S(need, 0x80, 0xBF) : WISPI_UTF8_OK;
}

/* Index of the first byte >= 0x80 in p[i..n), or n. `wide`: AVX2 may be used. */
static inline size_t skip_ascii(const uint8_t *p, size_t i, size_t n, bool wide)
{
#if defined(__SSE2__)
    /* The first 16 bytes on their own: in mixed text most ASCII runs are short, and the
     * movemask finds where the run ends without a byte loop. */
    if (n - i >= 16) {
        unsigned m = (unsigned)_mm_movemask_epi8(load16(p + i));
        if (m)
            return i + (size_t)__builtin_ctz(m);
        i += 16;
#if defined(HAVE_WIDE_PATHS)
        if (wide && n - i >= 128)
            i = skip_ascii_avx2(p, i, n); /* then the loops below place the byte found */
#else
        (void)wide;
#endif
        /* A long run: 64 bytes per step, OR-ing four loads so that one movemask and one
         * branch cover them. The 16-byte loop below then locates the byte that stopped it. */
        while (n - i >= 64) {
            __m128i a = load16(p + i);
            __m128i b = load16(p + i + 16);
            __m128i c = load16(p + i + 32);
            __m128i d = load16(p + i + 48);
            __m128i any = _mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d));
            if (_mm_movemask_epi8(any))
                break;
            i += 64;
        }
        while (n - i >= 16) {
            m = (unsigned)_mm_movemask_epi8(load16(p + i));
            if (m)
                return i + (size_t)__builtin_ctz(m);
            i += 16;
        }
    }
#else
    (void)wide;
#endif
    /* Portable path, and the SSE2 path's last 0-15 bytes: 8 bytes per step. memcpy is the
     * defined way to load an unaligned word; compilers turn it into one load. */
    while (n - i >= 8) {
        uint64_t w;
        memcpy(&w, p + i, sizeof w);
        if (w & UINT64_C(0x8080808080808080))
            break; /* the byte loop finds which one, whatever the byte order */
        i += 8;
    }
    while (i < n && p[i] < 0x80)
        i++;
    return i;
}

uint32_t wispi_utf8_feed(uint32_t state, const uint8_t *p, size_t n)
{
    size_t i = 0;

    if (state == WISPI_UTF8_BAD)
        return WISPI_UTF8_BAD; /* sticky */

    /* Finish a character the previous chunk cut. */
    while (state != WISPI_UTF8_OK && i < n) {
        state = step(state, p[i++]);
        if (state == WISPI_UTF8_BAD)
            return WISPI_UTF8_BAD;
    }
    if (state != WISPI_UTF8_OK)
        return state; /* the chunk ended inside the same character */

    bool wide = false;
#if defined(HAVE_SSSE3_PATH)
    int level = simd_level();
    bool simd = level >= WISPI_SIMD_SSSE3;
    wide = level >= WISPI_SIMD_AVX2;
    size_t multibyte = 0; /* characters the scalar loop checked since the SIMD path last ran */
#endif
    for (;;) {
        i = skip_ascii(p, i, n, wide);
#if defined(HAVE_SSSE3_PATH)
        /* Text dense in multi-byte characters, with a long way to go: hand it to the SIMD
         * path, which returns at the next all-ASCII block (or near the end). Isolated
         * characters in ASCII text stay on the scalar path, which costs them less. */
        if (simd && multibyte >= SSSE3_AFTER && n - i >= SSSE3_MIN) {
            multibyte = 0;
            i = validate_ssse3(p, i, n);
            if (i == SIMD_BAD)
                return WISPI_UTF8_BAD;
            continue;
        }
#endif
        /* Whole characters: the check reads up to 4 bytes whatever the length, so it runs
         * while 4 remain; the last 1-3 bytes of the chunk go to the state machine below. */
        while (n - i >= 4 && p[i] >= 0x80) {
            uint8_t b = p[i];
            uint32_t st = lead_state[b];
            if (st == WISPI_UTF8_BAD)
                return WISPI_UTF8_BAD;
            /* The length comes from the lead byte itself (C2-DF: 2, E0-EF: 3, F0-F4: 4), not
             * from the table: then the next index waits on one load, not on two in a row,
             * and the table lookup only feeds the check, which the CPU predicts. */
            size_t need = 1 + (size_t)(b >= 0xE0) + (size_t)(b >= 0xF0);
            uint8_t lo = (uint8_t)(st >> 8), hi = (uint8_t)st;
            unsigned rest = (unsigned)p[i + 2] | (unsigned)p[i + 3] << 8;
            unsigned cm = cont_mask[need];
            /* One branch for the whole character: second byte outside its range, or a later
             * byte that is not 10xxxxxx. (Unsigned wrap-around makes b - lo > hi - lo an
             * "outside lo..hi" test.) */
            if ((uint8_t)(p[i + 1] - lo) > (uint8_t)(hi - lo) || (rest & cm) != (0x8080u & cm))
                return WISPI_UTF8_BAD;
            i += need + 1;
#if defined(HAVE_SSSE3_PATH)
            if (++multibyte >= SSSE3_AFTER && simd && n - i >= SSSE3_MIN)
                break; /* dense text: over to the SIMD path */
#endif
        }
        if (n - i < 4)
            break;
    }

    /* Tail: at most three bytes that are not known to be ASCII. */
    for (; i < n; i++) {
        state = step(state, p[i]);
        if (state == WISPI_UTF8_BAD)
            return WISPI_UTF8_BAD;
    }
    return state;
}

/* 16 KiB: well inside L1 data cache (32-48 KiB) on current CPUs, and long enough that the two
 * calls per block and the character cut at each block edge cost nothing measurable. */
#define UNMASK_BLOCK 16384

#if defined(HAVE_WIDE_PATHS)
/* After a byte >= 0x80, this many more bytes are unmasked and validated by the paths of
 * wispi_utf8_feed before the fused ASCII path is tried again. A whole L1-sized block, as on
 * the path without AVX2: each wispi_utf8_feed call starts its SSSE3 path afresh (after a few
 * characters on the scalar path), so shorter stretches made text dense in multi-byte
 * characters measurably slower (1 KiB stretches: -25% at 64 KiB). */
#define WIDE_RESUME UNMASK_BLOCK

/* wispi_utf8_unmask_feed with the fused ASCII paths (AVX2 or AVX-512 by `level`). Does not
 * rotate the key. The bytes go through, in order, stretches that are either unmasked and
 * checked in one pass by unmask_ascii_*, or unmasked and then handed to wispi_utf8_feed
 * (which carries a character across stretches like across any chunks). Since ASCII bytes at a
 * character boundary leave the state at WISPI_UTF8_OK, the result is that of one
 * wispi_utf8_feed over all n bytes. */
static uint32_t unmask_feed_wide(uint32_t state, uint8_t *p, size_t n, const uint8_t key[4],
                                 int level)
{
    size_t min = level >= WISPI_SIMD_AVX512 ? 1 : 32; /* what unmask_ascii_* need */
    size_t v = 0; /* p[0..v) is unmasked and validated; p[v..n) is still masked */
    while (v < n) {
        size_t from = v, end;
        if (state == WISPI_UTF8_OK && n - v >= min) {
            /* the key word as seen from v: memory byte j is key[(v + j) % 4] */
            uint32_t k = (uint32_t)key[v & 3] | (uint32_t)key[(v + 1) & 3] << 8 |
                         (uint32_t)key[(v + 2) & 3] << 16 | (uint32_t)key[(v + 3) & 3] << 24;
            size_t ascii;
            size_t u = level >= WISPI_SIMD_AVX512 ? unmask_ascii_avx512(p, v, n, k, &ascii)
                                                  : unmask_ascii_avx2(p, v, n, k, &ascii);
            if (ascii == n)
                break;
            /* p[ascii..u) is unmasked but not checked: the validator starts there */
            from = ascii;
            v = u;
        }
        end = n - v > WIDE_RESUME ? v + WIDE_RESUME : n;
        uint8_t kv[4];
        for (size_t j = 0; j < 4; j++)
            kv[j] = key[(v + j) & 3];
        wispi_mask_copy(p + v, p + v, end - v, kv);
        state = wispi_utf8_feed(state, p + from, end - from);
        v = end;
        if (state == WISPI_UTF8_BAD) {
            /* the rest is still unmasked, as the contract says */
            for (size_t j = 0; j < 4; j++)
                kv[j] = key[(v + j) & 3];
            wispi_mask_copy(p + v, p + v, n - v, kv);
            break;
        }
    }
    return state;
}
#endif

uint32_t wispi_utf8_unmask_feed(uint32_t state, uint8_t *p, size_t n, uint8_t key[4])
{
#if defined(HAVE_WIDE_PATHS)
    if (n >= 32 && state != WISPI_UTF8_BAD) {
        int level = simd_level();
        if (level >= WISPI_SIMD_AVX2) {
            state = unmask_feed_wide(state, p, n, key, level);
            /* rotate the key as wispi_unmask does: the next piece starts at position n */
            uint8_t k[4];
            for (size_t j = 0; j < 4; j++)
                k[j] = key[(n + j) & 3];
            memcpy(key, k, sizeof k);
            return state;
        }
    }
#endif
    while (n > 0) {
        size_t b = n < UNMASK_BLOCK ? n : UNMASK_BLOCK;
        wispi_unmask(p, b, key);
        if (state != WISPI_UTF8_BAD)
            state = wispi_utf8_feed(state, p, b);
        p += b;
        n -= b;
    }
    return state;
}

bool wispi_utf8_simd(bool allow)
{
    return wispi_utf8_simd_max(allow ? WISPI_SIMD_AVX512 : WISPI_SIMD_BASE) >= WISPI_SIMD_SSSE3;
}

int wispi_utf8_simd_max(int max_level)
{
#if defined(HAVE_SSSE3_PATH)
    int c = wispi_simd_cpu();
    int l = max_level < c ? max_level : c;
    if (l < WISPI_SIMD_BASE)
        l = WISPI_SIMD_BASE;
    atomic_store_explicit(&utf8_level, l, memory_order_relaxed);
    return l;
#else
    (void)max_level;
    return WISPI_SIMD_BASE;
#endif
}

bool wisp_utf8_valid(const void *data, size_t len)
{
    if (len == 0)
        return true;
    if (data == NULL)
        return false;
    return wispi_utf8_feed(WISPI_UTF8_OK, data, len) == WISPI_UTF8_OK;
}
