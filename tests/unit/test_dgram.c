/* The datagram API over real UDP sockets on 127.0.0.1 and a real libev
 * loop: the plugin side runs in coroutines as in the daemon, the test
 * plays the peer with a plain socket. */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf.h"
#include "conn.h"
#include "dgram.h"
#include "suites.h"
#include "util.h"
#include "worker.h"

static const ks_plugin test_desc = {.abi = KS_PLUGIN_ABI,
				    .size = sizeof(ks_plugin),
				    .name = "unit"};

struct fx;

/* A coroutine of a test: body(f), then *done = 1. */
struct task {
	struct fx *f;
	void (*body)(struct fx *f);
	int *done;
};

struct fx {
	struct ev_loop *loop;
	struct ks_worker wk;
	struct ks_conf conf;
	struct ks_lconf lc;
	struct ks_conn *c;
	int peer;                  /* the test's own socket */
	struct sockaddr_in peer_addr;
	ks_dsock *ds;
	int done, done2;
	int rc[8];
	size_t got;                /* datagrams received */
	ks_dgram d;
	char data[128];
	struct task t1, t2;        /* the test's coroutines */
};

static void
fx_setup(struct fx *f)
{
	socklen_t len = sizeof(f->peer_addr);

	memset(f, 0, sizeof(*f));
	f->loop = ev_loop_new(EVFLAG_AUTO);
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
	f->peer = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	ck_assert_int_ge(f->peer, 0);
	f->peer_addr.sin_family = AF_INET;
	f->peer_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(f->peer, (struct sockaddr *)&f->peer_addr,
			      sizeof(f->peer_addr)), 0);
	ck_assert_int_eq(getsockname(f->peer, (struct sockaddr *)&f->peer_addr,
				     &len), 0);
}

static void
fx_teardown(struct fx *f)
{
	ks_dsocks_close(f->c);
	ks_dsocks_free(f->c);
	free(f->c);
	ks_worker_destroy(&f->wk);
	ev_loop_destroy(f->loop);
	close(f->peer);
}

static void
task_main(void *arg)
{
	struct task *t = arg;

	t->body(t->f);
	*t->done = 1;
}

static void
fx_spawn(struct fx *f, struct task *t, void (*body)(struct fx *), int *done)
{
	struct ks_coro *co;

	t->f = f;
	t->body = body;
	t->done = done;
	co = ks_coro_new(&f->wk.sched, task_main, t, NULL, NULL);
	ck_assert_ptr_nonnull(co);
	ks_coro_wake(co, KS_OK);
}

/* The test's coroutine; a second one (fx_start2) for the busy and close
 * cases. */
static void
fx_start(struct fx *f, void (*body)(struct fx *))
{
	fx_spawn(f, &f->t1, body, &f->done);
}

static void
fx_start2(struct fx *f, void (*body)(struct fx *))
{
	fx_spawn(f, &f->t2, body, &f->done2);
}

static void
fx_run_until_done(struct fx *f)
{
	int i;

	for (i = 0; i < 100000 && !f->done; i++)
		ev_run(f->loop, EVRUN_ONCE);
	ck_assert_int_eq(f->done, 1);
}

/* The port of the plugin-side socket, for the peer to send to. */
static struct sockaddr_in
ds_addr(ks_dsock *ds)
{
	struct sockaddr_in to = {.sin_family = AF_INET};
	socklen_t len;
	const struct sockaddr *sa = ks_dgram_local(ds, &len);

	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	to.sin_port = htons((uint16_t)ks_addr_port(sa));
	return to;
}

static void
peer_send(struct fx *f, const void *p, size_t n)
{
	struct sockaddr_in to = ds_addr(f->ds);

	ck_assert_int_eq(sendto(f->peer, p, n, 0, (struct sockaddr *)&to,
				sizeof(to)), (ssize_t)n);
}

static void
peer_ready_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	*(int *)w->data = 1;
	ev_io_stop(loop, w);
}

/* Runs the loop until the test's socket is readable. */
static void
peer_wait(struct fx *f)
{
	int ready = 0, i;
	ev_io w;

	ev_io_init(&w, peer_ready_cb, f->peer, EV_READ);
	w.data = &ready;
	ev_io_start(f->loop, &w);
	for (i = 0; i < 1000 && !ready; i++)
		ev_run(f->loop, EVRUN_ONCE);
	ev_io_stop(f->loop, &w);
	ck_assert_int_eq(ready, 1);
}

static ssize_t
peer_recv(struct fx *f, void *buf, size_t n)
{
	peer_wait(f);
	return recv(f->peer, buf, n, MSG_DONTWAIT);
}

/* ---- bodies ------------------------------------------------------------- */

static void
body_open_unconnected(struct fx *f)
{
	f->rc[0] = ks_dgram_open(f->c, NULL, NULL, 0, &f->ds);
}

