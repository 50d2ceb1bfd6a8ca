/* Client side of the opening handshake: the request we write, the response parser, and every
 * way a server's answer can be refused. Responses go through split_check() (whole, every split
 * point, byte by byte, against a guard page). */
#include "http_split.h"

#include <errno.h>
#include <stdlib.h>

#define S(lit) lit, sizeof(lit) - 1

/* RFC 6455 §1.3: the accept value for this key. */
#define KEY    "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static void assert_str(const char *p, size_t n, const char *want)
{
    assert_non_null(p);
    if (n != strlen(want) || memcmp(p, want, n) != 0)
        fail_msg("got \"%.*s\", want \"%s\"", (int)n, p, want);
}

static bool is_base64_16(const char *k)
{
    if (strlen(k) != 24 || strcmp(k + 22, "==") != 0)
        return false;
    for (int i = 0; i < 22; i++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", k[i]))
            return false;
    return true;
}

static const char *const protos[] = {"chat", "superchat"};

static const struct wisp_http_header auth[] = {{"Authorization", 13, "Bearer t0k3n", 12}};

static const struct wisp_ws_client_opts full_opts = {
    .host = "example.com:8080",
    .target = "/chat?room=1",
    .origin = "https://example.com",
    .protocols = protos,
    .num_protocols = 2,
    .extensions = "permessage-deflate; client_max_window_bits",
    .headers = auth,
    .num_headers = 1,
};

static void test_request_bytes(void **state)
{
    (void)state;
    char out[1024], key[WISP_WS_KEY_LEN + 1], want[1024];
    ssize_t n = wisp_ws_client_request(&full_opts, key, out, sizeof(out));
    assert_true(n > 0);
    assert_true(is_base64_16(key));
    int wl = snprintf(want, sizeof(want),
                      "GET /chat?room=1 HTTP/1.1\r\n"
                      "Host: example.com:8080\r\n"
                      "Upgrade: websocket\r\n"
                      "Connection: Upgrade\r\n"
                      "Sec-WebSocket-Key: %s\r\n"
                      "Sec-WebSocket-Version: 13\r\n"
                      "Origin: https://example.com\r\n"
                      "Sec-WebSocket-Protocol: chat, superchat\r\n"
                      "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
                      "Authorization: Bearer t0k3n\r\n"
                      "\r\n",
                      key);
    assert_int_equal(n, wl);
    assert_memory_equal(out, want, (size_t)wl);

    struct wisp_ws_client_opts min = {.host = "h", .target = "/"};
    n = wisp_ws_client_request(&min, key, out, sizeof(out));
    wl = snprintf(want, sizeof(want),
                  "GET / HTTP/1.1\r\n"
                  "Host: h\r\n"
                  "Upgrade: websocket\r\n"
                  "Connection: Upgrade\r\n"
                  "Sec-WebSocket-Key: %s\r\n"
                  "Sec-WebSocket-Version: 13\r\n"
                  "\r\n",
                  key);
    assert_int_equal(n, wl);
    assert_memory_equal(out, want, (size_t)wl);
    /* an empty extensions string offers nothing */
    min.extensions = "";
    assert_int_equal(wisp_ws_client_request(&min, key, out, sizeof(out)), wl);
}

static void test_request_is_accepted_by_server(void **state)
{
    (void)state;
    char out[1024], key[WISP_WS_KEY_LEN + 1];
    ssize_t n = wisp_ws_client_request(&full_opts, key, out, sizeof(out));
    assert_true(n > 0);
    assert_int_equal(split_check(SPLIT_REQUEST, out, (size_t)n, NULL, 64, NULL, NULL), n);

    struct wisp_http_header h[64];
    struct wisp_http_request req;
    struct wisp_ws_upgrade up;
    assert_int_equal(wisp_http_parse_request(out, (size_t)n, 0, NULL, &req, h, 64), n);
    assert_int_equal(wisp_ws_upgrade_check(&req, &up), 0);
    assert_str(up.host, up.host_len, "example.com:8080");
    assert_str(up.path, up.path_len, "/chat");
    assert_str(up.query, up.query_len, "room=1");
    assert_str(up.origin, up.origin_len, "https://example.com");
    assert_str(up.key, up.key_len, key);
    assert_true(wisp_ws_upgrade_offers(&up, S("chat")));
    assert_true(wisp_ws_upgrade_offers(&up, S("superchat")));
}

static void test_keys_differ(void **state)
{
    (void)state;
    char out[512], k1[WISP_WS_KEY_LEN + 1], k2[WISP_WS_KEY_LEN + 1];
    struct wisp_ws_client_opts o = {.host = "h", .target = "/"};
    assert_true(wisp_ws_client_request(&o, k1, out, sizeof(out)) > 0);
    assert_true(wisp_ws_client_request(&o, k2, out, sizeof(out)) > 0);
    assert_true(is_base64_16(k1));
    assert_true(is_base64_16(k2));
    assert_string_not_equal(k1, k2);
}

/* The full exchange, both roles, every byte through the parsers. */
static void test_round_trip(void **state)
{
    (void)state;
    char rq[1024], rs[1024], key[WISP_WS_KEY_LEN + 1];
    struct wisp_http_header qh[64], sh[64];
    struct wisp_http_request req;
    struct wisp_http_response resp;
    struct wisp_ws_upgrade up;
    struct wisp_ws_client_result res;

    ssize_t qn = wisp_ws_client_request(&full_opts, key, rq, sizeof(rq));
    assert_true(qn > 0);
    assert_int_equal(wisp_http_parse_request(rq, (size_t)qn, 0, NULL, &req, qh, 64), qn);
    assert_int_equal(wisp_ws_upgrade_check(&req, &up), 0);
    struct wisp_ws_accept_opts ao = {
        .protocol = "superchat",
        .protocol_len = 9,
        .extensions = "permessage-deflate; client_max_window_bits=10",
        .extensions_len = strlen("permessage-deflate; client_max_window_bits=10"),
    };
    ssize_t sn = wisp_ws_upgrade_accept(&up, &ao, rs, sizeof(rs));
    assert_true(sn > 0);
    /* the server's first frame may arrive with the head */
    memcpy(rs + sn, "\x81\x02hi", 4);
    assert_int_equal(split_check(SPLIT_RESPONSE, rs, (size_t)sn + 4, NULL, 64, NULL, NULL), sn);
    assert_int_equal(wisp_http_parse_response(rs, (size_t)sn + 4, 0, NULL, &resp, sh, 64), sn);
    assert_int_equal(resp.head_len, sn);
    assert_int_equal(wisp_ws_client_check(&resp, &full_opts, key, &res), 0);
    assert_int_equal(res.status, 101);
    assert_string_equal(res.reason, "ok");
    assert_str(res.protocol, res.protocol_len, "superchat");
    assert_str(res.extensions, res.extensions_len, "permessage-deflate; client_max_window_bits=10");

    /* a fresh request has a fresh key: the old answer no longer fits */
    char key2[WISP_WS_KEY_LEN + 1];
    assert_true(wisp_ws_client_request(&full_opts, key2, rq, sizeof(rq)) > 0);
    assert_int_equal(wisp_ws_client_check(&resp, &full_opts, key2, &res), WISP_EHANDSHAKE);
    assert_string_equal(res.reason, "Sec-WebSocket-Accept mismatch");
}

struct answer_case {
    const char *name;
    const char *in;
    size_t len;
    int rc;
    int status;
    const char *reason;   /* expected reason on refusal */
    const char *protocol; /* expected chosen protocol on success, NULL for none */
};

#define OK_HEAD "HTTP/1.1 101 Switching Protocols\r\n"
#define UPG     "Upgrade: websocket\r\n"
#define CONN    "Connection: Upgrade\r\n"
#define ACC     "Sec-WebSocket-Accept: " ACCEPT "\r\n"
#define END     "\r\n"
/* clang-format off */
#define A(n, lit, rc, st, why, proto) {n, lit, sizeof(lit) - 1, rc, st, why, proto}
/* clang-format on */

static const struct answer_case answers[] = {
    A("plain", OK_HEAD UPG CONN ACC END, 0, 101, NULL, NULL),
    A("no reason phrase", "HTTP/1.1 101\r\n" UPG CONN ACC END, 0, 101, NULL, NULL),
    A("empty reason phrase", "HTTP/1.1 101 \r\n" UPG CONN ACC END, 0, 101, NULL, NULL),
    A("lower case",
      "HTTP/1.1 101 switching protocols\r\nupgrade: WebSocket\r\n"
      "connection: upgrade\r\nsec-websocket-accept: " ACCEPT "\r\n\r\n",
      0, 101, NULL, NULL),
    A("Connection list", OK_HEAD UPG "Connection: keep-alive, Upgrade\r\n" ACC END, 0, 101, NULL,
      NULL),
    A("protocol", OK_HEAD UPG CONN ACC "Sec-WebSocket-Protocol: superchat\r\n" END, 0, 101, NULL,
      "superchat"),
    A("extension", OK_HEAD UPG CONN ACC "Sec-WebSocket-Extensions: permessage-deflate\r\n" END, 0,
      101, NULL, NULL),
    A("extension with parameters",
      OK_HEAD UPG CONN ACC
      "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
      "client_max_window_bits=10\r\n" END,
      0, 101, NULL, NULL),
    A("extension name case",
      OK_HEAD UPG CONN ACC "Sec-WebSocket-Extensions: Permessage-Deflate\r\n" END, 0, 101, NULL,
      NULL),
    A("two offered extensions",
      OK_HEAD UPG CONN ACC "Sec-WebSocket-Extensions: x-foo, permessage-deflate\r\n" END, 0, 101,
      NULL, NULL),
    A("extra headers", OK_HEAD "Server: x\r\n" UPG "Date: today\r\n" CONN ACC END, 0, 101, NULL,
      NULL),

    A("403", "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", WISP_EHANDSHAKE, 403,
      "server did not answer 101", NULL),
    A("200", "HTTP/1.1 200 OK\r\n" UPG CONN ACC END, WISP_EHANDSHAKE, 200,
      "server did not answer 101", NULL),
    A("426", "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n\r\n", WISP_EHANDSHAKE,
      426, "server did not answer 101", NULL),
    A("wrong accept", OK_HEAD UPG CONN "Sec-WebSocket-Accept: HSmrc0sMlYUkAGmm5OPpG2HaGWk=\r\n" END,
      WISP_EHANDSHAKE, 101, "Sec-WebSocket-Accept mismatch", NULL),
    A("accept of another case",
      OK_HEAD UPG CONN "Sec-WebSocket-Accept: S3PPLMBITXAQ9KYGZZHZRBK+XOO=\r\n" END,
      WISP_EHANDSHAKE, 101, "Sec-WebSocket-Accept mismatch", NULL),
    A("accept truncated",
      OK_HEAD UPG CONN "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo\r\n" END, WISP_EHANDSHAKE,
      101, "Sec-WebSocket-Accept mismatch", NULL),
    A("accept is the key", OK_HEAD UPG CONN "Sec-WebSocket-Accept: " KEY "\r\n" END,
      WISP_EHANDSHAKE, 101, "Sec-WebSocket-Accept mismatch", NULL),
    A("missing accept", OK_HEAD UPG CONN END, WISP_EHANDSHAKE, 101, "missing Sec-WebSocket-Accept",
      NULL),
    A("duplicate accept", OK_HEAD UPG CONN ACC ACC END, WISP_EHANDSHAKE, 101,
      "duplicate Sec-WebSocket-Accept", NULL),
    A("missing Upgrade", OK_HEAD CONN ACC END, WISP_EHANDSHAKE, 101, "Upgrade is not websocket",
      NULL),
    A("Upgrade h2c", OK_HEAD "Upgrade: h2c\r\n" CONN ACC END, WISP_EHANDSHAKE, 101,
      "Upgrade is not websocket", NULL),
    A("missing Connection", OK_HEAD UPG ACC END, WISP_EHANDSHAKE, 101,
      "Connection does not name upgrade", NULL),
    A("Connection close", OK_HEAD UPG "Connection: close\r\n" ACC END, WISP_EHANDSHAKE, 101,
      "Connection does not name upgrade", NULL),
    A("unoffered protocol", OK_HEAD UPG CONN ACC "Sec-WebSocket-Protocol: v2\r\n" END,
      WISP_EHANDSHAKE, 101, "server chose a subprotocol we did not offer", NULL),
    A("protocol of another case", OK_HEAD UPG CONN ACC "Sec-WebSocket-Protocol: Chat\r\n" END,
      WISP_EHANDSHAKE, 101, "server chose a subprotocol we did not offer", NULL),
    A("protocol list", OK_HEAD UPG CONN ACC "Sec-WebSocket-Protocol: chat, superchat\r\n" END,
      WISP_EHANDSHAKE, 101, "server chose a subprotocol we did not offer", NULL),
    A("empty protocol", OK_HEAD UPG CONN ACC "Sec-WebSocket-Protocol:\r\n" END, WISP_EHANDSHAKE,
      101, "server chose a subprotocol we did not offer", NULL),
    A("duplicate protocol",
      OK_HEAD UPG CONN ACC "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: chat\r\n" END,
      WISP_EHANDSHAKE, 101, "duplicate Sec-WebSocket-Protocol", NULL),
    A("unoffered extension",
      OK_HEAD UPG CONN ACC "Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n" END,
      WISP_EHANDSHAKE, 101, "server chose an extension we did not offer", NULL),
    A("one unoffered extension of two",
      OK_HEAD UPG CONN ACC "Sec-WebSocket-Extensions: permessage-deflate, x-bar\r\n" END,
      WISP_EHANDSHAKE, 101, "server chose an extension we did not offer", NULL),
    A("extension prefix",
      OK_HEAD UPG CONN ACC "Sec-WebSocket-Extensions: permessage-deflatex\r\n" END, WISP_EHANDSHAKE,
      101, "server chose an extension we did not offer", NULL),
    A("duplicate extensions",
      OK_HEAD UPG CONN ACC "Sec-WebSocket-Extensions: permessage-deflate\r\n"
                           "Sec-WebSocket-Extensions: x-foo\r\n" END,
      WISP_EHANDSHAKE, 101, "duplicate Sec-WebSocket-Extensions", NULL),
    A("malformed extension", OK_HEAD UPG CONN ACC "Sec-WebSocket-Extensions: ; x=1\r\n" END,
      WISP_EHANDSHAKE, 101, "malformed Sec-WebSocket-Extensions", NULL),
};

static void test_answers(void **state)
{
    (void)state;
    static const char *const offered[] = {"chat", "superchat"};
    const struct wisp_ws_client_opts o = {
        .host = "h",
        .target = "/",
        .protocols = offered,
        .num_protocols = 2,
        .extensions = "permessage-deflate; client_max_window_bits, x-foo",
    };
    for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
        const struct answer_case *c = &answers[i];
        struct wisp_http_header h[64];
        struct wisp_http_response resp;
        struct wisp_ws_client_result res;
        ssize_t head = split_check(SPLIT_RESPONSE, c->in, c->len, NULL, 64, NULL, NULL);
        if (head != (ssize_t)c->len)
            fail_msg("%s: parse gave %zd", c->name, head);
        assert_int_equal(wisp_http_parse_response(c->in, c->len, 0, NULL, &resp, h, 64), head);
        int rc = wisp_ws_client_check(&resp, &o, KEY, &res);
        if (rc != c->rc)
            fail_msg("%s: rc %d (%s), want %d", c->name, rc, res.reason, c->rc);
        assert_int_equal(res.status, c->status);
        assert_non_null(res.reason);
        if (rc) {
            if (strcmp(res.reason, c->reason) != 0)
                fail_msg("%s: reason \"%s\", want \"%s\"", c->name, res.reason, c->reason);
            assert_null(res.protocol);
            assert_null(res.extensions);
        } else {
            assert_string_equal(res.reason, "ok");
            if (c->protocol)
                assert_str(res.protocol, res.protocol_len, c->protocol);
            else
                assert_null(res.protocol);
        }
    }
}

