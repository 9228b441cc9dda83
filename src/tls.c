/* The shared SSL_CTX (protocols, AEAD ciphers, session cache, ticket keys) and the only code
 * that interprets SSL_get_error: every call returns an enum ts_io to the state machine. */
#include "tls.h"
#include "config.h"
#include "log.h"
#include "ocsp.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

/* TLS 1.2: ECDHE key exchange with AEAD ciphers only, ECDSA first (the default key type).
 * TLS 1.3 suites are all AEAD and always use (EC)DHE unless SSL_OP_ALLOW_NO_DHE_KEX is set. */
#define TLS12_CIPHERS                                                                              \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TLS_GROUPS   "X25519:P-256"

/* Session-ticket keys, 80 bytes each as in nginx's files. keys[0] encrypts new tickets; every
 * key decrypts, and a ticket under another than keys[0] is renewed. Keys from
 * tls.ticket_key_file are fixed (the file rotates by prepending a new key). Generated keys are
 * replaced every tls.ticket_key_rotation_s, and each one retired keeps decrypting for the
 * session lifetime after, until the last ticket it encrypted has expired; then it is wiped.
 * Workers share the set: a rwlock held only to copy a key out, or to rotate (a RAND_bytes and
 * a few memmoves) by whichever thread first finds the time come. */
#define TICKET_KEYS_MAX 64

struct ticket_key {
    unsigned char name[16];
    unsigned char hmac[32];
    unsigned char aes[32];
};

struct ticket_keys {
    pthread_rwlock_t lock;
    struct ticket_key keys[TICKET_KEYS_MAX];
    int64_t retired_ms[TICKET_KEYS_MAX]; /* generated: when keys[i > 0] stopped encrypting */
    size_t n;
    bool generated;
    int64_t rotation_ms, keep_ms; /* keep_ms: how long a retired key still decrypts */
    int64_t created_ms;           /* of keys[0] */
    _Atomic int64_t next_ms;      /* the next rotation or wipe: until then, no lock to take */
    _Atomic uint64_t rotations;
    EVP_CIPHER *cipher; /* fetched once: implicit fetches per handshake are slow in 3.0 */
};

static int ctx_keys_index = -1;

/* Key ages and lifetimes on the monotonic clock: a step of the wall clock neither keeps a key
 * too long nor drops one early. */
static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Write lock held. Drops the retired keys whose tickets have all expired (the oldest are last),
 * then, when due, puts a new key first. */
static void rotate_locked(struct ticket_keys *tk, int64_t now)
{
    size_t keep = 1;
    while (keep < tk->n && now - tk->retired_ms[keep] < tk->keep_ms) keep++;
    bool due = now - tk->created_ms >= tk->rotation_ms;
    if (due && keep == TICKET_KEYS_MAX) keep--; /* not with a valid configuration */
    OPENSSL_cleanse(&tk->keys[keep], (tk->n - keep) * sizeof(tk->keys[0]));
    tk->n = keep;
    struct ticket_key fresh;
    if (due && RAND_bytes((unsigned char *)&fresh, sizeof(fresh)) == 1) {
        memmove(&tk->keys[1], &tk->keys[0], tk->n * sizeof(tk->keys[0]));
        memmove(&tk->retired_ms[1], &tk->retired_ms[0], tk->n * sizeof(tk->retired_ms[0]));
        tk->keys[0] = fresh;
        tk->retired_ms[1] = now;
        tk->n++;
        tk->created_ms = now;
        atomic_fetch_add_explicit(&tk->rotations, 1, memory_order_relaxed);
        OPENSSL_cleanse(&fresh, sizeof(fresh));
    } else if (due) {
        /* the current key goes on; tried again in a rotation period, so logged that often */
        tk->created_ms = now;
        ts_log_ssl(TS_LOG_ERROR, "TLS ticket key rotation: cannot make a random key");
    }
    int64_t next = tk->created_ms + tk->rotation_ms;
    if (tk->n > 1 && tk->retired_ms[tk->n - 1] + tk->keep_ms < next)
        next = tk->retired_ms[tk->n - 1] + tk->keep_ms;
    atomic_store_explicit(&tk->next_ms, next, memory_order_release);
}

/* Rotates or wipes when the time has come; costs an atomic load until then. A worker never
 * waits for the write lock: if another thread holds the lock, the next handshake, or the main
 * thread (wait), does it. */
static void ticket_keys_maintain(struct ticket_keys *tk, int64_t now, bool wait)
{
    if (!tk->generated || now < atomic_load_explicit(&tk->next_ms, memory_order_acquire)) return;
    if (wait)
        pthread_rwlock_wrlock(&tk->lock);
    else if (pthread_rwlock_trywrlock(&tk->lock) != 0)
        return;
    if (now >= atomic_load_explicit(&tk->next_ms, memory_order_relaxed)) rotate_locked(tk, now);
    pthread_rwlock_unlock(&tk->lock);
}

/* Copies the key a ticket names into *k if it still decrypts. Returns its index, or -1. */
static int ticket_key_find(struct ticket_keys *tk, const unsigned char name[16], int64_t now,
                           struct ticket_key *k)
{
    int found = -1;
    pthread_rwlock_rdlock(&tk->lock);
    for (size_t i = 0; i < tk->n; i++) {
        if (memcmp(name, tk->keys[i].name, 16) != 0) continue;
        /* a key past its time and not yet wiped decrypts nothing */
        if (i == 0 || !tk->generated || now - tk->retired_ms[i] < tk->keep_ms) {
            *k = tk->keys[i];
            found = (int)i;
        }
        break;
    }
    pthread_rwlock_unlock(&tk->lock);
    return found;
}

static int load_ticket_keys(struct ticket_keys *tk, const struct ts_config *cfg, char *err,
                            size_t errlen)
{
    const char *file = cfg->tls.ticket_key_file;
    tk->created_ms = now_ms();
    if (!file) {
        int64_t lifetime = cfg->tls.session_timeout_s;
        int64_t rotation =
            cfg->tls.ticket_key_rotation_s ? cfg->tls.ticket_key_rotation_s : lifetime;
        /* a retired key decrypts for the lifetime, and a second more: OpenSSL counts a
         * session's time in whole seconds */
        tk->keep_ms = (lifetime + 1) * 1000;
        tk->rotation_ms = rotation * 1000;
        if (1 + (tk->keep_ms + tk->rotation_ms - 1) / tk->rotation_ms > TICKET_KEYS_MAX) {
            snprintf(
                err, errlen,
                "tls.ticket_key_rotation_s: %lld s would keep more than %d keys alive "
                "for tls.session_cache.timeout_s %lld s; use at least %lld s",
                (long long)rotation, TICKET_KEYS_MAX, (long long)lifetime,
                (long long)((tk->keep_ms / 1000 + TICKET_KEYS_MAX - 2) / (TICKET_KEYS_MAX - 1)));
            return -1;
        }
        tk->generated = true;
        tk->n = 1;
        if (RAND_bytes((unsigned char *)tk->keys, sizeof(tk->keys[0])) != 1) {
            snprintf(err, errlen, "tls.session_tickets: cannot make a random ticket key");
            return -1;
        }
        atomic_store(&tk->next_ms, tk->created_ms + tk->rotation_ms);
        return 0;
    }
    if (cfg->tls.ticket_key_rotation_s) {
        snprintf(err, errlen,
                 "tls.ticket_key_rotation_s: applies to generated keys only, not to those of "
                 "tls.ticket_key_file (rotate the file: prepend a new key and reload)");
        return -1;
    }
    FILE *f = fopen(file, "rb");
    if (!f) {
        snprintf(err, errlen, "tls.ticket_key_file: %s: %s", file, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) < 0) {
        snprintf(err, errlen, "tls.ticket_key_file: %s: %s", file, strerror(errno));
        fclose(f);
        return -1;
    }
    if (st.st_size <= 0 || st.st_size % (off_t)sizeof(struct ticket_key) != 0 ||
        st.st_size > (off_t)sizeof(struct ticket_key) * TICKET_KEYS_MAX) {
        snprintf(err, errlen,
                 "tls.ticket_key_file: %s: holds %lld bytes, must hold 80 bytes per key, 1 to %d "
                 "keys (make one with: openssl rand 80 > FILE)",
                 file, (long long)st.st_size, TICKET_KEYS_MAX);
        fclose(f);
        return -1;
    }
    tk->n = (size_t)st.st_size / sizeof(struct ticket_key);
    if (fread(tk->keys, sizeof(tk->keys[0]), tk->n, f) != tk->n) {
        snprintf(err, errlen, "tls.ticket_key_file: %s: read error", file);
        fclose(f);
        return -1;
    }
    fclose(f);
    return 0;
}

