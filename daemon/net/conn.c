/*
 * Connection lifecycle: start the handler coroutine on an accepted socket,
 * enforce the idle timeout, flush and close when every coroutine of the
 * connection has returned; plus the per-connection parts of the plugin API
 * (spawn, sleep, close, info, logging).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "conn.h"
#include "coro.h"
#include "dgram.h"
#include "listener.h"
#include "log.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

static void conn_close(struct ks_conn *c);

void
ks_addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN];

	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(buf, size, "%s:%u", host, ntohs(in->sin_port));
		break;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, size, "[%s]:%u", host, ntohs(in6->sin6_port));
		break;
	}
	case AF_UNIX: {
		const struct sockaddr_un *un = (const void *)sa;
		size_t plen = len > offsetof(struct sockaddr_un, sun_path)
				      ? len - offsetof(struct sockaddr_un, sun_path)
				      : 0;

		if (plen == 0 || un->sun_path[0] == '\0')
			snprintf(buf, size, "unix:");
		else
			snprintf(buf, size, "unix:%.*s", (int)strnlen(un->sun_path, plen),
				 un->sun_path);
		break;
	}
	default:
		snprintf(buf, size, "(family %d)", sa->sa_family);
	}
}

socklen_t
ks_addr_unmap(struct sockaddr_storage *ss, socklen_t len)
{
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in in;

	if (ss->ss_family != AF_INET6 || len < sizeof(*in6) ||
	    !IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
		return len;
	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	in.sin_port = in6->sin6_port;
	memcpy(&in.sin_addr, &in6->sin6_addr.s6_addr[12], 4);
	memcpy(ss, &in, sizeof(in));
	return sizeof(in);
}

const char *
ks_addr_str(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
	struct sockaddr_storage ss;

	if (len > sizeof(ss))
		len = sizeof(ss);
	memcpy(&ss, sa, len);
	len = ks_addr_unmap(&ss, len);
	ks_addr_format((struct sockaddr *)&ss, len, buf, size);
	return buf;
}

int
ks_addr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
	return -1;
}

/* ---- progress and the idle timer --------------------------------------- */

void
ks_conn_progress(struct ks_conn *c)
{
	c->last_progress = ev_now(c->wk->loop);
}

/* libev's "lazy" timer: progress only stores a timestamp; when the timer
 * fires early it is re-armed for the remaining time. */
static void
idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ks_conn *c = KS_CONTAINER_OF(w, struct ks_conn, idle);
	ev_tstamp left = c->last_progress + c->idle_timeout - ev_now(loop);

	(void)revents;
	if (left > 0.001) {
		w->repeat = left;
		ev_timer_again(loop, w);
		return;
	}
	if (c->state == KS_CONN_LINGERING) {
		conn_close(c);
		return;
	}
	c->wk->stats->timeouts++;
	if (c->state == KS_CONN_DRAINING) {
		ks_conn_log(c, KS_LOG_DEBUG, "idle timeout while flushing");
		conn_close(c);
		return;
	}
	ks_conn_log(c, KS_LOG_DEBUG, "idle timeout (%.3gs)", c->idle_timeout);
	c->last_progress = ev_now(loop);
	w->repeat = c->idle_timeout;
	ev_timer_again(loop, w);
	ks_stream_wake_all(&c->st, KS_ETIMEDOUT);
	if (c->peers != NULL)
		ks_peers_wake(c, KS_ETIMEDOUT, false);
	if (c->dsocks != NULL)
		ks_dsocks_wake(c, KS_ETIMEDOUT, false);
}

void
ks_conn_set_timeout(ks_conn *c, double seconds)
{
	c->idle_timeout = seconds > 0 ? seconds : 0;
	if (c->idle_timeout == 0) {
		ev_timer_stop(c->wk->loop, &c->idle);
		return;
	}
	c->last_progress = ev_now(c->wk->loop);
	c->idle.repeat = c->idle_timeout;
	ev_timer_again(c->wk->loop, &c->idle);
}

/* ---- lifecycle ------------------------------------------------------------ */

static void
conn_close(struct ks_conn *c)
{
	if (c->state == KS_CONN_CLOSED)
		return;
	c->state = KS_CONN_CLOSED;
	ev_timer_stop(c->wk->loop, &c->idle);
	ks_peers_close(c);
	ks_dsocks_close(c);
	ks_stream_close(&c->st);
	ks_worker_retire_conn(c->wk, c);
}

/*
 * Output is all sent.  Closing a socket whose peer is still sending makes
 * the kernel answer with a RST, which can destroy our last reply before
 * the peer reads it (an over-long line's error message, say).  So, as
 * nginx's lingering close does, shut down our write side and read and drop
 * input until the peer closes too, for at most LINGER_TIME seconds.
 */
#define LINGER_TIME 2.0

