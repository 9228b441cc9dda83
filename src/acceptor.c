/* Accepting connections. accept4 makes each socket non-blocking and close-on-exec in the same
 * call; sockets are queued to workers in batches and each worker is woken once per batch. */
#include "acceptor.h"
#include "config.h"
#include "gen.h"
#include "log.h"
#include "worker.h"

#include <errno.h>
#include <linux/filter.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define ACCEPT_BATCH 64
#define PAUSE_MS     100
#define LOCK_WAIT_MS 3000 /* how long another tessera's binding is waited for */

/* Is the address taken? Every listener is opened with SO_REUSEPORT, so that a new tessera can
 * listen beside the old one during an upgrade; the same flag lets a second tessera started by
 * mistake on the address of another one (of the same user) bind without an error and, with
 * the BPF program below, take every new connection. So each address is first probed: a
 * socket WITHOUT SO_REUSEPORT is bound to it and closed again. The kernel refuses that bind
 * with EADDRINUSE exactly when a plain server (nginx, Caddy) would fail: some socket listens
 * on the address, or on a wildcard that covers it (0.0.0.0:P covers 127.0.0.1:P), whatever
 * its program or user. SO_REUSEADDR on the probe keeps the TIME_WAIT connections of a server
 * just stopped from counting, and IPV6_V6ONLY (as on the real socket) keeps [::]:P apart from
 * 0.0.0.0:P. A probe that is bound and closed without listen() leaves nothing behind.
 * Other ways were weighed: binding the real socket first and setting SO_REUSEPORT after it
 * (socket(7): it must be set before bind() on every socket, the first one too); reading
 * /proc/net/tcp or asking sock_diag (hidden or refused in the systemd unit's sandbox, and the
 * wildcard overlaps would be computed by hand instead of by the kernel); a connect() to the
 * address (a connection the other server sees, a wait on a full backlog or a firewall). The
 * race is listen_lock's. Returns true only on EADDRINUSE: any other failure is left to the
 * real bind to report. */
static bool address_taken(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ai->ai_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    bool taken = bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno == EADDRINUSE;
    close(fd);
    return taken;
}

static in_port_t port_of(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET6)
        return ((const struct sockaddr_in6 *)(const void *)sa)->sin6_port;
    return ((const struct sockaddr_in *)(const void *)sa)->sin_port;
}

/* The probe cannot see a socket that is bound but not listening yet (bound with SO_REUSEADDR,
 * as both are, the two do not conflict): two tessera started at the same moment could each
 * probe before the other listens, and both listen. So the probe and the listen() that
 * follows happen under this lock, one tessera of a user at a time: the second one's probe
 * runs once the first one listens, and sees it. Only processes of the same user can share
 * an address (SO_REUSEPORT groups are per uid; anyone else's bind fails anyway), hence a lock
 * per euid. It is an abstract AF_UNIX name: unique in the network namespace like the
 * addresses, released by the kernel when its holder exits however it exits, no file to leave
 * behind. It is held for milliseconds; a holder that does not let go (a stopped process, a
 * squatter: any user can bind any abstract name) is waited for LOCK_WAIT_MS, then tessera goes
 * on without it. Returns the lock's descriptor (close it to release), or -1 without it. */
static int listen_lock(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ts_log_debug("listen: no lock for the address check: %s", strerror(errno));
        return -1;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int n = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "tessera-listen-%u",
                     (unsigned)geteuid());
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
    for (int waited = 0; bind(fd, (struct sockaddr *)&sa, len) < 0; waited += 10) {
        if (errno != EADDRINUSE || waited >= LOCK_WAIT_MS) {
            if (errno == EADDRINUSE)
                ts_log_warn("listen: another process of this user has held the lock of the "
                            "address check (@%s) for %d ms; checking without it",
                            sa.sun_path + 1, LOCK_WAIT_MS);
            else
                ts_log_debug("listen: no lock for the address check: %s", strerror(errno));
            close(fd);
            return -1;
        }
        nanosleep(&(struct timespec){0, 10 * 1000000}, NULL);
    }
    return fd;
}

/* Whether one of this process's own listeners (in l, or still in keep) and ai would cover
 * the same addresses: the same port and family, and the same address or a wildcard on either
 * side. The probe would then find this process itself (listen naming "0.0.0.0:P" and
 * "127.0.0.1:P", or a reload from one to the other), so it cannot tell whether anyone else
 * listens there: such an address is bound as it always was, without the check. */
