/* Static files. Safety rests on two independent steps: the request path is decoded and
 * normalized here, and the kernel then opens it with RESOLVE_BENEATH, so neither a ".." that
 * slipped through nor a symlink can reach outside the root. */
#include "file.h"
#include "config.h"
#include "cond.h"
#include "fcache.h"
#include "http.h"
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

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int ts_file_resolve(const char *p, size_t len, char *out, size_t outlen)
{
    if (len == 0 || p[0] != '/') return 400;
    size_t o = 0, i = 1;
    while (i <= len) {
        size_t seg = o;
        while (i < len && p[i] != '/') {
            unsigned char c = (unsigned char)p[i];
            if (c == '%') {
                int hi = i + 2 < len + 0 ? hexval(p[i + 1]) : -1;
                int lo = hi >= 0 ? hexval(p[i + 2]) : -1;
                if (lo < 0) return 400;
                c = (unsigned char)(hi * 16 + lo);
                if (c == '/' || c == '\0') return 400; /* encoded separators and NUL */
                i += 3;
            } else {
                if (c == '\0') return 400;
                i++;
            }
            if (o + 2 >= outlen) return 414;
            out[o++] = (char)c;
        }
        size_t sl = o - seg;
        bool slash = i < len; /* a '/' follows this segment */
        if (sl == 0 || (sl == 1 && out[seg] == '.')) {
            o = seg;
        } else if (sl == 2 && out[seg] == '.' && out[seg + 1] == '.') {
            if (seg == 0) return 400; /* above the root */
            o = seg - 1;              /* drop the '/' before this segment... */
            while (o > 0 && out[o - 1] != '/') o--; /* ...and the segment before it */
        } else if (slash) {
            out[o++] = '/';
        }
        i++;
    }
    out[o] = '\0';
    return 0;
}

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

/* Without openat2 (Linux before 5.6, or valgrind): open, then check where the descriptor
 * really leads. A race with a symlink swapped in between cannot escape either: the check
 * looks at the opened file itself. */
