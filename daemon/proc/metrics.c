/*
 * The metrics as Prometheus text: see metrics.h.
 */
#include "config.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ksockd/plugin.h>

#include "conf.h"
#include "conn.h"
#include "metrics.h"
#include "scoreboard.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

/* ---- the tables ------------------------------------------------------------ */

/* One series of a family: its extra label (`reason="eof"`, or NULL) and
 * the struct ks_stats member it shows. */
struct series {
	const char *label;
	size_t idx;
};

struct family {
	const char *name, *type, *help;
	const struct series *series;
	size_t nseries;
};

#define S1(field) ((const struct series[]){{NULL, KS_STAT(field)}}), 1
#define FAM(name, type, help, ...) {name, type, help, __VA_ARGS__}
#define SERIES(...) ((const struct series[]){__VA_ARGS__}), \
	(sizeof((const struct series[]){__VA_ARGS__}) / sizeof(struct series))

/* Per listener: every series gets listener="NAME". */
static const struct family listener_families[] = {
	FAM("ksockd_connections_accepted_total", "counter",
	    "Connections accepted.", S1(accepted)),
	FAM("ksockd_connections_active", "gauge",
	    "Connections open now (a udp listener: its datagram handler).",
	    S1(active)),
	FAM("ksockd_connections_closed_total", "counter",
	    "Connections closed, by reason.",
	    SERIES({"reason=\"eof\"", KS_STAT(closed_eof)},
		   {"reason=\"timeout\"", KS_STAT(closed_timeout)},
		   {"reason=\"limit\"", KS_STAT(closed_limit)},
		   {"reason=\"error\"", KS_STAT(closed_error)},
		   {"reason=\"shutdown\"", KS_STAT(closed_shutdown)})),
	FAM("ksockd_connections_refused_total", "counter",
	    "Connections (udp: datagrams) refused at once, by the access "
	    "list or a per-source limit.",
	    SERIES({"reason=\"acl\"", KS_STAT(refused_acl)},
		   {"reason=\"max_connections_per_source\"",
		    KS_STAT(refused_source)},
		   {"reason=\"connection_rate\"", KS_STAT(refused_rate)})),
	FAM("ksockd_listener_paused_total", "counter",
	    "Times accepting paused at max_connections (connections wait in "
	    "the backlog).", S1(limit_waits)),
	FAM("ksockd_timeouts_total", "counter", "Timeouts, by kind.",
	    SERIES({"kind=\"idle\"", KS_STAT(timeouts)},
		   {"kind=\"handshake\"", KS_STAT(handshake_timeouts)},
		   {"kind=\"write\"", KS_STAT(write_timeouts)},
		   {"kind=\"session\"", KS_STAT(session_timeouts)})),
	FAM("ksockd_proxy_header_errors_total", "counter",
	    "PROXY protocol headers malformed, truncated, late or from an "
	    "address not in proxy_protocol_from.", S1(proxy_errors)),
	FAM("ksockd_tls_handshakes_total", "counter",
	    "TLS handshakes completed.", S1(tls_handshakes)),
	FAM("ksockd_tls_handshake_failures_total", "counter",
	    "TLS handshakes that failed, by reason.",
	    SERIES({"reason=\"timeout\"", KS_STAT(tls_fail_timeout)},
		   {"reason=\"eof\"", KS_STAT(tls_fail_eof)},
		   {"reason=\"alert\"", KS_STAT(tls_fail_alert)},
		   {"reason=\"protocol\"", KS_STAT(tls_fail_protocol)},
		   {"reason=\"certificate\"", KS_STAT(tls_fail_cert)})),
	FAM("ksockd_received_bytes_total", "counter",
	    "Bytes received from clients (udp: payload bytes).", S1(bytes_in)),
	FAM("ksockd_sent_bytes_total", "counter",
	    "Bytes sent to clients (udp: payload bytes).", S1(bytes_out)),
	FAM("ksockd_handler_returns_total", "counter",
	    "Handler calls that returned.", S1(handler_returns)),
	FAM("ksockd_handler_errors_total", "counter",
	    "Handler calls that returned a non-zero status.",
	    S1(handler_errors)),
	FAM("ksockd_lines_too_long_total", "counter",
	    "Lines longer than max_line_length.", S1(lines_too_long)),
	FAM("ksockd_buffer_refusals_total", "counter",
	    "Connections closed because the worker's buffers reached "
	    "max_buffer_memory.", S1(buffer_refused)),
	FAM("ksockd_datagrams_received_total", "counter",
	    "Datagrams handed to the handler.", S1(datagrams_in)),
	FAM("ksockd_datagrams_sent_total", "counter", "Datagrams sent.",
	    S1(datagrams_out)),
	FAM("ksockd_datagrams_dropped_total", "counter",
	    "Datagrams dropped unseen, by reason.",
	    SERIES({"reason=\"broadcast\"", KS_STAT(datagrams_dropped)},
		   {"reason=\"max_datagram_rate\"",
		    KS_STAT(datagrams_rate_limited)})),
	FAM("ksockd_datagrams_truncated_total", "counter",
	    "Datagrams larger than max_datagram_size (handed out cut).",
	    S1(datagrams_truncated)),
	FAM("ksockd_datagram_errors_total", "counter",
	    "Failed datagram receives and sends.", S1(datagram_errors)),
};

