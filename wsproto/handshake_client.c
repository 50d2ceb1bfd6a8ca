/* Client side of the opening handshake (RFC 6455 §4.1): the upgrade request with a fresh
 * random key, and the checks a client must make before it treats the connection as open.
 * Anything the server says that we did not ask for fails the handshake: silently accepting an
 * unrequested extension would make us misread every frame that follows. */
#include "http_internal.h"
#include "random.h"

#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>

/* Visible ASCII only: no whitespace, no controls, nothing that needs an encoding. */
static bool is_visible(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

static bool value_ok(const char *s)
{
    return !s || wispi_http_all(s, strlen(s), WISPI_HTTP_VALUE);
}

static int check_opts(const struct wisp_ws_client_opts *o)
{
    static const char *const reserved[] = {
        "Host",           "Upgrade",           "Connection", "Origin", "Sec-WebSocket-*",
        "Content-Length", "Transfer-Encoding", NULL};
    if (!o->host || !o->host[0] || !is_visible(o->host, strlen(o->host)))
        return -EINVAL;
    if (!o->target || o->target[0] != '/' ||
        !wispi_http_all(o->target, strlen(o->target), WISPI_HTTP_TARGET))
        return -EINVAL;
    if (!value_ok(o->origin) || !value_ok(o->extensions))
        return -EINVAL;
    if (o->num_protocols && !o->protocols)
        return -EINVAL;
    for (size_t i = 0; i < o->num_protocols; i++) {
        const char *p = o->protocols[i];
        if (!p || !wispi_http_is_token(p, strlen(p)))
            return -EINVAL;
        for (size_t j = 0; j < i; j++) /* §4.1: the offered names are unique */
            if (strcmp(p, o->protocols[j]) == 0)
                return -EINVAL;
    }
    return wispi_http_check_headers(o->headers, o->num_headers, reserved);
}

static void build_request(struct wispi_out *w, const struct wisp_ws_client_opts *o, const char *key)
{
    wispi_out_str(w, "GET ");
    wispi_out_str(w, o->target);
    wispi_out_str(w, " HTTP/1.1\r\nHost: ");
    wispi_out_str(w, o->host);
    wispi_out_str(w, "\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: ");
    wispi_out_put(w, key, WISP_WS_KEY_LEN);
    wispi_out_str(w, "\r\nSec-WebSocket-Version: 13\r\n");
    if (o->origin)
        wispi_out_header(w, "Origin", 6, o->origin, strlen(o->origin));
    if (o->num_protocols) {
        wispi_out_str(w, "Sec-WebSocket-Protocol: ");
        for (size_t i = 0; i < o->num_protocols; i++) {
            if (i)
                wispi_out_put(w, ", ", 2);
            wispi_out_str(w, o->protocols[i]);
        }
        wispi_out_put(w, "\r\n", 2);
    }
    if (o->extensions && o->extensions[0])
        wispi_out_header(w, "Sec-WebSocket-Extensions", 24, o->extensions, strlen(o->extensions));
    wispi_out_headers(w, o->headers, o->num_headers);
    wispi_out_put(w, "\r\n", 2);
}

ssize_t wisp_ws_client_request(const struct wisp_ws_client_opts *opts,
                               char key_out[WISP_WS_KEY_LEN + 1], char *out, size_t cap)
{
    unsigned char nonce[16];
    char key[WISP_WS_KEY_LEN + 1];

    if (!opts || !key_out || !out)
        return -EINVAL;
    int rc = check_opts(opts);
    if (rc)
        return rc;
    /* §4.1: the nonce is 16 random bytes, fresh for every connection. Drawn before measuring so
     * that both passes write the same key. */
    rc = wispi_random_bytes(nonce, sizeof(nonce));
    if (rc)
        return rc;
    EVP_EncodeBlock((unsigned char *)key, nonce, sizeof(nonce)); /* 24 chars and a NUL */

    struct wispi_out w = {NULL, 0};
    build_request(&w, opts, key);
    if (w.len > cap || w.len > (size_t)SSIZE_MAX)
        return WISP_ENOSPACE;
    w.buf = out;
    w.len = 0;
    build_request(&w, opts, key);
    memcpy(key_out, key, sizeof(key));
    return (ssize_t)w.len;
}

static int fail(struct wisp_ws_client_result *res, const char *reason)
{
    res->protocol = NULL;
    res->protocol_len = 0;
    res->extensions = NULL;
    res->extensions_len = 0;
    res->reason = reason;
    return WISP_EHANDSHAKE;
}

/* The extension name of one offer or answer element: the token before any ';' parameters. */
static void extension_name(const char *elem, size_t len, const char **name, size_t *name_len)
{
    const char *semi = memchr(elem, ';', len);
    size_t n = semi ? (size_t)(semi - elem) : len;
    while (n && (elem[n - 1] == ' ' || elem[n - 1] == '\t'))
        n--;
    *name = elem;
    *name_len = n;
}

/* Did our offer (a NUL-terminated list, or NULL) name this extension? */
static bool extension_offered(const char *offer, const char *name, size_t name_len)
{
    const char *elem, *oname;
    size_t pos = 0, elem_len, oname_len;
    if (!offer)
        return false;
    while (wisp_http_token_next(offer, strlen(offer), &pos, &elem, &elem_len)) {
        extension_name(elem, elem_len, &oname, &oname_len);
        /* Extension names are tokens; like other HTTP tokens they match case-insensitively. */
        if (oname_len == name_len && wispi_http_ieq_mem(oname, name, name_len))
            return true;
    }
    return false;
}

static bool protocol_offered(const struct wisp_ws_client_opts *o, const char *p, size_t len)
{
    for (size_t i = 0; i < o->num_protocols; i++)
        if (o->protocols && o->protocols[i] && strlen(o->protocols[i]) == len &&
            memcmp(o->protocols[i], p, len) == 0)
            return true;
    return false;
}

int wisp_ws_client_check(const struct wisp_http_response *resp,
                         const struct wisp_ws_client_opts *opts, const char *key,
                         struct wisp_ws_client_result *res)
{
    const struct wisp_http_header *hs, *h;
    size_t n, count;
    char accept[WISP_WS_ACCEPT_LEN + 1];

    if (!res)
        return -EINVAL;
    memset(res, 0, sizeof(*res));
    if (!resp || !opts || !key || resp->head_len == 0 || (!resp->headers && resp->num_headers))
        return -EINVAL;
    hs = resp->headers;
    n = resp->num_headers;
    res->status = resp->status;
    res->reason = "ok";

    if (resp->status != 101)
        return fail(res, "server did not answer 101");
    if (!wisp_http_list_has(hs, n, "upgrade", "websocket"))
        return fail(res, "Upgrade is not websocket");
    if (!wisp_http_list_has(hs, n, "connection", "upgrade"))
        return fail(res, "Connection does not name upgrade");

    /* RFC 6455 §11.3.3: Sec-WebSocket-Accept, -Protocol and -Extensions appear at most once in
     * a response; a repeated one is refused rather than picking one of them. */
    count = wisp_http_header_count(hs, n, "sec-websocket-accept");
    if (count != 1)
        return fail(res, count ? "duplicate Sec-WebSocket-Accept" : "missing Sec-WebSocket-Accept");
    h = wisp_http_header_find(hs, n, "sec-websocket-accept", NULL);
    int rc = wisp_ws_accept_key(accept, key, strlen(key));
    if (rc)
        return rc;
    if (h->value_len != WISP_WS_ACCEPT_LEN || memcmp(h->value, accept, WISP_WS_ACCEPT_LEN) != 0)
        return fail(res, "Sec-WebSocket-Accept mismatch");

    count = wisp_http_header_count(hs, n, "sec-websocket-protocol");
    if (count > 1)
        return fail(res, "duplicate Sec-WebSocket-Protocol");
    if (count == 1) {
        h = wisp_http_header_find(hs, n, "sec-websocket-protocol", NULL);
        if (!protocol_offered(opts, h->value, h->value_len))
            return fail(res, "server chose a subprotocol we did not offer");
        res->protocol = h->value;
        res->protocol_len = h->value_len;
    }

    count = wisp_http_header_count(hs, n, "sec-websocket-extensions");
    if (count > 1)
        return fail(res, "duplicate Sec-WebSocket-Extensions");
    if (count == 1) {
        const char *elem, *name;
        size_t pos = 0, elem_len, name_len;
        h = wisp_http_header_find(hs, n, "sec-websocket-extensions", NULL);
        while (wisp_http_token_next(h->value, h->value_len, &pos, &elem, &elem_len)) {
            extension_name(elem, elem_len, &name, &name_len);
            if (!wispi_http_is_token(name, name_len))
                return fail(res, "malformed Sec-WebSocket-Extensions");
            if (!extension_offered(opts->extensions, name, name_len))
                return fail(res, "server chose an extension we did not offer");
        }
        if (h->value_len) {
            res->extensions = h->value;
            res->extensions_len = h->value_len;
        }
    }
    return 0;
}
