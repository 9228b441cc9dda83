/* Running as a service. The notification protocol is one datagram per state change on an
 * AF_UNIX socket, so it is spoken here directly rather than through libsystemd: no new
 * dependency, and nothing to load on systems without systemd. Also the pid file. */
#include "service.h"
#include "config.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define LISTEN_FDS_START 3
#define MAX_LISTEN_FDS   64

static char notify_path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
static char *listen_pid, *listen_fds, *listen_fdnames;
static char *fd_names[MAX_LISTEN_FDS];

static char *take_env(const char *name)
{
    const char *v = getenv(name);
    char *copy = v ? strdup(v) : NULL;
    if (v && !copy) abort(); /* out of memory at start-up */
    unsetenv(name);
    return copy;
}

void ts_service_init(void)
{
    char *n = take_env("NOTIFY_SOCKET");
    if (n && strlen(n) < sizeof(notify_path) && (n[0] == '/' || n[0] == '@'))
        strcpy(notify_path, n);
    free(n);
    listen_pid = take_env("LISTEN_PID");
    listen_fds = take_env("LISTEN_FDS");
    listen_fdnames = take_env("LISTEN_FDNAMES");
}

void ts_service_notify(const char *msg)
{
    if (!notify_path[0]) return;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(notify_path);
    memcpy(sa.sun_path, notify_path, len);
    if (sa.sun_path[0] == '@') sa.sun_path[0] = '\0'; /* an abstract socket: no terminator */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || sendto(fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa,
                         (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
        ts_log_debug("NOTIFY_SOCKET %s: %s", notify_path, strerror(errno));
    if (fd >= 0) close(fd);
}

/* Splits LISTEN_FDNAMES ("a:b:c") into fd_names; missing names stay NULL. */
static void split_names(int n)
{
    char *s = listen_fdnames;
    for (int i = 0; i < n && s; i++) {
        char *colon = strchr(s, ':');
        if (colon) *colon = '\0';
        fd_names[i] = s;
        s = colon ? colon + 1 : NULL;
    }
}

int ts_service_listen_fds(int **fds, const char *const **names, char *err, size_t errlen)
{
    *fds = NULL;
    *names = (const char *const *)fd_names;
    if (!listen_pid || !listen_fds) return 0;
    char *end;
    long pid = strtol(listen_pid, &end, 10);
    if (*end || pid != (long)getpid()) return 0; /* meant for another process */
    long n = strtol(listen_fds, &end, 10);
    if (*end || n < 1 || n > MAX_LISTEN_FDS) {
        snprintf(err, errlen, "LISTEN_FDS: \"%s\" is not a number of sockets from 1 to %d",
                 listen_fds, MAX_LISTEN_FDS);
        return -1;
    }
    split_names((int)n);
    *fds = calloc((size_t)n, sizeof(int));
    if (!*fds) abort();
    for (int i = 0; i < n; i++) {
        int fd = LISTEN_FDS_START + i, type = 0, acc = 0;
        socklen_t tl = sizeof(type), al = sizeof(acc);
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
            getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) < 0 ||
            getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
            snprintf(err, errlen, "LISTEN_FDS: descriptor %d: %s", fd, strerror(errno));
            goto fail;
        }
        if (type != SOCK_STREAM || !acc || (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)) {
            snprintf(err, errlen,
                     "LISTEN_FDS: descriptor %d is not a listening TCP socket (ListenStream= "
                     "with an address and port)",
                     fd);
            goto fail;
        }
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
            fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
            snprintf(err, errlen, "LISTEN_FDS: descriptor %d: %s", fd, strerror(errno));
            goto fail;
        }
        (*fds)[i] = fd;
    }
    return (int)n;
fail:
    free(*fds);
    *fds = NULL;
    return -1;
}

/* Reads the capability sets straight from the kernel (no libcap): all zero once the switch
 * to a non-root user has cleared them. */
static int capabilities_left(void)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof(d));
    if (syscall(SYS_capget, &h, d) < 0) return -1;
    return (d[0].effective | d[0].permitted | d[0].inheritable | d[1].effective | d[1].permitted |
            d[1].inheritable) != 0;
}