static void
body_recv_one(struct fx *f)
{
	f->rc[1] = ks_dgram_recv(f->ds, &f->d, 5);
	if (f->rc[1] == KS_OK || f->rc[1] == KS_ETOOLONG)
		memcpy(f->data, f->d.data, KS_MIN(f->d.len, sizeof(f->data)));
}

static void
body_recv_reply(struct fx *f)
{
	f->rc[1] = ks_dgram_recv(f->ds, &f->d, 5);
	if (f->rc[1] == KS_OK)
		f->rc[2] = ks_dgram_reply(f->ds, &f->d, "pong", 4);
}

static void
open_unconnected(struct fx *f)
{
	fx_start(f, body_open_unconnected);
	fx_run_until_done(f);
	ck_assert_int_eq(f->rc[0], KS_OK);
	ck_assert_ptr_nonnull(f->ds);
	f->done = 0;
}

START_TEST(test_recv_and_reply)
{
	struct fx f;
	char buf[16];
	const struct sockaddr_in *from;

	fx_setup(&f);
	open_unconnected(&f);
	/* Nothing there yet: the receive suspends. */
	fx_start(&f, body_recv_reply);
	ev_run(f.loop, EVRUN_NOWAIT);
	ck_assert_int_eq(f.done, 0);
	peer_send(&f, "ping", 4);
	fx_run_until_done(&f);
	ck_assert_int_eq(f.rc[1], KS_OK);
	ck_assert_int_eq(f.rc[2], KS_OK);
	ck_assert_uint_eq(f.d.len, 4);
	ck_assert_uint_eq(f.d.size, 4);
	/* The dual-stack socket saw ::ffff:127.0.0.1; the API shows IPv4. */
	from = (const struct sockaddr_in *)&f.d.peer;
	ck_assert_int_eq(from->sin_family, AF_INET);
	ck_assert_uint_eq(f.d.peer_len, sizeof(struct sockaddr_in));
	ck_assert_int_eq(from->sin_port, f.peer_addr.sin_port);
	ck_assert_int_eq(peer_recv(&f, buf, sizeof(buf)), 4);
	ck_assert_mem_eq(buf, "pong", 4);
	ck_assert_uint_eq(f.wk.stats->datagrams_in, 1);
	ck_assert_uint_eq(f.wk.stats->datagrams_out, 1);
	fx_teardown(&f);
}
END_TEST

START_TEST(test_empty_datagram)
{
	struct fx f;

	fx_setup(&f);
	open_unconnected(&f);
	peer_send(&f, "", 0);
	fx_start(&f, body_recv_one);
	fx_run_until_done(&f);
	ck_assert_int_eq(f.rc[1], KS_OK);
	ck_assert_uint_eq(f.d.len, 0);
	ck_assert_uint_eq(f.d.size, 0);
	fx_teardown(&f);
}
END_TEST

static void
body_recv_short_timeout(struct fx *f)
{
	f->rc[1] = ks_dgram_recv(f->ds, &f->d, 0.05);
}

START_TEST(test_recv_timeout)
{
	struct fx f;

	fx_setup(&f);
	open_unconnected(&f);
	fx_start(&f, body_recv_short_timeout);
	fx_run_until_done(&f);
	ck_assert_int_eq(f.rc[1], KS_ETIMEDOUT);
	ck_assert_ptr_null(f.c->sleepers); /* the timer is gone */
	fx_teardown(&f);
}
END_TEST

static void
body_recv_second(struct fx *f)
{
	f->rc[3] = ks_dgram_recv(f->ds, &f->d, 5);
}

START_TEST(test_second_receiver_busy)
{
	struct fx f;

	fx_setup(&f);
	open_unconnected(&f);
	fx_start(&f, body_recv_one);
	ev_run(f.loop, EVRUN_NOWAIT);
	fx_start2(&f, body_recv_second);
	ck_assert_int_eq(f.done2, 1);
	ck_assert_int_eq(f.rc[3], KS_EBUSY);
	peer_send(&f, "x", 1);
	fx_run_until_done(&f);
	ck_assert_int_eq(f.rc[1], KS_OK);
	fx_teardown(&f);
}
END_TEST

