/* Unpredictable bytes for masking keys and handshake nonces, internal to wsproto.
 * Both come from the kernel CSPRNG (getrandom); masking keys are drawn from a per-thread pool
 * refilled in batches, so a client does not make a syscall per frame. */
#ifndef WISP_WSPROTO_RANDOM_H
#define WISP_WSPROTO_RANDOM_H

#include <stddef.h>
#include <stdint.h>

/** Bytes of kernel randomness each thread's masking-key pool holds (one refill = one syscall
 *  serves this / 4 keys). */
#define WISPI_RANDOM_POOL_SIZE 512

/**
 * Four fresh CSPRNG bytes for a frame's masking key. Thread-safe (per-thread pool).
 * A child created with fork() never reuses its parent's pool (a pthread_atfork child handler
 * empties it). Never fails: if the kernel CSPRNG cannot be read, this prints why and aborts,
 * because a predictable masking key is worse than no connection (RFC 6455 §10.3).
 */
void wispi_random_mask(uint8_t key[4]);

/** How many times the calling thread's masking-key pool was refilled from the kernel (for
 *  tests and benchmarks). */
uint64_t wispi_random_pool_refills(void);

/** Fill n bytes from the kernel CSPRNG. @return 0 or a negative errno. Thread-safe. */
int wispi_random_bytes(void *out, size_t n);

#endif
