/* wisp-load: a WebSocket load generator (client) on one thread and one io_uring.
 *
 * Every connection is a small state machine driven by completions: connect, send the upgrade
 * request, read and check the answer, then (echo mode) keep --depth messages in flight and
 * verify every echoed byte, (idle mode) just hold the connection, (storm mode) close it
 * as soon as the upgrade is accepted while the next ones are opened, or (broadcast mode) one
 * publisher sends within a window and N subscribers verify what the server fans out to them.
 * At the end each connection sends close 1000, waits for the peer's close and its FIN, and
 * closes.
 *
 * At most one recv and one send are in flight per socket (io_uring.7: more may be reordered).
 * Output for a connection is appended to its tx buffer; the in-flight send covers a prefix of
 * it, and its completion either resets the buffer or moves the unsent rest to the front and
 * sends that (short sends included). Received bytes go through the wsproto engine in stream
 * mode (WISP_WS_STREAM), so even a 16 MiB echo is verified piece by piece without reassembly.
 *
 * See README.md for the options and the output.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>
#include <wisp/wisp.h>

#include "bcast.h"
#include "hist.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MAX_SRC 64
#define HDR_LEN 24     /* payload prefix: 8 hex digits of connection id, 16 of sequence */
#define PAT_SPREAD 61  /* the rest of a payload starts at pattern offset seq % PAT_SPREAD */
#define MAX_ERR_LOG 10 /* error descriptions printed to stderr before going quiet */

/* ------------------------------------------------------------------------------------------ */
/* Options */

enum mode { MODE_ECHO, MODE_IDLE, MODE_STORM, MODE_BROADCAST };

static struct options {
    enum mode mode;
    char host[300];   /* Host header value (with :port unless 80) */
    char target[1024];
    struct sockaddr_in dst;
    unsigned conns;   /* all connections; in broadcast mode the subscribers and the publisher */
    unsigned subs;    /* broadcast mode: subscribers (conns[0..subs)); the publisher is last */
    unsigned window;  /* broadcast mode: messages not yet received by every subscriber */
    size_t size;
    bool text;
    unsigned depth;
    double duration, warmup, hold;
    double connect_timeout, close_timeout;
    unsigned connect_batch;
    struct in_addr src[MAX_SRC];
    unsigned nsrc;
} opt = {
    .mode = MODE_ECHO,
    .conns = 10,
    .size = 128,
    .depth = 1,
    .window = 16,
    .duration = 10,
    .warmup = 1,
    .hold = 10,
    .connect_timeout = 10,
    .close_timeout = 5,
    .connect_batch = 512,
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: wisp-load --url ws://HOST:PORT/PATH [options]\n"
            "echo mode (default):\n"
            "  --conns N            connections (10)\n"
            "  --size BYTES         message payload size, 1..16777216 (128)\n"
            "  --text | --binary    message type (binary)\n"
            "  --depth K            messages in flight per connection (1)\n"
            "  --duration SECONDS   measured time (10)\n"
            "  --warmup SECONDS     unmeasured time before it (1)\n"
            "idle mode:\n"
            "  --idle N             open N connections, hold them, close them\n"
            "  --hold SECONDS       how long to hold them (10)\n"
            "storm mode:\n"
            "  --storm N            open and upgrade N connections, each closed (close 1000)\n"
            "                       right after its upgrade; --connect-batch of them at once\n"
            "broadcast mode (a route that sends every message to all other connections):\n"
            "  --broadcast N        N subscribers, then 1 publisher; --size (>= 16), --text,\n"
            "                       --duration, --warmup as in echo mode\n"
            "  --window W           messages not yet received by every subscriber (16)\n"
            "all modes:\n"
            "  --src A,B,...        IPv4 source addresses to bind, round-robin\n"
            "  --connect-timeout S  limit for opening all connections (10; in storm mode\n"
            "                       for the whole storm)\n"
            "  --close-timeout S    limit for the close handshakes (5)\n"
            "  --connect-batch N    connection attempts in progress at once (512; in storm\n"
            "                       mode, connections not yet closed)\n");
}

static bool parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < 0 || v > 1e6)
        return false;
    *out = v;
    return true;
}

static bool parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v > max)
        return false;
    *out = v;
    return true;
}

/* ws://HOST[:PORT][/PATH]; HOST is a name or an IPv4 literal resolved to IPv4. */
static bool parse_url(const char *url)
{
    const char *p = url;
    if (strncmp(p, "ws://", 5) != 0) {
        fprintf(stderr, "wisp-load: --url must start with ws:// (wss is not supported)\n");
        return false;
    }
    p += 5;
    size_t auth_len = strcspn(p, "/?#");
    if (auth_len == 0 || auth_len >= 256) {
        fprintf(stderr, "wisp-load: --url has no usable host\n");
        return false;
    }
    char auth[256];
    memcpy(auth, p, auth_len);
    auth[auth_len] = '\0';
    const char *path = p + auth_len;
    if (*path == '#')
        path = "";
    if (*path == '\0')
        path = "/";
    if (*path == '?') {
        if (strlen(path) + 2 > sizeof opt.target)
            return false;
        snprintf(opt.target, sizeof opt.target, "/%s", path);
    } else {
        size_t n = strcspn(path, "#");
        if (n + 1 > sizeof opt.target)
            return false;
        memcpy(opt.target, path, n);
        opt.target[n] = '\0';
    }

    char hostname[256];
    const char *port = "80";
    char *colon = strrchr(auth, ':');
    if (colon) {
        *colon = '\0';
        port = colon + 1;
    }
    snprintf(hostname, sizeof hostname, "%s", auth);
    unsigned long long portnum;
    if (!parse_uint(port, 65535, &portnum) || portnum == 0) {
        fprintf(stderr, "wisp-load: bad port in --url\n");
        return false;
    }
    if (portnum == 80)
        snprintf(opt.host, sizeof opt.host, "%s", hostname);
    else
        snprintf(opt.host, sizeof opt.host, "%s:%llu", hostname, portnum);

    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    int rc = getaddrinfo(hostname, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "wisp-load: cannot resolve %s: %s\n", hostname, gai_strerror(rc));
        return false;
    }
    memcpy(&opt.dst, res->ai_addr, sizeof opt.dst);
    freeaddrinfo(res);
    return true;
}

static bool parse_src(const char *list)
{
    char buf[4096];
    if (strlen(list) >= sizeof buf)
        return false;
    snprintf(buf, sizeof buf, "%s", list);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (opt.nsrc == MAX_SRC) {
            fprintf(stderr, "wisp-load: at most %d --src addresses\n", MAX_SRC);
            return false;
        }
        if (inet_pton(AF_INET, tok, &opt.src[opt.nsrc]) != 1) {
            fprintf(stderr, "wisp-load: --src: '%s' is not an IPv4 address\n", tok);
            return false;
        }
        opt.nsrc++;
    }
    return opt.nsrc > 0;
}

