/* The receive side of the engine: RFC 6455 examples, length encodings, every framing rule
 * with its close code, limits, UTF-8, streaming and zero-copy delivery. Every input is run
 * whole, split at every byte and one byte at a time, each chunk against a guard page. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <wisp/ws.h>

#include "ws_feed.h"

static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};

static struct wisp_ws_config server_cfg(void)
{
    struct wisp_ws_config c;
    wisp_ws_config_init(&c, WISP_WS_SERVER);
    return c;
}

static struct wisp_ws_config client_cfg(void)
{
    struct wisp_ws_config c;
    wisp_ws_config_init(&c, WISP_WS_CLIENT);
    return c;
}

/* Run input through every chunking and expect exactly one fault of this kind. */
static void expect_fault(const struct wisp_ws_config *cfg, const uint8_t *in, size_t len,
                         enum wisp_ws_fault fault, size_t events_before)
{
    struct transcript t;
    feed_all_splits(cfg, in, len, &t);
    assert_int_equal(t.n, events_before + 1);
    assert_int_equal(t.ev[events_before].type, WISP_WS_EV_FAULT);
    assert_int_equal(t.ev[events_before].fault, fault);
    assert_int_equal(t.ev[events_before].close_code, wisp_ws_fault_code(fault));
    transcript_free(&t);
}

static void expect_message(const struct transcript *t, size_t i, enum wisp_ws_opcode op,
                           const void *data, size_t len)
{
    assert_true(i < t->n);
    assert_int_equal(t->ev[i].type, WISP_WS_EV_MESSAGE);
    assert_int_equal(t->ev[i].opcode, op);
    assert_int_equal(t->ev[i].len, len);
    assert_memory_equal(t->ev[i].data, data, len);
}

/* RFC 6455 §5.7, the five examples, byte for byte. */
static void test_rfc_examples(void **state)
{
    struct wisp_ws_config cli = client_cfg(), srv = server_cfg();
    struct transcript t;

    static const uint8_t unmasked_hello[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    feed_all_splits(&cli, unmasked_hello, sizeof unmasked_hello, &t);
    assert_int_equal(t.n, 1);
    expect_message(&t, 0, WISP_WS_OP_TEXT, "Hello", 5);
    transcript_free(&t);

    static const uint8_t masked_hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                           0x7f, 0x9f, 0x4d, 0x51, 0x58};
    feed_all_splits(&srv, masked_hello, sizeof masked_hello, &t);
    assert_int_equal(t.n, 1);
    expect_message(&t, 0, WISP_WS_OP_TEXT, "Hello", 5);
    transcript_free(&t);

    static const uint8_t fragmented[] = {0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f};
    feed_all_splits(&cli, fragmented, sizeof fragmented, &t);
    assert_int_equal(t.n, 1);
    expect_message(&t, 0, WISP_WS_OP_TEXT, "Hello", 5);
    transcript_free(&t);

    static const uint8_t ping[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    feed_all_splits(&cli, ping, sizeof ping, &t);
    assert_int_equal(t.n, 1);
    assert_int_equal(t.ev[0].type, WISP_WS_EV_PING);
    assert_memory_equal(t.ev[0].data, "Hello", 5);
    transcript_free(&t);

    static const uint8_t pong[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                   0x7f, 0x9f, 0x4d, 0x51, 0x58};
    feed_all_splits(&srv, pong, sizeof pong, &t);
    assert_int_equal(t.n, 1);
    assert_int_equal(t.ev[0].type, WISP_WS_EV_PONG);
    assert_int_equal(t.ev[0].len, 5);
    assert_memory_equal(t.ev[0].data, "Hello", 5);
    transcript_free(&t);

    /* 256 bytes and 64 KiB binary in single unmasked frames: the 16- and 64-bit lengths. */
    uint8_t *big = malloc(65536 + 10);
    big[0] = 0x82;
    big[1] = 0x7E;
    big[2] = 0x01;
    big[3] = 0x00;
    for (int i = 0; i < 256; i++)
        big[4 + i] = (uint8_t)i;
    feed_chunks(&cli, big, 260, NULL, 0, &t);
    expect_message(&t, 0, WISP_WS_OP_BINARY, big + 4, 256);
    transcript_free(&t);

    static const uint8_t h64k[] = {0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0};
    memcpy(big, h64k, 10);
    for (int i = 0; i < 65536; i++)
        big[10 + i] = (uint8_t)(i * 7);
    feed_chunks(&cli, big, 65546, NULL, 0, &t);
    assert_int_equal(t.n, 1);
    expect_message(&t, 0, WISP_WS_OP_BINARY, big + 10, 65536);
    transcript_free(&t);
    size_t cuts[] = {3, 9, 11, 40000};
    feed_chunks(&cli, big, 65546, cuts, 4, &t);
    assert_int_equal(t.n, 1);
    expect_message(&t, 0, WISP_WS_OP_BINARY, big + 10, 65536);
    transcript_free(&t);
    free(big);
}

/* Each length at the edge of an encoding, sent with the minimal encoding, round-trips. */
static void test_length_edges(void **state)
{
    static const size_t lens[] = {0, 1, 125, 126, 127, 65535, 65536, 70000};
    struct wisp_ws_config srv = server_cfg();
    uint8_t *payload = malloc(70000), *frame = malloc(70000 + 14);
    for (size_t i = 0; i < 70000; i++)
        payload[i] = (uint8_t)(i * 31 + 7);
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t n = make_frame(frame, true, 0, WISP_WS_OP_BINARY, key, payload, lens[i]);
        struct transcript t;
        if (lens[i] <= 300) {
            feed_all_splits(&srv, frame, n, &t);
        } else {
            size_t cuts[] = {1, 2, 5, 9, 13, 14, n / 2, n - 1};
            feed_chunks(&srv, frame, n, cuts, 8, &t);
        }
        assert_int_equal(t.n, 1);
        expect_message(&t, 0, WISP_WS_OP_BINARY, payload, lens[i]);
        transcript_free(&t);
    }
    free(payload);
    free(frame);
}

