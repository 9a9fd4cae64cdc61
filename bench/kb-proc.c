/*
 * Server CPU time and resident memory, read from /proc: the listed
 * processes and all their descendants (found through the ppid field of
 * every /proc/N/stat), so that a master and its workers count as one
 * server.  Called only around the measured period, never per request.
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kb.h"

struct pinfo {
	pid_t pid;
	pid_t ppid;
	unsigned long long ticks; /* utime + stime + cutime + cstime */
	bool in;                  /* listed, or a descendant of one */
};

/* Parses /proc/PID/stat.  The command name may hold spaces and
 * parentheses, so fields are counted from its last ')'. */
static int
read_stat(pid_t pid, struct pinfo *pi)
{
	char path[64], buf[1024], *p, *end;
	unsigned long long v[15];
	size_t n;
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (p == NULL || p[1] != ' ')
		return -1;
	p += 3; /* ") S " : field 3 (state) skipped */
	/* v[0] is field 4 (ppid) ... v[13] is field 17 (cstime) */
	for (i = 0; i < 14; i++) {
		v[i] = strtoull(p, &end, 10);
		if (end == p)
			return -1;
		p = end;
	}
	pi->pid = pid;
	pi->ppid = (pid_t)v[0];
	pi->ticks = v[10] + v[11] + v[12] + v[13];
	pi->in = false;
	return 0;
}

static uint64_t
read_rss_kib(pid_t pid)
{
	char path[64], line[256];
	unsigned long long kib = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kib = strtoull(line + 6, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kib;
}

int
kb_proc_sample(const pid_t *pids, unsigned npids, struct kb_proc *out)
{
	struct pinfo *all = NULL, *tmp;
	size_t n = 0, cap = 0, i;
	unsigned long long ticks = 0;
	struct dirent *de;
	bool changed;
	unsigned j;
	DIR *d;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	d = opendir("/proc");
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			tmp = realloc(all, cap * sizeof(*all));
			if (tmp == NULL)
				goto out;
			all = tmp;
		}
		if (read_stat((pid_t)atoi(de->d_name), &all[n]) == 0)
			n++;
	}
	for (j = 0; j < npids; j++) {
		for (i = 0; i < n && all[i].pid != pids[j]; i++)
			;
		if (i == n) {
			errno = ESRCH;
			goto out;
		}
		all[i].in = true;
	}
	/* Mark descendants until nothing changes: a handful of passes over a
	 * few hundred entries, twice per run. */
	do {
		changed = false;
		for (i = 0; i < n; i++) {
			size_t k;

			if (all[i].in)
				continue;
			for (k = 0; k < n; k++) {
				if (all[k].in && all[k].pid == all[i].ppid) {
					all[i].in = true;
					changed = true;
					break;
				}
			}
		}
	} while (changed);
	for (i = 0; i < n; i++) {
		if (!all[i].in)
			continue;
		ticks += all[i].ticks;
		out->rss_kib += read_rss_kib(all[i].pid);
		out->nproc++;
	}
	out->cpu_s = (double)ticks / (double)sysconf(_SC_CLK_TCK);
	ret = 0;
out:
	closedir(d);
	free(all);
	return ret;
}
