/* The send side: frame headers, whole messages and their fragmentation, client masking,
 * streamed fragments, control frames; every output is parsed back by a peer engine. */
#include <errno.h>
#include <stdarg.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <wisp/ws.h>

#include "ws_feed.h"

static void test_frame_header(void **state)
{
    uint8_t h[WISP_WS_MAX_HEADER];
    static const uint8_t k[4] = {1, 2, 3, 4};
    assert_int_equal(wisp_ws_frame_header(h, WISP_WS_OP_TEXT, true, 0, 0, NULL), 2);
    assert_memory_equal(h, "\x81\x00", 2);
    assert_int_equal(wisp_ws_frame_header(h, WISP_WS_OP_BINARY, false, 0, 125, NULL), 2);
    assert_memory_equal(h, "\x02\x7d", 2);
    assert_int_equal(wisp_ws_frame_header(h, WISP_WS_OP_BINARY, true, 0, 126, NULL), 4);
    assert_memory_equal(h, "\x82\x7e\x00\x7e", 4);
    assert_int_equal(wisp_ws_frame_header(h, WISP_WS_OP_BINARY, true, 0, 65535, NULL), 4);
    assert_memory_equal(h, "\x82\x7e\xff\xff", 4);
    assert_int_equal(wisp_ws_frame_header(h, WISP_WS_OP_BINARY, true, 0, 65536, NULL), 10);
    assert_memory_equal(h, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
    assert_int_equal(
        wisp_ws_frame_header(h, WISP_WS_OP_CONTINUATION, true, WISP_WS_RSV1, 65536, k), 14);
    assert_memory_equal(h, "\xc0\xff\x00\x00\x00\x00\x00\x01\x00\x00\x01\x02\x03\x04", 14);
}

static void test_server_send_matches_rfc(void **state)
{
    struct wisp_ws_config cfg;
    wisp_ws_config_init(&cfg, WISP_WS_SERVER);
    struct wisp_ws ws;
    wisp_ws_init(&ws, &cfg);
    uint8_t out[300];
    assert_int_equal(wisp_ws_send_size(&ws, 5), 7);
    assert_int_equal(wisp_ws_send(&ws, WISP_WS_OP_TEXT, "Hello", 5, out, sizeof out), 7);
    assert_memory_equal(out, "\x81\x05Hello", 7);
    assert_int_equal(wisp_ws_send_control(&ws, WISP_WS_OP_PING, "Hello", 5, out, sizeof out), 7);
    assert_memory_equal(out, "\x89\x05Hello", 7);
    uint8_t bin[256];
    for (int i = 0; i < 256; i++)
        bin[i] = (uint8_t)i;
    assert_int_equal(wisp_ws_send(&ws, WISP_WS_OP_BINARY, bin, 256, out, sizeof out), 260);
    assert_memory_equal(out, "\x82\x7e\x01\x00", 4);
    assert_memory_equal(out + 4, bin, 256);
    /* every capacity short of the need is refused, with nothing claimed written */
    for (size_t cap = 0; cap < 260; cap++)
        assert_int_equal(wisp_ws_send(&ws, WISP_WS_OP_BINARY, bin, 256, out, cap), WISP_ENOSPACE);
    wisp_ws_deinit(&ws);
}

static void test_send_argument_errors(void **state)
{
    struct wisp_ws_config cfg;
    wisp_ws_config_init(&cfg, WISP_WS_SERVER);
    struct wisp_ws ws;
    wisp_ws_init(&ws, &cfg);
    uint8_t out[300], big[126] = {0};
    assert_int_equal(wisp_ws_send(&ws, WISP_WS_OP_TEXT, "\xc3\x28", 2, out, sizeof out), -EILSEQ);
    assert_int_equal(wisp_ws_send(&ws, WISP_WS_OP_PING, "x", 1, out, sizeof out), -EINVAL);
    assert_int_equal(wisp_ws_send(&ws, WISP_WS_OP_TEXT, NULL, 1, out, sizeof out), -EINVAL);
    assert_int_equal(wisp_ws_send(&ws, WISP_WS_OP_TEXT, NULL, 0, out, sizeof out), 2);
    assert_int_equal(wisp_ws_send_control(&ws, WISP_WS_OP_PONG, big, 126, out, sizeof out),
                     -EMSGSIZE);
    assert_int_equal(wisp_ws_send_control(&ws, WISP_WS_OP_PONG, big, 125, out, sizeof out), 127);
    assert_int_equal(wisp_ws_send_control(&ws, WISP_WS_OP_TEXT, big, 1, out, sizeof out), -EINVAL);
    assert_int_equal(wisp_ws_send_control(&ws, WISP_WS_OP_PING, big, 1, out, 2), WISP_ENOSPACE);
    wisp_ws_deinit(&ws);
}

/* Parse bytes a peer engine produced; expect these messages in order. */
static void parse_back(const struct wisp_ws_config *cfg, const uint8_t *bytes, size_t n,
                       struct transcript *t)
{
    feed_chunks(cfg, bytes, n, NULL, 0, t);
}

static void test_client_masks_every_frame(void **state)
{
    struct wisp_ws_config ccfg, scfg;
    wisp_ws_config_init(&ccfg, WISP_WS_CLIENT);
    wisp_ws_config_init(&scfg, WISP_WS_SERVER);
    struct wisp_ws cli;
    wisp_ws_init(&cli, &ccfg);
    uint8_t out[512];
    ssize_t a = wisp_ws_send(&cli, WISP_WS_OP_TEXT, "Hello", 5, out, sizeof out);
    assert_int_equal(a, 11);
    assert_int_equal(out[1], 0x85); /* mask bit set */
    ssize_t b = wisp_ws_send(&cli, WISP_WS_OP_TEXT, "Hello", 5, out + a, sizeof out - (size_t)a);
    assert_int_equal(b, 11);
    /* fresh keys: two identical messages are masked differently */
    assert_memory_not_equal(out + 2, out + a + 2, 4);
    assert_memory_not_equal(out + 6, "Hello", 5);
    struct transcript t;
    parse_back(&scfg, out, (size_t)(a + b), &t);
    assert_int_equal(t.n, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(t.ev[i].type, WISP_WS_EV_MESSAGE);
        assert_memory_equal(t.ev[i].data, "Hello", 5);
    }
    transcript_free(&t);
    /* the client's close, ping and pong are masked too */
    ssize_t c = wisp_ws_send_control(&cli, WISP_WS_OP_PING, "p", 1, out, sizeof out);
    ssize_t d = wisp_ws_send_close(&cli, 1000, "done", 4, out + c, sizeof out - (size_t)c);
    assert_int_equal(c, 7);
    assert_int_equal(d, 12);
    parse_back(&scfg, out, (size_t)(c + d), &t);
    assert_int_equal(t.n, 2);
    assert_int_equal(t.ev[0].type, WISP_WS_EV_PING);
    assert_int_equal(t.ev[1].type, WISP_WS_EV_CLOSE);
    assert_int_equal(t.ev[1].close_code, 1000);
    assert_memory_equal(t.ev[1].data, "done", 4);
    transcript_free(&t);
    wisp_ws_deinit(&cli);
}

static void test_automatic_fragmentation(void **state)
{
    static const int roles[] = {WISP_WS_SERVER, WISP_WS_CLIENT};
    for (int r = 0; r < 2; r++) {
        struct wisp_ws_config cfg, peer;
        wisp_ws_config_init(&cfg, (enum wisp_ws_role)roles[r]);
        wisp_ws_config_init(&peer, (enum wisp_ws_role)!roles[r]);
        cfg.fragment_size = 10;
        struct wisp_ws ws;
        wisp_ws_init(&ws, &cfg);
        static const size_t lens[] = {0, 1, 10, 11, 25, 30, 1000};
        uint8_t msg[1000], out[2000];
        for (size_t i = 0; i < sizeof msg; i++)
            msg[i] = (uint8_t)('a' + i % 26);
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
            size_t need = wisp_ws_send_size(&ws, lens[i]);
            assert_int_equal(wisp_ws_send(&ws, WISP_WS_OP_TEXT, msg, lens[i], out, need - 1),
                             WISP_ENOSPACE);
            ssize_t n = wisp_ws_send(&ws, WISP_WS_OP_TEXT, msg, lens[i], out, need);
            assert_int_equal(n, (ssize_t)need);
            size_t frames = lens[i] ? (lens[i] + 9) / 10 : 1;
            /* first frame TEXT, the rest continuations, FIN on the last only */
            size_t at = 0;
            for (size_t f = 0; f < frames; f++) {
                assert_int_equal(out[at] & 0x0F, f ? 0 : 1);
                assert_int_equal(!!(out[at] & 0x80), f == frames - 1);
                size_t plen = out[at + 1] & 0x7F;
                at += 2 + (roles[r] == WISP_WS_CLIENT ? 4 : 0) + plen;
            }
            assert_int_equal(at, need);
            struct transcript t;
            feed_all_splits(&peer, out, need, &t);
            assert_int_equal(t.n, 1);
            assert_int_equal(t.ev[0].type, WISP_WS_EV_MESSAGE);
            assert_int_equal(t.ev[0].len, lens[i]);
            assert_memory_equal(t.ev[0].data, msg, lens[i]);
            transcript_free(&t);
        }
        wisp_ws_deinit(&ws);
    }
}

