/* The HTTP/2 codec over libnghttp2. nghttp2's header buffers live only for the callback that
 * shows them, so each stream copies what the handler reads into its own arena; responses go
 * out through a no-copy data source that writes each DATA frame's header and its payload
 * (memory, or pread(2) of a file range) straight into the connection's write block. */
#include "h2.h"
#include "config.h"
#include "fcache.h"
#include "log.h"

#include <errno.h>
#include <llhttp.h>
#include <malloc.h>
#include <nghttp2/nghttp2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct stream {
    struct ts_req req;
    struct stream *prev, *next; /* the session's streams, to free them with it */
    int32_t id;
    bool dispatched;      /* reported to the connection */
    bool remote_done;     /* the client ended its side (END_STREAM) */
    bool too_big;         /* the header list passed max_header_bytes: 431 */
    bool headers_done;    /* the request's header block is complete */
    bool waiting;         /* ...and it waits for its body to end (counted in ts_h2.waiting) */
    uint64_t body_bytes;  /* request body bytes received (read and dropped) */
    uint64_t unscheduled; /* body bytes not yet given to a DATA frame */
    uint64_t body_sent;
    uint64_t credit;      /* DATA bytes sent the client has not yet credited back */
    uint64_t progress_ms; /* when the response began or a DATA frame of it last went out */
    size_t hdr_bytes;     /* header list size as RFC 9113 counts it (name + value + 32) */
    size_t used, cap;     /* arena */
    char arena[];
};

#define SPARE_MAX 16 /* streams a session keeps for reuse (each max_header_bytes + ~5 KiB) */

/* nghttp2's small blocks (streams, queued frames, decoded strings: five per request) come from
 * per-session free lists; glibc's tcache holds only seven blocks of a size, so ten streams in
 * flight sent every free through its slow path. The blocks are plain malloc blocks, classed by
 * malloc_usable_size in glibc's own 16-byte steps: nothing is rounded up, no header added (the
 * blocks a session keeps for its lifetime cost what they did). */
#define POOL_CLASSES   32    /* usable sizes 8, 24, 40 .. 504 */
#define POOL_MAX_BYTES 32768 /* kept per session at most, freed when the session goes idle */
/* under AddressSanitizer nothing is kept, so that it still sees nghttp2's blocks used after free */
#if defined(__SANITIZE_ADDRESS__)
#undef POOL_MAX_BYTES
#define POOL_MAX_BYTES 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#undef POOL_MAX_BYTES
#define POOL_MAX_BYTES 0
#endif
#endif

struct pool_block {
    struct pool_block *next; /* while free */
};

/* nghttp2 keeps a frame buffer of 16 KiB and a few bytes for the session's life (a second and
 * more while a large frame is packed), and a 4 KiB stream table: half of an idle HTTP/2
 * connection's memory. Blocks of a page or more get whole pages of their own, and an idle
 * session gives them back to the kernel (MADV_DONTNEED: touched again, they come back zeroed):
 * a frame buffer (realloc from NULL) whatever it holds, since its bytes mean nothing once the
 * session has nothing left to send; any other block only when all its bytes are zero already
 * (the stream table with no stream in it), which the zeroed pages then are too. */
#define BIG_MIN 4096
#define BIG_MAX 6
#define PAGE_SZ 4096u
struct big_block {
    void *p;
    size_t len;   /* a multiple of PAGE_SZ: the block's pages, wholly its own */
    bool scratch; /* a frame buffer: its contents need not be kept */
};

#define RESET_KEPT 16

struct ts_h2 {
    nghttp2_session *s;
    const struct ts_h2_hooks *hooks;
    void *conn;
    struct ts_stats *stats;
    const struct ts_config *cfg;
    struct stream *streams;
    struct stream *reading; /* the stream whose header block is being read, or NULL */
    struct stream *spare;   /* closed streams kept for the next requests (next-linked) */
    unsigned nspare;
    nghttp2_mem mem;
    struct big_block big[BIG_MAX]; /* nghttp2's frame buffers, page-aligned (pool_malloc) */
    struct pool_block **pool;      /* POOL_CLASSES free lists, allocated while any block is kept */
    size_t pool_bytes;
    unsigned open;    /* dispatched streams not yet closed */
    unsigned waiting; /* streams whose header block is complete, waiting for the body's end */
    unsigned pending; /* streams whose body is not all given to DATA frames (ts_h2_stalled) */
    uint64_t now_ms;
    char *buf; /* the write block being filled by ts_h2_send */
    size_t len, cap;
    unsigned idle_frames; /* frames without progress since the last request */
    size_t block_bytes;   /* the header block being decoded, as RFC 9113 counts a list */
    uint64_t credit;      /* DATA bytes sent the client has not yet credited back (connection) */
    uint64_t checked_ms;  /* when stalled streams were last looked at (ts_h2_expire_stalled) */
    unsigned rst_received;
    int flood;                 /* enum ts_h2_flood, or TS_H2_FLOOD_N */
    int32_t reset[RESET_KEPT]; /* the last streams reset while the client could still send */
    unsigned nreset;           /* streams reset so far: reset[nreset % RESET_KEPT] is next */
    uint32_t in_skip;          /* input bytes to pass before the next frame header */
    uint8_t in_hd[9], in_nhd;  /* the frame header being read */
    int32_t opened_max;        /* the highest client stream opened */
    uint64_t opened_bits;      /* bit k: stream opened_max - 2k was opened (not skipped) */
    bool notice;               /* the graceful close began: GOAWAY naming no limit queued */
    bool goaway;               /* the GOAWAY that names the last stream is queued */
    int32_t goaway_last;       /* the last stream that GOAWAY accepts */
};

/* ---- the request: header block into the stream's arena ---- */

