/* libFuzzer target: the HTTP/2 input path of src/h2.c (nghttp2 session callbacks, the copy of
 * the header block into a stream's arena, method and pseudo-header mapping, the header list
 * bound, flood counting, stream close) and its output path (HEADERS, the no-copy DATA callback
 * writing into a write block whose room the fuzzer varies). The client preface is given; the
 * input is what follows it. Each request is answered at once from memory, with a body of 10
 * bytes, none, or 70,000 (more than the initial window: it stalls until WINDOW_UPDATE). The
 * top bits of each chunk's length byte do what the connection's timers do between reads:
 * GOAWAY (max_requests_per_connection, drain), reset the stalled streams (send_s), free the
 * streams kept for reuse (the RELEASE timer). */
#include "config.h"
#include "gen.h"
#include "h2.h"
#include "response.h"
#include "worker.h"

#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ts_gen gen;   /* its cfg: what the codec reads */
static struct ts_site site; /* the default site, as ts_config_load always makes one */
static struct ts_server srv;
static struct ts_worker worker;
static struct ts_h2 *cur;
static unsigned requests, dones;

static const char body[] = "fuzz body\n";
static char big[70000];

static void on_request(void *conn, struct ts_req *req)
{
    (void)conn;
    requests++;
    req->ctx = (struct ts_req_ctx){.w = &worker, .gen = &gen, .remote = "fuzz"};
    ts_response_init(req);
    req->resp.head_only = req->rq.method == HTTP_HEAD;
    ts_response_start(req, req->rq.error ? req->rq.error : 200);
    ts_response_header(req, "Content-Type", "text/plain", 10);
    switch (requests % 3) {
    case 1:
        ts_response_end(req, sizeof(body) - 1);
        ts_response_body(req, body, sizeof(body) - 1);
        break;
    case 2:
        ts_response_end(req, sizeof(big));
        ts_response_body(req, big, sizeof(big));
        break;
    default: ts_response_end(req, 0); break;
    }
    /* the strings the codec copied must be readable whole */
    if (req->rq.target.p && strlen(req->rq.target.p) != req->rq.target.len) abort();
    ts_h2_respond(cur, req, "Thu, 01 Jan 2026 00:00:00 GMT");
}

static void on_done(void *conn, struct ts_req *req, uint64_t sent)
{
    (void)conn;
    dones++;
    if (sent > req->resp.content_length || req->resp.status == 0) abort();
}

static const struct ts_h2_hooks hooks = {.request = on_request, .done = on_done};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    if (!srv.cfg) {
        gen.cfg.limits.max_header_bytes = 1024;
        gen.cfg.limits.max_uri_bytes = 256;
        gen.cfg.http2_max_concurrent_streams = 40; /* more than the 16 streams kept for reuse */
        gen.cfg.sites = &site;
        gen.cfg.nsites = 1;
        srv.cfg = &gen.cfg;
        worker.srv = &srv;
    }
    if (size < 1) return 0;
    /* first byte: how much room the write block has each time (exercises WOULDBLOCK) */
    size_t cap = 64 + (size_t)data[0] * 256;
    data++, size--;
    struct ts_stats stats;
    memset(&stats, 0, sizeof(stats));
    requests = dones = 0;
    cur = ts_h2_new(&gen.cfg, &hooks, NULL, &stats);
    if (!cur) return 0;
    char *out = malloc(cap);
    bool ok = ts_h2_recv(cur, preface, sizeof(preface) - 1, 0) == 0;
    size_t off = 0;
    while (ok && off < size) {
        /* chunks of 1..64 bytes, so frames split across reads */
        size_t n = (size_t)(data[off] & 63) + 1;
        switch (data[off] >> 6) {
        case 1: /* the graceful close; the next time, its final GOAWAY without the PING's ACK */
            if (!ts_h2_shutdown(cur)) ts_h2_goaway(cur);
            break;
        case 2: ts_h2_expire_stalled(cur, 0, 0, true); break;
        case 3: ts_h2_trim(cur); break;
        }
        off++;
        if (n > size - off) n = size - off;
        ok = ts_h2_recv(cur, data + off, n, 0) == 0;
        off += n;
        for (int i = 0; i < 64 && ts_h2_want_write(cur); i++) {
            long w = ts_h2_send(cur, out, cap, 0);
            if (w < 0 || (size_t)w > cap) abort();
            if (w == 0) break;
        }
        /* a stream counted as stalled is an open one: the count neither leaks nor wraps */
        if (ts_h2_stalled(cur) && ts_h2_open_streams(cur) == 0) abort();
    }
    ts_h2_goaway(cur);
    for (int i = 0; i < 256 && ts_h2_want_write(cur); i++)
        if (ts_h2_send(cur, out, cap, 0) <= 0) break;
    ts_h2_free(cur);
    cur = NULL;
    if (dones != requests) abort(); /* every stream reported is closed exactly once */
    if (ts_stat_get(&stats.h2_streams_open) != 0) abort();
    if (getenv("FUZZ_H2_VERBOSE")) /* to see that a seed reaches the requests */
        fprintf(stderr, "fuzz_h2: %u requests, %llu RST_STREAM sent\n", requests,
                (unsigned long long)ts_stat_get(&stats.h2_rst_sent));
    free(out);
    return 0;
}
