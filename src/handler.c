/* Routing and policy: what a parsed request is answered with, whatever codec parsed it.
 * Location rules are matched on the decoded, normalized path; the answer is a neutral
 * response (src/response.c) that the codec serializes. */
#include "handler.h"
#include "gen.h"
#include "clientauth.h"
#include "config.h"
#include "file.h"
#include "status.h"
#include "tls.h"
#include "worker.h"

#include <ctype.h>
#include <limits.h>
#include <llhttp.h>
#include <stdio.h>
#include <string.h>

/* The location rule covering a resolved path (longest prefix wins), matched at segment
 * boundaries: "/status" covers "/status" and "/status/..." but not "/status.html". A rule for
 * "/dir/" also covers "/dir", so the redirect to the slash is protected like what it leads to. */
static const struct ts_location *match_location(const struct ts_site *site, const char *rel)
{
    const struct ts_location *best = NULL;
    size_t rl = strlen(rel);
    for (size_t i = 0; i < site->nlocations; i++) {
        const struct ts_location *loc = &site->locations[i];
        const char *lp = loc->path + 1; /* rel has no leading '/' */
        size_t ll = loc->path_len - 1;
        bool m = (rl >= ll && memcmp(rel, lp, ll) == 0 &&
                  (ll == 0 || lp[ll - 1] == '/' || rel[ll] == '\0' || rel[ll] == '/')) ||
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
    return loc && loc->require_client_cert && !(req->ctx.cert && req->ctx.cert->verified);
}

int ts_handler_access(const struct ts_req *req, const char *rel)
{
    const struct ts_site *site = ts_req_site(req);
    if (site->dotfiles == TS_DOTFILES_DENY && is_hidden(rel)) return 404;
    if (needs_cert(req, match_location(site, rel))) return 403;
    return 0;
}

/* The name a request gives its target's host: the authority of an absolute-form target
 * ("GET https://b.example/x", which replaces Host: RFC 9112 section 3.2.2) without any
 * userinfo, else the Host header (HTTP/2: :authority). The port is still on it. */
static struct ts_str request_authority(const struct ts_request *rq)
{
    struct ts_str t = rq->target;
    size_t s = t.len >= 7 && strncasecmp(t.p, "http://", 7) == 0    ? 7
               : t.len >= 8 && strncasecmp(t.p, "https://", 8) == 0 ? 8
                                                                    : 0;
    if (!s) return rq->hdr[TS_HDR_HOST];
    size_t e = s;
    while (e < t.len && t.p[e] != '/' && t.p[e] != '?' && t.p[e] != '#') e++;
    const char *at = memrchr(t.p + s, '@', e - s);
    if (at) s = (size_t)(at - t.p) + 1;
    return (struct ts_str){t.p + s, e - s};
}

/* Whether the request names another site than the one its connection's handshake selected
 * (Host, or :authority in HTTP/2, without its port). Every request is served from the
 * connection's site whatever it names; answering 421 instead of serving the wrong site's
 * pages tells the client to open a connection of its own for that name, which then gets
 * that site's handshake (its certificate, and the client certificate it may require).
 * A name no site claims counts as the default site's, as it would in SNI: served on the
 * default site's connections, 421 on a named site's. */
static bool misdirected(const struct ts_req *req, const struct ts_config *cfg)
{
    struct ts_str host = request_authority(&req->rq);
    if (cfg->nsites < 2 || !host.p || host.len == 0) return false;
    size_t hl = host.len;
    if (host.p[0] == '[') {
        hl = 0; /* an IPv6 literal names no site */
    } else {
        const char *colon = memchr(host.p, ':', hl);
        if (colon) hl = (size_t)(colon - host.p);
    }
    int idx = hl ? ts_config_find_site(cfg, host.p, hl) : -1;
    if (idx < 0) idx = 0;
    return idx != req->ctx.site_idx;
}

/* http_redirect: every request, whatever its method, is sent to the same host and target
 * over https (the port is http_redirect.https_port, or the first listen port). */
static void redirect_to_https(struct ts_req *req, const struct ts_config *cfg)
{
    struct ts_str host = req->rq.hdr[TS_HDR_HOST];
    req->resp.keep_alive = false;
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
    if (cfg->https_port != 443)
        n += snprintf(loc + n, sizeof(loc) - (size_t)n, ":%d", cfg->https_port);
    struct ts_str t = req->rq.target;
    const char *target = t.p && t.p[0] == '/' ? t.p : "/";
    size_t tl = t.p && t.p[0] == '/' ? t.len : 1;
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

void ts_handler_handle(struct ts_req *req)
{
    const struct ts_config *cfg = &req->ctx.gen->cfg;
    const struct ts_site *site = ts_req_site(req);
    const struct ts_request *rq = &req->rq;
    if (req->ctx.plain) {
        redirect_to_https(req, cfg);
        return;
    }
    if (misdirected(req, cfg)) {
        ts_response_error(req, 421,
                          "This connection does not serve the host the request names: "
                          "open a new connection to it.");
        return;
    }
    /* a body is never read, so the connection cannot carry another request */
    if (rq->has_body) req->resp.keep_alive = false;
    if (rq->method != HTTP_GET && rq->method != HTTP_HEAD && rq->method != HTTP_OPTIONS) {
        ts_response_error(req, 405, "This server answers GET, HEAD and OPTIONS.");
        return;
    }
    if (rq->has_body) {
        ts_response_error(req, 413, "This server does not accept request bodies.");
        return;
    }
    if (rq->method == HTTP_OPTIONS) {
        ts_response_start(req, 204);
        ts_response_header(req, "Allow", TS_ALLOW_METHODS, sizeof(TS_ALLOW_METHODS) - 1);
        ts_response_end(req, TS_NO_LENGTH);
        return;
    }
    /* Locations are matched on the decoded, normalized path: "/a/../private/" and
     * "/%70rivate/" are the same place as "/private/". */
    char rel[PATH_MAX];
    int st = ts_http_resolve_path(rq->path.p, rq->path.len, rel, sizeof(rel) - 16);
    if (st) {
        ts_response_error(req, st, st == 400 ? "The request target is not a valid path." : NULL);
        return;
    }
    const struct ts_location *loc = match_location(site, rel);
    if (needs_cert(req, loc)) {
        ts_clientauth_forbidden(req);
        return;
    }
    if (ts_status_handle(req, rel)) return; /* its paths are configured: never hidden */
    if (site->dotfiles == TS_DOTFILES_DENY && is_hidden(rel)) {
        ts_file_refuse(req, 404);
        return;
    }
    /* the file's resolved path is checked again once it is open */
    ts_file_serve(req, rel, sizeof(rel), loc, ts_handler_access);
}
