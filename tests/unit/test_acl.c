/* CIDRs and access lists: parsing, the longest-prefix rule, deny on ties,
 * the default, IPv4-mapped peers. */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "acl.h"
#include "suites.h"

static struct ks_cidr
cidr(const char *s)
{
	struct ks_cidr c;
	char err[160];

	ck_assert_msg(ks_cidr_parse(s, &c, err, sizeof(err)) == 0, "%s: %s", s,
		      err);
	return c;
}

static void
bad(const char *s, const char *want)
{
	struct ks_cidr c;
	char err[160] = "";

	ck_assert_int_eq(ks_cidr_parse(s, &c, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, want) != NULL, "%s: \"%s\" lacks \"%s\"", s,
		      err, want);
}

/* The verdict for a textual address. */
static enum ks_acl_verdict
check(const struct ks_acl *acl, const char *addr, const struct ks_cidr **rule)
{
	struct sockaddr_in in = {.sin_family = AF_INET};
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};

	if (inet_pton(AF_INET, addr, &in.sin_addr) == 1)
		return ks_acl_check(acl, (struct sockaddr *)&in, rule);
	ck_assert_int_eq(inet_pton(AF_INET6, addr, &in6.sin6_addr), 1);
	return ks_acl_check(acl, (struct sockaddr *)&in6, rule);
}

static struct ks_acl *
acl_of(const char *const *allow, const char *const *deny)
{
	struct ks_acl *acl = ks_acl_new();
	struct ks_cidr c;

	ck_assert_ptr_nonnull(acl);
	for (; allow != NULL && *allow != NULL; allow++) {
		c = cidr(*allow);
		ck_assert_int_eq(ks_acl_add(acl, &c, KS_ACL_ALLOW), 0);
	}
	for (; deny != NULL && *deny != NULL; deny++) {
		c = cidr(*deny);
		ck_assert_int_eq(ks_acl_add(acl, &c, KS_ACL_DENY), 0);
	}
	return acl;
}

