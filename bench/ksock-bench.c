/*
 * ksock-bench: a single-threaded load generator for line-echo servers
 * (ksockd and its peers), in the spirit of redis-benchmark: N connections
 * on one libev loop, GnuTLS for --tls.  See ksock-bench(1).
 *
 * This file holds the command line, the run control (warm-up, measured
 * period, hard limit, progress) and the report; the modes live in
 * kb-conn.c (stream sockets) and kb-udp.c.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/un.h>

#include "kb.h"

#define KB_HARD_EXTRA 10.0 /* seconds past warm-up + duration */
#define KB_ERRORS_SHOWN 5

struct kb_run kb;

static const char *const mode_names[] = {
	[KB_PINGPONG] = "pingpong", [KB_STREAM] = "stream",
	[KB_CONNECT] = "connect",   [KB_HANDSHAKE] = "handshake",
	[KB_UDP] = "udp",           [KB_IDLE] = "idle",
};

static const char *const err_names[KB_ERR_COUNT] = {
	[KB_ERR_CONNECT] = "connect",   [KB_ERR_CLOSED] = "closed",
	[KB_ERR_MISMATCH] = "mismatch", [KB_ERR_TLS] = "tls",
	[KB_ERR_TIMEOUT] = "timeout",   [KB_ERR_OTHER] = "other",
};

/* Run control state. */
static struct {
	ev_timer warm;     /* end of warm-up */
	ev_timer end;      /* end of the measured period (idle: of the hold) */
	ev_timer hard;     /* nothing runs past this */
	ev_timer progress; /* one stderr line per second */
	ev_signal sigint;
	bool started, ended;
	uint64_t t_begin, t_warm, t_end, t_hold; /* ns */
	struct kb_count at_warm, at_end;
	struct kb_proc p_warm, p_end;
	bool have_proc;
	uint64_t last_ops; /* progress */
	uint64_t shown;    /* error messages printed */
	char target[300];  /* "tcp 127.0.0.1:9007" */
	const char *host;  /* -H without brackets */
	char host_buf[INET6_ADDRSTRLEN];
} run;

/* ---- errors and run control -------------------------------------------- */

void
kb_error(enum kb_err kind, const char *fmt, ...)
{
	va_list ap;

	kb.errors[kind]++;
	if (run.shown < KB_ERRORS_SHOWN) {
		fputs("ksock-bench: ", stderr);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
		if (++run.shown == KB_ERRORS_SHOWN)
			fputs("ksock-bench: further errors are counted, not "
			      "shown\n",
			      stderr);
	}
	if (kind == KB_ERR_CONNECT && kb.connected == 0 && !kb.stopping &&
	    ++kb.early_fail >= kb.o->conns) {
		fprintf(stderr, "ksock-bench: no connection could be made to %s\n",
			run.target);
		kb_stop();
	}
}

void
kb_connected(void)
{
	kb.connected++;
}

static void
measure_start(void)
{
	run.started = true;
	run.t_warm = kb_now_ns();
	run.at_warm = kb.c;
	kb_hist_reset(&kb.hist);
	if (kb.o->npids > 0 &&
	    kb_proc_sample(kb.o->pids, kb.o->npids, &run.p_warm) == 0)
		run.have_proc = true;
	/* The measured period counts from here even when the warm-up timer
	 * fired late; idle starts it once every connection is held. */
	if (kb.o->mode != KB_IDLE) {
		ev_timer_set(&run.end, kb.o->duration, 0.);
		ev_timer_start(kb.loop, &run.end);
	}
}

static void
measure_end(void)
{
	if (run.ended)
		return;
	run.ended = true;
	run.t_end = kb_now_ns();
	run.at_end = kb.c;
	if (run.have_proc &&
	    kb_proc_sample(kb.o->pids, kb.o->npids, &run.p_end) < 0)
		run.have_proc = false; /* the server is gone */
}

void
kb_stop(void)
{
	if (kb.stopping)
		return;
	kb.stopping = true;
	if (run.started)
		measure_end();
	ev_break(kb.loop, EVBREAK_ALL);
}

void
kb_idle_ready(void)
{
	if (kb.stopping)
		return;
	run.t_hold = kb_now_ns();
	ev_timer_set(&run.end, kb.o->duration, 0.);
	ev_timer_start(kb.loop, &run.end);
}

