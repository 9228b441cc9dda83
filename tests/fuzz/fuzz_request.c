/* libFuzzer target: request parsing (llhttp glue, split at fuzzer-chosen points as reads would
 * split it, pipelined requests) followed by path resolution, header token lists, and the
 * Range, If-Range, If-None-Match and date grammars. */
#include "cond.h"
#include "file.h"
#include "h1.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t step = (size_t)data[0] % 64 + 1; /* the size of each "read" */
    data++;
    size--;
    char *buf = malloc(size ? size : 1); /* exact size: ASan sees any overread */
    if (!buf) return 0;
    memcpy(buf, data, size);
    struct ts_h1 h1;
    struct ts_request req;
    size_t start = 0;
    for (int n = 0; n < 8 && start < size; n++) { /* up to 8 pipelined requests */
        ts_h1_begin(&h1, &req);
        size_t fed = start, avail = start;
        enum ts_h1_parse r = TS_H1_NEED_MORE;
        while (fed < size) {
            avail = avail + step > size ? size : avail + step;
            size_t used = 0;
            r = ts_h1_parse(&h1, buf + fed, avail - fed, &used, 4096);
            fed += used;
            if (r != TS_H1_NEED_MORE || avail == size) break;
        }
        if (r != TS_H1_REQUEST) break;
        char rel[512];
        if (req.path.p) ts_http_resolve_path(req.path.p, req.path.len, rel, sizeof(rel));
        for (int h = 0; h < TS_HDR_N; h++)
            if (req.hdr[h].p) ts_http_has_token(req.hdr[h], "close");
        /* the conditional and range grammars, against a 1000-byte file */
        struct ts_range ranges[TS_MAX_RANGES];
        int nr;
        if (req.hdr[TS_HDR_RANGE].p) ts_range_parse(req.hdr[TS_HDR_RANGE], 1000, ranges, &nr);
        if (req.hdr[TS_HDR_IF_NONE_MATCH].p)
            ts_etag_list_matches(req.hdr[TS_HDR_IF_NONE_MATCH], "\"1-2-3\"");
        if (req.hdr[TS_HDR_IF_MODIFIED_SINCE].p)
            ts_http_date_parse(req.hdr[TS_HDR_IF_MODIFIED_SINCE]);
        if (req.hdr[TS_HDR_IF_RANGE].p) ts_if_range_holds(req.hdr[TS_HDR_IF_RANGE], "\"1-2-3\"", 7);
        start = fed;
    }
    free(buf);
    return 0;
}
