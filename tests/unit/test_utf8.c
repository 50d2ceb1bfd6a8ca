/* Unit tests for wsproto/utf8.c: wispi_utf8_feed() and wisp_utf8_valid().
 *
 * Every input is checked against the reference checker in support/utf8_ref.h, whole and cut
 * into chunks (at every byte boundary, one byte at a time, at random places). The property
 * tested for each cut: the first chunk whose result is WISPI_UTF8_BAD is exactly the chunk
 * holding the first impossible byte (fail fast, and never early), the state stays BAD after
 * that, and without an impossible byte the final state is WISPI_UTF8_OK iff the input ends at
 * a character boundary. Every chunk sits right before a guard page, so reading one byte past
 * it faults.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <wisp/ws.h>

#include "guard.h"
#include "mask.h"
#include "utf8.h"
#include "utf8_ref.h"

#define MAX_INPUT 4096

static struct guard_buf guard;

/* The group runs once per vector level the CPU has: the scalar path alone (what a CPU
 * without SSSE3 runs), SSSE3, AVX2 and AVX-512 (see wispi_utf8_simd_max). The masking paths
 * that wispi_utf8_unmask_feed falls back on follow the same level. */
static int setup_level(int level)
{
    guard_init(&guard, MAX_INPUT);
    wispi_mask_simd(level);
    return wispi_utf8_simd_max(level) == level ? 0 : -1;
}

static int setup_scalar(void **state)
{
    return setup_level(WISPI_SIMD_BASE);
}

static int setup_ssse3(void **state)
{
    return setup_level(WISPI_SIMD_SSSE3);
}

static int setup_avx2(void **state)
{
    return setup_level(WISPI_SIMD_AVX2);
}

static int setup_avx512(void **state)
{
    return setup_level(WISPI_SIMD_AVX512);
}

static int teardown(void **state)
{
    guard_free(&guard);
    wispi_utf8_simd(true);
    wispi_mask_simd(WISPI_SIMD_AVX512);
    return 0;
}

/* Deterministic PRNG (splitmix64): the same inputs on every run and every machine. */
static uint64_t rng_state = 0x5EED0F0DDBA11ULL;

static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static size_t rng_below(size_t n)
{
    return (size_t)(rng() % n);
}

static uint32_t random_code_point(void);

static void dump_failure(const uint8_t *in, size_t n, const size_t *cuts, size_t ncuts,
                         const char *what)
{
    fprintf(stderr, "utf8 mismatch: %s\n  input (%zu bytes):", what, n);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %02x", in[i]);
    fprintf(stderr, "\n  cuts:");
    for (size_t i = 0; i < ncuts; i++)
        fprintf(stderr, " %zu", cuts[i]);
    fprintf(stderr, "\n");
}

/* Feed in[0..n) in chunks ending at cuts[0] < ... (each <= n; a final chunk runs to n) and
 * compare with the reference. Returns 0, or -1 after printing the mismatch. */
static int check_chunks(const uint8_t *in, size_t n, const size_t *cuts, size_t ncuts,
                        struct utf8_ref ref)
{
    uint32_t st = WISPI_UTF8_OK;
    size_t start = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : n;
        uint8_t *p = guard_place(&guard, in + start, end - start);
        uint32_t prev = st;
        st = wispi_utf8_feed(st, p, end - start);
        bool should_be_bad = ref.bad && ref.bad_at < end;
        if ((st == WISPI_UTF8_BAD) != should_be_bad) {
            char what[160];
            snprintf(what, sizeof what,
                     "chunk [%zu,%zu) from state %08x gave %08x; first bad byte %s%zu", start, end,
                     (unsigned)prev, (unsigned)st, ref.bad ? "at " : "none ",
                     ref.bad ? ref.bad_at : 0);
            dump_failure(in, n, cuts, ncuts, what);
            return -1;
        }
        start = end;
    }
    if (!ref.bad && (st == WISPI_UTF8_OK) != ref.boundary) {
        dump_failure(in, n, cuts, ncuts,
                     ref.boundary ? "valid input not accepted at the end"
                                  : "truncated input accepted");
        return -1;
    }
    return 0;
}

/* Whole, split at every byte boundary, and one byte at a time; plus wisp_utf8_valid(). */
static int check_all_splits(const uint8_t *in, size_t n, struct utf8_ref ref)
{
    size_t cuts[MAX_INPUT];
    if (check_chunks(in, n, NULL, 0, ref) < 0)
        return -1;
    for (size_t s = 0; s <= n; s++) {
        cuts[0] = s;
        if (check_chunks(in, n, cuts, 1, ref) < 0)
            return -1;
    }
    for (size_t s = 0; s < n; s++)
        cuts[s] = s + 1;
    if (n > 0 && check_chunks(in, n, cuts, n - 1, ref) < 0)
        return -1;
    bool valid = wisp_utf8_valid(guard_place(&guard, in, n), n);
    if (valid != (!ref.bad && ref.boundary)) {
        dump_failure(in, n, NULL, 0, "wisp_utf8_valid disagrees");
        return -1;
    }
    return 0;
}

/* Also every split into three pieces: for short hand-written vectors. */
static int check_all_splits3(const uint8_t *in, size_t n, struct utf8_ref ref)
{
    if (check_all_splits(in, n, ref) < 0)
        return -1;
    for (size_t a = 0; a <= n; a++) {
        for (size_t b = a; b <= n; b++) {
            size_t cuts[2] = {a, b};
            if (check_chunks(in, n, cuts, 2, ref) < 0)
                return -1;
        }
    }
    return 0;
}

/* ---- hand-written vectors (Markus Kuhn's stress test, Autobahn 6.x) ---- */

#define VALID     (-1) /* complete and valid */
#define TRUNCATED (-2) /* nothing impossible, but cut inside a character */

struct vec {
    const char *name;
    const char *bytes;
    size_t len;
    long expect; /* VALID, TRUNCATED, or the index of the first impossible byte */
};

