/* Error log and access log. The error log is shared by every thread: each message is formatted
 * into a local buffer and written with a single write(2) to an O_APPEND descriptor, so lines
 * from different threads never interleave. The access log's lines reach its destination whole
 * or not at all, whatever it is (a file on a full disk, a pipe to a slow reader), and no write
 * to it blocks a worker on a reader. ts_log_reopen swaps the files under both descriptors for
 * log rotation. */
#include "log.h"
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/err.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

/* Each client-supplied field gets at most this much of a line (escapes included), so a line
 * always ends as it should, however long the strings: a JSON line cut short would not parse. */
#define FIELD_MAX       1024
#define TARGET_MAX      3072
#define ACCESS_LINE_MAX (4 * FIELD_MAX + TARGET_MAX + 512)

/* What the access log writes to decides how it writes (flush_locked). */
enum dest {
    DEST_FILE,   /* a regular file: each buffer in one write(2); a line cut short is cut off */
    DEST_STREAM, /* a pipe or a socket: whole lines up to PIPE_BUF a write(2), never blocking */
    DEST_OTHER,  /* a terminal, /dev/null, /dev/full: each buffer in one write(2) */
};

/* The access log's writers are the workers (ts_log_access_flush) and the main thread's reopen.
 * The lock covers what a flush may have to do beyond single writes: the rest of a line that a
 * pipe or socket took only part of goes out before anything else, and a line a full disk took
 * only part of is cut off again before another worker appends. The kernel already serializes
 * the writers of one file (its inode lock) or pipe (its own lock); the mutex only extends that
 * over those few calls, and is never held across a wait for a reader: pipes and sockets are
 * written without blocking (access_prepare). */
static pthread_mutex_t access_lock = PTHREAD_MUTEX_INITIALIZER;
static enum dest access_dest = DEST_OTHER; /* under access_lock once the workers run */
static bool access_send;           /* a socket we may not set O_NONBLOCK on: send(MSG_DONTWAIT) */
static char rest[ACCESS_LINE_MAX]; /* under access_lock: the end of a line cut short */
static size_t rest_len;
static _Atomic bool rest_waiting; /* rest_len > 0, for a look without the lock */
static _Atomic uint64_t lost_bytes, lost_lines;

static int open_dest(const char *dest, int std_fd, const char *key, char *err, size_t errlen)
{
    if (strcmp(dest, "-") == 0) return std_fd;
    int fd = open(dest, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) snprintf(err, errlen, "%s: %s: %s", key, dest, strerror(errno));
    return fd;
}

static enum dest dest_of(int fd, mode_t *mode)
{
    struct stat st;
    if (fstat(fd, &st) < 0) return DEST_OTHER;
    *mode = st.st_mode;
    if (S_ISREG(st.st_mode)) return DEST_FILE;
    return S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) ? DEST_STREAM : DEST_OTHER;
}

/* Room in the kernel for the access log's lines between the workers and a pipe's or socket's
 * reader: a reader a little slower than a burst of requests (journald, a log shipper) catches
 * up from there, where a 64 KiB pipe would be full at once and lines would be dropped. Growing
 * the pipe or socket buffer only gives every writer more room. A pipe is limited to
 * /proc/sys/fs/pipe-max-size for a user (1 MiB by default), a socket to net.core.wmem_max. */
#define ACCESS_STREAM_ROOM (1 << 20)

static void grow_stream(int fd, mode_t mode)
{
    if (S_ISSOCK(mode)) {
        int cur = 0, want = ACCESS_STREAM_ROOM / 2; /* the kernel doubles what it is given */
        socklen_t len = sizeof(cur);
        if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cur, &len) == 0 && cur < 2 * want)
            (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
        return;
    }
    int cur = fcntl(fd, F_GETPIPE_SZ);
    /* a smaller size if the user's pipe pages are over their limit (EPERM) */
    for (int want = ACCESS_STREAM_ROOM; cur > 0 && want > cur; want /= 2)
        if (fcntl(fd, F_SETPIPE_SZ, want) >= 0) break;
}

/* Finds what the access log descriptor fd leads to (*dest), and makes a pipe or socket one
 * that no write waits on: a reader that falls behind must not hold up a worker (its lines wait
 * in the worker's buffer instead, and are dropped whole, counted, if it falls too far behind).
 * O_NONBLOCK belongs to the open file description, and an inherited stdout's is shared with
 * the parent and whoever else writes to it, whose writes would start failing with EAGAIN: so
 * only a file we opened (ours: a named FIFO as log.access) gets the flag; an inherited pipe
 * gets a description of its own, opened through /proc (the same pipe; stdout is left as it
 * is); an inherited socket, which cannot be opened so, is written with send(MSG_DONTWAIT),
 * which does not wait whatever the flags say. Returns the descriptor to write to, fd or a new
 * one; *blocking is set to an errno if writes may still block. */
