/* actors/static_files.c: serve a directory over plain HTTP (see static_files.h). */
#include "static_files.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "url.h"

#if defined(__has_include)
#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#endif
#endif
#if defined(RESOLVE_BENEATH) && defined(SYS_openat2)
#define HAVE_OPENAT2 1
#else
#define HAVE_OPENAT2 0
#endif

struct wisp_static {
    int dirfd;        /* the root, O_PATH */
    bool use_openat2; /* false: realpath() and a prefix check instead */
    char *root_real;  /* realpath of the root, for the fallback */
    size_t root_real_len;
    char *prefix; /* "" or "/something/" */
    size_t prefix_len;
    size_t max_size;
};

/* ---- creating ------------------------------------------------------------------------------ */

#if HAVE_OPENAT2
static int open_beneath(int dirfd, const char *rel, uint64_t flags)
{
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = flags;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    long fd;
    do
        fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
    while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : (int)fd;
}
#endif

/* Whether openat2 works here: kernels before 5.6 say ENOSYS, and some seccomp filters EPERM. */
static bool openat2_works(int dirfd)
{
#if HAVE_OPENAT2
    int fd = open_beneath(dirfd, ".", O_PATH | O_CLOEXEC);
    if (fd >= 0) {
        close(fd);
        return true;
    }
#else
    (void)dirfd;
#endif
    return false;
}

int wisp_static_new(const char *root_dir, const char *url_prefix, struct wisp_static **out)
{
    if (!root_dir || !out)
        return -EINVAL;
    if (!url_prefix)
        url_prefix = "";
    size_t plen = strlen(url_prefix);
    if (plen && url_prefix[0] != '/')
        return -EINVAL;
    if (plen == 1) /* "/" is the root of the site: nothing to strip */
        plen = 0;
    bool add_slash = plen && url_prefix[plen - 1] != '/';

    struct wisp_static *st = calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    st->dirfd = -1;
    st->max_size = WISP_STATIC_DEFAULT_MAX_SIZE;
    int rc = -ENOMEM;
    st->prefix = malloc(plen + 2);
    if (!st->prefix)
        goto fail;
    memcpy(st->prefix, url_prefix, plen);
    if (add_slash)
        st->prefix[plen++] = '/';
    st->prefix[plen] = '\0';
    st->prefix_len = plen;

    st->dirfd = open(root_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (st->dirfd < 0) {
        rc = -errno;
        goto fail;
    }
    st->root_real = realpath(root_dir, NULL);
    if (!st->root_real) {
        rc = -errno;
        goto fail;
    }
    st->root_real_len = strlen(st->root_real);
    if (st->root_real_len == 1) /* "/": children are "/x", not "//x" */
        st->root_real_len = 0;
    st->use_openat2 = openat2_works(st->dirfd);
    *out = st;
    return 0;
fail:
    wisp_static_free(st);
    return rc;
}

int wisp_static_set_max_size(struct wisp_static *st, size_t max_size)
{
    if (!st || !max_size)
        return -EINVAL;
    st->max_size = max_size;
    return 0;
}

void wisp_static_free(struct wisp_static *st)
{
    if (!st)
        return;
    if (st->dirfd >= 0)
        close(st->dirfd);
    free(st->root_real);
    free(st->prefix);
    free(st);
}

/* ---- dates (IMF-fixdate, RFC 9110 §5.6.7), locale-independent ----------------------------- */

static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

#define HTTP_DATE_LEN 29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool format_http_date(time_t t, char out[HTTP_DATE_LEN + 1])
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999)
        return false;
    snprintf(out, HTTP_DATE_LEN + 1, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
             tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return true;
}