#define V(name, s, expect)                                                                         \
    {                                                                                              \
        name, s, sizeof(s) - 1, expect                                                             \
    }

#define KOSME "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"

static const struct vec vectors[] = {
    /* valid */
    V("empty", "", VALID),
    V("ascii", "Hello, world", VALID),
    V("6.2.1 Hello-mu", "Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!",
      VALID),
    V("6.5.1 kosme", KOSME, VALID),
    V("6.7.1 first 1-byte U+0000", "\x00", VALID),
    V("6.7.2 first 2-byte U+0080", "\xc2\x80", VALID),
    V("6.7.3 first 3-byte U+0800", "\xe0\xa0\x80", VALID),
    V("6.7.4 first 4-byte U+10000", "\xf0\x90\x80\x80", VALID),
    V("6.9.1 last 1-byte U+007F", "\x7f", VALID),
    V("6.9.2 last 2-byte U+07FF", "\xdf\xbf", VALID),
    V("6.9.3 last 3-byte U+FFFF", "\xef\xbf\xbf", VALID),
    V("6.9.4 last 4-byte U+10FFFF", "\xf4\x8f\xbf\xbf", VALID),
    V("6.11.1 U+D7FF", "\xed\x9f\xbf", VALID),
    V("6.11.2 U+E000", "\xee\x80\x80", VALID),
    V("6.11.3 U+FFFD", "\xef\xbf\xbd", VALID),
    V("U+FFFFF", "\xf3\xbf\xbf\xbf", VALID),
    V("U+100000", "\xf4\x80\x80\x80", VALID),
    V("U+1000", "\xe1\x80\x80", VALID),
    V("U+CFFF", "\xec\xbf\xbf", VALID),
    V("U+D000", "\xed\x80\x80", VALID),
    V("U+40000", "\xf1\x80\x80\x80", VALID),
    V("BOM", "\xef\xbb\xbf", VALID),
    V("emoji", "\xf0\x9f\x98\x80", VALID),
    V("6.22 noncharacter U+FFFE", "\xef\xbf\xbe", VALID),
    V("6.22 noncharacter U+FDD0", "\xef\xb7\x90", VALID),
    V("6.22 noncharacter U+1FFFE", "\xf0\x9f\xbf\xbe", VALID),
    V("6.22 noncharacter U+10FFFE", "\xf4\x8f\xbf\xbe", VALID),
    V("mixed",
      "a\xc2\x80"
      "b\xe0\xa0\x80"
      "c\xf0\x90\x80\x80"
      "d",
      VALID),
    /* cut inside a character: nothing impossible yet */
    V("C2 alone", "\xc2", TRUNCATED),
    V("DF alone", "\xdf", TRUNCATED),
    V("E0 A0", "\xe0\xa0", TRUNCATED),
    V("E0 alone", "\xe0", TRUNCATED),
    V("ED alone", "\xed", TRUNCATED),
    V("ED 9F", "\xed\x9f", TRUNCATED),
    V("EF BF", "\xef\xbf", TRUNCATED),
    V("F0 90 80", "\xf0\x90\x80", TRUNCATED),
    V("F4 8F BF", "\xf4\x8f\xbf", TRUNCATED),
    V("F4 alone", "\xf4", TRUNCATED),
    V("kosme cut", "\xce\xba\xe1\xbd", TRUNCATED),
    /* Autobahn 6.3/6.4: the fail-fast cases */
    V("6.3.1 kosme + surrogate",
      KOSME "\xed\xa0\x80"
            "edited",
      12),
    V("6.4.1 kosme + F4 90 80 80",
      KOSME "\xf4\x90\x80\x80"
            "edited",
      12),
    V("6.4.3 kosme + F4 90", KOSME "\xf4\x90", 12),
    /* fail fast on a prefix: the chunk ending here is already BAD */
    V("ED A0 (surrogate prefix)", "\xed\xa0", 1),
    V("F4 90 (above U+10FFFF)", "\xf4\x90", 1),
    V("E0 80 (overlong prefix)", "\xe0\x80", 1),
    V("F0 8F (overlong prefix)", "\xf0\x8f", 1),
    V("C0 (always overlong)", "\xc0", 0),
    V("C1", "\xc1", 0),
    V("F5", "\xf5", 0),
    /* 6.8 / 6.10: five- and six-byte forms, and four-byte leads past F4 */
    V("6.8.1 5-byte", "\xf8\x88\x80\x80\x80", 0),
    V("6.8.2 6-byte", "\xfc\x84\x80\x80\x80\x80", 0),
    V("6.10.1 F7 BF BF BF", "\xf7\xbf\xbf\xbf", 0),
    V("6.10.2 FB BF BF BF BF", "\xfb\xbf\xbf\xbf\xbf", 0),
    V("6.10.3 FD BF BF BF BF BF", "\xfd\xbf\xbf\xbf\xbf\xbf", 0),
    V("6.11.5 U+110000", "\xf4\x90\x80\x80", 1),
    V("U+13FFFF", "\xf4\xbf\xbf\xbf", 1),
    /* 6.12: unexpected continuation bytes */
    V("6.12.1 80", "\x80", 0),
    V("6.12.2 BF", "\xbf", 0),
    V("6.12.3 80 BF", "\x80\xbf", 0),
    V("6.12.4 80 BF 80", "\x80\xbf\x80", 0),
    V("6.12.8 all continuation bytes",
      "\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f"
      "\x90\x91\x92\x93\x94\x95\x96\x97\x98\x99\x9a\x9b\x9c\x9d\x9e\x9f"
      "\xa0\xa1\xa2\xa3\xa4\xa5\xa6\xa7\xa8\xa9\xaa\xab\xac\xad\xae\xaf"
      "\xb0\xb1\xb2\xb3\xb4\xb5\xb6\xb7\xb8\xb9\xba\xbb\xbc\xbd\xbe\xbf",
      0),
    V("continuation after ASCII", "abc\x80", 3),
    V("extra continuation after 2-byte", "\xc2\x80\x80", 2),
    V("extra continuation after 4-byte", "\xf0\x90\x80\x80\x80", 4),
    V("continuation after 40 ASCII", "0123456789012345678901234567890123456789\xbf", 40),
    /* 6.13: lonely start characters followed by a space */
    V("6.13.1 C0 space", "\xc0\x20", 0),
    V("6.13.1 C2 space", "\xc2\x20", 1),
    V("6.13.1 DF space", "\xdf\x20", 1),
    V("6.13.2 E0 space", "\xe0\x20", 1),
    V("6.13.2 EF space", "\xef\x20", 1),
    V("6.13.3 F0 space", "\xf0\x20", 1),
    V("6.13.3 F4 space", "\xf4\x20", 1),
    V("6.13.3 F7 space", "\xf7\x20", 0),
    V("6.13.4 F8 space", "\xf8\x20", 0),
    V("6.13.5 FC space", "\xfc\x20", 0),
    V("E1 80 space", "\xe1\x80\x20", 2),
    V("F1 80 80 space", "\xf1\x80\x80\x20", 3),
    /* 6.14: last continuation byte missing, with more text after it */
    V("6.14.1 C0 then text",
      "\xc0"
      "x",
      0),
    V("6.14.2 E0 80 then text",
      "\xe0\x80"
      "x",
      1),
    V("6.14.6 DF then text",
      "\xdf"
      "x",
      1),
    V("6.14.7 EF BF then text",
      "\xef\xbf"
      "x",
      2),
    V("6.14.8 F4 8F BF then text",
      "\xf4\x8f\xbf"
      "x",
      3),
    V("2-byte then lead", "\xc2\xc2\x80", 1),
    V("3-byte then lead", "\xe1\x80\xe1\x80\x80", 2),
    /* 6.15: concatenated incomplete sequences */
    V("6.15.1 concatenated",
      "\xc0\xe0\x80\xf0\x80\x80\xf8\x88\x80\x80\xdf\xef\xbf\xf7\xbf\xbf"
      "\xfb\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf",
      0),
    V("concatenated valid leads", "\xdf\xef\xbf\xf4\x8f\xbf", 1),
    /* 6.16: impossible bytes */
    V("6.16.1 FE", "\xfe", 0),
    V("6.16.2 FF", "\xff", 0),
    V("6.16.3 FE FE FF FF", "\xfe\xfe\xff\xff", 0),
    V("FF after text", "ab\xff", 2),
    /* 6.17: overlong '/' */
    V("6.17.1 C0 AF", "\xc0\xaf", 0),
    V("6.17.2 E0 80 AF", "\xe0\x80\xaf", 1),
    V("6.17.3 F0 80 80 AF", "\xf0\x80\x80\xaf", 1),
    V("6.17.4 F8 80 80 80 AF", "\xf8\x80\x80\x80\xaf", 0),
    V("6.17.5 FC 80 80 80 80 AF", "\xfc\x80\x80\x80\x80\xaf", 0),
    /* 6.18: maximum overlongs */
    V("6.18.1 C1 BF", "\xc1\xbf", 0),
    V("6.18.2 E0 9F BF", "\xe0\x9f\xbf", 1),
    V("6.18.3 F0 8F BF BF", "\xf0\x8f\xbf\xbf", 1),
    V("6.18.4 F8 87 BF BF BF", "\xf8\x87\xbf\xbf\xbf", 0),
    /* 6.19: overlong NUL */
    V("6.19.1 C0 80", "\xc0\x80", 0),
    V("6.19.2 E0 80 80", "\xe0\x80\x80", 1),
    V("6.19.3 F0 80 80 80", "\xf0\x80\x80\x80", 1),
    /* 6.20: single surrogates */
    V("6.20.1 U+D800", "\xed\xa0\x80", 1),
    V("6.20.2 U+DB7F", "\xed\xad\xbf", 1),
    V("6.20.3 U+DB80", "\xed\xae\x80", 1),
    V("6.20.4 U+DBFF", "\xed\xaf\xbf", 1),
    V("6.20.5 U+DC00", "\xed\xb0\x80", 1),
    V("6.20.6 U+DF80", "\xed\xbe\x80", 1),
    V("6.20.7 U+DFFF", "\xed\xbf\xbf", 1),
    /* 6.21: paired surrogates (CESU-8) */
    V("6.21.1 U+D800 U+DC00", "\xed\xa0\x80\xed\xb0\x80", 1),
    V("6.21.8 U+DBFF U+DFFF", "\xed\xaf\xbf\xed\xbf\xbf", 1),
    /* wrong continuation in every position of a 4-byte character */
    V("F0 41", "\xf0\x41", 1),
    V("F0 90 41", "\xf0\x90\x41", 2),
    V("F0 90 80 41", "\xf0\x90\x80\x41", 3),
    V("F0 90 80 C0", "\xf0\x90\x80\xc0", 3),
};

