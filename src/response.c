/* Response headers and built-in error pages. Headers go straight into the connection's write
 * buffer, so the header block and the first body bytes leave in one TLS record. */
#include "response.h"
#include "config.h"
#include "fcache.h"
#include "file.h"
#include "http.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

const char *ts_response_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    }
    return "Unknown";
}

static void put(struct ts_req *req, const char *s, size_t len)
{
    if (req->out_len + len > req->out_cap) len = req->out_cap - req->out_len; /* never */
    memcpy(req->out + req->out_len, s, len);
    req->out_len += len;
}

static void put_str(struct ts_req *req, const char *s)
{
    put(req, s, strlen(s));
}

static void put_u64(struct ts_req *req, uint64_t v)
{
    char buf[24], *p = buf + sizeof(buf);
    do *--p = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    put(req, p, (size_t)(buf + sizeof(buf) - p));
}

size_t ts_http_date(time_t t, char *buf)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    return strftime(buf, 30, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

void ts_response_update_date(struct ts_worker *w)
{
    time_t now = time(NULL);
    if (now == w->now_s && w->date[0]) return;
    w->now_s = now;
    ts_http_date(now, w->date);
}

void ts_response_start(struct ts_req *req, int status)
{
    char line[64];
    req->status = status;
    req->out_len = 0;
    int n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\nDate: ", status,
                     ts_response_reason(status));
    put(req, line, (size_t)n);
    put_str(req, req->w->date);
    put_str(req, "\r\nServer: " TS_SERVER_NAME "\r\n");
    const char *hsts = req->w->srv->cfg->hsts;
    if (hsts && !req->plain) { /* never over plain HTTP (RFC 6797 section 7.2) */
        put_str(req, "Strict-Transport-Security: ");
        put_str(req, hsts);
        put(req, "\r\n", 2);
    }
}

void ts_response_header(struct ts_req *req, const char *name, const char *value, size_t len)
{
    size_t nl = strlen(name);
    if (req->out_len + nl + len + 4 + 64 > req->out_cap) return; /* keep room for the end */
    put(req, name, nl);
    put(req, ": ", 2);
    put(req, value, len);
    put(req, "\r\n", 2);
}

void ts_response_end(struct ts_req *req, uint64_t content_length)
{
    if (content_length != (uint64_t)-1) {
        put_str(req, "Content-Length: ");
        put_u64(req, content_length);
        put(req, "\r\n", 2);
    }
    if (!req->keep_alive)
        put_str(req, "Connection: close\r\n");
    else if (req->http_minor == 0)
        put_str(req, "Connection: keep-alive\r\n");
    put(req, "\r\n", 2);
    req->header_len = req->out_len;
}

void ts_response_body(struct ts_req *req, const char *data, size_t len)
{
    if (req->head_only) return;
    put(req, data, len);
}

void ts_response_segment(struct ts_req *req, const char *mem, uint64_t off, uint64_t len)
{
    if (req->head_only || len == 0) return;
    if (req->nsegs == TS_MAX_SEGS) abort(); /* callers stay within TS_MAX_SEGS */
    req->segs[req->nsegs++] = (struct ts_seg){mem, off, len};
    req->body_left += len;
}

/* Drops a body planned before an error was decided (a file already opened, say). */
static void error_reset_body(struct ts_req *req)
{
    if (req->file) {
        ts_fcache_release(req->w->fcache, req->file);
        req->file = NULL;
    }
    free(req->body_owned);
    req->body_owned = NULL;
    req->nsegs = req->cur_seg = 0;
    req->body_left = 0;
}

static bool closes_connection(int status)
{
    return status == 400 || status == 408 || status == 413 || status == 414 || status == 431 ||
           status >= 500;
}

void ts_response_error(struct ts_req *req, int status, const char *detail)
{
    ts_response_error_with(req, status, detail, NULL, NULL);
}

