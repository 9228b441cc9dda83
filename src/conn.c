/* The connection state machine. Each step tries its I/O first and only then waits: epoll is
 * edge-triggered, so a connection waits for an edge only after OpenSSL said WANT_READ/WRITE.
 * Steps never free the connection; they return STEP_CLOSE and run() closes it. */
#include "conn.h"
#include "config.h"
#include "fcache.h"
#include "gen.h"
#include "h1.h"
#include "h2.h"
#include "handler.h"
#include "log.h"
#include "proxy.h"
#include "response.h"
#include "tls.h"
#include "worker.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* The write buffer: the header block and the first body bytes leave in one TLS record (at
 * most 16 KiB of plaintext; SSL_write in partial-write mode returns after each record), and
 * a bulk body is read from the file 64 KiB per pread(2). Measured against 16 KiB: about 7%
 * more 100 KiB responses per second, no change for 1 KiB ones. */
#define OUT_CAP              (64 * 1024)
#define SHUTDOWN_DISCARD_MAX (1 << 20)
/* Bytes a connection may read and write in one turn of its worker's loop before it yields to
 * the others (see ts_conn_run_ready): about 0.2 ms of AES-GCM, 16 records of a large file. */
#define TURN_BYTES (256 * 1024)

/* SEND_CLOSE covers the last response's records and our close_notify until they are all in
 * the socket (timeouts.send_s, re-armed on progress); AWAIT_CLOSE is the bounded wait for the
 * client's close_notify that follows (timeouts.shutdown_s). */
enum state {
    ST_HANDSHAKE,
    ST_READ_REQUEST,
    ST_SEND_RESPONSE,
    ST_SEND_CLOSE,
    ST_AWAIT_CLOSE,
    ST_LINGER,
    ST_H2,       /* after ALPN "h2": the HTTP/2 session reads and writes until both are done */
    ST_H2_CLOSE, /* a connection error: the session's GOAWAY is written, then SEND_CLOSE */
    ST_PROXY     /* a PROXY protocol listener: its header comes before the ClientHello */
};
enum step { STEP_AGAIN, STEP_WAIT, STEP_CLOSE };
enum close_kind { CLOSE_CLEAN, CLOSE_PEER_EOF, CLOSE_TIMEOUT, CLOSE_ERROR };

/* How an HTTP/2 client ended its side while the server's output waited for the socket. */
enum peer_done { PEER_OPEN, PEER_CLOSE_NOTIFY, PEER_FIN };
enum gauge { G_NONE, G_HANDSHAKING, G_IDLE };

/* Read side of a request: parse state, the exchange (request, response, context) and raw
 * bytes, taken from the worker's pool when a request starts and returned when the connection
 * goes idle. */
struct inblock {
    struct ts_h1 h1;
    struct ts_req req;
    size_t len;    /* bytes in data */
    size_t parsed; /* bytes of data fed to the parser */
    size_t cap;
    char data[];
};

struct outblock {
    size_t len, off;
    char data[OUT_CAP];
};

struct ts_conn {
    struct ts_timer timer;      /* first: the worker's timer lists point here */
    struct ts_timer side_timer; /* TS_TIMER_RELEASE while idle, TS_TIMER_GOAWAY (HTTP/2) */
    struct ts_conn *prev, *next;
    struct ts_conn *ready_prev, *ready_next; /* on the worker's ready list */
    struct ts_worker *w;
    struct ts_gen *gen; /* the configuration it was accepted under (a reference) */
    struct ts_tls_conn tls;
    struct ts_cert_info cert; /* client certificate outcome, after the handshake */
    int site;                 /* the site SNI selected (cfg->sites index), 0 until then */
    int fd;
    uint8_t state, gauge, close_kind;
    bool plain;        /* an http_redirect connection: no TLS */
    bool rdhup;        /* the peer shut its side: reads go on until they see it (EOF) */
    bool out_blocked;  /* HTTP/2: a write found the socket full this turn (EPOLLOUT will come) */
    uint8_t peer_done; /* HTTP/2: enum peer_done, the client ended its side while output waited */
    bool proxy_heard;  /* in ST_PROXY: a byte of the header arrived */
    const struct ts_listen_proxy *proxy; /* in ST_PROXY: who may send the header */
    /* a test transport instead of the socket (plain, not redirected) */
    const struct ts_conn_io *io;
    void *io_ctx;
    bool responding;     /* a request is in flight (counted in requests.in_flight) */
    bool ready;          /* on the worker's ready list: runs again this loop turn */
    bool yielded;        /* this turn's budget is spent: run again after the others */
    uint32_t turn_bytes; /* bytes read and written in this turn */
    uint32_t nrequests;
    uint64_t sent;   /* bytes of the response in flight written so far */
    size_t head_len; /* bytes of it that are the header block */
    uint64_t shutdown_discarded;
    uint64_t req_start_us; /* CLOCK_MONOTONIC at the request's first byte, for duration_us */
    struct inblock *in;
    struct outblock *out;
    struct ts_h2 *h2;    /* the HTTP/2 session, in ST_H2 */
    uint8_t peer_family; /* AF_INET or AF_INET6 */
    unsigned char peer_addr[16];
    char remote[INET6_ADDRSTRLEN];
};

static void run(struct ts_conn *c);

size_t ts_conn_inbuf_size(int max_header_bytes)
{
    return sizeof(struct inblock) + (size_t)max_header_bytes;
}

size_t ts_conn_outbuf_size(void)
{
    return sizeof(struct outblock);
}

struct ts_conn *ts_conn_next(const struct ts_conn *c)
{
    return c->next;
}

static const struct ts_config *cfg_of(const struct ts_conn *c)
{
    return &c->gen->cfg;
}

static struct ts_site_stats *site_stats(const struct ts_conn *c, int site)
{
    return ts_gen_site_stats(c->gen, c->w->id, site);
}

static void set_gauge(struct ts_conn *c, enum gauge g)
{
    if (c->gauge == g) return;
    if (c->gauge == G_HANDSHAKING) TS_DEC(c->w, handshaking);
    if (c->gauge == G_IDLE) TS_DEC(c->w, idle);
    if (g == G_HANDSHAKING) TS_INC(c->w, handshaking);
    if (g == G_IDLE) TS_INC(c->w, idle);
    c->gauge = (uint8_t)g;
}

static enum step close_as(struct ts_conn *c, enum close_kind kind)
{
    c->close_kind = (uint8_t)kind;
    return STEP_CLOSE;
}

static void release_in(struct ts_conn *c)
{
    if (!c->in) return;
    ts_pool_put(&c->w->inbufs, c->in);
    c->in = NULL;
}

static void release_out(struct ts_conn *c)
{
    if (!c->out) return;
    ts_pool_put(&c->w->outbufs, c->out);
    c->out = NULL;
}

/* ---- the ready list: connections that yielded with work left ----
 * epoll is edge-triggered, so a connection that stopped before its I/O said WANT_READ/WRITE
 * will get no new event for what is already there; the worker runs it again from this list
 * after the events of the turn, and does not sleep in epoll_wait while the list holds one. */

static void ready_add(struct ts_conn *c)
{
    struct ts_worker *w = c->w;
    if (c->ready) return;
    c->ready = true;
    c->ready_next = NULL;
    c->ready_prev = w->ready_tail;
    if (w->ready_tail)
        w->ready_tail->ready_next = c;
    else
        w->ready_head = c;
    w->ready_tail = c;
    w->nready++;
}

static void ready_remove(struct ts_conn *c)
{
    struct ts_worker *w = c->w;
    if (!c->ready) return;
    if (c->ready_prev)
        c->ready_prev->ready_next = c->ready_next;
    else
        w->ready_head = c->ready_next;
    if (c->ready_next)
        c->ready_next->ready_prev = c->ready_prev;
    else
        w->ready_tail = c->ready_prev;
    c->ready_prev = c->ready_next = NULL;
    c->ready = false;
    w->nready--;
}

