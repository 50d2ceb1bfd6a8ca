/* wisp/ws.h: the sans-IO RFC 6455 engine.
 *
 * No sockets, no threads, no clocks: bytes in, events out; requests to send come back as bytes
 * written into buffers the caller owns. One `struct wisp_ws` per connection, embedded wherever
 * the caller likes (it is small: see WISP_WS_STATE_SIZE_HINT) plus a reassembly buffer that the
 * engine allocates only while a message is split across reads or fragments.
 *
 * Receiving: call wisp_ws_recv() in a loop over the bytes that arrived. Each call consumes a
 * prefix of them and reports at most one event. The bytes are unmasked in place, so the buffer
 * must be writable; an event's data points either into that buffer (a message that arrived whole:
 * no copy) or into the engine's reassembly buffer, and stays valid until the next call on the
 * same engine.
 *
 * Every protocol violation the engine detects is reported once as a WISP_WS_EV_FAULT event that
 * carries the close code to send (1002, 1007, 1009 or 1011) and a fault kind the application can
 * read. After a fault, or once the peer's close frame has arrived, further input is discarded.
 *
 * Thread-safety: an engine is used by one thread at a time; distinct engines are independent.
 * A `struct wisp_ws_config` is read-only after init and may be shared by any number of engines
 * on any number of threads.
 */
#ifndef WISP_WS_H
#define WISP_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <wisp/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Which end of the connection an engine plays. */
enum wisp_ws_role {
    WISP_WS_SERVER = 0, /**< expects masked frames, sends unmasked ones */
    WISP_WS_CLIENT = 1, /**< expects unmasked frames, masks what it sends with CSPRNG keys */
};

/** Frame opcodes (RFC 6455 §5.2). */
enum wisp_ws_opcode {
    WISP_WS_OP_CONTINUATION = 0x0,
    WISP_WS_OP_TEXT = 0x1,
    WISP_WS_OP_BINARY = 0x2,
    WISP_WS_OP_CLOSE = 0x8,
    WISP_WS_OP_PING = 0x9,
    WISP_WS_OP_PONG = 0xA,
};

/** RSV bits as they sit in the first header byte; RSV1 is the one permessage-deflate claims. */
enum wisp_ws_rsv {
    WISP_WS_RSV1 = 0x40,
    WISP_WS_RSV2 = 0x20,
    WISP_WS_RSV3 = 0x10,
};

/** Close status codes (RFC 6455 §7.4.1 and the IANA registry). */
enum wisp_close_code {
    WISP_CLOSE_NORMAL = 1000,
    WISP_CLOSE_GOING_AWAY = 1001,
    WISP_CLOSE_PROTOCOL_ERROR = 1002,
    WISP_CLOSE_UNSUPPORTED_DATA = 1003,
    WISP_CLOSE_NO_STATUS = 1005,  /**< never on the wire: the peer's close had no code */
    WISP_CLOSE_ABNORMAL = 1006,   /**< never on the wire: the TCP connection dropped */
    WISP_CLOSE_INVALID_DATA = 1007,
    WISP_CLOSE_POLICY = 1008,
    WISP_CLOSE_TOO_BIG = 1009,
    WISP_CLOSE_MANDATORY_EXTENSION = 1010,
    WISP_CLOSE_INTERNAL_ERROR = 1011,
    WISP_CLOSE_SERVICE_RESTART = 1012,
    WISP_CLOSE_TRY_AGAIN_LATER = 1013,
    WISP_CLOSE_BAD_GATEWAY = 1014,
    WISP_CLOSE_TLS_HANDSHAKE = 1015, /**< never on the wire */
};

/**
 * Whether a close code may appear in a close frame: 1000-1003, 1007-1014 and 3000-4999.
 * Everything else (0-999, 1004-1006, 1015, 1016-2999, 5000 and up) is a protocol error when
 * received and is refused when sending. Thread-safe, no side effects.
 */
WISP_API bool wisp_close_code_is_valid(unsigned code);

