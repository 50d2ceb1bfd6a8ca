/* wisp/http.h: the HTTP/1.1 side of a WebSocket connection (RFC 9112, RFC 6455 §4), sans-IO.
 *
 * Parsing: wisp_http_parse_request() and wisp_http_parse_response() read a request or response
 * head from bytes the caller owns. They copy nothing and allocate nothing: every string they
 * report (method, path, header names and values, ...) points into the caller's buffer and is
 * NOT NUL-terminated; it stays valid as long as those bytes stay where they are. Header slots
 * come from an array the caller supplies. Both parsers are incremental: append the bytes that
 * arrived and call again with the previous length, and only the new bytes are scanned until
 * the empty line that ends the head is there.
 *
 * Server role: wisp_ws_upgrade_check() validates a parsed request as a WebSocket opening
 * handshake and answers 0 or the HTTP status to refuse it with; wisp_ws_upgrade_accept() writes
 * the 101 answer, wisp_http_reject() the refusal.
 *
 * Client role: wisp_ws_client_request() writes the upgrade request with a fresh key and
 * wisp_ws_client_check() validates the server's answer against it.
 *
 * Writers never write a partial answer: when the caller's buffer is too small they return
 * WISP_ENOSPACE and leave it untouched. Writers refuse CR, LF and other control characters in
 * anything that ends up in a header (-EINVAL), so caller-supplied strings cannot inject headers.
 *
 * Thread-safety: nothing here has global or hidden state. Every function may be called from any
 * thread; objects passed to one call must not be modified concurrently by another.
 */
#ifndef WISP_HTTP_H
#define WISP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <wisp/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Headers and lists
 */

/** One header field. Both strings point into the parsed buffer (or the caller's memory when
 *  passed to a writer) and are not NUL-terminated. value has no leading or trailing SP/HTAB. */
struct wisp_http_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/**
 * Find a header by name, case-insensitively, starting at index *pos.
 *
 * To visit every instance of a repeated header, start with *pos = 0 and call until NULL:
 * each hit sets *pos to the index after it.
 *
 * @param headers  borrowed; count entries (may be NULL when count is 0).
 * @param name     NUL-terminated name to look for (e.g. "sec-websocket-key").
 * @param pos      in/out cursor; NULL searches from index 0.
 * @return the matching header (borrowed from headers), or NULL when there is no further match
 *         or name is NULL.
 */
WISP_API const struct wisp_http_header *
wisp_http_header_find(const struct wisp_http_header *headers, size_t count, const char *name,
                      size_t *pos);

/** How many headers are named name (case-insensitive). Used to insist on "exactly once". */
WISP_API size_t wisp_http_header_count(const struct wisp_http_header *headers, size_t count,
                                       const char *name);

/**
 * Step through a comma-separated list value (RFC 9110 §5.6.1), e.g. "keep-alive, Upgrade".
 *
 * Each element is returned with surrounding SP/HTAB removed; empty elements (",,", a trailing
 * comma) are skipped. A comma inside a quoted-string (with backslash escapes) does not split,
 * so an element may be a whole extension offer such as `permessage-deflate; x="a,b"`.
 *
 * @param list     borrowed; len bytes.
 * @param pos      in/out offset into list; start at 0.
 * @param item     out: the element (points into list).
 * @param item_len out: its length (never 0 when true is returned).
 * @return true with an element, false when the list is exhausted (or an argument is NULL).
 */
WISP_API bool wisp_http_token_next(const char *list, size_t len, size_t *pos, const char **item,
                                   size_t *item_len);

/** Iterator over the list elements of every header with a given name, in order, as if their
 *  values had been joined with commas. Fields are private; use the functions below. */
struct wisp_http_list_iter {
    const struct wisp_http_header *_headers;
    size_t _count;
    const char *_name;
    size_t _next;                           /* index after the current header */
    const struct wisp_http_header *_cur;    /* header whose value is being walked, or NULL */
    size_t _pos;                            /* offset in _cur->value */
};

/**
 * Start iterating the list elements of all headers named name.
 * @param headers, count  borrowed; must outlive the iteration.
 * @param name            borrowed NUL-terminated header name; must outlive the iteration.
 */