static void test_vectors(void **state)
{
    for (size_t v = 0; v < sizeof vectors / sizeof vectors[0]; v++) {
        const struct vec *t = &vectors[v];
        const uint8_t *in = (const uint8_t *)t->bytes;
        struct utf8_ref ref = utf8_ref_check(in, t->len);
        /* The reference itself must agree with the hand-written expectation. */
        long got = ref.bad ? (long)ref.bad_at : ref.boundary ? VALID : TRUNCATED;
        if (got != t->expect) {
            fprintf(stderr, "reference says %ld for \"%s\", table says %ld\n", got, t->name,
                    t->expect);
            fail();
        }
        if (check_all_splits3(in, t->len, ref) < 0) {
            fprintf(stderr, "vector \"%s\"\n", t->name);
            fail();
        }
    }
}

/* Autobahn 6.6: "κόσμε" fed as a growing prefix; each prefix ends at or inside a character. */
static void test_kosme_prefixes(void **state)
{
    const uint8_t *k = (const uint8_t *)KOSME;
    size_t n = sizeof KOSME - 1;
    for (size_t len = 0; len <= n; len++) {
        uint32_t st = wispi_utf8_feed(WISPI_UTF8_OK, guard_place(&guard, k, len), len);
        bool at_boundary = len == 0 || len == 2 || len == 5 || len == 7 || len == 9 || len == 11;
        assert_true(st != WISPI_UTF8_BAD);
        assert_true((st == WISPI_UTF8_OK) == at_boundary);
    }
}

