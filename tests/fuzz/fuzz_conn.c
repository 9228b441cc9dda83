/* libFuzzer target: one connection's whole life in src/conn.c (reads, parsing, buffer
 * compaction between pipelined requests, 414/431 on a full buffer, responses, the fill_body /
 * write cycle, shutdown, timers) over a memory transport whose reads and writes the fuzzer
 * splits, against a real worker, configuration and document root. Checks what the client
 * would see: every response well-formed, one per request, and nothing left behind. */
#include "config.h"
#include "conn.h"
#include "gen.h"
#include "h1.h"
#include "log.h"
#include "worker.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Input: flags, the stream length (LE16; 0xffff = all the rest), the stream the client sends,
 * then control bytes: each read and write the server makes takes the next one as its size
 * (0: would block; for a write, 253: the client stops reading for good, 254: it resets);
 * once they run out, every read and write takes all it can. */
enum {
    F_CONFIG = 1,         /* configuration B: small buffers, no file cache, 3 requests, no linger */
    F_END = 7 << 1,       /* after the stream: FIN, reset, error, idle (timers), drain (stop) */
    F_PEER_OPEN = 1 << 4, /* the socket lingering reads from still has its peer */
    F_IPV6 = 1 << 5,      /* the client is ::1 (not allowed to see /status) */
    F_SHRINK = 1 << 6,    /* big.bin shrinks once the first response bytes are out */
};
enum end_mode { END_FIN, END_RESET, END_ERROR, END_IDLE, END_DRAIN };

#define MAX_IN_BYTES (32 * 1024)
#define MAX_OUTPUT   (2 * 1024 * 1024) /* then the client "resets": writes fail */
#define MAX_TURNS    200000
#define MAX_REQS     4096
#define BIG_SIZE     150001 /* several 64 KiB fill_body rounds, an odd tail */
#define BIG_SHRUNK   70000

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void cleanup(void);
static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    cleanup(); /* abort() skips atexit: remove the temporary site now */
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz_conn: invariant broken: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

static unsigned char big_byte(uint64_t i)
{
    return (unsigned char)(i * 7 + i / 251);
}

/* ---- the memory transport ---- */

struct mem {
    const uint8_t *in;
    size_t in_len, in_off;
    const uint8_t *ctl;
    size_t ctl_len, ctl_off;
    enum ts_io end; /* what a read returns once the stream is consumed */
    uint8_t *out;
    size_t out_len;
    bool cut;         /* the client's view may end inside a response */
    bool write_stuck; /* every write would block from now on */
};

/* The next control byte as a size: 0 would block, 1..127 bytes, then steps of `unit`. */
static size_t budget(struct mem *m, size_t unit)
{
    if (m->ctl_off == m->ctl_len) return SIZE_MAX;
    uint8_t b = m->ctl[m->ctl_off++];
    if (b == 255) return SIZE_MAX;
    return b < 128 ? b : (size_t)(b - 127) * unit;
}

static enum ts_io mem_read(void *ctx, void *buf, size_t len, size_t *got)
{
    struct mem *m = ctx;
    *got = 0;
    if (len == 0) die("read into a full buffer");
    if (m->in_off == m->in_len) return m->end;
    size_t n = budget(m, 128);
    if (n == 0) return TS_IO_WANT_READ;
    if (n > len) n = len;
    if (n > m->in_len - m->in_off) n = m->in_len - m->in_off;
    memcpy(buf, m->in + m->in_off, n);
    m->in_off += n;
    *got = n;
    return TS_IO_OK;
}

