#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

int ks_log_threshold = KS_LOG_INFO;
static enum ks_log_format log_format = KS_LOG_TEXT;

static ks_log_sink log_sink;
static pid_t log_pid; /* cached: one getpid() less per line */
static void *log_sink_ud;

static const char *const level_names[] = {"error", "warn", "info", "debug"};
/* syslog priorities for the journal prefix: err, warning, info, debug */
static const int level_prio[] = {3, 4, 6, 7};

/* journald sets JOURNAL_STREAM=dev:ino for the stream it gave us; only trust
 * it while stderr still is that stream (not redirected by a wrapper). */
static int
stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (e == NULL || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) != 0)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

void
ks_log_init(enum ks_log_format fmt, int threshold)
{
	if (fmt == KS_LOG_TEXT && stderr_is_journal())
		fmt = KS_LOG_JOURNAL;
	log_format = fmt;
	ks_log_threshold = threshold;
	log_pid = getpid();
}

void
ks_log_init_child(void)
{
	log_pid = getpid();
}

void
ks_log_set_threshold(int threshold)
{
	ks_log_threshold = threshold;
}

void
ks_log_set_sink(ks_log_sink sink, void *ud)
{
	log_sink = sink;
	log_sink_ud = ud;
}

void
ks_vlog(int level, const char *fmt, va_list ap)
{
	char msg[2048];
	int saved = errno;

	if (level < KS_LOG_ERR)
		level = KS_LOG_ERR;
	if (level > KS_LOG_DEBUG)
		level = KS_LOG_DEBUG;
	if (!ks_log_enabled(level))
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_sink != NULL) {
		log_sink(level, msg, log_sink_ud);
		errno = saved;
		return;
	}

	/* One fprintf per message keeps lines whole between processes. */
	switch (log_format) {
	case KS_LOG_JOURNAL:
		fprintf(stderr, "<%d>%s\n", level_prio[level], msg);
		break;
	case KS_LOG_PLAIN:
		fprintf(stderr, "%s\n", msg);
		break;
	default: {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ld ksockd[%d]: %s: %s\n", when,
			ts.tv_nsec / 1000000, (int)log_pid, level_names[level],
			msg);
		break;
	}
	}
	errno = saved;
}

void
ks_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ks_vlog(level, fmt, ap);
	va_end(ap);
}

void
ks_log_errno(int level, const char *fmt, ...)
{
	char msg[1536];
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ks_log(level, "%s: %s", msg, strerror(saved));
}

static double
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
ks_lograte_flush(struct ks_lograte *rl, int level)
{
	if (rl->suppressed > 0 && ks_log_enabled(level))
		ks_log(level, "%llu similar messages suppressed (%s)",
		       rl->suppressed, rl->what);
	rl->suppressed = 0;
	rl->window_start = 0;
	rl->n = 0;
}

int
ks_lograte_allow(struct ks_lograte *rl, int level,
		 uint64_t *suppressed_total)
{
	double now;

	if (!ks_log_enabled(level))
		return 0;
	now = mono_now();
	if (rl->window_start == 0 || now - rl->window_start >= KS_LOGRATE_WINDOW) {
		if (rl->suppressed > 0)
			ks_log(level, "%llu similar messages suppressed (%s)",
			       rl->suppressed, rl->what);
		rl->window_start = now;
		rl->n = 0;
		rl->suppressed = 0;
	}
	if (rl->n < KS_LOGRATE_BURST) {
		rl->n++;
		return 1;
	}
	rl->suppressed++;
	if (suppressed_total != NULL)
		(*suppressed_total)++;
	return 0;
}
