/* Channels over a real socketpair and a real libev loop: the handler side
 * runs in a coroutine exactly as in the daemon, the test plays the peer. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stream.h"
#include "suites.h"
#include "worker.h"

struct fx {
	struct ev_loop *loop;
	struct ks_worker wk;
	struct ks_stream st;
	int peer;
	int done;
	int status[16];
	char lines[16][64];
	size_t lens[16];
	int n;
	void (*body)(struct fx *f);
};

static void
fx_setup(struct fx *f, size_t max_line)
{
	int sv[2];

	memset(f, 0, sizeof(*f));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	f->loop = ev_loop_new(EVFLAG_AUTO);
	ks_worker_init(&f->wk, f->loop, 65536);
	ks_stream_init(&f->st, &f->wk, NULL, sv[0], max_line);
	f->peer = sv[1];
}

static void
fx_teardown(struct fx *f)
{
	ks_stream_close(&f->st);
	ks_worker_destroy(&f->wk);
	ev_loop_destroy(f->loop);
	if (f->peer >= 0)
		close(f->peer);
}

static void
fx_main(void *arg)
{
	struct fx *f = arg;

	f->body(f);
	f->done = 1;
}

static void
fx_start(struct fx *f, void (*body)(struct fx *))
{
	struct ks_coro *co;

	f->body = body;
	co = ks_coro_new(&f->wk.sched, fx_main, f, NULL, NULL);
	ck_assert_ptr_nonnull(co);
	ks_coro_wake(co, KS_OK);
}

/* Runs the loop until nothing more happens right now. */
static void
fx_pump(struct fx *f)
{
	int i;

	for (i = 0; i < 8 && !f->done; i++)
		ev_run(f->loop, EVRUN_NOWAIT);
}

static void
fx_run_until_done(struct fx *f)
{
	int i;

	for (i = 0; i < 100000 && !f->done; i++)
		ev_run(f->loop, EVRUN_ONCE);
	ck_assert_int_eq(f->done, 1);
}

static void
peer_send(struct fx *f, const void *p, size_t n)
{
	ck_assert_int_eq(write(f->peer, p, n), (ssize_t)n);
}

/* Reads lines until EOF/error, recording status and content. */
static void
body_lines(struct fx *f)
{
	char *line;
	size_t len;
	int rc;

	do {
		rc = ks_read_line(&f->st.in, &line, &len);
		f->status[f->n] = rc;
		f->lens[f->n] = len;
		if (line != NULL)
			memcpy(f->lines[f->n], line, len < 63 ? len : 63);
		f->n++;
	} while ((rc == KS_OK || rc == KS_ETOOLONG) && f->n < 15);
}

START_TEST(test_lines_across_reads)
{
	struct fx f;

	fx_setup(&f, 100);
	fx_start(&f, body_lines);
	peer_send(&f, "hel", 3);
	fx_pump(&f);
	ck_assert_int_eq(f.n, 0); /* no line yet: still waiting */
	peer_send(&f, "lo\r\nwor", 7);
	fx_pump(&f);
	ck_assert_int_eq(f.n, 1);
	peer_send(&f, "ld\n\nlast", 8);
	fx_pump(&f);
	shutdown(f.peer, SHUT_WR);
	fx_run_until_done(&f);
	ck_assert_int_eq(f.n, 4);
	ck_assert_int_eq(f.status[0], KS_OK);
	ck_assert_str_eq(f.lines[0], "hello");
	ck_assert_int_eq(f.status[1], KS_OK);
	ck_assert_str_eq(f.lines[1], "world");
	ck_assert_int_eq(f.status[2], KS_OK);
	ck_assert_uint_eq(f.lens[2], 0);
	/* EOF mid-line: the unterminated tail comes with KS_EOF. */
	ck_assert_int_eq(f.status[3], KS_EOF);
	ck_assert_uint_eq(f.lens[3], 4);
	ck_assert_str_eq(f.lines[3], "last");
	fx_teardown(&f);
}
END_TEST

START_TEST(test_clean_eof)
{
	struct fx f;

	fx_setup(&f, 100);
	fx_start(&f, body_lines);
	peer_send(&f, "one\n", 4);
	shutdown(f.peer, SHUT_WR);
	fx_run_until_done(&f);
	ck_assert_int_eq(f.n, 2);
	ck_assert_int_eq(f.status[1], KS_EOF);
	ck_assert_uint_eq(f.lens[1], 0);
	fx_teardown(&f);
}
END_TEST

START_TEST(test_too_long_then_recovers)
{
	struct fx f;

	fx_setup(&f, 8);
	fx_start(&f, body_lines);
	/* 12 bytes without LF exceed the limit before the LF arrives. */
	peer_send(&f, "aaaaaaaaaaaa", 12);
	fx_pump(&f);
	ck_assert_int_eq(f.n, 1);
	ck_assert_int_eq(f.status[0], KS_ETOOLONG);
	/* The rest of that line is skipped; the next line is intact. */
	peer_send(&f, "aaa\n12345678\n123456789\nok\n", 26);
	shutdown(f.peer, SHUT_WR);
	fx_run_until_done(&f);
	ck_assert_int_eq(f.status[1], KS_OK);
	ck_assert_str_eq(f.lines[1], "12345678");
	ck_assert_int_eq(f.status[2], KS_ETOOLONG);
	ck_assert_int_eq(f.status[3], KS_OK);
	ck_assert_str_eq(f.lines[3], "ok");
	ck_assert_int_eq(f.status[4], KS_EOF);
	fx_teardown(&f);
}
END_TEST

