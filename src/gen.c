/* Configuration generations: loading one, the keys a reload cannot change, freeing it when
 * its last connection is gone. */
#include "gen.h"
#include "log.h"
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void warn_fixed(const char *key)
{
    ts_log_warn("reload: %s changed: applies at restart; the running value stays", key);
}

static bool same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* A reload cannot change what was sized or opened once at start (worker threads, their pools,
 * timer lists and file caches, the descriptor limit, the log files, the pid file and the
 * user), nor the session cache and ticket keys every generation shares. */
static void keep_fixed(struct ts_config *next, const struct ts_config *fixed)
{
#define KEEP(field, key)                                                                           \
    do {                                                                                           \
        if (next->field != fixed->field) {                                                         \
            warn_fixed(key);                                                                       \
            next->field = fixed->field;                                                            \
        }                                                                                          \
    } while (0)
#define KEEP_STR(field, key)                                                                       \
    do {                                                                                           \
        if (!same_str(next->field, fixed->field)) {                                                \
            char *copy = fixed->field ? strdup(fixed->field) : NULL;                               \
            if (fixed->field && !copy) abort();                                                    \
            warn_fixed(key);                                                                       \
            free(next->field);                                                                     \
            next->field = copy;                                                                    \
        }                                                                                          \
    } while (0)
    KEEP(workers, "workers");
    KEEP_STR(user, "user");
    KEEP_STR(group, "group");
    KEEP_STR(pid_file, "pid_file");
    KEEP(limits.max_connections, "limits.max_connections");
    KEEP(limits.max_header_bytes, "limits.max_header_bytes");
    KEEP(file_cache.entries, "file_cache.entries");
    KEEP(file_cache.valid_ms, "file_cache.valid_ms");
    KEEP(file_cache.content_max_file_bytes, "file_cache.content_max_file_bytes");
    KEEP(file_cache.content_bytes, "file_cache.content_bytes");
    KEEP(timeouts.handshake_s, "timeouts.handshake_s");
    KEEP(timeouts.request_header_s, "timeouts.request_header_s");
    KEEP(timeouts.keepalive_s, "timeouts.keepalive_s");
    KEEP(timeouts.send_s, "timeouts.send_s");
    KEEP(timeouts.shutdown_s, "timeouts.shutdown_s");
    KEEP(timeouts.drain_s, "timeouts.drain_s");
    KEEP_STR(log.access, "log.access");
    KEEP_STR(log.error, "log.error");
    KEEP(log.format, "log.format");
    KEEP(log.level, "log.level");
    KEEP(log.summary_interval_s, "log.summary_interval_s");
    KEEP(tls.session_cache_size, "tls.session_cache.size");
    KEEP(tls.session_cache_max_bytes, "tls.session_cache.max_bytes");
    KEEP(tls.session_cache_max_session_bytes, "tls.session_cache.max_session_bytes");
    KEEP(tls.session_timeout_s, "tls.session_cache.timeout_s");
    KEEP(tls.session_tickets, "tls.session_tickets");
    KEEP(tls.ticket_key_rotation_s, "tls.ticket_key_rotation_s");
    /* a new path is re-read; going from random keys to a file, or back, needs a restart */
    if (!next->tls.ticket_key_file != !fixed->tls.ticket_key_file)
        KEEP_STR(tls.ticket_key_file, "tls.ticket_key_file");
#undef KEEP
#undef KEEP_STR
}

static void counters_unref(struct ts_site_counters *c)
{
    if (c && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1) free(c);
}

void ts_gen_site_stats_new(struct ts_gen *g)
{
    size_t nw = (size_t)(g->nworkers > 0 ? g->nworkers : 1);
    g->site_stats = calloc(g->cfg.nsites ? g->cfg.nsites : 1, sizeof(*g->site_stats));
    if (!g->site_stats) abort();
    for (size_t i = 0; i < g->cfg.nsites; i++) {
        g->site_stats[i] =
            calloc(1, sizeof(struct ts_site_counters) + nw * sizeof(struct ts_site_stats));
        if (!g->site_stats[i]) abort();
        atomic_init(&g->site_stats[i]->refs, 1);
    }
}

static void gen_free(struct ts_gen *g)
{
    for (size_t i = 0; g->rootfds && i < g->cfg.nsites; i++)
        if (g->rootfds[i] >= 0) close(g->rootfds[i]);
    free(g->rootfds);
    for (size_t i = 0; g->site_stats && i < g->cfg.nsites; i++) counters_unref(g->site_stats[i]);
    free(g->site_stats);
    ts_tls_sites_free(g->tls);
    ts_config_free(&g->cfg);
    free(g);
}

void ts_gen_unref(struct ts_gen *g)
{
    if (g && atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) == 1) gen_free(g);
}

struct ts_gen *ts_gen_load(const char *path, const char *text, const struct ts_config_overrides *ov,
                           const struct ts_config *fixed, int nworkers, uint64_t number, char *err,
                           size_t errlen)
{
    struct ts_gen *g = calloc(1, sizeof(*g));
    if (!g) abort();
    g->number = number;
    g->nworkers = nworkers;
    atomic_init(&g->refs, 1);
    if (ts_config_load_text(&g->cfg, path, text, ov, err, errlen) < 0) goto fail;
    if (fixed) keep_fixed(&g->cfg, fixed);
    g->tls = ts_tls_sites_new(&g->cfg, err, errlen);
    if (!g->tls) goto fail;
    size_t n = g->cfg.nsites;
    g->rootfds = calloc(n, sizeof(*g->rootfds));
    if (!g->rootfds) abort();
    ts_gen_site_stats_new(g);
    for (size_t i = 0; i < n; i++) g->rootfds[i] = -1;
    for (size_t i = 0; i < n; i++) {
        const struct ts_site *s = &g->cfg.sites[i];
        g->rootfds[i] = open(s->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (g->rootfds[i] < 0) {
            snprintf(err, errlen, "%s%sroot: %s: %s", s->label, s->label[0] ? "." : "", s->root,
                     strerror(errno));
            goto fail;
        }
    }
    return g;
fail:
    gen_free(g);
    return NULL;
}

void ts_gen_carry_stats(struct ts_gen *next, const struct ts_gen *prev)
{
    if (next->nworkers != prev->nworkers) return; /* workers is restart-only: never */
    for (size_t i = 0; i < next->cfg.nsites; i++) {
        const char *name = next->cfg.sites[i].name;
        size_t j = 0;
        while (j < prev->cfg.nsites && strcmp(prev->cfg.sites[j].name, name) != 0) j++;
        if (j == prev->cfg.nsites) continue;
        /* the same counters: a worker writes its slot for either generation's connections */
        struct ts_site_counters *shared = prev->site_stats[j];
        atomic_fetch_add_explicit(&shared->refs, 1, memory_order_relaxed);
        counters_unref(next->site_stats[i]);
        next->site_stats[i] = shared;
    }
}