void ts_conn_run_ready(struct ts_worker *w)
{
    /* only those queued before this call: one that yields again waits for the next turn */
    for (unsigned n = w->nready; n > 0 && w->ready_head; n--) {
        run(w->ready_head); /* run() takes it off the list */
        ts_worker_touch_clock(w);
    }
}

/* Ends a step whose turn's budget is spent: the connection runs again from the ready list. */
static enum step yield(struct ts_conn *c)
{
    c->yielded = true;
    return STEP_WAIT;
}

/* Counts bytes moved in this turn; true when the connection should yield. */
static bool spend(struct ts_conn *c, size_t n)
{
    c->turn_bytes += (uint32_t)n;
    return c->turn_bytes >= TURN_BYTES;
}

/* The worker's clock is coarse (milliseconds, refreshed per turn): a request's duration is
 * measured with the precise one, read twice per request (vDSO, no system call). */
static uint64_t monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void log_request(struct ts_conn *c, struct ts_req *req)
{
    if (!ts_log_access_enabled()) return;
    const struct ts_request *rq = &req->rq;
    uint64_t body = c->sent > c->head_len ? c->sent - c->head_len : 0;
    struct ts_access_entry e = {
        .remote = c->remote,
        /* an unknown issuer's subject is what the client claims, not who it is: kept apart */
        .user = c->cert.verified ? c->cert.subject : NULL,
        .user_unverified = c->cert.identity && !c->cert.verified ? c->cert.subject : NULL,
        .time = c->w->now_s,
        .method = rq->target.p ? llhttp_method_name(rq->method) : "-",
        .target = rq->target.p ? rq->target.p : "-",
        .target_len = rq->target.p ? rq->target.len : 1,
        /* a request refused before its version was read has none: "-", not a guess */
        .protocol = rq->protocol[0] ? rq->protocol : NULL,
        .status = req->resp.status,
        .bytes = body,
        .referer = rq->hdr[TS_HDR_REFERER].p,
        .referer_len = rq->hdr[TS_HDR_REFERER].len,
        .user_agent = rq->hdr[TS_HDR_USER_AGENT].p,
        .user_agent_len = rq->hdr[TS_HDR_USER_AGENT].len,
        .duration_us = monotonic_us() - c->req_start_us,
        /* with one site there is nothing to tell apart: the line stays as it was */
        .site = cfg_of(c)->nsites > 1 ? cfg_of(c)->sites[c->site].name : NULL,
        /* still responding at close: cut short (a file shrunk in place, a peer gone) */
        .truncated = req->resp.body_left > 0 || (c->out && c->out->off < c->out->len),
    };
    ts_log_access(&c->w->access_log, &e);
}

/* Ends the request in flight: counters, access log, body resources. */
static void end_request(struct ts_conn *c)
{
    if (!c->responding) return;
    struct ts_req *req = &c->in->req;
    c->responding = false;
    TS_DEC(c->w, in_flight);
    int status = req->resp.status;
    if (status >= 100 && status < 600) TS_INC(c->w, status_class[status / 100]);
    ts_stat_add(&site_stats(c, c->site)->bytes, c->sent > c->head_len ? c->sent - c->head_len : 0);
    log_request(c, req);
    ts_response_release(req);
}

static const char *const close_names[] = {"clean", "peer_eof", "timeout", "error"};

static void conn_close(struct ts_conn *c)
{
    struct ts_worker *w = c->w;
    ts_log_debug("%s: worker %d: closed (%s) after %u requests", c->remote, w->id,
                 close_names[c->close_kind], c->nrequests);
    end_request(c);
    switch ((enum close_kind)c->close_kind) {
    case CLOSE_CLEAN: TS_INC(w, closed_clean); break;
    case CLOSE_PEER_EOF: TS_INC(w, closed_peer_eof); break;
    case CLOSE_TIMEOUT: TS_INC(w, closed_timeout); break;
    case CLOSE_ERROR: TS_INC(w, closed_error); break;
    }
    if (c->tls.flooded) {
        TS_INC(w, closed_flood[c->tls.flood_kind]);
        ts_log_info("%s: closed: more than %d %s messages without application data", c->remote,
                    TS_TLS_POST_HANDSHAKE_MAX, ts_stats_flood_names[c->tls.flood_kind]);
    }
    if (c->h2) {
        int flood = ts_h2_flood(c->h2);
        if (flood != TS_H2_FLOOD_N) {
            TS_INC(w, h2_flood[flood]);
            ts_log_info("%s: HTTP/2 connection ended: %s flood", c->remote,
                        ts_stats_h2_flood_names[flood]);
        }
        ts_h2_free(c->h2);
        c->h2 = NULL;
    }
    ready_remove(c);
    set_gauge(c, G_NONE);
    TS_DEC(w, active);
    ts_worker_timer_clear(w, &c->timer);
    ts_worker_timer_clear(w, &c->side_timer);
    release_in(c);
    release_out(c);
    ts_tls_cert_release(&c->cert);
    ts_tls_conn_free(&c->tls, c->close_kind != CLOSE_ERROR);
    close(c->fd);
    atomic_fetch_sub_explicit(&w->srv->open_conns, 1, memory_order_relaxed);
    ts_gen_unref(c->gen);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    w->nconns--;
    free(c);
}

static void run_or_close(struct ts_conn *c, enum step s)
{
    if (s == STEP_CLOSE)
        conn_close(c);
    else
        run(c);
}

/* ---- I/O: TLS, or plain TCP for http_redirect listeners ---- */

static enum ts_io plain_result(ssize_t n)
{
    if (n > 0) return TS_IO_OK;
    if (n == 0) return TS_IO_CLOSE_NOTIFY; /* without TLS, FIN is the orderly end */
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return TS_IO_WANT_READ;
    if (errno == ECONNRESET || errno == EPIPE) return TS_IO_EOF;
    return TS_IO_ERROR;
}

static enum ts_io conn_read(struct ts_conn *c, void *buf, size_t len, size_t *got)
{
    if (!c->plain) return ts_tls_read(&c->tls, buf, len, got);
    if (c->io) return c->io->read(c->io_ctx, buf, len, got);
    ssize_t n = recv(c->fd, buf, len, 0);
    *got = n > 0 ? (size_t)n : 0;
    return plain_result(n);
}

static enum ts_io conn_write(struct ts_conn *c, const void *buf, size_t len, size_t *put)
{
    if (!c->plain) return ts_tls_write(&c->tls, buf, len, put);
    if (c->io) return c->io->write(c->io_ctx, buf, len, put);
    ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
    *put = n > 0 ? (size_t)n : 0;
    enum ts_io r = n == 0 ? TS_IO_WANT_WRITE : plain_result(n);
    return r == TS_IO_WANT_READ ? TS_IO_WANT_WRITE : r;
}

/* ---- accept and handshake ---- */

/* The client's address as everything after this sees it (logs, status.allow): an IPv4-mapped
 * IPv6 address is kept as IPv4, so one allow-list entry covers both forms. */
static void set_peer(struct ts_conn *c, int family, const unsigned char *addr)
{
    static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (family == AF_INET6 && memcmp(addr, v4mapped, 12) != 0) {
        c->peer_family = AF_INET6;
        memcpy(c->peer_addr, addr, 16);
    } else {
        c->peer_family = AF_INET;
        memcpy(c->peer_addr, family == AF_INET6 ? addr + 12 : addr, 4);
    }
    inet_ntop(c->peer_family, c->peer_addr, c->remote, sizeof(c->remote));
}

