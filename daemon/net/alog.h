/*
 * The access log (daemon.access_log): one line per connection when it
 * closes.  A worker formats the line into a buffer of its own and, once
 * per loop iteration, writes what it holds into a pipe whose other end the
 * master reads and appends to the file (proc/alsink.c).  So a slow or
 * stalled disk stalls the master's writes, never a worker's loop; the
 * master also owns the file, which it can reopen on SIGUSR1 whatever user
 * the workers run as.  Each write into the pipe is whole lines of at most
 * PIPE_BUF bytes, which the kernel never interleaves with another
 * worker's.  When the pipe stays full, the buffer grows to KS_ALOG_MAX;
 * lines beyond that are dropped and counted (access_log_dropped).
 *
 * The formats (ksockd.conf(5) documents them; keep them stable):
 *
 * text, one line, fields separated by one space, the time first and then
 * key=value pairs in this order; a value that is absent is "-", bytes
 * outside 0x21..0x7e and the characters " \ = are written as \xHH:
 *   2026-12-02T15:04:05.123Z listener=echo peer=192.0.2.7:40312
 *   local=192.0.2.1:7 duration=0.012 bytes_in=120 bytes_out=120
 *   tls=TLS1.3 sni=example.com alpn=h2 reason=eof
 *
 * json, one object per line, the same keys ("time" for the first), the
 * numbers as numbers, absent values null, bytes outside 0x20..0x7e and
 * " \ as JSON escapes (\u00HH).
 */
#ifndef KS_ALOG_H
#define KS_ALOG_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

struct ks_conn;
struct ks_worker;

#define KS_ALOG_MAX (1u << 20) /* bytes a worker holds for a full pipe */
#define KS_ALOG_LINE 4096      /* the longest line (fields are cut) */

struct ks_alog {
	struct ks_worker *wk;
	int fd;         /* the pipe's write end, non-blocking */
	bool json;
	char *buf;      /* lines not written yet */
	size_t len, cap;
	ev_io wio;      /* the pipe was full: wait for room */
};

/* The line's fields, as ks_alog_format reads them (a struct, so that the
 * unit tests and the fuzz target format lines without a connection). */
struct ks_alog_rec {
	double time;            /* when it closed, seconds since the epoch */
	const char *listener;
	const char *peer, *local;
	double duration;        /* seconds */
	unsigned long long bytes_in, bytes_out;
	const char *tls, *sni, *alpn; /* NULL: absent */
	const char *reason;     /* eof, timeout, limit, error, shutdown */
};

/* Formats r as one line ending in '\n' into buf (at least KS_ALOG_LINE
 * bytes); returns its length. */
size_t ks_alog_format(const struct ks_alog_rec *r, bool json, char *buf);

/* fd: the pipe's write end (the alog takes it over). */
void ks_alog_init(struct ks_alog *a, struct ks_worker *wk, int fd, bool json);
/* The line of a connection that closed. */
void ks_alog_conn(struct ks_alog *a, const struct ks_conn *c);
/* Writes what the pipe takes now. */
void ks_alog_flush(struct ks_alog *a);
/* The worker exits: writes what is left, waiting at most `wait` seconds
 * for the master to make room, then frees everything. */
void ks_alog_close(struct ks_alog *a, double wait);

/* The name of a close reason (enum ks_close_reason). */
const char *ks_close_reason_name(int reason);

#endif
