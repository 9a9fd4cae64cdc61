/*
 * The public channel API (include/ksockd/plugin.h): reads and writes on a
 * connection's read and write channels, built on the stream internals.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "log.h"
#include "stream.h"
#include "util.h"
#include "worker.h"

static struct ks_stream *
rstream(ks_rchan *in)
{
	return KS_CONTAINER_OF(in, struct ks_stream, in);
}

static struct ks_stream *
wstream(ks_wchan *out)
{
	return KS_CONTAINER_OF(out, struct ks_stream, out);
}

static void
in_consume(struct ks_stream *st, size_t n)
{
	struct ks_rchan *in = &st->in;

	ks_buf_consume(&in->buf, n);
	in->scanned = in->scanned > n ? in->scanned - n : 0;
}

void
ks_stream_consume_lent(struct ks_stream *st)
{
	if (st->pending_consume > 0) {
		in_consume(st, st->pending_consume);
		st->pending_consume = 0;
	}
	if (st->in.lent) {
		st->in.lent = false;
		/* The read watcher may have stopped because the lent pointer
		 * kept the buffer from being compacted. */
		ks_stream_want_input(st);
	}
}

/* Start of every read call: no one else reading, previous line dropped. */
static int
read_begin(struct ks_stream *st)
{
	int rc = ks_stream_check_read(st);

	if (rc != KS_OK)
		return rc;
	ks_stream_consume_lent(st);
	return KS_OK;
}

/* The input ended or failed: the status to report. */
static int
read_end_status(const struct ks_stream *st)
{
	return st->in.err != 0 ? KS_EIO : KS_EOF;
}

static int
lend_partial_line(struct ks_stream *st, char **line, size_t *len)
{
	struct ks_rchan *in = &st->in;
	struct ks_buf *b = &in->buf;

	/* An unterminated last line: hand it out NUL-terminated.  It is at
	 * most max_line + 1 bytes, so the reserve fits within the limit. */
	if (ks_buf_reserve(b, &st->wk->pool, 1, in->limit + 1, false) != 0)
		return KS_ENOMEM;
	ks_buf_head(b)[b->len] = '\0';
	*line = ks_buf_head(b);
	*len = b->len;
	st->pending_consume = b->len;
	in->lent = true;
	return KS_EOF;
}

int
ks_read_line(ks_rchan *rc_in, char **line, size_t *len)
{
	struct ks_stream *st = rstream(rc_in);
	struct ks_rchan *in = &st->in;
	struct ks_buf *b = &in->buf;
	size_t line_len = 0, consumed;
	int rc;

	*line = NULL;
	*len = 0;
	if ((rc = read_begin(st)) != KS_OK)
		return rc;
	for (;;) {
		if (in->skip_line && b->len > 0) {
			char *lf = memchr(ks_buf_head(b), '\n', b->len);

			if (lf != NULL) {
				in_consume(st, (size_t)(lf - ks_buf_head(b)) + 1);
				in->skip_line = false;
				continue;
			}
			in_consume(st, b->len);
		} else if (b->len > 0) {
			consumed = 0;
			switch (ks_line_find(ks_buf_head(b), b->len, in->max_line,
					     &in->scanned, &line_len, &consumed)) {
			case KS_LINE_FOUND:
				ks_buf_head(b)[line_len] = '\0';
				*line = ks_buf_head(b);
				*len = line_len;
				st->pending_consume = consumed;
				in->lent = true;
				return KS_OK;
			case KS_LINE_TOO_LONG:
				ks_stream_count(st, KS_STAT(lines_too_long));
				if (consumed > 0) {
					in_consume(st, consumed);
				} else {
					in->skip_line = true;
					in_consume(st, b->len);
				}
				ks_stream_want_input(st);
				return KS_ETOOLONG;
			case KS_LINE_MORE:
				break;
			}
		}
		if (in->eof || in->err != 0) {
			if (b->len > 0 && !in->skip_line && in->err == 0)
				return lend_partial_line(st, line, len);
			if (b->len > 0)
				in_consume(st, b->len);
			return read_end_status(st);
		}
		if ((rc = ks_stream_wait_input(st)) != KS_OK)
			return rc;
	}
}