static void
conn_linger(struct ks_conn *c)
{
	struct ks_stream *st = &c->st;

	if (st->closed || c->canceled || st->in.eof || st->in.err != 0 ||
	    st->tp->shutdown_write(st) != 0) {
		conn_close(c);
		return;
	}
	c->state = KS_CONN_LINGERING;
	st->out.shut = true;
	st->discard = true;
	ks_buf_consume(&st->in.buf, st->in.buf.len);
	st->pending_consume = 0;
	st->in.lent = false;
	ks_stream_want_input(st);
	c->idle.repeat = LINGER_TIME;
	ev_timer_again(c->wk->loop, &c->idle);
}

/* Every coroutine has returned: send what is left, then close. */
static void
conn_finish(struct ks_conn *c)
{
	c->state = KS_CONN_DRAINING;
	if (c->st.closed || c->canceled ||
	    ks_stream_flush_nowait(&c->st) != KS_OK) {
		conn_close(c);
		return;
	}
	if (ks_stream_pending(&c->st) == 0) {
		conn_linger(c);
		return;
	}
	/* wio_cb calls ks_conn_drained when the buffer empties; the idle
	 * timer bounds how long a peer that does not read can hold us. */
	if (c->idle_timeout == 0)
		ks_conn_set_timeout(c, 30);
}

void
ks_conn_drained(struct ks_conn *c)
{
	if (c->state == KS_CONN_DRAINING && c->st.out.err == 0)
		conn_linger(c);
	else if (c->state == KS_CONN_DRAINING || c->state == KS_CONN_LINGERING)
		conn_close(c);
}

static void
main_done(void *udata)
{
	struct ks_conn *c = udata;

	c->main = NULL;
	if (--c->ncoro == 0 && c->state == KS_CONN_RUNNING)
		conn_finish(c);
}

static void
coro_done(void *udata)
{
	struct ks_conn *c = udata;

	if (--c->ncoro == 0 && c->state == KS_CONN_RUNNING)
		conn_finish(c);
}

static void
handler_main(void *arg)
{
	struct ks_conn *c = arg;
	const struct ks_plugin_inst *pi = &c->lc->plugin;
	int rc;

	if (c->session != NULL) {
		rc = pi->handle_dgram(c, c->session, pi->state);
		goto out;
	}
	/* A failed handshake never reaches the handler. */
	if (c->lc->tls_ctx != NULL && ks_tls_accept(c->lc->tls_ctx, &c->st) != 0)
		return;
	rc = pi->desc->handle(c, &c->st.in, &c->st.out, pi->state);
out:
	if (rc != 0) {
		c->wk->stats->handler_errors++;
		ks_conn_log(c, KS_LOG_DEBUG, "handler returned %d", rc);
	}
}

static void
apply_conn_options(struct ks_conn *c, int fd)
{
	int one = 1;

	/* The other listener options are inherited from the listening
	 * socket; TCP_NODELAY is set again per connection so the behaviour
	 * does not hinge on that inheritance. */
	if (c->lc->protocol == KS_PROTO_TCP && c->lc->no_delay &&
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
		ks_conn_log(c, KS_LOG_DEBUG, "TCP_NODELAY: %s", strerror(errno));
}

/* A connection with its handler coroutine (c->main) about to run: its
 * timer, its hold on the generation, its place in the worker. */
static void
conn_register(struct ks_conn *c)
{
	ev_init(&c->idle, idle_cb);
	ks_conf_ref(c->lc->conf);
	ks_worker_add_conn(c->wk, c);
	c->ncoro = 1;
}

struct ks_conn *
ks_conn_start(struct ks_worker *wk, struct ks_lconf *lc, int fd,
	      const struct sockaddr *peer, socklen_t peer_len)
{
	struct ks_conn *c;
	struct ks_coro *co;

	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (co = ks_coro_new(&wk->sched, handler_main, c, main_done, c)) == NULL) {
		char who[KS_ADDRSTRLEN];

		wk->stats->coro_failures++;
		ks_addr_format(peer, peer_len, who, sizeof(who));
		ks_log(KS_LOG_ERR,
		       "listener %s: no memory or coroutine stack for %s: "
		       "connection dropped",
		       lc->name, who);
		free(c);
		close(fd);
		return NULL;
	}
	c->wk = wk;
	c->lc = lc;
	c->main = co;
	co->tag = (int)lc->index;
	if (peer_len > sizeof(c->peer))
		peer_len = sizeof(c->peer);
	memcpy(&c->peer, peer, peer_len);
	c->peer_len = peer_len;
	ks_addr_format(peer, peer_len, c->peer_str, sizeof(c->peer_str));
	apply_conn_options(c, fd);
	ks_stream_init(&c->st, wk, c, fd, lc->max_line_length);
	conn_register(c);
	wk->stats->accepted++;
	if (lc->idle_timeout > 0)
		ks_conn_set_timeout(c, lc->idle_timeout);
	ks_conn_log(c, KS_LOG_DEBUG, "accepted");
	ks_coro_wake(co, KS_OK);
	return c;
}

