/* Static files. Safety rests on two independent steps: the request path is decoded and
 * normalized first (ts_http_resolve_path), and the kernel then opens it with RESOLVE_BENEATH,
 * so neither a ".." that slipped through nor a symlink can reach outside the root. */
#include "file.h"
#include "config.h"
#include "clientauth.h"
#include "cond.h"
#include "fcache.h"
#include "gen.h"
#include "http.h"
#include "log.h"
#include "mime.h"
#include "response.h"
#include "worker.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Where fd really points (the kernel's view, symlinks resolved). */
static bool fd_path(int fd, char *buf, size_t len)
{
    char link[64];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, buf, len - 1);
    if (n <= 0 || (size_t)n >= len - 1) return false;
    buf[n] = '\0';
    return true;
}

/* Whether path (a real path) is root or lies under it. */
static bool path_under(const char *root, const char *path)
{
    size_t rl = strlen(root);
    if (strcmp(root, "/") == 0) return true;
    return strncmp(path, root, rl) == 0 && (path[rl] == '\0' || path[rl] == '/');
}

/* Without openat2: the path is first opened with O_PATH, which follows symlinks but opens
 * nothing (no FIFO blocks, no device driver runs, no permission is checked). Where that
 * descriptor really leads is then checked, and only a regular file or a directory under the
 * root is opened for reading, through /proc/self/fd: the very inode already checked, so a
 * symlink swapped in meanwhile cannot lead elsewhere. */
