/* Unit tests for request-path resolution (decoding, dot segments, traversal) and openat2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "file.h"
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void resolves(const char *in, const char *want)
{
    char out[256];
    int rc = ts_http_resolve_path(in, strlen(in), out, sizeof(out));
    if (rc != 0) fail_msg("%s: status %d, want \"%s\"", in, rc, want);
    if (strcmp(out, want) != 0) fail_msg("%s: got \"%s\", want \"%s\"", in, out, want);
}

static void rejects(const char *in, int status)
{
    char out[256];
    int rc = ts_http_resolve_path(in, strlen(in), out, sizeof(out));
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
    assert_int_equal(ts_http_resolve_path(in, strlen(in), out, sizeof(out)), 414);
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

/* Opening fails with errno want, at once (a blocking open() would end the test by SIGALRM). */
static void refused(int (*open_fn)(int, const char *), int root, const char *rel, int want)
{
    alarm(10);
    errno = 0;
    int fd = open_fn(root, rel);
    alarm(0);
    if (fd >= 0) close(fd);
    if (fd != -1 || errno != want)
        fail_msg("%s: fd %d errno %d (%s), want -1 errno %d", rel, fd, errno, strerror(errno),
                 want);
}

static void opens(int (*open_fn)(int, const char *), int root, const char *rel, mode_t type)
{
    alarm(10);
    int fd = open_fn(root, rel);
    alarm(0);
    if (fd < 0) fail_msg("%s: errno %d (%s)", rel, errno, strerror(errno));
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_mode & S_IFMT, type);
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    close(fd);
}

/* Non-regular files, symlink loops and links leading out, through both ways of opening; a
 * FIFO outside the root is not even opened (inotify would report it) by the fallback. */
static void test_special_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/ts-unit-XXXXXX", p[512], q[512];
    assert_non_null(mkdtemp(dir));
#define AT(buf, ...) (snprintf(buf, sizeof(buf), __VA_ARGS__), buf)
    assert_int_equal(mkdir(AT(p, "%s/root", dir), 0755), 0);
    assert_int_equal(mkdir(AT(p, "%s/root/sub", dir), 0755), 0);
    assert_int_equal(mkdir(AT(p, "%s/out", dir), 0755), 0);
    FILE *f = fopen(AT(p, "%s/root/file", dir), "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(mkfifo(AT(p, "%s/root/fifo", dir), 0644), 0);
    assert_int_equal(mkfifo(AT(p, "%s/out/fifo", dir), 0644), 0);
    assert_int_equal(symlink(AT(p, "%s/out/fifo", dir), AT(q, "%s/root/fifo-abs", dir)), 0);
    assert_int_equal(symlink("../out/fifo", AT(q, "%s/root/fifo-rel", dir)), 0);
    assert_int_equal(symlink("../../out", AT(q, "%s/root/sub/up", dir)), 0);
    assert_int_equal(symlink(AT(p, "%s/out", dir), AT(q, "%s/root/out-abs", dir)), 0);
    assert_int_equal(symlink("loop-b", AT(q, "%s/root/loop-a", dir)), 0);
    assert_int_equal(symlink("loop-a", AT(q, "%s/root/loop-b", dir)), 0);
    assert_int_equal(symlink("self", AT(q, "%s/root/self", dir)), 0);
    assert_int_equal(symlink("sub/../file", AT(q, "%s/root/in-rel", dir)), 0);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/root/sock", dir);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(s);
    int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    assert_true(in >= 0);
    assert_true(inotify_add_watch(in, AT(p, "%s/out/fifo", dir), IN_OPEN) >= 0);
    int root = open(AT(p, "%s/root", dir), O_PATH | O_DIRECTORY);
    assert_true(root >= 0);

    int (*const fns[])(int, const char *) = {ts_file_open_beneath, ts_file_open_checked};
    for (int i = 0; i < 2; i++) {
        int (*fn)(int, const char *) = fns[i];
        opens(fn, root, "file", S_IFREG);
        opens(fn, root, "in-rel", S_IFREG);
        opens(fn, root, "sub", S_IFDIR);
        opens(fn, root, "", S_IFDIR);
        refused(fn, root, "fifo", ENXIO);
        refused(fn, root, "sock", ENXIO);
        refused(fn, root, "fifo-abs", EXDEV);
        refused(fn, root, "fifo-rel", EXDEV);
        refused(fn, root, "sub/up/fifo", EXDEV);
        refused(fn, root, "out-abs", EXDEV);
        refused(fn, root, "out-abs/fifo", EXDEV);
        refused(fn, root, "loop-a", ELOOP);
        refused(fn, root, "self", ELOOP);
        refused(fn, root, "missing", ENOENT);
        refused(fn, root, "file/x", ENOTDIR);
    }
    char ev[4096];
    assert_int_equal(read(in, ev, sizeof(ev)), -1); /* the FIFO outside was never opened */
    assert_int_equal(errno, EAGAIN);
    close(in);
    close(root);
#undef AT
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),         cmocka_unit_test(test_decoding),
        cmocka_unit_test(test_dot_segments),  cmocka_unit_test(test_traversal),
        cmocka_unit_test(test_too_long),      cmocka_unit_test(test_open_beneath),
        cmocka_unit_test(test_special_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
