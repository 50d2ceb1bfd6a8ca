/* The name registry: a small open-addressing hash table behind a mutex.
 *
 * Lookups and registrations are rare next to messages (a room is looked up once, then messaged
 * by address), so a mutex is the simple and sufficient choice. Names are removed when their
 * actor exits; the actor's `names` state (see internal.h) settles a registration that races
 * with the death, so no name outlives its actor.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static uint64_t hash_name(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 0x100000001b3ull;
    return h;
}

void wispi_registry_init(struct wispi_registry *r)
{
    pthread_mutex_init(&r->lock, NULL);
    r->v = NULL;
    r->cap = r->n = r->tombs = 0;
}

void wispi_registry_destroy(struct wispi_registry *r)
{
    free(r->v);
    r->v = NULL;
    pthread_mutex_destroy(&r->lock);
}

/* Under lock: the entry holding name, or NULL. */
static struct wispi_registry_entry *find(struct wispi_registry *r, const char *name)
{
    if (!r->cap)
        return NULL;
    size_t mask = r->cap - 1;
    for (size_t i = hash_name(name) & mask, probes = 0; probes < r->cap; i = (i + 1) & mask, probes++) {
        struct wispi_registry_entry *e = &r->v[i];
        if (!e->used && !e->tomb)
            return NULL;
        if (e->used && strcmp(e->name, name) == 0)
            return e;
    }
    return NULL;
}

/* Under lock: room for one more entry (rehash at 50% load, tombstones included). */
static int reserve(struct wispi_registry *r)
{
    if ((r->n + r->tombs + 1) * 2 <= r->cap)
        return 0;
    size_t cap = r->cap ? r->cap : 16;
    while ((r->n + 1) * 2 > cap)
        cap *= 2;
    struct wispi_registry_entry *v = calloc(cap, sizeof *v);
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < r->cap; i++) {
        if (!r->v[i].used)
            continue;
        size_t j = hash_name(r->v[i].name) & (cap - 1);
        while (v[j].used)
            j = (j + 1) & (cap - 1);
        v[j] = r->v[i];
    }
    free(r->v);
    r->v = v;
    r->cap = cap;
    r->tombs = 0;
    return 0;
}

int wisp_rt_register(struct wisp_runtime *rt, const char *name, wisp_addr who)
{
    if (!rt || !name || !*name || strlen(name) > WISP_NAME_MAX)
        return -EINVAL;
    struct wispi_registry *r = &rt->registry;
    pthread_mutex_lock(&r->lock);
    int rc = 0;
    struct wispi_actor *a = wispi_actor_acquire(rt, who);
    if (!a) {
        rc = -ESRCH;
    } else if (find(r, name)) {
        rc = -EEXIST;
    } else if (!(rc = reserve(r))) {
        size_t j = hash_name(name) & (r->cap - 1);
        while (r->v[j].used)
            j = (j + 1) & (r->cap - 1);
        if (r->v[j].tomb)
            r->tombs--;
        r->v[j] = (struct wispi_registry_entry){.who = who, .used = true};
        strcpy(r->v[j].name, name);
        r->n++;
        /* acq_rel: pairs with the dying turn's exchange. If it already ran (2), it will not
         * look for names any more, so take ours back; if it runs later it sees 1 and removes
         * them under this lock. */
        uint8_t was = 0;
        if (!atomic_compare_exchange_strong_explicit(&a->names, &was, 1, memory_order_acq_rel,
                                                     memory_order_acquire) &&
            was == 2) {
            r->v[j].used = false;
            r->v[j].tomb = true;
            r->n--;
            r->tombs++;
            rc = -ESRCH;
        }
    }
    pthread_mutex_unlock(&r->lock);
    if (a)
        wispi_actor_release(a);
    return rc;
}

int wisp_rt_whereis(struct wisp_runtime *rt, const char *name, wisp_addr *out)
{
    if (!rt || !name || !out)
        return -EINVAL;
    pthread_mutex_lock(&rt->registry.lock);
    struct wispi_registry_entry *e = find(&rt->registry, name);
    if (e)
        *out = e->who;
    pthread_mutex_unlock(&rt->registry.lock);
    return e ? 0 : -ENOENT;
}

static void remove_entry(struct wispi_registry *r, struct wispi_registry_entry *e)
{
    e->used = false;
    e->tomb = true;
    r->n--;
    r->tombs++;
}

int wisp_rt_unregister(struct wisp_runtime *rt, const char *name)
{
    if (!rt || !name)
        return -EINVAL;
    pthread_mutex_lock(&rt->registry.lock);
    struct wispi_registry_entry *e = find(&rt->registry, name);
    if (e)
        remove_entry(&rt->registry, e);
    pthread_mutex_unlock(&rt->registry.lock);
    return e ? 0 : -ENOENT;
}

void wispi_registry_forget(struct wispi_registry *r, wisp_addr addr)
{
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->cap; i++)
        if (r->v[i].used && wisp_addr_eq(r->v[i].who, addr))
            remove_entry(r, &r->v[i]);
    pthread_mutex_unlock(&r->lock);
}
