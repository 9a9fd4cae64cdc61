/*
 * daytime: RFC 867.  Sends the local date and time in the form of
 * ctime(3), "Wed Nov 25 16:23:55 2026", followed by CRLF, then closes.
 * Day and month names are fixed English, whatever the locale.  No options.
 */
#include <stdio.h>
#include <time.h>

#include <ksockd/plugin.h>

static const char *const daytime_keys[] = {NULL};
static const char daytime_days[7][4] = {"Sun", "Mon", "Tue", "Wed",
					"Thu", "Fri", "Sat"};
static const char daytime_months[12][4] = {"Jan", "Feb", "Mar", "Apr",
					   "May", "Jun", "Jul", "Aug",
					   "Sep", "Oct", "Nov", "Dec"};

static int
daytime_init(const ks_options *opts, void **state, char *err, size_t errlen)
{
	*state = NULL;
	if (opts != NULL && ks_opt_check_keys(opts, daytime_keys, err, errlen))
		return -1;
	/* Read the time zone now, not from /etc/localtime inside a handler. */
	tzset();
	return 0;
}

static int
daytime_handle(ks_conn *conn, ks_rchan *in, ks_wchan *out, void *state)
{
	time_t now = time(NULL);
	struct tm tm;

	(void)in;
	(void)state;
	if (localtime_r(&now, &tm) == NULL || tm.tm_wday < 0 ||
	    tm.tm_wday > 6 || tm.tm_mon < 0 || tm.tm_mon > 11) {
		ks_conn_log(conn, KS_LOG_WARN, "cannot convert the time");
		return KS_EINVAL;
	}
	return ks_printf(out, "%s %s %2d %02d:%02d:%02d %d\r\n",
			 daytime_days[tm.tm_wday], daytime_months[tm.tm_mon],
			 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 tm.tm_year + 1900);
}

KS_PLUGIN_DEFINE(.name = "daytime", .version = "1.0", .init = daytime_init,
		 .handle = daytime_handle);
