/* parser_bench: how fast received WebSocket payload is unmasked and validated, next to memcpy.
 *
 * For payloads of 1 KiB, 64 KiB and 1 MiB it reports GB/s (10^9 payload bytes per second) and
 * the ratio to memcpy of the same bytes for:
 *   memcpy                memcpy(dst, src, n): the yardstick
 *   unmask (binary)       wispi_unmask() in place: a binary frame
 *   utf8 ascii / mixed    wispi_utf8_feed() alone, on ASCII text and on mixed text (~60% of
 *                         bytes ASCII, the rest 2-, 3- and 4-byte characters); "scalar" with
 *                         the SIMD path switched off (what a CPU without SSSE3 gets)
 *   unmask, utf8 ...      wispi_unmask() then wispi_utf8_feed(): two passes over the payload
 *   unmask+utf8 ... 1p    wispi_utf8_unmask_feed(): the same work in one pass
 * and, when the engine is built (WISP_BENCH_ENGINE), the same payloads as whole masked frames
 * (binary, ASCII text, mixed text) through wisp_ws_recv(); then the time per frame for a buffer
 * of back-to-back masked 16-byte text frames.
 *
 * Method: clock_gettime(CLOCK_MONOTONIC) around a batch of repetitions sized to take ~0.25 ms;
 * SAMPLES batches per variant, the variants interleaved (A B C A B C ...) so that a noisy
 * neighbour hits all of them alike; the median batch is reported. Input is generated from a
 * fixed seed, so every run measures the same bytes.
 *
 * Unmasking in place flips the buffer between masked and plain, so batch repetitions alternate
 * between unmasking T^K (giving T) and "unmasking" T (giving T^K). Both must be valid text, or
 * every other validation would stop at the first byte. ASCII text with key bytes below 0x80
 * stays ASCII; for mixed text the key bytes are 1..7, which keep every byte's kind (ASCII,
 * continuation, 2/3/4-byte lead), and the generator only places characters that stay valid
 * when XOR-ed with the key at their position. XOR costs the same for any key, so the timing is
 * that of any other key. Each validation result is checked: a mistake aborts the run.
 *
 * Numbers are meaningful only from an optimised build without sanitizers.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wisp/ws.h>

#include "mask.h"
#include "utf8.h"

#ifndef WISP_BENCH_ENGINE
#define WISP_BENCH_ENGINE 0
#endif

/* Short batches, many of them: on a shared machine a batch that gets preempted is an outlier
 * the median ignores, and a short batch is rarely preempted. */
#define SAMPLES  31
#define BATCH_NS 250000.0 /* aim for ~0.25 ms per timed batch */

static const uint8_t KEY_BINARY[4] = {0x37, 0xfa, 0x21, 0x3d}; /* RFC 6455 §5.7 */
static const uint8_t KEY_ASCII[4] = {0x37, 0x7a, 0x21, 0x3d};  /* high bits clear */
static const uint8_t KEY_MIXED[4] = {0x05, 0x03, 0x06, 0x01};  /* bits 0-2 only */