static void test_nothing_offered(void **state)
{
    (void)state;
    const struct wisp_ws_client_opts o = {.host = "h", .target = "/"};
    struct wisp_http_header h[16];
    struct wisp_http_response resp;
    struct wisp_ws_client_result res;
    static const char proto[] = OK_HEAD UPG CONN ACC "Sec-WebSocket-Protocol: chat\r\n" END;
    static const char ext[] = OK_HEAD UPG CONN ACC "Sec-WebSocket-Extensions: x\r\n" END;
    static const char empty_ext[] = OK_HEAD UPG CONN ACC "Sec-WebSocket-Extensions: \r\n" END;
    assert_int_equal(wisp_http_parse_response(S(proto), 0, NULL, &resp, h, 16), sizeof(proto) - 1);
    assert_int_equal(wisp_ws_client_check(&resp, &o, KEY, &res), WISP_EHANDSHAKE);
    assert_int_equal(wisp_http_parse_response(S(ext), 0, NULL, &resp, h, 16), sizeof(ext) - 1);
    assert_int_equal(wisp_ws_client_check(&resp, &o, KEY, &res), WISP_EHANDSHAKE);
    assert_string_equal(res.reason, "server chose an extension we did not offer");
    /* an empty extensions header agrees to nothing, which is acceptable */
    assert_int_equal(wisp_http_parse_response(S(empty_ext), 0, NULL, &resp, h, 16),
                     sizeof(empty_ext) - 1);
    assert_int_equal(wisp_ws_client_check(&resp, &o, KEY, &res), 0);
    assert_null(res.extensions);
}

