/* Configuration loading: a table of keys (type, field, bounds) walked over the cJSON tree, so
 * every key is checked the same way and every error names its full key path. */
#include "config.h"
#include "http.h"
#include "log.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

enum key_type { K_STRING, K_INT, K_BOOL, K_ENUM, K_OBJECT, K_CUSTOM };

struct key;
typedef int (*custom_parse_fn)(struct ts_config *cfg, void *base, const cJSON *item,
                               const char *path, char *err, size_t errlen);

/* A key of a JSON object; its field lives at offset in the struct the object fills (struct
 * ts_config for the top level and its sub-objects, struct ts_location for locations[]). */
struct key {
    const char *name;
    enum key_type type;
    size_t offset;
    long min, max;             /* K_INT bounds */
    const struct key *sub;     /* K_OBJECT: its keys, terminated by a NULL name */
    const char *const *values; /* K_ENUM: accepted strings, index stored as int */
    custom_parse_fn parse;     /* K_CUSTOM */
};

#define F(field) offsetof(struct ts_config, field)
#define L(field) offsetof(struct ts_location, field)
#define S(field) offsetof(struct ts_site, field)
#define C(field) offsetof(struct ts_site_cert, field)

static const char *const log_formats[] = {"combined", "json", NULL};
static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const client_auth_modes[] = {"none", "optional", "optional_no_ca", "required",
                                                NULL};
static const char *const cert_details[] = {"full", "reason", NULL};
static const char *const dotfile_modes[] = {"deny", "allow", NULL};

#define PARSER(name)                                                                               \
    static int name(struct ts_config *, void *, const cJSON *, const char *, char *, size_t)
PARSER(parse_listen);
PARSER(parse_protocols);
PARSER(parse_locations);
PARSER(parse_allow);
PARSER(parse_error_pages);
PARSER(parse_redirect_listen);
PARSER(parse_default_names);
PARSER(parse_sites);
PARSER(parse_site_names);
PARSER(parse_site_certs);
PARSER(parse_tls_certs);
PARSER(parse_site_locations);
PARSER(parse_site_error_pages);

static const struct key session_cache_keys[] = {
    {"size", K_INT, F(tls.session_cache_size), 1, 10000000, 0, 0, 0},
    {"timeout_s", K_INT, F(tls.session_timeout_s), 1, 86400 * 7, 0, 0, 0},
    {"max_bytes", K_INT, F(tls.session_cache_max_bytes), 65536, 2147483647L, 0, 0, 0},
    {"max_session_bytes", K_INT, F(tls.session_cache_max_session_bytes), 1024, 1048576, 0, 0, 0},
    {0},
};

static const struct key tls_keys[] = {
    {"certificate", K_STRING, F(tls.certificate), 0, 0, 0, 0, 0},
    {"key", K_STRING, F(tls.key), 0, 0, 0, 0, 0},
    {"ocsp_response", K_STRING, F(tls.ocsp_response), 0, 0, 0, 0, 0},
    {"certificates", K_CUSTOM, 0, 0, 0, 0, 0, parse_tls_certs},
    {"protocols", K_CUSTOM, 0, 0, 0, 0, 0, parse_protocols},
    {"session_cache", K_OBJECT, 0, 0, 0, session_cache_keys, 0, 0},
    {"session_tickets", K_BOOL, F(tls.session_tickets), 0, 0, 0, 0, 0},
    {"ticket_key_file", K_STRING, F(tls.ticket_key_file), 0, 0, 0, 0, 0},
    {"ticket_key_rotation_s", K_INT, F(tls.ticket_key_rotation_s), 1, 86400 * 7, 0, 0, 0},
    {"client_auth", K_ENUM, F(tls.client_auth), 0, 0, 0, client_auth_modes, 0},
    {"client_ca", K_STRING, F(tls.client_ca), 0, 0, 0, 0, 0},
    {"client_crl", K_STRING, F(tls.client_crl), 0, 0, 0, 0, 0},
    {"verify_depth", K_INT, F(tls.verify_depth), 1, 10, 0, 0, 0},
    {"max_client_chain_bytes", K_INT, F(tls.max_client_chain_bytes), 4096, 102400, 0, 0, 0},
    {"client_cert_detail", K_ENUM, F(tls.client_cert_detail), 0, 0, 0, cert_details, 0},
    {"strict_sni", K_BOOL, F(tls.strict_sni), 0, 0, 0, 0, 0},
    {0},
};

static const struct key site_cert_keys[] = {
    {"certificate", K_STRING, C(certificate), 0, 0, 0, 0, 0},
    {"key", K_STRING, C(key), 0, 0, 0, 0, 0},
    {"ocsp_response", K_STRING, C(ocsp_response), 0, 0, 0, 0, 0},
    {0},
};

/* The per-site keys: what the top level holds for the default site, flattened (client_ca
 * rather than tls.client_ca). */
static const struct key site_keys[] = {
    {"server_names", K_CUSTOM, 0, 0, 0, 0, 0, parse_site_names},
    {"root", K_STRING, S(root), 0, 0, 0, 0, 0},
    {"certificates", K_CUSTOM, 0, 0, 0, 0, 0, parse_site_certs},
    {"client_auth", K_ENUM, S(client_auth), 0, 0, 0, client_auth_modes, 0},
    {"client_ca", K_STRING, S(client_ca), 0, 0, 0, 0, 0},
    {"client_crl", K_STRING, S(client_crl), 0, 0, 0, 0, 0},
    {"verify_depth", K_INT, S(verify_depth), 1, 10, 0, 0, 0},
    {"client_cert_detail", K_ENUM, S(client_cert_detail), 0, 0, 0, cert_details, 0},
    {"locations", K_CUSTOM, 0, 0, 0, 0, 0, parse_site_locations},
    {"error_pages", K_CUSTOM, 0, 0, 0, 0, 0, parse_site_error_pages},
    {"hsts", K_STRING, S(hsts), 0, 0, 0, 0, 0},
    {"cache_control", K_STRING, S(cache_control), 0, 0, 0, 0, 0},
    {"precompressed", K_BOOL, S(precompressed), 0, 0, 0, 0, 0},
    {"dotfiles", K_ENUM, S(dotfiles), 0, 0, 0, dotfile_modes, 0},
    {0},
};

static const struct key status_keys[] = {
    {"enabled", K_BOOL, F(status.enabled), 0, 0, 0, 0, 0},
    {"path", K_STRING, F(status.path), 0, 0, 0, 0, 0},
    {"metrics_path", K_STRING, F(status.metrics_path), 0, 0, 0, 0, 0},
    {"allow", K_CUSTOM, 0, 0, 0, 0, 0, parse_allow},
    {0},
};

static const struct key location_keys[] = {
    {"path", K_STRING, L(path), 0, 0, 0, 0, 0},
    {"require_client_cert", K_BOOL, L(require_client_cert), 0, 0, 0, 0, 0},
    {"cache_control", K_STRING, L(cache_control), 0, 0, 0, 0, 0},
    {"autoindex", K_BOOL, L(autoindex), 0, 0, 0, 0, 0},
    {0},
};

static const struct key redirect_keys[] = {
    {"listen", K_CUSTOM, 0, 0, 0, 0, 0, parse_redirect_listen},
    {"https_port", K_INT, F(https_port), 1, 65535, 0, 0, 0},
    {0},
};

static const struct key timeout_keys[] = {
    {"handshake_s", K_INT, F(timeouts.handshake_s), 1, 3600, 0, 0, 0},
    {"request_header_s", K_INT, F(timeouts.request_header_s), 1, 3600, 0, 0, 0},
    {"keepalive_s", K_INT, F(timeouts.keepalive_s), 0, 3600, 0, 0, 0},
    {"send_s", K_INT, F(timeouts.send_s), 1, 3600, 0, 0, 0},
    {"shutdown_s", K_INT, F(timeouts.shutdown_s), 0, 60, 0, 0, 0},
    {"drain_s", K_INT, F(timeouts.drain_s), 1, 3600, 0, 0, 0},
    {0},
};

static const struct key limit_keys[] = {
    {"max_connections", K_INT, F(limits.max_connections), 1, 1000000, 0, 0, 0},
    {"max_header_bytes", K_INT, F(limits.max_header_bytes), 256, 1 << 20, 0, 0, 0},
    {"max_uri_bytes", K_INT, F(limits.max_uri_bytes), 16, 8192, 0, 0, 0},
    {"max_requests_per_connection", K_INT, F(limits.max_requests_per_connection), 0, INT_MAX, 0, 0,
     0},
    {0},
};

