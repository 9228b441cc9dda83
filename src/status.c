/* GET /status (JSON) and /metrics (Prometheus text) from the per-worker counters, summed when
 * read. One table describes every number once, for both formats. */
#include "status.h"
#include "config.h"
#include "gen.h"
#include "http.h"
#include "log.h"
#include "ocsp.h"
#include "response.h"
#include "tls.h"
#include "worker.h"

#include <assert.h>
#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Everything reported, summed over workers, plus what lives outside them. */
struct snapshot {
    struct ts_stats s;
    uint64_t rejected, uptime_s, workers;
    uint64_t cache_entries, cache_capacity, cache_hits, cache_misses, cache_timeouts,
        cache_evictions, cache_bytes, cache_max_bytes, cache_refused_oversized, cache_refused_full;
    uint64_t log_reopens, log_reopen_failures;
    uint64_t ticket_rotations, ticket_keys, ticket_key_age_s;
    uint64_t ocsp_stapled, ocsp_stale;
    uint64_t generation, reloads, reload_failures;
};

/* struct ts_stats is nothing but _Atomic uint64_t fields, so it can be summed as an array. */
static_assert(sizeof(struct ts_stats) % sizeof(uint64_t) == 0, "ts_stats holds only counters");

static void take_snapshot(struct ts_server *srv, struct snapshot *snap)
{
    memset(snap, 0, sizeof(*snap));
    enum { N = sizeof(struct ts_stats) / sizeof(uint64_t) };
    _Atomic uint64_t *sum = (_Atomic uint64_t *)&snap->s;
    for (int w = 0; w < srv->nworkers; w++) {
        _Atomic uint64_t *c = (_Atomic uint64_t *)&srv->workers[w].stats;
        for (int i = 0; i < N; i++) ts_stat_add(&sum[i], ts_stat_get(&c[i]));
    }
    snap->rejected = atomic_load_explicit(&srv->rejected, memory_order_relaxed);
    snap->uptime_s = (uint64_t)(time(NULL) - srv->started_at);
    snap->workers = (uint64_t)srv->nworkers;
    SSL_CTX *ctx = srv->ssl_ctx;
    snap->cache_entries = (uint64_t)SSL_CTX_sess_number(ctx);
    snap->cache_capacity = (uint64_t)SSL_CTX_sess_get_cache_size(ctx);
    snap->cache_hits = (uint64_t)SSL_CTX_sess_hits(ctx);
    snap->cache_misses = (uint64_t)SSL_CTX_sess_misses(ctx);
    snap->cache_timeouts = (uint64_t)SSL_CTX_sess_timeouts(ctx);
    snap->cache_evictions = (uint64_t)SSL_CTX_sess_cache_full(ctx);
    struct ts_tls_cache_usage u;
    ts_tls_cache_usage(&u);
    snap->cache_bytes = u.bytes;
    snap->cache_max_bytes = u.max_bytes;
    snap->cache_refused_oversized = u.refused_oversized;
    snap->cache_refused_full = u.refused_full;
    ts_log_reopen_counts(&snap->log_reopens, &snap->log_reopen_failures);
    struct ts_tls_ticket_info ti;
    ts_tls_ticket_info(ctx, &ti);
    snap->ticket_rotations = ti.rotations;
    snap->ticket_keys = ti.keys;
    snap->ticket_key_age_s = ti.current_age_s;
    ts_ocsp_counts(&snap->ocsp_stapled, &snap->ocsp_stale);
    snap->generation = atomic_load_explicit(&srv->generation, memory_order_relaxed);
    snap->reloads = atomic_load_explicit(&srv->reloads, memory_order_relaxed);
    snap->reload_failures = atomic_load_explicit(&srv->reload_failures, memory_order_relaxed);
}

enum kind { COUNTER, GAUGE };

/* One number: where it sits in the JSON ('/'-separated, since "TLSv1.2" has a dot), the
 * Prometheus family and label it becomes, and its offset in struct snapshot. Rows of one
 * family are adjacent. */
