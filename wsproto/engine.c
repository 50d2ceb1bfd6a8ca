/* The receive side of the sans-IO engine: frame parsing, validation, reassembly, close.
 *
 * One call to wisp_ws_recv() reports at most one event, so the caller's loop is where events
 * are handled and the engine needs no callback table. A frame whose header is all in the
 * buffer is parsed in one step; otherwise the header is read byte by byte into the 64-byte
 * state (no spill buffer). Every rule that a header byte can break is checked as soon as that
 * byte arrives, so a violation fails the connection before any payload is read.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/ws.h>

#include "mask.h"
#include "utf8.h"
#include "ws_state.h"

_Static_assert(sizeof(struct wisp_ws) <= 64, "per-connection parser state must stay small");

/* Where the frame parser is. */
enum parse_state {
    ST_HDR0,    /* next byte is a frame's first byte */
    ST_HDR1,    /* next byte is the mask bit and 7-bit length */
    ST_EXTLEN,  /* reading a 16- or 64-bit length; _hdr_need bytes to go */
    ST_MASK,    /* reading the masking key; _hdr_need bytes to go */
    ST_PAYLOAD, /* _remaining payload bytes to go */
    ST_DISCARD, /* failed, or the peer closed: input is dropped */
};

/* A reassembly buffer larger than this is freed once its message is delivered, so an idle
 * connection does not keep the memory of the largest message it ever received. */
#define KEEP_BUFFER_MAX (64u * 1024)

/* Handed out as the data of empty messages, so event data is never NULL. */
static uint8_t empty_payload[1];

int wisp_ws_config_init(struct wisp_ws_config *cfg, enum wisp_ws_role role)
{
    if (!cfg || (role != WISP_WS_SERVER && role != WISP_WS_CLIENT))
        return -EINVAL;
    memset(cfg, 0, sizeof *cfg);
    cfg->role = role;
    cfg->max_frame_size = WISP_WS_DEFAULT_MAX_FRAME;
    cfg->max_message_size = WISP_WS_DEFAULT_MAX_MESSAGE;
    return 0;
}

int wisp_ws_init(struct wisp_ws *ws, const struct wisp_ws_config *cfg)
{
    if (!ws || !cfg)
        return -EINVAL;
    bool stream = cfg->flags & WISP_WS_STREAM;
    /* The reassembly buffer's length and capacity are 32-bit to keep the state at 64 bytes. */
    if (!stream && cfg->max_message_size > UINT32_MAX)
        return -EINVAL;
    memset(ws, 0, sizeof *ws);
    ws->_cfg = cfg;
    ws->_state = ST_HDR0;
    if (cfg->role == WISP_WS_CLIENT)
        ws->_flags |= WS_F_CLIENT;
    if (stream)
        ws->_flags |= WS_F_STREAM;
    return 0;
}

void wisp_ws_deinit(struct wisp_ws *ws)
{
    if (!ws)
        return;
    free(ws->_buf);
    ws->_buf = NULL;
    ws->_buf_len = ws->_buf_cap = 0;
}

int wisp_ws_claim_rsv(struct wisp_ws *ws, uint8_t rsv)
{
    if (!ws || (rsv & ~WS_F_RSV))
        return -EINVAL;
    ws->_flags = (uint8_t)((ws->_flags & ~WS_F_RSV) | rsv);
    return 0;
}

enum wisp_ws_close_state wisp_ws_close_state(const struct wisp_ws *ws)
{
    return ws_close_state(ws);
}

bool wisp_ws_failed(const struct wisp_ws *ws)
{
    return ws->_close & WS_CLOSE_FAILED;
}

static bool is_control(unsigned opcode)
{
    return opcode & 0x8;
}

/* Report a fault; from now on all input is discarded. */
static void fail(struct wisp_ws *ws, struct wisp_ws_event *ev, enum wisp_ws_fault fault)
{
    ws->_state = ST_DISCARD;
    ws->_close |= WS_CLOSE_FAILED;
    ev->type = WISP_WS_EV_FAULT;
    ev->fault = fault;
    ev->close_code = wisp_ws_fault_code(fault);
    ev->opcode = (enum wisp_ws_opcode)(ws->_b0 & 0x0F);
    ev->rsv = 0;
    ev->first = ev->last = false;
    ev->data = empty_payload;
    ev->len = 0;
}

