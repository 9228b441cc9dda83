/* The acceptor thread: owns the listening sockets, accepts connections and hands each to a
 * worker, round robin, enforcing limits.max_connections. */
#ifndef TS_ACCEPTOR_H
#define TS_ACCEPTOR_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct ts_gen;
struct ts_listen_proxy;
struct ts_server;

/* The listening sockets: the TLS ones, then the http_redirect ones. */
struct ts_listeners {
    int *fds;
    const struct ts_listen_proxy **proxy; /* per fd: its PROXY protocol settings, or NULL */
    char **specs;                         /* per fd: the listen entry, NULL when inherited */
    size_t nfds, ntls;
};

struct ts_acceptor {
    struct ts_server *srv;
    struct ts_listeners l;
    struct ts_gen *gen; /* each new connection gets a reference to it */
    bool inherited;     /* socket activation: the listeners never change */
    bool paused;        /* out of descriptors: listeners out of the epoll set for a while */
    /* held by the acceptor thread while it accepts, and by a reload while it swaps the
     * listeners and the generation */
    pthread_mutex_t lock;
    bool *woken; /* per worker: given a socket since the last wake-up */
    int epfd, evfd;
    pthread_t thread;
    int started;
    unsigned next_worker;
};

/* Creates, binds and listens on every address in gen's listen and http_redirect.listen. An
 * address another socket already listens on is refused ("Address already in use"), unless
 * takeover (--upgrade): then it is shared with that socket (SO_REUSEPORT) and new
 * connections come to this process. Main thread, before the workers start; may wait up to a
 * few seconds for another tessera of the same user that is binding its addresses. Returns 0,
 * or -1 with a message naming the key in err. */
int ts_acceptor_listen(struct ts_acceptor *a, struct ts_server *srv, struct ts_gen *gen,
                       bool takeover, char *err, size_t errlen);

/* Serves on sockets handed over by socket activation instead of binding cfg->listen: a socket
 * named "http_redirect" (LISTEN_FDNAMES) redirects to https, the others serve TLS, with the
 * per-listener options of the listen entry of the same address. Entries no socket matches are
 * ignored with a warning. Takes the descriptors. Returns 0, or -1 with a message in err. */
int ts_acceptor_inherit(struct ts_acceptor *a, struct ts_server *srv, struct ts_gen *gen,
                        const int *fds, const char *const *names, size_t n, char *err,
                        size_t errlen);

/* A reload: new connections get gen from now on, on the listeners gen names (addresses kept
 * keep their socket, new ones are bound, never taken over, removed ones closed once their
 * backlog is taken).
 * Main thread, while the acceptor runs. Returns 0, or -1 with a message naming the key in err
 * and nothing changed. */
int ts_acceptor_reload(struct ts_acceptor *a, struct ts_gen *gen, char *err, size_t errlen);

/* Starts the accepting thread. Returns 0 or -1 (errno). */
int ts_acceptor_start(struct ts_acceptor *a);

/* Stops accepting, joins the thread and closes the listening sockets. Main thread. */
void ts_acceptor_stop(struct ts_acceptor *a);

#endif
