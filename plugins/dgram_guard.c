/*
 * dgram_guard: loop protection, per-source rate limiting and the shared
 * receive loop of the bundled UDP services.  See dgram_guard.h for the
 * contract and the options.
 *
 * The rate limiter is a token bucket per source, kept in a fixed-size
 * set-associative table (DG_SETS sets of DG_WAYS entries, hashed with a
 * per-listener seed).  A source that is not in the table gets a full
 * bucket.  When a set is full the entry with the most tokens goes: it is
 * the least limited one, and a new entry is worth as much as a full bucket,
 * so a spray of (spoofed) new sources evicts other new sources, never one
 * that is being held to its rate.  Memory stays DG_SETS * DG_WAYS entries
 * whatever arrives.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <netinet/in.h>

#include "dgram_guard.h"

/* Address kinds in a table entry; 0 marks a free entry. */
#define DG_KIND_V4 4
#define DG_KIND_V6 6

/* Option keys: the plugin's plus the guard's, with room to spare. */
#define DG_KEYS_MAX 32

struct dg_entry {
	uint64_t key;   /* IPv4 address, or the IPv6 /64 prefix */
	double last;    /* when tokens was last brought up to date */
	float tokens;   /* replies left; refills at rate, up to burst */
	uint16_t epoch; /* report window of this source's last drop */
	uint8_t kind;   /* DG_KIND_*, 0: free */
};

struct dg_guard {
	const char *plugin;
	unsigned flags;
	double rate;  /* tokens per second; 0: no rate limit */
	double burst; /* bucket size */
	uint64_t seed;
	struct dg_entry *table; /* DG_SETS * DG_WAYS */

	/* The open report window: drops and distinct sources since start.
	 * A source counts once per window: its entry's epoch is set to the
	 * window's on its first drop in it. */
	int window_open;
	double window_start;
	unsigned long long window_dropped;
	unsigned long long window_sources;
	uint16_t epoch; /* never 0, which marks "no drop yet" */

	struct dg_stats st;
	uint8_t refused_ports[65536 / 8]; /* bitmap */
	uint8_t scratch[DG_SCRATCH];      /* replies built by dg_reply_fn */
};

/* Ports of the UDP small services (RFC 862, 863, 867, 864, 868): a
 * datagram from one of them is another such server's reply, or spoofed to
 * start a loop.  Port 0 is never a real sender. */
static const uint16_t dg_builtin_ports[] = {0, 7, 9, 13, 19, 37};

static const char *const dg_keys[] = {"refuse_source_ports", "rate_limit",
				      "rate_burst", NULL};

static int
dg_fail(char *err, size_t errlen, const char *msg)
{
	if (err != NULL && errlen > 0) {
		strncpy(err, msg, errlen - 1);
		err[errlen - 1] = '\0';
	}
	return -1;
}

static void
dg_port_set(struct dg_guard *g, unsigned port)
{
	g->refused_ports[port >> 3] |= (uint8_t)(1u << (port & 7));
}

static int
dg_port_refused(const struct dg_guard *g, unsigned port)
{
	return (g->refused_ports[port >> 3] >> (port & 7)) & 1;
}

/* The rate limit key of an address: 0, or -1 for other families. */
static int
dg_key(const struct sockaddr *sa, uint64_t *key, uint8_t *kind)
{
	const uint8_t *b;
	int i;

	if (sa->sa_family == AF_INET) {
		*key = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
		*kind = DG_KIND_V4;
		return 0;
	}
	if (sa->sa_family != AF_INET6)
		return -1;
	b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	*key = 0;
	if (IN6_IS_ADDR_V4MAPPED(
		    &((const struct sockaddr_in6 *)sa)->sin6_addr)) {
		for (i = 12; i < 16; i++)
			*key = *key << 8 | b[i];
		*kind = DG_KIND_V4;
		return 0;
	}
	for (i = 0; i < 8; i++)
		*key = *key << 8 | b[i];
	*kind = DG_KIND_V6;
	return 0;
}

/* splitmix64's finaliser: a good 64-bit mix. */
static uint64_t
dg_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

double
dg_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t
dg_seed(const void *p)
{
	struct timespec rt, mono;
	uint64_t s;

	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	s = dg_mix((uint64_t)rt.tv_sec * 1000000000ULL + (uint64_t)rt.tv_nsec);
	s = dg_mix(s ^ (uint64_t)(uintptr_t)p);
	s = dg_mix(s ^ (uint64_t)mono.tv_nsec);
	return s != 0 ? s : 0x2545f4914f6cdd1dULL; /* xorshift needs != 0 */
}

uint64_t
dg_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