/* ---- helpers ---- */

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Make the compiler assume p's bytes are read and written here, so no work is dropped. */
static inline void clobber(void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

static uint64_t rng_state = 0xB5EED5EEDULL;

static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void *xmalloc(size_t n)
{
    void *p = aligned_alloc(64, (n + 63) / 64 * 64);
    if (!p) {
        perror("parser_bench: malloc");
        exit(1);
    }
    return p;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void die(const char *what)
{
    fprintf(stderr, "parser_bench: %s\n", what);
    exit(1);
}

/* ---- inputs ---- */

static size_t encode(uint32_t cp, uint8_t *out)
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
    out[0] = (uint8_t)(0xF0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* ASCII prose-like text: words of letters, spaces, some punctuation. */
static void gen_ascii(uint8_t *p, size_t n)
{
    static const char alphabet[] = "etaoinshrdlucmfwypvbgkjqxz     ,.ETAOIN0123456789";
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)alphabet[rng() % (sizeof alphabet - 1)];
}

/* Mixed text: ASCII runs (words, spaces) between runs of non-ASCII characters drawn from
 * Latin-1/Greek/Cyrillic (2 bytes), CJK (3 bytes) and emoji (4 bytes), with ascii_pct percent
 * of the bytes ASCII. A character is kept only if it stays valid XOR-ed with the key at its
 * position (see the top comment); the buffer ends with ASCII padding. */
static void gen_mixed(uint8_t *p, size_t n, const uint8_t key[4], unsigned ascii_pct,
                      size_t *ascii_bytes)
{
    size_t i = 0, ascii = 0;
    while (i + 4 <= n) {
        /* an ASCII word while the ASCII share is below target, else a few characters */
        if (ascii * 100 < (size_t)ascii_pct * (i + 1)) {
            size_t run = 1 + rng() % 8;
            while (run-- && i + 4 <= n) {
                p[i++] = (uint8_t)(" etaoinshrdlu,."[rng() % 15]);
                ascii++;
            }
            continue;
        }
        uint32_t cp;
        switch (rng() % 6) {
        case 0:
        case 1:
            cp = 0xA0 + (uint32_t)(rng() % 0x60); /* Latin-1 */
            break;
        case 2:
            cp = 0x3B1 + (uint32_t)(rng() % 25); /* Greek */
            break;
        case 3:
            cp = 0x410 + (uint32_t)(rng() % 64); /* Cyrillic */
            break;
        case 4:
            cp = 0x4E00 + (uint32_t)(rng() % 0x5000); /* CJK */
            break;
        default:
            cp = 0x1F300 + (uint32_t)(rng() % 0x300); /* emoji */
            break;
        }
        uint8_t c[4], x[4];
        size_t len = encode(cp, c);
        for (size_t j = 0; j < len; j++)
            x[j] = c[j] ^ key[(i + j) % 4];
        if (!wisp_utf8_valid(x, len))
            continue; /* its XOR-ed form is not a character: draw another */
        memcpy(p + i, c, len);
        i += len;
    }
    while (i < n) {
        p[i++] = ' ';
        ascii++;
    }
    *ascii_bytes = ascii;
}

/* ---- variants ---- */

enum kind {
    K_MEMCPY,
    K_UNMASK,
    K_VAL_ASCII,
    K_VAL_MIXED,
    K_VAL_MIXED_SCALAR,
    K_ASCII,
    K_ASCII_FUSED,
    K_MIXED,
    K_MIXED_FUSED,
    K_ENG_BIN,
    K_ENG_ASCII,
    K_ENG_MIXED,
    K_N
};

static const char *const kind_name[K_N] = {
    "memcpy",
    "unmask (binary)",
    "utf8 ascii",
    "utf8 mixed",
    "utf8 mixed, scalar",
    "unmask, utf8 ascii",
    "unmask+utf8 ascii 1p",
    "unmask, utf8 mixed",
    "unmask+utf8 mixed 1p",
    "engine binary",
    "engine text ascii",
    "engine text mixed",
};

struct size_case {
    size_t n;
    uint8_t *src, *dst;     /* memcpy */
    uint8_t *bin;           /* binary payload, unmasked in place */
    uint8_t *ascii, *mixed; /* text payloads: T ^ K at start */
    uint8_t *frame[3];      /* whole frames for the engine: binary, ascii, mixed */
    size_t frame_len[3];
    size_t reps[K_N]; /* repetitions per batch, per variant */
    double samples[K_N][SAMPLES];
};

static uint32_t sink;
static int simd_cap = WISPI_SIMD_AVX512; /* WISP_BENCH_SIMD, see main */

static void check_valid(uint32_t st)
{
    if (st != WISPI_UTF8_OK)
        die("benchmark text did not validate");
    sink += st;
}

/* One repetition of a variant. */
static void run_once(struct size_case *c, enum kind k, struct wisp_ws *ws)
{
    uint8_t key[4];
    switch (k) {
    case K_MEMCPY:
        memcpy(c->dst, c->src, c->n);
        clobber(c->dst);
        break;
    case K_UNMASK:
        memcpy(key, KEY_BINARY, 4);
        wispi_unmask(c->bin, c->n, key);
        clobber(c->bin);
        break;
    case K_VAL_ASCII:
        check_valid(wispi_utf8_feed(WISPI_UTF8_OK, c->ascii, c->n));
        break;
    case K_VAL_MIXED:
        check_valid(wispi_utf8_feed(WISPI_UTF8_OK, c->mixed, c->n));
        break;
    case K_VAL_MIXED_SCALAR:
        wispi_utf8_simd_max(WISPI_SIMD_BASE);
        check_valid(wispi_utf8_feed(WISPI_UTF8_OK, c->mixed, c->n));
        wispi_utf8_simd_max(simd_cap);
        break;
    case K_ASCII:
    case K_MIXED: {
        /* two calls, as an engine would make them */
        uint8_t *p = k == K_ASCII ? c->ascii : c->mixed;
        memcpy(key, k == K_ASCII ? KEY_ASCII : KEY_MIXED, 4);
        wispi_unmask(p, c->n, key);
        check_valid(wispi_utf8_feed(WISPI_UTF8_OK, p, c->n));
        clobber(p);
        break;
    }
    case K_ASCII_FUSED:
    case K_MIXED_FUSED: {
        /* one pass: wispi_utf8_unmask_feed() */
        uint8_t *p = k == K_ASCII_FUSED ? c->ascii : c->mixed;
        memcpy(key, k == K_ASCII_FUSED ? KEY_ASCII : KEY_MIXED, 4);
        check_valid(wispi_utf8_unmask_feed(WISPI_UTF8_OK, p, c->n, key));
        clobber(p);
        break;
    }
    default: {
#if WISP_BENCH_ENGINE
        int f = k - K_ENG_BIN;
        struct wisp_ws_event ev;
        ssize_t used = wisp_ws_recv(ws, c->frame[f], c->frame_len[f], &ev);
        if (used != (ssize_t)c->frame_len[f] || ev.type != WISP_WS_EV_MESSAGE || ev.len != c->n)
            die("engine did not deliver the benchmark frame whole");
        sink += ev.data[0];
        clobber(c->frame[f]);
#else
        (void)ws;
#endif
        break;
    }
    }
}

static double time_batch(struct size_case *c, enum kind k, struct wisp_ws *ws, size_t reps)
{
    double t0 = now_ns();
    for (size_t r = 0; r < reps; r++)
        run_once(c, k, ws);
    return now_ns() - t0;
}

static double median(double *v, size_t n)
{
    double tmp[SAMPLES];
    memcpy(tmp, v, n * sizeof *v);
    qsort(tmp, n, sizeof *tmp, cmp_double);
    return tmp[n / 2];
}

/* A masked frame header (RFC 6455 §5.2), written here so the benchmark does not depend on
 * the encoder: FIN, opcode, 7/16/64-bit length, mask bit, key. */
static size_t put_header(uint8_t *out, enum wisp_ws_opcode op, uint64_t n, const uint8_t key[4])
{
    size_t h = 2;
    out[0] = (uint8_t)(0x80 | op);
    if (n < 126) {
        out[1] = (uint8_t)(0x80 | n);
    } else if (n <= 0xFFFF) {
        out[1] = 0x80 | 126;
        out[2] = (uint8_t)(n >> 8), out[3] = (uint8_t)n;
        h = 4;
    } else {
        out[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(n >> (56 - 8 * i));
        h = 10;
    }
    memcpy(out + h, key, 4);
    return h + 4;
}

/* A whole masked frame around a payload. */
static uint8_t *make_frame(enum wisp_ws_opcode op, const uint8_t *plain, size_t n,
                           const uint8_t key[4], size_t *flen)
{
    uint8_t *f = xmalloc(n + WISP_WS_MAX_HEADER);
    size_t h = put_header(f, op, n, key);
    wispi_mask_copy(f + h, plain, n, key);
    *flen = h + n;
    return f;
}

static void setup_case(struct size_case *c, size_t n)
{
    c->n = n;
    c->src = xmalloc(n);
    c->dst = xmalloc(n);
    c->bin = xmalloc(n);
    c->ascii = xmalloc(n);
    c->mixed = xmalloc(n);
    for (size_t i = 0; i < n; i++)
        c->src[i] = c->bin[i] = (uint8_t)rng();
    uint8_t *plain_ascii = xmalloc(n), *plain_mixed = xmalloc(n);
    size_t ascii_bytes;
    gen_ascii(plain_ascii, n);
    gen_mixed(plain_mixed, n, KEY_MIXED, 60, &ascii_bytes);
    if (n == (1u << 20))
        printf("mixed text: %.0f%% of bytes ASCII\n", 100.0 * (double)ascii_bytes / (double)n);
    wispi_mask_copy(c->ascii, plain_ascii, n, KEY_ASCII);
    wispi_mask_copy(c->mixed, plain_mixed, n, KEY_MIXED);
    /* both states of each text buffer must be valid (see the top comment) */
    if (!wisp_utf8_valid(plain_ascii, n) || !wisp_utf8_valid(c->ascii, n) ||
        !wisp_utf8_valid(plain_mixed, n) || !wisp_utf8_valid(c->mixed, n))
        die("generated text is not valid in both masked states");
    c->frame[0] = make_frame(WISP_WS_OP_BINARY, c->src, n, KEY_BINARY, &c->frame_len[0]);
    c->frame[1] = make_frame(WISP_WS_OP_TEXT, plain_ascii, n, KEY_ASCII, &c->frame_len[1]);
    c->frame[2] = make_frame(WISP_WS_OP_TEXT, plain_mixed, n, KEY_MIXED, &c->frame_len[2]);
    free(plain_ascii);
    free(plain_mixed);
}

static void free_case(struct size_case *c)
{
    free(c->src);
    free(c->dst);
    free(c->bin);
    free(c->ascii);
    free(c->mixed);
    for (int f = 0; f < 3; f++)
        free(c->frame[f]);
}

static void bench_sizes(const struct wisp_ws_config *cfg)
{
    static const size_t sizes[] = {1u << 10, 1u << 16, 1u << 20};
    enum { NS = sizeof sizes / sizeof sizes[0] };
    static struct size_case cases[NS];
    int nk = WISP_BENCH_ENGINE ? K_N : K_ENG_BIN;
    struct wisp_ws ws;
    memset(&ws, 0, sizeof ws);
#if WISP_BENCH_ENGINE
    if (wisp_ws_init(&ws, cfg) != 0)
        die("wisp_ws_init failed");
#endif

    for (int s = 0; s < NS; s++) {
        struct size_case *c = &cases[s];
        setup_case(c, sizes[s]);
        /* Calibrate each variant to ~BATCH_NS per batch (the best of a few tries, so one
         * preemption does not skew it); an even count leaves each in-place buffer as it
         * started. The first tries also warm caches and page tables. */
        for (int k = 0; k < nk; k++) {
            double t = 1e300;
            for (int tries = 0; tries < 5; tries++) {
                double u = time_batch(c, (enum kind)k, &ws, 2) / 2.0;
                t = u < t ? u : t;
            }
            size_t reps = (size_t)(BATCH_NS / t);
            c->reps[k] = reps < 2 ? 2 : (reps + 1) & ~(size_t)1;
        }
        for (int i = 0; i < SAMPLES; i++)
            for (int k = 0; k < nk; k++)
                c->samples[k][i] = time_batch(c, (enum kind)k, &ws, c->reps[k]);
    }

    printf("\n%-20s", "GB/s (x memcpy)");
    for (int s = 0; s < NS; s++)
        printf(" %10zu KiB       ", sizes[s] >> 10);
    printf("\n");
    for (int k = 0; k < nk; k++) {
        printf("%-20s", kind_name[k]);
        for (int s = 0; s < NS; s++) {
            struct size_case *c = &cases[s];
            double gbs = (double)c->n * (double)c->reps[k] / median(c->samples[k], SAMPLES);
            double base =
                (double)c->n * (double)c->reps[K_MEMCPY] / median(c->samples[K_MEMCPY], SAMPLES);
            printf("  %7.2f  (%5.2fx)   ", gbs, gbs / base);
        }
        printf("\n");
    }
    for (int s = 0; s < NS; s++)
        free_case(&cases[s]);
#if WISP_BENCH_ENGINE
    wisp_ws_deinit(&ws);
#endif
}

/* Back-to-back masked text frames with 16-byte payloads (22 bytes on the wire each). */
static void bench_small_frames(const struct wisp_ws_config *cfg)
{
    enum { FRAMES = 4096, PAYLOAD = 16 };
    size_t flen = 2 + 4 + PAYLOAD, total = (size_t)FRAMES * flen;
    uint8_t *buf = xmalloc(total), *copy = xmalloc(total), *payloads = xmalloc(total);
    uint8_t plain[PAYLOAD];
    for (size_t f = 0; f < FRAMES; f++) {
        uint8_t key[4];
        for (int j = 0; j < 4; j++)
            key[j] = (uint8_t)(rng() & 0x7F); /* keeps ASCII ASCII: see the top comment */
        gen_ascii(plain, PAYLOAD);
        size_t h = put_header(buf + f * flen, WISP_WS_OP_TEXT, PAYLOAD, key);
        if (h != 6)
            die("unexpected header length");
        wispi_mask_copy(buf + f * flen + h, plain, PAYLOAD, key);
    }
    memcpy(payloads, buf, total);
    enum { V_MEMCPY, V_INTERNAL, V_ENGINE, V_N };
    static const char *const names[V_N] = {
        "memcpy of the buffer",
        "unmask+utf8 (internal)",
        "wisp_ws_recv (engine)",
    };
    int nv = WISP_BENCH_ENGINE ? V_N : V_ENGINE;
    double samples[V_N][SAMPLES];
    struct wisp_ws ws;
    memset(&ws, 0, sizeof ws);
#if WISP_BENCH_ENGINE
    if (wisp_ws_init(&ws, cfg) != 0)
        die("wisp_ws_init failed");
#endif
    size_t reps = 2; /* each rep parses all FRAMES; even, so buffers end as they started */
    for (int i = -1; i < SAMPLES; i++) { /* i == -1: warm-up */
        for (int v = 0; v < nv; v++) {
            double t0 = now_ns();
            for (size_t r = 0; r < reps; r++) {
                if (v == V_MEMCPY) {
                    memcpy(copy, buf, total);
                    clobber(copy);
                } else if (v == V_INTERNAL) {
                    /* the payload work alone: key from the header, unmask, validate */
                    for (size_t f = 0; f < FRAMES; f++) {
                        uint8_t *fr = payloads + f * flen, key[4];
                        memcpy(key, fr + 2, 4);
                        wispi_unmask(fr + 6, PAYLOAD, key);
                        if (wispi_utf8_feed(WISPI_UTF8_OK, fr + 6, PAYLOAD) != WISPI_UTF8_OK)
                            die("small frame did not validate");
                    }
                    clobber(payloads);
                } else {
#if WISP_BENCH_ENGINE
                    size_t off = 0;
                    while (off < total) {
                        struct wisp_ws_event ev;
                        ssize_t used = wisp_ws_recv(&ws, buf + off, total - off, &ev);
                        if (used != (ssize_t)flen || ev.type != WISP_WS_EV_MESSAGE)
                            die("engine did not deliver a small frame");
                        sink += ev.data[0];
                        off += (size_t)used;
                    }
                    clobber(buf);
#endif
                }
            }
            if (i >= 0)
                samples[v][i] = now_ns() - t0;
        }
    }
    printf("\n16-byte text frames (%d back to back, 22 bytes each on the wire)\n", FRAMES);
    double base = median(samples[V_MEMCPY], SAMPLES) / (double)(reps * FRAMES);
    for (int v = 0; v < nv; v++) {
        double ns = median(samples[v], SAMPLES) / (double)(reps * FRAMES);
        printf("%-26s %7.2f ns/frame  %7.1f M frames/s  (%.1fx memcpy time)\n", names[v], ns,
               1e3 / ns, ns / base);
    }
#if WISP_BENCH_ENGINE
    wisp_ws_deinit(&ws);
#endif
    free(buf);
    free(copy);
    free(payloads);
}

int main(void)
{
    double t0 = now_ns();
    struct wisp_ws_config cfg;
    memset(&cfg, 0, sizeof cfg);
#if WISP_BENCH_ENGINE
    if (wisp_ws_config_init(&cfg, WISP_WS_SERVER) != 0)
        die("wisp_ws_config_init failed");
#endif
    printf("parser_bench: median of %d interleaved batches of ~%.2f ms; GB = 1e9 payload "
           "bytes\n",
           SAMPLES, BATCH_NS / 1e6);
    /* WISP_BENCH_SIMD=0..3 caps the vector paths (0 baseline, 1 SSSE3, 2 AVX2, 3 AVX-512),
     * to compare them on one machine. */
    const char *simd = getenv("WISP_BENCH_SIMD");
    if (simd && *simd) {
        int cap = simd_cap = atoi(simd);
        printf("vector paths capped at level %d: masking uses %d, UTF-8 %d\n", cap,
               wispi_mask_simd(cap), wispi_utf8_simd_max(cap));
    }
    if (!WISP_BENCH_ENGINE)
        printf("(engine not built: internal functions only)\n");
    bench_sizes(&cfg);
    bench_small_frames(&cfg);
    printf("\ntotal %.1f s (checksum %u)\n", (now_ns() - t0) / 1e9, (unsigned)sink);
    return 0;
}
