/* The outgoing queue of a connection (runtime/conn_tx.c), without a ring: appending frames,
 * zero-copy references, where control frames go, partial writes and dropping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conn_tx.h"

static struct wispi_net net; /* only its chunk cache is used */
static int released;

static void on_release(void *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    (void)arg;
    released++;
}

/* Append n bytes of c as one whole frame (or not, when frame_end is false). */
static void put(struct wispi_txq *q, char c, size_t n, bool frame_end)
{
    uint8_t *p = wispi_txq_reserve(&net, q, n);
    assert_non_null(p);
    memset(p, c, n);
    wispi_txq_commit(q, n, frame_end);
}

/* The unsent bytes, concatenated in wire order, as a string. */
static char *wire(const struct wispi_txq *q)
{
    static char buf[4096];
    size_t len = 0;
    const uint8_t *p;
    size_t n;
    for (size_t i = 0; (n = wispi_txq_peek(q, i, &p)) || i == 0; i++) {
        if (!n && i == 0 && !q->head)
            break;
        memcpy(buf + len, p, n);
        len += n;
    }
    buf[len] = 0;
    return buf;
}

static void small_frames_share_one_chunk(void **st)
{
    (void)st;
    struct wispi_txq q = {0};
    put(&q, 'a', 3, true);
    put(&q, 'b', 2, true);
    put(&q, 'c', 1, true);
    const uint8_t *p;
    assert_int_equal(wispi_txq_peek(&q, 0, &p), 6);
    assert_int_equal(wispi_txq_peek(&q, 1, &p), 0);
    assert_int_equal(q.buffered, 6);
    wispi_txq_sent(&net, &q, 4);
    assert_string_equal(wire(&q), "bc");
    assert_int_equal(q.buffered, 2);
    wispi_txq_sent(&net, &q, 2);
    assert_null(q.head);
    assert_int_equal(q.buffered, 0);
    wispi_txq_free(&net, &q);
}

static void control_goes_first_at_a_boundary(void **st)
{
    (void)st;
    struct wispi_txq q = {0};
    put(&q, 'd', 4, true);
    uint8_t pong[2] = {'P', 'P'};
    assert_int_equal(wispi_txq_ctrl(&q, pong, 2), 0);
    assert_int_equal(q.buffered, 6);
    wispi_txq_place_control(&q);
    assert_string_equal(wire(&q), "PPdddd");
    wispi_txq_free(&net, &q);
}

static void control_waits_for_the_end_of_a_frame(void **st)
{
    (void)st;
    struct wispi_txq q = {0};
    static const char payload[] = "RRRR";
    released = 0;
    put(&q, 'h', 2, false); /* a frame header whose payload is a reference */
    assert_int_equal(
        wispi_txq_ref(&net, &q, payload, 4, true, on_release, (void *)payload, 4, NULL), 0);
    put(&q, 'n', 3, true);  /* the next frame */
    wispi_txq_sent(&net, &q, 3); /* the header and one payload byte are out: mid-frame */
    assert_true(q.mid_frame);
    uint8_t ping[1] = {'P'};
    wispi_txq_ctrl(&q, ping, 1);
    wispi_txq_place_control(&q);
    assert_string_equal(wire(&q), "RRRPnnn");
    assert_int_equal(released, 0);
    wispi_txq_sent(&net, &q, 4); /* the rest of the payload and the ping */
    assert_int_equal(released, 1);
    assert_string_equal(wire(&q), "nnn");
    wispi_txq_free(&net, &q);
}

static void appends_after_a_partial_write_keep_the_order(void **st)
{
    (void)st;
    struct wispi_txq q = {0};
    put(&q, 'a', 4, true);
    wispi_txq_sent(&net, &q, 2); /* short send */
    put(&q, 'b', 2, true);       /* appended to the same chunk, after what was written */
    assert_string_equal(wire(&q), "aabb");
    assert_int_equal(q.buffered, 4);
    wispi_txq_free(&net, &q);
}

