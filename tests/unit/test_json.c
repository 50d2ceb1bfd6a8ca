/* Unit tests for actors/json.c: the escaper, the strict flat-object reader and the display-name
 * check that the chat and pub/sub modules use.
 *
 * Every input the reader sees is placed right before a guard page (support/guard.h), so reading
 * one byte past the given length faults. Every prefix of the valid inputs is fed too: a
 * truncated object must be refused, never read beyond its end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guard.h"
#include "json.h"

static struct guard_buf guard;

static int setup(void **state)
{
    (void)state;
    guard_init(&guard, 1 << 16);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    guard_free(&guard);
    return 0;
}

/* Run the reader on len bytes placed before the guard page. */
static int get(const void *json, size_t len, struct wjson_field *f, size_t n)
{
    const char *p = (const char *)guard_place(&guard, json, len);
    return wjson_get_fields(p, len, f, n);
}

static int gets_(const char *json, struct wjson_field *f, size_t n)
{
    return get(json, strlen(json), f, n);
}

/* ---- escaping ------------------------------------------------------------------------------ */

static char *escape(const char *s, size_t n, size_t *out_len)
{
    struct wjson_buf b;
    wjson_buf_init(&b, 0);
    assert_true(wjson_put_string(&b, s, n));
    char *p = wjson_buf_take(&b, out_len);
    assert_non_null(p);
    return p;
}

static void check_escape(const char *in, size_t n, const char *want)
{
    size_t len;
    char *got = escape(in, n, &len);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(got, want, len);
    assert_true(len <= wjson_escaped_max(n));
    free(got);
}

static void test_escape_basic(void **state)
{
    (void)state;
    check_escape("", 0, "\"\"");
    check_escape("hello", 5, "\"hello\"");
    check_escape("a\"b\\c/d", 7, "\"a\\\"b\\\\c/d\"");
    check_escape("\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\"");
    check_escape("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\\u007f\"");
    check_escape("\0x", 2, "\"\\u0000x\"");
    check_escape("h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 12,
                 "\"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    check_escape("a\xe2\x80\xa8" "b\xe2\x80\xa9", 8, "\"a\\u2028b\\u2029\"");
    /* A cut U+2028 at the end is copied as it is (never read beyond n). */
    check_escape("a\xe2\x80", 3, "\"a\xe2\x80\"");
}

static void test_escape_worst_case(void **state)
{
    (void)state;
    char in[256];
    for (int i = 0; i < 256; i++)
        in[i] = (char)(i % 32);
    size_t len;
    char *got = escape(in, sizeof in, &len);
    /* Per 32 bytes: \b \t \n \f \r take 2 bytes, the other 27 take 6 (\u00XX). */
    assert_int_equal(len, 8 * (5 * 2 + 27 * 6) + 2);
    free(got);
}

/* Escaping then reading back gives the input for every byte 0-127 and some UTF-8. */
static void test_escape_roundtrip(void **state)
{
    (void)state;
    char in[200];
    size_t n = 0;
    for (int i = 0; i < 128; i++)
        in[n++] = (char)i;
    const char *u = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xe2\x80\xa8\xe2\x80\xa9";
    memcpy(in + n, u, strlen(u));
    n += strlen(u);
    struct wjson_buf b;
    wjson_buf_init(&b, 0);
    wjson_puts(&b, "{\"k\":");
    wjson_put_string(&b, in, n);
    wjson_puts(&b, "}");
    assert_false(b.failed);
    char out[256];
    struct wjson_field f = {.key = "k", .out = out, .cap = sizeof out};
    assert_int_equal(get(b.data, b.len, &f, 1), WJSON_OK);
    assert_true(f.found);
    assert_int_equal(f.len, n);
    assert_memory_equal(out, in, n);
    wjson_buf_reset(&b);
}

