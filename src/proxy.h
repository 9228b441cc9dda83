/* The PROXY protocol header (HAProxy's, versions 1 and 2) that a proxy in front of the server
 * sends before the TLS ClientHello to say who the real client is. A pure parser: no I/O. */
#ifndef TS_PROXY_H
#define TS_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TS_PROXY_V1_MAX 107 /* the longest v1 line, "PROXY TCP6 ..." with its CRLF */
#define TS_PROXY_V2_MAX 536 /* the longest v2 header accepted: 16 bytes + addresses + TLVs */
#define TS_PROXY_MAX    TS_PROXY_V2_MAX

enum ts_proxy_status { TS_PROXY_NEED_MORE, TS_PROXY_DONE, TS_PROXY_ERROR };

struct ts_proxy_result {
    size_t consumed; /* TS_PROXY_DONE: the header's length; the bytes after it are the client's */
    int version;     /* 1 or 2 */
    bool local;      /* no address to use (v1 UNKNOWN, v2 LOCAL, UNSPEC or UNIX): keep the peer */
    int family;      /* AF_INET or AF_INET6 when !local */
    unsigned char src[16], dst[16]; /* 4 bytes for AF_INET */
    uint16_t src_port, dst_port;
    const char *error; /* TS_PROXY_ERROR: why, a static string for the log */
};

/* Parses the header at the start of buf[0..len). Returns TS_PROXY_NEED_MORE while buf is a
 * valid beginning of a header shorter than the whole, TS_PROXY_DONE with out filled, or
 * TS_PROXY_ERROR with out->error (also as soon as the first bytes cannot start a header).
 * Thread-safe; reads no byte past buf + len. */
enum ts_proxy_status ts_proxy_parse(const uint8_t *buf, size_t len, struct ts_proxy_result *out);

#endif
