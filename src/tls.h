/* TLS: the one SSL_CTX every worker shares (protocols, ciphers, session cache, tickets) and the
 * non-blocking wrappers around SSL_* calls. Nothing outside tls.c calls SSL_get_error. */
#ifndef TS_TLS_H
#define TS_TLS_H

#include "hello.h"
#include "stats.h"

#include <openssl/types.h>
#include <stdbool.h>
#include <stddef.h>

struct ts_config;
struct ts_tls_sites;

/* KeyUpdates and renegotiation attempts a client may send in a row without application data
 * (as BoringSSL); one more closes the connection: each costs a key derivation and a reply. */
#define TS_TLS_POST_HANDSHAKE_MAX 32

enum ts_io {
    TS_IO_OK,
    TS_IO_WANT_READ,
    TS_IO_WANT_WRITE,
    TS_IO_CLOSE_NOTIFY, /* the peer sent close_notify: a clean end of its stream */
    TS_IO_EOF,          /* the peer closed the TCP stream (FIN or RST) without close_notify */
    TS_IO_ERROR,        /* fatal TLS or socket error: close quietly, no SSL_shutdown */
};

/* How a resumed handshake found its session. */
enum ts_resumption {
    TS_RESUMED_NONE,
    TS_RESUMED_TLS12_SESSION_ID,
    TS_RESUMED_TLS12_TICKET,
    TS_RESUMED_TLS13_TICKET,
};

/* One connection's TLS state; embedded in the connection, reached from OpenSSL callbacks
 * through SSL_get_app_data. */
struct ts_tls_conn {
    SSL *ssl;
    int fd;
    bool drained;      /* the last read(2) left the socket empty: a new byte will raise an edge */
    bool eof;          /* read(2) returned 0 */
    bool heard;        /* read(2) returned bytes at least once: the client began a handshake */
    bool proxy_header; /* the first bytes were a PROXY protocol header, not a ClientHello */
    char *wbuf;        /* records staged for one write(2), see tls.c */
    size_t woff, wlen, wcap;
    size_t wretry; /* the length of an SSL_write OpenSSL holds for a retry, or 0 */
    bool wblocked; /* the last send(2) said EAGAIN: none is tried before EPOLLOUT (ts_tls_writable)
                    */
    uint64_t flushed;       /* bytes handed to the socket so far (progress of a flush) */
    size_t read_budget;     /* bytes the socket BIO may still read in this turn */
    bool out_of_turn;       /* a read or write was refused because the budget ran out */
    uint8_t turn_messages;  /* KeyUpdates/renegotiation attempts in this turn */
    bool flooded;           /* passed TS_TLS_POST_HANDSHAKE_MAX: every SSL call fails */
    uint8_t flood_kind;     /* enum ts_flood, when flooded */
    uint8_t post_handshake; /* KeyUpdates/renegotiation attempts since application data */
    unsigned long err;      /* first OpenSSL error of the last failed call, 0 if none */
    int sys_errno;          /* errno of the last SSL_ERROR_SYSCALL */
    bool peer_close_notify; /* a close_notify alert was read (not just EOF) */
    bool ticket_decrypted;  /* the client's ticket was decrypted with one of our keys */
    bool sent_close_notify;
    int cert_err;         /* the most telling client-certificate error seen while verifying */
    X509 *err_cert;       /* the certificate cert_err is about (owned), NULL if none */
    bool chain_oversized; /* the client sent more certificates than could ever verify */
    SSL_CTX *session_ctx; /* the context the SSL was made from: session cache, ticket keys */
    const struct ts_tls_sites *sites; /* the connection's generation's: SNI chooses one */
    int site;                         /* index in cfg->sites chosen by SNI (0: the default site) */
    bool site_chosen;                 /* the client-hello callback ran */
    bool sni_refused;      /* tls.strict_sni: the name was unknown, unrecognized_name sent */
    struct ts_hello hello; /* the ClientHello guard and its hold buffer (hello.h) */
};

/* What the client's certificate says, worked out once per connection after the handshake
 * (from the session, so a resumed connection has the identity it was verified with). */