static const char *arena_copy(struct stream *st, const char *a, size_t alen, const char *b,
                              size_t blen)
{
    if (st->cap - st->used < alen + blen + 1) return NULL;
    char *p = st->arena + st->used;
    memcpy(p, a, alen);
    if (blen) memcpy(p + alen, b, blen);
    p[alen + blen] = '\0';
    st->used += alen + blen + 1;
    return p;
}

static int method_of(const uint8_t *v, size_t len)
{
    if (len == 3 && memcmp(v, "GET", 3) == 0) return HTTP_GET; /* nearly every request */
    for (int m = 0; m <= HTTP_SOURCE; m++) {
        const char *name = llhttp_method_name((llhttp_method_t)m);
        if (strlen(name) == len && memcmp(name, v, len) == 0) return m;
    }
    return -1;
}

#define HDR_NAME(s)                                                                                \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }
static const struct {
    const char *p;
    size_t len;
} hdr_names[TS_HDR_N] = {
    [TS_HDR_HOST] = HDR_NAME("host"),
    [TS_HDR_CONNECTION] = HDR_NAME("connection"),
    [TS_HDR_IF_NONE_MATCH] = HDR_NAME("if-none-match"),
    [TS_HDR_IF_MODIFIED_SINCE] = HDR_NAME("if-modified-since"),
    [TS_HDR_RANGE] = HDR_NAME("range"),
    [TS_HDR_IF_RANGE] = HDR_NAME("if-range"),
    [TS_HDR_ACCEPT] = HDR_NAME("accept"),
    [TS_HDR_ACCEPT_ENCODING] = HDR_NAME("accept-encoding"),
    [TS_HDR_REFERER] = HDR_NAME("referer"),
    [TS_HDR_USER_AGENT] = HDR_NAME("user-agent"),
};
#undef HDR_NAME

/* Keeps one header; a repeated one is joined with ", " (as a list-valued field folds). */
static bool keep_header(struct stream *st, struct ts_str *slot, const uint8_t *v, size_t len)
{
    const char *p;
    if (slot->p) {
        size_t old = slot->len;
        if (st->cap - st->used < old + 2 + len + 1) return false;
        char *q = st->arena + st->used;
        memcpy(q, slot->p, old);
        memcpy(q + old, ", ", 2);
        memcpy(q + old + 2, v, len);
        q[old + 2 + len] = '\0';
        st->used += old + 2 + len + 1;
        slot->p = q;
        slot->len = old + 2 + len;
        return true;
    }
    p = arena_copy(st, (const char *)v, len, NULL, 0);
    if (!p) return false;
    slot->p = p;
    slot->len = len;
    return true;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct ts_h2 *h = ud;
    h->reading = NULL;
    h->block_bytes = 0;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    if (f->hd.stream_id > h->opened_max) { /* what closed_stream_error needs to know */
        uint32_t shift = (uint32_t)(f->hd.stream_id - h->opened_max) / 2;
        h->opened_bits = (shift >= 64 ? 0 : h->opened_bits << shift) | 1;
        h->opened_max = f->hd.stream_id;
    }
    /* nghttp2 opens streams until our GOAWAY is sent, then closes those past its last stream
     * unanswered (REFUSED_STREAM): such a request must not reach the handler nor the log */
    if (h->goaway && f->hd.stream_id > h->goaway_last) return 0;
    size_t cap = (size_t)h->cfg->limits.max_header_bytes;
    struct stream *st = h->spare;
    if (st) {
        h->spare = st->next;
        h->nspare--;
    } else if (!(st = malloc(sizeof(*st) + cap))) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    /* zeroing the arena and the response's inline header space (a third of all the work a
     * small request cost) is not needed: both are written before they are read */
    memset(&st->req.rq, 0, sizeof(st->req.rq));
    memset(&st->req.ctx, 0, sizeof(st->req.ctx));
    ts_response_init(&st->req);
    memset((char *)st + offsetof(struct stream, prev), 0,
           sizeof(*st) - offsetof(struct stream, prev));
    st->id = f->hd.stream_id;
    st->cap = cap;
    st->req.rq.http_minor = 1;
    memcpy(st->req.rq.protocol, "HTTP/2.0", sizeof("HTTP/2.0"));
    st->next = h->streams;
    if (h->streams) h->streams->prev = st;
    h->streams = st;
    nghttp2_session_set_stream_user_data(s, st->id, st);
    h->reading = st;
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    (void)flags;
    struct ts_h2 *h = ud;
    /* Every header block decoded counts, trailers and blocks of streams the codec keeps
     * nothing for included: one that decodes to many times the limit is an HPACK bomb (a table
     * entry referenced over and over: a 16 KiB block can decode to 64 MB), and decoding it
     * would hold the worker, so the connection ends here (GOAWAY ENHANCE_YOUR_CALM) and nothing
     * more of it is decoded. */
    h->block_bytes += namelen + valuelen + 32;
    if (h->block_bytes > TS_H2_HEADER_LIST_CUT * (size_t)h->cfg->limits.max_header_bytes) {
        if (h->flood == TS_H2_FLOOD_N) h->flood = TS_H2_FLOOD_HEADER_LIST;
        nghttp2_session_terminate_session(s, NGHTTP2_ENHANCE_YOUR_CALM);
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    /* a header block is never interleaved with another: its stream is the one just begun,
     * which spares a lookup in the session's stream map per header */
    struct stream *st = h->reading && h->reading->id == f->hd.stream_id
                            ? h->reading
                            : nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!st) return 0;
    /* the header list as SETTINGS_MAX_HEADER_LIST_SIZE counts it: an HPACK bomb (one large
     * table entry referenced over and over) stops here, whatever its compressed size */
    st->hdr_bytes += namelen + valuelen + 32;
    if (st->too_big || st->hdr_bytes > st->cap) {
        /* a header list a little over the limit (a large cookie) is answered 431, which
         * means decoding the rest of its block to keep the HPACK state (up to the cut above) */
        st->too_big = true;
        return 0;
    }
    struct ts_request *rq = &st->req.rq;
    bool ok = true;
    if (namelen == 7 && memcmp(name, ":method", 7) == 0) {
        int m = method_of(value, valuelen);
        if (m < 0) {
            rq->error = 501;
            rq->error_reason = "This method is not implemented.";
            m = HTTP_GET;
        }
        rq->method = (uint8_t)m;
    } else if (namelen == 5 && memcmp(name, ":path", 5) == 0) {
        const char *p = arena_copy(st, (const char *)value, valuelen, NULL, 0);
        ok = p != NULL;
        if (ok) {
            rq->target = (struct ts_str){p, valuelen};
            const char *q = memchr(p, '?', valuelen);
            size_t plen = q ? (size_t)(q - p) : valuelen;
            rq->path = (struct ts_str){p, plen};
            rq->query = (struct ts_str){p + plen, valuelen - plen};
        }
    } else if (namelen == 10 && memcmp(name, ":authority", 10) == 0) {
        rq->hdr[TS_HDR_HOST].p = NULL; /* :authority wins over a host header */
        ok = keep_header(st, &rq->hdr[TS_HDR_HOST], value, valuelen);
    } else if (namelen == 4 && memcmp(name, "host", 4) == 0) {
        if (!rq->hdr[TS_HDR_HOST].p) ok = keep_header(st, &rq->hdr[TS_HDR_HOST], value, valuelen);
    } else if (name[0] != ':') {
        for (int i = TS_HDR_CONNECTION; i < TS_HDR_N; i++) {
            if (hdr_names[i].len == namelen && memcmp(hdr_names[i].p, name, namelen) == 0) {
                ok = keep_header(st, &rq->hdr[i], value, valuelen);
                break;
            }
        }
    }
    if (!ok) st->too_big = true;
    return 0;
}