static void test_sticky_and_empty(void **state)
{
    assert_int_equal(wispi_utf8_feed(WISPI_UTF8_OK, NULL, 0), WISPI_UTF8_OK);
    assert_int_equal(wispi_utf8_feed(WISPI_UTF8_BAD, NULL, 0), WISPI_UTF8_BAD);
    uint8_t *p = guard_place(&guard, "abc", 3);
    assert_int_equal(wispi_utf8_feed(WISPI_UTF8_BAD, p, 3), WISPI_UTF8_BAD);
    /* A mid-character state survives an empty chunk unchanged. */
    uint32_t mid = wispi_utf8_feed(WISPI_UTF8_OK, guard_place(&guard, "\xe2\x82", 2), 2);
    assert_true(mid != WISPI_UTF8_OK && mid != WISPI_UTF8_BAD);
    assert_int_equal(wispi_utf8_feed(mid, NULL, 0), mid);
    assert_int_equal(wispi_utf8_feed(mid, guard_place(&guard, "\xac", 1), 1), WISPI_UTF8_OK);
    assert_true(wisp_utf8_valid(NULL, 0));
    assert_false(wisp_utf8_valid(NULL, 3));
    assert_true(wisp_utf8_valid("", 0));
    assert_true(wisp_utf8_valid("\xe2\x82\xac", 3));
    assert_false(wisp_utf8_valid("\xe2\x82", 2));
}

/* Every code point, encoded in its shortest form, is valid unless it is a surrogate; the same
 * code point wrapped in ASCII so that it sits at many offsets of the fast paths. */
static void test_every_code_point(void **state)
{
    uint8_t buf[40];
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        size_t off = cp % 21;
        memset(buf, 'x', sizeof buf);
        size_t len = utf8_ref_encode(cp, buf + off);
        size_t n = off + len + (cp % 7);
        bool want = cp < 0xD800 || cp > 0xDFFF;
        uint8_t *p = guard_place(&guard, buf, n);
        uint32_t st = wispi_utf8_feed(WISPI_UTF8_OK, p, n);
        if ((st == WISPI_UTF8_OK) != want || (!want && st != WISPI_UTF8_BAD)) {
            fprintf(stderr, "U+%04X: state %08x\n", (unsigned)cp, (unsigned)st);
            fail();
        }
    }
    /* Beyond U+10FFFF, in the 4-byte form: invalid, found at the second byte. */
    for (uint32_t cp = 0x110000; cp <= 0x1FFFFF; cp += 0x1001) {
        uint8_t e[4];
        size_t len = utf8_ref_encode(cp, e);
        uint8_t *p = guard_place(&guard, e, len);
        assert_int_equal(wispi_utf8_feed(WISPI_UTF8_OK, p, len), WISPI_UTF8_BAD);
        /* fail fast: the first two bytes alone are already BAD */
        p = guard_place(&guard, e, 2);
        assert_int_equal(wispi_utf8_feed(WISPI_UTF8_OK, p, 2), WISPI_UTF8_BAD);
    }
}

/* Overlong encodings: every code point that fits a shorter form, in each longer form. */
static void test_overlongs(void **state)
{
    for (uint32_t cp = 0; cp < 0x10000; cp++) {
        size_t lens[3];
        uint8_t forms[3][4];
        size_t nforms = 0;
        if (cp < 0x80) { /* 2-byte form */
            forms[nforms][0] = (uint8_t)(0xC0 | cp >> 6);
            forms[nforms][1] = (uint8_t)(0x80 | (cp & 0x3F));
            lens[nforms++] = 2;
        }
        if (cp < 0x800) { /* 3-byte form */
            forms[nforms][0] = 0xE0;
            forms[nforms][1] = (uint8_t)(0x80 | cp >> 6);
            forms[nforms][2] = (uint8_t)(0x80 | (cp & 0x3F));
            lens[nforms++] = 3;
        }
        /* 4-byte form */
        forms[nforms][0] = 0xF0;
        forms[nforms][1] = (uint8_t)(0x80 | cp >> 12);
        forms[nforms][2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        forms[nforms][3] = (uint8_t)(0x80 | (cp & 0x3F));
        lens[nforms++] = 4;
        for (size_t f = 0; f < nforms; f++) {
            struct utf8_ref ref = utf8_ref_check(forms[f], lens[f]);
            assert_true(ref.bad);
            /* 2-byte overlongs are caught at the lead (C0/C1), longer ones at byte 2. */
            assert_int_equal(ref.bad_at, lens[f] == 2 ? 0 : 1);
            if (check_all_splits(forms[f], lens[f], ref) < 0)
                fail();
        }
    }
}

/* All 2^16 two-byte and 2^24 three-byte strings, and a large slice of four-byte ones, against
 * the reference: whole, and with every cut. Written straight into the guard buffer. */
static void test_exhaustive_short(void **state)
{
    uint8_t *end = guard.map + guard.data_size;
    for (uint32_t v = 0; v < (1u << 24); v++) {
        uint8_t *p = end - 3;
        p[0] = (uint8_t)(v >> 16), p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)v;
        struct utf8_ref ref = utf8_ref_check(p, 3);
        uint32_t whole = wispi_utf8_feed(WISPI_UTF8_OK, p, 3);
        /* One byte at a time, each byte placed alone before the guard page. */
        uint8_t b[3] = {p[0], p[1], p[2]};
        uint32_t after[3], st = WISPI_UTF8_OK;
        for (int k = 0; k < 3; k++) {
            end[-1] = b[k];
            after[k] = st = wispi_utf8_feed(st, end - 1, 1);
        }
        bool ok = (whole == WISPI_UTF8_BAD) == ref.bad &&
                  (ref.bad || (whole == WISPI_UTF8_OK) == ref.boundary);
        for (size_t k = 0; k < 3; k++)
            ok = ok && (after[k] == WISPI_UTF8_BAD) == (ref.bad && ref.bad_at <= k);
        /* the state is a function of the bytes seen, however they were cut */
        ok = ok && (ref.bad || after[2] == whole);
        if (!ok) {
            dump_failure(b, 3, NULL, 0, "exhaustive 3-byte");
            fail();
        }
        if (v < (1u << 16)) { /* the 2-byte strings */
            uint8_t *q = end - 2;
            q[0] = (uint8_t)(v >> 8), q[1] = (uint8_t)v;
            struct utf8_ref r2 = utf8_ref_check(q, 2);
            uint8_t c[2] = {q[0], q[1]};
            if (check_all_splits(c, 2, r2) < 0)
                fail();
        }
    }
    /* Four bytes: every lead F0-F7 (and the C2/E1 leads as controls), every second byte,
     * third byte on both sides of the continuation range, every fourth byte. */
    static const uint8_t leads[] = {0xC2, 0xE1, 0xF0, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7};
    static const uint8_t thirds[] = {0x41, 0x7F, 0x80, 0x9F, 0xA0, 0xBF, 0xC0, 0xF0};
    for (size_t l = 0; l < sizeof leads; l++)
        for (unsigned b1 = 0; b1 < 256; b1++)
            for (size_t t = 0; t < sizeof thirds; t++)
                for (unsigned b3 = 0; b3 < 256; b3++) {
                    uint8_t in[4] = {leads[l], (uint8_t)b1, thirds[t], (uint8_t)b3};
                    struct utf8_ref ref = utf8_ref_check(in, 4);
                    uint8_t *p = guard_place(&guard, in, 4);
                    uint32_t st = wispi_utf8_feed(WISPI_UTF8_OK, p, 4);
                    if ((st == WISPI_UTF8_BAD) != ref.bad ||
                        (!ref.bad && (st == WISPI_UTF8_OK) != ref.boundary)) {
                        dump_failure(in, 4, NULL, 0, "exhaustive 4-byte");
                        fail();
                    }
                }
}

