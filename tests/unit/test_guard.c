/* The UDP services' datagram guard: loop protection, the per-source rate
 * limit and its table, reports and option validation.  Time is driven
 * explicitly: the guard takes `now` as an argument. */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <libconfig.h>
#include <netinet/in.h>
#include <string.h>

#include "../../plugins/dgram_guard.h"
#include "suites.h"

static char err[256];

/* A guard from the options group `o = { text };`, or NULL (message in err)
 * when init refuses it.  The guard keeps no pointer into the options. */
static struct dg_guard *
guard_with(const char *text, const char *const *keys, unsigned flags)
{
	struct dg_guard *g = NULL;
	char cfgtext[512];
	config_t cfg;
	int rc;

	snprintf(cfgtext, sizeof(cfgtext), "o = { %s };\n", text);
	config_init(&cfg);
	ck_assert_msg(config_read_string(&cfg, cfgtext), "bad test config: %s",
		      cfgtext);
	err[0] = '\0';
	rc = dg_guard_init(&g, "test",
			   (const ks_options *)config_lookup(&cfg, "o"), keys,
			   flags, err, sizeof(err));
	config_destroy(&cfg);
	ck_assert_int_eq(rc == 0, g != NULL);
	return g;
}

/* An IPv4 or IPv6 socket address from a literal and a port. */
static const struct sockaddr *
sa(struct sockaddr_storage *ss, const char *addr, unsigned port)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
	} else {
		ck_assert_int_eq(inet_pton(AF_INET6, addr, &in6->sin6_addr), 1);
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
	}
	return (const struct sockaddr *)ss;
}

static int
ok_from(const struct dg_guard *g, const char *addr, unsigned port)
{
	struct sockaddr_storage p, l;

	return dg_guard_source_ok(g, sa(&p, addr, port),
				  sa(&l, "127.0.0.1", 9007));
}

static int
admit(struct dg_guard *g, const char *addr, double now)
{
	struct sockaddr_storage p;

	return dg_guard_admit(g, sa(&p, addr, 40000), now);
}

/* ---- loop protection ---- */

START_TEST(test_wellknown_ports_refused)
{
	static const unsigned bad[] = {0, 7, 9, 13, 19, 37};
	struct dg_guard *g = guard_with("", NULL, 0);
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(!ok_from(g, "192.0.2.1", bad[i]),
			      "IPv4 port %u passed", bad[i]);
		ck_assert_msg(!ok_from(g, "2001:db8::1", bad[i]),
			      "IPv6 port %u passed", bad[i]);
		ck_assert_msg(!ok_from(g, "::ffff:192.0.2.1", bad[i]),
			      "mapped port %u passed", bad[i]);
	}
	ck_assert(ok_from(g, "192.0.2.1", 1));
	ck_assert(ok_from(g, "192.0.2.1", 8));
	ck_assert(ok_from(g, "192.0.2.1", 53));
	ck_assert(ok_from(g, "192.0.2.1", 40000));
	ck_assert(ok_from(g, "2001:db8::1", 65535));
	dg_guard_fini(g);
}
END_TEST

START_TEST(test_own_port_refused)
{
	struct dg_guard *g = guard_with("", NULL, 0);
	struct sockaddr_storage p, l;

	/* ok_from's local address is 127.0.0.1:9007. */
	ck_assert(!ok_from(g, "192.0.2.1", 9007));
	ck_assert(ok_from(g, "192.0.2.1", 9008));
	ck_assert(!dg_guard_source_ok(g, sa(&p, "2001:db8::1", 5353),
				      sa(&l, "::", 5353)));
	ck_assert(dg_guard_source_ok(g, sa(&p, "2001:db8::1", 5353),
				     sa(&l, "::", 5354)));
	/* Without a local address only the fixed checks apply. */
	ck_assert(dg_guard_source_ok(g, sa(&p, "192.0.2.1", 9007), NULL));
	dg_guard_fini(g);
}
END_TEST

START_TEST(test_extra_ports_refused)
{
	struct dg_guard *g = guard_with(
		"refuse_source_ports = [ 53, 123, 65535 ];", NULL, 0);

	ck_assert_ptr_nonnull(g);
	ck_assert(!ok_from(g, "192.0.2.1", 53));
	ck_assert(!ok_from(g, "192.0.2.1", 123));
	ck_assert(!ok_from(g, "2001:db8::1", 65535));
	ck_assert(!ok_from(g, "192.0.2.1", 7)); /* built-ins still there */
	ck_assert(ok_from(g, "192.0.2.1", 54));
	ck_assert(ok_from(g, "192.0.2.1", 124));
	dg_guard_fini(g);

	/* A libconfig list works as well as an array. */
	g = guard_with("refuse_source_ports = ( 5000 );", NULL, 0);
	ck_assert_ptr_nonnull(g);
	ck_assert(!ok_from(g, "192.0.2.1", 5000));
	dg_guard_fini(g);
}
END_TEST

