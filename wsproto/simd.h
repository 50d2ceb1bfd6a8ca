/* Vector helpers shared by the AVX2 paths of mask.c and utf8.c (internal to wsproto). */
#ifndef WISP_WSPROTO_SIMD_H
#define WISP_WSPROTO_SIMD_H

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

/* 32-byte vector loads and stores through memcpy: any alignment, no pointer casts. Compiled
 * for AVX2 function by function; call them only from paths chosen when the CPU has it. */
__attribute__((target("avx2"))) static inline __m256i wispi_load32(const uint8_t *p)
{
    __m256i v;
    memcpy(&v, p, sizeof v);
    return v;
}

__attribute__((target("avx2"))) static inline void wispi_store32(uint8_t *p, __m256i v)
{
    memcpy(p, &v, sizeof v);
}
#endif

#endif