/* The daemon's own: no labels. */
static const struct family daemon_families[] = {
	FAM("ksockd_accept_errors_total", "counter",
	    "accept() failures (descriptor exhaustion included).",
	    S1(accept_errors)),
	FAM("ksockd_fd_pauses_total", "counter",
	    "Times a worker paused accepting because descriptors ran low.",
	    S1(fd_waits)),
	FAM("ksockd_coroutine_failures_total", "counter",
	    "Connections dropped: no memory for a coroutine stack.",
	    S1(coro_failures)),
	FAM("ksockd_hibernations_total", "counter",
	    "Idle handler stacks paged out.", S1(hibernations)),
	FAM("ksockd_log_messages_suppressed_total", "counter",
	    "Log messages not written by the rate limit.", S1(log_suppressed)),
	FAM("ksockd_access_log_dropped_total", "counter",
	    "Access-log lines lost because the master could not keep up.",
	    S1(access_log_dropped)),
	FAM("ksockd_connections_open", "gauge",
	    "Connections open now, over every listener.", S1(active)),
	FAM("ksockd_buffer_memory_bytes", "gauge",
	    "Memory the connections' buffers hold now, over every worker "
	    "(updated once a second).", S1(buffer_bytes)),
	FAM("ksockd_workers_resident_bytes", "gauge",
	    "Resident memory of the worker processes, added up (updated "
	    "once a second; pages they share are counted in each).",
	    S1(resident_bytes)),
};

/* Crash signals always shown (0 until one happens); others when seen. */
static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGABRT, SIGILL,
				    SIGFPE, SIGKILL};

/* ---- output ------------------------------------------------------------- */

struct text {
	char *p;
	size_t len, cap;
	int failed;
};

static void
emit(struct text *t, const char *fmt, ...) KS_PRINTF(2, 3);

static void
emit(struct text *t, const char *fmt, ...)
{
	va_list ap;
	size_t need;
	char *np;
	int n;

	for (;;) {
		if (t->failed)
			return;
		va_start(ap, fmt);
		n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = 1;
			return;
		}
		if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		need = KS_MAX(t->cap * 2, t->len + (size_t)n + 1);
		if ((np = realloc(t->p, need)) == NULL) {
			t->failed = 1;
			return;
		}
		t->p = np;
		t->cap = need;
	}
}

/* A label value: \ " and newline escaped, as the format wants. */
static void
emit_value(struct text *t, const char *v)
{
	size_t n;

	for (;;) {
		n = strcspn(v, "\\\"\n");
		emit(t, "%.*s", (int)n, v);
		if (v[n] == '\0')
			return;
		emit(t, "\\%c", v[n] == '\n' ? 'n' : v[n]);
		v += n + 1;
	}
}

