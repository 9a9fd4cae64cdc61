/*
 * Outbound connections for plugins (ks_connect): name resolution off the
 * event loop, a non-blocking connect bounded by a deadline, and a peer that
 * is a stream like the connection's own, so every channel function works
 * on it.  Peers belong to the connection that made them: its idle timeout
 * and shutdown reach them, and they are closed when it closes.
 *
 * getaddrinfo() blocks, so a name that is not a numeric address is looked
 * up by the worker's pool of lookup threads (resolver.c) while the
 * coroutine waits, bounded by the caller's deadline; a lookup whose caller
 * gave up (deadline, shutdown) is abandoned to the pool.
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf.h"
#include "conn.h"
#include "listener.h"
#include "lsock.h"
#include "coro.h"
#include "log.h"
#include "resolver.h"
#include "stream.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

#define CONNECT_DEFAULT_TIMEOUT 30.0

struct ks_peer {
	struct ks_stream st;
	struct ks_conn *conn;
	struct ks_peer *next;
	struct ks_tls_info *tls;
	int err;
	bool closed;    /* ks_peer_close'd, kept until nothing looks at it */
	char host[256]; /* as given to ks_connect: the default TLS name */
	char name[300]; /* host:port, for logs */
};

/* ---- name resolution ---------------------------------------------------- */

int
ks_resolve(struct ks_conn *c, const char *host, const char *port,
	   int socktype, double deadline, struct addrinfo **res)
{
	struct addrinfo hints = {.ai_socktype = socktype,
				 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
	struct ks_worker *wk = c->wk;
	struct ks_coro *co = ks_coro_self(&wk->sched);
	struct ks_lookup *lk;
	struct ks_sleeper sl;
	int rc;

	*res = NULL;
	if (getaddrinfo(host, port, &hints, res) == 0)
		return KS_OK;
	*res = NULL;
	if (c->canceled)
		return KS_ECANCELED;
	if (co == NULL)
		return KS_EINVAL;
	if ((rc = ks_resolver_submit(wk, host, port, socktype, co, &lk)) != KS_OK)
		return rc;
	ks_conn_timer_arm(c, &sl, deadline - ev_now(wk->loop), KS_ETIMEDOUT);
	rc = ks_coro_suspend(&wk->sched);
	ks_conn_timer_disarm(c, &sl);
	if (rc != KS_OK) {
		/* Dropped from the queue, or freed when getaddrinfo returns. */
		ks_lookup_abandon(lk);
		return rc;
	}
	if ((rc = ks_lookup_result(lk, res)) != 0) {
		ks_conn_log(c, KS_LOG_INFO, "connect %s:%s: %s", host, port,
			    rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return KS_ERESOLVE;
	}
	return KS_OK;
}

/* ---- connect ------------------------------------------------------------ */

/* One address: KS_OK with the peer's stream set up, or a failure status
 * (errno in p->err). */
static int
try_address(struct ks_conn *c, struct ks_peer *p, const struct addrinfo *ai,
	    double deadline)
{
	struct ks_sleeper sl;
	const char *what;
	int fd, one = 1, soerr = 0, rc;
	socklen_t len = sizeof(soerr);

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    ai->ai_protocol);
	if (fd < 0) {
		p->err = errno;
		return KS_EIO;
	}
	/* The same socket options as the listener the connection came in
	 * on; TCP_NODELAY in any case. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((what = ks_sockopts_apply(fd, c->lc, ai->ai_family, SOCK_STREAM)) != NULL)
		ks_conn_log(c, KS_LOG_DEBUG, "connect: %s: %s", what,
			    strerror(errno));
	ks_stream_init(&p->st, c->wk, c, fd, c->lc->max_line_length);
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return KS_OK;
	if (errno != EINPROGRESS) {
		p->err = errno;
		return KS_EIO;
	}
	ks_conn_timer_arm(c, &sl, deadline - ev_now(c->wk->loop), KS_ETIMEDOUT);
	rc = ks_stream_wait_ready(&p->st, EV_WRITE);
	ks_conn_timer_disarm(c, &sl);
	if (rc != KS_OK)
		return rc;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
		soerr = errno;
	if (soerr != 0) {
		p->err = soerr;
		return KS_EIO;
	}
	return KS_OK;
}

int
ks_connect(ks_conn *c, const char *host, const char *port, double timeout,
	   ks_peer **out)
{
	double deadline;
	struct addrinfo *res = NULL, *ai;
	struct ks_peer *p;
	int rc = KS_EIO;

	*out = NULL;
	if (c->canceled)
		return KS_ECANCELED;
	if (ks_coro_self(&c->wk->sched) == NULL)
		return KS_EINVAL;
	deadline = ev_now(c->wk->loop) +
		   (timeout > 0 ? timeout : CONNECT_DEFAULT_TIMEOUT);
	if ((rc = ks_resolve(c, host, port, SOCK_STREAM, deadline, &res)) != KS_OK)
		return rc;
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		freeaddrinfo(res);
		return KS_ENOMEM;
	}
	p->conn = c;
	snprintf(p->host, sizeof(p->host), "%s", host);
	snprintf(p->name, sizeof(p->name), "%s:%s", host, port);
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		rc = try_address(c, p, ai, deadline);
		if (rc == KS_OK)
			break;
		if (p->st.wk != NULL)
			ks_stream_close(&p->st);
		memset(&p->st, 0, sizeof(p->st));
		if (rc != KS_EIO)
			break; /* timed out or canceled: no more tries */
	}
	freeaddrinfo(res);
	if (rc != KS_OK) {
		c->err = p->err;
		ks_conn_log(c, KS_LOG_DEBUG, "connect %s: %s%s%s", p->name,
			    ks_strerror(rc), p->err ? ": " : "",
			    p->err ? strerror(p->err) : "");
		free(p);
		return rc;
	}
	p->st.canceled = c->canceled;
	p->next = c->peers;
	c->peers = p;
	*out = p;
	ks_conn_log(c, KS_LOG_DEBUG, "connected to %s", p->name);
	return KS_OK;
}

