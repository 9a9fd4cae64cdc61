/*
 * Connection phases: what runs on an accepted stream connection, in order,
 * in its coroutine, up to and including the handler, in the manner of
 * nginx's stream phases.  A listener's list is built once, when its
 * configuration is loaded (ks_phases_build), from what it is configured
 * with:
 *
 *   proxy    the PROXY protocol header (proxy_protocol = true)
 *   tls      the TLS handshake (a `tls` group)
 *   handler  the plugin's handle()
 *
 * The checks that need no coroutine (the access list and the connection
 * limits) run earlier still, in the accept callback, before a connection
 * exists (zone.h).  Phases marked `handshake` share one deadline,
 * handshake_timeout from the start of the first of them.
 */
#ifndef KS_PHASE_H
#define KS_PHASE_H

#include <stdbool.h>

struct ks_conn;
struct ks_lconf;

struct ks_phase {
	const char *name;
	bool handshake; /* bounded by the connection's handshake deadline */
	/* Coroutine context.  0: go on to the next phase; -1: the
	 * connection ends (the phase has logged and counted why). */
	int (*run)(struct ks_conn *c);
};

#define KS_PHASES_MAX 4

/* Fills lc->phases (NULL-terminated) for the listener's configuration. */
void ks_phases_build(struct ks_lconf *lc);

/* Coroutine context: runs c's listener's phases until one ends it or the
 * handler returns. */
void ks_phases_run(struct ks_conn *c);

#endif