START_TEST(test_parse)
{
	struct ks_cidr c;
	char buf[KS_CIDR_STRLEN];

	c = cidr("10.0.0.0/8");
	ck_assert_int_eq(c.family, AF_INET);
	ck_assert_uint_eq(c.prefix, 8);
	c = cidr("192.0.2.7");
	ck_assert_uint_eq(c.prefix, 32);
	c = cidr("::1");
	ck_assert_int_eq(c.family, AF_INET6);
	ck_assert_uint_eq(c.prefix, 128);
	c = cidr("0.0.0.0/0");
	ck_assert_uint_eq(c.prefix, 0);
	c = cidr("2001:db8::/32");
	ks_cidr_format(&c, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2001:db8::/32");
	c = cidr("2001:db8:0:80::/57");
	ck_assert_uint_eq(c.prefix, 57);

	bad("", "empty");
	bad("10.0.0.0/8 ", "whitespace");
	bad("/8", "no address");
	bad("10.0.0.0/", "no prefix length");
	bad("10.0.0.0/x", "not a decimal");
	bad("10.0.0.0/08", "leading zero");
	bad("10.0.0.0/33", "over 32");
	bad("::/129", "over 128");
	bad("300.1.1.1", "not an IPv4 or IPv6");
	bad("example.com", "not an IPv4 or IPv6");
	bad("10.1.2.3/24", "did you mean 10.1.2.0/24?");
	bad("2001:db8::1/64", "did you mean 2001:db8::/64?");
	bad("2001:db8:0:c0::/57", "did you mean 2001:db8:0:80::/57?");
}
END_TEST

START_TEST(test_longest_prefix_wins)
{
	static const char *const a1[] = {"10.1.0.0/16", NULL};
	static const char *const d1[] = {"10.0.0.0/8", NULL};
	static const char *const a2[] = {"10.0.0.0/8", NULL};
	static const char *const d2[] = {"10.1.0.0/16", NULL};
	const struct ks_cidr *rule = NULL;
	char buf[KS_CIDR_STRLEN];
	struct ks_acl *acl;

	acl = acl_of(a1, d1);
	ck_assert_int_eq(check(acl, "10.1.2.3", &rule), KS_ACL_ALLOW);
	ks_cidr_format(rule, buf, sizeof(buf));
	ck_assert_str_eq(buf, "10.1.0.0/16");
	ck_assert_int_eq(check(acl, "10.2.0.1", &rule), KS_ACL_DENY);
	ks_cidr_format(rule, buf, sizeof(buf));
	ck_assert_str_eq(buf, "10.0.0.0/8");
	/* an allow rule exists: what matches nothing is denied */
	ck_assert_int_eq(check(acl, "192.0.2.1", &rule), KS_ACL_DENY);
	ck_assert_ptr_null(rule);
	ks_acl_free(acl);

	acl = acl_of(a2, d2);
	ck_assert_int_eq(check(acl, "10.1.2.3", NULL), KS_ACL_DENY);
	ck_assert_int_eq(check(acl, "10.2.0.1", NULL), KS_ACL_ALLOW);
	ks_acl_free(acl);
}
END_TEST

START_TEST(test_deny_wins_ties_and_defaults)
{
	static const char *const a[] = {"127.0.0.4/32", "::/0", NULL};
	static const char *const d[] = {"127.0.0.4", "::/0", NULL};
	static const char *const donly[] = {"127.0.0.2", NULL};
	struct ks_acl *acl;

	acl = acl_of(a, d);
	ck_assert_int_eq(check(acl, "127.0.0.4", NULL), KS_ACL_DENY);
	ck_assert_int_eq(check(acl, "2001:db8::1", NULL), KS_ACL_DENY);
	ks_acl_free(acl);
	/* only deny rules: the rest is allowed */
	acl = acl_of(NULL, donly);
	ck_assert_int_eq(check(acl, "127.0.0.2", NULL), KS_ACL_DENY);
	ck_assert_int_eq(check(acl, "127.0.0.1", NULL), KS_ACL_ALLOW);
	ck_assert_int_eq(check(acl, "::1", NULL), KS_ACL_ALLOW);
	ks_acl_free(acl);
	/* an empty list allows everyone */
	acl = acl_of(NULL, NULL);
	ck_assert_int_eq(check(acl, "192.0.2.1", NULL), KS_ACL_ALLOW);
	ck_assert_uint_eq(ks_acl_count(acl), 0);
	ks_acl_free(acl);
}
END_TEST

START_TEST(test_ipv6_and_mapped)
{
	static const char *const a[] = {"2001:db8:1:2::/64", "127.0.0.0/8",
					"2001:db8:0:80::/57", NULL};
	static const char *const d[] = {"2001:db8:1:2::66/127", NULL};
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct ks_acl *acl = acl_of(a, d);

	ck_assert_int_eq(check(acl, "2001:db8:1:2:ffff::1", NULL), KS_ACL_ALLOW);
	ck_assert_int_eq(check(acl, "2001:db8:1:3::1", NULL), KS_ACL_DENY);
	ck_assert_int_eq(check(acl, "2001:db8:1:2::66", NULL), KS_ACL_DENY);
	ck_assert_int_eq(check(acl, "2001:db8:1:2::67", NULL), KS_ACL_DENY);
	ck_assert_int_eq(check(acl, "2001:db8:1:2::68", NULL), KS_ACL_ALLOW);
	/* /57: bits inside a byte */
	ck_assert_int_eq(check(acl, "2001:db8:0:ff::1", NULL), KS_ACL_ALLOW);
	ck_assert_int_eq(check(acl, "2001:db8:0:7f::1", NULL), KS_ACL_DENY);
	/* a dual-stack socket's view of an IPv4 peer */
	ck_assert_int_eq(check(acl, "::ffff:127.0.0.2", NULL), KS_ACL_ALLOW);
	ck_assert_int_eq(check(acl, "::ffff:192.0.2.1", NULL), KS_ACL_DENY);
	/* not an IP peer: the lists do not apply */
	ck_assert_int_eq(ks_acl_check(acl, (struct sockaddr *)&un, NULL),
			 KS_ACL_ALLOW);
	ck_assert_uint_eq(ks_acl_count(acl), 4);
	ks_acl_free(acl);
}
END_TEST

/* Many rules: the sorted arrays against a brute-force reading of the
 * rule. */
START_TEST(test_many_rules)
{
	struct ks_acl *acl = ks_acl_new();
	struct ks_cidr rules[600];
	enum ks_acl_verdict vs[600];
	unsigned i, j, seed = 7;

	for (i = 0; i < 600; i++) {
		unsigned char a[4];
		unsigned p;

		seed = seed * 1103515245 + 12345;
		p = 8 + (seed >> 16) % 25;
		seed = seed * 1103515245 + 12345;
		a[0] = 10;
		a[1] = (unsigned char)(seed >> 8);
		a[2] = (unsigned char)(seed >> 16);
		a[3] = (unsigned char)(seed >> 24);
		memset(&rules[i], 0, sizeof(rules[i]));
		rules[i].family = AF_INET;
		rules[i].prefix = p;
		for (j = 0; j < 4; j++) {
			unsigned bits = p > j * 8 ? (p - j * 8 < 8 ? p - j * 8 : 8) : 0;

			rules[i].addr[j] = (unsigned char)(a[j] &
							   (0xff00 >> bits));
		}
		vs[i] = i % 3 ? KS_ACL_ALLOW : KS_ACL_DENY;
		ck_assert_int_eq(ks_acl_add(acl, &rules[i], vs[i]), 0);
	}
	for (i = 0; i < 5000; i++) {
		struct sockaddr_in in = {.sin_family = AF_INET};
		unsigned char *b = (unsigned char *)&in.sin_addr;
		int best = -1;
		enum ks_acl_verdict want = KS_ACL_DENY; /* allow rules exist */

		seed = seed * 1103515245 + 12345;
		b[0] = 10;
		b[1] = (unsigned char)(seed >> 8);
		b[2] = (unsigned char)(seed >> 16);
		b[3] = (unsigned char)(seed >> 24);
		if (i % 2)
			memcpy(b, rules[i % 600].addr, 4);
		for (j = 0; j < 600; j++) {
			uint32_t m = rules[j].prefix ? ~0u << (32 - rules[j].prefix)
						     : 0;
			uint32_t x, n;

			memcpy(&x, b, 4);
			memcpy(&n, rules[j].addr, 4);
			if ((ntohl(x) & m) != ntohl(n))
				continue;
			if (best < 0 || rules[j].prefix > (unsigned)best ||
			    (rules[j].prefix == (unsigned)best &&
			     vs[j] == KS_ACL_DENY)) {
				best = (int)rules[j].prefix;
				want = vs[j];
			}
		}
		ck_assert_int_eq(ks_acl_check(acl, (struct sockaddr *)&in, NULL),
				 want);
	}
	ks_acl_free(acl);
}
END_TEST

Suite *
ks_suite_acl(void)
{
	Suite *s = suite_create("acl");
	TCase *tc = tcase_create("acl");

	tcase_add_test(tc, test_parse);
	tcase_add_test(tc, test_longest_prefix_wins);
	tcase_add_test(tc, test_deny_wins_ties_and_defaults);
	tcase_add_test(tc, test_ipv6_and_mapped);
	tcase_add_test(tc, test_many_rules);
	suite_add_tcase(s, tc);
	return s;
}
