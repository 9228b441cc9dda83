/* tlsprobe: TLS/HTTP probe client for tessera's integration tests. It measures session-resumption
 * ratios, close_notify behaviour and received alerts, holds thousands of idle connections and plays
 * clients that vanish mid-exchange. One key=value line goes to stdout, diagnostics to stderr. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

enum { M_RESUME, M_CLOSE, M_HOLD, M_ALERT, M_VANISH, M_GET, M_SOAK, M_SLOW, M_KEYUPDATE, M_COUNT };
#define ALL_MODES ((1u << M_COUNT) - 1)
#define ONLY(m)   (1u << (m))
enum { MECH_TLS13, MECH_TICKET, MECH_ID };
enum { ST_CONNECT, ST_HANDSHAKE, ST_REQUEST, ST_RESPONSE };
/* How a stream ended; negative so that it can share a return value with byte counts. */
enum { END_NONE = 0, END_CLOSE_NOTIFY = -1, END_EOF = -2, END_TIMEOUT = -3, END_ERROR = -4 };

#define MAX_HEADERS     16
#define MAX_KEEPALIVE   1000
#define HOLD_BATCH      200 /* connects in flight at once: well below a listen backlog of 511 */
#define VANISH_READ     16384
#define REQ_MAX         65536
#define MAX_FAIL_STREAK 5 /* resume gives up after this many failed connections in a row */
#define MAX_SPLITS      32
#define HELLO_PAD_MAX   65000
/* --hello-pad's extension: a GREASE codepoint (RFC 8701), which servers must ignore */
#define HELLO_PAD_EXT 0x3a3a

static const char *const mode_names[M_COUNT] = {
    "resume", "close-notify", "hold", "alert", "vanish", "get", "soak", "slow", "keyupdate"};
static const char *const mech_names[] = {"tls13", "tls12-ticket", "tls12-id"};
static const char *const stage_names[] = {"connect", "handshake", "request", "response"};

static const char usage_text[] =
    "usage: tlsprobe MODE [options]\n"
    "modes:\n"
    "  resume --count N [--mech tls13|tls12-ticket|tls12-id] [--sess-in FILE]\n"
    "         [--sess-out FILE] [--min-ratio R]\n"
    "  close-notify [--request-close | --keepalive-then-close | --client-first]\n"
    "         [--no-reply [--linger-ms M]]\n"
    "  hold --count N [--seconds S] [--plain] [--ignore-stdin]\n"
    "  alert [--request]\n"
    "  vanish --stage connect|handshake|request|response [--rst] [--full-hello]\n"
    "  get [--keepalive N] [--pipeline] [--header 'Name: value']...\n"
    "  soak --count N [--procs P] [--seed S]   N clients vanishing at random stages\n"
    "  slow --count N [--interval-ms M] [--seconds S]   slowloris: a header line every M ms\n"
    "  keyupdate [--seconds S] [--data-every N]   TLS 1.3 KeyUpdate(update_requested) flood,\n"
    "         never reading; with --data-every, one header byte after every N of them\n"
    "common options:\n"
    "  --port N (required)   --host ADDR (default 127.0.0.1; ::1 works too)\n"
    "  --servername NAME (default localhost: SNI, Host header, verified name)\n"
    "  --cafile FILE (verify the server; without it nothing is verified)\n"
    "  --cert FILE [--key FILE] (client certificate)   --tls12 | --tls13\n"
    "  --path P (default /)   --timeout-ms N (default 5000; bounds every network wait)\n"
    "  --hrr-servername NAME (force a HelloRetryRequest: key share for ffdhe2048 only; the\n"
    "    second ClientHello names NAME instead of --servername)\n"
    "  --hello-pad N (every ClientHello carries an extension of N bytes, type 0x3a3a)\n"
    "  --hello-split OFF[,OFF...] (the first flight is written in pieces cut at these byte\n"
    "    offsets, --hello-gap-ms apart, default 30)   --max-send-frag N (record size, 512..16384)\n"
    "output: one line of key=value pairs on stdout (hold first prints a line\n"
    "'established=N failed=F'; get and alert report hellos=, the ClientHello sizes)\n"
    "exit 0 ok, 1 failure, 2 usage error\n";

static struct {
    int mode, port, proto, timeout_ms;
    const char *host, *cafile, *servername, *cert, *key, *path, *sess_in, *sess_out;
    const char *hrr_servername;
    long hello_pad, hello_gap_ms, max_send_frag, splits[MAX_SPLITS];
    int nsplits;
    long count, linger_ms, seconds, requests, procs, seed, interval_ms, data_every;
    int mech, stage, rst, full_hello, plain, ignore_stdin, alert_request, pipeline;
    int no_reply, keepalive_close, client_first, has_min_ratio, nheaders;
    double min_ratio;
    const char *headers[MAX_HEADERS];
} opt = {.host = "127.0.0.1",
         .servername = "localhost",
         .path = "/",
         .timeout_ms = 5000,
         .seconds = 30,
         .requests = 1,
         .stage = -1,
         .count = -1,
         .procs = 8,
         .seed = 1,
         .interval_ms = 500,
         .hello_gap_ms = 30};

static struct sockaddr_storage peer;
static socklen_t peer_len;
static SSL_CTX *tls_ctx;  /* one context per run, made in main() for the mode's protocol pin */
static char req[REQ_MAX]; /* the run's request, built once in main() */
static size_t req_len;

/* One sequential TLS connection with a buffer of plaintext not yet consumed. */
struct conn {
    int fd;
    SSL *ssl;
    int end; /* sticky END_* once the stream is over */
    size_t len;
    char buf[16384];
};

struct resp {
    int status, conn_close;
    long long clen, body;
};

/* ---------------------------------------------------------------- utilities */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void vdiag(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
static void vdiag(const char *fmt, va_list ap)
{
    fputs("tlsprobe: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

static void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void diag(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vdiag(fmt, ap);
    va_end(ap);
}

/* Reports the oldest queued OpenSSL error (or errno) and empties the queue. */
static void diag_ssl(const char *what, int err)
{
    unsigned long e = ERR_peek_error();
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    diag("%s: %s", what, e ? buf : err ? strerror(err) : "connection closed");
    ERR_clear_error();
}

static _Noreturn void usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static _Noreturn void usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vdiag(fmt, ap);
    va_end(ap);
    fputs(usage_text, stderr);
    exit(2);
}

static int append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap - *len) return 0;
    *len += (size_t)n;
    return 1;
}

static const char *end_name(int end)
{
    static const char *const names[] = {"none", "close_notify", "eof", "timeout", "error"};
    return names[end < END_ERROR ? -END_ERROR : -end];
}

/* RFC 8446/5246 names. OpenSSL 3.0's SSL_alert_desc_string_long() knows no name for
 * 86, 109 and 116 (certificate_required), so the table is kept here. */
static const char *alert_name(int code)
{
    static const char *const t[121] = {[0] = "close_notify",
                                       [10] = "unexpected_message",
                                       [20] = "bad_record_mac",
                                       [21] = "decryption_failed",
                                       [22] = "record_overflow",
                                       [30] = "decompression_failure",
                                       [40] = "handshake_failure",
                                       [41] = "no_certificate",
                                       [42] = "bad_certificate",
                                       [43] = "unsupported_certificate",
                                       [44] = "certificate_revoked",
                                       [45] = "certificate_expired",
                                       [46] = "certificate_unknown",
                                       [47] = "illegal_parameter",
                                       [48] = "unknown_ca",
                                       [49] = "access_denied",
                                       [50] = "decode_error",
                                       [51] = "decrypt_error",
                                       [60] = "export_restriction",
                                       [70] = "protocol_version",
                                       [71] = "insufficient_security",
                                       [80] = "internal_error",
                                       [86] = "inappropriate_fallback",
                                       [90] = "user_canceled",
                                       [100] = "no_renegotiation",
                                       [109] = "missing_extension",
                                       [110] = "unsupported_extension",
                                       [111] = "certificate_unobtainable",
                                       [112] = "unrecognized_name",
                                       [113] = "bad_certificate_status_response",
                                       [114] = "bad_certificate_hash_value",
                                       [115] = "unknown_psk_identity",
                                       [116] = "certificate_required",
                                       [120] = "no_application_protocol"};
    static char other[24];
    if (code < 0) return "none";
    if (code <= 120 && t[code]) return t[code];
    snprintf(other, sizeof other, "alert_%d", code);
    return other;
}

