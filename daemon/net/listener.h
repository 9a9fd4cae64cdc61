/*
 * Listeners: bound sockets and their accept watchers.  A listener owns its
 * fd and points at the listener config of the current generation; a reload
 * can hand the same fd to a new generation.
 */
#ifndef KS_LISTENER_H
#define KS_LISTENER_H

#include <ev.h>

#include "conn.h"

struct ks_lconf;
struct ks_worker;
struct ks_dsock;

struct ks_listener {
	struct ks_worker *wk;
	struct ks_lconf *lc; /* holds a reference on lc->conf */
	int fd;
	int family;
	ev_io io;        /* accepting (stream listeners) */
	ev_timer retry;  /* re-arms accepting after fd exhaustion; udp:
			  * restarts a session whose handler returned */
	/* udp: the session (handle_dgram) of the current generation, and
	 * the sockets of every session still running on this fd */
	struct ks_conn *session;
	struct ks_dsock *dsocks;
	ev_tstamp last_emfile_log;
	char bound[KS_ADDRSTRLEN]; /* actual address, port 0 resolved */
	struct ks_listener *next;
};

/* Creates, configures, binds and listens.  On failure returns NULL and logs
 * "listener NAME: ADDRESS: reason". */
struct ks_listener *ks_listener_open(struct ks_worker *wk, struct ks_lconf *lc);
void ks_listener_start(struct ks_listener *l);
void ks_listener_stop(struct ks_listener *l);
/* The per-connection socket options of a listener (no_delay, keep_alive,
 * type_of_service, linger, buffer sizes) on fd; outbound connections get
 * their connection's listener's.  socktype SOCK_DGRAM: only those that
 * apply to UDP.  NULL, or the option that failed. */
const char *ks_sockopts_apply(int fd, const struct ks_lconf *lc, int family,
			      int socktype);

/* dgram.c: the session's handler has finished while this listener was
 * still its listener; a new session starts a second later. */
void ks_listener_session_ended(struct ks_listener *l);

/* Points the listener at the same listener in a new generation (reload):
 * the socket stays, new connections get the new config. */
void ks_listener_set_conf(struct ks_listener *l, struct ks_lconf *lc);
/* Stops, closes the fd (unlinking a unix socket path) and frees. */
void ks_listener_close(struct ks_listener *l);

#endif
