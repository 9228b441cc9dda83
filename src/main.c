/* main: command line and configuration, the TLS context, worker and acceptor threads, signals
 * and the orderly stop. */
#include "acceptor.h"
#include "config.h"
#include "gen.h"
#include "log.h"
#include "response.h"
#include "service.h"
#include "tls.h"
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define EXIT_CONFIG    2
#define DEFAULT_CONFIG "conf/tessera.json"
#define SERVE_LISTEN   "127.0.0.1:8443" /* --serve: this machine only unless --listen says */
#define FD_RESERVE     64 /* listeners, logs, the root, stdio, OpenSSL's /dev/urandom */
#define FD_PER_WORKER  2  /* each worker's epoll set and eventfd */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tessera [options]\n"
            "  --serve DIR       serve DIR with the built-in defaults (no configuration file)\n"
            "                    on https://localhost:8443/, the certificate from make certs\n"
            "  --config FILE     configuration file (default " DEFAULT_CONFIG " if it exists)\n"
            "  --listen ADDR:PORT  listen address, e.g. 0.0.0.0:8443 or [::]:8443\n"
            "  --root DIR        document root\n"
            "  --workers N       worker threads (0: one per CPU)\n"
            "  --cert FILE       server certificate chain (PEM)\n"
            "  --key FILE        server private key (PEM)\n"
            "  --check-config    validate the configuration and exit\n"
            "  --upgrade         share the listen addresses of the running tessera this one\n"
            "                    replaces and take their new connections (then SIGTERM the\n"
            "                    old one); without it an address in use is refused\n"
            "  --help            show this help\n"
            "  --version         show the version\n"
            "Command-line values override the configuration file.\n");
}

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Failed handshakes are the clients' doing, so they are logged one by one only at debug; at
 * info this line, from the main thread once per log.summary_interval_s, gives the counts by
 * reason since the last one, read from the workers' own counters (nothing on their path),
 * so its counts add up to what /status shows, peer_closed included. */
static void log_handshake_failures(const struct ts_server *srv, uint64_t seen[TS_HS_FAIL_N],
                                   uint64_t elapsed_ms)
{
    if (!ts_log_enabled(TS_LOG_INFO)) return;
    uint64_t now[TS_HS_FAIL_N] = {0}, total = 0;
    for (int i = 0; i < srv->nworkers; i++)
        for (int r = 0; r < TS_HS_FAIL_N; r++)
            now[r] += ts_stat_get(&srv->workers[i].stats.hs_fail[r]);
    char list[512];
    size_t n = 0;
    list[0] = '\0';
    for (int r = 0; r < TS_HS_FAIL_N; r++) {
        uint64_t d = now[r] - seen[r];
        seen[r] = now[r];
        if (d == 0) continue;
        total += d;
        n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s %llu", n ? ", " : "",
                              ts_stats_hs_fail_names[r], (unsigned long long)d);
    }
    if (total > 0)
        ts_log_info("TLS handshakes failed in the last %llu s: %llu (%s); one line each at "
                    "log.level debug",
                    (unsigned long long)(elapsed_ms + 500) / 1000, (unsigned long long)total, list);
}

static int die_config(const char *msg)
{
    fprintf(stderr, "tessera: configuration error: %s\n", msg);
    return EXIT_CONFIG;
}

/* Why no file was read when none was named: DEFAULT_CONFIG is looked for in the working
 * directory, which is named. */
static const char *no_file_why(char *buf, size_t len)
{
    char cwd[1024];
    if (!getcwd(cwd, sizeof(cwd))) snprintf(cwd, sizeof(cwd), "the working directory");
    snprintf(buf, len, "no --config, and no " DEFAULT_CONFIG " in %s", cwd);
    return buf;
}

/* A configuration error, and the likely way out for someone who only wanted to serve a
 * directory: a missing development certificate, or a file read without being named; or
 * that no file was read at all (defaults: neither --config nor DEFAULT_CONFIG). */
static int die_config_hint(const char *msg, bool serving, bool implicit_config, bool defaults)
{
    char why[1200];
    die_config(msg);
    if (serving && (strncmp(msg, "tls.certificate:", 16) == 0 || strncmp(msg, "tls.key:", 8) == 0))
        fprintf(stderr, "tessera: `make certs` makes the development certificate and key in "
                        "certs/ (run tessera from the directory that holds certs/), or give "
                        "--cert FILE --key FILE\n");
    else if (implicit_config)
        fprintf(stderr, "tessera: (" DEFAULT_CONFIG " was read; to serve a directory with the "
                        "built-in defaults instead: tessera --serve DIR)\n");
    else if (defaults)
        fprintf(stderr,
                "tessera: (no configuration file was read: %s; the built-in defaults apply)\n",
                no_file_why(why, sizeof(why)));
    return EXIT_CONFIG;
}

