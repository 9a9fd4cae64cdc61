/*
 * The process model, in-process: ks_master_run in a forked child with two
 * workers, driven over a unix socket: a dialogue, a reload (which forks a
 * configuration check and two new workers), another dialogue, a stop.
 * The master's log comes back through a pipe; every wait is on a log line
 * or a reply.  Run under valgrind (CI's valgrind stage runs this binary with
 * CK_FORK=no), the master, its workers and its check child all run under
 * memcheck: an error or a definite leak in any of them makes it exit with
 * valgrind's error status, which the master logs for a worker (and this
 * test refuses) and which is the master's own exit status otherwise.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "log.h"
#include "proc.h"
#include "suites.h"

#define WAIT_MS 120000 /* generous: valgrind is slow */

struct logpipe {
	int fd;
	char buf[65536];
	size_t len;    /* bytes in buf */
	size_t seen;   /* searched up to here */
	int eof;
};

static void
setup(void)
{
	fx_setup_dir("proc");
}

static void
teardown(void)
{
	fx_teardown_dir();
}

static int
read_more(struct logpipe *lp)
{
	struct pollfd pfd = {.fd = lp->fd, .events = POLLIN};
	ssize_t n;

	if (poll(&pfd, 1, WAIT_MS) <= 0)
		return -1;
	if (lp->len == sizeof(lp->buf) - 1) {
		/* keep the second half: old lines were searched already */
		memmove(lp->buf, lp->buf + sizeof(lp->buf) / 2,
			lp->len - sizeof(lp->buf) / 2);
		lp->len -= sizeof(lp->buf) / 2;
		lp->seen = lp->seen > sizeof(lp->buf) / 2
				   ? lp->seen - sizeof(lp->buf) / 2
				   : 0;
	}
	n = read(lp->fd, lp->buf + lp->len, sizeof(lp->buf) - 1 - lp->len);
	if (n <= 0) {
		lp->eof = 1;
		return n < 0 ? -1 : 0;
	}
	lp->len += (size_t)n;
	lp->buf[lp->len] = '\0';
	return 0;
}

/* Waits for a line containing what; fails on an error-level line
 * meanwhile. */
static void
wait_for(struct logpipe *lp, const char *what)
{
	char *nl, *line;

	for (;;) {
		while ((nl = memchr(lp->buf + lp->seen, '\n',
				    lp->len - lp->seen)) != NULL) {
			line = lp->buf + lp->seen;
			*nl = '\0';
			lp->seen = (size_t)(nl - lp->buf) + 1;
			ck_assert_msg(strstr(line, ": error: ") == NULL,
				      "error in the log: %s", line);
			if (strstr(line, what) != NULL)
				return;
		}
		ck_assert_msg(!lp->eof && read_more(lp) == 0,
			      "no \"%s\" in the log", what);
	}
}

static void
echo_once(const char *path, const char *text)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	char got[128];
	size_t n = strlen(text), have = 0;
	ssize_t r;
	int fd;

	snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&un, sizeof(un)), 0);
	ck_assert_int_eq(write(fd, text, n), (ssize_t)n);
	while (have < n && (r = read(fd, got + have, sizeof(got) - have)) > 0)
		have += (size_t)r;
	ck_assert_uint_eq(have, n);
	ck_assert_int_eq(memcmp(got, text, n), 0);
	close(fd);
}

START_TEST(test_master_workers_reload_stop)
{
	char sock[256], *argv[] = {"ksockd", "-f", "-c", fx_path, NULL};
	struct logpipe lp = {.fd = -1};
	int p[2], status;
	pid_t pid;

	snprintf(sock, sizeof(sock), "%s/echo.sock", fx_dir);
	fx_write_file("ksockd.conf",
		      "daemon = { plugin_dir = \"" KS_BUILD_PLUGIN_DIR "\";\n"
		      "  workers = 2; shutdown_timeout = 10; };\n"
		      "listeners = ( { name = \"echo\"; protocol = \"unix\";\n"
		      "  address = \"DIR/echo.sock\"; handler = \"echo\"; } );\n");
	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(p[0]);
		dup2(p[1], STDERR_FILENO);
		close(p[1]);
		ks_log_set_sink(NULL, NULL);
		ks_log_init(KS_LOG_TEXT, KS_LOG_INFO);
		exit(ks_master_run(fx_path, argv));
	}
	close(p[1]);
	lp.fd = p[0];
	wait_for(&lp, "ready (1 listeners, 2 workers)");
	echo_once(sock, "first\n");
	kill(pid, SIGHUP);
	wait_for(&lp, "reloaded configuration (1 listeners, 2 workers)");
	echo_once(sock, "second\n");
	kill(pid, SIGTERM);
	wait_for(&lp, "stopped: 2 connections served");
	while (waitpid(pid, &status, 0) < 0)
		ck_assert_int_eq(errno, EINTR);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "the master ended with status 0x%x", status);
	/* The workers are gone too: they held the pipe. */
	while (!lp.eof)
		ck_assert_int_eq(read_more(&lp), 0);
	close(p[0]);
	ck_assert_int_ne(access(sock, F_OK), 0);
}
END_TEST

Suite *
ks_suite_proc(void)
{
	Suite *s = suite_create("proc");
	TCase *tc = tcase_create("master");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_master_workers_reload_stop);
	suite_add_tcase(s, tc);
	return s;
}
