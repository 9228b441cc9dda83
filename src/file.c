/* Static files. Safety rests on two independent steps: the request path is decoded and
 * normalized here, and the kernel then opens it with RESOLVE_BENEATH, so neither a ".." that
 * slipped through nor a symlink can reach outside the root. */
#include "file.h"
#include "config.h"
#include "http.h"
#include "mime.h"
#include "response.h"
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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

int ts_file_open_beneath(int rootfd, const char *rel)
{
    struct open_how how = {
        .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    return (int)syscall(SYS_openat2, rootfd, rel[0] ? rel : ".", &how, sizeof(how));
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

void ts_file_serve(struct ts_req *req, char *rel, size_t cap)
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

    int fd = ts_file_open_beneath(req->w->srv->rootfd, rel);
    if (fd < 0 && errno == ENOENT && dir_url) {
        /* no index.html: a directory that exists is forbidden (no listing), not missing */
        rel[rl - 10] = '\0';
        fd = ts_file_open_beneath(req->w->srv->rootfd, rel);
        if (fd >= 0) {
            close(fd);
            ts_response_error(req, 403, "Directory listing is not enabled.");
            return;
        }
        errno = ENOENT;
    }
    if (fd < 0) {
        fail_open(req, errno);
        return;
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        close(fd);
        ts_response_error(req, 500, NULL);
        return;
    }
    if (S_ISDIR(sb.st_mode)) {
        close(fd);
        if (dir_url)
            ts_response_error(req, 403, "Directory listing is not enabled.");
        else
            redirect_slash(req);
        return;
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        ts_response_error(req, 404, "The requested URL was not found on this server.");
        return;
    }

    char lm[32];
    size_t lml = ts_http_date(sb.st_mtime, lm);
    const char *type = ts_mime_type(rel, rl);
    ts_response_start(req, 200);
    ts_response_header(req, "Content-Type", type, strlen(type));
    ts_response_header(req, "Last-Modified", lm, lml);
    ts_response_end(req, (uint64_t)sb.st_size);
    if (req->head_only || sb.st_size == 0) {
        close(fd);
        return;
    }
    req->body_fd = fd;
    req->body_off = 0;
    req->body_left = (uint64_t)sb.st_size;
    req->body_bytes = (uint64_t)sb.st_size;
}
