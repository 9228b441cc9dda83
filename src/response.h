/* The protocol-neutral response: status, header list and body segments, recorded for a codec
 * to serialize (src/h1.c); the cached Date value, and the built-in error pages. */
#ifndef TS_RESPONSE_H
#define TS_RESPONSE_H

#include "http.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct ts_cert_info;
struct ts_file;
struct ts_worker;
struct ts_gen;

#define TS_NO_LENGTH      ((uint64_t)-1) /* a response without Content-Length (204, 304) */
#define TS_RESP_MAX_HDRS  32
#define TS_RESP_ARENA     4096        /* header bytes kept inside the response */
#define TS_RESP_ARENA_MAX (32 * 1024) /* beyond: on the heap; a header past this is dropped */

/* One header: name and value as offsets into the response's arena. */
struct ts_resp_hdr {
    uint16_t name_off, name_len, value_off, value_len;
};

/* What the handler answers. Codecs add Date and Server (and HTTP/1.1 its Connection header);
 * everything else the client sees is here. */
struct ts_response {
    int status;
    bool keep_alive; /* HTTP/1.1: the connection carries another request after this one */
    bool head_only;  /* HEAD: headers, no body */
    uint8_t nhdrs;
    struct ts_resp_hdr hdrs[TS_RESP_MAX_HDRS];
    uint64_t content_length; /* or TS_NO_LENGTH */
    char *heap;              /* the arena once it outgrew small, else NULL */
    uint32_t arena_len;
    char small[TS_RESP_ARENA];
    struct ts_file *file; /* the file segments read from (referenced), or NULL */
    char *body_owned;     /* malloc'ed memory segments may point into; freed at the end */
    struct ts_seg segs[TS_MAX_SEGS];
    uint8_t nsegs, cur_seg;
    uint64_t body_left; /* bytes of all segments not yet sent */
};

/* Where a request came from: the same for every request of a connection. */
struct ts_req_ctx {
    struct ts_worker *w;
    struct ts_gen *gen; /* the configuration the connection was opened under */
    const char *remote; /* peer address, printable */
    int peer_family;    /* AF_INET (4 bytes in peer_addr) or AF_INET6 (16) */
    const unsigned char *peer_addr;
    const struct ts_cert_info *cert;
    const struct ts_site *site; /* the site the connection's handshake selected */
    int site_idx;               /* its index in cfg->sites (0: the default site) */
    bool plain;        /* arrived on an http_redirect listener: answer with a redirect to https */
    uint64_t start_us; /* CLOCK_MONOTONIC (µs) when the request was taken, for duration_us */
};

/* One exchange: the request a codec parsed, the response the handler builds for it, and its
 * context. A codec keeps one per request in flight (HTTP/1.1: in the connection's read block). */
struct ts_req {
    struct ts_request rq;
    struct ts_response resp;
    struct ts_req_ctx ctx;
};

#define TS_SERVER_NAME "tessera"
#define TS_VERSION     "0.1.0"

struct ts_site;

/* The site a request is served from: the one its connection's handshake selected (the
 * default site when the context names none). */
const struct ts_site *ts_req_site(const struct ts_req *req);

/* The O_PATH descriptor of that site's root. */
int ts_req_rootfd(const struct ts_req *req);

/* Reason phrase for a status code ("Unknown" if none). */
const char *ts_response_reason(int status);

/* Prepares req->resp for a new exchange (nothing kept from an earlier one). head_only and
 * keep_alive are the caller's to set afterwards. */
void ts_response_init(struct ts_req *req);

/* Frees what the response holds: the file reference, the owned body, a grown arena. */
void ts_response_release(struct ts_req *req);

/* Starts the response: status, no headers yet but Strict-Transport-Security when configured
 * (never over plain HTTP). */
void ts_response_start(struct ts_req *req, int status);

/* Adds one header (copied). value need not be NUL-terminated. Dropped if it does not fit. */
void ts_response_header(struct ts_req *req, const char *name, const char *value, size_t len);

/* Ends the header list: content_length is the body's length, or TS_NO_LENGTH. */
void ts_response_end(struct ts_req *req, uint64_t content_length);

/* The i-th header's name and value. */
struct ts_str ts_response_hdr_name(const struct ts_response *resp, unsigned i);
struct ts_str ts_response_hdr_value(const struct ts_response *resp, unsigned i);

/* Queues a body segment: len bytes at mem + off, or (mem NULL) at offset off of the response's
 * file (from its bytes in the file cache when it holds them).
 * Skipped for HEAD. */
void ts_response_segment(struct ts_req *req, const char *mem, uint64_t off, uint64_t len);

/* Queues a small body (skipped for HEAD); data must outlive the response (a constant). */
void ts_response_body(struct ts_req *req, const char *data, size_t len);

/* Answers with a complete error response (HTML page with detail, if given). Statuses 400 and
 * above that leave the connection in doubt (400, 408, 413, 414, 431, 5xx) also close it. */
void ts_response_error(struct ts_req *req, int status, const char *detail);

/* The same with one more header (e.g. Content-Range on a 416). */
void ts_response_error_with(struct ts_req *req, int status, const char *detail, const char *name,
                            const char *value);

#define TS_ALLOW_METHODS "GET, HEAD, OPTIONS"

/* A growing string for generated bodies (error pages, JSON). Aborts on out-of-memory. */
struct ts_sbuf {
    char *p;
    size_t len, cap;
};
void ts_sbuf_add(struct ts_sbuf *b, const char *s, size_t len);
void ts_sbuf_puts(struct ts_sbuf *b, const char *s);
void ts_sbuf_add_html(struct ts_sbuf *b, const char *s); /* escapes < > & " ' */

/* Answers with a generated body (which the response takes over and frees): status,
 * Content-Type, no-store, and the body (omitted for HEAD). */
void ts_response_owned(struct ts_req *req, int status, const char *type, struct ts_sbuf *body);

/* The configured error page for a status (a path under root with its leading '/'), or NULL. */
const char *ts_response_error_page(const struct ts_req *req, int status);

/* Reads a page under the root (rel without a leading '/'), at most 64 KiB, NUL-terminated.
 * Returns malloc'ed text, or NULL if it cannot be read. */
char *ts_response_read_page(const struct ts_req *req, const char *rel);

/* Appends tpl with its {{name}} placeholders filled: values[i] HTML-escaped for names[i],
 * {{details}} with the markup in details (may be empty); unknown names are dropped. */
void ts_response_render(struct ts_sbuf *out, const char *tpl, const char *const *names,
                        const char *const *values, size_t n, const struct ts_sbuf *details);

/* Formats t as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") into buf (>= 30 bytes). */
size_t ts_http_date(time_t t, char *buf);

/* Refreshes the worker's cached Date value when the second changed. Worker thread. */
void ts_response_update_date(struct ts_worker *w);

#endif