static void accept_conn(struct ts_worker *w, const struct ts_handoff *h,
                        const struct ts_conn_io *io, void *io_ctx)
{
    struct ts_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(h->fd);
        atomic_fetch_sub_explicit(&w->srv->open_conns, 1, memory_order_relaxed);
        ts_gen_unref(h->gen);
        return;
    }
    c->w = w;
    c->gen = h->gen;
    c->fd = h->fd;
    c->timer.kind = TS_TIMER_NONE;
    c->side_timer.kind = TS_TIMER_NONE;
    if (h->addr.sa.sa_family == AF_INET6)
        set_peer(c, AF_INET6, h->addr.in6.sin6_addr.s6_addr);
    else
        set_peer(c, AF_INET, (const unsigned char *)&h->addr.in4.sin_addr);

    c->plain = h->plain || io != NULL;
    c->io = io;
    c->io_ctx = io_ctx;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    if ((!c->plain && ts_tls_conn_init(&c->tls, w->srv->ssl_ctx, c->gen->tls, c->fd) < 0) ||
        epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        ts_log_error("cannot set up connection from %s: %s", c->remote, strerror(errno));
        ts_tls_conn_free(&c->tls, false);
        close(c->fd);
        atomic_fetch_sub_explicit(&w->srv->open_conns, 1, memory_order_relaxed);
        ts_gen_unref(c->gen);
        free(c);
        return;
    }
    c->next = w->conns;
    if (w->conns) w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    TS_INC(w, accepted);
    TS_INC(w, active);
    if (c->plain) {
        c->state = ST_READ_REQUEST;
        set_gauge(c, G_IDLE);
        ts_worker_timer_set(w, &c->timer, TS_TIMER_REQUEST);
    } else {
        /* the header and the handshake after it share one handshake_s */
        c->proxy = h->proxy;
        c->state = h->proxy ? ST_PROXY : ST_HANDSHAKE;
        set_gauge(c, G_HANDSHAKING);
        ts_worker_timer_set(w, &c->timer, TS_TIMER_HANDSHAKE);
    }
    run(c);
}

void ts_conn_accept(struct ts_worker *w, const struct ts_handoff *h)
{
    accept_conn(w, h, NULL, NULL);
}

void ts_conn_accept_transport(struct ts_worker *w, const struct ts_handoff *h,
                              const struct ts_conn_io *io, void *ctx)
{
    accept_conn(w, h, io, ctx);
}

/* Counts a client-certificate outcome (once per connection, when certificates are asked),
 * for the server and for the connection's site. */
static void count_cert(struct ts_conn *c, int site, enum ts_cert_reason reason, bool presented,
                       bool identity)
{
    struct ts_worker *w = c->w;
    struct ts_site_stats *ss = site_stats(c, site);
    TS_INC(w, cert_reason[reason]);
    if (reason == TS_CERT_OK) {
        TS_INC(w, cert_verified);
        ts_stat_add(&ss->cert_verified, 1);
    } else if (!presented) {
        TS_INC(w, cert_absent);
        ts_stat_add(&ss->cert_absent, 1);
    } else if (identity) {
        TS_INC(w, cert_untrusted_accepted);
        ts_stat_add(&ss->cert_untrusted_accepted, 1);
    } else {
        TS_INC(w, cert_rejected);
        ts_stat_add(&ss->cert_rejected, 1);
    }
}

static enum step fail_handshake(struct ts_conn *c, enum ts_hs_fail why, enum close_kind kind)
{
    TS_INC(c->w, hs_failed);
    TS_INC(c->w, hs_fail[why]);
    /* the site SNI chose, if the ClientHello got that far (else the default site) */
    int site = c->plain ? 0 : ts_tls_site(&c->tls);
    ts_stat_add(&site_stats(c, site)->hs_failed, 1);
    if (why == TS_HS_FAIL_CLIENT_CERT) {
        enum ts_cert_reason r = ts_tls_cert_failure_reason(&c->tls);
        count_cert(c, site, r, r != TS_CERT_NONE, false);
    }
    /* one line per client only at debug: at info the main thread logs the counts by reason
     * once per log.summary_interval_s, so a flood of bad handshakes cannot flood the log */
    if (ts_log_enabled(TS_LOG_DEBUG)) {
        char buf[256];
        ts_log_debug("%s: TLS handshake failed (%s): %s", c->remote, ts_stats_hs_fail_names[why],
                     why == TS_HS_FAIL_PROXY_HEADER
                         ? "a PROXY protocol header, and this listener has no proxy_protocol"
                         : ts_tls_error_string(&c->tls, buf, sizeof(buf)));
    }
    return close_as(c, kind);
}

/* After a fatal alert (or the plain-HTTP answer): FIN, then read and drop what the client
 * still sends until it closes or shutdown_s passes. Closing at once with its data unread would
 * make the kernel send RST, which can destroy the alert before the client reads it (a TLS 1.3
 * client sends its request right behind its certificate). Counted as an error close. */
static enum step start_linger(struct ts_conn *c, enum close_kind kind)
{
    if (!c->plain) ts_tls_flush(&c->tls); /* the alert, best effort: the socket is fresh */
    shutdown(c->fd, SHUT_WR);
    c->close_kind = (uint8_t)kind;
    set_gauge(c, G_NONE);
    if (cfg_of(c)->timeouts.shutdown_s == 0) return STEP_CLOSE;
    c->state = ST_LINGER;
    ts_worker_timer_set(c->w, &c->timer, TS_TIMER_SHUTDOWN);
    return STEP_AGAIN;
}