static const struct key file_cache_keys[] = {
    {"entries", K_INT, F(file_cache.entries), 0, 100000, 0, 0, 0},
    {"valid_ms", K_INT, F(file_cache.valid_ms), 0, 3600000, 0, 0, 0},
    {"content_max_file_bytes", K_INT, F(file_cache.content_max_file_bytes), 0, 64 << 20, 0, 0, 0},
    {"content_bytes", K_INT, F(file_cache.content_bytes), 0, INT_MAX, 0, 0, 0},
    {0},
};

static const struct key log_keys[] = {
    {"access", K_STRING, F(log.access), 0, 0, 0, 0, 0},
    {"format", K_ENUM, F(log.format), 0, 0, 0, log_formats, 0},
    {"error", K_STRING, F(log.error), 0, 0, 0, 0, 0},
    {"level", K_ENUM, F(log.level), 0, 0, 0, log_levels, 0},
    {"summary_interval_s", K_INT, F(log.summary_interval_s), 1, 3600, 0, 0, 0},
    {0},
};

static const struct key top_keys[] = {
    {"listen", K_CUSTOM, 0, 0, 0, 0, 0, parse_listen},
    {"root", K_STRING, F(root), 0, 0, 0, 0, 0},
    {"server_names", K_CUSTOM, 0, 0, 0, 0, 0, parse_default_names},
    {"sites", K_CUSTOM, 0, 0, 0, 0, 0, parse_sites},
    {"workers", K_INT, F(workers), 0, 256, 0, 0, 0},
    {"tls", K_OBJECT, 0, 0, 0, tls_keys, 0, 0},
    {"locations", K_CUSTOM, 0, 0, 0, 0, 0, parse_locations},
    {"status", K_OBJECT, 0, 0, 0, status_keys, 0, 0},
    {"hsts", K_STRING, F(hsts), 0, 0, 0, 0, 0},
    {"cache_control", K_STRING, F(cache_control), 0, 0, 0, 0, 0},
    {"precompressed", K_BOOL, F(precompressed), 0, 0, 0, 0, 0},
    {"http2", K_BOOL, F(http2), 0, 0, 0, 0, 0},
    {"http2_max_concurrent_streams", K_INT, F(http2_max_concurrent_streams), 1, 1000, 0, 0, 0},
    {"dotfiles", K_ENUM, F(dotfiles), 0, 0, 0, dotfile_modes, 0},
    {"error_pages", K_CUSTOM, 0, 0, 0, 0, 0, parse_error_pages},
    {"http_redirect", K_OBJECT, 0, 0, 0, redirect_keys, 0, 0},
    {"timeouts", K_OBJECT, 0, 0, 0, timeout_keys, 0, 0},
    {"limits", K_OBJECT, 0, 0, 0, limit_keys, 0, 0},
    {"file_cache", K_OBJECT, 0, 0, 0, file_cache_keys, 0, 0},
    {"log", K_OBJECT, 0, 0, 0, log_keys, 0, 0},
    {"user", K_STRING, F(user), 0, 0, 0, 0, 0},
    {"pid_file", K_STRING, F(pid_file), 0, 0, 0, 0, 0},
    {"group", K_STRING, F(group), 0, 0, 0, 0, 0},
    {0},
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Whether a member before item in obj has item's key. cJSON keeps every member of an object,
 * a repeated key included, and a lookup finds the first: a key given twice is refused, so the
 * value that applies is never one a reader of the file could miss. Quadratic, on objects of a
 * few dozen keys, once per load. */
static bool repeated_key(const cJSON *obj, const cJSON *item)
{
    for (const cJSON *prev = obj->child; prev != item; prev = prev->next)
        if (strcmp(prev->string, item->string) == 0) return true;
    return false;
}

static void set_string(char **field, const char *value)
{
    free(*field);
    *field = value ? strdup(value) : NULL;
    if (value && !*field) abort(); /* out of memory at start-up */
}

static void free_list(char ***list, size_t *n)
{
    for (size_t i = 0; i < *n; i++) free((*list)[i]);
    free(*list);
    *list = NULL;
    *n = 0;
}

static void free_listen(struct ts_config *cfg)
{
    for (size_t i = 0; i < cfg->nlisten; i++) free(cfg->listen_proxy[i].from);
    free(cfg->listen_proxy);
    cfg->listen_proxy = NULL;
    free_list(&cfg->listen, &cfg->nlisten);
}

static void add_to_list(char ***list, size_t *n, const char *spec)
{
    char **l = realloc(*list, (*n + 1) * sizeof(*l));
    if (!l) abort();
    *list = l;
    l[*n] = NULL;
    set_string(&l[(*n)++], spec);
}

/* Adds a listen entry without the PROXY protocol; returns its settings to fill. */
static struct ts_listen_proxy *add_listen(struct ts_config *cfg, const char *spec)
{
    struct ts_listen_proxy *lp = realloc(cfg->listen_proxy, (cfg->nlisten + 1) * sizeof(*lp));
    if (!lp) abort();
    cfg->listen_proxy = lp;
    memset(&lp[cfg->nlisten], 0, sizeof(*lp));
    add_to_list(&cfg->listen, &cfg->nlisten, spec);
    return &lp[cfg->nlisten - 1];
}

int ts_config_split_listen(const char *spec, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *colon;
    const char *h = spec;
    size_t hl;
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (!close || close[1] != ':') return -1;
        h = spec + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(spec, ':');
        if (!colon) return -1;
        hl = (size_t)(colon - spec);
    }
    if (hl == 0 || hl >= hostlen || strlen(colon + 1) == 0 || strlen(colon + 1) >= portlen)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    strcpy(port, colon + 1);
    if (strcmp(host, "*") == 0) strcpy(host, "0.0.0.0");
    return 0;
}

static int check_listen(const char *spec, const char *path, char *err, size_t errlen)
{
    char host[256], port[16];
    if (ts_config_split_listen(spec, host, sizeof(host), port, sizeof(port)) < 0)
        return fail(err, errlen, "%s: \"%s\" is not ADDR:PORT (use [::]:PORT for IPv6)", path,
                    spec);
    char *end;
    long p = strtol(port, &end, 10);
    if (*end || p < 0 || p > 65535) return fail(err, errlen, "%s: bad port in \"%s\"", path, spec);
    struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0)
        return fail(err, errlen, "%s: cannot resolve \"%s\": %s", path, spec, gai_strerror(rc));
    freeaddrinfo(res);
    return 0;
}

/* A string or a non-empty list of "ADDR:PORT" strings. */
static int parse_addresses(char ***list, size_t *n, const cJSON *item, const char *path, char *err,
                           size_t errlen)
{
    free_list(list, n);
    if (cJSON_IsString(item)) {
        add_to_list(list, n, item->valuestring);
        return 0;
    }
    if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) == 0)
        return fail(err, errlen, "%s: must be a string or a non-empty list of strings", path);
    const cJSON *e;
    cJSON_ArrayForEach(e, item)
    {
        if (!cJSON_IsString(e))
            return fail(err, errlen, "%s: every entry must be a string \"ADDR:PORT\"", path);
        add_to_list(list, n, e->valuestring);
    }
    return 0;
}

/* One "ADDR/PREFIX" of proxy_protocol_from, with an error that says what is wrong with it. */
static int parse_proxy_cidr(const cJSON *e, const char *path, struct ts_cidr *out, char *err,
                            size_t errlen)
{
    if (!cJSON_IsString(e))
        return fail(err, errlen, "%s: must be a string such as \"10.0.0.0/8\" or \"::1\"", path);
    if (ts_config_parse_cidr(e->valuestring, out) == 0) return 0;
    const char *slash = strchr(e->valuestring, '/');
    char addr[64];
    size_t n = slash ? (size_t)(slash - e->valuestring) : 0;
    unsigned char bin[16];
    if (slash && n < sizeof(addr)) {
        memcpy(addr, e->valuestring, n);
        addr[n] = '\0';
        int v4 = inet_pton(AF_INET, addr, bin) == 1;
        if (v4 || inet_pton(AF_INET6, addr, bin) == 1)
            return fail(err, errlen, "%s: bad prefix length in \"%s\" (at most /%d)", path,
                        e->valuestring, v4 ? 32 : 128);
    }
    return fail(err, errlen, "%s: \"%s\" is not an IPv4 or IPv6 address or CIDR block", path,
                e->valuestring);
}

