/* The shared SSL_CTX (protocols, AEAD ciphers, session cache, ticket keys) and the only code
 * that interprets SSL_get_error: every call returns an enum ts_io to the state machine. */
#include "tls.h"
#include "config.h"
#include "log.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* TLS 1.2: ECDHE key exchange with AEAD ciphers only, ECDSA first (the default key type).
 * TLS 1.3 suites are all AEAD and always use (EC)DHE unless SSL_OP_ALLOW_NO_DHE_KEX is set. */
#define TLS12_CIPHERS                                                                              \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TLS_GROUPS "X25519:P-256"

/* Session-ticket keys. The first key encrypts new tickets; every key decrypts, so a key file
 * can rotate by prepending a new key. Same layout as nginx's 80-byte files. */
struct ticket_key {
    unsigned char name[16];
    unsigned char hmac[32];
    unsigned char aes[32];
};

struct ticket_keys {
    struct ticket_key *keys;
    size_t n;
    EVP_CIPHER *cipher; /* fetched once: implicit fetches per handshake are slow in 3.0 */
};

static int ctx_keys_index = -1;

static int load_ticket_keys(struct ticket_keys *tk, const char *file, char *err, size_t errlen)
{
    if (!file) {
        tk->keys = calloc(1, sizeof(*tk->keys));
        tk->n = 1;
        if (!tk->keys || RAND_bytes((unsigned char *)tk->keys, sizeof(*tk->keys)) != 1) {
            snprintf(err, errlen, "tls.session_tickets: cannot make a random ticket key");
            return -1;
        }
        return 0;
    }
    FILE *f = fopen(file, "rb");
    if (!f) {
        snprintf(err, errlen, "tls.ticket_key_file: %s: %s", file, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) < 0 || st.st_size <= 0 ||
        st.st_size % (off_t)sizeof(struct ticket_key) != 0 || st.st_size > 80 * 64) {
        snprintf(err, errlen,
                 "tls.ticket_key_file: %s: must hold 80 bytes per key, 1 to 64 keys (make one "
                 "with: openssl rand 80 > FILE)",
                 file);
        fclose(f);
        return -1;
    }
    tk->n = (size_t)st.st_size / sizeof(struct ticket_key);
    tk->keys = calloc(tk->n, sizeof(*tk->keys));
    if (!tk->keys || fread(tk->keys, sizeof(*tk->keys), tk->n, f) != tk->n) {
        snprintf(err, errlen, "tls.ticket_key_file: %s: read error", file);
        fclose(f);
        return -1;
    }
    fclose(f);
    return 0;
}

static int ticket_key_cb(SSL *ssl, unsigned char name[16], unsigned char *iv,
                         EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    const struct ticket_keys *tk = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_keys_index);
    const struct ticket_key *k = NULL;
    int rc = 1;
    if (enc) {
        k = &tk->keys[0];
        if (RAND_bytes(iv, 16) != 1) return -1;
        memcpy(name, k->name, 16);
        if (!EVP_EncryptInit_ex(cctx, tk->cipher, NULL, k->aes, iv)) return -1;
    } else {
        for (size_t i = 0; i < tk->n && !k; i++)
            if (memcmp(name, tk->keys[i].name, 16) == 0) k = &tk->keys[i];
        if (!k) return 0; /* unknown key: full handshake, and a fresh ticket */
        if (!EVP_DecryptInit_ex(cctx, tk->cipher, NULL, k->aes, iv)) return -1;
        struct ts_tls_conn *t = SSL_get_app_data(ssl);
        if (t) t->ticket_decrypted = true;
        if (k != &tk->keys[0]) rc = 2; /* an older key: renew the ticket under the newest */
    }
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac, sizeof(k->hmac)),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (!EVP_MAC_CTX_set_params(hctx, params)) return -1;
    return rc;
}

/* Tells a real close_notify from a bare EOF: with SSL_OP_IGNORE_UNEXPECTED_EOF both make
 * SSL_read return SSL_ERROR_ZERO_RETURN, but only the alert passes through here. */
static void info_cb(const SSL *ssl, int where, int ret)
{
    if ((where & SSL_CB_ALERT) && (where & SSL_CB_READ) && (ret & 0xff) == SSL_AD_CLOSE_NOTIFY) {
        struct ts_tls_conn *t = SSL_get_app_data(ssl);
        if (t) t->peer_close_notify = true;
    }
}

static void free_ticket_keys(struct ticket_keys *tk)
{
    if (!tk) return;
    if (tk->keys) OPENSSL_cleanse(tk->keys, tk->n * sizeof(*tk->keys));
    free(tk->keys);
    EVP_CIPHER_free(tk->cipher);
    free(tk);
}

