/*
 * Stream connections (TCP, Unix, TLS over either) for the pingpong,
 * stream, connect, handshake and idle modes.
 *
 * Every connection is a small state machine that owns its watchers (two
 * ev_io on the socket, one ev_timer) by value.  The steady state costs one
 * read() and one write() per wake-up: a write is tried before EV_WRITE is
 * armed, and a read that returns less than asked is taken to mean the
 * socket is drained (the watcher is level-triggered, so anything left is
 * reported again).  With TLS, GnuTLS reads exactly the records it needs, so
 * socket readiness stays meaningful; only decrypted data it could not hand
 * over yet is checked with gnutls_record_check_pending().
 *
 * After a failure (refused, reset, closed by the server, mismatched echo,
 * TLS error) the error is counted, the socket closed, and the slot
 * reconnects after KB_RECONNECT_DELAY; in idle mode a failed connection is
 * dropped instead.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kb.h"

#define KB_STREAM_WINDOW (256 * 1024) /* written but not yet echoed */
#define KB_RECONNECT_DELAY 0.1
#define KB_TICKET_WAIT 1.0 /* TLS 1.3: how long to wait for a ticket */
#define KB_IDLE_RAMP 256   /* idle: connections being opened at once */
#define KB_STALL_NS 1000000000ull /* waiting this long at the end: stalled */

enum conn_state {
	CS_CLOSED,     /* no socket; the timer may be armed to reconnect */
	CS_CONNECTING, /* non-blocking connect() in progress (EV_WRITE) */
	CS_HANDSHAKE,  /* TLS handshake, watching what GnuTLS asks for */
	CS_GREETING,   /* reading and discarding the server's first line */
	CS_LINE,       /* one line out, one line back (connect/handshake/idle) */
	CS_TICKET,     /* TLS 1.3 + --resume: waiting for a session ticket */
	CS_RUN,        /* pingpong or stream steady state */
	CS_HOLD,       /* idle: exchange done, holding the connection open */
};

struct conn {
	ev_io rio;
	ev_io wio;
	ev_timer tm; /* reconnect delay; ticket wait */
	int fd;
	enum conn_state st;
	unsigned id;
	bool tls_wagain; /* gnutls_record_send said AGAIN: retry NULL, 0 */
	bool settled;    /* idle: counted as held or failed */
	bool full_hs;    /* this handshake was a full one (not resumed) */
	bool no_ticket;  /* TLS 1.3: the server sent no ticket; stop waiting */
	gnutls_session_t tls;
	gnutls_datum_t sess; /* --resume: data of the slot's full handshake */
	uint64_t t0;         /* start of the current connection, ns */
	uint64_t t_io;       /* pingpong/stream: last data received, ns */
	size_t lpos;         /* CS_LINE: bytes of the line written */
	/* pingpong: PIPELINE lines in flight; the buffers hold at most that */
	char *rbuf;
	char *wbuf;
	size_t rlen;
	size_t wpos;
	size_t wlen;
	uint64_t sseq; /* lines sent */
	uint64_t rseq; /* lines received */
	uint64_t *tsent;
	/* stream: offsets into the byte pattern */
	uint64_t woff;
	uint64_t roff;
};

enum { IO_AGAIN = -1, IO_FAILED = -2 };

static struct conn *conns;
static unsigned nconns;
static unsigned idle_next;    /* idle: next slot to open */
static unsigned idle_settled; /* idle: slots held or failed */
static unsigned established;  /* idle: connections held open */

static void conn_start(struct conn *c);
static void conn_ready(struct conn *c);

unsigned
kb_tcp_established(void)
{
	return established;
}

static void
watch(struct conn *c, bool rd, bool wr)
{
	if (rd)
		ev_io_start(kb.loop, &c->rio);
	else
		ev_io_stop(kb.loop, &c->rio);
	if (wr)
		ev_io_start(kb.loop, &c->wio);
	else
		ev_io_stop(kb.loop, &c->wio);
}

