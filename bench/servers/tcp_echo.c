/* tcp_echo: a minimal WebSocket echo on epoll, the baseline for wisp's server benchmarks.
 *
 * This is a peer of wisp, not part of it: it does not include or link libwisp. It does the
 * work a WebSocket echo cannot avoid and little else, so that the benchmarks have a ceiling
 * that the same WebSocket load generator can drive:
 *
 *   - answers the HTTP upgrade (Sec-WebSocket-Accept from OpenSSL's SHA-1 and base64),
 *     negotiating no subprotocol and no extension;
 *   - parses client frame headers, requires the mask, and streams each frame back as it
 *     arrives, unmasked (server frames are never masked), with the same FIN bit and opcode:
 *     a fragmented message comes back as the same fragments, nothing is reassembled;
 *   - answers a ping with a pong, drops pongs, echoes a close frame and then closes.
 *
 * What it leaves out, and a conforming server (wisp included) must do: it does not validate
 * UTF-8 in text messages, does not check continuation sequencing, and on a protocol error
 * drops the connection instead of sending a close code. A raw byte echo would be cheaper
 * still but is not a WebSocket echo (it would send the client's masked frames back), so
 * it could not be driven by the same client.
 *
 * One thread, non-blocking sockets, level-triggered epoll. Pending output per connection
 * is bounded: above OUT_HIGH bytes the connection stops being read until it drains, and
 * since an echoed frame is never longer than the client frame it came from, a connection
 * never holds more than OUT_HIGH + READ_SIZE bytes.
 *
 *   tcp_echo [--host 127.0.0.1] --port P      (P = 0 picks a free port)
 *
 * prints "listening P" on stdout once it accepts connections, and exits 0 on SIGTERM or
 * SIGINT.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>

enum {
    READ_SIZE = 64 * 1024,       /* one read(2) at most; the buffer is shared by all */
    READS_PER_EVENT = 8,         /* then let the other connections have a turn */
    OUT_HIGH = 1024 * 1024,      /* stop reading a connection above this much output */
    OUT_SHRINK = 4 * OUT_HIGH,   /* free an emptied output buffer bigger than this */
    HS_MAX = 8192,               /* the whole upgrade request must fit */
    MAX_EVENTS = 256,
};

enum conn_state { ST_HANDSHAKE, ST_OPEN, ST_CLOSING };

struct conn {
    int fd;
    enum conn_state state;
    uint32_t events;             /* what epoll currently watches */

    char *hs;                    /* upgrade request so far (ST_HANDSHAKE only) */
    size_t hs_len;

    uint8_t hdr[14];             /* a frame header split across reads */
    size_t hdr_len;
    uint64_t remaining;          /* payload bytes of the current frame still to come */
    uint8_t mask[4];
    unsigned mask_off;
    bool discard;                /* current frame is not echoed (a pong) */
    bool is_close;               /* current frame is a close: echo it, then close */

    uint8_t *out;                /* pending output: out[head, head + len) */
    size_t out_head, out_len, out_cap;

    struct conn *prev, *next;
};

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static int epfd = -1;
static struct conn *conns;       /* every open connection, to free them on exit */
static uint8_t rbuf[READ_SIZE];
static int listen_tag, signal_tag; /* their addresses tell the epoll events apart */

static void conn_close(struct conn *c)
{
    close(c->fd);                /* also removes it from the epoll set */
    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c->hs);
    free(c->out);
    free(c);
}

/* Room for n more bytes at the end of the pending output; false if out of memory. */
static bool out_reserve(struct conn *c, size_t n)
{
    if (c->out_cap - c->out_head - c->out_len >= n)
        return true;
    if (c->out_head) {
        memmove(c->out, c->out + c->out_head, c->out_len);
        c->out_head = 0;
        if (c->out_cap - c->out_len >= n)
            return true;
    }
    size_t cap = c->out_cap ? c->out_cap * 2 : 64 * 1024;
    while (cap < c->out_len + n)
        cap *= 2;
    uint8_t *p = realloc(c->out, cap);
    if (!p)
        return false;
    c->out = p;
    c->out_cap = cap;
    return true;
}

