/* lws_echo: a minimal WebSocket echo server on libwebsockets, a peer baseline for wisp's
 * server benchmarks (it does not link libwisp).
 *
 * One context, one vhost, one protocol (the default one, so clients need not ask for a
 * subprotocol), no extensions, UTF-8 validation on as a conforming server must do. Each
 * complete message is gathered (up to MAX_MSG bytes, else the connection is closed with
 * 1009) and queued; the queue is sent back one message after another, a large message in
 * TX_CHUNK fragments, one per writable callback. When too much is queued the connection
 * stops being read (lws_rx_flow_control) until it drains. lws answers pings and closes.
 *
 *   lws_echo [--host 127.0.0.1] --port P      (P = 0 picks a free port)
 *
 * prints "listening P" on stdout once it accepts connections, and exits 0 on SIGTERM or
 * SIGINT.
 */
#include <libwebsockets.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    RX_BUFFER = 64 * 1024,            /* lws's receive buffer, and so the callback size */
    TX_CHUNK = 64 * 1024,             /* the largest fragment written in one callback */
    MAX_MSG = 16 * 1024 * 1024,       /* the largest message echoed */
    QUEUE_HIGH = 4 * 1024 * 1024,     /* stop reading above this many queued bytes... */
    QUEUE_LOW = 1024 * 1024,          /* ...and resume below this */
    QUEUE_MAX_MSGS = 256,             /* or above this many queued messages */
};

struct msg {
    struct msg *next;
    size_t len, cap, sent;
    int binary;
    unsigned char *buf;               /* LWS_PRE bytes of room, then the payload */
};

struct session {
    struct msg *cur;                  /* the message being received */
    struct msg *head, *tail;          /* messages waiting to go back */
    size_t queued_bytes, queued_msgs;
    int throttled;
};

static volatile sig_atomic_t stopping;
static struct lws_context *context;

static void msg_free(struct msg *m)
{
    if (m) {
        free(m->buf);
        free(m);
    }
}

/* Append to the message being received; -1 if it is too large or memory runs out. */
static int msg_append(struct msg *m, const void *p, size_t n)
{
    if (n > MAX_MSG - m->len)
        return -1;
    if (!m->buf || m->len + n > m->cap) {     /* even an empty message needs LWS_PRE */
        size_t cap = m->cap ? m->cap : 4096;
        while (cap < m->len + n)
            cap *= 2;
        unsigned char *b = realloc(m->buf, LWS_PRE + cap);
        if (!b)
            return -1;
        m->buf = b;
        m->cap = cap;
    }
    if (n)
        memcpy(m->buf + LWS_PRE + m->len, p, n);
    m->len += n;
    return 0;
}

static void session_free(struct session *s)
{
    msg_free(s->cur);
    s->cur = NULL;
    while (s->head) {
        struct msg *m = s->head;
        s->head = m->next;
        msg_free(m);
    }
    s->tail = NULL;
    s->queued_bytes = s->queued_msgs = 0;
}

static int on_receive(struct lws *wsi, struct session *s, const void *in, size_t len)
{
    if (!s->cur) {
        s->cur = calloc(1, sizeof *s->cur);
        if (!s->cur)
            return -1;
        s->cur->binary = lws_frame_is_binary(wsi);
    }
    if (msg_append(s->cur, in, len) < 0) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, NULL, 0);
        return -1;
    }
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
        return 0;

    /* The message is complete: queue it behind the others. */
    struct msg *m = s->cur;
    s->cur = NULL;
    if (s->tail)
        s->tail->next = m;
    else
        s->head = m;
    s->tail = m;
    s->queued_bytes += m->len;
    s->queued_msgs++;
    if (!s->throttled && (s->queued_bytes > QUEUE_HIGH || s->queued_msgs > QUEUE_MAX_MSGS)) {
        lws_rx_flow_control(wsi, 0);
        s->throttled = 1;
    }
    lws_callback_on_writable(wsi);
    return 0;
}

static int on_writeable(struct lws *wsi, struct session *s)
{
    struct msg *m = s->head;
    if (!m)
        return 0;
    size_t left = m->len - m->sent;
    size_t n = left < TX_CHUNK ? left : TX_CHUNK;
    int flags = lws_write_ws_flags(m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT,
                                   m->sent == 0, n == left);
    /* lws writes the frame header into the LWS_PRE bytes before the chunk; for a later
     * fragment those are payload bytes already sent, so they may be overwritten. */
    if (lws_write(wsi, m->buf + LWS_PRE + m->sent, n, (enum lws_write_protocol)flags) < (int)n)
        return -1;
    m->sent += n;
    if (m->sent == m->len) {
        s->head = m->next;
        if (!s->head)
            s->tail = NULL;
        s->queued_bytes -= m->len;
        s->queued_msgs--;
        msg_free(m);
        if (s->throttled && s->queued_bytes < QUEUE_LOW && s->queued_msgs < QUEUE_MAX_MSGS / 2) {
            lws_rx_flow_control(wsi, 1);
            s->throttled = 0;
        }
    }
    if (s->head)
        lws_callback_on_writable(wsi);
    return 0;
}

static int echo_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                         void *in, size_t len)
{
    struct session *s = user;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        memset(s, 0, sizeof *s);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return on_receive(wsi, s, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return on_writeable(wsi, s);
    case LWS_CALLBACK_CLOSED:
        session_free(s);
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {.name = "echo",
     .callback = echo_callback,
     .per_session_data_size = sizeof(struct session),
     .rx_buffer_size = RX_BUFFER},
    {.name = NULL},
};

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
    if (context)
        lws_cancel_service(context); /* it writes to lws's event pipe: wakes the loop */
}

static void usage(void)
{
    fprintf(stderr, "usage: lws_echo [--host ADDR] --port PORT\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    const char *port = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--host") == 0 && i + 1 < argc)
            host = argv[++i];
        else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = argv[++i];
        else
            usage();
    }
    if (!port)
        usage();
    char *end;
    long p = strtol(port, &end, 10);
    if (*end || p < 0 || p > 65535)
        usage();

    lws_set_log_level(LLL_ERR | LLL_WARN, NULL);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = (int)p;
    info.iface = host;
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    if (!strchr(host, ':'))
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    context = lws_create_context(&info);
    if (!context) {
        fprintf(stderr, "lws_echo: cannot create the context on %s:%ld\n", host, p);
        return 1;
    }
    struct lws_vhost *vh = lws_get_vhost_by_name(context, "default");
    printf("listening %d\n", vh ? lws_get_vhost_listen_port(vh) : (int)p);
    fflush(stdout);

    while (!stopping)
        if (lws_service(context, 0) < 0)
            break;

    lws_context_destroy(context);
    return 0;
}