static int ticket_key_cb(SSL *ssl, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
                         EVP_MAC_CTX *hctx, int enc)
{
    /* called on the session context's behalf (the default site's, where the keys are) */
    const struct ts_tls_conn *tc = SSL_get_app_data(ssl);
    struct ticket_keys *tk =
        SSL_CTX_get_ex_data(tc ? tc->session_ctx : SSL_get_SSL_CTX(ssl), ctx_keys_index);
    struct ticket_key k;
    int rc = 1;
    int64_t now = now_ms();
    if (!tk) return 0; /* a context without keys: no ticket, or a full handshake */
    ticket_keys_maintain(tk, now, false);
    if (enc) {
        if (RAND_bytes(iv, 16) != 1) return -1;
        pthread_rwlock_rdlock(&tk->lock);
        k = tk->keys[0];
        pthread_rwlock_unlock(&tk->lock);
        memcpy(name, k.name, 16);
        if (!EVP_EncryptInit_ex(cctx, tk->cipher, NULL, k.aes, iv)) rc = -1;
    } else {
        int i = ticket_key_find(tk, name, now, &k);
        if (i < 0) return 0; /* unknown or expired key: full handshake, and a fresh ticket */
        if (!EVP_DecryptInit_ex(cctx, tk->cipher, NULL, k.aes, iv)) rc = -1;
        struct ts_tls_conn *t = SSL_get_app_data(ssl);
        if (t) t->ticket_decrypted = true;
        /* 2 = issue a new ticket: under the newest key when an older one was used, and always
         * in TLS 1.3, where clients use each ticket once (OpenSSL's client drops a session it
         * resumed) and would otherwise fall back to a full handshake every other time. */
        if (rc == 1 && (i != 0 || SSL_version(ssl) == TLS1_3_VERSION)) rc = 2;
    }
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac, sizeof(k.hmac)),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (rc > 0 && !EVP_MAC_CTX_set_params(hctx, params)) rc = -1;
    /* the cipher and MAC contexts hold their own copies */
    OPENSSL_cleanse(&k, sizeof(k));
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

/* KeyUpdates or renegotiation attempts handled per turn: each costs a key derivation or a
 * record, around 0.1 ms, so a client sending them between bytes of its request header (which
 * resets the flood count) gets a small slice of the worker at a time. */
#define TURN_MESSAGES 8

/* True when the turn's share of post-handshake messages is used up: the socket BIO then
 * refuses reads and writes until the next turn, which stops OpenSSL at the next record. */
static bool turn_spent(struct ts_tls_conn *t)
{
    if (t->turn_messages < TURN_MESSAGES && t->read_budget > 0) return false;
    t->out_of_turn = true;
    return true;
}

static void note_post_handshake(struct ts_tls_conn *t, enum ts_flood kind)
{
    if (t->turn_messages < UINT8_MAX) t->turn_messages++;
    if (t->flooded || ++t->post_handshake <= TS_TLS_POST_HANDSHAKE_MAX) return;
    t->flooded = true;
    t->flood_kind = (uint8_t)kind;
}

/* Counts what a client can make the server do over and over after the handshake for free:
 * TLS 1.3 KeyUpdates (each a key derivation, and a KeyUpdate back when requested) and TLS 1.2
 * renegotiation ClientHellos, which OpenSSL refuses with a no_renegotiation warning alert but
 * reads and answers one by one. Application data read resets the count (ts_tls_read). */
static void msg_cb(int write_p, int version, int content_type, const void *buf, size_t len,
                   SSL *ssl, void *arg)
{
    (void)version;
    (void)arg;
    const unsigned char *p = buf;
    struct ts_tls_conn *t = SSL_get_app_data(ssl);
    if (!t || len < 2) return;
    if (!write_p && content_type == SSL3_RT_HANDSHAKE && p[0] == SSL3_MT_KEY_UPDATE)
        note_post_handshake(t, TS_FLOOD_KEY_UPDATE);
    else if (write_p && content_type == SSL3_RT_ALERT && p[1] == SSL_AD_NO_RENEGOTIATION)
        note_post_handshake(t, TS_FLOOD_RENEGOTIATION);
}

static void free_ticket_keys(struct ticket_keys *tk)
{
    if (!tk) return;
    OPENSSL_cleanse(tk->keys, sizeof(tk->keys));
    pthread_rwlock_destroy(&tk->lock);
    EVP_CIPHER_free(tk->cipher);
    free(tk);
}

void ts_tls_ticket_keys_tick(SSL_CTX *ctx)
{
    struct ticket_keys *tk = ctx ? SSL_CTX_get_ex_data(ctx, ctx_keys_index) : NULL;
    if (tk) ticket_keys_maintain(tk, now_ms(), true);
}

struct ts_tls_ticket_file {
    struct ticket_keys keys; /* only n, keys and created_ms are used */
};

struct ts_tls_ticket_file *ts_tls_ticket_file_read(const struct ts_config *cfg, char *err,
                                                   size_t errlen)
{
    struct ts_tls_ticket_file *f = calloc(1, sizeof(*f));
    if (!f) abort();
    if (load_ticket_keys(&f->keys, cfg, err, errlen) < 0) {
        ts_tls_ticket_file_free(f);
        return NULL;
    }
    return f;
}

void ts_tls_ticket_file_free(struct ts_tls_ticket_file *f)
{
    if (!f) return;
    OPENSSL_cleanse(f->keys.keys, sizeof(f->keys.keys));
    free(f);
}

void ts_tls_ticket_file_apply(SSL_CTX *ctx, const struct ts_tls_ticket_file *f)
{
    struct ticket_keys *tk = SSL_CTX_get_ex_data(ctx, ctx_keys_index);
    if (!tk || tk->generated) return;
    pthread_rwlock_wrlock(&tk->lock);
    bool changed =
        tk->n != f->keys.n || memcmp(tk->keys, f->keys.keys, tk->n * sizeof(tk->keys[0]));
    if (changed) {
        memcpy(tk->keys, f->keys.keys, f->keys.n * sizeof(tk->keys[0]));
        OPENSSL_cleanse(&tk->keys[f->keys.n], (TICKET_KEYS_MAX - f->keys.n) * sizeof(tk->keys[0]));
        tk->n = f->keys.n;
        tk->created_ms = f->keys.created_ms;
    }
    pthread_rwlock_unlock(&tk->lock);
    if (changed) atomic_fetch_add_explicit(&tk->rotations, 1, memory_order_relaxed);
}

void ts_tls_ticket_info(SSL_CTX *ctx, struct ts_tls_ticket_info *ti)
{
    /* no context: a server without TLS (the fuzz targets' memory transport) */
    struct ticket_keys *tk = ctx ? SSL_CTX_get_ex_data(ctx, ctx_keys_index) : NULL;
    memset(ti, 0, sizeof(*ti));
    ti->source = !tk ? "off" : tk->generated ? "generated" : "file";
    if (!tk) return;
    int64_t now = now_ms();
    pthread_rwlock_rdlock(&tk->lock);
    for (size_t i = 0; i < tk->n; i++)
        if (i == 0 || !tk->generated || now - tk->retired_ms[i] < tk->keep_ms) ti->keys++;
    ti->current_age_s = (uint64_t)(now - tk->created_ms) / 1000;
    pthread_rwlock_unlock(&tk->lock);
    ti->rotations = atomic_load_explicit(&tk->rotations, memory_order_relaxed);
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

/* Feeds a file's bytes to a digest (the session context covers the CA and CRL contents). */
static int digest_file(EVP_MD_CTX *md, const char *file)
{
    if (!file) return EVP_DigestUpdate(md, "-", 1);
    FILE *f = fopen(file, "rb");
    if (!f) return 0;
    char buf[4096];
    size_t n;
    int ok = 1;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) ok &= EVP_DigestUpdate(md, buf, n);
    fclose(f);
    return ok;
}

/* The session ID context binds sessions (cached, or in tickets) to the site and the
 * client-auth policy that verified them: the site's names (or being the default site), the
 * mode, trusted CAs, CRLs and depth. OpenSSL refuses to resume a session made under another
 * context (TLS 1.2 session IDs and tickets in ssl_get_prev_session, TLS 1.3 PSKs when the
 * pre_shared_key extension is parsed), so neither a policy change nor a session from another
 * site can let a client in without the handshake that site would have asked for. Nothing else
 * goes in: a reload that renews the site's certificate, or moves the site in the list, leaves
 * its sessions resuming. */
