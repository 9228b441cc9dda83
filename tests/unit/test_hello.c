/* Unit tests for the ClientHello guard: a large ClientHello is held back from OpenSSL until the
 * last byte of its body has arrived, however the bytes are split (every cut point, byte by byte,
 * random reads), in TLS 1.3 with the second ClientHello after a HelloRetryRequest and in TLS 1.2;
 * refusals over TS_HELLO_MAX and past TS_HELLO_HOLD_MAX; the hold buffer's memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hello.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { REC_CCS = 20, REC_ALERT = 21, REC_HANDSHAKE = 22, REC_APPDATA = 23 };

/* A client's byte stream, and where each large ClientHello's header ends and its body ends. */
struct stream {
    uint8_t *b;
    size_t len, cap;
    size_t hdr_end[4], msg_end[4]; /* stream offsets: last header byte + 1, end of the body */
    size_t nlarge;
    size_t tls12_from; /* from this offset on, OpenSSL "has read" the first ClientHello */
};

static void put(struct stream *s, const void *p, size_t n)
{
    if (s->len + n > s->cap) {
        s->cap = (s->len + n) * 2;
        s->b = realloc(s->b, s->cap);
        assert_non_null(s->b);
    }
    memcpy(s->b + s->len, p, n);
    s->len += n;
}

static void put_record(struct stream *s, uint8_t type, const uint8_t *body, size_t n)
{
    uint8_t h[5] = {type, 3, 1, (uint8_t)(n >> 8), (uint8_t)n};
    put(s, h, 5);
    put(s, body, n);
}

/* A handshake message of type t and body length mlen (announced as alen), cut into records of
 * at most frag bytes. The body is a pattern, so that misordered bytes show. */
static void put_message(struct stream *s, uint8_t t, size_t mlen, size_t alen, size_t frag)
{
    size_t n = 4 + mlen;
    uint8_t *m = malloc(n);
    assert_non_null(m);
    m[0] = t;
    m[1] = (uint8_t)(alen >> 16);
    m[2] = (uint8_t)(alen >> 8);
    m[3] = (uint8_t)alen;
    for (size_t i = 4; i < n; i++) m[i] = (uint8_t)(i * 7 + t);
    size_t at = 0, first = s->len;
    while (at < n) {
        size_t k = n - at < frag ? n - at : frag;
        put_record(s, REC_HANDSHAKE, m + at, k);
        at += k;
    }
    if (t == 1 && alen > TS_HELLO_DIRECT && alen == mlen) {
        /* the header's last byte: byte 3 of the message, after the record headers before it */
        size_t recs = 3 / frag + 1;
        s->hdr_end[s->nlarge] = first + 5 * recs + 4;
        s->msg_end[s->nlarge] = s->len;
        s->nlarge++;
    }
    free(m);
}

/* What the socket BIO does with a read of b[at..at+n): the guard's verdict, applied. */
struct sim {
    struct ts_hello h;
    uint8_t *out; /* what OpenSSL got */
    size_t given, received, max_cap, max_len, checked;
};

static bool tls12_at(const struct stream *s, const struct sim *m)
{
    return s->tls12_from && m->given >= s->tls12_from;
}

static void sim_read(struct sim *m, const struct stream *s, size_t n)
{
    const uint8_t *p = s->b + m->received;
    m->received += n;
    if (ts_hello_held(&m->h) == 0) {
        size_t pass = n;
        if (!m->h.done) pass = ts_hello_pass(&m->h, p, n, tls12_at(s, m));
        if (m->h.oversized) return;
        assert_true(pass == n || ts_hello_held(&m->h) == n - pass);
        memcpy(m->out + m->given, p, pass);
        m->given += pass;
    } else {
        while (n > 0) { /* the recv into the room, maybe in several pieces */
            size_t room;
            uint8_t *to = ts_hello_room(&m->h, &room);
            if (!to) {
                assert_true(m->h.oversized);
                return;
            }
            size_t k = n < room ? n : room;
            memcpy(to, p, k);
            ts_hello_add(&m->h, k, tls12_at(s, m));
            if (m->h.oversized) return;
            p += k;
            n -= k;
        }
    }
    if (m->h.cap > m->max_cap) m->max_cap = m->h.cap;
    if (m->h.len > m->max_len) m->max_len = m->h.len;
    /* the buffer stays under twice the most it has held (256 bytes at least) */
    assert_true(m->h.cap <= 256 || m->h.cap <= 2 * m->max_len);
    size_t k;
    while ((k = ts_hello_take(&m->h, m->out + m->given, 1000)) > 0) m->given += k;
}

