/* Static files: request path -> a file that stays under the document root, and the response
 * that streams it. */
#ifndef TS_FILE_H
#define TS_FILE_H

#include <stddef.h>

struct ts_req;
struct ts_location;

/* Percent-decodes path (the request target up to '?', which must start with '/'), removes
 * dot segments and empty segments, and writes the result relative to the root (no leading
 * '/'; "" is the root; a trailing '/' is kept). Rejects %00, encoded '/', bad escapes and ".."
 * above the root. Returns 0, or the HTTP status to answer (400, 414). */
int ts_file_resolve(const char *path, size_t len, char *out, size_t outlen);

/* Opens rel under the root directory fd without ever leaving it (openat2 RESOLVE_BENEATH:
 * "..", absolute symlinks and symlinks leading outside fail with EXDEV). Returns fd or -1. */
int ts_file_open_beneath(int rootfd, const char *rel);

/* The same without openat2 (used when the kernel lacks it): openat, then a check of where
 * the descriptor really leads. Returns fd or -1 (EXDEV for a path outside the root). */
int ts_file_open_checked(int rootfd, const char *rel);

/* Serves the file (or directory index) at rel, the path ts_file_resolve made of req->path
 * (rel has room for cap bytes), under location rule loc (may be NULL): precompressed
 * variants, 304 for conditional requests, 206/416 for ranges, 200 with the file streamed,
 * 301 to add a trailing slash, a listing, 403, 404. Worker thread. */
void ts_file_serve(struct ts_req *req, char *rel, size_t cap, const struct ts_location *loc);

#endif
