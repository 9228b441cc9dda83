/* Unit tests for the PROXY protocol header parser: v1 and v2 headers, every malformed form,
 * input split at every byte, and the 107 / 536-byte bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proxy.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const uint8_t SIG[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* Parses a copy of exactly len bytes (so ASan sees any overread). */
static enum ts_proxy_status parse(const void *buf, size_t len, struct ts_proxy_result *r)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, buf, len);
    enum ts_proxy_status s = ts_proxy_parse(copy, len, r);
    free(copy);
    return s;
}

/* Every strict prefix needs more (or fails the same way), the whole is done. */
static void check_split(const void *buf, size_t len, size_t consumed)
{
    struct ts_proxy_result r;
    for (size_t i = 0; i < consumed; i++) assert_int_equal(parse(buf, i, &r), TS_PROXY_NEED_MORE);
    for (size_t i = consumed; i <= len; i++) {
        assert_int_equal(parse(buf, i, &r), TS_PROXY_DONE);
        assert_int_equal(r.consumed, consumed);
    }
}

static void check_error(const void *buf, size_t len)
{
    struct ts_proxy_result r;
    assert_int_equal(parse(buf, len, &r), TS_PROXY_ERROR);
    assert_non_null(r.error);
}

static void check_error_str(const char *s)
{
    check_error(s, strlen(s));
}

static void test_v1_tcp4(void **state)
{
    (void)state;
    const char *h = "PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\n\x16\x03\x01";
    struct ts_proxy_result r;
    assert_int_equal(parse(h, strlen(h), &r), TS_PROXY_DONE);
    assert_int_equal(r.consumed, strlen(h) - 3);
    assert_int_equal(r.version, 1);
    assert_false(r.local);
    assert_int_equal(r.family, AF_INET);
    assert_memory_equal(r.src, "\xc0\x00\x02\x07", 4);
    assert_memory_equal(r.dst, "\x0a\x00\x00\x01", 4);
    assert_int_equal(r.src_port, 56324);
    assert_int_equal(r.dst_port, 443);
    check_split(h, strlen(h), strlen(h) - 3);
}

static void test_v1_tcp6_and_unknown(void **state)
{
    (void)state;
    const char *h = "PROXY TCP6 2001:db8::1 ::1 0 65535\r\n";
    struct ts_proxy_result r;
    assert_int_equal(parse(h, strlen(h), &r), TS_PROXY_DONE);
    assert_int_equal(r.family, AF_INET6);
    unsigned char want[16];
    inet_pton(AF_INET6, "2001:db8::1", want);
    assert_memory_equal(r.src, want, 16);
    assert_int_equal(r.src_port, 0);
    assert_int_equal(r.dst_port, 65535);
    check_split(h, strlen(h), strlen(h));

    const char *u[] = {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n",
                       "PROXY UNKNOWN anything at all\r\n"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(parse(u[i], strlen(u[i]), &r), TS_PROXY_DONE);
        assert_true(r.local);
        check_split(u[i], strlen(u[i]), strlen(u[i]));
    }
}

static void test_v1_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",   /* LF alone */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX",  /* CR without LF */
        "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", /* protocol */
        "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4\r\n",
        "PROXY TCP4 \r\n",
        "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", /* double space */
        "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",  /* trailing space */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", /* extra field */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",     /* missing field */
        "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",     /* address */
        "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
        "PROXY TCP4 ::1 5.6.7.8 1 2\r\n",         /* v6 address under TCP4 */
        "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",         /* v4 address under TCP6 */
        "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", /* port */
        "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2x\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 100000\r\n",
        "PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n", /* control byte */
        "PROXY UNKNOWNX\r\n",
        "PROXY\r\n",
        "PROXZ TCP4 1.2.3.4 5.6.7.8 1 2\r\n", /* signature */
        "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", /* a ClientHello */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) check_error_str(bad[i]);
    /* a non-ASCII byte and a NUL inside the line */
    check_error("PROXY TCP4 1.2.3.4\x80", 19);
    check_error("PROXY TCP4 1.2\0.3.4 5.6.7.8 1 2\r\n", 33);
    /* refused at the first byte that cannot begin a header: no waiting for the timeout */
    check_error("\x16", 1);
    check_error("PX", 2);
}

static void test_v1_bounds(void **state)
{
    (void)state;
    /* the longest valid line is exactly 107 bytes; padding the UNKNOWN form reaches it */
    char line[160];
    memset(line, 'a', sizeof(line));
    memcpy(line, "PROXY UNKNOWN ", 14);
    line[105] = '\r';
    line[106] = '\n';
    struct ts_proxy_result r;
    assert_int_equal(parse(line, 107, &r), TS_PROXY_DONE);
    assert_int_equal(r.consumed, 107);
    check_split(line, 107, 107);
    /* one byte longer: refused once 107 bytes came without the end of line */
    memset(line, 'a', sizeof(line));
    memcpy(line, "PROXY UNKNOWN ", 14);
    line[106] = '\r';
    line[107] = '\n';
    for (size_t i = 6; i < 107; i++) assert_int_equal(parse(line, i, &r), TS_PROXY_NEED_MORE);
    check_error(line, 107);
    check_error(line, 108);
    /* the longest real TCP6 line fits */
    const char *t6 = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_int_equal(strlen(t6), 104);
    check_split(t6, strlen(t6), strlen(t6));
}

/* Builds a v2 header: ver_cmd, fam, then body bytes; returns its length. */
static size_t v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const void *body, size_t blen)
{
    memcpy(out, SIG, 12);
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (uint8_t)(blen >> 8);
    out[15] = (uint8_t)blen;
    if (blen) memcpy(out + 16, body, blen);
    return 16 + blen;
}