ks_rchan *
ks_peer_in(ks_peer *p)
{
	return &p->st.in;
}

ks_wchan *
ks_peer_out(ks_peer *p)
{
	return &p->st.out;
}

int
ks_peer_errno(const ks_peer *p)
{
	if (p->st.in.err != 0)
		return p->st.in.err;
	if (p->st.out.err != 0)
		return p->st.out.err;
	return p->err;
}

static void
peer_unlink(struct ks_peer *p)
{
	struct ks_peer **pp;

	for (pp = &p->conn->peers; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
}

void
ks_peer_close(ks_peer *p)
{
	struct ks_stream *st = &p->st;

	if (p->closed)
		return;
	p->closed = true;
	ks_stream_close(st);
	/* Another coroutine waiting on the peer was just woken with
	 * KS_ECLOSED and will look at it once more; a walk of the list may be
	 * under way: then it stays, closed, until the connection is freed. */
	if (st->in.waiter != NULL || st->out.waiter != NULL ||
	    st->pump_waiter != NULL || p->conn->peers_walking > 0)
		return;
	peer_unlink(p);
	ks_tls_info_free(p->tls);
	free(p);
}

int
ks_tls_upgrade(ks_peer *p, const ks_tls_client_opts *o)
{
	if (p->st.closed)
		return KS_ECLOSED;
	if (p->tls != NULL)
		return KS_EINVAL;
	if (o->server_name == NULL) {
		/* Verify against the host we connected to (an address is
		 * checked against the certificate's IP names, without SNI). */
		ks_tls_client_opts named = *o;

		named.server_name = p->host;
		return ks_tls_connect(&p->st, &named, &p->tls);
	}
	return ks_tls_connect(&p->st, o, &p->tls);
}

const char *
ks_peer_tls_alpn(const ks_peer *p)
{
	return ks_tls_info_alpn(p->tls);
}

/* ---- the connection's side ----------------------------------------------- */

void
ks_peers_wake(struct ks_conn *c, int status, bool cancel)
{
	struct ks_peer *p;

	/* A woken coroutine runs at once and may close peers: while the list
	 * is walked ks_peer_close leaves them in it. */
	c->peers_walking++;
	for (p = c->peers; p != NULL; p = p->next) {
		if (cancel)
			p->st.canceled = true;
		ks_stream_wake_all(&p->st, status);
	}
	c->peers_walking--;
}

void
ks_peers_close(struct ks_conn *c)
{
	struct ks_peer *p;

	for (p = c->peers; p != NULL; p = p->next)
		ks_stream_close(&p->st);
}

void
ks_peers_free(struct ks_conn *c)
{
	struct ks_peer *p;

	while ((p = c->peers) != NULL) {
		c->peers = p->next;
		ks_tls_info_free(p->tls);
		free(p);
	}
}
