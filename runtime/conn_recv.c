/* Bytes in: the request head (routing, plain HTTP, the upgrade) and WebSocket frames. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"

/* ---- receiving: WebSocket events ------------------------------------------------------------- */

static void deliver(struct wisp_conn *c, enum wisp_ws_opcode op, const uint8_t *data, size_t len)
{
    const struct wisp_handler *h = handler_of(c);
    CONN_STAT(c, messages_in, 1);
    CONN_STAT(c, bytes_in, len);
    if (op == WISP_WS_OP_TEXT) {
        if (h->on_text)
            h->on_text(c, c->state, (const char *)data, len);
    } else if (h->on_binary) {
        h->on_binary(c, c->state, data, len);
    }
}

/* on_frame mode: the engine streams pieces; the hook filters them; we reassemble. */
static void piece(struct wisp_conn *c, const struct wisp_ws_event *ev)
{
    const struct wisp_handler *h = handler_of(c);
    struct wisp_frame f = {ev->opcode, ev->first, ev->last, ev->data, ev->len};
    bool pass = h->on_frame(c, c->state, &f) != WISP_FRAME_DROP;
    if (pass && f.len && !(ev->first && ev->last)) {
        if (c->msg_len + f.len > c->msg_cap) {
            size_t cap = c->msg_cap ? c->msg_cap : 4096;
            while (cap < c->msg_len + f.len)
                cap *= 2;
            uint8_t *m = realloc(c->msg, cap);
            if (!m) {
                wispi_conn_library_close(c, WISP_CLOSE_INTERNAL_ERROR, WISP_WHY_NO_MEMORY, "out of memory");
                return;
            }
            c->msg = m;
            c->msg_cap = cap;
        }
        memcpy(c->msg + c->msg_len, f.data, f.len);
        c->msg_len += f.len;
    }
    c->msg_passed |= pass;
    if (!ev->last)
        return;
    if (ev->first && pass)
        deliver(c, ev->opcode, f.data, f.len); /* arrived whole: no copy */
    else if (!ev->first && c->msg_passed)
        deliver(c, ev->opcode, c->msg, c->msg_len);
    /* else every piece was dropped: so is the message */
    c->msg_len = 0;
    c->msg_passed = false;
    if (c->msg_cap > 65536) {
        free(c->msg);
        c->msg = NULL;
        c->msg_cap = 0;
    }
}

static bool control_hook(struct wisp_conn *c, const struct wisp_ws_event *ev,
                         struct wisp_frame *f)
{
    const struct wisp_handler *h = handler_of(c);
    *f = (struct wisp_frame){ev->opcode, true, true, ev->data, ev->len};
    return h->on_frame && h->on_frame(c, c->state, f) == WISP_FRAME_DROP;
}

static enum wisp_close_why why_of_fault(uint16_t code)
{
    switch (code) {
    case WISP_CLOSE_INVALID_DATA:
        return WISP_WHY_BAD_UTF8;
    case WISP_CLOSE_TOO_BIG:
        return WISP_WHY_TOO_BIG;
    case WISP_CLOSE_INTERNAL_ERROR:
        return WISP_WHY_NO_MEMORY;
    default:
        return WISP_WHY_PROTOCOL;
    }
}

static void on_event(struct wisp_conn *c, const struct wisp_ws_event *ev)
{
    const struct wisp_handler *h = handler_of(c);
    struct wisp_frame f;
    switch (ev->type) {
    case WISP_WS_EV_NONE:
        break;
    case WISP_WS_EV_MESSAGE: /* also while CLOSING: the peer may send until its close */
        if (c->phase == PH_OPEN || c->phase == PH_CLOSING)
            deliver(c, ev->opcode, ev->data, ev->len);
        break;
    case WISP_WS_EV_FRAGMENT:
        if (c->phase == PH_OPEN || c->phase == PH_CLOSING)
            piece(c, ev);
        break;
    case WISP_WS_EV_PING:
        if (control_hook(c, ev, &f))
            break;
        if (c->phase == PH_OPEN) {
            /* The automatic pong skips on_send_frame: it is wisp's answer, not the app's. */
            if (wispi_conn_send_control(c, WISP_WS_OP_PONG, f.data, f.len) < 0)
                wispi_conn_library_close(c, WISP_CLOSE_INTERNAL_ERROR, WISP_WHY_NO_MEMORY, "out of memory");
            else if (h->on_ping)
                h->on_ping(c, c->state, f.data, f.len);
        }
        break;
    case WISP_WS_EV_PONG:
        if (control_hook(c, ev, &f))
            break;
        c->ping_ms = 0;
        if (h->on_pong && (c->phase == PH_OPEN || c->phase == PH_CLOSING))
            h->on_pong(c, c->state, f.data, f.len);
        break;
    case WISP_WS_EV_CLOSE:
        control_hook(c, ev, &f); /* shown, never dropped */
        if (c->phase == PH_OPEN) {
            wispi_conn_record(c, ev->close_code, (const char *)ev->data, ev->len, WISP_CLOSED_BY_PEER,
                   WISP_WHY_NORMAL);
            /* Echo the peer's code and reason (1005 echoes as an empty close). */
            wispi_conn_queue_close(c, ev->close_code, c->info.reason, c->info.reason_len, false);
        }
        c->info.clean = true;
        wispi_conn_finish(c, true);
        break;
    case WISP_WS_EV_FAULT:
        c->info.fault = ev->fault;
        wispi_conn_library_close(c, ev->close_code, why_of_fault(ev->close_code), wisp_ws_fault_str(ev->fault));
        c->info.fault = ev->fault;
        break;
    }
}

