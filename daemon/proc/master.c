/*
 * The master process: starts the daemon, supervises the workers and stops
 * it.  See proc.h for the model and reload.c for SIGHUP.
 *
 * Start: the configuration is loaded and its plugins initialised, every
 * listener's socket is bound (or taken from systemd), then the workers are
 * forked; "ready" is logged (and READY=1 sent) once all of them said so
 * through the scoreboard.
 *
 * Supervision: a worker that dies without being told to is logged with the
 * signal and what it was running (from its scoreboard slot), and replaced
 * at once; one that keeps dying is restarted after a back-off of 1, 2, 4
 * ... up to 30 seconds.  The listening sockets belong to the master, so
 * nothing queued in them is lost meanwhile.
 *
 * Stop (SIGTERM, SIGINT, SIGQUIT): the workers are told to stop, the master
 * closes its copies of the listening sockets and removes unix socket
 * paths; once every worker has closed its copies too (connections are
 * refused from then on) that is logged; each worker drains within
 * shutdown_timeout and exits; the master logs the final counters and
 * exits 0.  A second signal has the workers cancel at once.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "lsock.h"
#include "master.h"
#include "metrics.h"
#include "privs.h"
#include "proc.h"
#include "scoreboard.h"
#include "sd.h"
#include "upgrade.h"
#include "util.h"

#define STABLE_AFTER 30.0   /* a worker up this long resets its back-off */
#define BACKOFF_MAX 30.0    /* seconds */
#define CLOSE_WAIT 5.0      /* seconds for workers to close listeners */
#define STOP_MARGIN 10.0    /* beyond shutdown_timeout + grace: SIGKILL */

/* One per process, and static: forked children find the master's state
 * reachable (LeakSanitizer), and signal handlers could find it. */
static struct ks_master M;

/* ---- workers ------------------------------------------------------------ */

static unsigned
ncpus(void)
{
	cpu_set_t set;
	long n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return (unsigned)CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

unsigned
ks_master_nworkers(const struct ks_conf *conf)
{
	if (conf->workers > 0)
		return (unsigned)conf->workers;
	return KS_MIN(ncpus(), KS_MAX_WORKERS);
}

static bool
uses_lsock(const struct ks_conf *conf, const struct ks_lsock *ls)
{
	size_t i;

	for (i = 0; conf != NULL && i < conf->nlisteners; i++)
		if (conf->listeners[i].lsock == ls)
			return true;
	return false;
}

static void
close_unused(struct ks_lsock *list, const struct ks_conf *keep)
{
	struct ks_lsock *ls;

	for (ls = list; ls != NULL; ls = ls->next)
		if (!uses_lsock(keep, ls))
			close(ls->fd);
}

pid_t
ks_master_fork(void)
{
	sigset_t all, was;
	pid_t pid;
	int e;

	/* A signal the child gets before it has its own handlers would run
	 * libev's handler, copied from the master: it would note the signal
	 * in the child's copy of the loop and wake the master's, and neither
	 * would ever act on it.  So the child starts with every signal
	 * blocked, and unblocks them once its own handlers are in place. */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &was);
	pid = fork();
	if (pid != 0) {
		e = errno;
		sigprocmask(SIG_SETMASK, &was, NULL);
		errno = e;
	}
	return pid;
}

/* Stops every watcher of the master's loop. */
static void
unwatch(struct ks_master *m)
{
	ev_signal_stop(m->loop, &m->sigterm);
	ev_signal_stop(m->loop, &m->sigint);
	ev_signal_stop(m->loop, &m->sigquit);
	ev_signal_stop(m->loop, &m->sighup);
	ev_signal_stop(m->loop, &m->sigusr1);
	ev_signal_stop(m->loop, &m->sigusr2);
	ev_child_stop(m->loop, &m->child);
	ev_io_stop(m->loop, &m->notify_io);
	ev_timer_stop(m->loop, &m->respawn_timer);
	ev_timer_stop(m->loop, &m->stop_timer);
	ev_timer_stop(m->loop, &m->kill_timer);
	ev_timer_stop(m->loop, &m->status_timer);
	ev_timer_stop(m->loop, &m->cert_timer);
	if (ev_is_active(&m->alsink.rio))
		ev_io_stop(m->loop, &m->alsink.rio);
	if (ev_is_active(&m->alsink.flush_timer))
		ev_timer_stop(m->loop, &m->alsink.flush_timer);
}