/* ---------------------------------------------------------------- arguments */

static long num_arg(const char *name, const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        usage("bad value for %s: '%s' (allowed %ld..%ld)", name, s, lo, hi);
    return v;
}

static int pick(const char *name, const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i])) return i;
    usage("bad value for %s: '%s'", name, s);
}

static char **args; /* the parser's cursor into argv */
static int nargs, argi;

static const char *value(void)
{
    if (argi + 1 >= nargs) usage("%s needs a value", args[argi]);
    return args[++argi];
}

static int is_opt(const char *arg, const char *name, unsigned modes)
{
    if (strcmp(arg, name)) return 0;
    if (!(modes & ONLY(opt.mode)))
        usage("%s is not an option of mode %s", name, mode_names[opt.mode]);
    return 1;
}

static void parse_args(int argc, char **argv)
{
    if (argc < 2) usage("missing MODE");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage_text, stdout);
        exit(0);
    }
    opt.mode = pick("MODE", argv[1], mode_names, M_COUNT);
    int request_close = 0;
    for (nargs = argc, args = argv, argi = 2; argi < argc; argi++) {
        const char *a = argv[argi];
        if (is_opt(a, "--host", ALL_MODES))
            opt.host = value();
        else if (is_opt(a, "--port", ALL_MODES))
            opt.port = (int)num_arg(a, value(), 1, 65535);
        else if (is_opt(a, "--cafile", ALL_MODES))
            opt.cafile = value();
        else if (is_opt(a, "--servername", ALL_MODES))
            opt.servername = value();
        else if (is_opt(a, "--hrr-servername", ALL_MODES))
            opt.hrr_servername = value();
        else if (is_opt(a, "--hello-pad", ALL_MODES))
            opt.hello_pad = num_arg(a, value(), 0, HELLO_PAD_MAX);
        else if (is_opt(a, "--hello-gap-ms", ALL_MODES))
            opt.hello_gap_ms = num_arg(a, value(), 0, 60000);
        else if (is_opt(a, "--max-send-frag", ALL_MODES))
            opt.max_send_frag = num_arg(a, value(), 512, 16384);
        else if (is_opt(a, "--hello-split", ONLY(M_GET) | ONLY(M_ALERT))) {
            char *list = strdup(value()), *save = NULL;
            for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (opt.nsplits == MAX_SPLITS)
                    usage("at most %d --hello-split offsets", MAX_SPLITS);
                long v = num_arg(a, t, 1, 1L << 20);
                if (opt.nsplits && v <= opt.splits[opt.nsplits - 1])
                    usage("--hello-split offsets must increase");
                opt.splits[opt.nsplits++] = v;
            }
            free(list);
        } else if (is_opt(a, "--cert", ALL_MODES))
            opt.cert = value();
        else if (is_opt(a, "--key", ALL_MODES))
            opt.key = value();
        else if (is_opt(a, "--tls12", ALL_MODES))
            opt.proto = 12;
        else if (is_opt(a, "--tls13", ALL_MODES))
            opt.proto = 13;
        else if (is_opt(a, "--path", ALL_MODES))
            opt.path = value();
        else if (is_opt(a, "--timeout-ms", ALL_MODES))
            opt.timeout_ms = (int)num_arg(a, value(), 1, 3600000);
        else if (is_opt(a, "--procs", ONLY(M_SOAK)))
            opt.procs = num_arg(a, value(), 1, 256);
        else if (is_opt(a, "--seed", ONLY(M_SOAK)))
            opt.seed = num_arg(a, value(), 0, 1L << 30);
        else if (is_opt(a, "--interval-ms", ONLY(M_SLOW)))
            opt.interval_ms = num_arg(a, value(), 1, 600000);
        else if (is_opt(a, "--count", ONLY(M_RESUME) | ONLY(M_HOLD) | ONLY(M_SOAK) | ONLY(M_SLOW)))
            opt.count = num_arg(a, value(), 1, 1000000);
        else if (is_opt(a, "--mech", ONLY(M_RESUME)))
            opt.mech = pick(a, value(), mech_names, 3);
        else if (is_opt(a, "--sess-in", ONLY(M_RESUME)))
            opt.sess_in = value();
        else if (is_opt(a, "--sess-out", ONLY(M_RESUME)))
            opt.sess_out = value();
        else if (is_opt(a, "--min-ratio", ONLY(M_RESUME))) {
            const char *v = value();
            char *end;
            opt.min_ratio = strtod(v, &end);
            if (end == v || *end || !(opt.min_ratio >= 0.0 && opt.min_ratio <= 1.0))
                usage("bad value for --min-ratio: '%s' (allowed 0..1)", v);
            opt.has_min_ratio = 1;
        } else if (is_opt(a, "--no-reply", ONLY(M_CLOSE)))
            opt.no_reply = 1;
        else if (is_opt(a, "--linger-ms", ONLY(M_CLOSE)))
            opt.linger_ms = num_arg(a, value(), 0, 3600000);
        else if (is_opt(a, "--request-close", ONLY(M_CLOSE)))
            request_close = 1;
        else if (is_opt(a, "--keepalive-then-close", ONLY(M_CLOSE)))
            opt.keepalive_close = 1;
        else if (is_opt(a, "--client-first", ONLY(M_CLOSE)))
            opt.client_first = 1;
        else if (is_opt(a, "--data-every", ONLY(M_KEYUPDATE)))
            opt.data_every = num_arg(a, value(), 1, 1000000);
        else if (is_opt(a, "--seconds", ONLY(M_HOLD) | ONLY(M_SLOW) | ONLY(M_KEYUPDATE)))
            opt.seconds = num_arg(a, value(), 0, 86400);
        else if (is_opt(a, "--plain", ONLY(M_HOLD)))
            opt.plain = 1;
        else if (is_opt(a, "--ignore-stdin", ONLY(M_HOLD)))
            opt.ignore_stdin = 1;
        else if (is_opt(a, "--request", ONLY(M_ALERT)))
            opt.alert_request = 1;
        else if (is_opt(a, "--stage", ONLY(M_VANISH)))
            opt.stage = pick(a, value(), stage_names, 4);
        else if (is_opt(a, "--rst", ONLY(M_VANISH)))
            opt.rst = 1;
        else if (is_opt(a, "--full-hello", ONLY(M_VANISH)))
            opt.full_hello = 1;
        else if (is_opt(a, "--keepalive", ONLY(M_GET)))
            opt.requests = num_arg(a, value(), 1, MAX_KEEPALIVE);
        else if (is_opt(a, "--pipeline", ONLY(M_GET)))
            opt.pipeline = 1;
        else if (is_opt(a, "--header", ONLY(M_GET))) {
            const char *h = value();
            if (opt.nheaders == MAX_HEADERS || strpbrk(h, "\r\n") || !strchr(h, ':'))
                usage("bad or too many --header values (at most %d, 'Name: value')", MAX_HEADERS);
            opt.headers[opt.nheaders++] = h;
        } else
            usage("unknown option '%s'", a);
    }
    if (!opt.port) usage("--port is required");
    if ((opt.mode == M_RESUME || opt.mode == M_HOLD || opt.mode == M_SOAK || opt.mode == M_SLOW) &&
        opt.count < 0)
        usage("--count is required");
    if (opt.mode == M_VANISH && opt.stage < 0) usage("--stage is required");
    if (opt.key && !opt.cert) usage("--key needs --cert");
    if (request_close + opt.keepalive_close + opt.client_first > 1)
        usage("--request-close, --keepalive-then-close and --client-first exclude each other");
    if (opt.client_first && opt.no_reply)
        usage("--client-first sends close_notify, so it cannot be combined with --no-reply");
    if (opt.linger_ms && !opt.no_reply) usage("--linger-ms needs --no-reply");
    if (opt.mode == M_RESUME && opt.proto && opt.proto != (opt.mech == MECH_TLS13 ? 13 : 12))
        usage("--tls12/--tls13 contradicts --mech %s", mech_names[opt.mech]);
    if (!*opt.path || strpbrk(opt.path, "\r\n")) usage("bad --path");
    if (strpbrk(opt.servername, "\r\n \t")) usage("bad --servername");
}