/* "key: file: what: OpenSSL's reason" (file may be NULL). */
static void fail_ssl(char *err, size_t errlen, const char *key, const char *file, const char *what)
{
    char reason[256] = "unknown error";
    unsigned long e = ERR_peek_last_error();
    if (e) ERR_error_string_n(e, reason, sizeof(reason));
    ERR_clear_error();
    snprintf(err, errlen, "%s: %s%s%s: %s", key, file ? file : "", file ? ": " : "", what, reason);
}

/* The session ID context binds sessions (cached, or in tickets) to the policy that made them,
 * so a change of that policy can never resume a session verified under the old one. */
static int set_session_context(SSL_CTX *ctx, const struct ts_config *cfg)
{
    char policy[64];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    snprintf(policy, sizeof(policy), "tessera/1 client_auth=%d", 0);
    (void)cfg;
    if (!EVP_Digest(policy, strlen(policy), md, &mdlen, EVP_sha256(), NULL)) return -1;
    if (mdlen > SSL_MAX_SID_CTX_LENGTH) mdlen = SSL_MAX_SID_CTX_LENGTH;
    return SSL_CTX_set_session_id_context(ctx, md, mdlen) == 1 ? 0 : -1;
}

SSL_CTX *ts_tls_ctx_new(const struct ts_config *cfg, char *err, size_t errlen)
{
    struct ticket_keys *tk = NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        fail_ssl(err, errlen, "tls", NULL, "cannot create the TLS context");
        return NULL;
    }
    if (ctx_keys_index < 0)
        ctx_keys_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);

    SSL_CTX_set_min_proto_version(ctx, cfg->tls.min_version);
    SSL_CTX_set_max_proto_version(ctx, cfg->tls.max_version);
    if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, TLS13_SUITES) != 1 ||
        SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1) {
        fail_ssl(err, errlen, "tls", NULL, "cannot set ciphers or groups");
        goto fail;
    }
    /* No renegotiation (OpenSSL 3 already refuses client-initiated ones), no compression, our cipher order for TLS 1.2.
     * IGNORE_UNEXPECTED_EOF: a peer that closes without close_notify must not turn into a
     * fatal error, which would evict its session from the cache; info_cb still tells the two
     * apart. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Partial writes return after each record, and a retried write may come from a moved
     * buffer as long as it holds the same bytes. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls.certificate) != 1) {
        fail_ssl(err, errlen, "tls.certificate", cfg->tls.certificate, "cannot load certificate");
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls.key, SSL_FILETYPE_PEM) != 1) {
        fail_ssl(err, errlen, "tls.key", cfg->tls.key, "cannot load private key");
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        fail_ssl(err, errlen, "tls.key", cfg->tls.key, "does not match tls.certificate");
        goto fail;
    }

    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, cfg->tls.session_cache_size);
    SSL_CTX_set_timeout(ctx, cfg->tls.session_timeout_s);
    if (set_session_context(ctx, cfg) < 0) {
        fail_ssl(err, errlen, "tls", NULL, "cannot set the session ID context");
        goto fail;
    }
    if (cfg->tls.session_tickets) {
        tk = calloc(1, sizeof(*tk));
        if (!tk || load_ticket_keys(tk, cfg->tls.ticket_key_file, err, errlen) < 0) goto fail;
        tk->cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
        if (!tk->cipher) {
            fail_ssl(err, errlen, "tls.session_tickets", NULL, "AES-256-CBC unavailable");
            goto fail;
        }
        SSL_CTX_set_ex_data(ctx, ctx_keys_index, tk);
        SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb);
    } else {
        /* TLS 1.2 falls back to session IDs; TLS 1.3 issues stateful tickets kept in the
         * same cache. */
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    }
    SSL_CTX_set_info_callback(ctx, info_cb);
    return ctx;

fail:
    free_ticket_keys(tk);
    SSL_CTX_free(ctx);
    return NULL;
}

void ts_tls_ctx_free(SSL_CTX *ctx)
{
    if (!ctx) return;
    free_ticket_keys(SSL_CTX_get_ex_data(ctx, ctx_keys_index));
    SSL_CTX_free(ctx);
}

int ts_tls_conn_init(struct ts_tls_conn *t, SSL_CTX *ctx, int fd)
{
    memset(t, 0, sizeof(*t));
    ERR_clear_error();
    t->ssl = SSL_new(ctx);
    if (!t->ssl || SSL_set_fd(t->ssl, fd) != 1) {
        ts_log_ssl(TS_LOG_ERROR, "SSL_new failed");
        SSL_free(t->ssl);
        t->ssl = NULL;
        return -1;
    }
    SSL_set_app_data(t->ssl, t);
    SSL_set_accept_state(t->ssl);
    return 0;
}