static void
conn_close(struct conn *c)
{
	watch(c, false, false);
	ev_timer_stop(kb.loop, &c->tm);
	if (c->tls != NULL) {
		gnutls_deinit(c->tls);
		c->tls = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->tls_wagain = false;
	c->st = CS_CLOSED;
}

static void
idle_settle(struct conn *c)
{
	if (c->settled)
		return;
	c->settled = true;
	if (idle_next < nconns) {
		/* Through the timer: no recursion when connects fail. */
		struct conn *next = &conns[idle_next++];

		ev_timer_set(&next->tm, 0., 0.);
		ev_timer_start(kb.loop, &next->tm);
	}
	if (++idle_settled == nconns)
		kb_idle_ready();
}

/* Counts the error, closes, and schedules a reconnect (or, in idle mode,
 * gives the slot up).  The caller returns right after. */
static void KB_PRINTF(3, 4)
conn_fail(struct conn *c, enum kb_err kind, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	conn_close(c);
	kb_error(kind, "connection %u: %s", c->id, msg);
	if (kb.o->mode == KB_IDLE) {
		idle_settle(c);
		return;
	}
	if (!kb.stopping) {
		ev_timer_set(&c->tm, KB_RECONNECT_DELAY, 0.);
		ev_timer_start(kb.loop, &c->tm);
	}
}

/* ---- I/O on plain or TLS sockets --------------------------------------- */

/* Returns the bytes written, IO_AGAIN, or IO_FAILED (already handled by
 * conn_fail).  After an AGAIN under TLS the next call must concern the
 * same data: GnuTLS has it encrypted already and only flushes it. */
static ssize_t
conn_send(struct conn *c, const void *buf, size_t len)
{
	ssize_t n;

	if (c->tls != NULL) {
		if (c->tls_wagain) {
			buf = NULL;
			len = 0;
		}
		n = gnutls_record_send(c->tls, buf, len);
		if (n >= 0) {
			c->tls_wagain = false;
			return n;
		}
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
			c->tls_wagain = true;
			return IO_AGAIN;
		}
		conn_fail(c, KB_ERR_TLS, "send: %s", gnutls_strerror((int)n));
		return IO_FAILED;
	}
	n = write(c->fd, buf, len);
	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EINTR)
		return IO_AGAIN;
	conn_fail(c, KB_ERR_CLOSED, "write: %s", strerror(errno));
	return IO_FAILED;
}

/* Returns the bytes read (> 0), IO_AGAIN, or IO_FAILED; end of stream is
 * a failure in every state (the server is not supposed to close). */
static ssize_t
conn_recv(struct conn *c, void *buf, size_t len)
{
	ssize_t n;

	if (c->tls != NULL) {
		n = gnutls_record_recv(c->tls, buf, len);
		if (n > 0)
			return n;
		if (n == 0 || n == GNUTLS_E_PREMATURE_TERMINATION) {
			conn_fail(c, KB_ERR_CLOSED, "closed by the server");
			return IO_FAILED;
		}
		if (n == GNUTLS_E_AGAIN || !gnutls_error_is_fatal((int)n))
			return IO_AGAIN;
		conn_fail(c, KB_ERR_TLS, "receive: %s",
			  gnutls_strerror((int)n));
		return IO_FAILED;
	}
	n = read(c->fd, buf, len);
	if (n > 0)
		return n;
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return IO_AGAIN;
	if (n == 0)
		conn_fail(c, KB_ERR_CLOSED, "closed by the server");
	else
		conn_fail(c, KB_ERR_CLOSED, "read: %s", strerror(errno));
	return IO_FAILED;
}

static bool
tls_pending(struct conn *c)
{
	return c->tls != NULL && gnutls_record_check_pending(c->tls) > 0;
}

/* ---- pingpong ----------------------------------------------------------- */

/* Line k of a connection: SIZE-1 pattern bytes starting at k % period,
 * then '\n'; a lost, repeated or reordered line shows as a mismatch. */
static void
pp_queue(struct conn *c, uint64_t now)
{
	size_t size = kb.o->size;
	char *p;

	if (c->wpos == c->wlen)
		c->wpos = c->wlen = 0;
	p = c->wbuf + c->wlen;
	memcpy(p, kb.line_pat + c->sseq % KB_LINE_PERIOD, size - 1);
	p[size - 1] = '\n';
	c->wlen += size;
	c->tsent[c->sseq % kb.o->pipeline] = now;
	c->sseq++;
}

