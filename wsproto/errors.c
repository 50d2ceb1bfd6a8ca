/* Names and numbers for failures: wisp_strerror, close-code validity, engine faults. */
#include <string.h>

#include <wisp/error.h>
#include <wisp/ws.h>

const char *wisp_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case WISP_EINCOMPLETE:
        return "more input needed";
    case WISP_ENOSPACE:
        return "output buffer too small";
    case WISP_EPROTO:
        return "protocol violation by the peer";
    case WISP_ECLOSED:
        return "connection is closing or closed";
    case WISP_ELIMIT:
        return "configured limit exceeded";
    case WISP_EHANDSHAKE:
        return "WebSocket handshake refused";
    case WISP_EFULL:
        return "receiver's mailbox is full";
    }
    if (err < 0 && err > -4096) {
        /* strerrordesc_np returns a static string: unlike strerror it is thread-safe. */
        const char *s = strerrordesc_np(-err);
        if (s)
            return s;
    }
    return "unknown error";
}

bool wisp_close_code_is_valid(unsigned code)
{
    if (code >= 1000 && code <= 1003)
        return true;
    if (code >= 1007 && code <= 1014)
        return true;
    return code >= 3000 && code <= 4999;
}

struct fault_info {
    uint16_t code;
    const char *text;
};

static const struct fault_info faults[] = {
    [WISP_WS_FAULT_NONE] = {0, "no fault"},
    [WISP_WS_FAULT_RSV] = {1002, "RSV bit set that no extension negotiated"},
    [WISP_WS_FAULT_OPCODE] = {1002, "reserved opcode"},
    [WISP_WS_FAULT_CONTROL_TOO_LONG] = {1002, "control frame payload over 125 bytes"},
    [WISP_WS_FAULT_CONTROL_FRAGMENTED] = {1002, "fragmented control frame"},
    [WISP_WS_FAULT_LENGTH_ENCODING] = {1002, "non-minimal or oversized length encoding"},
    [WISP_WS_FAULT_UNMASKED] = {1002, "unmasked frame from a client"},
    [WISP_WS_FAULT_MASKED] = {1002, "masked frame from a server"},
    [WISP_WS_FAULT_UNEXPECTED_CONTINUATION] = {1002, "continuation frame with no message open"},
    [WISP_WS_FAULT_EXPECTED_CONTINUATION] = {1002, "new message inside a fragmented message"},
    [WISP_WS_FAULT_CLOSE_PAYLOAD] = {1002, "close frame with a one-byte payload"},
    [WISP_WS_FAULT_CLOSE_CODE] = {1002, "close code not allowed on the wire"},
    [WISP_WS_FAULT_CLOSE_REASON] = {1007, "close reason is not UTF-8"},
    [WISP_WS_FAULT_FRAME_TOO_BIG] = {1009, "frame larger than the frame limit"},
    [WISP_WS_FAULT_MESSAGE_TOO_BIG] = {1009, "message larger than the message limit"},
    [WISP_WS_FAULT_BAD_UTF8] = {1007, "text message is not valid UTF-8"},
    [WISP_WS_FAULT_NO_MEMORY] = {1011, "out of memory while reassembling a message"},
};

uint16_t wisp_ws_fault_code(enum wisp_ws_fault fault)
{
    if ((unsigned)fault >= sizeof faults / sizeof faults[0])
        return WISP_CLOSE_PROTOCOL_ERROR;
    return faults[fault].code;
}

const char *wisp_ws_fault_str(enum wisp_ws_fault fault)
{
    if ((unsigned)fault >= sizeof faults / sizeof faults[0])
        return "unknown fault";
    return faults[fault].text;
}