/* The guarantees after each read: OpenSSL got a prefix of the stream, never the last header
 * byte of a large ClientHello before all of its body had arrived, and every byte before it
 * as soon as it arrived. */
static void sim_check(struct sim *m, const struct stream *s)
{
    size_t safe = m->received;
    for (size_t i = 0; i < s->nlarge; i++)
        if (m->received < s->msg_end[i] && s->hdr_end[i] - 1 < safe) safe = s->hdr_end[i] - 1;
    assert_int_equal(m->given, safe);
    assert_memory_equal(m->out + m->checked, s->b + m->checked, m->given - m->checked);
    m->checked = m->given;
}

/* A ClientHello announced in stream bytes [at, at + 9) whose body never comes. */
static void never_whole(struct stream *s, size_t at)
{
    s->hdr_end[s->nlarge] = at + 9;
    s->msg_end[s->nlarge] = SIZE_MAX;
    s->nlarge++;
}

/* Feeds the stream in reads of the given sizes (then the rest); returns the simulation. */
static void sim_run(struct sim *m, const struct stream *s, const size_t *sizes, size_t nsizes)
{
    memset(m, 0, sizeof(*m));
    m->out = malloc(s->len);
    assert_non_null(m->out);
    for (size_t i = 0; m->received < s->len && !m->h.oversized; i++) {
        size_t n = i < nsizes ? sizes[i] : s->len - m->received;
        if (n > s->len - m->received) n = s->len - m->received;
        sim_read(m, s, n);
        if (!m->h.oversized) sim_check(m, s);
    }
}

static void sim_free(struct sim *m)
{
    ts_hello_free(&m->h);
    free(m->out);
}

/* Every way of cutting the stream in two, then byte by byte, then random reads: all of it
 * reaches OpenSSL in order, and the guarantees hold after every read. */
static void check_all_splits(const struct stream *s, unsigned seed)
{
    struct sim m;
    for (size_t cut = 0; cut <= s->len; cut++) {
        size_t sizes[1] = {cut};
        sim_run(&m, s, sizes, 1);
        assert_false(m.h.oversized);
        assert_int_equal(m.given, s->len);
        assert_null(m.h.buf);
        sim_free(&m);
    }
    size_t *ones = malloc(s->len * sizeof(*ones));
    assert_non_null(ones);
    for (size_t i = 0; i < s->len; i++) ones[i] = 1;
    sim_run(&m, s, ones, s->len);
    assert_int_equal(m.given, s->len);
    sim_free(&m);
    srand(seed);
    for (int r = 0; r < 300; r++) {
        size_t n = 0;
        for (size_t at = 0; at < s->len; n++) {
            ones[n] = 1 + (size_t)rand() % (r % 2 ? 40 : 20000);
            at += ones[n];
        }
        sim_run(&m, s, ones, n);
        assert_int_equal(m.given, s->len);
        sim_free(&m);
    }
    free(ones);
}

/* TLS 1.3 with a HelloRetryRequest: a 20 KB ClientHello in full records, a ChangeCipherSpec,
 * the second ClientHello in 1000-byte records, then encrypted records (the scan stops). */
static void test_tls13_hrr(void **state)
{
    (void)state;
    struct stream s = {0};
    uint8_t ccs = 1, app[40] = {0};
    put_message(&s, 1, 20000, 20000, 16384);
    put_record(&s, REC_CCS, &ccs, 1);
    put_message(&s, 1, 20100, 20100, 1000);
    put_record(&s, REC_APPDATA, app, sizeof(app));
    assert_int_equal(s.nlarge, 2);
    check_all_splits(&s, 1);
    free(s.b);
}