static void test_buf_limit(void **state)
{
    (void)state;
    struct wjson_buf b;
    wjson_buf_init(&b, 10);
    assert_true(wjson_puts(&b, "0123456789"));
    assert_false(wjson_put(&b, "x", 1));
    assert_true(b.failed);
    assert_false(wjson_puts(&b, ""));  /* stays failed */
    size_t len = 99;
    assert_null(wjson_buf_take(&b, &len));
    assert_int_equal(len, 0);
    assert_false(b.failed); /* take resets */
    wjson_buf_init(&b, 10);
    assert_false(wjson_put_string(&b, "abcdefghi", 9)); /* 9 bytes may need 56 */
    wjson_buf_reset(&b);
    wjson_buf_init(&b, 0);
    assert_true(wjson_put_u64(&b, 0));
    assert_true(wjson_put(&b, " ", 1));
    assert_true(wjson_put_u64(&b, UINT64_MAX));
    assert_int_equal(b.len, 22);
    assert_memory_equal(b.data, "0 18446744073709551615", 22);
    wjson_buf_reset(&b);
}

/* ---- reading ------------------------------------------------------------------------------- */

static void test_read_fields(void **state)
{
    (void)state;
    char type[16], text[64];
    struct wjson_field f[2] = {
        {.key = "type", .out = type, .cap = sizeof type},
        {.key = "text", .out = text, .cap = sizeof text},
    };
    assert_int_equal(gets_("{\"type\":\"message\",\"text\":\"hi\"}", f, 2), WJSON_OK);
    assert_true(f[0].found && f[1].found);
    assert_string_equal(type, "message");
    assert_string_equal(text, "hi");
    assert_int_equal(f[1].len, 2);

    /* Whitespace everywhere it may be, other keys of every kind skipped, order free. */
    assert_int_equal(gets_(" \t\r\n{ \"n\" : -1.5e+3 , \"text\" :\"a\\u00e9\\ud83d\\ude00\\n\", "
                           "\"o\":{\"a\":[1,true,false,null,{},[]],\"b\":\"\\\"\"},"
                           "\"type\" : \"x\" }\n", f, 2), WJSON_OK);
    assert_string_equal(type, "x");
    assert_string_equal(text, "a\xc3\xa9\xf0\x9f\x98\x80\n");

    /* Missing keys: found stays false; escaped key names match. */
    assert_int_equal(gets_("{}", f, 2), WJSON_OK);
    assert_false(f[0].found || f[1].found);
    assert_int_equal(gets_("{\"t\\u0079pe\":\"m\"}", f, 2), WJSON_OK);
    assert_true(f[0].found);
    assert_string_equal(type, "m");
    assert_false(f[1].found);
    /* A key with a NUL in it does not match. */
    assert_int_equal(gets_("{\"type\\u0000\":\"m\"}", f, 2), WJSON_OK);
    assert_false(f[0].found);
    /* A NUL inside a value is kept, and counted. */
    assert_int_equal(gets_("{\"text\":\"a\\u0000b\"}", f, 2), WJSON_OK);
    assert_int_equal(f[1].len, 3);
    assert_memory_equal(text, "a\0b", 4);
    /* Escapes: all of them. */
    assert_int_equal(gets_("{\"text\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00DF\"}", f, 2),
                     WJSON_OK);
    assert_string_equal(text, "\"\\/\b\f\n\r\tA\xc3\x9f");
}

