/* Entity tags, HTTP dates and byte ranges. Everything here parses client input, so it is
 * written against the grammar and never trusts a length or number without checking it. */
#include "cond.h"

#include <limits.h>
#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The tag is a digest of what changes when the file does, and of nothing that describes the
 * machine: an inode number in a tag tells an attacker about the file system (as Apache's
 * inode-size-mtime tags did), and differs between servers holding the same files. Without a
 * secret in it, the tag is the same across restarts and across a fleet whose copies keep their
 * mtimes. The path makes a precompressed variant's tag differ from its original's even if
 * both happened to share size and mtime. */
void ts_etag(const struct stat *st, const char *rel, char out[TS_ETAG_MAX])
{
    static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char in[24 + PATH_MAX], md[EVP_MAX_MD_SIZE];
    uint64_t fields[3] = {(uint64_t)st->st_size, (uint64_t)st->st_mtim.tv_sec,
                          (uint64_t)st->st_mtim.tv_nsec};
    size_t rl = strnlen(rel, PATH_MAX);
    memcpy(in, fields, sizeof(fields));
    memcpy(in + sizeof(fields), rel, rl);
    unsigned mdlen = 0;
    if (!EVP_Digest(in, sizeof(fields) + rl, md, &mdlen, EVP_sha256(), NULL) || mdlen < 12)
        memset(md, 0, 12); /* cannot happen with the default provider */
    /* 96 bits, 16 characters of base64url: collisions stay out of reach */
    char *o = out;
    *o++ = '"';
    for (int i = 0; i < 12; i += 3) {
        uint32_t v = (uint32_t)md[i] << 16 | (uint32_t)md[i + 1] << 8 | md[i + 2];
        for (int k = 18; k >= 0; k -= 6) *o++ = b64url[(v >> k) & 63];
    }
    *o++ = '"';
    *o = '\0';
}

static bool ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Compares two entity tags. Weak comparison ignores W/ prefixes; strong requires both to be
 * strong. */
static bool tag_equal(const char *a, size_t al, const char *b, size_t bl, bool weak)
{
    bool aw = al >= 2 && a[0] == 'W' && a[1] == '/';
    bool bw = bl >= 2 && b[0] == 'W' && b[1] == '/';
    if (!weak && (aw || bw)) return false;
    if (aw) a += 2, al -= 2;
    if (bw) b += 2, bl -= 2;
    return al == bl && memcmp(a, b, al) == 0;
}

bool ts_etag_list_matches(struct ts_str list, const char *etag)
{
    size_t el = strlen(etag);
    const char *p = list.p, *end = list.p + list.len;
    while (p < end) {
        while (p < end && (ows(*p) || *p == ',')) p++;
        if (p >= end) break;
        if (*p == '*') return true;
        const char *start = p;
        if (end - p >= 2 && p[0] == 'W' && p[1] == '/') p += 2;
        if (p >= end || *p != '"') return false; /* not a list of entity tags */
        const char *close = memchr(p + 1, '"', (size_t)(end - p - 1));
        if (!close) return false;
        p = close + 1;
        if (tag_equal(start, (size_t)(p - start), etag, el, true)) return true;
    }
    return false;
}

time_t ts_http_date_parse(struct ts_str s)
{
    static const char *const formats[] = {
        "%a, %d %b %Y %H:%M:%S GMT", /* IMF-fixdate */
        "%A, %d-%b-%y %H:%M:%S GMT", /* RFC 850 */
        "%a %b %e %H:%M:%S %Y",      /* asctime */
    };
    char buf[64];
    if (!s.p || s.len == 0 || s.len >= sizeof(buf)) return -1;
    memcpy(buf, s.p, s.len);
    buf[s.len] = '\0';
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        struct tm tm;
        memset(&tm, 0, sizeof(tm));
        const char *rest = strptime(buf, formats[i], &tm);
        if (rest && *rest == '\0') return timegm(&tm);
    }
    return -1;
}

/* Reads a decimal number; false on no digits. Values beyond 2^63 saturate (they can only be
 * beyond any file's end). */
static bool number(const char **p, const char *end, uint64_t *v)
{
    const char *s = *p;
    uint64_t n = 0;
    while (*p < end && **p >= '0' && **p <= '9') {
        unsigned d = (unsigned)(**p - '0');
        n = n > (UINT64_MAX / 4 - d) / 10 ? UINT64_MAX / 4 : n * 10 + d;
        (*p)++;
    }
    *v = n;
    return *p > s;
}

static int by_first(const void *a, const void *b)
{
    const struct ts_range *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

enum ts_range_result ts_range_parse(struct ts_str value, uint64_t size, struct ts_range *out,
                                    int *n)
{
    const char *p = value.p, *end = value.p + value.len;
    *n = 0;
    if (!p || value.len < 6 || strncasecmp(p, "bytes=", 6) != 0) return TS_RANGE_NONE;
    p += 6;
    int specs = 0;
    while (p < end) {
        while (p < end && (ows(*p) || *p == ',')) p++;
        if (p >= end) break;
        if (++specs > TS_MAX_RANGES) return TS_RANGE_NONE;
        uint64_t first, last;
        bool has_first = number(&p, end, &first);
        if (p >= end || *p != '-') return TS_RANGE_NONE;
        p++;
        bool has_last = number(&p, end, &last);
        while (p < end && ows(*p)) p++;
        if (p < end && *p != ',') return TS_RANGE_NONE;
        if (!has_first && !has_last) return TS_RANGE_NONE;
        if (has_first && has_last && last < first) return TS_RANGE_NONE; /* invalid: ignore */
        struct ts_range r;
        if (!has_first) { /* suffix: the last `last` bytes */
            if (last == 0 || size == 0) continue;
            r.first = last >= size ? 0 : size - last;
            r.last = size - 1;
        } else {
            if (first >= size) continue; /* this one is unsatisfiable */
            r.first = first;
            r.last = has_last && last < size ? last : size - 1;
        }
        out[(*n)++] = r;
    }
    if (specs == 0) return TS_RANGE_NONE;
    if (*n == 0) return TS_RANGE_UNSATISFIABLE;
    qsort(out, (size_t)*n, sizeof(*out), by_first);
    int m = 0;
    for (int i = 1; i < *n; i++) {
        if (out[i].first <= out[m].last + 1) { /* overlapping or adjacent: one range */
            if (out[i].last > out[m].last) out[m].last = out[i].last;
        } else {
            out[++m] = out[i];
        }
    }
    *n = m + 1;
    return TS_RANGE_OK;
}

bool ts_if_range_holds(struct ts_str value, const char *etag, time_t mtime)
{
    if (!value.p || value.len == 0) return true;
    if (value.p[0] == '"' || (value.len > 2 && value.p[0] == 'W' && value.p[1] == '/'))
        return tag_equal(value.p, value.len, etag, strlen(etag), false);
    time_t t = ts_http_date_parse(value);
    return t != -1 && t == mtime;
}
