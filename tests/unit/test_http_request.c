/* The HTTP/1.1 request-head parser: valid heads from real clients, every rejection with its
 * status, the limits, and the header and list helpers. Every input goes through split_check()
 * (whole, every split point, byte by byte, all against a guard page). */
#include "http_split.h"

#include <errno.h>
#include <stdlib.h>

#define S(lit) lit, sizeof(lit) - 1

static const char chrome[] =
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
    "Sec-WebSocket-Protocol: chat, superchat\r\n"
    "\r\n";

static const char python_ws[] = "GET /ws HTTP/1.1\r\n"
                                "Host: 127.0.0.1:8765\r\n"
                                "Upgrade: websocket\r\n"
                                "Connection: Upgrade\r\n"
                                "Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\n"
                                "Sec-WebSocket-Version: 13\r\n"
                                "Sec-WebSocket-Extensions: permessage-deflate; "
                                "client_max_window_bits\r\n"
                                "User-Agent: Python/3.11 websockets/12.0\r\n"
                                "\r\n";

static const char node_ws[] = "GET /echo HTTP/1.1\r\n"
                              "Sec-WebSocket-Version: 13\r\n"
                              "Sec-WebSocket-Key: 5q4cKX0oL2Jk0pYb3Wm4AA==\r\n"
                              "Connection: Upgrade\r\n"
                              "Upgrade: websocket\r\n"
                              "Sec-WebSocket-Extensions: permessage-deflate; "
                              "client_max_window_bits\r\n"
                              "Host: localhost:8080\r\n"
                              "\r\n";

/* One-shot parse with a header array of 64 that the caller inspects. */
static struct wisp_http_header hdrs[64];
static struct wisp_http_request req;

static ssize_t parse(const char *in, size_t len)
{
    return wisp_http_parse_request(in, len, 0, NULL, &req, hdrs, 64);
}

static void assert_str(const char *p, size_t n, const char *want)
{
    assert_non_null(p);
    if (n != strlen(want) || memcmp(p, want, n) != 0)
        fail_msg("got \"%.*s\", want \"%s\"", (int)n, p, want);
}

static void assert_header(const char *name, const char *want)
{
    const struct wisp_http_header *h =
        wisp_http_header_find(req.headers, req.num_headers, name, NULL);
    if (!h)
        fail_msg("header %s missing", name);
    assert_str(h->value, h->value_len, want);
}

static void test_limits_init(void **state)
{
    (void)state;
    struct wisp_http_limits lim = {0, 0};
    assert_int_equal(wisp_http_limits_init(&lim), 0);
    assert_int_equal(lim.max_head_bytes, 8192);
    assert_int_equal(lim.max_headers, 64);
    assert_int_equal(wisp_http_limits_init(NULL), -EINVAL);
}

static void test_browser_request(void **state)
{
    (void)state;
    int status;
    size_t decided;
    ssize_t rc = split_check(SPLIT_REQUEST, S(chrome), NULL, 64, &status, &decided);
    assert_int_equal(rc, sizeof(chrome) - 1);
    assert_int_equal(status, 0);

    assert_int_equal(parse(S(chrome)), sizeof(chrome) - 1);
    assert_str(req.method, req.method_len, "GET");
    assert_str(req.target, req.target_len, "/chat?room=lobby");
    assert_str(req.path, req.path_len, "/chat");
    assert_str(req.query, req.query_len, "room=lobby");
    assert_int_equal(req.minor_version, 1);
    assert_int_equal(req.num_headers, 14);
    assert_int_equal(req.head_len, sizeof(chrome) - 1);
    assert_ptr_equal(req.headers, hdrs);
    assert_str(hdrs[0].name, hdrs[0].name_len, "Host");
    assert_str(hdrs[0].value, hdrs[0].value_len, "example.com:8080");
    assert_str(hdrs[13].name, hdrs[13].name_len, "Sec-WebSocket-Protocol");
    assert_header("cookie", "session=abc123; theme=dark");
    assert_header("SEC-WEBSOCKET-KEY", "dGhlIHNhbXBsZSBub25jZQ==");
    assert_header("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, "
                                "like Gecko) Chrome/120.0.0.0 Safari/537.36");
    /* zero-copy: the strings are inside the input */
    assert_true(req.method == chrome);
    assert_true(hdrs[0].name > chrome && hdrs[0].name < chrome + sizeof(chrome));
}