/* ---------------------------------------------------------------- sockets */

static int resolve(void)
{
    struct addrinfo hints = {0}, *res;
    char port[16];
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(port, sizeof port, "%d", opt.port);
    int rc = getaddrinfo(opt.host, port, &hints, &res);
    if (rc) return diag("cannot resolve %s: %s", opt.host, gai_strerror(rc)), -1;
    memcpy(&peer, res->ai_addr, res->ai_addrlen);
    peer_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* 1 ready (or error/hangup pending, for the caller's I/O call to report), 0 timeout, -1 error. */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (n > 0) return 1;
        if (n == 0) return 0;
        if (errno != EINTR) return -1;
    }
}

/* Starts a non-blocking connect; returns the socket or -1 with *err set. */
static int tcp_start(int *err)
{
    int one = 1, fd = socket(peer.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0 && !setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) &&
        (!connect(fd, (struct sockaddr *)&peer, peer_len) || errno == EINPROGRESS))
        return fd;
    *err = errno;
    if (fd >= 0) close(fd);
    return -1;
}

static int tcp_connect(long long deadline)
{
    int err = 0, fd = tcp_start(&err), w = 0;
    socklen_t len = sizeof err;
    if (fd >= 0) {
        w = wait_fd(fd, POLLOUT, deadline);
        if (w > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && !err) return fd;
        close(fd);
    }
    diag("connect to %s port %d: %s", opt.host, opt.port,
         fd >= 0 && w == 0 ? "timed out" : strerror(err ? err : EIO));
    return -1;
}

static int send_all(int fd, const char *p, size_t len, long long deadline)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            diag("send: %s", strerror(errno));
            return 0;
        } else if (wait_fd(fd, POLLOUT, deadline) <= 0) {
            diag("send timed out");
            return 0;
        }
    }
    return 1;
}

/* After the TLS layer is done, waits for the peer's FIN (or RST) on the raw socket.
 * Returns the milliseconds waited, or -1 if it did not come within wait_ms. */
static long long wait_fin(int fd, long long wait_ms)
{
    long long start = now_ms(), deadline = start + wait_ms;
    char tmp[4096];
    for (int k = 0; k < 100000; k++) {
        ssize_t n = recv(fd, tmp, sizeof tmp, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            return now_ms() - start;
        if (n < 0 && wait_fd(fd, POLLIN, deadline) <= 0) return -1;
    }
    return -1;
}

/* Closes like a client that vanished: RST with --rst, else FIN. */
static void abrupt_close(int fd)
{
    if (opt.rst) {
        /* SO_LINGER with a zero timeout makes close() abort the connection with RST. */
        struct linger l = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    } else {
        /* Linux answers close() with RST whenever unread data is queued (TLS 1.3 tickets, say),
         * so drain what has arrived and send FIN first for an honest orderly close. */
        char tmp[4096];
        for (int k = 0; k < 256 && recv(fd, tmp, sizeof tmp, MSG_DONTWAIT) > 0; k++) {
        }
        shutdown(fd, SHUT_WR);
    }
    close(fd);
}

/* ---------------------------------------------------------------- TLS */

/* The sizes of the ClientHellos written (their bodies, as the header announces), for the
 * output's hellos=. */
static char hello_sizes[64] = "none";
static size_t hello_sizes_len;

/* Records each ClientHello written; with --hrr-servername the first ServerHello (the
 * HelloRetryRequest, with the key share forced by make_ssl) switches the SNI the second
 * ClientHello will carry. */
static void probe_msg_cb(int write_p, int version, int content_type, const void *buf, size_t len,
                         SSL *ssl, void *arg)
{
    (void)version, (void)arg;
    const unsigned char *p = buf;
    if (write_p && content_type == SSL3_RT_HANDSHAKE && len >= 4 && p[0] == SSL3_MT_CLIENT_HELLO)
        append(hello_sizes, sizeof hello_sizes, &hello_sizes_len, "%s%u",
               hello_sizes_len ? "," : "", (unsigned)(p[1] << 16 | p[2] << 8 | p[3]));
    if (opt.hrr_servername && !write_p && content_type == SSL3_RT_HANDSHAKE && len > 0 &&
        p[0] == SSL3_MT_SERVER_HELLO && !SSL_get_ex_data(ssl, 0)) {
        SSL_set_ex_data(ssl, 0, (void *)opt.hrr_servername);
        SSL_set_tlsext_host_name(ssl, opt.hrr_servername);
    }
}

/* --hello-pad: the extension's body, N zero bytes, in every ClientHello */
static int pad_add_cb(SSL *ssl, unsigned int type, unsigned int context, const unsigned char **out,
                      size_t *outlen, X509 *x, size_t chainidx, int *al, void *arg)
{
    static const unsigned char zeros[HELLO_PAD_MAX];
    (void)ssl, (void)type, (void)context, (void)x, (void)chainidx, (void)al, (void)arg;
    *out = zeros;
    *outlen = (size_t)opt.hello_pad;
    return 1;
}

static SSL_CTX *make_ctx(int proto, uint64_t options)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    const char *bad = NULL;
    if (!ctx) return diag_ssl("SSL_CTX_new", 0), NULL;
    SSL_CTX_set_min_proto_version(ctx, proto == 13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, proto == 12 ? TLS1_2_VERSION : TLS1_3_VERSION);
    /* SSL_OP_IGNORE_UNEXPECTED_EOF is deliberately left off: with it a bare TCP FIN would be
     * reported exactly like a close_notify, which is what the close-notify mode must tell apart. */
    SSL_CTX_set_options(ctx, options);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS); /* keeps 'hold' small per connection */
    SSL_CTX_set_msg_callback(ctx, probe_msg_cb);
    if (opt.max_send_frag) SSL_CTX_set_max_send_fragment(ctx, opt.max_send_frag);
    if (opt.hello_pad && SSL_CTX_add_custom_ext(ctx, HELLO_PAD_EXT, SSL_EXT_CLIENT_HELLO,
                                                pad_add_cb, NULL, NULL, NULL, NULL) != 1)
        bad = "--hello-pad";
    SSL_CTX_set_verify(ctx, opt.cafile ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (opt.cafile && SSL_CTX_load_verify_locations(ctx, opt.cafile, NULL) != 1)
        bad = opt.cafile;
    else if (opt.cert && (SSL_CTX_use_certificate_chain_file(ctx, opt.cert) != 1 ||
                          SSL_CTX_use_PrivateKey_file(ctx, opt.key ? opt.key : opt.cert,
                                                      SSL_FILETYPE_PEM) != 1 ||
                          SSL_CTX_check_private_key(ctx) != 1))
        bad = "client certificate";
    if (!bad) return ctx;
    diag_ssl(bad, errno);
    SSL_CTX_free(ctx);
    return NULL;
}

