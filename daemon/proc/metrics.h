/*
 * The metrics: the scoreboard (the counters of every worker, those gone
 * included, and what the master counts) as Prometheus text, format 0.0.4,
 * for ks_metrics_text and so the bundled `metrics` plugin.  Every series
 * is a row of a table here; ksockd.conf(5) lists them.
 */
#ifndef KS_METRICS_H
#define KS_METRICS_H

#include <stddef.h>

struct ks_conf;
struct ks_scoreboard;

/* What a worker reads the metrics from (worker.h's wk->metrics). */
struct ks_metrics_src {
	const struct ks_scoreboard *sb;
	const struct ks_conf *conf; /* its generation: the certificates */
};

/* (A function, not two stores: it also links metrics.o, and so the
 * ks_metrics_text plugins look for, into the daemon.) */
void ks_metrics_src_init(struct ks_metrics_src *src,
			 const struct ks_scoreboard *sb,
			 const struct ks_conf *conf);

/* The text, malloc'd (free() it), *len its length; NULL when out of
 * memory. */
char *ks_metrics_render(const struct ks_metrics_src *src, size_t *len);

/* ---- certwatch.c ---- */

struct ks_master;
/* Logs the certificates of the current generation that expire within
 * 30 days (warning) or 7 (error), or have expired (error): when a
 * generation starts and then once a day. */
void ks_certs_check(const struct ks_conf *conf, double now);
void ks_certs_watch(struct ks_master *m);

#endif