static enum step do_linger(struct ts_conn *c)
{
    char sink[4096];
    for (;;) {
        ssize_t n = recv(c->fd, sink, sizeof(sink), 0);
        if (n > 0) {
            c->shutdown_discarded += (uint64_t)n;
            if (c->shutdown_discarded > SHUTDOWN_DISCARD_MAX) return STEP_CLOSE;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return STEP_WAIT;
        return STEP_CLOSE; /* EOF or error: c->close_kind stays what start_linger set */
    }
}

/* A client speaking plain HTTP to the TLS port gets a short plain-text answer instead of a
 * TLS alert it cannot read; the connection then lingers like one that got an alert. */
static void answer_plain_http(struct ts_conn *c)
{
    static const char msg[] = "HTTP/1.1 400 Bad Request\r\n"
                              "Content-Type: text/plain; charset=utf-8\r\n"
                              "Content-Length: 56\r\n"
                              "Connection: close\r\n\r\n"
                              "This port speaks HTTPS: use https:// to reach the site.\n";
    ssize_t n = send(c->fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL);
    (void)n; /* best effort: the socket buffer is empty, it fits */
}

static const char *const resumption_names[] = {"full", "resumed tls12_session_id",
                                               "resumed tls12_ticket", "resumed tls13_ticket"};

static void count_handshake(struct ts_conn *c)
{
    struct ts_worker *w = c->w;
    bool v13 = ts_tls_version(&c->tls) == TLS1_3_VERSION;
    enum ts_resumption how = ts_tls_resumption(&c->tls);
    if (v13)
        TS_INC(w, proto_tls13);
    else
        TS_INC(w, proto_tls12);
    ts_log_debug("%s: worker %d: %s handshake (%s)", c->remote, w->id, v13 ? "TLSv1.3" : "TLSv1.2",
                 resumption_names[how]);
    c->site = ts_tls_site(&c->tls);
    ts_stat_add(&site_stats(c, c->site)->handshakes, 1);
    enum ts_client_auth auth = cfg_of(c)->sites[c->site].client_auth;
    if (auth != TS_CLIENT_AUTH_NONE) {
        ts_tls_cert_examine(&c->tls, auth, &c->cert);
        count_cert(c, c->site, (enum ts_cert_reason)c->cert.reason, c->cert.peer != NULL,
                   c->cert.identity);
    }
    switch (how) {
    case TS_RESUMED_NONE: TS_INC(w, hs_full); return;
    case TS_RESUMED_TLS12_SESSION_ID: TS_INC(w, resumed_tls12_session_id); break;
    case TS_RESUMED_TLS12_TICKET: TS_INC(w, resumed_tls12_ticket); break;
    case TS_RESUMED_TLS13_TICKET: TS_INC(w, resumed_tls13_ticket); break;
    }
    TS_INC(w, hs_resumed);
}

static enum step start_h2(struct ts_conn *c);

/* Closes a PROXY protocol connection before its handshake. Only a source in
 * proxy_protocol_from reaches a bad header or the timeout, so those are logged at info (a
 * misconfigured proxy shows); anyone can connect from elsewhere: that is logged at debug. */
static enum step proxy_reject(struct ts_conn *c, enum ts_proxy_reject why, const char *detail,
                              enum close_kind kind)
{
    TS_INC(c->w, proxy_rejected[why]);
    if (why == TS_PROXY_REJECT_NOT_ALLOWED)
        ts_log_debug("%s: PROXY protocol header refused (%s): %s", c->remote,
                     ts_stats_proxy_reject_names[why], detail);
    else
        ts_log_info("%s: PROXY protocol header refused (%s): %s", c->remote,
                    ts_stats_proxy_reject_names[why], detail);
    c->proxy = NULL;
    return close_as(c, kind);
}

static bool proxy_allowed(const struct ts_conn *c)
{
    for (size_t i = 0; i < c->proxy->nfrom; i++)
        if (ts_cidr_contains(&c->proxy->from[i], c->peer_family, c->peer_addr)) return true;
    return false;
}

/* Reads the PROXY protocol header without taking a byte of what follows it: the header is
 * looked at with MSG_PEEK until it is whole, then exactly its length is read, so the
 * ClientHello stays in the socket for the TLS layer. A header arriving in pieces costs one
 * peek per piece (edge-triggered epoll reports each arrival, read or not). */
static enum step do_proxy(struct ts_conn *c)
{
    if (!proxy_allowed(c))
        return proxy_reject(c, TS_PROXY_REJECT_NOT_ALLOWED, "not in proxy_protocol_from",
                            CLOSE_ERROR);
    uint8_t buf[TS_PROXY_MAX];
    ssize_t n;
    do n = recv(c->fd, buf, sizeof(buf), MSG_PEEK);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return STEP_WAIT;
    /* a TCP check that connects and closes (or resets) before a byte began no header: nothing
     * failed, as for TLS; a reset inside one is a header that never came whole */
    if (n <= 0 && !c->proxy_heard) return close_as(c, CLOSE_PEER_EOF);
    if (n <= 0)
        return proxy_reject(c, TS_PROXY_REJECT_MALFORMED, n < 0 ? strerror(errno) : "closed",
                            CLOSE_PEER_EOF);
    c->proxy_heard = true;
    struct ts_proxy_result r;
    switch (ts_proxy_parse(buf, (size_t)n, &r)) {
    case TS_PROXY_NEED_MORE:
        /* a peek shows the same bytes after the FIN: only the event tells the end */
        if (c->rdhup)
            return proxy_reject(c, TS_PROXY_REJECT_MALFORMED, "closed inside the header",
                                CLOSE_PEER_EOF);
        return STEP_WAIT;
    case TS_PROXY_ERROR: return proxy_reject(c, TS_PROXY_REJECT_MALFORMED, r.error, CLOSE_ERROR);
    case TS_PROXY_DONE: break;
    }
    /* the bytes are queued already: this read returns them all at once */
    ssize_t got = recv(c->fd, buf, r.consumed, 0);
    if (got != (ssize_t)r.consumed)
        return proxy_reject(c, TS_PROXY_REJECT_MALFORMED, "short read", CLOSE_ERROR);
    char was[INET6_ADDRSTRLEN];
    memcpy(was, c->remote, sizeof(was));
    if (!r.local) set_peer(c, r.family, r.src);
    TS_INC(c->w, proxy_accepted);
    ts_log_debug("%s: PROXY protocol v%d header from %s%s", c->remote, r.version, was,
                 r.local ? " (LOCAL/UNKNOWN: the proxy's own address kept)" : "");
    c->proxy = NULL;
    c->state = ST_HANDSHAKE;
    return STEP_AGAIN;
}

static enum step do_handshake(struct ts_conn *c)
{
    switch (ts_tls_handshake(&c->tls)) {
    case TS_IO_OK: break;
    case TS_IO_WANT_READ:
    case TS_IO_WANT_WRITE: return STEP_WAIT;
    case TS_IO_CLOSE_NOTIFY:
    case TS_IO_EOF:
        /* a port check or a TCP health check connects and closes without a byte: it began
         * no handshake, so none failed; its close alone is counted */
        if (!c->tls.heard) return close_as(c, CLOSE_PEER_EOF);
        return fail_handshake(c, TS_HS_FAIL_PEER_CLOSED, CLOSE_PEER_EOF);
    case TS_IO_ERROR: {
        /* OpenSSL recognises "GET ", "POST " etc. where a TLS record should start, and sends
         * no alert: answer in plain text instead (no MSG_PEEK per connection needed). */
        enum ts_hs_fail why = ts_tls_failure_reason(&c->tls);
        if (why == TS_HS_FAIL_PEER_CLOSED) return fail_handshake(c, why, CLOSE_PEER_EOF);
        if (why == TS_HS_FAIL_HTTP_ON_TLS_PORT) answer_plain_http(c);
        fail_handshake(c, why, CLOSE_ERROR);
        return start_linger(c, CLOSE_ERROR);
    }
    }
    count_handshake(c);
    set_gauge(c, G_IDLE);
    if (ts_tls_alpn(&c->tls) == TS_PROTO_H2) return start_h2(c);
    TS_INC(c->w, conns_http11);
    c->state = ST_READ_REQUEST;
    /* the first request must arrive within request_header_s of the handshake */
    ts_worker_timer_set(c->w, &c->timer, TS_TIMER_REQUEST);
    return STEP_AGAIN;
}

/* ---- requests ---- */

static struct inblock *get_in(struct ts_conn *c)
{
    if (!c->in) {
        c->in = ts_pool_get(&c->w->inbufs);
        c->in->len = c->in->parsed = 0;
        c->in->cap = (size_t)cfg_of(c)->limits.max_header_bytes;
        ts_h1_begin(&c->in->h1, &c->in->req.rq);
    }
    return c->in;
}

/* Appends body bytes to the write buffer after what it holds (the header block, the first
 * time). Returns -1 if the file could not be read. */
static int fill_body(struct ts_conn *c)
{
    struct outblock *o = c->out;
    struct ts_response *resp = &c->in->req.resp;
    if (o->off == o->len) o->off = o->len = 0;
    while (o->len < OUT_CAP && resp->cur_seg < resp->nsegs) {
        struct ts_seg *sg = &resp->segs[resp->cur_seg];
        if (sg->len == 0) {
            resp->cur_seg++;
            continue;
        }
        size_t room = OUT_CAP - o->len;
        size_t want = sg->len < room ? (size_t)sg->len : room;
        if (sg->mem) {
            memcpy(o->data + o->len, sg->mem + sg->off, want);
        } else {
            ssize_t n = pread(resp->file->fd, o->data + o->len, want, (off_t)sg->off);
            if (n <= 0) {
                /* the file shrank under us: the promised length cannot be kept */
                ts_log_error("%s: read error on a file being served: %s", c->remote,
                             n < 0 ? strerror(errno) : "file truncated");
                return -1;
            }
            want = (size_t)n;
        }
        o->len += want;
        sg->off += want;
        sg->len -= want;
        resp->body_left -= want;
    }
    return 0;
}

static enum step begin_response(struct ts_conn *c, bool parse_error)
{
    struct ts_worker *w = c->w;
    struct ts_req *req = &c->in->req;
    const struct ts_config *cfg = cfg_of(c);
    c->nrequests++;
    c->responding = true;
    c->sent = 0;
    TS_INC(w, requests);
    TS_INC(w, requests_http11);
    ts_stat_add(&site_stats(c, c->site)->requests, 1);
    TS_INC(w, in_flight);
    req->ctx = (struct ts_req_ctx){
        .w = w,
        .gen = c->gen,
        .start_us = c->req_start_us,
        .remote = c->remote,
        .peer_family = c->peer_family,
        .peer_addr = c->peer_addr,
        .cert = &c->cert,
        .site = &cfg->sites[c->site],
        .site_idx = c->site,
        .plain = c->plain && !c->io, /* a test transport is answered like TLS, not redirected */
    };
    ts_response_init(req);
    /* every answer to HEAD, errors found while parsing included, is headers only */
    req->resp.head_only = req->rq.method == HTTP_HEAD;
    /* keepalive_s 0 turns keep-alive off: every response says Connection: close */
    req->resp.keep_alive = !parse_error && cfg->timeouts.keepalive_s > 0 &&
                           ts_h1_keep_alive(&c->in->h1) &&
                           !atomic_load_explicit(&w->stopping, memory_order_relaxed) &&
                           (cfg->limits.max_requests_per_connection == 0 ||
                            c->nrequests < (uint32_t)cfg->limits.max_requests_per_connection);
    if (parse_error)
        ts_response_error(req, req->rq.error, req->rq.error_reason);
    else
        ts_handler_handle(req);
    c->out = ts_pool_get(&w->outbufs);
    c->out->off = 0;
    c->out->len = c->head_len =
        ts_h1_head(&req->resp, req->rq.http_minor, w->date, c->out->data, OUT_CAP);
    if (fill_body(c) < 0) return close_as(c, CLOSE_ERROR);
    c->state = ST_SEND_RESPONSE;
    ts_worker_timer_set(w, &c->timer, TS_TIMER_SEND);
    return STEP_AGAIN;
}

/* Waits for the next request: a keep-alive wait when nothing of it has arrived yet. */
static void await_request(struct ts_conn *c)
{
    c->state = ST_READ_REQUEST;
    if (c->in && c->in->len > 0) {
        ts_worker_timer_set(c->w, &c->timer, TS_TIMER_REQUEST);
    } else {
        ts_worker_timer_set(c->w, &c->timer, TS_TIMER_KEEPALIVE);
        set_gauge(c, G_IDLE);
    }
}

/* The connection ends: the send phase (what is staged, then close_notify) runs under
 * timeouts.send_s like a response, whatever timer ran before. */
static enum step start_shutdown(struct ts_conn *c)
{
    set_gauge(c, G_NONE);
    c->state = ST_SEND_CLOSE;
    ts_worker_timer_set(c->w, &c->timer, TS_TIMER_SEND);
    return STEP_AGAIN;
}

/* Idle between requests: the read block goes back to the pool now, the TLS buffers after
 * TS_RELEASE_AFTER_MS if the connection is still idle then. */
static enum step wait_idle(struct ts_conn *c)
{
    release_in(c);
    if (!c->plain && c->side_timer.kind == TS_TIMER_NONE)
        ts_worker_timer_set(c->w, &c->side_timer, TS_TIMER_RELEASE);
    return STEP_WAIT;
}

static enum step do_read(struct ts_conn *c)
{
    const struct ts_config *cfg = cfg_of(c);
    for (;;) {
        struct inblock *b = c->in;
        if (b && b->len > b->parsed) {
            size_t used = 0;
            enum ts_h1_parse r = ts_h1_parse(&b->h1, b->data + b->parsed, b->len - b->parsed, &used,
                                             (size_t)cfg->limits.max_uri_bytes);
            b->parsed += used;
            if (r == TS_H1_REQUEST) return begin_response(c, false);
            if (r == TS_H1_ERROR) return begin_response(c, true);
        }
        if (b && b->len == b->cap) {
            ts_h1_overflow(&b->h1);
            return begin_response(c, true);
        }
        /* nothing buffered and the socket was drained: wait for the next edge without a
         * read(2) that can only say EAGAIN */
        if ((!b || b->len == 0) && !c->plain && !c->rdhup && ts_tls_read_would_block(&c->tls))
            return wait_idle(c);
        b = get_in(c);
        size_t got = 0;
        /* Reading on until WANT_READ also empties OpenSSL's own buffer (SSL_pending): with
         * edge-triggered epoll, bytes left there would never raise another event. */
        switch (conn_read(c, b->data + b->len, b->cap - b->len, &got)) {
        case TS_IO_OK:
            if (b->len == 0) {
                set_gauge(c, G_NONE);
                c->req_start_us = monotonic_us();
                if (c->timer.kind == TS_TIMER_KEEPALIVE)
                    ts_worker_timer_set(c->w, &c->timer, TS_TIMER_REQUEST);
            }
            b->len += got;
            ts_stat_add(&c->w->stats.bytes_received, got);
            if (spend(c, got)) return yield(c);
            continue;
        case TS_IO_WANT_READ:
        case TS_IO_WANT_WRITE: return b->len == 0 ? wait_idle(c) : STEP_WAIT;
        case TS_IO_CLOSE_NOTIFY:
            /* the client is done; answer its close_notify and close */
            return start_shutdown(c);
        case TS_IO_EOF: return close_as(c, CLOSE_PEER_EOF);
        case TS_IO_ERROR: return close_as(c, CLOSE_ERROR);
        }
    }
}

static enum step finish_response(struct ts_conn *c)
{
    bool keep =
        c->in->req.resp.keep_alive && !atomic_load_explicit(&c->w->stopping, memory_order_relaxed);
    end_request(c);
    release_out(c);
    if (!keep) return start_shutdown(c);
    struct inblock *b = c->in;
    size_t rest = b->len - b->parsed;
    if (rest == 0) {
        release_in(c);
    } else {
        /* pipelined input: move the next request to the front and parse it afresh */
        memmove(b->data, b->data + b->parsed, rest);
        b->len = rest;
        b->parsed = 0;
        ts_h1_begin(&b->h1, &b->req.rq);
        c->req_start_us = monotonic_us();
    }
    await_request(c);
    return STEP_AGAIN;
}

static enum step do_send(struct ts_conn *c)
{
    struct outblock *o = c->out;
    for (;;) {
        if (o->off == o->len) {
            if (c->in->req.resp.body_left == 0) {
                /* a last response leaves with the close_notify behind it in one write */
                bool last = !c->in->req.resp.keep_alive ||
                            atomic_load_explicit(&c->w->stopping, memory_order_relaxed);
                switch (c->plain || last ? TS_IO_OK : ts_tls_flush(&c->tls)) {
                case TS_IO_OK: return finish_response(c);
                case TS_IO_WANT_WRITE: return STEP_WAIT;
                case TS_IO_EOF: return close_as(c, CLOSE_PEER_EOF);
                default: return close_as(c, CLOSE_ERROR);
                }
            }
            if (fill_body(c) < 0) return close_as(c, CLOSE_ERROR);
        }
        size_t put = 0;
        switch (conn_write(c, o->data + o->off, o->len - o->off, &put)) {
        case TS_IO_OK:
            o->off += put;
            c->sent += put;
            ts_stat_add(&c->w->stats.bytes_sent, put);
            ts_worker_timer_set(c->w, &c->timer, TS_TIMER_SEND); /* progress: re-arm */
            if (spend(c, put)) return yield(c);
            continue;
        case TS_IO_WANT_READ:
        case TS_IO_WANT_WRITE: return STEP_WAIT;
        case TS_IO_CLOSE_NOTIFY:
        case TS_IO_EOF: return close_as(c, CLOSE_PEER_EOF);
        case TS_IO_ERROR: return close_as(c, CLOSE_ERROR);
        }
    }
}

/* The send phase of a closing connection: our close_notify is staged behind the last
 * response's records, and all of them must be in the socket before the wait for the peer
 * begins. A reader slower than the kernel's buffers keeps timeouts.send_s per progress here, as
 * during the response: records dropped at a shutdown timeout would cut the body short. */
static enum step do_send_close(struct ts_conn *c)
{
    if (c->plain) return start_linger(c, CLOSE_CLEAN); /* plain bytes are already in the socket */
    uint64_t before = c->tls.flushed;
    enum ts_io r = c->tls.sent_close_notify ? TS_IO_OK : ts_tls_send_close_notify(&c->tls);
    if (r == TS_IO_OK) r = ts_tls_flush(&c->tls);
    if (c->tls.flushed != before) ts_worker_timer_set(c->w, &c->timer, TS_TIMER_SEND);
    switch (r) {
    case TS_IO_OK: break;
    case TS_IO_WANT_READ:
    case TS_IO_WANT_WRITE: return STEP_WAIT;
    case TS_IO_CLOSE_NOTIFY: return close_as(c, CLOSE_CLEAN);
    case TS_IO_EOF: return close_as(c, CLOSE_PEER_EOF);
    case TS_IO_ERROR: return close_as(c, CLOSE_ERROR);
    }
    release_in(c);
    if (c->tls.peer_close_notify || cfg_of(c)->timeouts.shutdown_s == 0)
        return close_as(c, CLOSE_CLEAN);
    c->state = ST_AWAIT_CLOSE;
    ts_worker_timer_set(c->w, &c->timer, TS_TIMER_SHUTDOWN);
    return STEP_AGAIN;
}

/* Everything is on the wire; the peer's close_notify is awaited for at most
 * timeouts.shutdown_s. Whatever the peer still sends (pipelined requests) is read and dropped:
 * closing with unread data would make the kernel send RST, which can destroy the response
 * still in flight to the client. */
static enum step do_await_close(struct ts_conn *c)
{
    char sink[16384];
    for (;;) {
        size_t got = 0;
        switch (ts_tls_read(&c->tls, sink, sizeof(sink), &got)) {
        case TS_IO_OK:
            c->shutdown_discarded += got;
            if (c->shutdown_discarded > SHUTDOWN_DISCARD_MAX) return close_as(c, CLOSE_ERROR);
            continue;
        case TS_IO_WANT_READ:
        case TS_IO_WANT_WRITE: return STEP_WAIT;
        case TS_IO_CLOSE_NOTIFY: return close_as(c, CLOSE_CLEAN);
        case TS_IO_EOF: return close_as(c, CLOSE_PEER_EOF);
        case TS_IO_ERROR: return close_as(c, CLOSE_ERROR);
        }
    }
}

/* ---- HTTP/2 ----
 * One state for the whole session: each step writes out what the session queued, then reads
 * and feeds the session, until both are blocked. Requests are answered as their header block
 * completes (inside ts_h2_recv); the write block holds frames serialized by ts_h2_send. */

/* Whether bytes for the client are still held back: queued in the session, staged in the write
 * block, or in the socket's send queue not yet sent (a reader's closed window). Bytes sent but
 * not acknowledged do not count: a vanished peer never acknowledges them. */
static bool h2_output_queued(struct ts_conn *c)
{
    int unsent = 0;
    return ts_h2_want_write(c->h2) || (c->out && c->out->off < c->out->len) ||
           (ioctl(c->fd, SIOCOUTQNSD, &unsent) == 0 && unsent > 0);
}

/* The graceful close (ts_h2_shutdown): its final GOAWAY goes at the PING's ACK, or
 * TS_GOAWAY_ACK_MS after the client could have read the first GOAWAY and the PING (side
 * timer) if it does not answer. */
static void h2_begin_close(struct ts_conn *c)
{
    if (ts_h2_shutdown(c->h2)) ts_worker_timer_set(c->w, &c->side_timer, TS_TIMER_GOAWAY);
}

static void h2_request(void *conn, struct ts_req *req)
{
    struct ts_conn *c = conn;
    struct ts_worker *w = c->w;
    const struct ts_config *cfg = cfg_of(c);
    c->nrequests++;
    TS_INC(w, requests);
    TS_INC(w, requests_h2);
    ts_stat_add(&site_stats(c, c->site)->requests, 1);
    TS_INC(w, in_flight);
    req->ctx = (struct ts_req_ctx){
        .w = w,
        .gen = c->gen,
        .start_us = monotonic_us(),
        .remote = c->remote,
        .peer_family = c->peer_family,
        .peer_addr = c->peer_addr,
        .cert = &c->cert,
        .site = &cfg->sites[c->site],
        .site_idx = c->site,
    };
    ts_response_init(req);
    req->resp.head_only = req->rq.method == HTTP_HEAD;
    req->resp.keep_alive = true; /* means nothing per stream */
    if (req->rq.error)
        ts_response_error(req, req->rq.error, req->rq.error_reason);
    else
        ts_handler_handle(req);
    ts_h2_respond(c->h2, req, w->date);
    /* the last request this connection takes: GOAWAY names it, the streams in flight end */
    if (cfg->limits.max_requests_per_connection > 0 &&
        c->nrequests >= (uint32_t)cfg->limits.max_requests_per_connection)
        ts_h2_goaway(c->h2);
    else if (atomic_load_explicit(&w->stopping, memory_order_relaxed)) /* opened while draining */
        h2_begin_close(c);
}

static void h2_done(void *conn, struct ts_req *req, uint64_t body)
{
    struct ts_conn *c = conn;
    TS_DEC(c->w, in_flight);
    int status = req->resp.status;
    if (status >= 100 && status < 600) TS_INC(c->w, status_class[status / 100]);
    c->sent = body;
    c->head_len = 0;
    ts_stat_add(&site_stats(c, c->site)->bytes, body);
    c->req_start_us = req->ctx.start_us;
    log_request(c, req);
}

static const struct ts_h2_hooks h2_hooks = {.request = h2_request, .done = h2_done};

static enum step start_h2(struct ts_conn *c)
{
    TS_INC(c->w, conns_h2);
    c->h2 = ts_h2_new(cfg_of(c), &h2_hooks, c, &c->w->stats);
    if (!c->h2) return close_as(c, CLOSE_ERROR);
    c->state = ST_H2;
    /* Little unsent data in the kernel: what the socket buffer would hold for a slow reader
     * (megabytes) would sit ahead of any response queued later on this connection, and of the
     * answer to a PING; a write that finds TS_H2_NOTSENT_LOWAT unsent says EAGAIN and the next
     * block waits in user space, where the session can still put a small response first. Bytes
     * in flight are not limited, so a fast reader's throughput is not. */
    int lowat = TS_H2_NOTSENT_LOWAT;
    if (!c->io) setsockopt(c->fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof(lowat));
    /* the first request must arrive within request_header_s of the handshake */
    ts_worker_timer_set(c->w, &c->timer, TS_TIMER_REQUEST);
    /* a handshake that completes during the drain: what the client sends before it reads the
     * GOAWAY is served, then the connection ends */
    if (atomic_load_explicit(&c->w->stopping, memory_order_relaxed)) h2_begin_close(c);
    return STEP_AGAIN;
}

/* The timer that fits what the session waits for. Streams open: output the client does not
 * read or a body held back by its window (send_s, re-armed by the writer only while it is the
 * timer and bytes move), else a request under way (request_header_s). No stream open: the idle
 * wait (keepalive_s; request_header_s before the first request), which control frames alone
 * (PING, SETTINGS and their ACKs) neither change nor re-arm: a client that only pings does not
 * keep an idle connection, and a stalled stream expires by its own deadline
 * (ts_h2_expire_stalled), whatever else the client sends. */
static void h2_arm(struct ts_conn *c, bool output_pending)
{
    enum ts_timer_kind want;
    bool streams = ts_h2_open_streams(c->h2) > 0;
    if (output_pending) /* a socket that takes nothing (the last stream may be closed already) */
        want = TS_TIMER_SEND;
    else if (!streams)
        want = c->nrequests > 0 ? TS_TIMER_KEEPALIVE : TS_TIMER_REQUEST;
    else if (ts_h2_stalled(c->h2))
        want = TS_TIMER_SEND; /* a window that stays shut */
    else
        want = TS_TIMER_REQUEST;
    bool idle = !output_pending && !streams;
    set_gauge(c, idle ? G_IDLE : G_NONE);
    /* the streams kept for reuse go if the session stays idle */
    if (idle && c->side_timer.kind == TS_TIMER_NONE)
        ts_worker_timer_set(c->w, &c->side_timer, TS_TIMER_RELEASE);
    if (c->timer.kind != want) ts_worker_timer_set(c->w, &c->timer, want);
}

/* Streams whose body has not moved for send_s are reset, checked once a second while any is
 * held back: the connection's own timer may be kept from expiring by other streams' progress
 * or by a client's PINGs. */
static void h2_expire(struct ts_conn *c, bool force)
{
    uint64_t send_ms = (uint64_t)cfg_of(c)->timeouts.send_s * 1000;
    if (ts_h2_expire_stalled(c->h2, c->w->now_ms, send_ms, force) > 0)
        ts_log_debug("%s: HTTP/2 streams reset: no progress for timeouts.send_s", c->remote);
}

/* Full duplex: output is written while the socket takes it; when it is full, input is still
 * read and fed to the session (requests, RST_STREAM, PING, SETTINGS, WINDOW_UPDATE take effect
 * during a download), until the session has TS_H2_BACKLOG_MAX frames queued unsent. The kernel
 * holds little unsent data (TCP_NOTSENT_LOWAT, start_h2), so a response queued now leaves
 * soon after the write block that is waiting. */
static enum step do_h2(struct ts_conn *c)
{
    char in[16384];
    h2_expire(c, false);
    for (;;) {
        struct outblock *o = c->out;
        if (o && o->off < o->len && !c->out_blocked) {
            size_t put = 0;
            switch (conn_write(c, o->data + o->off, o->len - o->off, &put)) {
            case TS_IO_OK:
                o->off += put;
                ts_stat_add(&c->w->stats.bytes_sent, put);
                /* bytes moved: the send timer starts again, if it is the one running */
                if (c->timer.kind == TS_TIMER_SEND)
                    ts_worker_timer_set(c->w, &c->timer, TS_TIMER_SEND);
                if (spend(c, put)) return yield(c);
                continue;
            case TS_IO_WANT_READ:
            case TS_IO_WANT_WRITE: c->out_blocked = true; break;
            case TS_IO_CLOSE_NOTIFY:
            case TS_IO_EOF: return close_as(c, CLOSE_PEER_EOF);
            case TS_IO_ERROR: return close_as(c, CLOSE_ERROR);
            }
        }
        bool blocked = o && o->off < o->len;
        if (!blocked && ts_h2_want_write(c->h2)) {
            if (!c->out) c->out = ts_pool_get(&c->w->outbufs);
            o = c->out;
            o->off = o->len = 0;
            long n = ts_h2_send(c->h2, o->data, OUT_CAP, c->w->now_ms);
            if (n < 0) return close_as(c, CLOSE_ERROR);
            o->len = (size_t)n;
            if (n > 0) continue;
        }
        if (!blocked) release_out(c);
        if (!blocked && !ts_h2_want_read(c->h2) && !ts_h2_want_write(c->h2))
            return start_shutdown(c); /* GOAWAY sent and every stream done */
        /* what may pile up while the client does not read is bounded */
        if (blocked && ts_h2_backlog(c->h2) >= TS_H2_BACKLOG_MAX) {
            h2_arm(c, true);
            return STEP_WAIT;
        }
        /* the last read drained the socket and OpenSSL holds nothing: the next bytes raise an
         * edge, so a read(2) now could only say EAGAIN (one a batch of requests). Not after the
         * peer shut its side: its close_notify may have come in that last short read, and the
         * FIN behind it raises no new edge (EPOLLRDHUP was the one) */
        if (!c->plain && !c->rdhup && ts_tls_read_would_block(&c->tls)) {
            h2_arm(c, blocked);
            return STEP_WAIT;
        }
        if (c->peer_done) { /* nothing more to read: the output drains, then the close */
            if (blocked || ts_h2_want_write(c->h2)) {
                h2_arm(c, true);
                return STEP_WAIT;
            }
            return c->peer_done == PEER_FIN ? close_as(c, CLOSE_PEER_EOF) : start_shutdown(c);
        }
        size_t got = 0;
        enum ts_io r = conn_read(c, in, sizeof(in), &got);
        switch (r) {
        case TS_IO_OK:
            ts_stat_add(&c->w->stats.bytes_received, got);
            if (ts_h2_recv(c->h2, in, got, c->w->now_ms) < 0) {
                /* what the session queued (GOAWAY) goes out after what is staged, then no more
                 * input is read */
                c->state = ST_H2_CLOSE;
                return STEP_AGAIN;
            }
            if (spend(c, got)) return yield(c);
            continue;
        case TS_IO_WANT_READ:
        case TS_IO_WANT_WRITE: h2_arm(c, blocked); return STEP_WAIT;
        case TS_IO_CLOSE_NOTIFY:
        case TS_IO_EOF: {
            enum peer_done done = r == TS_IO_EOF ? PEER_FIN : PEER_CLOSE_NOTIFY;
            if (!blocked) return done == PEER_FIN ? close_as(c, CLOSE_PEER_EOF) : start_shutdown(c);
            /* the client is done sending but may still read (TLS 1.3 and TCP allow it): what
             * it asked for is finished first */
            c->peer_done = (uint8_t)done;
            h2_arm(c, true);
            return STEP_WAIT;
        }
        case TS_IO_ERROR: return close_as(c, CLOSE_ERROR);
        }
    }
}

/* After a connection error: the GOAWAY the session queued is written out, then the TLS close
 * follows; the client's further input is not read. */
static enum step do_h2_close(struct ts_conn *c)
{
    for (unsigned blocks = 0;; blocks++) {
        struct outblock *o = c->out;
        while (o && o->off < o->len) {
            size_t put = 0;
            switch (conn_write(c, o->data + o->off, o->len - o->off, &put)) {
            case TS_IO_OK:
                o->off += put;
                ts_stat_add(&c->w->stats.bytes_sent, put);
                ts_worker_timer_set(c->w, &c->timer, TS_TIMER_SEND);
                continue;
            case TS_IO_WANT_READ:
            case TS_IO_WANT_WRITE:
                if (c->timer.kind != TS_TIMER_SEND)
                    ts_worker_timer_set(c->w, &c->timer, TS_TIMER_SEND);
                return STEP_WAIT;
            case TS_IO_CLOSE_NOTIFY:
            case TS_IO_EOF: return close_as(c, CLOSE_PEER_EOF);
            case TS_IO_ERROR: return close_as(c, CLOSE_ERROR);
            }
        }
        /* the block is out (one that waited for the socket when the error came, or none):
         * what the session queued, its GOAWAY, follows; nghttp2 wants to write no more once
         * that is sent, and a few blocks bound it anyway */
        if (blocks == 4 || !ts_h2_want_write(c->h2)) break;
        if (!o) o = c->out = ts_pool_get(&c->w->outbufs);
        long n = ts_h2_send(c->h2, o->data, OUT_CAP, c->w->now_ms);
        o->off = 0;
        o->len = n > 0 ? (size_t)n : 0;
        if (n <= 0) break;
    }
    release_out(c);
    c->close_kind = CLOSE_ERROR;
    return start_shutdown(c);
}

/* ---- dispatcher ---- */

static void run(struct ts_conn *c)
{
    /* a new turn: a fresh budget, for the steps and for what OpenSSL reads inside one call */
    ready_remove(c);
    c->yielded = false;
    c->out_blocked = false; /* a write may find room again: EPOLLOUT, or a turn's budget back */
    c->turn_bytes = 0;
    ts_tls_new_turn(&c->tls, TURN_BYTES);
    for (;;) {
        enum step s = STEP_CLOSE;
        switch ((enum state)c->state) {
        case ST_PROXY: s = do_proxy(c); break;
        case ST_HANDSHAKE: s = do_handshake(c); break;
        case ST_READ_REQUEST: s = do_read(c); break;
        case ST_SEND_RESPONSE: s = do_send(c); break;
        case ST_SEND_CLOSE: s = do_send_close(c); break;
        case ST_AWAIT_CLOSE: s = do_await_close(c); break;
        case ST_LINGER: s = do_linger(c); break;
        case ST_H2: s = do_h2(c); break;
        case ST_H2_CLOSE: s = do_h2_close(c); break;
        }
        if (s == STEP_WAIT) {
            /* records staged by this turn go out before the connection sleeps; if the socket
             * is full, EPOLLOUT will bring it back here */
            enum ts_io r = c->plain ? TS_IO_OK : ts_tls_flush(&c->tls);
            if (r == TS_IO_OK || r == TS_IO_WANT_WRITE) {
                if (c->yielded || ts_tls_out_of_turn(&c->tls)) ready_add(c);
                return;
            }
            /* a client that resets while the server answers its ClientHello is found here,
             * by the write, and counts as a failed handshake like one found by a read */
            if (c->state == ST_HANDSHAKE)
                s = r == TS_IO_EOF ? fail_handshake(c, TS_HS_FAIL_PEER_CLOSED, CLOSE_PEER_EOF)
                                   : fail_handshake(c, ts_tls_failure_reason(&c->tls), CLOSE_ERROR);
            else
                s = close_as(c, r == TS_IO_EOF ? CLOSE_PEER_EOF : CLOSE_ERROR);
        }
        if (s == STEP_CLOSE) {
            conn_close(c);
            return;
        }
    }
}

void ts_conn_on_event(struct ts_conn *c, uint32_t events)
{
    /* Every step retries its own I/O and learns what happened from it; the only thing an
     * event says on its own is that new bytes may have arrived since a read drained it. */
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c->tls.drained = false;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) ts_tls_writable(&c->tls);
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c->rdhup = true;
    run(c);
}

