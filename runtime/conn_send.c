/* Frames out: the public send calls, pings, local closes, and the per-connection queries. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"

static int check_room(struct wisp_conn *c, size_t need)
{
    const struct wisp_route *r = &c->route->r;
    if (conn_buffered(c) + need <= r->send_cap)
        return 0;
    if (r->overflow == WISP_OVERFLOW_DROP) {
        CONN_STAT(c, dropped, 1);
        return WISP_EFULL;
    }
    wispi_conn_library_close(c, WISP_CLOSE_POLICY, WISP_WHY_BACKPRESSURE, "send buffer full");
    return WISP_ECLOSED;
}

static int after_queued(struct wisp_conn *c)
{
    wispi_sock_dirty(c->net, &c->sock);
    if (conn_buffered(c) >= c->route->r.send_high_watermark) {
        if (!c->throttled) {
            c->throttled = true;
            c->cb_throttled = true;
            CONN_STAT(c, throttled, 1);
        }
        return WISP_SEND_PRESSURE;
    }
    return 0;
}

/* Encode a whole message. Large ones go out as separate fragment segments so that control
 * frames can be placed between them. */
static int encode_message(struct wisp_conn *c, enum wisp_ws_opcode op, const uint8_t *data,
                          size_t len)
{
    size_t need = wisp_ws_send_size(&c->ws, len);
    size_t frag = c->route->cfg.fragment_size;
    if (need <= WISPI_CHUNK / 2 || !frag || len <= frag) {
        uint8_t *out = wispi_txq_reserve(c->net, &c->txq, need);
        if (!out)
            return -ENOMEM;
        ssize_t n = wisp_ws_send(&c->ws, op, data, len, out, need);
        if (n < 0)
            return (int)n;
        wispi_txq_commit(&c->txq, (size_t)n, true);
        return 0;
    }
    if (op == WISP_WS_OP_TEXT && !wisp_utf8_valid(data, len))
        return -EILSEQ;
    for (size_t off = 0; off < len;) {
        size_t piece = len - off < frag ? len - off : frag;
        size_t cap = WISP_WS_MAX_HEADER + piece;
        uint8_t *out = wispi_txq_reserve(c->net, &c->txq, cap);
        if (!out)
            return -ENOMEM; /* a partial message: the caller fails the connection */
        ssize_t n = wisp_ws_send_fragment(&c->ws, op, data + off, piece, off + piece == len, out,
                                          cap);
        if (n < 0)
            return (int)n;
        wispi_txq_commit(&c->txq, (size_t)n, true);
        off += piece;
    }
    return 0;
}

static bool send_hook(struct wisp_conn *c, struct wisp_frame *f)
{
    const struct wisp_handler *h = handler_of(c);
    return h && h->on_send_frame && h->on_send_frame(c, c->state, f) == WISP_FRAME_DROP;
}

int wispi_conn_send_message(struct wisp_conn *c, enum wisp_ws_opcode op, const void *data,
                        size_t len)
{
    if (!c || (op != WISP_WS_OP_TEXT && op != WISP_WS_OP_BINARY) || (!data && len))
        return -EINVAL;
    if (c->phase != PH_OPEN)
        return WISP_ECLOSED;
    struct wisp_frame f = {op, true, true, (uint8_t *)(uintptr_t)data, len};
    if (send_hook(c, &f))
        return 0;
    int rc = check_room(c, wisp_ws_send_size(&c->ws, f.len));
    if (rc)
        return rc;
    size_t before = c->txq.buffered;
    rc = encode_message(c, op, f.data, f.len);
    if (rc == -EILSEQ || (rc < 0 && c->txq.buffered == before))
        return rc;
    if (rc < 0) {
        /* Part of a fragmented message is queued: the stream cannot continue. */
        wispi_conn_library_close(c, WISP_CLOSE_INTERNAL_ERROR, WISP_WHY_NO_MEMORY, "out of memory");
        return rc;
    }
    CONN_STAT(c, messages_out, 1);
    CONN_STAT(c, bytes_out, f.len);
    return after_queued(c);
}

int wisp_conn_send_text(struct wisp_conn *c, const char *data, size_t len)
{
    return wispi_conn_send_message(c, WISP_WS_OP_TEXT, data, len);
}

int wisp_conn_send_binary(struct wisp_conn *c, const void *data, size_t len)
{
    return wispi_conn_send_message(c, WISP_WS_OP_BINARY, data, len);
}

