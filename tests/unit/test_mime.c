/* Unit tests for MIME types by extension. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mime.h"

#include <string.h>

static const char *type(const char *name)
{
    return ts_mime_type(name, strlen(name));
}

static void test_required_types(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"a.html", "text/html; charset=utf-8"},
        {"a.css", "text/css; charset=utf-8"},
        {"a.js", "text/javascript; charset=utf-8"},
        {"a.json", "application/json"},
        {"a.svg", "image/svg+xml"},
        {"a.png", "image/png"},
        {"a.jpg", "image/jpeg"},
        {"a.jpeg", "image/jpeg"},
        {"a.gif", "image/gif"},
        {"a.webp", "image/webp"},
        {"a.ico", "image/x-icon"},
        {"a.txt", "text/plain; charset=utf-8"},
        {"a.pdf", "application/pdf"},
        {"a.wasm", "application/wasm"},
        {"a.woff2", "font/woff2"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_string_equal(type(cases[i][0]), cases[i][1]);
}

static void test_case_and_paths(void **state)
{
    (void)state;
    assert_string_equal(type("INDEX.HTML"), "text/html; charset=utf-8");
    assert_string_equal(type("dir.d/file.PnG"), "image/png");
    assert_string_equal(type("archive.tar.gz"), "application/gzip");
}

static void test_unknown(void **state)
{
    (void)state;
    const char *bin = "application/octet-stream";
    assert_string_equal(type("README"), bin);
    assert_string_equal(type("file."), bin);
    assert_string_equal(type("dir.html/file"), bin);
    assert_string_equal(type("a.averyveryverylongextension"), bin);
    assert_string_equal(type(""), bin);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_required_types),
        cmocka_unit_test(test_case_and_paths),
        cmocka_unit_test(test_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
