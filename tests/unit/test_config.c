/* Unit tests for configuration loading: defaults, every key type, and errors naming keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config.h"
#include "log.h"

#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char dir[] = "/tmp/ts-cfg-XXXXXX";
static char path[600], cert[600], key[600];

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir)) return -1;
    snprintf(cert, sizeof(cert), "%s/c.pem", dir);
    snprintf(key, sizeof(key), "%s/k.pem", dir);
    snprintf(path, sizeof(path), "%s/t.json", dir);
    FILE *f = fopen(cert, "w");
    if (!f) return -1;
    fclose(f);
    f = fopen(key, "w");
    if (!f) return -1;
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Loads JSON after replacing @DIR@, @CERT@ and @KEY@; returns ts_config_load's result. */
static int load(const char *json, struct ts_config *cfg, char *err, size_t errlen)
{
    char text[8192];
    size_t n = 0;
    while (*json && n < sizeof(text) - 700) {
        const char *sub = NULL;
        size_t skip = 0;
        if (strncmp(json, "@DIR@", 5) == 0) sub = dir, skip = 5;
        if (strncmp(json, "@CERT@", 6) == 0) sub = cert, skip = 6;
        if (strncmp(json, "@KEY@", 5) == 0) sub = key, skip = 5;
        if (sub) {
            n += (size_t)snprintf(text + n, sizeof(text) - n, "%s", sub);
            json += skip;
        } else {
            text[n++] = *json++;
        }
    }
    text[n] = '\0';
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return ts_config_load(cfg, path, NULL, err, errlen);
}

#define BASE     "\"root\": \"@DIR@\", \"tls\": {\"certificate\": \"@CERT@\", \"key\": \"@KEY@\""
#define TLS_ONLY "\"tls\": {\"certificate\": \"@CERT@\", \"key\": \"@KEY@\"}"

