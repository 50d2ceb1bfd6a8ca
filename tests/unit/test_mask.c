/* Unit tests for wsproto/mask.c: wispi_unmask(), wispi_mask_copy(), wisp_ws_mask().
 *
 * Everything is compared with a byte-at-a-time reference, dst[i] = src[i] ^ key[(off+i) % 4],
 * for every length 0..100 at every alignment 0..15 (so each wide path starts and ends at every
 * phase), for long buffers, and split at every point. Buffers sit against guard pages at their
 * end (guard_place) and at their start (a local mapping), and small ones between canary bytes.
 * The whole group runs once per vector level the CPU has (baseline, AVX2, AVX-512: see
 * wispi_mask_simd), and test_every_path covers lengths 0..300 at alignments 0..63 at each.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include <wisp/ws.h>

#include "guard.h"
#include "mask.h"

#define BIG (1u << 20)

static uint64_t rng_state = 0xC0FFEE1234ULL;

static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void fill_random(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t r = rng();
        memcpy(p + i, &r, n - i < 8 ? n - i : 8);
    }
}

static void ref_mask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], size_t off)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i] ^ key[(off + i) % 4];
}

/* A mapping whose first page is PROT_NONE: data placed at front_at() starts right after it. */
struct front_guard {
    uint8_t *map;
    size_t size, page;
};