/* One impossible byte, one multi-byte character, or a cut character at every position of an
 * ASCII run, for run lengths around every width the fast paths use. */
static void test_positions_in_ascii(void **state)
{
    static const char *inserts[] = {
        "\x80",
        "\xff",
        "\xc0\x80",
        "\xed\xa0\x80",
        "\xf4\x90\x80\x80", /* impossible */
        "\xc3\xa9",
        "\xe2\x82\xac",
        "\xf0\x9f\x98\x80", /* valid */
        "\xe2\x82",
        "\xf0\x9f\x98", /* cut short */
    };
    uint8_t buf[300];
    for (size_t len = 0; len <= 200; len++) {
        for (size_t pos = 0; pos <= len; pos++) {
            for (size_t k = 0; k < sizeof inserts / sizeof inserts[0]; k++) {
                size_t il = strlen(inserts[k]);
                memset(buf, 'a' + (int)(pos % 26), len + il);
                memcpy(buf + pos, inserts[k], il);
                size_t n = len + il;
                struct utf8_ref ref = utf8_ref_check(buf, n);
                size_t cuts[1] = {pos + 1};
                if (check_chunks(buf, n, NULL, 0, ref) < 0 ||
                    check_chunks(buf, n, cuts, 1, ref) < 0)
                    fail();
            }
        }
    }
}

/* Text dense in multi-byte characters (what the SIMD path takes), long enough for several
 * 16-byte blocks, with the byte at every position replaced by each of the 256 byte values;
 * whole and cut after the replaced byte. */
static void test_dense_mutations(void **state)
{
    static const uint32_t cps[] = {0xE9,    0x3B1,   0x416,    0x7FF,  0x800,
                                   0x4E2D,  0xD7FF,  0xE000,   0xFFFD, 0xFFFF,
                                   0x10000, 0x1F642, 0x10FFFF, 0x41,   0x20};
    static const size_t lens[] = {64, 67, 80, 97, 129, 200};
    uint8_t buf[400];
    for (size_t L = 0; L < sizeof lens / sizeof lens[0]; L++) {
        /* valid text of about lens[L] bytes: mostly multi-byte, a little ASCII */
        size_t n = 0;
        while (n + 4 <= lens[L])
            n += utf8_ref_encode(cps[rng_below(sizeof cps / sizeof cps[0])], buf + n);
        struct utf8_ref ref = utf8_ref_check(buf, n);
        assert_false(ref.bad);
        if (check_all_splits(buf, n, ref) < 0)
            fail();
        for (size_t pos = 0; pos < n; pos++) {
            for (unsigned r = 0; r < 256; r++) {
                uint8_t saved = buf[pos];
                buf[pos] = (uint8_t)r;
                ref = utf8_ref_check(buf, n);
                size_t cuts[2] = {pos + 1, pos + 1 + rng_below(n - pos)};
                if (check_chunks(buf, n, NULL, 0, ref) < 0 ||
                    check_chunks(buf, n, cuts, 1, ref) < 0 ||
                    check_chunks(buf, n, cuts, 2, ref) < 0)
                    fail();
                buf[pos] = saved;
            }
        }
    }
}

/* A character cut short (or complete) right before a long ASCII run, after dense text of
 * every length: whichever 16-byte block the cut lands in, and at whichever of its last bytes,
 * the run must be refused (or accepted). Then more dense text, so the paths switch back. */
