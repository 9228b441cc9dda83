/* The status endpoint (JSON) and the metrics endpoint (Prometheus text). */
#ifndef TS_STATUS_H
#define TS_STATUS_H

#include <stdbool.h>

struct ts_req;

/* If rel (the normalized request path without its leading '/') is status.path or
 * status.metrics_path, answers it (403 for addresses outside status.allow) and returns true.
 * Worker thread; reads every worker's counters without locks. */
bool ts_status_handle(struct ts_req *req, const char *rel);

#endif