int
dg_guard_init(struct dg_guard **out, const char *plugin, const ks_options *opts,
	      const char *const *keys, unsigned flags, char *err, size_t errlen)
{
	const char *all[DG_KEYS_MAX];
	long long ports[DG_PORTS_MAX];
	long long rate, burst;
	struct dg_guard *g = NULL;
	size_t i, n = 0, nports;
	char msg[128];

	*out = NULL;
	for (i = 0; keys != NULL && keys[i] != NULL; i++)
		if (n < DG_KEYS_MAX - 1)
			all[n++] = keys[i];
	for (i = 0; !(flags & DG_NO_REPLY) && dg_keys[i] != NULL; i++)
		if (n < DG_KEYS_MAX - 1)
			all[n++] = dg_keys[i];
	all[n] = NULL;
	if (ks_opt_check_keys(opts, all, err, errlen) != KS_OK)
		return -1;

	g = calloc(1, sizeof(*g));
	if (g == NULL)
		return dg_fail(err, errlen, "out of memory");
	g->plugin = plugin;
	g->flags = flags;
	g->epoch = 1;
	g->seed = dg_seed(g);
	if (flags & DG_NO_REPLY)
		goto done;

	if (ks_opt_int(opts, "rate_limit", DG_RATE_DEFAULT, &rate, err,
		       errlen) != KS_OK)
		goto fail;
	if (rate < 0) {
		dg_fail(err, errlen, "option rate_limit: must be >= 0");
		goto fail;
	}
	if (rate > DG_RATE_MAX) {
		snprintf(msg, sizeof(msg), "option rate_limit: must be <= %d",
			 DG_RATE_MAX);
		dg_fail(err, errlen, msg);
		goto fail;
	}
	/* LLONG_MIN stands for "absent": the default depends on rate. */
	if (ks_opt_int(opts, "rate_burst", LLONG_MIN, &burst, err, errlen) !=
	    KS_OK)
		goto fail;
	if (burst == LLONG_MIN)
		burst = rate > 0 ? 2 * rate : 1;
	if (burst < 1) {
		dg_fail(err, errlen, "option rate_burst: must be >= 1");
		goto fail;
	}
	if (burst > 2LL * DG_RATE_MAX) {
		snprintf(msg, sizeof(msg), "option rate_burst: must be <= %lld",
			 2LL * DG_RATE_MAX);
		dg_fail(err, errlen, msg);
		goto fail;
	}
	g->rate = (double)rate;
	g->burst = (double)burst;

	if (ks_opt_int_list(opts, "refuse_source_ports", ports, DG_PORTS_MAX,
			    &nports, err, errlen) != KS_OK)
		goto fail;
	for (i = 0; i < nports; i++) {
		if (ports[i] < 0 || ports[i] > 65535) {
			snprintf(msg, sizeof(msg),
				 "option refuse_source_ports: %lld is not a "
				 "port (0-65535)",
				 ports[i]);
			dg_fail(err, errlen, msg);
			goto fail;
		}
		dg_port_set(g, (unsigned)ports[i]);
	}
	for (i = 0; i < sizeof(dg_builtin_ports) / sizeof(dg_builtin_ports[0]);
	     i++)
		dg_port_set(g, dg_builtin_ports[i]);

	/* The source table is allocated by the first datagram: a tcp
	 * listener of the same plugin never needs it. */
	ks_log(KS_LOG_DEBUG,
	       "%s: udp rate limit %lld/s per source (burst %lld), %zu extra "
	       "refused source ports",
	       plugin, rate, burst, nports);
done:
	*out = g;
	return 0;

fail:
	free(g);
	return -1;
}

void
dg_guard_fini(struct dg_guard *g)
{
	const struct dg_stats *s;

	if (g == NULL)
		return;
	s = &g->st;
	if (s->received != 0 || s->truncated != 0 || s->recv_errors != 0)
		ks_log(KS_LOG_DEBUG,
		       "%s: udp: %llu datagrams (%llu bytes), %llu truncated, "
		       "%llu refused (source port or address), %llu rate "
		       "limited, %llu replies, %llu send errors, %llu receive "
		       "errors",
		       g->plugin, s->received, s->bytes, s->truncated,
		       s->refused, s->limited, s->replied, s->send_errors,
		       s->recv_errors);
	free(g->table);
	free(g);
}

/* Sources no reply may go to: unspecified, "this network", multicast,
 * reserved and limited broadcast.  Such a source address is forged, and a
 * reply to a group would multiply. */
static int
dg_bad_v4(uint32_t a)
{
	return (a >> 24) == 0 || (a >> 28) >= 0xe;
}

