/*
 * Listeners: see listener.h.  Accepting in batches, pausing on fd
 * exhaustion, the udp session of this worker and its restart.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

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
#define EMFILE_RETRY 0.1      /* seconds before accepting again */
#define EMFILE_LOG_EVERY 5.0  /* seconds between fd-exhaustion messages */
#define SESSION_RESTART 1.0   /* seconds before a udp handler runs again */

/* Accepting: the watcher, and the socket's place in the loop's epoll set
 * as one that wakes a single waiting worker (excl.h). */
static void
accept_resume(struct ks_listener *l)
{
	ev_io_start(l->wk->loop, &l->io);
	ks_excl_want(l->wk, l->fd);
}

static void
accept_pause(struct ks_listener *l)
{
	ks_excl_drop(l->wk, l->fd);
	ev_io_stop(l->wk->loop, &l->io);
}

/*
 * Accepts up to max connections and starts them.  Returns 0 when the
 * backlog is empty or the batch is full, else the errno that stopped it.
 */
static int
accept_some(struct ks_listener *l, int max)
{
	struct sockaddr_storage peer;
	socklen_t len;
	int i, fd;

	for (i = 0; i < max; i++) {
		len = sizeof(peer);
		fd = accept4(l->fd, (struct sockaddr *)&peer, &len,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			ks_conn_start(l->wk, l->lc, fd,
				      (struct sockaddr *)&peer, len);
			continue;
		}
		switch (errno) {
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
			return errno;
		}
	}
	return 0;
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ks_listener *l = KS_CONTAINER_OF(w, struct ks_listener, io);
	int err;

	(void)revents;
	err = accept_some(l, ACCEPT_BATCH);
	switch (err) {
	case 0:
		return;
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
	case ENOMEM:
		/* Out of descriptors: the pending connection stays in the
		 * backlog and the socket stays readable, so pause instead
		 * of spinning. */
		l->wk->stats->accept_errors++;
		if (ev_now(loop) - l->last_emfile_log >= EMFILE_LOG_EVERY) {
			errno = err;
			ks_log_errno(KS_LOG_ERR,
				     "listener %s: accept (pausing %gs)",
				     l->lc->name, EMFILE_RETRY);
			l->last_emfile_log = ev_now(loop);
		}
		accept_pause(l);
		ev_timer_set(&l->retry, EMFILE_RETRY, 0);
		ev_timer_start(loop, &l->retry);
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
	if (l->lc->protocol == KS_PROTO_UDP)
		session_start(l);
	else
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
	ks_conf_ref(lc->conf);
	ev_io_init(&l->io, accept_cb, l->fd, EV_READ);
	ev_init(&l->retry, retry_cb);
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
	ev_timer_stop(l->wk->loop, &l->retry);
	/* What is queued already was meant for some worker; this one may
	 * have been the one the kernel woke for it. */
	if (l->lc->protocol != KS_PROTO_UDP)
		(void)accept_some(l, CLOSE_TAKE_MAX);
	ks_dsock_detach_all(l);
	l->session = NULL;
	close(l->fd);
	ks_conf_unref(l->lc->conf);
	free(l);
}
