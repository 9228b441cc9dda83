/* The neutral response and the built-in error pages. Headers are copied into an arena inside
 * the response (no allocation unless they outgrow it), for a codec to serialize afterwards. */
#include "response.h"
#include "config.h"
#include "fcache.h"
#include "file.h"
#include "gen.h"
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
    case 421: return "Misdirected Request";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    }
    return "Unknown";
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

void ts_response_init(struct ts_req *req)
{
    struct ts_response *r = &req->resp;
    r->status = 0;
    r->keep_alive = r->head_only = false;
    r->nhdrs = 0;
    r->content_length = TS_NO_LENGTH;
    r->heap = NULL;
    r->arena_len = 0;
    r->file = NULL;
    r->body_owned = NULL;
    r->nsegs = r->cur_seg = 0;
    r->body_left = 0;
}

/* Drops the body planned so far (a file already opened, say), keeping the headers. */
static void drop_body(struct ts_req *req)
{
    struct ts_response *r = &req->resp;
    if (r->file) {
        ts_fcache_release(req->ctx.w->fcache, r->file);
        r->file = NULL;
    }
    free(r->body_owned);
    r->body_owned = NULL;
    r->nsegs = r->cur_seg = 0;
    r->body_left = 0;
}

void ts_response_release(struct ts_req *req)
{
    drop_body(req);
    free(req->resp.heap);
    req->resp.heap = NULL;
}

static char *arena(struct ts_response *r)
{
    return r->heap ? r->heap : r->small;
}

/* Room for len more bytes in the arena, moving it to the heap once it outgrows small. */
static bool arena_room(struct ts_response *r, size_t len)
{
    size_t need = r->arena_len + len;
    if (need <= (r->heap ? TS_RESP_ARENA_MAX : TS_RESP_ARENA)) return true;
    if (need > TS_RESP_ARENA_MAX || r->heap) return false;
    r->heap = malloc(TS_RESP_ARENA_MAX);
    if (!r->heap) return false;
    memcpy(r->heap, r->small, r->arena_len);
    return true;
}

static uint16_t arena_add(struct ts_response *r, const char *s, size_t len)
{
    uint16_t off = (uint16_t)r->arena_len;
    memcpy(arena(r) + off, s, len);
    r->arena_len += (uint32_t)len;
    return off;
}

const struct ts_site *ts_req_site(const struct ts_req *req)
{
    return req->ctx.site ? req->ctx.site : &req->ctx.gen->cfg.sites[0];
}

int ts_req_rootfd(const struct ts_req *req)
{
    return req->ctx.gen->rootfds[req->ctx.site_idx];
}

void ts_response_start(struct ts_req *req, int status)
{
    struct ts_response *r = &req->resp;
    r->status = status;
    r->nhdrs = 0;
    r->arena_len = 0;
    r->content_length = TS_NO_LENGTH;
    const char *hsts = ts_req_site(req)->hsts;
    if (hsts && !req->ctx.plain) /* never over plain HTTP (RFC 6797 section 7.2) */
        ts_response_header(req, "Strict-Transport-Security", hsts, strlen(hsts));
}

void ts_response_header(struct ts_req *req, const char *name, const char *value, size_t len)
{
    struct ts_response *r = &req->resp;
    size_t nl = strlen(name);
    if (r->nhdrs == TS_RESP_MAX_HDRS || !arena_room(r, nl + len)) return;
    struct ts_resp_hdr *h = &r->hdrs[r->nhdrs++];
    h->name_len = (uint16_t)nl;
    h->name_off = arena_add(r, name, nl);
    h->value_len = (uint16_t)len;
    h->value_off = arena_add(r, value, len);
}

void ts_response_end(struct ts_req *req, uint64_t content_length)
{
    req->resp.content_length = content_length;
}

struct ts_str ts_response_hdr_name(const struct ts_response *resp, unsigned i)
{
    const char *base = resp->heap ? resp->heap : resp->small;
    return (struct ts_str){base + resp->hdrs[i].name_off, resp->hdrs[i].name_len};
}

struct ts_str ts_response_hdr_value(const struct ts_response *resp, unsigned i)
{
    const char *base = resp->heap ? resp->heap : resp->small;
    return (struct ts_str){base + resp->hdrs[i].value_off, resp->hdrs[i].value_len};
}

void ts_response_body(struct ts_req *req, const char *data, size_t len)
{
    ts_response_segment(req, data, 0, len);
}

void ts_response_segment(struct ts_req *req, const char *mem, uint64_t off, uint64_t len)
{
    struct ts_response *r = &req->resp;
    if (r->head_only || len == 0) return;
    if (r->nsegs == TS_MAX_SEGS) abort();                      /* callers stay within TS_MAX_SEGS */
    if (!mem && r->file && r->file->data) mem = r->file->data; /* held by the file cache */
    r->segs[r->nsegs++] = (struct ts_seg){mem, off, len};
    r->body_left += len;
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
    if (closes_connection(status)) req->resp.keep_alive = false;
    drop_body(req);
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
    if (req->resp.head_only || b.len == 0) {
        free(b.p);
        return;
    }
    req->resp.body_owned = b.p;
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
    if (req->resp.head_only || body->len == 0) {
        free(body->p);
    } else {
        req->resp.body_owned = body->p;
        ts_response_segment(req, body->p, 0, body->len);
    }
    *body = (struct ts_sbuf){0};
}

#define PAGE_MAX (64 * 1024)

const char *ts_response_error_page(const struct ts_req *req, int status)
{
    const struct ts_site *site = ts_req_site(req);
    for (size_t i = 0; i < site->nerror_pages; i++)
        if (site->error_pages[i].status == status) return site->error_pages[i].path;
    return NULL;
}

char *ts_response_read_page(const struct ts_req *req, const char *rel)
{
    int fd = ts_file_open_beneath(ts_req_rootfd(req), rel);
    if (fd < 0) return NULL;
    struct stat st;
    char *text = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && st.st_size <= PAGE_MAX &&
        (text = malloc((size_t)st.st_size + 1))) {
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
