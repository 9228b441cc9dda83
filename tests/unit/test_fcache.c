/* Unit tests for the open-file cache: hits, revalidation, failures, eviction with references. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fcache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/ts-fcache-XXXXXX";
static int rootfd = -1;

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir)) return -1;
    rootfd = open(dir, O_PATH | O_DIRECTORY);
    return rootfd < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    close(rootfd);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_hit_and_revalidate(void **state)
{
    (void)state;
    write_file("a.txt", "one");
    struct ts_fcache *fc = ts_fcache_new(8, 1000, 0, 0);
    struct ts_file *f = ts_fcache_open(fc, rootfd, "a.txt", 0);
    assert_true(f->fd >= 0);
    assert_int_equal(f->st.st_size, 3);
    assert_int_equal(f->etag[0], '"');
    assert_true(f->last_modified_len > 20);
    struct ts_file *g = ts_fcache_open(fc, rootfd, "a.txt", 500);
    assert_ptr_equal(f, g); /* within valid_ms: the same entry, no system call */
    ts_fcache_release(fc, g);
    ts_fcache_release(fc, f);

    /* the file is replaced: within valid_ms the cache still answers with the old one... */
    char from[256], to[256];
    write_file("a.new", "three");
    snprintf(from, sizeof(from), "%s/a.new", dir);
    snprintf(to, sizeof(to), "%s/a.txt", dir);
    assert_int_equal(rename(from, to), 0);
    f = ts_fcache_open(fc, rootfd, "a.txt", 900);
    assert_int_equal(f->st.st_size, 3);
    /* ...and a response still reading the old one keeps its descriptor after revalidation */
    g = ts_fcache_open(fc, rootfd, "a.txt", 1500);
    assert_ptr_not_equal(f, g);
    assert_int_equal(g->st.st_size, 5);
    char buf[8] = "";
    assert_int_equal(pread(f->fd, buf, sizeof(buf), 0), 3);
    assert_memory_equal(buf, "one", 3);
    ts_fcache_release(fc, f); /* the old entry is freed now */
    ts_fcache_release(fc, g);
    ts_fcache_free(fc);
}

static void test_failures_cached(void **state)
{
    (void)state;
    struct ts_fcache *fc = ts_fcache_new(8, 1000, 0, 0);
    struct ts_file *f = ts_fcache_open(fc, rootfd, "missing.txt", 0);
    assert_int_equal(f->fd, -1);
    assert_int_equal(f->err, ENOENT);
    ts_fcache_release(fc, f);
    write_file("missing.txt", "now here");
    f = ts_fcache_open(fc, rootfd, "missing.txt", 100);
    assert_int_equal(f->fd, -1); /* the failure is trusted for valid_ms */
    ts_fcache_release(fc, f);
    f = ts_fcache_open(fc, rootfd, "missing.txt", 1100);
    assert_true(f->fd >= 0);
    ts_fcache_release(fc, f);
    f = ts_fcache_open(fc, rootfd, "../escape", 0); /* RESOLVE_BENEATH still applies */
    assert_int_equal(f->fd, -1);
    ts_fcache_release(fc, f);
    ts_fcache_free(fc);
}

/* Lowers the soft descriptor limit to the lowest free descriptor, so that the next open fails
 * with EMFILE; returns the limit to restore. */
