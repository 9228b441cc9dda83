/* Configuration generations. A generation is one loaded configuration and everything built
 * from it: the sites' TLS contexts, their roots, their counters. The acceptor gives each new
 * connection a reference to the current one; SIGHUP makes a new one and the old one lives on
 * until the last connection opened under it closes. Only the TLS session context (the session
 * cache and ticket keys) outlives them all: see tls.h. */
#ifndef TS_GEN_H
#define TS_GEN_H

#include "config.h"
#include "stats.h"

#include <openssl/types.h>
#include <stdatomic.h>
#include <stdint.h>

struct ts_tls_sites;

/* One site's counters, a slot per worker (each written by its worker only), shared by every
 * generation that has a site of that name: a connection of an older generation still counts
 * for the site as the newer ones show it. */
struct ts_site_counters {
    _Atomic unsigned long refs;
    struct ts_site_stats per_worker[];
};

struct ts_gen {
    _Atomic unsigned long refs;
    uint64_t number; /* 1 for the configuration the server started with, +1 per reload */
    struct ts_config cfg;
    struct ts_tls_sites *tls; /* one SSL_CTX per site */
    /* per site: O_PATH descriptors of the roots. The per-worker file caches are keyed by
     * descriptor and flushed when a request of a newer generation comes: a number can only
     * come back (closed with its generation) for a generation newer than every entry. */
    int *rootfds;
    int nworkers;
    struct ts_site_counters **site_stats; /* per site */
};

/* Loads text, the contents of the configuration file path as ts_config_read returned them
 * (both NULL: the defaults), with the command-line overrides and builds a generation from it.
 * fixed is the configuration the process started with: keys that apply only at restart keep
 * its values (a difference is logged as a warning, unless fixed is the same load). Returns a
 * generation with one reference, or NULL with a message naming the key or file in err. */
struct ts_gen *ts_gen_load(const char *path, const char *text, const struct ts_config_overrides *ov,
                           const struct ts_config *fixed, int nworkers, uint64_t number, char *err,
                           size_t errlen);

/* Gives next the per-site counters of prev for the sites of the same name, so that a reload
 * neither resets them nor loses what connections of prev count after it (main thread, before
 * next is published). */
void ts_gen_carry_stats(struct ts_gen *next, const struct ts_gen *prev);

/* New counters for each of g's sites (cfg.nsites, nworkers set): ts_gen_load does it. */
void ts_gen_site_stats_new(struct ts_gen *g);

static inline struct ts_gen *ts_gen_ref(struct ts_gen *g)
{
    atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
    return g;
}

/* Drops a reference; the last one frees the generation (any thread). */
void ts_gen_unref(struct ts_gen *g);

static inline struct ts_site_stats *ts_gen_site_stats(struct ts_gen *g, int worker, int site)
{
    return &g->site_stats[site]->per_worker[worker];
}

#endif
