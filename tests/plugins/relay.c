/*
 * relay: a test plugin for the outbound API (ks_connect, ks_tls_upgrade).
 * Every client connection is relayed to host:port, optionally over TLS,
 * so tests/integration/test_outbound.py can drive both directions through
 * the real daemon.
 *
 * Dialogue: first the plugin connects and reports one line,
 *   ERROR connect: <status text> errno=<N>   (and the connection ends)
 *   ERROR tls: <status text>                 (and the connection ends)
 *   CONNECTED alpn=<protocol or ->
 * then bytes flow both ways until each side has reached EOF.  An EOF from
 * either side is passed on as a half-close to the other.
 *
 * Options: host, port (strings, required), tls (bool, default false),
 * server_name, ca_file, cert_file, key_file, alpn (strings), insecure (bool),
 * timeout (double, default 5: the connect timeout in seconds).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ksockd/plugin.h>

struct relay_conf {
	const char *host;
	const char *port;
	int tls;
	double timeout;
	ks_tls_client_opts tls_opts;
};

/* Shared by the handler and the coroutine copying peer -> client.  On the
 * heap (never on a coroutine stack); whichever of the two finishes second
 * closes the peer and frees it. */
struct relay_link {
	ks_peer *peer;
	ks_wchan *client_out;
	int refs;
};

static int
relay_init(const ks_options *opts, void **state, char *err, size_t errlen)
{
	static const char *const known[] = {
		"host",	    "port",	 "tls",	     "server_name", "ca_file",
		"cert_file", "key_file", "alpn",    "insecure",    "timeout",
		NULL};
	struct relay_conf *rc;
	ks_tls_client_opts *t;

	if (ks_opt_check_keys(opts, known, err, errlen) != KS_OK)
		return -1;
	rc = calloc(1, sizeof(*rc));
	if (rc == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	t = &rc->tls_opts;
	if (ks_opt_string(opts, "host", NULL, &rc->host, err, errlen) ||
	    ks_opt_string(opts, "port", NULL, &rc->port, err, errlen) ||
	    ks_opt_bool(opts, "tls", 0, &rc->tls, err, errlen) ||
	    ks_opt_double(opts, "timeout", 5.0, &rc->timeout, err, errlen) ||
	    ks_opt_string(opts, "server_name", NULL, &t->server_name, err,
			  errlen) ||
	    ks_opt_string(opts, "ca_file", NULL, &t->ca_file, err, errlen) ||
	    ks_opt_string(opts, "cert_file", NULL, &t->cert_file, err,
			  errlen) ||
	    ks_opt_string(opts, "key_file", NULL, &t->key_file, err, errlen) ||
	    ks_opt_string(opts, "alpn", NULL, &t->alpn, err, errlen) ||
	    ks_opt_bool(opts, "insecure", 0, &t->insecure, err, errlen))
		goto fail;
	if (rc->host == NULL || rc->port == NULL) {
		snprintf(err, errlen, "options host and port are required");
		goto fail;
	}
	*state = rc;
	return 0;
fail:
	free(rc);
	return -1;
}

static void
relay_fini(void *state)
{
	free(state);
}

static void
link_release(struct relay_link *l)
{
	if (--l->refs > 0)
		return;
	ks_peer_close(l->peer);
	free(l);
}

/* peer -> client; an EOF from the peer becomes a half-close to the client,
 * an error (reset, TLS alert) closes the client connection, as a proxy
 * would: the client must not wait for a peer that is gone. */
static void
relay_back(ks_conn *conn, void *arg)
{
	struct relay_link *l = arg;
	uint64_t n = 0;
	int rc;

	rc = ks_copy(ks_peer_in(l->peer), l->client_out, &n);
	ks_conn_log(conn, KS_LOG_DEBUG, "relay: peer->client %llu bytes: %s",
		    (unsigned long long)n, ks_strerror(rc));
	if (rc == KS_OK)
		(void)ks_shutdown(l->client_out);
	else
		(void)ks_close(conn);
	link_release(l);
}

static int
relay_handle(ks_conn *conn, ks_rchan *in, ks_wchan *out, void *state)
{
	const struct relay_conf *cf = state;
	struct relay_link *l;
	ks_peer *p;
	const char *alpn;
	uint64_t n = 0;
	int rc, wrc;

	rc = ks_connect(conn, cf->host, cf->port, cf->timeout, &p);
	if (rc != KS_OK) {
		/* No peer to ask on failure: the errno is the connection's. */
		ks_printf(out, "ERROR connect: %s errno=%d\n", ks_strerror(rc),
			  ks_conn_errno(conn));
		return rc;
	}
	if (cf->tls) {
		rc = ks_tls_upgrade(p, &cf->tls_opts);
		if (rc != KS_OK) {
			ks_printf(out, "ERROR tls: %s\n", ks_strerror(rc));
			ks_peer_close(p);
			return rc;
		}
	}
	alpn = ks_peer_tls_alpn(p);
	rc = ks_printf(out, "CONNECTED alpn=%s\n", alpn != NULL ? alpn : "-");
	if (rc == KS_OK)
		rc = ks_flush(out);
	if (rc != KS_OK) {
		ks_peer_close(p);
		return rc;
	}

	l = malloc(sizeof(*l));
	if (l == NULL) {
		ks_peer_close(p);
		return KS_ENOMEM;
	}
	l->peer = p;
	l->client_out = out;
	l->refs = 2;
	rc = ks_spawn(conn, relay_back, l);
	if (rc != KS_OK) {
		free(l);
		ks_peer_close(p);
		return rc;
	}

	/* client -> peer; the client's EOF becomes a half-close to the peer.
	 * The connection lives on until relay_back returns as well. */
	rc = ks_copy(in, ks_peer_out(p), &n);
	ks_conn_log(conn, KS_LOG_DEBUG, "relay: client->peer %llu bytes: %s",
		    (unsigned long long)n, ks_strerror(rc));
	/* Even after an error: the peer's EOF is what ends relay_back. */
	wrc = ks_shutdown(ks_peer_out(p));
	if (rc == KS_OK)
		rc = wrc;
	link_release(l);
	return rc;
}

KS_PLUGIN_DEFINE(.name = "relay", .version = "1.0", .init = relay_init,
		 .handle = relay_handle, .fini = relay_fini);
