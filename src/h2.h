/* The HTTP/2 codec: one libnghttp2 server session per connection (framing, HPACK, flow control
 * and stream states are the library's). Each stream carries its own struct ts_req, filled from
 * the header block like the HTTP/1.1 codec fills it from text; the connection answers it
 * through ts_handler_handle and hands the response back to be sent as HEADERS and DATA. */
#ifndef TS_H2_H
#define TS_H2_H
#include "response.h"
#include "stats.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ts_config;
struct ts_h2;

/* Frames a client may send in a row that make no progress (PRIORITY, WINDOW_UPDATE, empty
 * DATA, RST_STREAM of a stream never answered...) before the connection ends with GOAWAY
 * ENHANCE_YOUR_CALM; a new request starts the count again. */
#define TS_H2_IDLE_FRAMES_MAX 1000
/* A request body (none is taken) up to this size is read and dropped before the request is
 * answered; a larger one is answered as soon as it passes this (one frame of the default size). */
#define TS_H2_BODY_DISCARD_MAX 16384
/* A header list that decodes past this many times limits.max_header_bytes ends the connection
 * (GOAWAY ENHANCE_YOUR_CALM) instead of being decoded to its end for a 431: an HPACK bomb. */
#define TS_H2_HEADER_LIST_CUT 4
/* A WINDOW_UPDATE that returns at least this much credit for DATA sent is work, not a frame
 * without progress. */
#define TS_H2_CREDIT_MIN 1024
/* How often a connection with streams held back by flow control looks for expired ones. */
#define TS_H2_STALL_CHECK_MS 1000
/* Unsent bytes the kernel may hold for an HTTP/2 connection (TCP_NOTSENT_LOWAT). */
#define TS_H2_NOTSENT_LOWAT 16384
/* Frames queued unsent past which a connection whose output is blocked stops reading. */
#define TS_H2_BACKLOG_MAX 512

/* How the codec reaches the connection above it. */
struct ts_h2_hooks {
    /* A request's header block is complete: answer req (ts_h2_respond), now or later. */
    void (*request)(void *conn, struct ts_req *req);
    /* A stream that carried a request is closed (answered, reset or abandoned); body is the
     * bytes of body sent. The codec frees req afterwards. */
    void (*done)(void *conn, struct ts_req *req, uint64_t body);
};

/* Creates the session and queues the server's SETTINGS. NULL on out-of-memory. */
struct ts_h2 *ts_h2_new(const struct ts_config *cfg, const struct ts_h2_hooks *hooks, void *conn,
                        struct ts_stats *stats);
/* Closes every stream (done is called for those with a request) and frees the session. */
void ts_h2_free(struct ts_h2 *h);
/* Feeds bytes read from the client. now_ms stamps requests starting in them. Returns -1 when
 * the session is broken: what is queued (a GOAWAY) should still be sent, then close. */
int ts_h2_recv(struct ts_h2 *h, const void *data, size_t len, uint64_t now_ms);
/* Submits the response the handler built for req (a request this codec reported). */
void ts_h2_respond(struct ts_h2 *h, struct ts_req *req, const char *date);
/* Serializes queued frames into buf[0..cap); DATA comes from the response's segments (files
 * read by pread(2) straight into buf); now_ms stamps the streams that make progress. Returns
 * the bytes written, -1 on a fatal error. */
long ts_h2_send(struct ts_h2 *h, char *buf, size_t cap, uint64_t now_ms);
/* Begins the graceful close: GOAWAY (NO_ERROR) naming no limit, then a PING; the PING's ACK
 * queues the ts_h2_goaway that names the last stream, so no stream the client sent before it
 * read the first GOAWAY is refused (the caller calls ts_h2_goaway itself if no ACK comes).
 * Once only: false if a close was begun already. */
bool ts_h2_shutdown(struct ts_h2 *h);
/* Whether ts_h2_shutdown or ts_h2_goaway was called. */
bool ts_h2_closing(const struct ts_h2 *h);
/* Ends the connection: GOAWAY (NO_ERROR) with the last stream accepted; streams in flight
 * finish, later ones are refused. Once only: false if it was already queued. */
bool ts_h2_goaway(struct ts_h2 *h);
/* Whether the session still reads / has frames to send; both false: the connection is done. */
bool ts_h2_want_read(const struct ts_h2 *h);
bool ts_h2_want_write(const struct ts_h2 *h);
/* Streams that carry a request not yet closed. */
unsigned ts_h2_open_streams(const struct ts_h2 *h);
/* Frees the closed streams kept for reuse (an idle session need not hold them). */
void ts_h2_trim(struct ts_h2 *h);
/* Whether a stream has body left that the client's flow-control window holds back. */
bool ts_h2_stalled(const struct ts_h2 *h);
/* Resets (RST_STREAM CANCEL) the streams whose body has not moved for send_ms (the client's
 * window stays shut, whatever else it sends: PINGs do not keep a stream alive). Looks at most
 * once per TS_H2_STALL_CHECK_MS unless force. Returns how many. */
unsigned ts_h2_expire_stalled(struct ts_h2 *h, uint64_t now_ms, uint64_t send_ms, bool force);
/* Frames queued in the session and not yet serialized (responses, ACKs, resets): input is not
 * read while output is blocked and this passes TS_H2_BACKLOG_MAX. */
size_t ts_h2_backlog(const struct ts_h2 *h);
/* Why the session broke (enum ts_h2_flood), or TS_H2_FLOOD_N if not for a flood. */
int ts_h2_flood(const struct ts_h2 *h);
#endif
