/* OCSP stapling: per-certificate DER responses checked at load and stapled on request. */
#ifndef TS_OCSP_H
#define TS_OCSP_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

/* One site's responses (a context's), one per certificate that has one. */
struct ts_ocsp;

/* An empty set; aborts when out of memory. Freed with ts_ocsp_free. Main thread, at start. */
struct ts_ocsp *ts_ocsp_new(void);

/* Reads the DER response in file and checks it against the leaf of chain_file (its issuer is
 * the next certificate there): successful, signed by the issuer or its delegated responder,
 * for this certificate, status good. Returns 0 and keeps it (a stale one is warned about and
 * kept, never stapled while stale), or -1 with a message naming key. Blocks (file I/O). */
int ts_ocsp_add(struct ts_ocsp *o, const char *file, const char *chain_file, const char *key,
                char *err, size_t errlen);

/* Installs the status callback stapling o's responses on ctx (nothing when o is empty). o
 * must outlive ctx's connections; it is read-only from here on (no locks in workers). */
void ts_ocsp_install(SSL_CTX *ctx, struct ts_ocsp *o);

void ts_ocsp_free(struct ts_ocsp *o);

/* Process-wide: handshakes that got a staple, and those where the client asked but the
 * certificate's response was stale (outside thisUpdate..nextUpdate) so none was sent. */
void ts_ocsp_counts(uint64_t *stapled, uint64_t *stale);

#endif