static void end_message(struct wisp_ws *ws)
{
    ws->_msg_op = 0;
    ws->_msg_rsv = 0;
    ws->_msg_len = 0;
    ws->_utf8 = WISPI_UTF8_OK;
}

/* Check the first header byte. Returns a fault or NONE. */
static enum wisp_ws_fault check_b0(const struct wisp_ws *ws, unsigned b0)
{
    unsigned opcode = b0 & 0x0F;
    unsigned rsv = b0 & 0x70;
    bool fin = b0 & 0x80;

    switch (opcode) {
    case WISP_WS_OP_CONTINUATION:
        if (!ws->_msg_op)
            return WISP_WS_FAULT_UNEXPECTED_CONTINUATION;
        /* Extensions that use RSV bits (RFC 7692) set them on a message's first frame only. */
        return rsv ? WISP_WS_FAULT_RSV : WISP_WS_FAULT_NONE;
    case WISP_WS_OP_TEXT:
    case WISP_WS_OP_BINARY:
        if (ws->_msg_op)
            return WISP_WS_FAULT_EXPECTED_CONTINUATION;
        return (rsv & ~(ws->_flags & WS_F_RSV)) ? WISP_WS_FAULT_RSV : WISP_WS_FAULT_NONE;
    case WISP_WS_OP_CLOSE:
    case WISP_WS_OP_PING:
    case WISP_WS_OP_PONG:
        if (rsv)
            return WISP_WS_FAULT_RSV;
        return fin ? WISP_WS_FAULT_NONE : WISP_WS_FAULT_CONTROL_FRAGMENTED;
    default:
        return WISP_WS_FAULT_OPCODE;
    }
}

/* Check the second header byte: the mask bit for our role, the control length cap. */
static enum wisp_ws_fault check_b1(const struct wisp_ws *ws, unsigned b1)
{
    bool masked = b1 & 0x80;
    bool client = ws->_flags & WS_F_CLIENT;
    if (!client && !masked)
        return WISP_WS_FAULT_UNMASKED;
    if (client && masked)
        return WISP_WS_FAULT_MASKED;
    if (is_control(ws->_b0) && (b1 & 0x7F) > WISP_WS_MAX_CONTROL)
        return WISP_WS_FAULT_CONTROL_TOO_LONG;
    return WISP_WS_FAULT_NONE;
}

/* Check a decoded extended length against its encoding (§5.2: "the minimal number of bytes
 * MUST be used") and against the limits, before a single payload byte is read. */
static enum wisp_ws_fault check_length(struct wisp_ws *ws, uint64_t len)
{
    unsigned len7 = ws->_b1 & 0x7F;
    if (len7 == 126 && len < 126)
        return WISP_WS_FAULT_LENGTH_ENCODING;
    if (len7 == 127 && (len <= 0xFFFF || (len >> 63)))
        return WISP_WS_FAULT_LENGTH_ENCODING;
    if (is_control(ws->_b0))
        return WISP_WS_FAULT_NONE;
    const struct wisp_ws_config *cfg = ws->_cfg;
    if (len > cfg->max_frame_size)
        return WISP_WS_FAULT_FRAME_TOO_BIG;
    /* Written as a subtraction so that a huge len cannot wrap the sum. */
    if (len > cfg->max_message_size - ws->_msg_len)
        return WISP_WS_FAULT_MESSAGE_TOO_BIG;
    return WISP_WS_FAULT_NONE;
}

/* Make room in _buf for `extra` more bytes after _buf_len. */
static bool reserve(struct wisp_ws *ws, uint64_t extra)
{
    uint64_t need = (uint64_t)ws->_buf_len + extra;
    if (need <= ws->_buf_cap)
        return true;
    if (need > UINT32_MAX)
        return false;
    /* Grow geometrically (amortised O(1) copying), but never past what the message cap plus
     * room for one gathered control frame can use. */
    uint64_t cap = (uint64_t)ws->_buf_cap * 2;
    uint64_t most = ws->_cfg->max_message_size + WISP_WS_MAX_CONTROL;
    if (cap > most)
        cap = most;
    if (cap > UINT32_MAX)
        cap = UINT32_MAX;
    if (cap < need)
        cap = need;
    if (cap < 256)
        cap = 256;
    uint8_t *p = realloc(ws->_buf, (size_t)cap);
    if (!p)
        return false;
    ws->_buf = p;
    ws->_buf_cap = (uint32_t)cap;
    return true;
}

