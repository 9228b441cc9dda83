/* Conditional and range requests: entity tags, HTTP dates, Range and If-Range (RFC 9110). Pure
 * functions of header values and file facts, so they can be tested on their own. */
#ifndef TS_COND_H
#define TS_COND_H

#include "http.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#define TS_ETAG_MAX   64
#define TS_MAX_RANGES 16 /* more ranges than this are answered with the whole file */

/* A strong entity tag for the file at rel (path under the root): 96 bits of SHA-256 over its
 * size, mtime (ns) and rel, in base64url, quoted. The inode is not used: it would leak, and
 * the tag stays the same across restarts and across servers with the same files. */
void ts_etag(const struct stat *st, const char *rel, char out[TS_ETAG_MAX]);

/* If-None-Match: does the list (or "*") match etag? Weak comparison, as RFC 9110 requires. */
bool ts_etag_list_matches(struct ts_str list, const char *etag);

/* Parses an HTTP date (IMF-fixdate, RFC 850 or asctime form). Returns -1 if invalid. */
time_t ts_http_date_parse(struct ts_str s);

struct ts_range {
    uint64_t first, last; /* inclusive byte positions */
};

enum ts_range_result {
    TS_RANGE_NONE,          /* no usable Range: send the whole representation (200) */
    TS_RANGE_OK,            /* *n ranges, sorted and merged, all within size (206) */
    TS_RANGE_UNSATISFIABLE, /* valid syntax but no range overlaps the file (416) */
};

/* Parses a Range header value for a representation of size bytes. Syntax errors, units other
 * than bytes, or more than TS_MAX_RANGES ranges give TS_RANGE_NONE (the whole file, as RFC
 * 9110 allows). Overlapping or adjacent ranges are merged. */
enum ts_range_result ts_range_parse(struct ts_str value, uint64_t size, struct ts_range *out,
                                    int *n);

/* If-Range: does the validator (an entity tag or a date) still describe the representation?
 * Entity tags compare strongly; a date must equal Last-Modified exactly. */
bool ts_if_range_holds(struct ts_str value, const char *etag, time_t mtime);

#endif