static bool parse_args(int argc, char **argv)
{
    enum { O_URL = 256, O_CONNS, O_SIZE, O_TEXT, O_BINARY, O_DEPTH, O_DURATION, O_WARMUP,
           O_IDLE, O_HOLD, O_STORM, O_SRC, O_CTIMEOUT, O_CLTIMEOUT, O_CBATCH, O_BROADCAST,
           O_WINDOW, O_HELP };
    static const struct option longopts[] = {
        {"url", required_argument, NULL, O_URL},
        {"conns", required_argument, NULL, O_CONNS},
        {"size", required_argument, NULL, O_SIZE},
        {"text", no_argument, NULL, O_TEXT},
        {"binary", no_argument, NULL, O_BINARY},
        {"depth", required_argument, NULL, O_DEPTH},
        {"duration", required_argument, NULL, O_DURATION},
        {"warmup", required_argument, NULL, O_WARMUP},
        {"idle", required_argument, NULL, O_IDLE},
        {"hold", required_argument, NULL, O_HOLD},
        {"storm", required_argument, NULL, O_STORM},
        {"src", required_argument, NULL, O_SRC},
        {"connect-timeout", required_argument, NULL, O_CTIMEOUT},
        {"close-timeout", required_argument, NULL, O_CLTIMEOUT},
        {"connect-batch", required_argument, NULL, O_CBATCH},
        {"broadcast", required_argument, NULL, O_BROADCAST},
        {"window", required_argument, NULL, O_WINDOW},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    unsigned modes = 0; /* --idle, --storm, --broadcast seen */
    bool have_url = false;
    unsigned long long u;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case O_URL: ok = have_url = parse_url(optarg); break;
        case O_CONNS: ok = parse_uint(optarg, 10000000, &u) && u > 0; opt.conns = (unsigned)u; break;
        case O_SIZE: ok = parse_uint(optarg, 16u << 20, &u) && u > 0; opt.size = (size_t)u; break;
        case O_TEXT: opt.text = true; break;
        case O_BINARY: opt.text = false; break;
        case O_DEPTH: ok = parse_uint(optarg, 4096, &u) && u > 0; opt.depth = (unsigned)u; break;
        case O_DURATION: ok = parse_double(optarg, &opt.duration) && opt.duration > 0; break;
        case O_WARMUP: ok = parse_double(optarg, &opt.warmup); break;
        case O_IDLE:
            ok = parse_uint(optarg, 10000000, &u) && u > 0;
            opt.mode = MODE_IDLE;
            opt.conns = (unsigned)u;
            modes++;
            break;
        case O_STORM:
            ok = parse_uint(optarg, 10000000, &u) && u > 0;
            opt.mode = MODE_STORM;
            opt.conns = (unsigned)u;
            modes++;
            break;
        case O_HOLD: ok = parse_double(optarg, &opt.hold); break;
        case O_SRC: ok = parse_src(optarg); break;
        case O_CTIMEOUT: ok = parse_double(optarg, &opt.connect_timeout); break;
        case O_CLTIMEOUT: ok = parse_double(optarg, &opt.close_timeout); break;
        case O_CBATCH: ok = parse_uint(optarg, 1000000, &u) && u > 0; opt.connect_batch = (unsigned)u; break;
        case O_BROADCAST:
            ok = parse_uint(optarg, 10000000, &u) && u > 0;
            opt.mode = MODE_BROADCAST;
            opt.subs = (unsigned)u;
            modes++;
            break;
        case O_WINDOW: ok = parse_uint(optarg, 65536, &u) && u > 0; opt.window = (unsigned)u; break;
        case O_HELP: usage(stdout); exit(0);
        default: usage(stderr); return false;
        }
        if (!ok) {
            fprintf(stderr, "wisp-load: bad value for --%s\n", longopts[c - O_URL].name);
            return false;
        }
    }
    if (optind != argc || !have_url) {
        usage(stderr);
        return false;
    }
    if (modes > 1) {
        fprintf(stderr, "wisp-load: --idle, --storm and --broadcast are different modes; "
                        "pick one\n");
        return false;
    }
    if (opt.mode == MODE_BROADCAST) {
        if (opt.size < BC_HDR_LEN) {
            fprintf(stderr, "wisp-load: --broadcast needs --size %d or more (the header)\n",
                    BC_HDR_LEN);
            return false;
        }
        opt.conns = opt.subs + 1; /* the publisher is conns[subs] */
    }
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Clock, counters */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t sec_to_ns(double s)
{
    return (uint64_t)(s * 1e9);
}

static struct stats {
    uint64_t msgs, bytes;           /* echoes (broadcast: deliveries) inside the measured window */
    uint64_t msgs_total;            /* all verified echoes (broadcast: deliveries) */
    uint64_t publishes;             /* broadcast: messages sent inside the measured window */
    uint64_t publishes_total;       /* broadcast: all messages sent after the sync */
    uint64_t syncs_sent, syncs_received;
    uint64_t other_msgs;            /* broadcast: not ours, but allowed (see bc_other) */
    uint64_t missed;                /* broadcast: messages skipped by the gaps */
    uint64_t sync_timeouts;         /* broadcast: subscribers no sync message reached in time */
    uint64_t clean_ends;            /* connections that ended by the close handshake and FIN */
    uint64_t verify_errors;         /* wrong length, opcode, sequence, byte, or unsolicited */
    uint64_t connect_errors;        /* socket/bind/connect failures and connect timeouts */
    uint64_t handshake_errors;      /* refused or malformed upgrade answers */
    uint64_t protocol_errors;       /* engine faults (the server broke RFC 6455) */
    uint64_t io_errors;             /* send/recv errors other than a reset */
    uint64_t close_timeouts;        /* close handshakes that did not finish in time */
    uint64_t closes;                /* connections closed other than by our close 1000 */
    uint64_t close_codes[17];       /* closes by code 1000..1016 */
    uint64_t close_other;           /* closes with another code */
    uint64_t pongs_dropped;
    struct hist lat;                /* echo: round trips; storm: connect to upgrade accepted;
                                       broadcast: send to delivery */
} st;

static unsigned err_logged;

