/*
 * chargen: RFC 864.  Lines of 72 printable ASCII characters, each line
 * starting one character further along the 95-character ring (' ' .. '~')
 * and ended with CRLF.
 *
 * TCP: sends lines until the peer goes away.  Input is ignored (never
 * read).  Output goes out in batches of about 16 KiB (one pool block):
 * after each batch the handler flushes, which suspends while the peer is
 * slow (a reader that stops altogether runs into idle_timeout) and keeps
 * the output buffer at one block.  A reader fast enough that no flush ever
 * waits cannot hog the loop: the core lets other connections run after
 * every megabyte sent without waiting.
 *
 * UDP: answers each datagram (whatever its content) with one datagram of a
 * random length from 0 to 512 bytes: the same lines, cut where the length
 * ends.  Each reply's first line starts one character further along the
 * ring than the previous reply's.  A truncated datagram gets no reply.
 * Since a reply can be far larger than the request, the datagram guard
 * (dgram_guard.h) matters most here: it refuses datagrams from port 0,
 * from the small-service ports 7, 9, 13, 19, 37 (chargen against echo is
 * the classic endless loop), from the listener's own port and from
 * multicast or broadcast sources, and bounds the replies per source.
 *
 * Options (UDP only; accepted and ignored on TCP listeners):
 *   refuse_source_ports = [ ... ];  more source ports to refuse
 *   rate_limit = 100;  replies per second per source (IPv4 address or
 *                      IPv6 /64); 0: unlimited
 *   rate_burst = 200;  bucket size; default 2 * rate_limit
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ksockd/plugin.h>

#include "dgram_guard.h"

#define CHARGEN_FIRST 32
#define CHARGEN_COUNT 95 /* printable characters 32 .. 126 */
#define CHARGEN_WIDTH 72
#define CHARGEN_LINE (CHARGEN_WIDTH + 2)

/* Lines per batch: 221 * 74 bytes fit one 16 KiB buffer block. */
#define CHARGEN_BATCH 221

/* RFC 864: a UDP reply holds a random number of characters, 0 to 512. */
#define CHARGEN_DGRAM_MAX 512

struct chargen {
	struct dg_guard *guard;
	uint64_t rng;   /* xorshift state for the UDP reply lengths */
	unsigned start; /* ring position of the next UDP reply */
	/* The ring plus its first 72 characters again: every line is one
	 * contiguous slice.  Read-only after init. */
	char ring[CHARGEN_COUNT + CHARGEN_WIDTH];
};

static const char *const chargen_keys[] = {NULL};

static int
chargen_init(const ks_options *opts, void **state, char *err, size_t errlen)
{
	struct chargen *s;
	size_t i;

	*state = NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (dg_guard_init(&s->guard, "chargen", opts, chargen_keys, 0, err,
			  errlen) != 0) {
		free(s);
		return -1;
	}
	for (i = 0; i < sizeof(s->ring); i++)
		s->ring[i] = (char)(CHARGEN_FIRST + i % CHARGEN_COUNT);
	s->rng = dg_seed(s);
	*state = s;
	return 0;
}

static void
chargen_fini(void *state)
{
	struct chargen *s = state;

	if (s == NULL)
		return;
	dg_guard_fini(s->guard);
	free(s);
}

/* Line `start` of the pattern (start < CHARGEN_COUNT), CRLF included. */
static void
chargen_line(const struct chargen *s, char *line, unsigned start)
{
	memcpy(line, s->ring + start, CHARGEN_WIDTH);
	line[CHARGEN_WIDTH] = '\r';
	line[CHARGEN_WIDTH + 1] = '\n';
}

static int
chargen_handle(ks_conn *conn, ks_rchan *in, ks_wchan *out, void *state)
{
	const struct chargen *s = state;
	char line[CHARGEN_LINE];
	unsigned long long lines = 0;
	unsigned start = 0;
	int rc;

	(void)in; /* input is ignored: never read */
	for (;;) {
		chargen_line(s, line, start);
		if ((rc = ks_write(out, line, sizeof(line))) != KS_OK)
			break;
		start = (start + 1) % CHARGEN_COUNT;
		if (++lines % CHARGEN_BATCH != 0)
			continue;
		if ((rc = ks_flush(out)) != KS_OK)
			break;
	}
	ks_conn_log(conn, KS_LOG_DEBUG, "sent %llu lines: %s", lines,
		    ks_strerror(rc));
	return rc == KS_EIO ? 0 : rc; /* the peer leaving is the normal end */
}

static const void *
chargen_reply(void *state, const ks_dgram *d, uint8_t *buf, size_t *n)
{
	struct chargen *s = state;
	size_t len, off;
	unsigned start = s->start;
	char line[CHARGEN_LINE];

	(void)d;
	/* 513 values: the modulo bias is far below anything observable. */
	len = (size_t)(dg_rand(&s->rng) % (CHARGEN_DGRAM_MAX + 1));
	for (off = 0; off < len; off += CHARGEN_LINE) {
		chargen_line(s, line, start);
		memcpy(buf + off, line,
		       len - off < CHARGEN_LINE ? len - off : CHARGEN_LINE);
		start = (start + 1) % CHARGEN_COUNT;
	}
	s->start = (s->start + 1) % CHARGEN_COUNT;
	*n = len;
	return buf;
}

static int
chargen_handle_dgram(ks_conn *conn, ks_dsock *sock, void *state)
{
	struct chargen *s = state;

	return dg_serve(conn, sock, s->guard, chargen_reply, s);
}

KS_PLUGIN_DEFINE(.name = "chargen", .version = "1.1", .init = chargen_init,
		 .handle = chargen_handle, .fini = chargen_fini,
		 .handle_dgram = chargen_handle_dgram);