static bool own_overlap(const struct ts_listeners *l, const struct ts_listeners *keep,
                        const struct addrinfo *ai)
{
    for (int set = 0; set < 2; set++) {
        const struct ts_listeners *x = set ? keep : l;
        for (size_t i = 0; x && i < x->nfds; i++) {
            struct sockaddr_storage ss;
            socklen_t sl = sizeof(ss);
            if (x->fds[i] < 0 || getsockname(x->fds[i], (struct sockaddr *)&ss, &sl) < 0 ||
                ss.ss_family != ai->ai_family)
                continue;
            if (ss.ss_family == AF_INET) {
                const struct sockaddr_in *p = (const void *)&ss, *q = (const void *)ai->ai_addr;
                if (p->sin_port == q->sin_port && (p->sin_addr.s_addr == q->sin_addr.s_addr ||
                                                   p->sin_addr.s_addr == htonl(INADDR_ANY) ||
                                                   q->sin_addr.s_addr == htonl(INADDR_ANY)))
                    return true;
            } else {
                const struct sockaddr_in6 *p = (const void *)&ss, *q = (const void *)ai->ai_addr;
                if (p->sin6_port == q->sin6_port &&
                    (IN6_ARE_ADDR_EQUAL(&p->sin6_addr, &q->sin6_addr) ||
                     IN6_IS_ADDR_UNSPECIFIED(&p->sin6_addr) ||
                     IN6_IS_ADDR_UNSPECIFIED(&q->sin6_addr)))
                    return true;
            }
        }
    }
    return false;
}

/* Opens a listener for spec. An address another socket listens on is refused, unless
 * takeover (--upgrade at start): then it is shared, and new connections come here. l and
 * keep: this process's listeners (see own_overlap). */
static int listen_one(const char *key, const char *spec, bool takeover,
                      const struct ts_listeners *l, const struct ts_listeners *keep, char *err,
                      size_t errlen)
{
    char host[256], port[16];
    if (ts_config_split_listen(spec, host, sizeof(host), port, sizeof(port)) < 0) {
        snprintf(err, errlen, "%s: \"%s\" is not ADDR:PORT", key, spec);
        return -1;
    }
    struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s: \"%s\": %s", key, spec, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 && errno == EAFNOSUPPORT) {
        /* a host without IPv6 can still run the default "[::]:8443" + "0.0.0.0:8443" */
        ts_log_warn("%s: \"%s\": %s: skipped", key, spec, strerror(errno));
        freeaddrinfo(res);
        return -2;
    }
    if (fd < 0) goto fail;
    /* port 0 asks for any free port: nothing can be listening on that one */
    if (port_of(res->ai_addr) != 0 && !own_overlap(l, keep, res) && address_taken(res)) {
        if (!takeover) {
            /* at start (nothing to keep) --upgrade is the way out; a reload has none */
            snprintf(err, errlen,
                     "%s: \"%s\": Address already in use: another process listens there%s", key,
                     spec,
                     !keep ? " (to replace a running tessera without downtime, start the new "
                             "one with --upgrade: it shares the address and takes the new "
                             "connections)"
                           : "");
            close(fd);
            freeaddrinfo(res);
            return -1;
        }
        ts_log_info("%s: \"%s\": another process listens there: shared with it (--upgrade), "
                    "new connections come to this process",
                    key, spec);
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    /* a new tessera binds the address while the old one still runs: see after listen() */
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    /* "[::]:P" and "0.0.0.0:P" may both be listed: keep the IPv6 socket IPv6-only */
    if (res->ai_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    /* Accepted sockets inherit TCP_NODELAY from the listener on Linux: responses are written
     * whole, so Nagle would only delay them, and this saves a setsockopt per connection. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 4096) < 0) goto fail;
    /* While two tessera share the address (an upgrade: --upgrade), the kernel picks a
     * listener per new connection. This program, run for the whole group, picks the second
     * socket, the newest process's: the old one gets no connection it could leave in its
     * backlog when it closes its listener (those would be reset). Alone, index 1 does not
     * exist and the kernel hashes as usual. A kernel without it only loses that guarantee. */
    struct sock_filter pick_newest = BPF_STMT(BPF_RET | BPF_K, 1);
    struct sock_fprog prog;
    memset(&prog, 0, sizeof(prog)); /* the padding after len too: the kernel copies it all */
    prog.len = 1;
    prog.filter = &pick_newest;
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) < 0)
        ts_log_debug("%s: \"%s\": SO_ATTACH_REUSEPORT_CBPF: %s", key, spec, strerror(errno));
    freeaddrinfo(res);
    return fd;