static int access_prepare(int fd, bool ours, enum dest *dest, int *blocking)
{
    mode_t mode = 0;
    *dest = dest_of(fd, &mode);
    if (*dest == DEST_STREAM) grow_stream(fd, mode);
    int fl = fcntl(fd, F_GETFL);
    if (*dest != DEST_STREAM || fl < 0 || (fl & O_NONBLOCK)) return fd;
    if (ours) {
        if (fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) *blocking = errno;
        return fd;
    }
    if (S_ISSOCK(mode)) {
        access_send = true;
        return fd;
    }
    char path[40];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    int nfd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (nfd < 0) *blocking = errno;
    return nfd < 0 ? fd : nfd;
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
    bool efile = strcmp(cfg->log.error, "-") != 0;
    bool afile = afd >= 0 && strcmp(cfg->log.access, "-") != 0;
    int blocking = 0;
    if (afd >= 0) afd = access_prepare(afd, afile, &access_dest, &blocking);
    error_fd = efd;
    access_fd = afd;
    error_path = efile ? strdup(cfg->log.error) : NULL;
    access_path = afile ? strdup(cfg->log.access) : NULL;
    if ((efile && !error_path) || (afile && !access_path)) {
        snprintf(err, errlen, "log: out of memory");
        ts_log_close();
        return -1;
    }
    if (blocking)
        ts_log_warn("log.access: cannot write to %s without blocking (%s): a reader that falls "
                    "behind will hold up the workers",
                    afile ? cfg->log.access : "stdout", strerror(blocking));
    return 0;
}

static ssize_t put(const char *p, size_t n);

/* How long the exit waits for a pipe's reader to take the end of a line it took in part. */
#define CLOSE_WAIT_MS 10000

void ts_log_close(void)
{
    /* The workers are gone: the end of a line a pipe's reader took in part may still be
     * written, waiting for room at most CLOSE_WAIT_MS (this thread only exits: it may wait,
     * and a reader starved on a loaded machine then ends with whole lines). Past that, or
     * with the reader gone, the end is lost, and its line. */
    for (int waited = 0; rest_len > 0 && access_fd >= 0 && waited < CLOSE_WAIT_MS;
         waited += TS_LOG_ACCESS_RETRY_MS) {
        pthread_mutex_lock(&access_lock);
        ssize_t w = put(rest, rest_len);
        if (w > 0) {
            memmove(rest, rest + w, rest_len - (size_t)w);
            rest_len -= (size_t)w;
        }
        pthread_mutex_unlock(&access_lock);
        if (w < 0 && errno != EAGAIN) break; /* the reader is gone */
        if (w > 0) continue;
        struct pollfd pfd = {.fd = access_fd, .events = POLLOUT};
        poll(&pfd, 1, TS_LOG_ACCESS_RETRY_MS);
    }
    if (rest_len == 0) atomic_store(&rest_waiting, false);
    if (rest_len > 0) {
        atomic_fetch_add(&lost_bytes, rest_len);
        atomic_fetch_add(&lost_lines, 1);
        rest_len = 0;
        atomic_store(&rest_waiting, false);
    }
    uint64_t lb = atomic_load(&lost_bytes), ll = atomic_load(&lost_lines);
    if (lb > 0)
        ts_log_warn("access log: %llu bytes lost in all (%llu lines)", (unsigned long long)lb,
                    (unsigned long long)ll);
    if (error_fd != STDERR_FILENO) close(error_fd);
    if (access_fd > STDERR_FILENO) close(access_fd);
    error_fd = STDERR_FILENO;
    access_fd = -1;
    access_dest = DEST_OTHER;
    access_send = false;
    free(error_path);
    free(access_path);
    error_path = access_path = NULL;
}

/* Bytes and lines a flush could not write, and why; told by lose() once the lock is let go. */
struct drop {
    size_t bytes, lines;
    int err;
};

static size_t count_lines(const char *p, size_t n)
{
    size_t k = 0;
    for (const char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++) k++;
    return k;
}

/* Counts what did not reach the access log and says so in the error log, once a minute at
 * most: a full disk or a reader that falls behind must not go unnoticed, nor flood it. */
static void lose(const struct drop *d)
{
    static _Atomic time_t last_report;
    uint64_t b = atomic_fetch_add(&lost_bytes, d->bytes) + d->bytes;
    uint64_t l = atomic_fetch_add(&lost_lines, d->lines) + d->lines;
    time_t now = time(NULL), prev = atomic_load(&last_report);
    if (now - prev < 60 || !atomic_compare_exchange_strong(&last_report, &prev, now)) return;
    if (d->err == EAGAIN)
        ts_log_error("access log: its reader falls behind (the pipe or socket is full); %llu "
                     "bytes of access log lost so far (%llu lines)",
                     (unsigned long long)b, (unsigned long long)l);
    else
        ts_log_error("access log: write failed (%s); %llu bytes of access log lost so far "
                     "(%llu lines)",
                     strerror(d->err), (unsigned long long)b, (unsigned long long)l);
}