static void test_streamed_fragments(void **state)
{
    struct wisp_ws_config cfg, peer;
    wisp_ws_config_init(&cfg, WISP_WS_SERVER);
    wisp_ws_config_init(&peer, WISP_WS_CLIENT);
    struct wisp_ws ws;
    wisp_ws_init(&ws, &cfg);
    uint8_t out[256];
    size_t n = 0;
    ssize_t r;
    assert_int_equal(wisp_ws_send_fragment(&ws, WISP_WS_OP_CONTINUATION, "x", 1, false, out, 256),
                     -EINVAL);
    r = wisp_ws_send_fragment(&ws, WISP_WS_OP_TEXT, "str", 3, false, out + n, sizeof out - n);
    n += (size_t)r;
    /* a whole message cannot start while this one is open, nor a second first fragment */
    assert_int_equal(wisp_ws_send(&ws, WISP_WS_OP_TEXT, "x", 1, out + n, sizeof out - n), -EBUSY);
    assert_int_equal(
        wisp_ws_send_fragment(&ws, WISP_WS_OP_BINARY, "x", 1, false, out + n, sizeof out - n),
        -EINVAL);
    r = wisp_ws_send_control(&ws, WISP_WS_OP_PING, "in between", 10, out + n, sizeof out - n);
    n += (size_t)r;
    r = wisp_ws_send_fragment(&ws, WISP_WS_OP_CONTINUATION, "ea", 2, false, out + n,
                              sizeof out - n);
    n += (size_t)r;
    r = wisp_ws_send_fragment(&ws, WISP_WS_OP_TEXT, "m", 1, true, out + n, sizeof out - n);
    n += (size_t)r;
    r = wisp_ws_send(&ws, WISP_WS_OP_BINARY, "after", 5, out + n, sizeof out - n);
    assert_true(r > 0);
    n += (size_t)r;
    struct transcript t;
    feed_all_splits(&peer, out, n, &t);
    assert_int_equal(t.n, 3);
    assert_int_equal(t.ev[0].type, WISP_WS_EV_PING);
    assert_int_equal(t.ev[1].type, WISP_WS_EV_MESSAGE);
    assert_int_equal(t.ev[1].opcode, WISP_WS_OP_TEXT);
    assert_memory_equal(t.ev[1].data, "stream", 6);
    assert_int_equal(t.ev[2].opcode, WISP_WS_OP_BINARY);
    transcript_free(&t);
    wisp_ws_deinit(&ws);
}

