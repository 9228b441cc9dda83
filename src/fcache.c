/* Open-file cache. A hash table of paths with an LRU list; entries in use by a response are
 * reference-counted, so evicting or revalidating one never closes a descriptor a response is
 * still reading from. Revalidation reopens the path and compares inode, size and mtime. */
#include "fcache.h"
#include "file.h"
#include "response.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct ts_fcache {
    struct ts_file **buckets;
    unsigned nbuckets; /* a power of two */
    unsigned count, max;
    unsigned valid_ms;
    size_t content_max_file, content_budget, content_used;
    unsigned settle_ms; /* how long after its last change a file's bytes may be kept */
    struct ts_file *lru_head, *lru_tail; /* head = most recently used */
    /* each root's real path, learned at its first open (one per site) */
    struct root {
        int fd;
        char *real;
        size_t len;
    } * roots;
    unsigned nroots;
};

static uint32_t hash_path(int rootfd, const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    h = (h ^ (uint32_t)rootfd) * 16777619u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

struct ts_fcache *ts_fcache_new(unsigned entries, unsigned valid_ms, size_t content_max_file,
                                size_t content_bytes)
{
    struct ts_fcache *fc = calloc(1, sizeof(*fc));
    if (!fc) abort();
    fc->max = entries;
    fc->valid_ms = valid_ms;
    fc->content_max_file = content_max_file;
    fc->content_budget = content_bytes;
    fc->settle_ms = TS_FCACHE_SETTLE_MS;
    fc->nbuckets = 16;
    while (fc->nbuckets < entries * 2) fc->nbuckets *= 2;
    fc->buckets = calloc(fc->nbuckets, sizeof(*fc->buckets));
    if (!fc->buckets) abort();
    return fc;
}

static void destroy(struct ts_file *f)
{
    if (f->fd >= 0) close(f->fd);
    free(f->real);
    free(f->data);
    free(f);
}

/* Frees an entry out of the table and no longer held. Its bytes count against the budget until
 * here, not only while it is in the table: a response may hold them long after it left. */
static void drop(struct ts_fcache *fc, struct ts_file *f)
{
    if (f->data) fc->content_used -= (size_t)f->st.st_size;
    destroy(f);
}

static void lru_unlink(struct ts_fcache *fc, struct ts_file *f)
{
    if (f->lru_prev)
        f->lru_prev->lru_next = f->lru_next;
    else
        fc->lru_head = f->lru_next;
    if (f->lru_next)
        f->lru_next->lru_prev = f->lru_prev;
    else
        fc->lru_tail = f->lru_prev;
    f->lru_prev = f->lru_next = NULL;
}

static void lru_push_front(struct ts_fcache *fc, struct ts_file *f)
{
    f->lru_prev = NULL;
    f->lru_next = fc->lru_head;
    if (fc->lru_head) fc->lru_head->lru_prev = f;
    fc->lru_head = f;
    if (!fc->lru_tail) fc->lru_tail = f;
}

/* Takes f out of the table; it is freed now, or by the last ts_fcache_release. */
static void evict(struct ts_fcache *fc, struct ts_file *f)
{
    struct ts_file **p = &fc->buckets[f->hash & (fc->nbuckets - 1)];
    while (*p != f) p = &(*p)->next_in_bucket;
    *p = f->next_in_bucket;
    lru_unlink(fc, f);
    fc->count--;
    f->cached = false;
    if (f->refs == 0) drop(fc, f);
}

/* The kernel's name for what fd is open on (symlinks resolved), malloc'ed, or NULL. */
static char *fd_real_path(int fd)
{
    char link[32], buf[PATH_MAX];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, buf, sizeof(buf) - 1);
    if (n <= 0 || (size_t)n >= sizeof(buf) - 1) return NULL;
    buf[n] = '\0';
    return strdup(buf);
}

/* Where an opened file really is, relative to the root: one readlink per open, so that a hit
 * checks access rules against it without a system call. */