static void
emit_head(struct text *t, const struct family *f)
{
	emit(t, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
	     f->type);
}

static uint64_t
value(const struct ks_stats *s, size_t idx)
{
	return ((const uint64_t *)(const void *)s)[idx];
}

struct lrow {
	char name[KS_SB_NAME];
};

static void
emit_listeners(struct text *t, const struct lrow *rows,
	       const struct ks_stats *sums, size_t n)
{
	const struct family *f;
	size_t i, j, k;

	for (i = 0; i < KS_ARRAY_SIZE(listener_families); i++) {
		f = &listener_families[i];
		emit_head(t, f);
		for (k = 0; k < n; k++)
			for (j = 0; j < f->nseries; j++) {
				emit(t, "%s{listener=\"", f->name);
				emit_value(t, rows[k].name);
				emit(t, "\"%s%s} %llu\n",
				     f->series[j].label ? "," : "",
				     f->series[j].label ? f->series[j].label
							: "",
				     (unsigned long long)value(
					     &sums[k], f->series[j].idx));
			}
	}
}

static void
emit_daemon(struct text *t, const struct ks_stats *d)
{
	const struct family *f;
	size_t i;

	for (i = 0; i < KS_ARRAY_SIZE(daemon_families); i++) {
		f = &daemon_families[i];
		emit_head(t, f);
		emit(t, "%s %llu\n", f->name,
		     (unsigned long long)value(d, f->series[0].idx));
	}
}

static const char *
sig_name(int sig, char *buf, size_t len)
{
	const char *abbrev = sig > 0 ? sigabbrev_np(sig) : NULL;

	if (abbrev != NULL)
		snprintf(buf, len, "SIG%s", abbrev);
	else
		snprintf(buf, len, "%d", sig);
	return buf;
}