/** Why the engine failed a connection. Each kind maps to one close code (wisp_ws_fault_code). */
enum wisp_ws_fault {
    WISP_WS_FAULT_NONE = 0,
    WISP_WS_FAULT_RSV,                  /**< 1002: an RSV bit no extension claimed */
    WISP_WS_FAULT_OPCODE,               /**< 1002: reserved opcode 3-7 or 0xB-0xF */
    WISP_WS_FAULT_CONTROL_TOO_LONG,     /**< 1002: control frame payload over 125 bytes */
    WISP_WS_FAULT_CONTROL_FRAGMENTED,   /**< 1002: control frame without FIN */
    WISP_WS_FAULT_LENGTH_ENCODING,      /**< 1002: non-minimal length, or 64-bit top bit set */
    WISP_WS_FAULT_UNMASKED,             /**< 1002: a client sent an unmasked frame */
    WISP_WS_FAULT_MASKED,               /**< 1002: a server sent a masked frame */
    WISP_WS_FAULT_UNEXPECTED_CONTINUATION, /**< 1002: continuation with no message open */
    WISP_WS_FAULT_EXPECTED_CONTINUATION,   /**< 1002: new data message inside a fragmented one */
    WISP_WS_FAULT_CLOSE_PAYLOAD,        /**< 1002: close payload of exactly one byte */
    WISP_WS_FAULT_CLOSE_CODE,           /**< 1002: close code that may not be on the wire */
    WISP_WS_FAULT_CLOSE_REASON,         /**< 1007: close reason that is not UTF-8 */
    WISP_WS_FAULT_FRAME_TOO_BIG,        /**< 1009: frame header announces more than the cap */
    WISP_WS_FAULT_MESSAGE_TOO_BIG,      /**< 1009: message would exceed the message cap */
    WISP_WS_FAULT_BAD_UTF8,             /**< 1007: text message that is not UTF-8 */
    WISP_WS_FAULT_NO_MEMORY,            /**< 1011: the reassembly buffer could not grow */
};

/** The close code to send for a fault (1002, 1007, 1009 or 1011; 0 for NONE). Thread-safe. */
WISP_API uint16_t wisp_ws_fault_code(enum wisp_ws_fault fault);

/** A short static English description of a fault ("reserved opcode", ...). Never NULL. */
WISP_API const char *wisp_ws_fault_str(enum wisp_ws_fault fault);

/** Flags for struct wisp_ws_config.flags. */
enum wisp_ws_flags {
    /** Deliver data as WISP_WS_EV_FRAGMENT events as it arrives instead of whole messages.
     *  Nothing is buffered; size caps and UTF-8 validation still apply. */
    WISP_WS_STREAM = 1u << 0,
};

/** Defaults used by wisp_ws_config_init(). */
#define WISP_WS_DEFAULT_MAX_FRAME (16u * 1024 * 1024)
#define WISP_WS_DEFAULT_MAX_MESSAGE (16u * 1024 * 1024)

/**
 * Settings shared by every engine of a route. Fill with wisp_ws_config_init(), then adjust.
 * Must stay alive and unchanged while any engine uses it (engines keep a pointer).
 */
struct wisp_ws_config {
    enum wisp_ws_role role;
    /** Largest payload one received frame may announce (checked at the header, before any
     *  payload is buffered); more fails with 1009. Default 16 MiB. */
    uint64_t max_frame_size;
    /** Largest received message after reassembly; more fails with 1009. Default 16 MiB.
     *  Must be below 4 GiB unless WISP_WS_STREAM is set (nothing is buffered then). */
    uint64_t max_message_size;
    /** Outgoing messages longer than this are split into frames of this many payload bytes.
     *  0 (the default) never splits. */
    size_t fragment_size;
    /** WISP_WS_* flags; default 0. */
    unsigned flags;
};

/**
 * Fill *cfg with the defaults for a role.
 * @param cfg   caller-owned, written in full.
 * @return 0, or -EINVAL if cfg is NULL or role is unknown.
 */
WISP_API int wisp_ws_config_init(struct wisp_ws_config *cfg, enum wisp_ws_role role);

/** Where the close handshake stands (RFC 6455 §7). */
enum wisp_ws_close_state {
    WISP_WS_OPEN = 0,           /**< no close frame seen in either direction */
    WISP_WS_CLOSE_SENT = 1,     /**< we sent close and wait for the peer's */
    WISP_WS_CLOSE_RECEIVED = 2, /**< the peer sent close; we owe our reply */
    WISP_WS_CLOSED = 3,         /**< both sent (or we failed the connection): close TCP */
};

/** What one wisp_ws_recv() call reports. */
enum wisp_ws_event_type {
    WISP_WS_EV_NONE = 0, /**< bytes consumed, nothing to report yet */
    WISP_WS_EV_MESSAGE,  /**< a whole text or binary message: opcode, data, len */
    WISP_WS_EV_FRAGMENT, /**< WISP_WS_STREAM only: a piece of a message; first, last */
    WISP_WS_EV_PING,     /**< data, len: the payload to echo in a pong */
    WISP_WS_EV_PONG,     /**< data, len */
    WISP_WS_EV_CLOSE,    /**< the peer's close: close_code (1005 if none), data/len = reason */
    WISP_WS_EV_FAULT,    /**< a violation: fault, close_code to send; input is now discarded */
};