int ts_file_open_checked(int rootfd, const char *rel)
{
    int pfd = openat(rootfd, rel[0] ? rel : ".", O_PATH | O_CLOEXEC);
    if (pfd < 0) return -1;
    int fd = -1, err = EXDEV;
    char root[PATH_MAX], got[PATH_MAX];
    struct stat st;
    if (!fd_path(rootfd, root, sizeof(root)) || !fd_path(pfd, got, sizeof(got)) ||
        !path_under(root, got))
        goto out;
    if (fstat(pfd, &st) < 0) {
        err = errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
        err = ENXIO;
        goto out;
    }
    char self[64];
    snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
    fd = open(self, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    err = errno;
out:
    close(pfd);
    if (fd < 0) errno = err;
    return fd;
}

static int sys_openat2(int dirfd, const char *path, int flags)
{
    struct open_how how = {
        .flags = (unsigned)flags,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

static bool transient(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOMEM || err == EAGAIN;
}

/* Whether openat2 can be used, learned once by opening the root itself with O_PATH, which
 * needs no permission: any failure but a shortage means the kernel lacks it (ENOSYS, before
 * Linux 5.6) or a seccomp filter refuses it (container runtimes and systemd's
 * SystemCallFilter answer EPERM). After a success, EPERM is a real permission error. */
enum { OPENAT2_UNKNOWN, OPENAT2_WORKS, OPENAT2_ABSENT };

static int openat2_state(int rootfd)
{
    static _Atomic int state;
    int s = atomic_load_explicit(&state, memory_order_relaxed);
    if (s != OPENAT2_UNKNOWN) return s;
    int fd = sys_openat2(rootfd, ".", O_PATH | O_CLOEXEC);
    if (fd >= 0) {
        close(fd);
        s = OPENAT2_WORKS;
    } else if (transient(errno)) {
        return OPENAT2_UNKNOWN; /* decide on a later call */
    } else {
        ts_log_info("openat2 is not available (%s): files are opened with openat and a check "
                    "of /proc/self/fd",
                    strerror(errno));
        s = OPENAT2_ABSENT;
    }
    atomic_store_explicit(&state, s, memory_order_relaxed);
    return s;
}

/* O_NONBLOCK: a FIFO would otherwise block the worker in open() until a writer comes; on
 * regular files and directories it changes nothing. Anything else that opens (a FIFO, a
 * device; a socket fails with ENXIO by itself) is closed again and refused with ENXIO. */
int ts_file_open_beneath(int rootfd, const char *rel)
{
    int s = openat2_state(rootfd);
    if (s == OPENAT2_ABSENT) return ts_file_open_checked(rootfd, rel); /* checks before opening */
    int fd = sys_openat2(rootfd, rel[0] ? rel : ".", O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0 && s == OPENAT2_UNKNOWN && (errno == ENOSYS || errno == EPERM))
        return ts_file_open_checked(rootfd, rel);
    if (fd < 0) return -1;
    struct stat st;
    int err = fstat(fd, &st) < 0 ? errno : S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) ? 0 : ENXIO;
    if (err) {
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

bool ts_file_err_definitive(int err)
{
    return err == ENOENT || err == ENOTDIR || err == EACCES || err == EPERM || err == ELOOP ||
           err == EXDEV || err == ENXIO || err == ENAMETOOLONG;
}

/* A shortage of descriptors or memory is temporary: 503 with Retry-After, as for overload
 * (RFC 9110 15.6.4), so clients and caches retry instead of taking a 500 for a broken site. */
static void fail_open(struct ts_req *req, int err)
{
    if (err == EACCES || err == EPERM)
        ts_response_error(req, 403, "You do not have permission to read this file.");
    else if (err == ENAMETOOLONG)
        ts_response_error(req, 414, NULL);
    else if (err == ENOENT || err == ENOTDIR || err == EXDEV || err == ELOOP || err == ENXIO)
        ts_response_error(req, 404, "The requested URL was not found on this server.");
    else if (transient(err))
        ts_response_error_with(req, 503, "The server is short of resources; try again.",
                               "Retry-After", "1");
    else
        ts_response_error(req, 500, NULL);
}

/* Appends s percent-encoded: bytes outside keep (besides unreserved characters) become %XX. */
static void add_encoded(struct ts_sbuf *b, const char *s, size_t len, const char *keep)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s, *end = p + len; p < end; p++) {
        if (isalnum(*p) || (*p && strchr("-._~", *p)) || (*p && strchr(keep, *p))) {
            ts_sbuf_add(b, (const char *)p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            ts_sbuf_add(b, e, 3);
        }
    }
}

/* The 301 from /dir to /dir/. Location is made of the resolved path (rel, which has no empty
 * or dot segments and so no leading '/'), never of the raw target: "//evil.example/../dir"
 * found the directory "dir", and repeating the target would send the client to another host
 * ("//host" is a network-path reference, and browsers read '\' as '/'). The query is kept as
 * sent, '%' included, with only bytes a URL cannot carry encoded. */
static void redirect_slash(struct ts_req *req, const char *rel)
{
    struct ts_sbuf loc = {0};
    ts_sbuf_add(&loc, "/", 1);
    add_encoded(&loc, rel, strlen(rel), "!$&'()*+,;=:@/");
    ts_sbuf_add(&loc, "/", 1);
    if (req->rq.query.len)
        add_encoded(&loc, req->rq.query.p, req->rq.query.len, "!$&'()*+,;=:@/?%");
    if (loc.len > 16384) {
        free(loc.p);
        ts_response_error(req, 414, NULL);
        return;
    }
    static const char body[] = "Moved to the directory's URL with a trailing slash.\n";
    ts_response_start(req, 301);
    ts_response_header(req, "Location", loc.p, loc.len);
    free(loc.p);
    ts_response_header(req, "Content-Type", "text/plain; charset=utf-8", 25);
    ts_response_end(req, sizeof(body) - 1);
    ts_response_body(req, body, sizeof(body) - 1);
}

/* The q value the client gives a content coding in Accept-Encoding (0 if refused or absent;
 * "*" covers codings not named). */
static double coding_q(struct ts_str ae, const char *coding)
{
    double star = 0;
    const char *p = ae.p, *end = ae.p + ae.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) p++;
        const char *start = p;
        while (p < end && *p != ',' && *p != ';' && *p != ' ' && *p != '\t') p++;
        size_t tl = (size_t)(p - start);
        double q = 1;
        while (p < end && *p != ',') {
            if (*p == ';') {
                const char *v = p + 1;
                while (v < end && (*v == ' ' || *v == '\t')) v++;
                if (end - v >= 2 && (v[0] == 'q' || v[0] == 'Q') && v[1] == '=') {
                    char num[8] = "";
                    size_t k = 0;
                    for (v += 2; v < end && k < sizeof(num) - 1 &&
                                 (isdigit((unsigned char)*v) || *v == '.');
                         v++)
                        num[k++] = *v;
                    q = strtod(num, NULL);
                    if (q < 0 || q > 1) q = 0;
                }
            }
            p++;
        }
        if (tl == 1 && start[0] == '*') {
            star = q;
        } else if (tl == strlen(coding) && strncasecmp(start, coding, tl) == 0) {
            return q;
        } else if (tl == 6 && strncasecmp(start, "x-gzip", 6) == 0 && strcmp(coding, "gzip") == 0) {
            return q;
        }
    }
    return star;
}

struct variant {
    struct ts_file *f;    /* referenced, from the open-file cache */
    const char *encoding; /* NULL for the file itself */
};

static struct ts_file *cache_open(struct ts_req *req, const char *rel)
{
    return ts_fcache_open(ts_worker_fcache(req->ctx.w, req->ctx.gen->number), ts_req_rootfd(req),
                          rel, req->ctx.w->now_ms);
}

static void cache_release(struct ts_req *req, struct ts_file *f)
{
    ts_fcache_release(req->ctx.w->fcache, f);
}

/* Picks a precompressed sidecar (rel.br, rel.gz) the client accepts, by q value, Brotli first
 * on a tie. *vary is set when a sidecar exists, as the answer then depends on the header. */
static void pick_variant(struct ts_req *req, char *rel, size_t rl, size_t cap,
                         ts_file_access_fn *access, struct variant *v, bool *vary)
{
    struct ts_str ae = req->rq.hdr[TS_HDR_ACCEPT_ENCODING];
    if (!ts_req_site(req)->precompressed || !ae.p || rl + 4 > cap) return;
    static const char *const codings[] = {"br", "gzip"};
    static const char *const suffix[] = {".br", ".gz"};
    double best_q = 0;
    struct variant best = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        memcpy(rel + rl, suffix[i], 4);
        struct ts_file *f = cache_open(req, rel);
        rel[rl] = '\0';
        if (f->fd < 0 || !S_ISREG(f->st.st_mode) || (f->real && access(req, f->real))) {
            cache_release(req, f);
            continue;
        }
        *vary = true;
        double q = coding_q(ae, codings[i]);
        if (q > best_q) { /* strictly better: Brotli, tried first, wins a tie */
            if (best.f) cache_release(req, best.f);
            best_q = q;
            best = (struct variant){f, codings[i]};
        } else {
            cache_release(req, f);
        }
    }
    if (best.f) {
        cache_release(req, v->f);
        *v = best;
    }
}