__attribute__((format(printf, 2, 3))) static void log_err(uint32_t id, const char *fmt, ...)
{
    if (err_logged >= MAX_ERR_LOG)
        return;
    if (++err_logged == MAX_ERR_LOG) {
        fprintf(stderr, "wisp-load: (further errors are counted, not printed)\n");
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "wisp-load: conn %" PRIu32 ": ", id);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static uint64_t total_errors(void)
{
    return st.verify_errors + st.connect_errors + st.handshake_errors + st.protocol_errors +
           st.io_errors + st.close_timeouts + st.sync_timeouts;
}

static void count_close(uint16_t code)
{
    st.closes++;
    if (code >= 1000 && code <= 1016)
        st.close_codes[code - 1000]++;
    else
        st.close_other++;
}

/* ------------------------------------------------------------------------------------------ */
/* Connections */

enum cstate {
    C_IDLE,       /* not started yet */
    C_CONNECTING, /* connect in flight */
    C_HANDSHAKE,  /* request sent or sending, answer being read */
    C_OPEN,       /* messages flowing (echo) or held (idle); storm mode skips it */
    C_CLOSING,    /* our close 1000 queued or sent; waiting for the peer's */
    C_DRAIN,      /* close handshake done; waiting for the server's FIN */
    C_DONE,       /* no more I/O started; released once nothing is in flight */
    C_FREED,
};

enum op { OP_CONNECT = 1, OP_RECV, OP_SEND, OP_CANCEL };

/* Broadcast mode: what the message being received is, once its first BC_HDR_LEN bytes are in. */
enum bc_what { BW_GATHER, BW_OURS, BW_OTHER };

#define NO_SLOT UINT64_MAX

/* Broadcast mode, per subscriber (the publisher only uses `what` and `hdr`). */
struct bsub {
    uint8_t hdr[BC_HDR_LEN]; /* the current message's first bytes */
    uint8_t what;            /* enum bc_what of the current message */
    uint8_t kind;            /* its enum bc_kind, once BW_OURS */
    uint8_t opcode;
    bool member;             /* open and counted in sub_open */
    bool synced;             /* a sync message reached it: the server has it registered */
    bool audience;           /* counted in every window slot since the data started */
    uint64_t seq, t_ns;      /* the current message's header */
    uint64_t slot;           /* the window slot it completes for this subscriber, or NO_SLOT */
    uint64_t last_sync;      /* the sequence number of the last sync message received */
};

struct conn {
    int fd;
    uint32_t id;
    uint8_t state;
    bool connect_armed, recv_armed, send_armed;
    bool msg_bad;       /* current echo already counted as an error */
    bool peer_closed;   /* the server's close frame arrived */
    uint32_t inflight;  /* SQEs whose CQE has not been seen */
    struct wisp_ws ws;
    uint8_t *rx;
    size_t rx_len;      /* handshake bytes gathered so far */
    uint8_t *tx;
    size_t tx_len;      /* bytes queued */
    size_t tx_sent;     /* bytes of the queue already sent; the in-flight send starts here */
    uint64_t next_seq;  /* sequence number of the next message we send */
    uint64_t rx_seq;    /* sequence number of the echo we expect next */
    uint64_t rx_off;    /* bytes of that echo verified so far */
    uint64_t *sent_ns;  /* send time by seq % depth */
    uint64_t t_connect; /* when its connect was queued */
    size_t tx_cap;
    struct bsub b;      /* broadcast mode; rx_seq is the data message it expects next */
    char key[WISP_WS_KEY_LEN + 1];
};

enum phase { P_CONNECT, P_SYNC, P_WARMUP, P_MEASURE, P_HOLD, P_CLOSE, P_ABORT, P_END };

static struct io_uring ring;
static struct conn *conns;
static struct wisp_ws_config ws_cfg;
static struct wisp_ws_client_opts client_opts;
static enum phase phase = P_CONNECT;
static bool stopping;       /* no new messages; close everything */
static size_t rx_cap, tx_cap; /* tx_cap: every connection's but broadcast's publisher */
static size_t pub_tx_cap;
static uint8_t *pattern;    /* opt.size + PAT_SPREAD printable bytes */
static uint8_t *scratch;    /* one payload being built */
static unsigned next_to_start, connecting, opened, failed_open, live;

static uint64_t t_start, t_all_open, t_measure0, t_measure1, t_close0, t_end;
static uint64_t phase_deadline;
static uint64_t wake_at;    /* an earlier wake-up than phase_deadline, or 0 */

/* Broadcast mode */
#define SYNC_GAP_NS 10000000u /* at least this long between two sync messages */
static struct bc_window pubwin;
static unsigned sub_open;   /* subscribers open (members) */
static unsigned sub_synced; /* of those, the ones a sync message reached */
static unsigned audience;   /* subscribers counted in each window slot */
static uint64_t sync_cur;   /* the last sync message sent (valid once st.syncs_sent > 0) */
static unsigned sync_have_cur; /* subscribers that received it */
static uint64_t t_sync_sent, t_synced;

static struct io_uring_sqe *get_sqe(void)
{
    struct io_uring_sqe *sqe;
    while (!(sqe = io_uring_get_sqe(&ring))) {
        int rc = io_uring_submit(&ring);
        if (rc < 0 && rc != -EAGAIN && rc != -EBUSY && rc != -EINTR) {
            fprintf(stderr, "wisp-load: io_uring_submit: %s\n", strerror(-rc));
            exit(2);
        }
    }
    return sqe;
}

static void set_udata(struct io_uring_sqe *sqe, struct conn *c, enum op op)
{
    io_uring_sqe_set_data64(sqe, ((uint64_t)c->id << 8) | (uint64_t)op);
    c->inflight++;
}

static void arm_recv(struct conn *c)
{
    if (c->recv_armed || c->state >= C_DONE)
        return;
    struct io_uring_sqe *sqe = get_sqe();
    io_uring_prep_recv(sqe, c->fd, c->rx + c->rx_len, rx_cap - c->rx_len, 0);
    set_udata(sqe, c, OP_RECV);
    c->recv_armed = true;
}

static void kick_send(struct conn *c)
{
    if (c->send_armed || c->tx_sent >= c->tx_len || c->state >= C_DONE)
        return;
    struct io_uring_sqe *sqe = get_sqe();
    io_uring_prep_send(sqe, c->fd, c->tx + c->tx_sent, c->tx_len - c->tx_sent, MSG_NOSIGNAL);
    set_udata(sqe, c, OP_SEND);
    c->send_armed = true;
}

/* Room for n more bytes at the end of the tx queue. Only moves bytes when no send is in
 * flight (the kernel may read the in-flight range until its completion). */
static bool tx_room(struct conn *c, size_t n)
{
    if (c->tx_len + n <= c->tx_cap)
        return true;
    if (!c->send_armed && c->tx_sent > 0) {
        memmove(c->tx, c->tx + c->tx_sent, c->tx_len - c->tx_sent);
        c->tx_len -= c->tx_sent;
        c->tx_sent = 0;
    }
    return c->tx_len + n <= c->tx_cap;
}

static void bc_leave(struct conn *c);

/* Stop all I/O on c: shutdown makes armed recv/send complete; a pending connect is cancelled.
 * The descriptor is closed and the memory freed once the last CQE is in (release()). */
static void conn_abort(struct conn *c)
{
    if (c->state >= C_DONE)
        return;
    bc_leave(c);
    if (c->connect_armed) {
        struct io_uring_sqe *sqe = get_sqe();
        io_uring_prep_cancel64(sqe, ((uint64_t)c->id << 8) | OP_CONNECT, 0);
        set_udata(sqe, c, OP_CANCEL);
    }
    if (c->fd >= 0)
        shutdown(c->fd, SHUT_RDWR);
    c->state = C_DONE;
}

static void start_next_connects(void);

static void release(struct conn *c)
{
    if (c->state != C_DONE || c->inflight)
        return;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    wisp_ws_deinit(&c->ws);
    free(c->rx);
    free(c->tx);
    free(c->sent_ns);
    c->rx = c->tx = NULL;
    c->sent_ns = NULL;
    c->state = C_FREED;
    live--;
}

/* A connection that never opened. */
static void open_failed(struct conn *c, uint64_t *counter)
{
    (*counter)++;
    failed_open++;
    connecting--;
    conn_abort(c);
}

/* --- payloads --- */

static void make_hdr(uint8_t out[HDR_LEN], uint32_t id, uint64_t seq)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)hex[(id >> (28 - 4 * i)) & 15];
    for (int i = 0; i < 16; i++)
        out[8 + i] = (uint8_t)hex[(seq >> (60 - 4 * i)) & 15];
}

/* Compare len received bytes at payload offset off of message (id, seq) with what we sent. */
static bool payload_matches(uint32_t id, uint64_t seq, uint64_t off, const uint8_t *p,
                            size_t len)
{
    if (off + len > opt.size)
        return false;
    if (off < HDR_LEN) {
        uint8_t hdr[HDR_LEN];
        make_hdr(hdr, id, seq);
        size_t n = HDR_LEN - off;
        if (n > len)
            n = len;
        if (memcmp(p, hdr + off, n) != 0)
            return false;
        p += n;
        off += n;
        len -= n;
    }
    return len == 0 || memcmp(p, pattern + seq % PAT_SPREAD + off, len) == 0;
}

/* Encode the message in scratch (opt.size bytes) into c's tx queue, which has room. */
static bool queue_scratch(struct conn *c)
{
    ssize_t n = wisp_ws_send(&c->ws, opt.text ? WISP_WS_OP_TEXT : WISP_WS_OP_BINARY, scratch,
                             opt.size, c->tx + c->tx_len, c->tx_cap - c->tx_len);
    if (n < 0) {
        st.io_errors++;
        log_err(c->id, "encoding a message failed: %s", wisp_strerror((int)n));
        conn_abort(c);
        return false;
    }
    c->tx_len += (size_t)n;
    kick_send(c);
    return true;
}

/* Queue the next echo message (echo mode) if depth allows. */
static void queue_message(struct conn *c)
{
    if (stopping || opt.mode != MODE_ECHO || c->state != C_OPEN)
        return;
    if (c->next_seq - c->rx_seq >= opt.depth)
        return;
    size_t need = wisp_ws_send_size(&c->ws, opt.size);
    if (!tx_room(c, need))
        return; /* cannot happen with tx_cap sized for depth messages; retried on completion */
    uint64_t seq = c->next_seq;
    memcpy(scratch, pattern + seq % PAT_SPREAD, opt.size);
    uint8_t hdr[HDR_LEN];
    make_hdr(hdr, c->id, seq);
    memcpy(scratch, hdr, opt.size < HDR_LEN ? opt.size : HDR_LEN);
    if (!queue_scratch(c))
        return;
    c->sent_ns[seq % opt.depth] = now_ns();
    c->next_seq++;
}

static void fill_window(void);
static bool is_publisher(const struct conn *c);