struct metric {
    const char *json;
    const char *family;
    const char *label; /* "name=\"value\"" or NULL */
    enum kind kind;
    size_t offset;
    const char *help; /* on the first row of a family */
};

#define S(field) offsetof(struct snapshot, s.field)
#define X(field) offsetof(struct snapshot, field)

static const struct metric metrics[] = {
    {"server/uptime_s", "tessera_uptime_seconds", NULL, GAUGE, X(uptime_s),
     "Seconds since the server started."},
    {"server/workers", "tessera_workers", NULL, GAUGE, X(workers), "Worker threads."},
    {"connections/accepted", "tessera_connections_accepted_total", NULL, COUNTER, S(accepted),
     "Connections handed to a worker."},
    {"connections/active", "tessera_connections_active", NULL, GAUGE, S(active),
     "Connections open now."},
    {"connections/idle", "tessera_connections_idle", NULL, GAUGE, S(idle),
     "Open connections waiting for a request."},
    {"connections/handshaking", "tessera_connections_handshaking", NULL, GAUGE, S(handshaking),
     "Connections in the TLS handshake."},
    {"connections/closed_clean", "tessera_connections_closed_total", "how=\"clean\"", COUNTER,
     S(closed_clean), "Closed connections by how they ended."},
    {"connections/closed_peer_eof", "tessera_connections_closed_total", "how=\"peer_eof\"", COUNTER,
     S(closed_peer_eof), NULL},
    {"connections/closed_timeout", "tessera_connections_closed_total", "how=\"timeout\"", COUNTER,
     S(closed_timeout), NULL},
    {"connections/closed_error", "tessera_connections_closed_total", "how=\"error\"", COUNTER,
     S(closed_error), NULL},
    {"connections/rejected", "tessera_connections_rejected_total", NULL, COUNTER, X(rejected),
     "Connections closed at accept (limits.max_connections, full queues)."},
    {"timeouts/handshake", "tessera_timeouts_total", "timeout=\"handshake\"", COUNTER,
     S(timeouts[0]), "Expired timers by kind."},
    {"timeouts/request_header", "tessera_timeouts_total", "timeout=\"request_header\"", COUNTER,
     S(timeouts[1]), NULL},
    {"timeouts/keepalive", "tessera_timeouts_total", "timeout=\"keepalive\"", COUNTER,
     S(timeouts[2]), NULL},
    {"timeouts/send", "tessera_timeouts_total", "timeout=\"send\"", COUNTER, S(timeouts[3]), NULL},
    {"timeouts/shutdown", "tessera_timeouts_total", "timeout=\"shutdown\"", COUNTER, S(timeouts[4]),
     NULL},
    {"requests/total", "tessera_requests_total", NULL, COUNTER, S(requests),
     "Requests answered or being answered."},
    {"requests/in_flight", "tessera_requests_in_flight", NULL, GAUGE, S(in_flight),
     "Requests being answered now."},
    {"requests/status/1xx", "tessera_responses_total", "class=\"1xx\"", COUNTER, S(status_class[1]),
     "Responses by status class."},
    {"requests/status/2xx", "tessera_responses_total", "class=\"2xx\"", COUNTER, S(status_class[2]),
     NULL},
    {"requests/status/3xx", "tessera_responses_total", "class=\"3xx\"", COUNTER, S(status_class[3]),
     NULL},
    {"requests/status/4xx", "tessera_responses_total", "class=\"4xx\"", COUNTER, S(status_class[4]),
     NULL},
    {"requests/status/5xx", "tessera_responses_total", "class=\"5xx\"", COUNTER, S(status_class[5]),
     NULL},
    {"http2/connections_http11", "tessera_connections_by_protocol_total", "protocol=\"http/1.1\"",
     COUNTER, S(conns_http11), "TLS connections by the application protocol ALPN chose."},
    {"http2/connections_h2", "tessera_connections_by_protocol_total", "protocol=\"h2\"", COUNTER,
     S(conns_h2), NULL},
    {"http2/requests_http11", "tessera_requests_by_protocol_total", "protocol=\"http/1.1\"",
     COUNTER, S(requests_http11), "Requests by protocol."},
    {"http2/requests_h2", "tessera_requests_by_protocol_total", "protocol=\"h2\"", COUNTER,
     S(requests_h2), NULL},
    {"http2/streams_open", "tessera_http2_streams_open", NULL, GAUGE, S(h2_streams_open),
     "HTTP/2 streams carrying a request now."},
    {"http2/goaway_sent", "tessera_http2_goaway_total", "dir=\"sent\"", COUNTER, S(h2_goaway_sent),
     "HTTP/2 GOAWAY frames sent and received."},
    {"http2/goaway_received", "tessera_http2_goaway_total", "dir=\"received\"", COUNTER,
     S(h2_goaway_received), NULL},
    {"http2/rst_stream_sent", "tessera_http2_rst_stream_total", "dir=\"sent\"", COUNTER,
     S(h2_rst_sent), "HTTP/2 RST_STREAM frames sent and received."},
    {"http2/rst_stream_received", "tessera_http2_rst_stream_total", "dir=\"received\"", COUNTER,
     S(h2_rst_received), NULL},
    {"bytes/received", "tessera_bytes_received_total", NULL, COUNTER, S(bytes_received),
     "Decrypted bytes received."},
    {"bytes/sent", "tessera_bytes_sent_total", NULL, COUNTER, S(bytes_sent),
     "Bytes of responses written to TLS."},
    {"tls/handshakes/full", "tessera_tls_handshakes_total", "result=\"full\"", COUNTER, S(hs_full),
     "TLS handshakes by result."},
    {"tls/handshakes/resumed", "tessera_tls_handshakes_total", "result=\"resumed\"", COUNTER,
     S(hs_resumed), NULL},
    {"tls/handshakes/failed", "tessera_tls_handshakes_total", "result=\"failed\"", COUNTER,
     S(hs_failed), NULL},
    {"tls/protocols/TLSv1.2", "tessera_tls_protocol_handshakes_total", "protocol=\"TLSv1.2\"",
     COUNTER, S(proto_tls12), "Completed TLS handshakes by protocol version."},
    {"tls/protocols/TLSv1.3", "tessera_tls_protocol_handshakes_total", "protocol=\"TLSv1.3\"",
     COUNTER, S(proto_tls13), NULL},
    {"tls/resumptions/tls12_session_id", "tessera_tls_resumptions_total",
     "mechanism=\"tls12_session_id\"", COUNTER, S(resumed_tls12_session_id),
     "Resumed handshakes by mechanism."},
    {"tls/resumptions/tls12_ticket", "tessera_tls_resumptions_total", "mechanism=\"tls12_ticket\"",
     COUNTER, S(resumed_tls12_ticket), NULL},
    {"tls/resumptions/tls13_ticket", "tessera_tls_resumptions_total", "mechanism=\"tls13_ticket\"",
     COUNTER, S(resumed_tls13_ticket), NULL},
    {"tls/session_cache/entries", "tessera_tls_session_cache_entries", NULL, GAUGE,
     X(cache_entries), "Sessions in the shared cache."},
    {"tls/session_cache/capacity", "tessera_tls_session_cache_capacity", NULL, GAUGE,
     X(cache_capacity), "Size of the shared session cache."},
    {"tls/session_cache/hits", "tessera_tls_session_cache_hits_total", NULL, COUNTER, X(cache_hits),
     "Sessions reused (OpenSSL's count)."},
    {"tls/session_cache/misses", "tessera_tls_session_cache_misses_total", NULL, COUNTER,
     X(cache_misses), "Session IDs offered but not found in the cache."},
    {"tls/session_cache/timeouts", "tessera_tls_session_cache_timeouts_total", NULL, COUNTER,
     X(cache_timeouts), "Sessions found expired."},
    {"tls/session_cache/evictions", "tessera_tls_session_cache_evictions_total", NULL, COUNTER,
     X(cache_evictions), "Sessions dropped because the cache was full."},
    {"tls/session_cache/bytes", "tessera_tls_session_cache_bytes", NULL, GAUGE, X(cache_bytes),
     "Estimated memory of the sessions the cache admitted."},
    {"tls/session_cache/max_bytes", "tessera_tls_session_cache_max_bytes", NULL, GAUGE,
     X(cache_max_bytes), "Memory budget of the shared session cache."},
    {"tls/session_cache/refused_oversized", "tessera_tls_session_cache_refused_total",
     "reason=\"oversized\"", COUNTER, X(cache_refused_oversized),
     "Sessions not cached, by reason."},
    {"tls/session_cache/refused_full", "tessera_tls_session_cache_refused_total", "reason=\"full\"",
     COUNTER, X(cache_refused_full), NULL},
    {"tls/client_certs/verified", "tessera_client_certs_total", "outcome=\"verified\"", COUNTER,
     S(cert_verified), "Connections by client certificate outcome."},
    {"tls/client_certs/absent", "tessera_client_certs_total", "outcome=\"absent\"", COUNTER,
     S(cert_absent), NULL},
    {"tls/client_certs/rejected", "tessera_client_certs_total", "outcome=\"rejected\"", COUNTER,
     S(cert_rejected), NULL},
    {"tls/client_certs/untrusted_accepted", "tessera_client_certs_total",
     "outcome=\"untrusted_accepted\"", COUNTER, S(cert_untrusted_accepted), NULL},
    {"tls/ticket_keys/rotations", "tessera_tls_ticket_key_rotations_total", NULL, COUNTER,
     X(ticket_rotations), "Generated session-ticket keys replaced by a new one."},
    {"tls/ticket_keys/keys", "tessera_tls_ticket_keys", NULL, GAUGE, X(ticket_keys),
     "Session-ticket keys that decrypt tickets now."},
    {"tls/ticket_keys/current_age_s", "tessera_tls_ticket_key_age_seconds", NULL, GAUGE,
     X(ticket_key_age_s), "Age of the session-ticket key that encrypts new tickets."},
    {"tls/ocsp/stapled", "tessera_tls_ocsp_staples_total", "result=\"stapled\"", COUNTER,
     X(ocsp_stapled), "Handshakes whose client asked for OCSP: stapled, or not (stale response)."},
    {"tls/ocsp/stale", "tessera_tls_ocsp_staples_total", "result=\"stale\"", COUNTER, X(ocsp_stale),
     NULL},
    {"reload/generation", "tessera_config_generation", NULL, GAUGE, X(generation),
     "Configuration generation: 1 at start, one more per successful reload (SIGHUP)."},
    {"reload/done", "tessera_reloads_total", NULL, COUNTER, X(reloads),
     "Reloads (SIGHUP) that replaced the configuration."},
    {"reload/failed", "tessera_reload_failures_total", NULL, COUNTER, X(reload_failures),
     "Reloads (SIGHUP) refused: the configuration in use stays."},
    {"log/reopens", "tessera_log_reopens_total", NULL, COUNTER, X(log_reopens),
     "Log reopens (SIGUSR1) that reopened every log file."},
    {"log/reopen_failures", "tessera_log_reopen_failures_total", NULL, COUNTER,
     X(log_reopen_failures), "Log files that could not be reopened (the old file stays in use)."},
    {"proxy_protocol/accepted", "tessera_proxy_protocol_accepted_total", NULL, COUNTER,
     S(proxy_accepted), "Connections whose PROXY protocol header was accepted."},
};