static SSL *make_ssl(int fd)
{
    unsigned char addr[16];
    int is_ip = inet_pton(AF_INET, opt.servername, addr) == 1 ||
                inet_pton(AF_INET6, opt.servername, addr) == 1;
    SSL *ssl = SSL_new(tls_ctx);
    /* RFC 6066 forbids IP literals in SNI: an address is only matched against iPAddress SANs. */
    int ok = ssl && (is_ip || !*opt.servername || SSL_set_tlsext_host_name(ssl, opt.servername));
    if (ok && opt.cafile)
        ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), opt.servername)
                   : SSL_set1_host(ssl, opt.servername);
    if (ok && opt.hrr_servername) {
        ok = SSL_set1_groups_list(ssl, "ffdhe2048:P-256"); /* the server offers X25519:P-256 */
    }
    if (ok && fd >= 0)
        ok = SSL_set_fd(ssl, fd); /* socket BIO with BIO_NOCLOSE: we close fd ourselves */
    if (!ok) {
        diag_ssl("SSL setup", 0);
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

/* After a non-blocking SSL call returned ret <= 0: waits for what OpenSSL wants.
 * 1 = retry the call, 0 = timeout, -1 = not a WANT condition (an error or the end). */
static int tls_wait(SSL *ssl, int ret, long long deadline)
{
    int e = SSL_get_error(ssl, ret);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) return -1;
    int w = wait_fd(SSL_get_fd(ssl), e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
    return w > 0 ? 1 : w;
}

static int handshake(SSL *ssl, long long deadline)
{
    for (;;) {
        /* SSL_get_error() consults the thread's error queue, so it must start empty. */
        ERR_clear_error();
        errno = 0;
        int r = SSL_connect(ssl);
        if (r == 1) return 1;
        int err = errno, w = tls_wait(ssl, r, deadline);
        if (w > 0) continue;
        long v = SSL_get_verify_result(ssl);
        if (opt.cafile && v != X509_V_OK)
            diag("certificate verification failed: %s", X509_verify_cert_error_string(v));
        if (w == 0)
            diag("handshake timed out");
        else
            diag_ssl("handshake", err);
        return 0;
    }
}

static int tls_write_all(SSL *ssl, const char *p, size_t len, long long deadline)
{
    while (len > 0) {
        ERR_clear_error();
        errno = 0;
        /* After WANT_*, OpenSSL requires the retry with the same buffer and length: p/len only
         * advance on success (no partial writes without SSL_MODE_ENABLE_PARTIAL_WRITE). */
        int n = SSL_write(ssl, p, len > INT_MAX ? INT_MAX : (int)len);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        int err = errno, w = tls_wait(ssl, n, deadline);
        if (w > 0) continue;
        if (w == 0)
            diag("write timed out");
        else
            diag_ssl("write", err);
        return 0;
    }
    return 1;
}

/* Classifies why SSL_read() returned ret <= 0 with no WANT condition. */
static int end_of(SSL *ssl, int ret, int err)
{
    int e = SSL_get_error(ssl, ret);
    unsigned long q = ERR_peek_error();
    if (e == SSL_ERROR_ZERO_RETURN) return END_CLOSE_NOTIFY; /* the peer's close_notify */
    /* OpenSSL 3 reports a FIN without close_notify thus (1.1.1 gave SYSCALL with errno 0). */
    if (e == SSL_ERROR_SSL && ERR_GET_LIB(q) == ERR_LIB_SSL &&
        ERR_GET_REASON(q) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        ERR_clear_error();
        return END_EOF;
    }
    if (e == SSL_ERROR_SYSCALL && !q && !err) return END_EOF;
    diag_ssl("read", err);
    return END_ERROR;
}

/* Returns > 0 bytes, or an END_* value. */
static int tls_read(SSL *ssl, char *buf, size_t cap, long long deadline)
{
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int n = SSL_read(ssl, buf, cap > INT_MAX ? INT_MAX : (int)cap);
        if (n > 0) return n;
        int err = errno, w = tls_wait(ssl, n, deadline);
        if (w > 0) continue;
        return w == 0 ? END_TIMEOUT : end_of(ssl, n, err);
    }
}

/* One close_notify, never waiting for the peer's; SSL_shutdown is retried only while the
 * write itself blocks (a second call after sending would start waiting for the peer). */
static void send_close_notify(SSL *ssl)
{
    long long deadline = now_ms() + opt.timeout_ms;
    for (;;) {
        ERR_clear_error();
        int r = SSL_shutdown(ssl);
        if (r >= 0 || SSL_get_error(ssl, r) != SSL_ERROR_WANT_WRITE ||
            wait_fd(SSL_get_fd(ssl), POLLOUT, deadline) <= 0)
            break;
    }
    ERR_clear_error();
}

static void peer_subject(SSL *ssl, char *out, size_t cap)
{
    snprintf(out, cap, "none");
    X509 *x = SSL_get1_peer_certificate(ssl);
    BIO *b = x ? BIO_new(BIO_s_mem()) : NULL;
    if (b && X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
        int n = BIO_read(b, out, (int)cap - 1);
        out[n > 0 ? n : 0] = '\0';
        for (char *p = out; *p; p++) /* the output line is split on spaces */
            if (*p == ' ' || *p == '\t') *p = '_';
    }
    BIO_free(b);
    X509_free(x);
}

/* ---------------------------------------------------------------- HTTP over one connection */

static size_t build_request(int keepalive)
{
    char *buf = req;
    size_t len = 0, cap = sizeof req;
    int v6 = strchr(opt.servername, ':') != NULL;
    int ok = append(buf, cap, &len, "GET %s HTTP/1.1\r\nHost: %s%s%s", opt.path, v6 ? "[" : "",
                    opt.servername, v6 ? "]" : "");
    if (ok && opt.port != 443) ok = append(buf, cap, &len, ":%d", opt.port);
    ok = ok && append(buf, cap, &len, "\r\n");
    for (int h = 0; ok && h < opt.nheaders; h++)
        ok = append(buf, cap, &len, "%s\r\n", opt.headers[h]);
    ok = ok && append(buf, cap, &len, "Connection: %s\r\n\r\n", keepalive ? "keep-alive" : "close");
    if (!ok) diag("request too long");
    return ok ? len : 0;
}

static int send_request(SSL *ssl, size_t len)
{
    return tls_write_all(ssl, req, len, now_ms() + opt.timeout_ms);
}

/* --hello-split: the client's first flight (its ClientHello) is made into a memory BIO and
 * written in pieces cut at the given offsets, a pause between them so that the server reads
 * each on its own; then the socket takes over for the rest of the handshake. */
static int split_hello(SSL *ssl, int fd)
{
    BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
    if (!in || !out) {
        BIO_free(in);
        BIO_free(out);
        return diag_ssl("BIO_new", 0), 0;
    }
    SSL_set_bio(ssl, in, out); /* ssl owns both, and frees them at SSL_set_fd below */
    ERR_clear_error();
    int r = SSL_connect(ssl);
    if (r == 1 || SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ)
        return diag_ssl("writing the ClientHello", 0), 0;
    char *p = NULL;
    long n = BIO_get_mem_data(out, &p);
    long long deadline = now_ms() + opt.timeout_ms;
    size_t at = 0, len = n > 0 ? (size_t)n : 0;
    for (int i = 0; i <= opt.nsplits && at < len; i++) {
        size_t to = i < opt.nsplits && (size_t)opt.splits[i] < len ? (size_t)opt.splits[i] : len;
        if (!send_all(fd, p + at, to - at, deadline)) return 0;
        at = to;
        if (at < len) poll(NULL, 0, (int)opt.hello_gap_ms);
    }
    return SSL_set_fd(ssl, fd) == 1;
}