static void test_library_clients(void **state)
{
    (void)state;
    assert_int_equal(split_check(SPLIT_REQUEST, S(python_ws), NULL, 64, NULL, NULL),
                     sizeof(python_ws) - 1);
    assert_int_equal(parse(S(python_ws)), sizeof(python_ws) - 1);
    assert_str(req.path, req.path_len, "/ws");
    assert_null(req.query);
    assert_int_equal(req.query_len, 0);
    assert_int_equal(req.num_headers, 7);
    assert_header("sec-websocket-extensions", "permessage-deflate; client_max_window_bits");

    assert_int_equal(split_check(SPLIT_REQUEST, S(node_ws), NULL, 64, NULL, NULL),
                     sizeof(node_ws) - 1);
    assert_int_equal(parse(S(node_ws)), sizeof(node_ws) - 1);
    assert_str(req.path, req.path_len, "/echo");
    assert_header("host", "localhost:8080");
}

static void test_target_split(void **state)
{
    (void)state;
    static const char a[] = "GET /a/b?x=1&y=2?z HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_int_equal(split_check(SPLIT_REQUEST, S(a), NULL, 64, NULL, NULL), sizeof(a) - 1);
    assert_int_equal(parse(S(a)), sizeof(a) - 1);
    assert_str(req.path, req.path_len, "/a/b");
    assert_str(req.query, req.query_len, "x=1&y=2?z"); /* split at the first '?' only */

    static const char b[] = "GET /? HTTP/1.1\r\n\r\n";
    assert_int_equal(split_check(SPLIT_REQUEST, S(b), NULL, 64, NULL, NULL), sizeof(b) - 1);
    assert_int_equal(parse(S(b)), sizeof(b) - 1);
    assert_str(req.path, req.path_len, "/");
    assert_non_null(req.query); /* an empty query is not the same as no query */
    assert_int_equal(req.query_len, 0);
    assert_int_equal(req.num_headers, 0);

    static const char c[] = "GET /%7Euser/a%20b;p=1,2@x:y!$&'()*+=~_- HTTP/1.1\r\n\r\n";
    assert_int_equal(split_check(SPLIT_REQUEST, S(c), NULL, 64, NULL, NULL), sizeof(c) - 1);
    assert_int_equal(parse(S(c)), sizeof(c) - 1);
    assert_str(req.path, req.path_len, "/%7Euser/a%20b;p=1,2@x:y!$&'()*+=~_-");
}

static void test_field_values(void **state)
{
    (void)state;
    static const char in[] = "OPTIONS / HTTP/1.1\r\n"
                             "A:  \t padded\t value \t \r\n"
                             "Empty:\r\n"
                             "Blank: \t \r\n"
                             "Tab: a\tb\r\n"
                             "Obs: caf\xc3\xa9 \x80\xff\r\n"
                             "x-lower_case.with!odd#chars: 1\r\n"
                             "\r\n";
    assert_int_equal(split_check(SPLIT_REQUEST, S(in), NULL, 64, NULL, NULL), sizeof(in) - 1);
    assert_int_equal(parse(S(in)), sizeof(in) - 1);
    assert_str(req.method, req.method_len, "OPTIONS");
    assert_int_equal(req.num_headers, 6);
    assert_header("a", "padded\t value");
    assert_header("empty", "");
    assert_header("blank", "");
    assert_header("tab", "a\tb");
    assert_header("obs", "caf\xc3\xa9 \x80\xff");
    assert_header("X-LOWER_CASE.WITH!ODD#CHARS", "1");
    /* an empty value still points into the buffer */
    assert_non_null(wisp_http_header_find(hdrs, req.num_headers, "empty", NULL)->value);
}

static void test_versions(void **state)
{
    (void)state;
    static const char v10[] = "GET / HTTP/1.0\r\n\r\n";
    static const char v19[] = "GET / HTTP/1.9\r\nHost: a\r\n\r\n";
    assert_int_equal(split_check(SPLIT_REQUEST, S(v10), NULL, 64, NULL, NULL), sizeof(v10) - 1);
    assert_int_equal(parse(S(v10)), sizeof(v10) - 1);
    assert_int_equal(req.minor_version, 0);
    assert_int_equal(split_check(SPLIT_REQUEST, S(v19), NULL, 64, NULL, NULL), sizeof(v19) - 1);
    assert_int_equal(parse(S(v19)), sizeof(v19) - 1);
    assert_int_equal(req.minor_version, 9);
}

