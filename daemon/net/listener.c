/*
 * Listeners: see listener.h.  Accepting in batches, pausing on fd
 * exhaustion, the udp session of this worker and its restart.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admit.h"
#include "conf.h"
#include "conn.h"
#include "dgram.h"
#include "excl.h"
#include "listener.h"
#include "log.h"
#include "lsock.h"
#include "util.h"
#include "worker.h"

#define ACCEPT_BATCH 64       /* accepts per wake-up, so others get a turn */
#define CLOSE_TAKE_MAX 65536  /* bound on taking the backlog at close */
#define GATE_RETRY 0.1        /* seconds: descriptors short, try again */
#define LIMIT_RETRY 0.1       /* seconds: at max_connections, try again */
#define SESSION_RESTART 1.0   /* seconds before a udp handler runs again */

static struct ks_lograte fd_log = KS_LOGRATE_INIT("descriptor shortage");

/* May l accept as far as descriptors go?  In the reserve only the
 * fd_reserve listeners may; with none left at all, none. */
static bool
fds_ok(const struct ks_listener *l)
{
	return !l->wk->fd_low || (l->lc->fd_reserve && !l->wk->fd_out);
}

/* Accepting: the watcher, and the socket's place in the loop's epoll set
 * as one that wakes a single waiting worker (excl.h). */
static void
accept_resume(struct ks_listener *l)
{
	if (!fds_ok(l) || l->limit_paused || l->wk->draining ||
	    ev_is_active(&l->io))
		return;
	/* ev_io_set makes libev register the fd again even when the watcher
	 * was stopped in this same loop iteration (it would see no change
	 * otherwise, and the socket would stay out of epoll, where
	 * accept_pause took it). */
	ev_io_set(&l->io, l->fd, EV_READ);
	ev_io_start(l->wk->loop, &l->io);
	ks_excl_want(l->wk, l->fd);
}

static void
accept_pause(struct ks_listener *l)
{
	ks_excl_drop(l->wk, l->fd);
	ev_io_stop(l->wk->loop, &l->io);
}

static bool
is_stream(const struct ks_listener *l)
{
	return l->lc->protocol != KS_PROTO_UDP;
}

/*
 * Descriptors ran short (an accepted socket in the reserve, or accept()
 * failed for want of them): every listener of the worker pauses, so that
 * what it has keeps working (logging, outbound connections) and new
 * connections wait in the backlog, for another worker or for later.  The
 * gate looks again every GATE_RETRY seconds.  No spinning meanwhile: the
 * listening sockets are out of the poll set.
 */
static bool
any_reserve(struct ks_worker *wk)
{
	struct ks_list *pos;

	ks_list_for_each(pos, &wk->listeners)
		if (ks_list_entry(pos, struct ks_listener, link)->lc->fd_reserve)
			return true;
	return false;
}

static void
fd_shortage(struct ks_worker *wk, int err)
{
	struct ks_list *pos;

	/* Already paused for this (an fd_reserve listener accepting in the
	 * reserve comes here for every connection it takes). */
	if (wk->fd_low && (err == 0 || wk->fd_out))
		return;
	/* The limit may have changed under us (prlimit): see it afresh. */
	ks_admit_init_worker(wk);
	wk->stats->fd_waits++;
	if (ks_lograte_allow(&fd_log, KS_LOG_ERR, &wk->stats->log_suppressed)) {
		if (err != 0)
			ks_log(KS_LOG_ERR, "accept: %s: every listener of this "
			       "worker pauses (%gs retries)", strerror(err),
			       GATE_RETRY);
		else
			ks_log(KS_LOG_ERR, "accept: only %d descriptors left in "
			       "reserve: every listener of this worker pauses "
			       "(%gs retries)%s", wk->fd_reserve, GATE_RETRY,
			       any_reserve(wk) ? "; fd_reserve listeners go on"
					       : "");
	}
	/* Out of descriptors altogether: the fd_reserve listeners too. */
	if (err != 0)
		wk->fd_out = true;
	wk->fd_low = true;
	ks_list_for_each(pos, &wk->listeners) {
		struct ks_listener *l = ks_list_entry(pos, struct ks_listener, link);

		if (is_stream(l) && (!l->lc->fd_reserve || wk->fd_out))
			accept_pause(l);
	}
	if (ev_is_active(&wk->accept_gate))
		return;
	ev_timer_set(&wk->accept_gate, GATE_RETRY, 0);
	ev_timer_start(wk->loop, &wk->accept_gate);
}