static void
warm_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	measure_start();
}

static void
end_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	kb_stop();
}

static void
hard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	kb_error(KB_ERR_TIMEOUT, "hard time limit reached, stopping");
	kb_stop();
}

static void
sigint_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	fprintf(stderr, "ksock-bench: interrupted, reporting what was "
			"measured\n");
	kb_stop();
}

static uint64_t
errors_total(void)
{
	uint64_t n = 0;
	int i;

	for (i = 0; i < KB_ERR_COUNT; i++)
		n += kb.errors[i];
	return n;
}

static void
progress_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	double t = (double)(kb_now_ns() - run.t_begin) / 1e9;
	uint64_t d = kb.c.ops - run.last_ops;

	run.last_ops = kb.c.ops;
	if (kb.o->mode == KB_IDLE)
		fprintf(stderr, "%6.1f s  held %u/%u", t,
			kb_tcp_established(), kb.o->conns);
	else if (kb.o->mode == KB_STREAM)
		fprintf(stderr, "%6.1f s  %-7s  %9.1f MB/s", t,
			run.started ? "run" : "warm-up", (double)d / 1e6);
	else
		fprintf(stderr, "%6.1f s  %-7s  %9llu /s", t,
			run.started ? "run" : "warm-up", (unsigned long long)d);
	fprintf(stderr, "  errors %llu\n", (unsigned long long)errors_total());
}

/* ---- report ------------------------------------------------------------- */

struct report {
	double duration;
	uint64_t requests, resumed, lost, errors;
	double rate; /* requests per second */
	double rps, mbps, conn_per_s, handshakes_per_s, datagrams_per_s;
	double p50, p99, p999;
	double cpu_s, cpu_per_op;
	uint64_t rss_before, rss_after;
	double kib_per_conn;
};

static void
report_compute(struct report *r)
{
	const struct kb_opts *o = kb.o;
	uint64_t from = o->mode == KB_IDLE ? run.t_hold : run.t_warm;

	memset(r, 0, sizeof(*r));
	if (run.started && run.ended && from > 0 && run.t_end > from)
		r->duration = (double)(run.t_end - from) / 1e9;
	if (run.started && run.ended) {
		r->requests = run.at_end.ops - run.at_warm.ops;
		r->resumed = run.at_end.resumed - run.at_warm.resumed;
		r->lost = run.at_end.lost - run.at_warm.lost;
	}
	r->errors = errors_total();
	if (r->duration > 0 && o->mode != KB_IDLE)
		r->rate = (double)r->requests / r->duration;
	switch (o->mode) {
	case KB_PINGPONG:
		r->rps = r->rate;
		break;
	case KB_STREAM:
		r->mbps = r->rate / 1e6;
		break;
	case KB_CONNECT:
		r->conn_per_s = r->rate;
		break;
	case KB_HANDSHAKE:
		r->handshakes_per_s = r->rate;
		break;
	case KB_UDP:
		r->datagrams_per_s = r->rate;
		break;
	case KB_IDLE:
		break;
	}
	if (o->mode != KB_STREAM) {
		r->p50 = kb_hist_percentile_us(&kb.hist, 0.50);
		r->p99 = kb_hist_percentile_us(&kb.hist, 0.99);
		r->p999 = kb_hist_percentile_us(&kb.hist, 0.999);
	}
	if (run.have_proc && run.ended) {
		r->cpu_s = run.p_end.cpu_s - run.p_warm.cpu_s;
		if (r->requests > 0)
			r->cpu_per_op = r->cpu_s * 1e6 / (double)r->requests;
		if (o->mode == KB_IDLE) {
			r->rss_before = run.p_warm.rss_kib;
			r->rss_after = run.p_end.rss_kib;
			r->kib_per_conn = ((double)r->rss_after -
					   (double)r->rss_before) /
					  o->conns;
		}
	}
}