static void dispatch(struct ts_h2 *h, struct stream *st)
{
    struct ts_request *rq = &st->req.rq;
    if (st->waiting) {
        st->waiting = false;
        h->waiting--;
    }
    st->dispatched = true;
    h->open++;
    h->idle_frames = 0;
    ts_stat_add(&h->stats->h2_streams_open, 1);
    if (st->too_big) {
        rq->error = 431;
        rq->error_reason = "The request's header fields are too large.";
    } else if (!rq->error && rq->target.len > (size_t)h->cfg->limits.max_uri_bytes) {
        rq->error = 414;
        rq->error_reason = NULL;
    }
    if (!rq->target.p) rq->target = rq->path = (struct ts_str){"*", 1};
    h->hooks->request(h->conn, &st->req);
}

/* Ending a connection gracefully races the client's next request: a GOAWAY naming the last
 * stream taken refuses a stream the client sent before it read the GOAWAY, and not every client
 * retries one (curl 7.88 fails it: "Error in the HTTP2 framing layer"). So, as RFC 9113 6.8
 * advises, ts_h2_shutdown sends a GOAWAY naming no limit (2^31-1), which tells the client to open
 * no more streams, and once it is sent this PING. Its ACK comes after every stream the client
 * opened before it read that GOAWAY: the second GOAWAY names the last of them and refuses none.
 * A client that does not answer gets it after TS_GOAWAY_ACK_MS (conn.c). */
static const uint8_t drain_ping[8] = {'t', 's', '-', 'd', 'r', 'a', 'i', 'n'};

/* A request is answered once the client has ended its stream: a body (which no request here
 * takes) is read and dropped first, so that a GET sent as HEADERS and an empty DATA is served
 * as its HTTP/1.1 form is (Content-Length: 0), and errors in the frames after the header block
 * are reported as RFC 9113 asks rather than cut short by an early answer and RST_STREAM. A body
 * past TS_H2_BODY_DISCARD_MAX is answered at once (413, 405): the stream is then reset with
 * NO_ERROR when the answer is complete (on_frame_send), as RFC 9113 8.1 allows. */
static void body_ended(struct ts_h2 *h, struct stream *st)
{
    st->remote_done = true;
    if (st->dispatched || !st->headers_done) return;
    st->req.rq.has_body = st->body_bytes > 0;
    dispatch(h, st);
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct ts_h2 *h = ud;
    struct stream *st =
        f->hd.stream_id ? nghttp2_session_get_stream_user_data(s, f->hd.stream_id) : NULL;
    bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
    switch (f->hd.type) {
    case NGHTTP2_HEADERS: /* the request's header block, or trailers after its body */
        if (!st) break;
        if (f->headers.cat == NGHTTP2_HCAT_REQUEST && !st->headers_done) {
            st->headers_done = true;
            if (!end) {
                st->waiting = true;
                h->waiting++;
            }
        }
        if (end) body_ended(h, st);
        break;
    case NGHTTP2_DATA:
        if (st && end) body_ended(h, st);
        break;
    case NGHTTP2_RST_STREAM:
        ts_stat_add(&h->stats->h2_rst_received, 1);
        h->rst_received++;
        break;
    case NGHTTP2_GOAWAY: ts_stat_add(&h->stats->h2_goaway_received, 1); break;
    case NGHTTP2_WINDOW_UPDATE: {
        /* credit returned for DATA the server sent is the download going on, not a frame
         * without work: a client may credit every frame it reads */
        uint64_t *credit = f->hd.stream_id == 0 ? &h->credit : st ? &st->credit : NULL;
        uint64_t inc = (uint64_t)f->window_update.window_size_increment;
        /* a credit of a few bytes at a time buys a frame of a few bytes (the "data dribble"
         * of CVE-2019-9511): only one of at least TS_H2_CREDIT_MIN is work (a client that
         * credits every frame sends a small one at the end of each response, one frame) */
        if (credit && inc <= *credit) {
            *credit -= inc;
            if (inc >= TS_H2_CREDIT_MIN && h->idle_frames > 0) h->idle_frames--;
        }
        break;
    }
    case NGHTTP2_PING:
        /* the client read the first GOAWAY: what it sent before is all here */
        if ((f->hd.flags & NGHTTP2_FLAG_ACK) && h->notice &&
            memcmp(f->ping.opaque_data, drain_ping, sizeof(drain_ping)) == 0)
            ts_h2_goaway(h);
        break;
    default: break;
    }
    return 0;
}

