/*
 * discard: RFC 863.  Never writes.
 *
 * TCP: reads and throws away everything until the peer closes its side.
 *
 * UDP: receives and counts datagrams (logged at debug level when the
 * listener's configuration is released); nothing is ever sent, so there is
 * no loop to protect against and nothing to rate-limit.
 *
 * No options.
 */
#include <ksockd/plugin.h>

#include "dgram_guard.h"

static const char *const discard_keys[] = {NULL};

static int
discard_init(const ks_options *opts, void **state, char *err, size_t errlen)
{
	struct dg_guard *g;

	*state = NULL;
	if (dg_guard_init(&g, "discard", opts, discard_keys, DG_NO_REPLY, err,
			  errlen) != 0)
		return -1;
	*state = g;
	return 0;
}

static void
discard_fini(void *state)
{
	dg_guard_fini(state);
}

static int
discard_handle(ks_conn *conn, ks_rchan *in, ks_wchan *out, void *state)
{
	char buf[4096];
	unsigned long long total = 0;
	size_t got;
	int rc;

	(void)out;
	(void)state;
	/* ks_read_some suspends until input is there, so this never spins. */
	while ((rc = ks_read_some(in, buf, sizeof(buf), &got)) == KS_OK)
		total += got;
	ks_conn_log(conn, KS_LOG_DEBUG, "discarded %llu bytes: %s", total,
		    ks_strerror(rc));
	return rc == KS_EOF ? 0 : rc;
}

static int
discard_handle_dgram(ks_conn *conn, ks_dsock *sock, void *state)
{
	return dg_serve(conn, sock, state, NULL, NULL);
}

KS_PLUGIN_DEFINE(.name = "discard", .version = "1.1", .init = discard_init,
		 .handle = discard_handle, .fini = discard_fini,
		 .handle_dgram = discard_handle_dgram);