/* In a forked child: the master's watchers, loop and descriptors are not
 * the child's.  keep: the generation whose sockets it goes on using.
 * Signals stay blocked (see ks_master_fork). */
static void
forget_master(struct ks_master *m, const struct ks_conf *keep)
{
	unwatch(m);
	ev_loop_destroy(m->loop);
	m->loop = NULL;
	close_unused(m->lsocks, keep);
	close_unused(m->left, keep);
	close_unused(ks_reload_added(m), keep);
	if (m->exe_fd >= 0)
		close(m->exe_fd);
	if (m->fallback_fd >= 0)
		close(m->fallback_fd);
	if (m->state_fd >= 0)
		close(m->state_fd);
	if (m->sb.fd >= 0)
		close(m->sb.fd);
	if (m->zone.fd >= 0)
		close(m->zone.fd);
	ks_alsink_forget(&m->alsink, true);
}

void
ks_master_child_reset(struct ks_master *m)
{
	sigset_t none;

	forget_master(m, NULL);
	ks_alsink_forget(&m->alsink, false);
	close(m->notify_fd);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGQUIT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGUSR2, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	ks_log_init_child();
}

/* The oldest generation a live worker (or the current one) runs. */
static unsigned
oldest_generation(const struct ks_master *m)
{
	const struct ks_wrec *w;
	unsigned g = m->conf != NULL ? m->conf->generation : ~0u;

	for (w = m->workers; w != NULL; w = w->next)
		if (w->generation < g)
			g = w->generation;
	return g;
}

void
ks_master_commit_generation(struct ks_master *m)
{
	if (m->sb.hdr != NULL && m->conf != NULL)
		__atomic_store_n(&m->sb.hdr->generation, m->conf->generation,
				 __ATOMIC_RELEASE);
	ks_alsink_commit(&m->alsink);
	if (m->loop != NULL && m->conf != NULL)
		ks_certs_check(m->conf, ev_now(m->loop));
}

int
ks_master_spawn(struct ks_master *m, struct ks_conf *conf, unsigned number)
{
	struct ks_wspec spec;
	struct ks_wrec *w;
	pid_t master = getpid(), pid;
	int slot;

	if (!conf->stats_assigned) {
		ks_sb_assign(&m->sb, conf, oldest_generation(m));
		conf->stats_assigned = true;
	}
	if ((slot = ks_sb_take(&m->sb, conf->generation, number)) < 0) {
		ks_log(KS_LOG_ERR, "cannot start worker #%u: all %d scoreboard "
		       "slots are taken (old workers still draining?)", number,
		       KS_SB_SLOTS);
		return -1;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		ks_log(KS_LOG_ERR, "cannot start worker #%u: out of memory",
		       number);
		ks_sb_release(&m->sb, (unsigned)slot);
		return -1;
	}
	if ((pid = ks_master_fork()) < 0) {
		ks_log_errno(KS_LOG_ERR, "cannot start worker #%u: fork", number);
		ks_sb_release(&m->sb, (unsigned)slot);
		free(w);
		return -1;
	}
	if (pid == 0) {
		free(w); /* the master's record, not the child's */
		forget_master(m, conf);
		spec.conf = conf;
		spec.slot = ks_sb_slot(&m->sb, (unsigned)slot);
		spec.zone = &m->zone;
		spec.sb = &m->sb;
		spec.alog_fd = ks_alsink_worker_fd(&m->alsink, conf);
		spec.slot_index = (unsigned)slot;
		spec.notify_fd = m->notify_fd;
		spec.master = master;
		ks_worker_process(&spec);
	}
	ks_sb_slot(&m->sb, (unsigned)slot)->pid = (int32_t)pid;
	w->pid = pid;
	w->slot = (unsigned)slot;
	w->conf = conf;
	ks_conf_ref(conf);
	w->generation = conf->generation;
	w->number = number;
	w->state = KS_W_STARTING;
	w->started = ev_now(m->loop);
	w->next = m->workers;
	m->workers = w;
	ks_log(KS_LOG_DEBUG, "started worker #%u of generation %u (pid %d)",
	       number, conf->generation, (int)pid);
	return 0;
}

