/*
 * Streams: one connected socket with its read channel (input buffer) and
 * write channel (output buffer), driven by two ev_io watchers.
 *
 * Reading happens in the read watcher's callback: it reads into the input
 * buffer while there is room and wakes the coroutine waiting on the read
 * channel.  The watcher stays started while the buffer has room (so no
 * epoll_ctl per request) and stops when it is full: back-pressure.  A short
 * read means the socket is drained, so no read is retried for EAGAIN.
 *
 * Writes append to the output buffer; the buffer is sent when the
 * coroutine next waits for input (auto-flush), flushes, sleeps or ends.
 * A write is tried first and the write watcher armed only when the kernel
 * buffer is full.
 *
 * The transport vtable is what TLS will replace; the core never calls
 * read(2)/send(2) on a stream's fd directly.
 */
#ifndef KS_STREAM_H
#define KS_STREAM_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <ksockd/plugin.h>

#include "buf.h"
#include "worker.h"

struct ks_stream;
struct ks_worker;
struct ks_conn;
struct ks_coro;

#define KS_WRITE_HIWAT (1024 * 1024)
/* The lingering close reads and drops at most this much input. */
#define KS_DISCARD_MAX (1024 * 1024)

/* Each returns bytes moved, or -1 with errno (EAGAIN when it would block);
 * read returns 0 at EOF. */
struct ks_transport {
	const char *name;
	ssize_t (*read)(struct ks_stream *st, void *buf, size_t n);
	ssize_t (*write)(struct ks_stream *st, const void *buf, size_t n);
	int (*shutdown_write)(struct ks_stream *st);
	void (*close)(struct ks_stream *st);
	/* Bytes already received and decrypted but not yet read: readiness
	 * of the fd does not announce them.  NULL: never any. */
	size_t (*pending)(struct ks_stream *st);
};

extern const struct ks_transport ks_transport_plain;

struct ks_rchan {
	struct ks_buf buf;
	size_t limit;      /* buffer capacity: max(block, max_line + 2) */
	size_t max_line;
	size_t scanned;    /* line search progress over buf */
	bool eof;          /* read returned 0 */
	bool lent;         /* a pointer into buf is out (line or peek) */
	bool skip_line;    /* discarding the rest of an over-long line */
	bool last_read_full; /* the last read filled the room it was given */
	int err;           /* errno of a failed read */
	struct ks_coro *waiter;
};

struct ks_wchan {
	struct ks_buf buf;
	size_t hiwat;
	bool shut;        /* shutdown requested/done */
	bool closed;      /* ks_close: no further writes */
	int err;          /* errno of a failed write */
	struct ks_coro *waiter; /* waiting for the buffer to drain */
	size_t wait_below;      /* wake the waiter when buf.len <= this */
};

struct ks_stream {
	struct ks_worker *wk;
	struct ks_conn *conn; /* owner: timeouts, progress, errno, logs */
	/* The listener's counters when this is a connection's own stream
	 * (an outbound peer's counts on the worker only); NULL: none.  nin
	 * and nout: bytes this stream received and sent (the access log). */
	struct ks_stats *ls;
	uint64_t nin, nout;
	int fd;
	const struct ks_transport *tp;
	void *tp_ctx;
	ev_io rio, wio;
	struct ks_rchan in;
	struct ks_wchan out;
	bool canceled; /* shutting down: waits return KS_ECANCELED */
	bool closed;   /* fd closed (ks_close or end of connection) */
	bool discard;  /* lingering close: drop whatever arrives */
	size_t discarded; /* bytes dropped so far */
	bool nomem;    /* a read found the worker's buffer memory at its cap */
	bool raw_wait; /* TLS handshake: watchers only wake, never read */
	size_t sent_unwaited; /* bytes sent since the handler last waited */
	size_t pending_consume; /* bytes of the line lent out last time */
	/* ks_copy in progress with this stream as source / destination */
	struct ks_stream *pump_to, *pump_from;
	struct ks_coro *pump_waiter;
	uint64_t pump_bytes;
	int pump_status;
};