int
dg_guard_source_ok(const struct dg_guard *g, const struct sockaddr *peer,
		   const struct sockaddr *local)
{
	const struct in6_addr *a6;
	int port = ks_addr_port(peer);
	int own = local != NULL ? ks_addr_port(local) : -1;

	if (port < 0 || dg_port_refused(g, (unsigned)port) || port == own)
		return 0;
	if (peer->sa_family == AF_INET)
		return !dg_bad_v4(ntohl(
			((const struct sockaddr_in *)peer)->sin_addr.s_addr));
	a6 = &((const struct sockaddr_in6 *)peer)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a6))
		return !dg_bad_v4((uint32_t)a6->s6_addr[12] << 24 |
				  (uint32_t)a6->s6_addr[13] << 16 |
				  (uint32_t)a6->s6_addr[14] << 8 |
				  a6->s6_addr[15]);
	return !IN6_IS_ADDR_UNSPECIFIED(a6) && !IN6_IS_ADDR_MULTICAST(a6);
}

/* An entry's tokens as of now (not stored). */
static double
dg_tokens(const struct dg_guard *g, const struct dg_entry *e, double now)
{
	double t = e->tokens;

	if (now > e->last)
		t += (now - e->last) * g->rate;
	return t < g->burst ? t : g->burst;
}

static struct dg_entry *
dg_lookup(struct dg_guard *g, uint64_t key, uint8_t kind, double now)
{
	uint64_t h = dg_mix(key ^ g->seed ^ ((uint64_t)kind << 56));
	struct dg_entry *set = g->table + (h % DG_SETS) * DG_WAYS;
	struct dg_entry *victim = NULL, *e;
	double most = -1, t;

	for (e = set; e < set + DG_WAYS; e++) {
		if (e->kind == kind && e->key == key)
			return e;
		if (e->kind == 0) {
			if (victim == NULL || victim->kind != 0)
				victim = e;
			most = g->burst + 1; /* nothing beats a free entry */
			continue;
		}
		t = dg_tokens(g, e, now);
		if (t > most || (t == most && victim->kind != 0 &&
				 e->last < victim->last)) {
			most = t;
			victim = e;
		}
	}
	victim->key = key;
	victim->kind = kind;
	victim->tokens = (float)g->burst;
	victim->last = now;
	victim->epoch = 0;
	return victim;
}

int
dg_guard_admit(struct dg_guard *g, const struct sockaddr *peer, double now)
{
	struct dg_entry *e;
	uint64_t key;
	uint8_t kind;

	if (g->rate <= 0 || dg_key(peer, &key, &kind) != 0)
		return 1;
	if (g->table == NULL) {
		g->table = calloc((size_t)DG_SETS * DG_WAYS, sizeof(*g->table));
		if (g->table == NULL)
			return 0; /* no memory to limit with: no reply */
	}
	e = dg_lookup(g, key, kind, now);
	e->tokens = (float)dg_tokens(g, e, now);
	if (now > e->last)
		e->last = now;
	if (e->tokens >= 1) {
		e->tokens -= 1;
		return 1;
	}
	if (!g->window_open) {
		g->window_open = 1;
		g->window_start = now;
	}
	g->window_dropped++;
	if (e->epoch != g->epoch) {
		e->epoch = g->epoch;
		g->window_sources++;
	}
	return 0;
}

enum dg_verdict
dg_guard_check(struct dg_guard *g, const ks_dgram *d, double now)
{
	const struct sockaddr *local =
		d->local_len > 0 ? (const struct sockaddr *)&d->local : NULL;

	if (!dg_guard_source_ok(g, (const struct sockaddr *)&d->peer, local)) {
		g->st.refused++;
		return DG_REFUSED;
	}
	if (!dg_guard_admit(g, (const struct sockaddr *)&d->peer, now)) {
		g->st.limited++;
		return DG_LIMITED;
	}
	return DG_PASS;
}

double
dg_guard_report_wait(const struct dg_guard *g, double now)
{
	double w;

	if (!g->window_open)
		return 0;
	w = g->window_start + DG_REPORT_INTERVAL - now;
	return w > 0.001 ? w : 0.001;
}

/* Closes the window when it is due, or at once when `force`. */
static int
dg_report_take(struct dg_guard *g, double now, int force,
	       unsigned long long *dropped, unsigned long long *sources,
	       double *span)
{
	if (!g->window_open ||
	    (!force && now - g->window_start < DG_REPORT_INTERVAL))
		return 0;
	*dropped = g->window_dropped;
	*sources = g->window_sources;
	*span = now - g->window_start;
	g->window_open = 0;
	g->window_dropped = 0;
	g->window_sources = 0;
	if (++g->epoch == 0)
		g->epoch = 1;
	return 1;
}

int
dg_guard_report(struct dg_guard *g, double now, unsigned long long *dropped,
		unsigned long long *sources)
{
	double span;

	return dg_report_take(g, now, 0, dropped, sources, &span);
}