/* HEADERS or DATA on a client stream that is closed (RFC 9113 5.1): a connection error,
 * STREAM_CLOSED; HEADERS on a stream number the client skipped, which closed it (5.1.1), is
 * PROTOCOL_ERROR. The session keeps no closed stream (nghttp2_option_set_no_closed_streams: an
 * idle connection then holds no stream, and its stream table can be given back), so the codec
 * tells them itself from the streams opened (opened_bits: the last 64 numbers; older ones count
 * as opened). Frames that crossed a RST_STREAM the server sent (the rest of a body, trailers)
 * are ignored, as 5.1 asks, for the last RESET_KEPT such streams, and so are those on streams
 * past the GOAWAY the server sent. Returns the error code, or 0. */
static uint32_t closed_stream_error(struct ts_h2 *h, const nghttp2_frame_hd *hd)
{
    int32_t id = hd->stream_id;
    if ((hd->type != NGHTTP2_HEADERS && hd->type != NGHTTP2_DATA) || !(id & 1) ||
        id > h->opened_max || (h->goaway && id > h->goaway_last) ||
        nghttp2_session_find_stream(h->s, id))
        return 0;
    unsigned n = h->nreset < RESET_KEPT ? h->nreset : RESET_KEPT;
    for (unsigned i = 0; i < n; i++)
        if (h->reset[i] == id) return 0;
    uint32_t k = (uint32_t)(h->opened_max - id) / 2;
    bool opened = k >= 64 || (h->opened_bits >> k & 1);
    return hd->type == NGHTTP2_HEADERS && !opened ? NGHTTP2_PROTOCOL_ERROR : NGHTTP2_STREAM_CLOSED;
}

/* Every frame counts against TS_H2_IDLE_FRAMES_MAX but those that carry work: a request's
 * HEADERS (the count restarts when it is dispatched), DATA with a payload, and a WINDOW_UPDATE
 * that returns credit for DATA the server sent (on_frame_recv takes its count back). */
static int on_begin_frame(nghttp2_session *s, const nghttp2_frame_hd *hd, void *ud)
{
    struct ts_h2 *h = ud;
    uint32_t closed = closed_stream_error(h, hd);
    if (closed) {
        nghttp2_session_terminate_session(s, closed);
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (hd->type == NGHTTP2_HEADERS || (hd->type == NGHTTP2_DATA && hd->length > 0)) return 0;
    if (++h->idle_frames > TS_H2_IDLE_FRAMES_MAX && h->flood == TS_H2_FLOOD_N) {
        h->flood = hd->type == NGHTTP2_PING || hd->type == NGHTTP2_SETTINGS
                       ? TS_H2_FLOOD_CONTROL
                       : TS_H2_FLOOD_IDLE_FRAMES;
        nghttp2_session_terminate_session(s, NGHTTP2_ENHANCE_YOUR_CALM);
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    /* a request body is dropped as it arrives (nghttp2 credits the flow control window for it);
     * one too large to wait for is answered before it ends */
    (void)flags, (void)data;
    struct ts_h2 *h = ud;
    struct stream *st = nghttp2_session_get_stream_user_data(s, id);
    if (!st || st->dispatched) return 0;
    st->body_bytes += len;
    if (st->body_bytes > TS_H2_BODY_DISCARD_MAX && st->headers_done) {
        st->req.rq.has_body = true;
        dispatch(h, st);
    }
    return 0;
}

static void free_stream(struct ts_h2 *h, struct stream *st)
{
    if (st->dispatched) {
        h->hooks->done(h->conn, &st->req, st->body_sent);
        h->open--;
        ts_stat_sub(&h->stats->h2_streams_open, 1);
    }
    if (st->waiting) h->waiting--;
    if (st->unscheduled > 0) h->pending--;
    if (h->reading == st) h->reading = NULL;
    ts_response_release(&st->req);
    if (st->prev)
        st->prev->next = st->next;
    else
        h->streams = st->next;
    if (st->next) st->next->prev = st->prev;
    /* a client that sends requests in batches reuses the same few streams: malloc and free
     * of a block this size went through glibc's slow bins every time */
    if (h->nspare < SPARE_MAX) {
        st->next = h->spare;
        h->spare = st;
        h->nspare++;
    } else {
        free(st);
    }
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    (void)code;
    struct ts_h2 *h = ud;
    struct stream *st = nghttp2_session_get_stream_user_data(s, id);
    if (!st) return 0;
    nghttp2_session_set_stream_user_data(s, id, NULL);
    free_stream(h, st);
    return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct ts_h2 *h = ud;
    switch (f->hd.type) {
    case NGHTTP2_RST_STREAM:
        ts_stat_add(&h->stats->h2_rst_sent, 1);
        if (nghttp2_session_get_stream_remote_close(s, f->hd.stream_id) != 1)
            h->reset[h->nreset++ % RESET_KEPT] = f->hd.stream_id;
        break;
    case NGHTTP2_GOAWAY:
        ts_stat_add(&h->stats->h2_goaway_sent, 1);
        /* the PING follows the first GOAWAY out: nghttp2 sends a PING queued with it first, and
         * a client that answers frames in turn would then ACK before it read the GOAWAY */
        if (h->notice && !h->goaway && f->goaway.last_stream_id == INT32_MAX &&
            nghttp2_submit_ping(s, NGHTTP2_FLAG_NONE, drain_ping) != 0)
            ts_h2_goaway(h);
        /* nghttp2's stream reset rate limit answers with GOAWAY INTERNAL_ERROR */
        if (f->goaway.error_code == NGHTTP2_INTERNAL_ERROR && h->flood == TS_H2_FLOOD_N &&
            h->rst_received > 0)
            h->flood = TS_H2_FLOOD_RAPID_RESET;
        break;
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA:
        if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
            /* the answer is complete while the client still sends a body we refused: tell it
             * to stop (RFC 9113 8.1) */
            struct stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
            if (st && !st->remote_done)
                nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
        }
        break;
    default: break;
    }
    return 0;
}

/* ---- output ---- */

static ssize_t send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud)
{
    (void)s, (void)flags;
    struct ts_h2 *h = ud;
    if (!h->buf || h->len == h->cap) return NGHTTP2_ERR_WOULDBLOCK;
    size_t n = h->cap - h->len < len ? h->cap - h->len : len;
    memcpy(h->buf + h->len, data, n);
    h->len += n;
    return (ssize_t)n;
}