START_TEST(test_binary_line)
{
	struct fx f;

	fx_setup(&f, 100);
	fx_start(&f, body_lines);
	peer_send(&f, "a\0b\xff\n", 5);
	shutdown(f.peer, SHUT_WR);
	fx_run_until_done(&f);
	ck_assert_int_eq(f.status[0], KS_OK);
	ck_assert_uint_eq(f.lens[0], 4);
	ck_assert_int_eq(memcmp(f.lines[0], "a\0b\xff", 4), 0);
	fx_teardown(&f);
}
END_TEST

static void
body_binary(struct fx *f)
{
	uint32_t u32 = 0;
	uint16_t u16 = 0;
	uint64_t u64 = 0;
	char buf[8];
	const void *p;
	size_t got;

	f->status[0] = ks_read_u32(&f->st.in, &u32);
	f->lens[0] = u32;
	f->status[1] = ks_read_u16(&f->st.in, &u16);
	f->lens[1] = u16;
	f->status[2] = ks_read_u64(&f->st.in, &u64);
	f->lens[2] = (size_t)u64;
	f->status[3] = ks_read_peek(&f->st.in, 3, &p);
	memcpy(f->lines[3], p, 3);
	f->status[4] = ks_read_some(&f->st.in, buf, sizeof(buf), &got);
	memcpy(f->lines[4], buf, got);
	f->lens[4] = got;
	f->status[5] = ks_read_exact(&f->st.in, buf, 5);
	f->n = 6;
}

START_TEST(test_exact_peek_integers)
{
	static const unsigned char msg[] = {
		0x01, 0x02, 0x03, 0x04, 0xbe, 0xef, 0, 0, 0, 0, 0, 0, 0x10, 0x01,
		'x',  'y',  'z',  '1',  '2'};
	struct fx f;

	fx_setup(&f, 100);
	fx_start(&f, body_binary);
	/* Byte by byte: every read has to suspend and resume. */
	for (size_t i = 0; i < sizeof(msg); i++) {
		peer_send(&f, &msg[i], 1);
		fx_pump(&f);
	}
	shutdown(f.peer, SHUT_WR);
	fx_run_until_done(&f);
	ck_assert_int_eq(f.status[0], KS_OK);
	ck_assert_uint_eq(f.lens[0], 0x01020304);
	ck_assert_uint_eq(f.lens[1], 0xbeef);
	ck_assert_uint_eq(f.lens[2], 0x1001);
	ck_assert_int_eq(f.status[3], KS_OK);
	ck_assert_int_eq(memcmp(f.lines[3], "xyz", 3), 0);
	/* Peeked bytes are still there for the next read. */
	ck_assert_int_eq(f.status[4], KS_OK);
	ck_assert_int_eq(memcmp(f.lines[4], "xyz", 3), 0);
	/* Only 0-2 bytes remain, then EOF: exact(5) fails with KS_EOF. */
	ck_assert_int_eq(f.status[5], KS_EOF);
	fx_teardown(&f);
}
END_TEST

#define BIG (3 * 1024 * 1024)

static void
body_big_write(struct fx *f)
{
	char *p = malloc(BIG);

	memset(p, 'q', BIG);
	f->status[0] = ks_write(&f->st.out, p, BIG);
	free(p);
	f->status[1] = ks_write_str(&f->st.out, "END");
	f->status[2] = ks_flush(&f->st.out);
	f->n = 3;
}

START_TEST(test_write_high_water)
{
	struct fx f;
	char buf[65536];
	size_t total = 0;
	ssize_t n;
	int i;

	fx_setup(&f, 100);
	fx_start(&f, body_big_write);
	fx_pump(&f);
	/* The peer has not read: the writer must be suspended, not done,
	 * and it must not have buffered everything. */
	ck_assert_int_eq(f.done, 0);
	ck_assert_uint_le(f.st.out.buf.len, KS_WRITE_HIWAT);
	for (i = 0; i < 1000000 && total < BIG + 3; i++) {
		n = read(f.peer, buf, sizeof(buf));
		if (n > 0)
			total += (size_t)n;
		else
			ev_run(f.loop, EVRUN_NOWAIT);
	}
	fx_run_until_done(&f);
	ck_assert_uint_eq(total, BIG + 3);
	ck_assert_int_eq(f.status[0], KS_OK);
	ck_assert_int_eq(f.status[2], KS_OK);
	fx_teardown(&f);
}
END_TEST

static void
body_write_to_gone_peer(struct fx *f)
{
	char chunk[4096];
	int rc = KS_OK, i;

	memset(chunk, 'z', sizeof(chunk));
	for (i = 0; i < 1000 && rc == KS_OK; i++) {
		rc = ks_write(&f->st.out, chunk, sizeof(chunk));
		if (rc == KS_OK)
			rc = ks_flush(&f->st.out);
	}
	f->status[0] = rc;
	f->n = 1;
}

START_TEST(test_write_peer_gone)
{
	struct fx f;

	fx_setup(&f, 100);
	close(f.peer);
	f.peer = -1;
	fx_start(&f, body_write_to_gone_peer);
	fx_run_until_done(&f);
	/* EPIPE comes back as a status, the process gets no SIGPIPE. */
	ck_assert_int_eq(f.status[0], KS_EIO);
	fx_teardown(&f);
}
END_TEST

Suite *
ks_suite_stream(void)
{
	Suite *s = suite_create("stream");
	TCase *tc = tcase_create("channels");

	tcase_add_test(tc, test_lines_across_reads);
	tcase_add_test(tc, test_clean_eof);
	tcase_add_test(tc, test_too_long_then_recovers);
	tcase_add_test(tc, test_binary_line);
	tcase_add_test(tc, test_exact_peek_integers);
	tcase_add_test(tc, test_write_high_water);
	tcase_add_test(tc, test_write_peer_gone);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}
