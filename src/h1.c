/* The HTTP/1.1 codec. The parser's callbacks record each piece of the request as a pointer
 * into the read buffer: the buffer is only compacted between requests, so pieces that arrive in
 * several reads are still contiguous. The serializer writes the neutral response's header
 * block as HTTP/1.1 text, straight into the connection's write buffer. */
#include "h1.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const hdr_names[TS_HDR_N] = {
    [TS_HDR_HOST] = "host",
    [TS_HDR_CONNECTION] = "connection",
    [TS_HDR_IF_NONE_MATCH] = "if-none-match",
    [TS_HDR_IF_MODIFIED_SINCE] = "if-modified-since",
    [TS_HDR_RANGE] = "range",
    [TS_HDR_IF_RANGE] = "if-range",
    [TS_HDR_ACCEPT] = "accept",
    [TS_HDR_ACCEPT_ENCODING] = "accept-encoding",
    [TS_HDR_REFERER] = "referer",
    [TS_HDR_USER_AGENT] = "user-agent",
};

/* Appends a piece to a string in the read buffer. Pieces of one field are contiguous (the
 * buffer is never moved mid-request) unless llhttp skipped bytes inside it, which happens only
 * for obsolete line folding (a header value continued on a line starting with a space): that
 * is refused, as RFC 9112 allows and request smuggling defences require. */
static bool extend(struct ts_str *s, const char *at, size_t len)
{
    if (!s->p) s->p = at;
    if (s->p + s->len != at) return false;
    s->len += len;
    return true;
}

static int fail(llhttp_t *p, int status, const char *reason)
{
    struct ts_h1 *h = p->data;
    h->rq->error = status;
    h->rq->error_reason = reason;
    llhttp_set_error_reason(p, reason);
    return HPE_USER;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct ts_h1 *h = p->data;
    struct ts_request *r = h->rq;
    h->in_url = true;
    if (!extend(&r->target, at, len)) return fail(p, 400, "malformed request target");
    if (r->target.len > h->max_uri) return fail(p, 414, "request target too long");
    return 0;
}

/* The length of an absolute-form prefix ("http://host:port", scheme case-insensitive), or 0.
 * The authority ends at the first '/', '?' or '#' (RFC 3986 section 3.2). */
static size_t absolute_prefix(const char *t, size_t len)
{
    size_t s = len >= 7 && strncasecmp(t, "http://", 7) == 0    ? 7
               : len >= 8 && strncasecmp(t, "https://", 8) == 0 ? 8
                                                                : 0;
    if (!s) return 0;
    while (s < len && t[s] != '/' && t[s] != '?' && t[s] != '#') s++;
    return s;
}

static int on_url_complete(llhttp_t *p)
{
    struct ts_h1 *h = p->data;
    struct ts_request *r = h->rq;
    h->in_url = false;
    const char *t = r->target.p, *end = t + r->target.len;
    /* absolute-form ("https://host/path") names the same resource as its path */
    t += absolute_prefix(t, r->target.len);
    /* a fragment is never part of the resource (clients should not send one at all) */
    const char *hash = memchr(t, '#', (size_t)(end - t));
    if (hash) end = hash;
    const char *q = memchr(t, '?', (size_t)(end - t));
    r->path.p = t;
    r->path.len = (size_t)((q ? q : end) - t);
    r->query.p = q;
    r->query.len = q ? (size_t)(end - q) : 0;
    if (r->path.len == 0 && t != r->target.p) r->path = (struct ts_str){"/", 1};
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct ts_h1 *h = p->data;
    if (!extend(&h->cur_field, at, len)) return fail(p, 400, "malformed header name");
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct ts_h1 *h = p->data;
    if (!extend(&h->cur_value, at, len)) return fail(p, 400, "obsolete line folding");
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    struct ts_h1 *h = p->data;
    for (int i = 0; i < TS_HDR_N; i++) {
        if (strlen(hdr_names[i]) == h->cur_field.len &&
            strncasecmp(hdr_names[i], h->cur_field.p, h->cur_field.len) == 0) {
            if (i == TS_HDR_HOST && ++h->nhost > 1) return fail(p, 400, "more than one Host");
            if (!h->cur_value.p) h->cur_value.p = h->cur_field.p; /* empty value */
            h->rq->hdr[i] = h->cur_value;
            break;
        }
    }
    h->cur_field = (struct ts_str){0};
    h->cur_value = (struct ts_str){0};
    return 0;
}

/* The version as sent, for the access log: the one a request refused later was sent with,
 * and for "HTTP/1.2" the client's, not the 1.1 it is handled as. */
static void set_protocol(struct ts_request *r, unsigned major, unsigned minor)
{
    snprintf(r->protocol, sizeof(r->protocol), "HTTP/%u.%u", major % 10, minor % 10);
}

