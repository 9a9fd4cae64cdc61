/*
 * daytime: RFC 867.  The local date and time in the form of ctime(3),
 * "Wed Nov 25 16:23:55 2026", followed by CRLF.  Day and month names are
 * fixed English, whatever the locale.
 *
 * TCP: sends the line, then closes.
 *
 * UDP: answers each datagram (whatever its content) with one datagram
 * holding the same line.  A truncated datagram gets no reply.  The
 * datagram guard (dgram_guard.h) refuses datagrams from port 0, from the
 * small-service ports 7, 9, 13, 19, 37, from the listener's own port and
 * from multicast or broadcast sources, and bounds the replies per source.
 *
 * Options (UDP only; accepted and ignored on TCP listeners):
 *   refuse_source_ports = [ ... ];  more source ports to refuse
 *   rate_limit = 100;  replies per second per source (IPv4 address or
 *                      IPv6 /64); 0: unlimited
 *   rate_burst = 200;  bucket size; default 2 * rate_limit
 */
#include <stdio.h>
#include <time.h>

#include <ksockd/plugin.h>

#include "dgram_guard.h"

#define DAYTIME_LINE 64 /* "Wed Nov 25 16:23:55 2026\r\n" and room */

static const char *const daytime_keys[] = {NULL};
static const char daytime_days[7][4] = {"Sun", "Mon", "Tue", "Wed",
					"Thu", "Fri", "Sat"};
static const char daytime_months[12][4] = {"Jan", "Feb", "Mar", "Apr",
					   "May", "Jun", "Jul", "Aug",
					   "Sep", "Oct", "Nov", "Dec"};

static int
daytime_init(const ks_options *opts, void **state, char *err, size_t errlen)
{
	struct dg_guard *g;

	*state = NULL;
	if (dg_guard_init(&g, "daytime", opts, daytime_keys, 0, err, errlen) !=
	    0)
		return -1;
	/* Read the time zone now, not from /etc/localtime inside a handler. */
	tzset();
	*state = g;
	return 0;
}

static void
daytime_fini(void *state)
{
	dg_guard_fini(state);
}

/* Formats the current local time with CRLF into buf (DAYTIME_LINE bytes):
 * its length, or -1 if the time cannot be converted. */
static int
daytime_format(char *buf)
{
	time_t now = time(NULL);
	struct tm tm;
	int n;

	if (localtime_r(&now, &tm) == NULL || tm.tm_wday < 0 ||
	    tm.tm_wday > 6 || tm.tm_mon < 0 || tm.tm_mon > 11)
		return -1;
	n = snprintf(buf, DAYTIME_LINE, "%s %s %2d %02d:%02d:%02d %d\r\n",
		     daytime_days[tm.tm_wday], daytime_months[tm.tm_mon],
		     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		     tm.tm_year + 1900);
	return n > 0 && n < DAYTIME_LINE ? n : -1;
}

static int
daytime_handle(ks_conn *conn, ks_rchan *in, ks_wchan *out, void *state)
{
	char line[DAYTIME_LINE];
	int n;

	(void)in;
	(void)state;
	if ((n = daytime_format(line)) < 0) {
		ks_conn_log(conn, KS_LOG_WARN, "cannot convert the time");
		return KS_EINVAL;
	}
	return ks_write(out, line, (size_t)n);
}

static const void *
daytime_reply(void *state, const ks_dgram *d, uint8_t *buf, size_t *n)
{
	int len;

	(void)state;
	(void)d;
	if ((len = daytime_format((char *)buf)) < 0)
		return NULL;
	*n = (size_t)len;
	return buf;
}

static int
daytime_handle_dgram(ks_conn *conn, ks_dsock *sock, void *state)
{
	return dg_serve(conn, sock, state, daytime_reply, NULL);
}

KS_PLUGIN_DEFINE(.name = "daytime", .version = "1.1", .init = daytime_init,
		 .handle = daytime_handle, .fini = daytime_fini,
		 .handle_dgram = daytime_handle_dgram);