static struct rlimit starve(void)
{
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    int lowest = open("/dev/null", O_RDONLY);
    assert_true(lowest >= 0);
    close(lowest);
    struct rlimit low = {(rlim_t)lowest, old.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    return old;
}

static void test_shortage_not_cached(void **state)
{
    (void)state;
    write_file("s.txt", "s");
    struct ts_fcache *fc = ts_fcache_new(8, 1000, 0, 0);
    struct rlimit old = starve();
    struct ts_file *f = ts_fcache_open(fc, rootfd, "s.txt", 0);
    int fd = f->fd, err = f->err;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(fd, -1);
    assert_int_equal(err, EMFILE);
    ts_fcache_release(fc, f);
    f = ts_fcache_open(fc, rootfd, "s.txt", 1); /* within valid_ms, yet opened again */
    assert_true(f->fd >= 0);
    ts_fcache_release(fc, f);

    /* a shortage while revalidating keeps the entry and its descriptor, unchecked... */
    old = starve();
    struct ts_file *g = ts_fcache_open(fc, rootfd, "s.txt", 2000);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_ptr_equal(g, f);
    assert_true(g->fd >= 0);
    ts_fcache_release(fc, g);
    /* ...so the next lookup revalidates, and sees the file replaced */
    char from[256], to[256];
    write_file("s.new", "longer");
    snprintf(from, sizeof(from), "%s/s.new", dir);
    snprintf(to, sizeof(to), "%s/s.txt", dir);
    assert_int_equal(rename(from, to), 0);
    g = ts_fcache_open(fc, rootfd, "s.txt", 2001);
    assert_int_equal(g->st.st_size, 6);
    ts_fcache_release(fc, g);
    ts_fcache_free(fc);
}

static void test_fifo_refused_and_cached(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof(path), "%s/pipe", dir);
    assert_int_equal(mkfifo(path, 0644), 0);
    struct ts_fcache *fc = ts_fcache_new(8, 1000, 0, 0);
    struct ts_file *f = ts_fcache_open(fc, rootfd, "pipe", 0); /* does not block */
    assert_int_equal(f->fd, -1);
    assert_int_equal(f->err, ENXIO);
    ts_fcache_release(fc, f);
    struct ts_file *g = ts_fcache_open(fc, rootfd, "pipe", 10);
    assert_ptr_equal(f, g); /* a definitive answer: cached */
    ts_fcache_release(fc, g);
    ts_fcache_free(fc);
}

static void test_eviction_keeps_referenced(void **state)
{
    (void)state;
    struct ts_fcache *fc = ts_fcache_new(2, 1000, 0, 0);
    write_file("e1", "1");
    write_file("e2", "2");
    write_file("e3", "3");
    struct ts_file *a = ts_fcache_open(fc, rootfd, "e1", 0); /* held, like a response */
    struct ts_file *b = ts_fcache_open(fc, rootfd, "e2", 0);
    ts_fcache_release(fc, b);
    struct ts_file *c = ts_fcache_open(fc, rootfd, "e3", 0); /* evicts e1 (least recent) */
    ts_fcache_release(fc, c);
    char x;
    assert_int_equal(pread(a->fd, &x, 1, 0), 1); /* still readable */
    assert_int_equal(x, '1');
    ts_fcache_release(fc, a);
    struct ts_file *a2 = ts_fcache_open(fc, rootfd, "e1", 10);
    assert_true(a2->fd >= 0);
    ts_fcache_release(fc, a2);
    ts_fcache_free(fc);
}

/* Small files keep their bytes, within the per-file limit and the budget; a file rewritten in
 * place is served as it was read until revalidation sees a new size or mtime, and the entry
 * that leaves the cache gives its bytes back to the budget. */
