/* Running as a service: the systemd notification protocol, sockets handed over by socket
 * activation, and the switch from root to the configured user. Main thread only. */
#ifndef TS_SERVICE_H
#define TS_SERVICE_H

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

#endif
