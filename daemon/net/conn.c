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
#include "phase.h"
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

/* ---- progress and the deadlines ------------------------------------------
 *
 * A connection has one timer for all of its deadlines:
 *  - idle: idle_timeout after the last read or write progress; the
 *    handler's waits return KS_ETIMEDOUT and it decides what to do;
 *  - handshake: handshake_timeout after the first handshake phase began
 *    (PROXY header, TLS), whatever the peer sends meanwhile;
 *  - write: write_timeout after output last moved while some is waiting
 *    for the peer to read it; the connection is closed;
 *  - session: session_timeout after the accept; the connection is closed;
 *  - linger: the lingering close ends LINGER_TIME after it began, however
 *    much the peer keeps sending.
 * Progress only stores a time; the timer fires at the deadline it was set
 * for, finds which one (if any) has passed, and re-arms for the nearest.
 * Only a deadline that moves earlier re-arms it at once.
 */

#define LINGER_TIME 2.0 /* seconds, a hard cap */
#define EPSILON 0.001   /* a deadline this close counts as passed */

void
ks_conn_progress(struct ks_conn *c)
{
	c->last_progress = ev_now(c->wk->loop);
	c->idle_fired = false;
}

void
ks_conn_wrote(struct ks_conn *c, struct ks_stream *st)
{
	c->last_progress = ev_now(c->wk->loop);
	c->idle_fired = false;
	if (st == &c->st)
		c->last_write = c->last_progress;
}

static bool
write_deadline_applies(const struct ks_conn *c)
{
	return c->lc->write_timeout > 0 && ks_stream_write_blocked(&c->st);
}

/* The nearest deadline that applies now; 0: none. */
static ev_tstamp
next_deadline(const struct ks_conn *c)
{
	ev_tstamp t = 0;

#define EARLIEST(x)                          \
	do {                                 \
		ev_tstamp x_ = (x);          \
		if (t == 0 || x_ < t)        \
			t = x_;              \
	} while (0)

	if (c->state == KS_CONN_LINGERING)
		return c->linger_deadline;
	if (c->idle_timeout > 0)
		EARLIEST(c->last_progress + c->idle_timeout);
	if (c->handshake_deadline > 0)
		EARLIEST(c->handshake_deadline);
	if (c->lc->session_timeout > 0)
		EARLIEST(c->started + c->lc->session_timeout);
	if (write_deadline_applies(c))
		EARLIEST(c->last_write + c->lc->write_timeout);
#undef EARLIEST
	return t;
}

static void
timer_update(struct ks_conn *c)
{
	struct ev_loop *loop = c->wk->loop;
	ev_tstamp at = next_deadline(c);

	ev_timer_stop(loop, &c->timer);
	if (at == 0)
		return;
	ev_timer_set(&c->timer, KS_MAX(at - ev_now(loop), 0.0), 0.0);
	ev_timer_start(loop, &c->timer);
}

/* A deadline moved earlier, or appeared: re-arm if it is before the one
 * the timer waits for. */
static void
timer_earlier(struct ks_conn *c, ev_tstamp at)
{
	struct ev_loop *loop = c->wk->loop;

	if (c->state == KS_CONN_CLOSED)
		return;
	if (!ev_is_active(&c->timer) ||
	    ev_now(loop) + ev_timer_remaining(loop, &c->timer) > at + EPSILON)
		timer_update(c);
}

void
ks_conn_write_blocked(struct ks_conn *c, struct ks_stream *st)
{
	if (st == &c->st && c->lc->write_timeout > 0)
		timer_earlier(c, c->last_write + c->lc->write_timeout);
}

void
ks_conn_handshake_begin(struct ks_conn *c)
{
	if (c->handshake_deadline > 0 || c->lc->handshake_timeout <= 0)
		return;
	c->handshake_deadline = ev_now(c->wk->loop) + c->lc->handshake_timeout;
	timer_earlier(c, c->handshake_deadline);
}

void
ks_conn_handshake_end(struct ks_conn *c)
{
	c->handshake_deadline = 0; /* the timer finds nothing when it fires */
}