static int session_context(const struct ts_site *site, size_t idx, unsigned char *md,
                           unsigned *mdlen)
{
    char policy[96];
    snprintf(policy, sizeof(policy), "tessera/3 default=%d client_auth=%d depth=%d", idx == 0,
             (int)site->client_auth, site->verify_depth);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    int ok = m && EVP_DigestInit_ex(m, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(m, policy, strlen(policy) + 1);
    for (size_t i = 0; ok && i < site->nnames; i++)
        ok = EVP_DigestUpdate(m, site->names[i], strlen(site->names[i]) + 1);
    ok = ok && digest_file(m, site->client_auth ? site->client_ca : NULL) &&
         digest_file(m, site->client_auth ? site->client_crl : NULL) &&
         EVP_DigestFinal_ex(m, md, mdlen);
    EVP_MD_CTX_free(m);
    if (*mdlen > SSL_MAX_SID_CTX_LENGTH) *mdlen = SSL_MAX_SID_CTX_LENGTH;
    return ok ? 0 : -1;
}

/* ---- client certificates ---- */

static enum ts_cert_reason reason_of(long err)
{
    switch (err) {
    case X509_V_OK: return TS_CERT_OK;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_CHAIN_TOO_LONG: return TS_CERT_UNTRUSTED_ISSUER;
    case X509_V_ERR_CERT_HAS_EXPIRED: return TS_CERT_EXPIRED;
    case X509_V_ERR_CERT_NOT_YET_VALID: return TS_CERT_NOT_YET_VALID;
    case X509_V_ERR_CERT_REVOKED: return TS_CERT_REVOKED;
    case X509_V_ERR_INVALID_PURPOSE: return TS_CERT_WRONG_PURPOSE;
    default: return TS_CERT_INVALID;
    }
}

/* When a certificate has several faults, the one the client can least fix by itself is the
 * one to report: an unknown issuer means its identity is unknown, whatever its dates say. */
static int rank(long err)
{
    if (err == X509_V_OK) return 0;
    switch (reason_of(err)) {
    case TS_CERT_UNTRUSTED_ISSUER: return 6;
    case TS_CERT_REVOKED: return 5;
    case TS_CERT_EXPIRED:
    case TS_CERT_NOT_YET_VALID: return 4;
    case TS_CERT_WRONG_PURPOSE: return 3;
    default: return 2;
    }
}

static struct ts_tls_conn *conn_of_store(X509_STORE_CTX *x)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    return ssl ? SSL_get_app_data(ssl) : NULL;
}

/* Keeps the most telling error and leaves it as the store's error, which OpenSSL saves as the
 * session's verify result (so a resumed session reports the same reason). */
static int note_error(int ok, X509_STORE_CTX *x)
{
    struct ts_tls_conn *t = conn_of_store(x);
    if (!t) return ok;
    int err = X509_STORE_CTX_get_error(x);
    if (!ok && rank(err) > rank(t->cert_err)) {
        t->cert_err = err;
        /* the 403 page shows the certificate at fault, which may be an intermediate */
        X509 *cur = X509_STORE_CTX_get_current_cert(x);
        if (cur && X509_up_ref(cur)) {
            X509_free(t->err_cert);
            t->err_cert = cur;
        }
    }
    if (t->cert_err) X509_STORE_CTX_set_error(x, t->cert_err);
    return ok;
}

/* optional / optional_no_ca: the handshake never fails over the certificate; the outcome is
 * kept and judged per request. */
static int verify_optional(int ok, X509_STORE_CTX *x)
{
    note_error(ok, x);
    return 1;
}

/* required: OpenSSL's verdict stands and sends the alert; the reason is kept for counting. */
static int verify_required(int ok, X509_STORE_CTX *x)
{
    return note_error(ok, x);
}

/* ---- session lifetime ----
 * A session with a client certificate carries, in its ticket application data (which OpenSSL
 * serializes into tickets and copies into every TLS 1.3 successor session), the deadline of
 * the verification: session_timeout_s after it, or the chain's earliest notAfter if sooner.
 * Each session's timeout is cut to end at that deadline. Without this a TLS 1.3 client that
 * resumes within the timeout would keep its identity forever: every new ticket restarts the
 * session clock. OpenSSL then refuses the expired session and a full handshake verifies the
 * certificate again. */
#define MARK_LEN 10 /* version, error-not-on-leaf flag, deadline (8 bytes, big-endian) */

static time_t asn1_time_t(const ASN1_TIME *at, time_t fallback)
{
    struct tm tm;
    if (!at || ASN1_TIME_to_tm(at, &tm) != 1) return fallback;
    return timegm(&tm);
}

static bool read_mark(SSL_SESSION *s, int64_t *deadline, bool *err_not_leaf)
{
    void *data = NULL;
    size_t len = 0;
    if (!s || SSL_SESSION_get0_ticket_appdata(s, &data, &len) != 1 || len != MARK_LEN) return false;
    const unsigned char *p = data;
    if (p[0] != 1) return false;
    uint64_t d = 0;
    for (int i = 2; i < MARK_LEN; i++) d = d << 8 | p[i];
    *deadline = (int64_t)d;
    *err_not_leaf = p[1] != 0;
    return true;
}

/* Shortens the session's lifetime so that it ends at the deadline (never lengthens it). At
 * least a second: OpenSSL 3.0 fails a TLS 1.3 handshake that issues a ticket of lifetime 0;
 * ticket_dec_cb refuses the ticket once the deadline has passed. A stateful TLS 1.3 ticket
 * (session_tickets false) never reaches ticket_dec_cb: the cache only compares time + timeout
 * with the clock, so a successor issued at or after the deadline starts a second before it,
 * else a client resuming every second would keep a timeout of 1 s renewed forever. */
static void bound_timeout(SSL_SESSION *s, int64_t deadline)
{
    int64_t left = deadline - (int64_t)SSL_SESSION_get_time(s);
    if (left < 1) {
        SSL_SESSION_set_time(s, (long)(deadline - 1));
        SSL_SESSION_set_timeout(s, 1);
        return;
    }
    if (left < SSL_SESSION_get_timeout(s)) SSL_SESSION_set_timeout(s, (long)left);
}

static void mark_session(SSL *ssl, X509_STORE_CTX *x, bool verified)
{
    SSL_SESSION *s = SSL_get_session(ssl);
    struct ts_tls_conn *t = SSL_get_app_data(ssl);
    if (!s) return;
    time_t now = time(NULL);
    int64_t deadline = (int64_t)now + SSL_CTX_get_timeout(SSL_get_SSL_CTX(ssl)); /* same in all */
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(x);
    for (int i = 0; verified && i < sk_X509_num(chain); i++) {
        time_t na = asn1_time_t(X509_get0_notAfter(sk_X509_value(chain, i)), (time_t)deadline);
        if ((int64_t)na < deadline) deadline = na;
    }
    unsigned char m[MARK_LEN] = {1, 0};
    m[1] = t && t->err_cert && t->err_cert != X509_STORE_CTX_get0_cert(x);
    for (int i = MARK_LEN - 1; i >= 2; i--, deadline >>= 8) m[i] = (unsigned char)(deadline & 0xff);
    SSL_SESSION_set1_ticket_appdata(s, m, sizeof(m));
    int64_t d;
    bool unused;
    if (read_mark(s, &d, &unused)) bound_timeout(s, d);
}

/* Every new ticket (TLS 1.2, TLS 1.3 stateless or stateful): the session it stands for ends at
 * the deadline of the original verification, not session_timeout_s from now. */
static int ticket_gen_cb(SSL *ssl, void *arg)
{
    (void)arg;
    SSL_SESSION *s = SSL_get_session(ssl);
    int64_t deadline;
    bool unused;
    if (read_mark(s, &deadline, &unused)) bound_timeout(s, deadline);
    return 1;
}

/* A decrypted ticket past its deadline is ignored: full handshake, and a new ticket. OpenSSL's
 * own expiry check would also refuse it, but in TLS 1.3 only after accepting the PSK, which
 * fails the handshake. So is a ticket with a certificate but no deadline (issued by a version
 * without them, under a shared ticket_key_file): each TLS 1.3 resumption would renew it. */
static SSL_TICKET_RETURN ticket_dec_cb(SSL *ssl, SSL_SESSION *s, const unsigned char *keyname,
                                       size_t keyname_len, SSL_TICKET_STATUS status, void *arg)
{
    (void)ssl;
    (void)keyname;
    (void)keyname_len;
    (void)arg;
    int64_t deadline;
    bool unused;
    switch (status) {
    case SSL_TICKET_SUCCESS:
    case SSL_TICKET_SUCCESS_RENEW:
        if (read_mark(s, &deadline, &unused) ? (int64_t)time(NULL) >= deadline
                                             : SSL_SESSION_get0_peer(s) != NULL)
            return SSL_TICKET_RETURN_IGNORE_RENEW;
        return status == SSL_TICKET_SUCCESS ? SSL_TICKET_RETURN_USE : SSL_TICKET_RETURN_USE_RENEW;
    case SSL_TICKET_NONE: return SSL_TICKET_RETURN_IGNORE;
    default: return SSL_TICKET_RETURN_IGNORE_RENEW;
    }
}

/* Replaces verification: refuses a chain longer than any that could verify (leaf, verify_depth
 * intermediates, and the trust anchor if the client sends it) before OpenSSL walks it, then
 * verifies and marks the session with its deadline. */
static int verify_chain(X509_STORE_CTX *x, void *arg)
{
    (void)arg;
    SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct ts_tls_conn *t = ssl ? SSL_get_app_data(ssl) : NULL;
    if (!ssl || !t) return 0;
    if (sk_X509_num(X509_STORE_CTX_get0_untrusted(x)) > SSL_get_verify_depth(ssl) + 2) {
        t->chain_oversized = true;
        X509_STORE_CTX_set_error(x, X509_V_ERR_CERT_CHAIN_TOO_LONG);
        return 0;
    }
    int ok = X509_verify_cert(x);
    mark_session(ssl, x, ok == 1 && X509_STORE_CTX_get_error(x) == X509_V_OK);
    return ok;
}