static void fill_pipeline(struct conn *c)
{
    if (opt.mode == MODE_BROADCAST) {
        if (is_publisher(c))
            fill_window();
        return;
    }
    while (c->state == C_OPEN && !stopping && c->next_seq - c->rx_seq < opt.depth) {
        uint64_t before = c->next_seq;
        queue_message(c);
        if (c->next_seq == before)
            break;
    }
}

static void queue_close(struct conn *c, uint16_t code)
{
    if (!tx_room(c, WISP_WS_MAX_HEADER + 2)) {
        conn_abort(c); /* cannot happen: tx_cap keeps 4 KiB spare */
        return;
    }
    ssize_t n = wisp_ws_send_close(&c->ws, code, NULL, 0, c->tx + c->tx_len,
                                   c->tx_cap - c->tx_len);
    if (n > 0) {
        c->tx_len += (size_t)n;
        kick_send(c);
    }
}

/* The close handshake is complete once the engine says CLOSED and our close is on the wire:
 * wait for the server's FIN (RFC 6455 §7.1.1: the server closes TCP first). */
static void maybe_drain(struct conn *c)
{
    if (c->state < C_DONE && wisp_ws_close_state(&c->ws) == WISP_WS_CLOSED &&
        c->tx_sent == c->tx_len)
        c->state = C_DRAIN;
}

/* --- broadcast mode: publishing and checking deliveries --- */

static bool is_publisher(const struct conn *c)
{
    return opt.mode == MODE_BROADCAST && c->id == opt.subs;
}

static struct conn *publisher(void)
{
    return &conns[opt.subs];
}

/* Queue the publisher's message (kind, seq): the pattern at an offset that depends on seq, as
 * in echo mode, under the header with the send time. */
static bool bc_queue(struct conn *pub, enum bc_kind kind, uint64_t seq)
{
    if (!tx_room(pub, wisp_ws_send_size(&pub->ws, opt.size)))
        return false;
    memcpy(scratch, pattern + seq % PAT_SPREAD, opt.size);
    bc_put_hdr(scratch, kind, seq, now_ns() - t_start);
    return queue_scratch(pub);
}

/* Publish while the window has room, during the warm-up and the measured window. */
static void fill_window(void)
{
    struct conn *pub = publisher();
    while (!stopping && (phase == P_WARMUP || phase == P_MEASURE) && pub->state == C_OPEN &&
           audience > 0 && !bc_window_full(&pubwin)) {
        if (!bc_queue(pub, BC_DATA, pubwin.next))
            return; /* no room (the window fits in tx_cap, so only behind pongs): on_send
                       calls back */
        bc_window_push(&pubwin, audience);
        st.publishes_total++;
        if (phase == P_MEASURE)
            st.publishes++;
    }
}

/* A subscriber leaves (dropped, closed by the server, aborted): the sync stops counting it
 * and the window stops waiting for it. */
static void bc_leave(struct conn *c)
{
    if (opt.mode != MODE_BROADCAST || !c->b.member)
        return;
    c->b.member = false;
    sub_open--;
    if (c->b.synced)
        sub_synced--;
    if (c->b.audience) {
        c->b.audience = false;
        audience--;
        if (bc_window_leave(&pubwin, c->rx_seq))
            fill_window();
    }
}

/* Count the current message as wrong, once however many checks it fails; true the first time
 * (the caller then describes it). */
static bool mark_bad(struct conn *c)
{
    if (c->msg_bad)
        return false;
    c->msg_bad = true;
    st.verify_errors++;
    return true;
}

static bool pad_matches(uint64_t seq, uint64_t off, const uint8_t *p, size_t len)
{
    return off + len <= opt.size && memcmp(p, pattern + seq % PAT_SPREAD + off, len) == 0;
}

/* A data message's header is in: check its number against the one this subscriber expects
 * next (rx_seq) and pick the window slot the message completes at its end. */
static void bc_data_header(struct conn *c)
{
    uint64_t want = c->rx_seq, seq = c->b.seq;
    if (!c->b.audience) {
        if (mark_bad(c))
            log_err(c->id, "data message %" PRIu64 " before the data started", seq);
        return;
    }
    if (seq >= pubwin.next) {
        if (mark_bad(c))
            log_err(c->id, "message %" PRIu64 " was never sent (expected %" PRIu64 ")", seq,
                    want);
        /* it stands in for the expected one, or the window would wait for that forever */
        c->b.slot = want < pubwin.next ? want : NO_SLOT;
        return;
    }
    if (seq < want) {
        if (mark_bad(c))
            log_err(c->id, "message %" PRIu64 " again or out of order (expected %" PRIu64 ")",
                    seq, want);
        return;
    }
    if (seq > want) {
        /* a gap: an error, but the message itself may be fine */
        st.verify_errors++;
        st.missed += seq - want;
        log_err(c->id, "messages %" PRIu64 " to %" PRIu64 " never arrived", want, seq - 1);
        uint64_t done = 0;
        for (uint64_t q = want > pubwin.oldest ? want : pubwin.oldest; q < seq; q++)
            done += bc_window_done(&pubwin, q);
        c->rx_seq = seq;
        if (done)
            fill_window();
    }
    c->b.slot = seq;
}

/* The first BC_HDR_LEN bytes of a message are in. */
static void bc_header(struct conn *c)
{
    enum bc_kind kind;
    if (!bc_get_hdr(c->b.hdr, &kind, &c->b.seq, &c->b.t_ns)) {
        c->b.what = BW_OTHER;
        return;
    }
    c->b.what = BW_OURS;
    c->b.kind = (uint8_t)kind;
    if (is_publisher(c)) {
        if (mark_bad(c))
            log_err(c->id, "the publisher got its own message %c%" PRIu64 " back", (char)kind,
                    c->b.seq);
        return;
    }
    if (c->b.opcode != (opt.text ? WISP_WS_OP_TEXT : WISP_WS_OP_BINARY) && mark_bad(c))
        log_err(c->id, "message %c%" PRIu64 " arrived with opcode %u", (char)kind, c->b.seq,
                c->b.opcode);
    if (kind == BC_DATA)
        bc_data_header(c);
}

/* A message that is not one of ours. Allowed before the subscriber's first sync message (a
 * server may greet a new member, as /chat does with "*joined") and at the publisher (a member
 * too); anywhere else an error, which stands in for the message expected next so that the
 * window does not wait for that one forever. */
static void bc_other(struct conn *c)
{
    if (is_publisher(c) || !c->b.synced) {
        st.other_msgs++;
        return;
    }
    st.verify_errors++;
    log_err(c->id, "a message that is not ours (%" PRIu64 " bytes) where %" PRIu64
            " was expected", c->rx_off, c->rx_seq);
    if (c->b.audience && c->rx_seq < pubwin.next)
        c->b.slot = c->rx_seq;
}

/* A sync message (see bc_sync_step): the server has this subscriber registered. */
static void bc_synced(struct conn *c)
{
    uint64_t seq = c->b.seq;
    st.syncs_received++;
    if (c->rx_seq > 0) {
        if (mark_bad(c))
            log_err(c->id, "sync message %" PRIu64 " after data", seq);
        return;
    }
    if (!c->b.synced) {
        c->b.synced = true;
        if (c->b.member)
            sub_synced++;
    } else if (seq != c->b.last_sync + 1 && mark_bad(c)) {
        log_err(c->id, "sync message %" PRIu64 " after %" PRIu64, seq, c->b.last_sync);
    }
    c->b.last_sync = seq;
    if (st.syncs_sent > 0 && seq == sync_cur)
        sync_have_cur++;
}

static void bc_delivered(struct conn *c)
{
    st.msgs_total++;
    if (phase == P_MEASURE) {
        st.msgs++;
        st.bytes += opt.size;
        hist_add(&st.lat, bc_elapsed(c->b.t_ns, now_ns() - t_start));
    }
}