static void dropping_keeps_the_frame_in_progress(void **st)
{
    (void)st;
    struct wispi_txq q = {0};
    static const char big[] = "XXXXXXXX";
    released = 0;
    put(&q, 'h', 2, false);
    wispi_txq_ref(&net, &q, big, 8, true, on_release, (void *)big, 8, NULL);
    put(&q, 'h', 2, false);
    wispi_txq_ref(&net, &q, big, 8, true, on_release, (void *)big, 8, NULL);
    uint8_t pong[1] = {'P'};
    wispi_txq_ctrl(&q, pong, 1);
    wispi_txq_sent(&net, &q, 5); /* inside the first frame's payload */
    wispi_txq_drop_unsent(&net, &q);
    assert_int_equal(released, 1); /* the second reference was dropped and released */
    assert_string_equal(wire(&q), "XXXXX");
    assert_int_equal(q.buffered, 5);
    wispi_txq_free(&net, &q);
    assert_int_equal(released, 2);
}

/* A drop while a send is in flight keeps every segment that send covers, even past the first
 * frame: the kernel still reads them. */
static void dropping_keeps_what_the_kernel_is_sending(void **st)
{
    (void)st;
    struct wispi_txq q = {0};
    static const char x[] = "XXXX", y[] = "YYYY", z[] = "ZZZZ";
    released = 0;
    put(&q, 'a', 3, true);
    wispi_txq_ref(&net, &q, x, 4, true, on_release, (void *)x, 4, NULL);
    wispi_txq_ref(&net, &q, y, 4, true, on_release, (void *)y, 4, NULL);
    wispi_txq_ref(&net, &q, z, 4, true, on_release, (void *)z, 4, NULL);
    q.sending = true; /* as wispi_txq_start leaves it: the first three segments submitted */
    q.in_flight = 11;
    wispi_txq_drop_unsent(&net, &q);
    assert_int_equal(released, 1); /* only "ZZZZ", which the send does not cover */
    assert_string_equal(wire(&q), "aaaXXXXYYYY");
    assert_int_equal(q.buffered, 11);
    wispi_txq_sent(&net, &q, 11);
    assert_int_equal(released, 3);
    assert_null(q.head);
    assert_int_equal(q.buffered, 0);
    wispi_txq_free(&net, &q);
}

static void dropping_with_nothing_started_drops_all(void **st)
{
    (void)st;
    struct wispi_txq q = {0};
    put(&q, 'a', 10, true);
    wispi_txq_drop_unsent(&net, &q);
    assert_null(q.head);
    assert_int_equal(q.buffered, 0);
    wispi_txq_free(&net, &q);
}

static void a_large_frame_gets_its_own_block(void **st)
{
    (void)st;
    struct wispi_txq q = {0};
    put(&q, 's', 10, true);
    put(&q, 'L', WISPI_CHUNK, true);
    put(&q, 't', 10, true);
    const uint8_t *p;
    assert_int_equal(wispi_txq_peek(&q, 0, &p), 10);
    assert_int_equal(wispi_txq_peek(&q, 1, &p), WISPI_CHUNK);
    assert_int_equal(wispi_txq_peek(&q, 2, &p), 10);
    assert_int_equal(q.buffered, WISPI_CHUNK + 20);
    wispi_txq_sent(&net, &q, WISPI_CHUNK + 20);
    assert_null(q.head);
    wispi_txq_free(&net, &q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(small_frames_share_one_chunk),
        cmocka_unit_test(control_goes_first_at_a_boundary),
        cmocka_unit_test(control_waits_for_the_end_of_a_frame),
        cmocka_unit_test(appends_after_a_partial_write_keep_the_order),
        cmocka_unit_test(dropping_keeps_the_frame_in_progress),
        cmocka_unit_test(dropping_keeps_what_the_kernel_is_sending),
        cmocka_unit_test(dropping_with_nothing_started_drops_all),
        cmocka_unit_test(a_large_frame_gets_its_own_block),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    void **caches[] = {&net.chunk_cache, &net.seg_cache}; /* what the caches kept */
    for (size_t i = 0; i < 2; i++) {
        while (*caches[i]) {
            void *next = *(void **)*caches[i];
            free(*caches[i]);
            *caches[i] = next;
        }
    }
    return rc;
}