#define NMETRICS (sizeof(metrics) / sizeof(metrics[0]))

static uint64_t value_at(const struct snapshot *snap, size_t offset)
{
    uint64_t v;
    memcpy(&v, (const char *)snap + offset, sizeof(v)); /* plain read of a private copy */
    return v;
}

/* The object at a '/'-separated path under root, created as needed; *leaf gets the last
 * component. */
static cJSON *json_parent(cJSON *root, const char *path, char *leaf, size_t leaflen)
{
    cJSON *obj = root;
    const char *p = path;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        char name[64];
        snprintf(name, sizeof(name), "%.*s", (int)n, p);
        if (!slash) {
            snprintf(leaf, leaflen, "%s", name);
            return obj;
        }
        cJSON *next = cJSON_GetObjectItemCaseSensitive(obj, name);
        if (!next) next = cJSON_AddObjectToObject(obj, name);
        obj = next;
        p = slash + 1;
    }
}

static void json_set(cJSON *root, const char *path, double v)
{
    char leaf[64];
    cJSON *parent = json_parent(root, path, leaf, sizeof(leaf));
    cJSON_AddNumberToObject(parent, leaf, v);
}

static void add_reasons(cJSON *root, const char *path, const _Atomic uint64_t *values,
                        const char *const *names, int n)
{
    char leaf[64];
    cJSON *parent = json_parent(root, path, leaf, sizeof(leaf));
    cJSON *o = cJSON_AddObjectToObject(parent, leaf);
    for (int i = 0; i < n; i++)
        cJSON_AddNumberToObject(o, names[i], (double)ts_stat_get(&values[i]));
}

