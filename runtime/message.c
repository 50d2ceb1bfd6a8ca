/* Message allocation: small payloads inline, larger ones copied to the heap, or handed over
 * with a release callback. The header outlives delivery briefly (it is the mailbox's stub
 * until the next message), so payloads are released as soon as the receiver is done. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static struct wispi_msg *msg_header(uint32_t type)
{
    struct wispi_msg *m = malloc(sizeof *m);
    if (!m)
        return NULL;
    m->type = type;
    m->storage = MSG_INLINE;
    m->sys = SYS_NONE;
    m->from = WISP_ADDR_NONE;
    m->aux = 0;
    m->data = m->u.bytes;
    m->len = 0;
    return m;
}

struct wispi_msg *wispi_msg_new(uint32_t type, const void *data, size_t len)
{
    struct wispi_msg *m = msg_header(type);
    if (!m)
        return NULL;
    if (len > WISPI_MSG_INLINE) {
        m->data = malloc(len);
        if (!m->data) {
            free(m);
            return NULL;
        }
        m->storage = MSG_HEAP;
    }
    if (len)
        memcpy(m->data, data, len);
    m->len = len;
    return m;
}

struct wispi_msg *wispi_msg_new_owned(uint32_t type, void *data, size_t len,
                                      wisp_release_fn release, void *arg)
{
    struct wispi_msg *m = msg_header(type);
    if (!m) {
        if (release)
            release(data, len, arg);
        return NULL;
    }
    m->storage = MSG_OWNED;
    m->data = data;
    m->len = len;
    m->u.owned.fn = release;
    m->u.owned.arg = arg;
    return m;
}

struct wispi_msg *wispi_msg_new_sys(enum wispi_sys sys, wisp_addr from, uint64_t aux)
{
    struct wispi_msg *m = msg_header(0);
    if (!m)
        return NULL;
    m->sys = (uint8_t)sys;
    m->from = from;
    m->aux = aux;
    return m;
}

void wispi_msg_release_payload(struct wispi_msg *m)
{
    switch (m->storage) {
    case MSG_HEAP:
        free(m->data);
        break;
    case MSG_OWNED:
        if (m->u.owned.fn)
            m->u.owned.fn(m->data, m->len, m->u.owned.arg);
        break;
    default:
        break;
    }
    m->storage = MSG_INLINE;
    m->data = m->u.bytes;
    m->len = 0;
}

void wispi_msg_free(struct wispi_msg *m)
{
    if (!m)
        return;
    wispi_msg_release_payload(m);
    free(m);
}