WISP_API void wisp_http_list_begin(struct wisp_http_list_iter *it,
                                   const struct wisp_http_header *headers, size_t count,
                                   const char *name);

/** Next element (see wisp_http_token_next()). @return false when every header is exhausted. */
WISP_API bool wisp_http_list_next(struct wisp_http_list_iter *it, const char **item,
                                  size_t *item_len);

/** True if some header named name holds an element equal to token (both case-insensitive). */
WISP_API bool wisp_http_list_has(const struct wisp_http_header *headers, size_t count,
                                 const char *name, const char *token);

/* ---------------------------------------------------------------------------------------------
 * Parsing
 */

#define WISP_HTTP_DEFAULT_MAX_HEAD_BYTES 8192
#define WISP_HTTP_DEFAULT_MAX_HEADERS 64

/** Bounds on what a peer may make the parser look at. */
struct wisp_http_limits {
    /** Largest head (request or status line, headers and the empty line). Default 8192. */
    size_t max_head_bytes;
    /** Most header fields. Default 64. The caller's header array may lower it further. */
    size_t max_headers;
};

/**
 * Fill *lim with the defaults.
 * @return 0, or -EINVAL if lim is NULL.
 */
WISP_API int wisp_http_limits_init(struct wisp_http_limits *lim);

/** A parsed request head. All strings point into the parsed buffer, none is NUL-terminated. */
struct wisp_http_request {
    const char *method;      /**< a token, e.g. "GET" (case-sensitive per RFC 9110) */
    size_t method_len;
    const char *target;      /**< the whole request-target in origin-form: path and query */
    size_t target_len;
    const char *path;        /**< the target up to the first '?', starts with '/' */
    size_t path_len;
    const char *query;       /**< after the first '?' (excluding it); NULL when there is no '?' */
    size_t query_len;
    int minor_version;       /**< the x in HTTP/1.x */
    struct wisp_http_header *headers; /**< the caller's array, num_headers entries filled */
    size_t num_headers;
    size_t head_len;         /**< bytes of the head, the final empty line included; 0 unless
                                  the parse succeeded */
    /** 0 on success; after WISP_EPROTO or WISP_ELIMIT the status to answer with: 400 (malformed),
     *  431 (too many header bytes or fields) or 505 (an HTTP major version other than 1). */
    int status;
};

/**
 * Parse an HTTP/1.1 request head, incrementally.
 *
 * Strict: lines end in CRLF; the request line is `token SP origin-form SP HTTP/1.DIGIT`;
 * header names are tokens directly followed by ':'; values may hold HTAB, SP, visible ASCII and
 * bytes 0x80-0xFF only; continuation lines (obs-fold) are refused. A head that ends in a bare
 * LF is recognised as complete (so it is refused at once), then refused as malformed. A first
 * byte that cannot start a method (a TLS ClientHello on a plain port, binary junk) is refused
 * as soon as it arrives. Nothing after the head is examined: bytes at buf + head_len (frames,
 * a body) belong to the caller.
 *
 * @param buf        borrowed; the bytes received so far, from the start of the request.
 * @param len        bytes at buf.
 * @param prev_len   0 on the first call; after WISP_EINCOMPLETE, the len of that call (the
 *                   same bytes with more appended are passed again). Only bytes from
 *                   prev_len - 3 on are scanned for the end of the head.
 * @param limits     borrowed; NULL for the defaults.
 * @param req        caller-owned, written in full (status set on failure).
 * @param headers    caller-owned array of headers_cap slots that req->headers will point to
 *                   (NULL only with headers_cap 0). Must live as long as req is used.
 * @return the head length (> 0) on success, or:
 *         WISP_EINCOMPLETE: the head has not ended yet; call again with more bytes.
 *         WISP_EPROTO: malformed (req->status 400 or 505).
 *         WISP_ELIMIT: more than limits->max_head_bytes without the end of the head, or more
 *                      header fields than limits->max_headers or headers_cap (status 431).
 *         -EINVAL: a NULL pointer (buf may be NULL only if len is 0), prev_len > len.
 */
WISP_API ssize_t wisp_http_parse_request(const char *buf, size_t len, size_t prev_len,
                                         const struct wisp_http_limits *limits,
                                         struct wisp_http_request *req,
                                         struct wisp_http_header *headers, size_t headers_cap);

