/*
 * Reload (SIGHUP): a new configuration generation, new workers for it,
 * the old workers drained.  There is one reload path, and it never
 * touches a running worker's configuration: a worker runs one generation
 * from its start to its end.
 *
 * 1. check: a child process loads the file and initialises its plugins
 *    (reading certificates and keys on the way).  Nothing in a file or in
 *    a plugin's init can take the master down: an error, a crash or a hang
 *    (bounded by CHECK_TIMEOUT) of the child fails the reload.
 * 2. start: the master loads the generation itself, keeps the socket of
 *    every listener whose address is unchanged (setting again what a kept
 *    socket can take: keep_alive, linger, type_of_service, buffers,
 *    backlog, multicast groups, a unix file's mode and owner), binds the
 *    new ones, and forks the new generation's workers.  The old workers
 *    keep accepting meanwhile, on the same sockets.
 * 3. commit, once every new worker is ready: the generation becomes the
 *    current one, the old workers are told to retire (they stop accepting,
 *    finish their connections within shutdown_timeout, exit), sockets of
 *    removed listeners are closed.  "reloaded" is logged, and READY=1
 *    sent, when every old worker has closed its listeners.
 * A failure at any step (a bad file, a bind that fails, a new worker that
 * dies before it is ready) undoes what was done and leaves the running
 * generation as it was.  No connection is refused at any point: every
 * kept socket stays open and accepting throughout.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "lsock.h"
#include "master.h"
#include "proc.h"
#include "sd.h"
#include "util.h"

#define CHECK_TIMEOUT 30.0  /* seconds for the configuration check */
#define START_TIMEOUT 60.0  /* for the new workers to be ready */
#define RETIRE_WAIT 5.0     /* for the old ones to close their listeners */

enum step {
	R_CHECK,  /* the check child runs */
	R_START,  /* the new workers start */
	R_RETIRE, /* the old workers close their listeners */
};

/* A socket the new generation keeps, and the listener it served. */
struct kept {
	struct ks_lsock *ls;
	struct ks_lconf *old;
};

struct ks_reload {
	enum step step;
	pid_t check_pid;
	ev_timer timer;
	struct ks_master *m;
	struct ks_conf *nc;       /* the new generation (a reference) */
	struct ks_conf *old;      /* the one it replaces (a reference) */
	struct kept *kept;
	size_t nkept;
	struct ks_lsock *added;   /* bound for nc */
};

/* ---- the check ------------------------------------------------------------ */

static int
check_here(const char *path)
{
	struct ks_conf *conf;
	int rc;

	if (ks_conf_load(path, &conf) != 0)
		return EXIT_FAILURE;
	rc = ks_conf_load_plugins(conf);
	ks_conf_unref(conf);
	return rc == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

pid_t
ks_check_fork(struct ks_master *m, const char *path)
{
	pid_t pid = m != NULL ? ks_master_fork() : fork();

	if (pid < 0) {
		ks_log_errno(KS_LOG_ERR, "checking %s: fork", path);
		return -1;
	}
	if (pid == 0) {
		if (m != NULL)
			ks_master_child_reset(m);
		exit(check_here(path));
	}
	return pid;
}

int
ks_check_result(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status) == 0 ? 0 : -1;
	if (WIFSIGNALED(status))
		ks_log(KS_LOG_ERR, "the configuration check was killed by "
		       "signal %d (%s): a plugin's init crashed?",
		       WTERMSIG(status), strsignal(WTERMSIG(status)));
	return -1;
}

/* ---- undo and finish ----------------------------------------------------------- */

static void
finish(struct ks_master *m, struct ks_reload *r, const char *failure)
{
	ev_timer_stop(m->loop, &r->timer);
	/* Counted before it is logged: whoever reads the log and then the
	 * metrics sees the count. */
	if (failure == NULL)
		m->sb.hdr->reloads_ok++;
	else
		m->sb.hdr->reloads_failed++;
	if (failure == NULL)
		ks_log(KS_LOG_INFO, "reloaded configuration (%zu listeners, %u "
		       "workers)", m->conf->nlisteners,
		       ks_master_nworkers(m->conf));
	else
		ks_log(KS_LOG_ERR, "reload failed: %s; still running the "
		       "previous configuration", failure);
	m->last_reload = (ev_tstamp)time(NULL);
	m->last_reload_ok = failure == NULL;
	ks_alsink_abort(&m->alsink); /* (nothing left after a commit) */
	ks_sd_notify("READY=1");
	if (r->old != NULL)
		ks_conf_unref(r->old);
	free(r->kept);
	free(r);
	m->reload = NULL;
	ks_master_status(m);
	if (m->reload_pending && m->phase == KS_M_RUNNING) {
		m->reload_pending = false;
		ks_reload_start(m);
	}
}