static ssize_t read_cb(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                       nghttp2_data_source *src, void *ud)
{
    (void)s, (void)id, (void)buf;
    struct stream *st = src->ptr;
    size_t n = st->unscheduled < len ? (size_t)st->unscheduled : len;
    st->unscheduled -= n;
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (st->unscheduled == 0) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        ((struct ts_h2 *)ud)->pending--;
    }
    return (ssize_t)n;
}

/* A DATA frame's payload: at most 16 KiB (or the peer's smaller SETTINGS_MAX_FRAME_SIZE), cut
 * so that it ends the write block when the block has less room than that. The block goes to
 * SSL_write whole, which cuts it into 16 KiB records from its start; a block filled to the end
 * makes only full records, where a block left with a frame's worth of room made a record of a
 * few bytes at its end every time (HTTP/2 100 KiB: 8.4 records a response instead of 6.3; the
 * client reads and decrypts each). Room under TAIL_MIN is not worth a frame of its own: the
 * frame waits for the next block. Never more than 16 KiB, whatever the peer allows (up to
 * 16 MiB): send_data_cb writes a frame into one block whole, so a larger one might never be
 * written (the stream stalled until send_s), and nghttp2 grows its frame buffer, kept for the
 * session's life, to the largest frame it packed. */
#define TAIL_MIN  512
#define FRAME_MAX 16384u
static ssize_t read_length_cb(nghttp2_session *s, uint8_t type, int32_t id, int32_t conn_window,
                              int32_t stream_window, uint32_t max_frame, void *ud)
{
    (void)s, (void)type, (void)id, (void)conn_window, (void)stream_window;
    struct ts_h2 *h = ud;
    size_t most = max_frame < FRAME_MAX ? max_frame : FRAME_MAX;
    size_t room = h->buf ? h->cap - h->len : 0;
    if (room >= 9 + TAIL_MIN && room - 9 < most) return (ssize_t)(room - 9);
    return (ssize_t)most;
}

/* Copies the next len bytes of the body (memory or file segments) to out. */
static int copy_body(struct stream *st, char *out, size_t len)
{
    struct ts_response *resp = &st->req.resp;
    while (len > 0 && resp->cur_seg < resp->nsegs) {
        struct ts_seg *sg = &resp->segs[resp->cur_seg];
        if (sg->len == 0) {
            resp->cur_seg++;
            continue;
        }
        size_t want = sg->len < len ? (size_t)sg->len : len;
        if (sg->mem) {
            memcpy(out, sg->mem + sg->off, want);
        } else {
            ssize_t n = pread(resp->file->fd, out, want, (off_t)sg->off);
            if (n <= 0) {
                /* the file shrank under us: the promised length cannot be kept */
                ts_log_error("%s: read error on a file being served: %s", st->req.ctx.remote,
                             n < 0 ? strerror(errno) : "file truncated");
                return -1;
            }
            want = (size_t)n;
        }
        out += want;
        len -= want;
        sg->off += want;
        sg->len -= want;
        resp->body_left -= want;
        st->body_sent += want;
    }
    return len == 0 ? 0 : -1;
}

static int send_data_cb(nghttp2_session *s, nghttp2_frame *f, const uint8_t *framehd, size_t length,
                        nghttp2_data_source *src, void *ud)
{
    (void)s;
    struct ts_h2 *h = ud;
    struct stream *st = src->ptr;
    size_t pad = f->data.padlen;
    if (!h->buf || h->cap - h->len < 9 + length + pad) return NGHTTP2_ERR_WOULDBLOCK;
    char *p = h->buf + h->len;
    memcpy(p, framehd, 9);
    p += 9;
    if (pad > 0) *p++ = (char)(pad - 1);
    /* a file that shrank breaks this stream's promise only: nghttp2 resets it (RST_STREAM
     * INTERNAL_ERROR) and the connection's other streams go on; nothing of it was written */
    if (copy_body(st, p, length) < 0) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    p += length;
    if (pad > 1) {
        memset(p, 0, pad - 1);
        p += pad - 1;
    }
    h->len = (size_t)(p - h->buf);
    st->credit += length + pad;
    h->credit += length + pad;
    st->progress_ms = h->now_ms;
    return 0;
}

/* Copies an ASCII name of len < 64 into out[64] lowercased, eight bytes at a time (per byte, it
 * cost a third of this file's work for a small response). The bytes of out past len are
 * rewritten with whatever was there, never read as the name. */
