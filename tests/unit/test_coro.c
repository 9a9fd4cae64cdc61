/* Coroutine switching, the run queue, stack reuse and the guard page. */
#include "config.h"

#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <ksockd/plugin.h>

#include "coro.h"
#include "suites.h"
#include "util.h"

struct pingpong {
	struct ks_sched *s;
	struct ks_coro *other;
	int *trace;
	int *n;
	int id;
};

static void
pp_body(void *arg)
{
	struct pingpong *p = arg;
	int i;

	for (i = 0; i < 3; i++) {
		p->trace[(*p->n)++] = p->id * 10 + i;
		/* Wake the partner from coroutine context: it is queued and
		 * runs once this one suspends. */
		if (p->other != NULL)
			ks_coro_wake(p->other, KS_OK);
		ks_coro_suspend(p->s);
	}
}

START_TEST(test_pingpong_through_run_queue)
{
	struct ks_sched s;
	struct pingpong a, b;
	int trace[16], n = 0;
	struct ks_coro *ca, *cb;

	ks_sched_init(&s, 65536);
	a = (struct pingpong){&s, NULL, trace, &n, 1};
	b = (struct pingpong){&s, NULL, trace, &n, 2};
	ca = ks_coro_new(&s, pp_body, &a, NULL, NULL);
	cb = ks_coro_new(&s, pp_body, &b, NULL, NULL);
	a.other = cb;
	b.other = ca;
	ks_coro_resume(ca, KS_OK);
	ks_sched_run_queue(&s);
	/* a and b alternate until one of them finishes. */
	ck_assert_int_ge(n, 5);
	ck_assert_int_eq(trace[0], 10);
	ck_assert_int_eq(trace[1], 20);
	ck_assert_int_eq(trace[2], 11);
	ck_assert_int_eq(trace[3], 21);
	ck_assert_int_eq(trace[4], 12);
	/* Let whoever is still suspended finish. */
	if (ca->state == KS_CORO_SUSPENDED)
		ks_coro_resume(ca, KS_OK);
	if (s.live > 0 && cb->state == KS_CORO_SUSPENDED)
		ks_coro_resume(cb, KS_OK);
	ck_assert_uint_eq(s.live, 0);
	ks_sched_destroy(&s);
}
END_TEST

static void
status_body(void *arg)
{
	struct ks_sched *s = arg;
	int *out = (int *)ks_coro_self(s)->udata;

	out[0] = ks_coro_suspend(s);
	out[1] = ks_coro_suspend(s);
}

static void
count_done(void *udata)
{
	int *out = udata;

	out[2]++;
}

START_TEST(test_wake_status_and_done_hook)
{
	struct ks_sched s;
	struct ks_coro *co;
	int out[3] = {0, 0, 0};

	ks_sched_init(&s, 16384);
	co = ks_coro_new(&s, status_body, &s, count_done, out);
	ks_coro_resume(co, KS_OK);
	ks_coro_wake(co, KS_ETIMEDOUT);
	ck_assert_int_eq(out[0], KS_ETIMEDOUT);
	ks_coro_wake(co, KS_ECANCELED);
	ck_assert_int_eq(out[1], KS_ECANCELED);
	ck_assert_int_eq(out[2], 1);
	ck_assert_uint_eq(s.live, 0);
	ks_sched_destroy(&s);
}
END_TEST

static void
noop_body(void *arg)
{
	struct ks_sched *s = arg;

	ks_coro_suspend(s);
}

START_TEST(test_many_and_stack_reuse)
{
	enum { N = 2000 };
	struct ks_sched s;
	struct ks_coro **cos = calloc(N, sizeof(*cos));
	struct ks_coro *again;
	int i;

	ks_sched_init(&s, 32768);
	for (i = 0; i < N; i++) {
		cos[i] = ks_coro_new(&s, noop_body, &s, NULL, NULL);
		ck_assert_ptr_nonnull(cos[i]);
		ks_coro_resume(cos[i], KS_OK);
	}
	ck_assert_uint_eq(s.live, N);
	for (i = 0; i < N; i++)
		ks_coro_resume(cos[i], KS_OK);
	ck_assert_uint_eq(s.live, 0);
	ck_assert_uint_eq(s.nfree, s.max_free);
	/* A new coroutine takes a cached stack instead of mapping one. */
	again = ks_coro_new(&s, noop_body, &s, NULL, NULL);
	ck_assert_uint_eq(s.nfree, s.max_free - 1);
	ks_coro_resume(again, KS_OK);
	ks_coro_resume(again, KS_OK);
	free(cos);
	ks_sched_destroy(&s);
}
END_TEST

static int
recurse(int depth, volatile char *sink)
{
	volatile char frame[1024];

	frame[0] = (char)depth;
	frame[sizeof(frame) - 1] = (char)depth;
	*sink += frame[0];
	if (depth == 0)
		return frame[sizeof(frame) - 1];
	return recurse(depth - 1, sink) + frame[0];
}

static void
deep_body(void *arg)
{
	volatile char sink = 0;
	int *depth = arg;

	*depth = recurse(*depth, &sink) >= 0;
}

START_TEST(test_stack_is_usable)
{
	struct ks_sched s;
	struct ks_coro *co;
	int depth = 40; /* ~40 KiB of frames on a 64 KiB stack */

	ks_sched_init(&s, 65536);
	co = ks_coro_new(&s, deep_body, &depth, NULL, NULL);
	ks_coro_resume(co, KS_OK);
	ck_assert_int_eq(depth, 1);
	ks_sched_destroy(&s);
}
END_TEST