/** One event. Pointers are borrowed: valid until the next call on the same engine. */
struct wisp_ws_event {
    enum wisp_ws_event_type type;
    enum wisp_ws_opcode opcode; /**< TEXT or BINARY for MESSAGE/FRAGMENT, else the control op */
    uint8_t rsv;                /**< RSV bits of the message's first frame (extension hook) */
    bool first;                 /**< FRAGMENT: the first piece of its message */
    bool last;                  /**< FRAGMENT: the last piece: the message is complete */
    uint16_t close_code;        /**< CLOSE: the peer's code; FAULT: the code to send */
    enum wisp_ws_fault fault;   /**< FAULT: what went wrong */
    uint8_t *data;              /**< payload (unmasked); for CLOSE the reason, not terminated */
    size_t len;
};

/**
 * One connection's protocol state. Embed it anywhere; all fields are private (leading
 * underscore) and may change between versions. It is 64 bytes on LP64 targets.
 */
struct wisp_ws {
    const struct wisp_ws_config *_cfg;
    uint8_t *_buf;       /* reassembly buffer (NULL while not needed) */
    uint32_t _buf_len;   /* message bytes held in _buf */
    uint32_t _buf_cap;
    uint64_t _msg_len;   /* bytes of the current data message so far */
    uint64_t _remaining; /* payload bytes left in the current frame (or length being read) */
    uint32_t _utf8;      /* UTF-8 validator state, carried across chunks and fragments */
    uint8_t _mask[4];    /* current frame's mask, rotated as partial payloads are unmasked */
    uint8_t _state;      /* where the frame parser is */
    uint8_t _hdr_need;   /* bytes still to read in the extended length or the mask */
    uint8_t _b0;         /* first header byte of the current frame */
    uint8_t _b1;         /* second header byte of the current frame */
    uint8_t _msg_op;     /* opcode of the data message in progress, 0 if none */
    uint8_t _msg_rsv;    /* RSV bits of its first frame */
    uint8_t _close;      /* enum wisp_ws_close_state, plus a failed bit */
    uint8_t _flags;      /* role, extension RSV bits, outgoing message in progress */
    uint8_t _out_op;     /* opcode of the outgoing fragmented message in progress, 0 if none */
    uint8_t _pad[7];
};

/**
 * Start an engine in the OPEN state.
 * @param ws   caller-owned storage, fully initialised here.
 * @param cfg  borrowed: must outlive ws and not change while ws uses it.
 * @return 0, or -EINVAL (NULL argument, or a max_message_size of 4 GiB or more without
 *         WISP_WS_STREAM).
 */
WISP_API int wisp_ws_init(struct wisp_ws *ws, const struct wisp_ws_config *cfg);

/** Free the reassembly buffer. ws may be re-initialised afterwards. NULL is a no-op. */
WISP_API void wisp_ws_deinit(struct wisp_ws *ws);

/**
 * Declare which RSV bits a negotiated extension claims (e.g. WISP_WS_RSV1 after
 * permessage-deflate was agreed). Claimed bits are accepted on the first frame of a data
 * message and reported in the event's rsv field; a text message whose first frame carries RSV1
 * is not UTF-8-checked by the engine (its bytes are compressed: the extension validates what it
 * inflates). Unclaimed bits, and any RSV bit on continuation or control frames, still fail
 * with 1002.
 * @return 0, or -EINVAL if rsv has bits other than the three RSV bits.
 */
WISP_API int wisp_ws_claim_rsv(struct wisp_ws *ws, uint8_t rsv);

/**
 * Parse received bytes.
 *
 * Consumes a prefix of buf (unmasking it in place) and fills *ev with at most one event.
 * Call again with the rest. A call with len > 0 either consumes bytes or reports an event.
 *
 * @param ws   the engine.
 * @param buf  writable bytes from the peer; the engine keeps no pointer to them after the call,
 *             but event data may point into them (until the next call).
 * @param len  number of bytes at buf.
 * @param ev   caller-owned, always written (type NONE when there is nothing to report).
 * @return bytes consumed (0..len), or -EINVAL for a NULL argument.
 */
WISP_API ssize_t wisp_ws_recv(struct wisp_ws *ws, uint8_t *buf, size_t len,
                              struct wisp_ws_event *ev);

/** The engine's close-handshake state. */
WISP_API enum wisp_ws_close_state wisp_ws_close_state(const struct wisp_ws *ws);

/** True once the engine reported a FAULT (it then discards input). */
WISP_API bool wisp_ws_failed(const struct wisp_ws *ws);

/** Longest frame header: 2 + 8 (length) + 4 (mask). */
#define WISP_WS_MAX_HEADER 14
/** Largest control frame payload. */
#define WISP_WS_MAX_CONTROL 125

