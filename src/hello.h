/* The ClientHello guard: follows the client's plaintext handshake records ahead of OpenSSL, reads
 * the length each ClientHello announces, and holds a large one back until all of it has arrived.
 * No I/O and no OpenSSL: the socket BIO (tls.c) feeds it and serves what it releases. */
#ifndef TS_HELLO_H
#define TS_HELLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest ClientHello accepted (the message body, as its header announces it). Real ones
 * are 0.2-2 KB (hybrid post-quantum key shares included); some clients send 20 KB or more
 * (many key shares, large PSK identities or padding). A larger one is refused with a fatal
 * illegal_parameter alert, as OpenSSL refuses one over its own 128 KB. */
#define TS_HELLO_MAX 65536

/* OpenSSL sets aside a 16 KB buffer for every handshake's messages and grows it to the length a
 * message's 4-byte header announces as soon as it has the record holding that header. A
 * ClientHello that fits, header included, goes straight through; a larger one is held back. */
#define TS_HELLO_DIRECT (16384 - 4)

/* The most the hold buffer keeps: the largest ClientHello and 16 KiB for its record headers
 * (64 KiB in records of 21 bytes or more fits) and the bytes that follow it in the same read. */
#define TS_HELLO_HOLD_MAX (TS_HELLO_MAX + 4 + 16384)

struct ts_hello {
    uint8_t rec[5], hs[4]; /* record header and handshake header being assembled */
    uint8_t nrec, nhs, rec_type, hellos;
    uint16_t rec_left; /* body bytes of the current record not yet seen */
    uint32_t msg_left; /* body bytes of the current handshake message not yet seen */
    bool done;         /* nothing more to check: the rest is OpenSSL's */
    bool holding;      /* a large ClientHello's header is here, not yet all of its body */
    bool oversized;    /* refused: over TS_HELLO_MAX, or its records over TS_HELLO_HOLD_MAX */
    uint8_t *buf;      /* bytes received and not yet given to OpenSSL: [off, len) */
    size_t off, rel, len, cap; /* [off, rel) may be given now; the rest waits */
};

/* Scans n more bytes of the client's stream, in order. tls12: the connection is known to
 * speak TLS 1.2 (OpenSSL has read a ClientHello and chosen it): nothing after the ClientHello
 * is checked then; in TLS 1.3 the second ClientHello that answers a HelloRetryRequest is.
 * Returns how many leading bytes of p OpenSSL may have now: all of them, unless a large
 * ClientHello is incomplete at the end of p, in which case the bytes from the last byte of its
 * header on must wait until the rest of it has arrived (0 if that began before p). Sets
 * h->oversized (and h->done) for a ClientHello over TS_HELLO_MAX. */
size_t ts_hello_scan(struct ts_hello *h, const uint8_t *p, size_t n, bool tls12);

/* Scans bytes just received into OpenSSL's buffer with an empty hold buffer, and keeps those
 * OpenSSL may not have yet. Returns how many leading bytes of p it may have (n when nothing is
 * held). Returns 0 with h->buf NULL if memory for the held bytes cannot be had. */
size_t ts_hello_pass(struct ts_hello *h, const uint8_t *p, size_t n, bool tls12);

/* Bytes in the hold buffer, to be given to OpenSSL before anything else from the socket. */
static inline size_t ts_hello_held(const struct ts_hello *h)
{
    return h->len - h->off;
}

/* Copies up to len bytes that may go to OpenSSL into dst and returns how many (0 while the
 * ClientHello is incomplete). The buffer is freed when the last byte has been taken. */
size_t ts_hello_take(struct ts_hello *h, void *dst, size_t len);

/* Room at the end of the hold buffer to receive more into, while nothing held may go yet.
 * The buffer doubles when full, from 256 bytes: under twice the most it has held.
 * Returns NULL when TS_HELLO_HOLD_MAX is full (h->oversized is then set) or without memory. */
uint8_t *ts_hello_room(struct ts_hello *h, size_t *room);

/* The n bytes received into the room: scanned, and released with all before them when they
 * complete the ClientHello. */
void ts_hello_add(struct ts_hello *h, size_t n, bool tls12);

/* Frees the hold buffer. */
void ts_hello_free(struct ts_hello *h);

#endif