/* The header is complete: set up for the payload. `avail` is how many payload bytes the
 * caller's buffer holds right now (for the zero-copy decision). */
static enum wisp_ws_fault start_payload(struct wisp_ws *ws, size_t avail)
{
    unsigned opcode = ws->_b0 & 0x0F;
    uint64_t len = ws->_remaining;
    ws->_state = ST_PAYLOAD;
    ws->_flags &= (uint8_t)~WS_F_ZEROCOPY;

    if (is_control(opcode)) {
        /* A control frame split across reads is gathered after the message bytes in _buf. */
        if (len > avail && !reserve(ws, WISP_WS_MAX_CONTROL))
            return WISP_WS_FAULT_NO_MEMORY;
        return WISP_WS_FAULT_NONE;
    }
    if (opcode != WISP_WS_OP_CONTINUATION) {
        ws->_msg_op = (uint8_t)opcode;
        ws->_msg_rsv = ws->_b0 & 0x70;
    }
    ws->_msg_len += len;
    if (ws->_flags & WS_F_STREAM)
        return WISP_WS_FAULT_NONE;
    if (opcode != WISP_WS_OP_CONTINUATION && (ws->_b0 & 0x80) && len <= avail) {
        /* A whole unfragmented message is already here: hand it out where it lies. */
        ws->_flags |= WS_F_ZEROCOPY;
    }
    /* Otherwise _buf grows as payload arrives (data_chunk), never on the strength of a length
     * the peer merely announced: a 10-byte header must not cost us max_message_size. */
    return WISP_WS_FAULT_NONE;
}

/* Validate a complete close payload and report it. */
static void close_received(struct wisp_ws *ws, uint8_t *p, size_t n, struct wisp_ws_event *ev)
{
    uint16_t code = WISP_CLOSE_NO_STATUS;
    if (n == 1)
        return fail(ws, ev, WISP_WS_FAULT_CLOSE_PAYLOAD);
    if (n >= 2) {
        code = (uint16_t)(p[0] << 8 | p[1]);
        if (!wisp_close_code_is_valid(code))
            return fail(ws, ev, WISP_WS_FAULT_CLOSE_CODE);
        if (!wisp_utf8_valid(p + 2, n - 2))
            return fail(ws, ev, WISP_WS_FAULT_CLOSE_REASON);
        p += 2;
        n -= 2;
    }
    /* Nothing the peer sends after its close frame means anything (§5.5.1). */
    ws->_state = ST_DISCARD;
    ws_set_close_state(ws, ws_close_state(ws) == WISP_WS_CLOSE_SENT ? WISP_WS_CLOSED
                                                                    : WISP_WS_CLOSE_RECEIVED);
    ev->type = WISP_WS_EV_CLOSE;
    ev->opcode = WISP_WS_OP_CLOSE;
    ev->close_code = code;
    ev->data = n ? p : empty_payload;
    ev->len = n;
}

/* A piece of control payload arrived; report the frame once it is whole. */
static bool control_chunk(struct wisp_ws *ws, uint8_t *p, size_t n, struct wisp_ws_event *ev)
{
    size_t total = ws->_b1 & 0x7F;
    bool whole_here = n == total;
    if (!whole_here) {
        size_t gathered = total - n - (size_t)ws->_remaining;
        memcpy(ws->_buf + ws->_buf_len + gathered, p, n);
        if (ws->_remaining)
            return false;
        p = ws->_buf + ws->_buf_len;
    }
    ws->_state = ST_HDR0;
    unsigned opcode = ws->_b0 & 0x0F;
    if (opcode == WISP_WS_OP_CLOSE) {
        close_received(ws, p, total, ev);
        return true;
    }
    ev->type = opcode == WISP_WS_OP_PING ? WISP_WS_EV_PING : WISP_WS_EV_PONG;
    ev->opcode = (enum wisp_ws_opcode)opcode;
    ev->rsv = 0;
    ev->first = ev->last = true;
    ev->data = total ? p : empty_payload;
    ev->len = total;
    return true;
}

/* Text whose UTF-8 the engine checks: a compressed message is the extension's to check. */
static bool checks_utf8(const struct wisp_ws *ws)
{
    return ws->_msg_op == WISP_WS_OP_TEXT && !(ws->_msg_rsv & WISP_WS_RSV1);
}