/** A parsed response head. Strings point into the parsed buffer, none is NUL-terminated. */
struct wisp_http_response {
    int minor_version;      /**< the x in HTTP/1.x */
    int status;             /**< the three-digit status code, 100-999 */
    const char *reason;     /**< reason phrase, possibly empty */
    size_t reason_len;
    struct wisp_http_header *headers; /**< the caller's array, num_headers entries filled */
    size_t num_headers;
    size_t head_len;        /**< bytes of the head (0 unless the parse succeeded); the
                                 server's first frame may follow */
};

/**
 * Parse an HTTP/1.x response head, incrementally: the same rules, arguments and return values
 * as wisp_http_parse_request(), for a status line `HTTP/1.DIGIT SP 3DIGIT [SP reason]` (the
 * status code's first digit 1-9; the SP before an empty reason may be missing). A first byte
 * other than 'H' is refused at once. On WISP_EPROTO and WISP_ELIMIT nothing in *resp is
 * meaningful (head_len stays 0).
 */
WISP_API ssize_t wisp_http_parse_response(const char *buf, size_t len, size_t prev_len,
                                          const struct wisp_http_limits *limits,
                                          struct wisp_http_response *resp,
                                          struct wisp_http_header *headers, size_t headers_cap);

/* ---------------------------------------------------------------------------------------------
 * Writing plain HTTP answers
 */

/** The standard reason phrase for a status ("Not Found"), or "Unknown" for codes without one.
 *  Static string, never NULL. */
WISP_API const char *wisp_http_status_reason(int status);

/** A plain HTTP answer for wisp_http_write_response(). All pointers are borrowed. */
struct wisp_http_answer {
    int status;                 /**< 100-999; 1xx, 204 and 304 may not have a body */
    const char *content_type;   /**< NUL-terminated, or NULL for none */
    const struct wisp_http_header *headers; /**< extra headers (num_headers), may be NULL */
    size_t num_headers;
    const void *body;           /**< body_len bytes, may be NULL when body_len is 0 */
    size_t body_len;
};

/**
 * Write `HTTP/1.1 <status> <reason>`, Content-Type (when given), Content-Length (except for 1xx,
 * 204 and 304), `Connection: close`, the extra headers, the empty line and the body.
 *
 * @param out  caller-owned; cap bytes. Untouched unless the call succeeds.
 * @return bytes written, or WISP_ENOSPACE (cap too small), or -EINVAL: NULL pointer, status
 *         outside 100-999, a body on a status that may not have one, an extra header whose name
 *         is not a token or is one this function writes itself (Content-Type, Content-Length,
 *         Connection, Transfer-Encoding), or any CR, LF or other control character except HTAB
 *         in a value or in content_type.
 */
WISP_API ssize_t wisp_http_write_response(const struct wisp_http_answer *ans, char *out,
                                          size_t cap);

/**
 * Write a refusal with a short text/plain body (the reason phrase and a newline) and
 * `Connection: close`. A 426 also carries `Sec-WebSocket-Version: 13` and `Upgrade: websocket`
 * (RFC 6455 §4.4, RFC 9110 §15.5.22); a 405 carries `Allow: GET`.
 *
 * @param status  any 400-599 status, typically 400, 403, 404, 405, 426, 431 or 503.
 * @return bytes written, or WISP_ENOSPACE, or -EINVAL (NULL out, status outside 400-599).
 */
WISP_API ssize_t wisp_http_reject(int status, char *out, size_t cap);

/* ---------------------------------------------------------------------------------------------
 * Server role: the opening handshake (RFC 6455 §4.2)
 */

/** Length of a Sec-WebSocket-Key (base64 of 16 bytes) and of a Sec-WebSocket-Accept value. */
#define WISP_WS_KEY_LEN 24
#define WISP_WS_ACCEPT_LEN 28

/**
 * Compute Sec-WebSocket-Accept: base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")).
 * @param out  caller-owned; receives WISP_WS_ACCEPT_LEN characters and a NUL.
 * @param key  borrowed; key_len bytes, used as given (no validation).
 * @return 0, -EINVAL (NULL pointer), or -ENOMEM (libcrypto failed).
 */
