/*
 * Stream internals: the plain transport, the two watchers, filling the
 * input buffer, flushing the output buffer, waiting, and the ks_copy pump.
 * The public channel functions built on these live in chan.c.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "coro.h"
#include "log.h"
#include "stream.h"
#include "util.h"
#include "worker.h"

static ssize_t
plain_read(struct ks_stream *st, void *buf, size_t n)
{
	return read(st->fd, buf, n);
}

static ssize_t
plain_write(struct ks_stream *st, const void *buf, size_t n)
{
	/* MSG_NOSIGNAL: a vanished peer is an EPIPE, never a SIGPIPE. */
	return send(st->fd, buf, n, MSG_NOSIGNAL);
}

static int
plain_shutdown_write(struct ks_stream *st)
{
	return shutdown(st->fd, SHUT_WR);
}

static void
plain_close(struct ks_stream *st)
{
	(void)st;
}

const struct ks_transport ks_transport_plain = {
	.name = "plain",
	.read = plain_read,
	.write = plain_write,
	.shutdown_write = plain_shutdown_write,
	.close = plain_close,
};

static void rio_cb(struct ev_loop *loop, ev_io *w, int revents);
static void wio_cb(struct ev_loop *loop, ev_io *w, int revents);

/* Bytes moved: the worker's, the listener's and the stream's own count. */
static inline void
count_in(struct ks_stream *st, uint64_t n)
{
	st->wk->stats->bytes_in += n;
	st->nin += n;
	if (st->ls != NULL)
		st->ls->bytes_in += n;
}

static inline void
count_out(struct ks_stream *st, uint64_t n)
{
	st->wk->stats->bytes_out += n;
	st->nout += n;
	if (st->ls != NULL)
		st->ls->bytes_out += n;
}

void
ks_stream_init(struct ks_stream *st, struct ks_worker *wk, struct ks_conn *conn,
	       int fd, size_t max_line)
{
	memset(st, 0, sizeof(*st));
	st->wk = wk;
	st->conn = conn;
	st->fd = fd;
	st->tp = &ks_transport_plain;
	st->in.max_line = max_line;
	st->in.limit = KS_MAX((size_t)KS_BUF_BLOCK, max_line + 2);
	st->out.hiwat = KS_WRITE_HIWAT;
	ev_io_init(&st->rio, rio_cb, fd, EV_READ);
	ev_io_init(&st->wio, wio_cb, fd, EV_WRITE);
	ev_io_start(wk->loop, &st->rio);
}

static void
set_error(struct ks_stream *st, int *slot, int err)
{
	*slot = err;
	if (st->conn != NULL)
		st->conn->err = err;
}

void
ks_stream_wake_all(struct ks_stream *st, int status)
{
	struct ks_coro *r = st->in.waiter, *w = st->out.waiter;
	struct ks_coro *p = st->pump_waiter;

	/* A woken coroutine runs at once and may end or start other waits,
	 * so wake each of the others only while it still waits here. */
	if (r != NULL)
		ks_coro_wake(r, status);
	if (w != NULL && w != r && st->out.waiter == w)
		ks_coro_wake(w, status);
	if (p != NULL && p != r && p != w && st->pump_waiter == p)
		ks_coro_wake(p, status);
}

void
ks_stream_close(struct ks_stream *st)
{
	struct ks_bufpool *pool = &st->wk->pool;

	if (st->closed)
		return;
	st->closed = true;
	ev_io_stop(st->wk->loop, &st->rio);
	ev_io_stop(st->wk->loop, &st->wio);
	st->tp->close(st);
	close(st->fd);
	st->fd = -1;
	ks_buf_free(&st->in.buf, pool);
	ks_buf_free(&st->out.buf, pool);
	st->pending_consume = 0;
	ks_stream_wake_all(st, KS_ECLOSED);
}

/* ---- input ---------------------------------------------------------------*/

static bool
transport_pending(struct ks_stream *st)
{
	return st->tp->pending != NULL && st->tp->pending(st) > 0;
}