static void
report_json(const struct report *r)
{
	printf("{\"mode\": \"%s\", \"connections\": %u, \"duration\": %.3f, "
	       "\"requests\": %llu, \"rps\": %.1f, \"mbps\": %.3f, "
	       "\"p50_us\": %.1f, \"p99_us\": %.1f, \"p999_us\": %.1f, "
	       "\"conn_per_s\": %.1f, \"handshakes_per_s\": %.1f, "
	       "\"resumed\": %llu, \"datagrams_per_s\": %.1f, "
	       "\"lost\": %llu, \"errors\": %llu, \"server_cpu_s\": %.3f, "
	       "\"server_cpu_us_per_op\": %.6g, \"rss_before_kib\": %llu, "
	       "\"rss_after_kib\": %llu, \"kib_per_conn\": %.3f}\n",
	       mode_names[kb.o->mode], kb.o->conns, r->duration,
	       (unsigned long long)r->requests, r->rps, r->mbps, r->p50,
	       r->p99, r->p999, r->conn_per_s, r->handshakes_per_s,
	       (unsigned long long)r->resumed, r->datagrams_per_s,
	       (unsigned long long)r->lost, (unsigned long long)r->errors,
	       r->cpu_s, r->cpu_per_op, (unsigned long long)r->rss_before,
	       (unsigned long long)r->rss_after, r->kib_per_conn);
}

static void
report_human(const struct report *r)
{
	const struct kb_opts *o = kb.o;
	unsigned long long n = r->requests;
	int i;

	printf("%s  %u conns  %.1f s  %s", mode_names[o->mode], o->conns,
	       r->duration, run.target);
	if (o->mode == KB_PINGPONG && o->pipeline > 1)
		printf("  pipeline %u", o->pipeline);
	printf("\n");
	switch (o->mode) {
	case KB_PINGPONG:
		printf("  requests   %llu  (%.0f req/s)\n", n, r->rps);
		break;
	case KB_STREAM:
		printf("  received   %.1f MB  (%.1f MB/s)\n", (double)n / 1e6,
		       r->mbps);
		break;
	case KB_CONNECT:
		printf("  connections %llu  (%.0f conn/s)", n, r->conn_per_s);
		if (o->resume)
			printf("  resumed %llu", (unsigned long long)r->resumed);
		printf("\n");
		break;
	case KB_HANDSHAKE:
		printf("  handshakes %llu  (%.0f hs/s)  resumed %llu\n", n,
		       r->handshakes_per_s, (unsigned long long)r->resumed);
		break;
	case KB_UDP:
		printf("  datagrams  %llu  (%.0f dgram/s)  lost %llu\n", n,
		       r->datagrams_per_s, (unsigned long long)r->lost);
		break;
	case KB_IDLE:
		printf("  held       %llu of %u connections\n", n, o->conns);
		break;
	}
	if (o->mode != KB_STREAM)
		printf("  latency    p50 %.0f us  p99 %.0f us  p999 %.0f us\n",
		       r->p50, r->p99, r->p999);
	if (run.have_proc && run.ended) {
		if (o->mode == KB_STREAM)
			printf("  server CPU %.2f s  %.0f us/MB\n", r->cpu_s,
			       r->cpu_per_op * 1e6);
		else
			printf("  server CPU %.2f s  %.1f us/op\n", r->cpu_s,
			       r->cpu_per_op);
		if (o->mode == KB_IDLE)
			printf("  server RSS %llu KiB before, %llu KiB after  "
			       "(%.2f KiB/conn)\n",
			       (unsigned long long)r->rss_before,
			       (unsigned long long)r->rss_after,
			       r->kib_per_conn);
	}
	printf("  errors     %llu", (unsigned long long)r->errors);
	if (r->errors > 0) {
		const char *sep = "  (";

		for (i = 0; i < KB_ERR_COUNT; i++) {
			if (kb.errors[i] == 0)
				continue;
			printf("%s%s %llu", sep, err_names[i],
			       (unsigned long long)kb.errors[i]);
			sep = ", ";
		}
		printf(")");
	}
	printf("\n");
}

/* ---- command line ------------------------------------------------------- */