struct ts_cert_info {
    X509 *peer;          /* borrowed from the session; NULL if none was presented */
    char *subject;       /* RFC 2253 subject (malloc'ed), NULL if none presented */
    X509 *failed;        /* the chain certificate the verify error is about (borrowed), or NULL */
    bool failed_unknown; /* resumed: the error was about a chain certificate no longer known */
    long verify_result;  /* X509_V_OK or the error kept with the session */
    uint8_t reason;      /* enum ts_cert_reason */
    bool verified;       /* presented and verified against tls.client_ca */
    bool identity;       /* the subject may be shown and logged (verified, or optional_no_ca) */
};

/* Printable facts of a certificate for the 403 page; names are whole (malloc'ed). */
struct ts_cert_desc {
    char *subject, *issuer;
    char not_before[32], not_after[32], serial[64];
};

/* The session context: every SSL is made from it, and it holds what all sites and all
 * configuration generations share, the session cache and the ticket keys (cfg->tls's session
 * keys). Main thread, before workers start. Returns NULL with one message naming the key or
 * file in err. */
SSL_CTX *ts_tls_session_ctx_new(const struct ts_config *cfg, char *err, size_t errlen);

/* Frees the session context and the ticket keys. Main thread, after workers stopped. */
void ts_tls_session_ctx_free(SSL_CTX *ctx);

/* One generation's sites: an SSL_CTX per cfg->sites entry with its certificates, OCSP
 * responses and client-certificate policy, chosen by SNI in the client-hello callback. cfg
 * must outlive it. Returns NULL with a message naming the key or file in err. */
struct ts_tls_sites *ts_tls_sites_new(const struct ts_config *cfg, char *err, size_t errlen);
void ts_tls_sites_free(struct ts_tls_sites *st);

/* tls.ticket_key_file read again for a reload: read (validated; NULL with err naming the
 * key), then applied to the session context once the whole reload is known to succeed
 * (tickets under a key still in the file keep resuming). Main thread. */
struct ts_tls_ticket_file;
struct ts_tls_ticket_file *ts_tls_ticket_file_read(const struct ts_config *cfg, char *err,
                                                   size_t errlen);
void ts_tls_ticket_file_apply(SSL_CTX *ctx, const struct ts_tls_ticket_file *f);
void ts_tls_ticket_file_free(struct ts_tls_ticket_file *f);

/* The session cache's memory: the estimate charged for the sessions it admitted (until each is
 * freed), its budget (tls.session_cache.max_bytes), and the sessions left out for being
 * larger than max_session_bytes or for want of room. Any thread. */
struct ts_tls_cache_usage {
    uint64_t bytes, max_bytes, refused_oversized, refused_full;
};
void ts_tls_cache_usage(struct ts_tls_cache_usage *u);

/* The session-ticket keys: where they come from ("generated", "file", or "off" without
 * tickets), generated keys made since the start to replace one, the keys that decrypt
 * tickets now, and the age of the one that encrypts them. Any thread. */
struct ts_tls_ticket_info {
    const char *source;
    uint64_t rotations, keys, current_age_s;
};
void ts_tls_ticket_info(SSL_CTX *ctx, struct ts_tls_ticket_info *ti);

/* Rotates the generated ticket keys, or wipes a retired one, if its time has come (handshakes
 * do it too, unless another thread holds the keys' lock; this is for when none comes). Main
 * thread, once a second: it may wait for the lock, held for microseconds at a time. */
void ts_tls_ticket_keys_tick(SSL_CTX *ctx);

/* Creates the SSL for an accepted socket, in server mode. Returns 0 or -1. */
int ts_tls_conn_init(struct ts_tls_conn *t, SSL_CTX *ctx, const struct ts_tls_sites *sites, int fd);

/* Frees the SSL. After a clean exchange or a peer EOF the session stays resumable; after a
 * fatal error OpenSSL has already removed it from the cache. */
void ts_tls_conn_free(struct ts_tls_conn *t, bool keep_session);

/* Non-blocking steps; each returns what the caller must wait for. */
enum ts_io ts_tls_handshake(struct ts_tls_conn *t);
enum ts_io ts_tls_read(struct ts_tls_conn *t, void *buf, size_t len, size_t *got);
enum ts_io ts_tls_write(struct ts_tls_conn *t, const void *buf, size_t len, size_t *put);

