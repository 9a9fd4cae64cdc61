/*
 * The daemon: one worker, its listeners, signals, graceful stop and reload.
 *
 * Stop (SIGTERM/SIGINT): listening sockets close at once; handlers get
 * shutdown_timeout seconds to finish; then every waiting call returns
 * KS_ECANCELED; connections still open STOP_GRACE seconds later are closed.
 * A second signal skips straight to cancellation.
 *
 * Reload (SIGHUP): the new file is parsed and its plugins initialised
 * first; only if all of that works do listeners switch over.  A listener
 * whose protocol, address and port stay the same keeps its socket, so no
 * connection attempt is refused during a reload; running connections keep
 * the generation they started with.
 */
#include "config.h"

#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "conf.h"
#include "conn.h"
#include "listener.h"
#include "log.h"
#include "server.h"
#include "util.h"
#include "worker.h"

#define STOP_GRACE 2.0 /* seconds between cancelling and closing */

enum stop_phase {
	RUNNING,   /* serving */
	DRAINING,  /* listeners closed, handlers finishing */
	CANCELING, /* handlers told to return (KS_ECANCELED) */
};

struct server {
	struct ev_loop *loop;
	struct ks_worker wk;
	struct ks_conf *conf;
	const char *path;
	struct ks_listener *listeners;
	ev_signal sigterm, sigint, sighup;
	ev_timer stop_timer;
	enum stop_phase phase;
};

static void
notify(const char *state)
{
#ifdef HAVE_SYSTEMD
	sd_notify(0, state);
#else
	(void)state;
#endif
}

static void
close_listeners(struct server *sv)
{
	struct ks_listener *l;

	while ((l = sv->listeners) != NULL) {
		sv->listeners = l->next;
		ks_listener_close(l);
	}
}

static void
on_idle(struct ks_worker *wk)
{
	struct server *sv = wk->udata;

	if (sv->phase != RUNNING)
		ev_break(sv->loop, EVBREAK_ALL);
}

static void
abort_all(struct server *sv)
{
	while (sv->wk.conns != NULL)
		ks_conn_abort(sv->wk.conns);
	ev_break(sv->loop, EVBREAK_ALL);
}

static void
cancel_all(struct server *sv)
{
	struct ks_conn *c, *next;

	sv->phase = CANCELING;
	ks_log(KS_LOG_INFO, "canceling %lu connection(s)", sv->wk.nconns);
	for (c = sv->wk.conns; c != NULL; c = next) {
		next = c->next;
		ks_conn_cancel(c);
	}
	ev_timer_stop(sv->loop, &sv->stop_timer);
	ev_timer_set(&sv->stop_timer, STOP_GRACE, 0);
	ev_timer_start(sv->loop, &sv->stop_timer);
}

static void
stop_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct server *sv = KS_CONTAINER_OF(w, struct server, stop_timer);

	(void)loop;
	(void)revents;
	if (sv->phase == DRAINING) {
		ks_log(KS_LOG_INFO, "shutdown_timeout (%gs) reached",
		       sv->conf->shutdown_timeout);
		cancel_all(sv);
	} else {
		abort_all(sv);
	}
}

static void
stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct server *sv = w->data;
	const char *name = w->signum == SIGINT ? "SIGINT" : "SIGTERM";

	(void)revents;
	if (sv->phase != RUNNING) {
		ks_log(KS_LOG_INFO, "received %s again: canceling now", name);
		if (sv->phase == DRAINING)
			cancel_all(sv);
		return;
	}
	/* Close first: once the line below is logged, connects are refused.
	 * Stopping before that: udp sessions then lose their socket too
	 * rather than keep a copy bound (see ks_dsock_detach_all). */
	sv->wk.stopping = 1;
	close_listeners(sv);
	sv->phase = DRAINING;
	notify("STOPPING=1");
	ks_log(KS_LOG_INFO, "received %s: stopping (%lu connections open)",
	       name, sv->wk.nconns);
	if (sv->wk.nconns == 0) {
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	ev_timer_set(&sv->stop_timer, sv->conf->shutdown_timeout, 0);
	ev_timer_start(loop, &sv->stop_timer);
}

/* Same socket?  Same protocol, address and port; an ephemeral port (0)
 * only matches the listener of the same name, which got that port. */
static int
same_socket(const struct ks_lconf *a, const struct ks_lconf *b)
{
	if (a->protocol != b->protocol || strcmp(a->address, b->address) != 0)
		return 0;
	if (a->protocol == KS_PROTO_UNIX)
		return 1;
	if (a->port != b->port)
		return 0;
	return a->port != 0 || strcmp(a->name, b->name) == 0;
}

