/* The static-file responder (actors/static_files.c): statuses, bodies, content types, HEAD,
 * 405, directories and their redirects, the size limit, If-Modified-Since, prefix stripping,
 * percent-decoding, every traversal attempt, the built-in module's mount, and that
 * reply->release frees everything (ASan's leak check). The hook is called directly with
 * hand-made requests on a temporary tree:
 *
 *     BASE/outside.txt              a file outside the root, which must never be served
 *     BASE/www/                     the root
 *         index.html app.js style.CSS data.json img.png noext a b.txt café.txt
 *         back\slash.txt .hidden big.bin (100 bytes) fifty.bin (50 bytes) fifo
 *         sub/index.html sub/page.txt sub/.hidden   empty/ (no index)
 *         inner -> sub/page.txt     innerdir -> sub    (links that stay inside)
 *         escape -> ../outside.txt  escape_abs -> BASE/outside.txt  escape_dir -> ..
 *
 * The source file is compiled in (not linked from wisp_actors) so that every resolution test
 * runs twice: with openat2(RESOLVE_BENEATH), and with the realpath() fallback used where
 * openat2 is unavailable.
 */
#include "../../actors/static_files.c"

#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <sys/types.h>

#include <cmocka.h>

static char base[64];
static char www[128];
static struct wisp_static *st_modes[2]; /* [0] openat2 (when the kernel has it), [1] fallback */

/* ---- the tree -------------------------------------------------------------------------------- */

static void write_file(const char *rel_to_base, const void *data, size_t len)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", base, rel_to_base);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

#define WRITE(path, lit) write_file(path, lit, sizeof(lit) - 1)

static void make_dir(const char *rel_to_base)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", base, rel_to_base);
    assert_int_equal(mkdir(p, 0755), 0);
}

static void make_link(const char *target, const char *rel_to_base)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", base, rel_to_base);
    assert_int_equal(symlink(target, p), 0);
}

static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 0x0d};

