/* The log-linear histogram of hist.h. */
#include "hist.h"

static unsigned bucket_of(uint64_t v)
{
    if (v < (2u << HIST_SUB_BITS))
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - HIST_SUB_BITS;
    return ((shift + 1) << HIST_SUB_BITS) + (unsigned)(v >> shift) - (1u << HIST_SUB_BITS);
}

/* The midpoint of bucket i's range of values. */
static uint64_t bucket_value(unsigned i)
{
    if (i < (2u << HIST_SUB_BITS))
        return i;
    unsigned shift = (i >> HIST_SUB_BITS) - 1;
    uint64_t mant = (i & ((1u << HIST_SUB_BITS) - 1)) + (1u << HIST_SUB_BITS);
    uint64_t lo = mant << shift;
    uint64_t width = (uint64_t)1 << shift;
    return lo + (width - 1) / 2;
}

void hist_add(struct hist *h, uint64_t v)
{
    h->bucket[bucket_of(v)]++;
    h->count++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            uint64_t v = bucket_value(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}