static void test_defaults(void **state)
{
    (void)state;
    struct ts_config cfg;
    char err[512] = "";
    assert_int_equal(load("{" BASE "}}", &cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.nlisten, 1);
    assert_string_equal(cfg.listen[0], "0.0.0.0:8443");
    assert_true(cfg.workers >= 1);
    assert_int_equal(cfg.tls.min_version, TLS1_2_VERSION);
    assert_int_equal(cfg.tls.max_version, TLS1_3_VERSION);
    assert_int_equal(cfg.tls.session_cache_size, 20480);
    assert_int_equal(cfg.tls.session_timeout_s, 300);
    assert_true(cfg.tls.session_tickets);
    assert_int_equal(cfg.timeouts.handshake_s, 10);
    assert_int_equal(cfg.timeouts.request_header_s, 10);
    assert_int_equal(cfg.timeouts.keepalive_s, 60);
    assert_int_equal(cfg.timeouts.send_s, 30);
    assert_int_equal(cfg.timeouts.shutdown_s, 1);
    assert_string_equal(cfg.log.access, "-");
    assert_int_equal(cfg.log.level, TS_LOG_INFO);
    assert_int_equal(cfg.log.summary_interval_s, 60);
    ts_config_free(&cfg);
}

static void test_values(void **state)
{
    (void)state;
    struct ts_config cfg;
    char err[512] = "";
    int rc = load("{\"listen\": [\"127.0.0.1:1\", \"[::1]:2\"], \"workers\": 3, " BASE
                  ", \"protocols\": [\"TLSv1.3\"], \"session_tickets\": false,"
                  " \"session_cache\": {\"size\": 10, \"timeout_s\": 20}},"
                  " \"timeouts\": {\"shutdown_s\": 0, \"keepalive_s\": 5},"
                  " \"log\": {\"access\": \"off\", \"format\": \"json\", \"level\": \"debug\"}}",
                  &cfg, err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_int_equal(cfg.nlisten, 2);
    assert_string_equal(cfg.listen[1], "[::1]:2");
    assert_int_equal(cfg.workers, 3);
    assert_int_equal(cfg.tls.min_version, TLS1_3_VERSION);
    assert_int_equal(cfg.tls.max_version, TLS1_3_VERSION);
    assert_false(cfg.tls.session_tickets);
    assert_int_equal(cfg.tls.session_cache_size, 10);
    assert_int_equal(cfg.tls.session_timeout_s, 20);
    assert_int_equal(cfg.timeouts.shutdown_s, 0);
    assert_int_equal(cfg.timeouts.keepalive_s, 5);
    assert_string_equal(cfg.log.access, "off");
    assert_int_equal(cfg.log.format, TS_LOG_FORMAT_JSON);
    assert_int_equal(cfg.log.level, TS_LOG_DEBUG);
    ts_config_free(&cfg);
}

static void expect_error(const char *json, const char *want)
{
    struct ts_config cfg;
    char err[512] = "";
    int rc = load(json, &cfg, err, sizeof(err));
    ts_config_free(&cfg);
    if (rc != -1 || !strstr(err, want)) fail_msg("rc %d, err \"%s\", want \"%s\"", rc, err, want);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("{" BASE "}, \"bogus\": 1}", "bogus: unknown key");
    expect_error("{" BASE ", \"x\": 1}}", "tls.x: unknown key");
    expect_error("{" BASE "}, \"workers\": 1.5}", "workers: must be an integer");
    expect_error("{" BASE "}, \"workers\": -1}", "workers: must be an integer from 0 to 256");
    expect_error("{" BASE "}, \"workers\": 3e28}", "workers: must be an integer"); /* fuzzer */
    expect_error("{" BASE "}, \"workers\": -1e300}", "workers: must be an integer");
    expect_error("{\"root\": 5, " TLS_ONLY "}", "root: must be a non-empty string");
    expect_error("{" BASE "}, \"listen\": []}", "listen: must be a string or a non-empty list");
    expect_error("{" BASE "}, \"listen\": [1]}", "listen: every entry must be a string");
    expect_error("{" BASE "}, \"listen\": \"nocolon\"}", "listen: \"nocolon\" is not ADDR:PORT");
    expect_error("{" BASE ", \"protocols\": []}}", "tls.protocols: must be a non-empty list");
    expect_error("{" BASE ", \"protocols\": [\"SSLv3\"]}}", "unsupported protocol \"SSLv3\"");
    expect_error("{" BASE ", \"session_cache\": []}}", "tls.session_cache: must be an object");
    expect_error("{" BASE "}, \"log\": {\"format\": \"xml\"}}",
                 "log.format: must be one of \"combined\", \"json\"");
    expect_error("{" BASE "}, \"log\": {\"summary_interval_s\": 0}}",
                 "log.summary_interval_s: must be an integer from 1 to 3600");
    expect_error("[1]", "the top level must be a JSON object");
    expect_error("{\"root\": \"@DIR@\", \"tls\": {\"certificate\": \"/nonexistent.pem\"}}",
                 "tls.certificate: /nonexistent.pem");
    expect_error("{\"root\": \"@DIR@/none\", " TLS_ONLY "}", "/none: No such file");
    expect_error("{" BASE "}, \"limits\": {\"max_header_bytes\": 10}}",
                 "limits.max_header_bytes: must be an integer from 256");
}

static void test_overrides(void **state)
{
    (void)state;
    struct ts_config cfg;
    char err[512] = "";
    assert_int_equal(load("{\"workers\": 4, " BASE "}}", &cfg, err, sizeof(err)), 0);
    ts_config_free(&cfg);
    struct ts_config_overrides ov = {.listen = "127.0.0.1:9", .workers = 1, .root = "/tmp"};
    assert_int_equal(ts_config_load(&cfg, path, &ov, err, sizeof(err)), 0);
    assert_int_equal(cfg.nlisten, 1);
    assert_string_equal(cfg.listen[0], "127.0.0.1:9");
    assert_int_equal(cfg.workers, 1);
    assert_string_equal(cfg.root, "/tmp");
    ts_config_free(&cfg);
}

static void test_listen_proxy(void **state)
{
    (void)state;
    struct ts_config cfg;
    char err[512] = "";
    int rc = load("{\"listen\": [\"127.0.0.1:1\", {\"address\": \"127.0.0.1:2\", "
                  "\"proxy_protocol\": true}, {\"address\": \"[::1]:3\", \"proxy_protocol\": true, "
                  "\"proxy_protocol_from\": [\"10.0.0.0/8\", \"2001:db8::1\"]}, "
                  "{\"address\": \"127.0.0.1:4\", \"proxy_protocol\": false}], " BASE "}}",
                  &cfg, err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_int_equal(cfg.nlisten, 4);
    assert_string_equal(cfg.listen[1], "127.0.0.1:2");
    assert_false(cfg.listen_proxy[0].enabled);
    assert_false(cfg.listen_proxy[3].enabled);
    /* absent proxy_protocol_from: loopback only */
    const struct ts_listen_proxy *lp = &cfg.listen_proxy[1];
    assert_true(lp->enabled);
    assert_int_equal(lp->nfrom, 2);
    static const unsigned char lo[4] = {127, 0, 0, 9}, ten[4] = {10, 2, 3, 4},
                               v6lo[16] = {[15] = 1};
    assert_true(ts_cidr_contains(&lp->from[0], AF_INET, lo));
    assert_false(ts_cidr_contains(&lp->from[0], AF_INET, ten));
    assert_int_equal(lp->from[1].prefix, 128);
    assert_true(ts_cidr_contains(&lp->from[1], lp->from[1].family, v6lo));
    lp = &cfg.listen_proxy[2];
    assert_int_equal(lp->nfrom, 2);
    assert_true(ts_cidr_contains(&lp->from[0], AF_INET, ten));
    assert_int_equal(lp->from[0].prefix, 8);
    assert_int_equal(lp->from[1].prefix, 128); /* a bare address */
    ts_config_free(&cfg);
    /* one object alone; --listen replaces it with a plain listener */
    assert_int_equal(
        load("{\"listen\": {\"address\": \"127.0.0.1:2\", \"proxy_protocol\": true}, " BASE "}}",
             &cfg, err, sizeof(err)),
        0);
    assert_true(cfg.listen_proxy[0].enabled);
    ts_config_free(&cfg);
    struct ts_config_overrides ov = {.listen = "127.0.0.1:9", .workers = -1};
    assert_int_equal(ts_config_load(&cfg, path, &ov, err, sizeof(err)), 0);
    assert_int_equal(cfg.nlisten, 1);
    assert_false(cfg.listen_proxy[0].enabled);
    ts_config_free(&cfg);

    expect_error("{" BASE "}, \"listen\": {\"address\": \"127.0.0.1:2\", \"proxy_protocol\": 1}}",
                 "listen.proxy_protocol: must be true or false");
    expect_error(
        "{" BASE "}, \"listen\": [{\"address\": \"127.0.0.1:2\", \"proxy_protocol\": true,"
        " \"proxy_protocol_from\": [\"10.0.0.0/40\"]}]}",
        "listen[0].proxy_protocol_from[0]: bad prefix length in \"10.0.0.0/40\" (at most /32)");
    expect_error(
        "{" BASE "}, \"listen\": [\"127.0.0.1:1\", {\"address\": \"127.0.0.1:2\", "
        "\"proxy_protocol\": true, \"proxy_protocol_from\": [\"::1\", \"fe80::/200\"]}]}",
        "listen[1].proxy_protocol_from[1]: bad prefix length in \"fe80::/200\" (at most /128)");
    expect_error(
        "{" BASE "}, \"listen\": [{\"address\": \"127.0.0.1:2\", \"proxy_protocol\": true,"
        " \"proxy_protocol_from\": [\"example.com\"]}]}",
        "listen[0].proxy_protocol_from[0]: \"example.com\" is not an IPv4 or IPv6 address");
    expect_error("{" BASE "}, \"listen\": [{\"address\": \"127.0.0.1:2\", \"proxy\": true}]}",
                 "listen[0].proxy: unknown key");
    expect_error("{" BASE "}, \"listen\": [{\"proxy_protocol\": true}]}",
                 "listen[0].address: required");
    /* the first of two would apply: the wider proxy_protocol_from here */
    expect_error("{" BASE "}, \"listen\": {\"address\": \"127.0.0.1:2\", \"proxy_protocol\": true,"
                 " \"proxy_protocol_from\": [\"0.0.0.0/0\"], \"proxy_protocol_from\": [\"::1\"]}}",
                 "listen.proxy_protocol_from: duplicate key");
    expect_error("{" BASE "}, \"listen\": [\"127.0.0.1:1\", {\"address\": \"127.0.0.1:2\","
                 " \"address\": \"127.0.0.1:3\"}]}",
                 "listen[1].address: duplicate key");
    expect_error("{" BASE "}, \"listen\": [{\"address\": \"127.0.0.1:2\","
                 " \"proxy_protocol_from\": [\"::1\"]}]}",
                 "listen[0].proxy_protocol_from: only with \"proxy_protocol\": true");
    expect_error("{" BASE "}, \"listen\": [{\"address\": \"127.0.0.1:2\", \"proxy_protocol\": true,"
                 " \"proxy_protocol_from\": \"::1\"}]}",
                 "listen[0].proxy_protocol_from: must be a non-empty list");
}

static void test_split_listen(void **state)
{
    (void)state;
    char host[64], port[16];
    assert_int_equal(ts_config_split_listen("[::1]:8443", host, sizeof(host), port, sizeof(port)),
                     0);
    assert_string_equal(host, "::1");
    assert_string_equal(port, "8443");
    assert_int_equal(ts_config_split_listen("*:80", host, sizeof(host), port, sizeof(port)), 0);
    assert_string_equal(host, "0.0.0.0");
    assert_int_equal(ts_config_split_listen("[::1]8443", host, sizeof(host), port, sizeof(port)),
                     -1);
    assert_int_equal(ts_config_split_listen(":8443", host, sizeof(host), port, sizeof(port)), -1);
    assert_int_equal(ts_config_split_listen("host:", host, sizeof(host), port, sizeof(port)), -1);
}

/* Sites: the default site is sites[0]; lookups are exact, then one-label wildcards,
 * case-insensitive and without a trailing dot. */
static void test_sites(void **state)
{
    (void)state;
    struct ts_config cfg;
    char err[512] = "";
#define SITE(names)                                                                                \
    "{\"server_names\": " names ", \"root\": \"@DIR@\", \"certificates\": "                        \
    "[{\"certificate\": \"@CERT@\", \"key\": \"@KEY@\"}]}"
    assert_int_equal(load("{" BASE "}, \"server_names\": [\"Default.Test.\"], \"sites\": [" SITE(
                              "[\"a.test\", \"*.b.test\"]") ", " SITE("[\"x.b.test\"]") "]}",
                          &cfg, err, sizeof(err)),
                     0);
    assert_int_equal(cfg.nsites, 3);
    assert_string_equal(cfg.sites[0].names[0], "default.test");
    assert_string_equal(cfg.sites[0].name, "default.test");
    assert_string_equal(cfg.sites[1].label, "sites[0] (a.test)");
    assert_int_equal(ts_config_find_site(&cfg, "default.test", 12), 0);
    assert_int_equal(ts_config_find_site(&cfg, "A.TEST.", 7), 1);
    assert_int_equal(ts_config_find_site(&cfg, "y.b.test", 8), 1);
    assert_int_equal(ts_config_find_site(&cfg, "x.b.test", 8), 2); /* exact beats wildcard */
    assert_int_equal(ts_config_find_site(&cfg, "X.B.TEST", 8), 2);
    assert_int_equal(ts_config_find_site(&cfg, "y.x.b.test", 10), -1); /* one label only */
    assert_int_equal(ts_config_find_site(&cfg, "b.test", 6), -1);
    assert_int_equal(ts_config_find_site(&cfg, ".b.test", 7), -1);
    assert_int_equal(ts_config_find_site(&cfg, "a.test:443", 6), 1); /* the length counts */
    assert_int_equal(ts_config_find_site(&cfg, "", 0), -1);
    assert_int_equal(ts_config_find_site(&cfg, ".", 1), -1);
    ts_config_free(&cfg);

    static const char *const bad[] = {"*.*.x", "a*.x", "*",   "*.",       "x..y",
                                      ".x",    "a b",  "x/y", "\\u00e9.x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char json[1024];
        snprintf(json, sizeof(json), "{" BASE "}, \"sites\": [" SITE("[\"%s\"]") "]}", bad[i]);
        assert_int_equal(load(json, &cfg, err, sizeof(err)), -1);
        assert_non_null(strstr(err, ".server_names[0]: not a host name"));
        ts_config_free(&cfg);
    }
    assert_int_equal(load("{" BASE "}, \"sites\": [" SITE("[\"a.test\"]") ", " SITE(
                              "[\"b.test\", \"A.test\"]") "]}",
                          &cfg, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "sites[1] (b.test).server_names: \"a.test\" is already a name of "
                             "sites[0] (a.test)");
    ts_config_free(&cfg);
    assert_int_equal(
        load("{" BASE "}, \"sites\": [{\"server_names\": [\"a.test\"]}]}", &cfg, err, sizeof(err)),
        -1);
    assert_string_equal(err, "sites[0] (a.test).root: missing");
    ts_config_free(&cfg);
#undef SITE
}

/* The default site takes a list of certificates (ECDSA and RSA) like any site, in place of the
 * single tls.certificate and tls.key, never beside them. */
static void test_default_site_certs(void **state)
{
    (void)state;
    struct ts_config cfg;
    char err[512] = "";
    assert_int_equal(load("{\"root\": \"@DIR@\", \"tls\": {\"certificates\": ["
                          "{\"certificate\": \"@CERT@\", \"key\": \"@KEY@\"}, "
                          "{\"certificate\": \"@KEY@\", \"key\": \"@CERT@\"}]}}",
                          &cfg, err, sizeof(err)),
                     0);
    assert_int_equal(cfg.sites[0].ncerts, 2);
    assert_string_equal(cfg.sites[0].certs[0].certificate, cert);
    assert_string_equal(cfg.sites[0].certs[1].certificate, key);
    ts_config_free(&cfg);
    assert_int_equal(load("{\"root\": \"@DIR@\", \"tls\": {\"key\": \"@KEY@\", \"certificates\": ["
                          "{\"certificate\": \"@CERT@\", \"key\": \"@KEY@\"}]}}",
                          &cfg, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "tls.certificates: given with tls.certificate, tls.key"));
    ts_config_free(&cfg);
    assert_int_equal(load("{\"root\": \"@DIR@\", \"tls\": {\"certificates\": ["
                          "{\"certificate\": \"@CERT@\", \"key\": \"@KEY@\"}], "
                          "\"ocsp_response\": \"@KEY@\"}}",
                          &cfg, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "tls.certificates: given with"));
    ts_config_free(&cfg);
    assert_int_equal(load("{\"root\": \"@DIR@\", \"tls\": {\"certificates\": ["
                          "{\"certificate\": \"@DIR@/nope.pem\", \"key\": \"@KEY@\"}]}}",
                          &cfg, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "tls.certificates[0].certificate: "));
    ts_config_free(&cfg);
    assert_int_equal(
        load("{\"root\": \"@DIR@\", \"tls\": {\"certificates\": []}}", &cfg, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "tls.certificates: must be a list of 1 to 3 objects"));
    ts_config_free(&cfg);
}

/* Two location rules of a site covering the same paths: only one could ever apply (the first of
 * two equal paths, the longer of "/dir" and "/dir/"), the other would be silently dropped. */
static void test_duplicate_locations(void **state)
{
    (void)state;
    struct ts_config cfg;
    char err[512] = "";
#define AUTH "\"client_auth\": \"optional\", \"client_ca\": \"@CERT@\""
#define SITE                                                                                       \
    "\"root\": \"@DIR@\", \"certificates\": [{\"certificate\": \"@CERT@\", \"key\": \"@KEY@\"}]"
    /* the defect as reported: the protective rule second, never applied */
    expect_error("{" BASE ", " AUTH "}, \"locations\": ["
                 "{\"path\": \"/private/\", \"cache_control\": \"private\"}, "
                 "{\"path\": \"/private/\", \"require_client_cert\": true}]}",
                 "locations[1].path: \"/private/\" duplicates locations[0].path");
    /* "/dir/" also covers "/dir", and "/dir" covers "/dir/...": one rule written two ways */
    expect_error("{" BASE "}, \"locations\": [{\"path\": \"/a/\"}, {\"path\": \"/b/\"}, "
                 "{\"path\": \"/a\", \"autoindex\": true}]}",
                 "locations[2].path: \"/a\" duplicates locations[0].path \"/a/\"");
    expect_error("{" BASE "}, \"sites\": [{\"server_names\": [\"a.test\"], " SITE "}, "
                 "{\"server_names\": [\"b.test\"], " SITE ", " AUTH ", \"locations\": ["
                 "{\"path\": \"/x/\"}, {\"path\": \"/y/\"}, "
                 "{\"path\": \"/x/\", \"require_client_cert\": true}]}]}",
                 "sites[1] (b.test).locations[2].path: \"/x/\" duplicates locations[0].path");
    /* the same path at the top level and in two sites is three rules, one per site */
    assert_int_equal(load("{" BASE "}, \"locations\": [{\"path\": \"/x/\"}], \"sites\": ["
                          "{\"server_names\": [\"a.test\"], " SITE ", \"locations\": "
                          "[{\"path\": \"/x/\"}]}, {\"server_names\": [\"b.test\"], " SITE
                          ", \"locations\": [{\"path\": \"/x/\"}]}]}",
                          &cfg, err, sizeof(err)),
                     0);
    ts_config_free(&cfg);
    /* nested, sibling, root and other-case rules differ: the longest prefix picks one */
    assert_int_equal(load("{" BASE "}, \"locations\": [{\"path\": \"/a/\"}, {\"path\": \"/a/b/\"}, "
                          "{\"path\": \"/ab\"}, {\"path\": \"/\"}, {\"path\": \"/A/\"}]}",
                          &cfg, err, sizeof(err)),
                     0);
    assert_int_equal(cfg.nlocations, 5);
    ts_config_free(&cfg);
#undef SITE
#undef AUTH
}

/* A location is matched against the request path decoded and normalized (ts_http_resolve_path):
 * a path written in another form ("/%70rivate/", "/a//b/") never matches what it names, so a
 * require_client_cert on it protects nothing. Refused, with the form to write. */
static void test_location_normal_form(void **state)
{
    (void)state;
    struct ts_config cfg;
    char err[512] = "";
#define LOC(p) "{" BASE "}, \"locations\": [{\"path\": \"/ok/\"}, {\"path\": \"" p "\"}]}"
    expect_error(LOC("/%70rivate/"),
                 "locations[1].path: \"/%70rivate/\" is not in normal form: write \"/private/\"");
    expect_error(LOC("/%2E/x/"), "locations[1].path: \"/%2E/x/\" is not in normal form: "
                                 "write \"/x/\"");
    expect_error(LOC("/a//b/"), "locations[1].path: \"/a//b/\" is not in normal form: "
                                "write \"/a/b/\"");
    expect_error(LOC("/./x/"), "locations[1].path: \"/./x/\" is not in normal form: "
                               "write \"/x/\"");
    expect_error(LOC("/a/../b/"), "locations[1].path: \"/a/../b/\" is not in normal form: "
                                  "write \"/b/\"");
    expect_error(LOC("/private/."), "locations[1].path: \"/private/.\" is not in normal form: "
                                    "write \"/private/\"");
    expect_error(LOC("/a/.."), "locations[1].path: \"/a/..\" is not in normal form: write \"/\"");
    expect_error(LOC("//"), "locations[1].path: \"//\" is not in normal form: write \"/\"");
    /* no normal form: a request path like these is refused (400), or '%' is in what it names */
    expect_error(LOC("/a%2Fb/"), "locations[1].path: \"/a%2Fb/\" can never match: a request "
                                 "path with an encoded '/' or NUL (%2F, %00) is refused");
    expect_error(LOC("/x%00/"), "locations[1].path: \"/x%00/\" can never match");
    expect_error(LOC("/a/../../b/"), "locations[1].path: \"/a/../../b/\" can never match: "
                                     "a \"..\" in it leads above the root");
    expect_error(LOC("/%2e%2e/b/"), "locations[1].path: \"/%2e%2e/b/\" can never match");
    expect_error(LOC("/50%/"), "locations[1].path: \"/50%/\" is not in normal form: '%' is not "
                               "followed by two hex digits, and a location cannot name a path "
                               "with '%' in it");
    expect_error(LOC("/50%25/"), "locations[1].path: \"/50%25/\" is not in normal form, and its "
                                 "normal form \"/50%/\" cannot be written: a location cannot name "
                                 "a path with '%' in it");
    expect_error(LOC("private/"), "locations[1].path: must be a URL path starting with \"/\"");
    /* in a site, the error names it */
    expect_error("{" BASE "}, \"sites\": [{\"server_names\": [\"a.test\"], \"root\": \"@DIR@\", "
                 "\"certificates\": [{\"certificate\": \"@CERT@\", \"key\": \"@KEY@\"}], "
                 "\"locations\": [{\"path\": \"/x/\"}, {\"path\": \"/%78/\"}]}]}",
                 "sites[0] (a.test).locations[1].path: \"/%78/\" is not in normal form: "
                 "write \"/x/\"");
    /* what a decoded, normalized request path can be stays valid: a trailing slash or none,
     * the root, any byte but '/' and NUL in a segment ('?' and '#' come from %3F and %23),
     * segments that only start with dots */
    assert_int_equal(
        load("{" BASE "}, \"locations\": [{\"path\": \"/\"}, {\"path\": \"/a\"}, "
             "{\"path\": \"/b/\"}, {\"path\": \"/c d/e\"}, {\"path\": \"/caf\\u00e9/\"}, "
             "{\"path\": \"/..a/\"}, {\"path\": \"/a/.../\"}, {\"path\": \"/.well-known/\"}, "
             "{\"path\": \"/q?x=1\"}, {\"path\": \"/h#f\"}, {\"path\": \"/t\\u0001\"}]}",
             &cfg, err, sizeof(err)),
        0);
    assert_int_equal(cfg.nlocations, 11);
    assert_string_equal(cfg.locations[4].path, "/caf\xc3\xa9/");
    ts_config_free(&cfg);
#undef LOC
}

/* cJSON keeps both members of {"404": ..., "404": ...}: refused like any other repeated key. */
static void test_duplicate_error_pages(void **state)
{
    (void)state;
    struct ts_config cfg;
    char err[512] = "";
    /* c.pem and k.pem exist under @DIR@: only the repetition is wrong */
    expect_error("{" BASE "}, \"error_pages\": {\"404\": \"/c.pem\", \"500\": \"/c.pem\", "
                 "\"404\": \"/k.pem\"}}",
                 "error_pages.404: duplicate key");
    expect_error("{" BASE "}, \"sites\": [{\"server_names\": [\"a.test\"], \"root\": \"@DIR@\", "
                 "\"certificates\": [{\"certificate\": \"@CERT@\", \"key\": \"@KEY@\"}], "
                 "\"error_pages\": {\"503\": \"/c.pem\", \"503\": \"/k.pem\"}}]}",
                 "sites[0] (a.test).error_pages.503: duplicate key");
    assert_int_equal(load("{" BASE
                          "}, \"error_pages\": {\"404\": \"/c.pem\", \"500\": \"/k.pem\"}}",
                          &cfg, err, sizeof(err)),
                     0);
    assert_int_equal(cfg.nerror_pages, 2);
    ts_config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_split_listen),
        cmocka_unit_test(test_sites),
        cmocka_unit_test(test_default_site_certs),
        cmocka_unit_test(test_listen_proxy),
        cmocka_unit_test(test_duplicate_locations),
        cmocka_unit_test(test_duplicate_error_pages),
        cmocka_unit_test(test_location_normal_form),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
