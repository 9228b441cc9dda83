/* Configuration: the struct every module reads, loaded from JSON (cJSON) and the command line.
 * Loaded once by the main thread before any other thread starts; read-only afterwards. */
#ifndef TS_CONFIG_H
#define TS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

enum ts_client_auth {
    TS_CLIENT_AUTH_NONE,
    TS_CLIENT_AUTH_OPTIONAL,
    TS_CLIENT_AUTH_OPTIONAL_NO_CA,
    TS_CLIENT_AUTH_REQUIRED,
};

enum ts_log_format { TS_LOG_FORMAT_COMBINED, TS_LOG_FORMAT_JSON };

enum ts_cert_detail { TS_CERT_DETAIL_FULL, TS_CERT_DETAIL_REASON };

enum ts_dotfiles { TS_DOTFILES_DENY, TS_DOTFILES_ALLOW };

struct ts_location {
    char *path; /* URL prefix, e.g. "/private/" */
    size_t path_len;
    bool require_client_cert;
    char *cache_control; /* overrides the site's cache_control, or NULL */
    bool autoindex;      /* list directories without index.html */
};

/* A site page answering one error status, e.g. 404 -> "/errors/404.html". */
struct ts_error_page {
    int status;
    char *path;
};

/* One certificate of a site: its chain file (leaf first, then intermediates, served as given)
 * and the leaf's private key. An object so that per-certificate keys can be added. */
struct ts_site_cert {
    char *certificate;
    char *key;
    char *ocsp_response; /* DER OCSP response stapled for this certificate, or NULL */
};

/* A virtual host: what a connection's SNI selects and every request on it is served from.
 * sites[0] is the default site made of the top-level keys (its strings are the top-level
 * fields', "borrowed"); the others come from the "sites" list. */
struct ts_site {
    char **names; /* lowercase, without a trailing dot; "*.example.com" wildcards one label */
    size_t nnames;
    char *root;
    struct ts_site_cert *certs;
    size_t ncerts;
    enum ts_client_auth client_auth;
    char *client_ca, *client_crl; /* as tls.client_ca / tls.client_crl */
    int verify_depth;
    enum ts_cert_detail client_cert_detail;
    struct ts_location *locations;
    size_t nlocations;
    struct ts_error_page *error_pages;
    size_t nerror_pages;
    char *hsts, *cache_control;
    bool precompressed;
    enum ts_dotfiles dotfiles;
    bool borrowed;     /* the default site: strings and lists belong to struct ts_config */
    bool certs_listed; /* the default site's certificates came from tls.certificates */
    char label[96];    /* "sites[0] (a.example.com)" or "" for the default, to name keys */
    char name[64];     /* first server name, or "default": status and logs */
};

/* An address block for status.allow; IPv4 is kept as IPv4 (family AF_INET, 4 bytes). */
struct ts_cidr {
    int family;
    unsigned prefix;
    unsigned char addr[16];
};

/* The PROXY protocol on one listen entry: who may send the header that names the client. */
struct ts_listen_proxy {
    bool enabled;
    struct ts_cidr *from; /* proxy_protocol_from; loopback only when the key is absent */
    size_t nfrom;
};

struct ts_config {
    char **listen; /* "ADDR:PORT" strings */
    size_t nlisten;
    struct ts_listen_proxy *listen_proxy; /* one per listen entry */
    int listen_proxy_dropped; /* --listen replaced this many listen entries with proxy_protocol */
    char *root;
    int workers; /* resolved: never 0 after ts_config_load */

    struct {
        char *certificate;
        char *key;
        char *ocsp_response;        /* the default certificate's OCSP response (DER), or NULL */
        struct ts_site_cert *certs; /* tls.certificates (ECDSA and RSA...), instead of those */
        size_t ncerts;
        int min_version, max_version; /* TLS1_2_VERSION or TLS1_3_VERSION */
        int session_cache_size;
        int session_timeout_s;
        int session_cache_max_bytes;         /* estimated memory of all cached sessions */
        int session_cache_max_session_bytes; /* largest serialized session cached */
        bool session_tickets;
        char *ticket_key_file;     /* NULL: random keys per process */
        int ticket_key_rotation_s; /* random keys: new one this often; 0: session_timeout_s */
        enum ts_client_auth client_auth;
        char *client_ca;  /* CA bundle: trusted for client certificates, sent as acceptable */
        char *client_crl; /* CRLs checked for client certificates, or NULL */
        int verify_depth;
        int max_client_chain_bytes;             /* largest client Certificate message */
        enum ts_cert_detail client_cert_detail; /* what a 403 page reveals */
        bool strict_sni; /* an unknown SNI name gets the unrecognized_name alert */
    } tls;

    char **server_names; /* the default site's names (may be empty) */
    size_t nserver_names;
    struct ts_site *sites; /* [0] the default site (the top-level keys), then "sites" */
    size_t nsites;