static void test_v2_inet(void **state)
{
    (void)state;
    uint8_t h[700];
    const uint8_t body[12] = {10, 1, 2, 3, 127, 0, 0, 1, 0x30, 0x39, 0x01, 0xbb};
    size_t n = v2(h, 0x21, 0x11, body, sizeof(body));
    memcpy(h + n, "\x16\x03\x01", 3);
    struct ts_proxy_result r;
    assert_int_equal(parse(h, n + 3, &r), TS_PROXY_DONE);
    assert_int_equal(r.consumed, 28);
    assert_int_equal(r.version, 2);
    assert_false(r.local);
    assert_int_equal(r.family, AF_INET);
    assert_memory_equal(r.src, "\x0a\x01\x02\x03", 4);
    assert_int_equal(r.src_port, 12345);
    assert_int_equal(r.dst_port, 443);
    check_split(h, n + 3, n);
}

static void test_v2_inet6_tlvs_local(void **state)
{
    (void)state;
    uint8_t h[700], body[600];
    memset(body, 0, sizeof(body));
    inet_pton(AF_INET6, "2001:db8::42", body);
    inet_pton(AF_INET6, "::1", body + 16);
    body[32] = 0x04;
    body[33] = 0xd2;
    body[34] = 0x01;
    body[35] = 0xbb;
    /* a TLV (PP2_TYPE_AUTHORITY "example") is skipped with the header */
    memcpy(body + 36,
           "\x02\x00\x07"
           "example",
           10);
    size_t n = v2(h, 0x21, 0x21, body, 46);
    struct ts_proxy_result r;
    assert_int_equal(parse(h, n, &r), TS_PROXY_DONE);
    assert_int_equal(r.family, AF_INET6);
    assert_memory_equal(r.src, body, 16);
    assert_int_equal(r.src_port, 1234);
    assert_int_equal(r.consumed, 62);
    check_split(h, n, n);

    /* LOCAL (a health check), whatever the family: keep the peer */
    n = v2(h, 0x20, 0x00, NULL, 0);
    assert_int_equal(parse(h, n, &r), TS_PROXY_DONE);
    assert_true(r.local);
    assert_int_equal(r.consumed, 16);
    check_split(h, n, n);
    n = v2(h, 0x20, 0x11, body, 12);
    assert_int_equal(parse(h, n, &r), TS_PROXY_DONE);
    assert_true(r.local);
    /* PROXY with UNSPEC or UNIX: no usable address, keep the peer */
    n = v2(h, 0x21, 0x00, NULL, 0);
    assert_int_equal(parse(h, n, &r), TS_PROXY_DONE);
    assert_true(r.local);
    n = v2(h, 0x21, 0x31, body, 216);
    assert_int_equal(parse(h, n, &r), TS_PROXY_DONE);
    assert_true(r.local);
    assert_int_equal(r.consumed, 232);
}

static void test_v2_bounds(void **state)
{
    (void)state;
    uint8_t h[700], body[600];
    memset(body, 0, sizeof(body));
    /* 536 bytes in all is the most accepted, 537 is refused as soon as the length is read */
    size_t n = v2(h, 0x21, 0x11, body, 520);
    check_split(h, n, 536);
    n = v2(h, 0x21, 0x11, body, 521);
    check_error(h, 16);
    check_error(h, n);
    v2(h, 0x21, 0x11, body, 0); /* then a length field of 65535 */
    h[14] = 0xff;
    h[15] = 0xff;
    check_error(h, 16);
}

static void test_v2_malformed(void **state)
{
    (void)state;
    uint8_t h[700], body[64];
    memset(body, 0, sizeof(body));
    size_t n;
    n = v2(h, 0x11, 0x11, body, 12); /* version 1 */
    check_error(h, 13);
    check_error(h, n);
    n = v2(h, 0x31, 0x11, body, 12); /* version 3 */
    check_error(h, n);
    n = v2(h, 0x22, 0x11, body, 12); /* command 2 */
    check_error(h, n);
    n = v2(h, 0x2f, 0x11, body, 12);
    check_error(h, n);
    n = v2(h, 0x21, 0x41, body, 12); /* family 4 */
    check_error(h, n);
    n = v2(h, 0x21, 0x13, body, 12); /* transport 3 */
    check_error(h, n);
    n = v2(h, 0x21, 0x12, body, 12); /* UDP */
    check_error(h, n);
    n = v2(h, 0x21, 0x10, body, 12); /* INET over UNSPEC transport */
    check_error(h, n);
    n = v2(h, 0x21, 0x11, body, 11); /* address block too short */
    check_error(h, n);
    n = v2(h, 0x21, 0x21, body, 35);
    check_error(h, n);
    n = v2(h, 0x21, 0x11, body, 0);
    check_error(h, n);
    /* a damaged signature at any byte */
    for (size_t i = 0; i < 12; i++) {
        n = v2(h, 0x21, 0x11, body, 12);
        h[i] ^= 0x40;
        check_error(h, i + 1);
        check_error(h, n);
    }
}

static void test_empty(void **state)
{
    (void)state;
    struct ts_proxy_result r;
    assert_int_equal(ts_proxy_parse((const uint8_t *)"", 0, &r), TS_PROXY_NEED_MORE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_tcp4),      cmocka_unit_test(test_v1_tcp6_and_unknown),
        cmocka_unit_test(test_v1_malformed), cmocka_unit_test(test_v1_bounds),
        cmocka_unit_test(test_v2_inet),      cmocka_unit_test(test_v2_inet6_tlvs_local),
        cmocka_unit_test(test_v2_bounds),    cmocka_unit_test(test_v2_malformed),
        cmocka_unit_test(test_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
