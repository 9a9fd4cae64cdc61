/* A plugin with only a datagram hook: the loader must refuse it on a
 * stream listener and accept it on a udp one. */
#include <ksockd/plugin.h>

static int
dgramonly_handle_dgram(ks_conn *conn, ks_dsock *sock, void *state)
{
	ks_dgram d;

	(void)conn;
	(void)state;
	while (ks_dgram_recv(sock, &d, 0) == KS_OK)
		(void)ks_dgram_reply(sock, &d, d.data, d.len);
	return 0;
}

KS_PLUGIN_DEFINE(.name = "dgramonly", .version = "1.0",
		 .handle_dgram = dgramonly_handle_dgram);