int
ks_read_exact(ks_rchan *rc_in, void *buf, size_t n)
{
	struct ks_stream *st = rstream(rc_in);
	struct ks_buf *b = &st->in.buf;
	char *dst = buf;
	size_t take;
	int rc;

	if ((rc = read_begin(st)) != KS_OK)
		return rc;
	while (n > 0) {
		if (b->len > 0) {
			take = KS_MIN(n, b->len);
			memcpy(dst, ks_buf_head(b), take);
			in_consume(st, take);
			ks_stream_want_input(st);
			dst += take;
			n -= take;
			continue;
		}
		if (st->in.eof || st->in.err != 0)
			return read_end_status(st);
		if ((rc = ks_stream_wait_input(st)) != KS_OK)
			return rc;
	}
	return KS_OK;
}

int
ks_read_some(ks_rchan *rc_in, void *buf, size_t cap, size_t *got)
{
	struct ks_stream *st = rstream(rc_in);
	struct ks_buf *b = &st->in.buf;
	size_t take;
	int rc;

	*got = 0;
	if (cap == 0)
		return KS_EINVAL;
	if ((rc = read_begin(st)) != KS_OK)
		return rc;
	for (;;) {
		if (b->len > 0) {
			take = KS_MIN(cap, b->len);
			memcpy(buf, ks_buf_head(b), take);
			in_consume(st, take);
			ks_stream_want_input(st);
			*got = take;
			return KS_OK;
		}
		if (st->in.eof || st->in.err != 0)
			return read_end_status(st);
		if ((rc = ks_stream_wait_input(st)) != KS_OK)
			return rc;
	}
}

int
ks_read_peek(ks_rchan *rc_in, size_t n, const void **p)
{
	struct ks_stream *st = rstream(rc_in);
	struct ks_buf *b = &st->in.buf;
	int rc;

	*p = NULL;
	if (n > st->in.limit)
		return KS_EINVAL;
	if ((rc = read_begin(st)) != KS_OK)
		return rc;
	for (;;) {
		if (b->len >= n) {
			*p = ks_buf_head(b);
			st->in.lent = true;
			return KS_OK;
		}
		if (st->in.eof || st->in.err != 0)
			return read_end_status(st);
		if ((rc = ks_stream_wait_input(st)) != KS_OK)
			return rc;
	}
}

int
ks_read_skip(ks_rchan *rc_in, size_t n)
{
	struct ks_stream *st = rstream(rc_in);
	struct ks_buf *b = &st->in.buf;
	size_t take;
	int rc;

	if ((rc = read_begin(st)) != KS_OK)
		return rc;
	while (n > 0) {
		if (b->len > 0) {
			take = KS_MIN(n, b->len);
			in_consume(st, take);
			ks_stream_want_input(st);
			n -= take;
			continue;
		}
		if (st->in.eof || st->in.err != 0)
			return read_end_status(st);
		if ((rc = ks_stream_wait_input(st)) != KS_OK)
			return rc;
	}
	return KS_OK;
}

static int
read_be(ks_rchan *in, uint64_t *v, size_t n)
{
	unsigned char b[8];
	size_t i;
	int rc;

	if ((rc = ks_read_exact(in, b, n)) != KS_OK)
		return rc;
	*v = 0;
	for (i = 0; i < n; i++)
		*v = (*v << 8) | b[i];
	return KS_OK;
}

int
ks_read_u8(ks_rchan *in, uint8_t *v)
{
	uint64_t x = 0;
	int rc = read_be(in, &x, 1);

	*v = (uint8_t)x;
	return rc;
}

int
ks_read_u16(ks_rchan *in, uint16_t *v)
{
	uint64_t x = 0;
	int rc = read_be(in, &x, 2);

	*v = (uint16_t)x;
	return rc;
}

int
ks_read_u32(ks_rchan *in, uint32_t *v)
{
	uint64_t x = 0;
	int rc = read_be(in, &x, 4);

	*v = (uint32_t)x;
	return rc;
}

int
ks_read_u64(ks_rchan *in, uint64_t *v)
{
	return read_be(in, v, 8);
}