struct ks_conn *
ks_conn_start_session(struct ks_worker *wk, struct ks_lconf *lc,
		      struct ks_listener *l)
{
	struct ks_conn *c;
	struct ks_coro *co = NULL;

	if ((c = calloc(1, sizeof(*c))) != NULL) {
		c->wk = wk;
		c->lc = lc;
		if ((c->session = ks_dsock_attach(c, l)) != NULL)
			co = ks_coro_new(&wk->sched, handler_main, c,
					 main_done, c);
	}
	if (co == NULL) {
		wk->stats->coro_failures++;
		ks_log(KS_LOG_ERR, "listener %s: no memory or coroutine stack "
		       "for the datagram handler", lc->name);
		if (c != NULL) {
			ks_dsocks_close(c);
			ks_dsocks_free(c);
		}
		free(c);
		return NULL;
	}
	c->main = co;
	co->tag = (int)lc->index;
	/* No stream: the closed state makes every stream path a no-op. */
	c->st.wk = wk;
	c->st.conn = c;
	c->st.fd = -1;
	c->st.closed = true;
	snprintf(c->peer_str, sizeof(c->peer_str), "-");
	memcpy(&c->local, &c->session->local, c->session->local_len);
	c->local_len = c->session->local_len;
	ks_addr_format((struct sockaddr *)&c->local, c->local_len, c->local_str,
		       sizeof(c->local_str));
	c->local_known = true;
	conn_register(c);
	ks_conn_log(c, KS_LOG_DEBUG, "datagram handler started");
	/* Before it runs: a handler that returns at once ends the session
	 * (and schedules the next) from inside the wake. */
	l->session = c;
	ks_coro_wake(co, KS_OK);
	return c;
}

void
ks_conn_cancel(struct ks_conn *c)
{
	struct ks_sleeper *sl, *next;

	if (c->canceled)
		return;
	c->canceled = true;
	if (c->state == KS_CONN_DRAINING || c->state == KS_CONN_LINGERING) {
		/* Its handler is done; what the peer has not read by now is
		 * not worth holding the shutdown for. */
		conn_close(c);
		return;
	}
	c->st.canceled = true;
	ks_stream_wake_all(&c->st, KS_ECANCELED);
	if (c->peers != NULL)
		ks_peers_wake(c, KS_ECANCELED, true);
	if (c->dsocks != NULL)
		ks_dsocks_wake(c, KS_ECANCELED, true);
	for (sl = c->sleepers; sl != NULL; sl = next) {
		next = sl->next;
		ks_coro_wake(sl->co, KS_ECANCELED);
	}
}

void
ks_conn_abort(struct ks_conn *c)
{
	ks_conn_log(c, KS_LOG_WARN,
		    "closing at shutdown with %u coroutine(s) still running",
		    c->ncoro);
	conn_close(c);
}

void
ks_conn_free(struct ks_conn *c)
{
	ks_peers_free(c);
	ks_dsocks_free(c);
	ks_tls_info_free(c->tls);
	ks_conf_unref(c->lc->conf);
	free(c);
}

/* A handler that has waited for input this long gives its stack pages
 * back (see ks_coro_hibernate); a busy one never pays for that. */
#define HIBERNATE_AFTER 1.0
#define HIBERNATE_MAX_LIVE 2048

void
ks_conn_hibernate_idle(struct ks_conn *c, ev_tstamp now)
{
	struct ks_coro *co = c->main;

	if (c->state != KS_CONN_RUNNING || co == NULL ||
	    now - c->last_progress < HIBERNATE_AFTER)
		return;
	/* Only while it waits in the read path: then nothing outside the
	 * coroutine points into its stack (a ks_sleep timer would). */
	if (c->st.in.waiter != co && c->st.pump_waiter != co)
		return;
	if (ks_coro_hibernate(co, HIBERNATE_MAX_LIVE)) {
		c->wk->stats->hibernations++;
		ks_conn_log(c, KS_LOG_DEBUG, "idle: stack paged out (%zu bytes kept)",
			    co->saved_len);
	}
}

/* ---- plugin API: coroutines, time, close ------------------------------- */

struct spawn_arg {
	struct ks_conn *c;
	void (*fn)(ks_conn *, void *);
	void *arg;
};

static void
spawn_main(void *p)
{
	/* Copy out of the argument block before anything can suspend. */
	struct spawn_arg a = *(struct spawn_arg *)p;

	free(p);
	a.fn(a.c, a.arg);
}