/* TLS 1.2: the ClientHello at the largest size accepted, in records of 700 bytes, then the
 * client's next flight (plaintext handshake messages the guard does not follow). */
static void test_tls12_largest(void **state)
{
    (void)state;
    struct stream s = {0};
    put_message(&s, 1, TS_HELLO_MAX, TS_HELLO_MAX, 700);
    s.tls12_from = s.len;
    put_message(&s, 16, 70, 70, 16384); /* ClientKeyExchange */
    uint8_t ccs = 1;
    put_record(&s, REC_CCS, &ccs, 1);
    struct sim m;
    size_t one = 1;
    sim_run(&m, &s, &one, 1); /* the first byte alone, then all */
    assert_false(m.h.oversized);
    assert_int_equal(m.given, s.len);
    sim_free(&m);
    size_t sizes[] = {9, 16000, 16000, 16000, 16000, 1000, 500};
    sim_run(&m, &s, sizes, sizeof(sizes) / sizeof(sizes[0]));
    assert_int_equal(m.given, s.len);
    /* a 64 KiB ClientHello fits the hold buffer's bound */
    assert_true(m.max_cap <= TS_HELLO_HOLD_MAX);
    sim_free(&m);
    free(s.b);
}

/* A ClientHello that OpenSSL's own 16 KB buffer takes is never held; one byte more is. */
static void test_direct_bound(void **state)
{
    (void)state;
    for (size_t mlen = TS_HELLO_DIRECT; mlen <= TS_HELLO_DIRECT + 1; mlen++) {
        struct stream s = {0};
        put_message(&s, 1, mlen, mlen, 16384);
        struct sim m;
        size_t sizes[] = {100, 100};
        sim_run(&m, &s, sizes, 2);
        assert_int_equal(m.given, s.len);
        assert_int_equal(m.max_cap > 0, mlen > TS_HELLO_DIRECT);
        sim_free(&m);
        free(s.b);
    }
}

/* A ClientHello announced over TS_HELLO_MAX is refused at its header's last byte, however
 * split; TS_HELLO_MAX itself is not. */
static void test_oversized(void **state)
{
    (void)state;
    uint32_t lens[] = {TS_HELLO_MAX + 1, 131000, 0xffffff};
    for (size_t i = 0; i < 3; i++) {
        struct stream s = {0};
        uint8_t h[9] = {
            REC_HANDSHAKE,   3, 1, 0x40, 0x00, 1, (uint8_t)(lens[i] >> 16), (uint8_t)(lens[i] >> 8),
            (uint8_t)lens[i]};
        put(&s, h, sizeof(h));
        for (size_t cut = 0; cut <= 9; cut++) {
            struct sim m;
            size_t sizes[1] = {cut};
            sim_run(&m, &s, sizes, 1);
            assert_true(m.h.oversized);
            assert_true(m.given < 9); /* the last header byte never reached OpenSSL */
            sim_free(&m);
        }
        free(s.b);
    }
}

/* A ClientHello announced at the largest size and never sent: one byte held, in a buffer of
 * 256 bytes, whatever it announced. */
static void test_announced_only(void **state)
{
    (void)state;
    struct stream s = {0};
    uint8_t h[9] = {REC_HANDSHAKE, 3, 1, 0, 4, 1, 0x01, 0x00, 0x00}; /* a 4-byte record */
    put(&s, h, sizeof(h));
    never_whole(&s, 0);
    struct sim m;
    sim_run(&m, &s, NULL, 0);
    assert_false(m.h.oversized);
    assert_int_equal(m.given, 8);
    assert_int_equal(ts_hello_held(&m.h), 1);
    assert_int_equal(m.h.cap, 256);
    sim_free(&m);
    free(s.b);
}

/* Records of other types while a ClientHello is held stay held with it (releasing them would
 * release its header); a client that never completes it reaches TS_HELLO_HOLD_MAX and is
 * refused, as is a 64 KiB ClientHello in 1-byte records. */