START_TEST(test_bad_source_addresses)
{
	struct dg_guard *g = guard_with("", NULL, 0);

	ck_assert(!ok_from(g, "0.0.0.0", 40000));
	ck_assert(!ok_from(g, "239.1.2.3", 40000));
	ck_assert(!ok_from(g, "224.0.0.1", 40000));
	ck_assert(!ok_from(g, "255.255.255.255", 40000));
	ck_assert(!ok_from(g, "::", 40000));
	ck_assert(!ok_from(g, "ff02::1", 40000));
	ck_assert(!ok_from(g, "::ffff:239.1.2.3", 40000));
	ck_assert(ok_from(g, "198.51.100.7", 40000));
	ck_assert(ok_from(g, "223.255.255.254", 40000));
	ck_assert(ok_from(g, "::1", 40000));
	ck_assert(ok_from(g, "fe80::1", 40000));
	dg_guard_fini(g);
}
END_TEST

/* ---- rate limit ---- */

START_TEST(test_bucket_burst_and_refill)
{
	struct dg_guard *g =
		guard_with("rate_limit = 10; rate_burst = 5;", NULL, 0);
	double t = 1000;
	int i;

	for (i = 0; i < 5; i++)
		ck_assert_msg(admit(g, "192.0.2.1", t), "burst %d refused", i);
	ck_assert(!admit(g, "192.0.2.1", t));
	ck_assert(!admit(g, "192.0.2.1", t));
	/* Another source has its own bucket. */
	ck_assert(admit(g, "192.0.2.2", t));
	/* Half a token is not enough; a whole one is, once. */
	ck_assert(!admit(g, "192.0.2.1", t + 0.05));
	ck_assert(admit(g, "192.0.2.1", t + 0.1));
	ck_assert(!admit(g, "192.0.2.1", t + 0.1));
	/* A long pause refills up to the burst, no further. */
	t += 100;
	for (i = 0; i < 5; i++)
		ck_assert(admit(g, "192.0.2.1", t));
	ck_assert(!admit(g, "192.0.2.1", t));
	dg_guard_fini(g);
}
END_TEST

START_TEST(test_bucket_defaults)
{
	struct dg_guard *g = guard_with("rate_limit = 3;", NULL, 0);
	int i;

	/* rate_burst defaults to 2 * rate_limit. */
	for (i = 0; i < 6; i++)
		ck_assert(admit(g, "192.0.2.1", 5));
	ck_assert(!admit(g, "192.0.2.1", 5));
	dg_guard_fini(g);

	/* No options: 100/s, bursts of 200. */
	g = guard_with("", NULL, 0);
	for (i = 0; i < 200; i++)
		ck_assert(admit(g, "192.0.2.1", 5));
	ck_assert(!admit(g, "192.0.2.1", 5));
	dg_guard_fini(g);

	/* 0: unlimited. */
	g = guard_with("rate_limit = 0;", NULL, 0);
	for (i = 0; i < 100000; i++)
		ck_assert(admit(g, "192.0.2.1", 5));
	dg_guard_fini(g);
}
END_TEST

START_TEST(test_ipv6_prefix_grouping)
{
	struct dg_guard *g =
		guard_with("rate_limit = 1; rate_burst = 2;", NULL, 0);

	/* One /64, whatever the interface identifier. */
	ck_assert(admit(g, "2001:db8:1:2::1", 1));
	ck_assert(admit(g, "2001:db8:1:2:ffff:1:2:3", 1));
	ck_assert(!admit(g, "2001:db8:1:2::99", 1));
	/* The neighbouring /64 is another source. */
	ck_assert(admit(g, "2001:db8:1:3::1", 1));
	ck_assert(admit(g, "2001:db8:1:3::1", 1));
	ck_assert(!admit(g, "2001:db8:1:3::1", 1));
	dg_guard_fini(g);
}
END_TEST

START_TEST(test_mapped_is_ipv4)
{
	struct dg_guard *g =
		guard_with("rate_limit = 1; rate_burst = 2;", NULL, 0);

	ck_assert(admit(g, "192.0.2.5", 1));
	ck_assert(admit(g, "::ffff:192.0.2.5", 1));
	ck_assert(!admit(g, "192.0.2.5", 1));
	ck_assert(!admit(g, "::ffff:192.0.2.5", 1));
	/* IPv4 addresses are /32: the neighbour is not limited. */
	ck_assert(admit(g, "::ffff:192.0.2.6", 1));
	/* Nor is an IPv6 /64 whose prefix has the same bits. */
	ck_assert(admit(g, "::", 1));
	dg_guard_fini(g);
}
END_TEST

