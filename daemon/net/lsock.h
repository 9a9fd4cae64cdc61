/*
 * Bound sockets: the master's half of a listener.  The master creates,
 * configures and binds every listening socket (or takes it from systemd's
 * socket activation, or from the image it was re-executed from), keeps it
 * across reloads while the listener's address stays the same, and is the
 * only process that closes it for good or unlinks a unix socket's path.
 * Workers inherit the descriptor and accept on it (listener.h).
 *
 * One socket serves every worker: a single accept queue, so a worker that
 * is busy or blocked in a plugin delays nobody (the others take the
 * connections), a worker that exits takes nothing queued with it, and the
 * socket outlives every worker.  See ARCHITECTURE.md.
 */
#ifndef KS_LSOCK_H
#define KS_LSOCK_H

#include <stdbool.h>
#include <sys/socket.h>

#include "conn.h"

struct ks_lconf;

enum ks_lsock_origin {
	KS_LSOCK_BOUND,     /* bound by this process (or an earlier image) */
	KS_LSOCK_SYSTEMD,   /* passed in LISTEN_FDS: systemd owns the path */
};

struct ks_lsock {
	int fd;
	int family;
	int protocol;            /* enum ks_proto */
	enum ks_lsock_origin origin;
	struct ks_lconf *lc;     /* the configuration its options are set
				  * from (a reference on lc->conf); NULL for a
				  * passed socket no listener claimed yet */
	char bound[KS_ADDRSTRLEN]; /* its address, port 0 resolved */
	char *name;              /* systemd's FileDescriptorName, or NULL */
	bool unlink_path;        /* unix: the path is ours to remove */
	char *path;              /* unix: the path */
	struct ks_lsock *next;
};

/* Creates, configures and binds (and listens on) the socket for lc;
 * applies the unix socket file's mode and owner.  NULL after logging
 * "listener NAME: ADDRESS: reason". */
struct ks_lsock *ks_lsock_bind(struct ks_lconf *lc);

/* A descriptor passed by systemd (name from LISTEN_FDNAMES, may be NULL)
 * or kept across an exec: learns its family, type and address, makes it
 * non-blocking (not close-on-exec: the caller decides).  NULL after
 * logging when fd is no usable socket (it is closed then). */
struct ks_lsock *ks_lsock_adopt(int fd, const char *name,
				enum ks_lsock_origin origin);

/* Would lc's listener use this socket?  A passed socket: its name is the
 * listener's, else the same protocol and address.  A bound one: the same
 * protocol, address and port (port 0 only under the same listener name,
 * which got that port). */
bool ks_lsock_matches(const struct ks_lsock *ls, const struct ks_lconf *lc);
/* Like ks_lsock_matches for systemd's sockets, but by name only. */
bool ks_lsock_named(const struct ks_lsock *ls, const struct ks_lconf *lc);

/* Points the socket at lc (the same listener in a new generation, or the
 * listener that claims a passed socket) and sets what can be set on a
 * socket that stays: the options accepted connections inherit, the backlog
 * (listen() again), multicast memberships, the unix file's mode and owner.
 * A changed key that takes a new socket (reuse_port ...) is logged.
 * Returns -1 if an option could not be set (logged). */
int ks_lsock_configure(struct ks_lsock *ls, struct ks_lconf *lc);

/* The master closes the socket for good (and removes a unix socket path
 * it created), then frees ls. */
void ks_lsock_close(struct ks_lsock *ls);

/* The per-connection socket options of a listener (no_delay, keep_alive,
 * type_of_service, linger, buffer sizes) on fd; outbound connections get
 * their connection's listener's.  socktype SOCK_DGRAM: only those that
 * apply to UDP.  NULL, or the option that failed. */
const char *ks_sockopts_apply(int fd, const struct ks_lconf *lc, int family,
			      int socktype);

#endif