static void test_check_arguments(void **state)
{
    (void)state;
    const struct wisp_ws_client_opts o = {.host = "h", .target = "/"};
    struct wisp_http_header h[16];
    struct wisp_http_response resp;
    struct wisp_ws_client_result res;
    static const char ok[] = OK_HEAD UPG CONN ACC END;
    assert_int_equal(wisp_http_parse_response(S(ok), 0, NULL, &resp, h, 16), sizeof(ok) - 1);
    assert_int_equal(wisp_ws_client_check(&resp, &o, KEY, &res), 0);
    assert_int_equal(wisp_ws_client_check(NULL, &o, KEY, &res), -EINVAL);
    assert_int_equal(wisp_ws_client_check(&resp, NULL, KEY, &res), -EINVAL);
    assert_int_equal(wisp_ws_client_check(&resp, &o, NULL, &res), -EINVAL);
    assert_int_equal(wisp_ws_client_check(&resp, &o, KEY, NULL), -EINVAL);
    struct wisp_http_response zero;
    memset(&zero, 0, sizeof(zero));
    assert_int_equal(wisp_ws_client_check(&zero, &o, KEY, &res), -EINVAL);
    assert_int_equal(
        wisp_http_parse_response(S("HTTP/1.1 101 OK\r\nA : b\r\n\r\n"), 0, NULL, &resp, h, 16),
        WISP_EPROTO);
    assert_int_equal(wisp_ws_client_check(&resp, &o, KEY, &res), -EINVAL);
}