/* A flood of new (spoofed) sources must not flush a source that is being
 * held to its rate: eviction takes the entry with the most tokens.  (An
 * LRU table would forget the limited source and hand it a fresh burst.) */
START_TEST(test_eviction_keeps_limited_source)
{
	struct dg_guard *g =
		guard_with("rate_limit = 10; rate_burst = 20;", NULL, 0);
	struct sockaddr_storage p;
	struct sockaddr_in *in = (struct sockaddr_in *)&p;
	unsigned long long spray_passed = 0;
	double t = 50, t0;
	int i, limited_passed = 0;

	for (i = 0; i < 20; i++)
		ck_assert(admit(g, "198.51.100.1", t));
	ck_assert(!admit(g, "198.51.100.1", t));

	t0 = t;
	memset(&p, 0, sizeof(p));
	in->sin_family = AF_INET;
	in->sin_port = htons(40000);
	for (i = 0; i < 100000; i++) {
		t += 1e-6;
		in->sin_addr.s_addr = htonl(0x0a000000u + (uint32_t)i);
		spray_passed +=
			dg_guard_admit(g, (const struct sockaddr *)&p, t);
		if (i % 10000 == 9999)
			limited_passed += admit(g, "198.51.100.1", t);
	}
	/* Each spoofed source got its first reply ... */
	ck_assert_uint_eq(spray_passed, 100000);
	/* ... while the limited one earned only what 0.1 s of refill buys
	 * (1 token at 10/s), not a new burst of 20. */
	ck_assert_double_le(t - t0, 0.1 + 1e-9);
	ck_assert_int_le(limited_passed, 1);
	/* An IPv6 spray does not flush it either. */
	for (i = 0; i < 100000; i++) {
		struct sockaddr_storage q;
		char a[64];

		snprintf(a, sizeof(a), "2001:db8:%x:%x::1", i >> 16,
			 i & 0xffff);
		dg_guard_admit(g, sa(&q, a, 40000), t);
	}
	ck_assert(!admit(g, "198.51.100.1", t));
	dg_guard_fini(g);
}
END_TEST

START_TEST(test_check_counts)
{
	struct dg_guard *g =
		guard_with("rate_limit = 1; rate_burst = 1;", NULL, 0);
	const struct dg_stats *st = dg_guard_stats(g);
	ks_dgram d;

	memset(&d, 0, sizeof(d));
	sa(&d.local, "192.0.2.100", 7007);
	d.local_len = sizeof(struct sockaddr_in);
	sa(&d.peer, "192.0.2.1", 7);
	d.peer_len = sizeof(struct sockaddr_in);
	ck_assert_int_eq(dg_guard_check(g, &d, 1), DG_REFUSED);
	sa(&d.peer, "192.0.2.1", 7007);
	ck_assert_int_eq(dg_guard_check(g, &d, 1), DG_REFUSED);
	sa(&d.peer, "192.0.2.1", 40000);
	ck_assert_int_eq(dg_guard_check(g, &d, 1), DG_PASS);
	ck_assert_int_eq(dg_guard_check(g, &d, 1), DG_LIMITED);
	ck_assert_int_eq(dg_guard_check(g, &d, 2), DG_PASS);
	ck_assert_uint_eq(st->refused, 2);
	ck_assert_uint_eq(st->limited, 1);
	dg_guard_fini(g);
}
END_TEST

START_TEST(test_report_window)
{
	struct dg_guard *g =
		guard_with("rate_limit = 1; rate_burst = 1;", NULL, 0);
	unsigned long long dropped = 0, sources = 0;

	ck_assert(dg_guard_report_wait(g, 100) == 0);
	ck_assert(!dg_guard_report(g, 100, &dropped, &sources));
	ck_assert(admit(g, "192.0.2.1", 100));
	ck_assert(!admit(g, "192.0.2.1", 100));
	ck_assert(!admit(g, "192.0.2.1", 100.5));
	ck_assert(admit(g, "2001:db8::1", 100.5));
	ck_assert(!admit(g, "2001:db8::2", 100.5));
	/* The window opened at the first drop, at 100. */
	ck_assert_double_eq_tol(dg_guard_report_wait(g, 104), 6, 1e-9);
	ck_assert(!dg_guard_report(g, 109.9, &dropped, &sources));
	ck_assert(dg_guard_report(g, 110, &dropped, &sources));
	ck_assert_uint_eq(dropped, 3);
	ck_assert_uint_eq(sources, 2);
	ck_assert(dg_guard_report_wait(g, 110) == 0);
	ck_assert(!dg_guard_report(g, 200, &dropped, &sources));
	/* A new window counts the same source again. */
	ck_assert(admit(g, "192.0.2.1", 110));
	ck_assert(!admit(g, "192.0.2.1", 110));
	ck_assert(dg_guard_report(g, 120, &dropped, &sources));
	ck_assert_uint_eq(dropped, 1);
	ck_assert_uint_eq(sources, 1);
	dg_guard_fini(g);
}
END_TEST

