/* wisp error codes.
 *
 * Every wisp function that can fail returns 0 or a count on success and a negative number on
 * failure: either a negative errno value (-EINVAL, -ENOMEM, ...) or one of the negative WISP_E*
 * codes below, which sit outside the errno range. wisp_strerror() names both kinds.
 */
#ifndef WISP_ERROR_H
#define WISP_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define WISP_API __attribute__((visibility("default")))
#else
#define WISP_API
#endif

/** wisp-specific failure codes, all below -4095 so they never collide with -errno. */
enum wisp_error {
    /** More input is needed before the call can finish (an incomplete HTTP head). */
    WISP_EINCOMPLETE = -4096,
    /** The caller's output buffer is too small; nothing was written. */
    WISP_ENOSPACE = -4097,
    /** The peer violated the HTTP or WebSocket protocol. */
    WISP_EPROTO = -4098,
    /** The operation is not allowed in the connection's close state (e.g. data after close). */
    WISP_ECLOSED = -4099,
    /** A configured limit was exceeded (header bytes, header count, frame or message size). */
    WISP_ELIMIT = -4100,
    /** The server's handshake answer was refused (status, accept key, protocol, extension). */
    WISP_EHANDSHAKE = -4101,
    /** The receiving actor's mailbox is over its limit; nothing was queued (try_send). */
    WISP_EFULL = -4102,
};

/**
 * Describe an error code returned by any wisp function.
 *
 * @param err  a negative errno value or a WISP_E* code (0 gives "success").
 * @return a static, NUL-terminated English string; never NULL. Thread-safe.
 */
WISP_API const char *wisp_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
