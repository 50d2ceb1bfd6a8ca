/* libFuzzer target: the static-file route hook (actors/static_files.c) on fuzzed requests.
 *
 * LLVMFuzzerInitialize builds a small fixed tree once, under a mkdtemp directory:
 *
 *     DIR/outside.txt                  never to be served
 *     DIR/root/                        the served root: files of several types, an empty file,
 *                                      one larger than the small size limit, names with a
 *                                      space, '%', '+' and UTF-8, dotfiles, a directory with
 *                                      index.html, one without, a FIFO, and symbolic links
 *                                      inside the root, outside it (relative, absolute, to a
 *                                      directory), dangling and looping
 *
 * and serves it four ways (url prefixes "", "/files" (given without its slash), "/" with a
 * 16-byte size limit, "/a/b/"), each twice: with openat2(RESOLVE_BENEATH) when the kernel has
 * it, and with the realpath() fallback (this file includes static_files.c to switch it), so the
 * two resolutions are compared on every request.
 *
 * Input: byte 0 picks the server and a few header variations; the rest is split on '\n' into
 * method, path, query and If-Modified-Since value (raw bytes: NUL, %xx, "..", anything; a part
 * that is missing is absent). Each part is an exact-size heap copy, so ASan sees a read past it.
 *
 * Invariants, any broken one aborts: the status is one of those static_files.h documents (and
 * not 500 or 503, which this tree cannot cause); a status answer leaves the reply untouched; a
 * 200 body is exactly the content of one file under the root (never outside.txt) and within the
 * size limit; a 200 or 304 never comes from a path with a dot segment, a dotfile, a NUL or a
 * backslash; a 304 has no body and answers an If-Modified-Since; a 301's Location is one
 * '/'-rooted run of visible ASCII ending in '/' (before the query); every answer is one that
 * wisp_http_write_response accepts (for a query the request parser could have produced); both
 * resolutions agree; no file descriptor is left open. The reply is released once, through
 * reply->release, as wisp does.
 */
#include "../../actors/static_files.c"

#include <ctype.h>
#include <ftw.h>
#include <stdint.h>
#include <sys/types.h>

#include "grow.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_static_path: %s\n", what);
    abort();
}

static void check(bool ok, const char *what)
{
    if (!ok)
        fail(what);
}

/* ---- the tree ------------------------------------------------------------------------------ */

#define MTIME     1700000000 /* Tue, 14 Nov 2023 22:13:20 GMT */
#define MTIME_STR "Tue, 14 Nov 2023 22:13:20 GMT"
#define SMALL_MAX 16

static const char outside_content[] = "OUTSIDE-SECRET: this file must never be served\n";

static const struct {
    const char *path;
    const char *content;
} files_in[] = {
    {"index.html", "<!doctype html><title>root</title>\n"},
    {"hello.txt", "hello, world\n"},
    {"app.js", "console.log('app');\n"},
    {"empty.bin", ""},
    {"big.html", "<p>this page is larger than the sixteen bytes of the small limit</p>\n"},
    {"a b.txt", "a space\n"},
    {"\xc3\xa9t\xc3\xa9.CSS", "body{}\n"},
    {"%41.txt", "a percent sign\n"},
    {"x+y.txt", "a plus sign\n"},
    {".hidden", "a dotfile\n"},
    {"unreadable.txt", "mode 000\n"},
    {"sub/index.html", "<h1>sub</h1>\n"},
    {"sub/deeper/data.json", "{\"k\":1}\n"},
    {"sub/.git/config", "[core]\n"},
    {"noindex/readme.txt", "no index here\n"},
    {"a/b/c.txt", "under a/b\n"},
};
#define NFILES (sizeof files_in / sizeof files_in[0])

static char top[64];      /* the mkdtemp directory */
static char root_dir[96]; /* top/root */

struct server {
    struct wisp_static *st[2]; /* [0] openat2 (when available), [1] the realpath fallback */
    size_t max_size;
    const char *prefix;    /* as served: "" or ending in '/' */
};
static struct server servers[4];

static void put_file(const char *rel, const char *content)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root_dir, rel);
    for (char *p = path + strlen(root_dir) + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            fail("mkdir");
        *p = '/';
    }
    FILE *f = fopen(path, "wb");
    check(f && fwrite(content, 1, strlen(content), f) == strlen(content) && fclose(f) == 0,
          "write a file");
    struct timespec ts[2] = {{MTIME, 0}, {MTIME, 0}};
    check(utimensat(AT_FDCWD, path, ts, 0) == 0, "utimensat");
}

