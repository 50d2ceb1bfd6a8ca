/* The send side of the engine: frame headers, whole messages (split at the configured
 * fragment size), streamed fragments, pings and pongs, and our half of the close handshake.
 * Everything is written into the caller's buffer; in the client role every frame gets a fresh
 * masking key from the per-thread CSPRNG pool. */
#include <errno.h>
#include <string.h>

#include <wisp/ws.h>

#include "mask.h"
#include "random.h"
#include "utf8.h"
#include "ws_state.h"

size_t wisp_ws_frame_header(uint8_t *out, enum wisp_ws_opcode opcode, bool fin, uint8_t rsv,
                            uint64_t len, const uint8_t mask[4])
{
    size_t n = 2;
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (rsv & 0x70) | ((unsigned)opcode & 0x0F));
    uint8_t maskbit = mask ? 0x80 : 0;
    if (len < 126) {
        out[1] = (uint8_t)(maskbit | len);
    } else if (len <= 0xFFFF) {
        out[1] = maskbit | 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        n = 4;
    } else {
        out[1] = maskbit | 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    if (mask) {
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

static size_t header_size(uint64_t len, bool masked)
{
    return (len < 126 ? 2 : len <= 0xFFFF ? 4 : 10) + (masked ? 4 : 0);
}

static bool is_client(const struct wisp_ws *ws)
{
    return ws->_flags & WS_F_CLIENT;
}

/* Data may be sent while the connection is open, and also after the peer's close while we
 * finish what we were sending (RFC 6455 §5.5.1), but never after our own close or a fault. */
static bool may_send_data(const struct wisp_ws *ws)
{
    if (ws->_close & WS_CLOSE_FAILED)
        return false;
    enum wisp_ws_close_state s = ws_close_state(ws);
    return s == WISP_WS_OPEN || s == WISP_WS_CLOSE_RECEIVED;
}

/* Write one frame: header, then the payload (masked while copying in the client role). */
static size_t put_frame(const struct wisp_ws *ws, uint8_t *out, enum wisp_ws_opcode op, bool fin,
                        const uint8_t *data, size_t len)
{
    size_t h;
    if (is_client(ws)) {
        uint8_t key[4];
        wispi_random_mask(key);
        h = wisp_ws_frame_header(out, op, fin, 0, len, key);
        wispi_mask_copy(out + h, data, len, key);
    } else {
        h = wisp_ws_frame_header(out, op, fin, 0, len, NULL);
        if (len)
            memcpy(out + h, data, len);
    }
    return h + len;
}

size_t wisp_ws_send_size(const struct wisp_ws *ws, size_t len)
{
    bool masked = is_client(ws);
    size_t frag = ws->_cfg->fragment_size;
    if (!frag || len <= frag)
        return header_size(len, masked) + len;
    size_t full = len / frag, rest = len % frag;
    return full * header_size(frag, masked) + (rest ? header_size(rest, masked) : 0) + len;
}

ssize_t wisp_ws_send(struct wisp_ws *ws, enum wisp_ws_opcode op, const void *data, size_t len,
                     uint8_t *out, size_t cap)
{
    if (!ws || !out || (!data && len) || (op != WISP_WS_OP_TEXT && op != WISP_WS_OP_BINARY))
        return -EINVAL;
    if (!may_send_data(ws))
        return WISP_ECLOSED;
    if (ws->_out_op)
        return -EBUSY;
    /* Sending invalid text would only make the peer fail the connection with 1007; say so
     * here, where the caller can still do something about it. */
    if (op == WISP_WS_OP_TEXT && !wisp_utf8_valid(data, len))
        return -EILSEQ;
    if (wisp_ws_send_size(ws, len) > cap)
        return WISP_ENOSPACE;

    const uint8_t *src = data;
    size_t frag = ws->_cfg->fragment_size;
    if (!frag || len <= frag)
        return (ssize_t)put_frame(ws, out, op, true, src, len);
    size_t written = 0;
    for (size_t sent = 0; sent < len; sent += frag) {
        size_t n = len - sent < frag ? len - sent : frag;
        enum wisp_ws_opcode fop = sent ? WISP_WS_OP_CONTINUATION : op;
        written += put_frame(ws, out + written, fop, sent + n == len, src + sent, n);
    }
    return (ssize_t)written;
}

ssize_t wisp_ws_send_fragment(struct wisp_ws *ws, enum wisp_ws_opcode op, const void *data,
                              size_t len, bool fin, uint8_t *out, size_t cap)
{
    if (!ws || !out || (!data && len))
        return -EINVAL;
    if (!may_send_data(ws))
        return WISP_ECLOSED;
    enum wisp_ws_opcode fop;
    if (!ws->_out_op) {
        if (op != WISP_WS_OP_TEXT && op != WISP_WS_OP_BINARY)
            return -EINVAL;
        fop = op;
    } else {
        if (op != WISP_WS_OP_CONTINUATION && op != (enum wisp_ws_opcode)ws->_out_op)
            return -EINVAL;
        fop = WISP_WS_OP_CONTINUATION;
    }
    if (header_size(len, is_client(ws)) + len > cap)
        return WISP_ENOSPACE;
    size_t n = put_frame(ws, out, fop, fin, data, len);
    ws->_out_op = fin ? 0 : (uint8_t)(fop == WISP_WS_OP_CONTINUATION ? ws->_out_op : op);
    return (ssize_t)n;
}

ssize_t wisp_ws_send_control(struct wisp_ws *ws, enum wisp_ws_opcode op, const void *data,
                             size_t len, uint8_t *out, size_t cap)
{
    if (!ws || !out || (!data && len) || (op != WISP_WS_OP_PING && op != WISP_WS_OP_PONG))
        return -EINVAL;
    if (len > WISP_WS_MAX_CONTROL)
        return -EMSGSIZE;
    if (!may_send_data(ws))
        return WISP_ECLOSED;
    if (header_size(len, is_client(ws)) + len > cap)
        return WISP_ENOSPACE;
    return (ssize_t)put_frame(ws, out, op, true, data, len);
}

ssize_t wisp_ws_send_close(struct wisp_ws *ws, uint16_t code, const char *reason,
                           size_t reason_len, uint8_t *out, size_t cap)
{
    if (!ws || !out || (!reason && reason_len))
        return -EINVAL;
    bool no_status = code == WISP_CLOSE_NO_STATUS;
    if (no_status ? reason_len != 0 : !wisp_close_code_is_valid(code))
        return -EINVAL;
    if (reason_len > WISP_WS_MAX_CONTROL - 2 || !wisp_utf8_valid(reason, reason_len))
        return -EINVAL;
    enum wisp_ws_close_state s = ws_close_state(ws);
    if (s == WISP_WS_CLOSE_SENT || s == WISP_WS_CLOSED)
        return WISP_ECLOSED;

    uint8_t payload[WISP_WS_MAX_CONTROL];
    size_t plen = 0;
    if (!no_status) {
        payload[0] = (uint8_t)(code >> 8);
        payload[1] = (uint8_t)code;
        if (reason_len)
            memcpy(payload + 2, reason, reason_len);
        plen = 2 + reason_len;
    }
    if (header_size(plen, is_client(ws)) + plen > cap)
        return WISP_ENOSPACE;
    size_t n = put_frame(ws, out, WISP_WS_OP_CLOSE, true, payload, plen);
    /* After a fault we discard input, so no reply will be read: the handshake is over. */
    bool done = s == WISP_WS_CLOSE_RECEIVED || (ws->_close & WS_CLOSE_FAILED);
    ws_set_close_state(ws, done ? WISP_WS_CLOSED : WISP_WS_CLOSE_SENT);
    return (ssize_t)n;
}