/* {"address": "ADDR:PORT", "proxy_protocol": true, "proxy_protocol_from": [CIDR...]} */
static int parse_listen_object(struct ts_config *cfg, const cJSON *obj, const char *path, char *err,
                               size_t errlen)
{
    const cJSON *addr = cJSON_GetObjectItemCaseSensitive(obj, "address");
    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(obj, "proxy_protocol");
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(obj, "proxy_protocol_from");
    const cJSON *e;
    cJSON_ArrayForEach(e, obj)
    {
        if (strcmp(e->string, "address") != 0 && strcmp(e->string, "proxy_protocol") != 0 &&
            strcmp(e->string, "proxy_protocol_from") != 0)
            return fail(err, errlen,
                        "%s.%s: unknown key (address, proxy_protocol, "
                        "proxy_protocol_from)",
                        path, e->string);
        /* looked up by name below, which would take the first of two */
        if (repeated_key(obj, e)) return fail(err, errlen, "%s.%s: duplicate key", path, e->string);
    }
    if (!cJSON_IsString(addr))
        return fail(err, errlen, "%s.address: required, a string \"ADDR:PORT\"", path);
    if (pp && !cJSON_IsBool(pp))
        return fail(err, errlen, "%s.proxy_protocol: must be true or false", path);
    bool on = pp && cJSON_IsTrue(pp);
    if (from && !on)
        return fail(err, errlen, "%s.proxy_protocol_from: only with \"proxy_protocol\": true",
                    path);
    if (from && (!cJSON_IsArray(from) || cJSON_GetArraySize(from) == 0))
        return fail(err, errlen,
                    "%s.proxy_protocol_from: must be a non-empty list of "
                    "addresses or CIDR blocks",
                    path);
    struct ts_listen_proxy *lp = add_listen(cfg, addr->valuestring);
    lp->enabled = on;
    if (!on) return 0;
    /* Absent: the loopback addresses only, i.e. a proxy on this machine. Any other source
     * must be listed, so a forgotten key never lets the whole Internet name its address. */
    static const char *const loopback[] = {"127.0.0.0/8", "::1"};
    size_t n = from ? (size_t)cJSON_GetArraySize(from) : 2;
    lp->from = calloc(n, sizeof(*lp->from));
    if (!lp->from) abort();
    if (!from) {
        for (size_t i = 0; i < n; i++) ts_config_parse_cidr(loopback[i], &lp->from[i]);
        lp->nfrom = n;
        return 0;
    }
    size_t i = 0;
    cJSON_ArrayForEach(e, from)
    {
        char sub[256];
        snprintf(sub, sizeof(sub), "%s.proxy_protocol_from[%zu]", path, i);
        if (parse_proxy_cidr(e, sub, &lp->from[i], err, errlen) < 0) return -1;
        lp->nfrom = ++i;
    }
    return 0;
}

/* A string, an object, or a non-empty list of them. */
static int parse_listen(struct ts_config *cfg, void *base, const cJSON *item, const char *path,
                        char *err, size_t errlen)
{
    (void)base;
    free_listen(cfg);
    if (cJSON_IsString(item)) {
        add_listen(cfg, item->valuestring);
        return 0;
    }
    if (cJSON_IsObject(item)) return parse_listen_object(cfg, item, path, err, errlen);
    if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) == 0)
        return fail(err, errlen,
                    "%s: must be a string or a non-empty list of strings and "
                    "objects",
                    path);
    const cJSON *e;
    size_t i = 0;
    cJSON_ArrayForEach(e, item)
    {
        char sub[256];
        snprintf(sub, sizeof(sub), "%s[%zu]", path, i++);
        if (cJSON_IsString(e))
            add_listen(cfg, e->valuestring);
        else if (!cJSON_IsObject(e))
            return fail(err, errlen,
                        "%s: every entry must be a string \"ADDR:PORT\" or an "
                        "object (%s)",
                        path, sub);
        else if (parse_listen_object(cfg, e, sub, err, errlen) < 0)
            return -1;
    }
    return 0;
}

static int parse_redirect_listen(struct ts_config *cfg, void *base, const cJSON *item,
                                 const char *path, char *err, size_t errlen)
{
    (void)base;
    return parse_addresses(&cfg->redirect_listen, &cfg->nredirect_listen, item, path, err, errlen);
}

static void free_error_pages(struct ts_error_page **pages, size_t *npages)
{
    for (size_t i = 0; i < *npages; i++) free((*pages)[i].path);
    free(*pages);
    *pages = NULL;
    *npages = 0;
}

static int parse_page_list(struct ts_error_page **pages, size_t *npages, const cJSON *item,
                           const char *path, char *err, size_t errlen)
{
    free_error_pages(pages, npages);
    if (!cJSON_IsObject(item))
        return fail(err, errlen, "%s: must be an object such as {\"404\": \"/errors/404.html\"}",
                    path);
    size_t n = (size_t)cJSON_GetArraySize(item);
    *pages = calloc(n ? n : 1, sizeof(**pages));
    if (!*pages) abort();
    const cJSON *e;
    cJSON_ArrayForEach(e, item)
    {
        char *end;
        long code = strtol(e->string, &end, 10);
        if (*end || strlen(e->string) != 3 || code < 400 || code > 599)
            return fail(err, errlen, "%s.%s: not an error status (400 to 599)", path, e->string);
        /* three digits, so one status has one spelling: equal statuses are equal keys */
        if (repeated_key(item, e))
            return fail(err, errlen, "%s.%s: duplicate key", path, e->string);
        if (!cJSON_IsString(e) || e->valuestring[0] != '/')
            return fail(err, errlen, "%s.%s: must be a path under root starting with \"/\"", path,
                        e->string);
        struct ts_error_page *pg = &(*pages)[(*npages)++];
        pg->status = (int)code;
        set_string(&pg->path, e->valuestring);
    }
    return 0;
}

static int parse_error_pages(struct ts_config *cfg, void *base, const cJSON *item, const char *path,
                             char *err, size_t errlen)
{
    (void)base;
    return parse_page_list(&cfg->error_pages, &cfg->nerror_pages, item, path, err, errlen);
}

static int parse_site_error_pages(struct ts_config *cfg, void *base, const cJSON *item,
                                  const char *path, char *err, size_t errlen)
{
    (void)cfg;
    struct ts_site *site = base;
    return parse_page_list(&site->error_pages, &site->nerror_pages, item, path, err, errlen);
}

static int parse_protocols(struct ts_config *cfg, void *base, const cJSON *item, const char *path,
                           char *err, size_t errlen)
{
    (void)base;
    if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) == 0)
        return fail(err, errlen, "%s: must be a non-empty list such as [\"TLSv1.2\", \"TLSv1.3\"]",
                    path);
    int min = 0, max = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, item)
    {
        int v;
        if (cJSON_IsString(e) && strcmp(e->valuestring, "TLSv1.2") == 0)
            v = TLS1_2_VERSION;
        else if (cJSON_IsString(e) && strcmp(e->valuestring, "TLSv1.3") == 0)
            v = TLS1_3_VERSION;
        else
            return fail(err, errlen,
                        "%s: unsupported protocol %s%s%s (supported: TLSv1.2, TLSv1.3)", path,
                        cJSON_IsString(e) ? "\"" : "",
                        cJSON_IsString(e) ? e->valuestring : "(not a string)",
                        cJSON_IsString(e) ? "\"" : "");
        if (!min || v < min) min = v;
        if (v > max) max = v;
    }
    cfg->tls.min_version = min;
    cfg->tls.max_version = max;
    return 0;
}

static void free_locations(struct ts_location **locs, size_t *nlocs)
{
    for (size_t i = 0; i < *nlocs; i++) {
        free((*locs)[i].path);
        free((*locs)[i].cache_control);
    }
    free(*locs);
    *locs = NULL;
    *nlocs = 0;
}

static int walk(struct ts_config *cfg, void *base, const cJSON *obj, const struct key *keys,
                const char *prefix, char *err, size_t errlen);

