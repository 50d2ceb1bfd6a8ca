/* Server side of the opening handshake: which requests are accepted, which status every
 * refusal gets, the accept key, the 101 answer byte for byte, and the plain HTTP writers.
 * Requests go through split_check() first, so each one is also parsed in every split. */
#include "http_split.h"

#include <errno.h>
#include <stdlib.h>

#define S(lit) lit, sizeof(lit) - 1

/* RFC 6455 §1.2 */
static const char rfc_request[] = "GET /chat HTTP/1.1\r\n"
                                  "Host: server.example.com\r\n"
                                  "Upgrade: websocket\r\n"
                                  "Connection: Upgrade\r\n"
                                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                  "Origin: http://example.com\r\n"
                                  "Sec-WebSocket-Protocol: chat, superchat\r\n"
                                  "Sec-WebSocket-Version: 13\r\n"
                                  "\r\n";

static struct wisp_http_header hdrs[64];
static struct wisp_http_request req;
static struct wisp_ws_upgrade up;

/* What a server does with a request: parse, check, and say which status to answer (0: 101). */
static int handle(const char *in, size_t len)
{
    int status;
    ssize_t rc = split_check(SPLIT_REQUEST, in, len, NULL, 64, &status, NULL);
    ssize_t again = wisp_http_parse_request(in, len, 0, NULL, &req, hdrs, 64);
    assert_int_equal(again, rc);
    if (rc == WISP_EINCOMPLETE)
        fail_msg("request incomplete");
    if (rc < 0) {
        assert_int_equal(req.status, status);
        return status;
    }
    int st = wisp_ws_upgrade_check(&req, &up);
    assert_int_equal(st, up.status);
    assert_non_null(up.reason);
    if (st == 0)
        assert_string_equal(up.reason, "ok");
    else
        assert_string_not_equal(up.reason, "ok");
    return st;
}

static void assert_str(const char *p, size_t n, const char *want)
{
    assert_non_null(p);
    if (n != strlen(want) || memcmp(p, want, n) != 0)
        fail_msg("got \"%.*s\", want \"%s\"", (int)n, p, want);
}