static bool out_append(struct conn *c, const void *p, size_t n)
{
    if (!out_reserve(c, n))
        return false;
    memcpy(c->out + c->out_head + c->out_len, p, n);
    c->out_len += n;
    return true;
}

/* dst = src XOR mask, the mask starting at byte `off` of its 4-byte cycle. */
static void unmask_copy(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t mask[4],
                        unsigned off)
{
    uint8_t m[8];
    for (unsigned k = 0; k < 8; k++)
        m[k] = mask[(off + k) & 3];
    uint64_t m64;
    memcpy(&m64, m, 8);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        w ^= m64;
        memcpy(dst + i, &w, 8);
    }
    for (; i < n; i++)
        dst[i] = src[i] ^ m[i & 7];
}

/* Total size of the client frame header that starts with h[0..have), once have >= 2. */
static size_t header_size(const uint8_t *h, size_t have)
{
    if (have < 2)
        return 2;
    unsigned len7 = h[1] & 0x7f;
    return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((h[1] & 0x80) ? 4 : 0);
}

/* A complete client header: check it, queue the server header. False: drop the connection. */
static bool frame_start(struct conn *c, const uint8_t *h)
{
    uint8_t b0 = h[0], b1 = h[1];
    unsigned opcode = b0 & 0x0f;
    bool fin = b0 & 0x80;
    if ((b0 & 0x70) || !(b1 & 0x80))             /* no extension bits; clients must mask */
        return false;
    if ((opcode >= 3 && opcode <= 7) || opcode >= 0xb)
        return false;

    uint64_t len = b1 & 0x7f;
    size_t p = 2;
    if (len == 126) {
        len = (uint64_t)h[2] << 8 | h[3];
        p = 4;
    } else if (len == 127) {
        len = 0;
        for (int k = 0; k < 8; k++)
            len = len << 8 | h[2 + k];
        if (len >> 63)
            return false;
        p = 10;
    }
    if (opcode >= 8 && (!fin || len > 125))      /* control frames: short, unfragmented */
        return false;
    memcpy(c->mask, h + p, 4);
    c->mask_off = 0;
    c->remaining = len;
    c->discard = opcode == 0xa;
    c->is_close = opcode == 0x8;

    if (!c->discard) {
        uint8_t out[10];
        size_t n;
        out[0] = opcode == 0x9 ? 0x8a : b0;      /* a ping is answered by a pong */
        if (len < 126) {
            out[1] = (uint8_t)len;
            n = 2;
        } else if (len <= 0xffff) {
            out[1] = 126;
            out[2] = (uint8_t)(len >> 8);
            out[3] = (uint8_t)len;
            n = 4;
        } else {
            out[1] = 127;
            for (int k = 0; k < 8; k++)
                out[2 + k] = (uint8_t)(len >> (56 - 8 * k));
            n = 10;
        }
        if (!out_append(c, out, n))
            return false;
    }
    if (len == 0 && c->is_close)
        c->state = ST_CLOSING;
    return true;
}

/* Feed WebSocket bytes; false: drop the connection. Input after a close frame is ignored. */
static bool ws_feed(struct conn *c, const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n && c->state == ST_OPEN) {
        if (c->remaining == 0) {                 /* between frames: a header */
            if (c->hdr_len == 0) {
                size_t need = header_size(p + i, n - i);
                if (n - i >= need) {
                    if (!frame_start(c, p + i))
                        return false;
                    i += need;
                    continue;
                }
            }
            /* The header is split across reads: gather it in c->hdr. */
            size_t need = header_size(c->hdr, c->hdr_len);
            while (c->hdr_len < need && i < n) {
                c->hdr[c->hdr_len++] = p[i++];
                need = header_size(c->hdr, c->hdr_len);
            }
            if (c->hdr_len < need)
                return true;
            c->hdr_len = 0;
            if (!frame_start(c, c->hdr))
                return false;
            continue;
        }
        size_t k = n - i < c->remaining ? n - i : (size_t)c->remaining;
        if (!c->discard) {
            if (!out_reserve(c, k))
                return false;
            unmask_copy(c->out + c->out_head + c->out_len, p + i, k, c->mask, c->mask_off);
            c->out_len += k;
        }
        c->mask_off = (unsigned)((c->mask_off + k) & 3);
        c->remaining -= k;
        i += k;
        if (c->remaining == 0 && c->is_close)
            c->state = ST_CLOSING;
    }
    return true;
}

