/*
 * Admission checks: see admit.h.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "acl.h"
#include "admit.h"
#include "conf.h"
#include "conn.h"
#include "zone.h"
#include "listener.h"
#include "log.h"
#include "util.h"
#include "worker.h"

/* Descriptors kept free in every worker: an eighth of the limit, at least
 * 8 and at most 1024, for logging, outbound connections, reloads. */
#define RESERVE_MIN 8
#define RESERVE_MAX 1024
/* The default max_connections_per_source: an eighth of what the worker's
 * descriptors allow, at least 16 and at most 1024. */
#define PER_SOURCE_MIN 16
#define PER_SOURCE_MAX 1024

static struct ks_lograte refused_log = KS_LOGRATE_INIT("refused connections");
static struct ks_lograte full_log = KS_LOGRATE_INIT("max_connections waits");

void
ks_admit_init_worker(struct ks_worker *wk)
{
	struct rlimit rl;
	rlim_t n = 1024;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		n = rl.rlim_cur;
	if (n > (1 << 24))
		n = 1 << 24;
	wk->fd_reserve = (int)KS_MIN(KS_MAX(n / 8, (rlim_t)RESERVE_MIN),
				     (rlim_t)RESERVE_MAX);
	wk->fd_reserve_from = (int)n - wk->fd_reserve;
	wk->auto_per_source = (unsigned)KS_MIN(
		KS_MAX((n - (rlim_t)wk->fd_reserve) / 8, (rlim_t)PER_SOURCE_MIN),
		(rlim_t)PER_SOURCE_MAX);
}

unsigned
ks_admit_per_source(const struct ks_worker *wk, const struct ks_lconf *lc)
{
	if (lc->max_connections_per_source >= 0)
		return (unsigned)lc->max_connections_per_source;
	return wk->auto_per_source;
}

int
ks_admit_reserve(struct ks_listener *l, struct ks_admit *a)
{
	struct ks_worker *wk = l->wk;
	const struct ks_lconf *lc = l->lc;
	const char *which;
	unsigned limit;

	*a = (struct ks_admit)KS_ADMIT_INIT;
	a->lkey = l->lkey;
	if (ks_zone_total_acquire(&wk->zu, (uint64_t)lc->conf->max_connections) !=
	    KS_ZONE_OK) {
		which = "the daemon's";
		limit = (unsigned)lc->conf->max_connections;
		goto full;
	}
	a->total = true;
	if (lc->max_connections > 0 &&
	    ks_zone_count_acquire(&wk->zu, KS_ZD_LISTENER, l->lkey, 0,
				  (uint32_t)lc->max_connections,
				  &a->listener) == KS_ZONE_OVER) {
		ks_admit_release(wk, a);
		which = "the listener's";
		limit = (unsigned)lc->max_connections;
		goto full;
	}
	return 0;
full:
	ks_worker_count(wk, lc, KS_STAT(limit_waits));
	if (ks_lograte_allow(&full_log, KS_LOG_WARN, &wk->stats->log_suppressed))
		ks_log(KS_LOG_WARN, "listener %s: %s max_connections (%u) "
		       "reached: new connections wait in the backlog",
		       lc->name, which, limit);
	return -1;
}

/* "1.2.3.4" or "2001:db8:1:2::/64": what the per-source limits count. */
static void
source_str(const struct sockaddr *sa, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	char host[INET6_ADDRSTRLEN];
	socklen_t sl = sa->sa_family == AF_INET6 ? sizeof(*in6)
						 : sizeof(struct sockaddr_in);

	memcpy(&ss, sa, sl);
	sl = ks_addr_unmap(&ss, sl);
	if (ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host,
			  sizeof(host));
		snprintf(buf, len, "%s", host);
		return;
	}
	memset(&in6->sin6_addr.s6_addr[8], 0, 8);
	inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
	snprintf(buf, len, "%s/64", host);
}

/* Counts a refusal and logs it, rate-limited; `what` and `value` say
 * why ("at max_connections_per_source", "50"). */
static int
refuse(struct ks_worker *wk, const struct ks_lconf *lc,
       const struct sockaddr *peer, size_t counter, const char *what,
       const char *value)
{
	char who[INET6_ADDRSTRLEN + 8];

	ks_worker_count(wk, lc, counter);
	if (ks_lograte_allow(&refused_log, KS_LOG_INFO,
			     &wk->stats->log_suppressed)) {
		source_str(peer, who, sizeof(who));
		ks_log(KS_LOG_INFO, "listener %s: refused %s: %s %s", lc->name,
		       who, what, value);
	}
	return -1;
}

static int
refuse_n(struct ks_worker *wk, const struct ks_lconf *lc,
	 const struct sockaddr *peer, size_t counter, const char *what,
	 unsigned value)
{
	char v[16];

	snprintf(v, sizeof(v), "%u", value);
	return refuse(wk, lc, peer, counter, what, v);
}

/* The access list's verdict, the refusal logged with the rule. */
static int
check_acl(struct ks_worker *wk, const struct ks_lconf *lc,
	  const struct ks_acl *acl, const struct sockaddr *peer,
	  size_t counter, const char *what)
{
	const struct ks_cidr *rule = NULL;
	char r[KS_CIDR_STRLEN + 16];

	if (acl == NULL || ks_acl_check(acl, peer, &rule) == KS_ACL_ALLOW)
		return 0;
	if (rule != NULL)
		ks_cidr_format(rule, r, sizeof(r));
	else
		snprintf(r, sizeof(r), "(no allow rule matches)");
	return refuse(wk, lc, peer, counter, what, r);
}

int
ks_admit_proxy(struct ks_worker *wk, const struct ks_lconf *lc,
	       const struct sockaddr *peer)
{
	return check_acl(wk, lc, lc->proxy_from, peer, KS_STAT(proxy_errors),
			 "not in proxy_protocol_from");
}

int
ks_admit_check(struct ks_worker *wk, const struct ks_lconf *lc,
	       struct ks_admit *a, const struct sockaddr *peer)
{
	unsigned per_source;
	uint64_t src;

	if (!ks_zone_source(peer, &src))
		return 0; /* unix sockets: no source */
	if (check_acl(wk, lc, lc->acl, peer, KS_STAT(refused_acl),
		      "denied by") != 0)
		return -1;
	if (lc->connection_rate > 0 &&
	    ks_zone_rate(&wk->zu, KS_ZD_CONN_RATE, a->lkey, src,
			 (uint32_t)lc->connection_rate) == KS_ZONE_OVER)
		return refuse_n(wk, lc, peer, KS_STAT(refused_rate),
				"over connection_rate",
				(unsigned)lc->connection_rate);
	per_source = ks_admit_per_source(wk, lc);
	if (per_source > 0 &&
	    ks_zone_count_acquire(&wk->zu, KS_ZD_SOURCE, a->lkey, src, per_source,
				  &a->source) == KS_ZONE_OVER)
		return refuse_n(wk, lc, peer, KS_STAT(refused_source),
				"at max_connections_per_source", per_source);
	return 0;
}

void
ks_admit_release(struct ks_worker *wk, struct ks_admit *a)
{
	ks_zone_count_release(&wk->zu, &a->source);
	ks_zone_count_release(&wk->zu, &a->listener);
	if (a->total) {
		ks_zone_total_release(&wk->zu);
		a->total = false;
	}
}
