/*
 * A worker process: the child the master forks for one configuration
 * generation.  It drops privileges, makes its own event loop, runs every
 * plugin's init_worker, attaches to the listeners' bound sockets, tells the
 * master it is ready and serves until told to stop or to retire.
 *
 * Draining (KS_SIG_STOP, KS_SIG_RETIRE): the worker stops accepting and
 * closes its copies of the listening sockets (the master owns them), tells
 * the master, and gives its connections shutdown_timeout seconds to end on
 * their own.  Then every connection is cancelled: waiting calls return
 * KS_ECANCELED, and so does every later suspending call.  STOP_GRACE
 * seconds later, what is still open is closed and the worker exits.
 * KS_SIG_CANCEL skips to the cancellation.
 *
 * A fatal signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT) is noted in the
 * worker's scoreboard slot (the signal, the address, whether it hit a
 * coroutine's guard page) before the worker dies of it, so the master can
 * say what happened; the slot's `running` says which listener's handler
 * was running.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "conf.h"
#include "admit.h"
#include "alog.h"
#include "metrics.h"
#include "conn.h"
#include "listener.h"
#include "log.h"
#include "privs.h"
#include "proc.h"
#include "scoreboard.h"
#include "util.h"
#include "worker.h"

#define STOP_GRACE 2.0        /* seconds between cancelling and closing */
#define ALTSTACK_SIZE 65536   /* for the fatal-signal handler */
#define ALOG_EXIT_WAIT 2.0    /* for the master to take the last lines */

enum phase {
	RUNNING,   /* serving */
	DRAINING,  /* listeners closed, handlers finishing */
	CANCELING, /* handlers told to return (KS_ECANCELED) */
};

/* One per process: the fatal-signal handler needs to find it. */
static struct wproc {
	struct ev_loop *loop;
	struct ks_worker wk;
	struct ks_conf *conf;
	struct ks_slot *slot;
	int notify_fd;
	struct ks_listener *listeners;
	struct ks_alog alog;
	struct ks_metrics_src msrc;
	ev_signal sigterm, sigint, sigquit, sigcancel;
	ev_timer stop_timer;
	enum phase phase;
} W;

static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};

/* ---- setting up ---------------------------------------------------------- */

/* Every signal arrives blocked (ks_master_fork); the master's handlers are
 * not ours.  What the master sends before the worker's loop watches for
 * it stays pending, and is acted on once the loop runs. */
static void
reset_signals(void)
{
	static const int sigs[] = {SIGTERM, SIGINT, SIGQUIT, SIGCHLD};
	size_t i;

	for (i = 0; i < KS_ARRAY_SIZE(sigs); i++)
		signal(sigs[i], SIG_DFL);
	signal(KS_SIG_CANCEL, SIG_DFL);
	/* The terminal's signals are the master's business. */
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
	signal(SIGWINCH, SIG_IGN);
}

/* sigs: the fatal signals (as soon as their handlers are set: a fault
 * while they are blocked would kill without a trace), or all. */
static void
unblock(bool fatal_only)
{
	sigset_t set;
	size_t i;

	sigemptyset(&set);
	for (i = 0; i < KS_ARRAY_SIZE(fatal_signals); i++)
		sigaddset(&set, fatal_signals[i]);
	if (fatal_only)
		sigprocmask(SIG_UNBLOCK, &set, NULL);
	else
		sigprocmask(SIG_SETMASK, (sigemptyset(&set), &set), NULL);
}

/* Async-signal-safe: a few stores into shared memory, then the default
 * action (SA_RESETHAND): the process dies of the signal, with a core dump
 * where those are enabled. */
static void
fatal_handler(int sig, siginfo_t *si, void *uctx)
{
	struct ks_slot *s = W.slot;

	(void)uctx;
	s->fault_sig = sig;
	s->fault_addr = (uint64_t)(uintptr_t)si->si_addr;
	if ((sig == SIGSEGV || sig == SIGBUS) &&
	    ks_coro_guard_hit(&W.wk.sched, si->si_addr))
		s->fault_flags |= KS_FAULT_STACK;
	/* Blocked while we run: delivered, by default, on return; a real
	 * fault would also recur on its own. */
	raise(sig);
}

