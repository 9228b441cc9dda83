/* Worker threads: the epoll loop, the handoff ring the acceptor fills, timer lists and buffer
 * pools. Everything here but the ring and the stop flag is touched by the worker alone. */
#include "worker.h"
#include "config.h"
#include "conn.h"
#include "fcache.h"
#include "gen.h"
#include "response.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MAX_EVENTS       256
#define POOL_MAX_FREE    128
#define TRIM_INTERVAL_MS 1000 /* malloc_trim at most this often */

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void *ts_pool_get(struct ts_pool *p)
{
    void *b = p->free;
    if (b) {
        memcpy(&p->free, b, sizeof(void *));
        p->nfree--;
        return b;
    }
    b = malloc(p->block_size);
    if (!b) abort(); /* nothing sensible to do on a request path without memory */
    return b;
}

void ts_pool_put(struct ts_pool *p, void *b)
{
    if (p->nfree >= p->max_free) {
        free(b);
        return;
    }
    memcpy(b, &p->free, sizeof(void *));
    p->free = b;
    p->nfree++;
}

static void pool_destroy(struct ts_pool *p)
{
    while (p->free) {
        void *b = p->free;
        memcpy(&p->free, b, sizeof(void *));
        free(b);
    }
    p->nfree = 0;
}

void ts_worker_timer_clear(struct ts_worker *w, struct ts_timer *t)
{
    if (t->kind == TS_TIMER_NONE) return;
    struct ts_timer_list *l = &w->timers[t->kind];
    if (t->prev)
        t->prev->next = t->next;
    else
        l->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        l->tail = t->prev;
    t->prev = t->next = NULL;
    t->kind = TS_TIMER_NONE;
}

void ts_worker_timer_set(struct ts_worker *w, struct ts_timer *t, enum ts_timer_kind kind)
{
    ts_worker_timer_clear(w, t);
    struct ts_timer_list *l = &w->timers[kind];
    t->kind = (uint8_t)kind;
    t->expires_ms = w->now_ms + l->duration_ms;
    t->next = NULL;
    t->prev = l->tail;
    if (l->tail)
        l->tail->next = t;
    else
        l->head = t;
    l->tail = t;
}

/* Milliseconds until the earliest timer, or -1 when none is armed. */
static int next_timeout(const struct ts_worker *w)
{
    uint64_t first = UINT64_MAX;
    for (int k = 0; k < TS_TIMER_N; k++)
        if (w->timers[k].head && w->timers[k].head->expires_ms < first)
            first = w->timers[k].head->expires_ms;
    if (w->released && w->last_trim_ms + TRIM_INTERVAL_MS < first)
        first = w->last_trim_ms + TRIM_INTERVAL_MS; /* wake up for a pending trim */
    if (first == UINT64_MAX) return -1;
    if (first <= w->now_ms) return 0;
    uint64_t d = first - w->now_ms;
    return d > 60000 ? 60000 : (int)d;
}

static void expire_timers(struct ts_worker *w)
{
    for (int k = 0; k < TS_TIMER_N; k++) {
        struct ts_timer_list *l = &w->timers[k];
        while (l->head && l->head->expires_ms <= w->now_ms) {
            struct ts_timer *t = l->head;
            l->head = t->next;
            if (l->head)
                l->head->prev = NULL;
            else
                l->tail = NULL;
            t->prev = t->next = NULL; /* t->kind stays set: the handler reads it */
            ts_conn_on_timeout(t);
        }
    }
}

