/* Logging: the error log (levelled lines on stderr or a file) and the access log (combined or
 * JSON lines, buffered per worker so a request costs no write(2) of its own). */
#ifndef TS_LOG_H
#define TS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum ts_log_level { TS_LOG_ERROR, TS_LOG_WARN, TS_LOG_INFO, TS_LOG_DEBUG };

struct ts_config;

/* Opens the error and access log destinations named in cfg->log. Main thread, at start.
 * Returns 0, or -1 with a message naming the key and file in err. */
int ts_log_open(const struct ts_config *cfg, char *err, size_t errlen);
void ts_log_close(void);

/* Opens the log files again by name and puts them under the descriptors every thread writes
 * to, without a pause or a lost line (SIGUSR1, after a log rotation). "-" destinations are
 * left alone. A file that cannot be opened keeps the old descriptor, with an error line naming
 * it. Main thread. Returns 0, or -1 if a file could not be reopened. */
int ts_log_reopen(void);

/* Reopens that succeeded for every file, and files that could not be reopened. Any thread. */
void ts_log_reopen_counts(uint64_t *done, uint64_t *failed);

/* True when messages of this level are written. */
int ts_log_enabled(enum ts_log_level level);

/* Writes one line to the error log with a timestamp and level; any thread; one write(2). */
void ts_log(enum ts_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Like ts_log, then appends OpenSSL's queued error strings (and clears the queue). */
void ts_log_ssl(enum ts_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define ts_log_error(...) ts_log(TS_LOG_ERROR, __VA_ARGS__)
#define ts_log_warn(...)  ts_log(TS_LOG_WARN, __VA_ARGS__)
#define ts_log_info(...)  ts_log(TS_LOG_INFO, __VA_ARGS__)
#define ts_log_debug(...)                                                                          \
    do {                                                                                           \
        if (ts_log_enabled(TS_LOG_DEBUG)) ts_log(TS_LOG_DEBUG, __VA_ARGS__);                       \
    } while (0)

/* One request as the access log sees it. Strings need not be NUL-terminated. */
struct ts_access_entry {
    const char *remote;
    const char *site; /* the site's first server name or "default" (JSON only), or NULL */
    const char *user; /* verified client certificate subject, or NULL */
    const char *user_unverified; /* subject of an accepted certificate from an unknown issuer
                                    (tls.client_auth optional_no_ca), or NULL */
    time_t time;
    const char *method;
    const char *target;
    size_t target_len;
    const char *protocol; /* as the client sent it ("HTTP/1.1", "HTTP/2.0"), or NULL: "-" */
    int status;
    uint64_t bytes; /* body bytes sent */
    const char *referer;
    size_t referer_len;
    const char *user_agent;
    size_t user_agent_len;
    uint64_t duration_us;
    bool truncated; /* the connection ended before the whole response was sent */
};

/* A worker's access-log buffer of whole lines; only its worker touches it. */
struct ts_access_log {
    char buf[16384];
    size_t len;
    time_t cached_sec;
    char cached_time[40];
};

/* True when access logging is on. */
int ts_log_access_enabled(void);

/* Appends one line; flushes when the buffer is nearly full, and drops the line (counted) if
 * lines still wait for a pipe or socket then. Worker thread. */
void ts_log_access(struct ts_access_log *log, const struct ts_access_entry *e);

/* ts_log_escape flags: JSON string escapes (else the combined format's \xHH), and spaces too. */
enum { TS_LOG_ESC_JSON = 1, TS_LOG_ESC_SPACE = 2 };

/* Copies len bytes of s to out (at most room bytes, no NUL), escaped so that no client can break
 * a log line: '"' and '\\' get a backslash; controls (C0, DEL) become \u00XX in JSON, \xHH in
 * combined. JSON keeps well-formed UTF-8 as it is (C1 controls become \u00XX, U+2028/9 \u2028/9)
 * and writes each byte that is not part of it as \u00XX; combined writes every byte >= 0x7f as
 * \xHH. Never writes half an escape or half a character. Returns the bytes written. */
size_t ts_log_escape(char *out, size_t room, const char *s, size_t len, unsigned flags);

/* Writes out what is buffered, whole lines only, without waiting for a pipe's or socket's
 * reader: lines it does not take yet stay buffered. The worker calls it once per event-loop
 * turn. Returns true while lines wait: call again within TS_LOG_ACCESS_RETRY_MS. */
bool ts_log_access_flush(struct ts_access_log *log);
#define TS_LOG_ACCESS_RETRY_MS 10

/* At a worker's exit: writes out what is buffered, waiting up to 2 s for a reader that falls
 * behind (the worker serves nothing any more); lines still waiting then are counted lost. */
void ts_log_access_finish(struct ts_access_log *log);

#endif
