/* OCSP stapling: loads each certificate's DER response (as `openssl ocsp -respout` writes),
 * refuses one that cannot be right for the certificate, and staples it from the status
 * callback while it is fresh. */
#include "ocsp.h"
#include "log.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    MAX_RESPONSE_BYTES = 65536, /* real responses are 1-3 KiB */
    LEEWAY_S = 300,             /* a thisUpdate this far ahead is taken as clock skew */
};

struct entry {
    X509 *leaf; /* identifies the certificate OpenSSL chose for the handshake */
    unsigned char *der;
    int len;
    time_t from, until; /* stapled while from <= now < until (until 0: no nextUpdate) */
};

struct ts_ocsp {
    struct entry *e;
    size_t n;
};

static _Atomic uint64_t stapled_total, stale_total;

struct ts_ocsp *ts_ocsp_new(void)
{
    struct ts_ocsp *o = calloc(1, sizeof(*o));
    if (!o) abort();
    return o;
}

void ts_ocsp_free(struct ts_ocsp *o)
{
    if (!o) return;
    for (size_t i = 0; i < o->n; i++) {
        X509_free(o->e[i].leaf);
        OPENSSL_free(o->e[i].der);
    }
    free(o->e);
    free(o);
}

void ts_ocsp_counts(uint64_t *stapled, uint64_t *stale)
{
    *stapled = atomic_load_explicit(&stapled_total, memory_order_relaxed);
    *stale = atomic_load_explicit(&stale_total, memory_order_relaxed);
}

static int fail(char *err, size_t errlen, const char *key, const char *file, const char *what)
{
    char reason[256] = "";
    unsigned long e = ERR_peek_last_error();
    if (e) {
        reason[0] = ' ';
        reason[1] = '(';
        ERR_error_string_n(e, reason + 2, sizeof(reason) - 3);
        strcat(reason, ")");
    }
    ERR_clear_error();
    snprintf(err, errlen, "%s: %s: %s%s", key, file, what, reason);
    return -1;
}

/* The whole file into an OPENSSL_malloc'ed buffer (the form SSL_set_tlsext_status_ocsp_resp
 * takes), or NULL with errno's reason in why. */
static unsigned char *read_der(const char *file, int *len, const char **why)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        *why = strerror(errno);
        return NULL;
    }
    unsigned char *buf = OPENSSL_malloc(MAX_RESPONSE_BYTES + 1);
    size_t n = buf ? fread(buf, 1, MAX_RESPONSE_BYTES + 1, f) : 0;
    bool bad = !buf || ferror(f);
    fclose(f);
    *why = bad ? "cannot read" : n > MAX_RESPONSE_BYTES ? "larger than 64 KiB" : "empty";
    if (bad || n == 0 || n > MAX_RESPONSE_BYTES) {
        OPENSSL_free(buf);
        return NULL;
    }
    *len = (int)n;
    return buf;
}

/* The certificates of a PEM chain file, leaf first, or NULL. */
static STACK_OF(X509) * read_chain(const char *file)
{
    BIO *b = BIO_new_file(file, "r");
    STACK_OF(X509) *chain = b ? sk_X509_new_null() : NULL;
    X509 *x;
    while (chain && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)))
        if (!sk_X509_push(chain, x)) X509_free(x);
    ERR_clear_error(); /* the end of the file reads as an error */
    BIO_free(b);
    if (chain && sk_X509_num(chain) == 0) {
        sk_X509_free(chain);
        chain = NULL;
    }
    return chain;
}

/* The single response about leaf, whatever digest the responder used for its CertID. */
static OCSP_SINGLERESP *find_single(OCSP_BASICRESP *bs, X509 *leaf, X509 *issuer)
{
    for (int i = 0; i < OCSP_resp_count(bs); i++) {
        OCSP_SINGLERESP *sr = OCSP_resp_get0(bs, i);
        const OCSP_CERTID *cid = OCSP_SINGLERESP_get0_id(sr);
        ASN1_OBJECT *alg = NULL;
        if (!OCSP_id_get0_info(NULL, &alg, NULL, NULL, (OCSP_CERTID *)cid)) continue;
        const EVP_MD *md = EVP_get_digestbyobj(alg);
        OCSP_CERTID *mine = md ? OCSP_cert_to_id(md, leaf, issuer) : NULL;
        bool same = mine && OCSP_id_cmp(mine, cid) == 0;
        OCSP_CERTID_free(mine);
        if (same) return sr;
    }
    return NULL;
}

static time_t to_time(const ASN1_GENERALIZEDTIME *t)
{
    struct tm tm;
    return ASN1_TIME_to_tm(t, &tm) == 1 ? timegm(&tm) : (time_t)-1;
}

/* Checks the signature: the responder must be the issuer itself or a certificate it issued
 * for OCSP signing (carried in the response). The issuer is the only trust anchor, hence
 * PARTIAL_CHAIN when it is an intermediate. */
static bool verify_signature(OCSP_BASICRESP *bs, STACK_OF(X509) * chain, X509 *issuer)
{
    X509_STORE *store = X509_STORE_new();
    bool ok = store && X509_STORE_add_cert(store, issuer) == 1 &&
              X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN) == 1 &&
              OCSP_basic_verify(bs, chain, store, 0) == 1;
    X509_STORE_free(store);
    return ok;
}