fail:
    snprintf(err, errlen, "%s: \"%s\": %s", key, spec, strerror(errno));
    if (fd >= 0) close(fd);
    freeaddrinfo(res);
    return -1;
}

#define EVFD_TAG UINT64_MAX /* epoll data of the stop eventfd; listeners carry their index */

static void set_listening(struct ts_acceptor *a, int on);
static bool same_address(int fd, const char *spec);

static void listeners_free(struct ts_listeners *l)
{
    for (size_t i = 0; l->specs && i < l->nfds; i++) free(l->specs[i]);
    free(l->fds);
    free(l->proxy);
    free(l->specs);
    memset(l, 0, sizeof(*l));
}

static void listeners_alloc(struct ts_listeners *l, size_t n)
{
    memset(l, 0, sizeof(*l));
    l->fds = calloc(n ? n : 1, sizeof(int));
    l->proxy = calloc(n ? n : 1, sizeof(*l->proxy));
    l->specs = calloc(n ? n : 1, sizeof(char *));
    if (!l->fds || !l->proxy || !l->specs) abort();
}

static void adopt(struct ts_acceptor *a, struct ts_server *srv, struct ts_gen *gen)
{
    memset(a, 0, sizeof(*a));
    a->srv = srv;
    a->epfd = a->evfd = -1;
    a->gen = ts_gen_ref(gen);
    pthread_mutex_init(&a->lock, NULL);
}

/* The acceptor's epoll set and stop eventfd, then the listeners in it: the last step of
 * ts_acceptor_listen and ts_acceptor_inherit alike. */
static int start_listening(struct ts_acceptor *a, char *err, size_t errlen)
{
    a->epfd = epoll_create1(EPOLL_CLOEXEC);
    a->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (a->epfd < 0 || a->evfd < 0) {
        snprintf(err, errlen, "listen: %s", strerror(errno));
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EVFD_TAG};
    epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->evfd, &ev);
    set_listening(a, 1);
    return 0;
}

/* Opens the listeners cfg names into l, keeping the sockets of `keep` whose entry is the same
 * (taken out of keep: -1 left in their place); takeover: see listen_one. Returns 0, or -1
 * with err (l freed, every socket opened here closed). */
static int open_listeners(struct ts_listeners *l, const struct ts_config *cfg,
                          struct ts_listeners *keep, bool takeover, char *err, size_t errlen)
{
    listeners_alloc(l, cfg->nlisten + cfg->nredirect_listen);
    for (size_t i = 0; i < cfg->nlisten + cfg->nredirect_listen; i++) {
        bool plain = i >= cfg->nlisten;
        if (plain && l->ntls == 0) break;
        const char *spec = plain ? cfg->redirect_listen[i - cfg->nlisten] : cfg->listen[i];
        int fd = -1;
        for (size_t k = 0; keep && k < keep->nfds && fd < 0; k++)
            if (keep->fds[k] >= 0 && (k >= keep->ntls) == plain && keep->specs[k] &&
                strcmp(keep->specs[k], spec) == 0) {
                fd = keep->fds[k];
                keep->fds[k] = -1;
            }
        if (fd < 0)
            fd = listen_one(plain ? "http_redirect.listen" : "listen", spec, takeover, l, keep, err,
                            errlen);
        if (fd == -2) continue;
        if (fd < 0) goto fail;
        /* indexes differ once an address is skipped: the settings travel with the fd */
        if (!plain && cfg->listen_proxy[i].enabled) l->proxy[l->nfds] = &cfg->listen_proxy[i];
        l->specs[l->nfds] = strdup(spec);
        if (!l->specs[l->nfds]) abort();
        l->fds[l->nfds++] = fd;
        if (!plain) l->ntls = l->nfds;
    }
    if (l->ntls == 0) {
        snprintf(err, errlen, "listen: no address could be used");
        goto fail;
    }
    return 0;
fail:
    /* the kept sockets go back where they came from */
    for (size_t i = 0; i < l->nfds; i++) {
        size_t k = 0;
        while (keep && k < keep->nfds &&
               !(keep->fds[k] < 0 && keep->specs[k] && strcmp(keep->specs[k], l->specs[i]) == 0 &&
                 (k >= keep->ntls) == (i >= l->ntls)))
            k++;
        if (keep && k < keep->nfds)
            keep->fds[k] = l->fds[i];
        else
            close(l->fds[i]);
    }
    listeners_free(l);
    return -1;
}