/* One write() of everything queued; EV_WRITE only if it did not all go. */
static void
pp_flush(struct conn *c)
{
	ssize_t n;

	while (c->wpos < c->wlen) {
		n = conn_send(c, c->wbuf + c->wpos, c->wlen - c->wpos);
		if (n == IO_FAILED)
			return;
		if (n == IO_AGAIN) {
			ev_io_start(kb.loop, &c->wio);
			return;
		}
		c->wpos += (size_t)n;
	}
	ev_io_stop(kb.loop, &c->wio);
}

static void
pp_begin(struct conn *c)
{
	uint64_t now = kb_now_ns();
	unsigned i;

	c->sseq = c->rseq = 0;
	c->rlen = c->wpos = c->wlen = 0;
	c->t_io = now;
	c->st = CS_RUN;
	for (i = 0; i < kb.o->pipeline; i++)
		pp_queue(c, now);
	watch(c, true, false);
	pp_flush(c);
}

static void
pp_read(struct conn *c)
{
	size_t size = kb.o->size, cap = size * kb.o->pipeline, off;
	uint64_t now;
	ssize_t n;

	do {
		n = conn_recv(c, c->rbuf + c->rlen, cap - c->rlen);
		if (n == IO_FAILED)
			return;
		if (n == IO_AGAIN)
			break;
		c->rlen += (size_t)n;
		c->t_io = now = kb_now_ns();
		for (off = 0; c->rlen - off >= size; off += size) {
			const char *line = c->rbuf + off;

			if (c->rseq == c->sseq ||
			    line[size - 1] != '\n' ||
			    memcmp(line,
				   kb.line_pat + c->rseq % KB_LINE_PERIOD,
				   size - 1) != 0) {
				conn_fail(c, KB_ERR_MISMATCH,
					  "echoed line %llu differs from the "
					  "line sent",
					  (unsigned long long)c->rseq);
				return;
			}
			kb_hist_add(&kb.hist,
				    now - c->tsent[c->rseq % kb.o->pipeline]);
			c->rseq++;
			kb.c.ops++;
			pp_queue(c, now);
		}
		if (off > 0) {
			memmove(c->rbuf, c->rbuf + off, c->rlen - off);
			c->rlen -= off;
		}
	} while (tls_pending(c));
	if (!ev_is_active(&c->wio))
		pp_flush(c);
}

/* ---- stream ------------------------------------------------------------- */

static void
st_write(struct conn *c)
{
	ssize_t n;

	while (c->woff - c->roff < KB_STREAM_WINDOW) {
		n = conn_send(c, kb.bin_pat + c->woff % KB_BIN_PERIOD,
			      kb.o->size);
		if (n == IO_FAILED)
			return;
		if (n == IO_AGAIN) {
			ev_io_start(kb.loop, &c->wio);
			return;
		}
		c->woff += (uint64_t)n;
	}
	/* Window full: the reader restarts the writer. */
	ev_io_stop(kb.loop, &c->wio);
}

static void
st_read(struct conn *c)
{
	unsigned rounds = 0;
	ssize_t n;

	do {
		n = conn_recv(c, kb.scratch, sizeof(kb.scratch));
		if (n == IO_FAILED)
			return;
		if (n == IO_AGAIN)
			break;
		if ((uint64_t)n > c->woff - c->roff ||
		    memcmp(kb.scratch, kb.bin_pat + c->roff % KB_BIN_PERIOD,
			   (size_t)n) != 0) {
			conn_fail(c, KB_ERR_MISMATCH,
				  "echoed data differs at stream offset %llu",
				  (unsigned long long)c->roff);
			return;
		}
		c->roff += (uint64_t)n;
		kb.c.ops += (uint64_t)n;
		/* A full buffer may mean more is waiting; a few rounds at
		 * most, to stay fair to the other connections. */
	} while (tls_pending(c) ||
		 ((size_t)n == sizeof(kb.scratch) && ++rounds < 4));
	c->t_io = kb_now_ns();
	if (!ev_is_active(&c->wio) && c->woff - c->roff < KB_STREAM_WINDOW)
		st_write(c);
}