/* A piece of data payload arrived (n may be 0 for an empty frame). Returns true if *ev was
 * filled. The piece is already unmasked, and already fed to the UTF-8 validator if `fed`. */
static bool data_chunk(struct wisp_ws *ws, uint8_t *p, size_t n, struct wisp_ws_event *ev,
                       bool fed)
{
    bool frame_done = ws->_remaining == 0;
    bool msg_done = frame_done && (ws->_b0 & 0x80);
    if (frame_done)
        ws->_state = ST_HDR0;

    /* Validate text as it arrives, so bad UTF-8 fails at the first wrong byte (fail fast)
     * and not at the end of the message. */
    if (checks_utf8(ws)) {
        uint32_t s = fed ? ws->_utf8 : wispi_utf8_feed(ws->_utf8, p, n);
        ws->_utf8 = s;
        if (s == WISPI_UTF8_BAD || (msg_done && s != WISPI_UTF8_OK)) {
            fail(ws, ev, WISP_WS_FAULT_BAD_UTF8);
            return true;
        }
    }

    if (ws->_flags & WS_F_STREAM) {
        if (n == 0 && !msg_done)
            return false; /* an empty middle fragment says nothing */
        ev->type = WISP_WS_EV_FRAGMENT;
        ev->opcode = (enum wisp_ws_opcode)ws->_msg_op;
        ev->rsv = ws->_msg_rsv & 0x70;
        ev->first = !(ws->_msg_rsv & WS_MSG_EMITTED);
        ev->last = msg_done;
        ev->data = n ? p : empty_payload;
        ev->len = n;
        ws->_msg_rsv |= WS_MSG_EMITTED;
    } else if (ws->_flags & WS_F_ZEROCOPY) {
        ev->type = WISP_WS_EV_MESSAGE;
        ev->opcode = (enum wisp_ws_opcode)ws->_msg_op;
        ev->rsv = ws->_msg_rsv & 0x70;
        ev->first = ev->last = true;
        ev->data = n ? p : empty_payload;
        ev->len = n;
    } else {
        if (n) {
            if (!reserve(ws, n)) {
                fail(ws, ev, WISP_WS_FAULT_NO_MEMORY);
                return true;
            }
            memcpy(ws->_buf + ws->_buf_len, p, n);
            ws->_buf_len += (uint32_t)n;
        }
        if (!msg_done)
            return false;
        ev->type = WISP_WS_EV_MESSAGE;
        ev->opcode = (enum wisp_ws_opcode)ws->_msg_op;
        ev->rsv = ws->_msg_rsv & 0x70;
        ev->first = ev->last = true;
        ev->data = ws->_buf_len ? ws->_buf : empty_payload;
        ev->len = ws->_buf_len;
        ws->_flags |= WS_F_RELEASE;
    }
    if (msg_done)
        end_message(ws);
    return true;
}

/* Feed payload bytes of the current frame (unmasking them) and report what they complete. */
static size_t payload(struct wisp_ws *ws, uint8_t *p, size_t len, struct wisp_ws_event *ev,
                      bool *reported)
{
    size_t n = len < ws->_remaining ? len : (size_t)ws->_remaining;
    bool fed = false;
    if (!(ws->_flags & WS_F_CLIENT)) {
        if (!is_control(ws->_b0) && checks_utf8(ws)) {
            /* one pass over the bytes: unmask and validate block by block, in cache */
            ws->_utf8 = wispi_utf8_unmask_feed(ws->_utf8, p, n, ws->_mask);
            fed = true;
        } else {
            wispi_unmask(p, n, ws->_mask);
        }
    }
    ws->_remaining -= n;
    if (is_control(ws->_b0))
        *reported = control_chunk(ws, p, n, ev);
    else
        *reported = data_chunk(ws, p, n, ev, fed);
    return n;
}

/* The length is known and valid: the mask comes next, or the payload. */
static void length_done(struct wisp_ws *ws)
{
    if (ws->_b1 & 0x80) {
        ws->_state = ST_MASK;
        ws->_hdr_need = 4;
    } else {
        ws->_state = ST_PAYLOAD;
    }
}

/* Read the header one byte at a time, for headers split across reads. Returns bytes used;
 * sets *fault on a violation. Stops once the header is complete. */