/* ---- the session cache, bounded by memory ----
 * OpenSSL bounds its cache by entries only, and one entry can hold a client certificate of up
 * to max_client_chain_bytes. So sessions enter the cache here only (the internal store is
 * off), each charged an estimate of its memory against session_cache.max_bytes. The charge
 * sits in the session's ex_data and comes back when the session is freed, whatever dropped it
 * (eviction, expiry, a fatal alert, SSL_CTX_free): removal callbacks can run twice, or not for
 * the entry removed, so freeing is the one event that happens exactly once.
 * A session that does not fit is not cached: its connection goes on, only resumption is lost. */
/* SSL_SESSION, its hash entry, the parsed X509 beyond its DER, allocator slack: measured at
 * 5.4 to 6 kB of RSS per session beyond twice its DER (tests/integration/57-session-cache.sh) */
#define SESSION_OVERHEAD 8192

static int sess_cost_index = -1;
static _Atomic uint64_t cache_bytes, cache_refused_oversized, cache_refused_full;
static _Atomic int64_t cache_last_flush; /* when a full budget last swept out expired sessions */
static uint64_t cache_max_bytes, cache_max_session_bytes; /* set before workers start */

static void sess_cost_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                           void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    if (ptr) atomic_fetch_sub_explicit(&cache_bytes, (uintptr_t)ptr, memory_order_relaxed);
}

/* A duplicate (each TLS 1.3 ticket after the first) is charged only if it enters the cache. */
static int sess_cost_dup(CRYPTO_EX_DATA *to, const CRYPTO_EX_DATA *from, void **from_d, int idx,
                         long argl, void *argp)
{
    (void)to, (void)from, (void)idx, (void)argl, (void)argp;
    *from_d = NULL;
    return 1;
}

/* Reserves cost bytes of the budget; compare-and-swap so that the total never exceeds it, even
 * for a moment, whatever the workers do at once. */
static bool charge(uint64_t cost)
{
    uint64_t cur = atomic_load_explicit(&cache_bytes, memory_order_relaxed);
    do {
        if (cur > cache_max_bytes || cost > cache_max_bytes - cur) return false;
    } while (!atomic_compare_exchange_weak_explicit(&cache_bytes, &cur, cur + cost,
                                                    memory_order_relaxed, memory_order_relaxed));
    return true;
}

/* Expired sessions keep their charge until OpenSSL sweeps them (every 255 handshakes); a full
 * budget sweeps at once, but at most once a second: a sweep walks the whole cache under its
 * lock. Returns whether this call swept. */
static bool flush_expired(SSL_CTX *ctx)
{
    int64_t now = (int64_t)time(NULL);
    int64_t last = atomic_load_explicit(&cache_last_flush, memory_order_relaxed);
    if (last == now ||
        !atomic_compare_exchange_strong_explicit(&cache_last_flush, &last, now,
                                                 memory_order_relaxed, memory_order_relaxed))
        return false;
    SSL_CTX_flush_sessions(ctx, (long)now);
    return true;
}

/* A server-side session holds the client's whole chain as sent, up to max_client_chain_bytes
 * of it; only the leaf and the verify result are ever used. The serialized form has no chain,
 * so such a session is cached as its own round trip through i2d/d2i. */
static SSL_SESSION *leaf_only(const unsigned char *der, int len)
{
    const unsigned char *r = der;
    return d2i_SSL_SESSION(NULL, &r, len);
}

static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    /* what OpenSSL would store itself: TLS 1.2 session IDs, and TLS 1.3 stateful tickets
     * (tickets off; stateless ones carry the leaf only already) */
    if (SSL_version(ssl) == TLS1_3_VERSION && !(SSL_get_options(ssl) & SSL_OP_NO_TICKET)) return 0;
    if (SSL_SESSION_get_ex_data(sess, sess_cost_index)) return 0; /* cached already */
    int len = i2d_SSL_SESSION(sess, NULL);
    if (len <= 0) return 0;
    if ((uint64_t)len > cache_max_session_bytes) {
        atomic_fetch_add_explicit(&cache_refused_oversized, 1, memory_order_relaxed);
        return 0;
    }
    /* the DER of the leaf is kept next to its parsed form, which copies most of it again */
    uint64_t cost = 2 * (uint64_t)len + SESSION_OVERHEAD;
    /* the session context, not SSL_get_SSL_CTX: that is the site's once SNI has chosen one */
    SSL_CTX *cache = ((struct ts_tls_conn *)SSL_get_app_data(ssl))->session_ctx;
    if (!charge(cost) && !(flush_expired(cache) && charge(cost))) {
        atomic_fetch_add_explicit(&cache_refused_full, 1, memory_order_relaxed);
        return 0;
    }
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl); /* server side: without the leaf */
    SSL_SESSION *keep = NULL;
    if ((chain && sk_X509_num(chain) > 0) || SSL_get_session(ssl) != sess) {
        unsigned char *der = malloc((size_t)len), *w = der;
        if (der && i2d_SSL_SESSION(sess, &w) == len) keep = leaf_only(der, len);
        free(der);
    } else if (SSL_SESSION_up_ref(sess) == 1) {
        keep = sess; /* still private to this connection: not in the cache yet */
    }
    if (!keep || !SSL_SESSION_set_ex_data(keep, sess_cost_index, (void *)(uintptr_t)cost)) {
        atomic_fetch_sub_explicit(&cache_bytes, cost, memory_order_relaxed);
        SSL_SESSION_free(keep);
        return 0;
    }
    SSL_CTX_add_session(cache, keep); /* the cache takes its own reference */
    SSL_SESSION_free(keep);
    return 0; /* no reference to sess kept */
}

void ts_tls_cache_usage(struct ts_tls_cache_usage *u)
{
    u->bytes = atomic_load_explicit(&cache_bytes, memory_order_relaxed);
    u->max_bytes = cache_max_bytes;
    u->refused_oversized = atomic_load_explicit(&cache_refused_oversized, memory_order_relaxed);
    u->refused_full = atomic_load_explicit(&cache_refused_full, memory_order_relaxed);
}

/* A site's key in messages: "tls.KEY" for the default site, "sites[N] (name).KEY" else. */
static const char *site_key(const struct ts_site *site, const char *key, char *buf, size_t len)
{
    if (site->borrowed)
        snprintf(buf, len, "tls.%s", key);
    else
        snprintf(buf, len, "%s.%s", site->label, key);
    return buf;
}

static int setup_client_auth(SSL_CTX *ctx, const struct ts_config *cfg, const struct ts_site *site,
                             char *err, size_t errlen)
{
    const char *ca = site->client_ca, *crl = site->client_crl;
    char k[192];
    if (ca) {
        if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
            fail_ssl(err, errlen, site_key(site, "client_ca", k, sizeof(k)), ca,
                     "cannot load CA certificates");
            return -1;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
        if (!names || sk_X509_NAME_num(names) == 0) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            fail_ssl(err, errlen, site_key(site, "client_ca", k, sizeof(k)), ca,
                     "no CA certificate found");
            return -1;
        }
        SSL_CTX_set_client_CA_list(ctx, names); /* sent as the acceptable issuers */
    }
    if (crl) {
        X509_STORE *store = SSL_CTX_get_cert_store(ctx);
        X509_LOOKUP *lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
        if (!lookup || X509_load_crl_file(lookup, crl, X509_FILETYPE_PEM) <= 0) {
            fail_ssl(err, errlen, site_key(site, "client_crl", k, sizeof(k)), crl,
                     "cannot load a CRL");
            return -1;
        }
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    }
    SSL_CTX_set_verify_depth(ctx, site->verify_depth);
    /* the client's Certificate message: OpenSSL's default is 100 KB */
    SSL_CTX_set_max_cert_list(ctx, (size_t)cfg->tls.max_client_chain_bytes);
    SSL_CTX_set_cert_verify_callback(ctx, verify_chain, NULL);
    if (site->client_auth == TS_CLIENT_AUTH_REQUIRED)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_required);
    else
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_optional);
    return 0;
}

/* The whole RFC 2253 name (malloc'ed; "" when it cannot be printed, NULL only without memory):
 * never cut, so two long subjects cannot log alike. */
static char *name_string(X509_NAME *name)
{
    char *out = NULL;
    BIO *b = BIO_new(BIO_s_mem());
    if (b && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) {
        char *p;
        long n = BIO_get_mem_data(b, &p);
        out = malloc(n > 0 ? (size_t)n + 1 : 1);
        if (out) {
            if (n > 0) memcpy(out, p, (size_t)n);
            out[n > 0 ? n : 0] = '\0';
        }
    } else {
        out = strdup("");
    }
    BIO_free(b);
    return out;
}