/* Empties the bounding set, so that not even an executed set-uid program could regain a
 * capability; a manager that already took CAP_SETPCAP away leaves this to it. */
static void drop_bounding_set(void)
{
    bool denied = false;
    for (int cap = 0; cap <= 63; cap++) {
        if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) <= 0) continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno == EPERM) denied = true;
    }
    if (denied)
        ts_log_warn("user: the capability bounding set cannot be emptied (no CAP_SETPCAP); "
                    "the switch of user still clears every capability");
}

/* The ids "user" and "group" name. Returns 1, 0 when "user" is absent, or -1 with err set. */
static int resolve(const struct ts_config *cfg, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
    if (!cfg->user) {
        if (!cfg->group) return 0;
        snprintf(err, errlen, "group: \"%s\" needs \"user\" as well", cfg->group);
        return -1;
    }
    struct passwd *pw = getpwnam(cfg->user);
    if (!pw) {
        snprintf(err, errlen, "user: \"%s\": no such user", cfg->user);
        return -1;
    }
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    if (cfg->group) {
        struct group *gr = getgrnam(cfg->group);
        if (!gr) {
            snprintf(err, errlen, "group: \"%s\": no such group", cfg->group);
            return -1;
        }
        *gid = gr->gr_gid;
    }
    return 1;
}

int ts_service_check(const struct ts_config *cfg, char *err, size_t errlen)
{
    uid_t uid;
    gid_t gid;
    int rc = resolve(cfg, &uid, &gid, err, errlen);
    if (rc <= 0) return rc;
    if (uid == 0) {
        snprintf(err, errlen, "user: \"%s\" is root: name an unprivileged user", cfg->user);
        return -1;
    }
    return 0;
}

int ts_service_drop_privileges(const struct ts_config *cfg, char *err, size_t errlen)
{
    uid_t uid = 0;
    gid_t gid = 0;
    int named = resolve(cfg, &uid, &gid, err, errlen);
    if (named < 0) return -1;
    uid_t euid = geteuid();
    if (euid != 0 && getuid() != 0) {
        if (!named || (uid == euid && gid == getegid()))
            return 0; /* already that user (and group): nothing to do */
        snprintf(err, errlen,
                 "user: \"%s\"%s%s%s: tessera runs as uid %u gid %u and only a process started "
                 "as root can switch (remove the key, or start tessera as root)",
                 cfg->user, cfg->group ? ", group \"" : "", cfg->group ? cfg->group : "",
                 cfg->group ? "\"" : "", (unsigned)euid, (unsigned)getegid());
        return -1;
    }
    if (!named) {
        ts_log_warn("running as root: set \"user\" so that tessera serves as an unprivileged "
                    "user once its listeners and files are open");
        return 0;
    }
    if (ts_service_check(cfg, err, errlen) < 0) return -1;
    /* The user's supplementary groups as a login would have them (ssl-cert is how Debian lets
     * a service read private keys), plus the chosen group; never root's own. */
    drop_bounding_set();
    if (initgroups(cfg->user, gid) < 0) {
        snprintf(err, errlen, "user: \"%s\": setting its groups: %s", cfg->user, strerror(errno));
        return -1;
    }
    if (setresgid(gid, gid, gid) < 0) {
        snprintf(err, errlen, "%s: cannot switch to gid %u: %s", cfg->group ? "group" : "user",
                 (unsigned)gid, strerror(errno));
        return -1;
    }
    if (setresuid(uid, uid, uid) < 0) {
        snprintf(err, errlen, "user: \"%s\": cannot switch to uid %u: %s", cfg->user, (unsigned)uid,
                 strerror(errno));
        return -1;
    }
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    /* Trust nothing: the ids must be the new ones, root must be out of reach, and the kernel
     * must have cleared every capability with the change of uid. */
    uid_t r, e, s;
    gid_t gr, ge, gs;
    if (getresuid(&r, &e, &s) < 0 || r != uid || e != uid || s != uid ||
        getresgid(&gr, &ge, &gs) < 0 || gr != gid || ge != gid || gs != gid || setuid(0) == 0 ||
        capabilities_left() != 0) {
        snprintf(err, errlen, "user: \"%s\": the switch from root did not take full effect",
                 cfg->user);
        return -1;
    }
    ts_log_info("running as user %s (uid %u, gid %u)", cfg->user, (unsigned)uid, (unsigned)gid);
    return 0;
}