static void
usage(FILE *f)
{
	fputs("Usage: ksock-bench MODE [options]\n"
	      "Modes: pingpong, stream, connect, handshake, udp, idle\n"
	      "  -H, --host HOST         server address (default 127.0.0.1)\n"
	      "  -p, --port PORT         server port\n"
	      "  -U, --unix PATH         Unix stream socket instead of TCP\n"
	      "  -c, --connections N     concurrent connections (default 50)\n"
	      "  -d, --duration SECONDS  measured period (default 5)\n"
	      "  -w, --warmup SECONDS    unmeasured warm-up (default 1)\n"
	      "  -s, --size BYTES        line, chunk or datagram size\n"
	      "  -P, --pipeline N        pingpong: lines in flight (default 1)\n"
	      "      --greeting          read one line from the server first\n"
	      "      --tls               TLS (GnuTLS) over the connection\n"
	      "      --sni NAME          server name to send\n"
	      "      --ca FILE           verify the server against FILE\n"
	      "      --alpn PROTO        offer ALPN protocol PROTO\n"
	      "      --priority STRING   GnuTLS priority (default NORMAL)\n"
	      "      --resume            resume TLS sessions\n"
	      "      --exchange          handshake: one line after it\n"
	      "      --pid PID[,PID...]  sample the server's CPU and memory\n"
	      "      --json              one JSON object on stdout\n"
	      "  -q, --quiet             no progress output\n"
	      "  -h, --help              this help\n"
	      "  -V, --version           version\n"
	      "See ksock-bench(1).\n",
	      f);
}

static int KB_PRINTF(1, 2)
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("ksock-bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'ksock-bench --help'.\n", stderr);
	return -1;
}

static int
parse_ulong(const char *s, const char *what, unsigned long min,
	    unsigned long max, unsigned long *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min ||
	    v > max)
		return usage_error("%s: '%s' is not a number from %lu to %lu",
				   what, s, min, max);
	*out = v;
	return 0;
}

static int
parse_seconds(const char *s, const char *what, double min, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < min ||
	    v > 86400 * 365)
		return usage_error("%s: '%s' is not a valid number of seconds",
				   what, s);
	*out = v;
	return 0;
}

