/* Plain HTTP/1.1 answers: the refusals a WebSocket endpoint sends before closing the connection,
 * and simple responses for routes that answer a GET themselves. Every answer says
 * `Connection: close` and carries its length, so the peer never has to guess where it ends.
 * Also the output helpers the handshake writers share. */
#include "http_internal.h"

#include <errno.h>
#include <limits.h>

static const struct {
    int status;
    const char *reason;
} reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {426, "Upgrade Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

const char *wisp_http_status_reason(int status)
{
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (reasons[i].status == status)
            return reasons[i].reason;
    return "Unknown";
}

void wispi_out_uint(struct wispi_out *o, size_t v)
{
    char digits[24];
    size_t n = 0;
    do {
        digits[sizeof(digits) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    wispi_out_put(o, digits + sizeof(digits) - n, n);
}

/* pattern is a header name, or a prefix followed by '*' ("Sec-WebSocket-*"). */
static bool name_matches(const char *name, size_t len, const char *pattern)
{
    size_t plen = strlen(pattern);
    if (plen && pattern[plen - 1] == '*')
        return len >= plen - 1 && wispi_http_ieq_mem(name, pattern, plen - 1);
    return wispi_http_ieq(name, len, pattern);
}

int wispi_http_check_headers(const struct wisp_http_header *h, size_t n,
                             const char *const *reserved)
{
    if (n && !h)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!h[i].name || !wispi_http_is_token(h[i].name, h[i].name_len))
            return -EINVAL;
        if (h[i].value_len && !h[i].value)
            return -EINVAL;
        if (!wispi_http_all(h[i].value, h[i].value_len, WISPI_HTTP_VALUE))
            return -EINVAL;
        for (const char *const *r = reserved; r && *r; r++)
            if (name_matches(h[i].name, h[i].name_len, *r))
                return -EINVAL;
    }
    return 0;
}

void wispi_out_headers(struct wispi_out *o, const struct wisp_http_header *h, size_t n)
{
    for (size_t i = 0; i < n; i++)
        wispi_out_header(o, h[i].name, h[i].name_len, h[i].value, h[i].value_len);
}

/* 1xx, 204 and 304 answers end at the empty line (RFC 9110 §6.4.1): no body, no length. */
static bool status_has_body(int status)
{
    return status >= 200 && status != 204 && status != 304;
}

/* An answer minus validation. `more` are headers this file adds itself (already valid). */
static void build_answer(struct wispi_out *o, const struct wisp_http_answer *a,
                         const char *connection, const struct wisp_http_header *more,
                         size_t num_more)
{
    wispi_out_str(o, "HTTP/1.1 ");
    wispi_out_uint(o, (size_t)a->status);
    wispi_out_put(o, " ", 1);
    wispi_out_str(o, wisp_http_status_reason(a->status));
    wispi_out_put(o, "\r\n", 2);
    if (a->content_type)
        wispi_out_header(o, "Content-Type", 12, a->content_type, strlen(a->content_type));
    if (status_has_body(a->status)) {
        wispi_out_str(o, "Content-Length: ");
        wispi_out_uint(o, a->body_len);
        wispi_out_put(o, "\r\n", 2);
    }
    wispi_out_header(o, "Connection", 10, connection, strlen(connection));
    wispi_out_headers(o, more, num_more);
    wispi_out_headers(o, a->headers, a->num_headers);
    wispi_out_put(o, "\r\n", 2);
    wispi_out_put(o, a->body, a->body_len);
}

/* Measure, then write only if it fits (see struct wispi_out). */
static ssize_t emit_answer(const struct wisp_http_answer *a, const char *connection,
                           const struct wisp_http_header *more, size_t num_more, char *out,
                           size_t cap)
{
    struct wispi_out o = {NULL, 0};
    build_answer(&o, a, connection, more, num_more);
    if (o.len > cap || o.len > (size_t)SSIZE_MAX)
        return WISP_ENOSPACE;
    o.buf = out;
    o.len = 0;
    build_answer(&o, a, connection, more, num_more);
    return (ssize_t)o.len;
}

ssize_t wisp_http_write_response(const struct wisp_http_answer *ans, char *out, size_t cap)
{
    static const char *const reserved[] = {"Content-Type", "Content-Length", "Connection",
                                           "Transfer-Encoding", NULL};
    if (!ans || !out || ans->status < 100 || ans->status > 999)
        return -EINVAL;
    if ((ans->body_len && !ans->body) || (ans->body_len && !status_has_body(ans->status)))
        return -EINVAL;
    if (ans->content_type &&
        !wispi_http_all(ans->content_type, strlen(ans->content_type), WISPI_HTTP_VALUE))
        return -EINVAL;
    if (wispi_http_check_headers(ans->headers, ans->num_headers, reserved) != 0)
        return -EINVAL;
    return emit_answer(ans, "close", NULL, 0, out, cap);
}

ssize_t wisp_http_reject(int status, char *out, size_t cap)
{
    /* RFC 6455 §4.4: a server that does not speak the client's version answers 426 and lists
     * the versions it does; RFC 9110 §15.5.22 adds that a 426 names the protocol to upgrade to
     * and §7.8 that an Upgrade header comes with the "upgrade" connection option. */
    static const struct wisp_http_header h426[] = {
        {"Upgrade", 7, "websocket", 9},
        {"Sec-WebSocket-Version", 21, "13", 2},
    };
    /* RFC 9110 §15.5.6: a 405 lists the methods the resource supports. */
    static const struct wisp_http_header h405[] = {{"Allow", 5, "GET", 3}};
    char body[48];

    if (!out || status < 400 || status > 599)
        return -EINVAL;
    const char *reason = wisp_http_status_reason(status);
    size_t reason_len = strlen(reason); /* the longest phrase is 31 bytes: fits in body */
    memcpy(body, reason, reason_len);
    body[reason_len] = '\n';

    struct wisp_http_answer a = {
        .status = status,
        .content_type = "text/plain; charset=utf-8",
        .body = body,
        .body_len = reason_len + 1,
    };
    if (status == 426)
        return emit_answer(&a, "Upgrade, close", h426, 2, out, cap);
    if (status == 405)
        return emit_answer(&a, "close", h405, 1, out, cap);
    return emit_answer(&a, "close", NULL, 0, out, cap);
}