static char *real_rel(struct ts_fcache *fc, int rootfd, int fd)
{
    struct root *r = NULL;
    for (unsigned i = 0; i < fc->nroots && !r; i++)
        if (fc->roots[i].fd == rootfd) r = &fc->roots[i];
    if (!r) {
        char *real = fd_real_path(rootfd);
        if (!real) return NULL;
        struct root *n = realloc(fc->roots, (fc->nroots + 1) * sizeof(*n));
        if (!n) abort();
        fc->roots = n;
        r = &fc->roots[fc->nroots++];
        *r = (struct root){rootfd, real, strcmp(real, "/") == 0 ? 0 : strlen(real)};
    }
    char *abs = fd_real_path(fd);
    if (!abs) return NULL;
    char *rel = NULL;
    size_t rl = r->len;
    if (strncmp(abs, r->real, rl) == 0 && (abs[rl] == '/' || abs[rl] == '\0'))
        rel = strdup(abs + rl + (abs[rl] == '/'));
    free(abs);
    return rel;
}

static struct ts_file *open_file(struct ts_fcache *fc, int rootfd, const char *rel, size_t len,
                                 uint32_t hash)
{
    struct ts_file *f = calloc(1, sizeof(*f) + len + 1);
    if (!f) abort();
    memcpy(f->path, rel, len + 1);
    f->hash = hash;
    f->rootfd = rootfd;
    f->fd = ts_file_open_beneath(rootfd, rel);
    if (f->fd < 0) {
        f->err = errno;
    } else if (fstat(f->fd, &f->st) < 0) {
        f->err = errno;
        close(f->fd);
        f->fd = -1;
    } else {
        ts_etag(&f->st, rel, f->etag);
        f->real = real_rel(fc, rootfd, f->fd);
        f->last_modified_len = ts_http_date(f->st.st_mtime, f->last_modified);
    }
    return f;
}

void ts_fcache_set_settle_ms(struct ts_fcache *fc, unsigned ms)
{
    fc->settle_ms = ms;
}

/* Whether a file last changed (mtime or ctime, whichever is later) at least settle_ms ago. One
 * changed more recently may still be being written: two writes within one tick of the file
 * system's timestamps (a jiffy where they are coarse, as on Linux 6.1) leave size, mtime and
 * ctime as the first one left them, so bytes read between the two would pass every later
 * revalidation and be served until the entry goes. */
static bool settled(const struct ts_fcache *fc, const struct stat *st)
{
    struct timespec now;
    if (clock_gettime(CLOCK_REALTIME, &now) != 0) return false;
    const struct timespec *m = &st->st_mtim, *c = &st->st_ctim;
    const struct timespec *last =
        c->tv_sec > m->tv_sec || (c->tv_sec == m->tv_sec && c->tv_nsec > m->tv_nsec) ? c : m;
    int64_t age_ms = ((int64_t)now.tv_sec - (int64_t)last->tv_sec) * 1000 +
                     ((int64_t)now.tv_nsec - (int64_t)last->tv_nsec) / 1000000;
    return age_ms >= (int64_t)fc->settle_ms;
}

/* Keeps a small regular file's bytes with its entry, within the budget. A file that does not
 * read back at the size fstat gave (being written, truncated) keeps none and is read from its
 * descriptor as any other. */