static void
st_begin(struct conn *c)
{
	c->woff = c->roff = 0;
	c->t_io = kb_now_ns();
	c->st = CS_RUN;
	watch(c, true, false);
	st_write(c);
}

/* ---- one-line exchange, greeting, end of a connect/handshake cycle ------ */

/* Reads once and reports whether a '\n' arrived (-1: failed). */
static int
read_line_end(struct conn *c)
{
	ssize_t n;

	do {
		n = conn_recv(c, kb.scratch, sizeof(kb.scratch));
		if (n == IO_FAILED)
			return -1;
		if (n == IO_AGAIN)
			return 0;
		if (memchr(kb.scratch, '\n', (size_t)n) != NULL)
			return 1;
	} while (tls_pending(c));
	return 0;
}

static void
line_write(struct conn *c)
{
	ssize_t n;

	while (c->lpos < kb.o->size) {
		n = conn_send(c, kb.line + c->lpos, kb.o->size - c->lpos);
		if (n == IO_FAILED)
			return;
		if (n == IO_AGAIN) {
			watch(c, false, true);
			return;
		}
		c->lpos += (size_t)n;
	}
	watch(c, true, false);
}

static void
line_begin(struct conn *c)
{
	c->st = CS_LINE;
	c->lpos = 0;
	line_write(c);
}

/* Keeps the session data of a full handshake for the next connections of
 * the slot.  Returns false when a TLS 1.3 ticket has yet to arrive. */
static bool
keep_session(struct conn *c)
{
	if (!kb.o->resume || !c->full_hs || c->no_ticket)
		return true;
	if (gnutls_protocol_get_version(c->tls) == GNUTLS_TLS1_3 &&
	    !(gnutls_session_get_flags(c->tls) & GNUTLS_SFLAGS_SESSION_TICKET))
		return false;
	gnutls_free(c->sess.data);
	c->sess.data = NULL;
	c->sess.size = 0;
	if (gnutls_session_get_data2(c->tls, &c->sess) < 0) {
		c->sess.data = NULL;
		c->sess.size = 0;
	}
	c->full_hs = false;
	return true;
}

/* The exchange of a connection is complete. */
static void
conn_done(struct conn *c)
{
	if (c->tls != NULL && !keep_session(c)) {
		c->st = CS_TICKET;
		watch(c, true, false);
		ev_timer_set(&c->tm, KB_TICKET_WAIT, 0.);
		ev_timer_start(kb.loop, &c->tm);
		return;
	}
	ev_timer_stop(kb.loop, &c->tm);
	kb_hist_add(&kb.hist, kb_now_ns() - c->t0);
	kb.c.ops++;
	if (kb.o->mode == KB_IDLE) {
		c->st = CS_HOLD;
		established++;
		watch(c, true, false);
		idle_settle(c);
		return;
	}
	if (c->tls != NULL)
		gnutls_bye(c->tls, GNUTLS_SHUT_WR); /* best effort, no wait */
	conn_close(c);
	if (!kb.stopping)
		conn_start(c);
}

static void
after_greeting(struct conn *c)
{
	switch (kb.o->mode) {
	case KB_PINGPONG:
		pp_begin(c);
		break;
	case KB_STREAM:
		st_begin(c);
		break;
	case KB_HANDSHAKE:
		if (!kb.o->exchange) {
			conn_done(c);
			break;
		}
		/* fall through */
	default:
		line_begin(c);
		break;
	}
}

/* Connected, and past the TLS handshake if any. */
static void
conn_ready(struct conn *c)
{
	if (!kb.o->greeting) {
		after_greeting(c);
		return;
	}
	c->st = CS_GREETING;
	watch(c, true, false);
	if (tls_pending(c))
		ev_feed_event(kb.loop, &c->rio, EV_READ);
}

/* ---- connect and TLS handshake ------------------------------------------ */