static void test_read_errors(void **state)
{
    (void)state;
    char type[8], text[8];
    struct wjson_field f[2] = {
        {.key = "type", .out = type, .cap = sizeof type},
        {.key = "text", .out = text, .cap = sizeof text},
    };
    /* Too long for the buffer (cap 8: 7 bytes fit). */
    assert_int_equal(gets_("{\"text\":\"1234567\"}", f, 2), WJSON_OK);
    assert_int_equal(gets_("{\"text\":\"12345678\"}", f, 2), WJSON_ETOOLONG);
    assert_false(f[1].found);
    assert_int_equal(f[1].error, WJSON_ETOOLONG);
    assert_string_equal(text, "");
    /* A 2-byte character that would straddle the end does not fit either. */
    assert_int_equal(gets_("{\"text\":\"123456\\u00e9\"}", f, 2), WJSON_ETOOLONG);
    /* Wrong type, duplicates; precedence EDUP > ETYPE > ETOOLONG. */
    assert_int_equal(gets_("{\"type\":1}", f, 2), WJSON_ETYPE);
    assert_int_equal(f[0].error, WJSON_ETYPE);
    assert_int_equal(gets_("{\"type\":null,\"text\":\"x\"}", f, 2), WJSON_ETYPE);
    assert_true(f[1].found);
    assert_int_equal(gets_("{\"type\":[\"a\"]}", f, 2), WJSON_ETYPE);
    assert_int_equal(gets_("{\"type\":\"a\",\"type\":\"a\"}", f, 2), WJSON_EDUP);
    assert_false(f[0].found);
    assert_int_equal(gets_("{\"text\":\"123456789\",\"type\":{},\"type\":\"a\"}", f, 2),
                     WJSON_EDUP);
    assert_int_equal(gets_("{\"text\":\"123456789\",\"type\":{}}", f, 2), WJSON_ETYPE);
    /* Other keys may repeat. */
    assert_int_equal(gets_("{\"a\":1,\"a\":2}", f, 2), WJSON_OK);
    /* A later syntax error wins over a field error. */
    assert_int_equal(gets_("{\"type\":1,}", f, 2), WJSON_ESYNTAX);
    /* At most WJSON_MAX_FIELDS keys per call. */
    struct wjson_field many[WJSON_MAX_FIELDS + 1];
    char bufs[WJSON_MAX_FIELDS + 1][4];
    for (int i = 0; i <= WJSON_MAX_FIELDS; i++)
        many[i] = (struct wjson_field){.key = "k", .out = bufs[i], .cap = sizeof bufs[i]};
    assert_int_equal(gets_("{}", many, WJSON_MAX_FIELDS), WJSON_OK);
    assert_int_equal(gets_("{}", many, WJSON_MAX_FIELDS + 1), WJSON_ESYNTAX);
}

static const char *const bad_inputs[] = {
    "", " ", "[]", "\"x\"", "1", "null", "{", "}", "{,}", "{\"a\"}", "{\"a\":}", "{\"a\" 1}",
    "{\"a\":1,}", "{\"a\":1 \"b\":2}", "{a:1}", "{'a':1}", "{\"a\":1}}", "{\"a\":1} x",
    "{\"a\":01}", "{\"a\":+1}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":1e}", "{\"a\":-}",
    "{\"a\":0x1}", "{\"a\":tru}", "{\"a\":True}", "{\"a\":nul}", "{\"a\":[1,]}", "{\"a\":[1 2]}",
    "{\"a\":{\"b\"}}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\\u12g4\"}",
    "{\"a\":\"\\ud800\"}", "{\"a\":\"\\ud800x\"}", "{\"a\":\"\\ud800\\u0041\"}",
    "{\"a\":\"\\udc00\"}", "{\"a\":\"\\ud800\\ud800\"}", "{\"a\":\"\t\"}", "{\"a\":\"\n\"}",
    "{\"a\":\"\x01\"}", "{\"a\":\"x}", "{\"a\":\"\\\"}", "/*c*/{}", "{}//",
    "{\"type\":\"a\"", "{\"type\":\"a\",", "{\"type\":\"a\"\"text\":\"b\"}",
};

static const char *const bad_utf8[] = {
    "\x80", "\xbf", "\xc0\x80", "\xc1\xbf", "\xc2", "\xc2\x41", "\xe0\x80\x80", "\xe0\x9f\xbf",
    "\xed\xa0\x80", "\xed\xbf\xbf", "\xe2\x82", "\xf0\x80\x80\x80", "\xf0\x8f\xbf\xbf",
    "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff", "\xfe",
};