static void bc_message_end(struct conn *c)
{
    if (c->b.what != BW_OURS) {
        bc_other(c);
    } else {
        if (c->rx_off != opt.size && mark_bad(c))
            log_err(c->id, "message %c%" PRIu64 " has %" PRIu64 " bytes, sent %zu",
                    (char)c->b.kind, c->b.seq, c->rx_off, opt.size);
        if (!c->msg_bad && c->b.kind == BC_SYNC)
            bc_synced(c);
        else if (!c->msg_bad)
            bc_delivered(c);
    }
    if (c->b.slot != NO_SLOT && c->b.audience) {
        c->rx_seq = c->b.slot + 1;
        if (bc_window_done(&pubwin, c->b.slot))
            fill_window();
    }
}

/* A piece of a message, at a subscriber or the publisher: gather the header, then compare
 * the rest with the pattern piece by piece, as echo mode does. */
static void bc_fragment(struct conn *c, const struct wisp_ws_event *ev)
{
    const uint8_t *p = ev->data;
    size_t n = ev->len;
    if (ev->first) {
        c->rx_off = 0;
        c->msg_bad = false;
        c->b.what = BW_GATHER;
        c->b.slot = NO_SLOT;
        c->b.opcode = (uint8_t)ev->opcode;
    }
    if (c->b.what == BW_GATHER && n > 0) {
        size_t k = BC_HDR_LEN - c->rx_off;
        if (k > n)
            k = n;
        memcpy(c->b.hdr + c->rx_off, p, k);
        c->rx_off += k;
        p += k;
        n -= k;
        if (c->rx_off == BC_HDR_LEN)
            bc_header(c);
    }
    if (c->b.what == BW_OURS && !c->msg_bad && n > 0 && !pad_matches(c->b.seq, c->rx_off, p, n) &&
        mark_bad(c))
        log_err(c->id, "message %c%" PRIu64 " differs from what was sent (at or after byte %"
                PRIu64 ")", (char)c->b.kind, c->b.seq, c->rx_off);
    c->rx_off += n;
    if (ev->last)
        bc_message_end(c);
}

static void on_fragment(struct conn *c, const struct wisp_ws_event *ev)
{
    if (opt.mode == MODE_BROADCAST) {
        bc_fragment(c, ev);
        return;
    }
    if (opt.mode != MODE_ECHO) {
        if (ev->first) {
            st.verify_errors++;
            log_err(c->id, "unsolicited message in idle mode");
        }
        return;
    }
    if (ev->first) {
        c->rx_off = 0;
        c->msg_bad = false;
        if (c->rx_seq == c->next_seq) {
            st.verify_errors++;
            c->msg_bad = true;
            log_err(c->id, "message received with none outstanding");
        } else if (ev->opcode != (opt.text ? WISP_WS_OP_TEXT : WISP_WS_OP_BINARY)) {
            st.verify_errors++;
            c->msg_bad = true;
            log_err(c->id, "echo %" PRIu64 " came back with opcode %d", c->rx_seq, ev->opcode);
        }
    }
    if (!c->msg_bad && !payload_matches(c->id, c->rx_seq, c->rx_off, ev->data, ev->len)) {
        st.verify_errors++;
        c->msg_bad = true;
        log_err(c->id, "echo %" PRIu64 " differs from what was sent (at or after byte %" PRIu64
                ")", c->rx_seq, c->rx_off);
    }
    c->rx_off += ev->len;
    if (!ev->last)
        return;
    if (!c->msg_bad && c->rx_off != opt.size) {
        st.verify_errors++;
        c->msg_bad = true;
        log_err(c->id, "echo %" PRIu64 " has %" PRIu64 " bytes, sent %zu", c->rx_seq,
                c->rx_off, opt.size);
    }
    if (c->rx_seq == c->next_seq)
        return; /* unsolicited: nothing to match */
    if (!c->msg_bad) {
        uint64_t t = now_ns();
        st.msgs_total++;
        if (phase == P_MEASURE) {
            st.msgs++;
            st.bytes += opt.size;
            hist_add(&st.lat, t - c->sent_ns[c->rx_seq % opt.depth]);
        }
    }
    c->rx_seq++;
    queue_message(c);
}

/* Run received bytes through the engine. */
static void feed(struct conn *c, uint8_t *p, size_t n)
{
    while (n > 0 && c->state < C_DONE) {
        struct wisp_ws_event ev;
        ssize_t k = wisp_ws_recv(&c->ws, p, n, &ev);
        if (k < 0) {
            st.io_errors++;
            conn_abort(c);
            return;
        }
        p += k;
        n -= (size_t)k;
        switch (ev.type) {
        case WISP_WS_EV_FRAGMENT:
            on_fragment(c, &ev);
            break;
        case WISP_WS_EV_PING:
            if (!stopping && wisp_ws_close_state(&c->ws) == WISP_WS_OPEN) {
                /* keep room for a close frame after the pong */
                if (tx_room(c, 2 * WISP_WS_MAX_HEADER + ev.len + 2)) {
                    ssize_t m = wisp_ws_send_control(&c->ws, WISP_WS_OP_PONG, ev.data, ev.len,
                                                     c->tx + c->tx_len, c->tx_cap - c->tx_len);
                    if (m > 0)
                        c->tx_len += (size_t)m;
                    kick_send(c);
                } else {
                    st.pongs_dropped++;
                }
            }
            break;
        case WISP_WS_EV_CLOSE:
            c->peer_closed = true;
            if (c->state == C_CLOSING) {
                if (ev.close_code != WISP_CLOSE_NORMAL) {
                    count_close(ev.close_code);
                    log_err(c->id, "close answered with code %u", ev.close_code);
                }
            } else {
                count_close(ev.close_code);
                log_err(c->id, "server closed with code %u", ev.close_code);
                bc_leave(c);
                c->state = C_CLOSING;
                queue_close(c, ev.close_code);
            }
            maybe_drain(c);
            break;
        case WISP_WS_EV_FAULT:
            st.protocol_errors++;
            log_err(c->id, "protocol fault: %s", wisp_ws_fault_str(ev.fault));
            bc_leave(c);
            c->state = C_CLOSING;
            queue_close(c, ev.close_code);
            maybe_drain(c);
            break;
        default:
            break;
        }
    }
}

static void on_open(struct conn *c)
{
    c->state = C_OPEN;
    connecting--;
    opened++;
    if (opt.mode == MODE_STORM)
        hist_add(&st.lat, now_ns() - c->t_connect);
    if (opt.mode == MODE_BROADCAST && !is_publisher(c)) {
        c->b.member = true;
        sub_open++;
    }
    if (stopping || opt.mode == MODE_STORM) {
        c->state = C_CLOSING;
        queue_close(c, WISP_CLOSE_NORMAL);
        return;
    }
    fill_pipeline(c);
}

static void on_connect(struct conn *c, int res)
{
    if (c->state != C_CONNECTING)
        return;
    if (res < 0) {
        log_err(c->id, "connect: %s", strerror(-res));
        open_failed(c, &st.connect_errors);
        return;
    }
    c->state = C_HANDSHAKE;
    ssize_t n = wisp_ws_client_request(&client_opts, c->key, (char *)c->tx, c->tx_cap);
    if (n < 0) {
        log_err(c->id, "writing the upgrade request: %s", wisp_strerror((int)n));
        open_failed(c, &st.handshake_errors);
        return;
    }
    c->tx_len = (size_t)n;
    kick_send(c);
    arm_recv(c);
}

static void on_handshake_bytes(struct conn *c, size_t prev)
{
    struct wisp_http_header hdrs[32];
    struct wisp_http_response resp;
    ssize_t n = wisp_http_parse_response((const char *)c->rx, c->rx_len, prev, NULL, &resp,
                                         hdrs, 32);
    if (n == WISP_EINCOMPLETE) {
        if (c->rx_len == rx_cap) {
            log_err(c->id, "upgrade answer longer than %zu bytes", rx_cap);
            open_failed(c, &st.handshake_errors);
        }
        return;
    }
    if (n < 0) {
        log_err(c->id, "malformed upgrade answer: %s", wisp_strerror((int)n));
        open_failed(c, &st.handshake_errors);
        return;
    }
    struct wisp_ws_client_result res;
    int rc = wisp_ws_client_check(&resp, &client_opts, c->key, &res);
    if (rc != 0) {
        log_err(c->id, "upgrade refused (status %d): %s", res.status,
                rc == WISP_EHANDSHAKE ? res.reason : wisp_strerror(rc));
        open_failed(c, &st.handshake_errors);
        return;
    }
    size_t head = (size_t)n, rest = c->rx_len - head;
    c->rx_len = 0;
    on_open(c);
    if (rest > 0) {
        memmove(c->rx, c->rx + head, rest);
        feed(c, c->rx, rest);
    }
}