static size_t header_slow(struct wisp_ws *ws, const uint8_t *p, size_t len,
                          enum wisp_ws_fault *fault)
{
    size_t i = 0;
    while (i < len && ws->_state != ST_PAYLOAD) {
        uint8_t c = p[i++];
        switch (ws->_state) {
        case ST_HDR0:
            ws->_b0 = c;
            if ((*fault = check_b0(ws, c)))
                return i;
            ws->_state = ST_HDR1;
            break;
        case ST_HDR1:
            ws->_b1 = c;
            if ((*fault = check_b1(ws, c)))
                return i;
            if ((c & 0x7F) >= 126) {
                ws->_remaining = 0;
                ws->_hdr_need = (c & 0x7F) == 126 ? 2 : 8;
                ws->_state = ST_EXTLEN;
                break;
            }
            ws->_remaining = c & 0x7F;
            if ((*fault = check_length(ws, ws->_remaining)))
                return i;
            length_done(ws);
            break;
        case ST_EXTLEN:
            ws->_remaining = ws->_remaining << 8 | c;
            if (--ws->_hdr_need)
                break;
            if ((*fault = check_length(ws, ws->_remaining)))
                return i;
            length_done(ws);
            break;
        case ST_MASK:
            ws->_mask[4 - ws->_hdr_need] = c;
            if (--ws->_hdr_need == 0)
                ws->_state = ST_PAYLOAD;
            break;
        default:
            return i;
        }
    }
    return i;
}

/* Parse a header that lies whole in the buffer. Returns its length, 0 if it is not all
 * there (use header_slow), and sets *fault on a violation. */
static size_t header_fast(struct wisp_ws *ws, const uint8_t *p, size_t len,
                          enum wisp_ws_fault *fault)
{
    if (len < 2)
        return 0;
    unsigned len7 = p[1] & 0x7F;
    size_t hlen = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (p[1] & 0x80 ? 4 : 0);
    if (len < hlen)
        return 0;
    ws->_b0 = p[0];
    ws->_b1 = p[1];
    if ((*fault = check_b0(ws, p[0])) || (*fault = check_b1(ws, p[1])))
        return hlen;
    uint64_t plen = len7;
    size_t at = 2;
    if (len7 == 126) {
        plen = (uint64_t)p[2] << 8 | p[3];
        at = 4;
    } else if (len7 == 127) {
        plen = 0;
        for (at = 2; at < 10; at++)
            plen = plen << 8 | p[at];
    }
    if ((*fault = check_length(ws, plen)))
        return hlen;
    if (p[1] & 0x80)
        memcpy(ws->_mask, p + at, 4);
    ws->_remaining = plen;
    ws->_state = ST_PAYLOAD;
    return hlen;
}

/* Unmask a short payload 8 bytes at a time and return the OR of its unmasked words (to tell
 * pure ASCII at once). The key sits in the frame header, 4-aligned to the payload start. */
static uint64_t unmask_short(uint8_t *d, size_t n, const uint8_t *key)
{
    uint32_t k32;
    memcpy(&k32, key, 4);
    uint64_t k = (uint64_t)k32 << 32 | k32, high = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, d + i, 8);
        w ^= k;
        memcpy(d + i, &w, 8);
        high |= w;
    }
    for (; i < n; i++) {
        d[i] ^= key[i & 3];
        high |= d[i];
    }
    return high;
}

/* The common case in one pass: a whole, unfragmented text or binary message of up to 64 KiB
 * at the start of the buffer, no message open, nothing unusual claimed. Everything the
 * general path checks is checked here too; any doubt returns 0 and the general path takes
 * over from the same byte. Returns bytes consumed (and fills *ev), or 0. */
