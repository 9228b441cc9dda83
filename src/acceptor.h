/* The acceptor thread: owns the listening sockets, accepts connections and hands each to a
 * worker, round robin, enforcing limits.max_connections. */
#ifndef TS_ACCEPTOR_H
#define TS_ACCEPTOR_H

#include <pthread.h>
#include <stddef.h>

struct ts_listen_proxy;
struct ts_server;

struct ts_acceptor {
    struct ts_server *srv;
    int *fds; /* listening sockets: the TLS ones, then the http_redirect ones */
    const struct ts_listen_proxy **proxy; /* per fd: its PROXY protocol settings, or NULL */
    size_t nfds, ntls;
    int epfd, evfd;
    pthread_t thread;
    int started;
    unsigned next_worker;
};

/* Creates, binds and listens on every address in cfg->listen. Main thread, before the
 * workers start. Returns 0, or -1 with a message naming the key in err. */
int ts_acceptor_listen(struct ts_acceptor *a, struct ts_server *srv, char *err, size_t errlen);

/* Serves on sockets handed over by socket activation instead of binding cfg->listen: a socket
 * named "http_redirect" (LISTEN_FDNAMES) redirects to https, the others serve TLS, with the
 * per-listener options of the listen entry of the same address. Entries no socket matches are
 * ignored with a warning. Takes the descriptors. Returns 0, or -1 with a message in err. */
int ts_acceptor_inherit(struct ts_acceptor *a, struct ts_server *srv, const int *fds,
                        const char *const *names, size_t n, char *err, size_t errlen);

/* Starts the accepting thread. Returns 0 or -1 (errno). */
int ts_acceptor_start(struct ts_acceptor *a);

/* Stops accepting, joins the thread and closes the listening sockets. Main thread. */
void ts_acceptor_stop(struct ts_acceptor *a);

#endif
