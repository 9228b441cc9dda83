/* Connections: the state machine HANDSHAKE -> READ_REQUEST -> SEND_RESPONSE -> ... -> SHUTDOWN,
 * its buffers and timeouts, and the one place that closes and frees a connection. */
#ifndef TS_CONN_H
#define TS_CONN_H

#include "tls.h"

#include <stddef.h>
#include <stdint.h>

struct ts_conn;
struct ts_handoff;
struct ts_timer;
struct ts_worker;

/* Takes ownership of a socket handed to worker w: registers it and starts the handshake.
 * Worker thread. Closes the socket itself if it cannot be set up. */
void ts_conn_accept(struct ts_worker *w, const struct ts_handoff *h);

/* A transport standing in for the socket: each call behaves as recv/send on a non-blocking
 * socket would, returning TS_IO_OK with a count above 0, TS_IO_WANT_READ/TS_IO_WANT_WRITE,
 * TS_IO_CLOSE_NOTIFY (the peer's orderly end), TS_IO_EOF (reset) or TS_IO_ERROR. */
struct ts_conn_io {
    enum ts_io (*read)(void *ctx, void *buf, size_t len, size_t *got);
    enum ts_io (*write)(void *ctx, const void *buf, size_t len, size_t *put);
};

/* For tests and fuzzing: like ts_conn_accept, but the bytes go through io (ctx passed back)
 * with no TLS, and requests are answered as if they came over TLS. h->fd must still be a
 * non-blocking socket (epoll, shutdown, lingering and close use it); io and ctx must outlive
 * the connection, which ends like any other (the worker's lists, timers, ts_conn_on_event). */
void ts_conn_accept_transport(struct ts_worker *w, const struct ts_handoff *h,
                              const struct ts_conn_io *io, void *ctx);

/* Runs the connection's state machine after epoll reported events on it. May free it. */
void ts_conn_on_event(struct ts_conn *c, uint32_t events);

/* Runs the connections that yielded earlier in this loop turn with work left (each at most
 * once; one that yields again waits for the next turn). Worker thread. May free them. */
void ts_conn_run_ready(struct ts_worker *w);

/* Called by the worker when the connection's timer expired. May free it. */
void ts_conn_on_timeout(struct ts_timer *t);

/* The worker is stopping: idle connections get close_notify now, busy ones finish their
 * response and then close. May free it. */
void ts_conn_drain(struct ts_conn *c);

/* The drain deadline passed: close at once without TLS shutdown. Frees it. */
void ts_conn_abort(struct ts_conn *c);

/* The next connection in the worker's list (for walking it while connections close). */
struct ts_conn *ts_conn_next(const struct ts_conn *c);

/* Sizes of the blocks connections take from the worker's pools. */
size_t ts_conn_inbuf_size(int max_header_bytes);
size_t ts_conn_outbuf_size(void);

#endif
