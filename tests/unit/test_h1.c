/* Unit tests for the llhttp glue: in-place request recording across split reads, pipelining,
 * keep-alive and the errors found while parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "h1.h"

#include <stdio.h>
#include <string.h>

static struct ts_h1 h1;
static struct ts_request req;

static bool str_is(struct ts_str s, const char *want)
{
    return s.len == strlen(want) && (s.len == 0 || memcmp(s.p, want, s.len) == 0);
}

/* Parses text in pieces of at most step bytes, as successive reads into one buffer would
 * deliver it. Returns the result of the last call and the bytes consumed in total. */
static enum ts_h1_parse parse_steps(const char *text, size_t step, size_t *consumed)
{
    size_t len = strlen(text), fed = 0, avail = 0;
    enum ts_h1_parse r = TS_H1_NEED_MORE;
    ts_h1_begin(&h1, &req);
    while (fed < len) {
        avail = avail + step > len ? len : avail + step;
        size_t used = 0;
        r = ts_h1_parse(&h1, text + fed, avail - fed, &used, 4096);
        fed += used;
        if (r != TS_H1_NEED_MORE) break;
    }
    *consumed = fed;
    return r;
}

static const char get_req[] = "GET /a/b.html?x=1&y=2 HTTP/1.1\r\n"
                              "Host: example.test\r\n"
                              "User-Agent: unit\r\n"
                              "X-Other: ignored\r\n"
                              "If-None-Match: \"abc\"\r\n"
                              "Accept-Encoding: gzip, br\r\n"
                              "\r\n";

static void check_get(void)
{
    assert_true(h1.complete);
    assert_int_equal(req.method, HTTP_GET);
    assert_int_equal(req.http_minor, 1);
    assert_true(str_is(req.target, "/a/b.html?x=1&y=2"));
    assert_true(str_is(req.path, "/a/b.html"));
    assert_true(str_is(req.query, "?x=1&y=2"));
    assert_true(str_is(req.hdr[TS_HDR_HOST], "example.test"));
    assert_true(str_is(req.hdr[TS_HDR_USER_AGENT], "unit"));
    assert_true(str_is(req.hdr[TS_HDR_IF_NONE_MATCH], "\"abc\""));
    assert_true(str_is(req.hdr[TS_HDR_ACCEPT_ENCODING], "gzip, br"));
    assert_null(req.hdr[TS_HDR_RANGE].p);
    assert_true(ts_h1_keep_alive(&h1));
}

static void test_whole(void **state)
{
    (void)state;
    size_t used;
    assert_int_equal(parse_steps(get_req, sizeof(get_req), &used), TS_H1_REQUEST);
    assert_int_equal(used, strlen(get_req));
    check_get();
}

static void test_every_split(void **state)
{
    (void)state;
    for (size_t step = 1; step < sizeof(get_req); step++) {
        size_t used;
        assert_int_equal(parse_steps(get_req, step, &used), TS_H1_REQUEST);
        assert_int_equal(used, strlen(get_req));
        check_get();
    }
}