/* Whether two rules of a site cover exactly the same request paths. The handler applies one
 * rule per request, the longest matching prefix, so one of the two would never apply: between
 * equal paths the first in the list wins, and a require_client_cert written second protects
 * nothing (nginx refuses the same with "duplicate location"). Paths are compared as written,
 * since the matcher compares them as written with the decoded, normalized request path, but
 * for one trailing slash: matched at segment boundaries, "/dir" covers "/dir" and "/dir/...",
 * and "/dir/" covers "/dir/..." and, for the redirect to the slash, "/dir" too. They are one
 * rule written twice, where "/dir/", longer, always wins and "/dir" is dead: refused as well.
 * Rules that nest ("/a/" and "/a/b/") or differ otherwise (in case, "/a" and "/ab") cover
 * different paths: which one applies depends on the request, never on the order. */
static bool same_paths(const struct ts_location *a, const struct ts_location *b)
{
    size_t al = a->path_len, bl = b->path_len;
    if (al > 1 && a->path[al - 1] == '/') al--;
    if (bl > 1 && b->path[bl - 1] == '/') bl--;
    return al == bl && memcmp(a->path, b->path, al) == 0;
}

/* A location is matched against the request path as ts_http_resolve_path leaves it (decoded,
 * without empty, "." and ".." segments), so a path written in any other form ("/%70rivate/",
 * "/a//b/", "/a/../b/") never matches the requests it names, and a require_client_cert on it
 * protects nothing. Such a path is refused with the form to write, found by that very function;
 * one no request path can resolve to, with the reason. The path is read as a request path is,
 * so '%' starts an escape: a '%' in a location path is always refused, and a name with '%' in
 * it cannot be written (a rule for a directory above it covers it). */
static int check_location_path(const char *p, const char *at, char *err, size_t errlen)
{
    size_t len = strlen(p);
    char *norm = malloc(len + 2); /* decoding only shortens: never 414 */
    if (!norm) abort();
    norm[0] = '/';
    int rc = 0;
    if (ts_http_resolve_path(p, len, norm + 1, len + 1) != 0) {
        /* why it was refused: a bad escape, %2F or %00, or a ".." above the root */
        for (const char *q = strchr(p, '%'); q && rc == 0; q = strchr(q + 1, '%')) {
            if (!isxdigit((unsigned char)q[1]) || !isxdigit((unsigned char)q[2]))
                rc = fail(err, errlen,
                          "%s.path: \"%s\" is not in normal form: '%%' is not followed by two "
                          "hex digits, and a location cannot name a path with '%%' in it",
                          at, p);
            else if ((q[1] == '2' && (q[2] == 'f' || q[2] == 'F')) || (q[1] == '0' && q[2] == '0'))
                rc = fail(err, errlen,
                          "%s.path: \"%s\" can never match: a request path with an encoded '/' "
                          "or NUL (%%2F, %%00) is refused",
                          at, p);
        }
        if (rc == 0)
            rc = fail(err, errlen,
                      "%s.path: \"%s\" can never match: a \"..\" in it leads above the root, "
                      "and a request path that does is refused",
                      at, p);
    } else if (strcmp(norm, p) != 0) {
        /* without '%', the normal form is its own normal form */
        if (strchr(norm, '%'))
            rc = fail(err, errlen,
                      "%s.path: \"%s\" is not in normal form, and its normal form \"%s\" cannot "
                      "be written: a location cannot name a path with '%%' in it",
                      at, p, norm);
        else
            rc = fail(err, errlen,
                      "%s.path: \"%s\" is not in normal form: write \"%s\" (locations are "
                      "matched against the request path decoded and normalized)",
                      at, p, norm);
    }
    free(norm);
    return rc;
}

static int parse_location_list(struct ts_config *cfg, struct ts_location **locs, size_t *nlocs,
                               const cJSON *item, const char *path, char *err, size_t errlen)
{
    free_locations(locs, nlocs);
    if (!cJSON_IsArray(item))
        return fail(err, errlen,
                    "%s: must be a list of objects such as "
                    "{\"path\": \"/private/\", \"require_client_cert\": true}",
                    path);
    size_t n = (size_t)cJSON_GetArraySize(item);
    *locs = calloc(n ? n : 1, sizeof(**locs));
    if (!*locs) abort();
    const cJSON *e;
    cJSON_ArrayForEach(e, item)
    {
        char at[192];
        snprintf(at, sizeof(at), "%s[%zu]", path, *nlocs);
        struct ts_location *loc = &(*locs)[(*nlocs)++];
        if (!cJSON_IsObject(e)) return fail(err, errlen, "%s: must be an object", at);
        if (walk(cfg, loc, e, location_keys, at, err, errlen) < 0) return -1;
        if (!loc->path || loc->path[0] != '/')
            return fail(err, errlen, "%s.path: must be a URL path starting with \"/\"", at);
        if (check_location_path(loc->path, at, err, errlen) < 0) return -1;
        loc->path_len = strlen(loc->path);
        for (size_t j = 0; j + 1 < *nlocs; j++) {
            const struct ts_location *prev = &(*locs)[j];
            if (!same_paths(prev, loc)) continue;
            if (strcmp(prev->path, loc->path) == 0)
                return fail(err, errlen, "%s.path: \"%s\" duplicates locations[%zu].path", at,
                            loc->path, j);
            const struct ts_location *dir = loc->path_len > prev->path_len ? loc : prev;
            return fail(err, errlen,
                        "%s.path: \"%s\" duplicates locations[%zu].path \"%s\" (a rule for "
                        "\"%s\" also covers \"%.*s\": both cover the same paths)",
                        at, loc->path, j, prev->path, dir->path, (int)dir->path_len - 1, dir->path);
        }
    }
    return 0;
}

static int parse_locations(struct ts_config *cfg, void *base, const cJSON *item, const char *path,
                           char *err, size_t errlen)
{
    (void)base;
    return parse_location_list(cfg, &cfg->locations, &cfg->nlocations, item, path, err, errlen);
}

static int parse_site_locations(struct ts_config *cfg, void *base, const cJSON *item,
                                const char *path, char *err, size_t errlen)
{
    struct ts_site *site = base;
    return parse_location_list(cfg, &site->locations, &site->nlocations, item, path, err, errlen);
}

/* ---- sites ---- */

/* A server name as configured: lowercase, one trailing dot dropped; labels of letters,
 * digits, '-' and '_' (1 to 63 bytes, 253 in all); a wildcard is "*." before at least one
 * label and stands for exactly one label. Returns the normalized name (malloc'ed) or NULL. */
static char *normalize_name(const char *in)
{
    size_t len = strlen(in);
    if (len && in[len - 1] == '.') len--;
    if (len == 0 || len > 253) return NULL;
    char *out = malloc(len + 1);
    if (!out) abort();
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '*') {
            /* only as the whole first label, followed by a dot and more */
            if (i != 0 || len < 3 || in[1] != '.') goto bad;
            out[i] = '*';
            label = 1;
            continue;
        }
        if (c == '.') {
            if (label == 0) goto bad;
            label = 0;
        } else if (isalnum(c) || c == '-' || c == '_') {
            if (++label > 63) goto bad;
            c = (unsigned char)tolower(c);
        } else {
            goto bad;
        }
        out[i] = (char)c;
    }
    if (label == 0) goto bad;
    out[len] = '\0';
    return out;
bad:
    free(out);
    return NULL;
}

static int parse_name_list(char ***list, size_t *n, const cJSON *item, const char *path, char *err,
                           size_t errlen)
{
    free_list(list, n);
    if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) == 0)
        return fail(err, errlen,
                    "%s: must be a non-empty list of names such as "
                    "[\"example.com\", \"*.example.com\"]",
                    path);
    const cJSON *e;
    size_t i = 0;
    cJSON_ArrayForEach(e, item)
    {
        char *name = cJSON_IsString(e) ? normalize_name(e->valuestring) : NULL;
        if (!name)
            return fail(err, errlen,
                        "%s[%zu]: not a host name (letters, digits, '-', '_' "
                        "and dots; a wildcard only as \"*.\" before a name)",
                        path, i);
        char **l = realloc(*list, (*n + 1) * sizeof(*l));
        if (!l) abort();
        *list = l;
        l[(*n)++] = name;
        i++;
    }
    return 0;
}

static int parse_default_names(struct ts_config *cfg, void *base, const cJSON *item,
                               const char *path, char *err, size_t errlen)
{
    (void)base;
    return parse_name_list(&cfg->server_names, &cfg->nserver_names, item, path, err, errlen);
}

static int parse_site_names(struct ts_config *cfg, void *base, const cJSON *item, const char *path,
                            char *err, size_t errlen)
{
    (void)cfg;
    struct ts_site *site = base;
    return parse_name_list(&site->names, &site->nnames, item, path, err, errlen);
}

