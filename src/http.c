/* llhttp glue and request routing. The parser's callbacks record each piece of the request as
 * a pointer into the read buffer: the buffer is only compacted between requests, so pieces
 * that arrive in several reads are still contiguous. */
#include "http.h"
#include "clientauth.h"
#include "config.h"
#include "file.h"
#include "response.h"
#include "status.h"
#include "tls.h"
#include "worker.h"

#include <ctype.h>
#include <limits.h>
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

/* The largest target accepted, for the request being parsed (set by ts_http_parse). */
static _Thread_local size_t cur_max_uri;

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
    struct ts_req *r = p->data;
    r->error = status;
    r->error_reason = reason;
    llhttp_set_error_reason(p, reason);
    return HPE_USER;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct ts_req *r = p->data;
    r->in_url = true;
    r->method = llhttp_get_method(p);
    /* known from here on: every answer to HEAD, errors found while parsing included, is
     * headers only */
    r->head_only = r->method == HTTP_HEAD;
    if (!extend(&r->target, at, len)) return fail(p, 400, "malformed request target");
    if (r->target.len > cur_max_uri) return fail(p, 414, "request target too long");
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
    struct ts_req *r = p->data;
    r->in_url = false;
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
    struct ts_req *r = p->data;
    if (!extend(&r->cur_field, at, len)) return fail(p, 400, "malformed header name");
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct ts_req *r = p->data;
    if (!extend(&r->cur_value, at, len)) return fail(p, 400, "obsolete line folding");
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    struct ts_req *r = p->data;
    for (int i = 0; i < TS_HDR_N; i++) {
        if (strlen(hdr_names[i]) == r->cur_field.len &&
            strncasecmp(hdr_names[i], r->cur_field.p, r->cur_field.len) == 0) {
            if (i == TS_HDR_HOST && ++r->nhost > 1) return fail(p, 400, "more than one Host");
            if (!r->cur_value.p) r->cur_value.p = r->cur_field.p; /* empty value */
            r->hdr[i] = r->cur_value;
            break;
        }
    }
    r->cur_field = (struct ts_str){0};
    r->cur_value = (struct ts_str){0};
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    struct ts_req *r = p->data;
    r->method = llhttp_get_method(p);
    r->head_only = r->method == HTTP_HEAD;
    r->http_minor = llhttp_get_http_minor(p);
    if (llhttp_get_http_major(p) == 0) return fail(p, 400, "a request line needs HTTP/1.x");
    if (llhttp_get_http_major(p) != 1) return fail(p, 505, "HTTP version not supported");
    if (r->http_minor >= 1 && r->nhost == 0) return fail(p, 400, "missing Host header");
    /* A static server takes no request bodies: answer at once and close, so a body of any
     * size is never read, let alone buffered. */
    if ((p->flags & (F_CHUNKED | F_TRANSFER_ENCODING)) ||
        ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0)) {
        r->has_body = true;
        r->complete = true;
        return HPE_PAUSED;
    }
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct ts_req *r = p->data;
    r->complete = true;
    return HPE_PAUSED; /* one request at a time: pipelined input waits its turn */
}