void
ks_master_signal(struct ks_master *m, const struct ks_conf *conf, int sig)
{
	struct ks_wrec *w;

	for (w = m->workers; w != NULL; w = w->next) {
		if (w->conf != conf)
			continue;
		if (sig == KS_SIG_STOP || sig == KS_SIG_RETIRE)
			w->told = true;
		if (kill(w->pid, sig) != 0 && errno != ESRCH)
			ks_log_errno(KS_LOG_WARN, "kill(%d, %d)", (int)w->pid, sig);
	}
}

unsigned
ks_master_count(const struct ks_master *m, const struct ks_conf *conf,
		enum ks_wstate state)
{
	const struct ks_wrec *w;
	unsigned n = 0;

	for (w = m->workers; w != NULL; w = w->next)
		n += w->conf == conf && w->state == state;
	return n;
}

unsigned
ks_master_count_all(const struct ks_master *m, const struct ks_conf *conf)
{
	const struct ks_wrec *w;
	unsigned n = 0;

	for (w = m->workers; w != NULL; w = w->next)
		n += w->conf == conf;
	return n;
}

unsigned long long
ks_master_connections(const struct ks_master *m)
{
	struct ks_stats sum;

	ks_sb_sum(&m->sb, &sum, NULL, 0, NULL);
	return (unsigned long long)sum.active;
}

static const char *
signame(int sig)
{
	const char *abbrev = sigabbrev_np(sig);
	static char buf[32];

	if (abbrev == NULL) {
		snprintf(buf, sizeof(buf), "signal %d", sig);
		return buf;
	}
	snprintf(buf, sizeof(buf), "SIG%s", abbrev);
	return buf;
}

void
ks_master_describe_exit(const struct ks_master *m, const struct ks_wrec *w,
			int status, char *buf, size_t len)
{
	const struct ks_slot *s = ks_sb_slot(&m->sb, w->slot);
	const struct ks_lconf *lc = NULL;
	size_t n;
	int sig;

	if (WIFSIGNALED(status)) {
		sig = WTERMSIG(status);
		n = (size_t)snprintf(buf, len, "killed by %s", signame(sig));
		if (s->fault_sig == sig && (s->fault_flags & KS_FAULT_STACK))
			n += (size_t)snprintf(buf + n, len - KS_MIN(n, len),
					      " (a stack overflow in a handler "
					      "coroutine)");
		else if (s->fault_sig == sig &&
			 (sig == SIGSEGV || sig == SIGBUS))
			n += (size_t)snprintf(buf + n, len - KS_MIN(n, len),
					      " at address 0x%llx",
					      (unsigned long long)s->fault_addr);
	} else {
		n = (size_t)snprintf(buf, len, "exited with status %d%s",
				     WEXITSTATUS(status),
				     WEXITSTATUS(status) == KS_WEXIT_INIT
					     ? " (a plugin's init_worker failed)"
				     : WEXITSTATUS(status) == KS_WEXIT_SETUP
					     ? " (it could not set itself up)"
					     : "");
	}
	if (s->running >= 0 && w->conf != NULL &&
	    (size_t)s->running < w->conf->nlisteners)
		lc = &w->conf->listeners[s->running];
	if (lc != NULL)
		snprintf(buf + KS_MIN(n, len), len - KS_MIN(n, len),
			 " while running plugin %s (listener %s)",
			 lc->plugin.desc != NULL && lc->plugin.desc->name != NULL
				 ? lc->plugin.desc->name
				 : lc->handler,
			 lc->name);
	else if (s->running >= 0)
		snprintf(buf + KS_MIN(n, len), len - KS_MIN(n, len),
			 " while running the handler of listener #%d of the "
			 "previous binary's configuration", s->running + 1);
}

