/*
 * The access log, the master's side: see alsink.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alsink.h"
#include "conf.h"
#include "log.h"
#include "util.h"

#define PIPE_SIZE (1 << 20) /* what the workers may get ahead of the disk */
#define READ_CHUNK 65536
#define WBUF_SIZE 65536     /* the master's buffer for the file */
#define FLUSH_DELAY 0.05    /* seconds a line may wait in the pipe and it */

void
ks_alsink_init(struct ks_alsink *s)
{
	memset(s, 0, sizeof(*s));
	s->pipe_r = s->pipe_w = s->fd = s->next_fd = -1;
}

void
ks_alsink_adopt(struct ks_alsink *s, int pipe_r, int pipe_w)
{
	s->pipe_r = pipe_r;
	s->pipe_w = pipe_w;
	(void)fcntl(pipe_r, F_SETFD, FD_CLOEXEC);
	(void)fcntl(pipe_w, F_SETFD, FD_CLOEXEC);
}

static int
open_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
				    O_NOCTTY, 0640);

	if (fd < 0)
		ks_log_errno(KS_LOG_ERR, "access log %s: open", path);
	return fd;
}

/* Appends n bytes to the file; a failing disk is logged, rate-limited,
 * and the lines are lost (the workers must not wait for it). */
static void
append(struct ks_alsink *s, const char *p, size_t n)
{
	static struct ks_lograte fail_log =
		KS_LOGRATE_INIT("access-log write failures");
	ssize_t w;

	while (n > 0 && s->fd >= 0) {
		w = write(s->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (ks_lograte_allow(&fail_log, KS_LOG_ERR, NULL))
				ks_log_errno(KS_LOG_ERR, "access log %s: write "
					     "(%zu bytes lost)", s->path, n);
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

/* What the buffer holds goes to the file. */
static void
flush_file(struct ks_alsink *s)
{
	if (s->len > 0)
		append(s, s->buf, s->len);
	s->len = 0;
}

/* Reads the pipe into the buffer until it is empty (a short read says
 * so: no read for the EAGAIN), or max bytes, so that a flood of lines
 * cannot keep the master from its other work; the buffer goes to the
 * file whenever it is half full.  1: the pipe may hold more. */
static int
drain(struct ks_alsink *s, size_t max)
{
	size_t total = 0, room;
	ssize_t n;

	if (s->buf == NULL && (s->buf = malloc(WBUF_SIZE)) == NULL)
		return 0; /* (the next wake-up tries again) */
	while (total < max) {
		if (s->len >= WBUF_SIZE / 2)
			flush_file(s);
		room = WBUF_SIZE - s->len;
		n = read(s->pipe_r, s->buf + s->len, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		s->len += (size_t)n;
		total += (size_t)n;
		if ((size_t)n < room)
			return 0;
	}
	return 1;
}

/* Everything now: the pipe drained, the buffer written. */
static void
drain_all(struct ks_alsink *s)
{
	while (drain(s, (size_t)-1 / 2) != 0)
		;
	flush_file(s);
}

/* The pipe became readable: take what is there, then look again only
 * after FLUSH_DELAY.  Busy workers flush every loop iteration; this way
 * the master wakes at most 1 / FLUSH_DELAY times a second for them, not
 * once per flush, and the file gets a write per half buffer (the pipe
 * holds PIPE_SIZE meanwhile, which at 140-byte lines is 7,000 lines per
 * FLUSH_DELAY). */
static void
rio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ks_alsink *s = KS_CONTAINER_OF(w, struct ks_alsink, rio);

	(void)revents;
	(void)drain(s, 16 * READ_CHUNK);
	ev_io_stop(loop, &s->rio);
	ev_timer_set(&s->flush_timer, FLUSH_DELAY, 0);
	ev_timer_start(loop, &s->flush_timer);
}

static void
flush_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ks_alsink *s = KS_CONTAINER_OF(w, struct ks_alsink, flush_timer);

	(void)revents;
	(void)drain(s, 16 * READ_CHUNK);
	flush_file(s);
	if (s->pipe_r >= 0)
		ev_io_start(loop, &s->rio);
}

void
ks_alsink_watch(struct ks_alsink *s, struct ev_loop *loop)
{
	s->loop = loop;
	ev_io_init(&s->rio, rio_cb, s->pipe_r, EV_READ);
	ev_init(&s->flush_timer, flush_cb);
	if (s->pipe_r >= 0)
		ev_io_start(loop, &s->rio);
}

static int
make_pipe(struct ks_alsink *s)
{
	int p[2];

	/* Non-blocking both ways: a worker never waits for the master, the
	 * master reads until EAGAIN.  (The flag belongs to the pipe, which
	 * every worker shares.) */
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
		ks_log_errno(KS_LOG_ERR, "access log: pipe");
		return -1;
	}
	/* Best effort: the default 64 KiB is a few hundred lines. */
	(void)fcntl(p[1], F_SETPIPE_SZ, PIPE_SIZE);
	s->pipe_r = p[0];
	s->pipe_w = p[1];
	if (s->loop != NULL) {
		ev_io_set(&s->rio, s->pipe_r, EV_READ);
		ev_io_start(s->loop, &s->rio);
	}
	return 0;
}

int
ks_alsink_prepare(struct ks_alsink *s, const struct ks_conf *conf)
{
	ks_alsink_abort(s);
	if (conf->access_log == NULL)
		return 0;
	if (s->pipe_r < 0 && make_pipe(s) != 0)
		return -1;
	if ((s->next_path = strdup(conf->access_log)) == NULL) {
		ks_log(KS_LOG_ERR, "access log: out of memory");
		return -1;
	}
	/* The same file as now: no need for a second descriptor. */
	if (s->path != NULL && strcmp(s->path, s->next_path) == 0)
		return 0;
	if ((s->next_fd = open_file(s->next_path)) < 0) {
		free(s->next_path);
		s->next_path = NULL;
		return -1;
	}
	return 0;
}

void
ks_alsink_commit(struct ks_alsink *s)
{
	/* What the old generation's workers wrote goes to the old file. */
	if (s->pipe_r >= 0)
		drain_all(s);
	if (s->next_path != NULL && s->next_fd < 0) {
		/* the same file */
		free(s->next_path);
		s->next_path = NULL;
		return;
	}
	if (s->fd >= 0)
		close(s->fd);
	free(s->path);
	s->fd = s->next_fd;
	s->path = s->next_path;
	s->next_fd = -1;
	s->next_path = NULL;
	if (s->path != NULL)
		ks_log(KS_LOG_DEBUG, "access log: %s", s->path);
}

void
ks_alsink_abort(struct ks_alsink *s)
{
	if (s->next_fd >= 0)
		close(s->next_fd);
	free(s->next_path);
	s->next_fd = -1;
	s->next_path = NULL;
}

void
ks_alsink_reopen(struct ks_alsink *s)
{
	int fd;

	if (s->path == NULL) {
		ks_log(KS_LOG_INFO, "SIGUSR1: no access log to reopen");
		return;
	}
	/* What the workers wrote so far belongs to the old file. */
	drain_all(s);
	if ((fd = open_file(s->path)) < 0) {
		ks_log(KS_LOG_ERR, "SIGUSR1: access log %s not reopened: "
		       "writing on to the file it was", s->path);
		return;
	}
	close(s->fd);
	s->fd = fd;
	ks_log(KS_LOG_INFO, "SIGUSR1: reopened the access log %s", s->path);
}

int
ks_alsink_worker_fd(const struct ks_alsink *s, const struct ks_conf *conf)
{
	return conf->access_log != NULL ? s->pipe_w : -1;
}

void
ks_alsink_close(struct ks_alsink *s)
{
	if (s->loop != NULL && ev_is_active(&s->rio))
		ev_io_stop(s->loop, &s->rio);
	if (s->loop != NULL && ev_is_active(&s->flush_timer))
		ev_timer_stop(s->loop, &s->flush_timer);
	if (s->pipe_r >= 0)
		drain_all(s);
	else
		flush_file(s);
	ks_alsink_abort(s);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	ks_alsink_forget(s, false);
	free(s->path);
	free(s->buf);
	s->path = NULL;
	s->buf = NULL;
}

void
ks_alsink_forget(struct ks_alsink *s, bool keep_write)
{
	/* (a child: the files are the master's) */
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	if (s->next_fd >= 0)
		close(s->next_fd);
	s->next_fd = -1;
	if (s->pipe_r >= 0)
		close(s->pipe_r);
	s->pipe_r = -1;
	if (!keep_write && s->pipe_w >= 0) {
		close(s->pipe_w);
		s->pipe_w = -1;
	}
}
