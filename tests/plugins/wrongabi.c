/* A plugin built for a future ABI: the loader must refuse it.  The
 * descriptor is spelled out by hand because KS_PLUGIN_DEFINE always stamps
 * the current ABI. */
#include <ksockd/plugin.h>

/* Calls nothing from ksockd, so that dlopen itself succeeds and the ABI
 * check is what fails. */
static int
wrongabi_handle(ks_conn *conn, ks_rchan *in, ks_wchan *out, void *state)
{
	return 0;
}

KS_API extern const ks_plugin ks_plugin_descriptor;
const ks_plugin ks_plugin_descriptor = {
	.abi = KS_PLUGIN_ABI + 100,
	.size = sizeof(ks_plugin),
	.name = "wrongabi",
	.version = "0",
	.handle = wrongabi_handle,
};