/* Is the lowest free descriptor below the reserve again? */
static bool
fds_available(struct ks_worker *wk, int probe_fd)
{
	int fd = fcntl(probe_fd, F_DUPFD_CLOEXEC, 0);

	if (fd < 0)
		return false;
	close(fd);
	return fd < wk->fd_reserve_from;
}

static void
gate_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ks_worker *wk = KS_CONTAINER_OF(w, struct ks_worker, accept_gate);
	struct ks_list *pos;
	struct ks_listener *l;

	(void)revents;
	if (ks_list_empty(&wk->listeners) || wk->draining) {
		wk->fd_low = wk->fd_out = false;
		return;
	}
	l = ks_list_entry(wk->listeners.next, struct ks_listener, link);
	ks_admit_init_worker(wk);
	if (!fds_available(wk, l->fd)) {
		ev_timer_set(w, GATE_RETRY, 0);
		ev_timer_start(loop, w);
		return;
	}
	wk->fd_low = false;
	wk->fd_out = false;
	ks_log(KS_LOG_INFO, "accept: descriptors available again: "
	       "accepting");
	ks_list_for_each(pos, &wk->listeners) {
		l = ks_list_entry(pos, struct ks_listener, link);
		if (is_stream(l))
			accept_resume(l);
	}
}

/* At max_connections: this listener waits (its retry timer, or a
 * connection of this worker ending, whichever comes first). */
static void
limit_pause(struct ks_listener *l)
{
	accept_pause(l);
	if (!l->limit_paused) {
		l->limit_paused = true;
		l->wk->nlimit_paused++;
	}
	ev_timer_stop(l->wk->loop, &l->retry);
	ev_timer_set(&l->retry, LIMIT_RETRY, 0);
	ev_timer_start(l->wk->loop, &l->retry);
}

/* No longer waiting at max_connections (its retry timer stopped). */
static void
limit_clear(struct ks_listener *l)
{
	if (!l->limit_paused)
		return;
	l->limit_paused = false;
	l->wk->nlimit_paused--;
	ev_timer_stop(l->wk->loop, &l->retry);
}

static void
limit_resume(struct ks_listener *l)
{
	if (!l->limit_paused)
		return;
	limit_clear(l);
	accept_resume(l);
}

void
ks_listeners_slot_freed(struct ks_worker *wk)
{
	struct ks_list *pos;

	if (wk->nlimit_paused == 0)
		return;
	ks_list_for_each(pos, &wk->listeners)
		limit_resume(ks_list_entry(pos, struct ks_listener, link));
}

/*
 * Accepts up to max connections and starts them, each through the
 * admission checks (admit.h).  Returns 0 when the backlog is empty, the
 * batch is full or a limit paused the listener, else the errno that
 * stopped it.
 */
static int
accept_some(struct ks_listener *l, int max)
{
	struct ks_worker *wk = l->wk;
	struct sockaddr_storage peer;
	struct ks_admit adm;
	socklen_t len;
	int i, fd;

	for (i = 0; i < max && fds_ok(l); i++) {
		if (ks_admit_reserve(l, &adm) != 0) {
			limit_pause(l);
			return 0;
		}
		len = sizeof(peer);
		fd = accept4(l->fd, (struct sockaddr *)&peer, &len,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			int err = errno;

			ks_admit_release(wk, &adm);
			switch (err) {
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
				continue;
			case EAGAIN:
#if EAGAIN != EWOULDBLOCK
			case EWOULDBLOCK:
#endif
				return 0;
			default:
				return err;
			}
		}
		/* In the reserve: serve this one, then pause. */
		if (fd >= wk->fd_reserve_from)
			fd_shortage(wk, 0);
		/* Behind a proxy the checks wait for the client's address
		 * (the proxy phase); here: is the proxy one we trust? */
		if ((l->lc->proxy_protocol
			     ? ks_admit_proxy(wk, l->lc, (struct sockaddr *)&peer)
			     : ks_admit_check(wk, l->lc, &adm,
					      (struct sockaddr *)&peer)) != 0) {
			ks_sock_set_reset(fd); /* no TIME_WAIT, no FIN_WAIT */
			close(fd);
			ks_admit_release(wk, &adm);
			continue;
		}
		ks_conn_start(wk, l->lc, fd, (struct sockaddr *)&peer, len, &adm);
	}
	return 0;
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ks_listener *l = KS_CONTAINER_OF(w, struct ks_listener, io);
	int err;

	(void)loop;
	(void)revents;
	err = accept_some(l, ACCEPT_BATCH);
	switch (err) {
	case 0:
		return;
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
	case ENOMEM:
		/* Out of descriptors or memory: the pending connection stays
		 * in the backlog and the socket stays readable, so pause
		 * instead of spinning. */
		l->wk->stats->accept_errors++;
		fd_shortage(l->wk, err);
		return;
	default:
		l->wk->stats->accept_errors++;
		errno = err;
		ks_log_errno(KS_LOG_WARN, "listener %s: accept", l->lc->name);
		return;
	}
}

