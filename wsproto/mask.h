/* Masking (RFC 6455 §5.3), internal to wsproto: 8 or more bytes per step, with the key rotated
 * so that a frame whose payload arrives in several pieces is unmasked piece by piece. */
#ifndef WISP_WSPROTO_MASK_H
#define WISP_WSPROTO_MASK_H

#include <stddef.h>
#include <stdint.h>

/**
 * XOR n bytes at p with the key, in place, then rotate the key left by n % 4 bytes so the next
 * call continues at the right phase. (Rotating the key instead of keeping an offset keeps the
 * parser state to the 4 key bytes.)
 */
void wispi_unmask(uint8_t *p, size_t n, uint8_t key[4]);

/** dst[i] = src[i] ^ key[i % 4] for n bytes (client sends: mask while copying). dst may equal
 *  src (in place); other overlaps are not allowed. */
void wispi_mask_copy(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4]);

/* Vector instruction sets, in increasing order; each level implies the ones below it. */
#define WISPI_SIMD_BASE   0 /* what the build targets (SSE2 on x86-64; portable C elsewhere) */
#define WISPI_SIMD_SSSE3  1
#define WISPI_SIMD_AVX2   2
#define WISPI_SIMD_AVX512 3 /* AVX-512 F and BW */

/** The highest level this CPU (and OS) supports, checked once. WISPI_SIMD_BASE off x86-64. */
int wispi_simd_cpu(void);

/**
 * For tests and benchmarks: let masking use vector paths up to `max_level` (a WISPI_SIMD_*
 * value; the default is all the CPU has). Results never depend on it, only speed. Safe to
 * call at any time.
 * @return the level now in use: the lower of max_level and wispi_simd_cpu().
 */
int wispi_mask_simd(int max_level);

#endif