int
ks_spawn(ks_conn *c, void (*fn)(ks_conn *, void *), void *arg)
{
	struct spawn_arg *a;
	struct ks_coro *co;

	if (c->state != KS_CONN_RUNNING)
		return KS_ECLOSED;
	if ((a = malloc(sizeof(*a))) == NULL)
		return KS_ENOMEM;
	a->c = c;
	a->fn = fn;
	a->arg = arg;
	co = ks_coro_new(&c->wk->sched, spawn_main, a, coro_done, c);
	if (co == NULL) {
		free(a);
		c->wk->stats->coro_failures++;
		return KS_ENOMEM;
	}
	co->tag = (int)c->lc->index;
	c->ncoro++;
	ks_coro_wake(co, KS_OK);
	return KS_OK;
}

static void
sleep_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ks_sleeper *sl = KS_CONTAINER_OF(w, struct ks_sleeper, timer);

	(void)loop;
	(void)revents;
	ks_coro_wake(sl->co, sl->status);
}

void
ks_conn_timer_arm(struct ks_conn *c, struct ks_sleeper *sl, double seconds,
		  int status)
{
	ev_timer_init(&sl->timer, sleep_cb, seconds > 0 ? seconds : 0, 0);
	sl->co = ks_coro_self(&c->wk->sched);
	sl->status = status;
	sl->next = c->sleepers;
	c->sleepers = sl;
	ev_timer_start(c->wk->loop, &sl->timer);
}

void
ks_conn_timer_disarm(struct ks_conn *c, struct ks_sleeper *sl)
{
	struct ks_sleeper **pp;

	ev_timer_stop(c->wk->loop, &sl->timer);
	for (pp = &c->sleepers; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == sl) {
			*pp = sl->next;
			break;
		}
	}
}

int
ks_sleep(ks_conn *c, double seconds)
{
	struct ks_sleeper sl;
	int rc;

	if (c->canceled)
		return KS_ECANCELED;
	if (!c->st.closed && ks_stream_pending(&c->st) > 0)
		(void)ks_stream_flush_nowait(&c->st);
	ks_conn_timer_arm(c, &sl, seconds, KS_OK);
	rc = ks_coro_suspend(&c->wk->sched);
	ks_conn_timer_disarm(c, &sl);
	return rc;
}

int
ks_close(ks_conn *c)
{
	int rc = KS_OK;

	if (c->st.closed)
		return KS_ECLOSED;
	if (!c->canceled && ks_stream_pending(&c->st) > 0)
		rc = ks_stream_flush_wait(&c->st);
	c->st.out.closed = true;
	ks_stream_close(&c->st);
	ev_timer_stop(c->wk->loop, &c->idle);
	return rc == KS_ECLOSED ? KS_OK : rc;
}

/* ---- plugin API: info and logging ------------------------------------------ */

const struct sockaddr *
ks_conn_peer(const ks_conn *c, socklen_t *len)
{
	if (len != NULL)
		*len = c->peer_len;
	return (const struct sockaddr *)&c->peer;
}

static void
fetch_local(ks_conn *c)
{
	if (c->local_known)
		return;
	c->local_len = sizeof(c->local);
	if (c->st.closed ||
	    getsockname(c->st.fd, (struct sockaddr *)&c->local, &c->local_len) != 0) {
		c->local_len = 0;
		snprintf(c->local_str, sizeof(c->local_str), "?");
	} else {
		ks_addr_format((struct sockaddr *)&c->local, c->local_len,
			       c->local_str, sizeof(c->local_str));
	}
	c->local_known = true;
}

const struct sockaddr *
ks_conn_local(const ks_conn *cc, socklen_t *len)
{
	ks_conn *c = (ks_conn *)cc; /* filled lazily: the first call asks */

	fetch_local(c);
	if (len != NULL)
		*len = c->local_len;
	return (const struct sockaddr *)&c->local;
}

const char *
ks_conn_peer_str(const ks_conn *c)
{
	return c->peer_str;
}

const char *
ks_conn_local_str(const ks_conn *cc)
{
	ks_conn *c = (ks_conn *)cc;

	fetch_local(c);
	return c->local_str;
}

const char *
ks_conn_listener(const ks_conn *c)
{
	return c->lc->name;
}

int
ks_conn_errno(const ks_conn *c)
{
	return c->err;
}

void
ks_conn_log(const ks_conn *c, int level, const char *fmt, ...)
{
	char msg[1536];
	va_list ap;

	if (!ks_log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c == NULL) { /* a stream of the client tool: no connection */
		ks_log(level, "%s", msg);
		return;
	}
	ks_log(level, "[%s %s %s] %s",
	       c->lc->plugin.desc->name ? c->lc->plugin.desc->name : "plugin",
	       c->lc->name, c->peer_str, msg);
}