static const llhttp_settings_t settings = {
    .on_url = on_url,
    .on_url_complete = on_url_complete,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

void ts_http_begin(llhttp_t *parser, struct ts_req *req)
{
    memset(req, 0, sizeof(*req));
    llhttp_init(parser, HTTP_REQUEST, &settings);
    parser->data = req;
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
    return p == end && p - s < 32;
}

enum ts_http_parse ts_http_parse(llhttp_t *parser, struct ts_req *req, const char *data,
                                 size_t len, size_t *consumed, size_t max_uri)
{
    cur_max_uri = max_uri;
    if (!req->raw) req->raw = data;
    llhttp_errno_t e = llhttp_execute(parser, data, len);
    if (e == HPE_OK) {
        *consumed = len;
        return TS_HTTP_NEED_MORE;
    }
    const char *pos = llhttp_get_error_pos(parser);
    *consumed = pos && pos >= data && pos <= data + len ? (size_t)(pos - data) : len;
    if (e == HPE_PAUSED && req->complete) {
        llhttp_resume(parser);
        return TS_HTTP_REQUEST;
    }
    if (e == HPE_INVALID_METHOD && !req->error && method_token_open(req->raw, data + len)) {
        *consumed = len;
        return TS_HTTP_NEED_MORE;
    }
    if (!req->error) {
        req->error = e == HPE_INVALID_METHOD && is_method_token(req->raw, data + len) ? 501 : 400;
        req->error_reason = req->error == 501 ? "This server does not implement that method."
                                              : llhttp_get_error_reason(parser);
    }
    return TS_HTTP_ERROR;
}

/* Is a ";q=0" parameter among the item's parameters? */
static bool q_is_zero(const char *p, size_t len)
{
    for (size_t i = 0; i + 2 < len; i++) {
        if (p[i] != ';') continue;
        size_t j = i + 1;
        while (j < len && (p[j] == ' ' || p[j] == '\t')) j++;
        if (j + 2 <= len && (p[j] == 'q' || p[j] == 'Q') && p[j + 1] == '=') {
            j += 2;
            if (j < len && p[j] == '0') {
                j++;
                if (j < len && p[j] == '.') j++;
                while (j < len && p[j] == '0') j++;
                return j >= len || p[j] == ';' || p[j] == ' ';
            }
        }
    }
    return false;
}

bool ts_http_has_token(struct ts_str v, const char *token)
{
    size_t tl = strlen(token);
    size_t i = 0;
    while (i < v.len) {
        while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ',')) i++;
        size_t start = i;
        while (i < v.len && v.p[i] != ',') i++;
        size_t end = start;
        while (end < i && v.p[end] != ';') end++; /* the token, without parameters */
        size_t tend = end;
        while (tend > start && (v.p[tend - 1] == ' ' || v.p[tend - 1] == '\t')) tend--;
        if (tend - start == tl && strncasecmp(v.p + start, token, tl) == 0)
            return !q_is_zero(v.p + end, i - end);
    }
    return false;
}

/* The location rule covering a resolved path (longest prefix wins). A rule for "/dir/" also
 * covers "/dir", so the redirect to the slash is protected like what it leads to. */
static const struct ts_location *match_location(const struct ts_config *cfg, const char *rel)
{
    const struct ts_location *best = NULL;
    size_t rl = strlen(rel);
    for (size_t i = 0; i < cfg->nlocations; i++) {
        const struct ts_location *loc = &cfg->locations[i];
        const char *lp = loc->path + 1; /* rel has no leading '/' */
        size_t ll = loc->path_len - 1;
        bool m = (rl >= ll && memcmp(rel, lp, ll) == 0) ||
                 (ll > 0 && lp[ll - 1] == '/' && rl == ll - 1 && memcmp(rel, lp, rl) == 0);
        if (m && (!best || loc->path_len > best->path_len)) best = loc;
    }
    return best;
}

/* A segment starting with '.' (".git", ".env", ".htpasswd"): hidden unless dotfiles is
 * "allow". "/.well-known/" (RFC 8615: ACME challenges, security.txt) is always served, but
 * not a hidden name inside it. */
static bool is_hidden(const char *rel)
{
    if (strncmp(rel, ".well-known", 11) == 0 && (rel[11] == '/' || rel[11] == '\0')) rel += 11;
    for (const char *p = rel; *p; p++)
        if (*p == '.' && (p == rel || p[-1] == '/')) return true;
    return false;
}

static bool needs_cert(const struct ts_req *req, const struct ts_location *loc)
{
    return loc && loc->require_client_cert && !(req->cert && req->cert->verified);
}

int ts_http_access(const struct ts_req *req, const char *rel)
{
    const struct ts_config *cfg = req->w->srv->cfg;
    if (cfg->dotfiles == TS_DOTFILES_DENY && is_hidden(rel)) return 404;
    if (needs_cert(req, match_location(cfg, rel))) return 403;
    return 0;
}