static void put_link(const char *target, const char *rel)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root_dir, rel);
    check(symlink(target, path) == 0, "symlink");
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void remove_tree(void)
{
    for (size_t i = 0; i < 4; i++)
        for (int k = 0; k < 2; k++)
            wisp_static_free(servers[i].st[k]);
    if (top[0])
        nftw(top, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void make_tree(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(top, sizeof top, "%s/fuzz_static_path.XXXXXX", tmp && strlen(tmp) < 30 ? tmp : "/tmp");
    check(mkdtemp(top) != NULL, "mkdtemp");
    snprintf(root_dir, sizeof root_dir, "%s/root", top);
    check(mkdir(root_dir, 0755) == 0, "mkdir root");
    char path[512];
    snprintf(path, sizeof path, "%s/outside.txt", top);
    FILE *f = fopen(path, "wb");
    check(f && fputs(outside_content, f) >= 0 && fclose(f) == 0, "outside.txt");

    for (size_t i = 0; i < NFILES; i++)
        put_file(files_in[i].path, files_in[i].content);
    snprintf(path, sizeof path, "%s/unreadable.txt", root_dir);
    check(chmod(path, 0) == 0, "chmod");
    snprintf(path, sizeof path, "%s/noindex/empty_dir", root_dir);
    check(mkdir(path, 0755) == 0, "mkdir empty_dir");
    snprintf(path, sizeof path, "%s/pipe", root_dir);
    check(mkfifo(path, 0644) == 0, "mkfifo");

    put_link("hello.txt", "link_in");
    put_link("sub", "link_dir_in");
    put_link("../outside.txt", "link_out");
    put_link("sub/../../outside.txt", "link_out2");
    snprintf(path, sizeof path, "%s/outside.txt", top);
    put_link(path, "link_abs_out");
    put_link("..", "link_dir_out");
    put_link("link_loop", "link_loop");
    put_link("nope", "link_dangling");
    put_link("../link_out", "sub/link_up_out");
}

/* ---- setup ---------------------------------------------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    make_tree();
    atexit(remove_tree);

    static const char *const prefixes[4] = {"", "/files", "/", "/a/b/"};
    static const char *const served[4] = {"", "/files/", "", "/a/b/"};
    for (size_t i = 0; i < 4; i++) {
        servers[i].prefix = served[i];
        servers[i].max_size = i == 2 ? SMALL_MAX : WISP_STATIC_DEFAULT_MAX_SIZE;
        for (int k = 0; k < 2; k++) {
            check(wisp_static_new(root_dir, prefixes[i], &servers[i].st[k]) == 0,
                  "wisp_static_new");
            if (i == 2)
                check(wisp_static_set_max_size(servers[i].st[k], SMALL_MAX) == 0, "max size");
            check(strcmp(servers[i].st[k]->prefix, served[i]) == 0, "prefix as served");
        }
        servers[i].st[1]->use_openat2 = false;
    }
    if (!servers[0].st[0]->use_openat2)
        fprintf(stderr, "fuzz_static_path: no openat2 here: both servers use realpath()\n");

    /* The refusals of the setup calls, once. */
    struct wisp_static *st = NULL;
    char path[512];
    snprintf(path, sizeof path, "%s/hello.txt", root_dir);
    check(wisp_static_new(path, "", &st) == -ENOTDIR && !st, "new on a file");
    snprintf(path, sizeof path, "%s/nope", root_dir);
    check(wisp_static_new(path, "", &st) == -ENOENT && !st, "new on nothing");
    check(wisp_static_new(root_dir, "files", &st) == -EINVAL && !st, "new: bad prefix");
    check(wisp_static_new(NULL, "", &st) == -EINVAL, "new: NULL dir");
    check(wisp_static_set_max_size(servers[0].st[0], 0) == -EINVAL, "max size 0");
    struct wisp_http_request req;
    struct wisp_http_reply reply;
    memset(&req, 0, sizeof req);
    memset(&reply, 0, sizeof reply);
    check(wisp_static_on_http(NULL, &req, NULL, &reply) == -EINVAL, "NULL data");
    check(wisp_static_on_http(servers[0].st[0], NULL, NULL, &reply) == -EINVAL, "NULL req");
    check(wisp_static_on_http(servers[0].st[0], &req, NULL, NULL) == -EINVAL, "NULL reply");
    return 0;
}

/* ---- checks --------------------------------------------------------------------------------- */

/* The lowest free descriptor: the same after a request as before, or one leaked. */
static int lowest_free_fd(void)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    check(fd >= 0, "open /dev/null");
    close(fd);
    return fd;
}