static void test_cut_before_ascii(void **state)
{
    static const char *ends[] = {
        "\xc3",         "\xe4\xb8",     "\xe4",
        "\xf0\x9f\x99", "\xf0\x9f",     "\xf0",             /* cut short */
        "\xc3\xa9",     "\xe4\xb8\xad", "\xf0\x9f\x99\x82", /* complete */
    };
    static const uint32_t cps[] = {0xE9, 0x416, 0x4E2D, 0x1F642, 0xFFFD, 0x10FFFF};
    uint8_t buf[300];
    for (size_t k = 0; k <= 120; k++) {
        for (size_t e = 0; e < sizeof ends / sizeof ends[0]; e++) {
            for (size_t run = 15; run <= 40; run += 25) {
                size_t n = 0;
                while (n < k)
                    n += utf8_ref_encode(cps[rng_below(sizeof cps / sizeof cps[0])], buf + n);
                size_t el = strlen(ends[e]);
                memcpy(buf + n, ends[e], el);
                n += el;
                memset(buf + n, 'z', run);
                n += run;
                for (int j = 0; j < 20; j++)
                    n += utf8_ref_encode(cps[rng_below(sizeof cps / sizeof cps[0])], buf + n);
                struct utf8_ref ref = utf8_ref_check(buf, n);
                assert_true(ref.bad == (e < 6));
                size_t cuts[1] = {rng_below(n + 1)};
                if (check_chunks(buf, n, NULL, 0, ref) < 0 ||
                    check_chunks(buf, n, cuts, 1, ref) < 0)
                    fail();
            }
        }
    }
}

/* wispi_utf8_unmask_feed() is wispi_unmask() then wispi_utf8_feed(): same bytes, same key
 * rotation, same state, for lengths around its block size and inputs that are bad at every
 * kind of place (including past the first block: the rest must still be unmasked). */
static void test_unmask_feed(void **state)
{
    /* its block is 16 KiB; lengths on both sides of one, two and three blocks */
    enum { BLOCK = 16384, MAX = 3 * BLOCK + 100 };
    static uint8_t plain[MAX], a[MAX], b[MAX];
    static const size_t lens[] = {0,         1,
                                  3,         4,
                                  15,        16,
                                  100,       4096,
                                  BLOCK - 1, BLOCK,
                                  BLOCK + 1, 2 * BLOCK - 1,
                                  2 * BLOCK, 2 * BLOCK + 1,
                                  MAX};
    for (size_t L = 0; L < sizeof lens / sizeof lens[0]; L++) {
        for (int variant = 0; variant < 6; variant++) {
            size_t n = lens[L];
            /* valid mixed text, then maybe one bad byte or a cut character */
            size_t at = 0;
            while (at < n) {
                uint8_t e[4];
                size_t el = utf8_ref_encode(rng_below(3) ? 0x20 + (uint32_t)rng_below(0x5F)
                                                         : (uint32_t)rng_below(0x10FFFF),
                                            e);
                if (el == 3 && (e[0] == 0xED && e[1] >= 0xA0))
                    continue; /* no surrogates in the valid text */
                for (size_t j = 0; j < el && at < n; j++)
                    plain[at++] = e[j];
            }
            if (variant == 1 && n > 0)
                plain[rng_below(n)] = 0xFF;
            if (variant == 2 && n > BLOCK + 4)
                plain[BLOCK + rng_below(4)] = 0xC0; /* bad right after the first block */
            if (variant == 3 && n > 0)
                plain[n - 1] = 0xE4; /* ends inside a character */
            uint8_t key[4], ka[4], kb[4];
            for (int j = 0; j < 4; j++)
                key[j] = (uint8_t)rng();
            uint32_t start = variant == 4
                                 ? wispi_utf8_feed(WISPI_UTF8_OK, (const uint8_t *)"\xe2\x82", 2)
                                 : WISPI_UTF8_OK;
            if (variant == 4 && n > 0)
                plain[0] = 0xAC; /* completes the euro sign begun before */
            if (variant == 5)
                start = WISPI_UTF8_BAD;
            memcpy(ka, key, 4);
            memcpy(kb, key, 4);
            wispi_mask_copy(a, plain, n, key); /* the masked payload */
            memcpy(b, a, n);
            uint32_t sa = wispi_utf8_unmask_feed(start, a, n, ka);
            wispi_unmask(b, n, kb);
            uint32_t sb = wispi_utf8_feed(start, b, n);
            assert_int_equal(sa, sb);
            assert_memory_equal(a, plain, n);
            assert_memory_equal(b, plain, n);
            assert_memory_equal(ka, kb, 4);
        }
    }
}

/* Unmask and validate plain[0..n) (masked with key from position 0) in the chunks that end
 * at cuts[0] <= ... (a final chunk runs to n) with wispi_utf8_unmask_feed, each chunk right
 * before the guard page, and compare with the reference: BAD from the chunk that holds the
 * first impossible byte on, every byte unmasked, the key rotated. Returns 0 or -1. */
static int check_unmask_chunks(const uint8_t *plain, size_t n, const uint8_t key[4],
                               const size_t *cuts, size_t ncuts, struct utf8_ref ref)
{
    static uint8_t masked[MAX_INPUT];
    uint8_t k[4];
    memcpy(k, key, 4);
    wispi_mask_copy(masked, plain, n, key);
    uint32_t st = WISPI_UTF8_OK;
    size_t start = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : n;
        uint8_t *p = guard_place(&guard, masked + start, end - start);
        st = wispi_utf8_unmask_feed(st, p, end - start, k);
        if ((st == WISPI_UTF8_BAD) != (ref.bad && ref.bad_at < end) ||
            memcmp(p, plain + start, end - start) != 0) {
            char what[120];
            snprintf(what, sizeof what, "unmask_feed chunk [%zu,%zu) gave %08x%s", start, end,
                     (unsigned)st, memcmp(p, plain + start, end - start) ? ", bytes wrong" : "");
            dump_failure(plain, n, cuts, ncuts, what);
            return -1;
        }
        for (size_t j = 0; j < 4; j++)
            if (k[j] != key[(j + end) % 4]) {
                dump_failure(plain, n, cuts, ncuts, "unmask_feed key not rotated");
                return -1;
            }
        start = end;
    }
    if (!ref.bad && (st == WISPI_UTF8_OK) != ref.boundary) {
        dump_failure(plain, n, cuts, ncuts, "unmask_feed end state");
        return -1;
    }
    return 0;
}

