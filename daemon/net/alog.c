/*
 * The access log, the workers' side: see alog.h.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alog.h"
#include "conf.h"
#include "conn.h"
#include "log.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

_Static_assert(KS_ALOG_LINE <= PIPE_BUF,
	       "a line must go into the pipe in one atomic write");

const char *
ks_close_reason_name(int reason)
{
	static const char *const names[] = {
		[KS_CLOSE_EOF] = "eof",         [KS_CLOSE_TIMEOUT] = "timeout",
		[KS_CLOSE_LIMIT] = "limit",     [KS_CLOSE_ERROR] = "error",
		[KS_CLOSE_SHUTDOWN] = "shutdown",
	};

	if (reason < 0 || (size_t)reason >= KS_ARRAY_SIZE(names))
		return "error";
	return names[reason];
}

/* ---- formatting ----------------------------------------------------------- */

/* A line being written: never more than KS_ALOG_LINE - 3 bytes, so that
 * the closing "}\n" always fits; a field that would not fit is cut. */
struct out {
	char *p;
	size_t len;
};

#define OUT_ROOM (KS_ALOG_LINE - 3)

static void
put(struct out *o, const char *s, size_t n)
{
	if (n > OUT_ROOM - o->len)
		n = OUT_ROOM - o->len;
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void
puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void
putf(struct out *o, const char *fmt, ...) KS_PRINTF(2, 3);

static void
putf(struct out *o, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		put(o, tmp, KS_MIN((size_t)n, sizeof(tmp) - 1));
}

static const char hex[] = "0123456789abcdef";

/* text: printable ASCII but " \ = as is, the rest as \xHH; "-" when
 * absent or empty (so that every field is one word). */
static void
put_text(struct out *o, const char *s)
{
	char e[4] = {'\\', 'x', 0, 0};
	const unsigned char *u = (const unsigned char *)s;

	if (s == NULL || *s == '\0') {
		put(o, "-", 1);
		return;
	}
	for (; *u != '\0' && o->len < OUT_ROOM; u++) {
		if (*u > 0x20 && *u < 0x7f && *u != '"' && *u != '\\' &&
		    *u != '=') {
			put(o, (const char *)u, 1);
			continue;
		}
		e[2] = hex[*u >> 4];
		e[3] = hex[*u & 15];
		if (OUT_ROOM - o->len < sizeof(e))
			break;
		put(o, e, sizeof(e));
	}
}

/* json: a string, or null when absent. */
static void
put_json(struct out *o, const char *s)
{
	char e[6] = {'\\', 'u', '0', '0', 0, 0};
	const unsigned char *u = (const unsigned char *)s;

	if (s == NULL) {
		puts_(o, "null");
		return;
	}
	put(o, "\"", 1);
	/* room for the closing quote */
	for (; *u != '\0' && o->len < OUT_ROOM - 1; u++) {
		if (*u >= 0x20 && *u < 0x7f && *u != '"' && *u != '\\') {
			put(o, (const char *)u, 1);
			continue;
		}
		if (OUT_ROOM - 1 - o->len < sizeof(e))
			break;
		e[4] = hex[*u >> 4];
		e[5] = hex[*u & 15];
		put(o, e, sizeof(e));
	}
	o->len = KS_MIN(o->len, (size_t)OUT_ROOM - 1);
	o->p[o->len++] = '"';
}

static void
put_time(struct out *o, double t)
{
	long long all = (long long)(t * 1000 + 0.5);
	time_t s = (time_t)(all / 1000);
	int ms = (int)(all % 1000);
	struct tm tm;
	char buf[40];

	gmtime_r(&s, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	putf(o, "%s.%03dZ", buf, ms);
}

size_t
ks_alog_format(const struct ks_alog_rec *r, bool json, char *buf)
{
	struct out o = {buf, 0};
	struct {
		const char *key;
		const char *val;
	} strs[] = {
		{"listener", r->listener}, {"peer", r->peer},
		{"local", r->local},
	}, tls[] = {
		{"tls", r->tls}, {"sni", r->sni}, {"alpn", r->alpn},
	};
	size_t i;

	if (json) {
		puts_(&o, "{\"time\":\"");
		put_time(&o, r->time);
		put(&o, "\"", 1);
	} else {
		put_time(&o, r->time);
	}
	for (i = 0; i < KS_ARRAY_SIZE(strs); i++) {
		if (json) {
			putf(&o, ",\"%s\":", strs[i].key);
			put_json(&o, strs[i].val);
		} else {
			putf(&o, " %s=", strs[i].key);
			put_text(&o, strs[i].val);
		}
	}
	putf(&o, json ? ",\"duration\":%.3f,\"bytes_in\":%llu,\"bytes_out\":%llu"
		      : " duration=%.3f bytes_in=%llu bytes_out=%llu",
	     r->duration < 0 ? 0.0 : r->duration, r->bytes_in, r->bytes_out);
	for (i = 0; i < KS_ARRAY_SIZE(tls); i++) {
		if (json) {
			putf(&o, ",\"%s\":", tls[i].key);
			put_json(&o, tls[i].val);
		} else {
			putf(&o, " %s=", tls[i].key);
			put_text(&o, tls[i].val);
		}
	}
	if (json) {
		puts_(&o, ",\"reason\":");
		put_json(&o, r->reason);
		o.p[o.len++] = '}';
	} else {
		puts_(&o, " reason=");
		put_text(&o, r->reason);
	}
	o.p[o.len++] = '\n';
	return o.len;
}

/* ---- buffering and writing ------------------------------------------------ */

/* The pipe has room again. */
static void
wio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ks_alog *a = KS_CONTAINER_OF(w, struct ks_alog, wio);

	(void)revents;
	ev_ref(loop);
	ev_io_stop(loop, &a->wio);
	ks_alog_flush(a);
}

void
ks_alog_init(struct ks_alog *a, struct ks_worker *wk, int fd, bool json)
{
	memset(a, 0, sizeof(*a));
	a->wk = wk;
	a->fd = fd;
	a->json = json;
	ev_io_init(&a->wio, wio_cb, fd, EV_WRITE);
}

static struct ks_lograte drop_log =
	KS_LOGRATE_INIT("access-log lines dropped");

void
ks_alog_conn(struct ks_alog *a, const struct ks_conn *c)
{
	struct ks_alog_rec r = {
		.time = c->ended,
		.listener = c->lc->name,
		.peer = c->peer_str,
		.local = ks_conn_local_str((ks_conn *)c),
		.duration = c->ended - c->started,
		.bytes_in = c->st.nin,
		.bytes_out = c->st.nout,
		.tls = ks_conn_tls_version(c),
		.sni = ks_conn_tls_sni(c),
		.alpn = ks_conn_tls_alpn(c),
		.reason = ks_close_reason_name((int)c->close_reason),
	};
	size_t need;
	char *nb;

	if (a->cap - a->len < KS_ALOG_LINE) {
		need = KS_MAX(a->cap * 2, (size_t)4 * KS_ALOG_LINE);
		if (a->len + KS_ALOG_LINE > KS_ALOG_MAX ||
		    (nb = realloc(a->buf, KS_MIN(need, (size_t)KS_ALOG_MAX))) ==
			    NULL) {
			a->wk->stats->access_log_dropped++;
			if (ks_lograte_allow(&drop_log, KS_LOG_WARN,
					     &a->wk->stats->log_suppressed))
				ks_log(KS_LOG_WARN, "access log: %zu bytes "
				       "wait for the master to write them: "
				       "dropping lines", a->len);
			return;
		}
		a->buf = nb;
		a->cap = KS_MIN(need, (size_t)KS_ALOG_MAX);
	}
	a->len += ks_alog_format(&r, a->json, a->buf + a->len);
}

/* How much of the buffer's head goes in one write: whole lines, at most
 * PIPE_BUF bytes (the kernel writes that much into a pipe at once). */
static size_t
chunk(const char *buf, size_t len)
{
	size_t n = KS_MIN(len, (size_t)PIPE_BUF);

	if (n == len)
		return n;
	while (n > 0 && buf[n - 1] != '\n')
		n--;
	/* (never: a line is at most KS_ALOG_LINE bytes) */
	return n > 0 ? n : KS_MIN(len, (size_t)PIPE_BUF);
}

/* 0: all written; 1: the pipe is full; -1: it is broken (logged). */
static int
write_out(struct ks_alog *a)
{
	size_t off = 0, n;
	ssize_t w;
	int rc = 0;

	while (off < a->len) {
		n = chunk(a->buf + off, a->len - off);
		w = write(a->fd, a->buf + off, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			rc = errno == EAGAIN ? 1 : -1;
			if (rc < 0) {
				ks_log_errno(KS_LOG_ERR, "access log: write "
					     "to the master");
				off = a->len;
			}
			break;
		}
		off += (size_t)w;
	}
	if (off > 0) {
		memmove(a->buf, a->buf + off, a->len - off);
		a->len -= off;
	}
	return rc;
}

void
ks_alog_flush(struct ks_alog *a)
{
	struct ev_loop *loop = a->wk->loop;

	/* Nothing to write, or the pipe is full and wio_cb will say when it
	 * is not (no write per loop iteration just to hear EAGAIN). */
	if (a->len == 0 || ev_is_active(&a->wio))
		return;
	if (write_out(a) == 1) {
		ev_io_start(loop, &a->wio);
		ev_unref(loop); /* not a reason to keep running */
	}
}

void
ks_alog_close(struct ks_alog *a, double wait)
{
	struct pollfd pfd = {.fd = a->fd, .events = POLLOUT};
	double left = wait;

	if (ev_is_active(&a->wio)) {
		ev_ref(a->wk->loop);
		ev_io_stop(a->wk->loop, &a->wio);
	}
	while (a->len > 0 && write_out(a) == 1 && left > 0) {
		(void)poll(&pfd, 1, 100);
		left -= 0.1;
	}
	if (a->len > 0)
		ks_log(KS_LOG_WARN, "access log: %zu bytes not written at exit",
		       a->len);
	free(a->buf);
	a->buf = NULL;
	a->len = a->cap = 0;
	close(a->fd);
	a->fd = -1;
}