void ts_tls_cert_examine(const struct ts_tls_conn *t, int client_auth, struct ts_cert_info *ci)
{
    memset(ci, 0, sizeof(*ci));
    ci->peer = SSL_get0_peer_certificate(t->ssl);
    if (!ci->peer) {
        ci->reason = TS_CERT_NONE;
        ci->verify_result = X509_V_OK;
        return;
    }
    ci->verify_result = SSL_get_verify_result(t->ssl);
    ci->reason = (uint8_t)reason_of(ci->verify_result);
    ci->verified = ci->verify_result == X509_V_OK;
    ci->identity = ci->verified || (client_auth == TS_CLIENT_AUTH_OPTIONAL_NO_CA &&
                                    ci->reason == TS_CERT_UNTRUSTED_ISSUER);
    ci->failed = t->err_cert;
    int64_t deadline;
    bool err_not_leaf = false;
    if (!ci->failed && !ci->verified &&
        read_mark(SSL_get_session(t->ssl), &deadline, &err_not_leaf))
        ci->failed_unknown = err_not_leaf;
    ci->subject = name_string(X509_get_subject_name(ci->peer));
}

void ts_tls_cert_release(struct ts_cert_info *ci)
{
    free(ci->subject);
    ci->subject = NULL;
    ci->peer = NULL;
}

enum ts_cert_reason ts_tls_cert_failure_reason(const struct ts_tls_conn *t)
{
    return t->cert_err ? reason_of(t->cert_err) : TS_CERT_NONE;
}

static void time_string(const ASN1_TIME *at, char *buf, size_t len)
{
    struct tm tm;
    if (!at || ASN1_TIME_to_tm(at, &tm) != 1) {
        snprintf(buf, len, "?");
        return;
    }
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void ts_tls_cert_describe(X509 *x, struct ts_cert_desc *d)
{
    d->subject = name_string(X509_get_subject_name(x));
    d->issuer = name_string(X509_get_issuer_name(x));
    time_string(X509_get0_notBefore(x), d->not_before, sizeof(d->not_before));
    time_string(X509_get0_notAfter(x), d->not_after, sizeof(d->not_after));
    d->serial[0] = '\0';
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    if (hex) snprintf(d->serial, sizeof(d->serial), "%s", hex);
    OPENSSL_free(hex);
    BN_free(bn);
}

void ts_tls_cert_desc_release(struct ts_cert_desc *d)
{
    free(d->subject);
    free(d->issuer);
    d->subject = d->issuer = NULL;
}

const char *ts_tls_verify_error_string(long err)
{
    return X509_verify_cert_error_string(err);
}

/* ---- the socket BIO ----
 * OpenSSL writes one record per write call. Staging records in a small buffer and handing
 * the kernel up to STAGE_CAP at once cuts the write(2) calls of a bulk transfer fourfold;
 * the stage is flushed when it fills, when OpenSSL flushes (end of a handshake flight, an
 * alert), and by the connection before it waits. Reads record whether they drained the
 * socket, which lets an idle keep-alive connection wait without a read that would fail. */
#define STAGE_CAP (4 * (16384 + 512))

static BIO_METHOD *sock_method;

/* 1: stage empty; 0: the socket is full; -1: error (errno). After an EAGAIN no send(2) is
 * tried until EPOLLOUT says there is room (ts_tls_writable): every write of a response would
 * otherwise retry one that can only fail. */
static int stage_flush(struct ts_tls_conn *t)
{
    if (t->wblocked && t->woff < t->wlen) return 0;
    while (t->woff < t->wlen) {
        ssize_t n = send(t->fd, t->wbuf + t->woff, t->wlen - t->woff, MSG_NOSIGNAL);
        if (n > 0) {
            t->woff += (size_t)n;
            t->flushed += (uint64_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            t->wblocked = true;
            return 0;
        }
        return -1;
    }
    t->woff = t->wlen = 0;
    return 1;
}

static int sock_write(BIO *b, const char *data, size_t len, size_t *written)
{
    struct ts_tls_conn *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    /* stops OpenSSL at the reply to the message that passed the limit or the turn's share */
    if (t->flooded || (t->turn_messages >= TURN_MESSAGES && turn_spent(t))) {
        BIO_set_retry_write(b);
        return 0;
    }
    if (!t->wbuf) {
        if (!(t->wbuf = malloc(STAGE_CAP))) return 0;
        t->wcap = STAGE_CAP;
    }
    if (t->wcap - t->wlen < len) {
        int r = stage_flush(t);
        if (r < 0) return 0;
        if (t->woff > 0) { /* partly sent: keep the rest at the front */
            memmove(t->wbuf, t->wbuf + t->woff, t->wlen - t->woff);
            t->wlen -= t->woff;
            t->woff = 0;
        }
        /* A record is never refused for want of room: OpenSSL would hold it half written,
         * and a read that must write meanwhile (the answer to a KeyUpdate while a response
         * waits for the socket) would fail. ts_tls_write gives SSL_write only what fits, so
         * only such small records make the stage grow past STAGE_CAP. */
        if (t->wcap - t->wlen < len) {
            char *nb = realloc(t->wbuf, t->wlen + len);
            if (!nb) return 0;
            t->wbuf = nb;
            t->wcap = t->wlen + len;
        }
    }
    memcpy(t->wbuf + t->wlen, data, len);
    t->wlen += len;
    *written = len;
    return 1;
}

/* Sends what OpenSSL itself sends when it refuses a handshake message for its size: a fatal
 * illegal_parameter alert. OpenSSL has no call to send an alert, and never sees the refused
 * ClientHello; before the ServerHello (and after a HelloRetryRequest, whose keys are not yet in
 * use) the alert is a plaintext record, 0x0303 as OpenSSL writes its own. Straight to the
 * socket, which has room, unless records wait in the stage (a HelloRetryRequest the socket
 * did not take): the failed handshake flushes it (start_linger in conn.c). */
static void send_hello_alert(struct ts_tls_conn *t)
{
    /* an alert record (21), version 3.3, 2 bytes: fatal (2) illegal_parameter (47) */
    static const uint8_t alert[] = {21, 3, 3, 0, 2, 2, 47};
    size_t sent = 0;
    if (t->wlen == t->woff) {
        ssize_t n = send(t->fd, alert, sizeof(alert), MSG_NOSIGNAL);
        if (n > 0) sent = (size_t)n;
        if (sent == sizeof(alert)) return;
    }
    if (!t->wbuf) {
        if (!(t->wbuf = malloc(STAGE_CAP))) return;
        t->wcap = STAGE_CAP;
    }
    if (t->wcap - t->wlen < sizeof(alert) - sent) return;
    memcpy(t->wbuf + t->wlen, alert + sent, sizeof(alert) - sent);
    t->wlen += sizeof(alert) - sent;
}

/* A fatal read: OpenSSL gives up (without an alert of its own), conn.c counts why. */
static int refuse_hello(struct ts_tls_conn *t)
{
    send_hello_alert(t);
    ERR_raise(ERR_LIB_SSL, SSL_R_EXCESSIVE_MESSAGE_SIZE);
    return 0;
}

static bool hello_tls12(const struct ts_tls_conn *t)
{
    /* SSL_version is TLS_ANY_VERSION until OpenSSL has read the ClientHello */
    return SSL_version(t->ssl) < TLS1_3_VERSION;
}

/* Whether the first bytes of a connection begin a PROXY protocol header, version 1 ("PROXY "
 * then TCP4, TCP6 or UNKNOWN) or 2 (its 12-byte signature). */
static bool is_proxy_header(const uint8_t *p, size_t n)
{
    static const uint8_t v2[12] = {13, 10, 13, 10, 0, 13, 10, 'Q', 'U', 'I', 'T', 10};
    if (n >= 6 && memcmp(p, "PROXY ", 6) == 0) return true;
    return n >= sizeof(v2) && memcmp(p, v2, sizeof(v2)) == 0;
}

/* A recv(2) that returned no bytes: EOF, a socket to wait on (EAGAIN), or an error. */
static int read_ended(BIO *b, struct ts_tls_conn *t, ssize_t n)
{
    t->drained = true;
    if (n == 0)
        t->eof = true;
    else if (errno == EAGAIN || errno == EWOULDBLOCK)
        BIO_set_retry_read(b);
    return 0;
}

/* Counts bytes read from the socket against the turn. */
static void note_read(struct ts_tls_conn *t, size_t n, size_t asked)
{
    t->heard = true;
    t->drained = n < asked;
    t->read_budget = n < t->read_budget ? t->read_budget - n : 0;
}

/* While the hold buffer has bytes: gives OpenSSL those it may have; while a ClientHello is
 * incomplete, reads what the socket has into the buffer instead (its memory grows with the
 * bytes received, TS_HELLO_HOLD_MAX at most) until the ClientHello is whole, the socket is
 * empty, or the turn's budget is spent. */
static int held_read(BIO *b, struct ts_tls_conn *t, char *data, size_t len, size_t *got)
{
    struct ts_hello *h = &t->hello;
    for (;;) {
        size_t k = ts_hello_take(h, data, len);
        if (k > 0) {
            *got = k;
            return 1;
        }
        if (turn_spent(t)) {
            BIO_set_retry_read(b);
            return 0;
        }
        size_t room;
        uint8_t *to = ts_hello_room(h, &room);
        if (!to) {
            if (h->oversized) return refuse_hello(t);
            ERR_raise(ERR_LIB_SSL, ERR_R_MALLOC_FAILURE);
            return 0;
        }
        if (room > t->read_budget) room = t->read_budget;
        ssize_t n;
        do n = recv(t->fd, to, room, 0);
        while (n < 0 && errno == EINTR);
        if (n > 0) {
            note_read(t, (size_t)n, room);
            ts_hello_add(h, (size_t)n, hello_tls12(t));
            if (h->oversized) return refuse_hello(t);
            if (!t->drained || h->rel > h->off) continue;
            BIO_set_retry_read(b); /* the socket is empty, the ClientHello still incomplete */
            return 0;
        }
        return read_ended(b, t, n);
    }
}

/* OpenSSL grows its handshake buffer to the length a ClientHello announces (up to 128 KB) as soon
 * as it has the record holding the message's 4-byte header, and holds it until the handshake
 * timeout. The guard (hello.c) reads the same headers from the bytes passing through: a
 * ClientHello over TS_HELLO_MAX is refused with an alert; one over the 16 KB OpenSSL holds
 * anyway is kept in the hold buffer, from the last byte of its header on, until all of it has
 * arrived, so OpenSSL's memory never runs ahead of the bytes received. */
static int sock_read(BIO *b, char *data, size_t len, size_t *got)
{
    struct ts_tls_conn *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (t->flooded || turn_spent(t)) {
        /* looks like an empty socket to OpenSSL, which returns WANT_READ and resumes later */
        BIO_set_retry_read(b);
        return 0;
    }
    if (ts_hello_held(&t->hello) > 0) return held_read(b, t, data, len, got);
    ssize_t n;
    do n = recv(t->fd, data, len, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        /* a PROXY protocol header where a ClientHello should be: a proxy set up to send one
         * to a listener without proxy_protocol (ts_tls_failure_reason says so) */
        if (!t->heard) t->proxy_header = is_proxy_header((const uint8_t *)data, (size_t)n);
        note_read(t, (size_t)n, len);
        size_t pass = (size_t)n;
        if (!t->hello.done) {
            pass = ts_hello_pass(&t->hello, (uint8_t *)data, (size_t)n, hello_tls12(t));
            if (t->hello.oversized) return refuse_hello(t);
            if (pass < (size_t)n && ts_hello_held(&t->hello) == 0) {
                ERR_raise(ERR_LIB_SSL, ERR_R_MALLOC_FAILURE);
                return 0;
            }
            if (pass == 0) return held_read(b, t, data, len, got);
        }
        *got = pass;
        return 1;
    }
    return read_ended(b, t, n);
}

static long sock_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    struct ts_tls_conn *t = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH: {
        BIO_clear_retry_flags(b);
        int r = stage_flush(t);
        if (r == 0) BIO_set_retry_write(b);
        return r;
    }
    case BIO_CTRL_WPENDING: return (long)(t->wlen - t->woff);
    case BIO_CTRL_EOF: return t->eof;
    case BIO_C_GET_FD: return t->fd;
    case BIO_CTRL_DUP: return 1;
    default: return 0;
    }
}