START_TEST(test_truncated_reported)
{
	struct fx f;
	char big[100];

	fx_setup(&f);
	open_unconnected(&f);
	/* As a listener with max_datagram_size = 10 would have it. */
	f.ds->bufsize = 10;
	memset(big, 'a', sizeof(big));
	big[0] = 'Z';
	peer_send(&f, big, sizeof(big));
	peer_send(&f, "small", 5);
	fx_start(&f, body_recv_one);
	fx_run_until_done(&f);
	ck_assert_int_eq(f.rc[1], KS_ETOOLONG);
	ck_assert_uint_eq(f.d.size, 100);
	ck_assert_uint_eq(f.d.len, 10);
	ck_assert_int_eq(f.data[0], 'Z');
	ck_assert_uint_eq(f.wk.stats->datagrams_truncated, 1);
	/* The next one is whole. */
	f.done = 0;
	fx_start(&f, body_recv_one);
	fx_run_until_done(&f);
	ck_assert_int_eq(f.rc[1], KS_OK);
	ck_assert_uint_eq(f.d.len, 5);
	ck_assert_mem_eq(f.data, "small", 5);
	fx_teardown(&f);
}
END_TEST

static void
body_send_huge(struct fx *f)
{
	static char huge[70000];
	struct sockaddr_in to = f->peer_addr;

	f->rc[1] = ks_dgram_send(f->ds, huge, sizeof(huge),
				 (struct sockaddr *)&to, sizeof(to));
	f->rc[2] = ks_dgram_send(f->ds, huge, 65507, (struct sockaddr *)&to,
				 sizeof(to));
	f->rc[3] = ks_dgram_send(f->ds, huge, 1, NULL, 0);
}

START_TEST(test_send_sizes)
{
	struct fx f;
	static char buf[70000];

	fx_setup(&f);
	open_unconnected(&f);
	fx_start(&f, body_send_huge);
	fx_run_until_done(&f);
	ck_assert_int_eq(f.rc[1], KS_ETOOLONG);
	ck_assert_int_eq(ks_dgram_errno(f.ds), EMSGSIZE);
	ck_assert_int_eq(f.rc[2], KS_OK);
	ck_assert_int_eq(f.rc[3], KS_EINVAL); /* unconnected: an address is needed */
	ck_assert_int_eq(peer_recv(&f, buf, sizeof(buf)), 65507);
	fx_teardown(&f);
}
END_TEST

static void
body_connected_refused(struct fx *f)
{
	char port[16];
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	/* A port nobody listens on: bind one, note it, close it. */
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(s, (struct sockaddr *)&a, sizeof(a));
	getsockname(s, (struct sockaddr *)&a, &len);
	close(s);
	snprintf(port, sizeof(port), "%u", ntohs(a.sin_port));
	f->rc[0] = ks_dgram_open(f->c, "127.0.0.1", port, 0, &f->ds);
	if (f->rc[0] != KS_OK)
		return;
	f->rc[1] = ks_dgram_send(f->ds, "x", 1, NULL, 0);
	f->rc[2] = ks_dgram_recv(f->ds, &f->d, 5);
}

START_TEST(test_connected_refused)
{
	struct fx f;
	socklen_t len;

	fx_setup(&f);
	fx_start(&f, body_connected_refused);
	fx_run_until_done(&f);
	ck_assert_int_eq(f.rc[0], KS_OK);
	ck_assert_int_eq(f.rc[1], KS_OK);
	ck_assert_int_eq(f.rc[2], KS_EIO);
	ck_assert_int_eq(ks_dgram_errno(f.ds), ECONNREFUSED);
	ck_assert_ptr_nonnull(ks_dgram_peer(f.ds, &len));
	ck_assert_uint_eq(len, sizeof(struct sockaddr_in));
	fx_teardown(&f);
}
END_TEST

static void
body_connected_roundtrip(struct fx *f)
{
	char port[16];

	snprintf(port, sizeof(port), "%u", ntohs(f->peer_addr.sin_port));
	f->rc[0] = ks_dgram_open(f->c, "127.0.0.1", port, 0, &f->ds);
	if (f->rc[0] != KS_OK)
		return;
	f->rc[1] = ks_dgram_send(f->ds, "hello", 5, NULL, 0);
	f->rc[2] = ks_dgram_recv(f->ds, &f->d, 5);
	if (f->rc[2] == KS_OK)
		memcpy(f->data, f->d.data, KS_MIN(f->d.len, sizeof(f->data)));
}

START_TEST(test_connected_roundtrip)
{
	struct fx f;
	char buf[16];
	struct sockaddr_in from;
	socklen_t len = sizeof(from);
	ssize_t n;

	fx_setup(&f);
	fx_start(&f, body_connected_roundtrip);
	peer_wait(&f);
	n = recvfrom(f.peer, buf, sizeof(buf), MSG_DONTWAIT,
		     (struct sockaddr *)&from, &len);
	ck_assert_int_eq(n, 5);
	ck_assert_mem_eq(buf, "hello", 5);
	ck_assert_int_eq(sendto(f.peer, "world", 5, 0, (struct sockaddr *)&from,
				len), 5);
	fx_run_until_done(&f);
	ck_assert_int_eq(f.rc[2], KS_OK);
	ck_assert_mem_eq(f.data, "world", 5);
	fx_teardown(&f);
}
END_TEST

static void
body_close_other(struct fx *f)
{
	ks_dgram_close(f->ds);
}

START_TEST(test_close_wakes_receiver)
{
	struct fx f;

	fx_setup(&f);
	open_unconnected(&f);
	fx_start(&f, body_recv_one);
	ev_run(f.loop, EVRUN_NOWAIT);
	ck_assert_int_eq(f.done, 0);
	fx_start2(&f, body_close_other);
	fx_run_until_done(&f);
	ck_assert_int_eq(f.rc[1], KS_ECLOSED);
	fx_teardown(&f);
}
END_TEST

START_TEST(test_cancel_wakes_receiver)
{
	struct fx f;

	fx_setup(&f);
	open_unconnected(&f);
	fx_start(&f, body_recv_one);
	ev_run(f.loop, EVRUN_NOWAIT);
	ck_assert_int_eq(f.done, 0);
	ks_dsocks_wake(f.c, KS_ECANCELED, true);
	fx_run_until_done(&f);
	ck_assert_int_eq(f.rc[1], KS_ECANCELED);
	/* Canceled for good: the next receive does not wait. */
	f.done = 0;
	peer_send(&f, "late", 4);
	fx_start(&f, body_recv_one);
	fx_run_until_done(&f);
	ck_assert_int_eq(f.rc[1], KS_ECANCELED);
	fx_teardown(&f);
}
END_TEST

static void
body_drain(struct fx *f)
{
	ks_dgram d;

	while (ks_dgram_recv(f->ds, &d, 5) == KS_OK && ++f->got < 200)
		;
}

/* A flood is received in bounded slices: one loop iteration never takes
 * more than DGRAM_BATCH * DGRAM_BURST (8 * 4) datagrams, so other
 * watchers get their turn, and nothing is lost. */
START_TEST(test_flood_bounded_per_iteration)
{
	struct fx f;
	size_t before;
	int i, iterations = 0;
	int rcvbuf = 1 << 20;

	fx_setup(&f);
	open_unconnected(&f);
	setsockopt(f.ds->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	for (i = 0; i < 200; i++)
		peer_send(&f, "flood", 5);
	fx_start(&f, body_drain);
	ck_assert_uint_le(f.got, 32);
	ck_assert_uint_gt(f.got, 0);
	while (!f.done && iterations < 1000) {
		before = f.got;
		ev_run(f.loop, EVRUN_NOWAIT);
		ck_assert_uint_le(f.got - before, 32);
		iterations++;
	}
	ck_assert_int_eq(f.done, 1);
	ck_assert_uint_eq(f.got, 200);
	ck_assert_int_ge(iterations, 200 / 32);
	fx_teardown(&f);
}
END_TEST

START_TEST(test_addr_helpers)
{
	struct sockaddr_in6 m = {.sin6_family = AF_INET6,
				 .sin6_port = htons(4242)};
	struct sockaddr_in6 v6 = {.sin6_family = AF_INET6,
				  .sin6_port = htons(7)};
	char buf[KS_ADDR_STRLEN];

	inet_pton(AF_INET6, "::ffff:10.1.2.3", &m.sin6_addr);
	inet_pton(AF_INET6, "2001:db8::1", &v6.sin6_addr);
	ck_assert_str_eq(ks_addr_str((struct sockaddr *)&m, sizeof(m), buf,
				     sizeof(buf)), "10.1.2.3:4242");
	ck_assert_str_eq(ks_addr_str((struct sockaddr *)&v6, sizeof(v6), buf,
				     sizeof(buf)), "[2001:db8::1]:7");
	ck_assert_int_eq(ks_addr_port((struct sockaddr *)&m), 4242);
	ck_assert_int_eq(ks_addr_port((struct sockaddr *)&v6), 7);
	m.sin6_family = AF_UNIX;
	ck_assert_int_eq(ks_addr_port((struct sockaddr *)&m), -1);
}
END_TEST

Suite *
ks_suite_dgram(void)
{
	Suite *s = suite_create("dgram");
	TCase *tc = tcase_create("api");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_recv_and_reply);
	tcase_add_test(tc, test_empty_datagram);
	tcase_add_test(tc, test_recv_timeout);
	tcase_add_test(tc, test_second_receiver_busy);
	tcase_add_test(tc, test_truncated_reported);
	tcase_add_test(tc, test_send_sizes);
	tcase_add_test(tc, test_connected_refused);
	tcase_add_test(tc, test_connected_roundtrip);
	tcase_add_test(tc, test_close_wakes_receiver);
	tcase_add_test(tc, test_cancel_wakes_receiver);
	tcase_add_test(tc, test_flood_bounded_per_iteration);
	tcase_add_test(tc, test_addr_helpers);
	suite_add_tcase(s, tc);
	return s;
}