static size_t whole_message(struct wisp_ws *ws, uint8_t *p, size_t len, struct wisp_ws_event *ev)
{
    if (len < 2 || ws->_msg_op || (ws->_flags & WS_F_STREAM))
        return 0;
    unsigned b0 = p[0], b1 = p[1];
    unsigned op = b0 & 0x0F;
    /* FIN set, no RSV bits, TEXT or BINARY */
    if ((b0 & 0xF0) != 0x80 || (op != WISP_WS_OP_TEXT && op != WISP_WS_OP_BINARY))
        return 0;
    bool client = ws->_flags & WS_F_CLIENT;
    if (((b1 & 0x80) != 0) == client)
        return 0; /* the mask bit our role forbids: the general path reports it */
    size_t plen = b1 & 0x7F, hlen = 2;
    if (plen == 127)
        return 0;
    if (plen == 126) {
        if (len < 4)
            return 0;
        plen = (size_t)p[2] << 8 | p[3];
        if (plen < 126)
            return 0; /* non-minimal: the general path reports it */
        hlen = 4;
    }
    const uint8_t *key = p + hlen;
    if (!client)
        hlen += 4;
    if (len < hlen + plen || plen > ws->_cfg->max_frame_size ||
        plen > ws->_cfg->max_message_size)
        return 0;
    uint8_t *d = p + hlen;
    bool text = op == WISP_WS_OP_TEXT;
    bool valid = true;
    if (plen <= WISP_WS_MAX_CONTROL) {
        /* short: unmasking inline beats the call, and its OR tells pure ASCII for free */
        uint64_t high = 0;
        if (!client)
            high = unmask_short(d, plen, key);
        else if (text)
            for (size_t i = 0; i < plen; i++)
                high |= d[i];
        if (text && (high & 0x8080808080808080ull))
            valid = wispi_utf8_feed(WISPI_UTF8_OK, d, plen) == WISPI_UTF8_OK;
    } else {
        uint8_t k[4];
        memcpy(k, key, 4);
        if (text && !client)
            valid = wispi_utf8_unmask_feed(WISPI_UTF8_OK, d, plen, k) == WISPI_UTF8_OK;
        else if (!client)
            wispi_unmask(d, plen, k);
        else if (text)
            valid = wispi_utf8_feed(WISPI_UTF8_OK, d, plen) == WISPI_UTF8_OK;
    }
    if (!valid) {
        ws->_b0 = (uint8_t)b0;
        fail(ws, ev, WISP_WS_FAULT_BAD_UTF8);
        return len;
    }
    ev->type = WISP_WS_EV_MESSAGE;
    ev->opcode = (enum wisp_ws_opcode)op;
    ev->first = ev->last = true;
    ev->data = plen ? d : empty_payload;
    ev->len = plen;
    return hlen + plen;
}

ssize_t wisp_ws_recv(struct wisp_ws *ws, uint8_t *buf, size_t len, struct wisp_ws_event *ev)
{
    if (!ws || !ev || (!buf && len))
        return -EINVAL;
    /* Every field is defined on every call (a handful of stores), so no caller can read a
     * stale close_code or fault from an event of another type. */
    *ev = (struct wisp_ws_event){.type = WISP_WS_EV_NONE};

    if (ws->_flags & WS_F_RELEASE) {
        /* The previous event lent out _buf; the caller is done with it now. */
        ws->_flags &= (uint8_t)~WS_F_RELEASE;
        ws->_buf_len = 0;
        if (ws->_buf_cap > KEEP_BUFFER_MAX) {
            free(ws->_buf);
            ws->_buf = NULL;
            ws->_buf_cap = 0;
        }
    }

    if (ws->_state == ST_HDR0) {
        size_t used = whole_message(ws, buf, len, ev);
        if (used)
            return (ssize_t)used;
    }

    size_t off = 0;
    while (off < len) {
        if (ws->_state == ST_DISCARD)
            return (ssize_t)len;
        if (ws->_state == ST_PAYLOAD) {
            bool reported;
            off += payload(ws, buf + off, len - off, ev, &reported);
            if (reported)
                return ws->_state == ST_DISCARD ? (ssize_t)len : (ssize_t)off;
            continue;
        }
        enum wisp_ws_fault fault = WISP_WS_FAULT_NONE;
        size_t used = 0;
        if (ws->_state == ST_HDR0)
            used = header_fast(ws, buf + off, len - off, &fault);
        if (!used && !fault)
            used = header_slow(ws, buf + off, len - off, &fault);
        off += used;
        if (fault) {
            fail(ws, ev, fault);
            return (ssize_t)len;
        }
        if (ws->_state != ST_PAYLOAD)
            continue; /* header still incomplete: off == len now */
        if ((fault = start_payload(ws, len - off))) {
            fail(ws, ev, fault);
            return (ssize_t)len;
        }
        if (ws->_remaining == 0) {
            /* Empty frame: it is complete with its header. */
            bool reported;
            payload(ws, buf + off, 0, ev, &reported);
            if (reported)
                return ws->_state == ST_DISCARD ? (ssize_t)len : (ssize_t)off;
        }
    }
    return (ssize_t)off;
}
