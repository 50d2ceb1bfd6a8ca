/* actors/static_files.h: serve the files of a directory over plain HTTP.
 *
 * A route hook (struct wisp_route.on_http) that answers GET and HEAD with the files under one
 * directory, so a WebSocket demo can ship its own page from the same port:
 *
 *     #include "static_files.h"
 *     struct wisp_static *st;
 *     if (wisp_static_new("./www", "", &st) < 0) ...          // "": the route is "*"
 *     struct wisp_route r;
 *     wisp_route_init(&r, "*", NULL);                           // HTTP only
 *     r.on_http = wisp_static_on_http;
 *     r.data = st;
 *     wisp_server_route(srv, &r);
 *     ...                                                       // after the runtime stopped:
 *     wisp_static_free(st);
 *
 * or, from the `wisp` program, the built-in module "static" (wisp_static_module below):
 * `--static /=./www` serves the site's root, and a prefix route ("/files/" followed by '*')
 * serves the directory under /files/.
 *
 * What a request gets:
 * - The URL path, minus the route's prefix (compared before decoding), is percent-decoded,
 *   then split on '/' (so "%2F" separates too); empty segments are skipped; '+' stays '+'. A
 *   malformed escape ("%4", "%zz") gets 400.
 * - 404, never saying whether something exists, for: a segment "." or "..", any segment that
 *   starts with '.' (dotfiles such as .git or .env stay private, and so does /.well-known/),
 *   a path ending in '/' that names a file, a NUL byte or a backslash
 *   (raw or percent-encoded), a path outside the prefix, anything that is not a regular file
 *   or a directory (FIFOs, devices, sockets), a file the process cannot open, and a symbolic
 *   link that leads outside the root. Symbolic links that stay inside the root are followed.
 *   Paths are resolved with openat2(RESOLVE_BENEATH) (Linux 5.6), which also refuses absolute
 *   symlinks even when they point inside the root; where the kernel or a seccomp filter
 *   refuses openat2, with realpath() and a check that the result lies under the root's real
 *   path (absolute links inside the root then work; a link swapped in between the check and
 *   the open is the one case this fallback cannot rule out).
 * - A directory: its index.html. A directory named without its trailing slash ("/docs") gets
 *   301 to "/docs/" (query kept), so that relative links in the index resolve; the root of the
 *   prefix is served at the prefix itself ("/files/"), and "/files" is redirected there too.
 *   No directory listings: a directory without index.html is 404.
 * - Files larger than the size limit (default WISP_STATIC_DEFAULT_MAX_SIZE, 16 MiB) get 403.
 * - 200 with Content-Type from the extension (case-insensitive): html htm css js mjs json svg
 *   png jpg jpeg gif webp ico txt wasm woff2, else application/octet-stream; text types carry
 *   "; charset=utf-8". Every file answer (200 and 304) carries Last-Modified,
 *   "Cache-Control: no-cache" (the browser revalidates each time: right for a page under
 *   development) and "X-Content-Type-Options: nosniff".
 * - If-Modified-Since (an IMF-fixdate, RFC 9110 §5.6.7; other forms are ignored) not older
 *   than the file's modification time, to the second: 304 without a body.
 * - HEAD: the same answer as GET (the file is read, so Content-Length is right); wisp sends
 *   its headers without the body.
 * - Any other method: 405 with "Allow: GET, HEAD".
 * - Out of memory or a read error: 500; out of file descriptors: 503.
 *
 * Files are opened and read synchronously on the worker thread that runs the hook, into one
 * malloc'd buffer handed to wisp with reply->release: fine for the small assets of a demo
 * page, not meant for large downloads (a slow disk stalls every connection of that worker).
 *
 * Thread-safety: a struct wisp_static is read-only once wisp_static_new() (and
 * wisp_static_set_max_size(), if used) returned, so wisp_static_on_http() may run on any
 * number of workers at once. Free it only when no hook can run any more (after the runtime
 * stopped).
 *
 * Written against the public headers only; link with wisp_actors_dep (meson) or
 * libwisp_actors.a.
 */