WISP_API int wisp_ws_accept_key(char out[WISP_WS_ACCEPT_LEN + 1], const char *key,
                                size_t key_len);

/** What wisp_ws_upgrade_check() found. Strings point into the request's buffer. */
struct wisp_ws_upgrade {
    const struct wisp_http_request *req; /**< the request it was made from (borrowed) */
    const char *path;        /**< as in struct wisp_http_request */
    size_t path_len;
    const char *query;       /**< NULL when the target has no '?' */
    size_t query_len;
    const char *host;        /**< the Host value */
    size_t host_len;
    const char *origin;      /**< the Origin value, or NULL when absent (non-browser client) */
    size_t origin_len;
    const char *key;         /**< the validated Sec-WebSocket-Key */
    size_t key_len;
    const struct wisp_http_header *headers; /**< every header of the request */
    size_t num_headers;
    /** 0 when the handshake is acceptable, else the status also returned. */
    int status;
    /** A fixed English phrase for logs saying what was wrong ("missing Host", ...); "ok" on
     *  success. Static, never NULL after the call. */
    const char *reason;
};

/**
 * Validate a parsed request as a WebSocket upgrade.
 *
 * Requires: method GET (else 405), HTTP/1.1 or later (else 400), exactly one Host holding a
 * host[:port] (no whitespace or other stray characters; else 400), an Upgrade
 * list with `websocket` and a Connection list with `upgrade` (case-insensitive), exactly one
 * Sec-WebSocket-Key that is base64 of 16 bytes, exactly one Sec-WebSocket-Version, equal to 13
 * (missing or repeated: 400; another value: 426, which wisp_http_reject() answers with
 * `Sec-WebSocket-Version: 13`), Sec-WebSocket-Protocol elements that are tokens, and no request
 * body (Transfer-Encoding, or a Content-Length other than 0: 400).
 *
 * Offered subprotocols: iterate with wisp_http_list_begin(it, up->headers, up->num_headers,
 * "Sec-WebSocket-Protocol"); offered extensions likewise with "Sec-WebSocket-Extensions" (each
 * element is one offer with its parameters).
 *
 * @param req  borrowed; a request wisp_http_parse_request() accepted. up keeps pointers to it.
 * @param up   caller-owned, written in full.
 * @return 0 to accept, the HTTP status to refuse with (400, 405 or 426), or -EINVAL for a NULL
 *         pointer or a request that was not parsed successfully (head_len 0).
 */
WISP_API int wisp_ws_upgrade_check(const struct wisp_http_request *req,
                                   struct wisp_ws_upgrade *up);

/** True if the client offered subprotocol proto (proto_len bytes; exact, case-sensitive match as
 *  RFC 6455 §4.1 makes subprotocol names case-sensitive). */
WISP_API bool wisp_ws_upgrade_offers(const struct wisp_ws_upgrade *up, const char *proto,
                                     size_t proto_len);

/** What the 101 answer says beyond the mandatory headers. All pointers are borrowed. */
struct wisp_ws_accept_opts {
    /** The chosen subprotocol, one the client offered; NULL (or length 0) for none. */
    const char *protocol;
    size_t protocol_len;
    /** The agreed extensions as a complete header value; NULL (or length 0) for none. */
    const char *extensions;
    size_t extensions_len;
    /** Extra headers (e.g. Set-Cookie), num_headers of them; may be NULL. */
    const struct wisp_http_header *headers;
    size_t num_headers;
};

/**
 * Write the `101 Switching Protocols` answer: Upgrade, Connection, Sec-WebSocket-Accept, then
 * Sec-WebSocket-Protocol and Sec-WebSocket-Extensions when chosen, the extra headers and the
 * empty line.
 *
 * @param up    a result for which wisp_ws_upgrade_check() returned 0.
 * @param opts  NULL for a plain answer.
 * @param out   caller-owned; cap bytes. Untouched unless the call succeeds.
 * @return bytes written, or WISP_ENOSPACE, or -EINVAL: NULL up or out, up not accepted, a
 *         subprotocol the client did not offer, control characters in the extensions, an extra
 *         header whose name is not a token or is one written here (Upgrade, Connection,
 *         Sec-WebSocket-*, Content-Length, Transfer-Encoding), or a control character other
 *         than HTAB (CR, LF...) in an extra header value. -ENOMEM if libcrypto fails.
 */
