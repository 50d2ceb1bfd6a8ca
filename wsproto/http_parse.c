/* Zero-copy incremental parser for HTTP/1.1 request and response heads (RFC 9112 §2-5), plus
 * the header lookup and list helpers that read what it produced.
 *
 * A call first looks only at the bytes that arrived since the last call for the end of the
 * head, so a head that trickles in byte by byte costs O(n) in total, not O(n^2). Only once the
 * whole head is there is it parsed, in one pass over bytes that are known to be in bounds.
 * The grammar is deliberately strict: what is refused here cannot be interpreted differently by
 * a proxy in front of us (request smuggling) and is never sent by a real WebSocket client. */
#include "http_internal.h"

#include <errno.h>

/* Bit classes per byte; see http_internal.h. Generated from the RFC 9110 definitions of tchar,
 * field-vchar / obs-text and the visible ASCII allowed in a request-target. */
const uint8_t wispi_http_class[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, /* 00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 10 */
    2, 7, 6, 3, 7, 7, 7, 7, 6, 6, 7, 7, 6, 7, 7, 6, /* 20 */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6, /* 30 */
    6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, /* 40 */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 7, 7, /* 50 */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, /* 60 */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 7, 6, 7, 0, /* 70 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 80 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 90 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* a0 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* b0 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* c0 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* d0 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* e0 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* f0 */
};