static void test_hold_bound(void **state)
{
    (void)state;
    struct stream s = {0};
    uint8_t h[9] = {REC_HANDSHAKE, 3, 1, 0, 4, 1, 0x01, 0x00, 0x00};
    put(&s, h, sizeof(h));
    never_whole(&s, 0);
    uint8_t junk[1000];
    memset(junk, 'x', sizeof(junk));
    for (int i = 0; i < 100; i++) put_record(&s, i % 2 ? REC_ALERT : REC_APPDATA, junk, 1000);
    struct sim m;
    size_t sizes[] = {9, 3000, 3000, 3000, 3000, 3000, 3000, 3000, 3000, 3000};
    sim_run(&m, &s, sizes, sizeof(sizes) / sizeof(sizes[0]));
    assert_true(m.h.oversized);
    assert_int_equal(m.given, 8);
    assert_true(m.max_cap <= TS_HELLO_HOLD_MAX);
    sim_free(&m);
    free(s.b);

    /* reads of 16 KiB, as OpenSSL's (a single read of all of it would hold nothing back) */
    struct stream t = {0};
    put_message(&t, 1, TS_HELLO_MAX, TS_HELLO_MAX, 1);
    size_t reads[30];
    for (size_t i = 0; i < 30; i++) reads[i] = 16384;
    sim_run(&m, &t, reads, 30);
    assert_true(m.h.oversized);
    assert_true(m.given < t.hdr_end[0]);
    sim_free(&m);
    free(t.b);
}

/* A large ClientHello with an alert between its records is still released once whole:
 * OpenSSL then judges the alert (the guard only keeps it from allocating early). */
static void test_interleaved(void **state)
{
    (void)state;
    struct stream s = {0};
    uint8_t m1[16384], m2[4000], warn[2] = {1, 0};
    size_t mlen = sizeof(m1) + sizeof(m2) - 4;
    memset(m1, 'a', sizeof(m1));
    memset(m2, 'b', sizeof(m2));
    m1[0] = 1;
    m1[1] = (uint8_t)(mlen >> 16);
    m1[2] = (uint8_t)(mlen >> 8);
    m1[3] = (uint8_t)mlen;
    put_record(&s, REC_HANDSHAKE, m1, sizeof(m1));
    put_record(&s, REC_ALERT, warn, sizeof(warn));
    put_record(&s, REC_HANDSHAKE, m2, sizeof(m2));
    s.hdr_end[0] = 9;
    s.msg_end[0] = s.len;
    s.nlarge = 1;
    check_all_splits(&s, 3);
    free(s.b);
}

/* What is no ClientHello passes at once: plain HTTP, another handshake message first, a small
 * ClientHello (the scan then follows the rest of the TLS 1.3 flight). */
static void test_passes(void **state)
{
    (void)state;
    const char *get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    struct sim m;
    struct stream s = {0};
    put(&s, get, strlen(get));
    sim_run(&m, &s, NULL, 0);
    assert_true(m.h.done);
    assert_int_equal(m.given, s.len);
    sim_free(&m);
    free(s.b);

    struct stream t = {0};
    put_message(&t, 2, 30000, 30000, 16384); /* a ServerHello from a client */
    sim_run(&m, &t, NULL, 0);
    assert_true(m.h.done);
    assert_int_equal(m.given, t.len);
    sim_free(&m);
    free(t.b);

    struct stream u = {0};
    uint8_t ccs = 1;
    put_message(&u, 1, 1500, 1500, 512);
    put_record(&u, REC_CCS, &ccs, 1);
    put_message(&u, 1, 1600, 1600, 16384);
    check_all_splits(&u, 2);
    free(u.b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls13_hrr),      cmocka_unit_test(test_tls12_largest),
        cmocka_unit_test(test_direct_bound),   cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_announced_only), cmocka_unit_test(test_hold_bound),
        cmocka_unit_test(test_interleaved),    cmocka_unit_test(test_passes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
