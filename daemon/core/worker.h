/*
 * A worker: one libev loop with its scheduler, buffer pool, connections and
 * counters.  Everything mutable lives here, not in globals.  In the daemon
 * each worker process runs one (see proc/worker_proc.c); the client tool
 * and the unit tests run one in-process.  The counters are plain sums,
 * kept where `stats` points: the worker's own struct, or the worker
 * process's slot of the scoreboard, where the master reads them (and
 * keeps them when the worker dies).
 */
#ifndef KS_WORKER_H
#define KS_WORKER_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "coro.h"
#include "zone.h"
#include "util.h"

struct ks_conn;
struct ks_listener;
struct ks_resolver;
struct ks_alog;
struct ks_metrics_src;
struct ks_lconf;

/*
 * Counters.  One struct for two uses: the worker's (wk->stats, every
 * connection of the process) and each listener's (c->ls, that listener's
 * share, in the scoreboard: see scoreboard.h), counted in the same place
 * by KS_COUNT.  Only uint64_t members: the scoreboard adds them up as an
 * array.  Every member from `active` on is a gauge (a value now, not a
 * sum), which a worker gone takes with it.  Each member is in the
 * metrics table of proc/metrics.c, which names it for Prometheus.
 */
struct ks_stats {
	uint64_t accepted;       /* connections accepted */
	uint64_t closed;         /* connections closed */
	uint64_t closed_eof;     /* ... the handler returned */
	uint64_t closed_timeout; /* ... a timeout (the four below) */
	uint64_t closed_limit;   /* ... a limit (buffer memory) */
	uint64_t closed_error;   /* ... a socket, PROXY or TLS error */
	uint64_t closed_shutdown; /* ... the worker stopped */
	uint64_t accept_errors;  /* accept() failures, fd exhaustion included */
	uint64_t timeouts;       /* idle timeouts fired */
	uint64_t handshake_timeouts; /* PROXY header or TLS handshake too slow */
	uint64_t write_timeouts; /* closed: the peer did not read our output */
	uint64_t session_timeouts; /* closed at session_timeout */
	uint64_t lines_too_long; /* KS_ETOOLONG results */
	uint64_t bytes_in, bytes_out;
	uint64_t handler_returns; /* handlers that returned */
	uint64_t handler_errors; /* ... with a non-zero status */
	uint64_t coro_failures;  /* stacks that could not be allocated */
	uint64_t hibernations;   /* idle handler stacks paged out */
	uint64_t tls_handshakes; /* TLS handshakes completed */
	uint64_t tls_failures;   /* TLS handshakes that failed: */
	uint64_t tls_fail_timeout;  /* ... at handshake_timeout */
	uint64_t tls_fail_eof;      /* ... the peer closed or reset */
	uint64_t tls_fail_alert;    /* ... the peer sent a fatal alert */
	uint64_t tls_fail_protocol; /* ... no common version or cipher, bad
				     * records, not TLS at all */
	uint64_t tls_fail_cert;     /* ... the client certificate */
	uint64_t datagrams_in, datagrams_out;
	uint64_t datagrams_truncated; /* larger than max_datagram_size */
	uint64_t datagram_errors;     /* failed recvmmsg/sendmsg */
	uint64_t datagrams_dropped;   /* to a broadcast address, not wanted */
	uint64_t datagrams_rate_limited; /* over max_datagram_rate */
	uint64_t refused_acl;    /* closed at once: the access list */
	uint64_t refused_source; /* closed at once: max_connections_per_source */
	uint64_t refused_rate;   /* closed at once: connection_rate */
	uint64_t limit_waits;    /* accepting paused at max_connections */
	uint64_t fd_waits;       /* accepting paused: descriptors ran low */
	uint64_t log_suppressed; /* rate-limited log messages not written */
	uint64_t proxy_errors;   /* PROXY headers bad, partial, untrusted */
	uint64_t buffer_refused; /* buffer memory refused (max_buffer_memory) */
	uint64_t access_log_dropped; /* access-log lines lost (log.h) */
	/* gauges */
	uint64_t active; /* connections (and udp sessions) open now */
	uint64_t buffer_bytes; /* connection buffer memory now (pool.used) */
	uint64_t resident_bytes; /* the process's resident memory (daemon) */
};