static enum ts_io mem_write(void *ctx, const void *buf, size_t len, size_t *put)
{
    struct mem *m = ctx;
    *put = 0;
    if (len == 0) die("write of nothing (a send that can never finish)");
    if (m->write_stuck) return TS_IO_WANT_WRITE;
    bool reset = m->out_len == MAX_OUTPUT;
    if (!reset && m->ctl_off < m->ctl_len && m->ctl[m->ctl_off] >= 253) {
        reset = m->ctl[m->ctl_off++] == 254;
        m->write_stuck = !reset;
        m->cut = true;
        if (m->write_stuck) return TS_IO_WANT_WRITE;
    }
    if (reset) {
        m->cut = true;
        return TS_IO_EOF;
    }
    size_t n = budget(m, 1024);
    if (n == 0) return TS_IO_WANT_WRITE;
    if (n > len) n = len;
    if (n > MAX_OUTPUT - m->out_len) n = MAX_OUTPUT - m->out_len;
    memcpy(m->out + m->out_len, buf, n);
    m->out_len += n;
    *put = n;
    return TS_IO_OK;
}

static const struct ts_conn_io mem_io = {mem_read, mem_write};

/* ---- set-up: a document root, two configurations, a worker for each ---- */

static char tmpdir[] = "/tmp/fuzz_conn.XXXXXX";
static struct ts_gen gens[2]; /* built by hand: no TLS on the memory transport */
static struct ts_server srvs[2];
static struct ts_worker workers[2];
static uint8_t *outbuf;
static unsigned char *big;

static void put_file(const char *rel, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd) < 0)
        die("cannot write %s", path);
}

static void put_dir(const char *rel)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
    if (mkdir(path, 0755) < 0) die("cannot create %s", path);
}