void
ks_stream_want_input(struct ks_stream *st)
{
	if (st->closed || st->in.eof || st->in.err != 0)
		return;
	if (!ev_is_active(&st->rio))
		ev_io_start(st->wk->loop, &st->rio);
	/* Data inside the transport (a TLS record already decrypted) makes
	 * no fd readable: run the read callback for it explicitly. */
	if (transport_pending(st))
		ev_feed_event(st->wk->loop, &st->rio, EV_READ);
}

/* The ks_copy pump may use a larger buffer than line reading: bulk
 * transfers then take 64 KiB per read() instead of 16 KiB. */
#define PUMP_CHUNK (64 * 1024)
#define PUMP_LIMIT (256 * 1024)

static size_t
fill_limit(const struct ks_stream *st)
{
	return st->pump_to != NULL ? KS_MAX(st->in.limit, (size_t)PUMP_LIMIT)
				   : st->in.limit;
}

/* One read into the input buffer.  Level-triggered readiness makes a short
 * read mean "drained": the next read happens only when epoll says so.  A
 * read that fills all the room it was given means more is waiting; while
 * pumping, the next read then asks for a bigger buffer. */
static void
stream_fill(struct ks_stream *st)
{
	struct ks_rchan *in = &st->in;
	size_t limit = fill_limit(st);
	size_t room = limit - in->buf.len;
	size_t want = KS_MIN(room, (size_t)4096);
	ssize_t n;
	int rc;

	if (in->last_read_full && st->pump_to != NULL)
		want = KS_MIN(room, (size_t)PUMP_CHUNK);
	rc = room == 0 ? -1
		       : ks_buf_reserve(&in->buf, &st->wk->pool, want, limit,
					in->lent);
	if (rc == KS_BUF_NOMEM) {
		/* The worker's buffers are at max_buffer_memory: the
		 * connection that asks for more is the one that goes. */
		set_error(st, &in->err, ENOBUFS);
		st->nomem = true;
		ev_io_stop(st->wk->loop, &st->rio);
		return;
	}
	if (rc != 0) {
		/* Full (or a lent pointer pins the data): stop reading until
		 * the handler consumes.  This is the back-pressure. */
		ev_io_stop(st->wk->loop, &st->rio);
		return;
	}
	room = KS_MIN(ks_buf_tailroom(&in->buf), limit - in->buf.len);
	n = st->tp->read(st, ks_buf_tail(&in->buf), room);
	if (n > 0) {
		in->buf.len += (size_t)n;
		in->last_read_full = (size_t)n == room;
		count_in(st, (uint64_t)n);
		if (st->conn != NULL)
			ks_conn_progress(st->conn);
		return;
	}
	in->last_read_full = false;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n == 0)
		in->eof = true;
	else
		set_error(st, &in->err, errno);
	ev_io_stop(st->wk->loop, &st->rio);
	ks_buf_release(&in->buf, &st->wk->pool);
}

static void pump_drain(struct ks_stream *src);

static void
rio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ks_stream *st = KS_CONTAINER_OF(w, struct ks_stream, rio);

	(void)loop;
	(void)revents;
	if (st->raw_wait) {
		if (st->in.waiter != NULL)
			ks_coro_wake(st->in.waiter, KS_OK);
		return;
	}
	stream_fill(st);
	if (st->nomem) {
		st->nomem = false;
		if (st->conn != NULL) {
			ks_conn_nomem(st->conn);
			return;
		}
	}
	if (transport_pending(st) && st->in.buf.len < fill_limit(st))
		ev_feed_event(st->wk->loop, &st->rio, EV_READ);
	if (st->discard) {
		st->discarded += st->in.buf.len;
		ks_buf_consume(&st->in.buf, st->in.buf.len);
		/* A peer that keeps sending does not get read for ever. */
		if ((st->in.eof || st->in.err != 0 ||
		     st->discarded > KS_DISCARD_MAX) && st->conn != NULL)
			ks_conn_drained(st->conn);
		return;
	}
	if (st->pump_to != NULL) {
		pump_drain(st);
		return;
	}
	if (st->in.waiter != NULL)
		ks_coro_wake(st->in.waiter, KS_OK);
}