int ts_worker_init(struct ts_worker *w, struct ts_server *srv, int id)
{
    const struct ts_config *cfg = srv->cfg;
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->srv = srv;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->epfd < 0 || w->evfd < 0) return -1;
    /* edge-triggered, and never read: every write raises an edge, and the 64-bit counter
     * cannot overflow in practice, so a wake-up costs the worker no read(2) */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = NULL};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &ev) < 0) return -1;
    w->timers[TS_TIMER_HANDSHAKE].duration_ms = (uint64_t)cfg->timeouts.handshake_s * 1000;
    w->timers[TS_TIMER_REQUEST].duration_ms = (uint64_t)cfg->timeouts.request_header_s * 1000;
    w->timers[TS_TIMER_KEEPALIVE].duration_ms = (uint64_t)cfg->timeouts.keepalive_s * 1000;
    w->timers[TS_TIMER_SEND].duration_ms = (uint64_t)cfg->timeouts.send_s * 1000;
    w->timers[TS_TIMER_SHUTDOWN].duration_ms = (uint64_t)cfg->timeouts.shutdown_s * 1000;
    w->timers[TS_TIMER_RELEASE].duration_ms = TS_RELEASE_AFTER_MS;
    w->timers[TS_TIMER_GOAWAY].duration_ms = TS_GOAWAY_ACK_MS;
    w->inbufs.block_size = ts_conn_inbuf_size(cfg->limits.max_header_bytes);
    w->inbufs.max_free = POOL_MAX_FREE;
    w->outbufs.block_size = ts_conn_outbuf_size();
    w->outbufs.max_free = POOL_MAX_FREE;
    w->fcache = ts_fcache_new((unsigned)cfg->file_cache.entries, (unsigned)cfg->file_cache.valid_ms,
                              (size_t)cfg->file_cache.content_max_file_bytes,
                              (size_t)cfg->file_cache.content_bytes);
    w->now_ms = monotonic_ms();
    ts_response_update_date(w);
    return 0;
}

bool ts_worker_submit(struct ts_worker *w, const struct ts_handoff *h)
{
    struct ts_handoff_ring *r = &w->ring;
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    if (tail - head == TS_HANDOFF_CAP) return false;
    r->slots[tail & (TS_HANDOFF_CAP - 1)] = *h;
    /* seq_cst: pairs with the worker's store to `sleeping` and its re-check of the ring
     * (see worker_main), so either the worker sees this socket or we see it asleep */
    atomic_store_explicit(&r->tail, tail + 1, memory_order_seq_cst);
    return true;
}

void ts_worker_wake(struct ts_worker *w)
{
    uint64_t one = 1;
    ssize_t n = write(w->evfd, &one, sizeof(one));
    (void)n; /* EAGAIN means the counter is already non-zero: the worker will wake */
}

void ts_worker_notify(struct ts_worker *w)
{
    /* a worker that is awake takes new sockets at the top of its next loop turn */
    if (atomic_load_explicit(&w->sleeping, memory_order_seq_cst)) ts_worker_wake(w);
}

unsigned ts_worker_queue_depth(struct ts_worker *w)
{
    uint32_t tail = atomic_load_explicit(&w->ring.tail, memory_order_acquire);
    uint32_t head = atomic_load_explicit(&w->ring.head, memory_order_acquire);
    return tail - head;
}

static bool handoffs_waiting(struct ts_worker *w)
{
    return atomic_load_explicit(&w->ring.tail, memory_order_seq_cst) !=
           atomic_load_explicit(&w->ring.head, memory_order_relaxed);
}

static void take_handoffs(struct ts_worker *w)
{
    struct ts_handoff_ring *r = &w->ring;
    uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    /* served even while stopping: the acceptor stopped first, so these were accepted before
     * the stop and a client waits on each (closing them unread would reset them); they get
     * one response each, with Connection: close or a GOAWAY */
    while (head != tail) {
        struct ts_handoff h = r->slots[head & (TS_HANDOFF_CAP - 1)];
        atomic_store_explicit(&r->head, ++head, memory_order_release);
        ts_conn_accept(w, &h);
        ts_worker_touch_clock(w); /* a batch of handshakes takes a while */
    }
}

/* Freed TLS buffers leave holes between the small objects of live connections, and glibc
 * keeps such pages resident. Once many connections went idle, hand those pages back to the
 * kernel, at most once a second (malloc_trim walks the arenas) and soon after the last
 * release, so a burst of connections that went idle does not leave its buffers resident. */
static void trim_heap(struct ts_worker *w)
{
    if (w->released == 0 || w->now_ms - w->last_trim_ms < TRIM_INTERVAL_MS) return;
    malloc_trim(0);
    w->released = 0;
    w->last_trim_ms = w->now_ms;
}

struct ts_fcache *ts_worker_fcache(struct ts_worker *w, uint64_t generation)
{
    if (generation > w->fcache_generation) {
        ts_fcache_flush(w->fcache);
        w->fcache_generation = generation;
    }
    return w->fcache;
}

