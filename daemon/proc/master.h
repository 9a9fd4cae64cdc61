/*
 * The master's state, shared by master.c (start, supervision, stop),
 * reload.c (SIGHUP) and upgrade.c (SIGUSR2).  Internal to proc/.
 */
#ifndef KS_MASTER_H
#define KS_MASTER_H

#include <ev.h>
#include <stdbool.h>
#include <sys/types.h>

#include "alsink.h"
#include "conf.h"
#include "zone.h"
#include "scoreboard.h"
#include "worker.h"

struct ks_lsock;
struct ks_reload;
struct ks_upgrade;

enum ks_wstate {
	KS_W_STARTING, /* forked, not ready yet */
	KS_W_READY,    /* accepting */
	KS_W_DRAINING, /* listeners closed, finishing its connections */
};

/* The master's record of one worker process. */
struct ks_wrec {
	pid_t pid;
	unsigned slot;          /* its scoreboard slot */
	struct ks_conf *conf;   /* its generation (a reference); NULL: one
				 * adopted from the image before an upgrade */
	unsigned generation;
	unsigned number;        /* worker #N of its generation */
	enum ks_wstate state;
	bool told;              /* told to drain: an exit is expected */
	ev_tstamp started;
	struct ks_wrec *next;
};

enum ks_mphase {
	KS_M_STARTING, /* the first workers are starting */
	KS_M_RUNNING,
	KS_M_STOPPING,
};

/* Restarting a worker number that keeps crashing. */
struct ks_backoff {
	unsigned streak;   /* crashes in a row */
	bool pending;
	ev_tstamp due;
};

struct ks_master {
	struct ev_loop *loop;
	const char *path;        /* the configuration file */
	char **argv;             /* as started: an upgrade re-executes it */
	char exe[4096];          /* the binary's path when started */
	int exe_fd;              /* this image's binary, open: what a later
				  * upgrade hands on as its fallback; -1 */
	/* An upgrade's new image until its workers are ready (upgrade.c) */
	bool upgrading;
	bool is_fallback;        /* this image is the fallback of one */
	int fallback_fd;         /* the previous image's binary; -1 */
	int state_fd;            /* the state handed on; -1 */
	char **crash_envp;
	struct ks_conf *conf;    /* the current generation (a reference) */
	struct ks_lsock *lsocks; /* the current generation's sockets */
	struct ks_lsock *left;   /* handed on by an upgrade, taken by no
				  * listener: closed once it is done */
	struct ks_wrec *workers;
	struct ks_scoreboard sb;
	struct ks_zone zone;     /* the shared limits (zone.h) */
	struct ks_alsink alsink; /* the access log's pipe and file */
	int notify_fd;           /* eventfd the workers write to */
	unsigned last_generation;
	enum ks_mphase phase;
	int exit_status;
	struct ks_reload *reload;   /* a reload under way, or NULL */
	bool reload_pending;        /* SIGHUP during one: another after */
	struct ks_upgrade *upgrade; /* an upgrade's check under way */
	struct ks_backoff backoff[KS_MAX_WORKERS];
	ev_tstamp last_reload;      /* 0: none yet */
	bool last_reload_ok;
	/* stopping */
	const char *stop_signal;
	bool stop_logged;
	ev_signal sigterm, sigint, sigquit, sighup, sigusr1, sigusr2;
	ev_child child;
	ev_io notify_io;
	ev_timer respawn_timer, stop_timer, kill_timer, status_timer;
	ev_timer cert_timer;       /* daily: certificates about to expire */
	/* STATUS=: connections accepted at the last update */
	unsigned long long status_accepted;
	ev_tstamp status_at;
	double status_rate; /* over the last window of a second or more */
};

/* ---- master.c, for reload.c and upgrade.c ---- */

/* How many workers a generation runs (daemon.workers, 0: the CPUs this
 * process may run on). */
unsigned ks_master_nworkers(const struct ks_conf *conf);
/* fork(), the child with every signal blocked (it unblocks them once it
 * has handlers of its own).  The parent's mask is untouched. */
pid_t ks_master_fork(void);
/* Forks worker #number of conf.  -1 after logging. */
int ks_master_spawn(struct ks_master *m, struct ks_conf *conf,
		    unsigned number);
/* Every worker of conf's generation (or, conf NULL, adopted ones). */
void ks_master_signal(struct ks_master *m, const struct ks_conf *conf,
		      int sig);
/* Workers of that generation: how many there are, and in which state. */
unsigned ks_master_count(const struct ks_master *m,
			 const struct ks_conf *conf, enum ks_wstate state);
unsigned ks_master_count_all(const struct ks_master *m,
			     const struct ks_conf *conf);
/* "killed by SIGSEGV at address 0x10 while running plugin api (listener
 * api)" for a worker that died with status. */
void ks_master_describe_exit(const struct ks_master *m,
			     const struct ks_wrec *w, int status, char *buf,
			     size_t len);
/* Connections open now, over every worker. */
unsigned long long ks_master_connections(const struct ks_master *m);
/* A generation serves from now on (started, or a reload committed): the
 * metrics show its listeners, the access log its file. */
void ks_master_commit_generation(struct ks_master *m);
/* ---- sockets.c ---- */

/* Loads the configuration into m->conf and takes or binds its sockets
 * (passed: handed on by the image before an upgrade; systemd's are read
 * here).  0; -1 after logging, m->conf NULL.  Handed-on sockets nobody
 * took end in m->left: an upgrade closes them only once it cannot go
 * back any more (the previous binary would take them again). */
int ks_master_start_generation(struct ks_master *m, struct ks_lsock *passed);
/* Closes the handed-on sockets no listener took, with a warning. */
void ks_master_close_left(struct ks_master *m);
/* Closes the current generation's sockets for good. */
void ks_master_close_lsocks(struct ks_master *m);
/* ---- status.c ---- */

/* STATUS= for systemd, now. */
void ks_master_status(struct ks_master *m);
/* The daemon is ready: STATUS= now and every 10 s. */
void ks_master_status_start(struct ks_master *m);
/* Forked children other than workers (configuration checks): reset what
 * the master's loop left them, signals unblocked. */
void ks_master_child_reset(struct ks_master *m);

/* ---- reload.c ---- */

/* SIGHUP: starts a reload (or queues one while one runs). */
void ks_reload_start(struct ks_master *m);
/* A child exited: 1 if it was the reload's configuration check. */
int ks_reload_child_exited(struct ks_master *m, pid_t pid, int status);
/* A worker changed state or died (w: the one that died, else NULL):
 * moves the reload along. */
void ks_reload_poll(struct ks_master *m, const struct ks_wrec *died,
		    int status);
/* The daemon stops: whatever the reload was doing stops too. */
void ks_reload_abort(struct ks_master *m);
/* The sockets a reload in progress bound for the new generation (NULL
 * when none): a forked child closes those its generation does not use. */
struct ks_lsock *ks_reload_added(const struct ks_master *m);
/* `ksockd -t`, and the reload's check: loads path and its plugins in a
 * child process, so that nothing in a file or a plugin's init can take
 * the caller down.  Returns the child's pid (-1 after logging). */
pid_t ks_check_fork(struct ks_master *m, const char *path);
/* What a check child's exit status says: 0 the configuration is good. */
int ks_check_result(int status);

#endif
