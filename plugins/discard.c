/*
 * discard: RFC 863.  Reads and throws away everything until the peer
 * closes its side; never writes.  No options.
 */
#include <ksockd/plugin.h>

static const char *const discard_keys[] = {NULL};

static int
discard_init(const ks_options *opts, void **state, char *err, size_t errlen)
{
	*state = NULL;
	if (opts != NULL && ks_opt_check_keys(opts, discard_keys, err, errlen))
		return -1;
	return 0;
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

KS_PLUGIN_DEFINE(.name = "discard", .version = "1.0", .init = discard_init,
		 .handle = discard_handle);