WISP_API ssize_t wisp_ws_upgrade_accept(const struct wisp_ws_upgrade *up,
                                        const struct wisp_ws_accept_opts *opts, char *out,
                                        size_t cap);

/* ---------------------------------------------------------------------------------------------
 * Client role (RFC 6455 §4.1)
 */

/** What the client asks for. All pointers are borrowed NUL-terminated strings unless noted. */
struct wisp_ws_client_opts {
    /** The Host value: host name or IP literal, with ":port" when the port is not the scheme's
     *  default (80 for ws, 443 for wss). Required. */
    const char *host;
    /** Path and query, starting with '/' (e.g. "/chat?room=1"), already percent-encoded.
     *  Required. */
    const char *target;
    /** The Origin to send, or NULL. */
    const char *origin;
    /** Subprotocols to offer, in order of preference: num_protocols distinct tokens. */
    const char *const *protocols;
    size_t num_protocols;
    /** The Sec-WebSocket-Extensions offer as a header value, or NULL. */
    const char *extensions;
    /** Extra headers (e.g. Authorization), num_headers of them; may be NULL. */
    const struct wisp_http_header *headers;
    size_t num_headers;
};

/**
 * Write the upgrade request with a fresh random Sec-WebSocket-Key.
 *
 * @param opts     borrowed.
 * @param key_out  caller-owned; receives the key (WISP_WS_KEY_LEN characters and a NUL), which
 *                 wisp_ws_client_check() needs. Written only on success.
 * @param out      caller-owned; cap bytes. Untouched unless the call succeeds.
 * @return bytes written, or WISP_ENOSPACE, or -EINVAL (NULL pointer, host empty or with
 *         whitespace or control characters, target not starting with '/' or holding bytes
 *         outside visible ASCII, a subprotocol that is not a token or is offered twice, control
 *         characters in origin, extensions or an extra header value, an extra header whose name
 *         is not a token or is one written here: Host, Upgrade, Connection, Origin,
 *         Sec-WebSocket-*, Content-Length, Transfer-Encoding), or a negative errno if the
 *         system random source fails.
 */
WISP_API ssize_t wisp_ws_client_request(const struct wisp_ws_client_opts *opts,
                                        char key_out[WISP_WS_KEY_LEN + 1], char *out,
                                        size_t cap);

/** What wisp_ws_client_check() found. Strings point into the response's buffer. */
struct wisp_ws_client_result {
    /** The server's status code (so a refusal can be reported as "server answered 403"). */
    int status;
    /** The subprotocol the server chose, or NULL for none. */
    const char *protocol;
    size_t protocol_len;
    /** The server's Sec-WebSocket-Extensions value, or NULL for none. Every element names an
     *  extension we offered; iterate it with wisp_http_token_next(). */
    const char *extensions;
    size_t extensions_len;
    /** A fixed English phrase for logs ("Sec-WebSocket-Accept mismatch", ...), "ok" on
     *  success. Static, never NULL after the call. */
    const char *reason;
};

/**
 * Validate the server's answer to our request.
 *
 * Requires status 101, an Upgrade list with `websocket`, a Connection list with `upgrade`,
 * exactly one Sec-WebSocket-Accept equal to the value for key, at most one
 * Sec-WebSocket-Protocol naming a subprotocol in opts->protocols (none if we offered none), and
 * at most one Sec-WebSocket-Extensions whose every element names an extension in
 * opts->extensions.
 *
 * @param resp  borrowed; a response wisp_http_parse_response() accepted.
 * @param opts  borrowed; the options the request was written with.
 * @param key   the key wisp_ws_client_request() returned (NUL-terminated).
 * @param res   caller-owned, written in full.
 * @return 0 when the connection is open, WISP_EHANDSHAKE when the answer is refused (res says
 *         why), -EINVAL for a NULL pointer or a response that was not parsed successfully
 *         (head_len 0), -ENOMEM if libcrypto fails.
 */
WISP_API int wisp_ws_client_check(const struct wisp_http_response *resp,
                                  const struct wisp_ws_client_opts *opts, const char *key,
                                  struct wisp_ws_client_result *res);

#ifdef __cplusplus
}
#endif
#endif