static int
reload(struct server *sv)
{
	struct ks_conf *nc;
	struct ks_listener *opened = NULL, *keep = NULL, *l, *next, **pp;
	size_t i;

	if (ks_conf_load(sv->path, &nc) != 0)
		return -1;
	if (ks_conf_load_plugins(nc) != 0) {
		ks_conf_unref(nc);
		return -1;
	}
	/* Open what is new before touching anything that runs. */
	for (i = 0; i < nc->nlisteners; i++) {
		struct ks_lconf *lc = &nc->listeners[i];

		for (l = sv->listeners; l != NULL; l = l->next)
			if (same_socket(l->lc, lc))
				break;
		if (l != NULL)
			continue;
		if ((l = ks_listener_open(&sv->wk, lc)) == NULL) {
			while ((l = opened) != NULL) {
				opened = l->next;
				ks_listener_close(l);
			}
			ks_conf_unref(nc);
			return -1;
		}
		l->next = opened;
		opened = l;
	}
	/* Commit: kept sockets switch generation, dropped ones close. */
	for (pp = &sv->listeners; (l = *pp) != NULL;) {
		struct ks_lconf *match = NULL;

		for (i = 0; i < nc->nlisteners && match == NULL; i++)
			if (same_socket(l->lc, &nc->listeners[i]))
				match = &nc->listeners[i];
		*pp = l->next;
		if (match == NULL) {
			ks_log(KS_LOG_INFO, "listener %s closed (not in the new configuration)",
			       l->lc->name);
			ks_listener_close(l);
			continue;
		}
		ks_listener_set_conf(l, match);
		l->next = keep;
		keep = l;
	}
	for (l = opened; l != NULL; l = next) {
		next = l->next;
		ks_listener_start(l);
		l->next = keep;
		keep = l;
	}
	sv->listeners = keep;
	ks_log_set_threshold(nc->log_level);
	ks_sched_set_stack_size(&sv->wk.sched, nc->coroutine_stack);
	ks_conf_unref(sv->conf);
	sv->conf = nc;
	return 0;
}

static void
hup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct server *sv = w->data;

	(void)loop;
	(void)revents;
	if (sv->phase != RUNNING)
		return;
	ks_log(KS_LOG_INFO, "received SIGHUP: reloading %s", sv->path);
	notify("RELOADING=1");
	if (reload(sv) != 0)
		ks_log(KS_LOG_ERR,
		       "reload failed: still running the previous configuration");
	else
		ks_log(KS_LOG_INFO, "reloaded configuration (%zu listeners)",
		       sv->conf->nlisteners);
	notify("READY=1");
}

static int
open_listeners(struct server *sv)
{
	struct ks_listener *l;
	size_t i;

	for (i = 0; i < sv->conf->nlisteners; i++) {
		if ((l = ks_listener_open(&sv->wk, &sv->conf->listeners[i])) == NULL)
			return -1;
		l->next = sv->listeners;
		sv->listeners = l;
	}
	for (l = sv->listeners; l != NULL; l = l->next)
		ks_listener_start(l);
	return 0;
}

int
ks_server_run(const char *path)
{
	struct server sv;
	const struct ks_stats *st;
	int rc = EXIT_FAILURE;

	memset(&sv, 0, sizeof(sv));
	sv.path = path;
	if (ks_conf_load(path, &sv.conf) != 0)
		return EXIT_FAILURE;
	ks_log_set_threshold(sv.conf->log_level);
	if (ks_conf_load_plugins(sv.conf) != 0)
		goto out_conf;
	if ((sv.loop = ev_default_loop(EVFLAG_AUTO)) == NULL) {
		ks_log(KS_LOG_ERR, "cannot initialise the event loop");
		goto out_conf;
	}
	ks_worker_init(&sv.wk, sv.loop, sv.conf->coroutine_stack);
	sv.wk.on_idle = on_idle;
	sv.wk.udata = &sv;
	if (open_listeners(&sv) != 0)
		goto out_worker;

	ev_signal_init(&sv.sigterm, stop_cb, SIGTERM);
	ev_signal_init(&sv.sigint, stop_cb, SIGINT);
	ev_signal_init(&sv.sighup, hup_cb, SIGHUP);
	sv.sigterm.data = sv.sigint.data = sv.sighup.data = &sv;
	ev_signal_start(sv.loop, &sv.sigterm);
	ev_signal_start(sv.loop, &sv.sigint);
	ev_signal_start(sv.loop, &sv.sighup);
	ev_init(&sv.stop_timer, stop_timer_cb);

	ks_log(KS_LOG_INFO, "ready (%zu listeners)", sv.conf->nlisteners);
	notify("READY=1");
	ev_run(sv.loop, 0);

	ev_timer_stop(sv.loop, &sv.stop_timer);
	ev_signal_stop(sv.loop, &sv.sigterm);
	ev_signal_stop(sv.loop, &sv.sigint);
	ev_signal_stop(sv.loop, &sv.sighup);
	st = &sv.wk.stats;
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
	rc = EXIT_SUCCESS;
out_worker:
	close_listeners(&sv);
	ks_worker_destroy(&sv.wk);
	ev_loop_destroy(sv.loop);
out_conf:
	ks_conf_unref(sv.conf);
	return rc;
}

int
ks_server_check(const char *path)
{
	struct ks_conf *conf;
	int rc;

	if (ks_conf_load(path, &conf) != 0)
		return EXIT_FAILURE;
	rc = ks_conf_load_plugins(conf);
	if (rc == 0)
		ks_log(KS_LOG_INFO, "%s: configuration OK", path);
	ks_conf_unref(conf);
	return rc == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