/* ---- start and restart -------------------------------------------------- */

static void
arm_respawn(struct ks_master *m)
{
	ev_tstamp first = 0;
	unsigned i;

	for (i = 0; i < KS_MAX_WORKERS; i++)
		if (m->backoff[i].pending &&
		    (first == 0 || m->backoff[i].due < first))
			first = m->backoff[i].due;
	ev_timer_stop(m->loop, &m->respawn_timer);
	if (first == 0)
		return;
	ev_timer_set(&m->respawn_timer, KS_MAX(first - ev_now(m->loop), 0.0),
		     0);
	ev_timer_start(m->loop, &m->respawn_timer);
}

static void
respawn_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct ks_master *m = KS_CONTAINER_OF(t, struct ks_master, respawn_timer);
	struct ks_backoff *b;
	unsigned i;

	(void)revents;
	for (i = 0; i < KS_MAX_WORKERS; i++) {
		b = &m->backoff[i];
		if (!b->pending || b->due > ev_now(loop) + 0.001)
			continue;
		b->pending = false;
		if (m->phase != KS_M_STOPPING && m->conf != NULL &&
		    i < ks_master_nworkers(m->conf) &&
		    ks_master_spawn(m, m->conf, i) != 0)
			b->pending = true, b->due = ev_now(loop) + 1;
	}
	arm_respawn(m);
}

/* A worker of the current generation died: replace it, at once the first
 * time, then after a back-off while it keeps dying. */
static void
replace(struct ks_master *m, const struct ks_wrec *w)
{
	struct ks_backoff *b = &m->backoff[w->number];
	double delay;

	if (ev_now(m->loop) - w->started >= STABLE_AFTER)
		b->streak = 0;
	delay = b->streak == 0 ? 0
			       : KS_MIN(BACKOFF_MAX, (double)(1u << KS_MIN(
							 b->streak - 1, 5u)));
	b->streak++;
	if (delay == 0) {
		ks_log(KS_LOG_INFO, "starting a new worker #%u", w->number);
		if (ks_master_spawn(m, m->conf, w->number) == 0)
			return;
		delay = 1;
	} else {
		ks_log(KS_LOG_WARN, "worker #%u died %u times in a row: "
		       "starting it again in %g s", w->number, b->streak, delay);
	}
	b->pending = true;
	b->due = ev_now(m->loop) + delay;
	arm_respawn(m);
}

static void stop_begin(struct ks_master *m, const char *why);

static void
became_ready(struct ks_master *m)
{
	m->phase = KS_M_RUNNING;
	ks_upgrade_done(m);
	ks_upgrade_guard(m, false);
	ks_log(KS_LOG_INFO, "ready (%zu listeners, %u workers)",
	       m->conf->nlisteners, ks_master_nworkers(m->conf));
	ks_sd_notify("READY=1\nMAINPID=%d", (int)getpid());
	ks_master_status_start(m);
}

static struct ks_wrec *
find_worker(struct ks_master *m, pid_t pid, struct ks_wrec ***prevp)
{
	struct ks_wrec **pp;

	for (pp = &m->workers; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->pid == pid) {
			*prevp = pp;
			return *pp;
		}
	return NULL;
}

static void stop_poll(struct ks_master *m);