int
ks_stream_check_read(const struct ks_stream *st)
{
	if (st->closed)
		return KS_ECLOSED;
	if (st->canceled)
		return KS_ECANCELED;
	if (st->in.waiter != NULL || st->pump_to != NULL)
		return KS_EBUSY;
	return KS_OK;
}

int
ks_stream_wait_input(struct ks_stream *st)
{
	struct ks_rchan *in = &st->in;
	struct ks_sched *s = &st->wk->sched;
	int rc;

	if (in->err != 0)
		return KS_EIO;
	if (in->eof)
		return KS_EOF;
	if ((rc = ks_stream_check_read(st)) != KS_OK)
		return rc;
	/* The auto-flush point: whatever the handler wrote goes out before it
	 * waits for the peer's next move.  Errors show up on the next write. */
	if (st->out.buf.len > 0)
		(void)ks_stream_flush_nowait(st);
	if (in->buf.len == 0 && !in->lent)
		ks_buf_release(&in->buf, &st->wk->pool);
	ks_stream_want_input(st);
	in->waiter = ks_coro_self(s);
	st->sent_unwaited = 0;
	rc = ks_coro_suspend(s);
	in->waiter = NULL;
	return rc;
}

/* ---- output --------------------------------------------------------------*/

bool
ks_stream_write_blocked(const struct ks_stream *st)
{
	if (st->closed)
		return false;
	return st->out.buf.len > 0 || st->out.waiter != NULL ||
	       (st->pump_from != NULL && st->pump_from->in.buf.len > 0);
}

/* The kernel took less than we have: wait for the socket to drain, and
 * let the connection's write deadline run. */
static void
write_blocked(struct ks_stream *st)
{
	ev_io_start(st->wk->loop, &st->wio);
	if (st->conn != NULL)
		ks_conn_write_blocked(st->conn, st);
}

int
ks_stream_flush_nowait(struct ks_stream *st)
{
	struct ks_wchan *out = &st->out;
	ssize_t n;

	if (st->closed)
		return KS_ECLOSED;
	if (out->err != 0)
		return KS_EIO;
	while (out->buf.len > 0) {
		n = st->tp->write(st, ks_buf_head(&out->buf), out->buf.len);
		if (n > 0) {
			size_t sent = (size_t)n;

			ks_buf_consume(&out->buf, sent);
			count_out(st, sent);
			st->sent_unwaited += sent;
			if (st->conn != NULL)
				ks_conn_wrote(st->conn, st);
			if (out->buf.len == 0)
				break;
			/* A short write means the socket buffer is full. */
			write_blocked(st);
			return KS_OK;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			write_blocked(st);
			return KS_OK;
		}
		set_error(st, &out->err, errno);
		ks_buf_free(&out->buf, &st->wk->pool);
		ev_io_stop(st->wk->loop, &st->wio);
		return KS_EIO;
	}
	ks_buf_release(&out->buf, &st->wk->pool);
	if (st->pump_from == NULL)
		ev_io_stop(st->wk->loop, &st->wio);
	return KS_OK;
}

static void
wio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ks_stream *st = KS_CONTAINER_OF(w, struct ks_stream, wio);
	struct ks_wchan *out = &st->out;
	int rc;

	(void)loop;
	(void)revents;
	if (st->raw_wait) {
		if (st->out.waiter != NULL)
			ks_coro_wake(st->out.waiter, KS_OK);
		return;
	}
	if (st->pump_from != NULL) {
		pump_drain(st->pump_from);
		return;
	}
	/* flush_nowait stops the watcher itself once the buffer is empty. */
	rc = ks_stream_flush_nowait(st);
	if (out->waiter != NULL &&
	    (rc != KS_OK || out->buf.len <= out->wait_below)) {
		ks_coro_wake(out->waiter, rc);
		return;
	}
	/* Only the connection's own stream decides when it may close (an
	 * outbound peer draining says nothing about the client). */
	if (st->conn != NULL && st == &st->conn->st &&
	    (rc != KS_OK || out->buf.len == 0))
		ks_conn_drained(st->conn);
}