static int
parse_pids(char *s, struct kb_opts *o)
{
	unsigned long v;
	char *tok, *save = NULL;

	for (tok = strtok_r(s, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		pid_t *p = realloc(o->pids, (o->npids + 1) * sizeof(*p));

		if (p == NULL)
			return usage_error("out of memory");
		o->pids = p;
		if (parse_ulong(tok, "--pid", 1, INT_MAX, &v) < 0)
			return -1;
		o->pids[o->npids++] = (pid_t)v;
	}
	if (o->npids == 0)
		return usage_error("--pid: no process id given");
	return 0;
}

enum {
	OPT_GREETING = 256,
	OPT_TLS,
	OPT_SNI,
	OPT_CA,
	OPT_ALPN,
	OPT_PRIORITY,
	OPT_RESUME,
	OPT_EXCHANGE,
	OPT_PID,
	OPT_JSON,
};

/* Returns 0, 1 when --help or --version was handled, -1 on error. */
static int
parse_opts(int argc, char **argv, struct kb_opts *o)
{
	static const struct option longopts[] = {
		{"host", required_argument, NULL, 'H'},
		{"port", required_argument, NULL, 'p'},
		{"unix", required_argument, NULL, 'U'},
		{"connections", required_argument, NULL, 'c'},
		{"duration", required_argument, NULL, 'd'},
		{"warmup", required_argument, NULL, 'w'},
		{"size", required_argument, NULL, 's'},
		{"pipeline", required_argument, NULL, 'P'},
		{"greeting", no_argument, NULL, OPT_GREETING},
		{"tls", no_argument, NULL, OPT_TLS},
		{"sni", required_argument, NULL, OPT_SNI},
		{"ca", required_argument, NULL, OPT_CA},
		{"alpn", required_argument, NULL, OPT_ALPN},
		{"priority", required_argument, NULL, OPT_PRIORITY},
		{"resume", no_argument, NULL, OPT_RESUME},
		{"exchange", no_argument, NULL, OPT_EXCHANGE},
		{"pid", required_argument, NULL, OPT_PID},
		{"json", no_argument, NULL, OPT_JSON},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *tls_only = NULL;
	unsigned long v, size = 0;
	size_t max_size;
	int ch, m;

	o->host = "127.0.0.1";
	o->conns = 50;
	o->duration = 5;
	o->warmup = 1;
	o->pipeline = 1;
	o->priority = "NORMAL";
	while ((ch = getopt_long(argc, argv, "H:p:U:c:d:w:s:P:qhV", longopts,
				 NULL)) != -1) {
		switch (ch) {
		case 'H':
			o->host = optarg;
			break;
		case 'p':
			o->port = optarg;
			break;
		case 'U':
			o->unix_path = optarg;
			break;
		case 'c':
			if (parse_ulong(optarg, "-c", 1, 1000000, &v) < 0)
				return -1;
			o->conns = (unsigned)v;
			break;
		case 'd':
			if (parse_seconds(optarg, "-d", 0.001, &o->duration) < 0)
				return -1;
			break;
		case 'w':
			if (parse_seconds(optarg, "-w", 0, &o->warmup) < 0)
				return -1;
			break;
		case 's':
			if (parse_ulong(optarg, "-s", 1, 16 << 20, &size) < 0)
				return -1;
			break;
		case 'P':
			if (parse_ulong(optarg, "-P", 1, 4096, &v) < 0)
				return -1;
			o->pipeline = (unsigned)v;
			break;
		case OPT_GREETING:
			o->greeting = true;
			break;
		case OPT_TLS:
			o->tls = true;
			break;
		case OPT_SNI:
			o->sni = optarg;
			tls_only = "--sni";
			break;
		case OPT_CA:
			o->ca = optarg;
			tls_only = "--ca";
			break;
		case OPT_ALPN:
			o->alpn = optarg;
			tls_only = "--alpn";
			break;
		case OPT_PRIORITY:
			o->priority = optarg;
			tls_only = "--priority";
			break;
		case OPT_RESUME:
			o->resume = true;
			tls_only = "--resume";
			break;
		case OPT_EXCHANGE:
			o->exchange = true;
			break;
		case OPT_PID:
			if (parse_pids(optarg, o) < 0)
				return -1;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 1;
		case 'V':
			printf("ksock-bench (ksockd) %s\n", PACKAGE_VERSION);
			return 1;
		default:
			fputs("Try 'ksock-bench --help'.\n", stderr);
			return -1;
		}
	}
	if (optind >= argc)
		return usage_error("no MODE given");
	if (optind + 1 < argc)
		return usage_error("unexpected argument '%s'", argv[optind + 1]);
	for (m = 0; m <= KB_IDLE; m++)
		if (strcmp(argv[optind], mode_names[m]) == 0)
			break;
	if (m > KB_IDLE)
		return usage_error("unknown mode '%s'", argv[optind]);
	o->mode = (enum kb_mode)m;

	if (o->unix_path != NULL && o->mode == KB_UDP)
		return usage_error("-U does not apply to udp");
	if (o->unix_path == NULL && o->port == NULL)
		return usage_error("-p PORT or -U PATH is required");
	if (o->unix_path != NULL && o->port != NULL)
		return usage_error("-p and -U exclude each other");
	if (o->mode == KB_HANDSHAKE && !o->tls)
		return usage_error("handshake mode needs --tls");
	if (o->tls && o->mode == KB_UDP)
		return usage_error("--tls does not apply to udp");
	if (tls_only != NULL && !o->tls)
		return usage_error("%s needs --tls", tls_only);
	if (o->resume && o->mode != KB_CONNECT && o->mode != KB_HANDSHAKE)
		return usage_error("--resume applies to connect and handshake");

	switch (o->mode) {
	case KB_STREAM:
		max_size = 16 << 20;
		o->size = size ? size : 16384;
		break;
	case KB_UDP:
		max_size = 65507;
		o->size = size ? size : 64;
		break;
	case KB_PINGPONG:
		max_size = (64u << 20) / o->pipeline;
		o->size = size ? size : 32;
		break;
	default:
		max_size = 1 << 20;
		o->size = size ? size : 32;
		break;
	}
	if (o->size > max_size)
		return usage_error("-s %zu is too large for %s (at most %zu%s)",
				   o->size, mode_names[o->mode], max_size,
				   o->mode == KB_PINGPONG ? " with this -P" : "");
	return 0;
}

/* ---- setup -------------------------------------------------------------- */

/* Raises the soft RLIMIT_NOFILE to the hard limit; checks there is room
 * for the connections (plus a margin for stdio, libev and GnuTLS). */
static int
raise_nofile(unsigned need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 0;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)need + 32 > rl.rlim_cur)
		return usage_error("-c %u needs more file descriptors than the "
				   "limit allows (%llu)",
				   need, (unsigned long long)rl.rlim_cur);
	return 0;
}