static void lower_name(char *out, const char *name, size_t len)
{
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    memcpy(out, name, len);
    for (size_t k = 0; k < len; k += 8) {
        uint64_t x;
        memcpy(&x, out + k, 8);
        uint64_t low7 = x & ~high;
        /* per byte, the high bit of: >= 'A', > 'Z', and ASCII (the carries stay in the byte) */
        uint64_t ge_a = low7 + ones * (0x80 - 'A');
        uint64_t gt_z = low7 + ones * (0x80 - 'Z' - 1);
        uint64_t upper = (ge_a & ~gt_z) & ~x & high;
        x |= upper >> 2; /* 0x80 >> 2 is the 0x20 that lowercases */
        memcpy(out + k, &x, 8);
    }
}

void ts_h2_respond(struct ts_h2 *h, struct ts_req *req, const char *date)
{
    struct stream *st = (struct stream *)((char *)req - offsetof(struct stream, req));
    struct ts_response *resp = &req->resp;
    nghttp2_nv nv[TS_RESP_MAX_HDRS + 4];
    /* status, date, content-length and the lowercased names are written here: into the
     * stream's arena when it has room, so nghttp2 need not copy any name or value (values of
     * the response's own headers live in the response, static ones are literals). nghttp2
     * documents such strings as needed until on_frame_send/on_frame_not_send; the stream may
     * be reused or freed sooner (on_stream_close, a client's RST_STREAM), which is safe only
     * because nghttp2 (1.52 to 1.70, session_prep_frame) reads them when it packs the frame,
     * after checking that the stream is open; registering on_frame_not_send to look at nva
     * would break this */
    char local[TS_RESP_MAX_HDRS * 64 + 64];
    char *scratch = local;
    uint8_t flags = NGHTTP2_NV_FLAG_NONE;
    if (st->cap - st->used >= sizeof(local)) {
        scratch = st->arena + st->used;
        st->used += sizeof(local);
        flags = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
    }
    char(*names)[64] = (char(*)[64])scratch;
    char *status = scratch + TS_RESP_MAX_HDRS * 64, *clen = status + 4;
    char *datecopy = clen + 24;
    size_t n = 0;
#define NV(nm, nml, v, vl)                                                                         \
    nv[n++] = (nghttp2_nv)                                                                         \
    {                                                                                              \
        (uint8_t *)(nm), (uint8_t *)(v), (nml), (vl), flags                                        \
    }
    unsigned code = (unsigned)resp->status % 1000;
    status[0] = (char)('0' + code / 100);
    status[1] = (char)('0' + code / 10 % 10);
    status[2] = (char)('0' + code % 10);
    status[3] = '\0';
    NV(":status", 7, status, 3);
    size_t datelen = strlen(date);
    if (datelen > 35) datelen = 35; /* an IMF-fixdate is 29 */
    memcpy(datecopy, date, datelen);
    NV("date", 4, datecopy, datelen);
    NV("server", 6, TS_SERVER_NAME, sizeof(TS_SERVER_NAME) - 1);
    for (unsigned i = 0; i < resp->nhdrs; i++) {
        struct ts_str nm = ts_response_hdr_name(resp, i);
        struct ts_str v = ts_response_hdr_value(resp, i);
        if (nm.len >= sizeof(names[0])) continue;
        lower_name(names[i], nm.p, nm.len);
        /* connection-specific fields mean nothing in HTTP/2 and are malformed there */
        if ((nm.len == 10 && memcmp(names[i], "connection", 10) == 0) ||
            (nm.len == 10 && memcmp(names[i], "keep-alive", 10) == 0) ||
            (nm.len == 17 && memcmp(names[i], "transfer-encoding", 17) == 0))
            continue;
        NV(names[i], nm.len, v.p, v.len);
    }
    if (resp->content_length != TS_NO_LENGTH) {
        /* digits from the end: snprintf was a tenth of this function's cost */
        char *e = clen + 24, *d = e;
        uint64_t v = resp->content_length;
        do *--d = (char)('0' + v % 10);
        while ((v /= 10) > 0);
        NV("content-length", 14, d, (size_t)(e - d));
    }
#undef NV
    st->unscheduled = resp->head_only ? 0 : resp->body_left;
    st->progress_ms = h->now_ms;
    if (st->unscheduled > 0) h->pending++;
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_cb};
    int rv = nghttp2_submit_response(h->s, st->id, nv, n, st->unscheduled ? &prd : NULL);
    if (rv != 0) nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
}

long ts_h2_send(struct ts_h2 *h, char *buf, size_t cap, uint64_t now_ms)
{
    h->now_ms = now_ms;
    h->buf = buf;
    h->len = 0;
    h->cap = cap;
    int rv = nghttp2_session_send(h->s);
    h->buf = NULL;
    if (rv != 0) {
        ts_log_debug("HTTP/2 send: %s", nghttp2_strerror(rv));
        return -1;
    }
    return (long)h->len;
}

/* ---- the session's allocator ---- */

static void *big_malloc(struct ts_h2 *h, size_t size, bool scratch)
{
    for (unsigned i = 0; i < BIG_MAX; i++) {
        if (h->big[i].p) continue;
        size_t len = (size + PAGE_SZ - 1) / PAGE_SZ * PAGE_SZ;
        void *p = aligned_alloc(PAGE_SZ, len);
        if (p) h->big[i] = (struct big_block){p, len, scratch};
        return p;
    }
    return malloc(size);
}

/* Forgets a frame buffer that is freed or moved. */
static void big_forget(struct ts_h2 *h, void *p)
{
    for (unsigned i = 0; i < BIG_MAX; i++)
        if (h->big[i].p == p) h->big[i] = (struct big_block){0};
}

