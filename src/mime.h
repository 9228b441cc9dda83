/* MIME types by file extension. */
#ifndef TS_MIME_H
#define TS_MIME_H

#include <stddef.h>

/* Content-Type for a file name (by its extension, case-insensitive), with a charset for
 * text types; "application/octet-stream" when unknown. Thread-safe; returns a static string. */
const char *ts_mime_type(const char *name, size_t len);

#endif
