/* The handler: routing and policy for a parsed request, whatever codec parsed it. It fills
 * req->resp, a protocol-neutral response, for the codec to serialize. */
#ifndef TS_HANDLER_H
#define TS_HANDLER_H

#include "response.h"

/* Answers req->rq: http_redirect, methods (405, 413, OPTIONS), path resolution, client
 * certificate locations, the status endpoints, hidden files, then static files. Worker
 * thread; never blocks on the network (files are local). */
void ts_handler_handle(struct ts_req *req);

/* Whether rel, a path under the root (no leading '/'), may be served to this request: 0, 404
 * for a hidden path (dotfiles "deny"), or 403 when a location covering it requires a client
 * certificate the connection did not present. Called on the URL's path and, by the static
 * files through a callback, on where the opened file really is (symlinks resolved), so the
 * stricter rule wins. */
int ts_handler_access(const struct ts_req *req, const char *rel);

#endif