static void test_non_minimal_lengths(void **state)
{
    struct wisp_ws_config srv = server_cfg();
    /* 125 bytes announced with the 16-bit form */
    uint8_t f16[4 + 4 + 125] = {0x82, 0xFE, 0x00, 125, 1, 2, 3, 4};
    expect_fault(&srv, f16, sizeof f16, WISP_WS_FAULT_LENGTH_ENCODING, 0);
    /* 65535 bytes announced with the 64-bit form: fails at the header, no payload needed */
    uint8_t f64[] = {0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 1, 2, 3, 4};
    expect_fault(&srv, f64, sizeof f64, WISP_WS_FAULT_LENGTH_ENCODING, 0);
    /* zero in the 16-bit form */
    uint8_t z16[] = {0x82, 0xFE, 0, 0, 1, 2, 3, 4};
    expect_fault(&srv, z16, sizeof z16, WISP_WS_FAULT_LENGTH_ENCODING, 0);
    /* 64-bit length with the top bit set */
    uint8_t top[] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
    expect_fault(&srv, top, sizeof top, WISP_WS_FAULT_LENGTH_ENCODING, 0);
    /* the largest legal 64-bit length is refused by the frame cap, at the header */
    uint8_t huge[] = {0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4};
    expect_fault(&srv, huge, sizeof huge, WISP_WS_FAULT_FRAME_TOO_BIG, 0);
}