/* ---- the pid file ----
 * The file is held, not only written: its descriptor stays open for the life of the process
 * with an exclusive flock(2) on it, so whether a live process holds it is the kernel's answer
 * (a lock ends with its process, however that ends; the number in a file left behind may
 * have been given to another process since). The descriptor is opened before the switch to
 * "user", so writing through it works after the switch, where the directory (/run) may no
 * longer be writable: removing the file at exit may then fail, and the file is emptied
 * instead, which names no process. */
static struct {
    int fd; /* -1: no pid file */
    char *path;
    bool locked;  /* false after a takeover (--upgrade) until the process it replaces exits */
    long prev;    /* that process, named again in the file if this one exits before it */
    bool written; /* this process's id is in the file */
} pidf = {.fd = -1};

/* The process id in the file: 0 when it is empty, -1 when it holds anything else. */
static long read_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0) return 0;
    buf[n] = '\0';
    char *end;
    long v = strtol(buf, &end, 10);
    return end == buf || v <= 0 || (*end && strcmp(end, "\n") != 0) ? -1 : v;
}

/* Whether the name path still leads to the file open as fd: a holder unlinks its file as it
 * exits, and a lock taken on the unlinked file would guard nothing anyone finds. */
static bool same_file(int fd, const char *path)
{
    struct stat a, b;
    return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
}

static bool read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, len - 1) : -1;
    if (fd >= 0) close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return n > 0;
}

/* Whether process pid runs the same program as this one (its name in /proc). An unlocked file
 * that names such a process is taken as held: a tessera that took the file over (--upgrade)
 * gets the lock only when the one it replaced has exited, at its next tick. */
static bool same_program(long pid)
{
    char path[64], mine[64], theirs[64];
    snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
    return pid != (long)getpid() && read_small("/proc/self/comm", mine, sizeof(mine)) &&
           read_small(path, theirs, sizeof(theirs)) && strcmp(mine, theirs) == 0;
}