static bool is_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

static const struct wisp_http_header *find_header(const struct wisp_http_answer *a,
                                                  const char *name)
{
    for (size_t i = 0; i < a->num_headers; i++)
        if (strlen(name) == a->headers[i].name_len &&
            strncasecmp(a->headers[i].name, name, a->headers[i].name_len) == 0)
            return &a->headers[i];
    return NULL;
}

/* Whether the URL path below the prefix, decoded, could name a servable file: no escape is
 * malformed, and no segment is a dot segment or a dotfile, or holds a NUL or a backslash. */
static bool path_could_serve(const char *p, size_t n)
{
    bool seg_start = true;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)p[i];
        if (c == '%') {
            if (n - i < 3 || !isxdigit((unsigned char)p[i + 1]) ||
                !isxdigit((unsigned char)p[i + 2]))
                return false;
            char hex[3] = {p[i + 1], p[i + 2], 0};
            c = (int)strtol(hex, NULL, 16);
            i += 2;
        }
        if (c == 0 || c == '\\' || (seg_start && c == '.'))
            return false;
        seg_start = c == '/';
    }
    return true;
}

/* Bytes the request parser lets through in a request-target. */
static bool target_bytes(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f || p[i] == '#')
            return false;
    return true;
}


struct outcome {
    int rc;
    int status;
    const char *body;
    size_t body_len;
    const char *location;
    size_t location_len;
};

static struct outcome serve_and_check(const struct server *sv, struct wisp_static *st,
                                      const struct wisp_http_request *req, bool has_ims,
                                      struct wisp_http_reply *reply)
{
    memset(reply, 0, sizeof *reply);
    int fd_before = lowest_free_fd();
    int rc = wisp_static_on_http(st, req, NULL, reply);
    check(lowest_free_fd() == fd_before, "a file descriptor leaked");
    struct outcome o = {rc, 0, NULL, 0, NULL, 0};

    bool get = req->method_len == 3 && memcmp(req->method, "GET", 3) == 0;
    bool head = req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
    if (rc != 0) {
        check(rc == 400 || rc == 403 || rc == 404, "status answer");
        check(is_zero(reply, sizeof *reply), "a status answer leaves the reply untouched");
        check(get || head, "a status answer for another method");
        return o;
    }
    const struct wisp_http_answer *a = &reply->answer;
    o.status = a->status;
    o.body = a->body;
    o.body_len = a->body_len;
    check(a->status == 200 || a->status == 301 || a->status == 304 || a->status == 405,
          "answer status");
    check((a->status == 405) == (!get && !head), "405 exactly for other methods");
    check(a->body || !a->body_len, "body pointer");

    /* what wisp would write */
    if (!req->query || target_bytes(req->query, req->query_len)) {
        static char out[1 << 16];
        check(wisp_http_write_response(a, out, sizeof out) > 0, "wisp can write the answer");
    }