int ts_acceptor_listen(struct ts_acceptor *a, struct ts_server *srv, struct ts_gen *gen,
                       bool takeover, char *err, size_t errlen)
{
    adopt(a, srv, gen);
    int lock = listen_lock();
    int rc = open_listeners(&a->l, &gen->cfg, NULL, takeover, err, errlen);
    if (lock >= 0) close(lock); /* every socket listens: the next tessera's probe sees them */
    if (rc < 0 || start_listening(a, err, errlen) < 0) {
        ts_acceptor_stop(a);
        return -1;
    }
    return 0;
}

static void set_listening(struct ts_acceptor *a, int on)
{
    for (size_t i = 0; i < a->l.nfds; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = i};
        epoll_ctl(a->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, a->l.fds[i], &ev);
    }
}

/* Hands one socket to the next worker with room in its queue. */
static struct ts_worker *hand_off(struct ts_acceptor *a, const struct ts_handoff *h)
{
    struct ts_server *srv = a->srv;
    for (int tries = 0; tries < srv->nworkers; tries++) {
        struct ts_worker *w = &srv->workers[a->next_worker++ % (unsigned)srv->nworkers];
        if (ts_worker_submit(w, h)) return w;
    }
    return NULL;
}

static void reject(struct ts_server *srv, int fd)
{
    close(fd);
    atomic_fetch_add_explicit(&srv->rejected, 1, memory_order_relaxed);
}

/* Accepts what is pending on listener index of l. Returns 0 once the backlog is empty, 1 when
 * a batch was taken and more may wait, -1 when out of descriptors (pause accepting). Lock
 * held. */
static int accept_batch(struct ts_acceptor *a, const struct ts_listeners *l, size_t index)
{
    struct ts_server *srv = a->srv;
    int max = srv->cfg->limits.max_connections;
    int lfd = l->fds[index];
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct ts_handoff h;
        h.plain = index >= l->ntls;
        h.proxy = l->proxy[index];
        h.addrlen = sizeof(h.addr);
        h.fd = accept4(lfd, &h.addr.sa, &h.addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (h.fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* clients can keep us here with more connections: one line a minute, not ten
                 * a second (the lock guards the two statics) */
                static time_t last_warned;
                static unsigned long pauses;
                pauses++;
                time_t now = time(NULL);
                if (now - last_warned >= 60) {
                    ts_log_warn("accept: %s: pausing for %d ms (limits.max_connections is %d); "
                                "%lu pauses since this was last logged",
                                strerror(errno), PAUSE_MS, max, pauses);
                    last_warned = now;
                    pauses = 0;
                }
                return -1;
            }
            ts_log_error("accept: %s", strerror(errno));
            return 0;
        }
        if (atomic_fetch_add_explicit(&srv->open_conns, 1, memory_order_relaxed) >= max) {
            atomic_fetch_sub_explicit(&srv->open_conns, 1, memory_order_relaxed);
            reject(srv, h.fd);
            continue;
        }
        h.gen = ts_gen_ref(a->gen);
        struct ts_worker *w = hand_off(a, &h);
        if (!w) {
            ts_gen_unref(h.gen);
            atomic_fetch_sub_explicit(&srv->open_conns, 1, memory_order_relaxed);
            reject(srv, h.fd);
            continue;
        }
        a->woken[w->id] = true;
    }
    return 1;
}

/* Wakes the workers that were given sockets. Lock held. */
static void wake_workers(struct ts_acceptor *a)
{
    for (int i = 0; i < a->srv->nworkers; i++)
        if (a->woken[i]) {
            ts_worker_notify(&a->srv->workers[i]);
            a->woken[i] = false;
        }
}