size_t
ks_read_buffered(const ks_rchan *in)
{
	const struct ks_stream *st =
		KS_CONTAINER_OF(in, const struct ks_stream, in);

	return in->buf.len - st->pending_consume;
}

/* ---- writes ------------------------------------------------------------- */

int
ks_write(ks_wchan *out, const void *buf, size_t n)
{
	return ks_stream_write(wstream(out), buf, n);
}

int
ks_write_str(ks_wchan *out, const char *s)
{
	return ks_stream_write(wstream(out), s, strlen(s));
}

int
ks_vprintf(ks_wchan *out, const char *fmt, va_list ap)
{
	char small[512], *big;
	va_list ap2;
	int n, rc;

	va_copy(ap2, ap);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	if (n < 0) {
		va_end(ap2);
		return KS_EINVAL;
	}
	if ((size_t)n < sizeof(small)) {
		va_end(ap2);
		return ks_stream_write(wstream(out), small, (size_t)n);
	}
	if ((big = malloc((size_t)n + 1)) == NULL) {
		va_end(ap2);
		return KS_ENOMEM;
	}
	vsnprintf(big, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	rc = ks_stream_write(wstream(out), big, (size_t)n);
	free(big);
	return rc;
}

int
ks_printf(ks_wchan *out, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = ks_vprintf(out, fmt, ap);
	va_end(ap);
	return rc;
}

static int
write_be(ks_wchan *out, uint64_t v, size_t n)
{
	unsigned char b[8];
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = (unsigned char)(v >> (8 * (n - 1 - i)));
	return ks_stream_write(wstream(out), b, n);
}

int
ks_write_u8(ks_wchan *out, uint8_t v)
{
	return write_be(out, v, 1);
}

int
ks_write_u16(ks_wchan *out, uint16_t v)
{
	return write_be(out, v, 2);
}

int
ks_write_u32(ks_wchan *out, uint32_t v)
{
	return write_be(out, v, 4);
}

int
ks_write_u64(ks_wchan *out, uint64_t v)
{
	return write_be(out, v, 8);
}

int
ks_flush(ks_wchan *out)
{
	struct ks_stream *st = wstream(out);

	if (st->closed || out->closed)
		return KS_ECLOSED;
	return ks_stream_flush_wait(st);
}

int
ks_shutdown(ks_wchan *out)
{
	struct ks_stream *st = wstream(out);
	int rc;

	if (st->closed || out->closed)
		return KS_ECLOSED;
	if (out->shut)
		return KS_OK;
	if ((rc = ks_stream_flush_wait(st)) != KS_OK)
		return rc;
	out->shut = true;
	if (st->tp->shutdown_write(st) != 0) {
		out->err = errno;
		if (st->conn != NULL)
			st->conn->err = errno;
		return KS_EIO;
	}
	return KS_OK;
}

int
ks_copy(ks_rchan *from, ks_wchan *to, uint64_t *copied)
{
	return ks_stream_copy(rstream(from), wstream(to), copied);
}

const char *
ks_strerror(int status)
{
	switch (status) {
	case KS_OK:
		return "success";
	case KS_EOF:
		return "end of input";
	case KS_ETOOLONG:
		return "line or datagram too long";
	case KS_ETIMEDOUT:
		return "timed out";
	case KS_EIO:
		return "socket error";
	case KS_ECLOSED:
		return "channel closed";
	case KS_ECANCELED:
		return "canceled (shutting down)";
	case KS_ENOMEM:
		return "out of memory";
	case KS_EINVAL:
		return "invalid argument";
	case KS_EBUSY:
		return "channel busy (another coroutine is waiting on it)";
	case KS_ERESOLVE:
		return "name resolution failed";
	case KS_ETLS:
		return "TLS handshake or certificate verification failed";
	default:
		return "unknown status";
	}
}

/* Plugins resolve the API from the executable at dlopen time.  The core is
 * linked as an archive, so an object none of the daemon's own code calls
 * (the option getters) would be left out; this table keeps it in. */
__attribute__((used)) static const void *const api_keep[] = {
	(const void *)ks_opt_string, (const void *)ks_opt_int,
	(const void *)ks_opt_bool,   (const void *)ks_opt_double,
	(const void *)ks_opt_check_keys, (const void *)ks_opt_int_list,
};
