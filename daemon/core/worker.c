#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "alog.h"
#include "conn.h"
#include "excl.h"
#include "log.h"
#include "resolver.h"
#include "util.h"
#include "worker.h"

/* Before every poll: run coroutines woken from other coroutines, then free
 * connections closed during this iteration (never inside the callbacks
 * that closed them, which may still touch them). */
static void
prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct ks_worker *wk = KS_CONTAINER_OF(w, struct ks_worker, prepare);
	struct ks_conn *c;

	(void)revents;
	/* Coroutines that yielded run after the next poll, which must then
	 * not block: an active idle watcher makes libev poll with timeout 0. */
	if (ks_sched_run_queue(&wk->sched))
		ev_idle_start(loop, &wk->idle);
	else
		ev_idle_stop(loop, &wk->idle);
	while ((c = wk->zombies) != NULL) {
		wk->zombies = c->next;
		ks_conn_free(c);
	}
	/* What this iteration logged goes out in one write. */
	if (wk->alog != NULL)
		ks_alog_flush(wk->alog);
	if (wk->on_idle != NULL && wk->nconns == 0)
		wk->on_idle(wk);
}

static void
idle_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
}

/* The process's resident memory, for the metrics: one pread a second. */
static void
sample_resident(struct ks_worker *wk)
{
	unsigned long long size, resident;
	char buf[128];
	ssize_t n;

	if (wk->statm_fd < 0 &&
	    (wk->statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)) < 0)
		return;
	n = pread(wk->statm_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return;
	buf[n] = '\0';
	if (sscanf(buf, "%llu %llu", &size, &resident) == 2)
		wk->stats->resident_bytes =
			resident * (unsigned long long)sysconf(_SC_PAGESIZE);
}

static void
sweep_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ks_worker *wk = KS_CONTAINER_OF(w, struct ks_worker, sweep);
	ev_tstamp now = ev_now(loop);
	struct ks_conn *c;

	(void)revents;
	for (c = wk->conns; c != NULL; c = c->next)
		ks_conn_hibernate_idle(c, now);
	wk->stats->buffer_bytes = wk->pool.used;
	if (wk->metrics != NULL)
		sample_resident(wk);
}

/* Right before the loop blocks, after libev has told the kernel what it
 * watches (see excl.h). */
static void
release_cb(struct ev_loop *loop)
{
	struct ks_worker *wk = ev_userdata(loop);

	if (wk->nexcl > 0)
		ks_excl_hook(wk);
}

static void
acquire_cb(struct ev_loop *loop)
{
	(void)loop;
}

int
ks_worker_init(struct ks_worker *wk, struct ev_loop *loop, size_t stack_size)
{
	memset(wk, 0, sizeof(*wk));
	wk->loop = loop;
	wk->stats = &wk->own_stats;
	wk->statm_fd = -1;
	wk->excl_epfd = -1;
	ks_list_init(&wk->listeners);
	wk->fd_reserve_from = 1 << 30; /* until ks_admit_init_worker */
	ev_set_userdata(loop, wk);
	ev_set_loop_release_cb(loop, release_cb, acquire_cb);
	ks_sched_init(&wk->sched, stack_size);
	ks_bufpool_init(&wk->pool, 1024);
	ev_prepare_init(&wk->prepare, prepare_cb);
	ev_idle_init(&wk->idle, idle_cb);
	ev_prepare_start(loop, &wk->prepare);
	ev_timer_init(&wk->sweep, sweep_cb, 1.0, 1.0);
	ev_timer_start(loop, &wk->sweep);
	/* The sweep alone must not keep the loop alive. */
	ev_unref(loop);
	/* A handler must never die of SIGPIPE; sends use MSG_NOSIGNAL, this
	 * covers anything a plugin does on its own. */
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

void
ks_worker_destroy(struct ks_worker *wk)
{
	struct ks_conn *c;
	int i;

	while ((c = wk->conns) != NULL)
		ks_conn_abort(c);
	ks_conn_abort_done();
	/* A few rounds for coroutines that yield on their way out; one that
	 * yields forever is left behind (the process is exiting). */
	for (i = 0; i < 16 && ks_sched_run_queue(&wk->sched); i++)
		;
	while ((c = wk->zombies) != NULL) {
		wk->zombies = c->next;
		ks_conn_free(c);
	}
	ev_idle_stop(wk->loop, &wk->idle);
	ev_prepare_stop(wk->loop, &wk->prepare);
	ks_resolver_destroy(wk);
	ev_ref(wk->loop);
	ev_timer_stop(wk->loop, &wk->sweep);
	ks_sched_destroy(&wk->sched);
	ks_bufpool_destroy(&wk->pool);
	free(wk->excl_fds);
	wk->excl_fds = NULL;
	if (wk->statm_fd >= 0)
		close(wk->statm_fd);
	wk->statm_fd = -1;
	wk->nexcl = 0;
	ev_set_loop_release_cb(wk->loop, NULL, NULL);
}

void
ks_worker_add_conn(struct ks_worker *wk, struct ks_conn *c)
{
	c->prev = NULL;
	c->next = wk->conns;
	if (wk->conns != NULL)
		wk->conns->prev = c;
	wk->conns = c;
	wk->nconns++;
	wk->stats->active = wk->nconns;
	c->ls->active++;
}

struct ks_stats *
ks_worker_lstats(struct ks_worker *wk, const struct ks_lconf *lc)
{
	if (wk->lstats == NULL || lc->stat_id == KS_STAT_NONE)
		return &wk->own_lstats;
	return &wk->lstats[lc->stat_id];
}

void
ks_worker_count(struct ks_worker *wk, const struct ks_lconf *lc, size_t idx)
{
	ks_stats_bump(wk->stats, idx);
	ks_stats_bump(ks_worker_lstats(wk, lc), idx);
}

/* The close reasons' counters, in enum ks_close_reason's order. */
static const size_t close_counter[] = {
	[KS_CLOSE_EOF] = KS_STAT(closed_eof),
	[KS_CLOSE_TIMEOUT] = KS_STAT(closed_timeout),
	[KS_CLOSE_LIMIT] = KS_STAT(closed_limit),
	[KS_CLOSE_ERROR] = KS_STAT(closed_error),
	[KS_CLOSE_SHUTDOWN] = KS_STAT(closed_shutdown),
};

static void
count_close(struct ks_stats *s, enum ks_close_reason why)
{
	s->closed++;
	ks_stats_bump(s, close_counter[why]);
}

void
ks_worker_retire_conn(struct ks_worker *wk, struct ks_conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		wk->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	wk->nconns--;
	wk->stats->active = wk->nconns;
	c->ls->active--;
	if (c->session == NULL) {
		count_close(wk->stats, c->close_reason);
		count_close(c->ls, c->close_reason);
		if (wk->alog != NULL)
			ks_alog_conn(wk->alog, c);
	}
	c->prev = NULL;
	c->next = wk->zombies;
	wk->zombies = c;
}