static void test_content(void **state)
{
    (void)state;
    write_file("c1", "0123456789");
    write_file("c2", "abcdefghij");
    write_file("c3", "0123456789abcdef0123"); /* 20 bytes: over the per-file limit */
    write_file("c4", "");
    struct ts_fcache *fc = ts_fcache_new(2, 1000, 16, 15);
    ts_fcache_set_settle_ms(fc, 0); /* files written just now keep their bytes */
    struct ts_file *a = ts_fcache_open(fc, rootfd, "c1", 0);
    assert_non_null(a->data);
    assert_memory_equal(a->data, "0123456789", 10);
    struct ts_file *b = ts_fcache_open(fc, rootfd, "c2", 0);
    assert_null(b->data);                                    /* 10 + 10 > the budget of 15 */
    struct ts_file *c = ts_fcache_open(fc, rootfd, "c3", 0); /* evicts c1, still referenced */
    assert_null(c->data);
    assert_memory_equal(a->data, "0123456789", 10); /* a response still holds it */
    ts_fcache_release(fc, a);
    ts_fcache_release(fc, b);
    ts_fcache_release(fc, c);
    struct ts_file *d = ts_fcache_open(fc, rootfd, "c4", 0);
    assert_null(d->data); /* nothing to keep */
    ts_fcache_release(fc, d);
    /* c1 left the cache, so its 10 bytes are back in the budget */
    struct ts_file *e = ts_fcache_open(fc, rootfd, "c1", 10);
    assert_non_null(e->data);
    ts_fcache_release(fc, e);
    write_file("c1", "9876543210xyz"); /* rewritten in place, now 13 bytes */
    e = ts_fcache_open(fc, rootfd, "c1", 500);
    assert_memory_equal(e->data, "0123456789", 10); /* trusted for valid_ms */
    ts_fcache_release(fc, e);
    e = ts_fcache_open(fc, rootfd, "c1", 2000);
    assert_int_equal(e->st.st_size, 13);
    assert_non_null(e->data);
    assert_memory_equal(e->data, "9876543210xyz", 13);
    ts_fcache_release(fc, e);
    ts_fcache_free(fc);
}

/* The budget bounds the bytes held, not only those of the entries in the table: an entry that
 * leaves the cache while a response still holds it keeps its bytes until released, and they
 * stay counted until then (else slow responses to many files held any number of copies). */
static void test_content_budget_held(void **state)
{
    (void)state;
    write_file("h1", "0123456789");
    write_file("h2", "abcdefghij");
    write_file("h3", "x");
    struct ts_fcache *fc = ts_fcache_new(1, 1000, 16, 15);
    ts_fcache_set_settle_ms(fc, 0); /* files written just now keep their bytes */
    struct ts_file *a = ts_fcache_open(fc, rootfd, "h1", 0);
    assert_non_null(a->data);
    struct ts_file *b = ts_fcache_open(fc, rootfd, "h2", 0); /* evicts h1, still held */
    assert_null(b->data);                                    /* 10 + 10 > 15 */
    ts_fcache_release(fc, b);
    ts_fcache_release(fc, a); /* h1's bytes go: back in the budget */
    b = ts_fcache_open(fc, rootfd, "h2", 0);
    assert_null(b->data); /* the entry was kept without them */
    ts_fcache_release(fc, b);
    struct ts_file *c = ts_fcache_open(fc, rootfd, "h3", 0);
    assert_non_null(c->data);
    ts_fcache_release(fc, c);
    ts_fcache_free(fc);
}

/* A file rewritten in place at the same size, its mtime then set back (cp -p, touch -r,
 * rsync --inplace -t): the old bytes must not be served past valid_ms. Only its ctime, which
 * nothing can set back, tells the change. */
