/* handshake_roundtrip: a WebSocket client and server talking through memory, no sockets.
 *
 * It shows the sans-IO engine end to end: the client writes an upgrade request, the server
 * parses and validates it and answers 101, the client checks the answer; then text, a
 * fragmented binary message, a ping and the close handshake cross in both directions, each
 * side feeding the other's bytes to wisp_ws_recv(). Every step is printed. Exits 0 when every
 * check holds, 1 otherwise.
 */
#include <stdio.h>
#include <string.h>

#include <wisp/wisp.h>

static int failures;

#define CHECK(cond, what)                                                                         \
    do {                                                                                          \
        if (cond) {                                                                               \
            printf("  ok    %s\n", what);                                                         \
        } else {                                                                                  \
            printf("  FAIL  %s\n", what);                                                         \
            failures++;                                                                           \
        }                                                                                         \
    } while (0)

/* Feed bytes to an engine and print what it reports; returns the last event's type and copies
 * its data (up to cap bytes) to last. */
static enum wisp_ws_event_type deliver(const char *who, struct wisp_ws *ws, uint8_t *bytes,
                                       size_t n, char *last, size_t cap, size_t *last_len)
{
    enum wisp_ws_event_type type = WISP_WS_EV_NONE;
    size_t off = 0;
    while (off < n) {
        struct wisp_ws_event ev;
        ssize_t used = wisp_ws_recv(ws, bytes + off, n - off, &ev);
        if (used < 0)
            return WISP_WS_EV_NONE;
        off += (size_t)used;
        switch (ev.type) {
        case WISP_WS_EV_NONE:
            continue;
        case WISP_WS_EV_MESSAGE:
            printf("  %s got a %s message of %zu bytes\n", who,
                   ev.opcode == WISP_WS_OP_TEXT ? "text" : "binary", ev.len);
            break;
        case WISP_WS_EV_PING:
            printf("  %s got a ping (%zu bytes)\n", who, ev.len);
            break;
        case WISP_WS_EV_PONG:
            printf("  %s got a pong (%zu bytes)\n", who, ev.len);
            break;
        case WISP_WS_EV_CLOSE:
            printf("  %s got close %u \"%.*s\"\n", who, ev.close_code, (int)ev.len,
                   (const char *)ev.data);
            break;
        case WISP_WS_EV_FAULT:
            printf("  %s failed the connection: %s (%u)\n", who, wisp_ws_fault_str(ev.fault),
                   ev.close_code);
            break;
        case WISP_WS_EV_FRAGMENT:
            break;
        }
        type = ev.type;
        *last_len = ev.len < cap ? ev.len : cap;
        memcpy(last, ev.data, *last_len);
        if (ev.type == WISP_WS_EV_CLOSE)
            *last_len = ev.close_code; /* the code is what matters for a close */
    }
    return type;
}