static void
emit_master(struct text *t, const struct ks_scoreboard *sb)
{
	const struct ks_sb_header *h = sb->hdr;
	unsigned long long ready = 0;
	double now = (double)time(NULL);
	char name[32];
	unsigned i;
	size_t k;
	int shown;

	for (i = 1; i < h->hiwater && i < KS_SB_SLOTS; i++)
		ready += ks_slot_state(ks_sb_slot(sb, i)) == KS_SLOT_READY;
	emit(t, "# HELP ksockd_workers Worker processes accepting now.\n"
		"# TYPE ksockd_workers gauge\nksockd_workers %llu\n", ready);
	emit(t, "# HELP ksockd_worker_starts_total Worker processes started "
		"(at start, by reloads, and to replace the dead).\n"
		"# TYPE ksockd_worker_starts_total counter\n"
		"ksockd_worker_starts_total %llu\n",
	     (unsigned long long)h->worker_starts);
	emit(t, "# HELP ksockd_worker_crashes_total Workers that died without "
		"being told to, by signal (\"exit\": a non-zero exit status).\n"
		"# TYPE ksockd_worker_crashes_total counter\n"
		"ksockd_worker_crashes_total{signal=\"exit\"} %llu\n",
	     (unsigned long long)h->worker_crashes[0]);
	for (i = 1; i < KS_SB_SIGNALS; i++) {
		shown = 0;
		for (k = 0; k < KS_ARRAY_SIZE(crash_signals); k++)
			shown |= crash_signals[k] == (int)i;
		if (shown || h->worker_crashes[i] > 0)
			emit(t, "ksockd_worker_crashes_total{signal=\"%s\"} "
				"%llu\n", sig_name((int)i, name, sizeof(name)),
			     (unsigned long long)h->worker_crashes[i]);
	}
	emit(t, "# HELP ksockd_reloads_total Configuration reloads (SIGHUP), "
		"by result.\n# TYPE ksockd_reloads_total counter\n"
		"ksockd_reloads_total{result=\"ok\"} %llu\n"
		"ksockd_reloads_total{result=\"failed\"} %llu\n",
	     (unsigned long long)h->reloads_ok,
	     (unsigned long long)h->reloads_failed);
	emit(t, "# HELP ksockd_config_generation The configuration serving "
		"now (1 at start, one more per successful reload or "
		"upgrade).\n# TYPE ksockd_config_generation gauge\n"
		"ksockd_config_generation %u\n", h->generation);
	emit(t, "# HELP ksockd_start_time_seconds When the daemon started "
		"(upgrades keep it), in seconds since the epoch.\n"
		"# TYPE ksockd_start_time_seconds gauge\n"
		"ksockd_start_time_seconds %.0f\n", h->started);
	emit(t, "# HELP ksockd_uptime_seconds Seconds since the daemon "
		"started.\n# TYPE ksockd_uptime_seconds gauge\n"
		"ksockd_uptime_seconds %.0f\n",
	     now > h->started ? now - h->started : 0.0);
	emit(t, "# HELP ksockd_build_info The running version.\n"
		"# TYPE ksockd_build_info gauge\n"
		"ksockd_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
}

static void
emit_certs(struct text *t, const struct ks_conf *conf)
{
	const struct ks_tls_certinfo *ci;
	size_t i, j, n;

	emit(t, "# HELP ksockd_tls_certificate_not_after_seconds When each "
		"served certificate expires, in seconds since the epoch.\n"
		"# TYPE ksockd_tls_certificate_not_after_seconds gauge\n");
	for (i = 0; conf != NULL && i < conf->nlisteners; i++) {
		ci = ks_tls_ctx_certs(conf->listeners[i].tls_ctx, &n);
		for (j = 0; j < n; j++) {
			emit(t, "ksockd_tls_certificate_not_after_seconds"
				"{listener=\"");
			emit_value(t, conf->listeners[i].name);
			emit(t, "\",name=\"");
			emit_value(t, ci[j].name);
			emit(t, "\"} %lld\n", ci[j].not_after);
		}
	}
}

void
ks_metrics_src_init(struct ks_metrics_src *src, const struct ks_scoreboard *sb,
		    const struct ks_conf *conf)
{
	src->sb = sb;
	src->conf = conf;
}

char *
ks_metrics_render(const struct ks_metrics_src *src, size_t *len)
{
	const struct ks_scoreboard *sb = src->sb;
	const struct ks_sb_header *h = sb->hdr;
	struct text t = {NULL, 0, 0, 0};
	struct lrow rows[KS_SB_LISTENERS];
	struct ks_stats *sums = NULL, daemon;
	unsigned ids[KS_SB_LISTENERS];
	uint32_t gen = __atomic_load_n(&h->generation, __ATOMIC_ACQUIRE);
	size_t n = 0;
	unsigned id;

	*len = 0;
	/* The listeners of the generation serving now (and of one about to,
	 * during a reload). */
	for (id = 0; id < KS_SB_LISTENERS; id++) {
		if (!__atomic_load_n(&h->dir[id].used, __ATOMIC_ACQUIRE) ||
		    h->dir[id].generation < gen)
			continue;
		memcpy(rows[n].name, h->dir[id].name, KS_SB_NAME);
		rows[n].name[KS_SB_NAME - 1] = '\0';
		ids[n] = id;
		n++;
	}
	t.cap = 4096 + n * 4096; /* about what a listener takes */
	if ((sums = calloc(n + 1, sizeof(*sums))) == NULL ||
	    (t.p = malloc(t.cap)) == NULL) {
		free(sums);
		return NULL;
	}
	ks_sb_sum(sb, &daemon, ids, n, sums);
	emit_listeners(&t, rows, sums, n);
	emit_daemon(&t, &daemon);
	emit_master(&t, sb);
	emit_certs(&t, src->conf);
	free(sums);
	if (t.failed) {
		free(t.p);
		return NULL;
	}
	*len = t.len;
	return t.p;
}

KS_API char *
ks_metrics_text(ks_conn *conn, size_t *len)
{
	*len = 0;
	if (conn == NULL || conn->wk->metrics == NULL)
		return NULL;
	return ks_metrics_render(conn->wk->metrics, len);
}