static bool header_name_is(const char *s, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(s, name, n) == 0;
}

/* The upgrade request ends at c->hs + end: answer it. False: drop the connection. */
static bool handshake_reply(struct conn *c, size_t end)
{
    static const char bad[] = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
                              "Content-Length: 0\r\n\r\n";
    const char *key = NULL;
    size_t key_len = 0;
    const char *s = c->hs, *stop = c->hs + end;
    if (end < 4 || memcmp(s, "GET ", 4) != 0)
        goto reject;
    s = (const char *)memchr(s, '\n', (size_t)(stop - s)) + 1; /* past the request line */
    while (s < stop) {
        const char *eol = memchr(s, '\n', (size_t)(stop - s));
        const char *colon = memchr(s, ':', (size_t)(eol - s));
        if (colon) {
            const char *v = colon + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            if (header_name_is(s, (size_t)(colon - s), "sec-websocket-key")) {
                key = v;
                key_len = (size_t)(ve - v);
            }
        }
        s = eol + 1;
    }
    if (!key || key_len == 0 || key_len > 64)
        goto reject;

    char buf[64 + sizeof ws_guid];
    memcpy(buf, key, key_len);
    memcpy(buf + key_len, ws_guid, sizeof ws_guid - 1);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    if (!EVP_Digest(buf, key_len + sizeof ws_guid - 1, digest, &dlen, EVP_sha1(), NULL))
        return false;
    unsigned char accept[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
    EVP_EncodeBlock(accept, digest, (int)dlen);

    char resp[256];
    int rn = snprintf(resp, sizeof resp,
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                      (const char *)accept);
    if (rn < 0 || (size_t)rn >= sizeof resp || !out_append(c, resp, (size_t)rn))
        return false;
    c->state = ST_OPEN;
    return true;

reject:
    if (!out_append(c, bad, sizeof bad - 1))
        return false;
    c->state = ST_CLOSING;
    return true;
}

/* Bytes that arrived before the upgrade was answered. False: drop the connection. */
static bool hs_feed(struct conn *c, const uint8_t *p, size_t n)
{
    size_t before = c->hs_len;
    size_t take = HS_MAX - c->hs_len < n ? HS_MAX - c->hs_len : n;
    memcpy(c->hs + c->hs_len, p, take);
    c->hs_len += take;
    /* The end may straddle the previous read: look a little before the new bytes. */
    size_t from = before >= 3 ? before - 3 : 0;
    const char *e = memmem(c->hs + from, c->hs_len - from, "\r\n\r\n", 4);
    if (!e)
        return c->hs_len < HS_MAX;
    size_t end = (size_t)(e - c->hs) + 4;
    if (!handshake_reply(c, end))
        return false;
    /* Frames sent right behind the request: what is left of hs, then the rest of p. */
    bool ok = true;
    if (c->state == ST_OPEN)
        ok = ws_feed(c, (const uint8_t *)c->hs + end, c->hs_len - end) &&
             ws_feed(c, p + take, n - take);
    free(c->hs);
    c->hs = NULL;
    return ok;
}

/* Write what is pending. False: drop the connection. */
static bool flush_out(struct conn *c)
{
    while (c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_head, c->out_len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK;
        }
        c->out_head += (size_t)w;
        c->out_len -= (size_t)w;
    }
    c->out_head = 0;
    if (c->out_cap > OUT_SHRINK) {
        free(c->out);
        c->out = NULL;
        c->out_cap = 0;
    }
    return true;
}