static void test_rsv_bits(void **state)
{
    struct wisp_ws_config srv = server_cfg();
    uint8_t f[32];
    static const uint8_t bits[] = {WISP_WS_RSV1, WISP_WS_RSV2, WISP_WS_RSV3};
    for (size_t i = 0; i < 3; i++) {
        size_t n = make_frame(f, true, bits[i], WISP_WS_OP_TEXT, key, "hi", 2);
        expect_fault(&srv, f, n, WISP_WS_FAULT_RSV, 0);
        n = make_frame(f, true, bits[i], WISP_WS_OP_PING, key, "", 0);
        expect_fault(&srv, f, n, WISP_WS_FAULT_RSV, 0);
    }

    /* An extension that claims RSV1 may set it on a message's first frame only. */
    struct wisp_ws ws;
    wisp_ws_init(&ws, &srv);
    assert_int_equal(wisp_ws_claim_rsv(&ws, 0x01), -EINVAL);
    assert_int_equal(wisp_ws_claim_rsv(&ws, WISP_WS_RSV1), 0);
    size_t n = make_frame(f, false, WISP_WS_RSV1, WISP_WS_OP_TEXT, key, "\xff\xfe", 2);
    n += make_frame(f + n, true, 0, WISP_WS_OP_CONTINUATION, key, "\x01", 1);
    struct wisp_ws_event ev;
    size_t off = 0;
    while (off < n) {
        ssize_t used = wisp_ws_recv(&ws, f + off, n - off, &ev);
        off += (size_t)used;
        if (ev.type != WISP_WS_EV_NONE)
            break;
    }
    /* compressed bytes are not UTF-8-checked by the engine: the extension checks them */
    assert_int_equal(ev.type, WISP_WS_EV_MESSAGE);
    assert_int_equal(ev.rsv, WISP_WS_RSV1);
    assert_int_equal(ev.len, 3);
    /* RSV1 on a continuation stays an error even when claimed */
    n = make_frame(f, false, 0, WISP_WS_OP_BINARY, key, "a", 1);
    n += make_frame(f + n, true, WISP_WS_RSV1, WISP_WS_OP_CONTINUATION, key, "b", 1);
    off = 0;
    while (off < n && (off += (size_t)wisp_ws_recv(&ws, f + off, n - off, &ev)) &&
           ev.type == WISP_WS_EV_NONE)
        ;
    assert_int_equal(ev.type, WISP_WS_EV_FAULT);
    assert_int_equal(ev.fault, WISP_WS_FAULT_RSV);
    wisp_ws_deinit(&ws);

    /* A frame that reports nothing leaves no trace in the next event of the same call: a
     * close right behind an unfinished RSV1 message has rsv 0 (found by fuzz_frame). */
    wisp_ws_init(&ws, &srv);
    wisp_ws_claim_rsv(&ws, WISP_WS_RSV1);
    n = make_frame(f, false, WISP_WS_RSV1, WISP_WS_OP_BINARY, key, "abcd", 4);
    n += make_frame(f + n, true, 0, WISP_WS_OP_CLOSE, key, "", 0);
    assert_int_equal(wisp_ws_recv(&ws, f, n, &ev), (ssize_t)n);
    assert_int_equal(ev.type, WISP_WS_EV_CLOSE);
    assert_int_equal(ev.rsv, 0);
    assert_int_equal(ev.opcode, WISP_WS_OP_CLOSE);
    wisp_ws_deinit(&ws);
}

static void test_reserved_opcodes(void **state)
{
    struct wisp_ws_config srv = server_cfg();
    static const unsigned ops[] = {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF};
    uint8_t f[16];
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        size_t n = make_frame(f, true, 0, ops[i], key, "x", 1);
        expect_fault(&srv, f, n, WISP_WS_FAULT_OPCODE, 0);
    }
}

static void test_control_rules(void **state)
{
    struct wisp_ws_config srv = server_cfg();
    uint8_t f[300], payload[126];
    memset(payload, 'p', sizeof payload);

    size_t n = make_frame(f, true, 0, WISP_WS_OP_PING, key, payload, 125);
    struct transcript t;
    feed_all_splits(&srv, f, n, &t);
    assert_int_equal(t.n, 1);
    assert_int_equal(t.ev[0].type, WISP_WS_EV_PING);
    assert_int_equal(t.ev[0].len, 125);
    assert_memory_equal(t.ev[0].data, payload, 125);
    transcript_free(&t);

    n = make_frame(f, true, 0, WISP_WS_OP_PING, key, payload, 126);
    expect_fault(&srv, f, n, WISP_WS_FAULT_CONTROL_TOO_LONG, 0);
    n = make_frame(f, false, 0, WISP_WS_OP_PING, key, "x", 1);
    expect_fault(&srv, f, n, WISP_WS_FAULT_CONTROL_FRAGMENTED, 0);
    n = make_frame(f, false, 0, WISP_WS_OP_PONG, key, "", 0);
    expect_fault(&srv, f, n, WISP_WS_FAULT_CONTROL_FRAGMENTED, 0);
    n = make_frame(f, false, 0, WISP_WS_OP_CLOSE, key, "", 0);
    expect_fault(&srv, f, n, WISP_WS_FAULT_CONTROL_FRAGMENTED, 0);
}

