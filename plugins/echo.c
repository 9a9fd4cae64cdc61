/*
 * echo: RFC 862.
 *
 * TCP: sends back everything it receives until the peer closes its side.
 * ks_copy moves the bytes inside the core, without waking this coroutine
 * per chunk.
 *
 * UDP: answers each datagram with a copy of its payload, from the address
 * it was sent to.  A truncated datagram (larger than the listener's
 * max_datagram_size) gets no reply.  The datagram guard (dgram_guard.h)
 * refuses datagrams from port 0, from the small-service ports 7, 9, 13,
 * 19, 37, from the listener's own port and from multicast or broadcast
 * sources, so that two such servers cannot be set to bounce datagrams at
 * each other, and bounds the replies per source.
 *
 * Options (UDP only; accepted and ignored on TCP listeners):
 *   refuse_source_ports = [ ... ];  more source ports to refuse
 *   rate_limit = 100;  replies per second per source (IPv4 address or
 *                      IPv6 /64); 0: unlimited
 *   rate_burst = 200;  bucket size; default 2 * rate_limit
 */
#include <ksockd/plugin.h>

#include "dgram_guard.h"

static const char *const echo_keys[] = {NULL};

static int
echo_init(const ks_options *opts, void **state, char *err, size_t errlen)
{
	struct dg_guard *g;

	*state = NULL;
	if (dg_guard_init(&g, "echo", opts, echo_keys, 0, err, errlen) != 0)
		return -1;
	*state = g;
	return 0;
}

static void
echo_fini(void *state)
{
	dg_guard_fini(state);
}

static int
echo_handle(ks_conn *conn, ks_rchan *in, ks_wchan *out, void *state)
{
	uint64_t n = 0;
	int rc;

	(void)state;
	rc = ks_copy(in, out, &n);
	ks_conn_log(conn, KS_LOG_DEBUG, "echoed %llu bytes: %s",
		    (unsigned long long)n, ks_strerror(rc));
	return rc;
}

/* The reply is the request itself: no copy. */
static const void *
echo_reply(void *state, const ks_dgram *d, uint8_t *buf, size_t *n)
{
	(void)state;
	(void)buf;
	*n = d->len;
	return d->data != NULL ? (const void *)d->data : (const void *)"";
}

static int
echo_handle_dgram(ks_conn *conn, ks_dsock *sock, void *state)
{
	return dg_serve(conn, sock, state, echo_reply, NULL);
}

KS_PLUGIN_DEFINE(.name = "echo", .version = "1.1", .init = echo_init,
		 .handle = echo_handle, .fini = echo_fini,
		 .handle_dgram = echo_handle_dgram);