int
ks_stream_wait_output(struct ks_stream *st, size_t below)
{
	struct ks_wchan *out = &st->out;
	struct ks_sched *s = &st->wk->sched;
	int rc;

	if (st->canceled)
		return KS_ECANCELED;
	if (out->waiter != NULL)
		return KS_EBUSY;
	out->wait_below = below;
	write_blocked(st);
	out->waiter = ks_coro_self(s);
	st->sent_unwaited = 0;
	rc = ks_coro_suspend(s);
	out->waiter = NULL;
	return rc;
}

/* A handler whose peer reads as fast as it writes would never wait, and
 * would keep the loop from everyone else: after a high-water mark's worth
 * of bytes without waiting, let the others run. */
static void
maybe_yield(struct ks_stream *st)
{
	if (st->sent_unwaited >= st->out.hiwat &&
	    ks_coro_self(&st->wk->sched) != NULL) {
		st->sent_unwaited = 0;
		ks_coro_yield(&st->wk->sched);
	}
}

int
ks_stream_wait_ready(struct ks_stream *st, int events)
{
	struct ks_sched *s = &st->wk->sched;
	struct ks_coro **slot = events & EV_READ ? &st->in.waiter : &st->out.waiter;
	ev_io *w = events & EV_READ ? &st->rio : &st->wio;
	int rc;

	if (st->closed)
		return KS_ECLOSED;
	if (st->canceled)
		return KS_ECANCELED;
	if (*slot != NULL)
		return KS_EBUSY;
	st->raw_wait = true;
	ev_io_start(st->wk->loop, w);
	*slot = ks_coro_self(s);
	rc = ks_coro_suspend(s);
	*slot = NULL;
	if (!st->closed)
		ev_io_stop(st->wk->loop, w);
	st->raw_wait = false;
	return rc;
}

int
ks_stream_flush_wait(struct ks_stream *st)
{
	int rc;

	for (;;) {
		if ((rc = ks_stream_flush_nowait(st)) != KS_OK)
			return rc;
		if (st->out.buf.len == 0) {
			maybe_yield(st);
			return st->closed ? KS_ECLOSED : KS_OK;
		}
		if ((rc = ks_stream_wait_output(st, 0)) != KS_OK)
			return rc;
	}
}

int
ks_stream_write(struct ks_stream *st, const void *p, size_t n)
{
	struct ks_wchan *out = &st->out;
	const char *src = p;
	ssize_t w;
	int rc;

	if (st->closed || out->shut || out->closed)
		return KS_ECLOSED;
	if (out->err != 0)
		return KS_EIO;
	if (out->buf.len + n <= out->hiwat) {
		/* Output queued on an empty buffer starts the write clock. */
		if (out->buf.len == 0 && n > 0 && st->conn != NULL)
			ks_conn_wrote(st->conn, st);
		if (ks_buf_append(&out->buf, &st->wk->pool, src, n,
				  out->hiwat) != 0) {
			ks_stream_count(st, KS_STAT(buffer_refused));
			return KS_ENOMEM;
		}
		return KS_OK;
	}
	/* Past the high-water mark: send what is buffered, then write the
	 * rest straight from the caller's memory, buffering only a tail that
	 * fits under the mark. */
	if ((rc = ks_stream_flush_wait(st)) != KS_OK)
		return rc;
	while (n > 0) {
		if (st->closed)
			return KS_ECLOSED;
		w = st->tp->write(st, src, n);
		if (w > 0) {
			src += w;
			n -= (size_t)w;
			count_out(st, (uint64_t)w);
			st->sent_unwaited += (size_t)w;
			if (st->conn != NULL)
				ks_conn_wrote(st->conn, st);
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			set_error(st, &out->err, errno);
			return KS_EIO;
		}
		if (n <= out->hiwat) {
			if (ks_buf_append(&out->buf, &st->wk->pool, src, n,
					  out->hiwat) != 0) {
				ks_stream_count(st, KS_STAT(buffer_refused));
				return KS_ENOMEM;
			}
			write_blocked(st);
			return KS_OK;
		}
		if ((rc = ks_stream_wait_output(st, 0)) != KS_OK)
			return rc;
	}
	maybe_yield(st);
	return st->closed ? KS_ECLOSED : KS_OK;
}

