/* TLS for server connections (tls.c), internal. Without OpenSSL (built with -Dtls=disabled)
 * none of this is compiled and TLS listeners are refused. */
#ifndef WISP_RUNTIME_TLS_H
#define WISP_RUNTIME_TLS_H

#include <wisp/server.h>

struct wisp_conn;
struct wispi_tls_ctx;

/* A listener's contexts (default certificate, SNI ones), loaded now; errors name the file
 * (wispi_set_error). */
int wispi_tls_ctx_new(const struct wisp_tls_opts *o, struct wispi_tls_ctx **out);
void wispi_tls_ctx_free(struct wispi_tls_ctx *t);

/* Give a new connection its TLS state. -EBUSY when its worker has too many handshakes in
 * progress (the connection is then closed). */
int wispi_tls_conn_new(struct wisp_conn *c, struct wispi_tls_ctx *t);
void wispi_tls_conn_free(struct wisp_conn *c);
/* Ciphertext arrived: decrypt and pass the plain bytes to feed (which may end the
 * connection). Handshake messages and alerts are queued for sending. */
void wispi_tls_input(struct wisp_conn *c, const uint8_t *p, size_t len,
                     void (*feed)(struct wisp_conn *c, uint8_t *p, size_t len));
/* A client-role context for wss://: the system's store or ca_file, or no verification. */
int wispi_tls_client_ctx_new(const char *ca_file, bool insecure, struct wispi_tls_ctx **out);
/* Start the client side of the handshake on a connected socket: SNI and host name checks
 * for host. */
int wispi_tls_client_start(struct wisp_conn *c, struct wispi_tls_ctx *t, const char *host);
/* Encrypt the plain queue into the wire queue (before a flush). */
int wispi_tls_encrypt(struct wisp_conn *c);
/* Encrypt what is left and queue close_notify (a clean close). */
void wispi_tls_shutdown(struct wisp_conn *c);

#endif