static void free_cert_list(struct ts_site_cert **certs, size_t *n, bool owned)
{
    for (size_t i = 0; i < *n && owned; i++) {
        free((*certs)[i].certificate);
        free((*certs)[i].key);
        free((*certs)[i].ocsp_response);
    }
    free(*certs);
    *certs = NULL;
    *n = 0;
}

static void free_site_certs(struct ts_site *site)
{
    free_cert_list(&site->certs, &site->ncerts, !site->borrowed);
}

/* A list of 1 to 3 certificates (one per key type: ECDSA, RSA...), each {certificate, key,
 * ocsp_response}: a site's "certificates", and the default site's tls.certificates. */
static int parse_cert_list(struct ts_config *cfg, struct ts_site_cert **certs, size_t *ncerts,
                           const cJSON *item, const char *path, char *err, size_t errlen)
{
    free_cert_list(certs, ncerts, true);
    int n = cJSON_IsArray(item) ? cJSON_GetArraySize(item) : 0;
    if (n < 1 || n > 3)
        return fail(err, errlen,
                    "%s: must be a list of 1 to 3 objects such as "
                    "{\"certificate\": \"chain.pem\", \"key\": \"key.pem\"}",
                    path);
    *certs = calloc((size_t)n, sizeof(**certs));
    if (!*certs) abort();
    const cJSON *e;
    cJSON_ArrayForEach(e, item)
    {
        char at[192];
        snprintf(at, sizeof(at), "%s[%zu]", path, *ncerts);
        struct ts_site_cert *c = &(*certs)[(*ncerts)++];
        if (!cJSON_IsObject(e)) return fail(err, errlen, "%s: must be an object", at);
        if (walk(cfg, c, e, site_cert_keys, at, err, errlen) < 0) return -1;
        if (!c->certificate) return fail(err, errlen, "%s.certificate: missing", at);
        if (!c->key) return fail(err, errlen, "%s.key: missing", at);
    }
    return 0;
}

static int parse_site_certs(struct ts_config *cfg, void *base, const cJSON *item, const char *path,
                            char *err, size_t errlen)
{
    struct ts_site *site = base;
    return parse_cert_list(cfg, &site->certs, &site->ncerts, item, path, err, errlen);
}

/* tls.certificates: the default site's certificates as a list, like any site's, in place of
 * tls.certificate, tls.key and tls.ocsp_response (given beside it, one of the two would be
 * ignored: refused). */
static int parse_tls_certs(struct ts_config *cfg, void *base, const cJSON *item, const char *path,
                           char *err, size_t errlen)
{
    (void)base;
    static const char *const single[] = {"certificate", "key", "ocsp_response"};
    const cJSON *first = item; /* cJSON: the first item's prev is the last, whose next is NULL */
    while (first->prev && first->prev->next) first = first->prev;
    for (const cJSON *o = first; o; o = o->next)
        for (size_t i = 0; i < 3; i++)
            if (o->string && strcmp(o->string, single[i]) == 0) goto both;
    return parse_cert_list(cfg, &cfg->tls.certs, &cfg->tls.ncerts, item, path, err, errlen);
both:
    return fail(err, errlen,
                "%s: given with tls.certificate, tls.key or tls.ocsp_response: use one or the "
                "other (the list takes each certificate's own key and OCSP response)",
                path);
}

static void free_site(struct ts_site *site)
{
    free_site_certs(site);
    if (!site->borrowed) {
        free_list(&site->names, &site->nnames);
        free(site->root);
        free(site->client_ca);
        free(site->client_crl);
        free_locations(&site->locations, &site->nlocations);
        free_error_pages(&site->error_pages, &site->nerror_pages);
        free(site->hsts);
        free(site->cache_control);
    }
    memset(site, 0, sizeof(*site));
}

static void free_sites(struct ts_config *cfg)
{
    for (size_t i = 0; i < cfg->nsites; i++) free_site(&cfg->sites[i]);
    free(cfg->sites);
    cfg->sites = NULL;
    cfg->nsites = 0;
}

/* Named sites go to sites[1..]; sites[0], the default, is made from the top-level keys once
 * the whole file (and the command line) has been read. */
static int parse_sites(struct ts_config *cfg, void *base, const cJSON *item, const char *path,
                       char *err, size_t errlen)
{
    (void)base;
    free_sites(cfg);
    if (!cJSON_IsArray(item))
        return fail(err, errlen,
                    "%s: must be a list of site objects such as {\"server_names\": "
                    "[\"example.com\"], \"root\": ..., \"certificates\": [...]}",
                    path);
    size_t n = (size_t)cJSON_GetArraySize(item);
    cfg->sites = calloc(n + 1, sizeof(*cfg->sites));
    if (!cfg->sites) abort();
    cfg->nsites = 1;
    const cJSON *e;
    cJSON_ArrayForEach(e, item)
    {
        struct ts_site *site = &cfg->sites[cfg->nsites++];
        size_t idx = cfg->nsites - 2;
        site->verify_depth = 3;
        site->client_cert_detail = TS_CERT_DETAIL_FULL;
        site->precompressed = true;
        site->dotfiles = TS_DOTFILES_DENY;
        snprintf(site->label, sizeof(site->label), "%s[%zu]", path, idx);
        if (!cJSON_IsObject(e)) return fail(err, errlen, "%s: must be an object", site->label);
        /* the label names the site by its first name as soon as it is known */
        const cJSON *names = cJSON_GetObjectItemCaseSensitive(e, "server_names");
        const cJSON *first = cJSON_IsArray(names) ? cJSON_GetArrayItem(names, 0) : NULL;
        if (cJSON_IsString(first))
            snprintf(site->label, sizeof(site->label), "%s[%zu] (%.60s)", path, idx,
                     first->valuestring);
        if (walk(cfg, site, e, site_keys, site->label, err, errlen) < 0) return -1;
        if (!site->nnames) return fail(err, errlen, "%s.server_names: missing", site->label);
        if (!site->root) return fail(err, errlen, "%s.root: missing", site->label);
        if (!site->ncerts) return fail(err, errlen, "%s.certificates: missing", site->label);
        snprintf(site->name, sizeof(site->name), "%s", site->names[0]);
    }
    return 0;
}

/* Whether name is the len bytes at host, case-insensitively. */
static bool name_is(const char *name, const char *host, size_t len)
{
    return strlen(name) == len && strncasecmp(name, host, len) == 0;
}

int ts_config_find_site(const struct ts_config *cfg, const char *host, size_t len)
{
    if (len && host[len - 1] == '.') len--;
    if (len == 0) return -1;
    for (size_t i = 0; i < cfg->nsites; i++)
        for (size_t j = 0; j < cfg->sites[i].nnames; j++)
            if (cfg->sites[i].names[j][0] != '*' && name_is(cfg->sites[i].names[j], host, len))
                return (int)i;
    const char *dot = memchr(host, '.', len);
    if (!dot || dot == host) return -1;
    size_t rest = len - (size_t)(dot - host); /* ".example.com" */
    for (size_t i = 0; i < cfg->nsites; i++)
        for (size_t j = 0; j < cfg->sites[i].nnames; j++)
            if (cfg->sites[i].names[j][0] == '*' && name_is(cfg->sites[i].names[j] + 1, dot, rest))
                return (int)i;
    return -1;
}

int ts_config_parse_cidr(const char *text, struct ts_cidr *out)
{
    char buf[64];
    const char *slash = strchr(text, '/');
    size_t n = slash ? (size_t)(slash - text) : strlen(text);
    if (n == 0 || n >= sizeof(buf)) return -1;
    memcpy(buf, text, n);
    buf[n] = '\0';
    memset(out, 0, sizeof(*out));
    unsigned max;
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        return -1;
    }
    out->prefix = max;
    if (slash) {
        char *end;
        long p = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || p < 0 || p > (long)max) return -1;
        out->prefix = (unsigned)p;
    }
    return 0;
}

bool ts_cidr_contains(const struct ts_cidr *c, int family, const unsigned char *addr)
{
    if (family != c->family) return false;
    unsigned full = c->prefix / 8, bits = c->prefix % 8;
    if (memcmp(addr, c->addr, full) != 0) return false;
    if (bits == 0) return true;
    unsigned char mask = (unsigned char)(0xff << (8 - bits));
    return (addr[full] & mask) == (c->addr[full] & mask);
}

