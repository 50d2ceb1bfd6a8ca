/* actors/pubsub_bridge.c: the "pubsub" module (see pubsub_bridge.h).
 * Written against the public headers only. */
#include "pubsub_bridge.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/pubsub.h>
#include <wisp/server.h>

#include "json.h"

#define PREFIX_MAX 64

struct ps_mount {
    char prefix[PREFIX_MAX + 1];
    size_t prefix_len;
    uint32_t max_subs;
};

struct ps_conn {
    uint32_t nsubs;
};

static void send_error(struct wisp_conn *c, const char *what)
{
    char buf[160];
    int n = snprintf(buf, sizeof buf, "{\"type\":\"error\",\"error\":\"%s\"}", what);
    if (n > 0 && (size_t)n < sizeof buf)
        (void)wisp_conn_send_text(c, buf, (size_t)n);
}

/* {"type":"<type>","topic":<topic>} to the client. */
static void send_ack(struct wisp_conn *c, const char *type, const char *topic, size_t len)
{
    struct wjson_buf b;
    wjson_buf_init(&b, 0);
    wjson_puts(&b, "{\"type\":\"");
    wjson_puts(&b, type);
    wjson_puts(&b, "\",\"topic\":");
    wjson_put_string(&b, topic, len);
    wjson_puts(&b, "}");
    if (b.failed)
        send_error(c, "out of memory");
    else
        (void)wisp_conn_send_text(c, b.data, b.len);
    wjson_buf_reset(&b);
}

static void ps_text(struct wisp_conn *c, void *state, const char *data, size_t len)
{
    struct ps_conn *st = state;
    const struct ps_mount *m = wisp_conn_route_data(c);
    char type[16];
    /* The runtime's topic name: the prefix, then the client's topic, NUL-terminated. */
    char full[PREFIX_MAX + WISP_TOPIC_MAX + 1];
    memcpy(full, m->prefix, m->prefix_len);
    char *topic = full + m->prefix_len;
    size_t topic_cap = WISP_TOPIC_MAX - m->prefix_len + 1; /* + the NUL */
    /* Decoded data is never longer than the frame. */
    char *payload = malloc(len + 1);
    if (!payload) {
        send_error(c, "out of memory");
        return;
    }
    struct wjson_field f[3] = {
        {.key = "type", .out = type, .cap = sizeof type},
        {.key = "topic", .out = topic, .cap = topic_cap},
        {.key = "data", .out = payload, .cap = len + 1},
    };
    int rc = wjson_get_fields(data, len, f, 3);
    const char *err = NULL;
    int op = -1; /* 0 subscribe, 1 unsubscribe, 2 publish */
    if (rc == WJSON_ESYNTAX || rc == WJSON_EDUP)
        err = "invalid JSON";
    else if (f[0].error == WJSON_ETOOLONG)
        err = "unknown type";
    else if (!f[0].found)
        err = "missing type";
    else if (f[0].len == 9 && strcmp(type, "subscribe") == 0)
        op = 0;
    else if (f[0].len == 11 && strcmp(type, "unsubscribe") == 0)
        op = 1;
    else if (f[0].len == 7 && strcmp(type, "publish") == 0)
        op = 2;
    else
        err = "unknown type";
    if (!err) {
        if (f[1].error == WJSON_ETOOLONG)
            err = "bad topic";
        else if (!f[1].found)
            err = "missing topic";
        else if (f[1].len == 0 || memchr(topic, '\0', f[1].len))
            err = "bad topic";
        else if (op == 2 && !f[2].found)
            err = "missing data";
    }
    if (err) {
        free(payload);
        send_error(c, err);
        return;
    }
    size_t tlen = f[1].len;
    if (op == 0) {
        if (wisp_conn_subscribed(c, full)) {
            send_ack(c, "subscribed", topic, tlen);
        } else if (st->nsubs >= m->max_subs) {
            char msg[64];
            snprintf(msg, sizeof msg, "too many subscriptions (max %" PRIu32 ")", m->max_subs);
            send_error(c, msg);
        } else {
            rc = wisp_conn_subscribe(c, full);
            if (rc == 0) {
                st->nsubs++;
                send_ack(c, "subscribed", topic, tlen);
            } else if (rc == -ENOSPC) {
                char msg[64];
                snprintf(msg, sizeof msg, "too many subscriptions (max %" PRIu32 ")",
                         st->nsubs);
                send_error(c, msg);
            } else if (rc != WISP_ECLOSED) {
                send_error(c, rc == -EINVAL ? "bad topic" : "subscribe failed");
            }
        }
    } else if (op == 1) {
        rc = wisp_conn_unsubscribe(c, full);
        if (rc == 0) {
            if (st->nsubs)
                st->nsubs--;
            send_ack(c, "unsubscribed", topic, tlen);
        } else {
            send_error(c, rc == -ENOENT ? "not subscribed" : "bad topic");
        }
    } else {
        struct wjson_buf b;
        wjson_buf_init(&b, 0);
        wjson_puts(&b, "{\"type\":\"message\",\"topic\":");
        wjson_put_string(&b, topic, tlen);
        wjson_puts(&b, ",\"data\":");
        wjson_put_string(&b, payload, f[2].len);
        wjson_puts(&b, "}");
        if (b.failed) {
            send_error(c, "out of memory");
        } else {
            rc = wisp_publish(wisp_conn_ctx(c), full, WISP_WS_OP_TEXT, b.data, b.len);
            if (rc < 0 && rc != WISP_ECLOSED)
                send_error(c, rc == -EINVAL ? "bad topic" : "publish failed");
        }
        wjson_buf_reset(&b);
    }
    free(payload);
}