/* Sends close_notify (once). TS_IO_OK when it is on the wire; the peer's close_notify is then
 * awaited with ts_tls_read, which reports TS_IO_CLOSE_NOTIFY. */
enum ts_io ts_tls_send_close_notify(struct ts_tls_conn *t);

/* Frees the record buffers of an idle connection (SSL_free_buffers and the staging buffer);
 * they come back when needed. */
void ts_tls_release_buffers(struct ts_tls_conn *t);

/* EPOLLOUT came: the socket has room again, sends are tried again. */
void ts_tls_writable(struct ts_tls_conn *t);
/* Starts a turn of the worker's loop for this connection: the socket BIO reads at most budget
 * bytes and OpenSSL handles a few KeyUpdates or renegotiation attempts until the next call, so
 * one SSL call cannot keep the worker (records that are not application data are processed
 * inside SSL_read without returning). */
void ts_tls_new_turn(struct ts_tls_conn *t, size_t budget);

/* True when the last WANT_READ came from the turn's budget, not from an empty socket: the
 * connection must run again without waiting for an epoll edge. */
bool ts_tls_out_of_turn(const struct ts_tls_conn *t);

/* Writes out the TLS records staged by earlier writes. TS_IO_OK when nothing is left,
 * TS_IO_WANT_WRITE when the socket is full (wait for EPOLLOUT), TS_IO_ERROR. */
enum ts_io ts_tls_flush(struct ts_tls_conn *t);

/* True when a read would certainly find nothing: OpenSSL holds no bytes and the last read(2)
 * drained the socket, so with edge-triggered epoll the connection can wait without trying. */
bool ts_tls_read_would_block(const struct ts_tls_conn *t);

/* The site the handshake selected (index in cfg->sites; 0, the default, without SNI). */
static inline int ts_tls_site(const struct ts_tls_conn *t)
{
    return t->site;
}

/* After a successful handshake: protocol (TLS1_2_VERSION / TLS1_3_VERSION) and resumption. */
int ts_tls_version(const struct ts_tls_conn *t);
enum ts_resumption ts_tls_resumption(const struct ts_tls_conn *t);

/* After the handshake: the client certificate outcome under the configured mode. Worker
 * thread. Release with ts_tls_cert_release. */
void ts_tls_cert_examine(const struct ts_tls_conn *t, int client_auth, struct ts_cert_info *ci);
void ts_tls_cert_release(struct ts_cert_info *ci);

/* The reason a failed required-mode handshake gives (TS_CERT_NONE without a certificate). */
enum ts_cert_reason ts_tls_cert_failure_reason(const struct ts_tls_conn *t);

/* Fills d from a certificate (subject, issuer, validity in ISO 8601, serial in hex). Release
 * with ts_tls_cert_desc_release. */
void ts_tls_cert_describe(X509 *x, struct ts_cert_desc *d);
void ts_tls_cert_desc_release(struct ts_cert_desc *d);

/* OpenSSL's text for an X509_V_ERR_* code. */
const char *ts_tls_verify_error_string(long err);

/* Classifies why the handshake failed from t->err / t->sys_errno. */
enum ts_hs_fail ts_tls_failure_reason(const struct ts_tls_conn *t);

/* One line describing t->err, for logs ("" when none). */
const char *ts_tls_error_string(const struct ts_tls_conn *t, char *buf, size_t len);

/* HTTP/2 is offered in ALPN only when the build has its codec: switching it on is this line
 * (plus the codec). Until then "http2": true in the configuration offers only http/1.1. */
#define TS_HAVE_H2 1

/* The application protocol a connection speaks, as negotiated by ALPN. */
enum ts_proto {
    TS_PROTO_HTTP11, /* "http/1.1" or "http/1.0" selected, or the client offered no ALPN */
    TS_PROTO_H2,     /* "h2" selected */
};

/* After the handshake: the protocol ALPN selected. A client whose ALPN list holds none of ours
 * never gets this far: its handshake fails with the no_application_protocol alert. */
enum ts_proto ts_tls_alpn(const struct ts_tls_conn *t);

/* The protocols offered, in the server's order of preference, as a comma-separated list
 * ("h2,http/1.1,http/1.0"), for --version. */
const char *ts_tls_alpn_offered(bool http2);

#endif
