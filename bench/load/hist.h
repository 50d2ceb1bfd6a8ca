/* A log-linear latency histogram: exact below 128, then 64 linear steps per power of two
 * (relative error under 1/64, about 1.6%). Fixed size, no allocation per sample. */
#ifndef WISP_LOAD_HIST_H
#define WISP_LOAD_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 6
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) << HIST_SUB_BITS)

struct hist {
    uint64_t count;
    uint64_t max;
    uint64_t sum;
    uint64_t bucket[HIST_BUCKETS];
};

/** Record one sample (any uint64_t). */
void hist_add(struct hist *h, uint64_t v);

/** The value at quantile q (0..1): the midpoint of the bucket holding that rank, capped at
 *  the exact maximum. 0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);

#endif