static void on_recv(struct conn *c, int res)
{
    c->recv_armed = false;
    if (c->state >= C_DONE)
        return;
    if (res <= 0) {
        if (c->state == C_DRAIN) {
            c->state = C_DONE; /* the server's FIN: a clean end */
            st.clean_ends++;
            return;
        }
        if (c->state == C_CONNECTING || c->state == C_HANDSHAKE) {
            log_err(c->id, "connection lost during the upgrade: %s",
                    res ? strerror(-res) : "EOF");
            open_failed(c, &st.handshake_errors);
            return;
        }
        if (res < 0 && res != -ECONNRESET && res != -EPIPE) {
            st.io_errors++;
            log_err(c->id, "recv: %s", strerror(-res));
        } else if (!c->peer_closed) {
            count_close(WISP_CLOSE_ABNORMAL);
            log_err(c->id, "connection dropped without a close frame (%s)",
                    res ? strerror(-res) : "EOF");
        }
        conn_abort(c);
        return;
    }
    if (c->state == C_HANDSHAKE) {
        size_t prev = c->rx_len;
        c->rx_len += (size_t)res;
        on_handshake_bytes(c, prev);
    } else {
        feed(c, c->rx, (size_t)res);
    }
    arm_recv(c);
}

static void on_send(struct conn *c, int res)
{
    c->send_armed = false;
    if (c->state >= C_DONE)
        return;
    if (res < 0) {
        if (res != -ECONNRESET && res != -EPIPE) {
            st.io_errors++;
            log_err(c->id, "send: %s", strerror(-res));
        } else if (!c->peer_closed) {
            count_close(WISP_CLOSE_ABNORMAL);
            log_err(c->id, "connection reset while sending");
        }
        if (c->state == C_HANDSHAKE)
            open_failed(c, &st.handshake_errors);
        else
            conn_abort(c);
        return;
    }
    c->tx_sent += (size_t)res;
    if (c->tx_sent == c->tx_len) {
        c->tx_sent = c->tx_len = 0;
    } else {
        memmove(c->tx, c->tx + c->tx_sent, c->tx_len - c->tx_sent);
        c->tx_len -= c->tx_sent;
        c->tx_sent = 0;
    }
    fill_pipeline(c); /* only matters if a pong took the room of a message */
    kick_send(c);
    if (c->tx_len == 0)
        maybe_drain(c);
}

static bool conn_setup(struct conn *c)
{
    c->rx = malloc(rx_cap);
    c->tx_cap = opt.mode == MODE_BROADCAST && c->id == opt.subs ? pub_tx_cap : tx_cap;
    c->tx = malloc(c->tx_cap);
    c->sent_ns = calloc(opt.depth, sizeof *c->sent_ns);
    if (!c->rx || !c->tx || !c->sent_ns || wisp_ws_init(&c->ws, &ws_cfg) != 0)
        return false;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return false;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (opt.nsrc) {
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = opt.src[c->id % opt.nsrc]};
        if (bind(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0)
            return false;
    }
    return true;
}

/* Connection attempts that count against --connect-batch: those still connecting or
 * upgrading, and in storm mode also those closing (so the descriptors stay bounded too). */
static unsigned in_progress(void)
{
    return opt.mode == MODE_STORM ? live : connecting;
}

static void start_next_connects(void)
{
    while (phase == P_CONNECT && next_to_start < opt.conns && in_progress() < opt.connect_batch) {
        /* broadcast: the publisher once every subscriber is open (or failed) */
        if (opt.mode == MODE_BROADCAST && next_to_start == opt.subs &&
            opened + failed_open < opt.subs)
            break;
        struct conn *c = &conns[next_to_start++];
        c->id = (uint32_t)(c - conns);
        c->fd = -1;
        live++;
        connecting++;
        c->state = C_CONNECTING;
        if (!conn_setup(c)) {
            log_err(c->id, "socket setup: %s", strerror(errno));
            open_failed(c, &st.connect_errors);
            release(c);
            continue;
        }
        c->t_connect = now_ns();
        struct io_uring_sqe *sqe = get_sqe();
        io_uring_prep_connect(sqe, c->fd, (const struct sockaddr *)&opt.dst, sizeof opt.dst);
        set_udata(sqe, c, OP_CONNECT);
        c->connect_armed = true;
    }
}

static void handle_cqe(uint64_t ud, int res)
{
    struct conn *c = &conns[ud >> 8];
    c->inflight--;
    switch ((enum op)(ud & 0xff)) {
    case OP_CONNECT: c->connect_armed = false; on_connect(c, res); break;
    case OP_RECV: on_recv(c, res); break;
    case OP_SEND: on_send(c, res); break;
    case OP_CANCEL: break;
    }
    release(c);
}

/* ------------------------------------------------------------------------------------------ */
/* Phases */

static void begin_close(uint64_t now)
{
    stopping = true;
    phase = P_CLOSE;
    t_close0 = now;
    phase_deadline = now + sec_to_ns(opt.close_timeout);
    for (unsigned i = 0; i < next_to_start; i++) {
        struct conn *c = &conns[i];
        if (c->state == C_OPEN) {
            c->state = C_CLOSING;
            queue_close(c, WISP_CLOSE_NORMAL);
        } else if (c->state == C_CONNECTING || c->state == C_HANDSHAKE) {
            open_failed(c, &st.connect_errors);
        }
    }
}

/* Broadcast mode: every subscriber is registered; all that are still open become the
 * audience each published message waits for. */
static void bc_start_data(uint64_t now)
{
    for (unsigned i = 0; i < opt.subs; i++) {
        struct conn *c = &conns[i];
        if (c->b.member) {
            c->b.audience = true;
            audience++;
        }
    }
    t_synced = now;
    phase = P_WARMUP;
    phase_deadline = now + sec_to_ns(opt.warmup);
    fill_window();
}

/* Broadcast mode's sync phase. A server adds a new connection to its broadcast group some
 * time after the upgrade (wisp-test-server's /chat: when its room actor gets the join
 * message), so a message published right after the upgrades could miss the last subscribers
 * and look like a gap. So the publisher first sends sync messages until each subscriber has
 * received one: from then on the server has it registered, and it must get every later
 * message in order. At most one sync is waited for at a time: the next goes out once every
 * subscriber synced so far has the current one and SYNC_GAP_NS have passed, so a slow server
 * is not flooded. All must be synced within --connect-timeout. */
static void bc_sync_step(uint64_t now)
{
    struct conn *pub = publisher();
    wake_at = 0;
    if (pub->state != C_OPEN || sub_open == 0) {
        begin_close(now); /* the failures are counted already */
        return;
    }
    if (sub_synced == sub_open) {
        bc_start_data(now);
        return;
    }
    if (now >= phase_deadline) {
        st.sync_timeouts += sub_open - sub_synced;
        fprintf(stderr, "wisp-load: sync timeout: %u of %u open subscribers got a message\n",
                sub_synced, sub_open);
        begin_close(now);
        return;
    }
    if (st.syncs_sent > 0 && now < t_sync_sent + SYNC_GAP_NS) {
        wake_at = t_sync_sent + SYNC_GAP_NS;
        return;
    }
    if (st.syncs_sent > 0 && sync_have_cur < sub_synced)
        return; /* woken by its arrival */
    if (!bc_queue(pub, BC_SYNC, st.syncs_sent)) {
        wake_at = now + SYNC_GAP_NS; /* behind a pong: try again */
        return;
    }
    sync_cur = st.syncs_sent++;
    sync_have_cur = 0;
    t_sync_sent = now;
    wake_at = now + SYNC_GAP_NS;
}

