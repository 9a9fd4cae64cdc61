/*
 * Admission: the checks a new connection passes before anything is
 * allocated for it, in the accept callback (the first of a connection's
 * phases, phase.h):
 *
 *  1. before accept(): max_connections, the daemon's (every listener,
 *     every worker) and the listener's.  Over it the listener stops
 *     accepting: the connection waits in the kernel's backlog and is
 *     served once a slot frees up, not refused.
 *  2. after accept(), with the peer's address: the access list (allow,
 *     deny), max_connections_per_source and connection_rate.  Over them
 *     the connection is closed at once with a reset, before a byte is
 *     read, counted and logged (rate-limited).
 *
 * The counts live in the shared limits zone (zone.h), so they hold
 * across workers.  A listener with proxy_protocol runs step 2 on the
 * address its PROXY header carries (the proxy phase calls
 * ks_admit_check again), its accept-time check being proxy_protocol_from
 * (ks_admit_proxy).
 */
#ifndef KS_ADMIT_H
#define KS_ADMIT_H

#include <stdbool.h>
#include <sys/socket.h>

#include "zone.h"

struct ks_conn;
struct ks_listener;
struct ks_lconf;
struct ks_worker;

/* What a connection holds in the zone until it ends. */
struct ks_admit {
	bool total;                /* counted in the daemon's total */
	struct ks_zclaim listener; /* its listener's count */
	struct ks_zclaim source;   /* its source's count at that listener */
	uint64_t lkey;             /* its listener's key in the zone */
};

#define KS_ADMIT_INIT {false, {-1}, {-1}, 0}

/* Step 1.  0 with the claims in *a, or -1: at max_connections (the
 * listener pauses; logged, rate-limited). */
int ks_admit_reserve(struct ks_listener *l, struct ks_admit *a);

/* Step 2 for the peer of a just accepted socket.  0: go on (the source's
 * claim added to *a); -1: refused (counted, logged rate-limited): the
 * caller resets and closes the socket and releases *a. */
int ks_admit_check(struct ks_worker *wk, const struct ks_lconf *lc,
		   struct ks_admit *a, const struct sockaddr *peer);

/* A proxy_protocol listener's accept-time check: is the peer one of
 * proxy_protocol_from?  0, or -1 (counted, logged rate-limited). */
int ks_admit_proxy(struct ks_worker *wk, const struct ks_lconf *lc,
		   const struct sockaddr *peer);

/* Gives back what *a holds (idempotent). */
void ks_admit_release(struct ks_worker *wk, struct ks_admit *a);

/* The per-source limit of lc in worker wk: its max_connections_per_source,
 * or, unset, the default derived from the worker's descriptor limit. */
unsigned ks_admit_per_source(const struct ks_worker *wk,
			     const struct ks_lconf *lc);

/* A worker's defaults derived from RLIMIT_NOFILE (after the master raised
 * it): the descriptors kept in reserve (accepting pauses while fewer are
 * free) and the per-source default. */
void ks_admit_init_worker(struct ks_worker *wk);

#endif