/* Counts member idx (worker.h's KS_STAT) on the worker and, for a
 * connection's stream, on its listener. */
static inline void
ks_stream_count(struct ks_stream *st, size_t idx)
{
	ks_stats_bump(st->wk->stats, idx);
	if (st->ls != NULL)
		ks_stats_bump(st->ls, idx);
}

/* Sets up a stream on a connected non-blocking fd (takes ownership) and
 * starts reading.  max_line bounds ks_read_line. */
void ks_stream_init(struct ks_stream *st, struct ks_worker *wk,
		    struct ks_conn *conn, int fd, size_t max_line);
/* Stops the watchers, closes the transport and fd, frees the buffers and
 * wakes any waiter with KS_ECLOSED.  Idempotent. */
void ks_stream_close(struct ks_stream *st);

/* Main or coroutine context: writes as much of the output buffer as the
 * kernel takes now; arms the write watcher for the rest.  Returns 0, or
 * a KS_E* status if the stream has failed. */
int ks_stream_flush_nowait(struct ks_stream *st);

/* Bytes still waiting in the output buffer. */
static inline size_t
ks_stream_pending(const struct ks_stream *st)
{
	return st->out.buf.len;
}

/* ---- used by the channel API (chan.c) and connections; coroutine
 * context unless noted.  All return KS_OK or a KS_E* status. */

/* KS_OK if a read may start: not closed, not canceled, nobody else waiting
 * on the read channel, no ks_copy running from it. */
int ks_stream_check_read(const struct ks_stream *st);
/* Flushes pending output (without waiting), releases an empty input
 * buffer, and suspends until the read watcher brings something (KS_OK:
 * re-check the buffer), EOF/error, a timeout, cancellation or close. */
int ks_stream_wait_input(struct ks_stream *st);
/* Main or coroutine context: restarts the read watcher if it was stopped
 * for back-pressure and the stream can still read. */
void ks_stream_want_input(struct ks_stream *st);
/* Waits until the fd is readable (EV_READ) or writable (EV_WRITE) without
 * reading anything: for a TLS handshake, which does its own I/O. */
int ks_stream_wait_ready(struct ks_stream *st, int events);
/* Drops the line or peek handed out by the previous read call. */
void ks_stream_consume_lent(struct ks_stream *st);
/* Suspends until the output buffer holds at most `below` bytes. */
int ks_stream_wait_output(struct ks_stream *st, size_t below);
/* Suspends until the output buffer is empty. */
int ks_stream_flush_wait(struct ks_stream *st);
/* Buffers (or, past the high-water mark, writes through) n bytes. */
int ks_stream_write(struct ks_stream *st, const void *p, size_t n);
/* The ks_copy pump. */
int ks_stream_copy(struct ks_stream *src, struct ks_stream *dst,
		   uint64_t *copied);

/* Wakes every coroutine waiting on this stream with `status` (timeouts,
 * cancellation). */
void ks_stream_wake_all(struct ks_stream *st, int status);

/* Is output waiting for the peer to read: buffered, a write waiting, or
 * a ks_copy into this stream holding data? */
bool ks_stream_write_blocked(const struct ks_stream *st);

/* Implemented by conn.c, called by the stream (st is the connection's own
 * stream or one of its outbound peers):
 *  - progress: bytes were read;
 *  - wrote: bytes were sent, or output was queued on an empty buffer;
 *  - write_blocked: the kernel took less than was pending;
 *  - drained: pending output is all sent. */
void ks_conn_progress(struct ks_conn *conn);
void ks_conn_wrote(struct ks_conn *conn, struct ks_stream *st);
void ks_conn_write_blocked(struct ks_conn *conn, struct ks_stream *st);
void ks_conn_drained(struct ks_conn *conn);
/* A read of one of the connection's streams was refused buffer memory
 * (max_buffer_memory): the connection ends now (counted, logged). */
void ks_conn_nomem(struct ks_conn *conn);

#endif