int main(void)
{
    printf("wisp %s: a client and a server engine talking through memory\n\n", WISP_VERSION);

    /* ---- the opening handshake ---- */
    printf("1. opening handshake\n");
    const char *protocols[] = {"chat.v2", "chat.v1"};
    struct wisp_ws_client_opts copts = {
        .host = "example.test:8080",
        .target = "/chat?room=lobby",
        .origin = "http://example.test",
        .protocols = protocols,
        .num_protocols = 2,
    };
    char request[1024], key[WISP_WS_KEY_LEN + 1];
    ssize_t reqlen = wisp_ws_client_request(&copts, key, request, sizeof request);
    CHECK(reqlen > 0, "client wrote its upgrade request");
    printf("\n%.*s", (int)reqlen, request);

    struct wisp_http_header headers[32];
    struct wisp_http_request req;
    ssize_t head = wisp_http_parse_request(request, (size_t)reqlen, 0, NULL, &req, headers, 32);
    CHECK(head == reqlen, "server parsed the request head");
    struct wisp_ws_upgrade up;
    CHECK(wisp_ws_upgrade_check(&req, &up) == 0, "server accepted it as a WebSocket upgrade");
    printf("  path %.*s, query %.*s, origin %.*s\n", (int)up.path_len, up.path,
           (int)up.query_len, up.query, (int)up.origin_len, up.origin);
    CHECK(wisp_ws_upgrade_offers(&up, "chat.v1", 7), "client offered subprotocol chat.v1");

    char response[1024];
    struct wisp_ws_accept_opts aopts = {.protocol = "chat.v1", .protocol_len = 7};
    ssize_t resplen = wisp_ws_upgrade_accept(&up, &aopts, response, sizeof response);
    CHECK(resplen > 0, "server wrote 101 Switching Protocols");
    printf("\n%.*s", (int)resplen, response);

    struct wisp_http_response resp;
    CHECK(wisp_http_parse_response(response, (size_t)resplen, 0, NULL, &resp, headers, 32) ==
              resplen,
          "client parsed the answer");
    struct wisp_ws_client_result res;
    CHECK(wisp_ws_client_check(&resp, &copts, key, &res) == 0,
          "client verified Sec-WebSocket-Accept and the subprotocol");

    /* ---- frames ---- */
    struct wisp_ws_config server_cfg, client_cfg;
    wisp_ws_config_init(&server_cfg, WISP_WS_SERVER);
    wisp_ws_config_init(&client_cfg, WISP_WS_CLIENT);
    client_cfg.fragment_size = 4; /* so the binary message below goes out in pieces */
    struct wisp_ws server, client;
    wisp_ws_init(&server, &server_cfg);
    wisp_ws_init(&client, &client_cfg);

    uint8_t wire[512];
    char got[256];
    size_t got_len = 0;
    ssize_t n;

    printf("\n2. client -> server: text, fragmented binary, ping (masked, fresh keys)\n");
    n = wisp_ws_send(&client, WISP_WS_OP_TEXT, "héllo wisp", strlen("héllo wisp"), wire,
                     sizeof wire);
    CHECK(deliver("server", &server, wire, (size_t)n, got, sizeof got, &got_len) ==
                  WISP_WS_EV_MESSAGE &&
              got_len == strlen("héllo wisp") && !memcmp(got, "héllo wisp", got_len),
          "text arrived intact");
    const uint8_t blob[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    n = wisp_ws_send(&client, WISP_WS_OP_BINARY, blob, sizeof blob, wire, sizeof wire);
    printf("  10 bytes became %zd bytes on the wire (3 masked frames)\n", n);
    CHECK(deliver("server", &server, wire, (size_t)n, got, sizeof got, &got_len) ==
                  WISP_WS_EV_MESSAGE &&
              got_len == sizeof blob && !memcmp(got, blob, sizeof blob),
          "fragments were reassembled");
    n = wisp_ws_send_control(&client, WISP_WS_OP_PING, "are you there", 13, wire, sizeof wire);
    CHECK(deliver("server", &server, wire, (size_t)n, got, sizeof got, &got_len) ==
              WISP_WS_EV_PING,
          "ping arrived");

    printf("\n3. server -> client: pong, then the close handshake\n");
    n = wisp_ws_send_control(&server, WISP_WS_OP_PONG, got, got_len, wire, sizeof wire);
    CHECK(deliver("client", &client, wire, (size_t)n, got, sizeof got, &got_len) ==
              WISP_WS_EV_PONG,
          "pong echoed the ping's payload");
    n = wisp_ws_send_close(&server, WISP_CLOSE_GOING_AWAY, "restarting", 10, wire, sizeof wire);
    CHECK(wisp_ws_close_state(&server) == WISP_WS_CLOSE_SENT, "server is waiting for the reply");
    CHECK(deliver("client", &client, wire, (size_t)n, got, sizeof got, &got_len) ==
                  WISP_WS_EV_CLOSE &&
              got_len == WISP_CLOSE_GOING_AWAY,
          "client saw close 1001");
    n = wisp_ws_send_close(&client, WISP_CLOSE_GOING_AWAY, NULL, 0, wire, sizeof wire);
    CHECK(deliver("server", &server, wire, (size_t)n, got, sizeof got, &got_len) ==
              WISP_WS_EV_CLOSE,
          "server got the echo");
    CHECK(wisp_ws_close_state(&server) == WISP_WS_CLOSED &&
              wisp_ws_close_state(&client) == WISP_WS_CLOSED,
          "both ends are closed: TCP can go");

    printf("\n4. a protocol violation: an unmasked frame from a 'client'\n");
    struct wisp_ws strict;
    wisp_ws_init(&strict, &server_cfg);
    uint8_t bad[] = {0x81, 0x02, 'h', 'i'};
    CHECK(deliver("server", &strict, bad, sizeof bad, got, sizeof got, &got_len) ==
              WISP_WS_EV_FAULT,
          "server failed it with 1002");

    wisp_ws_deinit(&strict);
    wisp_ws_deinit(&server);
    wisp_ws_deinit(&client);
    printf("\n%s\n", failures ? "SOME CHECKS FAILED" : "all checks passed");
    return failures ? 1 : 0;
}
