/* Rejects its options unless `accept = true`, to test how a plugin's
 * init() error reaches the user. */
#include <stdio.h>

#include <ksockd/plugin.h>

static int
failinit_init(const ks_options *opts, void **state, char *err, size_t errlen)
{
	static const char *const known[] = {"accept", NULL};
	int accept;

	if (ks_opt_check_keys(opts, known, err, errlen) != KS_OK ||
	    ks_opt_bool(opts, "accept", 0, &accept, err, errlen) != KS_OK)
		return -1;
	if (!accept) {
		snprintf(err, errlen, "option accept must be true");
		return -1;
	}
	*state = NULL;
	return 0;
}

static int
failinit_handle(ks_conn *conn, ks_rchan *in, ks_wchan *out, void *state)
{
	return ks_write_str(out, "failinit\n");
}

KS_PLUGIN_DEFINE(.name = "failinit", .version = "0", .init = failinit_init,
		 .handle = failinit_handle);