const struct dg_stats *
dg_guard_stats(const struct dg_guard *g)
{
	return &g->st;
}

static void
dg_log_report(ks_conn *conn, struct dg_guard *g, double now, int force)
{
	unsigned long long dropped, sources;
	double span;

	if (dg_report_take(g, now, force, &dropped, &sources, &span))
		ks_conn_log(conn, KS_LOG_INFO,
			    "rate limit: dropped %llu datagrams from %llu "
			    "sources in the last %.0fs",
			    dropped, sources, span < 1 ? 1 : span);
}

/* Sends the reply; 0 to go on, or a status to return from dg_serve. */
static int
dg_send(ks_conn *conn, ks_dsock *sock, struct dg_guard *g, const ks_dgram *d,
	const void *reply, size_t n)
{
	char peer[KS_ADDR_STRLEN];
	int rc;

	rc = ks_dgram_reply(sock, d, reply, n);
	switch (rc) {
	case KS_OK:
		g->st.replied++;
		return 0;
	case KS_ECLOSED:
	case KS_ECANCELED:
		return rc;
	default:
		/* Unreachable networks, a firewall's EPERM ...: the
		 * next datagram may well go through. */
		g->st.send_errors++;
		ks_conn_log(conn, KS_LOG_DEBUG, "reply to %s: %s%s%s",
			    ks_addr_str((const struct sockaddr *)&d->peer,
					d->peer_len, peer, sizeof(peer)),
			    ks_strerror(rc), rc == KS_EIO ? ": " : "",
			    rc == KS_EIO ? strerror(ks_dgram_errno(sock)) : "");
		return 0;
	}
}

int
dg_serve(ks_conn *conn, ks_dsock *sock, struct dg_guard *g, dg_reply_fn fn,
	 void *state)
{
	char peer[KS_ADDR_STRLEN];
	unsigned long long streak = 0; /* receive errors in a row */
	const void *reply;
	ks_dgram d;
	size_t n;
	double now;
	int rc;

	if (g->flags & DG_NO_REPLY)
		fn = NULL;
	for (;;) {
		now = dg_now();
		dg_log_report(conn, g, now, 0);
		/* Wake up when an open report window closes, so that its
		 * summary does not wait for the next drop. */
		rc = ks_dgram_recv(sock, &d, dg_guard_report_wait(g, now));
		if (rc != KS_EIO && streak > 0) {
			if (streak > 1)
				ks_conn_log(conn, KS_LOG_INFO,
					    "receive errors ended after %llu",
					    streak);
			streak = 0;
		}
		switch (rc) {
		case KS_OK:
			break;
		case KS_ETIMEDOUT: /* a report window closed */
			continue;
		case KS_ETOOLONG:
			/* Never answer a cut datagram: the echo would not
			 * be what was sent, and a reply to an oversized
			 * request is amplification material. */
			g->st.truncated++;
			ks_conn_log(
				conn, KS_LOG_DEBUG,
				"dropped a truncated datagram of %zu bytes "
				"from %s",
				d.size,
				ks_addr_str((const struct sockaddr *)&d.peer,
					    d.peer_len, peer, sizeof(peer)));
			continue;
		case KS_ECLOSED: /* reload or shutdown */
		case KS_ECANCELED:
			rc = 0;
			goto out;
		case KS_EIO:
			/* Log a streak once; from its second error on, pause
			 * so a persistent error cannot make this a busy
			 * loop. */
			g->st.recv_errors++;
			if (streak++ == 0) {
				ks_conn_log(conn, KS_LOG_WARN, "receive: %s",
					    strerror(ks_dgram_errno(sock)));
				continue;
			}
			if (ks_sleep(conn, 0.1) != KS_OK) {
				rc = 0;
				goto out;
			}
			continue;
		default: /* KS_EBUSY, KS_ENOMEM ...: let the daemon restart us
			  */
			ks_conn_log(conn, KS_LOG_WARN, "receive: %s",
				    ks_strerror(rc));
			goto out;
		}

		g->st.received++;
		g->st.bytes += d.len;
		/* The clock as of this datagram, not of before the wait. */
		if (fn == NULL || dg_guard_check(g, &d, dg_now()) != DG_PASS)
			continue;
		n = 0;
		reply = fn(state, &d, g->scratch, &n);
		if (reply == NULL)
			continue;
		if ((rc = dg_send(conn, sock, g, &d, reply, n)) != 0) {
			rc = 0;
			goto out;
		}
	}
out:
	/* Drops of a window still open are not lost with this handler. */
	dg_log_report(conn, g, dg_now(), 1);
	return rc;
}
