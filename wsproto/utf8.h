/* Incremental UTF-8 validation (internal to wsproto).
 *
 * A text message arrives in pieces (read chunks, fragments); a character may straddle two of
 * them. wispi_utf8_feed() carries what it needs across pieces in a uint32_t and fails fast:
 * it reports WISPI_UTF8_BAD as soon as the bytes seen so far cannot begin valid UTF-8 (an
 * impossible byte, an overlong form, a surrogate, a code point above U+10FFFF), without waiting
 * for the rest of the character or of the message.
 */
#ifndef WISP_WSPROTO_UTF8_H
#define WISP_WSPROTO_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** State at a character boundary: the start of a message, and the only valid end state. */
#define WISPI_UTF8_OK 0u
/** Sticky failure state. */
#define WISPI_UTF8_BAD 0xFFFFFFFFu

/**
 * Validate n more bytes of a text message.
 * @param state  WISPI_UTF8_OK at the start of a message, else what the previous call returned.
 * @return the new state: WISPI_UTF8_OK (boundary), WISPI_UTF8_BAD, or an opaque non-zero
 *         "inside a character" state. A message is valid iff its final state is WISPI_UTF8_OK.
 */
uint32_t wispi_utf8_feed(uint32_t state, const uint8_t *p, size_t n);

/**
 * Unmask n bytes in place, exactly as wispi_unmask() (the key is rotated by n % 4), and
 * validate them, exactly as wispi_utf8_feed(state, p, n): the result is the same as the two
 * calls in a row, but the bytes are taken in blocks small enough to stay in L1 cache between
 * the two steps, so a long payload is read from memory once instead of twice. All n bytes are
 * unmasked even when the result is WISPI_UTF8_BAD.
 */
uint32_t wispi_utf8_unmask_feed(uint32_t state, uint8_t *p, size_t n, uint8_t key[4]);

/**
 * For tests and benchmarks: allow (the default) or forbid the optional SIMD paths: SSSE3 for
 * text dense in multi-byte characters, AVX2 / AVX-512 for ASCII runs and for unmasking fused
 * with the ASCII check (x86-64, when the CPU has them). Results never depend on it, only
 * speed. Safe to call at any time.
 * @return whether the SSSE3 path is now in use.
 */
bool wispi_utf8_simd(bool allow);

/**
 * For tests and benchmarks: use the SIMD paths up to `max_level` (a WISPI_SIMD_* value from
 * mask.h) and no higher. Safe to call at any time.
 * @return the level now in use: the lower of max_level and wispi_simd_cpu().
 */
int wispi_utf8_simd_max(int max_level);

#endif