/* Property: any message, any fragment size, any chunking, either role: what one engine sends
 * the other receives unchanged. Seeded, so a failure replays. */
static void test_round_trip_property(void **state)
{
    unsigned seed = 12345;
    uint8_t *msg = malloc(70000), *wire = malloc(80000);
    for (int iter = 0; iter < 300; iter++) {
        seed = seed * 1103515245u + 12345u;
        enum wisp_ws_role role = (seed >> 16) & 1 ? WISP_WS_CLIENT : WISP_WS_SERVER;
        struct wisp_ws_config cfg, peer;
        wisp_ws_config_init(&cfg, role);
        wisp_ws_config_init(&peer, role == WISP_WS_CLIENT ? WISP_WS_SERVER : WISP_WS_CLIENT);
        seed = seed * 1103515245u + 12345u;
        cfg.fragment_size = (seed >> 16) % 3 == 0 ? 0 : 1 + (seed >> 8) % 5000;
        seed = seed * 1103515245u + 12345u;
        size_t len = (seed >> 4) % 70000;
        if (iter % 4 == 0)
            len %= 300;
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            msg[i] = (uint8_t)(seed >> 16);
        }
        struct wisp_ws ws;
        wisp_ws_init(&ws, &cfg);
        ssize_t n = wisp_ws_send(&ws, WISP_WS_OP_BINARY, msg, len, wire, 80000);
        assert_int_equal(n, (ssize_t)wisp_ws_send_size(&ws, len));
        size_t cuts[3];
        for (int c = 0; c < 3; c++) {
            seed = seed * 1103515245u + 12345u;
            cuts[c] = (seed >> 8) % ((size_t)n + 1);
        }
        if (cuts[0] > cuts[1]) { size_t x = cuts[0]; cuts[0] = cuts[1]; cuts[1] = x; }
        if (cuts[1] > cuts[2]) { size_t x = cuts[1]; cuts[1] = cuts[2]; cuts[2] = x; }
        if (cuts[0] > cuts[1]) { size_t x = cuts[0]; cuts[0] = cuts[1]; cuts[1] = x; }
        struct transcript t;
        feed_chunks(&peer, wire, (size_t)n, cuts, 3, &t);
        assert_int_equal(t.n, 1);
        assert_int_equal(t.ev[0].type, WISP_WS_EV_MESSAGE);
        assert_int_equal(t.ev[0].len, len);
        assert_memory_equal(t.ev[0].data, msg, len);
        transcript_free(&t);
        wisp_ws_deinit(&ws);
    }
    free(msg);
    free(wire);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_header),
        cmocka_unit_test(test_server_send_matches_rfc),
        cmocka_unit_test(test_send_argument_errors),
        cmocka_unit_test(test_client_masks_every_frame),
        cmocka_unit_test(test_automatic_fragmentation),
        cmocka_unit_test(test_streamed_fragments),
        cmocka_unit_test(test_round_trip_property),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