int ts_file_open_checked(int rootfd, const char *rel)
{
    int fd = openat(rootfd, rel[0] ? rel : ".", O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return -1;
    char root[PATH_MAX], got[PATH_MAX];
    size_t rl;
    if (!fd_path(rootfd, root, sizeof(root)) || !fd_path(fd, got, sizeof(got)) ||
        strncmp(got, root, (rl = strlen(root))) != 0 ||
        (got[rl] != '\0' && got[rl] != '/' && strcmp(root, "/") != 0)) {
        close(fd);
        errno = EXDEV;
        return -1;
    }
    return fd;
}

int ts_file_open_beneath(int rootfd, const char *rel)
{
    static _Atomic int no_openat2;
    if (!atomic_load_explicit(&no_openat2, memory_order_relaxed)) {
        struct open_how how = {
            .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY,
            .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
        };
        int fd = (int)syscall(SYS_openat2, rootfd, rel[0] ? rel : ".", &how, sizeof(how));
        if (fd >= 0 || errno != ENOSYS) return fd;
        atomic_store_explicit(&no_openat2, 1, memory_order_relaxed);
    }
    return ts_file_open_checked(rootfd, rel);
}

static void fail_open(struct ts_req *req, int err)
{
    if (err == EACCES || err == EPERM)
        ts_response_error(req, 403, "You do not have permission to read this file.");
    else if (err == ENAMETOOLONG)
        ts_response_error(req, 414, NULL);
    else if (err == ENOENT || err == ENOTDIR || err == EXDEV || err == ELOOP)
        ts_response_error(req, 404, "The requested URL was not found on this server.");
    else
        ts_response_error(req, 500, NULL);
}

static void redirect_slash(struct ts_req *req)
{
    char loc[8192 + 16];
    size_t n = 0;
    if (req->path.len + 1 + req->query.len >= sizeof(loc)) {
        ts_response_error(req, 414, NULL);
        return;
    }
    memcpy(loc, req->path.p, req->path.len);
    n = req->path.len;
    loc[n++] = '/';
    if (req->query.len) memcpy(loc + n, req->query.p, req->query.len);
    n += req->query.len;
    static const char body[] = "Moved to the directory's URL with a trailing slash.\n";
    ts_response_start(req, 301);
    ts_response_header(req, "Location", loc, n);
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
                    for (v += 2; v < end && k < sizeof(num) - 1 && (isdigit((unsigned char)*v) || *v == '.'); v++)
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
    return ts_fcache_open(req->w->fcache, req->w->srv->rootfd, rel, req->w->now_ms);
}

static void cache_release(struct ts_req *req, struct ts_file *f)
{
    ts_fcache_release(req->w->fcache, f);
}

/* Picks a precompressed sidecar (rel.br, rel.gz) the client accepts, by q value, Brotli first
 * on a tie. *vary is set when a sidecar exists, as the answer then depends on the header. */
static void pick_variant(struct ts_req *req, char *rel, size_t rl, size_t cap,
                         struct variant *v, bool *vary)
{
    struct ts_str ae = req->hdr[TS_HDR_ACCEPT_ENCODING];
    if (!req->w->srv->cfg->precompressed || !ae.p || rl + 4 > cap) return;
    static const char *const codings[] = {"br", "gzip"};
    static const char *const suffix[] = {".br", ".gz"};
    double best_q = 0;
    struct variant best = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        memcpy(rel + rl, suffix[i], 4);
        struct ts_file *f = cache_open(req, rel);
        rel[rl] = '\0';
        if (f->fd < 0 || !S_ISREG(f->st.st_mode) || (f->real && ts_http_access(req, f->real))) {
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
    const char *cc = loc && loc->cache_control ? loc->cache_control : req->w->srv->cfg->cache_control;
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
    if (req->hdr[TS_HDR_IF_NONE_MATCH].p)
        return ts_etag_list_matches(req->hdr[TS_HDR_IF_NONE_MATCH], etag);
    if (req->hdr[TS_HDR_IF_MODIFIED_SINCE].p) {
        time_t since = ts_http_date_parse(req->hdr[TS_HDR_IF_MODIFIED_SINCE]);
        return since != -1 && mtime <= since;
    }
    return false;
}

/* multipart/byteranges: a head before each range and a closing delimiter, made in one
 * buffer the segments point into, with the ranges read from the file in between. */
static void send_multipart(struct ts_req *req, const struct ts_location *loc, const char *type,
                           struct variant *v, bool vary,
                           const struct ts_range *r, int n)
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
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(boundary + 8 + 2 * i, 3, "%02x", rnd[i]);
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
    if (req->head_only) {
        free(parts.p);
        cache_release(req, v->f);
        return;
    }
    req->body_owned = parts.p;
    req->file = v->f;
    for (int i = 0; i <= n; i++) {
        ts_response_segment(req, parts.p, off[i], len[i]);
        if (i < n) ts_response_segment(req, NULL, r[i].first, r[i].last - r[i].first + 1);
    }
}

/* A directory listing (locations[].autoindex): names HTML-escaped, links percent-encoded,
 * directories first. */
static int by_name(const void *a, const void *b)
{
    const struct dirent *const *x = a, *const *y = b;
    return strcmp((*x)->d_name, (*y)->d_name);
}

static void add_href(struct ts_sbuf *b, const char *name)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (isalnum(*p) || strchr("-._~", *p)) {
            ts_sbuf_add(b, (const char *)p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            ts_sbuf_add(b, e, 3);
        }
    }
}