static void common_headers(struct ts_req *req, const struct ts_location *loc, const char *type,
                           const struct variant *v, bool vary)
{
    const char *cc =
        loc && loc->cache_control ? loc->cache_control : ts_req_site(req)->cache_control;
    if (type) ts_response_header(req, "Content-Type", type, strlen(type));
    if (v->encoding) ts_response_header(req, "Content-Encoding", v->encoding, strlen(v->encoding));
    ts_response_header(req, "Last-Modified", v->f->last_modified, v->f->last_modified_len);
    ts_response_header(req, "ETag", v->f->etag, strlen(v->f->etag));
    if (cc) ts_response_header(req, "Cache-Control", cc, strlen(cc));
    if (vary) ts_response_header(req, "Vary", "Accept-Encoding", 15);
}

/* RFC 9110 section 13.2.2: If-None-Match, and only without it If-Modified-Since. */
static bool not_modified(const struct ts_req *req, const char *etag, time_t mtime)
{
    if (req->rq.hdr[TS_HDR_IF_NONE_MATCH].p)
        return ts_etag_list_matches(req->rq.hdr[TS_HDR_IF_NONE_MATCH], etag);
    if (req->rq.hdr[TS_HDR_IF_MODIFIED_SINCE].p) {
        time_t since = ts_http_date_parse(req->rq.hdr[TS_HDR_IF_MODIFIED_SINCE]);
        return since != -1 && mtime <= since;
    }
    return false;
}