static void put_text(const char *rel, const char *text)
{
    put_file(rel, text, strlen(text));
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void cleanup(void)
{
    nftw(tmpdir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *const config_fmt[2] = {
    "{\"listen\":[\"127.0.0.1:8443\"],\"root\":\"%s/www\","
    "\"tls\":{\"certificate\":\"%s/pem\",\"key\":\"%s/pem\",\"client_auth\":\"optional\","
    "\"client_ca\":\"%s/pem\"},"
    "\"locations\":[{\"path\":\"/dir/\",\"autoindex\":true},"
    "{\"path\":\"/private/\",\"require_client_cert\":true},"
    "{\"path\":\"/sub/\",\"cache_control\":\"max-age=60\"}],"
    "\"status\":{\"enabled\":true,\"allow\":[\"127.0.0.1\"]},\"hsts\":\"max-age=100\","
    "\"precompressed\":true,\"error_pages\":{\"404\":\"/errors/404.html\"},"
    "\"limits\":{\"max_header_bytes\":2048,\"max_uri_bytes\":4096},"
    "\"file_cache\":{\"entries\":8,\"valid_ms\":1000},\"timeouts\":{\"shutdown_s\":1},"
    /* a named site: a Host naming it on the default site's connection is answered 421, and
     * a body after such an early answer must never be parsed as a request */
    "\"sites\":[{\"server_names\":[\"b.test\"],\"root\":\"%s/www/sub\","
    "\"certificates\":[{\"certificate\":\"%s/pem\",\"key\":\"%s/pem\"}]}],"
    "\"log\":{\"access\":\"/dev/null\",\"error\":\"-\",\"level\":\"error\"}}",
    "{\"listen\":[\"127.0.0.1:8443\"],\"root\":\"%s/www\","
    "\"tls\":{\"certificate\":\"%s/pem\",\"key\":\"%s/pem\",\"client_auth\":\"optional_no_ca\","
    "\"client_ca\":\"%s/pem\",\"client_cert_detail\":\"reason\"},"
    "\"locations\":[{\"path\":\"/private/\",\"require_client_cert\":true}],"
    "\"precompressed\":false,"
    "\"limits\":{\"max_header_bytes\":512,\"max_uri_bytes\":100,"
    "\"max_requests_per_connection\":3},"
    "\"file_cache\":{\"entries\":0},\"timeouts\":{\"shutdown_s\":0,\"keepalive_s\":0}}",
};

static char big_path[512];

static void load_config(int i)
{
    char json[4096], path[512], err[1024];
    snprintf(json, sizeof(json), config_fmt[i], tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir,
             tmpdir);
    snprintf(path, sizeof(path), "%s/config%d.json", tmpdir, i);
    put_text(path + strlen(tmpdir) + 1, json);
    struct ts_gen *g = &gens[i];
    if (ts_config_load(&g->cfg, path, NULL, err, sizeof(err)) < 0) die("config %d: %s", i, err);
    srvs[i].cfg = &g->cfg;
    srvs[i].gen = g;
    srvs[i].workers = &workers[i];
    srvs[i].nworkers = 1;
    /* one reference held here for good: connections never free it */
    atomic_init(&g->refs, 1);
    g->number = 1;
    g->nworkers = 2; /* counters are indexed by worker id: this one's is i */
    g->rootfds = malloc(g->cfg.nsites * sizeof(int));
    if (!g->rootfds) die("malloc");
    ts_gen_site_stats_new(g);
    for (size_t s = 0; s < g->cfg.nsites; s++) {
        g->rootfds[s] = open(g->cfg.sites[s].root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (g->rootfds[s] < 0) die("cannot open %s", g->cfg.sites[s].root);
    }
    if (ts_worker_init(&workers[i], &srvs[i], i) < 0) die("worker %d", i);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (!mkdtemp(tmpdir)) die("mkdtemp");
    atexit(cleanup);
    put_text("pem", "not used: the memory transport has no TLS\n");
    put_dir("www");
    put_text("www/index.html", "<!DOCTYPE html><title>fuzz</title><p>home</p>\n");
    put_text("www/hello.txt", "hello, world\n");
    put_text("www/hello.txt.gz", "\x1f\x8b pretend this is gzip\n");
    put_text("www/empty.txt", "");
    put_dir("www/dir");
    put_text("www/dir/a.txt", "a\n");
    put_text("www/dir/b&<c>.html", "<p>b</p>\n");
    put_dir("www/sub");
    put_text("www/sub/index.html", "<p>sub</p>\n");
    put_dir("www/private");
    put_text("www/private/secret.txt", "secret\n");
    put_dir("www/errors");
    put_text("www/errors/404.html", "<h1>{{status}} {{title}}</h1><p>{{message}}</p>\n");
    big = malloc(BIG_SIZE);
    if (!big) die("malloc");
    for (uint64_t i = 0; i < BIG_SIZE; i++) big[i] = big_byte(i);
    put_file("www/big.bin", big, BIG_SIZE);
    snprintf(big_path, sizeof(big_path), "%s/www/big.bin", tmpdir);
    outbuf = malloc(MAX_OUTPUT);
    if (!outbuf) die("malloc");
    load_config(0);
    load_config(1);
    char err[1024];
    if (ts_log_open(&gens[0].cfg, err, sizeof(err)) < 0) die("%s", err);
    return 0;
}

/* ---- what the server should answer: the stream parsed in one piece by the same parser ---- */

struct expect {
    int error;     /* the status a parse error or a full buffer must give, else 0 */
    bool head;     /* a HEAD request: no body follows the headers */
    bool keep;     /* the connection may carry another request after this one */
    uint8_t minor; /* HTTP/1.minor */
};

/* Fills ex with the requests the server must answer, in order, until one that ends the
 * connection or one the stream does not complete. */
static size_t model(const uint8_t *in, size_t len, const struct ts_config *cfg, struct expect *ex)
{
    size_t cap = (size_t)cfg->limits.max_header_bytes, start = 0, n = 0;
    int limit = cfg->limits.max_requests_per_connection;
    while (n < MAX_REQS && start < len) {
        struct ts_h1 h1;
        struct ts_request r;
        ts_h1_begin(&h1, &r);
        size_t avail = len - start < cap ? len - start : cap, used = 0;
        enum ts_h1_parse res = ts_h1_parse(&h1, (const char *)in + start, avail, &used,
                                           (size_t)cfg->limits.max_uri_bytes);
        struct expect *e = &ex[n];
        memset(e, 0, sizeof(*e));
        /* every answer to HEAD is headers only, errors found while parsing included */
        e->head = r.method == HTTP_HEAD;
        if (res == TS_H1_NEED_MORE) {
            if (avail < cap) break; /* the stream ends inside this request */
            ts_h1_overflow(&h1);
            e->error = r.error;
            return n + 1;
        }
        n++;
        if (res == TS_H1_ERROR) {
            e->error = r.error;
            return n;
        }
        e->minor = r.http_minor;
        e->keep = ts_h1_keep_alive(&h1) && !r.has_body && (limit == 0 || (int)n < limit);
        if (!e->keep) return n;
        start += used;
    }
    return n;
}

/* ---- checking what the client received ---- */

static const char *find(const char *p, const char *end, const char *s)
{
    size_t sl = strlen(s);
    for (; p + sl <= end; p++)
        if (memcmp(p, s, sl) == 0) return p;
    return NULL;
}

/* The value of a header in a header block (NULL if absent); dies if it appears twice. */
static const char *header(const char *h, const char *end, const char *name, size_t *vlen)
{
    const char *found = NULL;
    size_t nl = strlen(name);
    for (const char *line = h; line < end;) {
        const char *eol = find(line, end, "\r\n");
        if (!eol) break;
        if ((size_t)(eol - line) > nl + 1 && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            if (found) die("header %s twice", name);
            found = line + nl + 1;
            while (*found == ' ') found++;
            *vlen = (size_t)(eol - found);
        }
        line = eol + 2;
    }
    return found;
}

static uint64_t number(const char *p, size_t len, const char *what)
{
    if (len == 0 || len > 19) die("%s: bad number", what);
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') die("%s: bad number \"%.*s\"", what, (int)len, p);
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    return v;
}

/* A full body of big.bin or a single range of it must hold the file's bytes. */
static void check_big(const char *h, const char *hend, const char *body, uint64_t len, int status)
{
    size_t vl;
    if (header(h, hend, "Content-Encoding", &vl)) return;
    uint64_t first = 0;
    if (status == 206) {
        const char *cr = header(h, hend, "Content-Range", &vl);
        char want[32];
        snprintf(want, sizeof(want), "/%d", BIG_SIZE);
        if (!cr || vl < 8 || strncmp(cr, "bytes ", 6) != 0 || !find(cr, cr + vl, want)) return;
        const char *dash = memchr(cr, '-', vl);
        if (!dash) die("Content-Range without '-'");
        first = number(cr + 6, (size_t)(dash - cr - 6), "Content-Range");
    } else if (status != 200 || len != BIG_SIZE) {
        return;
    }
    for (uint64_t i = 0; i < len; i++)
        if ((unsigned char)body[i] != big_byte(first + i))
            die("big.bin byte %llu of the body is wrong", (unsigned long long)(first + i));
}

/* Walks the responses; returns how many arrived whole. */
static size_t check_output(const struct mem *m, const struct expect *ex, size_t nex, bool *closed)
{
    const char *p = (const char *)m->out, *end = p + m->out_len;
    size_t n = 0;
    *closed = false;
    while (p < end) {
        const char *hend = find(p, end, "\r\n\r\n");
        if (!hend) {
            if (!m->cut) die("response %zu: header block cut short", n);
            return n;
        }
        hend += 2; /* the last header line's CRLF belongs to the block */
        if (*closed) die("response %zu after one that said Connection: close", n);
        if (n >= nex) die("response %zu without a request for it (%zu requests)", n, nex);
        if (hend - p < 13 || memcmp(p, "HTTP/1.1 ", 9) != 0 || p[12] != ' ')
            die("response %zu: bad status line \"%.20s\"", n, p);
        int status = (int)number(p + 9, 3, "status");
        if (status < 200 || status > 599) die("response %zu: status %d", n, status);
        const char *h = find(p, hend, "\r\n") + 2;
        for (const char *line = h; line < hend;) { /* every header line is "Name: value" */
            const char *eol = find(line, hend, "\r\n");
            const char *colon = memchr(line, ':', (size_t)(eol - line));
            if (!colon || colon == line) die("response %zu: bad header line", n);
            for (const char *c = line; c < eol; c++)
                if ((unsigned char)*c < 0x20 && *c != '\t') die("response %zu: control byte", n);
            line = eol + 2;
        }
        size_t vl;
        if (!header(h, hend, "Date", &vl)) die("response %zu: no Date", n);
        const char *conn = header(h, hend, "Connection", &vl);
        bool close = conn && vl == 5 && strncasecmp(conn, "close", 5) == 0;
        const struct expect *e = &ex[n];
        /* A request with two faults may meet either first: llhttp reports a piece of the
         * target as it ends a read, so a split one can be too long (414) before the parse
         * in one piece reaches a byte it refuses (400). */
        if (e->error && status != e->error && !(e->error == 400 && status == 414))
            die("response %zu: status %d, the request's parse says %d", n, status, e->error);
        if (!close && !e->keep) die("response %zu: keeps the connection the request ends", n);
        if (e->keep && !close && e->minor == 0 && !conn)
            die("response %zu: HTTP/1.0 keep-alive not confirmed", n);
        const char *cl = header(h, hend, "Content-Length", &vl);
        uint64_t len = cl ? number(cl, vl, "Content-Length") : 0;
        if (!cl && status != 204 && status != 304) die("response %zu: no Content-Length", n);
        if (e->head || status == 204 || status == 304) len = 0;
        const char *body = hend + 2;
        if ((uint64_t)(end - body) < len) {
            if (!m->cut) die("response %zu: body cut short", n);
            return n;
        }
        check_big(h, hend, body, len, status);
        p = body + len;
        *closed = close;
        n++;
    }
    return n;
}

/* ---- driving the connection ---- */

/* Fires the earliest timer, as the worker's loop does when time passes; false if none. */
static bool fire_timer(struct ts_worker *w)
{
    struct ts_timer_list *first = NULL;
    for (int k = 0; k < TS_TIMER_N; k++)
        if (w->timers[k].head &&
            (!first || w->timers[k].head->expires_ms < first->head->expires_ms))
            first = &w->timers[k];
    if (!first) return false;
    struct ts_timer *t = first->head;
    if (t->expires_ms > w->now_ms) w->now_ms = t->expires_ms;
    first->head = t->next;
    if (first->head)
        first->head->prev = NULL;
    else
        first->tail = NULL;
    t->prev = t->next = NULL;
    ts_conn_on_timeout(t);
    return true;
}

static void check_idle_worker(struct ts_worker *w)
{
    if (w->conns || w->nconns) die("connection still listed after it ended");
    for (int k = 0; k < TS_TIMER_N; k++)
        if (w->timers[k].head || w->timers[k].tail) die("timer %d still armed", k);
    struct ts_stats *s = &w->stats;
    if (ts_stat_get(&s->active) || ts_stat_get(&s->idle) || ts_stat_get(&s->in_flight) ||
        ts_stat_get(&s->handshaking))
        die("gauges not back to zero: active %llu idle %llu in_flight %llu",
            (unsigned long long)ts_stat_get(&s->active), (unsigned long long)ts_stat_get(&s->idle),
            (unsigned long long)ts_stat_get(&s->in_flight));
    if (atomic_load(&w->srv->open_conns) != 0) die("open_conns not back to zero");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3 || size > MAX_IN_BYTES) return 0;
    uint8_t flags = data[0];
    size_t slen = (size_t)data[1] | (size_t)data[2] << 8;
    data += 3;
    size -= 3;
    if (slen > size) slen = size;
    int ci = flags & F_CONFIG;
    struct ts_worker *w = &workers[ci];
    enum end_mode mode = (enum end_mode)((flags & F_END) >> 1);
    if (mode > END_DRAIN) mode = END_FIN;
    static const enum ts_io ends[] = {TS_IO_CLOSE_NOTIFY, TS_IO_EOF, TS_IO_ERROR, TS_IO_WANT_READ,
                                      TS_IO_WANT_READ};
    /* the stream in a block of its own size, so ASan sees any read past it */
    uint8_t *in = malloc(slen ? slen : 1);
    if (!in) return 0;
    memcpy(in, data, slen);
    struct mem m = {.in = in,
                    .in_len = slen,
                    .ctl = data + slen,
                    .ctl_len = size - slen,
                    .end = ends[mode],
                    .out = outbuf};

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        die("socketpair");
    if (!(flags & F_PEER_OPEN)) close(sv[1]);
    struct ts_handoff h = {.fd = sv[0], .gen = ts_gen_ref(&gens[ci])};
    if (flags & F_IPV6) {
        h.addr.in6.sin6_family = AF_INET6;
        h.addr.in6.sin6_addr = in6addr_loopback;
    } else {
        h.addr.in4.sin_family = AF_INET;
        h.addr.in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    struct ts_stats before = {0};
    memcpy(&before, &w->stats, sizeof(before));
    atomic_fetch_add(&srvs[ci].open_conns, 1); /* as the acceptor counts it */
    ts_conn_accept_transport(w, &h, &mem_io, &m);

    bool drained = false, shrunk = false;
    for (unsigned turn = 0; w->conns; turn++) {
        if (turn == MAX_TURNS) die("connection still open after %u turns", turn);
        if ((flags & F_SHRINK) && !shrunk && m.out_len > 0) {
            /* a file changing under a response in flight: fill_body must not send what the
             * length it promised does not cover, and the connection must end */
            shrunk = m.cut = true;
            if (truncate(big_path, BIG_SHRUNK) < 0) die("truncate");
        }
        size_t progress = m.in_off + m.ctl_off + m.out_len;
        ts_conn_on_event(w->conns, EPOLLIN | EPOLLOUT);
        if (!w->conns || m.in_off + m.ctl_off + m.out_len != progress) continue;
        /* nothing moved: the connection waits for what only time (or a stop) brings */
        if (mode == END_DRAIN && !drained) {
            drained = true;
            atomic_store(&w->stopping, 1);
            ts_conn_drain(w->conns);
            continue;
        }
        if (!fire_timer(w)) die("connection waits with no timer armed");
    }
    atomic_store(&w->stopping, 0);
    if (shrunk) put_file("www/big.bin", big, BIG_SIZE);
    if (flags & F_PEER_OPEN) close(sv[1]);
    check_idle_worker(w);

    struct expect *ex = malloc(MAX_REQS * sizeof(*ex));
    if (!ex) die("malloc");
    size_t nex = model(in, slen, &gens[ci].cfg, ex);
    bool closed;
    if (getenv("FUZZ_CONN_DUMP")) { /* to see what a seed does: the client's view */
        fwrite(m.out, 1, m.out_len, stderr);
        fprintf(stderr, "\n-- %zu requests expected, %zu bytes read, %zu written\n", nex, m.in_off,
                m.out_len);
    }
    size_t nresp = check_output(&m, ex, nex, &closed);
    /* every request was answered, unless a response closed the connection or the client
     * stopped reading (the output cap) */
    if (!m.cut && !closed && nresp != nex) die("%zu responses to %zu requests", nresp, nex);
    uint64_t begun = ts_stat_get(&w->stats.requests) - ts_stat_get(&before.requests);
    if (begun != nresp && !(m.cut && begun == nresp + 1))
        die("%llu responses begun, %zu arrived", (unsigned long long)begun, nresp);
    if (ts_stat_get(&w->stats.bytes_sent) - ts_stat_get(&before.bytes_sent) != m.out_len)
        die("bytes_sent differs from what the client got");
    if (ts_stat_get(&w->stats.bytes_received) - ts_stat_get(&before.bytes_received) != m.in_off)
        die("bytes_received differs from what the client sent");
    free(ex);
    free(in);
    return 0;
}