START_TEST(test_stack_overflow_hits_guard)
{
	struct ks_sched s;
	struct ks_coro *co;
	int depth = 1000; /* ~1 MiB of frames on a 16 KiB stack */

	ks_sched_init(&s, 16384);
	co = ks_coro_new(&s, deep_body, &depth, NULL, NULL);
	ks_coro_resume(co, KS_OK);
	/* Not reached: the guard page stops the overflow. */
	ck_abort_msg("stack overflow was not caught");
}
END_TEST

static void
pattern_body(void *arg)
{
	struct ks_sched *s = arg;
	volatile unsigned char local[600];
	size_t i;
	int *ok = (int *)ks_coro_self(s)->udata;

	for (i = 0; i < sizeof(local); i++)
		local[i] = (unsigned char)(i * 7 + 3);
	ks_coro_suspend(s);
	*ok = 1;
	for (i = 0; i < sizeof(local); i++)
		if (local[i] != (unsigned char)(i * 7 + 3))
			*ok = 0;
}

/* Pages of [lo, hi) that are resident. */
static size_t
resident_pages(char *lo, char *hi)
{
	size_t ps = (size_t)sysconf(_SC_PAGESIZE), n = (size_t)(hi - lo) / ps, i, r = 0;
	unsigned char *vec = malloc(n);

	ck_assert_int_eq(mincore(lo, (size_t)(hi - lo), vec), 0);
	for (i = 0; i < n; i++)
		r += vec[i] & 1;
	free(vec);
	return r;
}

START_TEST(test_hibernate_keeps_state_frees_pages)
{
	struct ks_sched s;
	struct ks_coro *co;
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	int ok = -1;

	ks_sched_init(&s, 65536);
	co = ks_coro_new(&s, pattern_body, &s, NULL, &ok);
	ks_coro_resume(co, KS_OK);
	ck_assert_uint_ge(resident_pages(co->map + ps, co->map + co->map_size), 1);
	/* Too much live stack for the limit: refused. */
	ck_assert_int_eq(ks_coro_hibernate(co, 64), 0);
	ck_assert_int_eq(ks_coro_hibernate(co, 4096), 1);
	ck_assert_uint_gt(co->saved_len, 600);
	ck_assert_uint_eq(resident_pages(co->map + ps, co->map + co->map_size), 0);
	/* Twice is a no-op. */
	ck_assert_int_eq(ks_coro_hibernate(co, 4096), 0);
	ks_coro_resume(co, KS_OK);
	ck_assert_int_eq(ok, 1);
	ck_assert_uint_eq(s.live, 0);
	ks_sched_destroy(&s);
}
END_TEST

struct yielder {
	struct ks_sched *s;
	int steps;
	int stop;
};

static void
yield_body(void *arg)
{
	struct yielder *y = arg;

	while (!y->stop) {
		y->steps++;
		ks_coro_yield(y->s);
	}
}

/* A coroutine that yields in a loop runs one step per run of the queue:
 * the queue returns (so the loop can poll) and says more is pending. */
START_TEST(test_yield_runs_once_per_round)
{
	struct ks_sched s;
	struct yielder y = {&s, 0, 0};
	struct ks_coro *co;

	ks_sched_init(&s, 65536);
	co = ks_coro_new(&s, yield_body, &y, NULL, NULL);
	ks_coro_resume(co, KS_OK);
	ck_assert_int_eq(y.steps, 1);
	/* It yielded outside a run of the queue (as from an I/O callback):
	 * this run only queues it for the next. */
	ck_assert(ks_sched_run_queue(&s));
	ck_assert_int_eq(y.steps, 1);
	ck_assert(ks_sched_run_queue(&s));
	ck_assert_int_eq(y.steps, 2);
	ck_assert(ks_sched_run_queue(&s));
	ck_assert_int_eq(y.steps, 3);
	y.stop = 1;
	ck_assert(!ks_sched_run_queue(&s));
	ck_assert_uint_eq(s.live, 0);
	ks_sched_destroy(&s);
}
END_TEST

Suite *
ks_suite_coro(void)
{
	Suite *s = suite_create("coro");
	TCase *tc = tcase_create("switching");
	const char *fork_env = getenv("CK_FORK");

	tcase_add_test(tc, test_pingpong_through_run_queue);
	tcase_add_test(tc, test_wake_status_and_done_hook);
	tcase_add_test(tc, test_many_and_stack_reuse);
	tcase_add_test(tc, test_stack_is_usable);
	tcase_add_test(tc, test_yield_runs_once_per_round);
	tcase_add_test(tc, test_hibernate_keeps_state_frees_pages);
	/* The overflow test needs a forked child to die in; without fork
	 * (valgrind runs) it would take the runner down. */
	if (fork_env == NULL || strcmp(fork_env, "no") != 0) {
#ifdef KS_ASAN
		/* ASan reports the overflow itself and exits with 1. */
		tcase_add_exit_test(tc, test_stack_overflow_hits_guard, 1);
#else
		tcase_add_test_raise_signal(tc, test_stack_overflow_hits_guard,
					    SIGSEGV);
#endif
	}
	suite_add_tcase(s, tc);
	return s;
}