/* ---- ks_copy pump ----------------------------------------------------------
 * The source's input buffer is the transfer buffer: the source's read
 * watcher fills it, and the data goes straight to the destination socket;
 * when the destination is full its write watcher takes over and the source
 * stops reading once its buffer is full.  The copying coroutine sleeps
 * until EOF or an error. */

static void
pump_finish(struct ks_stream *src, int status)
{
	struct ks_stream *dst = src->pump_to;

	src->pump_status = status;
	if (dst != NULL && dst->out.buf.len == 0)
		ev_io_stop(dst->wk->loop, &dst->wio);
	if (src->pump_waiter != NULL)
		ks_coro_wake(src->pump_waiter, KS_OK);
}

static void
pump_drain(struct ks_stream *src)
{
	struct ks_stream *dst = src->pump_to;
	struct ks_rchan *in = &src->in;
	ssize_t n;

	if (dst == NULL || src->pump_status != 1)
		return;
	while (in->buf.len > 0) {
		if (dst->closed) {
			pump_finish(src, KS_ECLOSED);
			return;
		}
		n = dst->tp->write(dst, ks_buf_head(&in->buf), in->buf.len);
		if (n > 0) {
			ks_buf_consume(&in->buf, (size_t)n);
			src->pump_bytes += (uint64_t)n;
			count_out(dst, (uint64_t)n);
			if (dst->conn != NULL)
				ks_conn_wrote(dst->conn, dst);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			write_blocked(dst);
			if (in->buf.len < fill_limit(src))
				ks_stream_want_input(src);
			return;
		}
		set_error(dst, &dst->out.err, errno);
		pump_finish(src, KS_EIO);
		return;
	}
	ev_io_stop(dst->wk->loop, &dst->wio);
	/* Keep a big buffer while data keeps coming; give it back once the
	 * source is drained, so idle copies hold no buffer. */
	if (!in->last_read_full)
		ks_buf_release(&in->buf, &src->wk->pool);
	if (in->err != 0) {
		pump_finish(src, KS_EIO);
		return;
	}
	if (in->eof || src->closed) {
		pump_finish(src, in->eof ? KS_OK : KS_ECLOSED);
		return;
	}
	ks_stream_want_input(src);
}

int
ks_stream_copy(struct ks_stream *src, struct ks_stream *dst, uint64_t *copied)
{
	struct ks_sched *s = &src->wk->sched;
	int rc;

	if (copied != NULL)
		*copied = 0;
	if ((rc = ks_stream_check_read(src)) != KS_OK)
		return rc;
	if (dst->closed || dst->out.shut || dst->out.closed)
		return KS_ECLOSED;
	if (dst->pump_from != NULL || dst->out.waiter != NULL)
		return KS_EBUSY;
	ks_stream_consume_lent(src);
	/* What the handler wrote before goes first. */
	if ((rc = ks_stream_flush_wait(dst)) != KS_OK)
		return rc;

	src->pump_to = dst;
	dst->pump_from = src;
	src->pump_bytes = 0;
	src->pump_status = 1;
	src->pump_waiter = NULL;
	pump_drain(src);
	while (src->pump_status == 1) {
		src->pump_waiter = ks_coro_self(s);
		rc = ks_coro_suspend(s);
		src->pump_waiter = NULL;
		if (src->pump_status == 1 && rc != KS_OK) {
			src->pump_status = rc; /* timeout, cancel, close */
			break;
		}
	}
	rc = src->pump_status;
	if (copied != NULL)
		*copied = src->pump_bytes;
	src->pump_to = NULL;
	dst->pump_from = NULL;
	src->pump_status = 0;
	src->in.last_read_full = false;
	if (src->in.buf.len == 0)
		ks_buf_release(&src->in.buf, &src->wk->pool);
	if (!dst->closed && dst->out.buf.len == 0)
		ev_io_stop(dst->wk->loop, &dst->wio);
	if (rc == KS_OK)
		rc = ks_stream_flush_wait(dst);
	return rc;
}