static int on_version_complete(llhttp_t *p)
{
    struct ts_h1 *h = p->data;
    set_protocol(h->rq, llhttp_get_http_major(p),
                 h->minor_sent ? h->minor_sent : llhttp_get_http_minor(p));
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    struct ts_h1 *h = p->data;
    struct ts_request *r = h->rq;
    r->method = llhttp_get_method(p);
    r->http_minor = llhttp_get_http_minor(p);
    if (llhttp_get_http_major(p) == 0) return fail(p, 400, "a request line needs HTTP/1.x");
    if (llhttp_get_http_major(p) != 1) return fail(p, 505, "HTTP version not supported");
    if (r->http_minor >= 1 && h->nhost == 0) return fail(p, 400, "missing Host header");
    /* A static server takes no request bodies: answer at once and close, so a body of any
     * size is never read, let alone buffered. */
    if ((p->flags & (F_CHUNKED | F_TRANSFER_ENCODING)) ||
        ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0)) {
        r->has_body = true;
        h->complete = true;
        return HPE_PAUSED;
    }
    return 0;
}

/* Known from here on, however reads split the request line: every answer to HEAD, errors
 * found while parsing included, is headers only. (Set when the URL began, a read ending
 * inside the target made HEAD known while the same bytes in one read, refused inside the
 * target, left it unknown.) */
static int on_method_complete(llhttp_t *p)
{
    struct ts_h1 *h = p->data;
    h->rq->method = llhttp_get_method(p);
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct ts_h1 *h = p->data;
    h->complete = true;
    return HPE_PAUSED; /* one request at a time: pipelined input waits its turn */
}