static void
worker_gone(struct ks_master *m, struct ks_wrec *w, struct ks_wrec **pp,
	    int status)
{
	bool expected = w->told && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	char why[512];

	*pp = w->next;
	ks_master_describe_exit(m, w, status, why, sizeof(why));
	if (!expected && WIFSIGNALED(status) && WTERMSIG(status) > 0 &&
	    WTERMSIG(status) < KS_SB_SIGNALS)
		m->sb.hdr->worker_crashes[WTERMSIG(status)]++;
	else if (!expected && WIFEXITED(status) && WEXITSTATUS(status) != 0)
		m->sb.hdr->worker_crashes[0]++;
	if (expected)
		ks_log(KS_LOG_DEBUG, "worker #%u of generation %u (pid %d) "
		       "exited", w->number, w->generation, (int)w->pid);
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		ks_log(KS_LOG_WARN, "worker #%u of generation %u (pid %d) "
		       "stopped without being told to (a SIGTERM from outside "
		       "the master?)", w->number, w->generation, (int)w->pid);
	else
		ks_log(KS_LOG_ERR, "worker #%u of generation %u (pid %d) %s",
		       w->number, w->generation, (int)w->pid, why);
	/* What it still counted (it crashed with connections open) goes
	 * before a replacement is forked: from then on a scrape may read
	 * the slots, and must not see the dead worker's gauges. */
	ks_zone_release_slot(&m->zone, w->slot);
	ks_sb_release(&m->sb, w->slot);
	if (m->phase == KS_M_STARTING && w->conf != NULL &&
	    w->conf == m->conf) {
		if (m->upgrading) {
			snprintf(why, sizeof(why), "a worker of the new binary "
				 "died while starting");
			ks_upgrade_fall_back(m, why);
			/* Still here: the fallback itself.  The workers from
			 * before serve on while this one keeps trying. */
			replace(m, w);
		} else {
			ks_log(KS_LOG_ERR, "ksockd cannot start: a worker did "
			       "not");
			m->exit_status = EXIT_FAILURE;
			stop_begin(m, NULL);
		}
	} else if (!expected && m->phase == KS_M_RUNNING && w->conf != NULL &&
		   w->conf == m->conf) {
		replace(m, w);
	}
	ks_reload_poll(m, w, status);
	if (w->conf != NULL)
		ks_conf_unref(w->conf);
	free(w);
	if (m->phase == KS_M_STOPPING)
		stop_poll(m);
	ks_master_status(m);
}

static void
child_cb(struct ev_loop *loop, ev_child *c, int revents)
{
	struct ks_master *m = KS_CONTAINER_OF(c, struct ks_master, child);
	struct ks_wrec *w, **pp;
	int status = c->rstatus;

	(void)loop;
	(void)revents;
	if (WIFSTOPPED(status) || WIFCONTINUED(status))
		return;
	if (ks_reload_child_exited(m, c->rpid, status) ||
	    ks_upgrade_child_exited(m, c->rpid, status))
		return;
	if ((w = find_worker(m, c->rpid, &pp)) == NULL) {
		ks_log(KS_LOG_DEBUG, "reaped process %d", (int)c->rpid);
		return;
	}
	worker_gone(m, w, pp, status);
}