int wisp_http_limits_init(struct wisp_http_limits *lim)
{
    if (!lim)
        return -EINVAL;
    lim->max_head_bytes = WISP_HTTP_DEFAULT_MAX_HEAD_BYTES;
    lim->max_headers = WISP_HTTP_DEFAULT_MAX_HEADERS;
    return 0;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/*
 * Look for the end of the head in the bytes not examined yet. The end is an LF followed by LF
 * or by CRLF: only "\r\n\r\n" is valid, but accepting the bare-LF forms as an end means a
 * client that sends them is refused at once instead of being left waiting for a CRLF that
 * never comes. A terminator found earlier would have ended the previous call, so a new one
 * ends at prev_len or later and its first LF is at prev_len - 2 or later.
 *
 * @return the head length, WISP_EINCOMPLETE, or WISP_ELIMIT (max bytes seen, no end in them).
 */
static ssize_t find_head_end(const char *buf, size_t len, size_t prev_len, size_t max)
{
    size_t limit = len < max ? len : max; /* the whole head, terminator included, fits in max */
    size_t i = prev_len > 3 ? prev_len - 3 : 0;
    while (i < limit) {
        const char *lf = memchr(buf + i, '\n', limit - i);
        if (!lf)
            break;
        size_t at = (size_t)(lf - buf);
        if (at + 1 < limit && buf[at + 1] == '\n')
            return (ssize_t)(at + 2);
        if (at + 2 < limit && buf[at + 1] == '\r' && buf[at + 2] == '\n')
            return (ssize_t)(at + 3);
        i = at + 1;
    }
    return len >= max ? WISP_ELIMIT : WISP_EINCOMPLETE;
}

/*
 * The line starting at *pos: sets *end to where its content ends (before CR LF) and advances
 * *pos past the LF. Lines must end in CRLF; a bare LF is malformed. The head is known to end in
 * an LF, so the search cannot leave it.
 */
static int next_line(const char *buf, size_t head_len, size_t *pos, size_t *end)
{
    if (*pos >= head_len)
        return WISP_EPROTO;
    const char *lf = memchr(buf + *pos, '\n', head_len - *pos);
    if (!lf)
        return WISP_EPROTO;
    size_t at = (size_t)(lf - buf);
    if (at == *pos || buf[at - 1] != '\r')
        return WISP_EPROTO;
    *end = at - 1;
    *pos = at + 1;
    return 0;
}

/*
 * "HTTP/1.x" exactly (RFC 9112 §2.3: one digit each side, case-sensitive).
 * @return 0 (minor set), WISP_EPROTO with *status 400, or with 505 for another major version.
 */
static int parse_version(const char *v, size_t n, int *minor, int *status)
{
    if (n != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
        v[7] < '0' || v[7] > '9') {
        *status = 400;
        return WISP_EPROTO;
    }
    if (v[5] != '1') {
        *status = 505;
        return WISP_EPROTO;
    }
    *minor = v[7] - '0';
    return 0;
}

/*
 * Header lines from *pos up to and including the empty line that ends the head.
 * @return 0, WISP_EPROTO (malformed) or WISP_ELIMIT (more than max fields).
 */
static int parse_fields(const char *buf, size_t head_len, size_t pos,
                        struct wisp_http_header *headers, size_t max, size_t *count)
{
    size_t n = 0;
    *count = 0;
    for (;;) {
        size_t s = pos, e;
        int rc = next_line(buf, head_len, &pos, &e);
        if (rc)
            return rc;
        if (e == s) /* the empty line: it must be the one the head ends with */
            break;
        /* A line starting with whitespace continues the previous field (obs-fold, refused by
         * RFC 9112 §5.2) or, right after the start line, hides a field from some parsers. */
        if (is_ows(buf[s]))
            return WISP_EPROTO;
        if (n == max)
            return WISP_ELIMIT;

        /* field-name ":" with nothing in between: whitespace before the colon is refused
         * (RFC 9112 §5.1) because proxies disagree on what it means. */
        size_t i = s;
        while (i < e && wispi_http_is((unsigned char)buf[i], WISPI_HTTP_TCHAR))
            i++;
        if (i == s || i == e || buf[i] != ':')
            return WISP_EPROTO;
        size_t vs = i + 1, ve = e;
        while (vs < ve && is_ows(buf[vs]))
            vs++;
        while (ve > vs && is_ows(buf[ve - 1]))
            ve--;
        if (!wispi_http_all(buf + vs, ve - vs, WISPI_HTTP_VALUE))
            return WISP_EPROTO;

        headers[n].name = buf + s;
        headers[n].name_len = i - s;
        headers[n].value = buf + vs;
        headers[n].value_len = ve - vs;
        n++;
    }
    if (pos != head_len)
        return WISP_EPROTO; /* only if the caller's prev_len skipped an earlier end */
    *count = n;
    return 0;
}

static size_t field_limit(const struct wisp_http_limits *limits, size_t headers_cap)
{
    size_t max = limits ? limits->max_headers : WISP_HTTP_DEFAULT_MAX_HEADERS;
    return max < headers_cap ? max : headers_cap;
}

static size_t head_limit(const struct wisp_http_limits *limits)
{
    return limits ? limits->max_head_bytes : WISP_HTTP_DEFAULT_MAX_HEAD_BYTES;
}

/* method SP origin-form SP HTTP-version, over [0, e). */
static int parse_request_line(const char *buf, size_t e, struct wisp_http_request *req)
{
    size_t i = 0;
    while (i < e && wispi_http_is((unsigned char)buf[i], WISPI_HTTP_TCHAR))
        i++;
    if (i == 0 || i == e || buf[i] != ' ')
        return WISP_EPROTO;
    req->method = buf;
    req->method_len = i;

    /* origin-form only: a WebSocket client never sends absolute-form, and '*' is for OPTIONS.
     * The target's bytes are visible ASCII; '#' would start a fragment, which is never sent. */
    size_t t = i + 1;
    if (t >= e || buf[t] != '/')
        return WISP_EPROTO;
    size_t j = t;
    while (j < e && wispi_http_is((unsigned char)buf[j], WISPI_HTTP_TARGET))
        j++;
    if (j == e || buf[j] != ' ')
        return WISP_EPROTO;
    req->target = buf + t;
    req->target_len = j - t;
    const char *q = memchr(req->target, '?', req->target_len);
    req->path = req->target;
    req->path_len = q ? (size_t)(q - req->target) : req->target_len;
    if (q) {
        req->query = q + 1;
        req->query_len = req->target_len - req->path_len - 1;
    }
    return parse_version(buf + j + 1, e - (j + 1), &req->minor_version, &req->status);
}

ssize_t wisp_http_parse_request(const char *buf, size_t len, size_t prev_len,
                                const struct wisp_http_limits *limits,
                                struct wisp_http_request *req, struct wisp_http_header *headers,
                                size_t headers_cap)
{
    if (!req)
        return -EINVAL;
    memset(req, 0, sizeof(*req));
    if ((!buf && len) || prev_len > len || (!headers && headers_cap))
        return -EINVAL;
    req->headers = headers;
    if (len == 0)
        return WISP_EINCOMPLETE;
    /* Fail fast on what cannot be a request at all (TLS on a plain port, binary junk) instead of
     * waiting up to max_head_bytes for an end of head. */
    if (!wispi_http_is((unsigned char)buf[0], WISPI_HTTP_TCHAR)) {
        req->status = 400;
        return WISP_EPROTO;
    }
    ssize_t end = find_head_end(buf, len, prev_len, head_limit(limits));
    if (end < 0) {
        if (end == WISP_ELIMIT)
            req->status = 431;
        return end;
    }

    size_t head_len = (size_t)end, pos = 0, e;
    int rc = next_line(buf, head_len, &pos, &e);
    if (rc == 0)
        rc = parse_request_line(buf, e, req);
    if (rc == 0)
        rc = parse_fields(buf, head_len, pos, headers, field_limit(limits, headers_cap),
                          &req->num_headers);
    if (rc) {
        if (rc == WISP_ELIMIT)
            req->status = 431;
        else if (req->status == 0)
            req->status = 400;
        return rc;
    }
    req->head_len = head_len;
    return end;
}

/* HTTP-version SP 3DIGIT [SP reason-phrase], over [0, e). The SP before an empty reason is
 * optional: some servers omit it and nothing depends on it. */
static int parse_status_line(const char *buf, size_t e, struct wisp_http_response *resp)
{
    int ignored;
    if (e < 12 || buf[8] != ' ' || parse_version(buf, 8, &resp->minor_version, &ignored) != 0)
        return WISP_EPROTO;
    const char *d = buf + 9;
    if (d[0] < '1' || d[0] > '9' || d[1] < '0' || d[1] > '9' || d[2] < '0' || d[2] > '9')
        return WISP_EPROTO;
    resp->status = (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
    resp->reason = buf + e;
    resp->reason_len = 0;
    if (e == 12)
        return 0;
    if (buf[12] != ' ' || !wispi_http_all(buf + 13, e - 13, WISPI_HTTP_VALUE))
        return WISP_EPROTO;
    resp->reason = buf + 13;
    resp->reason_len = e - 13;
    return 0;
}

ssize_t wisp_http_parse_response(const char *buf, size_t len, size_t prev_len,
                                 const struct wisp_http_limits *limits,
                                 struct wisp_http_response *resp, struct wisp_http_header *headers,
                                 size_t headers_cap)
{
    if (!resp)
        return -EINVAL;
    memset(resp, 0, sizeof(*resp));
    if ((!buf && len) || prev_len > len || (!headers && headers_cap))
        return -EINVAL;
    resp->headers = headers;
    if (len == 0)
        return WISP_EINCOMPLETE;
    if (buf[0] != 'H')
        return WISP_EPROTO;
    ssize_t end = find_head_end(buf, len, prev_len, head_limit(limits));
    if (end < 0)
        return end;

    size_t head_len = (size_t)end, pos = 0, e;
    int rc = next_line(buf, head_len, &pos, &e);
    if (rc == 0)
        rc = parse_status_line(buf, e, resp);
    if (rc == 0)
        rc = parse_fields(buf, head_len, pos, headers, field_limit(limits, headers_cap),
                          &resp->num_headers);
    if (rc)
        return rc;
    resp->head_len = head_len;
    return end;
}

const struct wisp_http_header *wisp_http_header_find(const struct wisp_http_header *headers,
                                                     size_t count, const char *name, size_t *pos)
{
    size_t i = pos ? *pos : 0;
    if (!headers || !name)
        return NULL;
    for (; i < count; i++) {
        if (wispi_http_ieq(headers[i].name, headers[i].name_len, name)) {
            if (pos)
                *pos = i + 1;
            return &headers[i];
        }
    }
    if (pos)
        *pos = count;
    return NULL;
}

size_t wisp_http_header_count(const struct wisp_http_header *headers, size_t count,
                              const char *name)
{
    size_t n = 0, pos = 0;
    while (wisp_http_header_find(headers, count, name, &pos))
        n++;
    return n;
}

bool wisp_http_token_next(const char *list, size_t len, size_t *pos, const char **item,
                          size_t *item_len)
{
    if (!pos || !item || !item_len || (!list && len))
        return false;
    size_t i = *pos;
    while (i < len && (is_ows(list[i]) || list[i] == ','))
        i++;
    if (i >= len) {
        *pos = len;
        return false;
    }
    size_t start = i;
    bool quoted = false;
    for (; i < len; i++) {
        char c = list[i];
        if (quoted) {
            if (c == '\\' && i + 1 < len)
                i++; /* quoted-pair: the next byte is literal, even a quote or a comma */
            else if (c == '"')
                quoted = false;
        } else if (c == '"') {
            quoted = true;
        } else if (c == ',') {
            break;
        }
    }
    size_t end = i;
    while (end > start && is_ows(list[end - 1]))
        end--;
    *item = list + start;
    *item_len = end - start; /* > 0: list[start] is neither OWS nor a comma */
    *pos = i;
    return true;
}

void wisp_http_list_begin(struct wisp_http_list_iter *it, const struct wisp_http_header *headers,
                          size_t count, const char *name)
{
    if (!it)
        return;
    it->_headers = headers;
    it->_count = headers ? count : 0;
    it->_name = name;
    it->_next = 0;
    it->_cur = NULL;
    it->_pos = 0;
}

bool wisp_http_list_next(struct wisp_http_list_iter *it, const char **item, size_t *item_len)
{
    if (!it || !item || !item_len)
        return false;
    for (;;) {
        if (it->_cur &&
            wisp_http_token_next(it->_cur->value, it->_cur->value_len, &it->_pos, item, item_len))
            return true;
        it->_cur = wisp_http_header_find(it->_headers, it->_count, it->_name, &it->_next);
        if (!it->_cur)
            return false;
        it->_pos = 0;
    }
}

bool wisp_http_list_has(const struct wisp_http_header *headers, size_t count, const char *name,
                        const char *token)
{
    struct wisp_http_list_iter it;
    const char *item;
    size_t item_len;
    if (!token)
        return false;
    wisp_http_list_begin(&it, headers, count, name);
    while (wisp_http_list_next(&it, &item, &item_len))
        if (wispi_http_ieq(item, item_len, token))
            return true;
    return false;
}
