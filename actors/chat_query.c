/* actors/chat_query.c: the room and name of a chat upgrade, read from its query string (the
 * rules are chat.h's CONNECTING section). A pure function of the bytes, so that it can be
 * fuzzed without a connection or a runtime (tests/fuzz/fuzz_chat_query.c). */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "chat_internal.h"
#include "json.h"
#include "url.h"

/* Percent-decode s[0..n) ('+' is a space) into out[NAME_MAX_]. @return the length, or -1 for
 * a bad escape or a result over NAME_MAX_ bytes. */
static long url_decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            int b = wurl_pct_byte(s, n, i);
            if (b < 0)
                return -1;
            ch = (char)b;
            i += 2;
        } else if (ch == '+') {
            ch = ' ';
        }
        if (o == NAME_MAX_)
            return -1;
        out[o++] = ch;
    }
    return (long)o;
}

int wispi_chat_parse_query(const char *q, size_t qn, struct chat_query *out)
{
    memset(out, 0, sizeof *out);
    bool have_room = false, have_name = false;
    for (size_t i = 0; i < qn;) {
        size_t end = i;
        while (end < qn && q[end] != '&')
            end++;
        size_t eq = i;
        while (eq < end && q[eq] != '=')
            eq++;
        const char *key = q + i;
        size_t key_len = eq - i;
        const char *val = eq < end ? q + eq + 1 : q + end;
        size_t val_len = eq < end ? end - eq - 1 : 0;
        bool is_room = key_len == 4 && memcmp(key, "room", 4) == 0;
        bool is_name = key_len == 4 && memcmp(key, "name", 4) == 0;
        if (is_room || is_name) {
            /* Refused even when a value is empty ("room=&room=x"): every occurrence counts as
             * given; only an empty result counts as absent (chat.h). */
            if (is_room ? have_room : have_name)
                return 400;
            char *dst = is_room ? out->room : out->name;
            long n = url_decode(val, val_len, dst);
            if (n < 0 || !wjson_printable_utf8(dst, (size_t)n))
                return 400;
            if (is_room) {
                out->room_len = (uint32_t)n;
                have_room = true;
            } else {
                out->name_len = (uint32_t)n;
                have_name = true;
            }
        }
        i = end + 1;
    }
    return 0;
}
