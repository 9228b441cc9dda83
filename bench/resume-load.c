/* resume-load: a load client for TLS session resumption.
 *
 * Keeps N connections in flight for a fixed time. Each one, in a loop: connects, handshakes
 * offering the session its slot kept from the previous round, sends one GET with
 * "Connection: close", reads the whole response, keeps the session (SSL_get1_session after
 * reading, so the TLS 1.3 tickets that arrive after the handshake are in it), sends
 * close_notify, closes (with --wait-close: after the server has closed), and starts again.
 *
 * Non-blocking sockets and OpenSSL on one epoll loop per thread. Prints one line of
 * key=value pairs: conns (completed request/response cycles), per_sec, resumed, ratio
 * (resumed / conns), errors and a breakdown. wrk cannot measure this: it never resumes.
 *
 * Build: cc -std=c11 -D_GNU_SOURCE -O2 resume-load.c $(pkg-config --cflags --libs openssl)
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define HDR_MAX         8192
#define MAX_CONCURRENCY 10000
#define MAX_THREADS     64

static const char usage_text[] =
    "usage: resume-load --port N [options]\n"
    "\n"
    "Opens --concurrency connections and, for --duration seconds, has each one loop:\n"
    "connect, TLS handshake offering the session kept from its previous round, GET --path\n"
    "with 'Connection: close', read the full response, keep the session, close_notify,\n"
    "close, reconnect. Measures resumed handshakes per second and the reuse ratio.\n"
    "\n"
    "options:\n"
    "  --host ADDR          server address (default 127.0.0.1; ::1 works too)\n"
    "  --port N             server port (required)\n"
    "  --servername NAME    SNI, Host header and verified name (default localhost)\n"
    "  --path P             request path (default /)\n"
    "  --concurrency N      connections in flight (default 16, at most 10000)\n"
    "  --duration S         seconds to run, fractions allowed (default 10)\n"
    "  --threads N          event-loop threads sharing the connections (default 1)\n"
    "  --tls12 | --tls13    use only this protocol version (default: either)\n"
    "  --cafile FILE        verify the server's certificate and name (default: no check)\n"
    "  --ciphers LIST       TLS 1.2 cipher list to offer (OpenSSL syntax)\n"
    "  --ciphersuites LIST  TLS 1.3 cipher suites to offer\n"
    "  --no-resume          never offer a session: every handshake is a full one\n"
    "  --wait-close         after our close_notify, wait for the server to close before\n"
    "                       closing (default: close at once, as browsers do)\n"
    "  --timeout-ms N       bound on each connection's whole cycle (default 5000)\n"
    "  --max-conns N        stop after N completed connections (default: no limit)\n"
    "  --help               show this help\n"
    "\n"
    "output, one line on stdout:\n"
    "  conns=N per_sec=R resumed=N ratio=R errors=N err_connect=N err_tls=N err_http=N\n"
    "  err_timeout=N proto=TLSv1.x elapsed=S concurrency=N threads=N\n"
    "conns counts completed request/response cycles; ratio is resumed/conns. The first\n"
    "connection of each slot is a full handshake, so ratio stays just under 1 at best.\n"
    "exit status: 0 when at least one connection completed, 1 otherwise, 2 usage error\n";

static struct {
    const char *host, *port, *servername, *path, *cafile, *ciphers, *ciphersuites;
    int concurrency, threads, version, no_resume, wait_close;
    long timeout_ms, max_conns;
    double duration;
} opt = {"127.0.0.1", NULL, "localhost", "/", NULL, NULL, NULL, 16, 1, 0, 0, 0, 5000, 0, 10.0};

static struct sockaddr_storage server_addr;
static socklen_t server_addrlen;
static SSL_CTX *ctx;
static char request[2048];
static size_t request_len;
static long long end_ms;
static long completed_total; /* shared across threads, only for --max-conns */
static pthread_mutex_t total_lock = PTHREAD_MUTEX_INITIALIZER;

enum state { ST_IDLE, ST_CONNECT, ST_HANDSHAKE, ST_WRITE, ST_READ, ST_SHUTDOWN, ST_DRAIN };
enum err_kind { E_CONNECT, E_TLS, E_HTTP, E_TIMEOUT, E_COUNT };

struct slot {
    SSL *ssl;
    SSL_SESSION *session; /* kept from the previous round, offered in the next */
    long long deadline;
    size_t sent, hdr_len;
    long long body_left; /* -1: no Content-Length, read until the server closes */
    int fd, state, resumed, status, in_body;
    unsigned events;
    char hdr[HDR_MAX];
};