static void send_listing(struct ts_req *req, const char *rel)
{
    int fd = ts_file_open_beneath(req->w->srv->rootfd, rel);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0) close(fd);
        fail_open(req, errno);
        return;
    }
    struct dirent **ents = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 10000) {
        if (e->d_name[0] == '.') continue; /* ".", "..", and hidden files */
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            struct dirent **g = realloc(ents, cap * sizeof(*g));
            if (!g) abort();
            ents = g;
        }
        ents[n] = malloc(sizeof(struct dirent));
        if (!ents[n]) abort();
        memcpy(ents[n++], e, sizeof(struct dirent));
    }
    qsort(ents, n, sizeof(*ents), by_name);
    struct ts_sbuf b = {0};
    char title[PATH_MAX + 8];
    snprintf(title, sizeof(title), "/%s", rel);
    ts_sbuf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Index of ");
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
            if (fstatat(dirfd(d), ents[i]->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
            bool dir = S_ISDIR(st.st_mode);
            if (dir != (pass == 0)) continue;
            char when[32], size[32];
            struct tm tm;
            gmtime_r(&st.st_mtime, &tm);
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
            snprintf(size, sizeof(size), dir ? "-" : "%lld", (long long)st.st_size);
            ts_sbuf_puts(&b, "<tr><td><a href=\"");
            add_href(&b, ents[i]->d_name);
            if (dir) ts_sbuf_puts(&b, "/");
            ts_sbuf_puts(&b, "\">");
            ts_sbuf_add_html(&b, ents[i]->d_name);
            if (dir) ts_sbuf_puts(&b, "/");
            ts_sbuf_puts(&b, "</a></td><td class=\"size\">");
            ts_sbuf_puts(&b, size);
            ts_sbuf_puts(&b, "</td><td>");
            ts_sbuf_puts(&b, when);
            ts_sbuf_puts(&b, " UTC</td></tr>\n");
        }
    }
    ts_sbuf_puts(&b, "</table>\n</body></html>\n");
    for (size_t i = 0; i < n; i++) free(ents[i]);
    free(ents);
    closedir(d);
    ts_response_start(req, 200);
    static const char html[] = "text/html; charset=utf-8";
    ts_response_header(req, "Content-Type", html, sizeof(html) - 1);
    ts_response_header(req, "Cache-Control", "no-cache", 8);
    ts_response_end(req, b.len);
    if (req->head_only) {
        free(b.p);
        return;
    }
    req->body_owned = b.p;
    ts_response_segment(req, b.p, 0, b.len);
}

/* Access rules apply to where an opened file really is, too: a symlink elsewhere in the root
 * must not lead into a protected location or to a hidden file. Answers and releases f when
 * refused. The resolved path was found when the file was opened, so this costs no syscall. */
static bool refused(struct ts_req *req, struct ts_file *f)
{
    int st = f->fd >= 0 && f->real ? ts_http_access(req, f->real) : 0;
    if (!st) return false;
    cache_release(req, f);
    ts_http_refuse(req, st);
    return true;
}

void ts_file_serve(struct ts_req *req, char *rel, size_t cap, const struct ts_location *loc)
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
    if (refused(req, f)) return;
    if (f->fd < 0 && f->err == ENOENT && dir_url) {
        /* no index.html: list the directory if allowed, else it is forbidden, not missing */
        cache_release(req, f);
        rel[rl - 10] = '\0';
        f = cache_open(req, rel);
        if (refused(req, f)) return;
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
            redirect_slash(req);
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
    pick_variant(req, rel, rl, cap, &v, &vary);
    const char *etag = v.f->etag;
    time_t mtime = v.f->st.st_mtime;

    if (not_modified(req, etag, mtime)) {
        ts_response_start(req, 304);
        common_headers(req, loc, NULL, &v, vary);
        ts_response_end(req, (uint64_t)-1);
        cache_release(req, v.f);
        return;
    }

    uint64_t size = (uint64_t)v.f->st.st_size;
    struct ts_range ranges[TS_MAX_RANGES];
    int nr = 0;
    enum ts_range_result rr = TS_RANGE_NONE;
    if (req->hdr[TS_HDR_RANGE].p && ts_if_range_holds(req->hdr[TS_HDR_IF_RANGE], etag, mtime))
        rr = ts_range_parse(req->hdr[TS_HDR_RANGE], size, ranges, &nr);
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
    if (req->head_only || len == 0) {
        cache_release(req, v.f);
        return;
    }
    req->file = v.f;
    ts_response_segment(req, NULL, first, len);
}