static void set_allow(struct ts_config *cfg, const char *const *list, size_t n)
{
    free(cfg->status.allow);
    cfg->status.allow = calloc(n ? n : 1, sizeof(struct ts_cidr));
    if (!cfg->status.allow) abort();
    cfg->status.nallow = 0;
    for (size_t i = 0; i < n; i++)
        if (ts_config_parse_cidr(list[i], &cfg->status.allow[cfg->status.nallow]) == 0)
            cfg->status.nallow++;
}

static int parse_allow(struct ts_config *cfg, void *base, const cJSON *item, const char *path,
                       char *err, size_t errlen)
{
    (void)base;
    if (!cJSON_IsArray(item))
        return fail(err, errlen, "%s: must be a list of addresses or CIDR blocks", path);
    cfg->status.nallow = 0;
    size_t n = (size_t)cJSON_GetArraySize(item);
    free(cfg->status.allow);
    cfg->status.allow = calloc(n ? n : 1, sizeof(struct ts_cidr));
    if (!cfg->status.allow) abort();
    const cJSON *e;
    size_t i = 0;
    cJSON_ArrayForEach(e, item)
    {
        if (!cJSON_IsString(e) ||
            ts_config_parse_cidr(e->valuestring, &cfg->status.allow[cfg->status.nallow]) < 0)
            return fail(err, errlen,
                        "%s[%zu]: not an address or CIDR block (e.g. \"10.0.0.0/8\", \"::1\")",
                        path, i);
        cfg->status.nallow++;
        i++;
    }
    return 0;
}

static const char *type_name(enum key_type t)
{
    switch (t) {
    case K_STRING: return "a string";
    case K_INT: return "an integer";
    case K_BOOL: return "true or false";
    case K_ENUM: return "a string";
    case K_OBJECT: return "an object";
    case K_CUSTOM: break;
    }
    return "a value";
}

static int walk(struct ts_config *cfg, void *base, const cJSON *obj, const struct key *keys,
                const char *prefix, char *err, size_t errlen)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, obj)
    {
        char path[256];
        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", item->string);
        const struct key *k = keys;
        while (k->name && strcmp(k->name, item->string) != 0) k++;
        if (!k->name) return fail(err, errlen, "%s: unknown key", path);
        if (repeated_key(obj, item)) return fail(err, errlen, "%s: duplicate key", path);
        void *field = (char *)base + k->offset;
        switch (k->type) {
        case K_STRING:
            if (!cJSON_IsString(item) || !item->valuestring[0])
                return fail(err, errlen, "%s: must be a non-empty string", path);
            set_string(field, item->valuestring);
            break;
        case K_INT: {
            double d = item->valuedouble;
            /* bounds first: converting an out-of-range double to long is undefined */
            if (!cJSON_IsNumber(item) || !(d >= (double)k->min && d <= (double)k->max) ||
                d != (double)(long)d)
                return fail(err, errlen, "%s: must be an integer from %ld to %ld", path, k->min,
                            k->max);
            *(int *)field = (int)d;
            break;
        }
        case K_BOOL:
            if (!cJSON_IsBool(item)) return fail(err, errlen, "%s: must be true or false", path);
            *(bool *)field = cJSON_IsTrue(item);
            break;
        case K_ENUM: {
            int i = 0;
            if (cJSON_IsString(item))
                while (k->values[i] && strcmp(k->values[i], item->valuestring) != 0) i++;
            if (!cJSON_IsString(item) || !k->values[i]) {
                char list[256] = "";
                for (int j = 0; k->values[j]; j++)
                    snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s\"%s\"",
                             j ? ", " : "", k->values[j]);
                return fail(err, errlen, "%s: must be one of %s", path, list);
            }
            *(int *)field = i;
            break;
        }
        case K_OBJECT:
            if (!cJSON_IsObject(item))
                return fail(err, errlen, "%s: must be %s", path, type_name(k->type));
            if (walk(cfg, base, item, k->sub, path, err, errlen) < 0) return -1;
            break;
        case K_CUSTOM:
            if (k->parse(cfg, base, item, path, err, errlen) < 0) return -1;
            break;
        }
    }
    return 0;
}

static void set_defaults(struct ts_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    add_listen(cfg, "0.0.0.0:8443");
    set_string(&cfg->root, "www");
    set_string(&cfg->tls.certificate, "certs/server.crt");
    set_string(&cfg->tls.key, "certs/server.key");
    cfg->tls.min_version = TLS1_2_VERSION;
    cfg->tls.max_version = TLS1_3_VERSION;
    cfg->tls.session_cache_size = 20480;
    cfg->tls.session_timeout_s = 300;
    cfg->tls.session_cache_max_bytes = 64 << 20;
    cfg->tls.session_cache_max_session_bytes = 16384;
    cfg->tls.session_tickets = true;
    cfg->tls.client_auth = TS_CLIENT_AUTH_NONE;
    cfg->tls.verify_depth = 3;
    cfg->tls.max_client_chain_bytes = 32768;
    cfg->tls.client_cert_detail = TS_CERT_DETAIL_FULL;
    cfg->timeouts.handshake_s = 10;
    cfg->timeouts.request_header_s = 10;
    cfg->timeouts.keepalive_s = 60;
    cfg->timeouts.send_s = 30;
    cfg->timeouts.shutdown_s = 1;
    cfg->timeouts.drain_s = 30;
    cfg->precompressed = true;
    cfg->http2 = true;
    cfg->http2_max_concurrent_streams = 128;
    cfg->dotfiles = TS_DOTFILES_DENY;
    cfg->status.enabled = true;
    set_string(&cfg->status.path, "/status");
    set_string(&cfg->status.metrics_path, "/metrics");
    static const char *const loopback[] = {"127.0.0.1/32", "::1/128"};
    set_allow(cfg, loopback, 2);
    cfg->limits.max_connections = 8192;
    cfg->file_cache.entries = 1024;
    cfg->file_cache.valid_ms = 1000;
    cfg->file_cache.content_max_file_bytes = 128 << 10;
    cfg->file_cache.content_bytes = 32 << 20;
    cfg->limits.max_header_bytes = 8192;
    cfg->limits.max_uri_bytes = 4096;
    cfg->limits.max_requests_per_connection = 10000;
    set_string(&cfg->log.access, "-");
    set_string(&cfg->log.error, "-");
    cfg->log.format = TS_LOG_FORMAT_COMBINED;
    cfg->log.level = TS_LOG_INFO;
    cfg->log.summary_interval_s = 60;
}

/* What a configuration file that is not a regular file is, for the message that says a reload
 * cannot read it again. */
static const char *file_kind(mode_t mode)
{
    if (S_ISFIFO(mode)) return "a pipe";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISDIR(mode)) return "a directory";
    return "not a regular file";
}

char *ts_config_read(const char *path, bool reload, const char **once, char *err, size_t errlen)
{
    /* At start a pipe is read like a file: a FIFO's open waits for its writer, as cat's would.
     * A reload runs on the main thread, which must not wait: O_NONBLOCK makes the open of a
     * FIFO return at once, and anything but a regular file is then refused unread. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | (reload ? O_NONBLOCK : 0));
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        fail(err, errlen, "%s: cannot open configuration file: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return NULL;
    }
    if (once) *once = S_ISREG(st.st_mode) ? NULL : file_kind(st.st_mode);
    if (reload && !S_ISREG(st.st_mode)) {
        fail(err, errlen,
             "%s: %s now, not a regular file: a reload reads only a regular file (restart "
             "tessera to read it)",
             path, file_kind(st.st_mode));
        close(fd);
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *n = realloc(buf, cap);
            if (!n) abort();
            buf = n;
        }
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            fail(err, errlen, "%s: read error: %s", path, strerror(errno));
            goto fail;
        }
        if (r == 0) break;
        len += (size_t)r;
        if (len > (1 << 20)) {
            fail(err, errlen, "%s: configuration file larger than 1 MiB", path);
            goto fail;
        }
    }
    close(fd);
    buf[len] = '\0';
    return buf;
fail:
    close(fd);
    free(buf);
    return NULL;
}

static int check_readable(const char *key, const char *file, char *err, size_t errlen)
{
    struct stat st;
    if (stat(file, &st) < 0) return fail(err, errlen, "%s: %s: %s", key, file, strerror(errno));
    if (!S_ISREG(st.st_mode)) return fail(err, errlen, "%s: %s: not a regular file", key, file);
    if (access(file, R_OK) < 0) return fail(err, errlen, "%s: %s: %s", key, file, strerror(errno));
    return 0;
}

/* A log destination (or the pid file) is opened (created) only at start-up, after
 * --check-config has exited: here it must be a file we may write to, or a new file in a
 * directory we may write to, so that a configuration that passes the check also starts. */
static int check_log_dest(const char *key, const char *file, char *err, size_t errlen)
{
    if (strcmp(file, "-") == 0) return 0;
    struct stat st;
    if (stat(file, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return fail(err, errlen, "%s: %s: is a directory", key, file);
        if (access(file, W_OK) < 0)
            return fail(err, errlen, "%s: %s: %s", key, file, strerror(errno));
        return 0;
    }
    if (errno != ENOENT) return fail(err, errlen, "%s: %s: %s", key, file, strerror(errno));
    const char *slash = strrchr(file, '/');
    char dir[PATH_MAX];
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == file)
        snprintf(dir, sizeof(dir), "/");
    else if ((size_t)(slash - file) < sizeof(dir))
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - file), file);
    else
        return fail(err, errlen, "%s: %s: path too long", key, file);
    const char *why = NULL;
    if (stat(dir, &st) < 0)
        why = strerror(errno);
    else if (!S_ISDIR(st.st_mode))
        why = "not a directory";
    else if (access(dir, W_OK | X_OK) < 0)
        why = strerror(errno);
    if (why) return fail(err, errlen, "%s: %s: cannot be created: %s: %s", key, file, dir, why);
    return 0;
}