struct worker {
    pthread_t tid;
    struct slot *slots;
    int nslots, ep, stop;
    long conns, resumed, errors[E_COUNT];
    char first_error[256];
    char proto[16];
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("resume-load: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static long parse_long(const char *name, const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        die("%s: expected an integer from %ld to %ld, got '%s'", name, lo, hi, s);
    return v;
}

static void parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            exit(0);
        }
        if (!strcmp(a, "--tls12")) {
            opt.version = TLS1_2_VERSION;
            continue;
        }
        if (!strcmp(a, "--tls13")) {
            opt.version = TLS1_3_VERSION;
            continue;
        }
        if (!strcmp(a, "--no-resume")) {
            opt.no_resume = 1;
            continue;
        }
        if (!strcmp(a, "--wait-close")) {
            opt.wait_close = 1;
            continue;
        }
        if (i + 1 >= argc) die("%s: unknown option or missing value (see --help)", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--host"))
            opt.host = v;
        else if (!strcmp(a, "--port")) {
            parse_long(a, v, 1, 65535);
            opt.port = v;
        } else if (!strcmp(a, "--servername"))
            opt.servername = v;
        else if (!strcmp(a, "--path"))
            opt.path = v;
        else if (!strcmp(a, "--cafile"))
            opt.cafile = v;
        else if (!strcmp(a, "--ciphers"))
            opt.ciphers = v;
        else if (!strcmp(a, "--ciphersuites"))
            opt.ciphersuites = v;
        else if (!strcmp(a, "--concurrency"))
            opt.concurrency = (int)parse_long(a, v, 1, MAX_CONCURRENCY);
        else if (!strcmp(a, "--threads"))
            opt.threads = (int)parse_long(a, v, 1, MAX_THREADS);
        else if (!strcmp(a, "--timeout-ms"))
            opt.timeout_ms = parse_long(a, v, 10, 3600000);
        else if (!strcmp(a, "--max-conns"))
            opt.max_conns = parse_long(a, v, 1, 1000000000L);
        else if (!strcmp(a, "--duration")) {
            char *end;
            opt.duration = strtod(v, &end);
            if (end == v || *end || !(opt.duration > 0 && opt.duration <= 86400))
                die("--duration: expected seconds from 0 to 86400, got '%s'", v);
        } else
            die("unknown option %s (see --help)", a);
    }
    if (!opt.port) die("--port is required (see --help)");
    if (opt.threads > opt.concurrency) opt.threads = opt.concurrency;
    if (opt.path[0] != '/') die("--path must start with /");
    if (strpbrk(opt.path, " \r\n") || strpbrk(opt.servername, " \r\n"))
        die("--path and --servername must not contain spaces or line breaks");
}

static void resolve(void)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res;
    int rc = getaddrinfo(opt.host, opt.port, &hints, &res);
    if (rc) die("cannot resolve %s: %s", opt.host, gai_strerror(rc));
    memcpy(&server_addr, res->ai_addr, res->ai_addrlen);
    server_addrlen = res->ai_addrlen;
    freeaddrinfo(res);
}

static void make_ctx(void)
{
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) die("SSL_CTX_new failed");
    SSL_CTX_set_min_proto_version(ctx, opt.version ? opt.version : TLS1_2_VERSION);
    if (opt.version) SSL_CTX_set_max_proto_version(ctx, opt.version);
    /* The slots keep their own sessions; OpenSSL's client cache would only add work. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (opt.ciphers && SSL_CTX_set_cipher_list(ctx, opt.ciphers) != 1)
        die("--ciphers: no usable cipher in '%s'", opt.ciphers);
    if (opt.ciphersuites && SSL_CTX_set_ciphersuites(ctx, opt.ciphersuites) != 1)
        die("--ciphersuites: no usable suite in '%s'", opt.ciphersuites);
    if (opt.cafile) {
        if (SSL_CTX_load_verify_locations(ctx, opt.cafile, NULL) != 1)
            die("--cafile: cannot load %s", opt.cafile);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    int n = snprintf(request, sizeof request,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: resume-load\r\n"
                     "Accept: */*\r\nConnection: close\r\n\r\n",
                     opt.path, opt.servername);
    if (n < 0 || (size_t)n >= sizeof request) die("--path or --servername is too long");
    request_len = (size_t)n;
}

