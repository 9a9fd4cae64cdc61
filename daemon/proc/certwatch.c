/*
 * Certificates about to expire: an expired certificate is the most common
 * TLS outage, and the one most easily seen coming.  When a generation
 * starts serving and then once a day, every certificate it serves that
 * expires within 30 days is logged as a warning, within 7 days (or
 * already expired) as an error.  The metrics show every expiry time too
 * (ksockd_tls_certificate_not_after_seconds).
 */
#include "config.h"

#include <time.h>

#include "conf.h"
#include "log.h"
#include "master.h"
#include "metrics.h"
#include "tls.h"
#include "util.h"

#define DAY 86400.0
#define WARN_DAYS 30
#define ERR_DAYS 7

void
ks_certs_check(const struct ks_conf *conf, double now)
{
	const struct ks_tls_certinfo *ci;
	char date[32];
	struct tm tm;
	time_t t;
	double left;
	size_t i, j, n;

	for (i = 0; conf != NULL && i < conf->nlisteners; i++) {
		ci = ks_tls_ctx_certs(conf->listeners[i].tls_ctx, &n);
		for (j = 0; j < n; j++) {
			left = ((double)ci[j].not_after - now) / DAY;
			if (left > WARN_DAYS)
				continue;
			t = (time_t)ci[j].not_after;
			gmtime_r(&t, &tm);
			strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC",
				 &tm);
			if (left <= 0)
				ks_log(KS_LOG_ERR, "listener %s: certificate %s "
				       "(%s) expired on %s",
				       conf->listeners[i].name, ci[j].name,
				       ci[j].file, date);
			else
				ks_log(left <= ERR_DAYS ? KS_LOG_ERR
							: KS_LOG_WARN,
				       "listener %s: certificate %s (%s) "
				       "expires in %d day%s, on %s",
				       conf->listeners[i].name, ci[j].name,
				       ci[j].file, (int)left,
				       (int)left == 1 ? "" : "s", date);
		}
	}
}

static void
cert_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ks_master *m = KS_CONTAINER_OF(w, struct ks_master, cert_timer);

	(void)revents;
	ks_certs_check(m->conf, ev_now(loop));
}

void
ks_certs_watch(struct ks_master *m)
{
	ev_timer_init(&m->cert_timer, cert_timer_cb, DAY, DAY);
	ev_timer_start(m->loop, &m->cert_timer);
}
