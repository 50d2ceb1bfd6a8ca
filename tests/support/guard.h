/* Test support: place bytes so that the byte after the last one is unmapped.
 *
 * The picohttpparser trick: a parser that reads even one byte past the input it was given
 * faults at once instead of silently reading a neighbour's memory. Every parser test feeds its
 * input (or each chunk of it) through guard_place().
 */
#ifndef WISP_TEST_GUARD_H
#define WISP_TEST_GUARD_H

#include <stddef.h>
#include <stdint.h>

struct guard_buf {
    uint8_t *map;     /* whole mapping: data pages then one PROT_NONE page */
    size_t data_size; /* bytes usable before the guard page */
    size_t map_size;
};

/* Map room for inputs up to max_len bytes. Aborts the test program if mmap fails. */
void guard_init(struct guard_buf *g, size_t max_len);
/* Copy len bytes so that they end exactly at the guard page; returns where they start.
 * The bytes are writable (parsers unmask in place). Aborts if len > max_len. */
uint8_t *guard_place(struct guard_buf *g, const void *data, size_t len);
void guard_free(struct guard_buf *g);

#endif