static void test_accept_key(void **state)
{
    (void)state;
    char out[WISP_WS_ACCEPT_LEN + 1];
    memset(out, 'x', sizeof(out));
    /* RFC 6455 §1.3 (its SHA-1 is b37a4f2c...c4ea as printed there) */
    assert_int_equal(wisp_ws_accept_key(out, S("dGhlIHNhbXBsZSBub25jZQ==")), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /* RFC 6455 §4.2.2 */
    assert_int_equal(wisp_ws_accept_key(out, S("x3JJHMbDL1EzLkh9GBhXDw==")), 0);
    assert_string_equal(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
    /* only key_len bytes count */
    assert_int_equal(wisp_ws_accept_key(out, "dGhlIHNhbXBsZSBub25jZQ==garbage", 24), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_int_equal(wisp_ws_accept_key(out, "", 0), 0);
    assert_int_equal(strlen(out), 28);
    assert_int_equal(wisp_ws_accept_key(NULL, S("a")), -EINVAL);
    assert_int_equal(wisp_ws_accept_key(out, NULL, 3), -EINVAL);
}

static void test_rfc_request(void **state)
{
    (void)state;
    assert_int_equal(handle(S(rfc_request)), 0);
    assert_ptr_equal(up.req, &req);
    assert_str(up.path, up.path_len, "/chat");
    assert_null(up.query);
    assert_str(up.host, up.host_len, "server.example.com");
    assert_str(up.origin, up.origin_len, "http://example.com");
    assert_str(up.key, up.key_len, "dGhlIHNhbXBsZSBub25jZQ==");
    assert_ptr_equal(up.headers, hdrs);
    assert_int_equal(up.num_headers, 7);
    assert_true(wisp_ws_upgrade_offers(&up, S("chat")));
    assert_true(wisp_ws_upgrade_offers(&up, S("superchat")));
    assert_false(wisp_ws_upgrade_offers(&up, S("Chat"))); /* subprotocols are case-sensitive */
    assert_false(wisp_ws_upgrade_offers(&up, S("cha")));
    assert_false(wisp_ws_upgrade_offers(&up, S("")));
    assert_false(wisp_ws_upgrade_offers(NULL, S("chat")));
}

struct upgrade_case {
    const char *name;
    const char *in;
    size_t len;
    int status;
};

/* clang-format off */
#define CASE(n, lit, st) {n, lit, sizeof(lit) - 1, st}
/* clang-format on */

#define REQ_HEAD "GET /ws HTTP/1.1\r\n"
#define HOST     "Host: h\r\n"
#define UPG      "Upgrade: websocket\r\n"
#define CONN     "Connection: Upgrade\r\n"
#define KEY      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define VER      "Sec-WebSocket-Version: 13\r\n"
#define END      "\r\n"

static const struct upgrade_case cases[] = {
    CASE("chrome",
         "GET /chat?room=lobby HTTP/1.1\r\n"
         "Host: example.com:8080\r\n"
         "Connection: Upgrade\r\n"
         "Pragma: no-cache\r\n"
         "Cache-Control: no-cache\r\n"
         "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/120.0.0.0 Safari/537.36\r\n"
         "Upgrade: websocket\r\n"
         "Origin: https://example.com\r\n"
         "Sec-WebSocket-Version: 13\r\n"
         "Accept-Encoding: gzip, deflate, br\r\n"
         "Accept-Language: en-US,en;q=0.9\r\n"
         "Cookie: session=abc123; theme=dark\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
         "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
         "\r\n",
         0),
    CASE("firefox",
         "GET /socket HTTP/1.1\r\n"
         "Host: localhost:9001\r\n"
         "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0\r\n"
         "Accept: */*\r\n"
         "Accept-Language: en-US,en;q=0.5\r\n"
         "Accept-Encoding: gzip, deflate, br\r\n"
         "Sec-WebSocket-Version: 13\r\n"
         "Origin: http://localhost:9001\r\n"
         "Sec-WebSocket-Extensions: permessage-deflate\r\n"
         "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"
         "Connection: keep-alive, Upgrade\r\n"
         "Sec-Fetch-Dest: empty\r\n"
         "Sec-Fetch-Mode: websocket\r\n"
         "Sec-Fetch-Site: same-origin\r\n"
         "Pragma: no-cache\r\n"
         "Cache-Control: no-cache\r\n"
         "Upgrade: websocket\r\n"
         "\r\n",
         0),
    CASE("python websockets",
         "GET /ws HTTP/1.1\r\n"
         "Host: 127.0.0.1:8765\r\n"
         "Upgrade: websocket\r\n"
         "Connection: Upgrade\r\n"
         "Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\n"
         "Sec-WebSocket-Version: 13\r\n"
         "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
         "User-Agent: Python/3.11 websockets/12.0\r\n"
         "\r\n",
         0),
    CASE("node ws",
         "GET /echo HTTP/1.1\r\n"
         "Sec-WebSocket-Version: 13\r\n"
         "Sec-WebSocket-Key: 5q4cKX0oL2Jk0pYb3Wm4AA==\r\n"
         "Connection: Upgrade\r\n"
         "Upgrade: websocket\r\n"
         "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
         "Host: localhost:8080\r\n"
         "\r\n",
         0),
    CASE("lower case names and values",
         "GET / HTTP/1.1\r\nhost: h\r\nupgrade: websocket\r\nconnection: upgrade\r\n"
         "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n",
         0),
    CASE("upper case names and values",
         "GET / HTTP/1.1\r\nHOST: h\r\nUPGRADE: WEBSOCKET\r\nCONNECTION: UPGRADE\r\n"
         "SEC-WEBSOCKET-KEY: dGhlIHNhbXBsZSBub25jZQ==\r\nSEC-WEBSOCKET-VERSION: 13\r\n\r\n",
         0),
    CASE("mixed case", REQ_HEAD HOST "Upgrade: WebSocket\r\n" CONN KEY VER END, 0),
    CASE("keep-alive, Upgrade", REQ_HEAD HOST UPG "Connection: keep-alive, Upgrade\r\n" KEY VER END,
         0),
    CASE("Connection split over two headers",
         REQ_HEAD HOST UPG "Connection: keep-alive\r\nConnection: Upgrade\r\n" KEY VER END, 0),
    CASE("Upgrade list", REQ_HEAD HOST "Upgrade: h2c, websocket\r\n" CONN KEY VER END, 0),
    CASE("Content-Length 0", REQ_HEAD HOST UPG CONN KEY VER "Content-Length: 0\r\n" END, 0),
    CASE("IPv6 Host", REQ_HEAD "Host: [::1]:8080\r\n" UPG CONN KEY VER END, 0),
    CASE("HTTP/1.2", "GET /ws HTTP/1.2\r\n" HOST UPG CONN KEY VER END, 0),
    CASE("max alphabet key",
         REQ_HEAD HOST UPG CONN "Sec-WebSocket-Key: +/+/zz99AAAAAAAAAAAAAA==\r\n" VER END, 0),

    CASE("missing Host", REQ_HEAD UPG CONN KEY VER END, 400),
    CASE("duplicate Host", REQ_HEAD HOST UPG CONN KEY VER HOST END, 400),
    CASE("empty Host", REQ_HEAD "Host:\r\n" UPG CONN KEY VER END, 400),
    CASE("Host with a space", REQ_HEAD "Host: a b\r\n" UPG CONN KEY VER END, 400),
    CASE("Host with a path", REQ_HEAD "Host: a/b\r\n" UPG CONN KEY VER END, 400),
    CASE("Host with userinfo", REQ_HEAD "Host: u@a\r\n" UPG CONN KEY VER END, 400),
    CASE("Host with obs-text", REQ_HEAD "Host: caf\xc3\xa9\r\n" UPG CONN KEY VER END, 400),
    CASE("missing Upgrade", REQ_HEAD HOST CONN KEY VER END, 400),
    CASE("Upgrade h2c", REQ_HEAD HOST "Upgrade: h2c\r\n" CONN KEY VER END, 400),
    CASE("Upgrade websocket2", REQ_HEAD HOST "Upgrade: websockets\r\n" CONN KEY VER END, 400),
    CASE("missing Connection", REQ_HEAD HOST UPG KEY VER END, 400),
    CASE("Connection keep-alive", REQ_HEAD HOST UPG "Connection: keep-alive\r\n" KEY VER END, 400),
    CASE("Connection upgrades", REQ_HEAD HOST UPG "Connection: Upgrades\r\n" KEY VER END, 400),
    CASE("Connection 'keep-alive Upgrade'",
         REQ_HEAD HOST UPG "Connection: keep-alive Upgrade\r\n" KEY VER END, 400),
    CASE("missing key", REQ_HEAD HOST UPG CONN VER END, 400),
    CASE("duplicate key", REQ_HEAD HOST UPG CONN KEY KEY VER END, 400),
    CASE("empty key", REQ_HEAD HOST UPG CONN "Sec-WebSocket-Key:\r\n" VER END, 400),
    CASE("key of 15 bytes",
         REQ_HEAD HOST UPG CONN "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA\r\n" VER END, 400),
    CASE("key of 17 bytes",
         REQ_HEAD HOST UPG CONN "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=\r\n" VER END, 400),
    CASE("key of 18 bytes",
         REQ_HEAD HOST UPG CONN "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAA\r\n" VER END, 400),
    CASE("key of 16 bytes without padding",
         REQ_HEAD HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n" VER END, 400),
    CASE("key 25 chars",
         REQ_HEAD HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==A\r\n" VER END, 400),
    CASE("url-safe alphabet",
         REQ_HEAD HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j_Q==\r\n" VER END, 400),
    CASE("dash in key",
         REQ_HEAD HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j-Q==\r\n" VER END, 400),
    CASE("three padding chars",
         REQ_HEAD HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ===\r\n" VER END, 400),
    CASE("padding inside",
         REQ_HEAD HOST UPG CONN "Sec-WebSocket-Key: dGhl=HNhbXBsZSBub25jZQ==\r\n" VER END, 400),
    CASE("space inside key",
         REQ_HEAD HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25 jZQ==\r\n" VER END, 400),
    CASE("version 8", REQ_HEAD HOST UPG CONN KEY "Sec-WebSocket-Version: 8\r\n" END, 426),
    CASE("version list", REQ_HEAD HOST UPG CONN KEY "Sec-WebSocket-Version: 13, 8\r\n" END, 426),
    CASE("version 130", REQ_HEAD HOST UPG CONN KEY "Sec-WebSocket-Version: 130\r\n" END, 426),
    CASE("version 8 with a bad key",
         REQ_HEAD HOST UPG CONN "Sec-WebSocket-Key: x\r\nSec-WebSocket-Version: 8\r\n" END, 426),
    CASE("missing version", REQ_HEAD HOST UPG CONN KEY END, 400),
    CASE("duplicate version", REQ_HEAD HOST UPG CONN KEY VER VER END, 400),
    CASE("POST", "POST /ws HTTP/1.1\r\n" HOST UPG CONN KEY VER END, 405),
    CASE("lower-case get", "get /ws HTTP/1.1\r\n" HOST UPG CONN KEY VER END, 405),
    CASE("HTTP/1.0", "GET /ws HTTP/1.0\r\n" HOST UPG CONN KEY VER END, 400),
    CASE("chunked body", REQ_HEAD HOST UPG CONN KEY VER "Transfer-Encoding: chunked\r\n" END, 400),
    CASE("body", REQ_HEAD HOST UPG CONN KEY VER "Content-Length: 5\r\n" END, 400),
    CASE("subprotocol not a token",
         REQ_HEAD HOST UPG CONN KEY VER "Sec-WebSocket-Protocol: chat, a b\r\n" END, 400),
    CASE("subprotocol with a separator",
         REQ_HEAD HOST UPG CONN KEY VER "Sec-WebSocket-Protocol: chat;v=1\r\n" END, 400),

    /* refused by the parser, before the handshake is looked at */
    CASE("obs-fold", REQ_HEAD HOST UPG CONN KEY VER "X-A: 1\r\n 2\r\n" END, 400),
    CASE("bare LF",
         "GET /ws HTTP/1.1\nHost: h\nUpgrade: websocket\nConnection: Upgrade\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13\n\n",
         400),
    CASE("space before colon", REQ_HEAD "Host : h\r\n" UPG CONN KEY VER END, 400),
    CASE("NUL in a value", REQ_HEAD HOST UPG CONN KEY VER "X: a\0b\r\n" END, 400),
    CASE("control byte in a value", REQ_HEAD HOST UPG CONN KEY VER "X: a\x02\r\n" END, 400),
    CASE("HTTP/2.0", "GET /ws HTTP/2.0\r\n" HOST UPG CONN KEY VER END, 505),
};

static void check_reject_answer(int status)
{
    char out[512];
    struct wisp_http_header rh[16];
    struct wisp_http_response resp;
    ssize_t n = wisp_http_reject(status, out, sizeof(out));
    assert_true(n > 0);
    /* a well-formed answer whose body is exactly Content-Length bytes */
    ssize_t head = wisp_http_parse_response(out, (size_t)n, 0, NULL, &resp, rh, 16);
    assert_true(head > 0);
    assert_int_equal(resp.status, status);
    assert_str(resp.reason, resp.reason_len, wisp_http_status_reason(status));
    const struct wisp_http_header *cl =
        wisp_http_header_find(rh, resp.num_headers, "content-length", NULL);
    assert_non_null(cl);
    char len[16];
    snprintf(len, sizeof(len), "%zu", (size_t)n - (size_t)head);
    assert_str(cl->value, cl->value_len, len);
    assert_true(wisp_http_list_has(rh, resp.num_headers, "connection", "close"));
    if (status == 426) {
        const struct wisp_http_header *v =
            wisp_http_header_find(rh, resp.num_headers, "Sec-WebSocket-Version", NULL);
        assert_non_null(v);
        assert_str(v->value, v->value_len, "13");
        assert_true(wisp_http_list_has(rh, resp.num_headers, "upgrade", "websocket"));
    }
    if (status == 405)
        assert_true(wisp_http_list_has(rh, resp.num_headers, "allow", "GET"));
}

static void test_accept_and_refuse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct upgrade_case *c = &cases[i];
        int st = handle(c->in, c->len);
        if (st != c->status)
            fail_msg("%s: status %d, want %d (%s)", c->name, st, c->status,
                     up.reason ? up.reason : "-");
        if (st)
            check_reject_answer(st);
    }
}

/* n extra headers, or a header padded to reach about total bytes: both refused with 431. */
static void test_too_large(void **state)
{
    (void)state;
    static char buf[10000];
    size_t len = (size_t)snprintf(buf, sizeof(buf), REQ_HEAD HOST UPG CONN KEY VER);
    for (int i = 0; i < 60; i++)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "X-%d: %d\r\n", i, i);
    len += (size_t)snprintf(buf + len, sizeof(buf) - len, END);
    assert_int_equal(handle(buf, len), 431);
    check_reject_answer(431);

    len = (size_t)snprintf(buf, sizeof(buf), REQ_HEAD HOST UPG CONN KEY VER "Cookie: ");
    memset(buf + len, 'c', 8200);
    len += 8200;
    memcpy(buf + len, "\r\n\r\n", 4);
    len += 4;
    assert_int_equal(handle(buf, len), 431);
}

static void test_offers(void **state)
{
    (void)state;
    static const char in[] = REQ_HEAD HOST UPG CONN KEY VER
        "Sec-WebSocket-Protocol: chat, superchat\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-foo\r\n"
        "Sec-WebSocket-Protocol: v2.json\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n" END;
    assert_int_equal(handle(S(in)), 0);
    assert_null(up.origin); /* not a browser */
    assert_true(wisp_ws_upgrade_offers(&up, S("v2.json")));

    struct wisp_http_list_iter it;
    const char *item;
    size_t n, i = 0;
    const char *protos[] = {"chat", "superchat", "v2.json"};
    wisp_http_list_begin(&it, up.headers, up.num_headers, "Sec-WebSocket-Protocol");
    while (wisp_http_list_next(&it, &item, &n)) {
        assert_true(i < 3);
        assert_str(item, n, protos[i++]);
    }
    assert_int_equal(i, 3);

    const char *exts[] = {"permessage-deflate; client_max_window_bits", "x-foo",
                          "permessage-deflate; server_no_context_takeover"};
    i = 0;
    wisp_http_list_begin(&it, up.headers, up.num_headers, "sec-websocket-extensions");
    while (wisp_http_list_next(&it, &item, &n)) {
        assert_true(i < 3);
        assert_str(item, n, exts[i++]);
    }
    assert_int_equal(i, 3);

    static const char q[] = "GET /a/b?c=d HTTP/1.1\r\n" HOST UPG CONN KEY VER END;
    assert_int_equal(handle(S(q)), 0);
    assert_str(up.path, up.path_len, "/a/b");
    assert_str(up.query, up.query_len, "c=d");
}

static void test_check_arguments(void **state)
{
    (void)state;
    assert_int_equal(wisp_ws_upgrade_check(NULL, &up), -EINVAL);
    assert_int_equal(wisp_ws_upgrade_check(&req, NULL), -EINVAL);
    /* a request whose parse failed is not looked at */
    assert_int_equal(
        wisp_http_parse_request(S("POST / HTTP/1.1\r\nX : 1\r\n\r\n"), 0, NULL, &req, hdrs, 64),
        WISP_EPROTO);
    assert_int_equal(wisp_ws_upgrade_check(&req, &up), -EINVAL);
    struct wisp_http_request zero;
    memset(&zero, 0, sizeof(zero));
    assert_int_equal(wisp_ws_upgrade_check(&zero, &up), -EINVAL);
}

static const char rfc_101[] = "HTTP/1.1 101 Switching Protocols\r\n"
                              "Upgrade: websocket\r\n"
                              "Connection: Upgrade\r\n"
                              "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                              "Sec-WebSocket-Protocol: chat\r\n"
                              "\r\n";

static void test_101_exact(void **state)
{
    (void)state;
    char out[512];
    assert_int_equal(handle(S(rfc_request)), 0);

    struct wisp_ws_accept_opts o = {.protocol = "chat", .protocol_len = 4};
    ssize_t n = wisp_ws_upgrade_accept(&up, &o, out, sizeof(out));
    assert_int_equal(n, sizeof(rfc_101) - 1);
    assert_memory_equal(out, rfc_101, sizeof(rfc_101) - 1);

    static const char plain[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                "Upgrade: websocket\r\n"
                                "Connection: Upgrade\r\n"
                                "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                                "\r\n";
    n = wisp_ws_upgrade_accept(&up, NULL, out, sizeof(out));
    assert_int_equal(n, sizeof(plain) - 1);
    assert_memory_equal(out, plain, sizeof(plain) - 1);
    struct wisp_ws_accept_opts none = {
        .protocol = "chat", .protocol_len = 0, .extensions = NULL, .extensions_len = 9};
    n = wisp_ws_upgrade_accept(&up, &none, out, sizeof(out));
    assert_int_equal(n, sizeof(plain) - 1);
    assert_memory_equal(out, plain, sizeof(plain) - 1);

    static const char full[] = "HTTP/1.1 101 Switching Protocols\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                               "Sec-WebSocket-Protocol: superchat\r\n"
                               "Sec-WebSocket-Extensions: permessage-deflate; "
                               "server_no_context_takeover\r\n"
                               "Set-Cookie: id=1; HttpOnly\r\n"
                               "X-Served-By: wisp\t1\r\n"
                               "\r\n";
    const struct wisp_http_header extra[] = {
        {"Set-Cookie", 10, "id=1; HttpOnly", 14},
        {"X-Served-By", 11, "wisp\t1", 6},
    };
    /* the protocol name may come straight from the request: not NUL-terminated */
    const char *sc = strstr(req.headers[5].value, "superchat");
    struct wisp_ws_accept_opts f = {
        .protocol = sc,
        .protocol_len = 9,
        .extensions = "permessage-deflate; server_no_context_takeover",
        .extensions_len = strlen("permessage-deflate; server_no_context_takeover"),
        .headers = extra,
        .num_headers = 2,
    };
    n = wisp_ws_upgrade_accept(&up, &f, out, sizeof(out));
    assert_int_equal(n, sizeof(full) - 1);
    assert_memory_equal(out, full, sizeof(full) - 1);

    /* and a client-side parser reads it back */
    struct wisp_http_header rh[16];
    struct wisp_http_response resp;
    assert_int_equal(split_check(SPLIT_RESPONSE, out, (size_t)n, NULL, 16, NULL, NULL), n);
    assert_int_equal(wisp_http_parse_response(out, (size_t)n, 0, NULL, &resp, rh, 16), n);
    assert_int_equal(resp.status, 101);
    assert_int_equal(resp.num_headers, 7);
}

static void test_101_refusals(void **state)
{
    (void)state;
    char out[512];
    assert_int_equal(handle(S(rfc_request)), 0);

    /* subprotocols the client did not offer */
    const char *bad_protos[] = {"Chat", "cha", "chats", "superchat, chat", "chat\r\nX: 1", "v2"};
    for (size_t i = 0; i < sizeof(bad_protos) / sizeof(bad_protos[0]); i++) {
        struct wisp_ws_accept_opts o = {.protocol = bad_protos[i],
                                        .protocol_len = strlen(bad_protos[i])};
        assert_int_equal(wisp_ws_upgrade_accept(&up, &o, out, sizeof(out)), -EINVAL);
    }

    /* header injection through the extensions or extra headers */
    struct wisp_ws_accept_opts e = {.extensions = "x\r\nSet-Cookie: a=b", .extensions_len = 18};
    assert_int_equal(wisp_ws_upgrade_accept(&up, &e, out, sizeof(out)), -EINVAL);
    e.extensions = "x\n";
    e.extensions_len = 2;
    assert_int_equal(wisp_ws_upgrade_accept(&up, &e, out, sizeof(out)), -EINVAL);

    const struct wisp_http_header bad[][1] = {
        {{"X-A", 3, "1\r\nSet-Cookie: evil=1", 22}},
        {{"X-A", 3, "1\r", 2}},
        {{"X-A", 3, "1\n", 2}},
        {{"X-A", 3, "a\0b", 3}},
        {{"X-A\r\nX-B", 8, "1", 1}},
        {{"X A", 3, "1", 1}},
        {{"X-A:", 4, "1", 1}},
        {{"", 0, "1", 1}},
        {{NULL, 0, "1", 1}},
        {{"X-A", 3, NULL, 1}},
        {{"Sec-WebSocket-Accept", 20, "x", 1}},
        {{"sec-websocket-protocol", 22, "chat", 4}},
        {{"Sec-WebSocket-Anything", 22, "x", 1}},
        {{"Upgrade", 7, "h2c", 3}},
        {{"connection", 10, "close", 5}},
        {{"Content-Length", 14, "0", 1}},
        {{"Transfer-Encoding", 17, "chunked", 7}},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct wisp_ws_accept_opts o = {.headers = bad[i], .num_headers = 1};
        if (wisp_ws_upgrade_accept(&up, &o, out, sizeof(out)) != -EINVAL)
            fail_msg("extra header %zu accepted", i);
    }
    struct wisp_ws_accept_opts o = {.headers = NULL, .num_headers = 1};
    assert_int_equal(wisp_ws_upgrade_accept(&up, &o, out, sizeof(out)), -EINVAL);
    /* an empty value and a name that merely starts like a reserved one are fine */
    const struct wisp_http_header ok[] = {{"X-Empty", 7, NULL, 0}, {"Upgraded", 8, "1", 1}};
    o = (struct wisp_ws_accept_opts){.headers = ok, .num_headers = 2};
    assert_true(wisp_ws_upgrade_accept(&up, &o, out, sizeof(out)) > 0);

    /* only an accepted upgrade can be answered */
    assert_int_equal(wisp_ws_upgrade_accept(NULL, NULL, out, sizeof(out)), -EINVAL);
    assert_int_equal(wisp_ws_upgrade_accept(&up, NULL, NULL, sizeof(out)), -EINVAL);
    struct wisp_ws_upgrade zero;
    memset(&zero, 0, sizeof(zero));
    assert_int_equal(wisp_ws_upgrade_accept(&zero, NULL, out, sizeof(out)), -EINVAL);
    assert_int_equal(handle(S(REQ_HEAD HOST UPG CONN KEY "Sec-WebSocket-Version: 8\r\n" END)), 426);
    assert_int_equal(wisp_ws_upgrade_accept(&up, NULL, out, sizeof(out)), -EINVAL);
}

/* Every capacity below the answer's size gives WISP_ENOSPACE and leaves out untouched. */
static void check_enospace(ssize_t (*fn)(char *out, size_t cap), size_t needed)
{
    static char out[4096], fresh[4096];
    memset(fresh, 0xA5, sizeof(fresh));
    for (size_t cap = 0; cap < needed; cap++) {
        memcpy(out, fresh, sizeof(out));
        ssize_t n = fn(out, cap);
        if (n != WISP_ENOSPACE)
            fail_msg("cap %zu of %zu: %zd", cap, needed, n);
        assert_memory_equal(out, fresh, sizeof(out));
    }
    assert_int_equal(fn(out, needed), (ssize_t)needed);
    assert_int_equal(fn(out, sizeof(out)), (ssize_t)needed);
}

static ssize_t write_101(char *out, size_t cap)
{
    const struct wisp_http_header extra[] = {{"X-A", 3, "b", 1}};
    struct wisp_ws_accept_opts o = {.protocol = "chat",
                                    .protocol_len = 4,
                                    .extensions = "permessage-deflate",
                                    .extensions_len = 18,
                                    .headers = extra,
                                    .num_headers = 1};
    return wisp_ws_upgrade_accept(&up, &o, out, cap);
}

static ssize_t write_reject_426(char *out, size_t cap)
{
    return wisp_http_reject(426, out, cap);
}

static ssize_t write_200(char *out, size_t cap)
{
    const struct wisp_http_header extra[] = {{"Cache-Control", 13, "no-store", 8}};
    struct wisp_http_answer a = {.status = 200,
                                 .content_type = "text/html",
                                 .headers = extra,
                                 .num_headers = 1,
                                 .body = "<p>hi</p>",
                                 .body_len = 9};
    return wisp_http_write_response(&a, out, cap);
}

static void test_enospace(void **state)
{
    (void)state;
    char out[512];
    assert_int_equal(handle(S(rfc_request)), 0);
    ssize_t n = write_101(out, sizeof(out));
    assert_true(n > 0);
    check_enospace(write_101, (size_t)n);
    n = write_reject_426(out, sizeof(out));
    assert_true(n > 0);
    check_enospace(write_reject_426, (size_t)n);
    n = write_200(out, sizeof(out));
    assert_true(n > 0);
    check_enospace(write_200, (size_t)n);
}

static void test_reject_exact(void **state)
{
    (void)state;
    char out[512];
    static const char r400[] = "HTTP/1.1 400 Bad Request\r\n"
                               "Content-Type: text/plain; charset=utf-8\r\n"
                               "Content-Length: 12\r\n"
                               "Connection: close\r\n"
                               "\r\n"
                               "Bad Request\n";
    static const char r426[] = "HTTP/1.1 426 Upgrade Required\r\n"
                               "Content-Type: text/plain; charset=utf-8\r\n"
                               "Content-Length: 17\r\n"
                               "Connection: Upgrade, close\r\n"
                               "Upgrade: websocket\r\n"
                               "Sec-WebSocket-Version: 13\r\n"
                               "\r\n"
                               "Upgrade Required\n";
    static const char r405[] = "HTTP/1.1 405 Method Not Allowed\r\n"
                               "Content-Type: text/plain; charset=utf-8\r\n"
                               "Content-Length: 19\r\n"
                               "Connection: close\r\n"
                               "Allow: GET\r\n"
                               "\r\n"
                               "Method Not Allowed\n";
    assert_int_equal(wisp_http_reject(400, out, sizeof(out)), sizeof(r400) - 1);
    assert_memory_equal(out, r400, sizeof(r400) - 1);
    assert_int_equal(wisp_http_reject(426, out, sizeof(out)), sizeof(r426) - 1);
    assert_memory_equal(out, r426, sizeof(r426) - 1);
    assert_int_equal(wisp_http_reject(405, out, sizeof(out)), sizeof(r405) - 1);
    assert_memory_equal(out, r405, sizeof(r405) - 1);

    const int statuses[] = {400, 401, 403, 404, 405, 408, 426, 429, 431, 500, 503, 505, 599};
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        check_reject_answer(statuses[i]);

    assert_int_equal(wisp_http_reject(399, out, sizeof(out)), -EINVAL);
    assert_int_equal(wisp_http_reject(600, out, sizeof(out)), -EINVAL);
    assert_int_equal(wisp_http_reject(200, out, sizeof(out)), -EINVAL);
    assert_int_equal(wisp_http_reject(400, NULL, 100), -EINVAL);
}

static void test_write_response(void **state)
{
    (void)state;
    char out[512];
    static const char ok[] = "HTTP/1.1 200 OK\r\n"
                             "Content-Type: text/html\r\n"
                             "Content-Length: 9\r\n"
                             "Connection: close\r\n"
                             "Cache-Control: no-store\r\n"
                             "\r\n"
                             "<p>hi</p>";
    assert_int_equal(write_200(out, sizeof(out)), sizeof(ok) - 1);
    assert_memory_equal(out, ok, sizeof(ok) - 1);

    static const char nc[] = "HTTP/1.1 204 No Content\r\n"
                             "Connection: close\r\n"
                             "\r\n";
    struct wisp_http_answer a = {.status = 204};
    assert_int_equal(wisp_http_write_response(&a, out, sizeof(out)), sizeof(nc) - 1);
    assert_memory_equal(out, nc, sizeof(nc) - 1);

    static const char empty[] = "HTTP/1.1 404 Not Found\r\n"
                                "Content-Length: 0\r\n"
                                "Connection: close\r\n"
                                "\r\n";
    a = (struct wisp_http_answer){.status = 404};
    assert_int_equal(wisp_http_write_response(&a, out, sizeof(out)), sizeof(empty) - 1);
    assert_memory_equal(out, empty, sizeof(empty) - 1);

    static const char odd[] = "HTTP/1.1 299 Unknown\r\n"
                              "Content-Length: 2\r\n"
                              "Connection: close\r\n"
                              "\r\n"
                              "\0\1";
    a = (struct wisp_http_answer){.status = 299, .body = "\0\1", .body_len = 2};
    assert_int_equal(wisp_http_write_response(&a, out, sizeof(out)), sizeof(odd) - 1);
    assert_memory_equal(out, odd, sizeof(odd) - 1);

    /* refusals */
    a = (struct wisp_http_answer){.status = 204, .body = "x", .body_len = 1};
    assert_int_equal(wisp_http_write_response(&a, out, sizeof(out)), -EINVAL);
    a = (struct wisp_http_answer){.status = 304, .body = "x", .body_len = 1};
    assert_int_equal(wisp_http_write_response(&a, out, sizeof(out)), -EINVAL);
    a = (struct wisp_http_answer){.status = 200, .body = NULL, .body_len = 1};
    assert_int_equal(wisp_http_write_response(&a, out, sizeof(out)), -EINVAL);
    a = (struct wisp_http_answer){.status = 99};
    assert_int_equal(wisp_http_write_response(&a, out, sizeof(out)), -EINVAL);
    a = (struct wisp_http_answer){.status = 1000};
    assert_int_equal(wisp_http_write_response(&a, out, sizeof(out)), -EINVAL);
    a = (struct wisp_http_answer){.status = 200, .content_type = "text/plain\r\nX: 1"};
    assert_int_equal(wisp_http_write_response(&a, out, sizeof(out)), -EINVAL);
    const struct wisp_http_header inj[] = {{"Location", 8, "/a\r\n\r\n<script>", 14}};
    a = (struct wisp_http_answer){.status = 302, .headers = inj, .num_headers = 1};
    assert_int_equal(wisp_http_write_response(&a, out, sizeof(out)), -EINVAL);
    const char *reserved[] = {"Content-Length", "content-type", "CONNECTION", "Transfer-Encoding"};
    for (size_t i = 0; i < 4; i++) {
        const struct wisp_http_header h[] = {{reserved[i], strlen(reserved[i]), "1", 1}};
        a = (struct wisp_http_answer){.status = 200, .headers = h, .num_headers = 1};
        assert_int_equal(wisp_http_write_response(&a, out, sizeof(out)), -EINVAL);
    }
    assert_int_equal(wisp_http_write_response(NULL, out, sizeof(out)), -EINVAL);
    a = (struct wisp_http_answer){.status = 200};
    assert_int_equal(wisp_http_write_response(&a, NULL, 0), -EINVAL);
}

static void test_status_reason(void **state)
{
    (void)state;
    assert_string_equal(wisp_http_status_reason(101), "Switching Protocols");
    assert_string_equal(wisp_http_status_reason(404), "Not Found");
    assert_string_equal(wisp_http_status_reason(426), "Upgrade Required");
    assert_string_equal(wisp_http_status_reason(431), "Request Header Fields Too Large");
    assert_string_equal(wisp_http_status_reason(503), "Service Unavailable");
    assert_string_equal(wisp_http_status_reason(0), "Unknown");
    assert_string_equal(wisp_http_status_reason(-1), "Unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_key),
        cmocka_unit_test(test_rfc_request),
        cmocka_unit_test(test_accept_and_refuse),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_offers),
        cmocka_unit_test(test_check_arguments),
        cmocka_unit_test(test_101_exact),
        cmocka_unit_test(test_101_refusals),
        cmocka_unit_test(test_enospace),
        cmocka_unit_test(test_reject_exact),
        cmocka_unit_test(test_write_response),
        cmocka_unit_test(test_status_reason),
    };
    return cmocka_run_group_tests(tests, split_setup, split_teardown);
}