#ifndef WISP_ACTORS_STATIC_FILES_H
#define WISP_ACTORS_STATIC_FILES_H

#include <stddef.h>
#include <sys/socket.h>

#include <wisp/http.h>
#include <wisp/module.h>
#include <wisp/server.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The default size limit: larger files are refused with 403. */
#define WISP_STATIC_DEFAULT_MAX_SIZE (16u * 1024u * 1024u)

/** A directory served over HTTP. Opaque. */
struct wisp_static;

/**
 * Open root_dir for serving under url_prefix.
 *
 * The directory is opened now and stays open: renaming it later does not change what is
 * served, and its contents are read at each request.
 *
 * @param root_dir    borrowed NUL-terminated path, relative to the current directory or
 *                    absolute; must name a directory.
 * @param url_prefix  borrowed NUL-terminated URL path prefix that requests start with and
 *                    that is stripped before looking up the file: "" (or NULL, or "/") when
 *                    the files are served from the root of the site, "/files/" (a trailing
 *                    slash is added when missing) for the prefix route "/files/" + '*'.
 *                    Must be empty or start with '/'; it is compared with the raw (still
 *                    percent-encoded) request path.
 * @param out         receives the new object, owned by the caller (wisp_static_free).
 *                    Untouched on failure.
 * @return 0, or a negative errno: -EINVAL (NULL root_dir or out, a prefix that does not
 *         start with '/'), -ENOENT (root_dir does not exist), -ENOTDIR (it is not a
 *         directory), -EACCES, -EMFILE, -ENOMEM, or whatever open(2) reported.
 */
int wisp_static_new(const char *root_dir, const char *url_prefix, struct wisp_static **out);

/**
 * Change the size limit (default WISP_STATIC_DEFAULT_MAX_SIZE): files of more than max_size
 * bytes get 403. Call it before the route can serve (the object is read-only afterwards).
 * @return 0, or -EINVAL (NULL st, max_size 0).
 */
int wisp_static_set_max_size(struct wisp_static *st, size_t max_size);

/** Close the directory and free st. NULL is a no-op. No hook may be running or run later. */
void wisp_static_free(struct wisp_static *st);

/**
 * The route hook: answer one plain HTTP request (see the top of this file for what it
 * answers). Has the signature of struct wisp_route.on_http.
 *
 * @param data   the struct wisp_static * (the route's data); borrowed.
 * @param req    borrowed for the call: method, path, query (kept in redirects) and the
 *               If-Modified-Since header are read.
 * @param peer   unused; may be NULL.
 * @param reply  zeroed by the caller, filled only when 0 is returned. Everything it points to
 *               (body, header array, header values) is static or lives in one allocation that
 *               stays valid after the hook returns, until reply->release runs: when release is
 *               set, call it exactly once, with reply->answer.body, body_len and release_arg,
 *               after the answer was written (wisp does this), and it frees it all.
 * @return 0 with *reply filled (200, 301, 304, 405), or an HTTP status for wisp's short canned
 *         answer, with nothing to release: 400 (a malformed percent escape), 403 (over the
 *         size limit), 404, 500 (out of memory, a read error), 503 (out of file descriptors).
 *         -EINVAL (never a valid status) when data, req or reply is NULL.
 *         Thread-safe: may run on several workers at once (see the top of this file).
 */
int wisp_static_on_http(void *data, const struct wisp_http_request *req,
                        const struct sockaddr *peer, struct wisp_http_reply *reply);

/**
 * The built-in module "static": `--route PATH=static:DIR` (or `--static PATH=DIR`) serves DIR.
 * mount() accepts a route path "*" (every path no other route takes: files served from "/")
 * or "/prefix/" followed by '*' (every path under /prefix/, which is stripped before the
 * lookup);
 * it opens DIR now and prints on stderr, and returns, -EINVAL when DIR is missing or the
 * path has another form, -ENOENT or -ENOTDIR when DIR does not exist or is not a directory.
 * It sets r->on_http and r->data, and r->handler to NULL (HTTP only). unmount() frees what
 * mount() opened.
 */
extern const struct wisp_module wisp_static_module;

#ifdef __cplusplus
}
#endif
#endif