static int sock_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static int make_sock_method(void)
{
    if (sock_method) return 0;
    sock_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tessera socket");
    if (!sock_method || !BIO_meth_set_write_ex(sock_method, sock_write) ||
        !BIO_meth_set_read_ex(sock_method, sock_read) ||
        !BIO_meth_set_ctrl(sock_method, sock_ctrl) ||
        !BIO_meth_set_create(sock_method, sock_create))
        return -1;
    return 0;
}

enum ts_io ts_tls_flush(struct ts_tls_conn *t)
{
    if (t->wlen == t->woff) return TS_IO_OK;
    int r = stage_flush(t);
    if (r == 1) return TS_IO_OK;
    if (r == 0) return TS_IO_WANT_WRITE;
    t->sys_errno = errno;
    return errno == EPIPE || errno == ECONNRESET ? TS_IO_EOF : TS_IO_ERROR;
}

void ts_tls_writable(struct ts_tls_conn *t)
{
    t->wblocked = false;
}

void ts_tls_new_turn(struct ts_tls_conn *t, size_t budget)
{
    t->read_budget = budget;
    t->out_of_turn = false;
    t->turn_messages = 0;
}

bool ts_tls_out_of_turn(const struct ts_tls_conn *t)
{
    return t->out_of_turn;
}

bool ts_tls_read_would_block(const struct ts_tls_conn *t)
{
    return t->drained && !t->eof && !SSL_has_pending(t->ssl) && ts_hello_held(&t->hello) == 0;
}

/* An ALPN protocol list in wire format (each name after its length byte), in our order of
 * preference, and the same as text. */
struct alpn_list {
    const unsigned char *wire;
    unsigned len;
    const char *text;
};

/* http/1.0 is accepted as http/1.1 is (curl --http1.0 offers it): the same parser serves both. */
static const struct alpn_list alpn_lists[2] = {
    {(const unsigned char *)"\x08http/1.1\x08http/1.0", 18, "http/1.1,http/1.0"},
    {(const unsigned char *)"\x02h2\x08http/1.1\x08http/1.0", 21, "h2,http/1.1,http/1.0"},
};

/* The protocols to offer: h2 first when configured and built in (TS_HAVE_H2). */
static const struct alpn_list *alpn_list(bool http2)
{
    return &alpn_lists[http2 && TS_HAVE_H2 ? 1 : 0];
}

const char *ts_tls_alpn_offered(bool http2)
{
    return alpn_list(http2)->text;
}

/* Server-side ALPN: our first protocol the client also offers. A client that offers ALPN but
 * none of ours gets the fatal no_application_protocol alert rather than a guess: a TLS
 * connection meant for another service (a cross-protocol attack like ALPACA, where a
 * browser is steered to an FTP or mail server sharing the certificate) must not be served as
 * HTTP. A client that sends no ALPN never comes here and speaks HTTP/1.1. */
