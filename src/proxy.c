/* PROXY protocol v1 (one text line) and v2 (binary) header parsing. Strict: a proxy sends
 * exactly the documented form, so anything else is an attack or a misconfiguration. */
#include "proxy.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

static const uint8_t v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                   0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
static const char v1_sig[] = "PROXY ";

static enum ts_proxy_status fail(struct ts_proxy_result *out, const char *why)
{
    out->error = why;
    return TS_PROXY_ERROR;
}

/* A decimal port, 0..65535, without sign or leading zero. Returns 0 or -1. */
static int parse_port(const char *s, size_t n, uint16_t *port)
{
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0')) return -1;
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > 65535) return -1;
    *port = (uint16_t)v;
    return 0;
}

/* Splits the next space-terminated (or, for the last, line-terminated) field off *p. */
static int next_field(const char **p, const char *end, bool last, const char **f, size_t *n)
{
    const char *s = *p;
    const char *e = s;
    while (e < end && *e != ' ') e++;
    if (e == s || (last ? e != end : e == end)) return -1;
    *f = s;
    *n = (size_t)(e - s);
    *p = last ? e : e + 1;
    return 0;
}

static int parse_addr(int family, const char *s, size_t n, unsigned char *addr)
{
    char tmp[64];
    if (n >= sizeof(tmp)) return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return inet_pton(family, tmp, addr) == 1 ? 0 : -1;
}

/* "PROXY TCP4 1.2.3.4 5.6.7.8 1234 443\r\n": single spaces, no field may be empty. */
static enum ts_proxy_status parse_v1(const uint8_t *buf, size_t len, struct ts_proxy_result *out)
{
    size_t max = len < TS_PROXY_V1_MAX ? len : TS_PROXY_V1_MAX;
    size_t eol = 0;
    bool found = false;
    for (size_t i = 0; i < max; i++) {
        if (buf[i] == '\r') {
            if (i + 1 >= TS_PROXY_V1_MAX) return fail(out, "v1: line longer than 107 bytes");
            if (i + 1 == len) return TS_PROXY_NEED_MORE;
            if (buf[i + 1] != '\n') return fail(out, "v1: CR without LF");
            eol = i;
            found = true;
            break;
        }
        /* printable ASCII only: a binary or NUL byte cannot be part of the line */
        if (buf[i] < 0x20 || buf[i] > 0x7e) return fail(out, "v1: control or non-ASCII byte");
    }
    if (!found)
        return len >= TS_PROXY_V1_MAX ? fail(out, "v1: line longer than 107 bytes")
                                      : TS_PROXY_NEED_MORE;
    out->version = 1;
    out->consumed = eol + 2;
    const char *p = (const char *)buf + sizeof(v1_sig) - 1, *end = (const char *)buf + eol;
    if ((size_t)(end - p) >= 7 && memcmp(p, "UNKNOWN", 7) == 0 && (end - p == 7 || p[7] == ' ')) {
        out->local = true; /* the proxy could not tell; whatever follows is to be ignored */
        return TS_PROXY_DONE;
    }
    const char *f;
    size_t n;
    if (next_field(&p, end, false, &f, &n) < 0 || n != 4) return fail(out, "v1: bad protocol");
    if (memcmp(f, "TCP4", 4) == 0)
        out->family = AF_INET;
    else if (memcmp(f, "TCP6", 4) == 0)
        out->family = AF_INET6;
    else
        return fail(out, "v1: bad protocol");
    if (next_field(&p, end, false, &f, &n) < 0 || parse_addr(out->family, f, n, out->src) < 0)
        return fail(out, "v1: bad source address");
    if (next_field(&p, end, false, &f, &n) < 0 || parse_addr(out->family, f, n, out->dst) < 0)
        return fail(out, "v1: bad destination address");
    if (next_field(&p, end, false, &f, &n) < 0 || parse_port(f, n, &out->src_port) < 0)
        return fail(out, "v1: bad source port");
    if (next_field(&p, end, true, &f, &n) < 0 || parse_port(f, n, &out->dst_port) < 0)
        return fail(out, "v1: bad destination port");
    return TS_PROXY_DONE;
}

static enum ts_proxy_status parse_v2(const uint8_t *buf, size_t len, struct ts_proxy_result *out)
{
    if (len < 16) {
        /* version and command are known before the rest: refuse a bad one at once */
        if (len > 12 && (buf[12] >> 4) != 2) return fail(out, "v2: bad version");
        return TS_PROXY_NEED_MORE;
    }
    unsigned ver = buf[12] >> 4, cmd = buf[12] & 0xf, fam = buf[13] >> 4, proto = buf[13] & 0xf;
    size_t body = (size_t)buf[14] << 8 | buf[15];
    if (ver != 2) return fail(out, "v2: bad version");
    if (cmd > 1) return fail(out, "v2: bad command");
    if (16 + body > TS_PROXY_V2_MAX) return fail(out, "v2: header longer than 536 bytes");
    if (fam > 3 || proto > 2) return fail(out, "v2: bad address family or transport");
    if (len < 16 + body) return TS_PROXY_NEED_MORE;
    out->version = 2;
    out->consumed = 16 + body;
    /* LOCAL: the proxy's own connection (a health check); UNSPEC and UNIX carry no address
     * this server could use: both keep the socket's peer */
    if (cmd == 0 || fam == 0 || fam == 3) {
        out->local = true;
        return TS_PROXY_DONE;
    }
    if (proto != 1) return fail(out, "v2: not a stream (TCP) connection");
    const uint8_t *a = buf + 16;
    size_t alen = fam == 1 ? 4 : 16;
    if (body < 2 * alen + 4) return fail(out, "v2: address block too short");
    out->family = fam == 1 ? AF_INET : AF_INET6;
    memcpy(out->src, a, alen);
    memcpy(out->dst, a + alen, alen);
    out->src_port = (uint16_t)(a[2 * alen] << 8 | a[2 * alen + 1]);
    out->dst_port = (uint16_t)(a[2 * alen + 2] << 8 | a[2 * alen + 3]);
    return TS_PROXY_DONE; /* TLVs after the addresses are skipped with the rest */
}

enum ts_proxy_status ts_proxy_parse(const uint8_t *buf, size_t len, struct ts_proxy_result *out)
{
    memset(out, 0, sizeof(*out));
    if (len == 0) return TS_PROXY_NEED_MORE;
    /* Decide on the prefix seen so far, so a direct ClientHello or garbage is refused on its
     * first byte rather than left waiting for the timeout. */
    size_t n1 = len < sizeof(v1_sig) - 1 ? len : sizeof(v1_sig) - 1;
    size_t n2 = len < sizeof(v2_sig) ? len : sizeof(v2_sig);
    if (memcmp(buf, v2_sig, n2) == 0) {
        if (len < sizeof(v2_sig)) return TS_PROXY_NEED_MORE;
        return parse_v2(buf, len, out);
    }
    if (memcmp(buf, v1_sig, n1) == 0) {
        if (len < sizeof(v1_sig) - 1) return TS_PROXY_NEED_MORE;
        return parse_v1(buf, len, out);
    }
    return fail(out, "no PROXY protocol signature");
}
