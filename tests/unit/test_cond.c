/* Unit tests for entity tags, HTTP dates, Range and If-Range parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cond.h"

#include <stdio.h>
#include <string.h>

static struct ts_str S(const char *s) {
    return (struct ts_str){s, strlen(s)};
}

static void
no_number_in(const char *tag, unsigned long long v)
{
    char num[4][32];
    snprintf(num[0], sizeof(num[0]), "%llx", v);
    snprintf(num[1], sizeof(num[1]), "%llX", v);
    snprintf(num[2], sizeof(num[2]), "%llu", v);
    snprintf(num[3], sizeof(num[3]), "%llo", v);
    for (int i = 0; i < 4; i++)
        if (strstr(tag, num[i])) fail_msg("tag %s contains %s", tag, num[i]);
}

static void test_etag(void **state)
{
    (void)state;
    struct stat st = {0};
    st.st_ino = 0x1234567;
    st.st_dev = 0x803;
    st.st_size = 1000;
    st.st_mtim.tv_sec = 1700000000;
    st.st_mtim.tv_nsec = 5;
    char tag[TS_ETAG_MAX], again[TS_ETAG_MAX], other[TS_ETAG_MAX];
    ts_etag(&st, "a/b.txt", tag);
    /* the inode is in no base, nor the size or the mtime */
    no_number_in(tag, (unsigned long long)st.st_ino);
    no_number_in(tag, (unsigned long long)st.st_size);
    no_number_in(tag, (unsigned long long)st.st_mtim.tv_sec);
    /* quoted, 16 characters of base64url */
    assert_int_equal(strlen(tag), 18);
    assert_int_equal(tag[0], '"');
    assert_int_equal(tag[17], '"');
    assert_int_equal(strspn(tag + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                     "0123456789-_"),
                     16);
    /* and it is not an input at all: another inode or device (a copy on another server, a
     * restore) gives the same tag, as does computing it again */
    ts_etag(&st, "a/b.txt", again);
    assert_string_equal(tag, again);
    st.st_ino = 99;
    st.st_dev = 1;
    ts_etag(&st, "a/b.txt", again);
    assert_string_equal(tag, again);

    st.st_mtim.tv_nsec = 6; /* a touch within the same second changes the tag */
    ts_etag(&st, "a/b.txt", other);
    assert_string_not_equal(tag, other);
    st.st_mtim.tv_nsec = 5;
    st.st_mtim.tv_sec++;
    ts_etag(&st, "a/b.txt", other);
    assert_string_not_equal(tag, other);
    st.st_mtim.tv_sec--;
    st.st_size = 1001;
    ts_etag(&st, "a/b.txt", other);
    assert_string_not_equal(tag, other);
    st.st_size = 1000;
    /* a precompressed variant with the same size and mtime still has its own tag */
    ts_etag(&st, "a/b.txt.gz", other);
    assert_string_not_equal(tag, other);
    ts_etag(&st, "a/b.txt", other);
    assert_string_equal(tag, other);
}

static void test_if_none_match(void **state)
{
    (void)state;
    const char *e = "\"abc\"";
    assert_true(ts_etag_list_matches(S("\"abc\""), e));
    assert_true(ts_etag_list_matches(S("*"), e));
    assert_true(ts_etag_list_matches(S("W/\"abc\""), e)); /* weak comparison */
    assert_true(ts_etag_list_matches(S("\"x\", \"abc\""), e));
    assert_true(ts_etag_list_matches(S("\"x\",W/\"abc\" , \"y\""), e));
    assert_false(ts_etag_list_matches(S("\"abcd\""), e));
    assert_false(ts_etag_list_matches(S("\"x\", \"y\""), e));
    assert_false(ts_etag_list_matches(S("abc"), e));   /* not quoted */
    assert_false(ts_etag_list_matches(S("\"abc"), e)); /* unterminated */
    assert_false(ts_etag_list_matches(S(""), e));
}

static void test_dates(void **state)
{
    (void)state;
    assert_int_equal(ts_http_date_parse(S("Sun, 06 Nov 1994 08:49:37 GMT")), 784111777);
    assert_int_equal(ts_http_date_parse(S("Sunday, 06-Nov-94 08:49:37 GMT")), 784111777);
    assert_int_equal(ts_http_date_parse(S("Sun Nov  6 08:49:37 1994")), 784111777);
    assert_int_equal(ts_http_date_parse(S("Sun, 06 Nov 1994 08:49:37")), -1);
    assert_int_equal(ts_http_date_parse(S("yesterday")), -1);
    assert_int_equal(ts_http_date_parse(S("")), -1);
    assert_int_equal(ts_http_date_parse(S("Sun, 06 Nov 1994 08:49:37 GMT trailing")), -1);
}

static enum ts_range_result R(const char *v, uint64_t size, struct ts_range *r, int *n)
{
    return ts_range_parse(S(v), size, r, n);
}

