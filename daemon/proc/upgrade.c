/*
 * In-place binary upgrade (SIGUSR2): the master re-executes its binary,
 * from the path it was started with, as the same process, so systemd
 * keeps tracking the same PID.  The listening sockets, the scoreboard and
 * the workers survive the exec; the old workers keep serving throughout
 * and are retired once the new image's workers are ready.
 *
 * What if the new binary is broken?  An exec cannot be taken back, so:
 * 1. Before the exec, the new binary checks the configuration in a child
 *    (`NEW -t -c FILE`): a binary that does not run (missing, wrong
 *    architecture, missing libraries), plugins it cannot load (another
 *    ABI) or a configuration it refuses end the upgrade there, with the
 *    old master untouched.
 * 2. The old image hands over an open descriptor of its own binary.  If
 *    the new image fails to start after the exec (its configuration does
 *    not load, a socket does not bind, a new worker dies before it is
 *    ready, or it crashes while starting), it re-executes that old binary
 *    with the same state: the old code takes over again, and the old
 *    workers, never told to retire, kept serving all along.
 * 3. Should the old binary then fail to load the configuration too, it
 *    keeps the old workers serving without a configuration of its own
 *    and says so; a SIGHUP with a good file recovers.
 * nginx forks and execs instead, with a second master and a new PID, and
 * leaves the rollback to the operator; ksockd keeps the PID and rolls
 * back by itself.
 *
 * The state travels in a memfd named by KSOCKD_UPGRADE_FD, one record per
 * line: the scoreboard's and the eventfd's descriptors, the fallback
 * binary's, the last generation number, every listening socket
 * (descriptor, origin, whether its unix path is ours, the name to match it
 * by) and every worker (pid, scoreboard slot, generation, number, state).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "lsock.h"
#include "master.h"
#include "proc.h"
#include "sd.h"
#include "upgrade.h"
#include "util.h"

#define ENV_FD "KSOCKD_UPGRADE_FD"
#define ENV_FAILED "KSOCKD_UPGRADE_FAILED"
#define CHECK_TIMEOUT 30.0
#define STATE_MAGIC "ksockd-upgrade 1"

extern char **environ;

struct ks_upgrade {
	pid_t check_pid;
	ev_timer timer;
	struct ks_master *m;
};

/* ---- the old image: check, hand over, exec ------------------------------- */

static void
end(struct ks_master *m, const char *failure)
{
	struct ks_upgrade *u = m->upgrade;

	ev_timer_stop(m->loop, &u->timer);
	if (u->check_pid > 0)
		kill(u->check_pid, SIGKILL);
	free(u);
	m->upgrade = NULL;
	if (failure != NULL)
		ks_log(KS_LOG_ERR, "upgrade aborted: %s; the running binary "
		       "carries on", failure);
	ks_sd_notify("READY=1");
}

static void
timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct ks_upgrade *u = KS_CONTAINER_OF(t, struct ks_upgrade, timer);

	(void)loop;
	(void)revents;
	end(u->m, "the new binary's configuration check did not finish in "
	    "time");
}

static int
set_cloexec(int fd, int on)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl < 0)
		return -1;
	return fcntl(fd, F_SETFD, on ? fl | FD_CLOEXEC : fl & ~FD_CLOEXEC);
}

static void
hex(FILE *f, const char *s)
{
	if (s == NULL || *s == '\0') {
		fputc('-', f);
		return;
	}
	for (; *s != '\0'; s++)
		fprintf(f, "%02x", (unsigned char)*s);
}

/* The memfd with the state, every descriptor in it left open across the
 * exec.  -1 after logging. */