static void
catch_fatal_signals(void)
{
	static char altstack[ALTSTACK_SIZE];
	struct sigaction sa;
	stack_t ss;
	size_t i;

	/* A stack overflow leaves no stack to run the handler on. */
	ss.ss_sp = altstack;
	ss.ss_size = sizeof(altstack);
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL) != 0)
		ks_log_errno(KS_LOG_WARN, "sigaltstack");
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = fatal_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < KS_ARRAY_SIZE(fatal_signals); i++)
		sigaction(fatal_signals[i], &sa, NULL);
}

static void
tell_master(void)
{
	uint64_t one = 1;

	/* Non-blocking eventfd: it cannot fill up. */
	if (write(W.notify_fd, &one, sizeof(one)) != sizeof(one))
		ks_log_errno(KS_LOG_DEBUG, "worker: notifying the master");
}

/* Every plugin's per-process hook, the slot saying which one runs. */
static int
init_plugins(void)
{
	struct ks_lconf *lc;
	char err[1024];
	size_t i;

	for (i = 0; i < W.conf->nlisteners; i++) {
		lc = &W.conf->listeners[i];
		W.slot->running = (int)lc->index;
		if (ks_loader_init_worker(&lc->plugin, err, sizeof(err)) != 0) {
			ks_log(KS_LOG_ERR, "%s:%d: listener \"%s\": %s", lc->file,
			       lc->line, lc->name, err);
			return -1;
		}
	}
	W.slot->running = -1;
	return 0;
}

static int
attach_listeners(void)
{
	struct ks_listener *l;
	size_t i;

	for (i = 0; i < W.conf->nlisteners; i++) {
		if ((l = ks_listener_attach(&W.wk, &W.conf->listeners[i])) == NULL)
			return -1;
		l->next = W.listeners;
		W.listeners = l;
	}
	for (l = W.listeners; l != NULL; l = l->next)
		ks_listener_start(l);
	return 0;
}

/* ---- draining -------------------------------------------------------------- */

static void
close_listeners(void)
{
	struct ks_listener *l;

	while ((l = W.listeners) != NULL) {
		W.listeners = l->next;
		ks_listener_close(l);
	}
}

static void
on_idle(struct ks_worker *wk)
{
	(void)wk;
	if (W.phase != RUNNING)
		ev_break(W.loop, EVBREAK_ALL);
}

static void
cancel_all(void)
{
	struct ks_conn *c, *next;

	W.phase = CANCELING;
	ks_log(KS_LOG_INFO, "worker: canceling %lu connection(s)", W.wk.nconns);
	for (c = W.wk.conns; c != NULL; c = next) {
		next = c->next;
		ks_conn_cancel(c);
	}
	ev_timer_stop(W.loop, &W.stop_timer);
	ev_timer_set(&W.stop_timer, STOP_GRACE, 0);
	ev_timer_start(W.loop, &W.stop_timer);
}

static void
stop_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	if (W.phase == DRAINING) {
		ks_log(KS_LOG_INFO, "worker: shutdown_timeout (%gs) reached",
		       W.conf->shutdown_timeout);
		cancel_all();
		return;
	}
	while (W.wk.conns != NULL)
		ks_conn_abort(W.wk.conns);
	ks_conn_abort_done();
	ev_break(loop, EVBREAK_ALL);
}

/* stopping: the daemon stops (udp sessions lose their socket at once);
 * otherwise a newer generation took over (they may still reply). */
static void
drain(bool stopping)
{
	W.wk.draining = true;
	W.wk.stopping = stopping;
	close_listeners();
	W.phase = DRAINING;
	ks_slot_set_state(W.slot, KS_SLOT_DRAINING);
	tell_master();
	ks_log(KS_LOG_DEBUG, "worker: %s with %lu connection(s) open",
	       stopping ? "stopping" : "retiring", W.wk.nconns);
	if (W.wk.nconns == 0) {
		ev_break(W.loop, EVBREAK_ALL);
		return;
	}
	ev_timer_set(&W.stop_timer, W.conf->shutdown_timeout, 0);
	ev_timer_start(W.loop, &W.stop_timer);
}

static void
signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop;
	(void)revents;
	if (w->signum == KS_SIG_CANCEL) {
		if (W.phase == RUNNING)
			drain(true);
		if (W.phase == DRAINING)
			cancel_all();
		return;
	}
	/* Repeated or duplicated signals (systemd and the master both) do
	 * not hurry a drain along: that is what KS_SIG_CANCEL is for. */
	if (W.phase == RUNNING)
		drain(w->signum != KS_SIG_RETIRE);
	else if (w->signum != KS_SIG_RETIRE)
		W.wk.stopping = true;
}