/* n decimal digits at p, or -1. */
static int digits(const char *p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* Parse an IMF-fixdate; the obsolete RFC 850 and asctime forms are not accepted (a cache
 * validator we cannot read just means a full answer). */
static bool parse_http_date(const char *s, size_t len, time_t *out)
{
    if (len != HTTP_DATE_LEN || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
        s[16] != ' ' || s[19] != ':' || s[22] != ':' || memcmp(s + 25, " GMT", 4) != 0)
        return false;
    bool wday_ok = false;
    for (int i = 0; i < 7; i++)
        wday_ok |= memcmp(s, days[i], 3) == 0;
    int mon = -1;
    for (int i = 0; i < 12; i++)
        if (memcmp(s + 8, months[i], 3) == 0)
            mon = i;
    int day = digits(s + 5, 2), year = digits(s + 12, 4);
    int hh = digits(s + 17, 2), mm = digits(s + 20, 2), ss = digits(s + 23, 2);
    if (!wday_ok || mon < 0 || day < 1 || day > 31 || year < 0 || hh < 0 || hh > 23 || mm < 0 ||
        mm > 59 || ss < 0 || ss > 60)
        return false;
    int64_t t =
        days_from_civil(year, (unsigned)mon + 1, (unsigned)day) * 86400 + hh * 3600 + mm * 60 + ss;
    *out = (time_t)t;
    return true;
}

/* ---- content types ------------------------------------------------------------------------- */

static const struct {
    const char *ext;
    const char *type;
} content_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"txt", "text/plain; charset=utf-8"},
    {"wasm", "application/wasm"},
    {"woff2", "font/woff2"},
};

static const char *content_type_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    const char *dot = strrchr(name, '.');
    if (dot && dot != name)
        for (size_t i = 0; i < sizeof content_types / sizeof content_types[0]; i++)
            if (strcasecmp(dot + 1, content_types[i].ext) == 0)
                return content_types[i].type;
    return "application/octet-stream";
}

/* ---- the request path ---------------------------------------------------------------------- */

/* Room for a path below the root, plus "/index.html". */
#define REL_MAX    PATH_MAX
#define INDEX_NAME "index.html"

/*
 * Turn the URL path below the prefix (raw, len bytes) into a relative file path: decoded,
 * without empty segments, joined with single slashes, "" for the root. *dir_slash tells
 * whether the URL named a directory explicitly (ended with '/', or was empty).
 * @return 0, or the HTTP status to answer: 400 (bad escape) or 404 (refused).
 */
static int normalise(const char *raw, size_t len, char rel[REL_MAX], bool *dir_slash)
{
    size_t n = 0;          /* bytes in rel */
    bool seg_open = false; /* a segment is being written */
    *dir_slash = true;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)raw[i];
        if (c == '%') {
            int b = wurl_pct_byte(raw, len, i);
            if (b < 0)
                return 400;
            c = (unsigned char)b;
            i += 2;
        }
        if (c == '\0' || c == '\\')
            return 404;
        if (c == '/') {
            seg_open = false;
            *dir_slash = true;
            continue;
        }
        *dir_slash = false;
        if (!seg_open) {
            if (c == '.') /* ".", "..", and every dotfile */
                return 404;
            if (n) {
                if (n + 1 >= REL_MAX)
                    return 404;
                rel[n++] = '/';
            }
            seg_open = true;
        }
        if (n + 1 >= REL_MAX)
            return 404;
        rel[n++] = (char)c;
    }
    rel[n] = '\0';
    return 0;
}

/* Open rel (relative to the root, "" for the root itself) read-only without blocking, or a
 * negative errno. Never leaves the root: see the top of static_files.h. */
/* realpath(path) when it lies inside the root (in *real, to free, if real is not NULL);
 * -EXDEV outside it, or realpath's error. */
static int resolves_inside(const struct wisp_static *st, const char *path, char **real)
{
    char *r = realpath(path, NULL);
    if (!r)
        return -errno;
    size_t rlen = strlen(r);
    bool inside = rlen >= st->root_real_len &&
                  memcmp(r, st->root_real, st->root_real_len) == 0 &&
                  (r[st->root_real_len] == '/' || r[st->root_real_len] == '\0');
    if (inside && real) {
        *real = r;
        return 0;
    }
    free(r);
    return inside ? 0 : -EXDEV;
}

