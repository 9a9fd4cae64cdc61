/* Observability: the access-log line formats (fields, escaping, cutting),
 * the scoreboard's per-listener rows (names kept over generations, sums
 * over live and dead workers, reuse of names no generation uses), the
 * Prometheus text, and the access_log keys. */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "alog.h"
#include "conf.h"
#include "fixture.h"
#include "metrics.h"
#include "scoreboard.h"
#include "suites.h"
#include "worker.h"

/* ---- the line formats ---------------------------------------------------- */

static const struct ks_alog_rec REC = {
	.time = 1796223845.123,
	.listener = "echo",
	.peer = "192.0.2.7:40312",
	.local = "192.0.2.1:7",
	.duration = 0.0125,
	.bytes_in = 120,
	.bytes_out = 4096,
	.reason = "eof",
};

START_TEST(test_text_line)
{
	char buf[KS_ALOG_LINE];
	size_t n = ks_alog_format(&REC, false, buf);

	buf[n] = '\0';
	ck_assert_str_eq(buf, "2026-12-02T15:04:05.123Z listener=echo "
			      "peer=192.0.2.7:40312 local=192.0.2.1:7 "
			      "duration=0.013 bytes_in=120 bytes_out=4096 "
			      "tls=- sni=- alpn=- reason=eof\n");
}
END_TEST

START_TEST(test_json_line)
{
	struct ks_alog_rec r = REC;
	char buf[KS_ALOG_LINE];
	size_t n;

	r.tls = "TLS1.3";
	r.sni = "example.com";
	r.alpn = "h2";
	n = ks_alog_format(&r, true, buf);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "{\"time\":\"2026-12-02T15:04:05.123Z\","
			      "\"listener\":\"echo\",\"peer\":\"192.0.2.7:40312\","
			      "\"local\":\"192.0.2.1:7\",\"duration\":0.013,"
			      "\"bytes_in\":120,\"bytes_out\":4096,"
			      "\"tls\":\"TLS1.3\",\"sni\":\"example.com\","
			      "\"alpn\":\"h2\",\"reason\":\"eof\"}\n");
}
END_TEST

/* What a client chooses (SNI, ALPN) cannot break a line or a field. */
START_TEST(test_escaping)
{
	struct ks_alog_rec r = REC;
	char buf[KS_ALOG_LINE];
	size_t n;

	r.sni = "a b\n\"c\\=\xff";
	r.alpn = "";
	n = ks_alog_format(&r, false, buf);
	buf[n] = '\0';
	ck_assert_ptr_nonnull(strstr(buf, " sni=a\\x20b\\x0a\\x22c\\x5c\\x3d"
					  "\\xff alpn=- "));
	n = ks_alog_format(&r, true, buf);
	buf[n] = '\0';
	ck_assert_ptr_nonnull(strstr(buf, "\"sni\":\"a b\\u000a\\u0022c\\u005c="
					  "\\u00ff\",\"alpn\":\"\","));
}
END_TEST

/* A line never passes KS_ALOG_LINE: long fields are cut, the line still
 * ends as it must. */