static const char *const client_auth_names[] = {"none", "optional", "optional_no_ca", "required"};

/* One site's counters summed over the workers. */
static void site_sum(struct ts_gen *gen, size_t site, struct ts_site_stats *out)
{
    enum { N = sizeof(struct ts_site_stats) / sizeof(uint64_t) };
    memset(out, 0, sizeof(*out));
    _Atomic uint64_t *sum = (_Atomic uint64_t *)out;
    for (int w = 0; w < gen->nworkers; w++) {
        _Atomic uint64_t *c = (_Atomic uint64_t *)ts_gen_site_stats(gen, w, (int)site);
        for (int i = 0; i < N; i++) ts_stat_add(&sum[i], ts_stat_get(&c[i]));
    }
}

/* The per-site counters with their JSON names and metric families, in one place. */
struct site_metric {
    const char *json, *family, *label, *help;
    size_t offset;
};
#define SS(field) offsetof(struct ts_site_stats, field)
static const struct site_metric site_metrics[] = {
    {"requests", "tessera_site_requests_total", NULL, "Requests per site.", SS(requests)},
    {"bytes", "tessera_site_bytes_total", NULL, "Response body bytes per site.", SS(bytes)},
    {"handshakes", "tessera_site_handshakes_total", "result=\"ok\"",
     "TLS handshakes per site (the site SNI chose) by result.", SS(handshakes)},
    {"handshakes_failed", "tessera_site_handshakes_total", "result=\"failed\"", NULL,
     SS(hs_failed)},
    {"client_certs/verified", "tessera_site_client_certs_total", "outcome=\"verified\"",
     "Client-certificate outcomes per site.", SS(cert_verified)},
    {"client_certs/absent", "tessera_site_client_certs_total", "outcome=\"absent\"", NULL,
     SS(cert_absent)},
    {"client_certs/rejected", "tessera_site_client_certs_total", "outcome=\"rejected\"", NULL,
     SS(cert_rejected)},
    {"client_certs/untrusted_accepted", "tessera_site_client_certs_total",
     "outcome=\"untrusted_accepted\"", NULL, SS(cert_untrusted_accepted)},
};
#define NSITE_METRICS (sizeof(site_metrics) / sizeof(site_metrics[0]))

