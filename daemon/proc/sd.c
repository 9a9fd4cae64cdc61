/*
 * systemd integration: see sd.h.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "log.h"
#include "sd.h"

void
ks_sd_notify(const char *fmt, ...)
{
#ifdef HAVE_SYSTEMD
	char msg[1024];
	va_list ap;

	if (getenv("NOTIFY_SOCKET") == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	(void)sd_notify(0, msg);
#else
	(void)fmt;
#endif
}

void
ks_sd_reloading(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ks_sd_notify("RELOADING=1\nMONOTONIC_USEC=%llu",
		     (unsigned long long)ts.tv_sec * 1000000ULL +
			     (unsigned long long)ts.tv_nsec / 1000ULL);
}

int
ks_sd_watching(void)
{
#ifdef HAVE_SYSTEMD
	return getenv("NOTIFY_SOCKET") != NULL;
#else
	return 0;
#endif
}

void
ks_sd_free_names(char **names, int n)
{
	int i;

	for (i = 0; names != NULL && i < n; i++)
		free(names[i]);
	free(names);
}

/* LISTEN_FDNAMES: colon-separated, one per descriptor. */
static int
split_names(const char *s, int n, char **names)
{
	const char *end;
	int i;

	for (i = 0; s != NULL && i < n; i++) {
		end = strchr(s, ':');
		names[i] = end != NULL ? strndup(s, (size_t)(end - s))
				       : strdup(s);
		if (names[i] == NULL)
			return -1;
		s = end != NULL ? end + 1 : NULL;
	}
	return 0;
}

int
ks_sd_listen_fds(int *n, char ***names)
{
	const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
	char *end;
	long pid, fds;
	int rc = 0;

	*n = 0;
	*names = NULL;
	if (pid_s == NULL || fds_s == NULL)
		goto out;
	errno = 0;
	pid = strtol(pid_s, &end, 10);
	if (errno != 0 || *end != '\0' || pid <= 0)
		goto bad;
	if (pid != (long)getpid())
		goto out; /* meant for another process */
	fds = strtol(fds_s, &end, 10);
	if (errno != 0 || *end != '\0' || fds < 0 || fds > 4096)
		goto bad;
	if (fds > 0 && (*names = calloc((size_t)fds, sizeof(char *))) == NULL)
		goto bad;
	if (split_names(getenv("LISTEN_FDNAMES"), (int)fds, *names) != 0) {
		ks_sd_free_names(*names, (int)fds);
		*names = NULL;
		goto bad;
	}
	*n = (int)fds;
	goto out;
bad:
	ks_log(KS_LOG_ERR, "ignoring malformed LISTEN_PID=%s LISTEN_FDS=%s",
	       pid_s, fds_s);
	rc = -1;
out:
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return rc;
}