/* A worker wrote to the eventfd: its slot's state moved on. */
static void
notify_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct ks_master *m = KS_CONTAINER_OF(io, struct ks_master, notify_io);
	enum ks_slot_state st;
	struct ks_wrec *w;
	uint64_t count;

	(void)loop;
	(void)revents;
	if (read(m->notify_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		ks_log_errno(KS_LOG_WARN, "reading the workers' eventfd");
	for (w = m->workers; w != NULL; w = w->next) {
		st = ks_slot_state(ks_sb_slot(&m->sb, w->slot));
		if (st == KS_SLOT_READY && w->state == KS_W_STARTING)
			w->state = KS_W_READY;
		else if (st == KS_SLOT_DRAINING)
			w->state = KS_W_DRAINING;
	}
	if (m->phase == KS_M_STARTING &&
	    ks_master_count(m, m->conf, KS_W_READY) ==
		    ks_master_nworkers(m->conf))
		became_ready(m);
	ks_reload_poll(m, NULL, 0);
	if (m->phase == KS_M_STOPPING)
		stop_poll(m);
}

/* ---- stop --------------------------------------------------------------- */

static void
log_stopping(struct ks_master *m)
{
	if (m->stop_logged)
		return;
	m->stop_logged = true;
	if (m->stop_signal != NULL)
		ks_log(KS_LOG_INFO, "received %s: stopping (%llu connections "
		       "open)", m->stop_signal, ks_master_connections(m));
}

/* Every worker has closed its listening sockets (or gone): connections are
 * refused from here on. */
static void
stop_poll(struct ks_master *m)
{
	struct ks_wrec *w;

	for (w = m->workers; w != NULL && w->state == KS_W_DRAINING; w = w->next)
		;
	if (w == NULL)
		log_stopping(m);
	if (m->workers == NULL)
		ev_break(m->loop, EVBREAK_ALL);
}

static void
stop_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct ks_master *m = KS_CONTAINER_OF(t, struct ks_master, stop_timer);

	(void)loop;
	(void)revents;
	if (!m->stop_logged)
		ks_log(KS_LOG_WARN, "a worker did not close its listeners "
		       "within %g s (blocked in a plugin?)", CLOSE_WAIT);
	log_stopping(m);
}

static void
kill_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct ks_master *m = KS_CONTAINER_OF(t, struct ks_master, kill_timer);
	struct ks_wrec *w;

	(void)loop;
	(void)revents;
	for (w = m->workers; w != NULL; w = w->next) {
		ks_log(KS_LOG_ERR, "worker #%u (pid %d) is still running long "
		       "after shutdown_timeout: killing it", w->number,
		       (int)w->pid);
		kill(w->pid, SIGKILL);
	}
}

/* why: the signal's name, NULL when ksockd gives up starting. */
static void
stop_begin(struct ks_master *m, const char *why)
{
	struct ks_wrec *w;
	double deadline;

	if (m->phase == KS_M_STOPPING) {
		if (why == NULL)
			return;
		ks_log(KS_LOG_INFO, "received %s again: canceling now", why);
		for (w = m->workers; w != NULL; w = w->next)
			kill(w->pid, KS_SIG_CANCEL);
		return;
	}
	m->phase = KS_M_STOPPING;
	m->stop_signal = why;
	ks_sd_notify("STOPPING=1");
	ks_reload_abort(m);
	ks_upgrade_abort(m);
	ev_timer_stop(m->loop, &m->respawn_timer);
	ev_timer_stop(m->loop, &m->status_timer);
	for (w = m->workers; w != NULL; w = w->next) {
		w->told = true;
		if (kill(w->pid, KS_SIG_STOP) != 0 && errno != ESRCH)
			ks_log_errno(KS_LOG_WARN, "kill(%d)", (int)w->pid);
	}
	/* The workers close theirs: the last close refuses connections. */
	ks_master_close_lsocks(m);
	deadline = (m->conf != NULL ? m->conf->shutdown_timeout : 30) + 2.0 +
		   STOP_MARGIN;
	ev_timer_set(&m->stop_timer, CLOSE_WAIT, 0);
	ev_timer_start(m->loop, &m->stop_timer);
	ev_timer_set(&m->kill_timer, deadline, 0);
	ev_timer_start(m->loop, &m->kill_timer);
	stop_poll(m);
}