static void
close_added(struct ks_reload *r)
{
	struct ks_lsock *ls;

	while ((ls = r->added) != NULL) {
		r->added = ls->next;
		ks_lsock_close(ls);
	}
}

/* Back to what ran before; the new workers (ready ones may have accepted
 * connections already) retire like old ones. */
static void
undo(struct ks_master *m, struct ks_reload *r)
{
	size_t i;

	if (r->check_pid > 0) {
		kill(r->check_pid, SIGKILL);
		r->check_pid = 0;
	}
	for (i = 0; i < r->nkept; i++)
		(void)ks_lsock_configure(r->kept[i].ls, r->kept[i].old);
	r->nkept = 0;
	close_added(r);
	if (r->nc != NULL) {
		ks_master_signal(m, r->nc, KS_SIG_RETIRE);
		ks_conf_unref(r->nc);
		r->nc = NULL;
	}
}

static void
fail(struct ks_master *m, struct ks_reload *r, const char *why)
{
	undo(m, r);
	finish(m, r, why);
}

void
ks_reload_abort(struct ks_master *m)
{
	struct ks_reload *r = m->reload;

	if (r == NULL)
		return;
	undo(m, r);
	ev_timer_stop(m->loop, &r->timer);
	if (r->old != NULL)
		ks_conf_unref(r->old);
	free(r->kept);
	free(r);
	m->reload = NULL;
	m->reload_pending = false;
}

struct ks_lsock *
ks_reload_added(const struct ks_master *m)
{
	return m->reload != NULL ? m->reload->added : NULL;
}

static void
timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct ks_reload *r = KS_CONTAINER_OF(t, struct ks_reload, timer);
	struct ks_master *m = r->m;

	(void)loop;
	(void)revents;
	switch (r->step) {
	case R_CHECK:
		fail(m, r, "the configuration check did not finish in time "
		     "(a plugin's init hangs?)");
		break;
	case R_START:
		fail(m, r, "the new workers were not ready in time (a "
		     "plugin's init_worker hangs?)");
		break;
	case R_RETIRE:
		ks_log(KS_LOG_WARN, "an old worker did not close its listeners "
		       "within %g s (blocked in a plugin?)", RETIRE_WAIT);
		finish(m, r, NULL);
		break;
	}
}

static void
arm(struct ks_master *m, struct ks_reload *r, enum step step, double secs)
{
	r->step = step;
	ev_timer_stop(m->loop, &r->timer);
	ev_timer_set(&r->timer, secs, 0);
	ev_timer_start(m->loop, &r->timer);
}

/* ---- the steps ----------------------------------------------------------------- */

void
ks_reload_start(struct ks_master *m)
{
	struct ks_reload *r;

	if (m->reload != NULL) {
		m->reload_pending = true;
		ks_log(KS_LOG_INFO, "received SIGHUP during a reload: another "
		       "one follows it");
		return;
	}
	ks_sd_reloading();
	ks_log(KS_LOG_INFO, "received SIGHUP: reloading %s", m->path);
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		ks_log(KS_LOG_ERR, "reload failed: out of memory");
		ks_sd_notify("READY=1");
		return;
	}
	r->m = m;
	ev_init(&r->timer, timer_cb);
	m->reload = r;
	if ((r->check_pid = ks_check_fork(m, m->path)) < 0) {
		r->check_pid = 0;
		fail(m, r, "cannot check the configuration");
		return;
	}
	arm(m, r, R_CHECK, CHECK_TIMEOUT);
}

/* The new generation's sockets: kept (set up for it) or bound anew. */
static int
prepare_sockets(struct ks_master *m, struct ks_reload *r)
{
	struct ks_conf *nc = r->nc;
	struct ks_lsock *ls;
	struct ks_lconf *lc;
	size_t i, j;

	if ((r->kept = calloc(nc->nlisteners, sizeof(*r->kept))) == NULL)
		return -1;
	for (i = 0; i < nc->nlisteners; i++) {
		lc = &nc->listeners[i];
		for (ls = m->lsocks; ls != NULL; ls = ls->next) {
			for (j = 0; j < r->nkept && r->kept[j].ls != ls; j++)
				;
			if (j == r->nkept && ks_lsock_matches(ls, lc))
				break;
		}
		if (ls != NULL) {
			r->kept[r->nkept].ls = ls;
			r->kept[r->nkept++].old = ls->lc;
			if (ks_lsock_configure(ls, lc) != 0)
				return -1;
			continue;
		}
		if ((ls = ks_lsock_bind(lc)) == NULL)
			return -1;
		ls->next = r->added;
		r->added = ls;
	}
	return 0;
}