/* ASCII text of n bytes with `marks` characters or bytes (valid, impossible, cut) dropped in
 * at random places: what the fused ASCII paths take, and what makes them stop. */
static size_t ascii_with_marks(uint8_t *buf, size_t n, size_t marks)
{
    static const char *const inserts[] = {
        "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf", /* valid */
        "\x80",     "\xff",         "\xc0\xaf",         "\xed\xa0\x80",     /* impossible */
        "\xe0\x80", "\xf4\x90",    "\xe2\x82",         "\xf0\x9f\x98",     /* impossible / cut */
    };
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(0x20 + rng_below(0x5F));
    while (marks-- > 0 && n > 0) {
        const char *m = inserts[rng_below(sizeof inserts / sizeof inserts[0])];
        size_t ml = strlen(m);
        if (ml > n)
            continue;
        memcpy(buf + rng_below(n - ml + 1), m, ml);
    }
    return n;
}

/* wispi_utf8_unmask_feed at every length 0..300 and alignment 0..63 (every start and end of
 * its vector blocks), on ASCII text, text with a character or bad byte at a random place,
 * text ending inside a character, and from a state inside a character and BAD; the result
 * must equal wispi_unmask then wispi_utf8_feed and the reference, with the bytes around the
 * payload untouched. Then random cuts of long mostly-ASCII text, against the guard page. */
static void test_unmask_feed_paths(void **state)
{
    enum { PAD = 64, MAXN = 300 };
    static uint8_t plain[MAXN], buf[PAD + 64 + MAXN + PAD], want[sizeof buf];
    for (size_t n = 0; n <= MAXN; n++) {
        for (size_t align = 0; align < 64; align++) {
            int variant = (int)((n + align) % 6);
            ascii_with_marks(plain, n, variant == 1 || variant == 2 ? 1 + rng_below(2) : 0);
            if (variant == 3 && n > 0)
                plain[n - 1] = 0xE4; /* ends inside a character */
            uint32_t start = WISPI_UTF8_OK;
            if (variant == 4) {
                start = wispi_utf8_feed(WISPI_UTF8_OK, (const uint8_t *)"\xf0\x9f", 2);
                if (n > 0)
                    plain[0] = 0x98; /* one of the two bytes still needed */
            }
            if (variant == 5)
                start = WISPI_UTF8_BAD;
            uint8_t key[4], ka[4], kb[4];
            for (int j = 0; j < 4; j++)
                key[j] = (uint8_t)rng();
            for (size_t j = 0; j < sizeof buf; j++)
                buf[j] = (uint8_t)rng();
            uint8_t *p = buf + PAD + align;
            wispi_mask_copy(p, plain, n, key);
            memcpy(want, buf, sizeof buf);
            memcpy(want + PAD + align, plain, n);
            memcpy(ka, key, 4);
            memcpy(kb, key, 4);
            uint32_t sa = wispi_utf8_unmask_feed(start, p, n, ka);
            uint8_t copy[MAXN];
            wispi_mask_copy(copy, plain, n, key);
            wispi_unmask(copy, n, kb);
            uint32_t sb = wispi_utf8_feed(start, copy, n);
            assert_int_equal(sa, sb);
            assert_memory_equal(buf, want, sizeof buf);
            assert_memory_equal(ka, kb, 4);
            if (start == WISPI_UTF8_OK) {
                struct utf8_ref ref = utf8_ref_check(plain, n);
                assert_int_equal(sa == WISPI_UTF8_BAD, ref.bad);
                if (!ref.bad)
                    assert_int_equal(sa == WISPI_UTF8_OK, ref.boundary);
            }
        }
    }
    static uint8_t text[MAX_INPUT];
    size_t cuts[8];
    for (int it = 0; it < 20000; it++) {
        size_t n = rng_below(it % 8 ? 600 : MAX_INPUT + 1);
        ascii_with_marks(text, n, rng_below(3) ? 0 : 1 + rng_below(3));
        if (rng_below(4) == 0) /* or dense, then ASCII again: the paths switch back */
            for (size_t at = rng_below(n + 1); at + 4 <= n && rng_below(64); )
                at += utf8_ref_encode(random_code_point(), text + at);
        struct utf8_ref ref = utf8_ref_check(text, n);
        uint8_t key[4];
        for (int j = 0; j < 4; j++)
            key[j] = (uint8_t)rng();
        size_t ncuts = rng_below(9);
        for (size_t c = 0; c < ncuts; c++)
            cuts[c] = rng_below(n + 1);
        for (size_t a = 1; a < ncuts; a++) /* insertion sort */
            for (size_t b = a; b > 0 && cuts[b - 1] > cuts[b]; b--) {
                size_t t = cuts[b];
                cuts[b] = cuts[b - 1], cuts[b - 1] = t;
            }
        /* (and wispi_utf8_feed on the same text, with the same cuts) */
        if (check_unmask_chunks(text, n, key, NULL, 0, ref) < 0 ||
            check_unmask_chunks(text, n, key, cuts, ncuts, ref) < 0 ||
            check_chunks(text, n, cuts, ncuts, ref) < 0)
            fail();
        if (ref.bad) {
            cuts[0] = ref.bad_at;
            cuts[1] = ref.bad_at + 1;
            if (check_unmask_chunks(text, n, key, cuts, 2, ref) < 0)
                fail();
        }
    }
}

/* ---- differential test against the reference over random and mutated inputs ---- */

static const uint8_t interesting[] = {
    0x00, 0x20, 0x41, 0x7F, 0x80, 0x81, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0,
    0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF7, 0xF8, 0xFB, 0xFC, 0xFE, 0xFF,
};

