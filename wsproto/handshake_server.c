/* Server side of the opening handshake (RFC 6455 §4.2): decide whether a parsed request is a
 * WebSocket upgrade we accept, and write the 101 answer that proves we read its key.
 * SHA-1 and base64 come from libcrypto; nothing cryptographic is written by hand here. */
#include "http_internal.h"

#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>

/* RFC 6455 §1.3: the fixed GUID the key is concatenated with. */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

int wisp_ws_accept_key(char out[WISP_WS_ACCEPT_LEN + 1], const char *key, size_t key_len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    if (!out || (!key && key_len))
        return -EINVAL;
    /* Two updates rather than a concatenation buffer: the key may be any length. */
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) &&
             EVP_DigestUpdate(ctx, key, key_len) &&
             EVP_DigestUpdate(ctx, ws_guid, sizeof(ws_guid) - 1) &&
             EVP_DigestFinal_ex(ctx, md, &md_len) && md_len == 20;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -ENOMEM;
    /* 20 bytes encode to 28 characters (the last one '='), and EVP_EncodeBlock adds the NUL. */
    EVP_EncodeBlock((unsigned char *)out, md, 20);
    return 0;
}

static bool is_base64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/*
 * RFC 6455 §4.2.1: the key is base64 of 16 bytes, which is exactly 22 alphabet characters and
 * "==". EVP_DecodeBlock alone would not do: it skips leading whitespace, takes '=' anywhere as a
 * zero digit ("dGhl=H...", "...ZQ=x" decode) and counts padding as output bytes (18 for 16). So
 * the shape is checked here and the decoder only confirms it.
 */
static bool key_is_valid(const char *key, size_t len)
{
    unsigned char raw[18];
    if (len != WISP_WS_KEY_LEN || key[22] != '=' || key[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++)
        if (!is_base64_char(key[i]))
            return false;
    return EVP_DecodeBlock(raw, (const unsigned char *)key, WISP_WS_KEY_LEN) == 18;
}

static int refuse(struct wisp_ws_upgrade *up, int status, const char *reason)
{
    up->status = status;
    up->reason = reason;
    return status;
}

/* The header named name if it appears exactly once; else NULL and *count says how often. */
static const struct wisp_http_header *single(const struct wisp_http_request *req, const char *name,
                                             size_t *count)
{
    *count = wisp_http_header_count(req->headers, req->num_headers, name);
    return *count == 1 ? wisp_http_header_find(req->headers, req->num_headers, name, NULL) : NULL;
}

/* RFC 9112 §3.2: a Host with an invalid value is refused like a missing one. The value is
 * uri-host [":" port]: reg-name, IP literal or IPv4 characters, never empty, no whitespace. */
static bool host_is_valid(const char *v, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (c && strchr("-._~%!$&'()*+,;=:[]", c));
        if (!ok)
            return false;
    }
    return true;
}

/* A body would be read as WebSocket frames after the upgrade: refuse rather than guess. */
static bool has_body(const struct wisp_http_request *req)
{
    const struct wisp_http_header *h;
    size_t pos = 0;
    if (wisp_http_header_find(req->headers, req->num_headers, "transfer-encoding", NULL))
        return true;
    while ((h = wisp_http_header_find(req->headers, req->num_headers, "content-length", &pos)))
        if (!(h->value_len == 1 && h->value[0] == '0'))
            return true;
    return false;
}