static void test_bytes_after_head(void **state)
{
    (void)state;
    /* A client may pipeline its first frame behind the head: it is not part of the head. */
    static const char in[] =
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n\x81\x85\x01\x02\x03\x04junk\r\n\r\n";
    size_t head = strlen("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(split_check(SPLIT_REQUEST, S(in), NULL, 64, NULL, NULL), head);
    assert_int_equal(parse(S(in)), head);
    assert_int_equal(req.head_len, head);
}

struct bad_case {
    const char *name;
    const char *in;
    size_t len;
    ssize_t rc;
    int status;
    size_t decided; /* shortest prefix that must already be refused; 0: at the end of the head */
};

/* clang-format off */
#define BAD(n, lit, r, st, d) {n, lit, sizeof(lit) - 1, r, st, d}
/* clang-format on */

static const struct bad_case bad_cases[] = {
    BAD("bare LF everywhere", "GET / HTTP/1.1\nHost: a\n\n", WISP_EPROTO, 400, 0),
    BAD("bare LF after request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("bare LF after a header", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("bare LF at the end", "GET / HTTP/1.1\r\nHost: a\r\n\n", WISP_EPROTO, 400, 0),
    BAD("bare LF ends head early", "GET / HTTP/1.1\r\nHost: a\n\nX: b\r\n\r\n", WISP_EPROTO, 400,
        0),
    BAD("LF CR LF head end", "GET / HTTP/1.1\nHost: a\n\r\n", WISP_EPROTO, 400, 0),
    BAD("bare CR in value", "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("bare CR line end", "GET / HTTP/1.1\r\nX: a\r\rY: b\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("CR in request line", "GET /\r HTTP/1.1\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("tab before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("obs-fold", "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("obs-fold with tab", "GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("whitespace before first header", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", WISP_EPROTO, 400,
        0),
    BAD("NUL in value", "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("NUL in name", "GET / HTTP/1.1\r\nX\0Y: a\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("SOH in value", "GET / HTTP/1.1\r\nX: a\x01\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("ESC in value", "GET / HTTP/1.1\r\nX: \x1b[31m\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("DEL in value", "GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("non-ASCII name", "GET / HTTP/1.1\r\nX\xc3\xa9: a\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("empty name", "GET / HTTP/1.1\r\n: a\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("no colon", "GET / HTTP/1.1\r\nHost a\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("separator in name", "GET / HTTP/1.1\r\nX(y): a\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("method not a token", "GE(T / HTTP/1.1\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("two spaces after method", "GET  / HTTP/1.1\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("two spaces after target", "GET /  HTTP/1.1\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("tab separator", "GET\t/ HTTP/1.1\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("absolute-form", "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("asterisk-form", "OPTIONS * HTTP/1.1\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("authority-form", "CONNECT a:443 HTTP/1.1\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("fragment in target", "GET /a#b HTTP/1.1\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("non-ASCII target", "GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("empty request line", "\r\n\r\n", WISP_EPROTO, 400, 1),
    BAD("no version", "GET /\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("lower-case version", "GET / http/1.1\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("two-digit minor", "GET / HTTP/1.10\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("no minor", "GET / HTTP/1\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("trailing space", "GET / HTTP/1.1 \r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("HTTP/2.0", "GET / HTTP/2.0\r\n\r\n", WISP_EPROTO, 505, 0),
    BAD("HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", WISP_EPROTO, 505, 0),
    BAD("h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", WISP_EPROTO, 400, 0),
    BAD("leading CRLF", "\r\nGET / HTTP/1.1\r\n\r\n", WISP_EPROTO, 400, 1),
    BAD("leading space", " GET / HTTP/1.1\r\n\r\n", WISP_EPROTO, 400, 1),
    BAD("TLS client hello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", WISP_EPROTO, 400, 1),
    BAD("NUL first", "\0GET / HTTP/1.1\r\n\r\n", WISP_EPROTO, 400, 1),
};

static void test_malformed(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        int status;
        size_t decided;
        ssize_t rc = split_check(SPLIT_REQUEST, c->in, c->len, NULL, 64, &status, &decided);
        if (rc != c->rc || status != c->status)
            fail_msg("%s: rc %zd status %d, want %zd %d", c->name, rc, status, c->rc, c->status);
        /* Refused as soon as the (possibly LF-only) end of head is there, not later. */
        size_t want = c->decided;
        if (!want) {
            const char *end = memmem(c->in, c->len, "\n\r\n", 3);
            const char *lflf = memmem(c->in, c->len, "\n\n", 2);
            want = end ? (size_t)(end - c->in) + 3 : c->len;
            if (lflf && (size_t)(lflf - c->in) + 2 < want)
                want = (size_t)(lflf - c->in) + 2;
        }
        if (decided != want)
            fail_msg("%s: decided at %zu, want %zu", c->name, decided, want);
    }
}

static void test_incomplete(void **state)
{
    (void)state;
    int status;
    size_t decided;
    /* a head that has not ended is never refused or accepted, however it is split */
    assert_int_equal(
        split_check(SPLIT_REQUEST, S("GET / HTTP/1.1\r\nHost: a\r\n"), NULL, 64, &status, &decided),
        WISP_EINCOMPLETE);
    assert_int_equal(status, 0);
    assert_int_equal(decided, sizeof("GET / HTTP/1.1\r\nHost: a\r\n"));
    assert_int_equal(
        split_check(SPLIT_REQUEST, S("GET / HTTP/1.1\r\nX: \0\r\r"), NULL, 64, &status, NULL),
        WISP_EINCOMPLETE);
    assert_int_equal(parse("", 0), WISP_EINCOMPLETE);
    assert_int_equal(parse(NULL, 0), WISP_EINCOMPLETE);
}

/* A request with n headers "Xk: v". */
static size_t many_headers(char *buf, size_t cap, size_t n)
{
    size_t len = (size_t)snprintf(buf, cap, "GET / HTTP/1.1\r\n");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "X%zu: v\r\n", i);
    len += (size_t)snprintf(buf + len, cap - len, "\r\n");
    assert_true(len < cap);
    return len;
}

static void test_header_count_limit(void **state)
{
    (void)state;
    static char buf[4096];
    int status;
    size_t len = many_headers(buf, sizeof(buf), 64);
    assert_int_equal(split_check(SPLIT_REQUEST, buf, len, NULL, 64, &status, NULL), len);
    /* more slots than the limit: the limit still rules */
    len = many_headers(buf, sizeof(buf), 65);
    assert_int_equal(split_check(SPLIT_REQUEST, buf, len, NULL, 100, &status, NULL), WISP_ELIMIT);
    assert_int_equal(status, 431);
    /* fewer slots than the limit: the array rules */
    len = many_headers(buf, sizeof(buf), 5);
    assert_int_equal(split_check(SPLIT_REQUEST, buf, len, NULL, 4, &status, NULL), WISP_ELIMIT);
    assert_int_equal(status, 431);
    assert_int_equal(split_check(SPLIT_REQUEST, buf, len, NULL, 5, &status, NULL), len);
    assert_int_equal(
        split_check(SPLIT_REQUEST, S("GET / HTTP/1.1\r\nA: b\r\n\r\n"), NULL, 0, &status, NULL),
        WISP_ELIMIT);
    assert_int_equal(status, 431);
    /* a custom limit */
    struct wisp_http_limits lim;
    wisp_http_limits_init(&lim);
    lim.max_headers = 2;
    len = many_headers(buf, sizeof(buf), 3);
    assert_int_equal(split_check(SPLIT_REQUEST, buf, len, &lim, 64, &status, NULL), WISP_ELIMIT);
    assert_int_equal(status, 431);
    len = many_headers(buf, sizeof(buf), 2);
    assert_int_equal(split_check(SPLIT_REQUEST, buf, len, &lim, 64, &status, NULL), len);
}

/* A head of exactly total bytes: one long header, padded to size. */
static size_t sized_head(char *buf, size_t total, bool terminate)
{
    static const char start[] = "GET / HTTP/1.1\r\nX: ";
    size_t fixed = sizeof(start) - 1 + (terminate ? 4 : 0);
    assert_true(total > fixed);
    memcpy(buf, start, sizeof(start) - 1);
    memset(buf + sizeof(start) - 1, 'a', total - fixed);
    if (terminate)
        memcpy(buf + total - 4, "\r\n\r\n", 4);
    return total;
}

static void test_head_size_limit(void **state)
{
    (void)state;
    static char buf[9000];
    int status;
    size_t decided;

    /* exactly the limit is fine */
    size_t len = sized_head(buf, 8192, true);
    assert_int_equal(split_check(SPLIT_REQUEST, buf, len, NULL, 64, &status, NULL), 8192);
    /* one more byte is not */
    len = sized_head(buf, 8193, true);
    assert_int_equal(split_check(SPLIT_REQUEST, buf, len, NULL, 64, &status, &decided),
                     WISP_ELIMIT);
    assert_int_equal(status, 431);
    assert_int_equal(decided, 8192);
    /* no end at all: refused once 8192 bytes are there, not waited on forever */
    len = sized_head(buf, 8500, false);
    assert_int_equal(split_check(SPLIT_REQUEST, buf, len, NULL, 64, &status, &decided),
                     WISP_ELIMIT);
    assert_int_equal(status, 431);
    assert_int_equal(decided, 8192);
    /* an end that straddles the limit */
    len = sized_head(buf, 8194, true);
    assert_int_equal(split_check(SPLIT_REQUEST, buf, len, NULL, 64, &status, &decided),
                     WISP_ELIMIT);
    assert_int_equal(decided, 8192);

    struct wisp_http_limits lim;
    wisp_http_limits_init(&lim);
    lim.max_head_bytes = 40;
    len = sized_head(buf, 40, true);
    assert_int_equal(split_check(SPLIT_REQUEST, buf, len, &lim, 64, &status, NULL), 40);
    len = sized_head(buf, 60, true);
    assert_int_equal(split_check(SPLIT_REQUEST, buf, len, &lim, 64, &status, &decided),
                     WISP_ELIMIT);
    assert_int_equal(decided, 40);
    assert_int_equal(status, 431);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    assert_int_equal(wisp_http_parse_request(S("GET"), 0, NULL, NULL, hdrs, 64), -EINVAL);
    assert_int_equal(wisp_http_parse_request(NULL, 3, 0, NULL, &req, hdrs, 64), -EINVAL);
    assert_int_equal(wisp_http_parse_request(S("GET"), 4, NULL, &req, hdrs, 64), -EINVAL);
    assert_int_equal(wisp_http_parse_request(S("GET"), 0, NULL, &req, NULL, 64), -EINVAL);
    /* no header slots is allowed: a request without headers still parses */
    assert_int_equal(wisp_http_parse_request(S("GET / HTTP/1.1\r\n\r\n"), 0, NULL, &req, NULL, 0),
                     18);
}

static void test_header_find(void **state)
{
    (void)state;
    static const char in[] = "GET / HTTP/1.1\r\n"
                             "Sec-WebSocket-Protocol: a\r\n"
                             "Host: h\r\n"
                             "sec-websocket-protocol: b, c\r\n"
                             "SEC-WEBSOCKET-PROTOCOL: d\r\n"
                             "Sec-WebSocket-Protocol-X: no\r\n"
                             "\r\n";
    assert_int_equal(parse(S(in)), sizeof(in) - 1);
    size_t pos = 0;
    const struct wisp_http_header *h;
    const char *want[] = {"a", "b, c", "d"};
    size_t n = 0;
    while ((h = wisp_http_header_find(hdrs, req.num_headers, "Sec-WebSocket-Protocol", &pos))) {
        assert_true(n < 3);
        assert_str(h->value, h->value_len, want[n++]);
    }
    assert_int_equal(n, 3);
    assert_int_equal(pos, req.num_headers);
    assert_int_equal(wisp_http_header_count(hdrs, req.num_headers, "sec-websocket-protocol"), 3);
    assert_int_equal(wisp_http_header_count(hdrs, req.num_headers, "HOST"), 1);
    assert_int_equal(wisp_http_header_count(hdrs, req.num_headers, "Hos"), 0);
    assert_int_equal(wisp_http_header_count(hdrs, req.num_headers, "Hostt"), 0);
    assert_null(wisp_http_header_find(hdrs, req.num_headers, "origin", NULL));
    assert_null(wisp_http_header_find(NULL, 0, "host", NULL));
    assert_null(wisp_http_header_find(hdrs, req.num_headers, NULL, NULL));
    h = wisp_http_header_find(hdrs, req.num_headers, "host", NULL);
    assert_ptr_equal(h, &hdrs[1]);
}

/* Collect the elements of a list as "a|b|c". */
static const char *tokens(const char *list)
{
    static char out[256];
    size_t pos = 0, used = 0, n;
    const char *item;
    out[0] = 0;
    while (wisp_http_token_next(list, strlen(list), &pos, &item, &n)) {
        assert_true(n > 0);
        used += (size_t)snprintf(out + used, sizeof(out) - used, "%s%.*s", used ? "|" : "", (int)n,
                                 item);
    }
    assert_int_equal(pos, strlen(list));
    /* exhausted stays exhausted */
    assert_false(wisp_http_token_next(list, strlen(list), &pos, &item, &n));
    return out;
}

static void test_token_next(void **state)
{
    (void)state;
    assert_string_equal(tokens("keep-alive, Upgrade"), "keep-alive|Upgrade");
    assert_string_equal(tokens("Upgrade"), "Upgrade");
    assert_string_equal(tokens(""), "");
    assert_string_equal(tokens(" \t "), "");
    assert_string_equal(tokens(",,, ,"), "");
    assert_string_equal(tokens(" , a ,, b\t,c , "), "a|b|c");
    assert_string_equal(tokens("permessage-deflate; client_max_window_bits, x-webkit"),
                        "permessage-deflate; client_max_window_bits|x-webkit");
    assert_string_equal(tokens("a; p=\"x, y\", b"), "a; p=\"x, y\"|b");
    assert_string_equal(tokens("a; p=\"x\\\", y\", b"), "a; p=\"x\\\", y\"|b");
    assert_string_equal(tokens("a; p=\"unterminated, b"), "a; p=\"unterminated, b");
    assert_string_equal(tokens("\"\\"), "\"\\");
    assert_string_equal(tokens("a b , c"), "a b|c");

    size_t pos = 0, n;
    const char *item;
    assert_false(wisp_http_token_next(NULL, 3, &pos, &item, &n));
    assert_false(wisp_http_token_next("a", 1, NULL, &item, &n));
    pos = 5;
    assert_false(wisp_http_token_next("a", 1, &pos, &item, &n));
    /* only len bytes are read */
    pos = 0;
    assert_true(wisp_http_token_next("ab,cd", 1, &pos, &item, &n));
    assert_int_equal(n, 1);
}

static void test_list_iter(void **state)
{
    (void)state;
    static const char in[] = "GET / HTTP/1.1\r\n"
                             "Connection: keep-alive\r\n"
                             "Upgrade: h2c\r\n"
                             "Connection: ,\r\n"
                             "connection: Upgrade , x\r\n"
                             "Upgrade: WebSocket\r\n"
                             "\r\n";
    assert_int_equal(parse(S(in)), sizeof(in) - 1);
    struct wisp_http_list_iter it;
    const char *item;
    size_t n;
    const char *want[] = {"keep-alive", "Upgrade", "x"};
    size_t i = 0;
    wisp_http_list_begin(&it, hdrs, req.num_headers, "Connection");
    while (wisp_http_list_next(&it, &item, &n)) {
        assert_true(i < 3);
        assert_str(item, n, want[i++]);
    }
    assert_int_equal(i, 3);
    assert_false(wisp_http_list_next(&it, &item, &n));
    assert_true(wisp_http_list_has(hdrs, req.num_headers, "connection", "upgrade"));
    assert_true(wisp_http_list_has(hdrs, req.num_headers, "CONNECTION", "KEEP-ALIVE"));
    assert_false(wisp_http_list_has(hdrs, req.num_headers, "connection", "upgrad"));
    assert_true(wisp_http_list_has(hdrs, req.num_headers, "upgrade", "websocket"));
    assert_false(wisp_http_list_has(hdrs, req.num_headers, "origin", "x"));
    wisp_http_list_begin(&it, NULL, 5, "connection");
    assert_false(wisp_http_list_next(&it, &item, &n));
}

int main(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits_init),
        cmocka_unit_test(test_browser_request),
        cmocka_unit_test(test_library_clients),
        cmocka_unit_test(test_target_split),
        cmocka_unit_test(test_field_values),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_bytes_after_head),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_incomplete),
        cmocka_unit_test(test_header_count_limit),
        cmocka_unit_test(test_head_size_limit),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_header_find),
        cmocka_unit_test(test_token_next),
        cmocka_unit_test(test_list_iter),
    };
    /* clang-format on */
    return cmocka_run_group_tests(tests, split_setup, split_teardown);
}
