/* actors/url.c: percent-decoding (see url.h). */
#include "url.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int wurl_pct_byte(const char *s, size_t n, size_t i)
{
    if (n - i < 3)
        return -1;
    int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
    return hi < 0 || lo < 0 ? -1 : hi << 4 | lo;
}
