/*
 * Listeners: a worker's side of a bound socket (lsock.h).  A worker
 * attaches to the socket its master bound (the descriptor is inherited
 * across the fork) and accepts on it, or, for udp, runs the listener's
 * datagram session on it.  Only the master closes the socket for good and
 * unlinks a unix socket's path: a worker that is done with a listener just
 * closes its own descriptor.
 */
#ifndef KS_LISTENER_H
#define KS_LISTENER_H

#include <ev.h>

#include "conn.h"
#include "util.h"

struct ks_lconf;
struct ks_worker;
struct ks_dsock;

struct ks_listener {
	struct ks_worker *wk;
	struct ks_lconf *lc; /* holds a reference on lc->conf */
	int fd;              /* the worker's copy of lc->lsock->fd */
	int family;
	ev_io io;        /* accepting (stream listeners) */
	ev_timer retry;  /* re-arms accepting after fd exhaustion; udp:
			  * restarts a session whose handler returned */
	/* udp: the session (handle_dgram) of this worker, and the sockets of
	 * every session still running on this fd */
	struct ks_conn *session;
	struct ks_dsock *dsocks;
	uint64_t lkey;     /* its name in the limits zone */
	bool limit_paused; /* at max_connections: the retry timer runs */
	struct ks_list link; /* in wk->listeners */
	struct ks_listener *next; /* the owner's list (worker_proc.c) */
};

/* The worker's listener on lc's bound socket (lc->lsock).  NULL after
 * logging when out of memory. */
struct ks_listener *ks_listener_attach(struct ks_worker *wk,
				       struct ks_lconf *lc);
/* Starts accepting (stream) or the datagram session (udp). */
void ks_listener_start(struct ks_listener *l);

/* A connection of the worker ended: a listener paused at max_connections
 * tries again now. */
void ks_listeners_slot_freed(struct ks_worker *wk);

/* dgram.c: the session's handler has finished while this listener was
 * still its listener; a new session starts a second later. */
void ks_listener_session_ended(struct ks_listener *l);

/*
 * The worker is done with l (it drains or stops): it stops accepting,
 * takes the connections already queued for it (so that none the kernel
 * woke this worker for is left waiting), and closes its descriptor.  udp:
 * a session still at work keeps a copy of the socket for its replies,
 * unless the worker is stopping.  Frees l.
 */
void ks_listener_close(struct ks_listener *l);

#endif