void wispi_conn_feed_ws(struct wisp_conn *c, uint8_t *p, size_t len)
{
    while (len && c->phase < PH_DRAIN) {
        struct wisp_ws_event ev;
        ssize_t n = wisp_ws_recv(&c->ws, p, len, &ev);
        if (n < 0)
            break;
        p += n;
        len -= (size_t)n;
        on_event(c, &ev);
        wispi_conn_owed_callbacks(c);
    }
}

/* ---- receiving: the request head ------------------------------------------------------------ */

static void plain_http(struct wisp_conn *c, const struct wispi_route *route,
                       const struct wisp_http_request *req)
{
    c->plain_http = true;
    CONN_STAT(c, http_requests, 1);
    if (!route) {
        wispi_conn_reject(c, 404);
        return;
    }
    if (!route->r.on_http) {
        wispi_conn_reject(c, route->r.handler ? 426 : 404);
        return;
    }
    struct wisp_http_reply reply;
    memset(&reply, 0, sizeof reply);
    int st = route->r.on_http(route->r.data, req, (const struct sockaddr *)&c->peer, &reply);
    if (st != 0) {
        wispi_conn_reject(c, st);
        return;
    }
    size_t cap = 1024 + reply.answer.body_len;
    for (size_t i = 0; i < reply.answer.num_headers; i++)
        cap += reply.answer.headers[i].name_len + reply.answer.headers[i].value_len + 4;
    if (reply.answer.content_type)
        cap += strlen(reply.answer.content_type);
    uint8_t *out = wispi_txq_reserve(c->net, &c->txq, cap);
    ssize_t n = out ? wisp_http_write_response(&reply.answer, (char *)out, cap) : -ENOMEM;
    if (reply.release)
        reply.release((void *)(uintptr_t)reply.answer.body, reply.answer.body_len,
                      reply.release_arg);
    if (n < 0) {
        wispi_conn_reject(c, 500);
        return;
    }
    /* HEAD: the answer GET would get, Content-Length included, without its body. */
    if (req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0)
        n -= (ssize_t)reply.answer.body_len;
    wispi_txq_commit(&c->txq, (size_t)n, true);
    wispi_conn_answer_and_close(c, NULL, 0);
}

static const char *pick_protocol(const struct wispi_route *route, const struct wisp_ws_upgrade *up)
{
    for (size_t i = 0; i < route->r.num_protocols; i++) {
        const char *p = route->r.protocols[i];
        if (wisp_ws_upgrade_offers(up, p, strlen(p)))
            return p;
    }
    return NULL;
}

