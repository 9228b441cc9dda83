/* Responses: status line and headers written into the connection's write buffer, the cached
 * Date header, and the built-in error pages. */
#ifndef TS_RESPONSE_H
#define TS_RESPONSE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct ts_req;
struct ts_worker;

#define TS_SERVER_NAME "tessera"
#define TS_VERSION "0.1.0"

/* Reason phrase for a status code ("Unknown" if none). */
const char *ts_response_reason(int status);

/* Starts the header block: status line, Date, Server. */
void ts_response_start(struct ts_req *req, int status);

/* Adds one header line. value need not be NUL-terminated. */
void ts_response_header(struct ts_req *req, const char *name, const char *value, size_t len);

/* Adds Content-Length (unless it is (uint64_t)-1), the Connection header that req->keep_alive
 * calls for, and the blank line. */
void ts_response_end(struct ts_req *req, uint64_t content_length);

/* Queues a body segment: len bytes at mem + off, or (mem NULL) at offset off of body_fd.
 * Skipped for HEAD. */
void ts_response_segment(struct ts_req *req, const char *mem, uint64_t off, uint64_t len);

/* Appends a small body right after the headers (skipped for HEAD). */
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