/* The connections the kernel already completed and queued on listeners about to close would
 * be reset when they are closed; take them, to be served. Bounded by the listen backlog, in
 * case connections keep coming. Skips closed (-1) entries. Lock held. */
static void accept_rest(struct ts_acceptor *a, const struct ts_listeners *l)
{
    for (size_t i = 0; i < l->nfds; i++)
        for (int batch = 0; l->fds[i] >= 0 && batch < 4096 / ACCEPT_BATCH; batch++)
            if (accept_batch(a, l, i) <= 0) break;
}

static void *acceptor_main(void *arg)
{
    struct ts_acceptor *a = arg;
    pthread_setname_np(pthread_self(), "tessera-accept");
    for (;;) {
        struct epoll_event evs[16];
        int n = epoll_wait(a->epfd, evs, 16, a->paused ? PAUSE_MS : -1);
        if (n < 0 && errno != EINTR) break;
        pthread_mutex_lock(&a->lock);
        if (a->paused) {
            set_listening(a, 1);
            a->paused = false;
        }
        bool stop = false;
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 == EVFD_TAG) {
                stop = true;
                continue;
            }
            /* an index from before a reload names a listener of the new set, or none: at
             * worst an accept finds nothing */
            size_t index = (size_t)evs[i].data.u64;
            if (index < a->l.nfds && accept_batch(a, &a->l, index) < 0 && !a->paused) {
                set_listening(a, 0);
                a->paused = true;
            }
        }
        if (stop) accept_rest(a, &a->l);
        wake_workers(a);
        pthread_mutex_unlock(&a->lock);
        if (stop) break;
    }
    return NULL;
}

int ts_acceptor_reload(struct ts_acceptor *a, struct ts_gen *gen, char *err, size_t errlen)
{
    const struct ts_config *cfg = &gen->cfg;
    struct ts_listeners next;
    /* taken before the acceptor's mutex: a wait for it must not hold up accepting */
    int lock = a->inherited ? -1 : listen_lock();
    pthread_mutex_lock(&a->lock);
    if (a->inherited) {
        /* the same sockets, with the new generation's per-listener settings; the operator
         * who changed listen is told why nothing was bound or closed */
        const struct ts_config *was = &a->gen->cfg;
        bool changed = was->nlisten != cfg->nlisten;
        for (size_t j = 0; !changed && j < cfg->nlisten; j++)
            changed = strcmp(was->listen[j], cfg->listen[j]) != 0;
        if (changed)
            ts_log_warn("reload: listen changed: applies at restart (the listeners are the "
                        "sockets socket activation passed)");
        listeners_alloc(&next, a->l.nfds);
        for (size_t k = 0; k < a->l.nfds; k++) {
            next.fds[k] = a->l.fds[k];
            for (size_t j = 0; k < a->l.ntls && j < cfg->nlisten; j++)
                if (same_address(a->l.fds[k], cfg->listen[j])) {
                    if (cfg->listen_proxy[j].enabled) next.proxy[k] = &cfg->listen_proxy[j];
                    break;
                }
        }
        next.nfds = a->l.nfds;
        next.ntls = a->l.ntls;
        listeners_free(&a->l);
        a->l = next;
    } else {
        /* out of the epoll set before open_listeners takes the kept sockets out of a->l:
         * a kept socket must come back with its index in the new set, not stay under its
         * old one (which may name another listener, or none) */
        if (!a->paused) set_listening(a, 0);
        /* a reload never takes an address over: --upgrade is a decision made at start */
        if (open_listeners(&next, cfg, &a->l, false, err, errlen) < 0) {
            if (!a->paused) set_listening(a, 1);
            pthread_mutex_unlock(&a->lock);
            if (lock >= 0) close(lock);
            return -1;
        }
        if (lock >= 0) close(lock);
        accept_rest(a, &a->l); /* the listeners left in the old set are removed ones */
        for (size_t i = 0; i < a->l.nfds; i++)
            if (a->l.fds[i] >= 0) close(a->l.fds[i]);
        listeners_free(&a->l);
        a->l = next;
        if (!a->paused) set_listening(a, 1);
    }
    struct ts_gen *old = a->gen;
    a->gen = ts_gen_ref(gen);
    wake_workers(a);
    pthread_mutex_unlock(&a->lock);
    ts_gen_unref(old);
    return 0;
}

