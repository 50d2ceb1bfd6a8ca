/* TLS for server connections: OpenSSL over memory BIOs, on the worker that owns the
 * connection. The ring keeps doing the socket I/O: received ciphertext is written into the
 * read BIO and decrypted into a per-worker scratch buffer that the usual parsers read; the
 * plain send queue is encrypted at flush time into a second queue of ciphertext, which is what
 * goes on the wire. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "conn.h"
#include "tls.h"

#define SCRATCH 16384u
#define DEFAULT_MAX_HANDSHAKES 256u

struct wispi_tls_ctx {
    SSL_CTX *ctx;         /* the default certificate */
    SSL_CTX **sni_ctx;    /* one per SNI name */
    char **sni_names;
    size_t num_sni;
    uint32_t max_handshakes;
};

struct wispi_tls {
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl */
    bool done;        /* handshake finished */
    bool counted;     /* counted in the worker's handshakes in progress */
};

static const char *ssl_error_text(void)
{
    static _Thread_local char buf[160];
    unsigned long e = ERR_get_error();
    if (!e)
        return "no detail";
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

/* ---- contexts (at listen time) ------------------------------------------------------------ */

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    /* We speak HTTP/1.1 only (the upgrade needs it). No overlap: go on without ALPN. */
    for (unsigned i = 0; i < inlen;) {
        unsigned n = in[i];
        if (i + 1 + n > inlen)
            break;
        if (n == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0) {
            *out = in + i + 1;
            *outlen = (unsigned char)n;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

static int sni_select(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    const struct wispi_tls_ctx *t = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name)
        return SSL_TLSEXT_ERR_OK;
    for (size_t i = 0; i < t->num_sni; i++)
        if (strcasecmp(name, t->sni_names[i]) == 0) {
            SSL_set_SSL_CTX(ssl, t->sni_ctx[i]);
            break;
        }
    return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *make_ctx(const char *cert, const char *key, const struct wisp_tls_opts *o)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        wispi_set_error("cannot create a TLS context: %s", ssl_error_text());
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* Records are written into memory and sent later: a moved buffer is fine. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        wispi_set_error("cannot load the certificate chain %s: %s", cert, ssl_error_text());
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        wispi_set_error("cannot load the private key %s: %s", key, ssl_error_text());
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        wispi_set_error("the key %s does not match the certificate %s", key, cert);
        goto fail;
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    if (o->client_ca_file) {
        if (SSL_CTX_load_verify_locations(ctx, o->client_ca_file, NULL) != 1) {
            wispi_set_error("cannot load the client CA %s: %s", o->client_ca_file,
                            ssl_error_text());
            goto fail;
        }
        SSL_CTX_set_verify(ctx,
                           SSL_VERIFY_PEER |
                               (o->require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                           NULL);
    }
    if (o->configure && o->configure(ctx, o->configure_arg) < 0) {
        wispi_set_error("the TLS configure hook refused the context");
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

void wispi_tls_ctx_free(struct wispi_tls_ctx *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    for (size_t i = 0; i < t->num_sni; i++) {
        SSL_CTX_free(t->sni_ctx[i]);
        free(t->sni_names[i]);
    }
    free(t->sni_ctx);
    free(t->sni_names);
    free(t);
}

int wispi_tls_ctx_new(const struct wisp_tls_opts *o, struct wispi_tls_ctx **out)
{
    if (!o || !o->cert_file || !o->key_file || (o->num_sni && !o->sni)) {
        wispi_set_error("TLS needs cert_file and key_file");
        return -EINVAL;
    }
    struct wispi_tls_ctx *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->max_handshakes = o->max_handshakes_per_worker ? o->max_handshakes_per_worker
                                                     : DEFAULT_MAX_HANDSHAKES;
    if (!(t->ctx = make_ctx(o->cert_file, o->key_file, o)))
        goto fail;
    if (o->num_sni) {
        t->sni_ctx = calloc(o->num_sni, sizeof *t->sni_ctx);
        t->sni_names = calloc(o->num_sni, sizeof *t->sni_names);
        if (!t->sni_ctx || !t->sni_names)
            goto fail;
        for (size_t i = 0; i < o->num_sni; i++, t->num_sni++) {
            const struct wisp_tls_sni *s = &o->sni[i];
            if (!s->name || !(t->sni_names[i] = strdup(s->name)) ||
                !(t->sni_ctx[i] = make_ctx(s->cert_file, s->key_file, o)))
                goto fail;
        }
        SSL_CTX_set_tlsext_servername_callback(t->ctx, sni_select);
        SSL_CTX_set_tlsext_servername_arg(t->ctx, t);
    }
    *out = t;
    return 0;
fail:
    if (t->num_sni < o->num_sni && t->sni_names && t->sni_names[t->num_sni]) {
        free(t->sni_names[t->num_sni]); /* the name whose context failed */
        t->sni_names[t->num_sni] = NULL;
    }
    wispi_tls_ctx_free(t);
    return -EINVAL;
}

int wispi_tls_client_ctx_new(const char *ca_file, bool insecure, struct wispi_tls_ctx **out)
{
    struct wispi_tls_ctx *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->ctx = SSL_CTX_new(TLS_client_method());
    if (!t->ctx) {
        wispi_set_error("cannot create a TLS context: %s", ssl_error_text());
        free(t);
        return -ENOMEM;
    }
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(t->ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    int ok = ca_file ? SSL_CTX_load_verify_locations(t->ctx, ca_file, NULL)
                     : SSL_CTX_set_default_verify_paths(t->ctx);
    if (ok != 1) {
        wispi_set_error("cannot load the CA %s: %s", ca_file ? ca_file : "(system store)",
                        ssl_error_text());
        wispi_tls_ctx_free(t);
        return -EINVAL;
    }
    SSL_CTX_set_verify(t->ctx, insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(t->ctx, alpn, sizeof alpn - 1);
    t->max_handshakes = UINT32_MAX;
    *out = t;
    return 0;
}

/* ---- one connection --------------------------------------------------------------------- */

__attribute__((format(printf, 2, 3))) static void log_line(struct wisp_conn *c,
                                                          const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (c->srv->opts.log)
        c->srv->opts.log(c->srv->opts.log_arg, line);
    else
        fprintf(stderr, "wisp: %s\n", line);
}

static uint8_t *scratch(struct wispi_net *net)
{
    if (!net->tls_scratch)
        net->tls_scratch = malloc(SCRATCH);
    return net->tls_scratch;
}

static int new_ssl(struct wisp_conn *c, struct wispi_tls_ctx *t, bool client)
{
    if (c->net->tls_handshakes >= t->max_handshakes)
        return -EBUSY;
    struct wispi_tls *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->ssl = SSL_new(t->ctx);
    s->rbio = BIO_new(BIO_s_mem());
    s->wbio = BIO_new(BIO_s_mem());
    if (!s->ssl || !s->rbio || !s->wbio) {
        SSL_free(s->ssl);
        BIO_free(s->rbio);
        BIO_free(s->wbio);
        free(s);
        return -ENOMEM;
    }
    SSL_set_bio(s->ssl, s->rbio, s->wbio); /* the SSL owns both now */
    if (client)
        SSL_set_connect_state(s->ssl);
    else
        SSL_set_accept_state(s->ssl);
    s->counted = true;
    c->net->tls_handshakes++;
    c->tls = s;
    return 0;
}

int wispi_tls_conn_new(struct wisp_conn *c, struct wispi_tls_ctx *t)
{
    return new_ssl(c, t, false);
}

static int drain_wbio(struct wisp_conn *c);

int wispi_tls_client_start(struct wisp_conn *c, struct wispi_tls_ctx *t, const char *host)
{
    int rc = new_ssl(c, t, true);
    if (rc < 0)
        return rc;
    SSL *ssl = c->tls->ssl;
    struct in6_addr ip;
    bool literal = inet_pton(AF_INET, host, &ip) == 1 || inet_pton(AF_INET6, host, &ip) == 1;
    /* SNI for names only (RFC 6066); the certificate must match the name or the address. */
    if ((!literal && SSL_set_tlsext_host_name(ssl, host) != 1) ||
        (literal ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host)
                 : SSL_set1_host(ssl, host)) != 1) {
        wispi_tls_conn_free(c);
        return -ENOMEM;
    }
    SSL_do_handshake(ssl); /* writes the ClientHello */
    return drain_wbio(c);
}

static void uncount(struct wisp_conn *c)
{
    if (c->tls->counted) {
        c->tls->counted = false;
        c->net->tls_handshakes--;
    }
}

void wispi_tls_conn_free(struct wisp_conn *c)
{
    if (!c->tls)
        return;
    uncount(c);
    SSL_free(c->tls->ssl);
    free(c->tls);
    c->tls = NULL;
}

/* Move what OpenSSL wrote (handshake messages, records, alerts) to the wire queue. */
static int drain_wbio(struct wisp_conn *c)
{
    BIO *w = c->tls->wbio;
    size_t pending;
    while ((pending = BIO_ctrl_pending(w)) > 0) {
        size_t n = pending < WISPI_CHUNK / 2 ? pending : WISPI_CHUNK / 2;
        uint8_t *out = wispi_txq_reserve(c->net, &c->ctxq, n);
        if (!out)
            return -ENOMEM;
        int got = BIO_read(w, out, (int)n);
        if (got <= 0)
            break;
        wispi_txq_commit(&c->ctxq, (size_t)got, true);
    }
    wispi_sock_dirty(c->net, &c->sock);
    return 0;
}

static void tls_failed(struct wisp_conn *c, const char *what)
{
    char addr[64] = "?";
    if (c->peer.sin6_family == AF_INET) {
        struct sockaddr_in v4; /* copied out: c->peer is a sockaddr_in6 holding either */
        memcpy(&v4, &c->peer, sizeof v4);
        inet_ntop(AF_INET, &v4.sin_addr, addr, sizeof addr);
    } else if (c->peer.sin6_family == AF_INET6) {
        inet_ntop(AF_INET6, &c->peer.sin6_addr, addr, sizeof addr);
    }
    long v = SSL_get_verify_result(c->tls->ssl);
    char why[200];
    if (v != X509_V_OK)
        snprintf(why, sizeof why, "certificate verify failed: %s",
                 X509_verify_cert_error_string(v));
    else
        snprintf(why, sizeof why, "%s", ssl_error_text());
    drain_wbio(c); /* an alert, if OpenSSL wrote one */
    if (c->client && c->phase < PH_OPEN) {
        char msg[256];
        snprintf(msg, sizeof msg, "TLS %s with %s: %s", what, addr, why);
        wispi_client_fail(c, -EPROTO, msg);
        return;
    }
    log_line(c, "TLS with %s failed (%s): %s", addr, what, why);
    if (c->phase < PH_OPEN) {
        CONN_STAT(c, handshake_failures, 1);
        wispi_conn_close_now(c);
    } else {
        wispi_conn_abort_conn(c, WISP_WHY_IO_ERROR, -EPROTO);
    }
}

void wispi_tls_input(struct wisp_conn *c, const uint8_t *p, size_t len,
                     void (*feed)(struct wisp_conn *c, uint8_t *p, size_t len))
{
    struct wispi_tls *s = c->tls;
    if (len && BIO_write(s->rbio, p, (int)len) != (int)len) {
        tls_failed(c, "buffering");
        return;
    }
    if (!s->done) {
        int r = SSL_do_handshake(s->ssl);
        if (r != 1) {
            int e = SSL_get_error(s->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                drain_wbio(c);
                return;
            }
            tls_failed(c, "handshake");
            return;
        }
        s->done = true;
        uncount(c);
        drain_wbio(c);
    }
    uint8_t *buf = scratch(c->net);
    if (!buf) {
        tls_failed(c, "out of memory");
        return;
    }
    while (c->phase < PH_DRAIN && c->phase != PH_DONE) {
        int n = SSL_read(s->ssl, buf, (int)SCRATCH);
        if (n > 0) {
            feed(c, buf, (size_t)n);
            continue;
        }
        int e = SSL_get_error(s->ssl, n);
        drain_wbio(c); /* e.g. TLS 1.3 session tickets, or a key update answer */
        if (e == SSL_ERROR_WANT_READ)
            return;
        if (e == SSL_ERROR_ZERO_RETURN) { /* the peer's close_notify: like a FIN */
            c->eof = true;
            return;
        }
        tls_failed(c, "read");
        return;
    }
}

int wispi_tls_encrypt(struct wisp_conn *c)
{
    struct wispi_tls *s = c->tls;
    if (!s->done)
        return 0; /* nothing plain is queued before the handshake ends */
    wispi_txq_place_control(&c->txq);
    const uint8_t *p;
    size_t n, total = 0;
    for (size_t i = 0; wispi_txq_segment(&c->txq, i, &p, &n); i++) {
        /* Without partial writes, SSL_write on a memory BIO takes everything or fails. */
        while (n) {
            int chunk = n > (1u << 30) ? 1 << 30 : (int)n;
            if (SSL_write(s->ssl, p, chunk) != chunk) {
                tls_failed(c, "write");
                return -EPROTO;
            }
            p += chunk;
            n -= (size_t)chunk;
            total += (size_t)chunk;
        }
    }
    if (total)
        wispi_txq_sent(c->net, &c->txq, total); /* copied into records: release them */
    return drain_wbio(c);
}

void wispi_tls_shutdown(struct wisp_conn *c)
{
    if (!c->tls || !c->tls->done)
        return;
    wispi_tls_encrypt(c);
    SSL_shutdown(c->tls->ssl); /* queue our close_notify behind the last record */
    drain_wbio(c);
}
