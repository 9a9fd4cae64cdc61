/*
 * EPOLLEXCLUSIVE for listening sockets under libev: see excl.h.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "excl.h"
#include "log.h"
#include "worker.h"

#ifndef EPOLLEXCLUSIVE
#define EPOLLEXCLUSIVE (1u << 28)
#endif

/* The registration of fd in the epoll set epfd, from the kernel's
 * /proc/self/fdinfo/EPFD ("tfd: FD events: MASK data: DATA ..."). */
static int
read_item(int epfd, int fd, unsigned *events, unsigned long long *data)
{
	char path[64], line[256];
	int tfd, found = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", epfd);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	while (found < 0 && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "tfd: %d events: %x data: %llx", &tfd, events,
			   data) == 3 &&
		    tfd == fd)
			found = 0;
	fclose(f);
	return found;
}

static int
is_epoll(int fd)
{
	char path[64], link[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return 0;
	link[n] = '\0';
	return strcmp(link, "anon_inode:[eventpoll]") == 0;
}

/* libev's epoll descriptor: the one that holds fd.  Cached; looked for
 * again if libev has replaced it. */
static int
find_item(struct ks_worker *wk, int fd, unsigned *events,
	  unsigned long long *data)
{
	struct dirent *e;
	DIR *d;
	int n;

	if (wk->excl_epfd >= 0 &&
	    read_item(wk->excl_epfd, fd, events, data) == 0)
		return wk->excl_epfd;
	wk->excl_epfd = -1;
	if ((d = opendir("/proc/self/fd")) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		n = atoi(e->d_name);
		if (e->d_name[0] == '.' || n == dirfd(d) || !is_epoll(n) ||
		    read_item(n, fd, events, data) != 0)
			continue;
		wk->excl_epfd = n;
		break;
	}
	closedir(d);
	return wk->excl_epfd;
}

static void
make_exclusive(struct ks_worker *wk, int fd)
{
	unsigned long long data;
	struct epoll_event ev;
	unsigned events;
	int epfd;

	if ((epfd = find_item(wk, fd, &events, &data)) < 0) {
		ks_log(KS_LOG_DEBUG, "listening socket %d: not in the loop's "
		       "epoll set: every worker wakes for its connections", fd);
		return;
	}
	if (events & EPOLLEXCLUSIVE)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLEXCLUSIVE;
	ev.data.u64 = data;
	if (epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL) == 0 &&
	    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
		return;
	/* Put back what libev had, so that it goes on working. */
	ks_log_errno(KS_LOG_DEBUG, "listening socket %d: EPOLLEXCLUSIVE", fd);
	ev.events = events;
	(void)epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

void
ks_excl_want(struct ks_worker *wk, int fd)
{
	int *fds;
	size_t i;

	for (i = 0; i < wk->nexcl; i++)
		if (wk->excl_fds[i] == fd)
			return;
	fds = realloc(wk->excl_fds, (wk->nexcl + 1) * sizeof(*fds));
	if (fds == NULL)
		return; /* only efficiency is lost */
	wk->excl_fds = fds;
	wk->excl_fds[wk->nexcl++] = fd;
}

void
ks_excl_drop(struct ks_worker *wk, int fd)
{
	size_t i;

	for (i = 0; i < wk->nexcl; i++)
		if (wk->excl_fds[i] == fd)
			wk->excl_fds[i] = wk->excl_fds[--wk->nexcl];
	/* libev still believes fd registered: it adds it afresh when the
	 * watcher starts again, and ks_excl_want fixes that up. */
	if (wk->excl_epfd >= 0)
		(void)epoll_ctl(wk->excl_epfd, EPOLL_CTL_DEL, fd, NULL);
}

/* Runs right before every poll, after libev has sent its changes to the
 * kernel: the moment a new registration can be replaced. */
void
ks_excl_hook(struct ks_worker *wk)
{
	size_t i;

	for (i = 0; i < wk->nexcl; i++)
		make_exclusive(wk, wk->excl_fds[i]);
	wk->nexcl = 0;
}