static void test_request_refusals(void **state)
{
    (void)state;
    char out[1024], key[WISP_WS_KEY_LEN + 1];
    struct wisp_ws_client_opts o;
    static const char *const bad_hosts[] = {"", "a b", "a\r\nX: 1", "a\tb", "caf\xc3\xa9"};
    static const char *const bad_targets[] = {"",     "chat",       "http://a/",    "/a b",
                                              "/a#b", "/a\r\nX: 1", "/caf\xc3\xa9", "*"};
    static const char *const dup[] = {"chat", "v2", "chat"};
    static const char *const notok[] = {"chat", "a b"};
    static const char *const empty[] = {""};
    static const char *const sep[] = {"a,b"};
    static const char *const null_entry[] = {"chat", NULL};
    static const struct wisp_http_header bad_headers[][1] = {
        {{"X-A", 3, "1\r\nX-B: 2", 9}},
        {{"X-A", 3, "1\n", 2}},
        {{"X-A", 3, "\0", 1}},
        {{"X A", 3, "1", 1}},
        {{"", 0, "1", 1}},
        {{"Host", 4, "evil", 4}},
        {{"origin", 6, "evil", 4}},
        {{"Upgrade", 7, "h2c", 3}},
        {{"Connection", 10, "close", 5}},
        {{"Sec-WebSocket-Key", 17, KEY, 24}},
        {{"sec-websocket-version", 21, "8", 1}},
        {{"Sec-WebSocket-Protocol", 22, "x", 1}},
        {{"Content-Length", 14, "1", 1}},
        {{"Transfer-Encoding", 17, "chunked", 7}},
    };

    memset(key, 'k', sizeof(key));
    for (size_t i = 0; i < sizeof(bad_hosts) / sizeof(bad_hosts[0]); i++) {
        o = (struct wisp_ws_client_opts){.host = bad_hosts[i], .target = "/"};
        assert_int_equal(wisp_ws_client_request(&o, key, out, sizeof(out)), -EINVAL);
    }
    for (size_t i = 0; i < sizeof(bad_targets) / sizeof(bad_targets[0]); i++) {
        o = (struct wisp_ws_client_opts){.host = "h", .target = bad_targets[i]};
        assert_int_equal(wisp_ws_client_request(&o, key, out, sizeof(out)), -EINVAL);
    }
    o = (struct wisp_ws_client_opts){.target = "/"};
    assert_int_equal(wisp_ws_client_request(&o, key, out, sizeof(out)), -EINVAL);
    o = (struct wisp_ws_client_opts){.host = "h"};
    assert_int_equal(wisp_ws_client_request(&o, key, out, sizeof(out)), -EINVAL);
    o = (struct wisp_ws_client_opts){.host = "h", .target = "/", .origin = "http://a\r\nX: 1"};
    assert_int_equal(wisp_ws_client_request(&o, key, out, sizeof(out)), -EINVAL);
    o = (struct wisp_ws_client_opts){.host = "h", .target = "/", .extensions = "a\nb"};
    assert_int_equal(wisp_ws_client_request(&o, key, out, sizeof(out)), -EINVAL);

    const char *const *lists[] = {dup, notok, empty, sep, null_entry, NULL};
    const size_t counts[] = {3, 2, 1, 1, 2, 1};
    for (size_t i = 0; i < 6; i++) {
        o = (struct wisp_ws_client_opts){
            .host = "h", .target = "/", .protocols = lists[i], .num_protocols = counts[i]};
        assert_int_equal(wisp_ws_client_request(&o, key, out, sizeof(out)), -EINVAL);
    }
    for (size_t i = 0; i < sizeof(bad_headers) / sizeof(bad_headers[0]); i++) {
        o = (struct wisp_ws_client_opts){
            .host = "h", .target = "/", .headers = bad_headers[i], .num_headers = 1};
        if (wisp_ws_client_request(&o, key, out, sizeof(out)) != -EINVAL)
            fail_msg("extra header %zu accepted", i);
    }
    o = (struct wisp_ws_client_opts){.host = "h", .target = "/"};
    assert_int_equal(wisp_ws_client_request(NULL, key, out, sizeof(out)), -EINVAL);
    assert_int_equal(wisp_ws_client_request(&o, NULL, out, sizeof(out)), -EINVAL);
    assert_int_equal(wisp_ws_client_request(&o, key, NULL, sizeof(out)), -EINVAL);
    /* the key is written only on success */
    for (size_t i = 0; i < sizeof(key); i++)
        assert_int_equal(key[i], 'k');
    /* IPv6 literals and an empty Origin are fine */
    o = (struct wisp_ws_client_opts){.host = "[::1]:9000", .target = "/", .origin = ""};
    assert_true(wisp_ws_client_request(&o, key, out, sizeof(out)) > 0);
}

