/* The shared limits zone: counts, their journals, rates, and that all of
 * it is shared across fork(). */
#include "config.h"

#include <check.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "suites.h"
#include "zone.h"

static struct ks_zone z;

static void
setup(void)
{
	ck_assert_int_eq(ks_zone_create(&z), 0);
}

static void
teardown(void)
{
	ks_zone_destroy(&z);
}

START_TEST(test_count_limit_release)
{
	struct ks_zone_user u = {&z, 1};
	struct ks_zclaim c[6], extra;
	uint64_t lk = ks_zone_name_key(&z, "l");
	int i;

	for (i = 0; i < 5; i++)
		ck_assert_int_eq(ks_zone_count_acquire(&u, KS_ZD_SOURCE, lk, 7, 5,
						       &c[i]), KS_ZONE_OK);
	/* all on one word */
	for (i = 1; i < 5; i++)
		ck_assert_int_eq(c[i].idx, c[0].idx);
	ck_assert_int_eq(ks_zone_count_acquire(&u, KS_ZD_SOURCE, lk, 7, 5,
					       &extra), KS_ZONE_OVER);
	ck_assert_int_eq(extra.idx, -1);
	/* another source, another listener, another domain: own counts */
	ck_assert_int_eq(ks_zone_count_acquire(&u, KS_ZD_SOURCE, lk, 8, 5,
					       &c[5]), KS_ZONE_OK);
	ks_zone_count_release(&u, &c[5]);
	ck_assert_int_eq(ks_zone_count_acquire(&u, KS_ZD_LISTENER, lk, 7, 5,
					       &c[5]), KS_ZONE_OK);
	ks_zone_count_release(&u, &c[5]);
	ck_assert_int_eq(c[5].idx, -1);
	ks_zone_count_release(&u, &c[5]); /* a second release: nothing */
	ks_zone_count_release(&u, &c[0]);
	ck_assert_int_eq(ks_zone_count_acquire(&u, KS_ZD_SOURCE, lk, 7, 5,
					       &c[0]), KS_ZONE_OK);
	for (i = 0; i < 5; i++)
		ks_zone_count_release(&u, &c[i]);
}
END_TEST

START_TEST(test_total)
{
	struct ks_zone_user u = {&z, 2};

	ck_assert_int_eq(ks_zone_total_acquire(&u, 2), KS_ZONE_OK);
	ck_assert_int_eq(ks_zone_total_acquire(&u, 2), KS_ZONE_OK);
	ck_assert_int_eq(ks_zone_total_acquire(&u, 2), KS_ZONE_OVER);
	ck_assert_int_eq(ks_zone_total(&z), 2);
	ks_zone_total_release(&u);
	ck_assert_int_eq(ks_zone_total(&z), 1);
	ck_assert_int_eq(ks_zone_total_acquire(&u, 0), KS_ZONE_OK);
	ck_assert_int_eq(ks_zone_total(&z), 2);
}
END_TEST

/* A child counts and dies without releasing: the parent (the master)
 * takes its share back from the journal; the parent's own stays. */
START_TEST(test_dead_worker_journal)
{
	struct ks_zone_user mine = {&z, 1};
	struct ks_zclaim c, tmp;
	uint64_t lk = ks_zone_name_key(&z, "l");
	pid_t pid;
	int st, i;

	ck_assert_int_eq(ks_zone_count_acquire(&mine, KS_ZD_SOURCE, lk, 1, 4, &c),
			 KS_ZONE_OK);
	ck_assert_int_eq(ks_zone_total_acquire(&mine, 0), KS_ZONE_OK);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct ks_zone_user u = {&z, 3};
		struct ks_zclaim cc;

		for (i = 0; i < 3; i++) {
			if (ks_zone_count_acquire(&u, KS_ZD_SOURCE, lk, 1, 4, &cc) !=
			    KS_ZONE_OK)
				_exit(1);
			(void)ks_zone_total_acquire(&u, 0);
		}
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* shared: the child's three plus ours fill the limit of 4 */
	ck_assert_int_eq(ks_zone_count_acquire(&mine, KS_ZD_SOURCE, lk, 1, 4,
					       &tmp), KS_ZONE_OVER);
	ck_assert_int_eq(ks_zone_total(&z), 4);
	ks_zone_release_slot(&z, 3);
	ck_assert_int_eq(ks_zone_total(&z), 1);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(ks_zone_count_acquire(&mine, KS_ZD_SOURCE, lk, 1,
						       4, &tmp), KS_ZONE_OK);
	ck_assert_int_eq(ks_zone_count_acquire(&mine, KS_ZD_SOURCE, lk, 1, 4,
					       &tmp), KS_ZONE_OVER);
	(void)c;
}
END_TEST