static int
write_state(struct ks_master *m)
{
	const struct ks_lsock *ls;
	const struct ks_wrec *w;
	FILE *f;
	int fd, ok;

	if ((fd = memfd_create("ksockd-upgrade", MFD_CLOEXEC)) < 0) {
		ks_log_errno(KS_LOG_ERR, "upgrade: memfd");
		return -1;
	}
	if ((f = fdopen(dup(fd), "w")) == NULL) {
		close(fd);
		return -1;
	}
	fprintf(f, "%s\nscoreboard %d\nzone %d\nnotify %d\nfallback %d\n"
		"generation %u\nexe ", STATE_MAGIC, m->sb.fd, m->zone.fd,
		m->notify_fd, m->exe_fd, m->last_generation);
	hex(f, m->exe);
	fputc('\n', f);
	/* The access log's pipe: the workers of before write on into it. */
	if (m->alsink.pipe_r >= 0)
		fprintf(f, "alog %d %d\n", m->alsink.pipe_r, m->alsink.pipe_w);
	for (ls = m->lsocks; ls != NULL; ls = ls->next) {
		fprintf(f, "lsock %d %d %d ", ls->fd, (int)ls->origin,
			ls->unlink_path ? 1 : 0);
		/* systemd's name if it had one, else the listener's */
		hex(f, ls->name != NULL ? ls->name
		       : ls->lc != NULL ? ls->lc->name
					: NULL);
		fputc('\n', f);
	}
	for (w = m->workers; w != NULL; w = w->next)
		fprintf(f, "worker %d %u %u %u %d\n", (int)w->pid, w->slot,
			w->generation, w->number, (int)w->state);
	ok = fflush(f) == 0 && !ferror(f);
	fclose(f);
	if (!ok) {
		ks_log(KS_LOG_ERR, "upgrade: writing the state failed");
		close(fd);
		return -1;
	}
	return fd;
}

/* Every descriptor of the state open across the exec (on), or not. */
static void
hand_over(struct ks_master *m, int state_fd, int on)
{
	struct ks_lsock *ls;

	set_cloexec(m->sb.fd, !on);
	set_cloexec(m->zone.fd, !on);
	set_cloexec(m->notify_fd, !on);
	set_cloexec(m->exe_fd, !on);
	set_cloexec(state_fd, !on);
	if (m->alsink.pipe_r >= 0) {
		set_cloexec(m->alsink.pipe_r, !on);
		set_cloexec(m->alsink.pipe_w, !on);
	}
	for (ls = m->lsocks; ls != NULL; ls = ls->next)
		set_cloexec(ls->fd, !on);
}

static void
exec_new(struct ks_master *m)
{
	char num[32];
	int fd;

	if (m->exe_fd < 0 || m->sb.fd < 0) {
		end(m, "this image keeps no descriptor of its binary");
		return;
	}
	if ((fd = write_state(m)) < 0) {
		end(m, "the state could not be written");
		return;
	}
	ks_log(KS_LOG_INFO, "upgrade: executing %s", m->exe);
	ev_timer_stop(m->loop, &m->upgrade->timer);
	free(m->upgrade);
	m->upgrade = NULL;
	snprintf(num, sizeof(num), "%d", fd);
	hand_over(m, fd, 1);
	setenv(ENV_FD, num, 1);
	execv(m->exe, m->argv);
	ks_log_errno(KS_LOG_ERR, "upgrade aborted: exec %s", m->exe);
	unsetenv(ENV_FD);
	hand_over(m, fd, 0);
	close(fd);
	ks_sd_notify("READY=1");
}

void
ks_upgrade_start(struct ks_master *m)
{
	struct ks_upgrade *u;
	pid_t pid;

	if (m->upgrade != NULL || m->reload != NULL) {
		ks_log(KS_LOG_WARN, "received SIGUSR2 during a %s: ignored; send "
		       "it again once that is done",
		       m->upgrade != NULL ? "binary upgrade" : "reload");
		return;
	}
	ks_sd_reloading();
	ks_log(KS_LOG_INFO, "received SIGUSR2: upgrading to %s", m->exe);
	if ((u = calloc(1, sizeof(*u))) == NULL) {
		ks_log(KS_LOG_ERR, "upgrade aborted: out of memory");
		ks_sd_notify("READY=1");
		return;
	}
	u->m = m;
	ev_init(&u->timer, timer_cb);
	m->upgrade = u;
	if ((pid = ks_master_fork()) < 0) {
		ks_log_errno(KS_LOG_ERR, "upgrade: fork");
		end(m, "the new binary could not be checked");
		return;
	}
	if (pid == 0) {
		ks_master_child_reset(m);
		execl(m->exe, m->argv[0], "-t", "-c", m->path, (char *)NULL);
		ks_log_errno(KS_LOG_ERR, "upgrade: exec %s", m->exe);
		_exit(127);
	}
	u->check_pid = pid;
	ev_timer_set(&u->timer, CHECK_TIMEOUT, 0);
	ev_timer_start(m->loop, &u->timer);
}

int
ks_upgrade_child_exited(struct ks_master *m, pid_t pid, int status)
{
	struct ks_upgrade *u = m->upgrade;
	char why[4500];

	if (u == NULL || pid != u->check_pid)
		return 0;
	u->check_pid = 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		exec_new(m);
		return 1;
	}
	if (WIFEXITED(status))
		snprintf(why, sizeof(why), "`%s -t -c %s` failed (status %d)",
			 m->exe, m->path, WEXITSTATUS(status));
	else
		snprintf(why, sizeof(why), "`%s -t -c %s` was killed by signal "
			 "%d", m->exe, m->path, WTERMSIG(status));
	end(m, why);
	return 1;
}

