/* HTTP semantics helpers shared by the codecs and the handler. */
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