/* Move through the phases as time passes and connections finish. */
static void advance(uint64_t now)
{
    for (;;) {
        enum phase before = phase;
        switch (phase) {
        case P_CONNECT:
            if (opened + failed_open == opt.conns) {
                t_all_open = now;
                if (opened == 0 || opt.mode == MODE_STORM) {
                    begin_close(now); /* nothing to measure or hold; storm: closes finish */
                } else if (opt.mode == MODE_BROADCAST) {
                    phase = P_SYNC;
                    phase_deadline = now + sec_to_ns(opt.connect_timeout);
                } else if (opt.mode == MODE_ECHO) {
                    phase = P_WARMUP;
                    phase_deadline = now + sec_to_ns(opt.warmup);
                } else {
                    phase = P_HOLD;
                    phase_deadline = now + sec_to_ns(opt.hold);
                }
            } else if (now >= phase_deadline) {
                t_all_open = now;
                fprintf(stderr, "wisp-load: connect timeout: %u of %u open\n", opened,
                        opt.conns);
                /* connections never started count as connect errors too */
                st.connect_errors += opt.conns - next_to_start;
                begin_close(now);
            }
            break;
        case P_SYNC:
            bc_sync_step(now);
            break;
        case P_WARMUP:
            if (opt.mode == MODE_BROADCAST && publisher()->state != C_OPEN) {
                begin_close(now); /* nothing more will be published */
            } else if (now >= phase_deadline) {
                phase = P_MEASURE;
                t_measure0 = now;
                phase_deadline = now + sec_to_ns(opt.duration);
            }
            break;
        case P_MEASURE:
            if (now >= phase_deadline ||
                (opt.mode == MODE_BROADCAST && publisher()->state != C_OPEN)) {
                t_measure1 = now;
                begin_close(now);
            }
            break;
        case P_HOLD:
            if (now >= phase_deadline)
                begin_close(now);
            break;
        case P_CLOSE:
            if (live == 0) {
                phase = P_END;
            } else if (now >= phase_deadline) {
                for (unsigned i = 0; i < next_to_start; i++) {
                    struct conn *c = &conns[i];
                    if (c->state == C_CLOSING) {
                        st.close_timeouts++;
                        log_err(c->id, "close handshake timed out");
                    }
                    conn_abort(c);
                    release(c);
                }
                phase = P_ABORT;
            }
            break;
        case P_ABORT:
            if (live == 0)
                phase = P_END;
            break;
        case P_END:
            break;
        }
        if (phase == before)
            return;
    }
}

static void run(void)
{
    t_start = now_ns();
    phase_deadline = t_start + sec_to_ns(opt.connect_timeout);
    start_next_connects();
    for (;;) {
        uint64_t now = now_ns();
        advance(now);
        if (phase == P_END)
            break;
        struct io_uring_cqe *cqe;
        uint64_t until = wake_at && wake_at < phase_deadline ? wake_at : phase_deadline;
        uint64_t wait = phase == P_ABORT ? 100000000u : until > now ? until - now : 0;
        struct __kernel_timespec ts = {.tv_sec = (long long)(wait / 1000000000u),
                                       .tv_nsec = (long long)(wait % 1000000000u)};
        int rc = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, NULL);
        if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
            fprintf(stderr, "wisp-load: io_uring wait: %s\n", strerror(-rc));
            exit(2);
        }
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            handle_cqe(cqe->user_data, cqe->res);
            seen++;
        }
        io_uring_cq_advance(&ring, seen);
        start_next_connects();
    }
    t_end = now_ns();
}

/* ------------------------------------------------------------------------------------------ */
/* Setup and report */

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    unsigned need = opt.conns;
    if (opt.mode == MODE_STORM && opt.connect_batch < need)
        need = opt.connect_batch; /* storm mode never has more open at once */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (rlim_t)need + 16 > rl.rlim_cur)
        fprintf(stderr, "wisp-load: warning: %u connections at once but RLIMIT_NOFILE is %llu\n",
                need, (unsigned long long)rl.rlim_cur);
}

static void setup_ring(void)
{
    unsigned cq = 1024;
    while (cq < 4ull * opt.conns && cq < 65536)
        cq <<= 1;
    struct io_uring_params p = {
        .flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
                 IORING_SETUP_DEFER_TASKRUN,
        .cq_entries = cq,
    };
    int rc = io_uring_queue_init_params(1024, &ring, &p);
    if (rc == -EINVAL) { /* a kernel before 6.1: no DEFER_TASKRUN */
        memset(&p, 0, sizeof p);
        p.flags = IORING_SETUP_CQSIZE;
        p.cq_entries = cq;
        rc = io_uring_queue_init_params(1024, &ring, &p);
    }
    if (rc < 0) {
        fprintf(stderr, "wisp-load: io_uring_queue_init: %s\n", strerror(-rc));
        exit(2);
    }
}

static void setup_payload(void)
{
    pattern = malloc(opt.size + PAT_SPREAD);
    scratch = malloc(opt.size);
    if (!pattern || !scratch) {
        fprintf(stderr, "wisp-load: out of memory\n");
        exit(2);
    }
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < opt.size + PAT_SPREAD; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        pattern[i] = (uint8_t)alphabet[x & 63];
    }
}

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

static void report_broadcast(double open_s)
{
    double win_s = t_measure1 > t_measure0 ? (double)(t_measure1 - t_measure0) / 1e9 : 0;
    double dps = win_s > 0 ? (double)st.msgs / win_s : 0;
    double pps = win_s > 0 ? (double)st.publishes / win_s : 0;
    double p50 = us(hist_quantile(&st.lat, 0.50)), p90 = us(hist_quantile(&st.lat, 0.90));
    double p99 = us(hist_quantile(&st.lat, 0.99)), p999 = us(hist_quantile(&st.lat, 0.999));
    printf("wisp-load mode=broadcast subs=%u size=%zu window=%u deliveries_per_s=%.0f "
           "publishes_per_s=%.0f p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f "
           "errors=%" PRIu64 " closes=%" PRIu64 " other=%" PRIu64 "\n",
           opt.subs, opt.size, opt.window, dps, pps, p50, p90, p99, p999, us(st.lat.max),
           total_errors(), st.closes, st.other_msgs);
    fprintf(stderr,
            "\n  url            ws://%s%s (%s, window %u)\n"
            "  connections    %u open of %u in %.3f s (%u subscribers, then the publisher)\n",
            opt.host, opt.target, opt.text ? "text" : "binary", opt.window, opened, opt.conns,
            open_s, opt.subs);
    if (t_synced)
        fprintf(stderr, "  synced         in %.3f s: ", (double)(t_synced - t_all_open) / 1e9);
    else
        fprintf(stderr, "  synced         no, gave up after %.3f s: ",
                (double)(t_close0 - t_all_open) / 1e9);
    fprintf(stderr, "%" PRIu64 " sync messages sent, %" PRIu64 " received\n", st.syncs_sent,
            st.syncs_received);
    fprintf(stderr,
            "  measured       %.3f s after %.3f s warm-up\n"
            "  published      %" PRIu64 " (%.0f/s), %" PRIu64 " in all, %" PRIu64
            " of them received by every subscriber before the close\n"
            "  deliveries     %" PRIu64 " (%.0f/s, %.1f MB/s), %" PRIu64 " verified in all\n"
            "  latency (us)   p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  mean %.1f\n"
            "  other msgs     %" PRIu64 " (not ours: before a subscriber's first sync, or to "
            "the publisher)\n",
            win_s, opt.warmup, st.publishes, pps, st.publishes_total, pubwin.oldest, st.msgs,
            dps, win_s > 0 ? (double)st.bytes / win_s / 1e6 : 0.0, st.msgs_total, p50, p90, p99,
            p999, us(st.lat.max), st.lat.count ? us(st.lat.sum / st.lat.count) : 0.0,
            st.other_msgs);
    if (st.missed || st.sync_timeouts)
        fprintf(stderr, "  lost           %" PRIu64 " messages in gaps; %" PRIu64
                " subscribers never synced\n", st.missed, st.sync_timeouts);
}

