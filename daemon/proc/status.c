/*
 * STATUS= for `systemctl status`: the workers, the open connections, the
 * connections accepted per second and the last reload, sent when
 * something changes and every STATUS_EVERY seconds.
 */
#include "config.h"

#include <time.h>

#include "master.h"
#include "scoreboard.h"
#include "sd.h"
#include "util.h"

#define STATUS_EVERY 10.0 /* seconds between STATUS= updates */

void
ks_master_status(struct ks_master *m)
{
	struct ks_stats sum;
	double rate;
	ev_tstamp now;
	char when[64] = "never";
	struct tm tm;
	time_t t;

	if (!ks_sd_watching() || m->conf == NULL)
		return;
	if (m->last_reload > 0) {
		t = (time_t)m->last_reload;
		localtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	}
	/* accepted per second since the last update (every STATUS_EVERY s) */
	ks_sb_sum(&m->sb, &sum, NULL, 0, NULL);
	now = ev_now(m->loop);
	if (m->status_at > 0 && now - m->status_at >= 1 &&
	    sum.accepted >= m->status_accepted)
		m->status_rate = (double)(sum.accepted - m->status_accepted) /
				 (now - m->status_at);
	if (m->status_at == 0 || now - m->status_at >= 1) {
		m->status_at = now;
		m->status_accepted = sum.accepted;
	}
	rate = m->status_rate;
	ks_sd_notify("STATUS=%u workers (generation %u), %llu connections, "
		     "%.1f accepted/s; last reload: %s%s",
		     ks_master_count(m, m->conf, KS_W_READY),
		     m->conf->generation, (unsigned long long)sum.active, rate,
		     when,
		     m->last_reload > 0 ? (m->last_reload_ok ? " (ok)"
							     : " (failed)")
					: "");
}

static void
status_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	ks_master_status(KS_CONTAINER_OF(t, struct ks_master, status_timer));
}

void
ks_master_status_start(struct ks_master *m)
{
	ks_master_status(m);
	if (!ks_sd_watching() || ev_is_active(&m->status_timer))
		return;
	ev_init(&m->status_timer, status_cb);
	ev_timer_set(&m->status_timer, STATUS_EVERY, STATUS_EVERY);
	ev_timer_start(m->loop, &m->status_timer);
}