static int setup(void **state)
{
    (void)state;
    snprintf(base, sizeof base, "/tmp/wisp-static-XXXXXX");
    if (!mkdtemp(base))
        return -1;
    snprintf(www, sizeof www, "%s/www", base);
    WRITE("outside.txt", "secret");
    make_dir("www");
    WRITE("www/index.html", "<h1>root</h1>");
    WRITE("www/app.js", "console.log(1);");
    WRITE("www/style.CSS", "body{}");
    WRITE("www/data.json", "{}");
    write_file("www/img.png", png, sizeof png);
    WRITE("www/noext", "raw");
    WRITE("www/a b.txt", "space");
    WRITE("www/caf\xc3\xa9.txt", "accent");
    WRITE("www/back\\slash.txt", "backslash");
    WRITE("www/.hidden", "dotfile");
    char big[100];
    memset(big, 'x', sizeof big);
    write_file("www/big.bin", big, 100);
    write_file("www/fifty.bin", big, 50);
    char p[512];
    snprintf(p, sizeof p, "%s/www/fifo", base);
    assert_int_equal(mkfifo(p, 0644), 0);
    make_dir("www/sub");
    WRITE("www/sub/index.html", "<h1>sub</h1>");
    WRITE("www/sub/page.txt", "page");
    WRITE("www/sub/.hidden", "dotfile");
    make_dir("www/empty");
    make_link("sub/page.txt", "www/inner");
    make_link("sub", "www/innerdir");
    make_link("../outside.txt", "www/escape");
    snprintf(p, sizeof p, "%s/outside.txt", base);
    make_link(p, "www/escape_abs");
    make_link("..", "www/escape_dir");

    if (wisp_static_new(www, "", &st_modes[0]) < 0 || wisp_static_new(www, "", &st_modes[1]) < 0)
        return -1;
    st_modes[1]->use_openat2 = false;
    if (!st_modes[0]->use_openat2)
        print_message("note: openat2 is not available here; both passes use realpath()\n");
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    (void)state;
    wisp_static_free(st_modes[0]);
    wisp_static_free(st_modes[1]);
    return nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- requests -------------------------------------------------------------------------------- */

struct result {
    int status; /* the hook's return, or the reply's status when it returned 0 */
    struct wisp_http_reply reply;
};

/* Call the hook with method and target ("path?query"), plus optional headers. */
static struct result call_h(struct wisp_static *st, const char *method, const char *target,
                            struct wisp_http_header *headers, size_t num_headers)
{
    struct wisp_http_request req;
    memset(&req, 0, sizeof req);
    req.method = method;
    req.method_len = strlen(method);
    req.target = target;
    req.target_len = strlen(target);
    req.path = target;
    const char *q = strchr(target, '?');
    req.path_len = q ? (size_t)(q - target) : req.target_len;
    if (q) {
        req.query = q + 1;
        req.query_len = strlen(q + 1);
    }
    req.minor_version = 1;
    req.headers = headers;
    req.num_headers = num_headers;
    struct result r;
    memset(&r, 0, sizeof r);
    r.status = wisp_static_on_http(st, &req, NULL, &r.reply);
    if (r.status == 0) {
        r.status = r.reply.answer.status;
    } else {
        /* a canned answer: nothing may have been handed over */
        assert_null(r.reply.release);
        assert_null(r.reply.answer.body);
    }
    return r;
}

static struct result call(struct wisp_static *st, const char *method, const char *target)
{
    return call_h(st, method, target, NULL, 0);
}

/* Free what the reply holds, as wisp does once the answer is written. */
static void done(struct result *r)
{
    if (r->reply.release)
        r->reply.release((void *)(uintptr_t)r->reply.answer.body, r->reply.answer.body_len,
                         r->reply.release_arg);
    memset(r, 0, sizeof *r);
}

static const char *header(const struct result *r, const char *name, size_t *len)
{
    for (size_t i = 0; i < r->reply.answer.num_headers; i++) {
        const struct wisp_http_header *h = &r->reply.answer.headers[i];
        if (h->name_len == strlen(name) && strncasecmp(h->name, name, h->name_len) == 0) {
            *len = h->value_len;
            return h->value;
        }
    }
    return NULL;
}

static void assert_header(const struct result *r, const char *name, const char *want)
{
    size_t len = 0;
    const char *v = header(r, name, &len);
    if (!v)
        fail_msg("no %s header", name);
    if (len != strlen(want) || memcmp(v, want, len) != 0)
        fail_msg("%s: \"%.*s\", want \"%s\"", name, (int)len, v, want);
}

static void assert_body(const struct result *r, const void *want, size_t want_len)
{
    assert_int_equal(r->reply.answer.body_len, want_len);
    if (want_len)
        assert_memory_equal(r->reply.answer.body, want, want_len);
}

/* GET target on st: status, and for 200 the body and content type. */
static void expect_on(struct wisp_static *st, const char *target, int status, const char *body,
                      const char *ctype)
{
    struct result r = call(st, "GET", target);
    if (r.status != status)
        fail_msg("GET %s: %d, want %d (openat2: %d)", target, r.status, status, st->use_openat2);
    if (body)
        assert_body(&r, body, strlen(body));
    if (ctype)
        assert_string_equal(r.reply.answer.content_type, ctype);
    done(&r);
}

/* The same, through both resolvers. */
static void expect(const char *target, int status, const char *body, const char *ctype)
{
    for (int m = 0; m < 2; m++)
        expect_on(st_modes[m], target, status, body, ctype);
}

#define HTML "text/html; charset=utf-8"
#define TEXT "text/plain; charset=utf-8"

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_files_and_types(void **state)
{
    (void)state;
    expect("/index.html", 200, "<h1>root</h1>", HTML);
    expect("/app.js", 200, "console.log(1);", "text/javascript; charset=utf-8");
    expect("/style.CSS", 200, "body{}", "text/css; charset=utf-8");
    expect("/data.json", 200, "{}", "application/json");
    expect("/noext", 200, "raw", "application/octet-stream");
    expect("/sub/page.txt", 200, "page", TEXT);
    expect("/app.js?v=3", 200, "console.log(1);", NULL); /* the query is not the path */
    expect("/missing.html", 404, NULL, NULL);
    expect("/sub/missing/deeper", 404, NULL, NULL);
    expect("/app.js/", 404, NULL, NULL); /* a file is not a directory */

    struct result r = call(st_modes[0], "GET", "/img.png"); /* binary, with NUL bytes */
    assert_int_equal(r.status, 200);
    assert_body(&r, png, sizeof png);
    assert_string_equal(r.reply.answer.content_type, "image/png");
    assert_header(&r, "Cache-Control", "no-cache");
    assert_header(&r, "X-Content-Type-Options", "nosniff");
    size_t len;
    assert_non_null(header(&r, "Last-Modified", &len));
    assert_int_equal(len, 29);
    assert_non_null(r.reply.release); /* the body was handed over... */
    assert_ptr_not_equal(r.reply.answer.body, NULL);
    done(&r); /* ...and release frees it (ASan reports a leak otherwise) */

    static const struct {
        const char *name, *type;
    } types[] = {
        {"x.html", HTML},
        {"x.htm", HTML},
        {"x.css", "text/css; charset=utf-8"},
        {"x.js", "text/javascript; charset=utf-8"},
        {"x.mjs", "text/javascript; charset=utf-8"},
        {"x.json", "application/json"},
        {"x.svg", "image/svg+xml"},
        {"x.png", "image/png"},
        {"x.jpg", "image/jpeg"},
        {"x.JPEG", "image/jpeg"},
        {"x.gif", "image/gif"},
        {"x.webp", "image/webp"},
        {"x.ico", "image/x-icon"},
        {"x.txt", TEXT},
        {"x.wasm", "application/wasm"},
        {"x.woff2", "font/woff2"},
        {"x.tar.gz", "application/octet-stream"},
        {"x.", "application/octet-stream"},
        {"html", "application/octet-stream"},
        {"dir.js/x", "application/octet-stream"},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        assert_string_equal(content_type_of(types[i].name), types[i].type);
}

static void test_head_and_methods(void **state)
{
    (void)state;
    struct result get = call(st_modes[0], "GET", "/app.js");
    struct result r = call(st_modes[0], "HEAD", "/app.js");
    assert_int_equal(r.status, 200);
    /* the same answer as GET: wisp leaves the body out and keeps its length */
    assert_int_equal(r.reply.answer.body_len, get.reply.answer.body_len);
    assert_string_equal(r.reply.answer.content_type, get.reply.answer.content_type);
    size_t l1, l2;
    const char *m1 = header(&get, "Last-Modified", &l1), *m2 = header(&r, "Last-Modified", &l2);
    assert_non_null(m2);
    assert_int_equal(l1, l2);
    assert_memory_equal(m1, m2, l1);
    assert_header(&r, "Cache-Control", "no-cache");
    done(&r);
    done(&get);

    r = call(st_modes[0], "HEAD", "/sub"); /* the redirect, as for GET */
    assert_int_equal(r.status, 301);
    done(&r);
    r = call(st_modes[0], "HEAD", "/nope");
    assert_int_equal(r.status, 404);

    static const char *const refused[] = {"POST", "PUT", "DELETE", "OPTIONS", "PATCH",
                                          "get",  "Get", "HEADX",  "GETS",    "TRACE"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        r = call(st_modes[0], refused[i], "/index.html");
        assert_int_equal(r.status, 405);
        assert_header(&r, "Allow", "GET, HEAD");
        assert_string_equal(r.reply.answer.content_type, TEXT);
        done(&r);
    }
    r = call(st_modes[0], "POST", "/does-not-exist"); /* the method is checked first */
    assert_int_equal(r.status, 405);
    done(&r);
}

static void test_directories(void **state)
{
    (void)state;
    expect("/", 200, "<h1>root</h1>", HTML);
    expect("/sub/", 200, "<h1>sub</h1>", HTML);
    expect("/sub//", 200, "<h1>sub</h1>", HTML);
    expect("//sub///page.txt", 200, "page", TEXT);
    expect("/empty/", 404, NULL, NULL); /* no listings */
    expect("/empty", 301, NULL, NULL);
    expect("/innerdir/", 200, "<h1>sub</h1>", HTML);

    struct {
        const char *target, *location;
    } redirects[] = {
        {"/sub", "/sub/"},
        {"/sub?x=1&y=%20", "/sub/?x=1&y=%20"},
        /* decoded, then re-encoded where needed */
        {"/%73ub", "/sub/"},
        /* never "//sub/", which a browser reads as another host */
        {"//sub", "/sub/"},
        {"/innerdir", "/innerdir/"},
    };
    for (int m = 0; m < 2; m++)
        for (size_t i = 0; i < sizeof redirects / sizeof redirects[0]; i++) {
            struct result r = call(st_modes[m], "GET", redirects[i].target);
            assert_int_equal(r.status, 301);
            assert_header(&r, "Location", redirects[i].location);
            assert_header(&r, "Cache-Control", "no-cache");
            assert_non_null(r.reply.release);
            done(&r);
        }
}

static void test_percent_decoding(void **state)
{
    (void)state;
    expect("/a%20b.txt", 200, "space", TEXT);
    expect("/caf%C3%A9.txt", 200, "accent", TEXT);
    expect("/caf%c3%a9.txt", 200, "accent", TEXT);
    expect("/caf\xc3\xa9.txt", 200, "accent", TEXT); /* raw UTF-8 too */
    expect("/%61pp.js", 200, "console.log(1);", NULL);
    expect("/sub%2Fpage.txt", 200, "page", TEXT); /* %2F separates like '/' */
    expect("/a+b.txt", 404, NULL, NULL);          /* '+' is not a space in a path */
    expect("/%", 400, NULL, NULL);
    expect("/%4", 400, NULL, NULL);
    expect("/app.js%", 400, NULL, NULL);
    expect("/%zz", 400, NULL, NULL);
    expect("/%4g.txt", 400, NULL, NULL);
    expect("/%g4.txt", 400, NULL, NULL);
}

/* Everything that tries to leave the root, or to see what it should not, is 404. */
static void test_traversal(void **state)
{
    (void)state;
    static const char *const attempts[] = {
        "/../outside.txt",
        "/sub/../../outside.txt",
        "/..",
        "/../",
        "/../www/index.html",
        "/%2e%2e/outside.txt",
        "/%2E%2E/outside.txt",
        "/.%2e/outside.txt",
        "/%2e./outside.txt",
        "/%2e%2e%2foutside.txt",
        "/..%2Foutside.txt",
        "/..%2f..%2f..%2fetc%2fpasswd",
        "/sub/%2e%2e/index.html", /* even when it would stay inside */
        "/sub/../index.html",
        "/./index.html",
        "/%2e/index.html",
        "/sub/./page.txt",
        "/%00",
        "/index.html%00",
        "/index.html%00.txt",
        "/sub%00/page.txt",
        "/..\\outside.txt",
        "/..%5coutside.txt",
        "/..%5Coutside.txt",
        "/sub\\page.txt",
        "/sub%5cpage.txt",
        "/back\\slash.txt",
        "/back%5Cslash.txt", /* exists, still refused */
        "/escape",
        "/escape_abs",
        "/escape_dir/outside.txt",
        "/escape_dir/",
        "/escape_dir",
        "/.hidden",
        "/%2ehidden",
        "/sub/.hidden",
        "/.git/config",
        "/fifo", /* not a regular file (and opening it must not block) */
        "//etc/passwd",
        "/etc/passwd",
    };
    for (size_t i = 0; i < sizeof attempts / sizeof attempts[0]; i++)
        expect(attempts[i], 404, NULL, NULL);

    /* The absolute path of the outside file, as a URL path: still relative to the root. */
    char target[256];
    snprintf(target, sizeof target, "/%s/outside.txt", base);
    expect(target, 404, NULL, NULL);
    snprintf(target, sizeof target, "%s/outside.txt", base);
    expect(target, 404, NULL, NULL);

    /* Links that stay inside are followed. */
    expect("/inner", 200, "page", "application/octet-stream");
    expect("/innerdir/page.txt", 200, "page", TEXT);
}

static void test_prefix(void **state)
{
    (void)state;
    for (int m = 0; m < 2; m++) {
        const char *prefixes[] = {"/files/", "/files"};
        for (int p = 0; p < 2; p++) {
            struct wisp_static *st;
            assert_int_equal(wisp_static_new(www, prefixes[p], &st), 0);
            if (m)
                st->use_openat2 = false;
            expect_on(st, "/files/app.js", 200, "console.log(1);", NULL);
            expect_on(st, "/files/sub/page.txt", 200, "page", TEXT);
            expect_on(st, "/files/", 200, "<h1>root</h1>", HTML);
            expect_on(st, "/files/sub/", 200, "<h1>sub</h1>", HTML);
            expect_on(st, "/app.js", 404, NULL, NULL);
            expect_on(st, "/filesapp.js", 404, NULL, NULL);
            expect_on(st, "/file", 404, NULL, NULL);
            expect_on(st, "/", 404, NULL, NULL);
            expect_on(st, "/Files/app.js", 404, NULL, NULL);
            expect_on(st, "/files/../outside.txt", 404, NULL, NULL);
            expect_on(st, "/files/%2e%2e/outside.txt", 404, NULL, NULL);
            expect_on(st, "/files/../www/app.js", 404, NULL, NULL);
            expect_on(st, "/%66iles/app.js", 404, NULL, NULL); /* the prefix is matched raw */

            struct result r = call(st, "GET", "/files");
            assert_int_equal(r.status, 301);
            assert_header(&r, "Location", "/files/");
            done(&r);
            r = call(st, "GET", "/files?a=1");
            assert_int_equal(r.status, 301);
            assert_header(&r, "Location", "/files/?a=1");
            done(&r);
            r = call(st, "GET", "/files/sub");
            assert_int_equal(r.status, 301);
            assert_header(&r, "Location", "/files/sub/");
            done(&r);
            wisp_static_free(st);
        }
    }
    struct wisp_static *st;
    assert_int_equal(wisp_static_new(www, "/", &st), 0); /* "/" is the same as "" */
    expect_on(st, "/app.js", 200, "console.log(1);", NULL);
    wisp_static_free(st);
    assert_int_equal(wisp_static_new(www, NULL, &st), 0);
    expect_on(st, "/app.js", 200, "console.log(1);", NULL);
    wisp_static_free(st);
}

static void test_size_limit(void **state)
{
    (void)state;
    expect("/big.bin", 200, NULL, "application/octet-stream");
    struct wisp_static *st;
    assert_int_equal(wisp_static_new(www, "", &st), 0);
    assert_int_equal(wisp_static_set_max_size(st, 50), 0);
    expect_on(st, "/big.bin", 403, NULL, NULL);
    expect_on(st, "/fifty.bin", 200, NULL, NULL);
    struct result r = call(st, "HEAD", "/big.bin");
    assert_int_equal(r.status, 403);
    assert_int_equal(wisp_static_set_max_size(st, 0), -EINVAL);
    assert_int_equal(wisp_static_set_max_size(NULL, 5), -EINVAL);
    wisp_static_free(st);
}

static void test_if_modified_since(void **state)
{
    (void)state;
    char p[512];
    snprintf(p, sizeof p, "%s/www/sub/page.txt", base);
    struct timespec ts[2] = {{1700000000, 0}, {1700000000, 0}};
    assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);

    struct result r = call(st_modes[0], "GET", "/sub/page.txt");
    assert_header(&r, "Last-Modified", "Tue, 14 Nov 2023 22:13:20 GMT");
    done(&r);

    static const struct {
        const char *since;
        int status;
    } cases[] = {
        {"Tue, 14 Nov 2023 22:13:20 GMT", 304}, /* the same second */
        {"Tue, 14 Nov 2023 22:13:21 GMT", 304}, /* later */
        {"Wed, 01 Jan 2031 00:00:00 GMT", 304},
        {"Tue, 14 Nov 2023 22:13:19 GMT", 200}, /* older: modified since */
        {"Sun, 06 Nov 1994 08:49:37 GMT", 200},
        {"Tuesday, 14-Nov-23 22:13:20 GMT", 200}, /* RFC 850 form: ignored */
        {"Tue Nov 14 22:13:20 2023", 200},        /* asctime form: ignored */
        {"Tue, 14 Nov 2023 22:13:20 UTC", 200},
        {"Tue, 14 Foo 2023 22:13:20 GMT", 200},
        {"Tue, 14 Nov 2023 25:13:20 GMT", 200},
        {"garbage", 200},
        {"", 200},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct wisp_http_header h = {S("If-Modified-Since"), cases[i].since,
                                     strlen(cases[i].since)};
        for (int head = 0; head < 2; head++) {
            r = call_h(st_modes[0], head ? "HEAD" : "GET", "/sub/page.txt", &h, 1);
            if (r.status != cases[i].status)
                fail_msg("If-Modified-Since: %s: %d, want %d", cases[i].since, r.status,
                         cases[i].status);
            if (r.status == 304) {
                assert_null(r.reply.answer.body);
                assert_int_equal(r.reply.answer.body_len, 0);
                assert_header(&r, "Last-Modified", "Tue, 14 Nov 2023 22:13:20 GMT");
                assert_header(&r, "Cache-Control", "no-cache");
            } else if (!head) {
                assert_body(&r, "page", 4);
            }
            done(&r);
        }
    }

    /* The parser and the formatter agree across a range of dates. */
    for (time_t t = 0; t < (time_t)4102444800; t += 86400 * 37 + 3723) {
        char buf[HTTP_DATE_LEN + 1];
        time_t back;
        assert_true(format_http_date(t, buf));
        assert_true(parse_http_date(buf, strlen(buf), &back));
        assert_int_equal((long long)back, (long long)t);
    }
}

static void test_new_errors(void **state)
{
    (void)state;
    struct wisp_static *st = (struct wisp_static *)(uintptr_t)1;
    char p[512];
    assert_int_equal(wisp_static_new(NULL, "", &st), -EINVAL);
    assert_int_equal(wisp_static_new(www, "", NULL), -EINVAL);
    assert_int_equal(wisp_static_new(www, "files/", &st), -EINVAL);
    snprintf(p, sizeof p, "%s/nope", base);
    assert_int_equal(wisp_static_new(p, "", &st), -ENOENT);
    snprintf(p, sizeof p, "%s/outside.txt", base);
    assert_int_equal(wisp_static_new(p, "", &st), -ENOTDIR);
    assert_ptr_equal(st, (struct wisp_static *)(uintptr_t)1); /* untouched */
    wisp_static_free(NULL);

    struct wisp_http_reply reply;
    struct wisp_http_request req;
    memset(&req, 0, sizeof req);
    assert_int_equal(wisp_static_on_http(NULL, &req, NULL, &reply), -EINVAL);
    assert_int_equal(wisp_static_on_http(st_modes[0], NULL, NULL, &reply), -EINVAL);
    assert_int_equal(wisp_static_on_http(st_modes[0], &req, NULL, NULL), -EINVAL);
}

static void test_module(void **state)
{
    (void)state;
    const struct wisp_module *mod = &wisp_static_module;
    assert_int_equal(mod->abi_version, WISP_MODULE_ABI_VERSION);
    assert_int_equal(mod->struct_size, sizeof(struct wisp_module));
    assert_string_equal(mod->name, "static");
    assert_non_null(mod->mount);
    assert_non_null(mod->unmount);

    static const struct wisp_handler dummy = {0};
    struct wisp_route r;
    void *inst = NULL;
    char p[512];

    /* the whole site */
    assert_int_equal(wisp_route_init(&r, "*", &dummy), 0);
    assert_int_equal(mod->mount(NULL, &r, www, &inst), 0);
    assert_non_null(inst);
    assert_ptr_equal(r.data, inst);
    assert_null(r.handler);
    assert_ptr_equal(r.on_http, wisp_static_on_http);
    struct result res = call(r.data, "GET", "/sub/page.txt");
    assert_int_equal(res.status, 200);
    done(&res);
    mod->unmount(inst);

    /* a prefix route */
    inst = NULL;
    assert_int_equal(wisp_route_init(&r, "/files/*", NULL), 0);
    assert_int_equal(mod->mount(NULL, &r, www, &inst), 0);
    res = call(r.data, "GET", "/files/sub/page.txt");
    assert_int_equal(res.status, 200);
    done(&res);
    res = call(r.data, "GET", "/sub/page.txt");
    assert_int_equal(res.status, 404);
    mod->unmount(inst);

    inst = NULL;
    assert_int_equal(wisp_route_init(&r, "/*", NULL), 0); /* the same as "*" */
    assert_int_equal(mod->mount(NULL, &r, www, &inst), 0);
    res = call(r.data, "GET", "/sub/page.txt");
    assert_int_equal(res.status, 200);
    done(&res);
    mod->unmount(inst);

    /* refusals (each prints its sentence on stderr) */
    inst = NULL;
    assert_int_equal(wisp_route_init(&r, "*", NULL), 0);
    assert_int_equal(mod->mount(NULL, &r, NULL, &inst), -EINVAL);
    assert_int_equal(mod->mount(NULL, &r, "", &inst), -EINVAL);
    snprintf(p, sizeof p, "%s/nope", base);
    assert_int_equal(mod->mount(NULL, &r, p, &inst), -ENOENT);
    snprintf(p, sizeof p, "%s/outside.txt", base);
    assert_int_equal(mod->mount(NULL, &r, p, &inst), -ENOTDIR);
    assert_int_equal(wisp_route_init(&r, "/exact", NULL), 0);
    assert_int_equal(mod->mount(NULL, &r, www, &inst), -EINVAL);
    assert_int_equal(wisp_route_init(&r, "/files*", NULL), 0);
    assert_int_equal(mod->mount(NULL, &r, www, &inst), -EINVAL);
    assert_null(inst);
    assert_null(r.on_http);
}

/* Many workers at once on one object: answers stay right (and TSan, when used, stays quiet). */
static void *hammer(void *arg)
{
    struct wisp_static *st = arg;
    static const char *const targets[] = {"/app.js", "/sub/", "/../outside.txt", "/sub",
                                          "/img.png"};
    static const int statuses[] = {200, 200, 404, 301, 200};
    for (int i = 0; i < 500; i++) {
        size_t k = (size_t)i % 5;
        struct result r = call(st, "GET", targets[k]);
        if (r.status != statuses[k])
            return (void *)1;
        done(&r);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    for (int m = 0; m < 2; m++) {
        pthread_t t[8];
        for (int i = 0; i < 8; i++)
            assert_int_equal(pthread_create(&t[i], NULL, hammer, st_modes[m]), 0);
        for (int i = 0; i < 8; i++) {
            void *ret;
            assert_int_equal(pthread_join(t[i], &ret), 0);
            assert_null(ret);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files_and_types), cmocka_unit_test(test_head_and_methods),
        cmocka_unit_test(test_directories),     cmocka_unit_test(test_percent_decoding),
        cmocka_unit_test(test_traversal),       cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_size_limit),      cmocka_unit_test(test_if_modified_since),
        cmocka_unit_test(test_new_errors),      cmocka_unit_test(test_module),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