static void test_continuation_rules(void **state)
{
    struct wisp_ws_config srv = server_cfg();
    uint8_t f[256];
    size_t n = make_frame(f, true, 0, WISP_WS_OP_CONTINUATION, key, "x", 1);
    expect_fault(&srv, f, n, WISP_WS_FAULT_UNEXPECTED_CONTINUATION, 0);

    n = make_frame(f, false, 0, WISP_WS_OP_TEXT, key, "a", 1);
    n += make_frame(f + n, true, 0, WISP_WS_OP_TEXT, key, "b", 1);
    expect_fault(&srv, f, n, WISP_WS_FAULT_EXPECTED_CONTINUATION, 0);

    /* A message that ended does not leave a continuation open. */
    n = make_frame(f, false, 0, WISP_WS_OP_BINARY, key, "a", 1);
    n += make_frame(f + n, true, 0, WISP_WS_OP_CONTINUATION, key, "b", 1);
    n += make_frame(f + n, true, 0, WISP_WS_OP_CONTINUATION, key, "c", 1);
    expect_fault(&srv, f, n, WISP_WS_FAULT_UNEXPECTED_CONTINUATION, 1);

    /* Control frames may sit between fragments; the message still arrives whole. */
    n = make_frame(f, false, 0, WISP_WS_OP_TEXT, key, "fra", 3);
    n += make_frame(f + n, true, 0, WISP_WS_OP_PING, key, "p1", 2);
    n += make_frame(f + n, false, 0, WISP_WS_OP_CONTINUATION, key, "gme", 3);
    n += make_frame(f + n, true, 0, WISP_WS_OP_PONG, key, "p2", 2);
    n += make_frame(f + n, false, 0, WISP_WS_OP_CONTINUATION, key, "", 0);
    n += make_frame(f + n, true, 0, WISP_WS_OP_CONTINUATION, key, "nted", 4);
    n += make_frame(f + n, true, 0, WISP_WS_OP_BINARY, key, "next", 4);
    struct transcript t;
    feed_all_splits(&srv, f, n, &t);
    assert_int_equal(t.n, 4);
    assert_int_equal(t.ev[0].type, WISP_WS_EV_PING);
    assert_memory_equal(t.ev[0].data, "p1", 2);
    assert_int_equal(t.ev[1].type, WISP_WS_EV_PONG);
    expect_message(&t, 2, WISP_WS_OP_TEXT, "fragmented", 10);
    expect_message(&t, 3, WISP_WS_OP_BINARY, "next", 4);
    transcript_free(&t);
}

static void test_masking_rules(void **state)
{
    struct wisp_ws_config srv = server_cfg(), cli = client_cfg();
    uint8_t f[32];
    size_t n = make_frame(f, true, 0, WISP_WS_OP_TEXT, NULL, "hi", 2);
    expect_fault(&srv, f, n, WISP_WS_FAULT_UNMASKED, 0);
    n = make_frame(f, true, 0, WISP_WS_OP_PING, NULL, "", 0);
    expect_fault(&srv, f, n, WISP_WS_FAULT_UNMASKED, 0);
    n = make_frame(f, true, 0, WISP_WS_OP_TEXT, key, "hi", 2);
    expect_fault(&cli, f, n, WISP_WS_FAULT_MASKED, 0);
}