static void test_pipelined(void **state)
{
    (void)state;
    const char two[] = "GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
                       "HEAD /two HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n";
    size_t used = 0;
    ts_h1_begin(&h1, &req);
    assert_int_equal(ts_h1_parse(&h1, two, strlen(two), &used, 4096), TS_H1_REQUEST);
    assert_int_equal(used, strlen("GET /one HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert_true(str_is(req.path, "/one"));
    assert_true(ts_h1_keep_alive(&h1));

    size_t rest = strlen(two) - used, used2 = 0;
    ts_h1_begin(&h1, &req);
    assert_int_equal(ts_h1_parse(&h1, two + used, rest, &used2, 4096), TS_H1_REQUEST);
    assert_int_equal(used2, rest);
    assert_int_equal(req.method, HTTP_HEAD);
    assert_true(str_is(req.path, "/two"));
    assert_true(str_is(req.hdr[TS_HDR_HOST], "b"));
    assert_false(ts_h1_keep_alive(&h1));
}

static void test_http10(void **state)
{
    (void)state;
    size_t used;
    assert_int_equal(parse_steps("GET / HTTP/1.0\r\n\r\n", 100, &used), TS_H1_REQUEST);
    assert_int_equal(req.http_minor, 0);
    assert_false(ts_h1_keep_alive(&h1));
    assert_int_equal(parse_steps("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 100, &used),
                     TS_H1_REQUEST);
    assert_true(ts_h1_keep_alive(&h1));
}

static void expect_error(const char *text, int status)
{
    size_t used;
    enum ts_h1_parse r = parse_steps(text, strlen(text), &used);
    if (r != TS_H1_ERROR || req.error != status)
        fail_msg("\"%s\": result %d, error %d, want error %d", text, r, req.error, status);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("GARBAGE\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\n\r\n", 400);                       /* no Host */
    expect_error("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400); /* two Hosts */
    expect_error("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked"
                 "\r\n\r\n",
                 400);
    expect_error("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                 400);
    expect_error("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n", 400);
    expect_error("GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\nHo st: a\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\nHost: a\n\n", 400);             /* bare LF */
    expect_error("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400); /* bare CR */
    expect_error("GET / HTTP/3.1\r\nHost: a\r\n\r\n", 505);
    expect_error("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400); /* obs-fold */
    expect_error("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n", 400);
    {
        static const char nul[] = "GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n";
        size_t used;
        ts_h1_begin(&h1, &req);
        assert_int_equal(ts_h1_parse(&h1, nul, sizeof(nul) - 1, &used, 4096), TS_H1_ERROR);
        assert_int_equal(req.error, 400);
    }
    expect_error("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                 "Transfer-Encoding: gzip\r\n\r\n",
                 400);

    char longreq[6000] = "GET /";
    memset(longreq + 5, 'a', 5000);
    strcpy(longreq + 5005, " HTTP/1.1\r\nHost: a\r\n\r\n");
    expect_error(longreq, 414);
}

/* Parses "METHOD target HTTP/1.1" and checks the path and query it names. */
static void expect_target(const char *target, const char *path, const char *query)
{
    char text[512];
    snprintf(text, sizeof(text), "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", target);
    size_t used;
    enum ts_h1_parse r = parse_steps(text, strlen(text), &used);
    if (r != TS_H1_REQUEST) fail_msg("\"%s\": result %d, error %d", target, r, req.error);
    if (!str_is(req.path, path) || !str_is(req.query, query))
        fail_msg("\"%s\": path \"%.*s\" query \"%.*s\", want \"%s\" \"%s\"", target,
                 (int)req.path.len, req.path.p, (int)req.query.len, req.query.p, path, query);
}

static void test_absolute_form(void **state)
{
    (void)state;
    expect_target("http://a/b", "/b", "");
    expect_target("http://a?x=/y", "/", "?x=/y");
    expect_target("https://h:8443/p?q", "/p", "?q");
    expect_target("http://a", "/", "");
    expect_target("HTTP://A/B", "/B", "");
    expect_target("hTTpS://A/B?c", "/B", "?c");
    expect_error("GET http://a#frag HTTP/1.1\r\nHost: a\r\n\r\n", 400); /* llhttp refuses it */
    expect_target("http://a/b#frag?x", "/b", "");
    expect_target("http://a/b?x#frag", "/b", "?x");
    expect_target("http://x/", "/", "");
    expect_target("/plain?q=http://x/y", "/plain", "?q=http://x/y");
    expect_target("/p#f", "/p", "");
    /* not absolute-form: left for the path check to refuse */
    expect_target("ftp://a/b", "ftp://a/b", "");
}

/* Every answer to HEAD is headers only, errors found while parsing included. */
/* RFC 9110 section 6.2: "HTTP/1.2" (any 1.x over 1) is handled as 1.1, however the reads
 * split it, and the version the client sent is kept for the log. */
static void test_higher_minor(void **state)
{
    (void)state;
    static const char *const reqs[] = {
        "GET /a?q HTTP/1.2\r\nHost: example.test\r\nUser-Agent: u\r\n\r\nGET /next",
        "GET /a?q HTTP/1.9\r\nHost: example.test\r\nUser-Agent: u\r\n\r\nGET /next"};
    for (size_t i = 0; i < 2; i++) {
        size_t whole = strlen(reqs[i]) - strlen("GET /next");
        for (size_t step = 1; step <= strlen(reqs[i]); step++) {
            size_t used = 0;
            if (parse_steps(reqs[i], step, &used) != TS_H1_REQUEST)
                fail_msg("\"%s\" in steps of %zu: error %d", reqs[i], step, req.error);
            assert_int_equal(used, whole);
            assert_int_equal(req.http_minor, 1);
            assert_true(str_is(req.target, "/a?q"));
            assert_true(str_is(req.path, "/a"));
            assert_true(str_is(req.hdr[TS_HDR_HOST], "example.test"));
            assert_true(str_is(req.hdr[TS_HDR_USER_AGENT], "u"));
            assert_true(ts_h1_keep_alive(&h1));
            char want[9];
            snprintf(want, sizeof(want), "HTTP/1.%c", reqs[i][16]);
            assert_string_equal(req.protocol, want);
        }
    }
    /* still refused: two digits, a letter, a header error after the version */
    expect_error("GET / HTTP/1.23\r\nHost: a\r\n\r\n", 400);
    expect_error("GET / HTTP/1.2x\r\nHost: a\r\n\r\n", 400);
    expect_error("GET / HTTP/1.2\r\n\r\n", 400); /* handled as 1.1: Host is required */
    expect_error("GET / HTTP/1.2\r\nHost: a\r\nHost: b\r\n\r\n", 400);
}

/* A request with a body the server never reads: the connection cannot carry another, however
 * the request asked to be kept (the body would be parsed as the next request). */
static void test_body_closes(void **state)
{
    (void)state;
    size_t used;
    static const char *const reqs[] = {
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 38\r\n\r\n"
        "GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        "26\r\nGET /index.html HTTP/1.1\r\nHost: x\r\n\r\n\r\n0\r\n\r\n",
        "GET / HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nG",
    };
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(parse_steps(reqs[i], 1000, &used), TS_H1_REQUEST);
        assert_true(req.has_body);
        assert_false(ts_h1_keep_alive(&h1));
        assert_ptr_equal(strstr(reqs[i], "\r\n\r\n") + 4, reqs[i] + used); /* body unread */
    }
    assert_int_equal(
        parse_steps("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 1000, &used),
        TS_H1_REQUEST);
    assert_false(req.has_body);
    assert_true(ts_h1_keep_alive(&h1));
}

/* The version the access log shows: the one sent, or nothing before it was read. */
static void test_protocol_as_sent(void **state)
{
    (void)state;
    size_t used;
    static const struct {
        const char *text, *protocol;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1"},
        {"GET / HTTP/1.0\r\n\r\n", "HTTP/1.0"},
        {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "HTTP/2.0"},
        {"GET / HTTP/3.0\r\n\r\n", "HTTP/3.0"},
        {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "HTTP/1.1"},
        {"GET /\x01 HTTP/1.1\r\n\r\n", ""},
        {"\x01GET / HTTP/1.1\r\n\r\n", ""},
        {"GET / HTTP/1.x\r\n\r\n", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        parse_steps(cases[i].text, 1000, &used);
        if (strcmp(req.protocol, cases[i].protocol) != 0)
            fail_msg("\"%s\": protocol \"%s\", want \"%s\"", cases[i].text, req.protocol,
                     cases[i].protocol);
    }
}

static void test_head_known_early(void **state)
{
    (void)state;
    size_t used;
    assert_int_equal(
        parse_steps("HEAD / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", 100, &used),
        TS_H1_REQUEST);
    assert_true(req.has_body);
    assert_int_equal(req.method, HTTP_HEAD);
    char longreq[6000] = "HEAD /";
    memset(longreq + 6, 'a', 5000);
    strcpy(longreq + 5006, " HTTP/1.1\r\nHost: a\r\n\r\n");
    expect_error(longreq, 414);
    assert_int_equal(req.method, HTTP_HEAD);
    expect_error("HEAD / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    assert_int_equal(req.method, HTTP_HEAD);
    expect_error("HEAD / HTTP/2.0\r\nHost: a\r\n\r\n", 505);
    assert_int_equal(req.method, HTTP_HEAD);
    /* a byte refused inside the target: HEAD however the reads split it (a read ending
     * inside the target made it HEAD, the same bytes in one read did not) */
    static const char badtarget[] = "HEAD /big\x01bin HTTP/1.1\r\nHost: a\r\n\r\n";
    for (size_t step = 1; step < sizeof(badtarget); step++) {
        assert_int_equal(parse_steps(badtarget, step, &used), TS_H1_ERROR);
        if (req.error != 400 || req.method != HTTP_HEAD)
            fail_msg("split every %zu: error %d, method %d", step, req.error, req.method);
    }
    /* llhttp refuses these versions itself: still 505 for any major of 2 or more */
    expect_error("GET / HTTP/2.1\r\nHost: a\r\n\r\n", 505);
    expect_error("GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505);
    expect_error("GET / HTTP/9.9\r\nHost: a\r\n\r\n", 505);
    expect_error("GET / HTTP/10.0\r\nHost: a\r\n\r\n", 505);
    expect_error("GET / HTTP/1.12\r\nHost: a\r\n\r\n", 400);
    expect_error("GET / HTTP/1.x\r\nHost: a\r\n\r\n", 400);
    expect_error("GET / HTTP/2.x\r\nHost: a\r\n\r\n", 400);
    /* however the reads split the version */
    static const char *const v505[] = {"GET / HTTP/3.0\r\nHost: a\r\n\r\n",
                                       "GET / HTTP/10.0\r\nHost: a\r\n\r\n"};
    for (size_t i = 0; i < 2; i++)
        for (size_t step = 1; step <= strlen(v505[i]); step++) {
            if (parse_steps(v505[i], step, &used) != TS_H1_ERROR || req.error != 505)
                fail_msg("\"%s\" in steps of %zu: error %d, want 505", v505[i], step, req.error);
        }
    expect_error("GET / HTTP/0.8\r\nHost: a\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    assert_int_not_equal(req.method, HTTP_HEAD);
    assert_int_equal(parse_steps("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 100, &used), TS_H1_REQUEST);
    assert_int_not_equal(req.method, HTTP_HEAD);
}

/* An unknown method is 501 however reads split it, even inside the method token. */
static void test_unknown_method(void **state)
{
    (void)state;
    static const char brew[] = "BREW / HTTP/1.1\r\nHost: a\r\n\r\n";
    for (size_t step = 1; step < sizeof(brew); step++) {
        size_t used;
        assert_int_equal(parse_steps(brew, step, &used), TS_H1_ERROR);
        if (req.error != 501) fail_msg("split every %zu bytes: error %d", step, req.error);
    }
    size_t used;
    assert_int_equal(parse_steps("BR", 1, &used), TS_H1_NEED_MORE); /* still undecided */
    expect_error("BR\x01W / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    expect_error("BREWBREWBREWBREWBREWBREWBREWBREWBREW / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    assert_int_equal(parse_steps("BREWBREWBREWBREWBREWBREWBREWBREWBREW", 1, &used),
                     TS_H1_ERROR); /* too long for a method: decided without the space */
    /* the longest method taken (32 characters) is 501 however it is split: a read that ends
     * right after its last character must wait for the space */
    static const char m32[] = "BREWBREWBREWBREWBREWBREWBREWBREW / HTTP/1.1\r\nHost: a\r\n\r\n";
    for (size_t step = 1; step < sizeof(m32); step++) {
        assert_int_equal(parse_steps(m32, step, &used), TS_H1_ERROR);
        if (req.error != 501)
            fail_msg("32-character method, split every %zu: error %d", step, req.error);
    }
    expect_error("BREWBREWBREWBREWBREWBREWBREWBREWB / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
}

static void test_body(void **state)
{
    (void)state;
    size_t used;
    assert_int_equal(
        parse_steps("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", 100, &used),
        TS_H1_REQUEST);
    assert_true(req.has_body);
    assert_int_equal(
        parse_steps("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 100, &used),
        TS_H1_REQUEST);
    assert_true(req.has_body);
    assert_int_equal(
        parse_steps("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 100, &used),
        TS_H1_REQUEST);
    assert_false(req.has_body);
}

static void test_incomplete(void **state)
{
    (void)state;
    size_t used;
    assert_int_equal(parse_steps("GET / HTTP/1.1\r\nHost: a\r\n", 100, &used), TS_H1_NEED_MORE);
    assert_false(h1.complete);
}

static void test_tokens(void **state)
{
    (void)state;
    struct ts_str v = {"keep-alive, Close ,x", 20};
    assert_true(ts_http_has_token(v, "close"));
    assert_true(ts_http_has_token(v, "keep-alive"));
    assert_true(ts_http_has_token(v, "x"));
    assert_false(ts_http_has_token(v, "clo"));
    struct ts_str e = {"", 0};
    assert_false(ts_http_has_token(e, "close"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole),
        cmocka_unit_test(test_every_split),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_http10),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_body),
        cmocka_unit_test(test_unknown_method),
        cmocka_unit_test(test_incomplete),
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_absolute_form),
        cmocka_unit_test(test_head_known_early),
        cmocka_unit_test(test_higher_minor),
        cmocka_unit_test(test_body_closes),
        cmocka_unit_test(test_protocol_as_sent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