static void
signal_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
	struct ks_master *m = s->data;

	(void)loop;
	(void)revents;
	switch (s->signum) {
	case SIGHUP:
		if (m->phase == KS_M_RUNNING)
			ks_reload_start(m);
		break;
	case SIGUSR2:
		if (m->phase == KS_M_RUNNING && m->conf != NULL)
			ks_upgrade_start(m);
		break;
	case SIGUSR1:
		ks_alsink_reopen(&m->alsink);
		break;
	default:
		stop_begin(m, s->signum == SIGINT    ? "SIGINT"
			      : s->signum == SIGQUIT ? "SIGQUIT"
						     : "SIGTERM");
	}
}

/* ---- the daemon's life ---------------------------------------------------- */

static void
watch(struct ks_master *m)
{
	m->loop = ev_default_loop(EVFLAG_AUTO);
	ev_signal_init(&m->sigterm, signal_cb, SIGTERM);
	ev_signal_init(&m->sigint, signal_cb, SIGINT);
	ev_signal_init(&m->sigquit, signal_cb, SIGQUIT);
	ev_signal_init(&m->sighup, signal_cb, SIGHUP);
	ev_signal_init(&m->sigusr1, signal_cb, SIGUSR1);
	ev_signal_init(&m->sigusr2, signal_cb, SIGUSR2);
	m->sigterm.data = m->sigint.data = m->sigquit.data = m;
	m->sighup.data = m->sigusr1.data = m->sigusr2.data = m;
	ev_signal_start(m->loop, &m->sigterm);
	ev_signal_start(m->loop, &m->sigint);
	ev_signal_start(m->loop, &m->sigquit);
	ev_signal_start(m->loop, &m->sighup);
	ev_signal_start(m->loop, &m->sigusr1);
	ev_signal_start(m->loop, &m->sigusr2);
	/* Not ours yet; its default action would kill the master. */
	signal(SIGWINCH, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	ev_child_init(&m->child, child_cb, 0, 0);
	ev_child_start(m->loop, &m->child);
	ev_io_init(&m->notify_io, notify_cb, m->notify_fd, EV_READ);
	ev_io_start(m->loop, &m->notify_io);
	ev_init(&m->respawn_timer, respawn_cb);
	ev_init(&m->stop_timer, stop_timer_cb);
	ev_init(&m->kill_timer, kill_timer_cb);
	ks_alsink_watch(&m->alsink, m->loop);
	ks_certs_watch(m);
}


static void
log_final(const struct ks_master *m)
{
	const struct ks_stats *st = ks_sb_totals(&m->sb);

	ks_log(KS_LOG_INFO,
	       "stopped: %llu connections served, %llu datagrams in, %llu "
	       "datagrams out, %llu datagrams dropped, %llu bytes in, "
	       "%llu bytes out, %llu timeouts, %llu accept errors",
	       (unsigned long long)st->accepted,
	       (unsigned long long)st->datagrams_in,
	       (unsigned long long)st->datagrams_out,
	       (unsigned long long)st->datagrams_dropped,
	       (unsigned long long)st->bytes_in,
	       (unsigned long long)st->bytes_out,
	       (unsigned long long)st->timeouts,
	       (unsigned long long)st->accept_errors);
}

static void
remember_binary(struct ks_master *m)
{
	ssize_t n = readlink("/proc/self/exe", m->exe, sizeof(m->exe) - 1);

	m->exe[n > 0 ? n : 0] = '\0';
	m->exe_fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
}

/* The previous image could not be gone back to and this one has no
 * configuration: the workers from before serve on until a SIGHUP brings
 * a good file. */
static void
run_degraded(struct ks_master *m)
{
	m->phase = KS_M_RUNNING;
	ks_upgrade_settle(m);
	ks_upgrade_guard(m, false);
	ks_log(KS_LOG_ERR, "the configuration could not be started: the %u "
	       "worker(s) from before keep serving; fix %s and send SIGHUP",
	       ks_master_count_all(m, NULL), m->path);
	ks_sd_notify("READY=1\nSTATUS=no valid configuration: the workers "
		     "from before keep serving");
}

int
ks_master_run(const char *path, char **argv)
{
	struct ks_master *m = &M;
	struct ks_lsock *passed;
	sigset_t none;
	unsigned i, n;
	int up;

	memset(m, 0, sizeof(*m));
	m->path = path;
	m->argv = argv;
	m->exe_fd = m->notify_fd = m->fallback_fd = m->state_fd = -1;
	m->sb.fd = -1;
	m->zone.fd = -1;
	ks_alsink_init(&m->alsink);
	m->exit_status = EXIT_FAILURE;
	/* An exec may hand us signals blocked. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	remember_binary(m);
	if ((up = ks_upgrade_adopt(m, &passed)) < 0)
		ks_upgrade_fall_back(m, "the state it was handed was damaged");
	ks_upgrade_guard(m, true);
	ks_privs_raise_nofile();
	if (ks_master_start_generation(m, passed) != 0) {
		if (!m->upgrading)
			goto out;
		ks_upgrade_fall_back(m, "it could not start its configuration");
		/* Still here: this is the fallback already.  The sockets
		 * handed on stay, for the workers of before and for a
		 * reload. */
		while (m->left != NULL) {
			struct ks_lsock *ls = m->left;

			m->left = ls->next;
			ls->next = m->lsocks;
			m->lsocks = ls;
		}
	}
	if (!m->upgrading && ks_sb_create(&m->sb) != 0)
		goto out;
	/* (an image of before the zone hands over none) */
	if (m->zone.base == NULL && ks_zone_create(&m->zone) != 0)
		goto out;
	if (m->notify_fd < 0 &&
	    (m->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		ks_log_errno(KS_LOG_ERR, "eventfd");
		goto out;
	}
	watch(m);
	if (m->conf != NULL)
		ks_master_commit_generation(m);
	m->exit_status = EXIT_SUCCESS;
	if (m->conf == NULL) {
		run_degraded(m);
	} else {
		m->phase = KS_M_STARTING;
		n = ks_master_nworkers(m->conf);
		for (i = 0; i < n && m->phase == KS_M_STARTING; i++)
			if (ks_master_spawn(m, m->conf, i) != 0) {
				m->exit_status = EXIT_FAILURE;
				stop_begin(m, NULL);
			}
	}
	/* (ev_run would forget a break that came before it) */
	if (m->workers != NULL)
		ev_run(m->loop, 0);
	unwatch(m);
	log_final(m);
out:
	ks_alsink_close(&m->alsink);
	ks_reload_abort(m);
	ks_master_close_left(m);
	ks_master_close_lsocks(m);
	while (m->workers != NULL) { /* only when ev_run could not finish */
		struct ks_wrec *w = m->workers;

		m->workers = w->next;
		if (w->conf != NULL)
			ks_conf_unref(w->conf);
		free(w);
	}
	ks_conf_unref(m->conf);
	m->conf = NULL;
	ks_sb_destroy(&m->sb);
	ks_zone_destroy(&m->zone);
	if (m->notify_fd >= 0)
		close(m->notify_fd);
	if (m->exe_fd >= 0)
		close(m->exe_fd);
	if (m->loop != NULL)
		ev_loop_destroy(m->loop);
	return m->exit_status;
}

int
ks_master_check(const char *path)
{
	struct ks_master *m = &M;
	int status;
	pid_t pid;

	memset(m, 0, sizeof(*m));
	m->exe_fd = m->notify_fd = m->fallback_fd = m->state_fd = -1;
	m->sb.fd = -1;
	m->zone.fd = -1;
	if ((pid = ks_check_fork(NULL, path)) < 0)
		return EXIT_FAILURE;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return EXIT_FAILURE;
	if (ks_check_result(status) != 0)
		return EXIT_FAILURE;
	ks_log(KS_LOG_INFO, "%s: configuration OK", path);
	return EXIT_SUCCESS;
}