/* Header values we write verbatim must not be able to break the header block. */
static bool bad_header_value(const char *v)
{
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) return true;
    return false;
}

static const char *mode_name(enum ts_client_auth m)
{
    return client_auth_modes[m];
}

/* The name of a site's key in messages: the top-level one for the default site ("root",
 * "tls.client_ca"), "sites[N] (name).KEY" for the others. */
static const char *site_key(const struct ts_site *site, const char *key, bool tls, char *buf,
                            size_t len)
{
    if (site->borrowed)
        snprintf(buf, len, "%s%s", tls ? "tls." : "", key);
    else
        snprintf(buf, len, "%s.%s", site->label, key);
    return buf;
}

/* Refuses a client-auth set-up that can never work, naming the key to change. */
static int validate_client_auth(const struct ts_site *site, char *err, size_t errlen)
{
    char k1[192], k2[192];
    enum ts_client_auth mode = site->client_auth;
    const char *auth_key = site_key(site, "client_auth", true, k2, sizeof(k2));
    bool protected_paths = false;
    for (size_t i = 0; i < site->nlocations; i++) {
        if (!site->locations[i].require_client_cert) continue;
        protected_paths = true;
        if (mode == TS_CLIENT_AUTH_NONE) {
            char loc[64];
            snprintf(loc, sizeof(loc), "locations[%zu].require_client_cert", i);
            return fail(err, errlen,
                        "%s: needs %s \"optional\", \"optional_no_ca\" or \"required\" (it is "
                        "\"none\", so no client certificate is ever requested)",
                        site_key(site, loc, false, k1, sizeof(k1)), auth_key);
        }
    }
    const char *ca_key = site_key(site, "client_ca", true, k1, sizeof(k1));
    if (mode != TS_CLIENT_AUTH_NONE && mode != TS_CLIENT_AUTH_OPTIONAL_NO_CA && !site->client_ca)
        return fail(err, errlen,
                    "%s: required when %s is \"%s\" (the CA bundle that issues client "
                    "certificates)",
                    ca_key, auth_key, mode_name(mode));
    if (mode == TS_CLIENT_AUTH_OPTIONAL_NO_CA && protected_paths && !site->client_ca)
        return fail(err, errlen,
                    "%s: required for locations with require_client_cert (no certificate can be "
                    "verified without it)",
                    ca_key);
    if (site->client_ca && check_readable(ca_key, site->client_ca, err, errlen) < 0) return -1;
    if (site->client_crl) {
        char k3[192];
        const char *crl_key = site_key(site, "client_crl", true, k3, sizeof(k3));
        if (!site->client_ca) return fail(err, errlen, "%s: needs %s", crl_key, ca_key);
        if (check_readable(crl_key, site->client_crl, err, errlen) < 0) return -1;
    }
    if (mode == TS_CLIENT_AUTH_NONE && site->client_ca)
        return fail(err, errlen, "%s: set, but %s is \"none\" so it would be unused", ca_key,
                    auth_key);
    return 0;
}

/* What a site serves from and sends: its root, certificate files, client-auth policy, header
 * values and error pages. */
static int validate_site(const struct ts_site *site, char *err, size_t errlen)
{
    char k[192];
    struct stat st;
    const char *root_key = site_key(site, "root", false, k, sizeof(k));
    if (stat(site->root, &st) < 0)
        return fail(err, errlen, "%s: %s: %s", root_key, site->root, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return fail(err, errlen, "%s: %s: not a directory", root_key, site->root);
    if (access(site->root, R_OK | X_OK) < 0)
        return fail(err, errlen, "%s: %s: %s", root_key, site->root, strerror(errno));
    for (size_t i = 0; i < site->ncerts; i++) {
        char ck[64];
        if (site->borrowed && !site->certs_listed) {
            if (check_readable("tls.certificate", site->certs[i].certificate, err, errlen) < 0 ||
                check_readable("tls.key", site->certs[i].key, err, errlen) < 0)
                return -1;
            if (site->certs[i].ocsp_response &&
                check_readable("tls.ocsp_response", site->certs[i].ocsp_response, err, errlen) < 0)
                return -1;
            continue;
        }
        const char *pre = site->borrowed ? "tls." : "";
        snprintf(ck, sizeof(ck), "%scertificates[%zu].certificate", pre, i);
        if (check_readable(site_key(site, ck, false, k, sizeof(k)), site->certs[i].certificate, err,
                           errlen) < 0)
            return -1;
        snprintf(ck, sizeof(ck), "%scertificates[%zu].key", pre, i);
        if (check_readable(site_key(site, ck, false, k, sizeof(k)), site->certs[i].key, err,
                           errlen) < 0)
            return -1;
        snprintf(ck, sizeof(ck), "%scertificates[%zu].ocsp_response", pre, i);
        if (site->certs[i].ocsp_response &&
            check_readable(site_key(site, ck, false, k, sizeof(k)), site->certs[i].ocsp_response,
                           err, errlen) < 0)
            return -1;
    }
    if (validate_client_auth(site, err, errlen) < 0) return -1;
    if (site->hsts && strspn(site->hsts, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                         "0123456789-=; ") != strlen(site->hsts))
        return fail(err, errlen,
                    "%s: \"%s\" is not a header value such as "
                    "\"max-age=31536000; includeSubDomains\"",
                    site_key(site, "hsts", false, k, sizeof(k)), site->hsts);
    if (site->cache_control && bad_header_value(site->cache_control))
        return fail(err, errlen, "%s: not a valid header value",
                    site_key(site, "cache_control", false, k, sizeof(k)));
    for (size_t i = 0; i < site->nlocations; i++) {
        char lk[64];
        snprintf(lk, sizeof(lk), "locations[%zu].cache_control", i);
        if (site->locations[i].cache_control && bad_header_value(site->locations[i].cache_control))
            return fail(err, errlen, "%s: not a valid header value",
                        site_key(site, lk, false, k, sizeof(k)));
    }
    for (size_t i = 0; i < site->nerror_pages; i++) {
        char file[4096], pk[32];
        snprintf(file, sizeof(file), "%s%s", site->root, site->error_pages[i].path);
        snprintf(pk, sizeof(pk), "error_pages.%d", site->error_pages[i].status);
        if (check_readable(site_key(site, pk, false, k, sizeof(k)), file, err, errlen) < 0)
            return -1;
    }
    return 0;
}

/* A name claimed twice, by two sites or by one, would make the choice depend on the order. */
static int validate_names(const struct ts_config *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < cfg->nsites; i++)
        for (size_t j = 0; j < cfg->sites[i].nnames; j++)
            for (size_t a = 0; a <= i; a++)
                for (size_t b = 0; b < (a == i ? j : cfg->sites[a].nnames); b++) {
                    if (strcmp(cfg->sites[i].names[j], cfg->sites[a].names[b]) != 0) continue;
                    char k[192];
                    return fail(err, errlen, "%s: \"%s\" is already a name of %s",
                                site_key(&cfg->sites[i], "server_names", false, k, sizeof(k)),
                                cfg->sites[i].names[j],
                                a == i   ? "this site"
                                : a == 0 ? "the default site (server_names)"
                                         : cfg->sites[a].label);
                }
    return 0;
}