int wisp_conn_send_ref(struct wisp_conn *c, enum wisp_ws_opcode op, const void *data,
                       size_t len, wisp_release_fn release, void *arg)
{
    int rc;
    if (!c || (op != WISP_WS_OP_TEXT && op != WISP_WS_OP_BINARY) || (!data && len)) {
        rc = -EINVAL;
        goto fail;
    }
    if (c->phase != PH_OPEN) {
        rc = WISP_ECLOSED;
        goto fail;
    }
    if (op == WISP_WS_OP_TEXT && !wisp_utf8_valid(data, len)) {
        rc = -EILSEQ;
        goto fail;
    }
    struct wisp_frame f = {op, true, true, (uint8_t *)(uintptr_t)data, len};
    if (send_hook(c, &f)) {
        rc = 0;
        goto fail;
    }
    if (f.data != data || f.len != len) {
        /* The hook substituted its own bytes, which live only for this call: copy them. */
        rc = wispi_conn_send_message(c, op, f.data, f.len);
        goto fail;
    }
    size_t frag = c->route->cfg.fragment_size ? c->route->cfg.fragment_size : len;
    size_t pieces = len ? (len + frag - 1) / frag : 1;
    rc = check_room(c, len + pieces * WISP_WS_MAX_HEADER);
    if (rc)
        goto fail;
    /* The server role sends unmasked frames, so the payload goes out as it is: a header we
     * encode, then the caller's bytes. */
    size_t off = 0;
    do {
        size_t piece = len - off < frag ? len - off : frag;
        bool fin = off + piece == len;
        uint8_t *out = wispi_txq_reserve(c->net, &c->txq, WISP_WS_MAX_HEADER);
        if (!out) {
            rc = -ENOMEM;
            goto partial;
        }
        size_t hl = wisp_ws_frame_header(out, off ? WISP_WS_OP_CONTINUATION : op, fin, 0, piece,
                                         NULL);
        wispi_txq_commit(&c->txq, hl, piece == 0);
        if (piece) {
            rc = wispi_txq_ref(c->net, &c->txq, (const uint8_t *)data + off, piece, true,
                               fin ? release : NULL, (void *)(uintptr_t)data, len, arg);
            if (rc < 0) {
                release = NULL; /* released by wispi_txq_ref */
                goto partial;
            }
        }
        off += piece;
    } while (off < len);
    if (!len && release)
        release((void *)(uintptr_t)data, len, arg); /* nothing refers to it: done already */
    CONN_STAT(c, messages_out, 1);
    CONN_STAT(c, bytes_out, len);
    return after_queued(c);
partial:
    if (release)
        release((void *)(uintptr_t)data, len, arg);
    wispi_conn_library_close(c, WISP_CLOSE_INTERNAL_ERROR, WISP_WHY_NO_MEMORY, "out of memory");
    return rc;
fail:
    if (release)
        release((void *)(uintptr_t)data, len, arg);
    return rc;
}

/* ---- shared frames (pub/sub, broadcast) ------------------------------------------------------ */

bool wispi_conn_try_shared(struct wisp_conn *c, struct wispi_frame *f)
{
    const struct wisp_handler *h = handler_of(c);
    if (c->client || f->nfrag != 1 || (h && h->on_send_frame) ||
        conn_buffered(c) + f->wire_len >= c->route->r.send_high_watermark)
        return false;
    wispi_frame_ref(f);
    if (wispi_txq_ref(c->net, &c->txq, f->wire, f->wire_len, true, wispi_frame_release, f, 0,
                      c->srv->rt) < 0)
        return false; /* released; the mailbox path will try again (and report) */
    wispi_sock_dirty(c->net, &c->sock);
    CONN_STAT(c, messages_out, 1);
    CONN_STAT(c, bytes_out, f->len);
    return true;
}

int wispi_conn_send_shared(struct wisp_conn *c, struct wispi_frame *f)
{
    if (c->phase != PH_OPEN)
        return WISP_ECLOSED;
    const struct wisp_handler *h = handler_of(c);
    if (c->client || (h && h->on_send_frame)) {
        /* A client masks every frame, and a hook may change the payload: neither can use
         * the shared bytes, so this connection frames its own copy. */
        uint8_t *p = malloc(f->len ? f->len : 1);
        if (!p)
            return -ENOMEM;
        wispi_frame_payload(f, p);
        int rc = wispi_conn_send_message(c, (enum wisp_ws_opcode)f->op, p, f->len);
        free(p);
        return rc;
    }
    int rc = check_room(c, f->wire_len);
    if (rc)
        return rc;
    size_t start = 0;
    for (uint32_t i = 0; i < f->nfrag; i++) {
        wispi_frame_ref(f);
        rc = wispi_txq_ref(c->net, &c->txq, f->wire + start, f->frag_end[i] - start, true,
                           wispi_frame_release, f, 0, c->srv->rt);
        if (rc < 0) {
            if (i) /* part of a fragmented message is queued: the stream cannot go on */
                wispi_conn_library_close(c, WISP_CLOSE_INTERNAL_ERROR, WISP_WHY_NO_MEMORY,
                                         "out of memory");
            return rc;
        }
        start = f->frag_end[i];
    }
    CONN_STAT(c, messages_out, 1);
    CONN_STAT(c, bytes_out, f->len);
    return after_queued(c);
}