int wisp_ws_upgrade_check(const struct wisp_http_request *req, struct wisp_ws_upgrade *up)
{
    const struct wisp_http_header *h;
    size_t n;

    if (!up)
        return -EINVAL;
    memset(up, 0, sizeof(*up));
    /* head_len is set only by a successful parse; a failed one leaves fields half-filled. */
    if (!req || req->head_len == 0 || (!req->headers && req->num_headers))
        return -EINVAL;
    up->req = req;
    up->path = req->path;
    up->path_len = req->path_len;
    up->query = req->query;
    up->query_len = req->query_len;
    up->headers = req->headers;
    up->num_headers = req->num_headers;
    if ((h = wisp_http_header_find(req->headers, req->num_headers, "origin", NULL))) {
        up->origin = h->value;
        up->origin_len = h->value_len;
    }

    /* Methods are case-sensitive (RFC 9110 §9.1): "get" is not GET. */
    if (req->method_len != 3 || memcmp(req->method, "GET", 3) != 0)
        return refuse(up, 405, "method is not GET");
    if (req->minor_version < 1)
        return refuse(up, 400, "HTTP/1.0 cannot upgrade");
    h = single(req, "host", &n);
    if (!h)
        return refuse(up, 400, n ? "duplicate Host" : "missing Host");
    up->host = h->value;
    up->host_len = h->value_len;
    if (!host_is_valid(h->value, h->value_len))
        return refuse(up, 400, "invalid Host");
    if (has_body(req))
        return refuse(up, 400, "upgrade request has a body");
    if (!wisp_http_list_has(req->headers, req->num_headers, "upgrade", "websocket"))
        return refuse(up, 400, "Upgrade does not name websocket");
    if (!wisp_http_list_has(req->headers, req->num_headers, "connection", "upgrade"))
        return refuse(up, 400, "Connection does not name upgrade");

    /* The version before the key: a client speaking another draft gets the 426 that tells it
     * to retry with 13, whatever its key looks like. */
    h = single(req, "sec-websocket-version", &n);
    if (!h)
        return refuse(up, 400,
                      n ? "duplicate Sec-WebSocket-Version" : "missing Sec-WebSocket-Version");
    if (h->value_len != 2 || memcmp(h->value, "13", 2) != 0)
        return refuse(up, 426, "unsupported Sec-WebSocket-Version");

    h = single(req, "sec-websocket-key", &n);
    if (!h)
        return refuse(up, 400, n ? "duplicate Sec-WebSocket-Key" : "missing Sec-WebSocket-Key");
    if (!key_is_valid(h->value, h->value_len))
        return refuse(up, 400, "Sec-WebSocket-Key is not base64 of 16 bytes");

    /* RFC 6455 §4.1: subprotocol names are tokens. Checking here means the names the
     * application picks from are safe to echo in the 101. */
    struct wisp_http_list_iter it;
    const char *item;
    size_t item_len;
    wisp_http_list_begin(&it, req->headers, req->num_headers, "sec-websocket-protocol");
    while (wisp_http_list_next(&it, &item, &item_len))
        if (!wispi_http_is_token(item, item_len))
            return refuse(up, 400, "Sec-WebSocket-Protocol is not a token list");

    up->key = h->value;
    up->key_len = h->value_len;
    up->reason = "ok";
    return 0;
}

bool wisp_ws_upgrade_offers(const struct wisp_ws_upgrade *up, const char *proto, size_t proto_len)
{
    struct wisp_http_list_iter it;
    const char *item;
    size_t item_len;
    if (!up || !proto || proto_len == 0)
        return false;
    wisp_http_list_begin(&it, up->headers, up->num_headers, "sec-websocket-protocol");
    while (wisp_http_list_next(&it, &item, &item_len))
        if (item_len == proto_len && memcmp(item, proto, proto_len) == 0)
            return true;
    return false;
}

static void build_101(struct wispi_out *o, const char *accept,
                      const struct wisp_ws_accept_opts *opts)
{
    wispi_out_str(o, "HTTP/1.1 101 Switching Protocols\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n");
    wispi_out_header(o, "Sec-WebSocket-Accept", 20, accept, WISP_WS_ACCEPT_LEN);
    if (opts->protocol_len)
        wispi_out_header(o, "Sec-WebSocket-Protocol", 22, opts->protocol, opts->protocol_len);
    if (opts->extensions_len)
        wispi_out_header(o, "Sec-WebSocket-Extensions", 24, opts->extensions, opts->extensions_len);
    wispi_out_headers(o, opts->headers, opts->num_headers);
    wispi_out_put(o, "\r\n", 2);
}

ssize_t wisp_ws_upgrade_accept(const struct wisp_ws_upgrade *up,
                               const struct wisp_ws_accept_opts *opts, char *out, size_t cap)
{
    static const char *const reserved[] = {"Upgrade",        "Connection",        "Sec-WebSocket-*",
                                           "Content-Length", "Transfer-Encoding", NULL};
    struct wisp_ws_accept_opts o = {0};
    char accept[WISP_WS_ACCEPT_LEN + 1];

    /* A zeroed or refused result has no key: only what wisp_ws_upgrade_check() accepted. */
    if (!up || !out || up->status != 0 || !up->key || up->key_len != WISP_WS_KEY_LEN)
        return -EINVAL;
    if (opts)
        o = *opts;
    if (!o.protocol)
        o.protocol_len = 0;
    if (!o.extensions)
        o.extensions_len = 0;
    /* Choosing a subprotocol the client did not offer makes it fail the connection (§4.1). */
    if (o.protocol_len && !wisp_ws_upgrade_offers(up, o.protocol, o.protocol_len))
        return -EINVAL;
    if (!wispi_http_all(o.extensions, o.extensions_len, WISPI_HTTP_VALUE))
        return -EINVAL;
    if (wispi_http_check_headers(o.headers, o.num_headers, reserved) != 0)
        return -EINVAL;
    int rc = wisp_ws_accept_key(accept, up->key, up->key_len);
    if (rc)
        return rc;

    struct wispi_out w = {NULL, 0};
    build_101(&w, accept, &o);
    if (w.len > cap || w.len > (size_t)SSIZE_MAX)
        return WISP_ENOSPACE;
    w.buf = out;
    w.len = 0;
    build_101(&w, accept, &o);
    return (ssize_t)w.len;
}