/* The URL to open for the first listen address: a wildcard or loopback address is the
 * machine itself, which the development certificate names localhost. */
static void log_serve_url(const struct ts_config *cfg)
{
    const char *a = cfg->listen[0], *colon = strrchr(a, ':');
    if (!colon) return;
    size_t hl = (size_t)(colon - a);
    bool local = (hl == 7 && memcmp(a, "0.0.0.0", 7) == 0) ||
                 (hl == 4 && memcmp(a, "[::]", 4) == 0) ||
                 (hl == 5 && memcmp(a, "[::1]", 5) == 0) || (hl >= 4 && memcmp(a, "127.", 4) == 0);
    char url[300];
    snprintf(url, sizeof(url), "https://%.*s:%s/", local ? 9 : (int)hl, local ? "localhost" : a,
             colon + 1);
    ts_log_info("serving %s on %s (try: curl --cacert certs/ca.crt %s)", cfg->root, url, url);
}

/* Each connection needs one descriptor, and a second for the file it serves when that file
 * has left the cache meanwhile; each worker holds its epoll set, its eventfd and up to
 * file_cache.entries open files. */
static void raise_fd_limit(const struct ts_config *cfg)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)cfg->limits.max_connections * 2 + FD_RESERVE +
                  (rlim_t)cfg->workers * (FD_PER_WORKER + (rlim_t)cfg->file_cache.entries);
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need) return;
    struct rlimit want = {need, rl.rlim_max > need ? rl.rlim_max : need};
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) return;
    int err = errno;
    want.rlim_cur = rl.rlim_max;
    want.rlim_max = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &want);
    ts_log_warn("limits.max_connections is %d (with file_cache.entries %d per worker), which "
                "needs %llu file descriptors, but RLIMIT_NOFILE cannot go above %llu (%s); "
                "connections beyond the descriptors left will be refused. Raise the hard limit "
                "(ulimit -Hn, LimitNOFILE=) or lower limits.max_connections.",
                cfg->limits.max_connections, cfg->file_cache.entries, (unsigned long long)need,
                (unsigned long long)rl.rlim_max, strerror(err));
}

static int parse_workers(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0 || v > 256) return -2;
    return (int)v;
}

/* SIGHUP: a new generation from the configuration file, validated whole (certificates,
 * roots, ticket keys, listeners) before anything changes; then new connections get it, and
 * the old one lives on with the connections opened under it. A failure changes nothing.
 * once: what path was at start when it was not a regular file (a pipe gave its text then and
 * has nothing more to give): the reload fails, saying so. */