static void
tls_handshake(struct conn *c)
{
	int r;

	do {
		r = gnutls_handshake(c->tls);
	} while (r < 0 && r != GNUTLS_E_AGAIN && !gnutls_error_is_fatal(r));
	if (r == GNUTLS_E_AGAIN) {
		bool wr = gnutls_record_get_direction(c->tls) == 1;

		watch(c, !wr, wr);
		return;
	}
	if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
		unsigned status = gnutls_session_get_verify_cert_status(c->tls);
		gnutls_datum_t why = {NULL, 0};

		gnutls_certificate_verification_status_print(
			status, GNUTLS_CRT_X509, &why, 0);
		conn_fail(c, KB_ERR_TLS, "TLS handshake: %s",
			  why.data != NULL ? (const char *)why.data
					   : gnutls_strerror(r));
		gnutls_free(why.data);
		return;
	}
	if (r < 0) {
		conn_fail(c, KB_ERR_TLS, "TLS handshake: %s",
			  gnutls_strerror(r));
		return;
	}
	if (gnutls_session_is_resumed(c->tls)) {
		kb.c.resumed++;
		c->full_hs = false;
	} else {
		c->full_hs = true;
	}
	conn_ready(c);
}

static void
tls_begin(struct conn *c)
{
	gnutls_session_t s;
	int r;

	r = gnutls_init(&s, GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
	if (r < 0) {
		conn_fail(c, KB_ERR_OTHER, "gnutls_init: %s",
			  gnutls_strerror(r));
		return;
	}
	c->tls = s;
	if ((r = gnutls_priority_set(s, kb.prio)) < 0 ||
	    (r = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE,
					kb.cred)) < 0 ||
	    (kb.sni != NULL &&
	     (r = gnutls_server_name_set(s, GNUTLS_NAME_DNS, kb.sni,
					 strlen(kb.sni))) < 0) ||
	    (kb.alpn.size > 0 &&
	     (r = gnutls_alpn_set_protocols(s, &kb.alpn, 1, 0)) < 0) ||
	    (c->sess.size > 0 &&
	     (r = gnutls_session_set_data(s, c->sess.data, c->sess.size)) <
		     0)) {
		conn_fail(c, KB_ERR_TLS, "TLS setup: %s", gnutls_strerror(r));
		return;
	}
	if (kb.o->ca != NULL)
		gnutls_session_set_verify_cert(s, kb.verify_name, 0);
	gnutls_transport_set_int(s, c->fd);
	c->st = CS_HANDSHAKE;
	tls_handshake(c);
}

static void
conn_connected(struct conn *c)
{
	kb_connected();
	if (kb.o->tls)
		tls_begin(c);
	else
		conn_ready(c);
}

static void
conn_start(struct conn *c)
{
	static const int one = 1;
	int fd;

	fd = socket(kb.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		conn_fail(c, KB_ERR_OTHER, "socket: %s", strerror(errno));
		return;
	}
	if (kb.family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	c->t0 = kb_now_ns();
	ev_io_set(&c->rio, fd, EV_READ);
	ev_io_set(&c->wio, fd, EV_WRITE);
	if (connect(fd, (struct sockaddr *)&kb.addr, kb.addrlen) == 0) {
		conn_connected(c);
		return;
	}
	if (errno == EINPROGRESS) {
		c->st = CS_CONNECTING;
		watch(c, false, true);
		return;
	}
	conn_fail(c, KB_ERR_CONNECT, "connect: %s", strerror(errno));
}

static void
connect_done(struct conn *c)
{
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0) {
		conn_fail(c, KB_ERR_CONNECT, "connect: %s", strerror(err));
		return;
	}
	conn_connected(c);
}

/* ---- event dispatch ----------------------------------------------------- */

static void
conn_event(struct conn *c, int revents)
{
	switch (c->st) {
	case CS_CLOSED:
		break;
	case CS_CONNECTING:
		connect_done(c);
		break;
	case CS_HANDSHAKE:
		tls_handshake(c);
		break;
	case CS_GREETING:
		if (read_line_end(c) > 0)
			after_greeting(c);
		break;
	case CS_LINE:
		if (revents & EV_WRITE)
			line_write(c);
		else if (read_line_end(c) > 0)
			conn_done(c);
		break;
	case CS_TICKET:
		/* Whatever arrives is discarded; GnuTLS processes the ticket
		 * on the way. */
		do {
			if (conn_recv(c, kb.scratch, sizeof(kb.scratch)) ==
			    IO_FAILED)
				return;
		} while (tls_pending(c));
		if (gnutls_session_get_flags(c->tls) &
		    GNUTLS_SFLAGS_SESSION_TICKET)
			conn_done(c);
		break;
	case CS_RUN:
		if (kb.o->mode == KB_PINGPONG) {
			if (revents & EV_READ)
				pp_read(c);
			else
				pp_flush(c);
		} else {
			if (revents & EV_READ)
				st_read(c);
			else
				st_write(c);
		}
		break;
	case CS_HOLD:
		/* The server is not supposed to talk; end of stream is an
		 * error, anything else is ignored. */
		while (conn_recv(c, kb.scratch, sizeof(kb.scratch)) > 0 &&
		       c->st == CS_HOLD)
			;
		break;
	}
}