void ts_worker_touch_clock(struct ts_worker *w)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    if (ms > w->now_ms) w->now_ms = ms; /* the coarse clock may lag the precise one by a tick */
}

static void refresh_clock(struct ts_worker *w)
{
    w->now_ms = monotonic_ms();
    ts_response_update_date(w);
}

static void for_each_conn(struct ts_worker *w, void (*fn)(struct ts_conn *))
{
    struct ts_conn *c = w->conns;
    while (c) {
        struct ts_conn *next = ts_conn_next(c); /* fn may free c */
        fn(c);
        c = next;
    }
}

static void *worker_main(void *arg)
{
    struct ts_worker *w = arg;
    struct epoll_event events[MAX_EVENTS];
    bool draining = false;
    char name[16];
    snprintf(name, sizeof(name), "tessera-w%d", w->id);
    pthread_setname_np(pthread_self(), name);

    for (;;) {
        refresh_clock(w);
        if (atomic_load_explicit(&w->stopping, memory_order_acquire)) {
            if (!draining) {
                draining = true;
                w->drain_deadline = w->now_ms + (uint64_t)w->srv->cfg->timeouts.drain_s * 1000;
                for_each_conn(w, ts_conn_drain);
            }
            if (w->nconns == 0 && !handoffs_waiting(w)) break;
            if (w->now_ms >= w->drain_deadline) {
                for_each_conn(w, ts_conn_abort);
                break;
            }
        }
        take_handoffs(w);
        int timeout = next_timeout(w);
        if (draining && (timeout < 0 || timeout > 100)) timeout = 100;
        /* lines a full pipe did not take are tried again soon, not at the next event */
        if (ts_log_access_flush(&w->access_log) &&
            (timeout < 0 || timeout > TS_LOG_ACCESS_RETRY_MS))
            timeout = TS_LOG_ACCESS_RETRY_MS;
        /* Announce the sleep, then look at the ring once more: a socket queued before the
         * announcement is seen here, one queued after it comes with a wake-up. */
        atomic_store_explicit(&w->sleeping, 1, memory_order_seq_cst);
        if (handoffs_waiting(w) || w->ready_head) timeout = 0;
        int n = epoll_wait(w->epfd, events, MAX_EVENTS, timeout);
        atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed);
        if (n < 0 && errno != EINTR) {
            ts_log_error("worker %d: epoll_wait: %s", w->id, strerror(errno));
            break;
        }
        refresh_clock(w);
        for (int i = 0; i < n; i++) {
            if (events[i].data.ptr == NULL) continue; /* the eventfd only wakes: see the ring */
            ts_conn_on_event(events[i].data.ptr, events[i].events);
            ts_worker_touch_clock(w);
        }
        ts_conn_run_ready(w);
        refresh_clock(w);
        expire_timers(w);
        trim_heap(w);
    }
    for_each_conn(w, ts_conn_abort);
    ts_log_access_finish(&w->access_log);
    return NULL;
}

int ts_worker_start(struct ts_worker *w)
{
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    if (rc != 0) errno = rc;
    return rc == 0 ? 0 : -1;
}

void ts_worker_stop(struct ts_worker *w)
{
    atomic_store_explicit(&w->stopping, 1, memory_order_release);
    ts_worker_wake(w);
}

void ts_worker_join(struct ts_worker *w)
{
    pthread_join(w->thread, NULL);
}

void ts_worker_destroy(struct ts_worker *w)
{
    /* sockets still queued when the worker exited */
    uint32_t head = atomic_load(&w->ring.head), tail = atomic_load(&w->ring.tail);
    for (; head != tail; head++) {
        close(w->ring.slots[head & (TS_HANDOFF_CAP - 1)].fd);
        ts_gen_unref(w->ring.slots[head & (TS_HANDOFF_CAP - 1)].gen);
    }
    ts_fcache_free(w->fcache);
    w->fcache = NULL;
    pool_destroy(&w->inbufs);
    pool_destroy(&w->outbufs);
    if (w->epfd >= 0) close(w->epfd);
    if (w->evfd >= 0) close(w->evfd);
}
