/* MIME types by extension: a sorted table searched with bsearch. */
#include "mime.h"

#include <stdlib.h>
#include <string.h>

struct mime {
    const char *ext;
    const char *type;
};

/* Sorted by extension (ASCII, lower case). */
static const struct mime types[] = {
    {"avif", "image/avif"},
    {"bmp", "image/bmp"},
    {"css", "text/css; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"gif", "image/gif"},
    {"gz", "application/gzip"},
    {"htm", "text/html; charset=utf-8"},
    {"html", "text/html; charset=utf-8"},
    {"ico", "image/x-icon"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"md", "text/markdown; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"ogg", "audio/ogg"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"svg", "image/svg+xml"},
    {"tar", "application/x-tar"},
    {"ttf", "font/ttf"},
    {"txt", "text/plain; charset=utf-8"},
    {"wasm", "application/wasm"},
    {"webm", "video/webm"},
    {"webmanifest", "application/manifest+json"},
    {"webp", "image/webp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xml", "application/xml"},
    {"zip", "application/zip"},
};

/* the key is lowercased once: strcasecmp at every probe was most of a lookup's cost */
static int cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct mime *)elem)->ext);
}

const char *ts_mime_type(const char *name, size_t len)
{
    static const char fallback[] = "application/octet-stream";
    size_t i = len;
    while (i > 0 && name[i - 1] != '.' && name[i - 1] != '/') i--;
    if (i == 0 || name[i - 1] != '.' || len - i == 0 || len - i > 15) return fallback;
    char ext[16];
    for (size_t k = 0; k < len - i; k++) {
        char c = name[i + k];
        ext[k] = c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
    }
    ext[len - i] = '\0';
    const struct mime *m =
        bsearch(ext, types, sizeof(types) / sizeof(types[0]), sizeof(types[0]), cmp);
    return m ? m->type : fallback;
}