/**
 * Encode one frame header (stateless; for sending a payload from its own buffer, zero-copy).
 * @param out    at least WISP_WS_MAX_HEADER bytes.
 * @param opcode the frame's opcode; fin the FIN bit; rsv any of the WISP_WS_RSV* bits.
 * @param len    payload length.
 * @param mask   NULL for an unmasked frame, else the 4-byte key to put in the header (the
 *               caller then masks the payload itself, e.g. with wisp_ws_mask()).
 * @return header length (2 to 14).
 */
WISP_API size_t wisp_ws_frame_header(uint8_t *out, enum wisp_ws_opcode opcode, bool fin,
                                     uint8_t rsv, uint64_t len, const uint8_t mask[4]);

/**
 * XOR len bytes at p with the 4-byte mask, in place, starting at mask offset `offset`
 * (the payload position modulo 4). Stateless and thread-safe.
 */
WISP_API void wisp_ws_mask(uint8_t *p, size_t len, const uint8_t mask[4], size_t offset);

/**
 * Bytes wisp_ws_send() needs in out for a payload of len bytes from this engine (headers of
 * every fragment included). Exact, never an under-estimate.
 */
WISP_API size_t wisp_ws_send_size(const struct wisp_ws *ws, size_t len);

/**
 * Encode a whole text or binary message into out, split at cfg->fragment_size if set, masked
 * with fresh CSPRNG keys in the client role.
 * @param op    WISP_WS_OP_TEXT or WISP_WS_OP_BINARY.
 * @param data  borrowed; len bytes (may be NULL when len is 0). Text must be UTF-8.
 * @param out   caller-owned; cap bytes; wisp_ws_send_size() tells how many are needed.
 * @return bytes written, or one of: WISP_ENOSPACE (cap too small, nothing written),
 *         WISP_ECLOSED (we already sent close, or the engine failed), -EBUSY (a fragmented
 *         message started with wisp_ws_send_fragment() is not finished), -EILSEQ (text that is
 *         not UTF-8), -EINVAL (bad opcode or NULL pointer).
 */
WISP_API ssize_t wisp_ws_send(struct wisp_ws *ws, enum wisp_ws_opcode op, const void *data,
                              size_t len, uint8_t *out, size_t cap);

/**
 * Encode one frame of a message the caller sends in pieces (streaming out). The first piece
 * names TEXT or BINARY; later pieces are continuations; fin ends the message. Control frames
 * (ping, pong, close) may be sent between pieces. Text pieces are not UTF-8-checked one by one
 * (a character may straddle two pieces); the receiver checks the whole message.
 * @return bytes written (WISP_WS_MAX_HEADER + len at most), or WISP_ENOSPACE, WISP_ECLOSED,
 *         -EINVAL (bad opcode).
 */
WISP_API ssize_t wisp_ws_send_fragment(struct wisp_ws *ws, enum wisp_ws_opcode op,
                                       const void *data, size_t len, bool fin, uint8_t *out,
                                       size_t cap);

/**
 * Encode a ping or pong.
 * @param op    WISP_WS_OP_PING or WISP_WS_OP_PONG.
 * @param len   at most WISP_WS_MAX_CONTROL, else -EMSGSIZE.
 * @return bytes written, or WISP_ENOSPACE, WISP_ECLOSED, -EMSGSIZE, -EINVAL.
 */
WISP_API ssize_t wisp_ws_send_control(struct wisp_ws *ws, enum wisp_ws_opcode op,
                                      const void *data, size_t len, uint8_t *out, size_t cap);

/**
 * Encode our close frame and advance the close handshake (OPEN -> CLOSE_SENT,
 * CLOSE_RECEIVED -> CLOSED, failed -> CLOSED). To echo a peer's close, pass the close_code of
 * its CLOSE event: WISP_CLOSE_NO_STATUS sends an empty close payload.
 * @param code    a code for which wisp_close_code_is_valid() holds, or WISP_CLOSE_NO_STATUS
 *                (no code, and then no reason).
 * @param reason  borrowed UTF-8, reason_len bytes, at most 123; may be NULL if reason_len is 0.
 * @return bytes written, or WISP_ENOSPACE, WISP_ECLOSED (close already sent), -EINVAL (code not
 *         sendable, reason too long or not UTF-8).
 */
WISP_API ssize_t wisp_ws_send_close(struct wisp_ws *ws, uint16_t code, const char *reason,
                                    size_t reason_len, uint8_t *out, size_t cap);

/**
 * Validate that len bytes are complete, well-formed UTF-8 (no overlongs, no surrogates, nothing
 * above U+10FFFF). Thread-safe. @return true if valid.
 */
WISP_API bool wisp_utf8_valid(const void *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif
