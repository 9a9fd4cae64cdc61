/* The resolver's pool of lookup threads, through ks_resolve as outbound
 * connections use it: coroutines on a real libev loop, a real pool.  The
 * blocking lookup is replaced by a seam that holds every lookup until the
 * test releases it, so "a thread is blocked in getaddrinfo" is a state
 * the test waits for on a condition variable, not a matter of timing. */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "conf.h"
#include "conn.h"
#include "log.h"
#include "resolver.h"
#include "suites.h"
#include "worker.h"

#define NTASKS (KS_RESOLVER_THREADS + KS_RESOLVER_QUEUE + 8)
#define LONG_DEADLINE 60.0 /* never reached: lookups end otherwise */

static const ks_plugin test_desc = {
	.abi = KS_PLUGIN_ABI, .size = sizeof(ks_plugin), .name = "unit"};

/* ---- the seam --------------------------------------------------------- */

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	bool blocked;      /* lookups wait until the test releases them */
	unsigned entered;  /* lookups that reached the seam */
	unsigned released; /* results the pool freed itself (abandoned) */
	unsigned exited;   /* pool threads that ran a lookup and ended */
} seam = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0, 0, 0};

static pthread_key_t seam_key;
static pthread_once_t seam_key_once = PTHREAD_ONCE_INIT;

/* Runs in a pool thread as it ends, after the resolver's code is done
 * with it: the test's proof that a thread has exited. */
static void
seam_thread_exit(void *p)
{
	(void)p;
	pthread_mutex_lock(&seam.lock);
	seam.exited++;
	pthread_cond_broadcast(&seam.cv);
	pthread_mutex_unlock(&seam.lock);
}

static void
seam_key_init(void)
{
	ck_assert_int_eq(pthread_key_create(&seam_key, seam_thread_exit), 0);
}

/* Waits while blocked, then "resolves" every name to 127.0.0.1, except
 * "nxdomain.test", which does not exist. */
static int
seam_lookup(const char *host, const char *port, const struct addrinfo *hints,
	    struct addrinfo **res)
{
	struct addrinfo h = *hints;

	pthread_once(&seam_key_once, seam_key_init);
	pthread_setspecific(seam_key, &seam);
	pthread_mutex_lock(&seam.lock);
	seam.entered++;
	pthread_cond_broadcast(&seam.cv);
	while (seam.blocked)
		pthread_cond_wait(&seam.cv, &seam.lock);
	pthread_mutex_unlock(&seam.lock);
	if (strcmp(host, "nxdomain.test") == 0)
		return EAI_NONAME;
	h.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	return getaddrinfo("127.0.0.1", port, &h, res);
}

static void
seam_release_result(struct addrinfo *res)
{
	pthread_mutex_lock(&seam.lock);
	seam.released++;
	pthread_cond_broadcast(&seam.cv);
	pthread_mutex_unlock(&seam.lock);
	freeaddrinfo(res);
}

static void
seam_install(bool blocked)
{
	pthread_mutex_lock(&seam.lock);
	seam.blocked = blocked;
	seam.entered = seam.released = seam.exited = 0;
	pthread_mutex_unlock(&seam.lock);
	ks_resolver_fns.lookup = seam_lookup;
	ks_resolver_fns.release = seam_release_result;
}

static void
seam_unblock(void)
{
	pthread_mutex_lock(&seam.lock);
	seam.blocked = false;
	pthread_cond_broadcast(&seam.cv);
	pthread_mutex_unlock(&seam.lock);
}

static unsigned
seam_get(const unsigned *counter)
{
	unsigned v;

	pthread_mutex_lock(&seam.lock);
	v = *counter;
	pthread_mutex_unlock(&seam.lock);
	return v;
}

/* Waits until *counter reaches n.  The time limit only turns a broken
 * pool into a failure instead of a hang. */
static void
seam_wait(const unsigned *counter, unsigned n)
{
	struct timespec until;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 60;
	pthread_mutex_lock(&seam.lock);
	while (*counter < n && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&seam.cv, &seam.lock, &until);
	pthread_mutex_unlock(&seam.lock);
	ck_assert_uint_ge(seam_get(counter), n);
}

/* Threads of this process, as the kernel lists them. */
static unsigned
count_tasks(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	unsigned n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* ---- worker, connection, coroutines ------------------------------------ */

struct fx;

struct task {
	struct fx *f;
	const char *host;
	double timeout;
	int rc;
	bool done;
	bool loopback; /* the first address is 127.0.0.1 or ::1 */
};

struct fx {
	struct ev_loop *loop;
	struct ks_worker wk;
	struct ks_conf conf;
	struct ks_lconf lc;
	struct ks_conn *c;
	unsigned ntasks, ndone;
	struct task tasks[NTASKS];
	char msgs[4][256]; /* warnings logged */
	unsigned nmsgs;
};

static void
fx_log_sink(int level, const char *msg, void *ud)
{
	struct fx *f = ud;

	(void)level;
	if (f->nmsgs < 4)
		snprintf(f->msgs[f->nmsgs], sizeof(f->msgs[0]), "%s", msg);
	f->nmsgs++;
}

/* On the heap, so that the blocked-destroy test can free the worker and
 * let ASan catch a thread that still touches it. */
static struct fx *
fx_new(void)
{
	struct fx *f = calloc(1, sizeof(*f));

	ck_assert_ptr_nonnull(f);
	f->loop = ev_loop_new(EVFLAG_AUTO);
	ck_assert_ptr_nonnull(f->loop);
	ks_worker_init(&f->wk, f->loop, 65536);
	f->conf.refs = 1;
	f->lc.conf = &f->conf;
	f->lc.name = "unit";
	f->lc.linger = -1;
	f->lc.plugin.desc = &test_desc;
	f->c = calloc(1, sizeof(*f->c));
	ck_assert_ptr_nonnull(f->c);
	f->c->wk = &f->wk;
	f->c->lc = &f->lc;
	f->c->ls = &f->wk.own_lstats;
	f->c->st.closed = true;
	ks_log_set_sink(fx_log_sink, f);
	return f;
}

static void
fx_free(struct fx *f)
{
	ks_log_set_sink(NULL, NULL);
	free(f->c);
	ks_worker_destroy(&f->wk);
	ev_loop_destroy(f->loop);
	free(f);
	ks_resolver_fns.lookup = getaddrinfo;
	ks_resolver_fns.release = freeaddrinfo;
}

static bool
is_loopback(const struct addrinfo *ai)
{
	const struct sockaddr_in *in = (const void *)ai->ai_addr;
	const struct sockaddr_in6 *in6 = (const void *)ai->ai_addr;

	if (ai->ai_family == AF_INET)
		return in->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
	return ai->ai_family == AF_INET6 &&
	       IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
}

static void
task_main(void *arg)
{
	struct task *t = arg;
	struct fx *f = t->f;
	struct addrinfo *res = NULL;

	t->rc = ks_resolve(f->c, t->host, "80", SOCK_STREAM,
			   ev_now(f->loop) + t->timeout, &res);
	if (t->rc == KS_OK) {
		t->loopback = res != NULL && is_loopback(res);
		freeaddrinfo(res);
	}
	t->done = true;
	f->ndone++;
}

/* Starts a coroutine resolving host; it runs at once, up to its wait. */
static struct task *
fx_resolve(struct fx *f, const char *host, double timeout)
{
	struct task *t;
	struct ks_coro *co;

	ck_assert_uint_lt(f->ntasks, NTASKS);
	t = &f->tasks[f->ntasks++];
	t->f = f;
	t->host = host;
	t->timeout = timeout;
	co = ks_coro_new(&f->wk.sched, task_main, t, NULL, NULL);
	ck_assert_ptr_nonnull(co);
	ks_coro_wake(co, KS_OK);
	return t;
}

/* Runs the loop until every task started so far is done.  Each has a
 * deadline, so the loop never runs dry before. */
static void
fx_run_until_done(struct fx *f)
{
	int i;

	for (i = 0; i < 100000 && f->ndone < f->ntasks; i++)
		ev_run(f->loop, EVRUN_ONCE);
	ck_assert_uint_eq(f->ndone, f->ntasks);
}

static void
assert_all(struct fx *f, unsigned from, unsigned to, int rc)
{
	unsigned i;

	for (i = from; i < to; i++) {
		ck_assert_msg(f->tasks[i].done, "task %u not done", i);
		ck_assert_int_eq(f->tasks[i].rc, rc);
		if (rc == KS_OK)
			ck_assert(f->tasks[i].loopback);
	}
}

/* ---- tests -------------------------------------------------------------- */

START_TEST(test_numeric_needs_no_thread)
{
	struct fx *f = fx_new();
	unsigned base = count_tasks();

	fx_resolve(f, "127.0.0.1", LONG_DEADLINE);
	fx_resolve(f, "::1", LONG_DEADLINE);
	/* Done before the first wait: no loop, no pool, no thread. */
	ck_assert_uint_eq(f->ndone, 2);
	assert_all(f, 0, 2, KS_OK);
	ck_assert_ptr_null(f->wk.resolver);
	ck_assert_uint_eq(count_tasks(), base);
	fx_free(f);
}
END_TEST

START_TEST(test_many_localhost)
{
	struct fx *f = fx_new();
	unsigned base = count_tasks(), i;

	for (i = 0; i < 64; i++)
		fx_resolve(f, "localhost", LONG_DEADLINE);
	ck_assert_uint_eq(f->ndone, 0); /* names wait for a thread */
	ck_assert_uint_le(count_tasks(), base + KS_RESOLVER_THREADS);
	fx_run_until_done(f);
	assert_all(f, 0, 64, KS_OK);
	fx_free(f);
}
END_TEST

START_TEST(test_name_not_found)
{
	struct fx *f = fx_new();

	seam_install(false);
	fx_resolve(f, "nxdomain.test", LONG_DEADLINE);
	fx_run_until_done(f);
	ck_assert_int_eq(f->tasks[0].rc, KS_ERESOLVE);
	fx_free(f);
}
END_TEST

START_TEST(test_threads_bounded)
{
	struct fx *f = fx_new();
	unsigned base = count_tasks(), i;

	seam_install(true);
	for (i = 0; i < 40; i++)
		fx_resolve(f, "blocked.test", LONG_DEADLINE);
	/* Threads are created as lookups are queued: what exists now is
	 * all there will be while these wait. */
	ck_assert_uint_le(count_tasks(), base + KS_RESOLVER_THREADS);
	seam_wait(&seam.entered, KS_RESOLVER_THREADS);
	ck_assert_uint_le(count_tasks(), base + KS_RESOLVER_THREADS);
	/* Four are blocked in the seam: nothing else can have entered. */
	ck_assert_uint_eq(seam_get(&seam.entered), KS_RESOLVER_THREADS);
	ck_assert_uint_eq(f->ndone, 0);
	seam_unblock();
	fx_run_until_done(f);
	assert_all(f, 0, 40, KS_OK);
	ck_assert_uint_eq(seam_get(&seam.entered), 40);
	ck_assert_uint_eq(seam_get(&seam.released), 0);
	fx_free(f);
}
END_TEST

START_TEST(test_queue_full_fails_at_once)
{
	struct fx *f = fx_new();
	struct task *t;
	unsigned i, n = KS_RESOLVER_THREADS + KS_RESOLVER_QUEUE;

	seam_install(true);
	for (i = 0; i < KS_RESOLVER_THREADS; i++)
		fx_resolve(f, "blocked.test", LONG_DEADLINE);
	seam_wait(&seam.entered, KS_RESOLVER_THREADS);
	/* Every thread is blocked: these fill the queue. */
	for (; i < n; i++)
		fx_resolve(f, "blocked.test", LONG_DEADLINE);
	ck_assert_uint_eq(f->ndone, 0);
	ck_assert_uint_eq(f->nmsgs, 0);
	t = fx_resolve(f, "blocked.test", LONG_DEADLINE);
	ck_assert(t->done);
	ck_assert_int_eq(t->rc, KS_ERESOLVE);
	t = fx_resolve(f, "blocked.test", LONG_DEADLINE);
	ck_assert(t->done);
	ck_assert_int_eq(t->rc, KS_ERESOLVE);
	/* One message for the burst, not one per refusal. */
	ck_assert_uint_eq(f->nmsgs, 1);
	ck_assert_ptr_nonnull(strstr(f->msgs[0], "resolver"));
	seam_unblock();
	fx_run_until_done(f);
	assert_all(f, 0, n, KS_OK);
	ck_assert_uint_eq(seam_get(&seam.entered), n);
	fx_free(f);
}
END_TEST

START_TEST(test_deadline_abandons_running_lookup)
{
	struct fx *f = fx_new();
	struct task *t;

	seam_install(true);
	/* A deadline already due: the timer fires at the next loop turn,
	 * after the test has seen the lookup blocked in its thread. */
	t = fx_resolve(f, "blocked.test", 0);
	seam_wait(&seam.entered, 1);
	fx_run_until_done(f);
	ck_assert_int_eq(t->rc, KS_ETIMEDOUT);
	ck_assert_ptr_null(f->c->sleepers);
	ck_assert_uint_eq(seam_get(&seam.released), 0);
	/* The answer arrives for nobody: the pool frees it. */
	seam_unblock();
	seam_wait(&seam.released, 1);
	/* The pool still works. */
	t = fx_resolve(f, "later.test", LONG_DEADLINE);
	fx_run_until_done(f);
	ck_assert_int_eq(t->rc, KS_OK);
	fx_free(f);
}
END_TEST

START_TEST(test_cancel_drops_queued_lookup)
{
	struct fx *f = fx_new();
	unsigned i, n = KS_RESOLVER_THREADS + 1;

	seam_install(true);
	for (i = 0; i < n; i++)
		fx_resolve(f, "blocked.test", LONG_DEADLINE);
	seam_wait(&seam.entered, KS_RESOLVER_THREADS);
	/* Four running, one queued; shutdown wakes all five. */
	ks_conn_cancel(f->c);
	ck_assert_uint_eq(f->ndone, n);
	assert_all(f, 0, n, KS_ECANCELED);
	seam_unblock();
	seam_wait(&seam.released, KS_RESOLVER_THREADS);
	/* A canceled connection resolves nothing more, not even by name. */
	fx_resolve(f, "blocked.test", LONG_DEADLINE);
	ck_assert_int_eq(f->tasks[n].rc, KS_ECANCELED);
	ks_log_set_sink(NULL, NULL);
	free(f->c);
	ks_worker_destroy(&f->wk);
	/* The destroy joined the threads: the queued lookup never ran. */
	ck_assert_uint_eq(seam_get(&seam.entered), KS_RESOLVER_THREADS);
	ev_loop_destroy(f->loop);
	free(f);
}
END_TEST

START_TEST(test_destroy_joins_idle_threads)
{
	struct fx *f = fx_new();
	unsigned i;

	seam_install(true);
	for (i = 0; i < KS_RESOLVER_THREADS; i++)
		fx_resolve(f, "blocked.test", LONG_DEADLINE);
	seam_wait(&seam.entered, KS_RESOLVER_THREADS);
	seam_unblock();
	fx_run_until_done(f);
	assert_all(f, 0, KS_RESOLVER_THREADS, KS_OK);
	ck_assert_uint_eq(seam_get(&seam.exited), 0); /* idle, alive */
	fx_free(f);
	/* Joined, not left behind: each has ended by now. */
	ck_assert_uint_eq(seam_get(&seam.exited), KS_RESOLVER_THREADS);
	ck_assert_uint_eq(seam_get(&seam.released), 0);
}
END_TEST

START_TEST(test_destroy_while_blocked)
{
	struct fx *f = fx_new();
	struct task *t;

	seam_install(true);
	t = fx_resolve(f, "blocked.test", LONG_DEADLINE);
	seam_wait(&seam.entered, 1);
	ks_conn_cancel(f->c);
	ck_assert(t->done);
	ck_assert_int_eq(t->rc, KS_ECANCELED);
	/* Worker, loop and fixture gone while the thread is still blocked:
	 * a late touch of any of them is an error under valgrind (ASan sees
	 * only instrumented code, not libev's). */
	fx_free(f);
	ck_assert_uint_eq(seam_get(&seam.exited), 0);
	seam_unblock();
	/* It frees its lookup's result and ends on its own. */
	seam_wait(&seam.exited, 1);
	ck_assert_uint_eq(seam_get(&seam.released), 1);
}
END_TEST

Suite *
ks_suite_resolver(void)
{
	Suite *s = suite_create("resolver");
	TCase *tc = tcase_create("pool");

	/* Generous for valgrind; the tests never wait for time to pass. */
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_numeric_needs_no_thread);
	tcase_add_test(tc, test_many_localhost);
	tcase_add_test(tc, test_name_not_found);
	tcase_add_test(tc, test_threads_bounded);
	tcase_add_test(tc, test_queue_full_fails_at_once);
	tcase_add_test(tc, test_deadline_abandons_running_lookup);
	tcase_add_test(tc, test_cancel_drops_queued_lookup);
	tcase_add_test(tc, test_destroy_joins_idle_threads);
	tcase_add_test(tc, test_destroy_while_blocked);
	suite_add_tcase(s, tc);
	return s;
}
