/*
 * A test plugin that misbehaves on request, for the process-model tests
 * (tests/integration/test_workers.py and friends).  One command per line:
 *
 *   pid            -> "pid N": the worker process serving this connection
 *   ids            -> "ids UID GID": its user and group
 *   init           -> "init PID": the process init_worker ran in ("init 0"
 *                     if it did not run in this one)
 *   opts           -> "opts tag=T": the tag option, to tell generations
 *   block PATH     blocks the whole worker (a blocking call, as a badly
 *                  written plugin would) until the file PATH exists, at
 *                  most 120 s -> "unblocked"
 *   crash          writes to address 16: SIGSEGV
 *   abort          abort(): SIGABRT
 *   overflow       recurses until the coroutine's stack hits its guard page
 *   anything else  echoed back
 *
 * Options: tag (string), fail_init_worker (bool: init_worker fails with
 * "refused on request").
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ksockd/plugin.h>

struct proc_state {
	const char *tag;
	int fail_init_worker;
};

/* Per process: set by init_worker in the worker it runs in. */
static pid_t init_pid;

static int
proc_init(const ks_options *opts, void **state, char *err, size_t errlen)
{
	static const char *const known[] = {"tag", "fail_init_worker", NULL};
	struct proc_state *st;

	if (ks_opt_check_keys(opts, known, err, errlen) != KS_OK)
		return -1;
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (ks_opt_string(opts, "tag", "-", &st->tag, err, errlen) != KS_OK ||
	    ks_opt_bool(opts, "fail_init_worker", 0, &st->fail_init_worker, err,
			errlen) != KS_OK) {
		free(st);
		return -1;
	}
	*state = st;
	return 0;
}

static int
proc_init_worker(void *state, char *err, size_t errlen)
{
	struct proc_state *st = state;

	if (st->fail_init_worker) {
		snprintf(err, errlen, "refused on request");
		return -1;
	}
	init_pid = getpid();
	return 0;
}

static void
proc_fini(void *state)
{
	free(state);
}

/* A blocking wait, on purpose: the worker serves nobody meanwhile. */
static void
block_until(const char *path)
{
	struct timespec ts = {0, 10 * 1000 * 1000};
	int i;

	for (i = 0; i < 12000 && access(path, F_OK) != 0; i++)
		nanosleep(&ts, NULL);
}

/* Frames big enough to reach the guard page quickly; the volatile use
 * keeps the compiler from turning the recursion into a loop. */
static int
recurse(volatile char *prev, int depth)
{
	volatile char frame[4096];

	frame[0] = (char)depth;
	frame[sizeof(frame) - 1] = prev != NULL ? prev[0] : 0;
	return recurse(frame, depth + 1) + frame[1];
}

static volatile uintptr_t bad_address = 16;

static int
proc_handle(ks_conn *conn, ks_rchan *in, ks_wchan *out, void *state)
{
	struct proc_state *st = state;
	char cmd[512];
	char *line;
	size_t len;
	int rc;

	while ((rc = ks_read_line(in, &line, &len)) == KS_OK) {
		len = len < sizeof(cmd) - 1 ? len : sizeof(cmd) - 1;
		memcpy(cmd, line, len);
		cmd[len] = '\0';
		if (strcmp(cmd, "pid") == 0) {
			ks_printf(out, "pid %d\n", (int)getpid());
		} else if (strcmp(cmd, "ids") == 0) {
			ks_printf(out, "ids %u %u\n", (unsigned)getuid(),
				  (unsigned)getgid());
		} else if (strcmp(cmd, "init") == 0) {
			ks_printf(out, "init %d\n",
				  init_pid == getpid() ? (int)init_pid : 0);
		} else if (strcmp(cmd, "opts") == 0) {
			ks_printf(out, "opts tag=%s\n", st->tag);
		} else if (strncmp(cmd, "block ", 6) == 0) {
			ks_conn_log(conn, KS_LOG_INFO, "proc: blocking until %s",
				    cmd + 6);
			block_until(cmd + 6);
			ks_write_str(out, "unblocked\n");
		} else if (strcmp(cmd, "crash") == 0) {
			ks_conn_log(conn, KS_LOG_INFO, "proc: crashing");
			*(volatile int *)bad_address = 1;
		} else if (strcmp(cmd, "abort") == 0) {
			abort();
		} else if (strcmp(cmd, "overflow") == 0) {
			ks_printf(out, "%d\n", recurse(NULL, 0));
		} else {
			ks_write(out, cmd, len);
			ks_write_str(out, "\n");
		}
	}
	return rc == KS_EOF ? 0 : rc;
}

KS_PLUGIN_DEFINE(.name = "proc", .version = "1", .init = proc_init,
		 .handle = proc_handle, .fini = proc_fini,
		 .init_worker = proc_init_worker);