    if (a->status == 200 || a->status == 304) {
        /* a file: from below the prefix, through a path that may name one */
        size_t plen = strlen(sv->prefix);
        const char *below = req->path + (plen ? plen : 1);
        check(req->path_len >= (plen ? plen : 1) &&
                  memcmp(req->path, plen ? sv->prefix : "/", plen ? plen : 1) == 0,
              "a file from outside the prefix");
        check(path_could_serve(below, req->path_len - (size_t)(below - req->path)),
              "a file through a refused path");
        const struct wisp_http_header *lm = find_header(a, "Last-Modified");
        check(lm && lm->value_len == strlen(MTIME_STR) &&
                  memcmp(lm->value, MTIME_STR, lm->value_len) == 0,
              "Last-Modified");
        check(find_header(a, "Cache-Control") && find_header(a, "X-Content-Type-Options"),
              "file answer headers");
    }
    switch (a->status) {
    case 405:
        check(reply->release == NULL && find_header(a, "Allow"), "405");
        break;
    case 200: {
        check(reply->release != NULL && a->content_type != NULL, "200 fields");
        check(a->body_len <= sv->max_size, "200 within the size limit");
        check(!(a->body_len == sizeof outside_content - 1 && a->body &&
                memcmp(a->body, outside_content, a->body_len) == 0),
              "served the file outside the root");
        bool known = false;
        for (size_t i = 0; i < NFILES && !known; i++)
            known = strlen(files_in[i].content) == a->body_len &&
                    (a->body_len == 0 || memcmp(files_in[i].content, a->body, a->body_len) == 0);
        check(known, "200 body is not one of the files");
        break;
    }
    case 304:
        check(reply->release != NULL && has_ims, "304 answers If-Modified-Since");
        check(a->body == NULL && a->body_len == 0 && a->content_type == NULL, "304 body");
        break;
    case 301: {
        check(reply->release != NULL, "301 release");
        const struct wisp_http_header *loc = find_header(a, "Location");
        check(loc != NULL, "301 Location");
        o.location = loc->value;
        o.location_len = loc->value_len;
        size_t n = loc->value_len;
        const char *q = memchr(loc->value, '?', n);
        if (req->query) {
            check(q && (size_t)(loc->value + n - q - 1) == req->query_len &&
                      memcmp(q + 1, req->query, req->query_len) == 0,
                  "Location keeps the query");
            n = (size_t)(q - loc->value);
        } else {
            check(q == NULL, "Location has no query of its own");
        }
        check(n >= 1 && loc->value[0] == '/' && loc->value[n - 1] == '/', "Location: /.../");
        check(n == 1 || loc->value[1] != '/', "Location: not //host");
        check(target_bytes(loc->value, n), "Location: visible ASCII");
        check(strlen(sv->prefix) <= n && memcmp(loc->value, sv->prefix, strlen(sv->prefix)) == 0,
              "Location under the prefix");
        break;
    }
    }
    return o;
}

static void release(struct wisp_http_reply *reply)
{
    if (reply->release)
        reply->release((void *)reply->answer.body, reply->answer.body_len, reply->release_arg);
}

/* ---- the target ----------------------------------------------------------------------------- */

static const char *const ims_names[4] = {"If-Modified-Since", "if-modified-since",
                                         "IF-MODIFIED-SINCE", "If-Modified-Since"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;

    /* method \n path \n query \n If-Modified-Since */
    char *part[4] = {NULL, NULL, NULL, NULL};
    size_t len[4] = {0, 0, 0, 0};
    size_t nparts = 0, start = 0;
    for (size_t i = 0; i <= size && nparts < 4; i++) {
        if (i == size || (data[i] == '\n' && nparts < 3)) {
            len[nparts] = i - start;
            part[nparts] = fuzz_exact_copy(data + start, i - start);
            check(part[nparts] != NULL, "out of memory");
            nparts++;
            start = i + 1;
        }
    }

    struct wisp_http_header headers[3];
    size_t nh = 0;
    if (mode & 0x04) /* an unrelated header first */
        headers[nh++] = (struct wisp_http_header){S("Accept"), S("*/*")};
    bool has_ims = nparts > 3;
    if (has_ims) {
        const char *name = ims_names[(mode >> 3) & 3];
        headers[nh++] = (struct wisp_http_header){name, strlen(name), part[3], len[3]};
        if (mode & 0x20) /* a second one, which does not count */
            headers[nh++] = (struct wisp_http_header){S("If-Modified-Since"), S("garbage")};
    }

    struct wisp_http_request req;
    memset(&req, 0, sizeof req);
    req.method = part[0];
    req.method_len = len[0];
    req.path = nparts > 1 ? part[1] : NULL;
    req.path_len = nparts > 1 ? len[1] : 0;
    req.query = nparts > 2 ? part[2] : NULL;
    req.query_len = nparts > 2 ? len[2] : 0;
    req.target = req.path;
    req.target_len = req.path_len;
    req.minor_version = 1;
    req.headers = headers;
    req.num_headers = nh;

    const struct server *sv = &servers[mode & 3];
    struct wisp_http_reply r0, r1;
    struct outcome a = serve_and_check(sv, sv->st[0], &req, has_ims, &r0);
    struct outcome b = serve_and_check(sv, sv->st[1], &req, has_ims, &r1);
    check(a.rc == b.rc && a.status == b.status, "openat2 and realpath() disagree: status");
    check(a.body_len == b.body_len && (!a.body_len || memcmp(a.body, b.body, a.body_len) == 0),
          "openat2 and realpath() disagree: body");
    check(a.location_len == b.location_len &&
              (!a.location_len || memcmp(a.location, b.location, a.location_len) == 0),
          "openat2 and realpath() disagree: Location");
    release(&r0);
    release(&r1);

    for (size_t i = 0; i < nparts; i++)
        free(part[i]);
    return 0;
}