void
ks_upgrade_abort(struct ks_master *m)
{
	if (m->upgrade != NULL) {
		struct ks_upgrade *u = m->upgrade;

		ev_timer_stop(m->loop, &u->timer);
		if (u->check_pid > 0)
			kill(u->check_pid, SIGKILL);
		free(u);
		m->upgrade = NULL;
	}
}

/* ---- the new image: take the state over ---------------------------------- */

static char *
unhex(const char *s)
{
	size_t n = strlen(s), i;
	unsigned v;
	char *out;

	if (strcmp(s, "-") == 0 || n % 2 != 0 || (out = malloc(n / 2 + 1)) == NULL)
		return NULL;
	for (i = 0; i < n / 2; i++) {
		if (sscanf(s + 2 * i, "%2x", &v) != 1) {
			free(out);
			return NULL;
		}
		out[i] = (char)v;
	}
	out[n / 2] = '\0';
	return out;
}

static int
adopt_line(struct ks_master *m, const char *line, struct ks_lsock **lsocks)
{
	int fd, origin, unl, pid, st;
	unsigned slot, gen, num;
	struct ks_lsock *ls;
	struct ks_wrec *w;
	char name[8200];
	char *nm;

	if (sscanf(line, "scoreboard %d", &fd) == 1)
		return ks_sb_attach(&m->sb, fd);
	if (sscanf(line, "zone %d", &fd) == 1)
		return ks_zone_attach(&m->zone, fd);
	if (sscanf(line, "alog %d %d", &fd, &pid) == 2) {
		ks_alsink_adopt(&m->alsink, fd, pid);
		return 0;
	}
	if (sscanf(line, "notify %d", &fd) == 1) {
		m->notify_fd = fd;
		return 0;
	}
	if (sscanf(line, "fallback %d", &fd) == 1) {
		m->fallback_fd = fd;
		return 0;
	}
	if (sscanf(line, "generation %u", &gen) == 1) {
		m->last_generation = gen;
		return 0;
	}
	if (sscanf(line, "exe %8199s", name) == 1) {
		/* The path the daemon was started with: an exec'd image's own
		 * /proc/self/exe may be the old, replaced file. */
		if ((nm = unhex(name)) != NULL)
			snprintf(m->exe, sizeof(m->exe), "%s", nm);
		free(nm);
		return 0;
	}
	if (sscanf(line, "lsock %d %d %d %8199s", &fd, &origin, &unl, name) == 4) {
		nm = unhex(name);
		ls = ks_lsock_adopt(fd, nm, (enum ks_lsock_origin)origin);
		free(nm);
		if (ls == NULL)
			return 0; /* logged; the listener binds anew */
		ls->unlink_path = unl != 0;
		ls->next = *lsocks;
		*lsocks = ls;
		return 0;
	}
	if (sscanf(line, "worker %d %u %u %u %d", &pid, &slot, &gen, &num, &st) ==
		    5 &&
	    slot < KS_SB_SLOTS) {
		if ((w = calloc(1, sizeof(*w))) == NULL)
			return -1;
		w->pid = pid;
		w->slot = slot;
		w->generation = gen;
		w->number = num;
		w->state = (enum ks_wstate)st;
		w->started = 0;
		w->next = m->workers;
		m->workers = w;
		return 0;
	}
	return strcmp(line, STATE_MAGIC) == 0 ? 0 : -1;
}

int
ks_upgrade_adopt(struct ks_master *m, struct ks_lsock **lsocks)
{
	const char *env = getenv(ENV_FD), *failed = getenv(ENV_FAILED);
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;
	int fd, rc = 0;

	*lsocks = NULL;
	if (env == NULL)
		return 0;
	fd = atoi(env);
	m->state_fd = fd;
	m->is_fallback = failed != NULL;
	if (lseek(fd, 0, SEEK_SET) != 0 || (f = fdopen(dup(fd), "r")) == NULL) {
		ks_log_errno(KS_LOG_ERR, "upgrade: reading the state");
		return -1;
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		line[strcspn(line, "\n")] = '\0';
		if (adopt_line(m, line, lsocks) != 0) {
			ks_log(KS_LOG_ERR, "upgrade: bad state line \"%s\"", line);
			rc = -1;
		}
	}
	free(line);
	fclose(f);
	if (m->sb.base == NULL || m->notify_fd < 0) {
		ks_log(KS_LOG_ERR, "upgrade: the state has no scoreboard");
		rc = -1;
	}
	m->upgrading = true;
	if (m->is_fallback)
		ks_log(KS_LOG_ERR, "the upgrade failed (%s): back on the "
		       "previous binary", failed);
	ks_log(KS_LOG_INFO, "took over %u worker(s) and the listening "
	       "sockets from the previous image", ks_master_count_all(m, NULL));
	return rc == 0 ? 1 : -1;
}