static int open_rel(const struct wisp_static *st, const char *rel)
{
    const char *name = rel[0] ? rel : ".";
    int flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
#if HAVE_OPENAT2
    if (st->use_openat2)
        return open_beneath(st->dirfd, name, (uint64_t)flags);
#endif
    char full[PATH_MAX];
    int len = snprintf(full, sizeof full, "%.*s/%s", (int)st->root_real_len, st->root_real, name);
    if (len < 0 || (size_t)len >= sizeof full)
        return -ENAMETOOLONG;
    /* Every leading part must resolve inside the root too, as with RESOLVE_BENEATH: a link
     * that leaves the root and comes back ("up" -> "..", then "up/www/x") is refused. */
    for (char *slash = full + st->root_real_len + 1; (slash = strchr(slash, '/')); slash++) {
        *slash = '\0';
        int rc = resolves_inside(st, full, NULL);
        *slash = '/';
        if (rc < 0)
            return rc;
    }
    char *real;
    int rc = resolves_inside(st, full, &real);
    if (rc < 0)
        return rc;
    int fd = open(real, flags | O_NOFOLLOW);
    rc = fd < 0 ? -errno : fd;
    free(real);
    return rc;
}

/* ---- answers ------------------------------------------------------------------------------- */

/* Everything an answer points to, in one allocation that release frees. */
struct reply_block {
    struct wisp_http_header headers[4];
    char last_modified[HTTP_DATE_LEN + 1];
    char data[]; /* the Location value, or the body */
};

static void release_block(void *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    free(arg);
}

static void set_header(struct wisp_http_header *h, const char *name, const char *value,
                       size_t value_len)
{
    h->name = name;
    h->name_len = strlen(name);
    h->value = value;
    h->value_len = value_len;
}

#define S(lit) lit, sizeof(lit) - 1

static int method_not_allowed(struct wisp_http_reply *reply)
{
    static const struct wisp_http_header allow[] = {
        {S("Allow"), S("GET, HEAD")},
    };
    static const char body[] = "Method Not Allowed\n";
    reply->answer.status = 405;
    reply->answer.content_type = "text/plain; charset=utf-8";
    reply->answer.headers = allow;
    reply->answer.num_headers = 1;
    reply->answer.body = body;
    reply->answer.body_len = sizeof body - 1;
    return 0;
}

static bool keep_in_location(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~' || c == '/';
}

/* 301 to prefix + rel + "/" (rel re-encoded, so Location always starts with exactly one '/'
 * and holds nothing but visible ASCII) with the request's query. */
static int redirect_to_dir(const struct wisp_static *st, const struct wisp_http_request *req,
                           const char *rel, struct wisp_http_reply *reply)
{
    static const char body[] = "Moved Permanently\n";
    size_t rlen = strlen(rel);
    size_t cap = 1 + st->prefix_len + 3 * rlen + 1 + (req->query ? 1 + req->query_len : 0) + 1;
    struct reply_block *b = malloc(sizeof *b + cap);
    if (!b)
        return 500;
    char *p = b->data;
    if (st->prefix_len) {
        memcpy(p, st->prefix, st->prefix_len);
        p += st->prefix_len;
    } else {
        *p++ = '/';
    }
    for (size_t i = 0; i < rlen; i++) {
        unsigned char c = (unsigned char)rel[i];
        if (keep_in_location(c)) {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = "0123456789ABCDEF"[c >> 4];
            *p++ = "0123456789ABCDEF"[c & 15];
        }
    }
    if (rlen)
        *p++ = '/';
    if (req->query) {
        *p++ = '?';
        memcpy(p, req->query, req->query_len);
        p += req->query_len;
    }
    set_header(&b->headers[0], "Location", b->data, (size_t)(p - b->data));
    set_header(&b->headers[1], "Cache-Control", S("no-cache"));
    reply->answer.status = 301;
    reply->answer.content_type = "text/plain; charset=utf-8";
    reply->answer.headers = b->headers;
    reply->answer.num_headers = 2;
    reply->answer.body = body; /* for HEAD, wisp leaves it out but sends its length */
    reply->answer.body_len = sizeof body - 1;
    reply->release = release_block;
    reply->release_arg = b;
    return 0;
}

