/* Unit tests for request-path resolution (decoding, dot segments, traversal) and openat2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "file.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void resolves(const char *in, const char *want)
{
    char out[256];
    int rc = ts_file_resolve(in, strlen(in), out, sizeof(out));
    if (rc != 0) fail_msg("%s: status %d, want \"%s\"", in, rc, want);
    if (strcmp(out, want) != 0) fail_msg("%s: got \"%s\", want \"%s\"", in, out, want);
}

static void rejects(const char *in, int status)
{
    char out[256];
    int rc = ts_file_resolve(in, strlen(in), out, sizeof(out));
    if (rc != status) fail_msg("%s: status %d, want %d (out \"%s\")", in, rc, status, out);
}

static void test_plain(void **state)
{
    (void)state;
    resolves("/", "");
    resolves("/index.html", "index.html");
    resolves("/a/b/c.txt", "a/b/c.txt");
    resolves("/dir/", "dir/");
    resolves("//a///b//", "a/b/");
}

static void test_decoding(void **state)
{
    (void)state;
    resolves("/a%20b.txt", "a b.txt");
    resolves("/%41%62c", "Abc");
    resolves("/caf%C3%A9", "caf\xc3\xa9");
    rejects("/%zz", 400);
    rejects("/%4", 400);
    rejects("/abc%", 400);
    rejects("/a%00b", 400);
    rejects("/a%2fb", 400);
    rejects("/a%2Fb", 400);
}

static void test_dot_segments(void **state)
{
    (void)state;
    resolves("/./a/./b", "a/b");
    resolves("/a/../b", "b");
    resolves("/a/b/../../c", "c");
    resolves("/a/..", "");
    resolves("/a/../", "");
    resolves("/a/b/..", "a/");
    resolves("/a/%2e%2e/b", "b");
    resolves("/a/%2E/b", "a/b");
    resolves("/..a/b", "..a/b");
    resolves("/a/...", "a/...");
}

static void test_traversal(void **state)
{
    (void)state;
    rejects("/..", 400);
    rejects("/../etc/passwd", 400);
    rejects("/a/../../etc/passwd", 400);
    rejects("/%2e%2e/etc/passwd", 400);
    rejects("/%2E%2E/%2e%2e/etc", 400);
    rejects("/a/b/../../../x", 400);
    rejects("/..%2fetc", 400);
    rejects("relative", 400);
    rejects("", 400);
}

static void test_too_long(void **state)
{
    (void)state;
    char in[600], out[64];
    in[0] = '/';
    memset(in + 1, 'a', sizeof(in) - 2);
    in[sizeof(in) - 1] = '\0';
    assert_int_equal(ts_file_resolve(in, strlen(in), out, sizeof(out)), 414);
}

static void test_open_beneath(void **state)
{
    (void)state;
    char dir[] = "/tmp/ts-unit-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[512];
    snprintf(path, sizeof(path), "%s/root", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/root/in.txt", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("in", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/outside.txt", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    char link[512];
    snprintf(link, sizeof(link), "%s/root/escape", dir);
    assert_int_equal(symlink("../outside.txt", link), 0);
    snprintf(link, sizeof(link), "%s/root/inside", dir);
    assert_int_equal(symlink("in.txt", link), 0);
    snprintf(link, sizeof(link), "%s/root/absolute", dir);
    assert_int_equal(symlink(path, link), 0);

    snprintf(path, sizeof(path), "%s/root", dir);
    int root = open(path, O_PATH | O_DIRECTORY);
    assert_true(root >= 0);
    int fd = ts_file_open_beneath(root, "in.txt");
    assert_true(fd >= 0);
    close(fd);
    fd = ts_file_open_beneath(root, "inside");
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(ts_file_open_beneath(root, "escape"), -1);
    assert_int_equal(ts_file_open_beneath(root, "absolute"), -1);
    assert_int_equal(ts_file_open_beneath(root, "../outside.txt"), -1);
    /* the fallback for kernels without openat2 draws the same line */
    fd = ts_file_open_checked(root, "inside");
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(ts_file_open_checked(root, "escape"), -1);
    assert_int_equal(ts_file_open_checked(root, "absolute"), -1);
    assert_int_equal(ts_file_open_checked(root, "../outside.txt"), -1);
    fd = ts_file_open_checked(root, "");
    assert_true(fd >= 0);
    close(fd);
    close(root);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),       cmocka_unit_test(test_decoding),
        cmocka_unit_test(test_dot_segments), cmocka_unit_test(test_traversal),
        cmocka_unit_test(test_too_long),    cmocka_unit_test(test_open_beneath),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