static uint32_t random_code_point(void)
{
    switch (rng_below(8)) {
    case 0:
        return (uint32_t)rng_below(0x80);
    case 1:
        return 0x80 + (uint32_t)rng_below(0x800 - 0x80);
    case 2:
        return 0x800 + (uint32_t)rng_below(0x10000 - 0x800); /* surrogates included */
    case 3:
        return 0x10000 + (uint32_t)rng_below(0x110000 - 0x10000);
    case 4: {
        static const uint32_t edges[] = {0,      0x7F,    0x80,     0x7FF,    0x800,
                                         0xD7FF, 0xD800,  0xDFFF,   0xE000,   0xFFFD,
                                         0xFFFF, 0x10000, 0x10FFFF, 0x110000, 0x1FFFFF};
        return edges[rng_below(sizeof edges / sizeof edges[0])];
    }
    default:
        return 0x20 + (uint32_t)rng_below(0x5F); /* printable ASCII, the common case */
    }
}

/* Build one test input of at most cap bytes; returns its length. */
static size_t random_input(uint8_t *buf, size_t cap)
{
    size_t target = rng_below(8) == 0 ? rng_below(cap) : rng_below(96);
    size_t n = 0;
    if (rng_below(4) == 0) {
        /* bytes from the interesting set, or anything */
        bool any = rng_below(2);
        while (n < target)
            buf[n++] = any ? (uint8_t)rng() : interesting[rng_below(sizeof interesting)];
        return n;
    }
    /* text: ASCII runs (short and long, to hit every fast-path width) and characters */
    while (n + 4 <= target) {
        if (rng_below(3) == 0) {
            size_t run = rng_below(4) == 0 ? rng_below(80) : rng_below(6);
            while (run-- > 0 && n < target)
                buf[n++] = (uint8_t)(0x20 + rng_below(0x5F));
        } else {
            n += utf8_ref_encode(random_code_point(), buf + n);
        }
    }
    /* mutations: each leaves a near-valid input, the hardest kind to judge */
    size_t muts = rng_below(4);
    while (muts-- > 0 && n > 0) {
        size_t at = rng_below(n);
        switch (rng_below(5)) {
        case 0:
            buf[at] ^= (uint8_t)(1u << rng_below(8));
            break;
        case 1:
            buf[at] = interesting[rng_below(sizeof interesting)];
            break;
        case 2: /* delete */
            memmove(buf + at, buf + at + 1, n - at - 1);
            n--;
            break;
        case 3: /* insert */
            if (n < cap) {
                memmove(buf + at + 1, buf + at, n - at);
                buf[at] = interesting[rng_below(sizeof interesting)];
                n++;
            }
            break;
        default: /* truncate */
            n = at;
            break;
        }
    }
    return n;
}

static void test_differential(void **state)
{
    /* WISP_TEST_UTF8_ITERATIONS overrides the count (e.g. for a longer soak). */
    size_t iters = 2000000;
    const char *env = getenv("WISP_TEST_UTF8_ITERATIONS");
    if (env)
        iters = (size_t)strtoull(env, NULL, 10);
    static uint8_t buf[1024];
    size_t cuts[8];
    size_t nbad = 0, nvalid = 0, ntrunc = 0;
    for (size_t it = 0; it < iters; it++) {
        size_t n = random_input(buf, sizeof buf);
        struct utf8_ref ref = utf8_ref_check(buf, n);
        nbad += ref.bad, nvalid += !ref.bad && ref.boundary, ntrunc += !ref.bad && !ref.boundary;
        /* whole, then 1-8 random cuts (sorted, repeats allowed: empty chunks) */
        if (check_chunks(buf, n, NULL, 0, ref) < 0)
            fail();
        size_t ncuts = 1 + rng_below(8);
        for (size_t c = 0; c < ncuts; c++)
            cuts[c] = rng_below(n + 1);
        for (size_t a = 1; a < ncuts; a++) /* insertion sort */
            for (size_t b = a; b > 0 && cuts[b - 1] > cuts[b]; b--) {
                size_t t = cuts[b];
                cuts[b] = cuts[b - 1], cuts[b - 1] = t;
            }
        if (check_chunks(buf, n, cuts, ncuts, ref) < 0)
            fail();
        /* the cut right after the first bad byte, and right before it */
        if (ref.bad) {
            cuts[0] = ref.bad_at;
            cuts[1] = ref.bad_at + 1;
            if (check_chunks(buf, n, cuts, 2, ref) < 0)
                fail();
        }
    }
    /* The generator must produce all three outcomes in bulk, or the test proves little. */
    assert_true(nbad > iters / 10 && nvalid > iters / 10 && ntrunc > iters / 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_kosme_prefixes),
        cmocka_unit_test(test_sticky_and_empty),
        cmocka_unit_test(test_every_code_point),
        cmocka_unit_test(test_overlongs),
        cmocka_unit_test(test_exhaustive_short),
        cmocka_unit_test(test_positions_in_ascii),
        cmocka_unit_test(test_dense_mutations),
        cmocka_unit_test(test_cut_before_ascii),
        cmocka_unit_test(test_unmask_feed),
        cmocka_unit_test(test_unmask_feed_paths),
        cmocka_unit_test(test_differential),
    };
    static const struct {
        const char *name;
        int level;
        CMFixtureFunction setup;
    } groups[] = {
        {"utf8 (scalar only)", WISPI_SIMD_BASE, setup_scalar},
        {"utf8 (SSSE3)", WISPI_SIMD_SSSE3, setup_ssse3},
        {"utf8 (AVX2)", WISPI_SIMD_AVX2, setup_avx2},
        {"utf8 (AVX-512)", WISPI_SIMD_AVX512, setup_avx512},
    };
    int failed = 0;
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        if (groups[g].level > wispi_simd_cpu()) {
            print_message("%s: not available on this CPU\n", groups[g].name);
            continue;
        }
        failed += cmocka_run_group_tests_name(groups[g].name, tests, groups[g].setup, teardown);
    }
    wispi_utf8_simd(true);
    return failed;
}
