/* The open-file cache: per worker (no locks), path -> open descriptor, stat, ETag and
 * Last-Modified, revalidated at most every file_cache.valid_ms. A hit costs no system call.
 * Small files also keep their bytes (file_cache.content_max_file_bytes, within a per-worker
 * budget of file_cache.content_bytes), so serving one reads no file at all. */
#ifndef TS_FCACHE_H
#define TS_FCACHE_H

#include "cond.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

struct ts_fcache;

struct ts_file {
    int fd;  /* -1 for a cached failure (err) */
    int err; /* errno of the failed open */
    struct stat st;
    char etag[TS_ETAG_MAX];
    char last_modified[32];
    size_t last_modified_len;
    /* where the file really is, relative to the root with symlinks resolved (NULL if the
     * kernel would not say): access rules apply to it as well as to the URL's path */
    char *real;
    /* the whole file (st.st_size bytes) as read when it entered the cache, or NULL: bodies
     * come from here instead of pread(2) of fd */
    char *data;
    /* cache bookkeeping: owned by fcache.c */
    unsigned refs;
    bool cached; /* still in the table (else freed when the last reference goes) */
    uint64_t checked_ms;
    uint32_t hash;
    int rootfd; /* with path, the key: each site's root is its own descriptor */
    struct ts_file *next_in_bucket, *lru_prev, *lru_next;
    char path[];
};

/* Creates a cache of up to entries files (0: no caching; every open goes to the kernel).
 * Regular files of at most content_max_file bytes keep their contents while the cache holds
 * no more than content_bytes of them (0: none). */
struct ts_fcache *ts_fcache_new(unsigned entries, unsigned valid_ms, size_t content_max_file,
                                size_t content_bytes);
void ts_fcache_free(struct ts_fcache *fc);

/* A file's bytes are kept only once it has not changed for this long (its mtime and ctime),
 * so that bytes read while it was being written are not kept; until then, and until a
 * revalidation finds it settled, it is read from its descriptor. The unit tests set 0. */
#define TS_FCACHE_SETTLE_MS 1000
void ts_fcache_set_settle_ms(struct ts_fcache *fc, unsigned ms);

/* Empties the cache (root descriptors included: they may be closed and their numbers reused
 * after this). Files still in use are freed by their last ts_fcache_release. */
void ts_fcache_flush(struct ts_fcache *fc);

/* Opens rel under rootfd (RESOLVE_BENEATH, as ts_file_open_beneath) through the cache, keyed
 * by both (two sites' roots never share an entry).
 * Returns a referenced file: fd >= 0, st and real filled, or fd == -1 and err set. Failures
 * that answer for the file (ts_file_err_definitive: ENOENT, EACCES, ENXIO...) are cached too;
 * a shortage (EMFILE, ENOMEM...) is returned uncached and a stale entry is kept unchecked, so
 * the next lookup opens again. now_ms is the worker's clock. Release with ts_fcache_release.
 * Never NULL. */
struct ts_file *ts_fcache_open(struct ts_fcache *fc, int rootfd, const char *rel, uint64_t now_ms);

/* Drops a reference; the descriptor is closed when the file has left the cache and the last
 * response using it has ended. */
void ts_fcache_release(struct ts_fcache *fc, struct ts_file *f);

#endif
