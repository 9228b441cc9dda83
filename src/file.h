/* Static files: request path -> a file that stays under the document root, and the response
 * that streams it. */
#ifndef TS_FILE_H
#define TS_FILE_H

#include <stdbool.h>
#include <stddef.h>

struct ts_req;
struct ts_location;

/* Opens rel under the root directory fd without ever leaving it (openat2 RESOLVE_BENEATH:
 * "..", absolute symlinks and symlinks leading outside fail with EXDEV), without blocking
 * (O_NONBLOCK), for reading. Only a regular file or a directory is returned; anything else
 * (FIFO, socket, device) fails with ENXIO. Where openat2 is missing or refused (ENOSYS or
 * EPERM when the root itself is first opened), ts_file_open_checked does the work. Returns fd
 * or -1 with errno. Any thread. */
int ts_file_open_beneath(int rootfd, const char *rel);

/* The same without openat2: opens with O_PATH (nothing is really opened), checks where the
 * descriptor leads (/proc/self/fd; EXDEV outside the root) and the file type (ENXIO), and
 * only then opens it for reading. Returns fd or -1 with errno. */
int ts_file_open_checked(int rootfd, const char *rel);

/* Whether a failed open's errno is an answer about the file (missing, forbidden, outside the
 * root, not a regular file) rather than a passing shortage (EMFILE, ENOMEM...): only those
 * may be cached. */
bool ts_file_err_definitive(int err);

/* The access rules of the layer above (the handler): 0 if rel, a path under the root, may be
 * served to req, else the status to refuse it with (403, 404). */
typedef int ts_file_access_fn(const struct ts_req *req, const char *rel);

/* Serves the file (or directory index) at rel, the path ts_http_resolve_path made of the request's
 * path (rel has room for cap bytes), under location rule loc (may be NULL): precompressed
 * variants, 304 for conditional requests, 206/416 for ranges, 200 with the file streamed,
 * 301 to add a trailing slash, a listing, 403, 404. Where an opened file or variant really is
 * (symlinks resolved) is checked with access. Worker thread. */
void ts_file_serve(struct ts_req *req, char *rel, size_t cap, const struct ts_location *loc,
                   ts_file_access_fn *access);

/* Answers a refusal from the access rules: 403 (the client-certificate page) or 404. */
void ts_file_refuse(struct ts_req *req, int status);

#endif
