/* HTTP/1.1 requests: llhttp glue that records the request in place (pointers into the read
 * buffer, nothing copied), the limits checked while parsing, and routing to a handler. */
#ifndef TS_HTTP_H
#define TS_HTTP_H

#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ts_worker;
struct ts_cert_info;
struct ts_file;

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

/* One request and the response being made for it. Lives in the connection's read block from
 * the first byte of the request until its response is sent. */
struct ts_req {
    /* the request */
    struct ts_str target; /* as sent: path and query */
    struct ts_str path;   /* target up to '?' */
    struct ts_str query;  /* from '?' (included), or empty */
    struct ts_str hdr[TS_HDR_N];
    struct ts_str cur_field, cur_value; /* header being parsed */
    const char *raw;                    /* the request's first byte */
    uint8_t method;                     /* enum llhttp_method */
    uint8_t http_minor;
    uint8_t nhost;
    bool complete;
    bool has_body;
    bool in_url;     /* still reading the request target (for 414 on a full buffer) */
    int error;       /* 400, 413, 414, 431, 501 found while parsing, else 0 */
    const char *error_reason;

    /* the response */
    int status;
    bool keep_alive;     /* decided before headers are written */
    bool head_only;      /* HEAD: headers, no body */
    char *out;           /* header block (the connection's write buffer) */
    size_t out_len, out_cap;
    size_t header_len;   /* bytes of out that are the header block */
    struct ts_file *file; /* the file segments read from (referenced), or NULL */
    char *body_owned;    /* malloc'ed memory segments may point into; freed at the end */
    struct ts_seg segs[TS_MAX_SEGS];
    uint8_t nsegs, cur_seg;
    uint64_t body_left; /* bytes of all segments not yet sent */

    /* context */
    struct ts_worker *w;
    const char *remote;  /* peer address, printable */
    int peer_family;     /* AF_INET (4 bytes in peer_addr) or AF_INET6 (16) */
    const unsigned char *peer_addr;
    const struct ts_cert_info *cert;
    bool plain; /* arrived on an http_redirect listener: answer with a redirect to https */
};

enum ts_http_parse {
    TS_HTTP_NEED_MORE, /* all input consumed, request incomplete */
    TS_HTTP_REQUEST,   /* a request is ready; *consumed bytes belong to it */
    TS_HTTP_ERROR,     /* req->error holds the status to answer, then close */
};

/* Prepares parser and req for the next request on a connection (keeps nothing from the
 * previous one). */
void ts_http_begin(llhttp_t *parser, struct ts_req *req);

/* Feeds data[0..len) to the parser. The request's strings point into data (and into earlier
 * input of the same request, which must still be in place and contiguous). Sets *consumed to
 * the bytes parsed; input after a complete request is left for the next call. */
enum ts_http_parse ts_http_parse(llhttp_t *parser, struct ts_req *req, const char *data,
                                 size_t len, size_t *consumed, size_t max_uri);

/* Routes a parsed request to its handler, which fills the response part of req. Worker
 * thread; never blocks on the network (files are local). */
void ts_http_handle(struct ts_req *req);

/* Whether rel, a path under the root (no leading '/'), may be served to this request: 0, 404
 * for a hidden path (dotfiles "deny"), or 403 when a location covering it requires a client
 * certificate the connection did not present. Called on the URL's path and on where the
 * opened file really is (symlinks resolved), so the stricter rule wins. */
int ts_http_access(const struct ts_req *req, const char *rel);

/* Answers a refusal from ts_http_access (403: the client-certificate page; 404). */
void ts_http_refuse(struct ts_req *req, int status);

/* Whether a comma-separated header value lists token (case-insensitive, parameters such as
 * ";q=0.5" ignored, but an item with q=0 counts as absent). */
bool ts_http_has_token(struct ts_str value, const char *token);

#endif