/* Flush, then watch what the connection now waits for, or close it if it is done. */
static void conn_settle(struct conn *c)
{
    if (!flush_out(c) || (c->state == ST_CLOSING && c->out_len == 0)) {
        conn_close(c);
        return;
    }
    uint32_t want = 0;
    if (c->state != ST_CLOSING && c->out_len < OUT_HIGH)
        want |= EPOLLIN;
    if (c->out_len)
        want |= EPOLLOUT;
    if (want != c->events) {
        struct epoll_event ev = {.events = want, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
            conn_close(c);
            return;
        }
        c->events = want;
    }
}

static void conn_readable(struct conn *c)
{
    for (int r = 0; r < READS_PER_EVENT; r++) {
        if (c->state == ST_CLOSING || c->out_len >= OUT_HIGH)
            break;
        ssize_t n = recv(c->fd, rbuf, sizeof rbuf, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_close(c);
            return;
        }
        if (n == 0) {                            /* the peer is gone */
            conn_close(c);
            return;
        }
        bool ok = c->state == ST_HANDSHAKE ? hs_feed(c, rbuf, (size_t)n)
                                           : ws_feed(c, rbuf, (size_t)n);
        if (!ok) {
            conn_close(c);
            return;
        }
        if (c->out_len && !flush_out(c)) {
            conn_close(c);
            return;
        }
        if ((size_t)n < sizeof rbuf)             /* most likely drained */
            break;
    }
    conn_settle(c);
}

static void accept_all(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                perror("tcp_echo: accept4"); /* e.g. EMFILE: retried on the next event */
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        char *hs = malloc(HS_MAX);
        if (!c || !hs) {
            free(c);
            free(hs);
            close(fd);
            continue;
        }
        c->fd = fd;
        c->hs = hs;
        c->state = ST_HANDSHAKE;
        c->events = EPOLLIN;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            free(c);
            free(hs);
            close(fd);
            continue;
        }
        c->next = conns;
        if (conns)
            conns->prev = c;
        conns = c;
    }
}

static int listen_on(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    int err = getaddrinfo(host, port, &hints, &res);
    if (err) {
        fprintf(stderr, "tcp_echo: %s:%s: %s\n", host, port, gai_strerror(err));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        fprintf(stderr, "tcp_echo: cannot listen on %s:%s: %s\n", host, port, strerror(errno));
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

static void usage(void)
{
    fprintf(stderr, "usage: tcp_echo [--host ADDR] --port PORT\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *port = NULL;
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

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    if (sigprocmask(SIG_BLOCK, &sigs, NULL) < 0)
        return 1;
    int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    int lfd = listen_on(host, port);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (sfd < 0 || lfd < 0 || epfd < 0)
        return 1;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &listen_tag};
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &signal_tag};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) < 0 ||
        epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &sev) < 0) {
        perror("tcp_echo: epoll_ctl");
        return 1;
    }
    printf("listening %d\n", bound_port(lfd));
    fflush(stdout);

    struct epoll_event events[MAX_EVENTS];
    bool running = true;
    while (running) {
        int n = epoll_wait(epfd, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("tcp_echo: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            void *tag = events[i].data.ptr;
            if (tag == &signal_tag) {
                running = false;
                break;                           /* the rest may name freed connections */
            }
            if (tag == &listen_tag) {
                accept_all(lfd);
                continue;
            }
            struct conn *c = tag;
            /* Closing a connection only ever frees c itself, so the later events of this
             * batch never name a freed one. */
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                conn_readable(c);
            else if (events[i].events & EPOLLOUT)
                conn_settle(c);
        }
    }

    while (conns)
        conn_close(conns);
    close(lfd);
    close(sfd);
    close(epfd);
    return 0;
}
