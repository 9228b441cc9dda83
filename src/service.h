/* Running as a service: the systemd notification protocol, sockets handed over by socket
 * activation, the switch from root to the configured user, the pid file. Main thread only. */
#ifndef TS_SERVICE_H
#define TS_SERVICE_H

#include <stdbool.h>
#include <stddef.h>

struct ts_config;

/* Reads NOTIFY_SOCKET and the LISTEN_* variables once, and unsets them so that nothing
 * tessera might start inherits them. Call first thing in main. */
void ts_service_init(void);

/* Sends one state message ("READY=1", "STOPPING=1", "STATUS=...") to the service manager
 * when NOTIFY_SOCKET named one; never blocks, failures are logged at debug and ignored. */
void ts_service_notify(const char *msg);

/* The sockets passed by socket activation (LISTEN_PID is this process): each checked to be a
 * listening TCP socket, made non-blocking and close-on-exec. *fds gets a malloc'd array
 * (free it; the caller owns the descriptors) and *names the matching LISTEN_FDNAMES entries
 * (or NULL). Returns their number, 0 without activation, or -1 with a message in err. */
int ts_service_listen_fds(int **fds, const char *const **names, char *err, size_t errlen);

/* Checks that "user" and "group" name an unprivileged user and a group of this system (for
 * --check-config). Returns 0, or -1 with a message naming the key in err. */
int ts_service_check(const struct ts_config *cfg, char *err, size_t errlen);

/* Started as root with "user" set: switches to that user and group and gives up every
 * capability; started as root without it: warns; otherwise checks that "user" names the
 * current user. Returns 0, or -1 with a message naming the key in err. */
int ts_service_drop_privileges(const struct ts_config *cfg, char *err, size_t errlen);

/* The pid file (cfg->pid_file; nothing without it), taken at start before the listeners are
 * opened and before the switch of user: created if missing and locked for the life of the
 * process. A file a live process holds is refused (-1, a message naming the key and that
 * process in err), unless takeover (--upgrade): then this process writes its id into it once
 * it listens, and holds it once the other has exited. A file left by a process that no longer
 * runs is taken over, with an info line. Main thread. Returns 0 or -1. */
int ts_service_pidfile_open(const struct ts_config *cfg, bool takeover, char *err, size_t errlen);

/* Writes this process's id into the pid file: once it listens. A failure is logged. */
void ts_service_pidfile_write(void);

/* After a takeover: takes the lock once the process it replaced has exited (main loop, once
 * a second; returns at once). */
void ts_service_pidfile_tick(void);

/* At exit: removes the pid file when it is still this process's (empties it when it cannot be
 * removed); after a takeover that did not complete, names the previous process again. */
void ts_service_pidfile_close(void);

#endif
