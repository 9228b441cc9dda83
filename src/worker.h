/* Worker threads: each owns an epoll loop, a handoff queue fed by the acceptor, ordered timer
 * lists, buffer pools and its counters. A connection belongs to exactly one worker. */
#ifndef TS_WORKER_H
#define TS_WORKER_H

#include "log.h"
#include "stats.h"

#include <netinet/in.h>
#include <openssl/types.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct ts_config;
struct ts_conn;
struct ts_gen;
struct ts_listen_proxy;

/* Timer kinds: one list per kind, each with a fixed duration, so appending keeps a list
 * ordered by expiry and the earliest deadline is always at a head (no scanning). */
enum ts_timer_kind {
    TS_TIMER_HANDSHAKE,
    TS_TIMER_REQUEST,
    TS_TIMER_KEEPALIVE,
    TS_TIMER_SEND,
    TS_TIMER_SHUTDOWN,
    TS_TIMER_RELEASE, /* not a timeout: frees an idle connection's TLS buffers */
    TS_TIMER_GOAWAY,  /* nor this: HTTP/2's graceful close stops waiting for its PING's ACK */
    TS_TIMER_N,
    TS_TIMER_NONE = TS_TIMER_N
};

/* An idle connection gives its TLS record buffers back after this long: soon enough that idle
 * connections stay small, late enough that a busy keep-alive connection keeps them between
 * requests instead of allocating and freeing 2 x 17 KB each time. */
#define TS_RELEASE_AFTER_MS 200

/* HTTP/2's graceful close sends its final GOAWAY when the client answers the PING, or this long
 * after the first GOAWAY if it does not (a vanished peer must not hold a drain for drain_s). */
#define TS_GOAWAY_ACK_MS 1000

struct ts_timer {
    struct ts_timer *prev, *next;
    uint64_t expires_ms;
    uint8_t kind; /* enum ts_timer_kind */
};

struct ts_timer_list {
    struct ts_timer *head, *tail;
    uint64_t duration_ms;
};

/* A free list of equally sized blocks, so the request path does not call malloc. */
struct ts_pool {
    void *free;
    size_t block_size;
    unsigned nfree, max_free;
};

/* One accepted socket on its way from the acceptor to a worker. */
struct ts_handoff {
    int fd;
    struct ts_gen *gen;                  /* a reference, which the connection takes over */
    bool plain;                          /* from an http_redirect listener */
    const struct ts_listen_proxy *proxy; /* a PROXY protocol listener's settings, or NULL */
    socklen_t addrlen;
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } addr;
};

#define TS_HANDOFF_CAP 1024 /* a power of two */

/* Single-producer (acceptor) single-consumer (worker) ring. */
struct ts_handoff_ring {
    _Atomic uint32_t head; /* next slot the worker takes */
    char pad1[60];
    _Atomic uint32_t tail; /* next slot the acceptor fills */
    char pad2[60];
    struct ts_handoff slots[TS_HANDOFF_CAP];
};

struct ts_server;

struct ts_worker {
    int id;
    pthread_t thread;
    int epfd;
    int evfd; /* the acceptor and the main thread wake the worker through it */
    struct ts_server *srv;
    struct ts_handoff_ring ring;

    uint64_t now_ms; /* CLOCK_MONOTONIC, refreshed per loop turn and per connection run */
    time_t now_s;    /* wall clock seconds */
    char date[40];   /* IMF-fixdate for the Date header, refreshed when now_s changes */

    struct ts_timer_list timers[TS_TIMER_N];
    struct ts_conn *conns; /* every connection this worker owns (for draining) */
    unsigned nconns;
    struct ts_conn *ready_head, *ready_tail; /* yielded with work left: see conn.c */
    unsigned nready;
    struct ts_pool inbufs, outbufs;
    struct ts_fcache *fcache; /* through ts_worker_fcache */
    uint64_t fcache_generation;
    unsigned released; /* idle connections that gave back buffers since the last trim */
    uint64_t last_trim_ms;
    struct ts_access_log access_log;