static void reload(struct ts_server *srv, struct ts_acceptor *a, struct ts_gen **cur,
                   const char *path, const char *once, const struct ts_config_overrides *ov)
{
    char err[1024] = "";
    struct timespec mono;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    char msg[96];
    snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)mono.tv_sec * 1000000 + (unsigned long long)mono.tv_nsec / 1000);
    ts_service_notify(msg);
    ts_log_info("SIGHUP received: reloading %s", path ? path : "the built-in defaults");
    uint64_t number = (*cur)->number + 1;
    struct ts_tls_ticket_file *keys = NULL;
    struct ts_gen *next = NULL;
    char *text = NULL;
    if (path && once)
        snprintf(err, sizeof(err),
                 "%s: %s, read once at start: a reload cannot read it again (restart tessera to "
                 "change its configuration, or give --config a regular file)",
                 path, once);
    else if (!path || (text = ts_config_read(path, true, NULL, err, sizeof(err))))
        next = ts_gen_load(path, text, ov, srv->cfg, srv->nworkers, number, err, sizeof(err));
    free(text);
    bool ok = next != NULL;
    if (ok && next->cfg.tls.session_tickets && next->cfg.tls.ticket_key_file) {
        keys = ts_tls_ticket_file_read(&next->cfg, err, sizeof(err));
        ok = keys != NULL;
    }
    if (ok) {
        ts_gen_carry_stats(next, *cur);
        ok = ts_acceptor_reload(a, next, err, sizeof(err)) == 0;
    }
    if (ok) {
        if (keys) ts_tls_ticket_file_apply(srv->ssl_ctx, keys);
        struct ts_gen *old = *cur;
        pthread_mutex_lock(&srv->reload_lock);
        *cur = srv->gen = next;
        pthread_mutex_unlock(&srv->reload_lock);
        ts_gen_unref(old);
        atomic_store_explicit(&srv->generation, number, memory_order_relaxed);
        atomic_store_explicit(&srv->last_reload_at, (int64_t)time(NULL), memory_order_relaxed);
        atomic_fetch_add_explicit(&srv->reloads, 1, memory_order_relaxed);
        pthread_mutex_lock(&srv->reload_lock);
        srv->last_reload_error[0] = '\0';
        pthread_mutex_unlock(&srv->reload_lock);
        ts_log_info("reload: configuration generation %llu loaded (%zu site%s, %zu listen "
                    "address%s); connections open before finish on generation %llu",
                    (unsigned long long)number, next->cfg.nsites, next->cfg.nsites == 1 ? "" : "s",
                    next->cfg.nlisten, next->cfg.nlisten == 1 ? "" : "es",
                    (unsigned long long)number - 1);
    } else {
        ts_gen_unref(next);
        atomic_fetch_add_explicit(&srv->reload_failures, 1, memory_order_relaxed);
        pthread_mutex_lock(&srv->reload_lock);
        snprintf(srv->last_reload_error, sizeof(srv->last_reload_error), "%s", err);
        pthread_mutex_unlock(&srv->reload_lock);
        ts_log_error("reload failed: %s; still serving generation %llu", err,
                     (unsigned long long)(*cur)->number);
    }
    ts_tls_ticket_file_free(keys);
    snprintf(msg, sizeof(msg), "READY=1\nSTATUS=serving configuration generation %llu",
             (unsigned long long)(*cur)->number);
    ts_service_notify(msg);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'},
        {"listen", required_argument, 0, 'l'},
        {"root", required_argument, 0, 'r'},
        {"workers", required_argument, 0, 'w'},
        {"cert", required_argument, 0, 'C'},
        {"key", required_argument, 0, 'K'},
        {"check-config", no_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'v'},
        {"serve", required_argument, 0, 's'},
        {"upgrade", no_argument, 0, 'u'}, /* share the addresses of the tessera it replaces */
        {0, 0, 0, 0},
    };
    ts_service_init();
    /* SIGPIPE would kill the process on a write to a vanished peer; the terminating signals
     * are blocked in every thread, from the start (a SIGHUP sent by a hasty reload while the
     * configuration loads must wait for the loop, not end the process), and taken by the main
     * thread with sigwait, and so are the ones that would otherwise end it by default (SIGUSR1
     * reopens the logs). */
    signal(SIGPIPE, SIG_IGN);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGUSR1);
    sigaddset(&sigs, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    struct ts_config_overrides ov = {.workers = -1};
    const char *config_path = NULL, *serve_dir = NULL;
    bool check_only = false, implicit_config = false, upgrade = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 's': serve_dir = optarg; break;
        case 'l': ov.listen = optarg; break;
        case 'r': ov.root = optarg; break;
        case 'w':
            ov.workers = parse_workers(optarg);
            if (ov.workers < 0) return die_config("--workers: must be an integer from 0 to 256");
            break;
        case 'C': ov.cert = optarg; break;
        case 'K': ov.key = optarg; break;
        case 't': check_only = true; break;
        case 'u': upgrade = true; break;
        case 'h': usage(stdout); return 0;
        case 'v':
            printf("%s %s (%s)\n", TS_SERVER_NAME, TS_VERSION, OpenSSL_version(OPENSSL_VERSION));
            printf("alpn: %s\n", ts_tls_alpn_offered(true)); /* with "http2": true */
            return 0;
        default: usage(stderr); return EXIT_CONFIG;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tessera: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return EXIT_CONFIG;
    }
    if (serve_dir) {
        /* the built-in defaults and nothing else: no file is read, whatever lies around */
        if (config_path || ov.root) {
            fprintf(stderr, "tessera: --serve DIR replaces --config and --root: give one\n");
            return EXIT_CONFIG;
        }
        ov.root = serve_dir;
        if (!ov.listen) ov.listen = SERVE_LISTEN;
    } else if (!config_path && access(DEFAULT_CONFIG, F_OK) == 0) {
        config_path = DEFAULT_CONFIG;
        implicit_config = true;
    }
    bool defaults = !config_path && !serve_dir; /* no file named, none found */

    /* cfg: the configuration as started, for what only a restart changes; gen: the one in
     * use, loaded from the same file, replaced by each reload */
    static struct ts_config cfg;
    static struct ts_server srv;
    static struct ts_acceptor acceptor;
    struct ts_gen *gen = NULL;
    char err[1024];
    int status = EXIT_CONFIG;
    /* Read once, parsed twice: --config <(...) or a piped /dev/stdin has nothing left to give
     * a second read. config_once says what such a file is, for a reload's refusal. */
    const char *config_once = NULL;
    char *config_text = NULL;
    if (config_path &&
        !(config_text = ts_config_read(config_path, false, &config_once, err, sizeof(err))))
        return die_config_hint(err, serve_dir != NULL, implicit_config && ov.root, defaults);
    if (ts_config_load_text(&cfg, config_path, config_text, &ov, err, sizeof(err)) < 0) {
        free(config_text);
        ts_config_free(&cfg);
        return die_config_hint(err, serve_dir != NULL, implicit_config && ov.root, defaults);
    }
    if (cfg.listen_proxy_dropped > 0)
        ts_log_warn("--listen %s replaces listen, and with it the PROXY protocol of %d of its "
                    "entries: connections to %s must begin with a TLS ClientHello, not a PROXY "
                    "header (a listen object in the configuration keeps proxy_protocol)",
                    ov.listen, cfg.listen_proxy_dropped, ov.listen);
    srv.cfg = &cfg;
    pthread_mutex_init(&srv.reload_lock, NULL);
    atomic_init(&srv.generation, 1);
    srv.ssl_ctx = ts_tls_session_ctx_new(&cfg, err, sizeof(err));
    if (srv.ssl_ctx)
        gen = ts_gen_load(config_path, config_text, &ov, &cfg, cfg.workers, 1, err, sizeof(err));
    free(config_text);
    srv.gen = gen;
    if (!gen) {
        ts_tls_session_ctx_free(srv.ssl_ctx);
        ts_config_free(&cfg);
        return die_config_hint(err, serve_dir != NULL, implicit_config && ov.root, defaults);
    }
    if (check_only && ts_service_check(&cfg, err, sizeof(err)) < 0) {
        ts_gen_unref(gen);
        ts_tls_session_ctx_free(srv.ssl_ctx);
        ts_config_free(&cfg);
        return die_config(err);
    }
    if (check_only) {
        /* what was checked, as nginx -t names its file: a file, or no file at all */
        if (config_path)
            printf("tessera: configuration file %s is valid%s\n", config_path,
                   implicit_config ? " (found in the working directory; --config FILE names "
                                     "another)"
                                   : "");
        else if (serve_dir)
            printf("tessera: the built-in defaults are valid (--serve reads no configuration "
                   "file)\n");
        else
            printf("tessera: the built-in defaults are valid (no configuration file: %s)\n",
                   no_file_why(err, sizeof(err)));
        ts_gen_unref(gen);
        ts_tls_session_ctx_free(srv.ssl_ctx);
        ts_config_free(&cfg);
        return 0;
    }
    if (ts_log_open(&cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "tessera: configuration error: %s\n", err);
        goto out;
    }
    /* before the listeners: a tessera refused for its pid file has taken no address */
    if (ts_service_pidfile_open(&cfg, upgrade, err, sizeof(err)) < 0) {
        fprintf(stderr, "tessera: configuration error: %s\n", err);
        goto out;
    }

    raise_fd_limit(&cfg);
    /* Let freed memory stay in the arenas while connections come and go (glibc would
     * otherwise shrink and regrow worker heaps with mprotect/madvise all the time); workers
     * hand idle memory back with malloc_trim once connections go idle. */
    mallopt(M_TRIM_THRESHOLD, 16 * 1024 * 1024);

    /* Sockets from the service manager replace the listen addresses; either way every
     * listener is open before the switch to the configured user, which may not bind. */
    int *inherited;
    const char *const *fd_names;
    int ninherited = ts_service_listen_fds(&inherited, &fd_names, err, sizeof(err));
    if (ninherited < 0 ||
        (ninherited > 0
             ? ts_acceptor_inherit(&acceptor, &srv, gen, inherited, fd_names, (size_t)ninherited,
                                   err, sizeof(err))
             : ts_acceptor_listen(&acceptor, &srv, gen, upgrade, err, sizeof(err))) < 0) {
        free(inherited);
        fprintf(stderr, "tessera: configuration error: %s\n", err);
        goto out;
    }
    free(inherited);
    if (upgrade && ninherited > 0)
        ts_log_info("--upgrade: nothing to take over: the listeners are the sockets socket "
                    "activation passed");
    if (ts_service_drop_privileges(&cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "tessera: configuration error: %s\n", err);
        ts_acceptor_stop(&acceptor);
        goto out;
    }
    srv.started_at = time(NULL);
    srv.nworkers = cfg.workers;
    srv.workers = calloc((size_t)cfg.workers, sizeof(struct ts_worker));
    if (!srv.workers) abort();
    int started = 0;
    uint64_t hs_fail_seen[TS_HS_FAIL_N] = {0}, summary_last = monotonic_ms();
    status = 1;
    for (; started < cfg.workers; started++) {
        if (ts_worker_init(&srv.workers[started], &srv, started) < 0 ||
            ts_worker_start(&srv.workers[started]) < 0) {
            ts_log_error("cannot start worker %d: %s", started, strerror(errno));
            break;
        }
    }
    if (started == cfg.workers && ts_acceptor_start(&acceptor) == 0) {
        ts_service_pidfile_write(); /* it listens: the id in the file is one to signal */
        char where[512] = "";
        if (ninherited > 0)
            snprintf(where, sizeof(where), "%d socket%s from socket activation", ninherited,
                     ninherited == 1 ? "" : "s");
        for (size_t i = 0; ninherited == 0 && i < cfg.nlisten; i++)
            snprintf(where + strlen(where), sizeof(where) - strlen(where), "%s%s", i ? ", " : "",
                     cfg.listen[i]);
        for (size_t i = 0; ninherited == 0 && i < cfg.nredirect_listen; i++)
            snprintf(where + strlen(where), sizeof(where) - strlen(where),
                     "%s%s (http, redirects to https)", ", ", cfg.redirect_listen[i]);
        ts_log_info("%s %s listening on %s, %d worker%s, root %s, %s", TS_SERVER_NAME, TS_VERSION,
                    where, cfg.workers, cfg.workers == 1 ? "" : "s", cfg.root,
                    OpenSSL_version(OPENSSL_VERSION));
        if (serve_dir) log_serve_url(&cfg);
        char ready[600];
        snprintf(ready, sizeof(ready), "READY=1\nSTATUS=listening on %s, %d worker%s", where,
                 cfg.workers, cfg.workers == 1 ? "" : "s");
        ts_service_notify(ready);
        uint64_t every_ms = (uint64_t)cfg.log.summary_interval_s * 1000;
        for (;;) {
            uint64_t now = monotonic_ms();
            /* handshakes rotate the ticket keys and wipe the old ones; this, once a second,
             * when none comes */
            ts_tls_ticket_keys_tick(srv.ssl_ctx);
            ts_service_pidfile_tick();
            if (now - summary_last >= every_ms) {
                log_handshake_failures(&srv, hs_fail_seen, now - summary_last);
                summary_last = now;
            }
            uint64_t left = summary_last + every_ms - now;
            if (left > 1000) left = 1000;
            struct timespec wait = {(time_t)(left / 1000), (long)(left % 1000) * 1000000};
            int sig = sigtimedwait(&sigs, NULL, &wait);
            if (sig < 0) continue; /* the interval passed (EAGAIN), or EINTR */
            if (sig == SIGHUP) {
                reload(&srv, &acceptor, &gen, config_path, config_once, &ov);
                continue;
            }
            if (sig == SIGUSR1) {
                if (ts_log_reopen() == 0) ts_log_info("SIGUSR1 received: log files reopened");
                continue;
            }
            if (sig == SIGUSR2) {
                ts_log_info("SIGUSR2 ignored");
                continue;
            }
            ts_log_info("%s received: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            ts_service_notify("STOPPING=1\nSTATUS=draining connections");
            break;
        }
        status = 0;
    }
    ts_acceptor_stop(&acceptor);
    for (int i = 0; i < started; i++) ts_worker_stop(&srv.workers[i]);
    for (int i = 0; i < started; i++) ts_worker_join(&srv.workers[i]);
    for (int i = 0; i < started; i++) ts_worker_destroy(&srv.workers[i]);
    if (started > 0) log_handshake_failures(&srv, hs_fail_seen, monotonic_ms() - summary_last);
    if (started < cfg.workers) {
        /* the one that failed was initialised, not started */
        struct ts_worker *w = &srv.workers[started];
        if (w->epfd > 0) close(w->epfd);
        if (w->evfd > 0) close(w->evfd);
    }
    if (status == 0) ts_log_info("stopped");
    free(srv.workers);
out:
    ts_service_pidfile_close();
    ts_gen_unref(gen); /* the last reference once every connection is closed */
    ts_tls_session_ctx_free(srv.ssl_ctx);
    ts_log_close();
    ts_config_free(&cfg);
    return status;
}
