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

#endif
