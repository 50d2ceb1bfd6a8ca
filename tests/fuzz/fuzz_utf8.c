/* libFuzzer target: wispi_utf8_feed() against the reference checker (support/utf8_ref.h),
 * with the chunking chosen by the input.
 *
 * Input layout: byte 0 picks how the rest is cut, and which code paths may run:
 *   mode = byte0 & 3:  0 whole,  1 one byte at a time,
 *                      2 fixed chunks of arg + 1 bytes,
 *                      3 chunk lengths 0..arg + 1 drawn from a PRNG seeded by byte 1
 *                        (the text then starts at byte 2). Empty chunks are included, but
 *                        never two in a row, so the loop always advances.
 *   byte0 & 4:         set: scalar path only; clear: SIMD path allowed (if the CPU has it).
 *   arg = byte0 >> 3.
 * Each chunk is copied into its own heap block of exactly its length, so a read past it is an
 * AddressSanitizer report. Any disagreement with the reference (the chunk where BAD first
 * appears, or the final state) aborts. The text is also masked and put through
 * wispi_utf8_unmask_feed(), which must give back the text and the same verdict.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/ws.h>

#include "mask.h"
#include "utf8.h"
#include "../support/utf8_ref.h" /* relative: the fuzz build has no support/ include dir */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void mismatch(const uint8_t *text, size_t n, size_t start, size_t end, uint32_t st,
                     struct utf8_ref ref)
{
    fprintf(stderr,
            "fuzz_utf8: chunk [%zu,%zu) of %zu gave state %08x; reference: %s at %zu, "
            "boundary %d\n",
            start, end, n, (unsigned)st, ref.bad ? "bad" : "no bad byte", ref.bad_at,
            (int)ref.boundary);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%02x%s", text[i], i + 1 < n ? " " : "\n");
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned ctl = data[0];
    unsigned mode = ctl & 3, arg = ctl >> 3;
    wispi_utf8_simd(!(ctl & 4));
    uint32_t rng = 0;
    const uint8_t *text = data + 1;
    size_t n = size - 1;
    if (mode == 3) {
        if (size < 2)
            return 0;
        rng = 0x9E3779B9u ^ ((uint32_t)data[1] * 0x01000193u);
        text++, n--;
    }
    struct utf8_ref ref = utf8_ref_check(text, n);

    uint32_t st = WISPI_UTF8_OK;
    size_t start = 0;
    size_t prev_len = 1;
    for (;;) {
        size_t len;
        switch (mode) {
        case 0:
            len = n - start;
            break;
        case 1:
            len = 1;
            break;
        case 2:
            len = arg + 1;
            break;
        default:
            rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5; /* xorshift32 */
            len = rng % (arg + 2);
            if (len == 0 && prev_len == 0)
                len = 1;
            break;
        }
        if (len > n - start)
            len = n - start;
        size_t end = start + len;
        uint8_t *chunk = malloc(len ? len : 1);
        if (!chunk)
            abort();
        memcpy(chunk, text + start, len);
        st = wispi_utf8_feed(st, chunk, len);
        free(chunk);
        if ((st == WISPI_UTF8_BAD) != (ref.bad && ref.bad_at < end))
            mismatch(text, n, start, end, st, ref);
        start = end;
        prev_len = len;
        if (start == n)
            break;
    }
    if (!ref.bad && (st == WISPI_UTF8_OK) != ref.boundary)
        mismatch(text, n, 0, n, st, ref);

    uint8_t *whole = malloc(n ? n : 1);
    if (!whole)
        abort();
    memcpy(whole, text, n);
    if (wisp_utf8_valid(whole, n) != (!ref.bad && ref.boundary))
        mismatch(text, n, 0, n, st, ref);

    /* The same text masked, then unmasked and validated in one pass. */
    uint8_t key[4] = {(uint8_t)ctl, (uint8_t)(n * 7), (uint8_t)(rng >> 3), 0x5A};
    uint8_t key2[4];
    memcpy(key2, key, 4);
    wispi_mask_copy(whole, text, n, key);
    uint32_t st2 = wispi_utf8_unmask_feed(WISPI_UTF8_OK, whole, n, key2);
    if (memcmp(whole, text, n) != 0)
        abort();
    if ((st2 == WISPI_UTF8_BAD) != ref.bad || (!ref.bad && (st2 == WISPI_UTF8_OK) != ref.boundary))
        mismatch(text, n, 0, n, st2, ref);
    free(whole);
    return 0;
}