#define KS_STATS_N (sizeof(struct ks_stats) / sizeof(uint64_t))
#define KS_STATS_GAUGE0 (offsetof(struct ks_stats, active) / sizeof(uint64_t))

/* Counts n on the worker and on a listener's block. */
#define KS_COUNT(wk, ls, field, n)                                             \
	do {                                                                   \
		(wk)->stats->field += (n);                                     \
		(ls)->field += (n);                                            \
	} while (0)
/* A member's index, for code that picks the counter at run time. */
#define KS_STAT(field) (offsetof(struct ks_stats, field) / sizeof(uint64_t))
static inline void
ks_stats_bump(struct ks_stats *s, size_t idx)
{
	((uint64_t *)(void *)s)[idx]++;
}
/* The same for a connection (c->ls: its listener's block). */
#define KS_CCOUNT(c, field) KS_COUNT((c)->wk, (c)->ls, field, 1)

struct ks_worker {
	struct ev_loop *loop;
	struct ks_sched sched;
	struct ks_bufpool pool;
	ev_prepare prepare; /* runs queued coroutines, reaps closed conns */
	ev_idle idle;       /* active while yielded coroutines wait: the
			     * next poll must not block */
	ev_timer sweep;     /* once a second: hibernate idle handlers */
	struct ks_conn *conns;   /* live connections */
	struct ks_conn *zombies; /* closed, to be freed at the next prepare */
	unsigned long nconns;
	struct ks_stats *stats; /* &own_stats unless pointed elsewhere */
	struct ks_stats own_stats;
	/* The listeners' blocks: lstats[lc->stat_id] (the worker process's
	 * row of the scoreboard); NULL outside the daemon, where every
	 * listener counts into own_lstats. */
	struct ks_stats *lstats;
	struct ks_stats own_lstats;
	/* The access log (log.h's ks_alog), NULL when there is none, and
	 * what the metrics are read from (proc/metrics.c), NULL outside the
	 * daemon. */
	struct ks_alog *alog;
	const struct ks_metrics_src *metrics;
	int statm_fd;       /* /proc/self/statm, for resident_bytes; -1 */
	/* Draining: no new connections or udp sessions; what runs finishes.
	 * Stopping (the daemon stops, as opposed to a reload retiring this
	 * worker): udp sessions lose their socket at once too. */
	bool draining;
	bool stopping;
	/* Called before a poll while no connection is open (the server uses
	 * it to finish a graceful stop); NULL when not wanted. */
	void (*on_idle)(struct ks_worker *wk);
	void *udata;
	/* excl.c: listening sockets to make exclusive before the next poll,
	 * and libev's epoll descriptor once found */
	int *excl_fds;
	size_t nexcl;
	int excl_epfd;
	/* resolver.c's pool of lookup threads; NULL until the first lookup
	 * of a name (a worker that never resolves one has no threads) */
	struct ks_resolver *resolver;
	/* Accepting (listener.c, admit.c): the listeners attached, the
	 * shared limits zone, the descriptors kept in reserve (an accepted
	 * fd at or above fd_reserve_from means few are left: every listener
	 * pauses until the gate finds room again), listeners paused at
	 * max_connections (resumed when a connection ends). */
	struct ks_list listeners;
	struct ks_zone_user zu;
	int fd_reserve;
	int fd_reserve_from;
	unsigned auto_per_source;
	bool fd_low;   /* in the reserve: listeners pause, fd_reserve ones not */
	bool fd_out;   /* none left at all (EMFILE): every listener pauses */
	ev_timer accept_gate;
	unsigned nlimit_paused;
};

/* The counters of listener lc in this worker. */
struct ks_stats *ks_worker_lstats(struct ks_worker *wk,
				  const struct ks_lconf *lc);

/* Counts member idx (KS_STAT) on the worker and on listener lc. */
void ks_worker_count(struct ks_worker *wk, const struct ks_lconf *lc,
		     size_t idx);

int ks_worker_init(struct ks_worker *wk, struct ev_loop *loop,
		   size_t stack_size);
/* Aborts what is left (connections, queued coroutines), stops the
 * resolver's threads, frees the pools. */
void ks_worker_destroy(struct ks_worker *wk);

void ks_worker_add_conn(struct ks_worker *wk, struct ks_conn *c);
/* Unlinks c from the live list and schedules it for freeing. */
void ks_worker_retire_conn(struct ks_worker *wk, struct ks_conn *c);

#endif