/* udp: the listener's handler runs as a session, one per generation. */
static void
session_start(struct ks_listener *l)
{
	if (l->session != NULL || l->wk->draining)
		return;
	if (ks_conn_start_session(l->wk, l->lc, l) == NULL) {
		ev_timer_set(&l->retry, SESSION_RESTART, 0);
		ev_timer_start(l->wk->loop, &l->retry);
	}
}

void
ks_listener_session_ended(struct ks_listener *l)
{
	l->session = NULL;
	if (l->wk->draining)
		return;
	ks_log(KS_LOG_WARN, "listener %s: datagram handler returned; "
	       "starting it again in %gs", l->lc->name, SESSION_RESTART);
	ev_timer_stop(l->wk->loop, &l->retry);
	ev_timer_set(&l->retry, SESSION_RESTART, 0);
	ev_timer_start(l->wk->loop, &l->retry);
}

static void
retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ks_listener *l = KS_CONTAINER_OF(w, struct ks_listener, retry);

	(void)revents;
	if (l->wk->draining)
		return;
	if (l->lc->protocol == KS_PROTO_UDP) {
		session_start(l);
		return;
	}
	limit_clear(l);
	accept_resume(l);
}

struct ks_listener *
ks_listener_attach(struct ks_worker *wk, struct ks_lconf *lc)
{
	struct ks_listener *l = calloc(1, sizeof(*l));

	if (l == NULL) {
		ks_log(KS_LOG_ERR, "listener %s: out of memory", lc->name);
		return NULL;
	}
	l->wk = wk;
	l->lc = lc;
	l->fd = lc->lsock->fd;
	l->family = lc->lsock->family;
	l->lkey = ks_zone_name_key(wk->zu.zone, lc->name);
	ks_conf_ref(lc->conf);
	ev_io_init(&l->io, accept_cb, l->fd, EV_READ);
	ev_init(&l->retry, retry_cb);
	if (ks_list_empty(&wk->listeners) && !ev_is_active(&wk->accept_gate))
		ev_init(&wk->accept_gate, gate_cb);
	ks_list_push(&wk->listeners, &l->link);
	return l;
}

void
ks_listener_start(struct ks_listener *l)
{
	if (l->lc->protocol == KS_PROTO_UDP)
		session_start(l);
	else
		accept_resume(l);
}

void
ks_listener_close(struct ks_listener *l)
{
	/* Out of the epoll set first: from now on the kernel wakes another
	 * worker for a new connection, and what came before is taken here. */
	accept_pause(l);
	/* What is queued already was meant for some worker; this one may
	 * have been the one the kernel woke for it.  (Not past a limit or
	 * into the descriptor reserve: then it stays for the others.) */
	if (l->lc->protocol != KS_PROTO_UDP)
		(void)accept_some(l, CLOSE_TAKE_MAX);
	accept_pause(l);
	limit_clear(l);
	ev_timer_stop(l->wk->loop, &l->retry);
	ks_list_remove(&l->link);
	if (ks_list_empty(&l->wk->listeners))
		ev_timer_stop(l->wk->loop, &l->wk->accept_gate);
	ks_dsock_detach_all(l);
	l->session = NULL;
	close(l->fd);
	ks_conf_unref(l->lc->conf);
	free(l);
}