    _Atomic int stopping;    /* set by the main thread: drain and exit */
    _Atomic int sleeping;    /* in (or about to enter) epoll_wait: the acceptor must wake it */
    uint64_t drain_deadline; /* now_ms when draining must end */

    struct ts_stats stats; /* per-site counters are the generation's: see gen.h */
};

/* Process-wide state built by the main thread before any other thread starts. */
struct ts_server {
    /* The configuration as the process started: read only for the keys a reload cannot
     * change (workers, timeouts, limits.max_connections...). Everything else is read from
     * the generation of the connection at hand. */
    const struct ts_config *cfg;
    SSL_CTX *ssl_ctx; /* the session context: see ts_tls_session_ctx_new */
    struct ts_worker *workers;
    int nworkers;
    time_t started_at;
    _Atomic uint64_t generation; /* the newest generation's number */
    _Atomic uint64_t reloads, reload_failures;
    _Atomic int64_t last_reload_at; /* wall clock seconds; 0: never */
    pthread_mutex_t reload_lock;    /* guards gen and last_reload_error */
    struct ts_gen *gen;             /* the newest generation (the main thread's reference) */
    char last_reload_error[1024];   /* "" after a success */
    _Atomic int open_conns;         /* for limits.max_connections; acceptor + workers */
    _Atomic uint64_t rejected;      /* closed at once by the acceptor (limits, queue full) */
};

/* Creates the worker's epoll set, eventfd and pools. Main thread. Returns 0 or -1 (errno). */
int ts_worker_init(struct ts_worker *w, struct ts_server *srv, int id);

/* Starts the thread running the worker's loop. */
int ts_worker_start(struct ts_worker *w);

/* Queues an accepted socket for the worker; the acceptor thread only. Does not wake the
 * worker (call ts_worker_wake after a batch). Returns false when the queue is full. */
bool ts_worker_submit(struct ts_worker *w, const struct ts_handoff *h);

/* Wakes the worker's loop (any thread). */
void ts_worker_wake(struct ts_worker *w);

/* Wakes the worker after ts_worker_submit only if it is asleep (acceptor thread). */
void ts_worker_notify(struct ts_worker *w);

/* Sockets waiting in the handoff queue (any thread; approximate). */
unsigned ts_worker_queue_depth(struct ts_worker *w);

/* Asks the worker to finish in-flight work, close idle connections and exit (main thread). */
void ts_worker_stop(struct ts_worker *w);

/* Waits for the worker's thread to exit (main thread). */
void ts_worker_join(struct ts_worker *w);

/* Frees what ts_worker_init made (main thread), once every worker has been joined: a worker
 * still draining reads the others' per-site counters for /status. */
void ts_worker_destroy(struct ts_worker *w);

/* Arms t on the list of its kind (re-arming moves it to the tail). Worker thread. */
void ts_worker_timer_set(struct ts_worker *w, struct ts_timer *t, enum ts_timer_kind kind);

/* Disarms t if it is armed. Worker thread. */
void ts_worker_timer_clear(struct ts_worker *w, struct ts_timer *t);

/* The worker's file cache for a request of generation number `generation`: emptied first
 * when that is newer than every request's before it (see struct ts_gen). Worker thread. */
struct ts_fcache *ts_worker_fcache(struct ts_worker *w, uint64_t generation);

/* Moves w->now_ms forward to the coarse monotonic clock (a few ns, no system call), so a
 * timer armed late in a long loop turn does not start already partly elapsed. Worker thread. */
void ts_worker_touch_clock(struct ts_worker *w);

/* Takes a block from / returns a block to a pool. Worker thread; aborts on out-of-memory. */
void *ts_pool_get(struct ts_pool *p);
void ts_pool_put(struct ts_pool *p, void *block);

#endif