/* sites[0], the default site: a view of the top-level keys (which stay theirs to free). */
static void make_default_site(struct ts_config *cfg)
{
    if (!cfg->sites) {
        cfg->sites = calloc(1, sizeof(*cfg->sites));
        if (!cfg->sites) abort();
        cfg->nsites = 1;
    }
    struct ts_site *d = &cfg->sites[0];
    free_site(d);
    d->borrowed = true;
    d->names = cfg->server_names;
    d->nnames = cfg->nserver_names;
    d->root = cfg->root;
    d->certs_listed = cfg->tls.ncerts > 0;
    d->ncerts = d->certs_listed ? cfg->tls.ncerts : 1;
    d->certs = calloc(d->ncerts, sizeof(*d->certs));
    if (!d->certs) abort();
    if (d->certs_listed)
        memcpy(d->certs, cfg->tls.certs, d->ncerts * sizeof(*d->certs));
    else
        d->certs[0] = (struct ts_site_cert){.certificate = cfg->tls.certificate,
                                            .key = cfg->tls.key,
                                            .ocsp_response = cfg->tls.ocsp_response};
    d->client_auth = cfg->tls.client_auth;
    d->client_ca = cfg->tls.client_ca;
    d->client_crl = cfg->tls.client_crl;
    d->verify_depth = cfg->tls.verify_depth;
    d->client_cert_detail = cfg->tls.client_cert_detail;
    d->locations = cfg->locations;
    d->nlocations = cfg->nlocations;
    d->error_pages = cfg->error_pages;
    d->nerror_pages = cfg->nerror_pages;
    d->hsts = cfg->hsts;
    d->cache_control = cfg->cache_control;
    d->precompressed = cfg->precompressed;
    d->dotfiles = cfg->dotfiles;
    snprintf(d->name, sizeof(d->name), "%s", cfg->nserver_names ? cfg->server_names[0] : "default");
}

static int validate(struct ts_config *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < cfg->nlisten; i++)
        if (check_listen(cfg->listen[i], "listen", err, errlen) < 0) return -1;
    make_default_site(cfg);
    for (size_t i = 0; i < cfg->nsites; i++)
        if (validate_site(&cfg->sites[i], err, errlen) < 0) return -1;
    if (validate_names(cfg, err, errlen) < 0) return -1;
    if (cfg->tls.ticket_key_file &&
        check_readable("tls.ticket_key_file", cfg->tls.ticket_key_file, err, errlen) < 0)
        return -1;
    if (strcmp(cfg->log.access, "off") != 0 &&
        check_log_dest("log.access", cfg->log.access, err, errlen) < 0)
        return -1;
    /* "off" is a word of log.access only: refused here rather than taken as a file name */
    if (strcmp(cfg->log.error, "off") == 0)
        return fail(err, errlen,
                    "log.error: \"off\" is not accepted: the error log cannot be "
                    "turned off; use \"-\" (stderr), a file, or /dev/null");
    if (check_log_dest("log.error", cfg->log.error, err, errlen) < 0) return -1;
    if (cfg->pid_file) {
        struct stat st;
        /* opened with O_NOFOLLOW: a link planted where a root process writes is not followed */
        if (!cfg->pid_file[0] || strcmp(cfg->pid_file, "-") == 0)
            return fail(err, errlen, "pid_file: must name a file");
        if (lstat(cfg->pid_file, &st) == 0 && S_ISLNK(st.st_mode))
            return fail(err, errlen, "pid_file: %s: is a symbolic link: name the file itself",
                        cfg->pid_file);
        if (lstat(cfg->pid_file, &st) == 0 && !S_ISREG(st.st_mode))
            return fail(err, errlen, "pid_file: %s: not a regular file", cfg->pid_file);
        if (check_log_dest("pid_file", cfg->pid_file, err, errlen) < 0) return -1;
    }
    for (size_t i = 0; i < cfg->nredirect_listen; i++)
        if (check_listen(cfg->redirect_listen[i], "http_redirect.listen", err, errlen) < 0)
            return -1;
    if (!cfg->https_port) {
        char host[256], port[16];
        if (ts_config_split_listen(cfg->listen[0], host, sizeof(host), port, sizeof(port)) == 0)
            cfg->https_port = atoi(port);
    }
    if (cfg->status.path[0] != '/') return fail(err, errlen, "status.path: must start with \"/\"");
    if (cfg->status.metrics_path[0] != '/')
        return fail(err, errlen, "status.metrics_path: must start with \"/\"");
    if (strcmp(cfg->status.path, cfg->status.metrics_path) == 0)
        return fail(err, errlen, "status.metrics_path: must differ from status.path");
    if (cfg->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->workers = n > 0 ? (int)(n > 256 ? 256 : n) : 1;
    }
    return 0;
}

int ts_config_load(struct ts_config *cfg, const char *path, const struct ts_config_overrides *ov,
                   char *err, size_t errlen)
{
    char *text = NULL;
    if (path && !(text = ts_config_read(path, false, NULL, err, errlen))) {
        set_defaults(cfg); /* freeable, as after any other failure */
        return -1;
    }
    int rc = ts_config_load_text(cfg, path, text, ov, err, errlen);
    free(text);
    return rc;
}

int ts_config_load_text(struct ts_config *cfg, const char *path, const char *text,
                        const struct ts_config_overrides *ov, char *err, size_t errlen)
{
    set_defaults(cfg);
    if (text) {
        cJSON *root = cJSON_ParseWithOpts(text, NULL, 1);
        if (!root) {
            const char *at = cJSON_GetErrorPtr();
            int line = 1;
            for (const char *p = text; at && p < at; p++) line += *p == '\n';
            fail(err, errlen, "%s: invalid JSON near line %d", path, line);
            return -1;
        }
        int rc = 0;
        if (!cJSON_IsObject(root))
            rc = fail(err, errlen, "%s: the top level must be a JSON object", path);
        else
            rc = walk(cfg, cfg, root, top_keys, "", err, errlen);
        cJSON_Delete(root);
        if (rc < 0) return -1;
    }
    if (ov) {
        if (ov->listen) {
            /* the command line's address takes no PROXY header: main says so, a proxy that
             * sends one would otherwise see only failed handshakes */
            cfg->listen_proxy_dropped = 0;
            for (size_t i = 0; i < cfg->nlisten; i++)
                cfg->listen_proxy_dropped += cfg->listen_proxy[i].enabled;
            free_listen(cfg);
            add_listen(cfg, ov->listen);
        }
        if (ov->root) set_string(&cfg->root, ov->root);
        if (ov->cert) { /* the command line's certificate replaces a tls.certificates list */
            set_string(&cfg->tls.certificate, ov->cert);
            free_cert_list(&cfg->tls.certs, &cfg->tls.ncerts, true);
        }
        if (ov->key) set_string(&cfg->tls.key, ov->key);
        if (ov->workers >= 0) cfg->workers = ov->workers;
    }
    return validate(cfg, err, errlen);
}

void ts_config_free(struct ts_config *cfg)
{
    free_listen(cfg);
    free(cfg->root);
    free(cfg->tls.certificate);
    free(cfg->tls.key);
    free(cfg->tls.ocsp_response);
    free_cert_list(&cfg->tls.certs, &cfg->tls.ncerts, true);
    free(cfg->tls.ticket_key_file);
    free_sites(cfg);
    free_list(&cfg->server_names, &cfg->nserver_names);
    free_locations(&cfg->locations, &cfg->nlocations);
    free(cfg->hsts);
    free(cfg->cache_control);
    free_error_pages(&cfg->error_pages, &cfg->nerror_pages);
    free_list(&cfg->redirect_listen, &cfg->nredirect_listen);
    free(cfg->status.path);
    free(cfg->status.metrics_path);
    free(cfg->status.allow);
    free(cfg->tls.client_ca);
    free(cfg->tls.client_crl);
    free(cfg->log.access);
    free(cfg->log.error);
    free(cfg->user);
    free(cfg->pid_file);
    free(cfg->group);
    memset(cfg, 0, sizeof(*cfg));
}