static void test_frame_and_message_caps(void **state)
{
    struct wisp_ws_config srv = server_cfg();
    srv.max_frame_size = 100;
    srv.max_message_size = 150;
    uint8_t payload[200], f[600];
    memset(payload, 'z', sizeof payload);

    size_t n = make_frame(f, true, 0, WISP_WS_OP_BINARY, key, payload, 100);
    struct transcript t;
    feed_all_splits(&srv, f, n, &t);
    expect_message(&t, 0, WISP_WS_OP_BINARY, payload, 100);
    transcript_free(&t);

    /* 101 bytes: refused from the header alone (2 + 2 + 4 bytes), before any payload. */
    n = make_frame(f, true, 0, WISP_WS_OP_BINARY, key, payload, 101);
    feed_chunks(&srv, f, 8, NULL, 0, &t);
    assert_int_equal(t.n, 1);
    assert_int_equal(t.ev[0].fault, WISP_WS_FAULT_FRAME_TOO_BIG);
    assert_int_equal(t.ev[0].close_code, 1009);
    transcript_free(&t);
    expect_fault(&srv, f, n, WISP_WS_FAULT_FRAME_TOO_BIG, 0);

    /* 80 + 80 > 150: the second header fails the message before its payload is read. */
    n = make_frame(f, false, 0, WISP_WS_OP_TEXT, key, payload, 80);
    size_t first = n;
    n += make_frame(f + n, true, 0, WISP_WS_OP_CONTINUATION, key, payload, 80);
    feed_chunks(&srv, f, first + 2, NULL, 0, &t);
    assert_int_equal(t.n, 1);
    assert_int_equal(t.ev[0].fault, WISP_WS_FAULT_MESSAGE_TOO_BIG);
    assert_int_equal(t.ev[0].close_code, 1009);
    transcript_free(&t);
    expect_fault(&srv, f, n, WISP_WS_FAULT_MESSAGE_TOO_BIG, 0);

    /* exactly at the message cap is fine: 100 + 50 */
    n = make_frame(f, false, 0, WISP_WS_OP_TEXT, key, payload, 100);
    n += make_frame(f + n, true, 0, WISP_WS_OP_CONTINUATION, key, payload, 50);
    feed_all_splits(&srv, f, n, &t);
    expect_message(&t, 0, WISP_WS_OP_TEXT, payload, 150);
    transcript_free(&t);
}

static void test_utf8(void **state)
{
    struct wisp_ws_config srv = server_cfg();
    uint8_t f[4096];
    struct transcript t;

    /* κόσμε split inside a character across two fragments is fine */
    const char *kosme = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";
    size_t n = make_frame(f, false, 0, WISP_WS_OP_TEXT, key, kosme, 3);
    n += make_frame(f + n, true, 0, WISP_WS_OP_CONTINUATION, key, kosme + 3, 8);
    feed_all_splits(&srv, f, n, &t);
    expect_message(&t, 0, WISP_WS_OP_TEXT, kosme, 11);
    transcript_free(&t);

    n = make_frame(f, true, 0, WISP_WS_OP_TEXT, key, "\xc0\xaf", 2);
    expect_fault(&srv, f, n, WISP_WS_FAULT_BAD_UTF8, 0);
    n = make_frame(f, true, 0, WISP_WS_OP_TEXT, key, "ok\xed\xa0\x80", 5);
    expect_fault(&srv, f, n, WISP_WS_FAULT_BAD_UTF8, 0);
    /* truncated at the end of the message */
    n = make_frame(f, true, 0, WISP_WS_OP_TEXT, key, "ok\xe2\x82", 4);
    expect_fault(&srv, f, n, WISP_WS_FAULT_BAD_UTF8, 0);
    n = make_frame(f, false, 0, WISP_WS_OP_TEXT, key, "ok\xe2\x82", 4);
    n += make_frame(f + n, true, 0, WISP_WS_OP_CONTINUATION, key, "", 0);
    expect_fault(&srv, f, n, WISP_WS_FAULT_BAD_UTF8, 0);
    /* binary is never checked */
    n = make_frame(f, true, 0, WISP_WS_OP_BINARY, key, "\xff\xfe", 2);
    feed_all_splits(&srv, f, n, &t);
    expect_message(&t, 0, WISP_WS_OP_BINARY, "\xff\xfe", 2);
    transcript_free(&t);

    /* Fail fast: a 3000-byte text frame with a bad byte at offset 10 fails as soon as that byte
     * arrives, long before the frame is complete. */
    uint8_t text[3000];
    memset(text, 'a', sizeof text);
    text[10] = 0xff;
    n = make_frame(f, true, 0, WISP_WS_OP_TEXT, key, text, sizeof text);
    size_t hdr = n - sizeof text;
    size_t cuts[] = {hdr + 5, hdr + 11, hdr + 20};
    feed_chunks(&srv, f, n, cuts, 3, &t);
    assert_int_equal(t.n, 1);
    assert_int_equal(t.ev[0].fault, WISP_WS_FAULT_BAD_UTF8);
    /* reported by the chunk holding the bad byte, which the fault consumes (discards) */
    assert_int_equal(t.bytes_at_fault, hdr + 11);
    transcript_free(&t);
    feed_chunks(&srv, f, hdr + 11, NULL, 0, &t); /* only up to the bad byte has arrived */
    assert_int_equal(t.n, 1);
    assert_int_equal(t.ev[0].fault, WISP_WS_FAULT_BAD_UTF8);
    transcript_free(&t);

    /* ...and across fragments: the second fragment's first byte is wrong for the character
     * the first one started. Only its header and that byte have arrived. */
    n = make_frame(f, false, 0, WISP_WS_OP_TEXT, key, "abc\xf0\x9f", 5);
    size_t frag2 = n;
    n += make_frame(f + n, true, 0, WISP_WS_OP_CONTINUATION, key, "\x41zzzzzzzzzz", 11);
    feed_chunks(&srv, f, frag2 + 6 + 1, NULL, 0, &t);
    assert_int_equal(t.n, 1);
    assert_int_equal(t.ev[0].fault, WISP_WS_FAULT_BAD_UTF8);
    transcript_free(&t);
}