static uint64_t site_value(const struct ts_site_stats *s, size_t offset)
{
    return ts_stat_get((const _Atomic uint64_t *)((const char *)s + offset));
}

/* The reload object's strings: when the last reload was, and why the last one failed. */
static void add_reload_strings(cJSON *root, struct ts_server *srv)
{
    cJSON *reload = cJSON_GetObjectItem(root, "reload");
    time_t at = (time_t)atomic_load_explicit(&srv->last_reload_at, memory_order_relaxed);
    char when[32];
    struct tm tm;
    if (at > 0 && gmtime_r(&at, &tm)) {
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        cJSON_AddStringToObject(reload, "last_at", when);
    } else {
        cJSON_AddNullToObject(reload, "last_at");
    }
    pthread_mutex_lock(&srv->reload_lock);
    if (srv->last_reload_error[0])
        cJSON_AddStringToObject(reload, "last_error", srv->last_reload_error);
    else
        cJSON_AddNullToObject(reload, "last_error");
    pthread_mutex_unlock(&srv->reload_lock);
}

/* gen: the newest generation, whose sites the table shows */
static char *status_json(struct ts_server *srv, struct ts_gen *gen, bool pretty)
{
    struct snapshot snap;
    take_snapshot(srv, &snap);
    const struct ts_config *cfg = &gen->cfg;
    cJSON *root = cJSON_CreateObject();
    cJSON *server = cJSON_AddObjectToObject(root, "server");
    char started[32];
    struct tm tm;
    gmtime_r(&srv->started_at, &tm);
    strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON_AddStringToObject(server, "name", TS_SERVER_NAME);
    cJSON_AddStringToObject(server, "version", TS_VERSION);
    cJSON_AddStringToObject(server, "openssl", OpenSSL_version(OPENSSL_VERSION));
    cJSON_AddNumberToObject(server, "pid", (double)getpid());
    cJSON_AddStringToObject(server, "started_at", started);
    for (size_t i = 0; i < NMETRICS; i++)
        json_set(root, metrics[i].json, (double)value_at(&snap, metrics[i].offset));
    add_reasons(root, "tls/handshakes/failure_reasons", snap.s.hs_fail, ts_stats_hs_fail_names,
                TS_HS_FAIL_N);
    add_reasons(root, "connections/closed_flood", snap.s.closed_flood, ts_stats_flood_names,
                TS_FLOOD_N);
    add_reasons(root, "http2/closed_flood", snap.s.h2_flood, ts_stats_h2_flood_names,
                TS_H2_FLOOD_N);
    add_reasons(root, "proxy_protocol/rejected", snap.s.proxy_rejected, ts_stats_proxy_reject_names,
                TS_PROXY_REJECT_N);
    /* index 0 is "verified" itself; the reasons are the ways of not being verified */
    add_reasons(root, "tls/client_certs/reasons", snap.s.cert_reason + 1,
                ts_stats_cert_reason_names + 1, TS_CERT_REASON_N - 1);
    cJSON_AddStringToObject(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "tls"), "client_certs"),
                            "mode", client_auth_names[cfg->tls.client_auth]);
    struct ts_tls_ticket_info ti;
    ts_tls_ticket_info(srv->ssl_ctx, &ti);
    cJSON_AddStringToObject(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "tls"), "ticket_keys"),
                            "source", ti.source);
    add_reload_strings(root, srv);
    /* only with named sites: a lone default site would repeat the totals */
    cJSON *sites = cfg->nsites > 1 ? cJSON_AddArrayToObject(root, "sites") : NULL;
    for (size_t i = 0; sites && i < cfg->nsites; i++) {
        const struct ts_site *site = &cfg->sites[i];
        struct ts_site_stats ss;
        site_sum(gen, i, &ss);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", site->name);
        cJSON *names = cJSON_AddArrayToObject(o, "server_names");
        for (size_t j = 0; j < site->nnames; j++)
            cJSON_AddItemToArray(names, cJSON_CreateString(site->names[j]));
        cJSON_AddStringToObject(o, "client_auth", client_auth_names[site->client_auth]);
        for (size_t m = 0; m < NSITE_METRICS; m++)
            json_set(o, site_metrics[m].json, (double)site_value(&ss, site_metrics[m].offset));
        cJSON_AddItemToArray(sites, o);
    }
    cJSON *workers = cJSON_AddArrayToObject(root, "workers");
    for (int i = 0; i < srv->nworkers; i++) {
        struct ts_worker *w = &srv->workers[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", i);
        cJSON_AddNumberToObject(o, "connections", (double)ts_stat_get(&w->stats.active));
        cJSON_AddNumberToObject(o, "requests", (double)ts_stat_get(&w->stats.requests));
        cJSON_AddNumberToObject(o, "queue_depth", ts_worker_queue_depth(w));
        cJSON_AddItemToArray(workers, o);
    }
    char *text = pretty ? cJSON_Print(root) : cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) abort();
    return text;
}