/* multipart/byteranges: a head before each range and a closing delimiter, made in one
 * buffer the segments point into, with the ranges read from the file in between. */
static void send_multipart(struct ts_req *req, const struct ts_location *loc, const char *type,
                           struct variant *v, bool vary, const struct ts_range *r, int n)
{
    /* unpredictable, and different on every start: an unseeded random() gave every process
     * the same sequence. RAND_bytes is thread-safe; should it fail, the clock keeps the
     * boundaries apart (a boundary only has to be absent from the parts, it is no secret). */
    unsigned char rnd[8];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        ERR_clear_error(); /* a stale error would mislead the next SSL_get_error here */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t t = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        memcpy(rnd, &t, sizeof(rnd));
    }
    char boundary[40] = "tessera-";
    for (size_t i = 0; i < sizeof(rnd); i++) snprintf(boundary + 8 + 2 * i, 3, "%02x", rnd[i]);
    struct ts_sbuf parts = {0};
    size_t off[TS_MAX_RANGES + 1], len[TS_MAX_RANGES + 1];
    uint64_t size = (uint64_t)v->f->st.st_size, total = 0;
    for (int i = 0; i <= n; i++) {
        char h[384];
        int hl = i < n ? snprintf(h, sizeof(h),
                                  "\r\n--%s\r\nContent-Type: %s\r\nContent-Range: bytes "
                                  "%llu-%llu/%llu\r\n\r\n",
                                  boundary, type, (unsigned long long)r[i].first,
                                  (unsigned long long)r[i].last, (unsigned long long)size)
                       : snprintf(h, sizeof(h), "\r\n--%s--\r\n", boundary);
        off[i] = parts.len;
        len[i] = (size_t)hl;
        ts_sbuf_add(&parts, h, (size_t)hl);
        total += (uint64_t)hl + (i < n ? r[i].last - r[i].first + 1 : 0);
    }
    char ctype[96];
    snprintf(ctype, sizeof(ctype), "multipart/byteranges; boundary=%s", boundary);
    ts_response_start(req, 206);
    common_headers(req, loc, ctype, v, vary);
    ts_response_header(req, "Accept-Ranges", "bytes", 5);
    ts_response_end(req, total);
    if (req->resp.head_only) {
        free(parts.p);
        cache_release(req, v->f);
        return;
    }
    req->resp.body_owned = parts.p;
    req->resp.file = v->f;
    for (int i = 0; i <= n; i++) {
        ts_response_segment(req, parts.p, off[i], len[i]);
        if (i < n) ts_response_segment(req, NULL, r[i].first, r[i].last - r[i].first + 1);
    }
}

/* A directory listing (locations[].autoindex): names HTML-escaped, links percent-encoded,
 * directories first, at most LISTING_MAX entries (the rest left out). */
