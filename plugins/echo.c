/*
 * echo: RFC 862.  Sends back everything it receives until the peer closes
 * its side.  ks_copy moves the bytes inside the core, without waking this
 * coroutine per chunk.  No options.
 */
#include <ksockd/plugin.h>

static const char *const echo_keys[] = {NULL};

static int
echo_init(const ks_options *opts, void **state, char *err, size_t errlen)
{
	*state = NULL;
	if (opts != NULL && ks_opt_check_keys(opts, echo_keys, err, errlen))
		return -1;
	return 0;
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

KS_PLUGIN_DEFINE(.name = "echo", .version = "1.0", .init = echo_init,
		 .handle = echo_handle);