static void prom_family(struct ts_sbuf *b, const char *family, const char *help, enum kind kind)
{
    char line[256];
    snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n", family, help, family,
             kind == COUNTER ? "counter" : "gauge");
    ts_sbuf_puts(b, line);
}

static void prom_sample(struct ts_sbuf *b, const char *family, const char *label, uint64_t v)
{
    char line[512];
    snprintf(line, sizeof(line), "%s%s%s%s %llu\n", family, label ? "{" : "", label ? label : "",
             label ? "}" : "", (unsigned long long)v);
    ts_sbuf_puts(b, line);
}

static void prom_reasons(struct ts_sbuf *b, const char *family, const char *help,
                         const _Atomic uint64_t *values, const char *const *names, int n)
{
    prom_family(b, family, help, COUNTER);
    for (int i = 0; i < n; i++) {
        char label[64];
        snprintf(label, sizeof(label), "reason=\"%s\"", names[i]);
        prom_sample(b, family, label, ts_stat_get(&values[i]));
    }
}

static void status_metrics(struct ts_server *srv, struct ts_gen *gen, struct ts_sbuf *b)
{
    struct snapshot snap;
    take_snapshot(srv, &snap);
    char label[256];
    prom_family(b, "tessera_info", "Version of tessera and of OpenSSL.", GAUGE);
    snprintf(label, sizeof(label), "version=\"%s\",openssl=\"%s\"", TS_VERSION,
             OpenSSL_version(OPENSSL_VERSION));
    prom_sample(b, "tessera_info", label, 1);
    for (size_t i = 0; i < NMETRICS; i++) {
        const struct metric *m = &metrics[i];
        if (m->help) prom_family(b, m->family, m->help, m->kind);
        prom_sample(b, m->family, m->label, value_at(&snap, m->offset));
    }
    prom_reasons(b, "tessera_tls_handshake_failures_total", "Failed TLS handshakes by reason.",
                 snap.s.hs_fail, ts_stats_hs_fail_names, TS_HS_FAIL_N);
    prom_reasons(b, "tessera_connections_closed_flood_total",
                 "Connections closed for too many KeyUpdates or renegotiation attempts in a row.",
                 snap.s.closed_flood, ts_stats_flood_names, TS_FLOOD_N);
    prom_reasons(b, "tessera_http2_closed_flood_total",
                 "HTTP/2 connections ended with GOAWAY for abuse, by kind.", snap.s.h2_flood,
                 ts_stats_h2_flood_names, TS_H2_FLOOD_N);
    prom_reasons(b, "tessera_proxy_protocol_rejected_total",
                 "Connections closed for their PROXY protocol header, by reason.",
                 snap.s.proxy_rejected, ts_stats_proxy_reject_names, TS_PROXY_REJECT_N);
    prom_reasons(b, "tessera_client_cert_reasons_total",
                 "Client certificates that did not verify, by reason.", snap.s.cert_reason + 1,
                 ts_stats_cert_reason_names + 1, TS_CERT_REASON_N - 1);
    prom_family(b, "tessera_config_last_reload_timestamp_seconds",
                "When the configuration was last reloaded (Unix time; 0: never).", GAUGE);
    prom_sample(b, "tessera_config_last_reload_timestamp_seconds", NULL,
                (uint64_t)atomic_load_explicit(&srv->last_reload_at, memory_order_relaxed));
    const struct ts_config *cfg = &gen->cfg;
    for (size_t m = 0; cfg->nsites > 1 && m < NSITE_METRICS; m++) {
        const struct site_metric *sm = &site_metrics[m];
        if (sm->help) prom_family(b, sm->family, sm->help, COUNTER);
        for (size_t i = 0; i < cfg->nsites; i++) {
            struct ts_site_stats ss;
            site_sum(gen, i, &ss);
            /* names hold letters, digits, '-', '_', '.' and '*': nothing to escape */
            snprintf(label, sizeof(label), "site=\"%s\"%s%s", cfg->sites[i].name,
                     sm->label ? "," : "", sm->label ? sm->label : "");
            prom_sample(b, sm->family, label, site_value(&ss, sm->offset));
        }
    }
    static const char *const fams[][2] = {
        {"tessera_worker_connections", "Open connections per worker."},
        {"tessera_worker_requests_total", "Requests per worker."},
        {"tessera_worker_queue_depth", "Accepted sockets waiting for a worker."},
    };
    for (int f = 0; f < 3; f++) {
        prom_family(b, fams[f][0], fams[f][1], f == 1 ? COUNTER : GAUGE);
        for (int i = 0; i < srv->nworkers; i++) {
            struct ts_worker *w = &srv->workers[i];
            uint64_t v = f == 0   ? ts_stat_get(&w->stats.active)
                         : f == 1 ? ts_stat_get(&w->stats.requests)
                                  : ts_worker_queue_depth(w);
            snprintf(label, sizeof(label), "worker=\"%d\"", i);
            prom_sample(b, fams[f][0], label, v);
        }
    }
}