static void test_single_ranges(void **state)
{
    (void)state;
    struct ts_range r[TS_MAX_RANGES];
    int n;
    assert_int_equal(R("bytes=0-499", 1000, r, &n), TS_RANGE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].first, 0);
    assert_int_equal(r[0].last, 499);
    assert_int_equal(R("bytes=500-", 1000, r, &n), TS_RANGE_OK); /* open-ended */
    assert_int_equal(r[0].first, 500);
    assert_int_equal(r[0].last, 999);
    assert_int_equal(R("bytes=-200", 1000, r, &n), TS_RANGE_OK); /* suffix */
    assert_int_equal(r[0].first, 800);
    assert_int_equal(r[0].last, 999);
    assert_int_equal(R("bytes=-5000", 1000, r, &n), TS_RANGE_OK); /* suffix longer than file */
    assert_int_equal(r[0].first, 0);
    assert_int_equal(R("bytes=900-5000", 1000, r, &n), TS_RANGE_OK); /* last clamped */
    assert_int_equal(r[0].last, 999);
    assert_int_equal(R("BYTES=1-1", 1000, r, &n), TS_RANGE_OK);
    assert_int_equal(R("bytes=999-999", 1000, r, &n), TS_RANGE_OK);
    assert_int_equal(R("bytes=0-99999999999999999999999", 10, r, &n), TS_RANGE_OK);
    assert_int_equal(r[0].last, 9);
}

static void test_unsatisfiable(void **state)
{
    (void)state;
    struct ts_range r[TS_MAX_RANGES];
    int n;
    assert_int_equal(R("bytes=1000-", 1000, r, &n), TS_RANGE_UNSATISFIABLE);
    assert_int_equal(R("bytes=1000-2000", 1000, r, &n), TS_RANGE_UNSATISFIABLE);
    assert_int_equal(R("bytes=-0", 1000, r, &n), TS_RANGE_UNSATISFIABLE);
    assert_int_equal(R("bytes=0-", 0, r, &n), TS_RANGE_UNSATISFIABLE); /* empty file */
    assert_int_equal(R("bytes=99999999999999999999999-", 10, r, &n), TS_RANGE_UNSATISFIABLE);
    /* one satisfiable range among unsatisfiable ones is enough */
    assert_int_equal(R("bytes=2000-3000, 5-6", 1000, r, &n), TS_RANGE_OK);
    assert_int_equal(n, 1);
}

static void test_invalid_ignored(void **state)
{
    (void)state;
    struct ts_range r[TS_MAX_RANGES];
    int n;
    const char *bad[] = {"bytes=5-1", "bytes=-",    "bytes=a-b",  "items=0-1",
                         "bytes 0-1", "bytes=0-1x", "bytes=",     "bytes=--1",
                         "bytes=1",   "",           "bytes=0-1;", "bytes=+1-2"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (R(bad[i], 1000, r, &n) != TS_RANGE_NONE) fail_msg("\"%s\" not ignored", bad[i]);
}

static void test_multiple(void **state)
{
    (void)state;
    struct ts_range r[TS_MAX_RANGES];
    int n;
    assert_int_equal(R("bytes=500-599, 0-99", 1000, r, &n), TS_RANGE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(r[0].first, 0); /* sorted */
    assert_int_equal(r[1].first, 500);
    assert_int_equal(R("bytes=0-99,50-150,151-200", 1000, r, &n), TS_RANGE_OK); /* merged */
    assert_int_equal(n, 1);
    assert_int_equal(r[0].last, 200);
    assert_int_equal(R("bytes=0-0,-1", 1000, r, &n), TS_RANGE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(r[1].first, 999);
    char many[400] = "bytes=";
    for (int i = 0; i < TS_MAX_RANGES + 1; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%s%d-%d", i ? "," : "", i * 10,
                 i * 10 + 1);
    assert_int_equal(R(many, 1000, r, &n), TS_RANGE_NONE); /* over the cap: whole file */
}

static void test_if_range(void **state)
{
    (void)state;
    const char *e = "\"abc\"";
    time_t mt = 784111777;
    assert_true(ts_if_range_holds(S("\"abc\""), e, mt));
    assert_false(ts_if_range_holds(S("\"old\""), e, mt));
    assert_false(ts_if_range_holds(S("W/\"abc\""), e, mt)); /* weak never matches */
    assert_true(ts_if_range_holds(S("Sun, 06 Nov 1994 08:49:37 GMT"), e, mt));
    assert_false(ts_if_range_holds(S("Sun, 06 Nov 1994 08:49:38 GMT"), e, mt));
    assert_false(ts_if_range_holds(S("garbage"), e, mt));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_etag),          cmocka_unit_test(test_if_none_match),
        cmocka_unit_test(test_dates),         cmocka_unit_test(test_single_ranges),
        cmocka_unit_test(test_unsatisfiable), cmocka_unit_test(test_invalid_ignored),
        cmocka_unit_test(test_multiple),      cmocka_unit_test(test_if_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
