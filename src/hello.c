/* The ClientHello guard: record and handshake headers read from the client's bytes as they pass
 * (split anywhere, across records and reads), and the buffer that holds a large ClientHello
 * back from OpenSSL until it is whole, so that OpenSSL's memory follows the bytes received. */
#include "hello.h"

#include <stdlib.h>
#include <string.h>

/* TLS content and handshake types (RFC 8446), without OpenSSL's headers. */
enum { REC_CHANGE_CIPHER_SPEC = 20, REC_HANDSHAKE = 22, HS_CLIENT_HELLO = 1 };

#define HOLD_MIN 256

/* OpenSSL processes a record only once it has all of it, and reads a handshake header only
 * from processed records. Holding back the byte that completes a large ClientHello's header
 * (and all after it) therefore keeps OpenSSL from growing its buffer to the announced length
 * until the last byte of the message has arrived; then everything is released at once.
 * The scan stops at the first record it cannot or need not read: application data, an alert,
 * anything after a TLS 1.2 ChangeCipherSpec (encrypted), or after the ClientHello in TLS 1.2;
 * while a ClientHello is held it reads on through such records (their bytes stay held with it:
 * releasing them would release its header). */
size_t ts_hello_scan(struct ts_hello *g, const uint8_t *p, size_t n, bool tls12)
{
    const uint8_t *const start = p;
    const size_t total = n;
    size_t hold_at = 0; /* where a hold that began in p begins */
    while (n > 0 && !g->done) {
        if (g->rec_left == 0) { /* a record header */
            g->rec[g->nrec++] = *p++;
            n--;
            if (g->nrec < 5) continue;
            g->nrec = 0;
            g->rec_type = g->rec[0];
            g->rec_left = (uint16_t)(g->rec[3] << 8 | g->rec[4]);
            if (g->holding) continue;
            if (g->rec_type == REC_CHANGE_CIPHER_SPEC)
                g->done = tls12;
            else if (g->rec_type != REC_HANDSHAKE)
                g->done = true;
            continue;
        }
        size_t k = n < g->rec_left ? n : g->rec_left;
        if (g->rec_type != REC_HANDSHAKE || g->msg_left > 0) { /* a body: skip it */
            if (g->rec_type == REC_HANDSHAKE) {
                if (g->msg_left < k) k = g->msg_left;
                g->msg_left -= (uint32_t)k;
                if (g->msg_left == 0 && g->holding) { /* the held ClientHello is whole */
                    g->holding = false;
                    g->done = g->hellos == 2;
                }
            }
            g->rec_left -= (uint16_t)k;
            p += k;
            n -= k;
            continue;
        }
        if (g->nhs == 0 && g->hellos > 0 && tls12) {
            g->done = true;
            break;
        }
        if (k > 4u - g->nhs) k = 4u - g->nhs;
        memcpy(g->hs + g->nhs, p, k);
        g->nhs += (uint8_t)k;
        g->rec_left -= (uint16_t)k;
        p += k;
        n -= k;
        if (g->nhs < 4) continue;
        g->nhs = 0;
        uint32_t mlen = (uint32_t)g->hs[1] << 16 | (uint32_t)g->hs[2] << 8 | g->hs[3];
        if (g->hs[0] != HS_CLIENT_HELLO) {
            g->done = true;
        } else if (mlen > TS_HELLO_MAX) {
            g->oversized = g->done = true;
        } else {
            g->msg_left = mlen;
            g->hellos++;
            if (mlen > TS_HELLO_DIRECT) {
                g->holding = true;
                hold_at = (size_t)(p - start) - 1; /* the header's last byte */
            } else {
                g->done = g->hellos == 2;
            }
        }
    }
    return g->holding ? hold_at : total;
}

/* Makes room for at least need more bytes after len (moving the held bytes to the front
 * first). Returns false without memory or past TS_HELLO_HOLD_MAX. */
static bool reserve(struct ts_hello *h, size_t need)
{
    if (h->off > 0) {
        memmove(h->buf, h->buf + h->off, h->len - h->off);
        h->len -= h->off;
        h->rel -= h->off;
        h->off = 0;
    }
    if (h->cap - h->len >= need) return true;
    if (h->len + need > TS_HELLO_HOLD_MAX) return false;
    size_t cap = h->cap ? h->cap : HOLD_MIN;
    while (cap < h->len + need) cap *= 2;
    if (cap > TS_HELLO_HOLD_MAX) cap = TS_HELLO_HOLD_MAX;
    uint8_t *b = realloc(h->buf, cap);
    if (!b) return false;
    h->buf = b;
    h->cap = cap;
    return true;
}

size_t ts_hello_pass(struct ts_hello *h, const uint8_t *p, size_t n, bool tls12)
{
    size_t pass = ts_hello_scan(h, p, n, tls12);
    if (pass == n || h->oversized) return pass;
    /* a read takes at most OpenSSL's 17 KB buffer: always under TS_HELLO_HOLD_MAX */
    if (!reserve(h, n - pass)) {
        ts_hello_free(h);
        return 0;
    }
    memcpy(h->buf, p + pass, n - pass);
    h->off = h->rel = 0;
    h->len = n - pass;
    return pass;
}

size_t ts_hello_take(struct ts_hello *h, void *dst, size_t len)
{
    size_t k = h->rel - h->off;
    if (k > len) k = len;
    if (k == 0) return 0;
    memcpy(dst, h->buf + h->off, k);
    h->off += k;
    if (h->off == h->len) ts_hello_free(h);
    return k;
}

uint8_t *ts_hello_room(struct ts_hello *h, size_t *room)
{
    *room = 0;
    if (ts_hello_held(h) >= TS_HELLO_HOLD_MAX) {
        h->oversized = h->done = true;
        return NULL;
    }
    if (!reserve(h, 1)) return NULL;
    *room = h->cap - h->len;
    return h->buf + h->len;
}

void ts_hello_add(struct ts_hello *h, size_t n, bool tls12)
{
    size_t at = h->len;
    size_t pass = ts_hello_scan(h, h->buf + at, n, tls12);
    h->len += n;
    if (!h->holding)
        h->rel = h->len;
    else if (pass > 0)
        h->rel = at + pass;
}

void ts_hello_free(struct ts_hello *h)
{
    free(h->buf);
    h->buf = NULL;
    h->off = h->rel = h->len = h->cap = 0;
}
