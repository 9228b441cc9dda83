/* HTTP semantics shared by the codecs and the handler: the request as a codec parsed it,
 * whatever the wire format, and small helpers over header values. Nothing here knows about
 * HTTP/1.1 text or a connection's buffers. */
#ifndef TS_HTTP_H
#define TS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ts_str {
    const char *p;
    size_t len;
};

/* One piece of a response body: bytes of memory, or (mem NULL) a byte range of the file. */
struct ts_seg {
    const char *mem;
    uint64_t off, len;
};

#define TS_MAX_SEGS 34 /* a multipart/byteranges body: a head per range, the ranges, a tail */

/* Request headers the server acts on; others are parsed and skipped. */
enum ts_hdr {
    TS_HDR_HOST,
    TS_HDR_CONNECTION,
    TS_HDR_IF_NONE_MATCH,
    TS_HDR_IF_MODIFIED_SINCE,
    TS_HDR_RANGE,
    TS_HDR_IF_RANGE,
    TS_HDR_ACCEPT,
    TS_HDR_ACCEPT_ENCODING,
    TS_HDR_REFERER,
    TS_HDR_USER_AGENT,
    TS_HDR_N
};

/* What a codec parsed. The strings point into storage the codec keeps in place until the
 * response is sent (HTTP/1.1: the connection's read buffer). */
struct ts_request {
    struct ts_str target; /* as sent: path and query */
    struct ts_str path;   /* target up to '?' */
    struct ts_str query;  /* from '?' (included), or empty */
    struct ts_str hdr[TS_HDR_N];
    uint8_t method;     /* enum llhttp_method, whatever the codec */
    uint8_t http_minor; /* HTTP/1.minor, as handled: 1 for a higher minor the client sent */
    bool has_body;      /* a body follows the header block (never read: see ts_h1_keep_alive) */
    char protocol[9];   /* the version as the client sent it ("HTTP/1.2"), "" before it is known */
    int error;          /* 400, 413, 414, 431, 501, 505 found while parsing, else 0 */
    const char *error_reason;
};

/* Whether a comma-separated header value lists token (case-insensitive, parameters such as
 * ";q=0.5" ignored, but an item with q=0 counts as absent). */
bool ts_http_has_token(struct ts_str value, const char *token);

/* Percent-decodes path (the request target up to '?', which must start with '/'), removes
 * dot segments and empty segments, and writes the result relative to the root (no leading
 * '/'; "" is the root; a trailing '/' is kept). Rejects %00, encoded '/', bad escapes and ".."
 * above the root. Returns 0, or the HTTP status to answer (400, 414). A location path in the
 * configuration must be what this makes of itself, with its '/' (config.c). Any thread. */
int ts_http_resolve_path(const char *path, size_t len, char *out, size_t outlen);

#endif