static void *pool_malloc(size_t size, void *ud)
{
    struct ts_h2 *h = ud;
    if (size >= BIG_MIN) return big_malloc(h, size, false);
    /* class c holds blocks of at least 16c + 8 usable bytes: every size up to that */
    size_t c = size / 16 + (size % 16 > 8);
    if (c < POOL_CLASSES && h->pool && h->pool[c]) {
        struct pool_block *b = h->pool[c];
        h->pool[c] = b->next;
        h->pool_bytes -= 16 * c + 8;
        return b;
    }
    return malloc(size);
}

static void pool_free(void *ptr, void *ud)
{
    struct ts_h2 *h = ud;
    if (!ptr) return;
    big_forget(h, ptr);
    size_t usable = malloc_usable_size(ptr);
    size_t c = usable < 8 ? POOL_CLASSES : (usable - 8) / 16;
    if (c >= POOL_CLASSES || h->pool_bytes + usable > POOL_MAX_BYTES ||
        (!h->pool && !(h->pool = calloc(POOL_CLASSES, sizeof(*h->pool))))) {
        free(ptr);
        return;
    }
    struct pool_block *b = ptr;
    b->next = h->pool[c];
    h->pool[c] = b;
    h->pool_bytes += 16 * c + 8; /* what the class promises: never more than usable */
}

static void *pool_calloc(size_t n, size_t size, void *ud)
{
    if (size && n > SIZE_MAX / size) return NULL;
    void *p = pool_malloc(n * size, ud);
    if (p) memset(p, 0, n * size);
    return p;
}

static void *pool_realloc(void *ptr, size_t size, void *ud)
{
    struct ts_h2 *h = ud;
    if (!ptr) return size >= BIG_MIN ? big_malloc(h, size, true) : pool_malloc(size, ud);
    big_forget(h, ptr);        /* moved or not, no longer known to be page-aligned and whole */
    return realloc(ptr, size); /* the blocks are malloc's own */
}

static void pool_drain(struct ts_h2 *h)
{
    if (!h->pool) return;
    for (unsigned c = 0; c < POOL_CLASSES; c++) {
        while (h->pool[c]) {
            struct pool_block *b = h->pool[c];
            h->pool[c] = b->next;
            free(b);
        }
    }
    free(h->pool);
    h->pool = NULL;
    h->pool_bytes = 0;
}

/* ---- the session ---- */

struct ts_h2 *ts_h2_new(const struct ts_config *cfg, const struct ts_h2_hooks *hooks, void *conn,
                        struct ts_stats *stats)
{
    struct ts_h2 *h = calloc(1, sizeof(*h));
    nghttp2_session_callbacks *cb = NULL;
    nghttp2_option *opt = NULL;
    if (!h) return NULL;
    h->hooks = hooks;
    h->conn = conn;
    h->stats = stats;
    h->cfg = cfg;
    h->flood = TS_H2_FLOOD_N;
    h->in_skip = NGHTTP2_CLIENT_MAGIC_LEN; /* the preface comes first */
    h->mem = (nghttp2_mem){h, pool_malloc, pool_free, pool_calloc, pool_realloc};
    if (nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&opt) != 0) goto fail;
    nghttp2_session_callbacks_set_send_callback(cb, send_cb);
    nghttp2_session_callbacks_set_send_data_callback(cb, send_data_cb);
    nghttp2_session_callbacks_set_data_source_read_length_callback(cb, read_length_cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cb, on_begin_frame);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    /* the limits nghttp2 enforces itself, spelled out: rapid reset (CVE-2023-44487), floods of
     * CONTINUATION (CVE-2024-27316 class), of settings, and of frames that ask for an ACK */
    nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33);
    nghttp2_option_set_max_continuations(opt, 8);
    nghttp2_option_set_max_settings(opt, 32);
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    nghttp2_option_set_no_closed_streams(opt, 1);
    nghttp2_option_set_no_recv_client_magic(opt, 0);
    if (nghttp2_session_server_new3(&h->s, cb, h, opt, &h->mem) != 0) goto fail;
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(opt);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, (uint32_t)cfg->http2_max_concurrent_streams},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)cfg->limits.max_header_bytes},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    if (nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0) {
        ts_h2_free(h);
        return NULL;
    }
    return h;
fail:
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(opt);
    free(h);
    return NULL;
}

static bool all_zero(const void *p, size_t len)
{
    const uint64_t *w = p; /* page-aligned, a multiple of the page size */
    uint64_t acc = 0;
    for (size_t i = 0; i < len / 8; i++) acc |= w[i];
    return acc == 0;
}

static void free_spares(struct ts_h2 *h)
{
    while (h->spare) {
        struct stream *st = h->spare;
        h->spare = st->next;
        free(st);
    }
    h->nspare = 0;
    pool_drain(h);
}

void ts_h2_trim(struct ts_h2 *h)
{
    free_spares(h);
    /* nothing queued, nothing half sent (that would keep want_write): the frame buffers hold
     * nothing that will be read before it is written again */
    if (nghttp2_session_want_write(h->s)) return;
    for (unsigned i = 0; i < BIG_MAX; i++) {
        struct big_block *b = &h->big[i];
        if (b->p && (b->scratch || all_zero(b->p, b->len))) madvise(b->p, b->len, MADV_DONTNEED);
    }
}

void ts_h2_free(struct ts_h2 *h)
{
    if (!h) return;
    while (h->streams) free_stream(h, h->streams);
    free_spares(h);
    nghttp2_session_del(h->s);
    pool_drain(h); /* what the session freed as it went */
    free(h);
}