int ts_service_pidfile_open(const struct ts_config *cfg, bool takeover, char *err, size_t errlen)
{
    const char *path = cfg->pid_file;
    if (!path) return 0;
    for (int attempt = 0; attempt < 5; attempt++) {
        /* O_NOFOLLOW: a link planted where a root process writes is not followed */
        int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
            snprintf(err, errlen, "pid_file: %s: %s", path,
                     errno == ELOOP ? "is a symbolic link: name the file itself" : strerror(errno));
            if (fd >= 0) close(fd);
            return -1;
        }
        if (!S_ISREG(st.st_mode)) {
            snprintf(err, errlen, "pid_file: %s: not a regular file", path);
            close(fd);
            return -1;
        }
        bool locked = flock(fd, LOCK_EX | LOCK_NB) == 0;
        if (!locked && errno != EWOULDBLOCK) {
            snprintf(err, errlen, "pid_file: %s: cannot lock it: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        if (locked && !same_file(fd, path)) { /* its holder removed it as it exited */
            close(fd);
            continue;
        }
        long pid = read_pid(fd);
        bool live = !locked || (pid > 0 && same_program(pid));
        if (live && !takeover) {
            if (pid > 0)
                snprintf(err, errlen,
                         "pid_file: %s: held by the running process %ld (a tessera with this "
                         "pid_file runs already: stop it first, or start this one with "
                         "--upgrade to replace it)",
                         path, pid);
            else
                snprintf(err, errlen,
                         "pid_file: %s: held by a running process that has not written its id "
                         "yet (a tessera starting with this pid_file)",
                         path);
            close(fd);
            return -1;
        }
        if (live)
            ts_log_info("pid_file: %s: held by process %ld: taken over (--upgrade), this "
                        "process's id is written once it listens",
                        path, pid);
        else if (pid > 0)
            ts_log_info("pid_file: %s: left by process %ld, which no longer runs: taken over", path,
                        pid);
        else if (pid < 0)
            ts_log_info("pid_file: %s: holds no process id: taken over", path);
        /* a stale id must name no process until this one's is written */
        if (!live && ftruncate(fd, 0) < 0) {
            snprintf(err, errlen, "pid_file: %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        pidf.fd = fd;
        pidf.locked = locked;
        pidf.prev = live ? pid : 0;
        pidf.path = strdup(path);
        if (!pidf.path) abort();
        return 0;
    }
    snprintf(err, errlen, "pid_file: %s: removed again each time it is opened", path);
    return -1;
}

/* Replaces the file's contents with pid (0: empties it). Emptied first: a reader never sees
 * the new number over the rest of a longer old one. */
static int put_pid(long pid)
{
    char buf[32];
    int n = pid > 0 ? snprintf(buf, sizeof(buf), "%ld\n", pid) : 0;
    if (ftruncate(pidf.fd, 0) < 0) return -1;
    return n == 0 || pwrite(pidf.fd, buf, (size_t)n, 0) == n ? 0 : -1;
}

/* The process this one took the file over from removes it as it exits if it still names that
 * process: stopped before this one listened, it leaves no file to write into. Made again. */
static void pidfile_make_again(void)
{
    if (same_file(pidf.fd, pidf.path)) return;
    int fd = open(pidf.path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
        ts_log_warn("pid_file: %s: removed by the process this one took it over from, and it "
                    "cannot be made again: %s",
                    pidf.path, strerror(errno));
        if (fd >= 0) close(fd);
        return;
    }
    close(pidf.fd);
    pidf.fd = fd;
    pidf.locked = true;
    pidf.prev = 0;
}

void ts_service_pidfile_write(void)
{
    if (pidf.fd < 0) return;
    if (!pidf.locked) pidfile_make_again();
    if (put_pid((long)getpid()) < 0) {
        ts_log_error("pid_file: %s: cannot write it: %s", pidf.path, strerror(errno));
        return;
    }
    pidf.written = true;
}

void ts_service_pidfile_tick(void)
{
    if (pidf.fd < 0 || pidf.locked || flock(pidf.fd, LOCK_EX | LOCK_NB) < 0) return;
    pidf.locked = true;
    pidf.prev = 0;
    ts_log_debug("pid_file: %s: the process it was taken over from has exited", pidf.path);
    if (!same_file(pidf.fd, pidf.path)) {
        pidfile_make_again();
        if (pidf.written) ts_service_pidfile_write();
    }
}

void ts_service_pidfile_close(void)
{
    if (pidf.fd < 0) return;
    long pid = read_pid(pidf.fd);
    bool ours = same_file(pidf.fd, pidf.path) && pid == (long)getpid();
    if (ours && !pidf.locked) {
        /* leaving before the process this one was to replace: the file names it again */
        if (put_pid(pidf.prev) < 0)
            ts_log_warn("pid_file: %s: cannot write process %ld back: %s", pidf.path, pidf.prev,
                        strerror(errno));
    } else if (pidf.locked && same_file(pidf.fd, pidf.path) && (ours || pid == 0)) {
        if (unlink(pidf.path) < 0) {
            int e = errno;
            ts_log_info("pid_file: %s: cannot be removed (%s): emptied instead", pidf.path,
                        strerror(e));
            if (put_pid(0) < 0)
                ts_log_warn("pid_file: %s: cannot empty it: %s", pidf.path, strerror(errno));
        }
    } else if (pidf.written) {
        ts_log_info("pid_file: %s: left in place: it names process %ld now (taken over)", pidf.path,
                    pid);
    }
    close(pidf.fd);
    free(pidf.path);
    pidf.fd = -1;
    pidf.path = NULL;
}
