/* HTTP semantics helpers shared by the codecs and the handler: header tokens, and the request
 * path's normal form. */
#include "http.h"

#include <string.h>
#include <strings.h>

/* Is a ";q=0" parameter among the item's parameters? */
static bool q_is_zero(const char *p, size_t len)
{
    for (size_t i = 0; i + 2 < len; i++) {
        if (p[i] != ';') continue;
        size_t j = i + 1;
        while (j < len && (p[j] == ' ' || p[j] == '\t')) j++;
        if (j + 2 <= len && (p[j] == 'q' || p[j] == 'Q') && p[j + 1] == '=') {
            j += 2;
            if (j < len && p[j] == '0') {
                j++;
                if (j < len && p[j] == '.') j++;
                while (j < len && p[j] == '0') j++;
                return j >= len || p[j] == ';' || p[j] == ' ';
            }
        }
    }
    return false;
}

bool ts_http_has_token(struct ts_str v, const char *token)
{
    size_t tl = strlen(token);
    size_t i = 0;
    while (i < v.len) {
        while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ',')) i++;
        size_t start = i;
        while (i < v.len && v.p[i] != ',') i++;
        size_t end = start;
        while (end < i && v.p[end] != ';') end++; /* the token, without parameters */
        size_t tend = end;
        while (tend > start && (v.p[tend - 1] == ' ' || v.p[tend - 1] == '\t')) tend--;
        if (tend - start == tl && strncasecmp(v.p + start, token, tl) == 0)
            return !q_is_zero(v.p + end, i - end);
    }
    return false;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int ts_http_resolve_path(const char *p, size_t len, char *out, size_t outlen)
{
    if (len == 0 || p[0] != '/') return 400;
    size_t o = 0, i = 1;
    while (i <= len) {
        size_t seg = o;
        while (i < len && p[i] != '/') {
            unsigned char c = (unsigned char)p[i];
            if (c == '%') {
                int hi = i + 2 < len + 0 ? hexval(p[i + 1]) : -1;
                int lo = hi >= 0 ? hexval(p[i + 2]) : -1;
                if (lo < 0) return 400;
                c = (unsigned char)(hi * 16 + lo);
                if (c == '/' || c == '\0') return 400; /* encoded separators and NUL */
                i += 3;
            } else {
                if (c == '\0') return 400;
                i++;
            }
            if (o + 2 >= outlen) return 414;
            out[o++] = (char)c;
        }
        size_t sl = o - seg;
        bool slash = i < len; /* a '/' follows this segment */
        if (sl == 0 || (sl == 1 && out[seg] == '.')) {
            o = seg;
        } else if (sl == 2 && out[seg] == '.' && out[seg + 1] == '.') {
            if (seg == 0) return 400;               /* above the root */
            o = seg - 1;                            /* drop the '/' before this segment... */
            while (o > 0 && out[o - 1] != '/') o--; /* ...and the segment before it */
        } else if (slash) {
            out[o++] = '/';
        }
        i++;
    }
    out[o] = '\0';
    return 0;
}