static void
watch_signals(void)
{
	ev_signal_init(&W.sigterm, signal_cb, SIGTERM);
	ev_signal_init(&W.sigint, signal_cb, SIGINT);
	ev_signal_init(&W.sigquit, signal_cb, KS_SIG_RETIRE);
	ev_signal_init(&W.sigcancel, signal_cb, KS_SIG_CANCEL);
	ev_signal_start(W.loop, &W.sigterm);
	ev_signal_start(W.loop, &W.sigint);
	ev_signal_start(W.loop, &W.sigquit);
	ev_signal_start(W.loop, &W.sigcancel);
	/* They must not keep the loop alive once the connections are gone. */
	ev_unref(W.loop);
	ev_unref(W.loop);
	ev_unref(W.loop);
	ev_unref(W.loop);
}

/* On the way out: a stop arriving now has nothing left to stop, and with
 * the watchers gone its default action would kill the worker. */
static void
unwatch_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, KS_SIG_RETIRE);
	sigaddset(&set, KS_SIG_CANCEL);
	sigprocmask(SIG_BLOCK, &set, NULL);
	ev_ref(W.loop);
	ev_ref(W.loop);
	ev_ref(W.loop);
	ev_ref(W.loop);
	ev_signal_stop(W.loop, &W.sigterm);
	ev_signal_stop(W.loop, &W.sigint);
	ev_signal_stop(W.loop, &W.sigquit);
	ev_signal_stop(W.loop, &W.sigcancel);
}

/* ---- the process ------------------------------------------------------------ */

void
ks_worker_process(const struct ks_wspec *spec)
{
	int rc = KS_WEXIT_SETUP;

	reset_signals();
	ks_log_init_child();
	W.conf = spec->conf;
	W.slot = spec->slot;
	W.notify_fd = spec->notify_fd;
	W.slot->pid = (int32_t)getpid();
	/* The master gone (killed) means nobody supervises: stop. */
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != spec->master)
		exit(KS_WEXIT_OK);
	if (ks_privs_drop(W.conf) != 0)
		exit(KS_WEXIT_SETUP);
	if ((W.loop = ev_loop_new(EVFLAG_AUTO)) == NULL) {
		ks_log(KS_LOG_ERR, "worker: cannot create an event loop");
		exit(KS_WEXIT_SETUP);
	}
	ks_worker_init(&W.wk, W.loop, W.conf->coroutine_stack);
	W.wk.stats = &W.slot->stats;
	W.wk.zu.zone = spec->zone;
	W.wk.zu.slot = spec->slot_index;
	W.wk.lstats = ks_sb_row(spec->sb, spec->slot_index);
	ks_metrics_src_init(&W.msrc, spec->sb, W.conf);
	W.wk.metrics = &W.msrc;
	if (spec->alog_fd >= 0) {
		ks_alog_init(&W.alog, &W.wk, spec->alog_fd,
			     W.conf->access_log_json);
		W.wk.alog = &W.alog;
	}
	ks_admit_init_worker(&W.wk);
	ks_bufpool_set_cap(&W.wk.pool, W.conf->max_buffer_memory);
	W.wk.sched.running = &W.slot->running;
	W.wk.on_idle = on_idle;
	catch_fatal_signals();
	unblock(true);
	if (init_plugins() != 0) {
		rc = KS_WEXIT_INIT;
		goto out;
	}
	if (attach_listeners() != 0)
		goto out;
	watch_signals();
	unblock(false);
	ev_init(&W.stop_timer, stop_timer_cb);
	ks_slot_set_state(W.slot, KS_SLOT_READY);
	tell_master();
	ks_log(KS_LOG_DEBUG, "worker #%u of generation %u ready",
	       (unsigned)W.slot->number, W.conf->generation);
	ev_run(W.loop, 0);
	ev_timer_stop(W.loop, &W.stop_timer);
	unwatch_signals();
	rc = KS_WEXIT_OK;
out:
	close_listeners();
	ks_worker_destroy(&W.wk);
	if (W.wk.alog != NULL) {
		/* the lines of the connections closed on the way out */
		ks_alog_close(&W.alog, ALOG_EXIT_WAIT);
		W.wk.alog = NULL;
	}
	ev_loop_destroy(W.loop);
	exit(rc);
}