static int open_conn(struct conn *c, SSL_SESSION *sess)
{
    c->ssl = NULL;
    c->end = END_NONE;
    c->len = 0;
    c->fd = tcp_connect(now_ms() + opt.timeout_ms);
    if (c->fd < 0 || !(c->ssl = make_ssl(c->fd))) return 0;
    /* Offering a session is only a wish: the server may still choose a full handshake. */
    if (sess && !SSL_set_session(c->ssl, sess)) diag_ssl("SSL_set_session", 0);
    if (opt.nsplits && !split_hello(c->ssl, c->fd)) return 0;
    return handshake(c->ssl, now_ms() + opt.timeout_ms);
}

static void close_conn(struct conn *c, int notify)
{
    if (c->ssl && notify) send_close_notify(c->ssl);
    SSL_free(c->ssl);
    if (c->fd >= 0) close(c->fd);
    c->ssl = NULL;
    c->fd = -1;
}

/* Reads more plaintext into c->buf; > 0 bytes or the sticky END_* value. Each wait is bounded
 * by --timeout-ms, so a response keeps flowing as long as the server keeps sending. */
static int fill(struct conn *c, size_t max)
{
    if (c->end) return c->end;
    if (max > sizeof c->buf - c->len) max = sizeof c->buf - c->len;
    if (!max) return END_ERROR;
    int n = tls_read(c->ssl, c->buf + c->len, max, now_ms() + opt.timeout_ms);
    if (n > 0)
        c->len += (size_t)n;
    else
        c->end = n;
    return n;
}

/* Reads until the stream ends, discarding data; returns the number of bytes discarded. */
static long long drain(struct conn *c)
{
    long long extra = (long long)c->len;
    int n;
    c->len = 0;
    while ((n = fill(c, SIZE_MAX)) > 0) {
        extra += n;
        c->len = 0;
    }
    return extra;
}