static const llhttp_settings_t settings = {
    .on_method_complete = on_method_complete,
    .on_url = on_url,
    .on_url_complete = on_url_complete,
    .on_version_complete = on_version_complete,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

void ts_h1_begin(struct ts_h1 *h1, struct ts_request *rq)
{
    memset(rq, 0, sizeof(*rq));
    memset(h1, 0, sizeof(*h1));
    llhttp_init(&h1->parser, HTTP_REQUEST, &settings);
    h1->parser.data = h1;
    h1->rq = rq;
}

static bool is_tchar(char c)
{
    return isalnum((unsigned char)c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A well-formed method llhttp does not know ("BREW / HTTP/1.1") is answered 501, not 400. */
static bool is_method_token(const char *p, const char *end)
{
    const char *s = p;
    while (p < end && p - s < 32 && is_tchar(*p)) p++;
    return p > s && p < end && *p == ' ';
}

/* llhttp refuses an unknown method at its first unexpected byte, but 501 or 400 depends on
 * what follows: while the token is still arriving, wait for more (llhttp keeps its error and
 * reports it again), so the answer does not depend on where a read split the request. */
static bool method_token_open(const char *p, const char *end)
{
    const char *s = p;
    while (p < end && p - s < 32 && is_tchar(*p)) p++;
    return p == end && p - s <= 32; /* 32 is still a method if a space follows */
}

static enum ts_h1_parse reparse_as_11(struct ts_h1 *h1, const char *data, size_t len,
                                      size_t *consumed, size_t max_uri, const char *digit);

enum ts_h1_parse ts_h1_parse(struct ts_h1 *h1, const char *data, size_t len, size_t *consumed,
                             size_t max_uri)
{
    llhttp_t *parser = &h1->parser;
    struct ts_request *rq = h1->rq;
    h1->max_uri = max_uri;
    if (!h1->raw) h1->raw = data;
    llhttp_errno_t e = llhttp_execute(parser, data, len);
    if (e == HPE_OK) {
        *consumed = len;
        return TS_H1_NEED_MORE;
    }
    const char *pos = llhttp_get_error_pos(parser);
    *consumed = pos && pos >= data && pos <= data + len ? (size_t)(pos - data) : len;
    if (e == HPE_PAUSED && h1->complete) {
        llhttp_resume(parser);
        return TS_H1_REQUEST;
    }
    if (e == HPE_INVALID_METHOD && !rq->error && method_token_open(h1->raw, data + len)) {
        *consumed = len;
        return TS_H1_NEED_MORE;
    }
    /* RFC 9110 section 6.2: a higher minor version of HTTP/1 ("HTTP/1.2") is handled as 1.1.
     * llhttp refuses it just past the minor digit, before any header; the request so far is
     * contiguous from h1->raw, so it is parsed again from there with "1" fed in place of that
     * digit (no callback keeps a pointer to the version's bytes). */
    if (e == HPE_INVALID_VERSION && !rq->error && !h1->minor_sent && pos && pos >= data &&
        pos - 2 >= h1->raw && llhttp_get_http_major(parser) == 1 &&
        llhttp_get_http_minor(parser) >= 2 && pos[-2] == '.' && isdigit((unsigned char)pos[-1]))
        return reparse_as_11(h1, data, len, consumed, max_uri, pos - 1);
    /* llhttp itself refuses versions other than 0.9, 1.0, 1.1 and 2.0: after a well-formed
     * "D.D" (the error just past the minor digit) with a major of 2 or more, or at a second
     * digit of the major (10.0), the answer is 505 as for 2.0; a malformed version stays 400.
     * The request so far is contiguous from h1->raw, so looking back is safe. */
    if (e == HPE_INVALID_VERSION && !rq->error && pos && pos >= data && pos - 2 >= h1->raw) {
        unsigned major = llhttp_get_http_major(parser);
        bool after_minor = isdigit((unsigned char)pos[-1]) && pos[-2] == '.';
        bool long_major = pos < data + len && isdigit((unsigned char)*pos) && pos[-2] == '/' &&
                          isdigit((unsigned char)pos[-1]) && major >= 1;
        if ((after_minor && major >= 2) || long_major) {
            rq->error = 505;
            rq->error_reason = "HTTP version not supported";
        }
        if (after_minor) set_protocol(rq, major, llhttp_get_http_minor(parser));
    }
    if (!rq->error) {
        rq->error = e == HPE_INVALID_METHOD && is_method_token(h1->raw, data + len) ? 501 : 400;
        rq->error_reason = rq->error == 501 ? "This server does not implement that method."
                                            : llhttp_get_error_reason(parser);
    }
    return TS_H1_ERROR;
}

static enum ts_h1_parse reparse_as_11(struct ts_h1 *h1, const char *data, size_t len,
                                      size_t *consumed, size_t max_uri, const char *digit)
{
    const char *raw = h1->raw;
    uint8_t sent = (uint8_t)(*digit - '0');
    ts_h1_begin(h1, h1->rq);
    h1->minor_sent = sent;
    h1->raw = raw;
    size_t used = 0;
    /* up to the digit, then "1": neither can complete a request, so both are consumed whole */
    if (ts_h1_parse(h1, raw, (size_t)(digit - raw), &used, max_uri) != TS_H1_NEED_MORE ||
        ts_h1_parse(h1, "1", 1, &used, max_uri) != TS_H1_NEED_MORE) {
        *consumed = (size_t)(digit - data);
        return TS_H1_ERROR;
    }
    enum ts_h1_parse r =
        ts_h1_parse(h1, digit + 1, (size_t)(data + len - digit - 1), &used, max_uri);
    *consumed = (size_t)(digit + 1 - data) + used;
    return r;
}

void ts_h1_overflow(struct ts_h1 *h1)
{
    struct ts_request *rq = h1->rq;
    rq->error = h1->in_url || !rq->path.p ? 414 : 431;
    rq->error_reason =
        rq->error == 414 ? "The request target is too long." : "The request header is too large.";
}

bool ts_h1_keep_alive(const struct ts_h1 *h1)
{
    /* The parse stopped at the end of the header block of a request with a body: the body
     * was never read, and only a close keeps it from being parsed as the next request. */
    return !h1->rq->has_body && llhttp_should_keep_alive(&h1->parser);
}

/* ---- the serializer ---- */

struct out {
    char *p;
    size_t len, cap;
};

static void put(struct out *o, const char *s, size_t len)
{
    if (o->len + len > o->cap) len = o->cap - o->len; /* never: the arena is smaller */
    memcpy(o->p + o->len, s, len);
    o->len += len;
}

static void put_str(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_u64(struct out *o, uint64_t v)
{
    char buf[24], *p = buf + sizeof(buf);
    do *--p = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    put(o, p, (size_t)(buf + sizeof(buf) - p));
}

size_t ts_h1_head(const struct ts_response *resp, uint8_t http_minor, const char *date, char *out,
                  size_t cap)
{
    struct out o = {out, 0, cap};
    char line[64];
    int n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\nDate: ", resp->status,
                     ts_response_reason(resp->status));
    put(&o, line, (size_t)n);
    put_str(&o, date);
    put_str(&o, "\r\nServer: " TS_SERVER_NAME "\r\n");
    for (unsigned i = 0; i < resp->nhdrs; i++) {
        struct ts_str name = ts_response_hdr_name(resp, i);
        struct ts_str value = ts_response_hdr_value(resp, i);
        put(&o, name.p, name.len);
        put(&o, ": ", 2);
        put(&o, value.p, value.len);
        put(&o, "\r\n", 2);
    }
    if (resp->content_length != TS_NO_LENGTH) {
        put_str(&o, "Content-Length: ");
        put_u64(&o, resp->content_length);
        put(&o, "\r\n", 2);
    }
    if (!resp->keep_alive)
        put_str(&o, "Connection: close\r\n");
    else if (http_minor == 0)
        put_str(&o, "Connection: keep-alive\r\n");
    put(&o, "\r\n", 2);
    return o.len;
}
