/* libFuzzer target: configuration loading (JSON parsing, every key's validation, errors). */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    static int fd = -1;
    if (fd < 0) { /* one in-memory file, rewritten for every input */
        fd = memfd_create("fuzz-config", 0);
        if (fd < 0) abort();
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size) abort();
    struct ts_config cfg;
    char err[1024];
    ts_config_load(&cfg, path, NULL, err, sizeof(err));
    ts_config_free(&cfg);
    return 0;
}