/* ------------------------------------------------------------------ connections */

static void watch(struct worker *w, struct slot *s, unsigned events)
{
    if (s->events == events) return;
    struct epoll_event ev = {.events = events, .data.u32 = (uint32_t)(s - w->slots)};
    if (epoll_ctl(w->ep, s->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s->fd, &ev) == 0)
        s->events = events;
}

static void release(struct worker *w, struct slot *s)
{
    if (s->fd >= 0) {
        if (s->events) epoll_ctl(w->ep, EPOLL_CTL_DEL, s->fd, NULL);
        close(s->fd);
    }
    if (s->ssl) SSL_free(s->ssl);
    s->ssl = NULL;
    s->fd = -1;
    s->events = 0;
    s->state = ST_IDLE;
}

static void fail(struct worker *w, struct slot *s, enum err_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(struct worker *w, struct slot *s, enum err_kind kind, const char *fmt, ...)
{
    w->errors[kind]++;
    if (!w->first_error[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->first_error, sizeof w->first_error, fmt, ap);
        va_end(ap);
    }
    ERR_clear_error();
    /* A session that just failed is not offered again: the next round starts afresh. */
    if (kind == E_TLS && s->session) {
        SSL_SESSION_free(s->session);
        s->session = NULL;
    }
    release(w, s);
}

static const char *ssl_reason(void)
{
    static __thread char buf[160];
    unsigned long e = ERR_peek_error();
    if (!e) return errno ? strerror(errno) : "connection closed";
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

static void start(struct worker *w, struct slot *s)
{
    s->deadline = now_ms() + opt.timeout_ms;
    s->sent = s->hdr_len = 0;
    s->body_left = -1;
    s->resumed = s->status = s->in_body = 0;
    s->events = 0;
    s->fd = socket(server_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        fail(w, s, E_CONNECT, "socket: %s", strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    s->state = ST_CONNECT;
    if (connect(s->fd, (struct sockaddr *)&server_addr, server_addrlen) == 0 ||
        errno == EINPROGRESS)
        watch(w, s, EPOLLOUT);
    else
        fail(w, s, E_CONNECT, "connect: %s", strerror(errno));
}

/* Parses the status line and Content-Length once the header is complete. 1 = complete,
 * 0 = need more, -1 = malformed. */
static int parse_header(struct slot *s, size_t *header_end)
{
    char *end = memmem(s->hdr, s->hdr_len, "\r\n\r\n", 4);
    if (!end) return s->hdr_len >= HDR_MAX - 1 ? -1 : 0;
    *header_end = (size_t)(end - s->hdr) + 4;
    *end = '\0';
    if (strncmp(s->hdr, "HTTP/1.", 7) || strlen(s->hdr) < 12) return -1;
    s->status = atoi(s->hdr + 9);
    for (char *line = strstr(s->hdr, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        if (!strncasecmp(line + 2, "Content-Length:", 15)) {
            s->body_left = strtoll(line + 17, NULL, 10);
            if (s->body_left < 0) return -1;
        }
    }
    return 1;
}

static void finish_response(struct worker *w, struct slot *s)
{
    if (s->status != 200) {
        fail(w, s, E_HTTP, "HTTP status %d for %s", s->status, opt.path);
        return;
    }
    if (!opt.no_resume) {
        SSL_SESSION *sess = SSL_get1_session(s->ssl);
        if (sess && SSL_SESSION_is_resumable(sess)) {
            if (s->session) SSL_SESSION_free(s->session);
            s->session = sess;
        } else if (sess) {
            SSL_SESSION_free(sess);
        }
    }
    w->conns++;
    if (s->resumed) w->resumed++;
    if (!w->proto[0]) snprintf(w->proto, sizeof w->proto, "%s", SSL_get_version(s->ssl));
    if (opt.max_conns) {
        pthread_mutex_lock(&total_lock);
        if (++completed_total >= opt.max_conns) /* every thread stops */
            __atomic_store_n(&end_ms, 0, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&total_lock);
    }
    s->state = ST_SHUTDOWN;
}

/* Moves a slot on until it has to wait for the socket. */
static void advance(struct worker *w, struct slot *s)
{
    char buf[16384];
    for (int guard = 0; guard < 10000; guard++) {
        int r, e;
        switch (s->state) {
        case ST_CONNECT: {
            int err = 0;
            socklen_t len = sizeof err;
            if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
            if (err) {
                fail(w, s, E_CONNECT, "connect: %s", strerror(err));
                return;
            }
            if (!(s->ssl = SSL_new(ctx)) || SSL_set_fd(s->ssl, s->fd) != 1) {
                fail(w, s, E_TLS, "SSL_new: %s", ssl_reason());
                return;
            }
            SSL_set_tlsext_host_name(s->ssl, opt.servername);
            if (opt.cafile) SSL_set1_host(s->ssl, opt.servername);
            if (s->session && !opt.no_resume) SSL_set_session(s->ssl, s->session);
            s->state = ST_HANDSHAKE;
            break;
        }
        case ST_HANDSHAKE:
            ERR_clear_error();
            errno = 0;
            r = SSL_connect(s->ssl);
            if (r == 1) {
                s->resumed = SSL_session_reused(s->ssl);
                s->state = ST_WRITE;
                break;
            }
            e = SSL_get_error(s->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                watch(w, s, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
                return;
            }
            fail(w, s, E_TLS, "handshake: %s", ssl_reason());
            return;
        case ST_WRITE:
            ERR_clear_error();
            errno = 0;
            r = SSL_write(s->ssl, request + s->sent, (int)(request_len - s->sent));
            if (r > 0) {
                s->sent += (size_t)r;
                if (s->sent == request_len) s->state = ST_READ;
                break;
            }
            e = SSL_get_error(s->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                watch(w, s, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
                return;
            }
            fail(w, s, E_TLS, "write: %s", ssl_reason());
            return;
        case ST_READ:
            ERR_clear_error();
            errno = 0;
            r = SSL_read(s->ssl, buf, sizeof buf);
            if (r > 0) {
                size_t n = (size_t)r, off = 0;
                if (!s->in_body) {
                    size_t room = HDR_MAX - 1 - s->hdr_len, take = n < room ? n : room, hend = 0;
                    memcpy(s->hdr + s->hdr_len, buf, take);
                    size_t before = s->hdr_len;
                    s->hdr_len += take;
                    int ph = parse_header(s, &hend);
                    if (ph < 0) {
                        fail(w, s, E_HTTP, "malformed response header");
                        return;
                    }
                    if (ph == 0) break;
                    s->in_body = 1;
                    off = hend - before; /* bytes of buf that belonged to the header */
                }
                if (s->body_left >= 0) {
                    s->body_left -= (long long)(n - off);
                    if (s->body_left <= 0) finish_response(w, s);
                }
                break;
            }
            e = SSL_get_error(s->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                watch(w, s, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
                return;
            }
            if ((e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL) && s->in_body &&
                s->body_left < 0) {
                finish_response(w, s); /* no Content-Length: the close ends the body */
                if (s->state == ST_SHUTDOWN) release(w, s);
                return;
            }
            fail(w, s, s->in_body ? E_HTTP : E_TLS, "read: %s%s", ssl_reason(),
                 s->in_body ? " (response truncated)" : "");
            return;
        case ST_SHUTDOWN:
            ERR_clear_error();
            r = SSL_shutdown(s->ssl); /* sends our close_notify */
            if (r < 0) {
                e = SSL_get_error(s->ssl, r);
                if (e == SSL_ERROR_WANT_WRITE) {
                    watch(w, s, EPOLLOUT);
                    return;
                }
                release(w, s); /* the server may have closed already: nothing to wait for */
                return;
            }
            if (r == 1 || !opt.wait_close) { /* done, or the server's had already come */
                release(w, s);
                return;
            }
            s->state = ST_DRAIN;
            break;
        case ST_DRAIN:
            /* --wait-close: wait for the server's close_notify or FIN, so the server closes
             * first and the client leaves no TIME_WAIT behind; bounded by the deadline. */
            ERR_clear_error();
            r = SSL_read(s->ssl, buf, sizeof buf);
            if (r > 0) break;
            e = SSL_get_error(s->ssl, r);
            if (e == SSL_ERROR_WANT_READ) {
                watch(w, s, EPOLLIN);
                return;
            }
            ERR_clear_error();
            release(w, s);
            return;
        default: return;
        }
    }
    fail(w, s, E_HTTP, "too many steps without waiting");
}

static void *run_worker(void *arg)
{
    struct worker *w = arg;
    struct epoll_event evs[256];
    long long last_scan = now_ms();
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    if (w->ep < 0) {
        snprintf(w->first_error, sizeof w->first_error, "epoll_create1: %s", strerror(errno));
        w->errors[E_CONNECT]++;
        return NULL;
    }
    for (int i = 0; i < w->nslots; i++) w->slots[i].fd = -1;
    for (;;) {
        long long now = now_ms();
        if (now >= __atomic_load_n(&end_ms, __ATOMIC_RELAXED)) break;
        int active = 0;
        for (int i = 0; i < w->nslots; i++) {
            struct slot *s = &w->slots[i];
            if (s->state == ST_IDLE) {
                start(w, s);
                if (s->state == ST_IDLE) continue; /* failed at once (counted) */
            }
            active++;
        }
        if (!active) {
            /* Every start failed at once (e.g. out of descriptors): do not spin. */
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        long long left = __atomic_load_n(&end_ms, __ATOMIC_RELAXED) - now;
        int timeout = left < 100 ? (int)(left > 0 ? left : 0) : 100;
        int n = epoll_wait(w->ep, evs, 256, timeout);
        for (int k = 0; k < n; k++) {
            struct slot *s = &w->slots[evs[k].data.u32];
            if (s->state != ST_IDLE) advance(w, s);
        }
        now = now_ms();
        if (now - last_scan >= 50) {
            last_scan = now;
            for (int i = 0; i < w->nslots; i++) {
                struct slot *s = &w->slots[i];
                if (s->state == ST_IDLE || s->deadline > now) continue;
                if (s->state == ST_DRAIN || s->state == ST_SHUTDOWN)
                    release(w, s); /* done */
                else
                    fail(w, s, E_TIMEOUT, "timed out in state %d", s->state);
            }
        }
    }
    for (int i = 0; i < w->nslots;
         i++) { /* abandon what is in flight: neither counted nor an error */
        release(w, &w->slots[i]);
        if (w->slots[i].session) SSL_SESSION_free(w->slots[i].session);
        w->slots[i].session = NULL;
    }
    close(w->ep);
    return NULL;
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    resolve();
    make_ctx();

    struct worker *ws = calloc((size_t)opt.threads, sizeof *ws);
    if (!ws) die("out of memory");
    int per = opt.concurrency / opt.threads, extra = opt.concurrency % opt.threads;
    for (int t = 0; t < opt.threads; t++) {
        ws[t].nslots = per + (t < extra);
        ws[t].slots = calloc((size_t)ws[t].nslots, sizeof *ws[t].slots);
        if (!ws[t].slots) die("out of memory");
    }
    double t0 = now_s();
    end_ms = now_ms() + (long long)(opt.duration * 1000.0);
    for (int t = 0; t < opt.threads; t++)
        if (pthread_create(&ws[t].tid, NULL, run_worker, &ws[t]) != 0) die("pthread_create failed");
    for (int t = 0; t < opt.threads; t++) pthread_join(ws[t].tid, NULL);
    double elapsed = now_s() - t0;

    long conns = 0, resumed = 0, errs[E_COUNT] = {0};
    const char *first_error = NULL, *proto = "none";
    for (int t = 0; t < opt.threads; t++) {
        conns += ws[t].conns;
        resumed += ws[t].resumed;
        for (int k = 0; k < E_COUNT; k++) errs[k] += ws[t].errors[k];
        if (!first_error && ws[t].first_error[0]) first_error = ws[t].first_error;
        if (ws[t].proto[0]) proto = ws[t].proto;
    }
    long errors = errs[E_CONNECT] + errs[E_TLS] + errs[E_HTTP] + errs[E_TIMEOUT];
    if (first_error) fprintf(stderr, "resume-load: %ld errors, first: %s\n", errors, first_error);
    printf("conns=%ld per_sec=%.1f resumed=%ld ratio=%.4f errors=%ld err_connect=%ld err_tls=%ld "
           "err_http=%ld err_timeout=%ld proto=%s elapsed=%.2f concurrency=%d threads=%d\n",
           conns, elapsed > 0 ? (double)conns / elapsed : 0.0, resumed,
           conns ? (double)resumed / (double)conns : 0.0, errors, errs[E_CONNECT], errs[E_TLS],
           errs[E_HTTP], errs[E_TIMEOUT], proto, elapsed, opt.concurrency, opt.threads);
    fflush(stdout);
    for (int t = 0; t < opt.threads; t++) free(ws[t].slots);
    free(ws);
    SSL_CTX_free(ctx);
    return conns > 0 ? 0 : 1;
}