static void test_close_frames(void **state)
{
    struct wisp_ws_config srv = server_cfg();
    uint8_t f[256];
    struct transcript t;

    size_t n = make_frame(f, true, 0, WISP_WS_OP_CLOSE, key, "", 0);
    feed_all_splits(&srv, f, n, &t);
    assert_int_equal(t.n, 1);
    assert_int_equal(t.ev[0].type, WISP_WS_EV_CLOSE);
    assert_int_equal(t.ev[0].close_code, WISP_CLOSE_NO_STATUS);
    assert_int_equal(t.ev[0].len, 0);
    transcript_free(&t);

    n = make_frame(f, true, 0, WISP_WS_OP_CLOSE, key, "\x03\xe8" "bye", 5);
    /* anything after the close frame is ignored */
    n += make_frame(f + n, true, 0, WISP_WS_OP_TEXT, key, "late", 4);
    n += make_frame(f + n, true, 0, 0x3, key, "bad", 3);
    feed_all_splits(&srv, f, n, &t);
    assert_int_equal(t.n, 1);
    assert_int_equal(t.ev[0].close_code, 1000);
    assert_int_equal(t.ev[0].len, 3);
    assert_memory_equal(t.ev[0].data, "bye", 3);
    transcript_free(&t);

    n = make_frame(f, true, 0, WISP_WS_OP_CLOSE, key, "\x03", 1);
    expect_fault(&srv, f, n, WISP_WS_FAULT_CLOSE_PAYLOAD, 0);
    n = make_frame(f, true, 0, WISP_WS_OP_CLOSE, key, "\x03\xe8\xff", 3);
    expect_fault(&srv, f, n, WISP_WS_FAULT_CLOSE_REASON, 0);

    static const unsigned bad[] = {0,    1,    999,  1004, 1005, 1006, 1015,
                                   1016, 1100, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t p[2] = {(uint8_t)(bad[i] >> 8), (uint8_t)bad[i]};
        n = make_frame(f, true, 0, WISP_WS_OP_CLOSE, key, p, 2);
        expect_fault(&srv, f, n, WISP_WS_FAULT_CLOSE_CODE, 0);
    }
    static const unsigned good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009,
                                    1010, 1011, 1012, 1013, 1014, 3000, 4999};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint8_t p[2] = {(uint8_t)(good[i] >> 8), (uint8_t)good[i]};
        n = make_frame(f, true, 0, WISP_WS_OP_CLOSE, key, p, 2);
        feed_all_splits(&srv, f, n, &t);
        assert_int_equal(t.n, 1);
        assert_int_equal(t.ev[0].type, WISP_WS_EV_CLOSE);
        assert_int_equal(t.ev[0].close_code, good[i]);
        transcript_free(&t);
    }
}