void ts_http_refuse(struct ts_req *req, int status)
{
    if (status == 403)
        ts_clientauth_forbidden(req);
    else
        ts_response_error(req, 404, "The requested URL was not found on this server.");
}

/* http_redirect: every request, whatever its method, is sent to the same host and target
 * over https (the port is http_redirect.https_port, or the first listen port). */
static void redirect_to_https(struct ts_req *req, const struct ts_config *cfg)
{
    struct ts_str host = req->hdr[TS_HDR_HOST];
    req->keep_alive = false;
    size_t hl = host.len;
    if (hl && host.p[0] == '[') { /* [v6]:port */
        const char *close = memchr(host.p, ']', hl);
        hl = close ? (size_t)(close - host.p) + 1 : 0;
    } else {
        const char *colon = memchr(host.p ? host.p : "", ':', hl);
        if (colon) hl = (size_t)(colon - host.p);
    }
    bool ok = hl > 0 && hl < 256;
    for (size_t i = 0; ok && i < hl; i++)
        ok = isalnum((unsigned char)host.p[i]) || strchr(".-[]:_", host.p[i]);
    if (!ok) {
        ts_response_error(req, 400, "A Host header is needed to redirect to https.");
        return;
    }
    char loc[8192 + 300];
    int n = snprintf(loc, sizeof(loc), "https://%.*s", (int)hl, host.p);
    if (cfg->https_port != 443) n += snprintf(loc + n, sizeof(loc) - (size_t)n, ":%d", cfg->https_port);
    const char *target = req->target.p && req->target.p[0] == '/' ? req->target.p : "/";
    size_t tl = req->target.p && req->target.p[0] == '/' ? req->target.len : 1;
    if ((size_t)n + tl >= sizeof(loc)) {
        ts_response_error(req, 414, NULL);
        return;
    }
    memcpy(loc + n, target, tl);
    n += (int)tl;
    static const char body[] = "This site is served over https.\n";
    ts_response_start(req, 301);
    ts_response_header(req, "Location", loc, (size_t)n);
    ts_response_header(req, "Content-Type", "text/plain; charset=utf-8", 25);
    ts_response_end(req, sizeof(body) - 1);
    ts_response_body(req, body, sizeof(body) - 1);
}

void ts_http_handle(struct ts_req *req)
{
    const struct ts_config *cfg = req->w->srv->cfg;
    if (req->plain) {
        redirect_to_https(req, cfg);
        return;
    }
    /* a body is never read, so the connection cannot carry another request */
    if (req->has_body) req->keep_alive = false;
    if (req->method != HTTP_GET && req->method != HTTP_HEAD && req->method != HTTP_OPTIONS) {
        ts_response_error(req, 405, "This server answers GET, HEAD and OPTIONS.");
        return;
    }
    if (req->has_body) {
        ts_response_error(req, 413, "This server does not accept request bodies.");
        return;
    }
    if (req->method == HTTP_OPTIONS) {
        ts_response_start(req, 204);
        ts_response_header(req, "Allow", TS_ALLOW_METHODS, sizeof(TS_ALLOW_METHODS) - 1);
        ts_response_end(req, (uint64_t)-1);
        return;
    }
    /* Locations are matched on the decoded, normalized path: "/a/../private/" and
     * "/%70rivate/" are the same place as "/private/". */
    char rel[PATH_MAX];
    int st = ts_file_resolve(req->path.p, req->path.len, rel, sizeof(rel) - 16);
    if (st) {
        ts_response_error(req, st, st == 400 ? "The request target is not a valid path." : NULL);
        return;
    }
    const struct ts_location *loc = match_location(cfg, rel);
    if (needs_cert(req, loc)) {
        ts_clientauth_forbidden(req);
        return;
    }
    if (ts_status_handle(req, rel)) return; /* its paths are configured: never hidden */
    if (cfg->dotfiles == TS_DOTFILES_DENY && is_hidden(rel)) {
        ts_http_refuse(req, 404);
        return;
    }
    /* the file's resolved path is checked again once it is open (ts_http_access) */
    ts_file_serve(req, rel, sizeof(rel), loc);
}
