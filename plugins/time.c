/*
 * time: RFC 868.  The seconds since 1900-01-01 00:00 UTC as a 32-bit
 * big-endian number.  The count wraps modulo 2^32 (first in 2036), as
 * clients of the protocol expect.
 *
 * TCP: sends the 4 bytes, then closes.
 *
 * UDP: answers each datagram (RFC 868 asks for an empty one; any content
 * is accepted) with one 4-byte datagram.  A truncated datagram gets no
 * reply.  The datagram guard (dgram_guard.h) refuses datagrams from port
 * 0, from the small-service ports 7, 9, 13, 19, 37, from the listener's
 * own port and from multicast or broadcast sources, and bounds the replies
 * per source.
 *
 * Options (UDP only; accepted and ignored on TCP listeners):
 *   refuse_source_ports = [ ... ];  more source ports to refuse
 *   rate_limit = 100;  replies per second per source (IPv4 address or
 *                      IPv6 /64); 0: unlimited
 *   rate_burst = 200;  bucket size; default 2 * rate_limit
 */
#include <time.h>

#include <ksockd/plugin.h>

#include "dgram_guard.h"

/* Seconds from 1900-01-01 to 1970-01-01: 70 years, 17 of them leap. */
#define TIME_EPOCH_OFFSET 2208988800LL

static const char *const time_keys[] = {NULL};

static int
time_init(const ks_options *opts, void **state, char *err, size_t errlen)
{
	struct dg_guard *g;

	*state = NULL;
	if (dg_guard_init(&g, "time", opts, time_keys, 0, err, errlen) != 0)
		return -1;
	*state = g;
	return 0;
}

static void
time_fini(void *state)
{
	dg_guard_fini(state);
}

/* Unsigned conversion is modulo 2^32, which is the wrap we want. */
static uint32_t
time_now(void)
{
	return (uint32_t)((long long)time(NULL) + TIME_EPOCH_OFFSET);
}

static int
time_handle(ks_conn *conn, ks_rchan *in, ks_wchan *out, void *state)
{
	(void)conn;
	(void)in;
	(void)state;
	return ks_write_u32(out, time_now());
}

static const void *
time_reply(void *state, const ks_dgram *d, uint8_t *buf, size_t *n)
{
	uint32_t t = time_now();

	(void)state;
	(void)d;
	buf[0] = (uint8_t)(t >> 24);
	buf[1] = (uint8_t)(t >> 16);
	buf[2] = (uint8_t)(t >> 8);
	buf[3] = (uint8_t)t;
	*n = 4;
	return buf;
}

static int
time_handle_dgram(ks_conn *conn, ks_dsock *sock, void *state)
{
	return dg_serve(conn, sock, state, time_reply, NULL);
}

KS_PLUGIN_DEFINE(.name = "time", .version = "1.1", .init = time_init,
		 .handle = time_handle, .fini = time_fini,
		 .handle_dgram = time_handle_dgram);