static void test_streaming(void **state)
{
    struct wisp_ws_config srv = server_cfg();
    srv.flags = WISP_WS_STREAM;
    srv.max_message_size = UINT64_MAX; /* nothing is buffered, so no 4 GiB ceiling */
    uint8_t f[512];
    size_t n = make_frame(f, false, 0, WISP_WS_OP_TEXT, key, "stream", 6);
    n += make_frame(f + n, true, 0, WISP_WS_OP_PING, key, "", 0);
    n += make_frame(f + n, false, 0, WISP_WS_OP_CONTINUATION, key, "", 0);
    n += make_frame(f + n, true, 0, WISP_WS_OP_CONTINUATION, key, "ing", 3);
    n += make_frame(f + n, true, 0, WISP_WS_OP_BINARY, key, "", 0);
    struct transcript t;
    feed_all_splits(&srv, f, n, &t);
    /* whole: "stream" (first), ping, "ing" (last), empty binary (first and last) */
    assert_int_equal(t.n, 4);
    assert_int_equal(t.ev[0].type, WISP_WS_EV_FRAGMENT);
    assert_true(t.ev[0].first);
    assert_false(t.ev[0].last);
    assert_int_equal(t.ev[1].type, WISP_WS_EV_PING);
    assert_int_equal(t.ev[2].type, WISP_WS_EV_FRAGMENT);
    assert_false(t.ev[2].first);
    assert_true(t.ev[2].last);
    assert_memory_equal(t.ev[2].data, "ing", 3);
    assert_int_equal(t.ev[3].opcode, WISP_WS_OP_BINARY);
    assert_true(t.ev[3].first && t.ev[3].last);
    assert_int_equal(t.ev[3].len, 0);
    transcript_free(&t);

    /* The per-message cap still holds without buffering. */
    srv.max_message_size = 8;
    n = make_frame(f, false, 0, WISP_WS_OP_BINARY, key, "12345", 5);
    n += make_frame(f + n, true, 0, WISP_WS_OP_CONTINUATION, key, "6789", 4);
    expect_fault(&srv, f, n, WISP_WS_FAULT_MESSAGE_TOO_BIG, 1);
    struct wisp_ws ws;
    struct wisp_ws_config bad = server_cfg();
    bad.max_message_size = (uint64_t)UINT32_MAX + 1;
    assert_int_equal(wisp_ws_init(&ws, &bad), -EINVAL);
}

/* A message that arrived whole is handed out where it lies; one that did not is reassembled
 * in the engine's buffer, which is released after a large message. */
static void test_zero_copy_and_release(void **state)
{
    struct wisp_ws_config srv = server_cfg();
    struct wisp_ws ws;
    wisp_ws_init(&ws, &srv);
    uint8_t *f = malloc(200000);
    uint8_t *payload = malloc(100000);
    memset(payload, 'q', 100000);
    size_t n = make_frame(f, true, 0, WISP_WS_OP_BINARY, key, "zero", 4);
    struct wisp_ws_event ev;
    assert_int_equal(wisp_ws_recv(&ws, f, n, &ev), (ssize_t)n);
    assert_int_equal(ev.type, WISP_WS_EV_MESSAGE);
    assert_ptr_equal(ev.data, f + 6);
    assert_null(ws._buf);

    n = make_frame(f, true, 0, WISP_WS_OP_BINARY, key, payload, 100000);
    assert_int_equal(wisp_ws_recv(&ws, f, 1000, &ev), 1000);
    assert_int_equal(ev.type, WISP_WS_EV_NONE);
    assert_int_equal(wisp_ws_recv(&ws, f + 1000, n - 1000, &ev), (ssize_t)(n - 1000));
    assert_int_equal(ev.type, WISP_WS_EV_MESSAGE);
    assert_int_equal(ev.len, 100000);
    assert_memory_equal(ev.data, payload, 100000);
    assert_ptr_equal(ev.data, ws._buf);
    assert_int_equal(wisp_ws_recv(&ws, f, 0, &ev), 0);
    assert_null(ws._buf); /* over 64 KiB: not kept for an idle connection */
    wisp_ws_deinit(&ws);
    free(f);
    free(payload);
}

