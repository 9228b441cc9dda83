/* libFuzzer target: the PROXY protocol header parser, fed whole and then as reads would split
 * it; every split must agree with the whole (need more until the header is complete, then the
 * same length and addresses), and a consumed length never passes the input or the bounds. */
#include "proxy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 2 * TS_PROXY_MAX) size = 2 * TS_PROXY_MAX;
    struct ts_proxy_result whole, part;
    enum ts_proxy_status s = ts_proxy_parse(data, size, &whole);
    if (s == TS_PROXY_DONE &&
        (whole.consumed == 0 || whole.consumed > size || whole.consumed > TS_PROXY_MAX))
        abort();
    if (s == TS_PROXY_NEED_MORE && size >= TS_PROXY_MAX) abort(); /* bounded: never waits on */
    if (s == TS_PROXY_ERROR && !whole.error) abort();
    for (size_t i = 0; i < size; i++) {
        uint8_t *copy = malloc(i ? i : 1); /* exact size: ASan sees any overread */
        if (!copy) return 0;
        memcpy(copy, data, i);
        enum ts_proxy_status p = ts_proxy_parse(copy, i, &part);
        free(copy);
        if (s == TS_PROXY_DONE && i < whole.consumed && p != TS_PROXY_NEED_MORE) abort();
        if (s == TS_PROXY_DONE && i >= whole.consumed &&
            (p != TS_PROXY_DONE || part.consumed != whole.consumed || part.local != whole.local ||
             part.family != whole.family || memcmp(part.src, whole.src, 16) != 0 ||
             part.src_port != whole.src_port))
            abort();
        if (s == TS_PROXY_NEED_MORE && p != TS_PROXY_NEED_MORE) abort();
        if (p == TS_PROXY_DONE && s != TS_PROXY_DONE) abort();
    }
    return 0;
}
