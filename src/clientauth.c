/* The 403 page for client certificates. IIS is the only other server that tells a client why
 * its certificate was refused; here the reason, and (unless tls.client_cert_detail is
 * "reason") the certificate's subject, issuer and validity, go into an HTML page or JSON. */
#include "clientauth.h"
#include "config.h"
#include "file.h"
#include "http.h"
#include "response.h"
#include "stats.h"
#include "tls.h"
#include "worker.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TEMPLATE "errors/403.html"

const char *ts_clientauth_message(int reason)
{
    switch ((enum ts_cert_reason)reason) {
    case TS_CERT_OK: return "The client certificate was verified.";
    case TS_CERT_NONE:
        return "No client certificate was presented. This area is open only to clients with a "
               "certificate from an authority this server trusts.";
    case TS_CERT_UNTRUSTED_ISSUER:
        return "The client certificate was not issued by an authority this server trusts.";
    case TS_CERT_EXPIRED: return "The client certificate has expired.";
    case TS_CERT_NOT_YET_VALID: return "The client certificate is not valid yet.";
    case TS_CERT_REVOKED: return "The client certificate has been revoked by its issuer.";
    case TS_CERT_WRONG_PURPOSE:
        return "The client certificate is not meant for client authentication.";
    case TS_CERT_INVALID:
    case TS_CERT_REASON_N: break;
    }
    return "The client certificate could not be verified.";
}

static bool wants_json(const struct ts_req *req)
{
    struct ts_str a = req->rq.hdr[TS_HDR_ACCEPT];
    return ts_http_has_token(a, "application/json") && !ts_http_has_token(a, "text/html");
}

/* What the page may say about the certificate, or NULL. */
static bool describe(const struct ts_req *req, struct ts_cert_desc *d)
{
    const struct ts_cert_info *ci = req->ctx.cert;
    if (!ci || !ci->peer) return false;
    if (ts_req_site(req)->client_cert_detail != TS_CERT_DETAIL_FULL) return false;
    /* the certificate the reason is about: an expired intermediate, not the leaf's dates; after
     * a resumption only the leaf is known, so a fault elsewhere shows no details */
    if (ci->failed_unknown) return false;
    ts_tls_cert_describe(ci->failed ? ci->failed : ci->peer, d);
    return true;
}

static void json_page(struct ts_req *req, int reason, const char *message, bool has_desc,
                      const struct ts_cert_desc *d)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "status", 403);
    cJSON_AddStringToObject(o, "error", "client_certificate");
    cJSON_AddStringToObject(o, "reason", ts_stats_cert_reason_names[reason]);
    cJSON_AddStringToObject(o, "message", message);
    if (reason == TS_CERT_INVALID && req->ctx.cert)
        cJSON_AddStringToObject(o, "verify_error",
                                ts_tls_verify_error_string(req->ctx.cert->verify_result));
    if (has_desc) {
        cJSON *c = cJSON_AddObjectToObject(o, "certificate");
        cJSON_AddStringToObject(c, "subject", d->subject);
        cJSON_AddStringToObject(c, "issuer", d->issuer);
        cJSON_AddStringToObject(c, "not_before", d->not_before);
        cJSON_AddStringToObject(c, "not_after", d->not_after);
        cJSON_AddStringToObject(c, "serial", d->serial);
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text) abort();
    struct ts_sbuf b = {0};
    ts_sbuf_puts(&b, text);
    ts_sbuf_add(&b, "\n", 1);
    cJSON_free(text);
    ts_response_owned(req, 403, "application/json", &b);
}

static void details_html(struct ts_sbuf *b, bool has_desc, const struct ts_cert_desc *d)
{
    if (!has_desc) return;
    static const char *const labels[] = {"Subject", "Issuer", "Valid from", "Valid until",
                                         "Serial number"};
    const char *values[] = {d->subject, d->issuer, d->not_before, d->not_after, d->serial};
    ts_sbuf_puts(b, "<dl class=\"certificate\">\n");
    for (int i = 0; i < 5; i++) {
        ts_sbuf_puts(b, "<dt>");
        ts_sbuf_puts(b, labels[i]);
        ts_sbuf_puts(b, "</dt><dd>");
        ts_sbuf_add_html(b, values[i]);
        ts_sbuf_puts(b, "</dd>\n");
    }
    ts_sbuf_puts(b, "</dl>\n");
}

static const char builtin[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<title>403 Forbidden: client certificate</title><style>"
    "body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em;"
    "color:#222}h1{font-size:1.6em}.reason{font-size:1.1em}dl{display:grid;"
    "grid-template-columns:max-content 1fr;gap:.3em 1em}dt{color:#666}dd{margin:0;"
    "font-family:ui-monospace,monospace;word-break:break-all}footer{color:#888;"
    "font-size:.85em;margin-top:2em}</style></head>\n<body>\n<h1>403 Forbidden</h1>\n"
    "<p class=\"reason\" data-reason=\"{{reason}}\">{{message}}</p>\n{{details}}"
    "<footer>tessera</footer>\n</body></html>\n";

void ts_clientauth_forbidden(struct ts_req *req)
{
    int reason = req->ctx.cert ? req->ctx.cert->reason : TS_CERT_NONE;
    if (reason == TS_CERT_OK) reason = TS_CERT_INVALID; /* cannot happen: verified opens */
    const char *message = ts_clientauth_message(reason);
    struct ts_cert_desc d;
    bool has_desc = describe(req, &d);
    if (wants_json(req)) {
        json_page(req, reason, message, has_desc, &d);
        if (has_desc) ts_tls_cert_desc_release(&d);
        return;
    }
    struct ts_sbuf details = {0}, page = {0};
    details_html(&details, has_desc, &d);
    static const char *const names[] = {"status", "reason",     "message",   "subject",
                                        "issuer", "not_before", "not_after", "serial"};
    const char *values[] = {"403",
                            ts_stats_cert_reason_names[reason],
                            message,
                            has_desc ? d.subject : "",
                            has_desc ? d.issuer : "",
                            has_desc ? d.not_before : "",
                            has_desc ? d.not_after : "",
                            has_desc ? d.serial : ""};
    /* the 403 error page, else the site's errors/403.html, else the built-in page */
    const char *conf = ts_response_error_page(req, 403);
    char *tpl = ts_response_read_page(req, conf ? conf + 1 : TEMPLATE);
    ts_response_render(&page, tpl ? tpl : builtin, names, values, sizeof(names) / sizeof(names[0]),
                       &details);
    free(tpl);
    free(details.p);
    if (has_desc) ts_tls_cert_desc_release(&d);
    ts_response_owned(req, 403, "text/html; charset=utf-8", &page);
}