/* ---- options ---- */

static void
assert_rejected(const char *text, const char *msg)
{
	struct dg_guard *g = guard_with(text, NULL, 0);

	ck_assert_msg(g == NULL, "accepted: %s", text);
	ck_assert_str_eq(err, msg);
}

START_TEST(test_option_errors)
{
	assert_rejected("rate_limit = -1;", "option rate_limit: must be >= 0");
	assert_rejected("rate_limit = \"fast\";",
			"option rate_limit: expected integer");
	assert_rejected("rate_limit = 1000001;",
			"option rate_limit: must be <= 1000000");
	assert_rejected("rate_burst = 0;", "option rate_burst: must be >= 1");
	assert_rejected("rate_limit = 0; rate_burst = -5;",
			"option rate_burst: must be >= 1");
	assert_rejected("refuse_source_ports = [ \"dns\" ];",
			"option refuse_source_ports: expected a list of "
			"integers");
	assert_rejected("refuse_source_ports = 53;",
			"option refuse_source_ports: expected a list of "
			"integers");
	assert_rejected("refuse_source_ports = ( 53, 1.5 );",
			"option refuse_source_ports: expected a list of "
			"integers");
	assert_rejected("refuse_source_ports = [ 53, 70000 ];",
			"option refuse_source_ports: 70000 is not a port "
			"(0-65535)");
	assert_rejected("refuse_source_ports = [ -1 ];",
			"option refuse_source_ports: -1 is not a port "
			"(0-65535)");
	assert_rejected("rate = 5;", "unknown option rate");
}
END_TEST

START_TEST(test_option_keys)
{
	static const char *const keys[] = {"greeting", NULL};
	struct dg_guard *g;

	/* The plugin's keys and the guard's together. */
	g = guard_with("greeting = \"hi\"; rate_limit = 5;", keys, 0);
	ck_assert_ptr_nonnull(g);
	dg_guard_fini(g);
	g = guard_with("greting = \"hi\";", keys, 0);
	ck_assert_ptr_null(g);
	ck_assert_str_eq(err, "unknown option greting");
	/* A service that never replies takes no guard options. */
	g = guard_with("rate_limit = 5;", NULL, DG_NO_REPLY);
	ck_assert_ptr_null(g);
	ck_assert_str_eq(err, "unknown option rate_limit");
	g = guard_with("", NULL, DG_NO_REPLY);
	ck_assert_ptr_nonnull(g);
	dg_guard_fini(g);
	/* No options group at all: the defaults. */
	ck_assert_int_eq(
		dg_guard_init(&g, "test", NULL, NULL, 0, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(g);
	dg_guard_fini(g);
	dg_guard_fini(NULL);
}
END_TEST

START_TEST(test_rand)
{
	unsigned seen[16] = {0};
	uint64_t s = dg_seed(seen), a, b;
	int i;

	ck_assert(s != 0);
	a = dg_rand(&s);
	b = dg_rand(&s);
	ck_assert(a != b);
	for (i = 0; i < 16000; i++)
		seen[dg_rand(&s) % 16]++;
	for (i = 0; i < 16; i++)
		ck_assert_uint_gt(seen[i], 800);
}
END_TEST

Suite *
ks_suite_guard(void)
{
	Suite *s = suite_create("guard");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_wellknown_ports_refused);
	tcase_add_test(tc, test_own_port_refused);
	tcase_add_test(tc, test_extra_ports_refused);
	tcase_add_test(tc, test_bad_source_addresses);
	tcase_add_test(tc, test_bucket_burst_and_refill);
	tcase_add_test(tc, test_bucket_defaults);
	tcase_add_test(tc, test_ipv6_prefix_grouping);
	tcase_add_test(tc, test_mapped_is_ipv4);
	tcase_add_test(tc, test_eviction_keeps_limited_source);
	tcase_add_test(tc, test_check_counts);
	tcase_add_test(tc, test_report_window);
	tcase_add_test(tc, test_option_errors);
	tcase_add_test(tc, test_option_keys);
	tcase_add_test(tc, test_rand);
	suite_add_tcase(s, tc);
	return s;
}