void
ks_sock_set_reset(int fd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	if (fd >= 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

void
ks_conn_reset(struct ks_conn *c)
{
	ks_sock_set_reset(c->st.fd);
}

/*
 * A hard deadline passed: the connection ends now.  A handler still at
 * work loses its socket (its calls return KS_ECLOSED) and is cancelled
 * (every later suspending call returns KS_ECANCELED), so it cannot keep
 * the connection; what it does not touch again ends when it returns.
 */
static void
conn_expire(struct ks_conn *c, bool reset, enum ks_close_reason why)
{
	c->close_reason = why;
	if (reset)
		ks_sock_set_reset(c->st.fd);
	if (c->state != KS_CONN_RUNNING) {
		conn_close(c);
		return;
	}
	ks_stream_close(&c->st);
	ks_conn_cancel(c);
}

static struct ks_lograte nomem_log =
	KS_LOGRATE_INIT("connections over max_buffer_memory");

void
ks_conn_nomem(struct ks_conn *c)
{
	struct ks_bufpool *pool = &c->wk->pool;

	KS_CCOUNT(c, buffer_refused);
	if (ks_lograte_allow(&nomem_log, KS_LOG_WARN,
			     &c->wk->stats->log_suppressed))
		ks_conn_log(c, KS_LOG_WARN, "closing: the worker's buffers hold "
			    "%zu bytes, max_buffer_memory is %zu", pool->used,
			    pool->cap);
	conn_expire(c, true, KS_CLOSE_LIMIT);
}

static void
idle_expired(struct ks_conn *c)
{
	struct ev_loop *loop = c->wk->loop;

	KS_CCOUNT(c, timeouts);
	c->idle_fired = true;
	if (c->state == KS_CONN_DRAINING) {
		ks_conn_log(c, KS_LOG_DEBUG, "idle timeout while flushing");
		c->close_reason = KS_CLOSE_TIMEOUT;
		conn_close(c);
		return;
	}
	ks_conn_log(c, KS_LOG_DEBUG, "idle timeout (%.3gs)", c->idle_timeout);
	/* The handler decides: its waits return KS_ETIMEDOUT, and the clock
	 * starts again. */
	c->last_progress = ev_now(loop);
	ks_stream_wake_all(&c->st, KS_ETIMEDOUT);
	if (c->peers != NULL && c->state != KS_CONN_CLOSED)
		ks_peers_wake(c, KS_ETIMEDOUT, false);
	if (c->dsocks != NULL && c->state != KS_CONN_CLOSED)
		ks_dsocks_wake(c, KS_ETIMEDOUT, false);
}

static void
timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ks_conn *c = KS_CONTAINER_OF(w, struct ks_conn, timer);
	ev_tstamp now = ev_now(loop) + EPSILON;
	const struct ks_lconf *lc = c->lc;

	(void)revents;
	if (c->state == KS_CONN_LINGERING) {
		if (now >= c->linger_deadline)
			conn_close(c);
		else
			timer_update(c);
		return;
	}
	if (c->handshake_deadline > 0 && now >= c->handshake_deadline) {
		/* The phase that waits logs, counts and gives up. */
		c->handshake_deadline = 0;
		c->close_reason = KS_CLOSE_TIMEOUT;
		KS_CCOUNT(c, handshake_timeouts);
		ks_stream_wake_all(&c->st, KS_ETIMEDOUT);
	} else if (lc->session_timeout > 0 &&
		   now >= c->started + lc->session_timeout) {
		KS_CCOUNT(c, session_timeouts);
		ks_conn_log(c, KS_LOG_DEBUG, "session timeout (%gs): closing",
			    lc->session_timeout);
		conn_expire(c, false, KS_CLOSE_TIMEOUT);
	} else if (write_deadline_applies(c) &&
		   now >= c->last_write + lc->write_timeout) {
		KS_CCOUNT(c, write_timeouts);
		ks_conn_log(c, KS_LOG_DEBUG,
			    "write timeout (%gs): the peer reads nothing; "
			    "closing with %zu bytes unsent", lc->write_timeout,
			    ks_stream_pending(&c->st));
		conn_expire(c, true, KS_CLOSE_TIMEOUT);
	} else if (c->idle_timeout > 0 &&
		   now >= c->last_progress + c->idle_timeout) {
		idle_expired(c);
	}
	if (c->state != KS_CONN_CLOSED)
		timer_update(c);
}

void
ks_conn_set_timeout(ks_conn *c, double seconds)
{
	c->idle_timeout = seconds > 0 ? seconds : 0;
	c->last_progress = ev_now(c->wk->loop);
	if (c->state != KS_CONN_CLOSED)
		timer_update(c);
}

/* ---- lifecycle ------------------------------------------------------------ */

static void
conn_close(struct ks_conn *c)
{
	if (c->state == KS_CONN_CLOSED)
		return;
	c->state = KS_CONN_CLOSED;
	if (c->close_reason == KS_CLOSE_EOF && c->idle_fired)
		c->close_reason = KS_CLOSE_TIMEOUT;
	else if (c->close_reason == KS_CLOSE_EOF &&
		 (c->st.in.err != 0 || c->st.out.err != 0))
		c->close_reason = KS_CLOSE_ERROR;
	c->ended = ev_now(c->wk->loop);
	/* The local address is read lazily, from the socket: now or never. */
	if (c->wk->alog != NULL)
		(void)ks_conn_local_str(c);
	ev_timer_stop(c->wk->loop, &c->timer);
	ks_peers_close(c);
	ks_dsocks_close(c);
	ks_stream_close(&c->st);
	ks_worker_retire_conn(c->wk, c);
	ks_admit_release(c->wk, &c->admit);
	ks_listeners_slot_freed(c->wk);
}

/*
 * Output is all sent.  Closing a socket whose peer is still sending makes
 * the kernel answer with a RST, which can destroy our last reply before
 * the peer reads it (an over-long line's error message, say).  So, as
 * nginx's lingering close does, shut down our write side and read and drop
 * input until the peer closes too, for at most LINGER_TIME seconds and
 * KS_DISCARD_MAX bytes in all: input does not extend it.
 */
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
	c->linger_deadline = ev_now(c->wk->loop) + LINGER_TIME;
	timer_update(c);
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
	/* wio_cb calls ks_conn_drained when the buffer empties; the write
	 * timeout bounds how long a peer that does not read can hold us (and
	 * the idle timeout, when there is no write timeout). */
	if (c->lc->write_timeout == 0 && c->idle_timeout == 0)
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

/* The handler coroutine: the listener's phases, in order (phase.h); a
 * udp listener's session runs handle_dgram. */
static void
handler_main(void *arg)
{
	struct ks_conn *c = arg;
	const struct ks_plugin_inst *pi = &c->lc->plugin;
	int rc;

	if (c->session == NULL) {
		ks_phases_run(c);
		return;
	}
	rc = pi->handle_dgram(c, c->session, pi->state);
	KS_CCOUNT(c, handler_returns);
	if (rc != 0) {
		KS_CCOUNT(c, handler_errors);
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
	ev_init(&c->timer, timer_cb);
	c->started = ev_now(c->wk->loop);
	c->last_progress = c->started;
	c->last_write = c->started;
	ks_conf_ref(c->lc->conf);
	ks_worker_add_conn(c->wk, c);
	c->ncoro = 1;
}

struct ks_conn *
ks_conn_start(struct ks_worker *wk, struct ks_lconf *lc, int fd,
	      const struct sockaddr *peer, socklen_t peer_len,
	      struct ks_admit *adm)
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
		ks_admit_release(wk, adm);
		return NULL;
	}
	c->wk = wk;
	c->lc = lc;
	c->admit = *adm;
	*adm = (struct ks_admit)KS_ADMIT_INIT;
	c->main = co;
	co->tag = (int)lc->index;
	if (peer_len > sizeof(c->peer))
		peer_len = sizeof(c->peer);
	memcpy(&c->peer, peer, peer_len);
	c->peer_len = peer_len;
	ks_addr_format(peer, peer_len, c->peer_str, sizeof(c->peer_str));
	apply_conn_options(c, fd);
	c->ls = ks_worker_lstats(wk, lc);
	ks_stream_init(&c->st, wk, c, fd, lc->max_line_length);
	c->st.ls = c->ls;
	conn_register(c);
	KS_CCOUNT(c, accepted);
	c->idle_timeout = lc->idle_timeout;
	timer_update(c);
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
		c->admit = (struct ks_admit)KS_ADMIT_INIT;
		c->admit.lkey = l->lkey;
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
	c->ls = ks_worker_lstats(wk, lc);
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
	if (c->close_reason == KS_CLOSE_EOF)
		c->close_reason = KS_CLOSE_SHUTDOWN;
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

/* A handler that ignores its cancellation is worth a warning, but a stop
 * with thousands of them is not worth thousands. */
static struct ks_lograte abort_log =
	KS_LOGRATE_INIT("connections closed at shutdown with coroutines running");

void
ks_conn_abort(struct ks_conn *c)
{
	if (ks_lograte_allow(&abort_log, KS_LOG_WARN,
			     &c->wk->stats->log_suppressed))
		ks_conn_log(c, KS_LOG_WARN, "closing at shutdown with %u "
			    "coroutine(s) still running", c->ncoro);
	if (c->close_reason == KS_CLOSE_EOF)
		c->close_reason = KS_CLOSE_SHUTDOWN;
	conn_close(c);
}

void
ks_conn_abort_done(void)
{
	ks_lograte_flush(&abort_log, KS_LOG_WARN);
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
	/* Only the session cap (and the handler's own sleeps) remain. */
	c->idle_timeout = 0;
	timer_update(c);
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