/* A redirect from the prefix without its slash ("/files") to the prefix. */
static int redirect_to_prefix(const struct wisp_static *st, const struct wisp_http_request *req,
                              struct wisp_http_reply *reply)
{
    return redirect_to_dir(st, req, "", reply);
}

/* Whether If-Modified-Since says the client's copy (of a file last modified at mtime) is
 * current. */
static bool not_modified(const struct wisp_http_request *req, time_t mtime)
{
    const struct wisp_http_header *h =
        wisp_http_header_find(req->headers, req->num_headers, "If-Modified-Since", NULL);
    time_t since;
    return h && parse_http_date(h->value, h->value_len, &since) && mtime <= since;
}

/* Read size bytes of fd into buf; returns the bytes read (fewer if the file shrank), or -1. */
static ssize_t read_all(int fd, char *buf, size_t size)
{
    size_t got = 0;
    while (got < size) {
        ssize_t n = pread(fd, buf + got, size - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

/* The 200 or 304 for an open regular file. */
static int file_answer(const struct wisp_static *st, const struct wisp_http_request *req, int fd,
                       const struct stat *sb, const char *rel,
                       struct wisp_http_reply *reply)
{
    if ((uint64_t)sb->st_size > st->max_size)
        return 403;
    size_t size = (size_t)sb->st_size;
    bool fresh = not_modified(req, sb->st_mtim.tv_sec);
    size_t body_cap = fresh ? 0 : size; /* HEAD too: wisp sends the length, not the body */
    struct reply_block *b = malloc(sizeof *b + body_cap);
    if (!b)
        return 500;
    ssize_t got = 0;
    if (body_cap && (got = read_all(fd, b->data, body_cap)) < 0) {
        free(b);
        return 500;
    }
    size_t nh = 0;
    set_header(&b->headers[nh++], "Cache-Control", S("no-cache"));
    set_header(&b->headers[nh++], "X-Content-Type-Options", S("nosniff"));
    if (format_http_date(sb->st_mtim.tv_sec, b->last_modified))
        set_header(&b->headers[nh++], "Last-Modified", b->last_modified, HTTP_DATE_LEN);
    reply->answer.status = fresh ? 304 : 200;
    reply->answer.content_type = fresh ? NULL : content_type_of(rel);
    reply->answer.headers = b->headers;
    reply->answer.num_headers = nh;
    reply->answer.body = body_cap ? b->data : NULL;
    reply->answer.body_len = (size_t)got;
    reply->release = release_block;
    reply->release_arg = b;
    return 0;
}

/* The status for a file that could not be opened: never says whether it exists. */
static int open_error_status(int err)
{
    switch (err) {
    case -ENOMEM:
        return 500;
    case -EMFILE:
    case -ENFILE:
        return 503;
    default: /* ENOENT, ENOTDIR, EACCES, ELOOP, EXDEV (outside the root), ENAMETOOLONG... */
        return 404;
    }
}

int wisp_static_on_http(void *data, const struct wisp_http_request *req,
                        const struct sockaddr *peer, struct wisp_http_reply *reply)
{
    (void)peer;
    const struct wisp_static *st = data;
    if (!st || !req || !reply)
        return -EINVAL;
    bool head = req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
    bool get = req->method_len == 3 && memcmp(req->method, "GET", 3) == 0;
    if (!get && !head)
        return method_not_allowed(reply);

    const char *path = req->path;
    size_t len = req->path_len;
    if (!path || len == 0 || path[0] != '/')
        return 404;
    if (st->prefix_len) {
        if (len == st->prefix_len - 1 && memcmp(path, st->prefix, len) == 0)
            return redirect_to_prefix(st, req, reply);
        if (len < st->prefix_len || memcmp(path, st->prefix, st->prefix_len) != 0)
            return 404;
        path += st->prefix_len;
        len -= st->prefix_len;
    } else {
        path++;
        len--;
    }

    char rel[REL_MAX];
    bool dir_slash;
    int status = normalise(path, len, rel, &dir_slash);
    if (status)
        return status;
    int fd = open_rel(st, rel);
    if (fd < 0)
        return open_error_status(fd);
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        close(fd);
        return 500;
    }
    if (!S_ISDIR(sb.st_mode) && dir_slash) { /* "/app.js/": a file is not a directory */
        close(fd);
        return 404;
    }
    if (S_ISDIR(sb.st_mode)) {
        close(fd);
        if (!dir_slash)
            return redirect_to_dir(st, req, rel, reply);
        size_t n = strlen(rel);
        if (n + sizeof "/" INDEX_NAME > REL_MAX)
            return 404;
        snprintf(rel + n, REL_MAX - n, "%s%s", n ? "/" : "", INDEX_NAME);
        fd = open_rel(st, rel);
        if (fd < 0)
            return open_error_status(fd);
        if (fstat(fd, &sb) < 0) {
            close(fd);
            return 500;
        }
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return 404;
    }
    status = file_answer(st, req, fd, &sb, rel, reply);
    close(fd);
    return status;
}

/* ---- the built-in module ------------------------------------------------------------------- */

static int static_mount(struct wisp_runtime *rt, struct wisp_route *r, const char *arg,
                        void **instance)
{
    (void)rt;
    if (!arg || !*arg) {
        fprintf(stderr, "static: which directory? Mount it as PATH=static:DIR\n");
        return -EINVAL;
    }
    const char *path = r && r->path ? r->path : "";
    size_t plen = strlen(path);
    bool all = strcmp(path, "*") == 0;
    bool prefix = plen >= 2 && path[0] == '/' && path[plen - 2] == '/' && path[plen - 1] == '*';
    if (!all && !prefix) {
        fprintf(stderr,
                "static: cannot serve %s on the path \"%s\": use \"*\" (or --static /=DIR) "
                "for the whole site, or \"/prefix/*\" for the paths under /prefix/\n",
                arg, path);
        return -EINVAL;
    }
    char *url_prefix = strndup(path, all ? 0 : plen - 1);
    if (!url_prefix) {
        fprintf(stderr, "static: out of memory\n");
        return -ENOMEM;
    }
    struct wisp_static *st = NULL;
    int rc = wisp_static_new(arg, url_prefix, &st);
    free(url_prefix);
    if (rc < 0) {
        if (rc == -ENOENT)
            fprintf(stderr, "static: the directory %s does not exist\n", arg);
        else if (rc == -ENOTDIR)
            fprintf(stderr, "static: %s is not a directory\n", arg);
        else
            fprintf(stderr, "static: cannot serve the directory %s: %s\n", arg, strerror(-rc));
        return rc;
    }
    r->handler = NULL;
    r->on_http = wisp_static_on_http;
    r->data = st;
    if (instance)
        *instance = st;
    return 0;
}

static void static_unmount(void *instance)
{
    wisp_static_free(instance);
}

const struct wisp_module wisp_static_module = {
    .abi_version = WISP_MODULE_ABI_VERSION,
    .struct_size = sizeof(struct wisp_module),
    .name = "static",
    .description = "serves the files of a directory (GET and HEAD): PATH=static:DIR",
    .mount = static_mount,
    .unmount = static_unmount,
};