void ts_conn_on_timeout(struct ts_timer *t)
{
    if (t->kind == TS_TIMER_RELEASE || t->kind == TS_TIMER_GOAWAY) {
        struct ts_conn *c = (struct ts_conn *)((char *)t - offsetof(struct ts_conn, side_timer));
        bool goaway = t->kind == TS_TIMER_GOAWAY;
        t->kind = TS_TIMER_NONE;
        if (goaway) {
            if (c->state != ST_H2) return;
            /* the first GOAWAY and the PING may still wait behind a response the client is
             * reading: it cannot have answered yet (a vanished client is cut by send_s) */
            if (h2_output_queued(c)) {
                ts_worker_timer_set(c->w, &c->side_timer, TS_TIMER_GOAWAY);
                return;
            }
            /* the PING went unanswered: the final GOAWAY anyway */
            if (ts_h2_goaway(c->h2)) run(c);
            return;
        }
        if (c->state == ST_READ_REQUEST && !c->in) {
            ts_tls_release_buffers(&c->tls);
            c->w->released++;
        } else if (c->state == ST_H2 && ts_h2_open_streams(c->h2) == 0) {
            ts_h2_trim(c->h2);
            /* nothing queued in the session nor staged: the TLS buffers go too, as for an
             * idle HTTP/1.1 connection (OpenSSL keeps them if a record is half read) */
            if (!c->plain && !ts_h2_want_write(c->h2) && !(c->out && c->out->off < c->out->len)) {
                ts_tls_release_buffers(&c->tls);
                c->w->released++;
            }
        }
        return;
    }
    struct ts_conn *c = (struct ts_conn *)((char *)t - offsetof(struct ts_conn, timer));
    enum ts_timer_kind kind = (enum ts_timer_kind)t->kind;
    TS_INC(c->w, timeouts[kind]);
    t->kind = TS_TIMER_NONE;
    switch (kind) {
    case TS_TIMER_HANDSHAKE:
        if (c->state == ST_PROXY) {
            run_or_close(c, proxy_reject(c, TS_PROXY_REJECT_TIMEOUT,
                                         "no complete header within timeouts.handshake_s",
                                         CLOSE_TIMEOUT));
            return;
        }
        run_or_close(c, fail_handshake(c, TS_HS_FAIL_TIMEOUT, CLOSE_TIMEOUT));
        return;
    case TS_TIMER_KEEPALIVE:
        /* an idle keep-alive connection ends politely: nothing is in flight (HTTP/2: GOAWAY
         * first, then the same close) */
        if (c->state == ST_H2) break;
        run_or_close(c, start_shutdown(c));
        return;
    case TS_TIMER_SEND:
        /* HTTP/2 with the socket writable: the client's window holds bodies back; the streams
         * that made no progress for send_s are reset, the connection stays */
        if (c->state == ST_H2 && !(c->out && c->out->off < c->out->len) && ts_h2_stalled(c->h2)) {
            h2_expire(c, true);
            run(c);
            return;
        }
        break;
    case TS_TIMER_REQUEST: break;
    case TS_TIMER_SHUTDOWN:
    case TS_TIMER_RELEASE:
    case TS_TIMER_GOAWAY:
    case TS_TIMER_N: break;
    }
    /* HTTP/2 idle, or before its first request: the graceful close, then the usual close; a
     * client that still holds the connection when the timer runs out again is cut */
    if (c->state == ST_H2 && (kind == TS_TIMER_KEEPALIVE || kind == TS_TIMER_REQUEST) &&
        !ts_h2_closing(c->h2)) {
        h2_begin_close(c);
        run(c);
        return;
    }
    if (c->state != ST_LINGER) c->close_kind = CLOSE_TIMEOUT; /* lingering was already an error */
    conn_close(c);
}

void ts_conn_drain(struct ts_conn *c)
{
    if (c->state == ST_H2) {
        /* streams in flight finish; GOAWAY tells the client to open no more */
        h2_begin_close(c);
        run(c);
        return;
    }
    if (c->state == ST_READ_REQUEST && c->gauge == G_IDLE) run_or_close(c, start_shutdown(c));
}

void ts_conn_abort(struct ts_conn *c)
{
    /* a handshake cut at the end of drain_s failed for want of time, as at handshake_s */
    if (c->state == ST_HANDSHAKE) fail_handshake(c, TS_HS_FAIL_TIMEOUT, CLOSE_TIMEOUT);
    c->close_kind = CLOSE_TIMEOUT;
    conn_close(c);
}
