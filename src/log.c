/* Error log and access log. The error log is shared by every thread: each message is formatted
 * into a local buffer and written with a single write(2) to an O_APPEND descriptor, so lines
 * from different threads never interleave. ts_log_reopen swaps the files under both
 * descriptors for log rotation. */
#include "log.h"
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int error_fd = STDERR_FILENO;
static int access_fd = -1;
/* the files behind them, for ts_log_reopen; NULL for "-" and "off" */
static char *error_path, *access_path;
static _Atomic uint64_t reopens, reopen_failures;
static enum ts_log_level max_level = TS_LOG_INFO;
static enum ts_log_format access_format = TS_LOG_FORMAT_COMBINED;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

static int open_dest(const char *dest, int std_fd, const char *key, char *err, size_t errlen)
{
    if (strcmp(dest, "-") == 0) return std_fd;
    int fd = open(dest, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) snprintf(err, errlen, "%s: %s: %s", key, dest, strerror(errno));
    return fd;
}

int ts_log_open(const struct ts_config *cfg, char *err, size_t errlen)
{
    max_level = (enum ts_log_level)cfg->log.level;
    access_format = cfg->log.format;
    int efd = open_dest(cfg->log.error, STDERR_FILENO, "log.error", err, errlen);
    if (efd < 0) return -1;
    int afd = -1;
    if (strcmp(cfg->log.access, "off") != 0) {
        afd = open_dest(cfg->log.access, STDOUT_FILENO, "log.access", err, errlen);
        if (afd < 0) {
            if (efd != STDERR_FILENO) close(efd);
            return -1;
        }
    }
    error_fd = efd;
    access_fd = afd;
    bool efile = strcmp(cfg->log.error, "-") != 0;
    bool afile = afd >= 0 && strcmp(cfg->log.access, "-") != 0;
    error_path = efile ? strdup(cfg->log.error) : NULL;
    access_path = afile ? strdup(cfg->log.access) : NULL;
    if ((efile && !error_path) || (afile && !access_path)) {
        snprintf(err, errlen, "log: out of memory");
        ts_log_close();
        return -1;
    }
    return 0;
}

void ts_log_close(void)
{
    if (error_fd != STDERR_FILENO) close(error_fd);
    if (access_fd > STDERR_FILENO) close(access_fd);
    error_fd = STDERR_FILENO;
    access_fd = -1;
    free(error_path);
    free(access_path);
    error_path = access_path = NULL;
}

/* Opens path afresh and puts the new file under fd with dup2, which swaps them in one step:
 * a write(2) in flight on another thread finishes in the old file, the next one goes to the
 * new file, so a buffer of whole lines (one write each; a file takes it whole, as no thread
 * takes signals that could interrupt it) is never split between the two. A file this
 * creates gets the mode and owner of the old one, as logrotate's "create" would. */
static int reopen_fd(int fd, const char *path, const char *key)
{
    struct stat old;
    if (fstat(fd, &old) < 0) {
        old.st_mode = 0644;
        old.st_uid = geteuid();
        old.st_gid = getegid();
    }
    mode_t mode = old.st_mode & 07777;
    bool created = true;
    int nfd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, mode);
    if (nfd < 0 && errno == EEXIST) {
        created = false;
        nfd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, mode);
    }
    if (nfd >= 0 && created) {
        /* open() applied the umask; chown works only for root, and a file left ours will do */
        int ignored = fchmod(nfd, mode);
        if (old.st_uid != geteuid() || old.st_gid != getegid())
            ignored |= fchown(nfd, old.st_uid, old.st_gid);
        (void)ignored;
    }
    if (nfd < 0 || dup2(nfd, fd) < 0) {
        int e = errno;
        if (nfd >= 0) close(nfd);
        atomic_fetch_add_explicit(&reopen_failures, 1, memory_order_relaxed);
        ts_log_error("%s: cannot reopen %s: %s; still writing to the file open before", key, path,
                     strerror(e));
        return -1;
    }
    close(nfd);
    return 0;
}

int ts_log_reopen(void)
{
    int rc = 0;
    /* the error log first, so that a failure to reopen the access log is told in the new one */
    if (error_path && reopen_fd(error_fd, error_path, "log.error") < 0) rc = -1;
    if (access_path && reopen_fd(access_fd, access_path, "log.access") < 0) rc = -1;
    if (rc == 0) atomic_fetch_add_explicit(&reopens, 1, memory_order_relaxed);
    return rc;
}

void ts_log_reopen_counts(uint64_t *done, uint64_t *failed)
{
    *done = atomic_load_explicit(&reopens, memory_order_relaxed);
    *failed = atomic_load_explicit(&reopen_failures, memory_order_relaxed);
}