void ts_response_error_with(struct ts_req *req, int status, const char *detail, const char *name,
                            const char *value)
{
    const char *reason = ts_response_reason(status);
    if (closes_connection(status)) req->keep_alive = false;
    error_reset_body(req);
    struct ts_sbuf b = {0};
    const char *page = ts_response_error_page(req, status);
    char *tpl = page ? ts_response_read_page(req, page + 1) : NULL;
    if (tpl) { /* the site's page for this status */
        static const char *const names[] = {"status", "title", "message"};
        char code[8];
        snprintf(code, sizeof(code), "%d", status);
        const char *values[] = {code, reason, detail ? detail : ""};
        struct ts_sbuf none = {0};
        ts_response_render(&b, tpl, names, values, 3, &none);
        free(tpl);
    } else {
        char head[640];
        snprintf(head, sizeof(head),
                 "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                 "<title>%d %s</title><style>body{font:16px/1.5 system-ui,sans-serif;"
                 "max-width:40em;margin:4em auto;padding:0 1em;color:#222}h1{font-size:1.6em}"
                 ".code{color:#b00020}footer{color:#888;font-size:.85em;margin-top:2em}"
                 "</style></head>\n<body><h1><span class=\"code\">%d</span> %s</h1>\n<p>",
                 status, reason, status, reason);
        ts_sbuf_puts(&b, head);
        ts_sbuf_add_html(&b, detail ? detail : "");
        ts_sbuf_puts(&b, "</p>\n<footer>" TS_SERVER_NAME "</footer></body></html>\n");
    }
    ts_response_start(req, status);
    static const char html[] = "text/html; charset=utf-8";
    ts_response_header(req, "Content-Type", html, sizeof(html) - 1);
    if (status == 405 || status == 501)
        ts_response_header(req, "Allow", TS_ALLOW_METHODS, sizeof(TS_ALLOW_METHODS) - 1);
    if (name) ts_response_header(req, name, value, strlen(value));
    ts_response_header(req, "Cache-Control", "no-store", 8);
    ts_response_end(req, b.len);
    if (req->head_only || b.len == 0) {
        free(b.p);
        return;
    }
    req->body_owned = b.p;
    ts_response_segment(req, b.p, 0, b.len);
}

void ts_sbuf_add(struct ts_sbuf *b, const char *s, size_t len)
{
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + len + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) abort();
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, len);
    b->len += len;
    b->p[b->len] = '\0';
}

void ts_sbuf_puts(struct ts_sbuf *b, const char *s)
{
    ts_sbuf_add(b, s, strlen(s));
}

void ts_sbuf_add_html(struct ts_sbuf *b, const char *s)
{
    for (const char *p = s; *p; p++) {
        switch (*p) {
        case '<': ts_sbuf_add(b, "&lt;", 4); break;
        case '>': ts_sbuf_add(b, "&gt;", 4); break;
        case '&': ts_sbuf_add(b, "&amp;", 5); break;
        case '"': ts_sbuf_add(b, "&quot;", 6); break;
        case '\'': ts_sbuf_add(b, "&#39;", 5); break;
        default: ts_sbuf_add(b, p, 1);
        }
    }
}

void ts_response_owned(struct ts_req *req, int status, const char *type, struct ts_sbuf *body)
{
    ts_response_start(req, status);
    ts_response_header(req, "Content-Type", type, strlen(type));
    ts_response_header(req, "Cache-Control", "no-store", 8);
    ts_response_end(req, body->len);
    if (req->head_only || body->len == 0) {
        free(body->p);
    } else {
        req->body_owned = body->p;
        ts_response_segment(req, body->p, 0, body->len);
    }
    *body = (struct ts_sbuf){0};
}

#define PAGE_MAX (64 * 1024)

const char *ts_response_error_page(const struct ts_req *req, int status)
{
    const struct ts_config *cfg = req->w->srv->cfg;
    for (size_t i = 0; i < cfg->nerror_pages; i++)
        if (cfg->error_pages[i].status == status) return cfg->error_pages[i].path;
    return NULL;
}

char *ts_response_read_page(const struct ts_req *req, const char *rel)
{
    int fd = ts_file_open_beneath(req->w->srv->rootfd, rel);
    if (fd < 0) return NULL;
    struct stat st;
    char *text = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
        st.st_size <= PAGE_MAX && (text = malloc((size_t)st.st_size + 1))) {
        ssize_t n = pread(fd, text, (size_t)st.st_size, 0);
        if (n <= 0) {
            free(text);
            text = NULL;
        } else {
            text[n] = '\0';
        }
    }
    close(fd);
    return text;
}

void ts_response_render(struct ts_sbuf *out, const char *tpl, const char *const *names,
                        const char *const *values, size_t n, const struct ts_sbuf *details)
{
    const char *p = tpl;
    for (;;) {
        const char *open = strstr(p, "{{");
        const char *close = open ? strstr(open + 2, "}}") : NULL;
        if (!close) break;
        ts_sbuf_add(out, p, (size_t)(open - p));
        const char *name = open + 2;
        size_t nl = (size_t)(close - name);
        while (nl && name[0] == ' ') name++, nl--;
        while (nl && name[nl - 1] == ' ') nl--;
        if (nl == 7 && memcmp(name, "details", 7) == 0 && details->len) {
            ts_sbuf_add(out, details->p, details->len);
        } else {
            for (size_t i = 0; i < n; i++)
                if (strlen(names[i]) == nl && memcmp(names[i], name, nl) == 0)
                    ts_sbuf_add_html(out, values[i]);
        }
        p = close + 2;
    }
    ts_sbuf_puts(out, p);
}

