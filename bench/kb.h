/*
 * ksock-bench: declarations shared by the load generator's files.
 *
 *   ksock-bench.c  command line, run control (timers), report
 *   kb-conn.c      stream connections (TCP, Unix, TLS): pingpong, stream,
 *                  connect, handshake, idle
 *   kb-udp.c       udp mode
 *   kb-hist.c      log-linear latency histogram
 *   kb-proc.c      server CPU time and RSS from /proc
 *
 * Everything runs on one libev loop in one thread; the globals below are
 * owned by ksock-bench.c and read by the modes.
 */
#ifndef KB_H
#define KB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include <ev.h>
#include <gnutls/gnutls.h>

#define KB_CONTAINER_OF(ptr, type, member)                                     \
	((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#define KB_PRINTF(f, a) __attribute__((format(printf, f, a)))

enum kb_mode {
	KB_PINGPONG,
	KB_STREAM,
	KB_CONNECT,
	KB_HANDSHAKE,
	KB_UDP,
	KB_IDLE,
};

/* The command line; read-only once the run has started. */
struct kb_opts {
	enum kb_mode mode;
	const char *host;
	const char *port;
	const char *unix_path; /* non-NULL: AF_UNIX stream socket */
	unsigned conns;
	double duration;
	double warmup;
	size_t size;
	unsigned pipeline;
	bool greeting;
	bool tls;
	bool resume;
	bool exchange; /* handshake mode: one line after the handshake */
	bool json;
	bool quiet;
	const char *sni;
	const char *ca;
	const char *alpn;
	const char *priority;
	pid_t *pids;
	unsigned npids;
};

/* ---- latency histogram (kb-hist.c) -------------------------------------
 * Values in nanoseconds.  Below 2^KB_HIST_SUB_BITS ns every value has its
 * own bucket; above, each power of two is split into 2^(SUB_BITS-1) equal
 * buckets, so a bucket is at most 1/64 (1.6 %) of its value wide.  Values
 * are clamped to KB_HIST_MAX_NS (10 s): 1856 buckets, 15 KiB. */
#define KB_HIST_SUB_BITS 7
#define KB_HIST_MAX_NS 10000000000ull
/* 10 s < 2^34 ns: the top exponent is 33 - (SUB_BITS - 1). */
#define KB_HIST_BUCKETS ((34 - KB_HIST_SUB_BITS + 2) << (KB_HIST_SUB_BITS - 1))

struct kb_hist {
	uint64_t count;
	uint64_t n[KB_HIST_BUCKETS];
};

static inline unsigned
kb_hist_index(uint64_t ns)
{
	unsigned e;

	if (ns < (1u << KB_HIST_SUB_BITS))
		return (unsigned)ns;
	if (ns > KB_HIST_MAX_NS)
		ns = KB_HIST_MAX_NS;
	e = (unsigned)(63 - __builtin_clzll(ns)) - (KB_HIST_SUB_BITS - 1);
	return (e << (KB_HIST_SUB_BITS - 1)) + (unsigned)(ns >> e);
}

static inline void
kb_hist_add(struct kb_hist *h, uint64_t ns)
{
	h->n[kb_hist_index(ns)]++;
	h->count++;
}

void kb_hist_reset(struct kb_hist *h);
/* The value (µs) below which a fraction p (0..1) of the samples lie, taken
 * as the middle of the bucket that holds it; 0 with no samples. */
double kb_hist_percentile_us(const struct kb_hist *h, double p);

/* ---- /proc sampling (kb-proc.c) ---------------------------------------- */
struct kb_proc {
	double cpu_s;     /* utime+stime+cutime+cstime, seconds */
	uint64_t rss_kib; /* VmRSS */
	unsigned nproc;   /* processes summed */
};

/* Sums over pids[] and all their descendants.  Returns 0, or -1 when one
 * of pids[] does not exist (errno = ESRCH) or /proc cannot be read. */
int kb_proc_sample(const pid_t *pids, unsigned npids, struct kb_proc *out);

/* ---- counters, errors and run control (ksock-bench.c) ------------------ */
enum kb_err {
	KB_ERR_CONNECT,  /* connect() failed (refused, unreachable, ...) */
	KB_ERR_CLOSED,   /* the server closed or reset an open connection */
	KB_ERR_MISMATCH, /* echoed data differs from what was sent */
	KB_ERR_TLS,      /* handshake or record layer error */
	KB_ERR_TIMEOUT,  /* a connection did not progress in time */
	KB_ERR_OTHER,    /* socket(), out of memory, ... */
	KB_ERR_COUNT,
};

/* Monotonic counters; the report uses the difference between the values
 * at the end of warm-up and at the end of the run. */
struct kb_count {
	uint64_t ops;     /* completed operations (bytes in stream mode) */
	uint64_t resumed; /* resumed TLS handshakes */
	uint64_t lost;    /* udp: datagrams without an echo in time */
};

struct kb_run {
	const struct kb_opts *o;
	struct ev_loop *loop;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int family;
	gnutls_certificate_credentials_t cred; /* NULL without --tls */
	gnutls_priority_t prio;
	const char *verify_name; /* hostname checked with --ca, or NULL */
	const char *sni;         /* server name sent, or NULL */
	gnutls_datum_t alpn;
	/* Patterns the data sent and verified are cut from. */
	char *line_pat; /* printable, period KB_LINE_PERIOD, no '\n' */
	char *line;     /* SIZE bytes: the start of line_pat, then '\n' */
	size_t line_pat_len;
	unsigned char *bin_pat; /* bytes, period KB_BIN_PERIOD */
	size_t bin_pat_len;
	char scratch[65536]; /* shared receive buffer */

	struct kb_count c;
	struct kb_hist hist;
	uint64_t errors[KB_ERR_COUNT]; /* the whole run, warm-up included */
	uint64_t connected;            /* successful connects, whole run */
	uint64_t early_fail; /* connect failures while connected == 0 */
	bool stopping;       /* the measured period is over */
};

#define KB_LINE_PERIOD 61
#define KB_BIN_PERIOD 251

extern struct kb_run kb;

static inline uint64_t
kb_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Counts an error of the given kind; the first few are printed on stderr.
 * Never fatal, but when every first connection attempt failed and none
 * ever succeeded the run ends early (exit status 2). */
void kb_error(enum kb_err kind, const char *fmt, ...) KB_PRINTF(2, 3);
/* A connection (or, for udp, a first echo) succeeded. */
void kb_connected(void);
/* Ends the run now: leaves the loop, the report follows. */
void kb_stop(void);
/* idle mode: every connection has done its exchange (or failed). */
void kb_idle_ready(void);
/* Progress figure for the stderr line, e.g. "connected 812/1000". */
unsigned kb_tcp_established(void);

/* ---- the modes ---------------------------------------------------------
 * *_start opens the connections (0, or -1 on a setup error such as out of
 * memory); *_stop closes them all and frees what *_start allocated. */
int kb_tcp_start(void);
/* Counts a timeout error for every connection that has waited for the
 * server for a second or more; called when the run ends. */
void kb_tcp_check_stalled(void);
void kb_tcp_stop(void);
int kb_udp_start(void);
void kb_udp_stop(void);

#endif