int ts_log_enabled(enum ts_log_level level)
{
    return level <= max_level;
}

/* Returns 0, or the errno of a failed write (the rest of the line is dropped). */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void vlog(enum ts_log_level level, int with_ssl, const char *fmt, va_list ap)
{
    if (level > max_level) return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%SZ", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, " [%s] ", level_names[level]);
    int w = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    n = w < 0 ? n : (n + (size_t)w >= sizeof(line) ? sizeof(line) - 1 : n + (size_t)w);
    if (with_ssl) {
        unsigned long e;
        const char *sep = ": ";
        while ((e = ERR_get_error()) != 0) {
            char buf[256];
            ERR_error_string_n(e, buf, sizeof(buf));
            if (n + strlen(sep) + strlen(buf) + 2 < sizeof(line)) {
                n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%s", sep, buf);
                sep = "; ";
            }
        }
    }
    if (n >= sizeof(line) - 1) n = sizeof(line) - 2;
    line[n++] = '\n';
    write_all(error_fd, line, n);
}

void ts_log(enum ts_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, 0, fmt, ap);
    va_end(ap);
}

void ts_log_ssl(enum ts_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, 1, fmt, ap);
    va_end(ap);
    ERR_clear_error();
}

int ts_log_access_enabled(void)
{
    return access_fd >= 0;
}

void ts_log_access_flush(struct ts_access_log *log)
{
    if (log->len && access_fd >= 0) {
        int err = write_all(access_fd, log->buf, log->len);
        /* A full disk must not go unnoticed, nor flood the error log: one line a minute,
         * with how many access-log bytes were lost meanwhile. */
        static _Atomic time_t last_report;
        static _Atomic unsigned long lost;
        if (err) {
            atomic_fetch_add(&lost, log->len);
            time_t now = time(NULL), prev = atomic_load(&last_report);
            if (now - prev >= 60 && atomic_compare_exchange_strong(&last_report, &prev, now))
                ts_log_error("access log: write failed (%s); %lu bytes of access log lost so far",
                             strerror(err), atomic_load(&lost));
        }
    }
    log->len = 0;
}

/* Length of the well-formed UTF-8 sequence (2 to 4 bytes) at s, or 0: no overlong forms, no
 * surrogates, nothing above U+10FFFF, nothing cut short (RFC 3629, section 4). */
static size_t utf8_len(const unsigned char *s, size_t len)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xbf;
    size_t n;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    else
        return 0;
    if (len < n || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf) return 0;
    return n;
}

size_t ts_log_escape(char *out, size_t room, const char *str, size_t len, unsigned flags)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    int json = (flags & TS_LOG_ESC_JSON) != 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = s[i];
        size_t seq = c >= 0x80 && json ? utf8_len(s + i, len - i) : 0;
        /* C1 controls (U+0080..U+009F) reach a terminal as controls too; U+2028 and U+2029
         * end lines for JavaScript and some log tools */
        bool plain_seq = seq > 0 && !(seq == 2 && c == 0xc2 && s[i + 1] < 0xa0) &&
                         !(seq == 3 && c == 0xe2 && s[i + 1] == 0x80 && (s[i + 2] & 0xfe) == 0xa8);
        if (plain_seq) {
            if (n + seq > room) break;
            memcpy(out + n, s + i, seq);
            n += seq;
            i += seq - 1;
        } else if (seq == 3) { /* U+2028, U+2029 */
            if (n + 6 > room) break;
            memcpy(out + n, s[i + 2] == 0xa8 ? "\\u2028" : "\\u2029", 6);
            n += 6;
            i += 2;
        } else if (seq == 2) { /* a C1 control: \u0080..\u009f */
            if (n + 6 > room) break;
            memcpy(out + n, "\\u00", 4);
            out[n + 4] = hex[s[i + 1] >> 4];
            out[n + 5] = hex[s[i + 1] & 15];
            n += 6;
            i += 1;
        } else if (c == '"' || c == '\\') {
            if (n + 2 > room) break;
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f || (c == ' ' && (flags & TS_LOG_ESC_SPACE))) {
            /* controls, DEL, and in JSON a byte that is not part of valid UTF-8 */
            size_t w = json ? 6 : 4;
            if (n + w > room) break;
            memcpy(out + n, json ? "\\u00" : "\\x", w - 2);
            n += w - 2;
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        } else {
            if (n + 1 > room) break;
            out[n++] = (char)c;
        }
    }
    return n;
}

/* Each client-supplied field gets at most this much of a line (escapes included), so a line
 * always ends as it should, however long the strings: a JSON line cut short would not parse. */