static int alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                          const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    const struct alpn_list *ours = arg;
    for (unsigned i = 0; i < ours->len; i += 1u + ours->wire[i]) {
        const unsigned char *name = ours->wire + i + 1;
        unsigned char n = ours->wire[i];
        /* OpenSSL has checked the list's framing; the bounds are kept anyway */
        for (unsigned j = 0; j < inlen && 1u + j + in[j] <= inlen; j += 1u + in[j]) {
            if (in[j] == n && memcmp(in + j + 1, name, n) == 0) {
                *out = name;
                *outlen = n;
                return SSL_TLSEXT_ERR_OK;
            }
        }
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

enum ts_proto ts_tls_alpn(const struct ts_tls_conn *t)
{
    const unsigned char *p = NULL;
    unsigned len = 0;
    SSL_get0_alpn_selected(t->ssl, &p, &len);
    return len == 2 && memcmp(p, "h2", 2) == 0 ? TS_PROTO_H2 : TS_PROTO_HTTP11;
}

/* ---- sites ----
 * Every SSL is made from the session context, which has no certificate of its own and
 * outlives configuration reloads: OpenSSL keeps using it for the session cache (lookups and
 * new_session_cb), the ticket key callback and the ticket generate/decrypt callbacks after
 * SSL_set_SSL_CTX, so all sites of all generations share one cache and one set of ticket keys.
 * Each site has an SSL_CTX of its own generation with its certificates and client-certificate
 * store, chosen in the client-hello callback. What OpenSSL copies into the SSL at SSL_new
 * (versions, verify mode and depth, client CA list, session ID context, max_cert_list) is set
 * again there for the site; what it reads from the current SSL_CTX (certificates, verify store
 * and callback, ALPN, OCSP, info callback) is set on every site's context. */
struct site_tls {
    SSL_CTX *ctx;
    unsigned char sid[SSL_MAX_SID_CTX_LENGTH];
    unsigned sid_len;
    int verify_mode;
    SSL_verify_cb verify_cb;
    struct ts_ocsp *ocsp; /* the certificates' OCSP responses, stapled from this context */
};

struct ts_tls_sites {
    const struct ts_config *cfg;
    size_t n;
    struct site_tls site[];
};

/* The first host_name of a server_name extension (RFC 6066 section 3), which the client
 * wrote: every length is checked against what is left. Returns 1 with the name, 0 when the
 * extension holds no host_name, -1 when it is malformed. */
static int sni_host_name(const unsigned char *p, size_t len, const char **name, size_t *nlen)
{
    if (len < 2 || (size_t)(p[0] << 8 | p[1]) != len - 2) return -1;
    p += 2;
    len -= 2;
    while (len > 0) {
        if (len < 3) return -1;
        size_t n = (size_t)(p[1] << 8 | p[2]);
        if (n > len - 3) return -1;
        if (p[0] == TLSEXT_NAMETYPE_host_name) {
            if (n == 0 || n > 255 || memchr(p + 3, '\0', n)) return -1;
            *name = (const char *)p + 3;
            *nlen = n;
            return 1;
        }
        p += 3 + n;
        len -= 3 + n;
    }
    return 0;
}

/* Picks the site from SNI before OpenSSL looks at the session ID, the ticket or the PSKs:
 * resumption is then judged against the chosen site's session ID context. A servername
 * callback would run too late for that in TLS 1.3 (the PSK is already accepted). */
static int client_hello_cb(SSL *ssl, int *al, void *arg)
{
    (void)arg;
    struct ts_tls_conn *t = SSL_get_app_data(ssl);
    const struct ts_tls_sites *st = t ? t->sites : NULL;
    const unsigned char *ext;
    size_t extlen;
    int idx = 0;
    if (!st) {
        *al = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext, &extlen) == 1) {
        const char *name = NULL;
        size_t nlen = 0;
        int r = sni_host_name(ext, extlen, &name, &nlen);
        if (r < 0) {
            *al = SSL_AD_DECODE_ERROR;
            return SSL_CLIENT_HELLO_ERROR;
        }
        idx = r ? ts_config_find_site(st->cfg, name, nlen) : -1;
        if (idx < 0 && r && st->cfg->tls.strict_sni) {
            t->sni_refused = true;
            *al = SSL_AD_UNRECOGNIZED_NAME;
            return SSL_CLIENT_HELLO_ERROR;
        }
        if (idx < 0) idx = 0;
    }
    /* a second ClientHello (after HelloRetryRequest) must name the same site */
    if (t->site_chosen && t->site != idx) {
        *al = SSL_AD_ILLEGAL_PARAMETER;
        return SSL_CLIENT_HELLO_ERROR;
    }
    t->site = idx;
    t->site_chosen = true;
    const struct site_tls *s = &st->site[idx];
    const struct ts_site *site = &st->cfg->sites[idx];
    /* before OpenSSL picks the version, which it does after this callback */
    if (SSL_set_SSL_CTX(ssl, s->ctx) != s->ctx ||
        SSL_set_session_id_context(ssl, s->sid, s->sid_len) != 1 ||
        SSL_set_min_proto_version(ssl, st->cfg->tls.min_version) != 1 ||
        SSL_set_max_proto_version(ssl, st->cfg->tls.max_version) != 1) {
        *al = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    SSL_set_verify(ssl, s->verify_mode, s->verify_cb);
    SSL_set_verify_depth(ssl, site->verify_depth);
    SSL_set_max_cert_list(ssl, (long)st->cfg->tls.max_client_chain_bytes);
    STACK_OF(X509_NAME) *cas = SSL_CTX_get_client_CA_list(s->ctx);
    STACK_OF(X509_NAME) *dup = cas ? SSL_dup_CA_list(cas) : NULL;
    if (cas && !dup) {
        *al = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    SSL_set_client_CA_list(ssl, dup); /* NULL: the site's context has none either */
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* What every site's context has alike: protocols, ciphers, options, modes, callbacks. */
static int ctx_common(SSL_CTX *ctx, const struct ts_config *cfg, char *err, size_t errlen)
{
    SSL_CTX_set_min_proto_version(ctx, cfg->tls.min_version);
    SSL_CTX_set_max_proto_version(ctx, cfg->tls.max_version);
    if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, TLS13_SUITES) != 1 ||
        SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1) {
        fail_ssl(err, errlen, "tls", NULL, "cannot set ciphers or groups");
        return -1;
    }
    /* No renegotiation (OpenSSL 3 already refuses client-initiated ones), no compression, our
     * cipher order for TLS 1.2. IGNORE_UNEXPECTED_EOF: a peer that closes without close_notify must
     * not turn into a fatal error, which would evict its session from the cache; info_cb still
     * tells the two apart. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Partial writes return after each record, and a retried write may come from a moved
     * buffer as long as it holds the same bytes. NO_AUTO_CHAIN: the chain is sent as the
     * certificate file gives it; without it OpenSSL would build one from the verify store
     * (the client CAs) for a file holding the leaf alone, on every full handshake. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_NO_AUTO_CHAIN);
    /* Read ahead: one read(2) takes whatever has arrived (a record header and its body, or
     * several records) instead of one call for the 5-byte header and another for the body.
     * Safe here because every step reads until WANT_READ before waiting on epoll. */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_timeout(ctx, cfg->tls.session_timeout_s);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select_cb, (void *)alpn_list(cfg->http2));
    SSL_CTX_set_info_callback(ctx, info_cb);
    SSL_CTX_set_msg_callback(ctx, msg_cb);
    return 0;
}

/* The key type of the first certificate in a PEM file (EVP_PKEY_RSA, EVP_PKEY_EC...), or -1. */
static int leaf_key_type(const char *file, X509 **leaf)
{
    FILE *f = fopen(file, "rb");
    if (!f) return -1;
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    EVP_PKEY *pk = x ? X509_get0_pubkey(x) : NULL;
    int type = pk ? EVP_PKEY_get_base_id(pk) : -1;
    if (type == EVP_PKEY_RSA_PSS) type = EVP_PKEY_RSA; /* one slot for both in OpenSSL 3 */
    *leaf = x;
    return type;
}

/* Warns when a certificate covers none of the site's names (wildcards checked with a label
 * put in place of the '*'): clients would refuse it. */
static void check_names(const struct ts_site *site, X509 *leaf, const char *key)
{
    if (!site->nnames) return;
    for (size_t i = 0; i < site->nnames; i++) {
        char probe[300];
        const char *n = site->names[i];
        snprintf(probe, sizeof(probe), "%s%s", n[0] == '*' ? "x" : "", n[0] == '*' ? n + 1 : n);
        if (X509_check_host(leaf, probe, 0, 0, NULL) == 1) return;
    }
    ts_log_warn("%s: the certificate covers none of the site's names (first: %s)", key,
                site->names[0]);
}

/* Loads a site's certificates: each chain file (leaf first) with its key, at most one per key
 * type (OpenSSL keeps one per type and picks by the client's signature algorithms). */
static int load_certs(SSL_CTX *ctx, const struct ts_site *site, struct ts_ocsp *ocsp, char *err,
                      size_t errlen)
{
    int types[8];
    for (size_t i = 0; i < site->ncerts && i < 8; i++) {
        const char *cf = site->certs[i].certificate, *kf = site->certs[i].key;
        char ck[192], kk[192], sub[64];
        if (site->borrowed) {
            snprintf(ck, sizeof(ck), "tls.certificate");
            snprintf(kk, sizeof(kk), "tls.key");
        } else {
            snprintf(sub, sizeof(sub), "certificates[%zu].certificate", i);
            snprintf(ck, sizeof(ck), "%s.%s", site->label, sub);
            snprintf(sub, sizeof(sub), "certificates[%zu].key", i);
            snprintf(kk, sizeof(kk), "%s.%s", site->label, sub);
        }
        X509 *leaf = NULL;
        types[i] = leaf_key_type(cf, &leaf);
        for (size_t j = 0; j < i && types[i] >= 0; j++)
            if (types[j] == types[i]) {
                X509_free(leaf);
                snprintf(err, errlen,
                         "%s: %s: a second certificate with a %s key (one per key "
                         "type: one ECDSA and one RSA)",
                         ck, cf, OBJ_nid2sn(types[i]));
                return -1;
            }
        if (leaf) check_names(site, leaf, ck);
        X509_free(leaf);
        ERR_clear_error();
        if (SSL_CTX_use_certificate_chain_file(ctx, cf) != 1) {
            fail_ssl(err, errlen, ck, cf, "cannot load certificate");
            return -1;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, kf, SSL_FILETYPE_PEM) != 1) {
            fail_ssl(err, errlen, kk, kf, "cannot load private key");
            return -1;
        }
        /* the key selected its own slot: a key of another type than the certificate finds
         * no certificate there */
        if (SSL_CTX_check_private_key(ctx) != 1) {
            char what[256];
            snprintf(what, sizeof(what), "does not match %s", ck);
            fail_ssl(err, errlen, kk, kf, what);
            return -1;
        }
        if (site->certs[i].ocsp_response) {
            char ok[192];
            snprintf(sub, sizeof(sub), "certificates[%zu].ocsp_response", i);
            snprintf(ok, sizeof(ok), "%s.%s", site->label, sub);
            if (ts_ocsp_add(ocsp, site->certs[i].ocsp_response, cf,
                            site->borrowed ? "tls.ocsp_response" : ok, err, errlen) < 0)
                return -1;
        }
    }
    ts_ocsp_install(ctx, ocsp);
    return 0;
}

/* A site's certificates, client-certificate policy and session ID context, on ctx. */
static int setup_site(SSL_CTX *ctx, struct site_tls *s, const struct ts_config *cfg, size_t idx,
                      char *err, size_t errlen)
{
    const struct ts_site *site = &cfg->sites[idx];
    s->ctx = ctx;
    s->ocsp = ts_ocsp_new();
    if (load_certs(ctx, site, s->ocsp, err, errlen) < 0) return -1;
    if (site->client_auth != TS_CLIENT_AUTH_NONE &&
        setup_client_auth(ctx, cfg, site, err, errlen) < 0)
        return -1;
    s->verify_mode = SSL_CTX_get_verify_mode(ctx);
    s->verify_cb = SSL_CTX_get_verify_callback(ctx);
    if (session_context(site, idx, s->sid, &s->sid_len) < 0 ||
        SSL_CTX_set_session_id_context(ctx, s->sid, s->sid_len) != 1) {
        fail_ssl(err, errlen, "tls", NULL, "cannot set the session ID context");
        return -1;
    }
    return 0;
}