/* Drops the end of a line cut short (under access_lock), counting its line as lost. */
static void drop_rest(struct drop *d, int err)
{
    if (rest_len == 0) return;
    d->bytes += rest_len;
    d->lines += 1;
    d->err = err;
    rest_len = 0;
    atomic_store(&rest_waiting, false);
}

/* Opens path afresh and puts the new file under fd with dup2, which swaps them in one step:
 * a write(2) in flight on another thread finishes in the old file, the next one goes to the
 * new file, so whole lines (a write(2) carries whole lines; a file takes it whole, as no
 * thread takes signals that could interrupt it) are never split between the two. A file this
 * creates gets the mode and owner of the old one, as logrotate's "create" would. */
static int reopen_fd(int fd, const char *path, const char *key, bool access)
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
    int rc = nfd < 0 ? -1 : 0;
    if (nfd >= 0 && access) {
        /* the new file may be another kind (a FIFO where there was a file): the workers write
         * to it as it asks from their next flush on, which the lock keeps after the switch */
        enum dest dest;
        int blocking = 0;
        struct drop d = {0};
        access_prepare(nfd, true, &dest, &blocking);
        if (blocking)
            ts_log_warn("%s: cannot write to %s without blocking (%s): a reader that falls "
                        "behind will hold up the workers",
                        key, path, strerror(blocking));
        pthread_mutex_lock(&access_lock);
        rc = dup2(nfd, fd);
        if (rc >= 0) {
            access_dest = dest;
            drop_rest(&d, EAGAIN); /* the old destination's: see ts_log_reopen */
        }
        pthread_mutex_unlock(&access_lock);
        if (d.bytes) lose(&d);
    } else if (nfd >= 0) {
        rc = dup2(nfd, fd);
    }
    if (rc < 0) {
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
    if (error_path && reopen_fd(error_fd, error_path, "log.error", false) < 0) rc = -1;
    /* The end of a line a FIFO took only part of must follow it there, not start the new
     * file: the workers retry it every few milliseconds, so give them a moment (bounded)
     * before the switch, which drops it if it is still waiting. */
    for (int i = 0; i < 100 && access_path && atomic_load(&rest_waiting); i++)
        nanosleep(&(struct timespec){0, 10 * 1000000}, NULL);
    if (access_path && reopen_fd(access_fd, access_path, "log.access", true) < 0) rc = -1;
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

/* One write(2) of p[0..n) to the access log; never waits for a pipe's or socket's reader. */
static ssize_t put(const char *p, size_t n)
{
    ssize_t w;
    do
        w = access_send ? send(access_fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL)
                        : write(access_fd, p, n);
    while (w < 0 && errno == EINTR);
    return w;
}

/* The whole lines at the start of p[0..n) that go to a pipe or socket in one write(2): up to
 * PIPE_BUF bytes, which a pipe takes whole or not at all (POSIX, blocking or not), so no other
 * writer (the error log on the same pipe, another process) can come between their bytes and no
 * short write can cut one; a longer line goes alone. */
static size_t stream_chunk(const char *p, size_t n)
{
    if (n <= PIPE_BUF) return n;
    const char *nl = memrchr(p, '\n', PIPE_BUF);
    if (!nl) nl = memchr(p + PIPE_BUF, '\n', n - PIPE_BUF);
    return nl ? (size_t)(nl - p) + 1 : n;
}

/* A write to a regular file stopped `partial` bytes into a line (a full disk, a quota): cuts
 * those bytes off again, so that the file still ends with a whole line and the next one starts
 * a line of its own. Cut back rather than finish the line later: the file is whole after every
 * flush whether space ever comes back or not (a reader, a rotation, a stop see no half line),
 * and nothing has to wait behind that line. With O_APPEND the file position is the end of that
 * write, and under access_lock no other worker has appended since; if the file is no longer
 * that long, another process writes to it or truncated it (logrotate's copytruncate), and it is
 * left as it is rather than cut in the middle of that one's bytes. The position is set back too,
 * for a stdout opened without O_APPEND. Shrinking a file needs no free space. */
static bool cut_back(size_t partial)
{
    struct stat st;
    off_t end = lseek(access_fd, 0, SEEK_CUR);
    if (end < (off_t)partial || fstat(access_fd, &st) < 0 || st.st_size != end) return false;
    if (ftruncate(access_fd, end - (off_t)partial) < 0) return false;
    lseek(access_fd, end - (off_t)partial, SEEK_SET);
    return true;
}

/* Writes the rest of a line cut short (under access_lock). Returns false while it must wait. */
static bool write_rest(struct drop *d)
{
    while (rest_len > 0) {
        ssize_t w = put(rest, rest_len);
        if (w > 0) {
            memmove(rest, rest + w, rest_len - (size_t)w);
            rest_len -= (size_t)w;
            continue;
        }
        int err = w < 0 ? errno : EIO;
        if (err == EAGAIN) return false;
        drop_rest(d, err); /* the reader is gone (EPIPE): nothing can complete the line */
    }
    atomic_store(&rest_waiting, false);
    return true;
}

/* Writes the lines in log's buffer (under access_lock), after the rest of a line cut short if
 * there is one, without waiting for a reader. Lines a full pipe or socket does not take stay in
 * the buffer for the next flush; a line it takes only part of has its end kept in rest, which
 * goes out before anything else. Lines that cannot be written (an error) are dropped, counted
 * in *d; a line a regular file took only part of is cut off again. Never writes part of a line
 * but the first part of one whose rest is then kept or cut off. */
static void flush_locked(struct ts_access_log *log, struct drop *d)
{
    if (!write_rest(d)) return;
    size_t off = 0;
    while (off < log->len) {
        const char *p = log->buf + off;
        size_t n = access_dest == DEST_STREAM ? stream_chunk(p, log->len - off) : log->len - off;
        size_t done = 0;
        int err = 0;
        while (done < n) { /* a short write is retried: the next one tells why it stopped */
            ssize_t w = put(p + done, n - done);
            if (w <= 0) {
                err = w < 0 ? errno : EIO;
                break;
            }
            done += (size_t)w;
        }
        if (done == n) {
            off += n;
            continue;
        }
        /* stopped `partial` bytes into the line that starts at off */
        const char *nl = done > 0 ? memrchr(p, '\n', done) : NULL;
        size_t whole = nl ? (size_t)(nl - p) + 1 : 0, partial = done - whole;
        off += whole;
        if (err == EAGAIN) {
            if (partial > 0) {
                const char *eol = memchr(log->buf + off + partial, '\n', log->len - off - partial);
                size_t end = eol ? (size_t)(eol - log->buf) + 1 : log->len;
                rest_len = end - off - partial;
                if (rest_len > sizeof(rest)) /* not reached: a line ends within its maximum */
                    rest_len = sizeof(rest), end = off + partial + rest_len;
                memcpy(rest, log->buf + off + partial, rest_len);
                atomic_store(&rest_waiting, true);
                off = end;
            }
            break; /* the other lines wait in the buffer */
        }
        if (partial > 0 && !(access_dest == DEST_FILE && cut_back(partial)))
            off += partial; /* written, and past help: the line is lost but those bytes are not */
        d->bytes += log->len - off;
        d->lines += count_lines(log->buf + off, log->len - off);
        d->err = err;
        off = log->len;
    }
    memmove(log->buf, log->buf + off, log->len - off);
    log->len -= off;
}

bool ts_log_access_flush(struct ts_access_log *log)
{
    if (access_fd < 0 || (log->len == 0 && !atomic_load(&rest_waiting))) return false;
    struct drop d = {0};
    pthread_mutex_lock(&access_lock);
    flush_locked(log, &d);
    bool waiting = log->len > 0 || rest_len > 0;
    pthread_mutex_unlock(&access_lock);
    if (d.bytes) lose(&d);
    return waiting;
}

void ts_log_access_finish(struct ts_access_log *log)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (ts_log_access_flush(log)) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >= 2000) break;
        struct pollfd pfd = {.fd = access_fd, .events = POLLOUT};
        poll(&pfd, 1, TS_LOG_ACCESS_RETRY_MS);
    }
    /* A rest still waiting is left to ts_log_close: dropped here, the lines of another worker
     * still finishing would join the half line the reader has. */
    if (log->len > 0) {
        struct drop d = {log->len, count_lines(log->buf, log->len), EAGAIN};
        log->len = 0;
        lose(&d);
    }
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
    const char *proto = e->protocol ? e->protocol : "-";
    if (e->time != log->cached_sec) {
        struct tm tm;
        gmtime_r(&e->time, &tm);
        strftime(log->cached_time, sizeof(log->cached_time),
                 json ? "%Y-%m-%dT%H:%M:%SZ" : "%d/%b/%Y:%H:%M:%S +0000", &tm);
        log->cached_sec = e->time;
    }
    /* room for every field at its maximum plus the fixed text: nothing below is cut */
    char line[ACCESS_LINE_MAX];
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
    if (log->len + n > sizeof(log->buf)) { /* lines wait for a full pipe: this one is dropped */
        struct drop d = {n, 1, EAGAIN};
        lose(&d);
        return;
    }
    memcpy(log->buf + log->len, line, n);
    log->len += n;
}