#define FIELD_MAX  1024
#define TARGET_MAX 3072

#define PUT_ESC(s, l, max, flags)                                                                  \
    n += ts_log_escape(line + n, (max) < sizeof(line) - n ? (max) : sizeof(line) - n, (s), (l),    \
                       (flags))
#define RAW(s)                                                                                     \
    do {                                                                                           \
        if (n + sizeof(s) < sizeof(line))                                                          \
            memcpy(line + n, (s), sizeof(s) - 1), n += sizeof(s) - 1;                              \
    } while (0)
#define PUT_FMT(...)                                                                               \
    do {                                                                                           \
        int w_ = snprintf(line + n, sizeof(line) - n, __VA_ARGS__);                                \
        if (w_ > 0) n += (size_t)w_ < sizeof(line) - n ? (size_t)w_ : sizeof(line) - n - 1;        \
    } while (0)

void ts_log_access(struct ts_access_log *log, const struct ts_access_entry *e)
{
    if (access_fd < 0) return;
    int json = access_format == TS_LOG_FORMAT_JSON;
    unsigned esc = json ? TS_LOG_ESC_JSON : 0;
    const char *proto = e->h2 ? "HTTP/2.0" : e->http_minor ? "HTTP/1.1" : "HTTP/1.0";
    if (e->time != log->cached_sec) {
        struct tm tm;
        gmtime_r(&e->time, &tm);
        strftime(log->cached_time, sizeof(log->cached_time),
                 json ? "%Y-%m-%dT%H:%M:%SZ" : "%d/%b/%Y:%H:%M:%S +0000", &tm);
        log->cached_sec = e->time;
    }
    /* room for every field at its maximum plus the fixed text: nothing below is cut */
    char line[4 * FIELD_MAX + TARGET_MAX + 512];
    size_t n = 0;
    const char *user = e->user ? e->user : e->user_unverified;
    if (json) {
        PUT_FMT("{\"time\":\"%s\",\"remote\":\"%s\",\"user\":\"", log->cached_time, e->remote);
        if (e->user)
            PUT_ESC(e->user, strlen(e->user), FIELD_MAX, esc);
        else
            RAW("-");
        if (!e->user && e->user_unverified) {
            RAW("\",\"user_unverified\":\"");
            PUT_ESC(user, strlen(user), FIELD_MAX, esc);
        }
        PUT_FMT("\",\"method\":\"%s\",\"target\":\"", e->method);
        PUT_ESC(e->target, e->target_len, TARGET_MAX, esc);
        PUT_FMT("\",\"protocol\":\"%s\",\"status\":%d,\"bytes\":%llu,\"referer\":\"", proto,
                e->status, (unsigned long long)e->bytes);
        PUT_ESC(e->referer, e->referer_len, FIELD_MAX, esc);
        RAW("\",\"user_agent\":\"");
        PUT_ESC(e->user_agent, e->user_agent_len, FIELD_MAX, esc);
        PUT_FMT("\",\"duration_us\":%llu%s", (unsigned long long)e->duration_us,
                e->truncated ? ",\"truncated\":true" : "");
        if (e->site) {
            RAW(",\"site\":\"");
            PUT_ESC(e->site, strlen(e->site), FIELD_MAX, esc);
            RAW("\"");
        }
        RAW("}\n");
    } else {
        /* combined, with the user field carrying the client certificate subject, prefixed
         * "unverified:" when its issuer is unknown (a verified subject starts with an attribute
         * name and '='); spaces in it are escaped so the line still splits on spaces */
        PUT_FMT("%s - ", e->remote);
        if (!user || !*user)
            RAW("-");
        else {
            if (!e->user) RAW("unverified:");
            PUT_ESC(user, strlen(user), FIELD_MAX, TS_LOG_ESC_SPACE);
        }
        PUT_FMT(" [%s] \"%s ", log->cached_time, e->method);
        PUT_ESC(e->target, e->target_len, TARGET_MAX, esc);
        PUT_FMT(" %s\" %d %llu \"", proto, e->status, (unsigned long long)e->bytes);
        if (e->referer_len)
            PUT_ESC(e->referer, e->referer_len, FIELD_MAX, esc);
        else
            RAW("-");
        RAW("\" \"");
        if (e->user_agent_len)
            PUT_ESC(e->user_agent, e->user_agent_len, FIELD_MAX, esc);
        else
            RAW("-");
        RAW("\"\n");
    }
    if (log->len + n > sizeof(log->buf)) ts_log_access_flush(log);
    memcpy(log->buf + log->len, line, n);
    log->len += n;
}