/* Adopted descriptors become this image's: closed in what it execs. */
static void
keep_descriptors(struct ks_master *m)
{
	struct ks_lsock *ls;

	set_cloexec(m->sb.fd, 1);
	set_cloexec(m->zone.fd, 1);
	set_cloexec(m->notify_fd, 1);
	for (ls = m->lsocks; ls != NULL; ls = ls->next)
		set_cloexec(ls->fd, 1);
}

void
ks_upgrade_settle(struct ks_master *m)
{
	if (!m->upgrading)
		return;
	m->upgrading = false;
	keep_descriptors(m);
	if (m->fallback_fd >= 0)
		close(m->fallback_fd);
	if (m->state_fd >= 0)
		close(m->state_fd);
	m->fallback_fd = m->state_fd = -1;
	unsetenv(ENV_FD);
	unsetenv(ENV_FAILED);
}

void
ks_upgrade_done(struct ks_master *m)
{
	if (!m->upgrading)
		return;
	ks_upgrade_settle(m);
	ks_master_close_left(m);
	ks_master_signal(m, NULL, KS_SIG_RETIRE);
	ks_log(KS_LOG_INFO, "%s %s (pid %d)",
	       m->is_fallback ? "back on the previous binary," : "upgraded to",
	       m->exe, (int)getpid());
}

/* Async-signal-safe where it has to be: the crash handler calls it. */
static void
exec_fallback(struct ks_master *m, const char *why)
{
	setenv(ENV_FAILED, why, 1);
	syscall(SYS_execveat, m->fallback_fd, "", m->argv, environ,
		AT_EMPTY_PATH);
}

void
ks_upgrade_fall_back(struct ks_master *m, const char *why)
{
	struct ks_wrec *w;

	if (!m->upgrading || m->is_fallback || m->fallback_fd < 0)
		return;
	ks_log(KS_LOG_ERR, "upgrade failed: %s: going back to the previous "
	       "binary", why);
	/* This image's own workers (adopted ones are not told anything)
	 * must not serve on: they die with the image's memory gone. */
	for (w = m->workers; w != NULL; w = w->next)
		if (w->conf != NULL)
			kill(w->pid, SIGKILL);
	if (lseek(m->state_fd, 0, SEEK_SET) != 0)
		return;
	exec_fallback(m, why);
	ks_log_errno(KS_LOG_ERR, "upgrade: cannot execute the previous binary");
}

/* While the new image starts: a crash goes back to the previous binary. */
static struct ks_master *crash_master;

static void
crash_handler(int sig)
{
	struct ks_master *m = crash_master;

	(void)sig;
	if (m != NULL && m->upgrading && !m->is_fallback &&
	    m->fallback_fd >= 0 && lseek(m->state_fd, 0, SEEK_SET) == 0) {
		/* No setenv here: the environment was prepared. */
		syscall(SYS_execveat, m->fallback_fd, "", m->argv,
			m->crash_envp, AT_EMPTY_PATH);
	}
	/* SA_RESETHAND: back to the default, which kills on return. */
}

void
ks_upgrade_guard(struct ks_master *m, bool on)
{
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
	struct sigaction sa;
	size_t i, n;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	if (on) {
		if (!m->upgrading || m->is_fallback || m->fallback_fd < 0)
			return;
		for (n = 0; environ[n] != NULL; n++)
			;
		if ((m->crash_envp = calloc(n + 2, sizeof(char *))) == NULL)
			return;
		for (i = 0; i < n; i++)
			m->crash_envp[i] = environ[i];
		m->crash_envp[n] = ENV_FAILED "=the new binary crashed while "
					      "starting";
		crash_master = m;
		sa.sa_handler = crash_handler;
		sa.sa_flags = SA_RESETHAND | SA_NODEFER;
	} else {
		sa.sa_handler = SIG_DFL;
		crash_master = NULL;
	}
	for (i = 0; i < KS_ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &sa, NULL);
	if (!on) {
		free(m->crash_envp);
		m->crash_envp = NULL;
	}
}