static int open_ws(struct wisp_conn *c, const struct wispi_route *route,
                   const struct wisp_ws_upgrade *up)
{
    const struct wisp_handler *h = route->r.handler;
    c->route = route;
    if (wisp_ws_init(&c->ws, &route->cfg) < 0)
        return 500;
    if (h->on_upgrade) {
        struct wisp_upgrade req = {up, (const struct sockaddr *)&c->peer, c->peer_len};
        c->up = up;
        int st = h->on_upgrade(c, c->state, &req);
        c->up = NULL;
        if (st != 0)
            return st;
    }
    if (!c->protocol) {
        const char *p = pick_protocol(route, up);
        if (p && !(c->protocol = strdup(p)))
            return 500;
    }
    c->path = strndup(up->path, up->path_len);
    if (!c->path)
        return 500;
    struct wisp_ws_accept_opts o = {
        .protocol = c->protocol,
        .protocol_len = c->protocol ? strlen(c->protocol) : 0,
        .headers = c->extra,
        .num_headers = c->nextra,
    };
    size_t cap = 512 + o.protocol_len;
    for (uint32_t i = 0; i < c->nextra; i++)
        cap += c->extra[i].name_len + c->extra[i].value_len + 4;
    uint8_t *out = wispi_txq_reserve(c->net, &c->txq, cap);
    if (!out)
        return 500;
    ssize_t n = wisp_ws_upgrade_accept(up, &o, (char *)out, cap);
    wispi_conn_free_extra(c);
    if (n < 0)
        return 500;
    wispi_txq_commit(&c->txq, (size_t)n, true);
    wispi_sock_dirty(c->net, &c->sock);
    wispi_conn_opened(c);
    return 0;
}

/* A whole request head: the first head_len of the len bytes at base (the rest are frames
 * that came right behind it). */
static void on_request(struct wisp_conn *c, const struct wisp_http_request *req, uint8_t *base,
                       size_t head_len, size_t len)
{
    const struct wispi_route *route = wispi_route_find(c->srv, req->path, req->path_len);
    bool upgrade = wisp_http_list_has(req->headers, req->num_headers, "Upgrade", "websocket");
    if (!upgrade) {
        plain_http(c, route, req);
        return;
    }
    if (!route || !route->r.handler) {
        wispi_conn_reject(c, 404);
        return;
    }
    struct wisp_ws_upgrade up;
    int st = wisp_ws_upgrade_check(req, &up);
    if (st == 0)
        st = open_ws(c, route, &up);
    wispi_conn_free_extra(c);
    if (st != 0) {
        c->opened = false;
        wispi_conn_reject(c, st);
        return;
    }
    if (len > head_len)
        wispi_conn_feed_ws(c, base + head_len, len - head_len);
}

static ssize_t parse_head(struct wisp_conn *c, const uint8_t *p, size_t len, size_t prev,
                          struct wisp_http_request *req, struct wisp_http_header *hdrs)
{
    struct wisp_http_limits lim = {c->srv->opts.max_request_head, WISP_HTTP_DEFAULT_MAX_HEADERS};
    return wisp_http_parse_request((const char *)p, len, prev, &lim, req, hdrs,
                                   WISP_HTTP_DEFAULT_MAX_HEADERS);
}

void wispi_conn_feed_head(struct wisp_conn *c, uint8_t *p, size_t len)
{
    uint32_t max = c->srv->opts.max_request_head;
    struct wisp_http_header hdrs[WISP_HTTP_DEFAULT_MAX_HEADERS];
    struct wisp_http_request req;
    ssize_t n;
    if (!c->head) {
        /* Usually the whole head is in one buffer: parse it where the kernel put it. */
        n = parse_head(c, p, len, 0, &req, hdrs);
        if (n > 0) {
            on_request(c, &req, p, (size_t)n, len);
            return;
        }
        if (n != WISP_EINCOMPLETE || len >= max) {
            wispi_conn_reject(c, n == WISP_EINCOMPLETE ? 431 : req.status >= 400 ? req.status : 400);
            return;
        }
        if (!(c->head = malloc(max))) {
            wispi_conn_reject(c, 503);
            return;
        }
        memcpy(c->head, p, len);
        c->head_len = (uint32_t)len;
        return;
    }
    while (len && c->phase == PH_HANDSHAKE) {
        size_t take = max - c->head_len < len ? max - c->head_len : len;
        size_t prev = c->head_len;
        memcpy(c->head + c->head_len, p, take);
        c->head_len += (uint32_t)take;
        p += take;
        len -= take;
        n = parse_head(c, (const uint8_t *)c->head, c->head_len, prev, &req, hdrs);
        if (n == WISP_EINCOMPLETE) {
            if (c->head_len == max)
                wispi_conn_reject(c, 431);
            continue;
        }
        if (n < 0) {
            wispi_conn_reject(c, req.status >= 400 ? req.status : 400);
            return;
        }
        on_request(c, &req, (uint8_t *)c->head, (size_t)n, c->head_len);
        free(c->head);
        c->head = NULL;
        if (len && c->phase >= PH_OPEN && c->phase < PH_DRAIN)
            wispi_conn_feed_ws(c, p, len); /* the rest of this buffer */
        return;
    }
}

