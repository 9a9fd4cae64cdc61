/*
 * The process model.  The master (master.c) parses the configuration,
 * loads and initialises the plugins, binds every listener, forks the
 * worker processes and supervises them; it never runs a handler.  A worker
 * (worker_proc.c) runs one event loop over every listener of its
 * configuration generation.  A reload starts workers for the new
 * generation and lets the old ones drain; a worker that dies is replaced.
 * See ARCHITECTURE.md.
 */
#ifndef KS_PROC_H
#define KS_PROC_H

#include <signal.h>
#include <sys/types.h>

struct ks_conf;
struct ks_slot;
struct ks_zone;
struct ks_scoreboard;

/* How a worker exits. */
#define KS_WEXIT_OK 0
#define KS_WEXIT_SETUP 3 /* could not set itself up (privileges, memory) */
#define KS_WEXIT_INIT 4  /* a plugin's init_worker failed */

/* What the master tells a worker.  A worker ignores the terminal's
 * signals (HUP, USR1, USR2, WINCH); the master handles those. */
#define KS_SIG_STOP SIGTERM    /* the daemon stops (SIGINT too) */
#define KS_SIG_RETIRE SIGQUIT  /* a newer generation took over: drain */
#define KS_SIG_CANCEL (SIGRTMIN + 1) /* cancel now, don't wait out
				      * shutdown_timeout */

/* What a forked worker gets from the master. */
struct ks_wspec {
	struct ks_conf *conf;  /* its generation (the listeners' lsocks set) */
	struct ks_slot *slot;  /* its scoreboard slot */
	unsigned slot_index;   /* which one */
	struct ks_zone *zone;  /* the shared limits (zone.h) */
	const struct ks_scoreboard *sb; /* every slot, for the metrics */
	int alog_fd;           /* the access log's pipe; -1: none */
	int notify_fd;         /* eventfd: a write says "look at my slot" */
	pid_t master;
};

/* The worker process, in the child right after the fork (the master's
 * own watchers and descriptors already dropped).  Never returns. */
void ks_worker_process(const struct ks_wspec *spec)
	__attribute__((noreturn));

/* The daemon: the master's life from start to exit.  argv is main's, for
 * an upgrade's re-exec.  Returns the exit status. */
int ks_master_run(const char *conf_path, char **argv);

/* `ksockd -t`: 0 if the file and every plugin's options are valid, 1 with
 * each error logged as "FILE:LINE: message". */
int ks_master_check(const char *conf_path);

#endif
