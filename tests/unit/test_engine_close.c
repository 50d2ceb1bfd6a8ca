/* The close handshake state machine (RFC 6455 §7), from both ends, and the codes and fault
 * names the application reads. */
#include <errno.h>
#include <stdarg.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>

#include <wisp/ws.h>

#include "ws_feed.h"

static const uint8_t key[4] = {9, 8, 7, 6};

struct pair {
    struct wisp_ws_config cfg;
    struct wisp_ws ws;
};

static void open_server(struct pair *p)
{
    wisp_ws_config_init(&p->cfg, WISP_WS_SERVER);
    assert_int_equal(wisp_ws_init(&p->ws, &p->cfg), 0);
    assert_int_equal(wisp_ws_close_state(&p->ws), WISP_WS_OPEN);
}

/* Feed one frame and return the (single) event it produced. */
static struct wisp_ws_event feed(struct wisp_ws *ws, uint8_t *frame, size_t n)
{
    struct wisp_ws_event ev = {0};
    size_t off = 0;
    while (off < n) {
        ssize_t used = wisp_ws_recv(ws, frame + off, n - off, &ev);
        assert_true(used >= 0);
        off += (size_t)used;
        if (ev.type != WISP_WS_EV_NONE)
            break;
    }
    return ev;
}

/* The peer closes first: we see its code, echo it, and the handshake is complete. */
static void test_peer_initiated(void **state)
{
    struct pair p;
    open_server(&p);
    uint8_t f[64], out[64];
    size_t n = make_frame(f, true, 0, WISP_WS_OP_CLOSE, key, "\x0b\xb8" "app", 5);
    struct wisp_ws_event ev = feed(&p.ws, f, n);
    assert_int_equal(ev.type, WISP_WS_EV_CLOSE);
    assert_int_equal(ev.close_code, 3000);
    assert_int_equal(wisp_ws_close_state(&p.ws), WISP_WS_CLOSE_RECEIVED);
    /* we may still finish sending data and answer pings before our close */
    assert_true(wisp_ws_send(&p.ws, WISP_WS_OP_TEXT, "last", 4, out, sizeof out) > 0);
    assert_int_equal(wisp_ws_send_close(&p.ws, ev.close_code, NULL, 0, out, sizeof out), 4);
    assert_memory_equal(out, "\x88\x02\x0b\xb8", 4);
    assert_int_equal(wisp_ws_close_state(&p.ws), WISP_WS_CLOSED);
    assert_int_equal(wisp_ws_send(&p.ws, WISP_WS_OP_TEXT, "x", 1, out, sizeof out), WISP_ECLOSED);
    assert_int_equal(wisp_ws_send_close(&p.ws, 1000, NULL, 0, out, sizeof out), WISP_ECLOSED);
    wisp_ws_deinit(&p.ws);
}

/* The peer's close had no code: the echo has no payload either. */
static void test_echo_of_empty_close(void **state)
{
    struct pair p;
    open_server(&p);
    uint8_t f[16], out[16];
    size_t n = make_frame(f, true, 0, WISP_WS_OP_CLOSE, key, "", 0);
    struct wisp_ws_event ev = feed(&p.ws, f, n);
    assert_int_equal(ev.close_code, WISP_CLOSE_NO_STATUS);
    assert_int_equal(wisp_ws_send_close(&p.ws, ev.close_code, NULL, 0, out, sizeof out), 2);
    assert_memory_equal(out, "\x88\x00", 2);
    wisp_ws_deinit(&p.ws);
}

/* We close first: data stops going out at once, data still comes in until the peer's close. */
static void test_local_initiated(void **state)
{
    struct pair p;
    open_server(&p);
    uint8_t f[64], out[200];
    ssize_t n = wisp_ws_send_close(&p.ws, 1001, "going away", 10, out, sizeof out);
    assert_int_equal(n, 14);
    assert_memory_equal(out, "\x88\x0c\x03\xe9going away", 14);
    assert_int_equal(wisp_ws_close_state(&p.ws), WISP_WS_CLOSE_SENT);
    assert_int_equal(wisp_ws_send(&p.ws, WISP_WS_OP_TEXT, "x", 1, out, sizeof out), WISP_ECLOSED);
    assert_int_equal(wisp_ws_send_control(&p.ws, WISP_WS_OP_PING, "", 0, out, sizeof out),
                     WISP_ECLOSED);
    assert_int_equal(wisp_ws_send_fragment(&p.ws, WISP_WS_OP_TEXT, "", 0, true, out, sizeof out),
                     WISP_ECLOSED);
    size_t fn = make_frame(f, true, 0, WISP_WS_OP_TEXT, key, "in flight", 9);
    struct wisp_ws_event ev = feed(&p.ws, f, fn);
    assert_int_equal(ev.type, WISP_WS_EV_MESSAGE);
    fn = make_frame(f, true, 0, WISP_WS_OP_CLOSE, key, "\x03\xe9", 2);
    ev = feed(&p.ws, f, fn);
    assert_int_equal(ev.type, WISP_WS_EV_CLOSE);
    assert_int_equal(ev.close_code, 1001);
    assert_int_equal(wisp_ws_close_state(&p.ws), WISP_WS_CLOSED);
    wisp_ws_deinit(&p.ws);
}

