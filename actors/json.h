/* actors/json.h: the little JSON the chat and pub/sub modules need (internal to wisp_actors).
 *
 * Two halves:
 *   - Writing: a growable byte buffer (struct wjson_buf) with appenders for raw bytes, decimal
 *     numbers and quoted, escaped JSON strings. Appending never fails loudly: the first
 *     failure (no memory, or the buffer's own size limit) sets `failed`, later appends do
 *     nothing, and the caller checks once at the end.
 *   - Reading: wjson_get_fields() validates a whole JSON text whose top level is an object and
 *     copies out, decoded, the string values of the keys the caller asks for. Everything else
 *     in the object (other keys, numbers, nested arrays and objects up to WJSON_MAX_DEPTH) is
 *     validated and skipped.
 *
 * The reader is strict RFC 8259: no comments, no trailing commas, no single quotes, no
 * leading '+' or zeros, no raw control characters in strings, only the standard escapes,
 * well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF), and \u escapes
 * of surrogates only in valid high/low pairs, so a decoded value is always valid UTF-8. It
 * reads exactly len bytes (no NUL terminator needed), never past them, allocates nothing and
 * recurses at most WJSON_MAX_DEPTH levels, so it is safe on any input.
 *
 * Thread-safety: no global state; separate buffers may be used from separate threads.
 */
#ifndef WISP_ACTORS_JSON_H
#define WISP_ACTORS_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- writing ----------------------------------------------------------------------------- */

/** A growable output buffer. Fields may be read; change them only through the functions. */
struct wjson_buf {
    char *data;   /**< malloc'd bytes (not NUL-terminated), or NULL while empty */
    size_t len;   /**< bytes written */
    size_t cap;   /**< bytes allocated */
    size_t limit; /**< the most bytes the buffer may ever hold */
    bool failed;  /**< an append failed (no memory, or over limit); the content is unusable */
};

/** An empty buffer that may grow to limit bytes (0: no limit but SIZE_MAX / 2). */
void wjson_buf_init(struct wjson_buf *b, size_t limit);
/** Free the bytes and make the buffer empty again (same limit, failed cleared). */
void wjson_buf_reset(struct wjson_buf *b);
/** Hand the bytes over to the caller (free() them), leaving the buffer empty; NULL if the
 *  buffer failed or holds nothing. *len receives the length. */
char *wjson_buf_take(struct wjson_buf *b, size_t *len);

/** Make room for n more bytes. @return false (and failed set) if it cannot. */
bool wjson_reserve(struct wjson_buf *b, size_t n);
/** Append n raw bytes. @return !b->failed. */
bool wjson_put(struct wjson_buf *b, const void *p, size_t n);
/** Append a NUL-terminated string, raw. */
bool wjson_puts(struct wjson_buf *b, const char *s);
/** Append an unsigned decimal number. */
bool wjson_put_u64(struct wjson_buf *b, uint64_t v);
/**
 * Append s[0..n) as a JSON string literal, quotes included: '"' and '\\' are escaped, control
 * characters (U+0000-U+001F, U+007F) become \b \f \n \r \t or \u00XX, and U+2028/U+2029 become
 * \u2028/\u2029 (so the result is also safe inside JavaScript source). Other bytes are copied:
 * valid UTF-8 in gives valid UTF-8 out (the caller validates; invalid bytes are copied as
 * they are, never read beyond n).
 */
bool wjson_put_string(struct wjson_buf *b, const char *s, size_t n);

/** The longest a string of n bytes can become once quoted and escaped (6n + 2). */
static inline size_t wjson_escaped_max(size_t n)
{
    return 6 * n + 2;
}

/* ---- reading ----------------------------------------------------------------------------- */

/** Deepest nesting of arrays and objects the reader accepts (the top object counts as 1). */
#define WJSON_MAX_DEPTH 32

/** Results of wjson_get_fields(), in order of precedence. */
enum wjson_result {
    WJSON_OK = 0,
    WJSON_ESYNTAX = -1,  /**< not JSON, not an object at the top, or nested too deep */
    WJSON_EDUP = -2,     /**< a wanted key appears twice */
    WJSON_ETYPE = -3,    /**< a wanted key's value is not a string */
    WJSON_ETOOLONG = -4, /**< a wanted string does not fit its field's buffer */
};

/** Most keys one wjson_get_fields() call extracts. */
#define WJSON_MAX_FIELDS 16

/** One key to extract. */
struct wjson_field {
    const char *key; /**< in: NUL-terminated key, compared with the decoded key exactly */
    char *out;       /**< in: where the decoded value goes, NUL-terminated */
    size_t cap;      /**< in: bytes at out (>= 1); values of cap - 1 bytes or fewer fit */
    size_t len;      /**< out: decoded length (may contain NUL bytes from \u0000) */
    bool found;      /**< out: the key was present with a string value that fit */
    enum wjson_result error; /**< out: WJSON_OK, or why this field failed */
};

/**
 * Validate json[0..len) as one JSON object (whitespace around it allowed) and extract the
 * string values of fields[0..n), n <= WJSON_MAX_FIELDS (more: WJSON_ESYNTAX). Fields not
 * present keep found = false.
 * @return WJSON_OK, WJSON_ESYNTAX (at once; fields then hold nothing useful), or the first of
 *         WJSON_EDUP, WJSON_ETYPE, WJSON_ETOOLONG that a field met (each field's `error` says
 *         which one failed; the rest of the text was still validated).
 */
int wjson_get_fields(const char *json, size_t len, struct wjson_field *fields, size_t n);

/** A short static English phrase for a wjson_result. */
const char *wjson_strerror(int rc);

/**
 * Whether s[0..n) is well-formed UTF-8 (the same rules as the reader's), holding no control
 * characters (U+0000-U+001F, U+007F-U+009F) and no U+2028/U+2029 line separators: the test
 * for a display name.
 */
bool wjson_printable_utf8(const char *s, size_t n);

#endif