int wispi_conn_send_control(struct wisp_conn *c, enum wisp_ws_opcode op, const void *data,
                        size_t len)
{
    uint8_t frame[WISP_WS_MAX_HEADER + WISP_WS_MAX_CONTROL];
    ssize_t n = wisp_ws_send_control(&c->ws, op, data, len, frame, sizeof frame);
    if (n < 0)
        return (int)n;
    if (wispi_txq_ctrl(&c->txq, frame, (size_t)n) < 0)
        return -ENOMEM;
    wispi_sock_dirty(c->net, &c->sock);
    return 0;
}

int wisp_conn_ping(struct wisp_conn *c, const void *data, size_t len)
{
    if (!c || (!data && len))
        return -EINVAL;
    if (len > WISP_WS_MAX_CONTROL)
        return -EMSGSIZE;
    if (c->phase != PH_OPEN)
        return WISP_ECLOSED;
    struct wisp_frame f = {WISP_WS_OP_PING, true, true, (uint8_t *)(uintptr_t)data, len};
    if (send_hook(c, &f))
        return 0;
    if (f.len > WISP_WS_MAX_CONTROL)
        return -EMSGSIZE;
    return wispi_conn_send_control(c, WISP_WS_OP_PING, f.data, f.len);
}

int wispi_conn_local_close(struct wisp_conn *c, uint16_t code, const char *reason, size_t len)
{
    if (!wisp_close_code_is_valid(code) || len > WISP_WS_MAX_CONTROL - 2 || (!reason && len) ||
        (len && !wisp_utf8_valid(reason, len)))
        return -EINVAL;
    if (c->phase != PH_OPEN)
        return WISP_ECLOSED;
    int rc = wispi_conn_queue_close(c, code, reason, len, false);
    if (rc < 0) {
        wispi_conn_library_close(c, WISP_CLOSE_INTERNAL_ERROR, WISP_WHY_NO_MEMORY, "out of memory");
        return rc;
    }
    wispi_conn_record(c, code, reason, len, WISP_CLOSED_BY_LOCAL, WISP_WHY_NORMAL);
    c->phase = PH_CLOSING;
    c->deadline_ms = now_ms(c) + c->srv->opts.close_timeout_ms;
    return 0;
}

int wisp_conn_close(struct wisp_conn *c, uint16_t code, const char *reason, size_t reason_len)
{
    if (!c)
        return -EINVAL;
    return wispi_conn_local_close(c, code, reason, reason_len);
}

size_t wisp_conn_buffered(const struct wisp_conn *c)
{
    return c ? conn_buffered(c) : 0;
}

struct wisp_ctx *wisp_conn_ctx(struct wisp_conn *c)
{
    return c->ctx;
}

wisp_addr wisp_conn_addr(const struct wisp_conn *c)
{
    return c->sock.ref->addr;
}

void *wisp_conn_route_data(const struct wisp_conn *c)
{
    return c->route ? c->route->r.data : NULL;
}

const char *wisp_conn_path(const struct wisp_conn *c)
{
    return c->path ? c->path : "";
}

const char *wisp_conn_protocol(const struct wisp_conn *c)
{
    return c->protocol;
}

const struct sockaddr *wisp_conn_peer(const struct wisp_conn *c, socklen_t *len)
{
    if (len)
        *len = c->peer_len;
    return (const struct sockaddr *)&c->peer;
}

int wisp_conn_accept_protocol(struct wisp_conn *c, const char *protocol)
{
    if (!c || !protocol || !c->up || !wisp_ws_upgrade_offers(c->up, protocol, strlen(protocol)))
        return -EINVAL;
    char *p = strdup(protocol);
    if (!p)
        return -ENOMEM;
    free(c->protocol);
    c->protocol = p;
    return 0;
}

int wisp_conn_add_header(struct wisp_conn *c, const char *name, const char *value)
{
    if (!c || !name || !value || !c->up || !*name)
        return -EINVAL;
    for (const char *p = value; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t')
            return -EINVAL;
    struct wisp_http_header *v = realloc(c->extra, (c->nextra + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    c->extra = v;
    char *n = strdup(name), *val = strdup(value);
    if (!n || !val) {
        free(n);
        free(val);
        return -ENOMEM;
    }
    v[c->nextra++] = (struct wisp_http_header){n, strlen(n), val, strlen(val)};
    /* The name's validity (a token, not one wisp writes) is checked by the 101 writer; check
     * it now so the caller hears about it here. */
    char probe[1024];
    struct wisp_ws_accept_opts o = {.headers = &v[c->nextra - 1], .num_headers = 1};
    if (wisp_ws_upgrade_accept(c->up, &o, probe, sizeof probe) == -EINVAL) {
        c->nextra--;
        free(n);
        free(val);
        return -EINVAL;
    }
    return 0;
}

void wispi_conn_free_extra(struct wisp_conn *c)
{
    for (uint32_t i = 0; i < c->nextra; i++) {
        free((char *)(uintptr_t)c->extra[i].name);
        free((char *)(uintptr_t)c->extra[i].value);
    }
    free(c->extra);
    c->extra = NULL;
    c->nextra = 0;
}