static void test_request_enospace(void **state)
{
    (void)state;
    static char out[1024], fresh[1024];
    char key[WISP_WS_KEY_LEN + 1], kfresh[WISP_WS_KEY_LEN + 1];
    ssize_t needed = wisp_ws_client_request(&full_opts, key, out, sizeof(out));
    assert_true(needed > 0);
    memset(fresh, 0x5A, sizeof(fresh));
    memset(kfresh, 'k', sizeof(kfresh));
    for (size_t cap = 0; cap < (size_t)needed; cap++) {
        memcpy(out, fresh, sizeof(out));
        memcpy(key, kfresh, sizeof(key));
        ssize_t n = wisp_ws_client_request(&full_opts, key, out, cap);
        if (n != WISP_ENOSPACE)
            fail_msg("cap %zu of %zd: %zd", cap, needed, n);
        assert_memory_equal(out, fresh, sizeof(out));
        assert_memory_equal(key, kfresh, sizeof(key));
    }
    assert_int_equal(wisp_ws_client_request(&full_opts, key, out, (size_t)needed), needed);
}

struct bad_response {
    const char *name;
    const char *in;
    size_t len;
    ssize_t rc;
    size_t decided; /* 0: at the end of the head */
};

/* clang-format off */
#define BAD(n, lit, rc, d) {n, lit, sizeof(lit) - 1, rc, d}
/* clang-format on */

