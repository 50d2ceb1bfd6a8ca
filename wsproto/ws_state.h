/* Bit layouts of struct wisp_ws's private fields, shared by the receive side (engine.c) and
 * the send side (frame_encode.c). Internal to wsproto. */
#ifndef WISP_WSPROTO_WS_STATE_H
#define WISP_WSPROTO_WS_STATE_H

#include <wisp/ws.h>

/* _close: the low two bits hold enum wisp_ws_close_state; FAILED marks an engine that
 * reported a fault (it discards input and owes at most one close frame). */
#define WS_CLOSE_STATE 0x03u
#define WS_CLOSE_FAILED 0x04u

/* _flags */
#define WS_F_CLIENT 0x01u  /* client role: expect unmasked frames, mask ours */
#define WS_F_STREAM 0x02u  /* cfg had WISP_WS_STREAM (copied to avoid a pointer chase) */
#define WS_F_ZEROCOPY 0x04u /* current frame is a whole message already in the caller's buffer */
#define WS_F_RELEASE 0x08u /* the last event handed out _buf: empty it on the next call */
#define WS_F_RSV 0x70u     /* RSV bits claimed by a negotiated extension (same bit positions) */

/* _msg_rsv: RSV bits of the message's first frame, plus this marker for streaming mode. */
#define WS_MSG_EMITTED 0x01u /* a FRAGMENT of this message was already delivered */

static inline enum wisp_ws_close_state ws_close_state(const struct wisp_ws *ws)
{
    return (enum wisp_ws_close_state)(ws->_close & WS_CLOSE_STATE);
}

static inline void ws_set_close_state(struct wisp_ws *ws, enum wisp_ws_close_state s)
{
    ws->_close = (uint8_t)((ws->_close & ~WS_CLOSE_STATE) | (unsigned)s);
}

#endif