static void consume(struct conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Reads one response, leaving any bytes beyond it buffered. Stops early once limit (>= 0) body
 * bytes were read. Chunked bodies are not supported (a static file server sends lengths).
 * Returns 0 when the response (or the limit) was reached, -1 otherwise. */
static int read_response(struct conn *c, struct resp *r, long long limit)
{
    char *eoh;
    memset(r, 0, sizeof *r);
    r->clen = -1;
    while (!(eoh = memmem(c->buf, c->len, "\r\n\r\n", 4))) {
        if (c->len == sizeof c->buf) return diag("response header too large"), -1;
        int n = fill(c, SIZE_MAX);
        if (n <= 0) return diag("no complete response header (stream ended: %s)", end_name(n)), -1;
    }
    *eoh = '\0';
    if (sscanf(c->buf, "HTTP/%*d.%*d %d", &r->status) != 1) return diag("bad status line"), -1;
    for (char *line = strstr(c->buf, "\r\n"); line;) {
        line += 2;
        char *next = strstr(line, "\r\n");
        if (next) *next = '\0';
        if (!strncasecmp(line, "content-length:", 15))
            r->clen = strtoll(line + 15, NULL, 10);
        else if (!strncasecmp(line, "connection:", 11) && strcasestr(line + 11, "close"))
            r->conn_close = 1;
        else if (!strncasecmp(line, "transfer-encoding:", 18) && strcasestr(line + 18, "chunked"))
            return diag("chunked responses are not supported"), -1;
        line = next;
    }
    consume(c, (size_t)(eoh + 4 - c->buf));
    if (r->status / 100 == 1 || r->status == 204 || r->status == 304) r->clen = 0;
    for (;;) {
        size_t take = c->len;
        if (r->clen >= 0 && (long long)take > r->clen - r->body) take = (size_t)(r->clen - r->body);
        r->body += (long long)take;
        consume(c, take);
        if (r->clen >= 0 && r->body == r->clen) return 0;
        if (limit >= 0 && r->body >= limit) return 0;
        int n = fill(c, limit >= 0 ? (size_t)(limit - r->body) : sizeof c->buf);
        if (n > 0) continue;
        if (r->clen < 0 && (n == END_CLOSE_NOTIFY || n == END_EOF)) {
            r->conn_close = 1; /* the body was delimited by the end of the stream */
            return 0;
        }
        diag("response body cut short after %lld bytes (%s)", r->body, end_name(n));
        return -1;
    }
}

/* ---------------------------------------------------------------- mode: resume */

static int run_resume(void)
{
    SSL_SESSION *sess = NULL;
    if (opt.sess_in) {
        FILE *f = fopen(opt.sess_in, "r");
        if (f) sess = PEM_read_SSL_SESSION(f, NULL, NULL, NULL);
        if (f) fclose(f);
        if (!sess) return diag("cannot load a PEM session from %s", opt.sess_in), 1;
    }
    long n = 0, ok = 0, resumed = 0, tickets = 0, ids = 0, notified = 0, bad = 0, streak = 0;
    int first_resumed = 0, status = 0, fail = 0;
    char proto[32] = "none";
    struct conn c;
    for (; n < opt.count && streak < MAX_FAIL_STREAK; n++) {
        struct resp r;
        SSL_SESSION *snap = NULL, *got = NULL;
        int good = open_conn(&c, sess);
        if (good && SSL_session_reused(c.ssl)) {
            first_resumed |= n == 0;
            resumed += n > 0 || opt.sess_in;
        }
        good = good && send_request(c.ssl, req_len) && read_response(&c, &r, -1) == 0;
        if (good) {
            status = r.status;
            /* OpenSSL marks the session unresumable when the stream then ends without close_notify
             * (a fatal "unexpected EOF"), although TLS >= 1.1 allows resuming it. A copy taken
             * while the connection was healthy keeps the ratio about resumption alone. */
            snap = SSL_SESSION_dup(SSL_get_session(c.ssl));
            if (drain(&c)) diag("connection %ld: unexpected bytes after the response", n + 1);
            if (c.end == END_CLOSE_NOTIFY)
                notified++;
            else
                diag("connection %ld ended with %s, not close_notify", n + 1, end_name(c.end));
            /* TLS 1.3 tickets are post-handshake messages that may come at any time, so the
             * session is taken only after reading to the end of the stream. */
            if (c.end == END_CLOSE_NOTIFY || c.end == END_TIMEOUT)
                got = SSL_get1_session(c.ssl);
            else
                got = snap, snap = NULL;
            snprintf(proto, sizeof proto, "%s", SSL_get_version(c.ssl));
        }
        /* Our close_notify also keeps SSL_free() from marking the session unresumable. */
        close_conn(&c, good);
        SSL_SESSION_free(snap);
        if (got) {
            unsigned int idlen = 0;
            SSL_SESSION_get_id(got, &idlen);
            tickets += SSL_SESSION_has_ticket(got);
            ids += idlen > 0;
            if (opt.mech == MECH_ID && (idlen == 0 || SSL_SESSION_has_ticket(got))) {
                diag("connection %ld: session has %s", n + 1, idlen ? "a ticket" : "no session id");
                bad++;
            }
            SSL_SESSION_free(sess);
            sess = got;
        }
        if (good)
            ok++, streak = 0;
        else
            streak++;
    }
    if (streak >= MAX_FAIL_STREAK && n < opt.count)
        diag("giving up after %d failed connections in a row", MAX_FAIL_STREAK);
    long denom = opt.sess_in ? n : n - 1;
    double ratio = denom > 0 ? (double)resumed / (double)denom : 0.0;
    if (opt.sess_out) {
        FILE *f = fopen(opt.sess_out, "w");
        fail = !f || !sess || !PEM_write_SSL_SESSION(f, sess);
        if (f && fclose(f)) fail = 1;
        if (fail) diag("cannot write the session to %s", opt.sess_out);
    }
    printf("mode=resume mech=%s connections=%ld ok=%ld resumed=%ld ratio=%.4f first_resumed=%d "
           "ticket_sessions=%ld id_sessions=%ld close_notify=%ld status=%d protocol=%s\n",
           mech_names[opt.mech], n, ok, resumed, ratio, first_resumed, tickets, ids, notified,
           status, proto);
    SSL_SESSION_free(sess);
    if (opt.has_min_ratio && ratio < opt.min_ratio)
        diag("ratio %.4f is below %.4f", ratio, opt.min_ratio);
    return fail || ok < opt.count || bad || (opt.has_min_ratio && ratio < opt.min_ratio);
}

/* ---------------------------------------------------------------- mode: close-notify */

static int run_close_notify(void)
{
    struct conn c = {.fd = -1};
    struct resp r = {0};
    long long t0, end_ms, fin_ms = -1;
    int replied = 0, fin = 0, good = 0;
    if (open_conn(&c, NULL)) good = send_request(c.ssl, req_len) && read_response(&c, &r, -1) == 0;
    t0 = now_ms(); /* the response is complete: from here on we watch how the stream ends */
    if (good && opt.client_first) {
        send_close_notify(c.ssl);
        /* Reading on after our close_notify is legal (TLS half-close); anything but the
         * server's close_notify is discarded. */
        drain(&c);
        replied = c.end == END_CLOSE_NOTIFY;
        fin = replied && wait_fin(c.fd, opt.timeout_ms) >= 0;
    } else if (c.ssl && drain(&c)) {
        diag("unexpected bytes after the response");
    }
    end_ms = now_ms() - t0;
    if (opt.no_reply && c.fd >= 0) {
        long long t1 = now_ms(), left;
        fin_ms = wait_fin(c.fd, opt.linger_ms);
        if ((left = t1 + opt.linger_ms - now_ms()) > 0) /* hold the socket for the full linger */
            poll(NULL, 0, left > INT_MAX ? INT_MAX : (int)left);
    }
    int end = c.ssl ? c.end : END_ERROR;
    close_conn(&c, !opt.no_reply && !opt.client_first);
    printf("mode=close-notify status=%d body_bytes=%lld end=%s end_after_ms=%lld", r.status, r.body,
           end_name(end), end_ms);
    if (opt.client_first) printf(" server_replied=%d server_fin=%d", replied, fin);
    if (opt.no_reply) printf(" server_fin_ms=%lld", fin_ms);
    printf("\n");
    return !good;
}

/* ---------------------------------------------------------------- mode: alert */

static struct {
    int got, fatal, sent;
} alerts = {-1, 0, -1};

/* The info callback is the only place OpenSSL exposes which alert the peer sent:
 * ret carries the level in its high byte and the description in its low byte. */
static void alert_cb(const SSL *ssl, int where, int ret)
{
    (void)ssl;
    if (!(where & SSL_CB_ALERT)) return;
    int desc = ret & 0xff, fatal = (ret >> 8) == SSL3_AL_FATAL;
    if (where & SSL_CB_READ) {
        if (alerts.got < 0 || (fatal && !alerts.fatal)) /* a fatal alert beats close_notify */
            alerts.got = desc, alerts.fatal = fatal;
    } else if (alerts.sent < 0) {
        alerts.sent = desc;
    }
}

static int run_alert(void)
{
    struct conn c = {.fd = -1};
    int status = 0, hs = open_conn(&c, NULL), connected = c.ssl != NULL;
    char proto[32] = "none";
    if (hs && (opt.alert_request || SSL_version(c.ssl) == TLS1_3_VERSION)) {
        /* In TLS 1.3 the client finishes its handshake before the server has judged the client
         * certificate, so a rejection only arrives as an alert when we next read. */
        struct resp r;
        if (send_request(c.ssl, req_len) && read_response(&c, &r, -1) == 0) status = r.status;
        drain(&c);
    }
    if (c.ssl) snprintf(proto, sizeof proto, "%s", SSL_get_version(c.ssl));
    close_conn(&c, hs);
    printf("mode=alert handshake=%s alert=%s alert_code=%d sent_alert=%s status=%d protocol=%s "
           "hellos=%s\n",
           hs ? "ok" : "failed", alert_name(alerts.got), alerts.got, alert_name(alerts.sent),
           status, proto, hello_sizes);
    return !connected;
}

/* ---------------------------------------------------------------- mode: vanish */

/* Runs the client state machine into memory BIOs so that the ClientHello can be cut short:
 * only its first half (all of it with --full-hello) reaches the wire. */
static int partial_hello(int fd)
{
    SSL *ssl = make_ssl(-1);
    BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
    int ok = 0;
    if (ssl && in && out) {
        SSL_set_bio(ssl, in, out); /* ssl owns both BIOs from here on */
        SSL_connect(ssl);          /* stops with WANT_READ once the ClientHello is written */
        ERR_clear_error();
        char *p = NULL;
        long n = BIO_get_mem_data(out, &p);
        ok = n > 5 &&
             send_all(fd, p, (size_t)(opt.full_hello ? n : n / 2), now_ms() + opt.timeout_ms);
        in = out = NULL;
    }
    BIO_free(in);
    BIO_free(out);
    SSL_free(ssl);
    return ok;
}

/* One client that vanishes at opt.stage; returns 1 if it got that far. *body gets the
 * response bytes read (stage response). */
static int vanish_once(long long *body)
{
    struct conn c = {.fd = -1};
    struct resp r = {0};
    int done = 0;
    if (opt.stage <= ST_HANDSHAKE)
        done = (c.fd = tcp_connect(now_ms() + opt.timeout_ms)) >= 0 &&
               (opt.stage == ST_CONNECT || partial_hello(c.fd));
    else if (!open_conn(&c, NULL))
        done = 0;
    else if (opt.stage == ST_REQUEST)
        done = send_request(c.ssl, strcspn(req, "\r") / 2); /* half of "GET <path> HTTP/1.1" */
    else
        done = send_request(c.ssl, req_len) && read_response(&c, &r, VANISH_READ) == 0;
    if (c.fd >= 0) abrupt_close(c.fd);
    c.fd = -1;
    close_conn(&c, 0); /* frees the SSL without a close_notify: the client just vanishes */
    *body = r.body;
    return done;
}

static int run_vanish(void)
{
    long long body = 0;
    int done = vanish_once(&body);
    printf("mode=vanish stage=%s done=%d body_bytes=%lld\n", stage_names[opt.stage], done, body);
    return !done;
}

/* ---------------------------------------------------------------- mode: soak */

/* --procs processes share --count clients; each client picks a stage (connect, half or whole
 * ClientHello, half a request, part of a response) and FIN or RST at random. */
static int run_soak(void)
{
    pid_t pids[256];
    long per = opt.count / opt.procs, done_total = 0;
    int pipes[256][2];
    for (long p = 0; p < opt.procs; p++) {
        if (pipe(pipes[p]) < 0) return diag("pipe: %s", strerror(errno)), 1;
        pids[p] = fork();
        if (pids[p] < 0) return diag("fork: %s", strerror(errno)), 1;
        if (pids[p] == 0) {
            close(pipes[p][0]);
            unsigned seed = (unsigned)(opt.seed * 7919 + p);
            long n = per + (p < opt.count % opt.procs), ok = 0;
            for (long i = 0; i < n; i++) {
                int r = rand_r(&seed);
                opt.stage = r % 5 == 4 ? ST_HANDSHAKE : r % 4; /* handshake twice as often */
                opt.full_hello = (r >> 4) & 1;
                opt.rst = (r >> 5) & 1;
                long long body;
                ok += vanish_once(&body);
            }
            char line[32];
            int len = snprintf(line, sizeof line, "%ld\n", ok);
            ssize_t w = write(pipes[p][1], line, (size_t)len);
            (void)w;
            _exit(0);
        }
        close(pipes[p][1]);
    }
    for (long p = 0; p < opt.procs; p++) {
        char line[32] = "";
        ssize_t n = read(pipes[p][0], line, sizeof line - 1);
        if (n > 0) line[n] = '\0', done_total += atol(line);
        close(pipes[p][0]);
        waitpid(pids[p], NULL, 0);
    }
    printf("mode=soak count=%ld done=%ld\n", opt.count, done_total);
    return 0;
}

/* ---------------------------------------------------------------- mode: slow */

/* Slowloris: N clients start a request and send one more header line every --interval-ms,
 * never finishing it. Reports when the server cut them, relative to each request's start. */
static int run_slow(void)
{
    struct sconn {
        struct conn c;
        long long start, closed_at;
        long lines;
    } *cs = calloc((size_t)opt.count, sizeof(*cs));
    if (!cs) return 1;
    static const char head[] = "GET / HTTP/1.1\r\nHost: slow\r\n";
    long established = 0, open_now = 0, closed = 0;
    for (long i = 0; i < opt.count; i++) {
        cs[i].c.fd = -1;
        if (!open_conn(&cs[i].c, NULL) ||
            !tls_write_all(cs[i].c.ssl, head, sizeof head - 1, now_ms() + opt.timeout_ms)) {
            close_conn(&cs[i].c, 0);
            continue;
        }
        cs[i].start = now_ms();
        established++;
        open_now++;
    }
    long long deadline = now_ms() + opt.seconds * 1000, next = now_ms() + opt.interval_ms;
    long long first = -1, last = -1;
    while (open_now > 0 && now_ms() < deadline) {
        long long wait = next - now_ms();
        if (wait > 0) poll(NULL, 0, (int)wait);
        next += opt.interval_ms;
        for (long i = 0; i < opt.count; i++) {
            struct sconn *s = &cs[i];
            if (!s->c.ssl || s->closed_at) continue;
            char line[64];
            int n = snprintf(line, sizeof line, "X-Slow-%ld: %ld\r\n", s->lines, s->lines);
            s->lines++;
            /* a write to a connection the server closed fails (EPIPE/RST) or a read ends */
            int gone = !tls_write_all(s->c.ssl, line, (size_t)n, now_ms() + opt.timeout_ms);
            if (!gone) {
                /* readable is not closed: a TLS 1.3 server sends session tickets */
                char sink[4096];
                int r;
                ERR_clear_error();
                while ((r = SSL_read(s->c.ssl, sink, sizeof sink)) > 0) continue;
                int e = SSL_get_error(s->c.ssl, r);
                gone = e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE;
            }
            if (gone) {
                s->closed_at = now_ms();
                long long after = s->closed_at - s->start;
                if (first < 0 || after < first) first = after;
                if (after > last) last = after;
                closed++;
                open_now--;
            }
        }
    }
    long lines_max = 0;
    for (long i = 0; i < opt.count; i++) {
        if (cs[i].lines > lines_max) lines_max = cs[i].lines;
        close_conn(&cs[i].c, 0);
    }
    free(cs);
    printf("mode=slow count=%ld established=%ld closed_by_server=%ld first_close_ms=%lld "
           "last_close_ms=%lld lines_sent_max=%ld\n",
           opt.count, established, closed, first, last, lines_max);
    return 0;
}

/* ---------------------------------------------------------------- mode: get */

static int run_get(void)
{
    static char statuses[8 * MAX_KEEPALIVE + 8];
    size_t slen = 0;
    struct conn c = {.fd = -1};
    struct resp r = {0};
    long done = 0;
    long long body = 0;
    int still_open = 0;
    char subject[512] = "none", proto[32] = "none";
    statuses[0] = '\0';
    if (open_conn(&c, NULL)) {
        int ok = 1;
        peer_subject(c.ssl, subject, sizeof subject);
        snprintf(proto, sizeof proto, "%s", SSL_get_version(c.ssl));
        for (long k = 0; opt.pipeline && ok && k < opt.requests; k++)
            ok = send_request(c.ssl, req_len);
        while (ok && done < opt.requests) {
            if (!opt.pipeline && !send_request(c.ssl, req_len)) break;
            if (read_response(&c, &r, -1) != 0) break;
            done++;
            body += r.body;
            append(statuses, sizeof statuses, &slen, "%s%d", done > 1 ? "," : "", r.status);
            if (r.conn_close && done < opt.requests) {
                diag("the server closed the connection after response %ld", done);
                break;
            }
        }
        still_open = done == opt.requests && !r.conn_close && c.end == END_NONE;
    }
    close_conn(&c, 1);
    printf("mode=get requests=%ld responses=%ld statuses=%s reused_connection=%d body_bytes=%lld "
           "peer_cert_subject=%s protocol=%s hellos=%s\n",
           opt.requests, done, slen ? statuses : "none", still_open, body, subject, proto,
           hello_sizes);
    return done != opt.requests;
}

/* ---------------------------------------------------------------- mode: hold */

enum { H_IDLE, H_CONNECTING, H_HANDSHAKE, H_UP, H_DONE };
#define TAG_SIGNAL UINT64_MAX
#define TAG_STDIN  (UINT64_MAX - 1)

struct hconn {
    SSL *ssl;
    long long deadline;
    int fd, state;
};

static struct {
    struct hconn *c;
    int ep, sfd, stop;
    long pending, established, failed, closed, notified;
    char first_error[200];
} H;

static void h_watch(struct hconn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.u64 = (uint64_t)(c - H.c)};
    epoll_ctl(H.ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void h_drop(struct hconn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(H.ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    SSL_free(c->ssl);
    c->ssl = NULL;
    c->fd = -1;
    c->state = H_DONE;
}

static void h_fail(struct hconn *c, const char *why)
{
    if (!H.first_error[0]) snprintf(H.first_error, sizeof H.first_error, "%s", why);
    H.failed++;
    H.pending--;
    h_drop(c);
}

/* Reads whatever an idle connection receives: TLS 1.3 tickets, or the server closing it. */
static void h_idle_read(struct hconn *c)
{
    char buf[4096];
    for (int k = 0; k < 64; k++) {
        int gone;
        if (!c->ssl) {
            ssize_t n = read(c->fd, buf, sizeof buf);
            if (n > 0) continue;
            gone = n == 0 || (errno != EAGAIN && errno != EINTR);
        } else {
            ERR_clear_error();
            int n = SSL_read(c->ssl, buf, sizeof buf);
            if (n > 0) continue;
            int e = SSL_get_error(c->ssl, n);
            gone = e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE;
            if (e == SSL_ERROR_ZERO_RETURN) {
                H.notified++;
                SSL_shutdown(c->ssl); /* answer the close_notify; one non-blocking attempt */
            }
            ERR_clear_error();
        }
        if (gone) {
            H.closed++;
            h_drop(c);
        }
        return;
    }
}

static void h_up(struct hconn *c)
{
    c->state = H_UP;
    H.pending--;
    H.established++;
    h_watch(c, EPOLLIN | EPOLLRDHUP);
    if (c->ssl) h_idle_read(c); /* OpenSSL may already hold records that epoll will not report */
}

static void h_handshake(struct hconn *c)
{
    ERR_clear_error();
    int r = SSL_connect(c->ssl);
    if (r == 1) {
        h_up(c);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        h_watch(c, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
        return;
    }
    char why[200] = "handshake failed";
    unsigned long q = ERR_peek_error();
    if (q) ERR_error_string_n(q, why, sizeof why);
    ERR_clear_error();
    h_fail(c, why);
}

static void h_start(long i)
{
    struct hconn *c = &H.c[i];
    int err = 0;
    c->deadline = now_ms() + opt.timeout_ms;
    c->state = H_CONNECTING;
    H.pending++;
    if ((c->fd = tcp_start(&err)) < 0) {
        h_fail(c, strerror(err));
        return;
    }
    struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = (uint64_t)i};
    if (epoll_ctl(H.ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) h_fail(c, strerror(errno));
}

static void h_event(uint64_t tag)
{
    char buf[256];
    if (tag == TAG_SIGNAL) {
        struct signalfd_siginfo si;
        if (read(H.sfd, &si, sizeof si) > 0) H.stop = 1;
        return;
    }
    if (tag == TAG_STDIN) {
        ssize_t n = read(0, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            H.stop = 1;
            epoll_ctl(H.ep, EPOLL_CTL_DEL, 0, NULL);
        }
        return;
    }
    struct hconn *c = &H.c[tag];
    if (c->state == H_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
        if (err)
            h_fail(c, strerror(err));
        else if (opt.plain)
            h_up(c);
        else if (!(c->ssl = make_ssl(c->fd)))
            h_fail(c, "SSL setup failed");
        else {
            c->state = H_HANDSHAKE;
            h_handshake(c);
        }
    } else if (c->state == H_HANDSHAKE) {
        h_handshake(c);
    } else if (c->state == H_UP) {
        h_idle_read(c);
    }
}

static void h_poll(int timeout)
{
    struct epoll_event evs[256];
    int n = epoll_wait(H.ep, evs, 256, timeout);
    for (int k = 0; k < n; k++) h_event(evs[k].data.u64);
}

static void h_expire(void)
{
    long long now = now_ms();
    for (long i = 0; i < opt.count; i++) {
        struct hconn *c = &H.c[i];
        if ((c->state == H_CONNECTING || c->state == H_HANDSHAKE) && c->deadline <= now)
            h_fail(c, c->state == H_CONNECTING ? "connect timed out" : "handshake timed out");
    }
}

static int run_hold(void)
{
    struct stat st;
    struct rlimit rl;
    sigset_t sigs;
    /* Decide about stdin before opening anything: if fd 0 is closed, a socket could get it. */
    int watch_stdin =
        !opt.ignore_stdin && fstat(0, &st) == 0 && (S_ISFIFO(st.st_mode) || isatty(0));
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)opt.count + 16 > rl.rlim_cur)
            diag("warning: RLIMIT_NOFILE %lu is too small for %ld connections",
                 (unsigned long)rl.rlim_cur, opt.count);
    }
    H.c = calloc((size_t)opt.count, sizeof *H.c);
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigprocmask(SIG_BLOCK, &sigs, NULL); /* delivered through the signalfd instead */
    H.ep = epoll_create1(EPOLL_CLOEXEC);
    H.sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    if (!H.c || H.ep < 0 || H.sfd < 0) {
        diag("setup failed: %s", strerror(errno));
        free(H.c);
        return 1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_SIGNAL};
    epoll_ctl(H.ep, EPOLL_CTL_ADD, H.sfd, &ev);
    ev.data.u64 = TAG_STDIN;
    if (watch_stdin && epoll_ctl(H.ep, EPOLL_CTL_ADD, 0, &ev) < 0)
        diag("cannot watch stdin: %s", strerror(errno));
    for (long i = 0; i < opt.count; i++) H.c[i].fd = -1;

    long next = 0;
    long long last_scan = now_ms();
    while (!H.stop && (next < opt.count || H.pending > 0)) {
        while (H.pending < HOLD_BATCH && next < opt.count) h_start(next++);
        if (H.pending > 0) h_poll(50);
        if (now_ms() - last_scan >= 50) {
            h_expire();
            last_scan = now_ms();
        }
    }
    if (H.failed) diag("%ld connections failed, first: %s", H.failed, H.first_error);
    printf("established=%ld failed=%ld\n", H.established, H.failed);
    fflush(stdout);

    /* Idle until time is up, a signal, stdin EOF, or the server has closed every connection. */
    long long end = now_ms() + opt.seconds * 1000;
    while (!H.stop && H.established - H.closed > 0) {
        long long left = end - now_ms();
        if (left <= 0) break;
        h_poll(left > 1000 ? 1000 : (int)left);
    }
    for (long i = 0; i < opt.count; i++) {
        struct hconn *c = &H.c[i];
        if (c->ssl && c->state == H_UP) {
            ERR_clear_error();
            SSL_shutdown(c->ssl); /* one non-blocking close_notify, never waited for */
        }
        if (c->fd >= 0 || c->ssl) h_drop(c);
    }
    ERR_clear_error();
    printf("mode=hold count=%ld established=%ld failed=%ld closed_by_server=%ld still_open=%ld "
           "close_notify=%ld\n",
           opt.count, H.established, H.failed, H.closed, H.established - H.closed, H.notified);
    close(H.sfd);
    close(H.ep);
    free(H.c);
    return 0;
}

/* ---------------------------------------------------------------- keyupdate */

/* Sends KeyUpdate(update_requested) as fast as the socket takes them and never reads, so the
 * server's replies pile up in our receive buffer. Ends when the server closes the connection
 * (a write fails) or after --seconds. */
static int run_keyupdate(void)
{
    struct conn c;
    if (!open_conn(&c, NULL)) return close_conn(&c, 0), 1;
    if (SSL_version(c.ssl) != TLS1_3_VERSION) {
        diag("keyupdate needs TLS 1.3");
        close_conn(&c, 0);
        return 1;
    }
    static const char head[] = "GET / HTTP/1.1\r\nHost: localhost\r\nX-Pad: ";
    long long start = now_ms(), deadline = start + opt.seconds * 1000;
    long sent = 0, data = 0;
    const char *end = "timeout";
    while (now_ms() < deadline) {
        ERR_clear_error();
        int r = SSL_key_update(c.ssl, SSL_KEY_UPDATE_REQUESTED) ? SSL_do_handshake(c.ssl) : -1;
        if (r == 1) sent++;
        if (r == 1 && opt.data_every && sent % opt.data_every == 0) {
            /* application data resets the server's count of KeyUpdates in a row */
            const char *p = data < (long)sizeof head - 1 ? head + data : "a";
            r = tls_write_all(c.ssl, p, 1, deadline) ? 1 : -1;
            data++;
        }
        if (r == 1) continue;
        int e = r == -1 ? SSL_ERROR_SSL : SSL_get_error(c.ssl, r);
        if (e == SSL_ERROR_WANT_WRITE && wait_fd(c.fd, POLLOUT, deadline) > 0) continue;
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) break;
        end = "closed"; /* EPIPE / ECONNRESET: the server closed the connection */
        break;
    }
    ERR_clear_error();
    printf("mode=keyupdate sent=%ld data_bytes=%ld end=%s elapsed_ms=%lld\n", sent, data, end,
           now_ms() - start);
    close_conn(&c, 0);
    return 0;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN); /* writes to a closed peer must fail with EPIPE, not kill us */
    int rc, resume = opt.mode == M_RESUME;
    int proto = !resume ? opt.proto : opt.mech == MECH_TLS13 ? 13 : 12;
    int keep = opt.mode == M_GET || opt.mode == M_VANISH || opt.mode == M_SOAK ||
               opt.keepalive_close || opt.client_first;
    if (resolve() < 0 || !(req_len = build_request(keep)) ||
        !(tls_ctx = make_ctx(proto, resume && opt.mech == MECH_ID ? SSL_OP_NO_TICKET : 0)))
        return 1;
    SSL_CTX_set_info_callback(tls_ctx, alert_cb);
    switch (opt.mode) {
    case M_RESUME: rc = run_resume(); break;
    case M_CLOSE: rc = run_close_notify(); break;
    case M_HOLD: rc = run_hold(); break;
    case M_ALERT: rc = run_alert(); break;
    case M_VANISH: rc = run_vanish(); break;
    case M_SOAK: rc = run_soak(); break;
    case M_SLOW: rc = run_slow(); break;
    case M_KEYUPDATE: rc = run_keyupdate(); break;
    default: rc = run_get(); break;
    }
    fflush(stdout);
    SSL_CTX_free(tls_ctx);
    return rc;
}