static void test_read_malformed(void **state)
{
    (void)state;
    char type[16];
    struct wjson_field f = {.key = "type", .out = type, .cap = sizeof type};
    for (size_t i = 0; i < sizeof bad_inputs / sizeof bad_inputs[0]; i++) {
        int rc = get(bad_inputs[i], strlen(bad_inputs[i]), &f, 1);
        if (rc != WJSON_ESYNTAX)
            fail_msg("accepted bad input %zu: '%s' (rc %d)", i, bad_inputs[i], rc);
    }
    /* Invalid UTF-8, in a value, in a key, in a skipped value. */
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
        char in[64];
        int n[3];
        n[0] = snprintf(in, sizeof in, "{\"type\":\"a%sb\"}", bad_utf8[i]);
        assert_int_equal(get(in, (size_t)n[0], &f, 1), WJSON_ESYNTAX);
        n[1] = snprintf(in, sizeof in, "{\"k%s\":1}", bad_utf8[i]);
        assert_int_equal(get(in, (size_t)n[1], &f, 1), WJSON_ESYNTAX);
        n[2] = snprintf(in, sizeof in, "{\"o\":[\"%s\"]}", bad_utf8[i]);
        assert_int_equal(get(in, (size_t)n[2], &f, 1), WJSON_ESYNTAX);
    }
    /* Good UTF-8 at the edges. */
    const char *good[] = {"\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80", "\xed\x9f\xbf", "\xee\x80\x80",
                          "\xef\xbf\xbf", "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf", "\x7f"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char in[64];
        int n = snprintf(in, sizeof in, "{\"type\":\"%s\"}", good[i]);
        assert_int_equal(get(in, (size_t)n, &f, 1), WJSON_OK);
        assert_string_equal(type, good[i]);
    }
    /* A NUL after the object is part of the input, so it is trailing garbage. */
    assert_int_equal(get("{\"a\":1}", 8, &f, 1), WJSON_ESYNTAX);
    /* NULL with length 0. */
    assert_int_equal(wjson_get_fields(NULL, 0, &f, 1), WJSON_ESYNTAX);
}

static void test_read_depth(void **state)
{
    (void)state;
    char buf[2 * WJSON_MAX_DEPTH + 16];
    struct wjson_field f = {.key = "type", .out = buf, .cap = 1};
    /* The top object is level 1; WJSON_MAX_DEPTH - 1 arrays inside it are fine, one more is
     * refused. */
    for (int extra = 0; extra <= 1; extra++) {
        char in[4 * WJSON_MAX_DEPTH + 16];
        size_t n = 0;
        int levels = WJSON_MAX_DEPTH - 1 + extra;
        n += (size_t)sprintf(in + n, "{\"a\":");
        for (int i = 0; i < levels; i++)
            in[n++] = '[';
        for (int i = 0; i < levels; i++)
            in[n++] = ']';
        in[n++] = '}';
        assert_int_equal(get(in, n, &f, 1), extra ? WJSON_ESYNTAX : WJSON_OK);
    }
    /* Very deep input is refused without deep recursion. */
    size_t n = 60000;
    char *deep = malloc(n);
    assert_non_null(deep);
    deep[0] = '{';
    deep[1] = '"';
    deep[2] = 'a';
    deep[3] = '"';
    deep[4] = ':';
    memset(deep + 5, '[', n - 5);
    assert_int_equal(get(deep, n, &f, 1), WJSON_ESYNTAX);
    free(deep);
}

/* Every strict prefix of a valid object is refused, and reading it never goes past its end. */
static void test_read_truncated(void **state)
{
    (void)state;
    const char *valid[] = {
        "{\"type\":\"message\",\"text\":\"h\\u00e9llo \\ud83d\\ude00 \xe2\x82\xac\"}",
        "{\"a\":[1,-2.5e-3,{\"b\":null,\"c\":[true,false]}],\"type\":\"x\"}  ",
        "{ \"topic\" : \"x/y\" , \"data\" : \"\\\"\\\\\" }",
    };
    char out[64];
    struct wjson_field f[3] = {
        {.key = "type", .out = out, .cap = 16},
        {.key = "text", .out = out + 16, .cap = 32},
        {.key = "topic", .out = out + 48, .cap = 16},
    };
    for (size_t v = 0; v < sizeof valid / sizeof valid[0]; v++) {
        size_t len = strlen(valid[v]);
        size_t end = len;
        while (end > 0 && valid[v][end - 1] == ' ')
            end--;
        assert_int_equal(get(valid[v], len, f, 3), WJSON_OK);
        for (size_t cut = 0; cut < end; cut++)
            if (get(valid[v], cut, f, 3) != WJSON_ESYNTAX)
                fail_msg("prefix of %zu bytes of input %zu accepted", cut, v);
    }
}

/* Random bytes and random mutations of valid objects: no crash, no over-read, and whatever is
 * accepted decodes into valid UTF-8. */