static void test_content_mtime_restored(void **state)
{
    (void)state;
    write_file("m1", "aaaa");
    char path[256];
    snprintf(path, sizeof(path), "%s/m1", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    struct ts_fcache *fc = ts_fcache_new(8, 1000, 16, 1024);
    ts_fcache_set_settle_ms(fc, 0); /* files written just now keep their bytes */
    struct ts_file *f = ts_fcache_open(fc, rootfd, "m1", 0);
    assert_non_null(f->data);
    ts_fcache_release(fc, f);
    usleep(20000); /* past the coarse clock's tick, so that the ctime moves */
    write_file("m1", "bbbb");
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
    f = ts_fcache_open(fc, rootfd, "m1", 2000);
    assert_non_null(f->data);
    assert_memory_equal(f->data, "bbbb", 4);
    ts_fcache_release(fc, f);
    ts_fcache_free(fc);
}

/* A file changed less than the settle time ago keeps no bytes (it may still be being written):
 * it is read from its descriptor, and a later revalidation that finds it unchanged and settled
 * loads them. */
static void test_content_settle(void **state)
{
    (void)state;
    write_file("s1", "settling");
    struct ts_fcache *fc = ts_fcache_new(8, 1000, 16, 1024);
    struct ts_file *f = ts_fcache_open(fc, rootfd, "s1", 0);
    assert_true(f->fd >= 0);
    assert_null(f->data); /* written just now: not settled for TS_FCACHE_SETTLE_MS */
    ts_fcache_release(fc, f);
    f = ts_fcache_open(fc, rootfd, "s1", 500);
    assert_null(f->data); /* within valid_ms: not even looked at */
    ts_fcache_release(fc, f);
    ts_fcache_set_settle_ms(fc, 0); /* as if the second had passed */
    struct ts_file *g = ts_fcache_open(fc, rootfd, "s1", 2000);
    assert_ptr_equal(f, g); /* unchanged: the same entry, now with its bytes */
    assert_non_null(g->data);
    assert_memory_equal(g->data, "settling", 8);
    ts_fcache_release(fc, g);
    ts_fcache_free(fc);
}

static void test_disabled(void **state)
{
    (void)state;
    write_file("d.txt", "d");
    struct ts_fcache *fc = ts_fcache_new(0, 1000, 0, 0);
    struct ts_file *f = ts_fcache_open(fc, rootfd, "d.txt", 0);
    struct ts_file *g = ts_fcache_open(fc, rootfd, "d.txt", 0);
    assert_ptr_not_equal(f, g); /* no caching: each open is its own */
    ts_fcache_release(fc, f);
    ts_fcache_release(fc, g);
    ts_fcache_free(fc);
}

/* Where a file really is (symlinks resolved) is kept with it, for access rules. */
static void test_real_path(void **state)
{
    (void)state;
    char path[256], target[256];
    snprintf(path, sizeof(path), "%s/priv", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/pub", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    write_file("priv/s.txt", "s");
    snprintf(path, sizeof(path), "%s/pub/link", dir);
    assert_int_equal(symlink("../priv/s.txt", path), 0);
    snprintf(path, sizeof(path), "%s/pub/dir", dir);
    assert_int_equal(symlink("../priv", path), 0);
    struct ts_fcache *fc = ts_fcache_new(8, 1000, 0, 0);
    struct ts_file *f = ts_fcache_open(fc, rootfd, "pub/link", 0);
    assert_true(f->fd >= 0);
    assert_string_equal(f->real, "priv/s.txt");
    ts_fcache_release(fc, f);
    f = ts_fcache_open(fc, rootfd, "pub/dir/s.txt", 0);
    assert_string_equal(f->real, "priv/s.txt");
    ts_fcache_release(fc, f);
    f = ts_fcache_open(fc, rootfd, "pub/dir", 0);
    assert_string_equal(f->real, "priv");
    ts_fcache_release(fc, f);
    f = ts_fcache_open(fc, rootfd, "priv/s.txt", 0);
    assert_string_equal(f->real, "priv/s.txt");
    ts_fcache_release(fc, f);
    f = ts_fcache_open(fc, rootfd, "", 0);
    assert_string_equal(f->real, "");
    ts_fcache_release(fc, f);

    /* the link is pointed elsewhere: revalidation sees it, even with the same inode */
    snprintf(path, sizeof(path), "%s/pub/link", dir);
    snprintf(target, sizeof(target), "%s/pub/link2", dir);
    assert_int_equal(symlink("../priv/s.txt", target), 0);
    f = ts_fcache_open(fc, rootfd, "pub/link2", 0);
    assert_string_equal(f->real, "priv/s.txt");
    ts_fcache_release(fc, f);
    snprintf(path, sizeof(path), "%s/priv/s.txt", dir);
    snprintf(target, sizeof(target), "%s/pub/s.txt", dir);
    assert_int_equal(rename(path, target), 0); /* same inode, size and mtime */
    snprintf(path, sizeof(path), "%s/pub/link2", dir);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(symlink("s.txt", path), 0);
    f = ts_fcache_open(fc, rootfd, "pub/link2", 2000);
    assert_string_equal(f->real, "pub/s.txt");
    ts_fcache_release(fc, f);
    ts_fcache_free(fc);
}

/* Two sites' roots holding the same relative path: each root gets its own entry, and the
 * real path is relative to the root the file was opened under. */
static void test_two_roots(void **state)
{
    (void)state;
    write_file("same.txt", "root one");
    char sub[256];
    snprintf(sub, sizeof(sub), "%s/two", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    write_file("two/same.txt", "second root");
    int fd2 = open(sub, O_PATH | O_DIRECTORY);
    assert_true(fd2 >= 0);
    struct ts_fcache *fc = ts_fcache_new(8, 1000, 0, 0);
    struct ts_file *a = ts_fcache_open(fc, rootfd, "same.txt", 0);
    struct ts_file *b = ts_fcache_open(fc, fd2, "same.txt", 0);
    assert_ptr_not_equal(a, b);
    assert_int_equal(a->st.st_size, 8);
    assert_int_equal(b->st.st_size, 11);
    assert_string_equal(a->real, "same.txt");
    assert_string_equal(b->real, "same.txt");
    struct ts_file *a2 = ts_fcache_open(fc, rootfd, "same.txt", 10);
    struct ts_file *b2 = ts_fcache_open(fc, fd2, "same.txt", 10);
    assert_ptr_equal(a, a2); /* hits, each in its own root */
    assert_ptr_equal(b, b2);
    ts_fcache_release(fc, a);
    ts_fcache_release(fc, a2);
    ts_fcache_release(fc, b);
    ts_fcache_release(fc, b2);
    ts_fcache_free(fc);
    close(fd2);
}

/* A reload's new root may reuse a closed root's descriptor number: after a flush nothing of
 * the old root is answered, while a file still being sent stays readable. */
static void test_flush_for_reused_root(void **state)
{
    (void)state;
    char other[] = "/tmp/ts-fcache-other-XXXXXX";
    assert_non_null(mkdtemp(other));
    write_file("same.txt", "old root");
    struct ts_fcache *fc = ts_fcache_new(8, 60000, 0, 0);
    int fd = open(dir, O_PATH | O_DIRECTORY);
    assert_true(fd >= 0);
    struct ts_file *held = ts_fcache_open(fc, fd, "same.txt", 0);
    assert_int_equal(held->st.st_size, 8);
    /* the old root goes, a new one gets its number */
    close(fd);
    char path[300];
    snprintf(path, sizeof(path), "%s/same.txt", other);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("new", f);
    fclose(f);
    int fd2 = open(other, O_PATH | O_DIRECTORY);
    assert_int_equal(fd2, fd);
    struct ts_file *stale = ts_fcache_open(fc, fd2, "same.txt", 1);
    assert_ptr_equal(stale, held); /* what a flush is for: the number alone is the key */
    ts_fcache_release(fc, stale);
    ts_fcache_flush(fc);
    struct ts_file *fresh = ts_fcache_open(fc, fd2, "same.txt", 2);
    assert_ptr_not_equal(fresh, held);
    assert_int_equal(fresh->st.st_size, 3);
    char buf[16];
    assert_int_equal(pread(held->fd, buf, sizeof(buf), 0), 8); /* still open for its response */
    ts_fcache_release(fc, held);
    ts_fcache_release(fc, fresh);
    ts_fcache_free(fc);
    close(fd2);
    snprintf(path, sizeof(path), "rm -rf '%s'", other);
    assert_int_equal(system(path), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_and_revalidate),
        cmocka_unit_test(test_failures_cached),
        cmocka_unit_test(test_shortage_not_cached),
        cmocka_unit_test(test_fifo_refused_and_cached),
        cmocka_unit_test(test_eviction_keeps_referenced),
        cmocka_unit_test(test_disabled),
        cmocka_unit_test(test_content),
        cmocka_unit_test(test_content_settle),
        cmocka_unit_test(test_content_budget_held),
        cmocka_unit_test(test_content_mtime_restored),
        cmocka_unit_test(test_real_path),
        cmocka_unit_test(test_two_roots),
        cmocka_unit_test(test_flush_for_reused_root),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