void ts_tls_conn_free(struct ts_tls_conn *t, bool keep_session)
{
    if (!t->ssl) return;
    /* SSL_free evicts the session unless a shutdown was recorded; a peer that merely closed
     * without close_notify (or a timeout) has a perfectly good session. */
    if (keep_session && SSL_is_init_finished(t->ssl))
        SSL_set_shutdown(t->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(t->ssl);
    t->ssl = NULL;
}

/* Maps the result of an SSL_* call that failed (rc <= 0). */
static enum ts_io classify(struct ts_tls_conn *t, int rc)
{
    int saved_errno = errno;
    int e = SSL_get_error(t->ssl, rc);
    switch (e) {
    case SSL_ERROR_WANT_READ: return TS_IO_WANT_READ;
    case SSL_ERROR_WANT_WRITE: return TS_IO_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN: return t->peer_close_notify ? TS_IO_CLOSE_NOTIFY : TS_IO_EOF;
    case SSL_ERROR_SYSCALL:
        t->err = ERR_peek_error();
        t->sys_errno = saved_errno;
        ERR_clear_error();
        if (t->err == 0 && (saved_errno == 0 || saved_errno == ECONNRESET || saved_errno == EPIPE))
            return TS_IO_EOF;
        return TS_IO_ERROR;
    default:
        t->err = ERR_peek_error();
        ERR_clear_error();
        if (ERR_GET_REASON(t->err) == SSL_R_UNEXPECTED_EOF_WHILE_READING) return TS_IO_EOF;
        return TS_IO_ERROR;
    }
}

enum ts_io ts_tls_handshake(struct ts_tls_conn *t)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(t->ssl);
    return rc == 1 ? TS_IO_OK : classify(t, rc);
}

enum ts_io ts_tls_read(struct ts_tls_conn *t, void *buf, size_t len, size_t *got)
{
    ERR_clear_error();
    int rc = SSL_read_ex(t->ssl, buf, len, got);
    return rc == 1 ? TS_IO_OK : classify(t, rc);
}

enum ts_io ts_tls_write(struct ts_tls_conn *t, const void *buf, size_t len, size_t *put)
{
    ERR_clear_error();
    int rc = SSL_write_ex(t->ssl, buf, len, put);
    return rc == 1 ? TS_IO_OK : classify(t, rc);
}

enum ts_io ts_tls_send_close_notify(struct ts_tls_conn *t)
{
    ERR_clear_error();
    /* 0: our close_notify is out, the peer's not yet seen; 1: both done. A negative result
     * is a write that would block (retry) or an error. */
    int rc = SSL_shutdown(t->ssl);
    if (rc >= 0) {
        t->sent_close_notify = true;
        return TS_IO_OK;
    }
    return classify(t, rc);
}

void ts_tls_release_buffers(struct ts_tls_conn *t)
{
    SSL_free_buffers(t->ssl);
}

int ts_tls_version(const struct ts_tls_conn *t)
{
    return SSL_version(t->ssl);
}

enum ts_resumption ts_tls_resumption(const struct ts_tls_conn *t)
{
    if (!SSL_session_reused(t->ssl)) return TS_RESUMED_NONE;
    if (SSL_version(t->ssl) == TLS1_3_VERSION) return TS_RESUMED_TLS13_TICKET;
    return t->ticket_decrypted ? TS_RESUMED_TLS12_TICKET : TS_RESUMED_TLS12_SESSION_ID;
}

enum ts_hs_fail ts_tls_failure_reason(const struct ts_tls_conn *t)
{
    if (!t->err) return TS_HS_FAIL_PEER_CLOSED;
    if (ERR_GET_LIB(t->err) != ERR_LIB_SSL) return TS_HS_FAIL_OTHER;
    switch (ERR_GET_REASON(t->err)) {
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST: return TS_HS_FAIL_HTTP_ON_TLS_PORT;
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_UNKNOWN_PROTOCOL:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION: return TS_HS_FAIL_PROTOCOL_VERSION;
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SHARED_GROUPS:
    case SSL_R_NO_SUITABLE_KEY_SHARE: return TS_HS_FAIL_NO_SHARED_CIPHER;
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_CERTIFICATE_VERIFY_FAILED: return TS_HS_FAIL_CLIENT_CERT;
    case SSL_R_UNEXPECTED_EOF_WHILE_READING: return TS_HS_FAIL_PEER_CLOSED;
    default: return TS_HS_FAIL_BAD_MESSAGE;
    }
}

const char *ts_tls_error_string(const struct ts_tls_conn *t, char *buf, size_t len)
{
    if (t->err)
        ERR_error_string_n(t->err, buf, len);
    else if (t->sys_errno)
        snprintf(buf, len, "%s", strerror(t->sys_errno));
    else
        snprintf(buf, len, "connection closed by peer");
    return buf;
}