static void report(void)
{
    double open_s = (double)(t_all_open - t_start) / 1e9;
    if (opt.mode == MODE_BROADCAST) {
        report_broadcast(open_s);
    } else if (opt.mode == MODE_ECHO) {
        double win = t_measure1 > t_measure0 ? (double)(t_measure1 - t_measure0) / 1e9 : 0;
        double mps = win > 0 ? (double)st.msgs / win : 0;
        double bps = win > 0 ? (double)st.bytes / win : 0;
        printf("wisp-load mode=echo conns=%u size=%zu msgs_per_s=%.0f bytes_per_s=%.0f "
               "p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f errors=%" PRIu64
               " closes=%" PRIu64 "\n",
               opt.conns, opt.size, mps, bps, us(hist_quantile(&st.lat, 0.50)),
               us(hist_quantile(&st.lat, 0.90)), us(hist_quantile(&st.lat, 0.99)),
               us(hist_quantile(&st.lat, 0.999)), us(st.lat.max), total_errors(), st.closes);
        fprintf(stderr,
                "\n  url            ws://%s%s (%s, depth %u)\n"
                "  connections    %u open of %u in %.3f s\n"
                "  measured       %.3f s after %.3f s warm-up\n"
                "  messages       %" PRIu64 " (%.0f/s), %" PRIu64 " verified in all\n"
                "  payload bytes  %" PRIu64 " (%.1f MB/s each way)\n"
                "  latency (us)   p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  mean %.1f\n",
                opt.host, opt.target, opt.text ? "text" : "binary", opt.depth, opened,
                opt.conns, open_s, win, opt.warmup, st.msgs, mps, st.msgs_total, st.bytes,
                bps / 1e6, us(hist_quantile(&st.lat, 0.50)), us(hist_quantile(&st.lat, 0.90)),
                us(hist_quantile(&st.lat, 0.99)), us(hist_quantile(&st.lat, 0.999)),
                us(st.lat.max), st.lat.count ? us(st.lat.sum / st.lat.count) : 0.0);
    } else if (opt.mode == MODE_STORM) {
        double rate = open_s > 0 ? (double)opened / open_s : 0;
        double total_s = (double)(t_end - t_start) / 1e9;
        printf("wisp-load mode=storm conns=%u open=%u storm_s=%.3f conns_per_s=%.0f "
               "hs_p50_us=%.1f hs_p90_us=%.1f hs_p99_us=%.1f hs_max_us=%.1f total_s=%.3f "
               "clean=%" PRIu64 " errors=%" PRIu64 " closes=%" PRIu64 "\n",
               opt.conns, opened, open_s, rate, us(hist_quantile(&st.lat, 0.50)),
               us(hist_quantile(&st.lat, 0.90)), us(hist_quantile(&st.lat, 0.99)),
               us(st.lat.max), total_s, st.clean_ends, total_errors(), st.closes);
        fprintf(stderr,
                "\n  url            ws://%s%s (at most %u at once)\n"
                "  connections    %u upgraded of %u in %.3f s (%.0f/s); all closed after %.3f s\n"
                "  clean closes   %" PRIu64 " (close 1000 answered, then the server's FIN)\n"
                "  upgrade (us)   p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  mean %.1f\n",
                opt.host, opt.target, opt.connect_batch, opened, opt.conns, open_s, rate,
                total_s, st.clean_ends, us(hist_quantile(&st.lat, 0.50)),
                us(hist_quantile(&st.lat, 0.90)), us(hist_quantile(&st.lat, 0.99)),
                us(hist_quantile(&st.lat, 0.999)), us(st.lat.max),
                st.lat.count ? us(st.lat.sum / st.lat.count) : 0.0);
    } else {
        double rate = open_s > 0 ? (double)opened / open_s : 0;
        printf("wisp-load mode=idle conns=%u open=%u open_s=%.3f conns_per_s=%.0f hold_s=%.1f "
               "close_s=%.3f errors=%" PRIu64 " closes=%" PRIu64 "\n",
               opt.conns, opened, open_s, rate, opt.hold, (double)(t_end - t_close0) / 1e9,
               total_errors(), st.closes);
        fprintf(stderr,
                "\n  url            ws://%s%s\n"
                "  connections    %u open of %u in %.3f s (%.0f/s)\n"
                "  held           %.1f s; closing took %.3f s\n",
                opt.host, opt.target, opened, opt.conns, open_s, rate, opt.hold,
                (double)(t_end - t_close0) / 1e9);
    }
    fprintf(stderr,
            "  errors         %" PRIu64 ": verify %" PRIu64 ", connect %" PRIu64
            ", handshake %" PRIu64 ", protocol %" PRIu64 ", io %" PRIu64
            ", close timeout %" PRIu64 "%s",
            total_errors(), st.verify_errors, st.connect_errors, st.handshake_errors,
            st.protocol_errors, st.io_errors, st.close_timeouts,
            opt.mode == MODE_BROADCAST ? "" : "\n");
    if (opt.mode == MODE_BROADCAST)
        fprintf(stderr, ", sync timeout %" PRIu64 "\n", st.sync_timeouts);
    fprintf(stderr, "  closes         %" PRIu64 " unexpected", st.closes);
    for (unsigned i = 0; i < 17; i++)
        if (st.close_codes[i])
            fprintf(stderr, ", %" PRIu64 " x %u", st.close_codes[i], 1000 + i);
    if (st.close_other)
        fprintf(stderr, ", %" PRIu64 " x other", st.close_other);
    fputc('\n', stderr);
    if (st.pongs_dropped)
        fprintf(stderr, "  pongs dropped  %" PRIu64 "\n", st.pongs_dropped);
}

int main(int argc, char **argv)
{
    if (!parse_args(argc, argv))
        return 2;
    raise_fd_limit();

    wisp_ws_config_init(&ws_cfg, WISP_WS_CLIENT);
    ws_cfg.flags = WISP_WS_STREAM;
    ws_cfg.max_frame_size = opt.size > 1024 ? opt.size : 1024;
    ws_cfg.max_message_size = ws_cfg.max_frame_size;
    client_opts.host = opt.host;
    client_opts.target = opt.target;

    if (opt.mode == MODE_ECHO) {
        setup_payload();
        rx_cap = opt.size + 64;
        if (rx_cap < 4096)
            rx_cap = 4096;
        if (rx_cap > 65536)
            rx_cap = 65536;
        /* depth whole frames, a pong, a close, and the upgrade request, with room to spare */
        tx_cap = (size_t)opt.depth * (opt.size + WISP_WS_MAX_HEADER) + 4096 + sizeof opt.target +
                 sizeof opt.host;
    } else if (opt.mode == MODE_BROADCAST) {
        setup_payload();
        rx_cap = opt.size + 64;
        if (rx_cap < 4096)
            rx_cap = 4096;
        if (rx_cap > 65536)
            rx_cap = 65536;
        /* subscribers send pongs and a close only; the publisher a window of whole frames too */
        tx_cap = 1024 + sizeof opt.target + sizeof opt.host;
        pub_tx_cap = (size_t)opt.window * (opt.size + WISP_WS_MAX_HEADER) + 4096 +
                     sizeof opt.target + sizeof opt.host;
        if (!bc_window_init(&pubwin, opt.window)) {
            fprintf(stderr, "wisp-load: out of memory\n");
            return 2;
        }
    } else {
        rx_cap = 2048;
        tx_cap = 1024 + sizeof opt.target + sizeof opt.host;
    }

    conns = calloc(opt.conns, sizeof *conns);
    if (!conns) {
        fprintf(stderr, "wisp-load: out of memory for %u connections\n", opt.conns);
        return 2;
    }
    setup_ring();
    run();
    report();
    io_uring_queue_exit(&ring);
    bc_window_free(&pubwin);
    return total_errors() || st.closes ? 1 : 0;
}