static void
load_and_start(struct ks_master *m, struct ks_reload *r)
{
	unsigned i, n;

	if (ks_conf_load(m->path, &r->nc) != 0 ||
	    ks_conf_load_plugins(r->nc) != 0) {
		fail(m, r, "the configuration did not load (it changed after "
		     "the check?)");
		return;
	}
	r->nc->generation = ++m->last_generation;
	/* NULL: no configuration ran (see run_degraded in master.c) */
	if ((r->old = m->conf) != NULL)
		ks_conf_ref(r->old);
	if (prepare_sockets(m, r) != 0) {
		fail(m, r, "a listener's socket could not be set up");
		return;
	}
	if (ks_alsink_prepare(&m->alsink, r->nc) != 0) {
		fail(m, r, "the access log could not be opened");
		return;
	}
	n = ks_master_nworkers(r->nc);
	for (i = 0; i < n; i++)
		if (ks_master_spawn(m, r->nc, i) != 0) {
			fail(m, r, "a worker could not be started");
			return;
		}
	arm(m, r, R_START, START_TIMEOUT);
}

int
ks_reload_child_exited(struct ks_master *m, pid_t pid, int status)
{
	struct ks_reload *r = m->reload;

	if (r == NULL || r->step != R_CHECK || pid != r->check_pid)
		return 0;
	r->check_pid = 0;
	if (ks_check_result(status) != 0)
		fail(m, r, "the configuration check failed");
	else
		load_and_start(m, r);
	return 1;
}

/* Every new worker is ready: the new generation takes over. */
static void
commit(struct ks_master *m, struct ks_reload *r)
{
	struct ks_lsock *keep = NULL, *ls, *next;
	size_t i;

	for (ls = m->lsocks; ls != NULL; ls = next) {
		next = ls->next;
		for (i = 0; i < r->nkept && r->kept[i].ls != ls; i++)
			;
		if (i < r->nkept) {
			ls->next = keep;
			keep = ls;
			continue;
		}
		ks_log(KS_LOG_INFO, "listener %s closed (not in the new "
		       "configuration)", ls->lc != NULL ? ls->lc->name : ls->bound);
		ks_lsock_close(ls);
	}
	while ((ls = r->added) != NULL) {
		r->added = ls->next;
		ls->next = keep;
		keep = ls;
	}
	m->lsocks = keep;
	r->nkept = 0;
	ks_conf_unref(m->conf);
	m->conf = r->nc;
	r->nc = NULL;
	memset(m->backoff, 0, sizeof(m->backoff));
	ev_timer_stop(m->loop, &m->respawn_timer);
	ks_log_set_threshold(m->conf->log_level);
	ks_master_commit_generation(m);
	ks_master_signal(m, r->old, KS_SIG_RETIRE);
	if (r->old != NULL) /* workers a binary upgrade took over */
		ks_master_signal(m, NULL, KS_SIG_RETIRE);
	arm(m, r, R_RETIRE, RETIRE_WAIT);
}

static bool
retired(const struct ks_master *m, const struct ks_conf *old)
{
	const struct ks_wrec *w;

	for (w = m->workers; w != NULL; w = w->next)
		if ((w->conf == old || w->conf == NULL) &&
		    w->state != KS_W_DRAINING)
			return false;
	return true;
}

void
ks_reload_poll(struct ks_master *m, const struct ks_wrec *died, int status)
{
	struct ks_reload *r = m->reload;
	char why[600], how[512];

	if (r == NULL)
		return;
	if (r->step == R_START && died != NULL && died->conf == r->nc) {
		ks_master_describe_exit(m, died, status, how, sizeof(how));
		snprintf(why, sizeof(why), "worker #%u of the new configuration "
			 "%s", died->number, how);
		fail(m, r, why);
		return;
	}
	if (r->step == R_START &&
	    ks_master_count(m, r->nc, KS_W_READY) == ks_master_nworkers(r->nc))
		commit(m, r);
	if (m->reload == r && r->step == R_RETIRE && retired(m, r->old))
		finish(m, r, NULL);
}