static void front_init(struct front_guard *f, size_t max_len)
{
    f->page = (size_t)sysconf(_SC_PAGESIZE);
    f->size = f->page + (max_len + f->page - 1) / f->page * f->page + f->page;
    f->map = mmap(NULL, f->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(f->map != MAP_FAILED);
    assert_int_equal(mprotect(f->map, f->page, PROT_NONE), 0);
    assert_int_equal(mprotect(f->map + f->size - f->page, f->page, PROT_NONE), 0);
}

static uint8_t *front_place(struct front_guard *f, const void *data, size_t len)
{
    uint8_t *at = f->map + f->page;
    if (len)
        memcpy(at, data, len);
    return at;
}

static void front_free(struct front_guard *f)
{
    munmap(f->map, f->size);
}

/* RFC 6455 §5.7: a single-frame masked text message "Hello". */
static void test_rfc_example(void **state)
{
    static const uint8_t frame[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                    0x7f, 0x9f, 0x4d, 0x51, 0x58};
    uint8_t key[4], payload[5];
    memcpy(key, frame + 2, 4);
    memcpy(payload, frame + 6, 5);
    wispi_unmask(payload, 5, key);
    assert_memory_equal(payload, "Hello", 5);
    /* rotated by 5 % 4 = 1: the next payload byte would meet 0xfa */
    static const uint8_t rotated[4] = {0xfa, 0x21, 0x3d, 0x37};
    assert_memory_equal(key, rotated, 4);

    memcpy(payload, frame + 6, 5);
    wisp_ws_mask(payload, 5, frame + 2, 0);
    assert_memory_equal(payload, "Hello", 5);

    uint8_t out[5];
    wispi_mask_copy(out, (const uint8_t *)"Hello", 5, frame + 2);
    assert_memory_equal(out, frame + 6, 5);

    /* the same payload unmasked in pieces: "He" then "llo" */
    uint8_t k2[4];
    memcpy(k2, frame + 2, 4);
    memcpy(payload, frame + 6, 5);
    wispi_unmask(payload, 2, k2);
    wispi_unmask(payload + 2, 3, k2);
    assert_memory_equal(payload, "Hello", 5);
    /* wisp_ws_mask with the payload offset gives the same */
    memcpy(payload, frame + 6, 5);
    wisp_ws_mask(payload, 3, frame + 2, 0);
    wisp_ws_mask(payload + 3, 2, frame + 2, 3);
    assert_memory_equal(payload, "Hello", 5);
}

/* Every length 0..100 at every alignment 0..15 and every offset 0..3, between canaries. */
static void test_lengths_alignments(void **state)
{
    enum { PAD = 32, MAXN = 100 };
    static uint8_t buf[PAD + 16 + MAXN + PAD], want[sizeof buf], src[16 + MAXN + PAD];
    uint8_t key[4];
    for (size_t n = 0; n <= MAXN; n++) {
        for (size_t align = 0; align < 16; align++) {
            for (size_t off = 0; off < 4; off++) {
                fill_random(key, 4);
                fill_random(buf, sizeof buf);
                memcpy(want, buf, sizeof buf);
                uint8_t *p = buf + PAD + align;
                ref_mask(want + PAD + align, p, n, key, off);
                wisp_ws_mask(p, n, key, off);
                assert_memory_equal(buf, want, sizeof buf); /* canaries included */
                /* offsets >= 4 mean the same as offset % 4 */
                wisp_ws_mask(p, n, key, off + 4 * (n + 1));
                ref_mask(want + PAD + align, want + PAD + align, n, key, off);
                assert_memory_equal(buf, want, sizeof buf);
            }
            /* wispi_unmask: offset 0, and the key comes back rotated by n % 4 */
            fill_random(key, 4);
            fill_random(buf, sizeof buf);
            memcpy(want, buf, sizeof buf);
            uint8_t *p = buf + PAD + align;
            uint8_t k[4], rot[4];
            memcpy(k, key, 4);
            for (size_t j = 0; j < 4; j++)
                rot[j] = key[(j + n) % 4];
            ref_mask(want + PAD + align, p, n, key, 0);
            wispi_unmask(p, n, k);
            assert_memory_equal(buf, want, sizeof buf);
            assert_memory_equal(k, rot, 4);
            /* wispi_mask_copy: source and destination alignments independent */
            for (size_t salign = 0; salign < 16; salign++) {
                fill_random(src, sizeof src);
                fill_random(buf, sizeof buf);
                memcpy(want, buf, sizeof buf);
                ref_mask(want + PAD + align, src + salign, n, key, 0);
                uint8_t src_copy[sizeof src];
                memcpy(src_copy, src, sizeof src);
                wispi_mask_copy(buf + PAD + align, src + salign, n, key);
                assert_memory_equal(buf, want, sizeof buf);
                assert_memory_equal(src, src_copy, sizeof src); /* source untouched */
            }
        }
    }
}

/* Long buffers at random lengths, alignments and offsets (the 64-byte SSE2 loop, the
 * alignment head). */
static void test_long_buffers(void **state)
{
    uint8_t *buf = malloc(BIG + 64), *want = malloc(BIG + 64), *src = malloc(BIG + 64);
    assert_non_null(buf);
    assert_non_null(want);
    assert_non_null(src);
    uint8_t key[4];
    for (int it = 0; it < 300; it++) {
        size_t n = it < 20 ? BIG - (size_t)it : (size_t)(rng() % (it < 200 ? 5000 : BIG));
        size_t align = (size_t)(rng() % 16), salign = (size_t)(rng() % 16);
        size_t off = (size_t)(rng() % 4);
        fill_random(key, 4);
        fill_random(buf, n + 32);
        memcpy(want, buf, n + 32);
        ref_mask(want + align, buf + align, n, key, off);
        wisp_ws_mask(buf + align, n, key, off);
        assert_memory_equal(buf, want, n + 32);

        fill_random(src, n + 32);
        ref_mask(want + align, src + salign, n, key, 0);
        wispi_mask_copy(buf + align, src + salign, n, key);
        assert_memory_equal(buf, want, n + 32);

        /* in place through mask_copy (dst == src is allowed) */
        memcpy(want, buf, n + 32);
        ref_mask(want + align, want + align, n, key, 0);
        wispi_mask_copy(buf + align, buf + align, n, key);
        assert_memory_equal(buf, want, n + 32);
    }
    free(buf);
    free(want);
    free(src);
}

/* Unmasking in pieces with the rotating key equals unmasking at once: every split point of a
 * 300-byte payload, every pair of split points of a 70-byte one, and random many-piece cuts
 * of long payloads. */
static void test_splits(void **state)
{
    enum { N = 300, M = 70 };
    uint8_t orig[N], want[N], got[N], key[4], k[4];
    fill_random(orig, N);
    fill_random(key, 4);
    ref_mask(want, orig, N, key, 0);
    for (size_t s = 0; s <= N; s++) {
        memcpy(got, orig, N);
        memcpy(k, key, 4);
        wispi_unmask(got, s, k);
        wispi_unmask(got + s, N - s, k);
        assert_memory_equal(got, want, N);
        for (size_t j = 0; j < 4; j++) /* rotated by s, then by N - s: N % 4 in all */
            assert_int_equal(k[j], key[(j + N) % 4]);
        /* the stateless form with an explicit offset */
        memcpy(got, orig, N);
        wisp_ws_mask(got, s, key, 0);
        wisp_ws_mask(got + s, N - s, key, s);
        assert_memory_equal(got, want, N);
    }
    for (size_t a = 0; a <= M; a++) {
        for (size_t b = a; b <= M; b++) {
            memcpy(got, orig, M);
            memcpy(k, key, 4);
            wispi_unmask(got, a, k);
            wispi_unmask(got + a, b - a, k);
            wispi_unmask(got + b, M - b, k);
            assert_memory_equal(got, want, M);
        }
    }
    uint8_t *big = malloc(BIG), *bigwant = malloc(BIG);
    assert_non_null(big);
    assert_non_null(bigwant);
    for (int it = 0; it < 20; it++) {
        size_t n = BIG - (size_t)(rng() % 1000);
        fill_random(big, n);
        fill_random(key, 4);
        ref_mask(bigwant, big, n, key, 0);
        memcpy(k, key, 4);
        size_t at = 0;
        while (at < n) {
            size_t piece = (size_t)(rng() % (it % 2 ? 200 : 40000));
            if (piece > n - at)
                piece = n - at;
            wispi_unmask(big + at, piece, k);
            at += piece;
        }
        assert_memory_equal(big, bigwant, n);
    }
    free(big);
    free(bigwant);
}

/* Buffers that end at a guard page and buffers that start right after one: any access
 * outside [p, p + n) faults. */
static void test_guard_pages(void **state)
{
    enum { MAXN = 70000 };
    struct guard_buf gd, gs;
    struct front_guard fd, fs;
    guard_init(&gd, MAXN);
    guard_init(&gs, MAXN);
    front_init(&fd, MAXN);
    front_init(&fs, MAXN);
    uint8_t *data = malloc(MAXN), *want = malloc(MAXN);
    assert_non_null(data);
    assert_non_null(want);
    uint8_t key[4];
    for (size_t n = 0; n <= MAXN; n = n < 300 ? n + 1 : n * 3 / 2 + 7) {
        if (n > MAXN)
            n = MAXN;
        fill_random(data, n);
        fill_random(key, 4);
        for (size_t off = 0; off < 4; off++) {
            ref_mask(want, data, n, key, off);
            uint8_t *p = guard_place(&gd, data, n);
            wisp_ws_mask(p, n, key, off);
            assert_memory_equal(p, want, n);
            p = front_place(&fd, data, n);
            wisp_ws_mask(p, n, key, off);
            assert_memory_equal(p, want, n);
        }
        ref_mask(want, data, n, key, 0);
        uint8_t k[4];
        memcpy(k, key, 4);
        uint8_t *p = guard_place(&gd, data, n);
        wispi_unmask(p, n, k);
        assert_memory_equal(p, want, n);
        memcpy(k, key, 4);
        p = front_place(&fd, data, n);
        wispi_unmask(p, n, k);
        assert_memory_equal(p, want, n);
        /* copy: both source and destination against guards, in both arrangements */
        uint8_t *s = guard_place(&gs, data, n);
        uint8_t *d = guard_place(&gd, want, 0) - n; /* the last n bytes before the guard */
        wispi_mask_copy(d, s, n, key);
        assert_memory_equal(d, want, n);
        s = front_place(&fs, data, n);
        d = front_place(&fd, NULL, 0);
        wispi_mask_copy(d, s, n, key);
        assert_memory_equal(d, want, n);
        if (n == MAXN)
            break;
    }
    free(data);
    free(want);
    guard_free(&gd);
    guard_free(&gs);
    front_free(&fd);
    front_free(&fs);
}

/* Lengths 0..300 at dst alignments 0..63 (so each path's vector loop, head and overlapping
 * tail start and end everywhere in a cache line), every offset, independent source alignment
 * for the copy, canaries around; then the same lengths against guard pages at both ends, and
 * random (length, alignment, offset, key) draws up to 4 KiB. */
static void test_every_path(void **state)
{
    enum { PAD = 64, MAXN = 300 };
    static uint8_t buf[PAD + 64 + MAXN + PAD], want[sizeof buf], src[64 + MAXN + PAD];
    uint8_t key[4];
    for (size_t n = 0; n <= MAXN; n++) {
        for (size_t align = 0; align < 64; align++) {
            size_t off = (n + align) % 4;
            fill_random(key, 4);
            fill_random(buf, sizeof buf);
            memcpy(want, buf, sizeof buf);
            uint8_t *p = buf + PAD + align;
            ref_mask(want + PAD + align, p, n, key, off);
            wisp_ws_mask(p, n, key, off);
            assert_memory_equal(buf, want, sizeof buf);

            uint8_t k[4];
            memcpy(k, key, 4);
            ref_mask(want + PAD + align, p, n, key, 0);
            wispi_unmask(p, n, k);
            assert_memory_equal(buf, want, sizeof buf);
            for (size_t j = 0; j < 4; j++)
                assert_int_equal(k[j], key[(j + n) % 4]);

            size_t salign = (align * 37 + n) % 64;
            fill_random(src, sizeof src);
            ref_mask(want + PAD + align, src + salign, n, key, 0);
            wispi_mask_copy(p, src + salign, n, key);
            assert_memory_equal(buf, want, sizeof buf);
        }
    }

    struct guard_buf g;
    struct front_guard f;
    guard_init(&g, 4096);
    front_init(&f, 4096);
    uint8_t data[4096], w[4096];
    for (size_t n = 0; n <= MAXN; n++) {
        fill_random(data, n);
        fill_random(key, 4);
        size_t off = n % 4;
        ref_mask(w, data, n, key, off);
        uint8_t *p = guard_place(&g, data, n);
        wisp_ws_mask(p, n, key, off);
        assert_memory_equal(p, w, n);
        p = front_place(&f, data, n);
        wisp_ws_mask(p, n, key, off);
        assert_memory_equal(p, w, n);
    }
    for (int it = 0; it < 20000; it++) {
        size_t n = (size_t)(rng() % (it % 4 ? 300 : 4096)), off = (size_t)(rng() % 4);
        fill_random(data, n);
        fill_random(key, 4);
        ref_mask(w, data, n, key, off);
        uint8_t *p = it % 2 ? guard_place(&g, data, n) : front_place(&f, data, n);
        wisp_ws_mask(p, n, key, off);
        assert_memory_equal(p, w, n);
    }
    guard_free(&g);
    front_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_example),  cmocka_unit_test(test_lengths_alignments),
        cmocka_unit_test(test_long_buffers), cmocka_unit_test(test_splits),
        cmocka_unit_test(test_guard_pages),  cmocka_unit_test(test_every_path),
    };
    static const char *const names[] = {"mask (baseline)", "mask (SSSE3)", "mask (AVX2)",
                                        "mask (AVX-512)"};
    int failed = 0;
    for (int level = WISPI_SIMD_BASE; level <= WISPI_SIMD_AVX512; level++) {
        if (level == WISPI_SIMD_SSSE3)
            continue; /* masking has no SSSE3 path: the same as the baseline */
        if (wispi_mask_simd(level) != level) {
            print_message("%s: not available on this CPU\n", names[level]);
            continue;
        }
        failed += cmocka_run_group_tests_name(names[level], tests, NULL, NULL);
    }
    wispi_mask_simd(WISPI_SIMD_AVX512);
    return failed;
}