int ts_ocsp_add(struct ts_ocsp *o, const char *file, const char *chain_file, const char *key,
                char *err, size_t errlen)
{
    int rc = -1, len = 0;
    const char *why = NULL;
    OCSP_RESPONSE *resp = NULL;
    OCSP_BASICRESP *bs = NULL;
    STACK_OF(X509) *chain = NULL;
    ERR_clear_error();
    unsigned char *der = read_der(file, &len, &why);
    if (!der) {
        fail(err, errlen, key, file, why);
        goto done;
    }
    const unsigned char *p = der;
    resp = d2i_OCSP_RESPONSE(NULL, &p, len);
    if (!resp || p != der + len) {
        fail(err, errlen, key, file, "not a DER OCSP response (as openssl ocsp -respout writes)");
        goto done;
    }
    int status = OCSP_response_status(resp);
    if (status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        char what[128];
        snprintf(what, sizeof(what), "the responder answered \"%s\", not \"successful\"",
                 OCSP_response_status_str(status));
        fail(err, errlen, key, file, what);
        goto done;
    }
    bs = OCSP_response_get1_basic(resp);
    if (!bs) {
        fail(err, errlen, key, file, "not a basic OCSP response");
        goto done;
    }
    chain = read_chain(chain_file);
    if (!chain) {
        fail(err, errlen, key, chain_file, "cannot read the certificate");
        goto done;
    }
    X509 *leaf = sk_X509_value(chain, 0), *issuer = NULL;
    for (int i = 1; i < sk_X509_num(chain) && !issuer; i++)
        if (X509_check_issued(sk_X509_value(chain, i), leaf) == X509_V_OK)
            issuer = sk_X509_value(chain, i);
    if (!issuer) {
        fail(err, errlen, key, chain_file,
             "holds no issuer of the certificate: OCSP needs "
             "it, put the issuing CA's certificate after the leaf");
        goto done;
    }
    OCSP_SINGLERESP *sr = find_single(bs, leaf, issuer);
    if (!sr) {
        fail(err, errlen, key, file, "does not match the certificate");
        goto done;
    }
    if (!verify_signature(bs, chain, issuer)) {
        fail(err, errlen, key, file, "its signature does not verify against the issuer");
        goto done;
    }
    int reason = 0;
    ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
    int cs = OCSP_single_get0_status(sr, &reason, &rev, &thisupd, &nextupd);
    if (cs != V_OCSP_CERTSTATUS_GOOD) {
        char what[160];
        if (cs == V_OCSP_CERTSTATUS_REVOKED)
            snprintf(what, sizeof(what), "the certificate is revoked (%s)",
                     reason >= 0 ? OCSP_crl_reason_str(reason) : "no reason given");
        else
            snprintf(what, sizeof(what), "the certificate's status is unknown to the responder");
        fail(err, errlen, key, file, what);
        goto done;
    }
    time_t now = time(NULL), from = thisupd ? to_time(thisupd) : (time_t)-1;
    time_t until = nextupd ? to_time(nextupd) : 0;
    if (from == (time_t)-1 || until == (time_t)-1) {
        fail(err, errlen, key, file, "unreadable thisUpdate or nextUpdate");
        goto done;
    }
    /* thisUpdate may be a little ahead (clock skew) but nextUpdate gets no leeway: a client
     * refuses a stale staple, and the status callback judges freshness the same way */
    from -= LEEWAY_S;
    if (now < from)
        ts_log_warn("%s: %s: thisUpdate is in the future: not stapled until then", key, file);
    else if (until && now >= until)
        ts_log_warn("%s: %s: stale (nextUpdate has passed): not stapled; fetch a new response "
                    "and restart",
                    key, file);
    else if (!until)
        ts_log_warn("%s: %s: no nextUpdate: stapled as long as the server runs", key, file);
    struct entry *e = realloc(o->e, (o->n + 1) * sizeof(*o->e));
    if (!e) abort();
    o->e = e;
    if (!X509_up_ref(leaf)) abort();
    o->e[o->n++] =
        (struct entry){.leaf = leaf, .der = der, .len = len, .from = from, .until = until};
    der = NULL;
    rc = 0;
done:
    OPENSSL_free(der);
    OCSP_RESPONSE_free(resp);
    OCSP_BASICRESP_free(bs);
    sk_X509_pop_free(chain, X509_free);
    return rc;
}

/* Runs in the worker during the handshake, after OpenSSL chose the certificate (by key type
 * and the client's signature algorithms), for TLS 1.2 (CertificateStatus message) and 1.3
 * (the Certificate message's status_request extension) alike. */
static int on_status(SSL *ssl, void *arg)
{
    const struct ts_ocsp *o = arg;
    if (SSL_get_tlsext_status_type(ssl) != TLSEXT_STATUSTYPE_ocsp) return SSL_TLSEXT_ERR_NOACK;
    X509 *cert = SSL_get_certificate(ssl);
    const struct entry *e = NULL;
    for (size_t i = 0; cert && i < o->n && !e; i++)
        if (o->e[i].leaf == cert || X509_cmp(o->e[i].leaf, cert) == 0) e = &o->e[i];
    if (!e) return SSL_TLSEXT_ERR_NOACK;
    time_t now = time(NULL);
    if (now < e->from || (e->until && now >= e->until)) {
        atomic_fetch_add_explicit(&stale_total, 1, memory_order_relaxed);
        return SSL_TLSEXT_ERR_NOACK;
    }
    /* the SSL takes ownership of the copy and frees it with the connection */
    unsigned char *copy = OPENSSL_memdup(e->der, (size_t)e->len);
    if (!copy || SSL_set_tlsext_status_ocsp_resp(ssl, copy, e->len) != 1) {
        OPENSSL_free(copy);
        return SSL_TLSEXT_ERR_NOACK;
    }
    atomic_fetch_add_explicit(&stapled_total, 1, memory_order_relaxed);
    return SSL_TLSEXT_ERR_OK;
}

void ts_ocsp_install(SSL_CTX *ctx, struct ts_ocsp *o)
{
    if (!o || !o->n) return;
    SSL_CTX_set_tlsext_status_cb(ctx, on_status);
    SSL_CTX_set_tlsext_status_arg(ctx, o);
}