static bool allowed(const struct ts_req *req, const struct ts_config *cfg)
{
    for (size_t i = 0; i < cfg->status.nallow; i++)
        if (ts_cidr_contains(&cfg->status.allow[i], req->ctx.peer_family, req->ctx.peer_addr))
            return true;
    return false;
}

static bool query_has(struct ts_str q, const char *name)
{
    size_t nl = strlen(name);
    if (!q.p) return false; /* no query: NULL + 0 would be undefined */
    const char *p = q.p, *end = q.p + q.len;
    p++; /* '?' */
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(e - p));
        size_t kl = (size_t)((eq ? eq : e) - p);
        if (kl == nl && memcmp(p, name, nl) == 0) return true;
        p = e + 1;
    }
    return false;
}

bool ts_status_handle(struct ts_req *req, const char *rel)
{
    const struct ts_config *cfg = &req->ctx.gen->cfg;
    if (!cfg->status.enabled) return false;
    bool json = strcmp(rel, cfg->status.path + 1) == 0;
    bool prom = !json && strcmp(rel, cfg->status.metrics_path + 1) == 0;
    if (!json && !prom) return false;
    if (!allowed(req, cfg)) {
        ts_response_error(req, 403, "The status endpoint is not open to your address.");
        return true;
    }
    struct ts_sbuf b = {0};
    /* the sites as configured now, even on a connection accepted before a reload (a scraper's
     * keep-alive connection would otherwise never see a site added since) */
    struct ts_server *srv = req->ctx.w->srv;
    pthread_mutex_lock(&srv->reload_lock);
    struct ts_gen *now = ts_gen_ref(srv->gen ? srv->gen : req->ctx.gen);
    pthread_mutex_unlock(&srv->reload_lock);
    if (json) {
        char *text = status_json(srv, now, query_has(req->rq.query, "pretty"));
        ts_sbuf_puts(&b, text);
        ts_sbuf_add(&b, "\n", 1);
        cJSON_free(text);
        ts_response_owned(req, 200, "application/json", &b);
    } else {
        status_metrics(srv, now, &b);
        ts_response_owned(req, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
    }
    ts_gen_unref(now);
    return true;
}