static const struct bad_response bad_responses[] = {
    BAD("bare LF", "HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\n\n", WISP_EPROTO, 0),
    BAD("bare LF after status", "HTTP/1.1 101 OK\nA: b\r\n\r\n", WISP_EPROTO, 0),
    BAD("HTTP/2.0", "HTTP/2.0 101 OK\r\n\r\n", WISP_EPROTO, 0),
    BAD("lower-case version", "Http/1.1 101 OK\r\n\r\n", WISP_EPROTO, 0),
    BAD("not HTTP", "hTTP/1.1 101 OK\r\n\r\n", WISP_EPROTO, 1),
    BAD("junk", "\x16\x03\x03\x00\x02", WISP_EPROTO, 1),
    BAD("two-digit status", "HTTP/1.1 99 OK\r\n\r\n", WISP_EPROTO, 0),
    BAD("four-digit status", "HTTP/1.1 1011 OK\r\n\r\n", WISP_EPROTO, 0),
    BAD("status 000", "HTTP/1.1 000 OK\r\n\r\n", WISP_EPROTO, 0),
    BAD("letters in status", "HTTP/1.1 1a1 OK\r\n\r\n", WISP_EPROTO, 0),
    BAD("two spaces", "HTTP/1.1  101 OK\r\n\r\n", WISP_EPROTO, 0),
    BAD("no status", "HTTP/1.1\r\n\r\n", WISP_EPROTO, 0),
    BAD("tab separator", "HTTP/1.1\t101 OK\r\n\r\n", WISP_EPROTO, 0),
    BAD("control in reason", "HTTP/1.1 101 O\x01K\r\n\r\n", WISP_EPROTO, 0),
    BAD("obs-fold", "HTTP/1.1 101 OK\r\nA: b\r\n c\r\n\r\n", WISP_EPROTO, 0),
    BAD("space before colon", "HTTP/1.1 101 OK\r\nUpgrade : websocket\r\n\r\n", WISP_EPROTO, 0),
    BAD("NUL in value", "HTTP/1.1 101 OK\r\nA: \0\r\n\r\n", WISP_EPROTO, 0),
};

