/*
 * dgram_guard: what keeps the bundled UDP services (echo, discard, daytime,
 * time, chargen) from being a loop partner or a reflector.  Compiled into
 * each of those plugins (and the unit tests); nothing here is exported
 * from a plugin, hence the dg_ prefix instead of the public ks_.
 *
 * One guard per listener (built by the plugin's init, freed by its fini);
 * the listener's datagram handler is a single coroutine, so no locking.
 *
 * A datagram gets a reply only if
 *  1. its source is acceptable (dg_guard_source_ok): not port 0, not one of
 *     the UDP small-service ports 7, 9, 13, 19, 37, not the listener's own
 *     port, not in the `refuse_source_ports` option, and not a multicast,
 *     broadcast or unspecified address.  This is FreeBSD inetd's loop check:
 *     a spoofed datagram "from" another echo or chargen server would
 *     otherwise start a reply ping-pong that never ends;
 *  2. its source still has a token in its bucket (dg_guard_admit):
 *     `rate_limit` replies per second per source, bursts of `rate_burst`.
 *     A source is an IPv4 address or an IPv6 /64 (one host usually owns a
 *     whole /64); IPv4-mapped IPv6 addresses count as IPv4.
 * Refused and rate-limited datagrams are dropped silently (no reply, no
 * per-datagram log); the counters are logged at debug by fini, and rate
 * limit drops as one info line per 10 s at most.
 *
 * Options (the listener's `options` group):
 *   refuse_source_ports = [ 53, 123 ];  more source ports to refuse
 *   rate_limit = 100;   replies per second per source; 0: unlimited
 *   rate_burst = 200;   bucket size; default 2 * rate_limit, at least 1
 */
#ifndef KS_DGRAM_GUARD_H
#define KS_DGRAM_GUARD_H

#include <stdint.h>

#include <ksockd/plugin.h>

/* Sets of the source table and entries per set: the table's size, and so
 * the guard's memory, is fixed whatever the number of (spoofed) sources. */
#define DG_SETS 1024
#define DG_WAYS 4

#define DG_RATE_DEFAULT 100
#define DG_RATE_MAX 1000000
#define DG_PORTS_MAX 256        /* values in refuse_source_ports */
#define DG_REPORT_INTERVAL 10.0 /* seconds between rate limit reports */
#define DG_SCRATCH 1024         /* bytes of reply buffer for dg_reply_fn */

/* dg_guard_init flags. */
#define DG_NO_REPLY                                           \
	1 /* the service never replies (discard): no options, \
	   * no source table, datagrams are only counted */

struct dg_guard;

/* Counters since init. */
struct dg_stats {
	unsigned long long received;  /* datagrams received whole */
	unsigned long long bytes;     /* their payload bytes */
	unsigned long long truncated; /* larger than max_datagram_size */
	unsigned long long refused;   /* failed the source check */
	unsigned long long limited;   /* dropped by the rate limit */
	unsigned long long replied;   /* replies the kernel took */
	unsigned long long send_errors;
	unsigned long long recv_errors;
};

/* Validates the guard's options and the rest of `opts` against `keys` (the
 * plugin's own keys, NULL-terminated; the guard adds its own unless
 * DG_NO_REPLY) and builds a guard for the listener.  `plugin` names it in
 * logs (a static string).  0 and *out set, or -1 with a message in err
 * ("option rate_limit: must be >= 0", "unknown option x", "out of
 * memory"). */
int dg_guard_init(struct dg_guard **out, const char *plugin,
		  const ks_options *opts, const char *const *keys,
		  unsigned flags, char *err, size_t errlen);

/* Logs the counters at debug level and frees g (NULL is fine). */
void dg_guard_fini(struct dg_guard *g);

/* 1 if a datagram from `peer` to `local` (the address it was sent to, with
 * the listener's port; NULL or a family other than IPv4/IPv6: no own-port
 * check) may get a reply, 0 if it must be refused.  Pure: no counters. */
int dg_guard_source_ok(const struct dg_guard *g, const struct sockaddr *peer,
		       const struct sockaddr *local);

/* 1 if `peer` may get one more reply at time `now` (seconds on a monotonic
 * clock, never decreasing; see dg_now), taking a token from its bucket;
 * 0 if it is over its rate (the drop is counted for the report). */
int dg_guard_admit(struct dg_guard *g, const struct sockaddr *peer, double now);

enum dg_verdict {
	DG_PASS = 0,
	DG_REFUSED, /* source check failed */
	DG_LIMITED, /* over the rate limit */
};

/* Both checks for a received datagram, counted in the stats. */
enum dg_verdict dg_guard_check(struct dg_guard *g, const ks_dgram *d,
			       double now);

/* Rate limit reports.  A report window opens at the first drop and closes
 * DG_REPORT_INTERVAL seconds later.  dg_guard_report_wait: seconds until
 * the open window closes (> 0), or 0 when none is open.  dg_guard_report:
 * once the window has closed, stores the datagrams dropped in it and the
 * number of distinct sources they came from, starts afresh and returns 1;
 * otherwise 0. */
double dg_guard_report_wait(const struct dg_guard *g, double now);
int dg_guard_report(struct dg_guard *g, double now, unsigned long long *dropped,
		    unsigned long long *sources);

const struct dg_stats *dg_guard_stats(const struct dg_guard *g);

/* Seconds on CLOCK_MONOTONIC. */
double dg_now(void);

/* A 64-bit seed that differs between listeners and runs (time, address of
 * `p`): for the guard's hash and the plugins' cheap PRNGs. */
uint64_t dg_seed(const void *p);
/* xorshift64*: the next number from *s (never 0 once seeded by dg_seed). */
uint64_t dg_rand(uint64_t *s);

/* Builds the reply to d, which passed the guard: returns a pointer to n
 * bytes (into buf, DG_SCRATCH bytes of the guard's, or d->data), or NULL
 * for no reply. */
typedef const void *(*dg_reply_fn)(void *state, const ks_dgram *d, uint8_t *buf,
				   size_t *n);

/* The datagram handler loop shared by the services: receives, skips
 * truncated datagrams (never answered: a cut request gets no reply),
 * applies the guard, and sends what `fn` builds (fn NULL, or DG_NO_REPLY:
 * only counts).  Socket errors are logged once per streak and slow the loop
 * down instead of spinning.  Returns 0 when the socket is closed (reload,
 * shutdown), or an unexpected status (the daemon restarts the handler). */
int dg_serve(ks_conn *conn, ks_dsock *sock, struct dg_guard *g, dg_reply_fn fn,
	     void *state);

#endif /* KS_DGRAM_GUARD_H */