static void load_content(struct ts_fcache *fc, struct ts_file *f)
{
    if (f->fd < 0 || !S_ISREG(f->st.st_mode) || f->st.st_size <= 0) return;
    size_t size = (size_t)f->st.st_size;
    if (size > fc->content_max_file || size > fc->content_budget - fc->content_used) return;
    if (!settled(fc, &f->st)) return; /* read from the descriptor until it has settled */
    char *p = malloc(size);
    if (!p) return;
    size_t got = 0;
    while (got < size) {
        ssize_t n = pread(f->fd, p + got, size - got, (off_t)got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    char extra;
    if (got != size || pread(f->fd, &extra, 1, (off_t)size) != 0) {
        free(p);
        return;
    }
    f->data = p;
    fc->content_used += size;
}

static bool same_file(const struct ts_file *a, const struct ts_file *b)
{
    if (a->fd < 0 || b->fd < 0) return a->fd == b->fd && a->err == b->err;
    return a->st.st_ino == b->st.st_ino && a->st.st_dev == b->st.st_dev &&
           a->st.st_size == b->st.st_size && a->st.st_mtim.tv_sec == b->st.st_mtim.tv_sec &&
           a->st.st_mtim.tv_nsec == b->st.st_mtim.tv_nsec && a->st.st_mode == b->st.st_mode &&
           /* an mtime can be set back after a rewrite; the ctime cannot, and the bytes an
            * entry may keep must not outlive such a change */
           a->st.st_ctim.tv_sec == b->st.st_ctim.tv_sec &&
           a->st.st_ctim.tv_nsec == b->st.st_ctim.tv_nsec &&
           (a->real && b->real ? strcmp(a->real, b->real) == 0 : a->real == b->real);
}

struct ts_file *ts_fcache_open(struct ts_fcache *fc, int rootfd, const char *rel, uint64_t now_ms)
{
    size_t len = strlen(rel);
    uint32_t hash = hash_path(rootfd, rel);
    if (fc->max == 0) {
        struct ts_file *f = open_file(fc, rootfd, rel, len, hash);
        f->refs = 1;
        return f;
    }
    struct ts_file *f = fc->buckets[hash & (fc->nbuckets - 1)];
    while (f && (f->hash != hash || f->rootfd != rootfd || strcmp(f->path, rel) != 0))
        f = f->next_in_bucket;
    struct ts_file *fresh = NULL;
    if (f && now_ms - f->checked_ms >= fc->valid_ms) {
        /* stale: reopen, and keep the old entry if nothing changed (its fd stays warm) */
        fresh = open_file(fc, rootfd, rel, len, hash);
        if (fresh->fd < 0 && !ts_file_err_definitive(fresh->err)) {
            /* a shortage (EMFILE...) says nothing about the file: keep what we had,
             * unchecked, so that the next lookup tries again */
            destroy(fresh);
            fresh = NULL;
        } else if (same_file(f, fresh)) {
            destroy(fresh);
            fresh = NULL;
            f->checked_ms = now_ms;
            if (!f->data) load_content(fc, f); /* settled since, or room in the budget now */
        } else {
            evict(fc, f);
            f = NULL;
        }
    }
    if (!f) {
        if (!fresh) fresh = open_file(fc, rootfd, rel, len, hash);
        if (fresh->fd < 0 && !ts_file_err_definitive(fresh->err)) {
            fresh->refs = 1; /* answered, not cached: the next lookup opens again */
            return fresh;
        }
        while (fc->count >= fc->max && fc->lru_tail) evict(fc, fc->lru_tail);
        f = fresh;
        f->checked_ms = now_ms;
        f->cached = true;
        load_content(fc, f);
        struct ts_file **b = &fc->buckets[hash & (fc->nbuckets - 1)];
        f->next_in_bucket = *b;
        *b = f;
        fc->count++;
        lru_push_front(fc, f);
    } else if (fc->lru_head != f) {
        lru_unlink(fc, f);
        lru_push_front(fc, f);
    }
    f->refs++;
    return f;
}

void ts_fcache_release(struct ts_fcache *fc, struct ts_file *f)
{
    if (--f->refs == 0 && !f->cached) drop(fc, f);
}

void ts_fcache_flush(struct ts_fcache *fc)
{
    while (fc->lru_head) evict(fc, fc->lru_head); /* files in use live on until released */
    for (unsigned i = 0; i < fc->nroots; i++) free(fc->roots[i].real);
    free(fc->roots);
    fc->roots = NULL;
    fc->nroots = 0;
}

void ts_fcache_free(struct ts_fcache *fc)
{
    if (!fc) return;
    ts_fcache_flush(fc); /* workers have ended: no references left */
    free(fc->buckets);
    free(fc);
}