void ts_tls_sites_free(struct ts_tls_sites *st)
{
    if (!st) return;
    for (size_t i = 0; i < st->n; i++) {
        SSL_CTX_free(st->site[i].ctx);
        ts_ocsp_free(st->site[i].ocsp);
    }
    free(st);
}

struct ts_tls_sites *ts_tls_sites_new(const struct ts_config *cfg, char *err, size_t errlen)
{
    struct ts_tls_sites *st = calloc(1, sizeof(*st) + cfg->nsites * sizeof(st->site[0]));
    if (!st) abort();
    st->cfg = cfg;
    for (size_t i = 0; i < cfg->nsites; i++) {
        SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
        if (!sctx) {
            fail_ssl(err, errlen, "sites", NULL, "cannot create a TLS context");
            goto fail;
        }
        st->n = i + 1;
        st->site[i].ctx = sctx;
        /* the second ClientHello after a HelloRetryRequest finds this context in the SSL:
         * the callback must run again to hold the client to its site */
        SSL_CTX_set_client_hello_cb(sctx, client_hello_cb, NULL);
        if (ctx_common(sctx, cfg, err, errlen) < 0 ||
            setup_site(sctx, &st->site[i], cfg, i, err, errlen) < 0)
            goto fail;
    }
    return st;
fail:
    ts_tls_sites_free(st);
    return NULL;
}

SSL_CTX *ts_tls_session_ctx_new(const struct ts_config *cfg, char *err, size_t errlen)
{
    struct ticket_keys *tk = NULL;
    SSL_CTX *ctx = make_sock_method() == 0 ? SSL_CTX_new(TLS_server_method()) : NULL;
    if (!ctx) {
        fail_ssl(err, errlen, "tls", NULL, "cannot create the TLS context");
        return NULL;
    }
    if (ctx_keys_index < 0) ctx_keys_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    if (sess_cost_index < 0)
        sess_cost_index =
            SSL_SESSION_get_ex_new_index(0, NULL, NULL, sess_cost_dup, sess_cost_free);
    if (ctx_common(ctx, cfg, err, errlen) < 0) goto fail;
    SSL_CTX_set_client_hello_cb(ctx, client_hello_cb, NULL);
    /* they bound the lifetime of sessions holding a client certificate */
    if (SSL_CTX_set_session_ticket_cb(ctx, ticket_gen_cb, ticket_dec_cb, NULL) != 1) {
        fail_ssl(err, errlen, "tls", NULL, "cannot set the ticket callback");
        goto fail;
    }

    /* new_session_cb alone adds sessions, each charged against max_bytes */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
    SSL_CTX_sess_set_cache_size(ctx, cfg->tls.session_cache_size);
    cache_max_bytes = (uint64_t)cfg->tls.session_cache_max_bytes;
    cache_max_session_bytes = (uint64_t)cfg->tls.session_cache_max_session_bytes;
    if (cfg->tls.session_tickets) {
        tk = calloc(1, sizeof(*tk));
        if (!tk || pthread_rwlock_init(&tk->lock, NULL) != 0) {
            free(tk);
            tk = NULL;
            snprintf(err, errlen, "tls.session_tickets: cannot set up the ticket keys");
            goto fail;
        }
        if (load_ticket_keys(tk, cfg, err, errlen) < 0) goto fail;
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
    return ctx;

fail:
    free_ticket_keys(tk);
    SSL_CTX_free(ctx);
    return NULL;
}

void ts_tls_session_ctx_free(SSL_CTX *ctx)
{
    if (!ctx) return;
    free_ticket_keys(SSL_CTX_get_ex_data(ctx, ctx_keys_index));
    SSL_CTX_free(ctx);
    BIO_meth_free(sock_method);
    sock_method = NULL;
}

int ts_tls_conn_init(struct ts_tls_conn *t, SSL_CTX *ctx, const struct ts_tls_sites *sites, int fd)
{
    memset(t, 0, sizeof(*t));
    t->fd = fd;
    t->session_ctx = ctx;
    t->sites = sites;
    ERR_clear_error();
    t->ssl = SSL_new(ctx);
    BIO *bio = t->ssl ? BIO_new(sock_method) : NULL;
    if (!bio) {
        ts_log_ssl(TS_LOG_ERROR, "SSL_new failed");
        SSL_free(t->ssl);
        t->ssl = NULL;
        return -1;
    }
    BIO_set_data(bio, t);
    SSL_set_bio(t->ssl, bio, bio); /* one BIO both ways: SSL takes the one reference */
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
    X509_free(t->err_cert);
    t->err_cert = NULL;
    free(t->wbuf);
    t->wbuf = NULL;
    t->wcap = 0;
    ts_hello_free(&t->hello);
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
        /* OpenSSL 3.0 can report a flush of the stage that found the socket full as a
         * SYSCALL error with errno EAGAIN (seen while it wrote a KeyUpdate reply). A full
         * socket is never an error: wait for EPOLLOUT, or for input if nothing is staged. */
        if (t->err == 0 && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK))
            return t->wlen > t->woff ? TS_IO_WANT_WRITE : TS_IO_WANT_READ;
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

/* A flooding client's connection ends in whatever call noticed it (see msg_cb). */
static enum ts_io result(struct ts_tls_conn *t, int rc)
{
    if (t->flooded) {
        ERR_clear_error();
        return TS_IO_ERROR;
    }
    return rc == 1 ? TS_IO_OK : classify(t, rc);
}

enum ts_io ts_tls_handshake(struct ts_tls_conn *t)
{
    ERR_clear_error();
    return result(t, SSL_do_handshake(t->ssl));
}

/* The error queue is emptied before each call, as SSL_get_error needs; it is nearly always
 * empty already, and peeking costs a tenth of OpenSSL 3.0's clearing of all its slots. */
static void clear_errors(void)
{
    if (ERR_peek_error() != 0) ERR_clear_error();
}

enum ts_io ts_tls_read(struct ts_tls_conn *t, void *buf, size_t len, size_t *got)
{
    clear_errors();
    int rc = SSL_read_ex(t->ssl, buf, len, got);
    if (rc == 1 && *got > 0) t->post_handshake = 0;
    return result(t, rc);
}

/* The room a record of 16 KiB takes in the stage, header and tag included, with margin. */
#define RECORD_ROOM (16384 + 512)

enum ts_io ts_tls_write(struct ts_tls_conn *t, const void *buf, size_t len, size_t *put)
{
    /* Backpressure is here, not in the socket BIO (sock_write): the stage is flushed as far
     * as the socket takes it, and SSL_write gets only what fits in the rest as whole records;
     * none when the socket is full (EPOLLOUT follows the EAGAIN). A write OpenSSL still holds
     * (refused by a flood check) is retried with its own length, as OpenSSL requires. */
    size_t want = len;
    if (t->wretry) {
        want = t->wretry <= len ? t->wretry : len;
    } else {
        /* the stage goes to the socket when it has no room for another record, so one
         * send(2) takes several (SSL_write returns after each record: partial writes) */
        size_t pending = t->wlen - t->woff;
        if (pending > STAGE_CAP - RECORD_ROOM && stage_flush(t) < 0) {
            t->sys_errno = errno;
            return errno == EPIPE || errno == ECONNRESET ? TS_IO_EOF : TS_IO_ERROR;
        }
        pending = t->wlen - t->woff;
        size_t records = pending < STAGE_CAP ? (STAGE_CAP - pending) / RECORD_ROOM : 0;
        if (records == 0) return TS_IO_WANT_WRITE;
        if (want > records * 16384) want = records * 16384;
    }
    clear_errors();
    enum ts_io r = result(t, SSL_write_ex(t->ssl, buf, want, put));
    t->wretry = r == TS_IO_WANT_WRITE || r == TS_IO_WANT_READ ? want : 0;
    return r;
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
    if (t->wlen == t->woff) {
        free(t->wbuf);
        t->wbuf = NULL;
        t->woff = t->wlen = t->wcap = 0;
    }
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
    if (t->proxy_header) return TS_HS_FAIL_PROXY_HEADER;
    if (t->hello.oversized) return TS_HS_FAIL_OVERSIZED_CLIENT_HELLO;
    if (t->sni_refused) return TS_HS_FAIL_UNRECOGNIZED_NAME;
    if (t->chain_oversized) return TS_HS_FAIL_OVERSIZED_CLIENT_CHAIN;
    /* the peer closing is TS_IO_EOF, never an error: without a TLS error this was the socket */
    if (!t->err) return TS_HS_FAIL_OTHER;
    /* a Certificate message above max_client_chain_bytes (the ClientHello is the guard's) */
    if (ERR_GET_LIB(t->err) == ERR_LIB_SSL &&
        ERR_GET_REASON(t->err) == SSL_R_EXCESSIVE_MESSAGE_SIZE &&
        SSL_get_state(t->ssl) == TLS_ST_SR_CERT)
        return TS_HS_FAIL_OVERSIZED_CLIENT_CHAIN;
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
    case SSL_R_NO_APPLICATION_PROTOCOL: return TS_HS_FAIL_NO_APPLICATION_PROTOCOL;
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