static int
resolve(const struct kb_opts *o)
{
	char name[NI_MAXHOST], serv[NI_MAXSERV];
	const char *proto = o->mode == KB_UDP ? "udp" : o->tls ? "tls" : "tcp";
	struct addrinfo hints, *res;
	size_t hl = strlen(o->host);
	int r;

	if (o->unix_path != NULL) {
		struct sockaddr_un *un = (struct sockaddr_un *)&kb.addr;

		if (strlen(o->unix_path) >= sizeof(un->sun_path)) {
			usage_error("-U: path too long");
			return -1;
		}
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, o->unix_path);
		kb.addrlen = sizeof(*un);
		kb.family = AF_UNIX;
		snprintf(run.target, sizeof(run.target), "%s %s",
			 o->tls ? "tls+unix" : "unix", o->unix_path);
		return 0;
	}
	/* Accept "[::1]" as well as "::1". */
	run.host = o->host;
	if (hl > 2 && o->host[0] == '[' && o->host[hl - 1] == ']' &&
	    hl - 2 < sizeof(run.host_buf)) {
		memcpy(run.host_buf, o->host + 1, hl - 2);
		run.host_buf[hl - 2] = '\0';
		run.host = run.host_buf;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = o->mode == KB_UDP ? SOCK_DGRAM : SOCK_STREAM;
	r = getaddrinfo(run.host, o->port, &hints, &res);
	if (r != 0) {
		fprintf(stderr, "ksock-bench: %s port %s: %s\n", o->host,
			o->port, gai_strerror(r));
		return -1;
	}
	memcpy(&kb.addr, res->ai_addr, res->ai_addrlen);
	kb.addrlen = res->ai_addrlen;
	kb.family = res->ai_family;
	freeaddrinfo(res);
	if (getnameinfo((struct sockaddr *)&kb.addr, kb.addrlen, name,
			sizeof(name), serv, sizeof(serv),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(name, sizeof(name), "%s", o->host);
	snprintf(run.target, sizeof(run.target),
		 kb.family == AF_INET6 ? "%s [%s]:%s" : "%s %s:%s", proto, name,
		 o->port);
	return 0;
}

static bool
is_ip_literal(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, buf) == 1 ||
	       inet_pton(AF_INET6, s, buf) == 1;
}

static int
tls_setup(const struct kb_opts *o)
{
	const char *errpos = NULL;
	int r;

	r = gnutls_global_init();
	if (r < 0)
		goto fail;
	r = gnutls_certificate_allocate_credentials(&kb.cred);
	if (r < 0)
		goto fail;
	if (o->ca != NULL) {
		r = gnutls_certificate_set_x509_trust_file(kb.cred, o->ca,
							   GNUTLS_X509_FMT_PEM);
		if (r <= 0) {
			fprintf(stderr, "ksock-bench: --ca %s: %s\n", o->ca,
				r == 0 ? "no certificate found"
				       : gnutls_strerror(r));
			return -1;
		}
	} else {
		fputs("ksock-bench: no --ca given: the server certificate is "
		      "not verified\n",
		      stderr);
	}
	r = gnutls_priority_init(&kb.prio, o->priority, &errpos);
	if (r < 0) {
		fprintf(stderr, "ksock-bench: --priority: %s at '%s'\n",
			gnutls_strerror(r), errpos != NULL ? errpos : "");
		return -1;
	}
	if (o->sni != NULL)
		kb.sni = o->sni;
	else if (o->unix_path == NULL && !is_ip_literal(run.host))
		kb.sni = run.host;
	kb.verify_name = kb.sni != NULL ? kb.sni
			 : o->unix_path == NULL ? run.host
						: NULL;
	if (o->alpn != NULL) {
		kb.alpn.data = (unsigned char *)o->alpn;
		kb.alpn.size = (unsigned)strlen(o->alpn);
	}
	return 0;
fail:
	fprintf(stderr, "ksock-bench: GnuTLS: %s\n", gnutls_strerror(r));
	return -1;
}

/* The data sent: printable lines (no '\n' inside) and, for stream, a byte
 * pattern long enough for any chunk or read at any offset. */
static int
patterns_setup(const struct kb_opts *o)
{
	static const char chars[KB_LINE_PERIOD + 1] =
		"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXY";
	size_t i;

	kb.line_pat_len = o->size + KB_LINE_PERIOD;
	kb.line_pat = malloc(kb.line_pat_len);
	kb.line = malloc(o->size);
	if (kb.line_pat == NULL || kb.line == NULL)
		return -1;
	for (i = 0; i < kb.line_pat_len; i++)
		kb.line_pat[i] = chars[i % KB_LINE_PERIOD];
	memcpy(kb.line, kb.line_pat, o->size - 1);
	kb.line[o->size - 1] = '\n';
	if (o->mode == KB_STREAM) {
		kb.bin_pat_len = (o->size > sizeof(kb.scratch)
					  ? o->size
					  : sizeof(kb.scratch)) +
				 KB_BIN_PERIOD;
		kb.bin_pat = malloc(kb.bin_pat_len);
		if (kb.bin_pat == NULL)
			return -1;
		for (i = 0; i < kb.bin_pat_len; i++)
			kb.bin_pat[i] = (unsigned char)(1 + i % KB_BIN_PERIOD);
	}
	return 0;
}

static void
teardown(void)
{
	kb_tcp_stop();
	kb_udp_stop();
	if (kb.prio != NULL)
		gnutls_priority_deinit(kb.prio);
	if (kb.cred != NULL) {
		gnutls_certificate_free_credentials(kb.cred);
		gnutls_global_deinit();
	}
	free(kb.line_pat);
	free(kb.line);
	free(kb.bin_pat);
	free(kb.o->pids);
	if (kb.loop != NULL)
		ev_loop_destroy(kb.loop);
}

int
main(int argc, char **argv)
{
	static struct kb_opts opts;
	const struct kb_opts *o = &opts;
	struct report rep;
	int r, status = 1;

	kb.o = o;
	r = parse_opts(argc, argv, &opts);
	if (r != 0) {
		free(opts.pids);
		return r > 0 ? 0 : 1;
	}
	if (raise_nofile(o->conns) < 0 || patterns_setup(o) < 0)
		goto out;
	signal(SIGPIPE, SIG_IGN);
	if (resolve(o) < 0) {
		status = 2;
		goto out;
	}
	if (o->tls && tls_setup(o) < 0)
		goto out;
	kb.loop = ev_default_loop(EVFLAG_AUTO);
	if (kb.loop == NULL) {
		fputs("ksock-bench: cannot initialise libev\n", stderr);
		goto out;
	}
	if (o->npids > 0 && kb_proc_sample(o->pids, o->npids, &run.p_warm) < 0) {
		fprintf(stderr, "ksock-bench: --pid: %s\n", strerror(errno));
		goto out;
	}

	ev_now_update(kb.loop); /* the timers count from now */
	run.t_begin = kb_now_ns();
	ev_timer_init(&run.warm, warm_cb, o->warmup, 0.);
	ev_timer_init(&run.end, end_cb, o->duration, 0.);
	ev_timer_init(&run.hard, hard_cb,
		      o->warmup + o->duration + KB_HARD_EXTRA, 0.);
	ev_timer_init(&run.progress, progress_cb, 1., 1.);
	ev_signal_init(&run.sigint, sigint_cb, SIGINT);
	ev_timer_start(kb.loop, &run.hard);
	ev_signal_start(kb.loop, &run.sigint);
	if (!o->quiet)
		ev_timer_start(kb.loop, &run.progress);
	if (o->mode == KB_IDLE || o->warmup == 0)
		measure_start(); /* idle: the baseline precedes connecting */
	else
		ev_timer_start(kb.loop, &run.warm);

	r = o->mode == KB_UDP ? kb_udp_start() : kb_tcp_start();
	if (r < 0) {
		fputs("ksock-bench: cannot set up the connections\n", stderr);
		goto out;
	}
	if (!kb.stopping)
		ev_run(kb.loop, 0);
	if (run.started)
		measure_end();
	if (o->mode != KB_UDP)
		kb_tcp_check_stalled();
	/* Close everything before reporting. */
	kb_tcp_stop();
	kb_udp_stop();

	report_compute(&rep);
	if (o->json)
		report_json(&rep);
	else
		report_human(&rep);
	fflush(stdout);
	if (kb.connected == 0)
		status = 2;
	else if (rep.errors > 0)
		status = 3;
	else
		status = 0;
out:
	teardown();
	return status;
}
