/* The HTTP/1.1 codec: llhttp glue that records a request in place (pointers into the read
 * buffer, nothing copied) with the limits checked while parsing, and the serializer that
 * writes a neutral response's header block as HTTP/1.1 text. */
#ifndef TS_H1_H
#define TS_H1_H

#include "http.h"
#include "response.h"

#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>

/* The parse state of one request on a connection; the request it fills is neutral. */
struct ts_h1 {
    llhttp_t parser;
    struct ts_request *rq;
    const char *raw;                    /* the request's first byte */
    struct ts_str cur_field, cur_value; /* header being parsed */
    size_t max_uri;                     /* the largest target accepted */
    uint8_t nhost;
    uint8_t minor_sent; /* a minor version over 1, parsed again as 1.1; else 0 */
    bool complete;
    bool in_url; /* still reading the request target (for 414 on a full buffer) */
};

enum ts_h1_parse {
    TS_H1_NEED_MORE, /* all input consumed, request incomplete */
    TS_H1_REQUEST,   /* a request is ready; *consumed bytes belong to it */
    TS_H1_ERROR,     /* rq->error holds the status to answer, then close */
};

/* Prepares h1 and rq for the next request on a connection (keeps nothing from the previous
 * one). */
void ts_h1_begin(struct ts_h1 *h1, struct ts_request *rq);

/* Feeds data[0..len) to the parser. The request's strings point into data (and into earlier
 * input of the same request, which must still be in place and contiguous). Sets *consumed to
 * the bytes parsed; input after a complete request is left for the next call. */
enum ts_h1_parse ts_h1_parse(struct ts_h1 *h1, const char *data, size_t len, size_t *consumed,
                             size_t max_uri);

/* The read buffer filled up before the request was complete: sets rq->error to 414 (still in
 * the target) or 431 (in the headers), with its reason. */
void ts_h1_overflow(struct ts_h1 *h1);

/* Whether the connection can carry another request after this one: the request allows it
 * (HTTP/1.0 keep-alive, no "Connection: close") and has no body, which the parser never reads
 * (the connection must close after any answer to it, or the body would be parsed as a
 * request). */
bool ts_h1_keep_alive(const struct ts_h1 *h1);

/* Writes the header block of resp (status line, Date, Server, its headers, Content-Length,
 * the Connection header that keep_alive and http_minor call for, the blank line) into
 * out[0..cap). Returns its length. */
size_t ts_h1_head(const struct ts_response *resp, uint8_t http_minor, const char *date, char *out,
                  size_t cap);

#endif