#define LISTING_MAX 10000

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void send_listing(struct ts_req *req, const char *rel)
{
    int fd = ts_file_open_beneath(ts_req_rootfd(req), rel);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        int err = errno;
        if (fd >= 0) close(fd);
        fail_open(req, err);
        return;
    }
    /* Only the names are kept, copied: glibc's records are d_reclen bytes long, often less
     * than sizeof(struct dirent), and live in a buffer the next readdir refills. */
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while (n < LISTING_MAX && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue; /* ".", "..", and hidden files */
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **g = realloc(names, cap * sizeof(*g));
            if (!g) abort();
            names = g;
        }
        if (!(names[n++] = strdup(e->d_name))) abort();
    }
    qsort(names, n, sizeof(*names), by_name);
    struct ts_sbuf b = {0};
    char title[PATH_MAX + 8];
    snprintf(title, sizeof(title), "/%s", rel);
    ts_sbuf_puts(
        &b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Index of ");
    ts_sbuf_add_html(&b, title);
    ts_sbuf_puts(&b, "</title><style>body{font:15px/1.5 system-ui,sans-serif;max-width:50em;"
                     "margin:3em auto;padding:0 1em}td{padding:.1em 1.5em .1em 0}"
                     "td.size{text-align:right;font-variant-numeric:tabular-nums}</style></head>\n"
                     "<body><h1>Index of ");
    ts_sbuf_add_html(&b, title);
    ts_sbuf_puts(&b, "</h1>\n<table>\n");
    if (rel[0]) ts_sbuf_puts(&b, "<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    for (int pass = 0; pass < 2; pass++) { /* directories, then the rest */
        for (size_t i = 0; i < n; i++) {
            struct stat st;
            if (fstatat(dirfd(d), names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
            bool dir = S_ISDIR(st.st_mode);
            if (dir != (pass == 0)) continue;
            char when[32], size[32];
            struct tm tm;
            gmtime_r(&st.st_mtime, &tm);
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
            snprintf(size, sizeof(size), dir ? "-" : "%lld", (long long)st.st_size);
            ts_sbuf_puts(&b, "<tr><td><a href=\"");
            add_encoded(&b, names[i], strlen(names[i]), "");
            if (dir) ts_sbuf_puts(&b, "/");
            ts_sbuf_puts(&b, "\">");
            ts_sbuf_add_html(&b, names[i]);
            if (dir) ts_sbuf_puts(&b, "/");
            ts_sbuf_puts(&b, "</a></td><td class=\"size\">");
            ts_sbuf_puts(&b, size);
            ts_sbuf_puts(&b, "</td><td>");
            ts_sbuf_puts(&b, when);
            ts_sbuf_puts(&b, " UTC</td></tr>\n");
        }
    }
    ts_sbuf_puts(&b, "</table>\n</body></html>\n");
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    closedir(d);
    ts_response_start(req, 200);
    static const char html[] = "text/html; charset=utf-8";
    ts_response_header(req, "Content-Type", html, sizeof(html) - 1);
    ts_response_header(req, "Cache-Control", "no-cache", 8);
    ts_response_end(req, b.len);
    if (req->resp.head_only) {
        free(b.p);
        return;
    }
    req->resp.body_owned = b.p;
    ts_response_segment(req, b.p, 0, b.len);
}

/* Access rules apply to where an opened file really is, too: a symlink elsewhere in the root
 * must not lead into a protected location or to a hidden file. Answers and releases f when
 * refused. The resolved path was found when the file was opened, so this costs no syscall. */
static bool refused(struct ts_req *req, struct ts_file *f, ts_file_access_fn *access)
{
    int st = f->fd >= 0 && f->real ? access(req, f->real) : 0;
    if (!st) return false;
    cache_release(req, f);
    ts_file_refuse(req, st);
    return true;
}

void ts_file_refuse(struct ts_req *req, int status)
{
    if (status == 403)
        ts_clientauth_forbidden(req);
    else
        ts_response_error(req, 404, "The requested URL was not found on this server.");
}

void ts_file_serve(struct ts_req *req, char *rel, size_t cap, const struct ts_location *loc,
                   ts_file_access_fn *access)
{
    size_t rl = strlen(rel);
    bool dir_url = rl == 0 || rel[rl - 1] == '/';
    if (dir_url) {
        if (rl + sizeof("index.html") > cap) {
            ts_response_error(req, 414, NULL);
            return;
        }
        memcpy(rel + rl, "index.html", sizeof("index.html"));
        rl += 10;
    }

    struct ts_file *f = cache_open(req, rel);
    if (refused(req, f, access)) return;
    if (f->fd < 0 && f->err == ENOENT && dir_url) {
        /* no index.html: list the directory if allowed, else it is forbidden, not missing */
        cache_release(req, f);
        rel[rl - 10] = '\0';
        f = cache_open(req, rel);
        if (refused(req, f, access)) return;
        bool dir = f->fd >= 0 && S_ISDIR(f->st.st_mode);
        int err = f->fd >= 0 ? ENOTDIR : f->err;
        cache_release(req, f);
        if (!dir)
            fail_open(req, err);
        else if (loc && loc->autoindex)
            send_listing(req, rel);
        else
            ts_response_error(req, 403, "Directory listing is not enabled.");
        return;
    }
    if (f->fd < 0) {
        int err = f->err;
        cache_release(req, f);
        fail_open(req, err);
        return;
    }
    if (S_ISDIR(f->st.st_mode)) {
        cache_release(req, f);
        if (dir_url)
            ts_response_error(req, 403, "Directory listing is not enabled.");
        else
            redirect_slash(req, rel);
        return;
    }
    if (!S_ISREG(f->st.st_mode)) {
        cache_release(req, f);
        ts_response_error(req, 404, "The requested URL was not found on this server.");
        return;
    }

    const char *type = ts_mime_type(rel, rl);
    bool vary = false;
    struct variant v = {f, NULL};
    pick_variant(req, rel, rl, cap, access, &v, &vary);
    const char *etag = v.f->etag;
    time_t mtime = v.f->st.st_mtime;

    if (not_modified(req, etag, mtime)) {
        ts_response_start(req, 304);
        common_headers(req, loc, NULL, &v, vary);
        ts_response_end(req, TS_NO_LENGTH);
        cache_release(req, v.f);
        return;
    }

    uint64_t size = (uint64_t)v.f->st.st_size;
    struct ts_range ranges[TS_MAX_RANGES];
    int nr = 0;
    enum ts_range_result rr = TS_RANGE_NONE;
    if (req->rq.hdr[TS_HDR_RANGE].p && ts_if_range_holds(req->rq.hdr[TS_HDR_IF_RANGE], etag, mtime))
        rr = ts_range_parse(req->rq.hdr[TS_HDR_RANGE], size, ranges, &nr);
    if (rr == TS_RANGE_UNSATISFIABLE) {
        cache_release(req, v.f);
        char cr[48];
        snprintf(cr, sizeof(cr), "bytes */%llu", (unsigned long long)size);
        ts_response_error_with(req, 416, "The requested range is not within the file.",
                               "Content-Range", cr);
        return;
    }
    if (rr == TS_RANGE_OK && nr > 1) {
        send_multipart(req, loc, type, &v, vary, ranges, nr);
        return;
    }
    uint64_t first = 0, len = size;
    if (rr == TS_RANGE_OK) {
        first = ranges[0].first;
        len = ranges[0].last - ranges[0].first + 1;
        char cr[80];
        snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu", (unsigned long long)first,
                 (unsigned long long)ranges[0].last, (unsigned long long)size);
        ts_response_start(req, 206);
        ts_response_header(req, "Content-Range", cr, strlen(cr));
    } else {
        ts_response_start(req, 200);
    }
    common_headers(req, loc, type, &v, vary);
    ts_response_header(req, "Accept-Ranges", "bytes", 5);
    ts_response_end(req, len);
    if (req->resp.head_only || len == 0) {
        cache_release(req, v.f);
        return;
    }
    req->resp.file = v.f;
    ts_response_segment(req, NULL, first, len);
}