static void test_read_random(void **state)
{
    (void)state;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    const char *base = "{\"type\":\"publish\",\"topic\":\"t\\u00e9\",\"data\":\"a\\nb\","
                       "\"x\":[1,{\"y\":\"\xf0\x9f\x98\x80\"}]}";
    size_t blen = strlen(base);
    char in[256];
    char t1[32], t2[32], t3[32];
    struct wjson_field f[3] = {
        {.key = "type", .out = t1, .cap = sizeof t1},
        {.key = "topic", .out = t2, .cap = sizeof t2},
        {.key = "data", .out = t3, .cap = sizeof t3},
    };
    static const char alphabet[] = "{}[]\",:\\u0123456789abcdefnrtul.-+eE \t\x80\xc3\xe2\xf0";
    for (int iter = 0; iter < 200000; iter++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        size_t n;
        if (iter & 1) {
            n = (size_t)(seed >> 33) % sizeof in;
            for (size_t i = 0; i < n; i++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                in[i] = alphabet[(seed >> 33) % (sizeof alphabet - 1)];
            }
        } else {
            memcpy(in, base, blen);
            n = blen;
            int edits = 1 + (int)((seed >> 40) % 3);
            for (int e = 0; e < edits; e++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                size_t at = (size_t)(seed >> 33) % n;
                in[at] = (char)(seed >> 20);
            }
        }
        int rc = get(in, n, f, 3);
        if (rc == WJSON_ESYNTAX)
            continue;
        for (int k = 0; k < 3; k++) {
            if (!f[k].found)
                continue;
            assert_true(f[k].len < f[k].cap);
            /* Valid UTF-8 (NUL and control characters are allowed in values). */
            struct wjson_buf b;
            wjson_buf_init(&b, 0);
            wjson_puts(&b, "{\"v\":");
            wjson_put_string(&b, f[k].out, f[k].len);
            wjson_puts(&b, "}");
            char back[32];
            struct wjson_field g = {.key = "v", .out = back, .cap = sizeof back};
            assert_int_equal(get(b.data, b.len, &g, 1), WJSON_OK);
            assert_int_equal(g.len, f[k].len);
            assert_memory_equal(back, f[k].out, g.len);
            wjson_buf_reset(&b);
        }
    }
}

static void test_printable(void **state)
{
    (void)state;
    assert_true(wjson_printable_utf8("", 0));
    assert_true(wjson_printable_utf8("alice", 5));
    const char *jq = "J\xc3\xbcrgen \xf0\x9f\x98\x80 #1 \"q\"";
    assert_true(wjson_printable_utf8(jq, strlen(jq)));
    assert_false(wjson_printable_utf8("a\nb", 3));
    assert_false(wjson_printable_utf8("a\0b", 3));
    assert_false(wjson_printable_utf8("\x7f", 1));
    assert_false(wjson_printable_utf8("\xc2\x85", 2));  /* U+0085 NEL */
    assert_false(wjson_printable_utf8("\xc2\x9f", 2));  /* U+009F */
    assert_true(wjson_printable_utf8("\xc2\xa0", 2));   /* U+00A0 */
    assert_false(wjson_printable_utf8("\xe2\x80\xa8", 3));
    assert_false(wjson_printable_utf8("\xe2\x80\xa9", 3));
    assert_false(wjson_printable_utf8("\xc3", 1));
    assert_false(wjson_printable_utf8("\xed\xa0\x80", 3));
    assert_false(wjson_printable_utf8("\xc0\xaf", 2));
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++)
        assert_false(wjson_printable_utf8(bad_utf8[i], strlen(bad_utf8[i])));
}

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(wjson_strerror(WJSON_OK), "ok");
    assert_string_equal(wjson_strerror(WJSON_ESYNTAX), "not a JSON object");
    assert_string_equal(wjson_strerror(WJSON_ETOOLONG), "too long");
    assert_non_null(wjson_strerror(12345));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_basic),
        cmocka_unit_test(test_escape_worst_case),
        cmocka_unit_test(test_escape_roundtrip),
        cmocka_unit_test(test_buf_limit),
        cmocka_unit_test(test_read_fields),
        cmocka_unit_test(test_read_errors),
        cmocka_unit_test(test_read_malformed),
        cmocka_unit_test(test_read_depth),
        cmocka_unit_test(test_read_truncated),
        cmocka_unit_test(test_read_random),
        cmocka_unit_test(test_printable),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