static void
rio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	conn_event(KB_CONTAINER_OF(w, struct conn, rio), EV_READ);
}

static void
wio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	conn_event(KB_CONTAINER_OF(w, struct conn, wio), EV_WRITE);
}

static void
tm_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = KB_CONTAINER_OF(w, struct conn, tm);

	if (c->st == CS_CLOSED) {
		conn_start(c);
	} else if (c->st == CS_TICKET) {
		/* No ticket: this slot goes on with full handshakes. */
		c->no_ticket = true;
		conn_done(c);
	}
}

/* ---- setup and teardown ------------------------------------------------- */

int
kb_tcp_start(void)
{
	const struct kb_opts *o = kb.o;
	size_t ppbytes = 0;
	unsigned i, first;

	nconns = o->conns;
	conns = calloc(nconns, sizeof(*conns));
	if (conns == NULL)
		return -1;
	if (o->mode == KB_PINGPONG)
		ppbytes = 2 * o->size * o->pipeline +
			  o->pipeline * sizeof(uint64_t);
	for (i = 0; i < nconns; i++) {
		struct conn *c = &conns[i];

		c->id = i;
		c->fd = -1;
		ev_io_init(&c->rio, rio_cb, -1, EV_READ);
		ev_io_init(&c->wio, wio_cb, -1, EV_WRITE);
		ev_timer_init(&c->tm, tm_cb, 0., 0.);
		if (ppbytes > 0) {
			/* one block: send times, then read and write buffers */
			c->tsent = malloc(ppbytes);
			if (c->tsent == NULL)
				return -1;
			c->rbuf = (char *)(c->tsent + o->pipeline);
			c->wbuf = c->rbuf + o->size * o->pipeline;
		}
	}
	first = o->mode == KB_IDLE && nconns > KB_IDLE_RAMP ? KB_IDLE_RAMP
							    : nconns;
	idle_next = first;
	for (i = 0; i < first && !kb.stopping; i++)
		conn_start(&conns[i]);
	return 0;
}

void
kb_tcp_check_stalled(void)
{
	static const char *const what[] = {
		[CS_CONNECTING] = "connecting",
		[CS_HANDSHAKE] = "in the TLS handshake",
		[CS_GREETING] = "waiting for the greeting",
		[CS_LINE] = "waiting for the reply",
		[CS_TICKET] = "waiting for a session ticket",
		[CS_RUN] = "waiting for the echo",
	};
	uint64_t now = kb_now_ns(), since;
	unsigned i;

	for (i = 0; conns != NULL && i < nconns; i++) {
		struct conn *c = &conns[i];

		switch (c->st) {
		case CS_CLOSED:
		case CS_HOLD:
			continue;
		case CS_RUN:
			if (kb.o->mode == KB_PINGPONG ? c->rseq == c->sseq
						      : c->roff == c->woff)
				continue;
			since = c->t_io;
			break;
		default:
			since = c->t0;
			break;
		}
		if (now - since >= KB_STALL_NS)
			kb_error(KB_ERR_TIMEOUT,
				 "connection %u: stalled %s for %.1f s", c->id,
				 what[c->st], (double)(now - since) / 1e9);
	}
}

void
kb_tcp_stop(void)
{
	unsigned i;

	if (conns == NULL)
		return;
	for (i = 0; i < nconns; i++) {
		conn_close(&conns[i]);
		gnutls_free(conns[i].sess.data);
		free(conns[i].tsent);
	}
	free(conns);
	conns = NULL;
}