static int feed(struct ts_h2 *h, const uint8_t *data, size_t len)
{
    if (len == 0) return 0;
    ssize_t rv = nghttp2_session_mem_recv(h->s, data, len);
    if (rv >= 0) return 0;
    if (h->flood == TS_H2_FLOOD_N) {
        if (rv == NGHTTP2_ERR_FLOODED) h->flood = TS_H2_FLOOD_CONTROL;
        if (rv == NGHTTP2_ERR_TOO_MANY_SETTINGS) h->flood = TS_H2_FLOOD_SETTINGS;
        if (rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS) h->flood = TS_H2_FLOOD_CONTINUATION;
    }
    ts_log_debug("HTTP/2 input: %s", nghttp2_strerror((int)rv));
    /* A connection error. Our own flood checks have queued GOAWAY ENHANCE_YOUR_CALM already;
     * otherwise queue the GOAWAY that fits, unless the session is beyond saving. */
    bool queued = h->flood == TS_H2_FLOOD_IDLE_FRAMES ||
                  (h->flood == TS_H2_FLOOD_CONTROL && rv != NGHTTP2_ERR_FLOODED);
    if (queued) return -1;
    if (rv == NGHTTP2_ERR_FLOODED)
        nghttp2_session_terminate_session(h->s, NGHTTP2_ENHANCE_YOUR_CALM);
    else if (rv != NGHTTP2_ERR_NOMEM && rv != NGHTTP2_ERR_CALLBACK_FAILURE)
        nghttp2_session_terminate_session(h->s, NGHTTP2_PROTOCOL_ERROR);
    return -1;
}

/* Follows the frame headers in the client's bytes (after the 24-byte preface) for one check
 * nghttp2 has no callback for: it drops DATA on a stream it does not know before any callback
 * sees the frame, and it knows no closed stream (no_closed_streams). At each DATA header the
 * bytes before it are fed first, so the session's streams are as that frame finds them. */
int ts_h2_recv(struct ts_h2 *h, const void *data, size_t len, uint64_t now_ms)
{
    const uint8_t *p = data;
    size_t off = 0, fed = 0;
    h->now_ms = now_ms;
    while (off < len) {
        size_t k;
        if (h->in_skip > 0) { /* the preface, or a frame's payload */
            k = len - off < h->in_skip ? len - off : h->in_skip;
            h->in_skip -= (uint32_t)k;
            off += k;
            continue;
        }
        h->in_hd[h->in_nhd++] = p[off++];
        if (h->in_nhd < 9) continue;
        h->in_nhd = 0;
        nghttp2_frame_hd hd = {
            .length = (size_t)h->in_hd[0] << 16 | (size_t)h->in_hd[1] << 8 | h->in_hd[2],
            .type = h->in_hd[3],
            .stream_id = (int32_t)(((uint32_t)h->in_hd[5] << 24 | (uint32_t)h->in_hd[6] << 16 |
                                    (uint32_t)h->in_hd[7] << 8 | h->in_hd[8]) &
                                   0x7fffffffu),
        };
        h->in_skip = (uint32_t)hd.length;
        if (hd.type != NGHTTP2_DATA) continue;
        size_t start = off >= fed + 9 ? off - 9 : fed; /* a header begun in an earlier read */
        if (feed(h, p + fed, start - fed) < 0) return -1;
        fed = start;
        uint32_t closed = closed_stream_error(h, &hd);
        if (closed) {
            ts_log_debug("HTTP/2 input: DATA on closed stream %d", hd.stream_id);
            nghttp2_session_terminate_session(h->s, closed);
            return -1;
        }
    }
    return feed(h, p + fed, len - fed);
}

bool ts_h2_shutdown(struct ts_h2 *h)
{
    if (h->notice || h->goaway) return false;
    h->notice = true;
    if (nghttp2_submit_shutdown_notice(h->s) != 0) ts_h2_goaway(h); /* out of memory */
    return true;
}

bool ts_h2_closing(const struct ts_h2 *h)
{
    return h->notice || h->goaway;
}

bool ts_h2_goaway(struct ts_h2 *h)
{
    if (h->goaway) return false;
    h->goaway = true;
    h->goaway_last = nghttp2_session_get_last_proc_stream_id(h->s);
    nghttp2_submit_goaway(h->s, NGHTTP2_FLAG_NONE, h->goaway_last, NGHTTP2_NO_ERROR, NULL, 0);
    return true;
}

bool ts_h2_want_read(const struct ts_h2 *h)
{
    return nghttp2_session_want_read(h->s) != 0;
}

bool ts_h2_want_write(const struct ts_h2 *h)
{
    return nghttp2_session_want_write(h->s) != 0;
}

unsigned ts_h2_open_streams(const struct ts_h2 *h)
{
    return h->open + h->waiting;
}

bool ts_h2_stalled(const struct ts_h2 *h)
{
    return h->pending > 0; /* counted, not searched: this runs on every wait */
}

unsigned ts_h2_expire_stalled(struct ts_h2 *h, uint64_t now_ms, uint64_t send_ms, bool force)
{
    if (h->pending == 0 || (!force && now_ms - h->checked_ms < TS_H2_STALL_CHECK_MS)) return 0;
    h->checked_ms = now_ms;
    unsigned n = 0;
    /* only a window the client keeps shut: a stream that waits its turn behind others (RFC
     * 7540 priorities, a slow reader of many streams) is the connection's business, which the
     * send timer of its socket watches */
    bool conn_shut = nghttp2_session_get_remote_window_size(h->s) <= 0;
    for (struct stream *st = h->streams; st; st = st->next) {
        if (!st->dispatched || st->unscheduled == 0) continue;
        if (!conn_shut && nghttp2_session_get_stream_remote_window_size(h->s, st->id) > 0) {
            st->progress_ms = now_ms; /* its deadline runs from when its window shuts */
            continue;
        }
        if (now_ms - st->progress_ms < send_ms) continue;
        nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
        n++;
    }
    return n;
}

size_t ts_h2_backlog(const struct ts_h2 *h)
{
    return nghttp2_session_get_outbound_queue_size(h->s);
}

int ts_h2_flood(const struct ts_h2 *h)
{
    return h->flood;
}