/* Many frames in one read come out one per call, in order. */
static void test_many_frames_one_buffer(void **state)
{
    struct wisp_ws_config srv = server_cfg();
    uint8_t f[4096];
    size_t n = 0;
    char msg[16];
    for (int i = 0; i < 100; i++) {
        int len = snprintf(msg, sizeof msg, "m%d", i);
        n += make_frame(f + n, true, 0, WISP_WS_OP_TEXT, key, msg, (size_t)len);
    }
    struct transcript t;
    feed_chunks(&srv, f, n, NULL, 0, &t);
    assert_int_equal(t.n, 100);
    for (size_t i = 0; i < t.n; i++) {
        int len = snprintf(msg, sizeof msg, "m%zu", i);
        expect_message(&t, i, WISP_WS_OP_TEXT, msg, (size_t)len);
    }
    transcript_free(&t);
}

/* Client role: unmasked server frames, including a fragmented message and a close. */
static void test_client_role(void **state)
{
    struct wisp_ws_config cli = client_cfg();
    uint8_t f[256];
    size_t n = make_frame(f, false, 0, WISP_WS_OP_BINARY, NULL, "ab", 2);
    n += make_frame(f + n, true, 0, WISP_WS_OP_CONTINUATION, NULL, "cd", 2);
    n += make_frame(f + n, true, 0, WISP_WS_OP_CLOSE, NULL, "\x0f\xa0", 2);
    struct transcript t;
    feed_all_splits(&cli, f, n, &t);
    assert_int_equal(t.n, 2);
    expect_message(&t, 0, WISP_WS_OP_BINARY, "abcd", 4);
    assert_int_equal(t.ev[1].type, WISP_WS_EV_CLOSE);
    assert_int_equal(t.ev[1].close_code, 4000);
    transcript_free(&t);
}

/* After a fault the engine reports nothing more and swallows input. */
static void test_discard_after_fault(void **state)
{
    struct wisp_ws_config srv = server_cfg();
    struct wisp_ws ws;
    wisp_ws_init(&ws, &srv);
    uint8_t f[64];
    size_t n = make_frame(f, true, 0, 0x3, key, "x", 1);
    n += make_frame(f + n, true, 0, WISP_WS_OP_TEXT, key, "x", 1);
    struct wisp_ws_event ev;
    assert_int_equal(wisp_ws_recv(&ws, f, n, &ev), (ssize_t)n);
    assert_int_equal(ev.type, WISP_WS_EV_FAULT);
    assert_true(wisp_ws_failed(&ws));
    n = make_frame(f, true, 0, WISP_WS_OP_TEXT, key, "x", 1);
    assert_int_equal(wisp_ws_recv(&ws, f, n, &ev), (ssize_t)n);
    assert_int_equal(ev.type, WISP_WS_EV_NONE);
    assert_int_equal(wisp_ws_recv(NULL, f, n, &ev), -EINVAL);
    assert_int_equal(wisp_ws_recv(&ws, NULL, 1, &ev), -EINVAL);
    wisp_ws_deinit(&ws);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_examples),
        cmocka_unit_test(test_length_edges),
        cmocka_unit_test(test_non_minimal_lengths),
        cmocka_unit_test(test_rsv_bits),
        cmocka_unit_test(test_reserved_opcodes),
        cmocka_unit_test(test_control_rules),
        cmocka_unit_test(test_continuation_rules),
        cmocka_unit_test(test_masking_rules),
        cmocka_unit_test(test_frame_and_message_caps),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_close_frames),
        cmocka_unit_test(test_streaming),
        cmocka_unit_test(test_zero_copy_and_release),
        cmocka_unit_test(test_many_frames_one_buffer),
        cmocka_unit_test(test_client_role),
        cmocka_unit_test(test_discard_after_fault),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