static void test_response_parser(void **state)
{
    (void)state;
    struct wisp_http_header h[16];
    struct wisp_http_response resp;

    static const char ok[] = "HTTP/1.0 404 Not \x80 Found\t!\r\nA:b\r\n\r\n";
    assert_int_equal(split_check(SPLIT_RESPONSE, S(ok), NULL, 16, NULL, NULL), sizeof(ok) - 1);
    assert_int_equal(wisp_http_parse_response(S(ok), 0, NULL, &resp, h, 16), sizeof(ok) - 1);
    assert_int_equal(resp.minor_version, 0);
    assert_int_equal(resp.status, 404);
    assert_str(resp.reason, resp.reason_len, "Not \x80 Found\t!");
    assert_int_equal(resp.num_headers, 1);
    assert_str(h[0].value, h[0].value_len, "b");
    assert_int_equal(resp.head_len, sizeof(ok) - 1);

    static const char bare[] = "HTTP/1.1 101\r\n\r\n";
    assert_int_equal(wisp_http_parse_response(S(bare), 0, NULL, &resp, h, 16), sizeof(bare) - 1);
    assert_int_equal(resp.reason_len, 0);
    assert_non_null(resp.reason);

    for (size_t i = 0; i < sizeof(bad_responses) / sizeof(bad_responses[0]); i++) {
        const struct bad_response *c = &bad_responses[i];
        size_t decided;
        ssize_t rc = split_check(SPLIT_RESPONSE, c->in, c->len, NULL, 16, NULL, &decided);
        if (rc != c->rc)
            fail_msg("%s: rc %zd, want %zd", c->name, rc, c->rc);
        size_t want = c->decided ? c->decided : c->len;
        if (decided != want)
            fail_msg("%s: decided at %zu, want %zu", c->name, decided, want);
    }

    /* limits: header count and head size */
    static char buf[9000];
    size_t len = (size_t)snprintf(buf, sizeof(buf), "HTTP/1.1 101 OK\r\n");
    for (int i = 0; i < 5; i++)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "X-%d: 1\r\n", i);
    len += (size_t)snprintf(buf + len, sizeof(buf) - len, "\r\n");
    assert_int_equal(split_check(SPLIT_RESPONSE, buf, len, NULL, 4, NULL, NULL), WISP_ELIMIT);
    assert_int_equal(split_check(SPLIT_RESPONSE, buf, len, NULL, 5, NULL, NULL), len);
    struct wisp_http_limits lim;
    wisp_http_limits_init(&lim);
    lim.max_headers = 3;
    assert_int_equal(split_check(SPLIT_RESPONSE, buf, len, &lim, 16, NULL, NULL), WISP_ELIMIT);

    len = (size_t)snprintf(buf, sizeof(buf), "HTTP/1.1 101 OK\r\nX: ");
    memset(buf + len, 'x', 8300 - len);
    size_t decided;
    assert_int_equal(split_check(SPLIT_RESPONSE, buf, 8300, NULL, 16, NULL, &decided), WISP_ELIMIT);
    assert_int_equal(decided, 8192);

    assert_int_equal(wisp_http_parse_response(S(bare), 0, NULL, NULL, h, 16), -EINVAL);
    assert_int_equal(wisp_http_parse_response(S(bare), 99, NULL, &resp, h, 16), -EINVAL);
    assert_int_equal(wisp_http_parse_response(NULL, 1, 0, NULL, &resp, h, 16), -EINVAL);
    assert_int_equal(wisp_http_parse_response(NULL, 0, 0, NULL, &resp, h, 16), WISP_EINCOMPLETE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_bytes),
        cmocka_unit_test(test_request_is_accepted_by_server),
        cmocka_unit_test(test_keys_differ),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_answers),
        cmocka_unit_test(test_nothing_offered),
        cmocka_unit_test(test_check_arguments),
        cmocka_unit_test(test_request_refusals),
        cmocka_unit_test(test_request_enospace),
        cmocka_unit_test(test_response_parser),
    };
    return cmocka_run_group_tests(tests, split_setup, split_teardown);
}