int ts_acceptor_start(struct ts_acceptor *a)
{
    a->woken = calloc((size_t)a->srv->nworkers, sizeof(bool));
    if (!a->woken) abort();
    int rc = pthread_create(&a->thread, NULL, acceptor_main, a);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    a->started = 1;
    return 0;
}

void ts_acceptor_stop(struct ts_acceptor *a)
{
    if (a->started) {
        uint64_t one = 1;
        ssize_t n = write(a->evfd, &one, sizeof(one));
        (void)n;
        pthread_join(a->thread, NULL);
        a->started = 0;
    }
    for (size_t i = 0; i < a->l.nfds; i++) close(a->l.fds[i]);
    listeners_free(&a->l);
    if (a->epfd >= 0) close(a->epfd);
    if (a->evfd >= 0) close(a->evfd);
    a->epfd = a->evfd = -1;
    free(a->woken);
    a->woken = NULL;
    ts_gen_unref(a->gen);
    a->gen = NULL;
}

/* Whether the socket's bound address is the one spec ("ADDR:PORT") names. */
static bool same_address(int fd, const char *spec)
{
    char host[256], port[16];
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (ts_config_split_listen(spec, host, sizeof(host), port, sizeof(port)) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return false;
    struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    if (getaddrinfo(host, port, &hints, &res) != 0) return false;
    bool same = false;
    for (struct addrinfo *ai = res; ai && !same; ai = ai->ai_next) {
        if (ai->ai_family != ss.ss_family) continue;
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *x = (const void *)&ss, *y = (const void *)ai->ai_addr;
            same = x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
        } else {
            const struct sockaddr_in6 *x = (const void *)&ss, *y = (const void *)ai->ai_addr;
            same = x->sin6_port == y->sin6_port &&
                   memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
        }
    }
    freeaddrinfo(res);
    return same;
}

static bool is_redirect(const char *const *names, size_t i)
{
    return names && names[i] && strcmp(names[i], "http_redirect") == 0;
}

int ts_acceptor_inherit(struct ts_acceptor *a, struct ts_server *srv, struct ts_gen *gen,
                        const int *fds, const char *const *names, size_t n, char *err,
                        size_t errlen)
{
    const struct ts_config *cfg = &gen->cfg;
    adopt(a, srv, gen);
    a->inherited = true;
    listeners_alloc(&a->l, n);
    /* the TLS sockets first, then the redirecting ones, as ts_acceptor_listen orders them */
    for (int plain = 0; plain < 2; plain++)
        for (size_t i = 0; i < n; i++) {
            if (is_redirect(names, i) != plain) continue;
            size_t k = a->l.nfds++;
            a->l.fds[k] = fds[i];
            if (!plain) a->l.ntls = a->l.nfds;
            const char *how = plain ? "http, redirects to https" : "tls";
            for (size_t j = 0; !plain && j < cfg->nlisten; j++)
                if (same_address(fds[i], cfg->listen[j])) {
                    if (cfg->listen_proxy[j].enabled) a->l.proxy[k] = &cfg->listen_proxy[j];
                    how = cfg->listen_proxy[j].enabled ? "tls, PROXY protocol" : "tls";
                    break;
                }
            ts_log_info("socket activation: descriptor %d (%s): %s", fds[i],
                        names && names[i] ? names[i] : "unnamed", how);
        }
    for (size_t j = 0; j < cfg->nlisten + cfg->nredirect_listen; j++) {
        bool plain = j >= cfg->nlisten, found = false;
        const char *spec = plain ? cfg->redirect_listen[j - cfg->nlisten] : cfg->listen[j];
        for (size_t k = plain ? a->l.ntls : 0; k < (plain ? a->l.nfds : a->l.ntls) && !found; k++)
            found = same_address(a->l.fds[k], spec);
        if (!found)
            ts_log_warn("%s: \"%s\": ignored, socket activation passed no socket for it",
                        plain ? "http_redirect.listen" : "listen", spec);
    }
    if (a->l.ntls == 0) {
        snprintf(err, errlen,
                 "listen: socket activation passed no socket for TLS (only ones "
                 "named http_redirect)");
        goto fail;
    }
    if (start_listening(a, err, errlen) < 0) goto fail;
    return 0;
fail:
    ts_acceptor_stop(a);
    return -1;
}
