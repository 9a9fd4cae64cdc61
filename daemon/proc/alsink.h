/*
 * The access log, the master's side (the workers' is net/alog.h): a pipe
 * that every worker writes its lines into, and the file the master
 * appends them to.  The master opens the file (as the user it runs as,
 * before any worker could), reopens it on SIGUSR1 after logrotate moved
 * it, and switches files when a reload names another.  What it reads
 * waits up to 0.1 s in a buffer, so that the file gets a few large writes
 * instead of one per worker wake-up.  Internal to proc/.
 */
#ifndef KS_ALSINK_H
#define KS_ALSINK_H

#include <ev.h>
#include <stdbool.h>

struct ks_conf;

struct ks_alsink {
	int pipe_r, pipe_w; /* -1 until a configuration has an access log */
	int fd;             /* the file; -1: none (lines are dropped) */
	char *path;         /* its name, for SIGUSR1 */
	int next_fd;        /* a reload's file until it commits; -1 */
	char *next_path;
	char *buf;          /* lines read, not written yet (WBUF_SIZE) */
	size_t len;
	ev_io rio;
	ev_timer flush_timer; /* writes buf out FLUSH_DELAY after a read */
	struct ev_loop *loop; /* NULL until ks_alsink_watch */
};

void ks_alsink_init(struct ks_alsink *s);
/* An upgrade's new image: the pipe the previous one handed on. */
void ks_alsink_adopt(struct ks_alsink *s, int pipe_r, int pipe_w);
/* Starts reading the pipe on loop. */
void ks_alsink_watch(struct ks_alsink *s, struct ev_loop *loop);
/* A generation about to start: makes the pipe (when conf has an access
 * log and there is none yet) and opens conf's file, kept aside until
 * _commit.  0, or -1 after logging (the file cannot be opened). */
int ks_alsink_prepare(struct ks_alsink *s, const struct ks_conf *conf);
/* The generation started: its file (or none) replaces the one before. */
void ks_alsink_commit(struct ks_alsink *s);
/* It did not: the file prepare opened is closed. */
void ks_alsink_abort(struct ks_alsink *s);
/* SIGUSR1: opens the file's name again (logrotate moved the old one). */
void ks_alsink_reopen(struct ks_alsink *s);
/* The pipe's write end for a worker about to be forked: -1 when workers
 * of conf log nothing. */
int ks_alsink_worker_fd(const struct ks_alsink *s, const struct ks_conf *conf);
/* Writes what the pipe holds now (the daemon stops: the workers are
 * gone), then closes everything. */
void ks_alsink_close(struct ks_alsink *s);
/* A forked child: the read end is not its business. */
void ks_alsink_forget(struct ks_alsink *s, bool keep_write);

#endif