    char *hsts;          /* Strict-Transport-Security value, or NULL */
    char *cache_control; /* Cache-Control for files, or NULL */
    bool precompressed;  /* serve foo.br / foo.gz when the client accepts them */
    bool http2;          /* offer h2 in ALPN (only once the build has HTTP/2, see TS_HAVE_H2) */
    int http2_max_concurrent_streams; /* SETTINGS_MAX_CONCURRENT_STREAMS */
    enum ts_dotfiles dotfiles; /* paths with a segment starting with '.': 404 unless allowed */
    struct ts_error_page *error_pages;
    size_t nerror_pages;
    char **redirect_listen; /* plain-HTTP listeners that redirect to https */
    size_t nredirect_listen;
    int https_port; /* port in redirects: http_redirect.https_port, or the first listen port */

    struct ts_location *locations;
    size_t nlocations;

    struct {
        bool enabled;
        char *path;         /* JSON status, e.g. "/status" */
        char *metrics_path; /* Prometheus text, e.g. "/metrics" */
        struct ts_cidr *allow;
        size_t nallow;
    } status;

    struct {
        int handshake_s, request_header_s, keepalive_s, send_s, shutdown_s;
        int drain_s; /* at SIGTERM, how long responses in flight may take to finish */
    } timeouts;

    struct {
        int max_connections, max_header_bytes, max_uri_bytes, max_requests_per_connection;
    } limits;

    struct {
        int entries;  /* open files cached per worker; 0 turns the cache off */
        int valid_ms; /* how long a cached open or stat is trusted before it is checked again */
        int content_max_file_bytes; /* files up to this size keep their bytes in the cache */
        int content_bytes;          /* ...within this much per worker */
    } file_cache;

    struct {
        char *access; /* "-" (stdout), "off", or a file */
        enum ts_log_format format;
        char *error;            /* "-" (stderr) or a file */
        int level;              /* enum ts_log_level */
        int summary_interval_s; /* failed handshakes are counted and logged this often */
    } log;

    char *pid_file; /* this process's id, written once it listens, removed at exit; or NULL */
    char *user;     /* started as root: switch to this user once listeners and files are open */
    char *group;    /* its group instead of the user's primary group, or NULL */
};

/* Command-line values that override the file; NULL / 0 means "not given". */
struct ts_config_overrides {
    const char *listen, *root, *cert, *key;
    int workers; /* -1: not given */
};

/* Fills *cfg from the JSON file at path (NULL: built-in defaults only), applies the overrides,
 * and validates everything that can be checked without OpenSSL (files exist and are readable,
 * addresses parse). Returns 0, or -1 with one message naming the key or file in err. It reads
 * the file: to load one file more than once, read it with ts_config_read. */
int ts_config_load(struct ts_config *cfg, const char *path, const struct ts_config_overrides *ov,
                   char *err, size_t errlen);

/* Reads the configuration file at path whole (at most 1 MiB). A pipe (--config <(...), a piped
 * /dev/stdin) gives its text only once, so start-up reads the file once and builds everything
 * from that text (ts_config_load_text). *once (if once is not NULL) is set to NULL for a
 * regular file, which a reload can read again, or to what the file is ("a pipe", "a
 * character device"...). With reload set, the open does not wait for a FIFO's writer and
 * anything but a regular file is refused unread. Returns the text (malloc'd, NUL-terminated),
 * or NULL with a message naming the file in err. Main thread. */
char *ts_config_read(const char *path, bool reload, const char **once, char *err, size_t errlen);

/* ts_config_load on text, the contents of the file path (named in messages) as
 * ts_config_read returned them; NULL text (and path): the built-in defaults. */
int ts_config_load_text(struct ts_config *cfg, const char *path, const char *text,
                        const struct ts_config_overrides *ov, char *err, size_t errlen);

/* Frees what ts_config_load allocated (safe on a zeroed or partly loaded config). */
void ts_config_free(struct ts_config *cfg);

/* The site a host name (SNI, or a Host header without its port) names: an exact name, else a
 * wildcard; case-insensitive, a trailing dot ignored. Returns its index in cfg->sites, or -1
 * when no site claims it (the caller falls back to the default site, index 0). */
int ts_config_find_site(const struct ts_config *cfg, const char *host, size_t len);

/* Parses "ADDR" or "ADDR/PREFIX" (IPv4 or IPv6). Returns 0 or -1. */
int ts_config_parse_cidr(const char *s, struct ts_cidr *out);

/* Whether an address (family AF_INET with 4 bytes or AF_INET6 with 16) is inside c. */
bool ts_cidr_contains(const struct ts_cidr *c, int family, const unsigned char *addr);

/* Splits "ADDR:PORT" / "[V6]:PORT" into host and port. Returns 0 or -1. */
int ts_config_split_listen(const char *spec, char *host, size_t hostlen, char *port,
                           size_t portlen);

#endif