/* After a fault we owe one close with the fault's code; then it is over. */
static void test_fault_then_close(void **state)
{
    struct pair p;
    open_server(&p);
    uint8_t f[16], out[64];
    size_t n = make_frame(f, true, 0, WISP_WS_OP_TEXT, key, "\xff", 1);
    struct wisp_ws_event ev = feed(&p.ws, f, n);
    assert_int_equal(ev.type, WISP_WS_EV_FAULT);
    assert_int_equal(ev.close_code, 1007);
    assert_true(wisp_ws_failed(&p.ws));
    assert_int_equal(wisp_ws_send(&p.ws, WISP_WS_OP_TEXT, "x", 1, out, sizeof out), WISP_ECLOSED);
    const char *why = wisp_ws_fault_str(ev.fault);
    assert_true(wisp_ws_send_close(&p.ws, ev.close_code, why, strlen(why), out, sizeof out) > 0);
    assert_int_equal(wisp_ws_close_state(&p.ws), WISP_WS_CLOSED);
    wisp_ws_deinit(&p.ws);
}

static void test_close_argument_rules(void **state)
{
    struct pair p;
    open_server(&p);
    uint8_t out[200];
    char reason[124];
    memset(reason, 'r', sizeof reason);
    static const unsigned bad[] = {0, 999, 1004, 1006, 1015, 1016, 2999, 5000};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(wisp_ws_send_close(&p.ws, (uint16_t)bad[i], NULL, 0, out, sizeof out),
                         -EINVAL);
    assert_int_equal(wisp_ws_send_close(&p.ws, WISP_CLOSE_NO_STATUS, "x", 1, out, sizeof out),
                     -EINVAL);
    assert_int_equal(wisp_ws_send_close(&p.ws, 1000, reason, 124, out, sizeof out), -EINVAL);
    assert_int_equal(wisp_ws_send_close(&p.ws, 1000, "\xff", 1, out, sizeof out), -EINVAL);
    assert_int_equal(wisp_ws_send_close(&p.ws, 1000, reason, 123, out, 126), WISP_ENOSPACE);
    assert_int_equal(wisp_ws_close_state(&p.ws), WISP_WS_OPEN);
    assert_int_equal(wisp_ws_send_close(&p.ws, 4999, reason, 123, out, 127), 127);
    wisp_ws_deinit(&p.ws);
}

static void test_codes_and_names(void **state)
{
    for (unsigned c = 0; c < 70000; c++) {
        bool expect = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) ||
                      (c >= 3000 && c <= 4999);
        assert_int_equal(wisp_close_code_is_valid(c), expect);
    }
    assert_int_equal(wisp_ws_fault_code(WISP_WS_FAULT_NONE), 0);
    for (int f = WISP_WS_FAULT_RSV; f <= WISP_WS_FAULT_NO_MEMORY; f++) {
        uint16_t code = wisp_ws_fault_code((enum wisp_ws_fault)f);
        assert_true(code == 1002 || code == 1007 || code == 1009 || code == 1011);
        assert_true(strlen(wisp_ws_fault_str((enum wisp_ws_fault)f)) > 5);
    }
    assert_int_equal(wisp_ws_fault_code(WISP_WS_FAULT_BAD_UTF8), 1007);
    assert_int_equal(wisp_ws_fault_code(WISP_WS_FAULT_MESSAGE_TOO_BIG), 1009);
    assert_int_equal(wisp_ws_fault_code(WISP_WS_FAULT_NO_MEMORY), 1011);
    assert_string_equal(wisp_ws_fault_str((enum wisp_ws_fault)999), "unknown fault");
    assert_string_equal(wisp_strerror(0), "success");
    assert_string_equal(wisp_strerror(WISP_ENOSPACE), "output buffer too small");
    assert_string_equal(wisp_strerror(-EINVAL), "Invalid argument");
    assert_string_equal(wisp_strerror(-99999), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peer_initiated),
        cmocka_unit_test(test_echo_of_empty_close),
        cmocka_unit_test(test_local_initiated),
        cmocka_unit_test(test_fault_then_close),
        cmocka_unit_test(test_close_argument_rules),
        cmocka_unit_test(test_codes_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