static void ps_binary(struct wisp_conn *c, void *state, const uint8_t *data, size_t len)
{
    (void)state;
    (void)data;
    (void)len;
    send_error(c, "binary messages are not supported");
}

static const struct wisp_handler ps_handler = {
    .state_size = sizeof(struct ps_conn),
    .on_text = ps_text,
    .on_binary = ps_binary,
};

/* ---- mounting ---------------------------------------------------------------------------- */

/* A whole decimal number with an optional K, M or G suffix (powers of 1024). */
static bool parse_size(const char *s, size_t n, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    if (n == 0 || s[0] < '0' || s[0] > '9')
        return false;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (i < n) {
        unsigned shift;
        switch (s[i]) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        default: return false;
        }
        if (i + 1 != n || v > (UINT64_MAX >> shift))
            return false;
        v <<= shift;
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

static int ps_mount_fn(struct wisp_runtime *rt, struct wisp_route *r, const char *arg,
                       void **instance)
{
    (void)rt;
    struct ps_mount *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    strcpy(m->prefix, "pubsub/");
    m->prefix_len = strlen(m->prefix);
    m->max_subs = 64;
    uint64_t send_cap = 0;
    for (const char *p = arg; p && *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        size_t kl = eq ? (size_t)(eq - p) : n;
        const char *v = eq ? eq + 1 : NULL;
        size_t vl = eq ? n - kl - 1 : 0;
        uint64_t num;
        if (eq && kl == 8 && memcmp(p, "max_subs", 8) == 0) {
            if (!vl || v[vl - 1] < '0' || v[vl - 1] > '9' ||
                !parse_size(v, vl, 1, WISP_SUBS_MAX, &num)) {
                fprintf(stderr, "pubsub: '%.*s': max_subs must be a whole number from 1 to "
                        "%d\n", (int)n, p, WISP_SUBS_MAX);
                goto bad;
            }
            m->max_subs = (uint32_t)num;
        } else if (eq && kl == 6 && memcmp(p, "prefix", 6) == 0) {
            if (vl > PREFIX_MAX || memchr(v, '\0', vl)) {
                fprintf(stderr, "pubsub: '%.*s': prefix is at most %d bytes\n", (int)n, p,
                        PREFIX_MAX);
                goto bad;
            }
            memcpy(m->prefix, v, vl);
            m->prefix[vl] = '\0';
            m->prefix_len = vl;
        } else if (eq && kl == 8 && memcmp(p, "send_cap", 8) == 0) {
            if (!parse_size(v, vl, 64u << 10, 1u << 30, &num)) {
                fprintf(stderr, "pubsub: '%.*s': send_cap must be a size from 64K to 1G\n",
                        (int)n, p);
                goto bad;
            }
            send_cap = num;
        } else {
            fprintf(stderr, "pubsub: bad setting '%.*s' in '%s' (expected max_subs=N, "
                    "prefix=TEXT or send_cap=SIZE, separated by commas)\n", (int)n, p, arg);
            goto bad;
        }
        if (end && !end[1]) {
            fprintf(stderr, "pubsub: trailing ',' in '%s'\n", arg);
            goto bad;
        }
        p = end ? end + 1 : p + n;
    }
    if (send_cap) {
        r->send_cap = (size_t)send_cap;
        if (r->send_high_watermark > r->send_cap)
            r->send_high_watermark = r->send_cap;
        if (r->send_low_watermark > r->send_high_watermark / 2)
            r->send_low_watermark = r->send_high_watermark / 4;
    }
    r->handler = &ps_handler;
    r->data = m;
    *instance = m;
    return 0;
bad:
    free(m);
    return -EINVAL;
}

static void ps_unmount(void *instance)
{
    free(instance);
}

const struct wisp_module wisp_pubsub_module = {
    .abi_version = WISP_MODULE_ABI_VERSION,
    .struct_size = sizeof(struct wisp_module),
    .name = "pubsub",
    .description = "topics for WebSocket clients: JSON subscribe, unsubscribe and publish",
    .mount = ps_mount_fn,
    .unmount = ps_unmount,
};