START_TEST(test_rate_burst)
{
	struct ks_zone_user u = {&z, 1};
	uint64_t lk = ks_zone_name_key(&z, "l");
	int i, ok = 0;

	/* A burst of `rate` at once, then refused (at 1/s, the next token is
	 * a second away: far longer than this loop takes). */
	for (i = 0; i < 20; i++)
		ok += ks_zone_rate(&u, KS_ZD_CONN_RATE, lk, 5, 10) == KS_ZONE_OK;
	ck_assert_int_eq(ok, 10);
	/* others have their own budget */
	ck_assert_int_eq(ks_zone_rate(&u, KS_ZD_CONN_RATE, lk, 6, 10),
			 KS_ZONE_OK);
	ck_assert_int_eq(ks_zone_rate(&u, KS_ZD_DGRAM_RATE, lk, 5, 10),
			 KS_ZONE_OK);
	ck_assert_int_eq(ks_zone_rate(&u, KS_ZD_CONN_RATE, lk, 5, 0),
			 KS_ZONE_OK);
}
END_TEST

/* More live keys in a bucket than it has ways: let through, counted. */
START_TEST(test_table_full_lets_through)
{
	struct ks_zone_user u = {&z, 1};
	struct ks_zclaim c;
	uint64_t src;
	int full = 0, ok = 0;

	/* 2^15 words: many more keys than that must overflow somewhere */
	for (src = 0; src < 40000; src++) {
		switch (ks_zone_count_acquire(&u, KS_ZD_SOURCE, 1, src, 1, &c)) {
		case KS_ZONE_OK:
			ok++;
			break;
		case KS_ZONE_FULL:
			full++;
			break;
		default:
			ck_abort_msg("a fresh key was over its limit");
		}
	}
	ck_assert_int_gt(full, 0);
	ck_assert_int_le(ok, 32768);
}
END_TEST

START_TEST(test_source_keys)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct sockaddr_in6 b = {.sin6_family = AF_INET6};
	struct sockaddr_in6 m = {.sin6_family = AF_INET6};
	uint64_t ka, kb, kb2, km;

	inet_pton(AF_INET, "192.0.2.7", &a.sin_addr);
	inet_pton(AF_INET6, "2001:db8:1:2::1", &b.sin6_addr);
	inet_pton(AF_INET6, "::ffff:192.0.2.7", &m.sin6_addr);
	ck_assert(ks_zone_source((struct sockaddr *)&a, &ka));
	ck_assert(ks_zone_source((struct sockaddr *)&b, &kb));
	ck_assert(ks_zone_source((struct sockaddr *)&m, &km));
	ck_assert_uint_eq(ka, km); /* a mapped address is its IPv4 source */
	/* the same /64 is the same source */
	inet_pton(AF_INET6, "2001:db8:1:2:ffff::9", &b.sin6_addr);
	ck_assert(ks_zone_source((struct sockaddr *)&b, &kb2));
	ck_assert_uint_eq(kb, kb2);
	inet_pton(AF_INET6, "2001:db8:1:3::1", &b.sin6_addr);
	ck_assert(ks_zone_source((struct sockaddr *)&b, &kb2));
	ck_assert_uint_ne(kb, kb2);
}
END_TEST

Suite *
ks_suite_zone(void)
{
	Suite *s = suite_create("zone");
	TCase *tc = tcase_create("zone");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_count_limit_release);
	tcase_add_test(tc, test_total);
	tcase_add_test(tc, test_dead_worker_journal);
	tcase_add_test(tc, test_rate_burst);
	tcase_add_test(tc, test_table_full_lets_through);
	tcase_add_test(tc, test_source_keys);
	suite_add_tcase(s, tc);
	return s;
}
