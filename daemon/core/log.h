/*
 * Logging to stderr.  Three formats: "text" for a terminal (timestamp and
 * level), "journal" when stderr is connected to journald (JOURNAL_STREAM is
 * set: sd-daemon "<N>" priority prefixes), and "plain" for `ksockd -t`
 * (the message alone, so config errors read "FILE:LINE: message").
 */
#ifndef KS_LOG_H
#define KS_LOG_H

#include <stdarg.h>
#include <stdint.h>

#include <ksockd/plugin.h>

enum ks_log_format {
	KS_LOG_TEXT = 0,
	KS_LOG_JOURNAL = 1,
	KS_LOG_PLAIN = 2,
};

extern int ks_log_threshold; /* messages above this level are dropped */

#define ks_log_enabled(level) ((level) <= ks_log_threshold)

/* Picks the format (KS_LOG_TEXT becomes KS_LOG_JOURNAL when stderr is the
 * journal) and the threshold. */
void ks_log_init(enum ks_log_format fmt, int threshold);
void ks_log_set_threshold(int threshold);
/* A forked process: its own pid in the lines it writes. */
void ks_log_init_child(void);

/* Tests capture messages: while a sink is set, messages that pass the
 * threshold go to it (formatted, without prefix) instead of stderr. */
typedef void (*ks_log_sink)(int level, const char *msg, void *ud);
void ks_log_set_sink(ks_log_sink sink, void *ud);

/*
 * Rate-limited messages, for what any client can cause at will (a refused
 * connection, a failed handshake, a bad PROXY header): at most
 * KS_LOGRATE_BURST messages per KS_LOGRATE_WINDOW seconds per limiter.
 * The others are counted (and added to *suppressed_total when set, the
 * worker's counter); the first message of a later window is preceded by
 * "N similar messages suppressed (WHAT)".
 */
#define KS_LOGRATE_BURST 10
#define KS_LOGRATE_WINDOW 5.0

struct ks_lograte {
	const char *what;   /* "refused connections" */
	double window_start; /* monotonic seconds */
	unsigned n;         /* messages in this window */
	unsigned long long suppressed;
};

#define KS_LOGRATE_INIT(what) {(what), 0, 0, 0}

/* May a message of `level` go out now?  Counts it otherwise. */
int ks_lograte_allow(struct ks_lograte *rl, int level,
		     uint64_t *suppressed_total);

/* Logs the count of what is suppressed now, if any (for the last
 * messages of a burst that ends: at exit, say). */
void ks_lograte_flush(struct ks_lograte *rl, int level);

void ks_vlog(int level, const char *fmt, va_list ap);
/* Like ks_log, with ": strerror(errno)" appended. */
void ks_log_errno(int level, const char *fmt, ...) KS_PRINTF(2, 3);

#endif
