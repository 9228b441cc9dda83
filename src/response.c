/* Response headers and built-in error pages. Headers go straight into the connection's write
 * buffer, so the header block and the first body bytes leave in one TLS record. */
#include "response.h"
#include "config.h"
#include "http.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
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
    if (hsts) {
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
    req->body_bytes += len;
}

static bool closes_connection(int status)
{
    return status == 400 || status == 408 || status == 413 || status == 414 || status == 431 ||
           status >= 500;
}

void ts_response_error(struct ts_req *req, int status, const char *detail)
{
    char body[1024];
    const char *reason = ts_response_reason(status);
    int n = snprintf(body, sizeof(body),
                     "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                     "<title>%d %s</title><style>body{font:16px/1.5 system-ui,sans-serif;"
                     "max-width:40em;margin:4em auto;padding:0 1em;color:#222}h1{font-size:1.6em}"
                     "footer{color:#888;font-size:.85em}</style></head>\n<body><h1>%d %s</h1>\n"
                     "<p>%s</p>\n<footer>" TS_SERVER_NAME "</footer></body></html>\n",
                     status, reason, status, reason, detail ? detail : "");
    if (n < 0 || (size_t)n >= sizeof(body)) n = (int)strlen(body);
    if (closes_connection(status)) req->keep_alive = false;
    if (req->body_fd >= 0) {
        /* an error decided after a file was opened */
        close(req->body_fd);
        req->body_fd = -1;
        req->body_left = 0;
    }
    req->body_bytes = 0;
    ts_response_start(req, status);
    static const char html[] = "text/html; charset=utf-8";
    ts_response_header(req, "Content-Type", html, sizeof(html) - 1);
    if (status == 405) ts_response_header(req, "Allow", "GET, HEAD", 9);
    ts_response_header(req, "Cache-Control", "no-store", 8);
    ts_response_end(req, (uint64_t)n);
    ts_response_body(req, body, (size_t)n);
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
        req->body_mem = body->p;
        req->body_off = 0;
        req->body_left = body->len;
        req->body_bytes = body->len;
    }
    *body = (struct ts_sbuf){0};
}
