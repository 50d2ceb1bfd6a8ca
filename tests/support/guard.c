#include "guard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void guard_init(struct guard_buf *g, size_t max_len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t data = (max_len + page - 1) / page * page;
    if (data == 0)
        data = page;
    g->map_size = data + page;
    g->data_size = data;
    g->map = mmap(NULL, g->map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g->map == MAP_FAILED || mprotect(g->map + data, page, PROT_NONE) != 0) {
        perror("guard_init");
        abort();
    }
}

uint8_t *guard_place(struct guard_buf *g, const void *data, size_t len)
{
    if (len > g->data_size) {
        fprintf(stderr, "guard_place: %zu bytes do not fit in %zu\n", len, g->data_size);
        abort();
    }
    uint8_t *at = g->map + g->data_size - len;
    if (len)
        memcpy(at, data, len);
    return at;
}

void guard_free(struct guard_buf *g)
{
    if (g->map && g->map != MAP_FAILED)
        munmap(g->map, g->map_size);
    g->map = NULL;
}