START_TEST(test_long_fields_cut)
{
	struct ks_alog_rec r = REC;
	char big[3000], buf[KS_ALOG_LINE];
	size_t n, i;
	int json;

	memset(big, '\x01', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	r.sni = r.alpn = r.peer = big;
	for (json = 0; json <= 1; json++) {
		n = ks_alog_format(&r, json, buf);
		ck_assert_uint_le(n, KS_ALOG_LINE);
		ck_assert_int_eq(buf[n - 1], '\n');
		if (json)
			ck_assert_int_eq(buf[n - 2], '}');
		for (i = 0; i < n - 1; i++)
			ck_assert(buf[i] >= 0x20 && buf[i] < 0x7f);
	}
}
END_TEST

START_TEST(test_reason_names)
{
	ck_assert_str_eq(ks_close_reason_name(0), "eof");
	ck_assert_str_eq(ks_close_reason_name(4), "shutdown");
	ck_assert_str_eq(ks_close_reason_name(99), "error");
}
END_TEST

/* ---- the scoreboard's rows -------------------------------------------------- */

static struct ks_conf *
conf_with(const char *const *names, size_t n, unsigned generation)
{
	struct ks_conf *conf = calloc(1, sizeof(*conf));
	size_t i;

	ck_assert_ptr_nonnull(conf);
	conf->listeners = calloc(n, sizeof(*conf->listeners));
	conf->nlisteners = n;
	conf->generation = generation;
	for (i = 0; i < n; i++)
		conf->listeners[i].name = names[i];
	return conf;
}

static void
conf_free(struct ks_conf *conf)
{
	free(conf->listeners);
	free(conf);
}

START_TEST(test_sb_rows_sum_and_survive)
{
	static const char *const g1[] = {"a", "b"}, *const g2[] = {"b", "c"};
	struct ks_scoreboard sb;
	struct ks_conf *c1, *c2;
	struct ks_stats daemon, out[2];
	unsigned ids[2];
	int s1, s2;

	ck_assert_int_eq(ks_sb_create(&sb), 0);
	c1 = conf_with(g1, 2, 1);
	ks_sb_assign(&sb, c1, 1);
	ck_assert_uint_ne(c1->listeners[0].stat_id,
			  c1->listeners[1].stat_id);
	s1 = ks_sb_take(&sb, 1, 0);
	s2 = ks_sb_take(&sb, 1, 1);
	ck_assert_int_gt(s1, 0);
	ck_assert_int_gt(s2, s1);
	/* two workers count on listener b */
	ks_sb_row(&sb, (unsigned)s1)[c1->listeners[1].stat_id].accepted = 3;
	ks_sb_row(&sb, (unsigned)s2)[c1->listeners[1].stat_id].accepted = 4;
	ks_sb_row(&sb, (unsigned)s2)[c1->listeners[1].stat_id].active = 2;
	ks_sb_slot(&sb, (unsigned)s1)->stats.accepted = 3;
	ks_sb_slot(&sb, (unsigned)s2)->stats.accepted = 4;
	ids[0] = c1->listeners[1].stat_id;
	ids[1] = c1->listeners[0].stat_id;
	ks_sb_sum(&sb, &daemon, ids, 2, out);
	ck_assert_uint_eq(out[0].accepted, 7);
	ck_assert_uint_eq(out[0].active, 2);
	ck_assert_uint_eq(out[1].accepted, 0);
	ck_assert_uint_eq(daemon.accepted, 7);
	/* the second dies: its counts stay, its gauge goes */
	ks_sb_release(&sb, (unsigned)s2);
	ks_sb_sum(&sb, &daemon, ids, 2, out);
	ck_assert_uint_eq(out[0].accepted, 7);
	ck_assert_uint_eq(out[0].active, 0);
	ck_assert_uint_eq(daemon.accepted, 7);
	ck_assert_uint_eq(sb.hdr->seq % 2, 0);
	/* a new generation keeps b's index and counters */
	c2 = conf_with(g2, 2, 2);
	ks_sb_assign(&sb, c2, 1);
	ck_assert_uint_eq(c2->listeners[0].stat_id, c1->listeners[1].stat_id);
	ck_assert_uint_ne(c2->listeners[1].stat_id, c1->listeners[0].stat_id);
	ck_assert_uint_eq(sb.hdr->dir[c2->listeners[0].stat_id].generation, 2);
	ck_assert_uint_eq(sb.hdr->dir[c1->listeners[0].stat_id].generation, 1);
	conf_free(c1);
	conf_free(c2);
	ks_sb_destroy(&sb);
}
END_TEST

/* Names no live generation uses are given to new listeners, their
 * counters from zero; more names than rows: none for the rest. */
START_TEST(test_sb_rows_reused)
{
	char names[KS_SB_LISTENERS + 1][16];
	const char *ptrs[KS_SB_LISTENERS + 1];
	struct ks_scoreboard sb;
	struct ks_conf *c1, *c2;
	unsigned old_a;
	size_t i;

	for (i = 0; i <= KS_SB_LISTENERS; i++) {
		snprintf(names[i], sizeof(names[i]), "l%zu", i);
		ptrs[i] = names[i];
	}
	ck_assert_int_eq(ks_sb_create(&sb), 0);
	c1 = conf_with(ptrs, KS_SB_LISTENERS + 1, 1);
	ks_sb_assign(&sb, c1, 1);
	ck_assert_uint_eq(c1->listeners[KS_SB_LISTENERS].stat_id, KS_STAT_NONE);
	old_a = c1->listeners[0].stat_id;
	ks_sb_row(&sb, 0)[old_a].accepted = 5; /* a dead worker's */
	/* generation 2 has one new name; generation 1 is still alive */
	c2 = conf_with((const char *[]){"new"}, 1, 2);
	ks_sb_assign(&sb, c2, 1);
	ck_assert_uint_eq(c2->listeners[0].stat_id, KS_STAT_NONE);
	/* ... and once it is gone */
	ks_sb_assign(&sb, c2, 2);
	ck_assert_uint_eq(c2->listeners[0].stat_id, old_a);
	ck_assert_uint_eq(ks_sb_row(&sb, 0)[old_a].accepted, 0);
	ck_assert_str_eq(sb.hdr->dir[old_a].name, "new");
	conf_free(c1);
	conf_free(c2);
	ks_sb_destroy(&sb);
}
END_TEST

/* The text has a HELP and TYPE line for each family, a listener label on
 * each per-listener series, and the values summed. */
START_TEST(test_metrics_text)
{
	static const char *const g[] = {"we\"ird"};
	struct ks_metrics_src src;
	struct ks_scoreboard sb;
	struct ks_conf *c;
	size_t len;
	char *text;
	int s;

	ck_assert_int_eq(ks_sb_create(&sb), 0);
	c = conf_with(g, 1, 1);
	ks_sb_assign(&sb, c, 1);
	sb.hdr->generation = 1;
	s = ks_sb_take(&sb, 1, 0);
	ks_sb_row(&sb, (unsigned)s)[c->listeners[0].stat_id].bytes_in = 42;
	ks_sb_row(&sb, 0)[c->listeners[0].stat_id].bytes_in = 8;
	ks_sb_row(&sb, (unsigned)s)[c->listeners[0].stat_id].closed_timeout = 1;
	sb.hdr->worker_crashes[11] = 2;
	sb.hdr->reloads_failed = 1;
	ks_metrics_src_init(&src, &sb, c);
	text = ks_metrics_render(&src, &len);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(strlen(text), len);
	ck_assert_ptr_nonnull(strstr(text,
		"# HELP ksockd_received_bytes_total Bytes received from "
		"clients (udp: payload bytes).\n"
		"# TYPE ksockd_received_bytes_total counter\n"
		"ksockd_received_bytes_total{listener=\"we\\\"ird\"} 50\n"));
	ck_assert_ptr_nonnull(strstr(text,
		"ksockd_connections_closed_total{listener=\"we\\\"ird\","
		"reason=\"timeout\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(text,
		"ksockd_worker_crashes_total{signal=\"SIGSEGV\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(text,
		"ksockd_reloads_total{result=\"failed\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nksockd_workers 0\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nksockd_config_generation 1\n"));
	ck_assert_int_eq(text[len - 1], '\n');
	free(text);
	conf_free(c);
	ks_sb_destroy(&sb);
}
END_TEST

/* ---- the keys ------------------------------------------------------------ */

static void
setup(void)
{
	fx_setup_dir("observe");
	fx_write_file("echo.so", "");
}

static void
teardown(void)
{
	fx_teardown_dir();
}

#define LISTENER                                                               \
	"listeners = ( { name = \"t\"; address = \"127.0.0.1\"; port = 1;\n"   \
	"  handler = \"echo\"; } );\n"

START_TEST(test_access_log_keys)
{
	struct ks_conf *conf = fx_load_ok(
		"daemon = { plugin_dir = \".\"; access_log = \"a.log\";\n"
		"  access_log_format = \"json\"; };\n" LISTENER);
	const char *tail;

	ck_assert_ptr_nonnull(conf->access_log);
	ck_assert_int_eq(conf->access_log[0], '/');
	tail = conf->access_log + strlen(conf->access_log) - 6;
	ck_assert_str_eq(tail, "/a.log");
	ck_assert(conf->access_log_json);
	ks_conf_unref(conf);
	conf = fx_load_ok("daemon = { plugin_dir = \".\"; };\n" LISTENER);
	ck_assert_ptr_null(conf->access_log);
	ck_assert(!conf->access_log_json);
	ks_conf_unref(conf);
}
END_TEST

START_TEST(test_access_log_errors)
{
	fx_load_fails("daemon = { plugin_dir = \".\"; access_log = \"\"; };\n"
		      LISTENER, "FILE:1: daemon: access_log must not be empty",
		      NULL);
	fx_load_fails("daemon = { plugin_dir = \".\";\n"
		      "  access_log = \"nodir/a.log\"; };\n" LISTENER,
		      "FILE:2: daemon: access_log DIR/nodir/a.log: directory "
		      "DIR/nodir: No such file or directory", NULL);
	fx_load_fails("daemon = { plugin_dir = \".\";\n"
		      "  access_log_format = \"xml\"; };\n" LISTENER,
		      "FILE:2: daemon: unknown access_log_format \"xml\" "
		      "(expected text or json)", NULL);
	fx_load_fails("daemon = { plugin_dir = \".\"; access_log = 3; };\n"
		      LISTENER, "FILE:1: daemon: access_log must be a string",
		      NULL);
}
END_TEST

Suite *
ks_suite_observe(void)
{
	Suite *s = suite_create("observe");
	TCase *tc = tcase_create("alog");
	TCase *sbt = tcase_create("scoreboard");
	TCase *keys = tcase_create("keys");

	tcase_add_test(tc, test_text_line);
	tcase_add_test(tc, test_json_line);
	tcase_add_test(tc, test_escaping);
	tcase_add_test(tc, test_long_fields_cut);
	tcase_add_test(tc, test_reason_names);
	suite_add_tcase(s, tc);
	tcase_add_test(sbt, test_sb_rows_sum_and_survive);
	tcase_add_test(sbt, test_sb_rows_reused);
	tcase_add_test(sbt, test_metrics_text);
	suite_add_tcase(s, sbt);
	tcase_add_checked_fixture(keys, setup, teardown);
	tcase_add_test(keys, test_access_log_keys);
	tcase_add_test(keys, test_access_log_errors);
	suite_add_tcase(s, keys);
	return s;
}
