/* The intrusive MPSC queues under real concurrency: many producers, one consumer.
 * Checks FIFO order per producer, no loss, no duplicate, and the mailbox's promise that exactly
 * one producer sees each empty-to-non-empty transition. Meaningful under TSan too. */
#include <pthread.h>
#include <stdarg.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mpsc.h"

#define PRODUCERS 4
#define PER_PRODUCER 100000

struct item {
    struct wispi_node node; /* first: node and item share an address */
    int producer;
    int seq;
};

struct shared {
    struct wispi_mailbox mb;
    struct wispi_node stub;
    struct wispi_runq rq;
    struct item *items;
    _Atomic int schedules; /* producers that saw the empty bit */
    _Atomic int go;
    bool use_runq;
};

struct producer_arg {
    struct shared *s;
    int id;
};

static void *producer(void *p)
{
    struct producer_arg *pa = p;
    struct shared *s = pa->s;
    while (!atomic_load(&s->go))
        ;
    for (int i = 0; i < PER_PRODUCER; i++) {
        struct item *it = &s->items[pa->id * PER_PRODUCER + i];
        it->producer = pa->id;
        it->seq = i;
        if (s->use_runq)
            wispi_runq_push(&s->rq, &it->node);
        else if (wispi_mailbox_push(&s->mb, &it->node, &it->node))
            atomic_fetch_add(&s->schedules, 1);
    }
    return NULL;
}

static void run(bool use_runq)
{
    struct shared *s = calloc(1, sizeof *s);
    s->items = calloc(PRODUCERS * PER_PRODUCER, sizeof *s->items);
    s->use_runq = use_runq;
    wispi_mailbox_init(&s->mb, &s->stub);
    wispi_runq_init(&s->rq);
    pthread_t t[PRODUCERS];
    struct producer_arg pa[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        pa[i] = (struct producer_arg){s, i};
        pthread_create(&t[i], NULL, producer, &pa[i]);
    }
    atomic_store(&s->go, 1);

    int next[PRODUCERS] = {0};
    int got = 0, transitions = 0;
    bool scheduled = false; /* consumer's view: the mailbox is "running" */
    while (got < PRODUCERS * PER_PRODUCER) {
        struct wispi_node *n;
        if (use_runq) {
            n = wispi_runq_pop(&s->rq);
        } else {
            struct wispi_node *old;
            n = wispi_mailbox_pop(&s->mb, &old);
            if (!n && scheduled) {
                /* like the end of a turn: go idle if nothing new arrived */
                if (wispi_mailbox_mark_empty(&s->mb))
                    scheduled = false;
                continue;
            }
            if (n && !scheduled) {
                scheduled = true;
                transitions++;
            }
        }
        if (!n)
            continue;
        struct item *it = (struct item *)n;
        assert_int_equal(it->seq, next[it->producer]);
        next[it->producer]++;
        got++;
    }
    for (int i = 0; i < PRODUCERS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(next[i], PER_PRODUCER);
    }
    if (!use_runq) {
        /* Each idle period of the consumer was ended by exactly one producer's push. The
         * first transition is from the initial empty state. */
        if (scheduled)
            assert_true(wispi_mailbox_mark_empty(&s->mb));
        assert_int_equal(atomic_load(&s->schedules), transitions);
    } else {
        assert_null(wispi_runq_pop(&s->rq));
        assert_false(wispi_runq_maybe_nonempty(&s->rq));
    }
    free(s->items);
    free(s);
}

static void test_mailbox_many_producers(void **state)
{
    run(false);
}

static void test_runq_many_producers(void **state)
{
    run(true);
}

/* A run-queue node can be pushed again as soon as it was popped (an actor rescheduled right
 * after its turn) without corrupting the queue. */
static void test_runq_reuse(void **state)
{
    struct wispi_runq q;
    wispi_runq_init(&q);
    struct item a = {.seq = 0}, b = {.seq = 0};
    for (int i = 0; i < 1000; i++) {
        wispi_runq_push(&q, &a.node);
        assert_ptr_equal(wispi_runq_pop(&q), &a.node);
        wispi_runq_push(&q, &a.node);
        wispi_runq_push(&q, &b.node);
        assert_ptr_equal(wispi_runq_pop(&q), &a.node);
        wispi_runq_push(&q, &a.node);
        assert_ptr_equal(wispi_runq_pop(&q), &b.node);
        assert_ptr_equal(wispi_runq_pop(&q), &a.node);
        assert_null(wispi_runq_pop(&q));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mailbox_many_producers),
        cmocka_unit_test(test_runq_many_producers),
        cmocka_unit_test(test_runq_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
