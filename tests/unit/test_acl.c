/* CIDR parsing and access lists (acl.c): the parser's verdicts and
 * messages, then the matching rule on lists built from strings. */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "acl.h"
#include "suites.h"

/* ---- helpers --------------------------------------------------------- */

/* A list from "+CIDR" (allow) and "-CIDR" (deny) strings, NULL-ended. */
static struct ks_acl *
acl_of(const char *first, ...)
{
	struct ks_acl *acl = ks_acl_new();
	const char *s;
	struct ks_cidr c;
	char err[128];
	va_list ap;

	ck_assert_ptr_nonnull(acl);
	va_start(ap, first);
	for (s = first; s != NULL; s = va_arg(ap, const char *)) {
		ck_assert_msg(s[0] == '+' || s[0] == '-', "bad rule %s", s);
		ck_assert_msg(ks_cidr_parse(s + 1, &c, err, sizeof(err)) == 0,
			      "%s: %s", s + 1, err);
		ck_assert_int_eq(
			ks_acl_add(acl, &c,
				   s[0] == '+' ? KS_ACL_ALLOW : KS_ACL_DENY),
			0);
	}
	va_end(ap);
	return acl;
}

static void
sockaddr_of(const char *ip, struct sockaddr_storage *ss)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (strchr(ip, ':') != NULL) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(4242);
		ck_assert_int_eq(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
	} else {
		in->sin_family = AF_INET;
		in->sin_port = htons(4242);
		ck_assert_int_eq(inet_pton(AF_INET, ip, &in->sin_addr), 1);
	}
}

/* The verdict for ip, and in rule the deciding rule ("default" if none). */
static enum ks_acl_verdict
check_ip(const struct ks_acl *acl, const char *ip, char *rule, size_t len)
{
	struct sockaddr_storage ss;
	const struct ks_cidr *r = (const struct ks_cidr *)&ss; /* not NULL */
	enum ks_acl_verdict v;

	sockaddr_of(ip, &ss);
	v = ks_acl_check(acl, (struct sockaddr *)&ss, &r);
	if (r == NULL)
		snprintf(rule, len, "default");
	else
		ks_cidr_format(r, rule, len);
	/* Without the out pointer: the same verdict. */
	ck_assert_int_eq(ks_acl_check(acl, (struct sockaddr *)&ss, NULL), v);
	return v;
}

/* The verdict for IP is V, decided by RULE ("default": by none). */
#define CHECK(acl, ip, v, rule)                                               \
	do {                                                                  \
		char rule_[KS_CIDR_STRLEN];                                   \
		ck_assert_int_eq(check_ip(acl, ip, rule_, sizeof(rule_)), v); \
		ck_assert_str_eq(rule_, rule);                                \
	} while (0)

static const char *
parse_error(const char *s)
{
	static char err[128];
	struct ks_cidr c;

	memset(&c, 0x5a, sizeof(c));
	strcpy(err, "(no message)");
	ck_assert_msg(ks_cidr_parse(s, &c, err, sizeof(err)) == -1,
		      "\"%s\" parsed", s);
	/* A failed parse leaves *out alone. */
	ck_assert_int_eq(c.family, 0x5a5a5a5a);
	return err;
}

/* s parses to the formatted form want (s itself when want is NULL). */
static struct ks_cidr
parse_ok(const char *s, const char *want)
{
	struct ks_cidr c, again;
	char err[128], buf[KS_CIDR_STRLEN];

	ck_assert_msg(ks_cidr_parse(s, &c, err, sizeof(err)) == 0, "%s: %s", s,
		      err);
	ks_cidr_format(&c, buf, sizeof(buf));
	ck_assert_str_eq(buf, want != NULL ? want : s);
	ck_assert_int_eq(ks_cidr_parse(buf, &again, err, sizeof(err)), 0);
	ck_assert_int_eq(memcmp(&c, &again, sizeof(c)), 0);
	return c;
}

/* ---- parsing --------------------------------------------------------- */

START_TEST(test_parse_accepts)
{
	struct ks_cidr c;
	const unsigned char ten[4] = {10, 0, 0, 0};
	const unsigned char zero[16] = {0};

	c = parse_ok("10.0.0.0/8", NULL);
	ck_assert_int_eq(c.family, AF_INET);
	ck_assert_uint_eq(c.prefix, 8);
	ck_assert_int_eq(memcmp(c.addr, ten, 4), 0);
	ck_assert_int_eq(memcmp(c.addr + 4, zero, 12), 0);
	c = parse_ok("192.0.2.7", "192.0.2.7/32");
	ck_assert_uint_eq(c.prefix, 32);
	c = parse_ok("2001:db8::/32", NULL);
	ck_assert_int_eq(c.family, AF_INET6);
	ck_assert_uint_eq(c.prefix, 32);
	ck_assert_uint_eq(c.addr[0], 0x20);
	ck_assert_uint_eq(c.addr[3], 0xb8);
	c = parse_ok("::1", "::1/128");
	ck_assert_uint_eq(c.prefix, 128);
	ck_assert_uint_eq(c.addr[15], 1);
	c = parse_ok("0.0.0.0/0", NULL);
	ck_assert_uint_eq(c.prefix, 0);
	parse_ok("::/0", NULL);
	parse_ok("255.255.255.255/32", NULL);
	parse_ok("10.0.0.0/32", NULL);
	parse_ok("127.0.0.2", "127.0.0.2/32");
	parse_ok("2001:db8:0:80::/57", NULL); /* the 57th bit is set */
	parse_ok("2001:db8::2/127", NULL);
	parse_ok("2001:db8::/64", NULL);
	parse_ok("2001:0db8:0000::/48", "2001:db8::/48");
	parse_ok("::ffff:10.0.0.0/104", NULL);
	parse_ok("::ffff:10.0.0.1", "::ffff:10.0.0.1/128");
	parse_ok("10.0.0.0/9", NULL);
	parse_ok("10.128.0.0/9", NULL);
}
END_TEST

START_TEST(test_parse_rejects)
{
	ck_assert_str_eq(parse_error(""), "empty address");
	ck_assert_str_eq(parse_error(" 10.0.0.0/8"),
			 "whitespace in the address");
	ck_assert_str_eq(parse_error("10.0.0.0/8 "),
			 "whitespace in the address");
	ck_assert_str_eq(parse_error("10.0.0.0 /8"),
			 "whitespace in the address");
	ck_assert_str_eq(parse_error("10.0.0.0/\t8"),
			 "whitespace in the address");
	ck_assert_str_eq(parse_error("10.0.0.0\n"),
			 "whitespace in the address");
	ck_assert_str_eq(parse_error("/"), "no address before the /");
	ck_assert_str_eq(parse_error("/8"), "no address before the /");
	ck_assert_str_eq(parse_error("10.0.0.0/"),
			 "no prefix length after the /");
	ck_assert_str_eq(parse_error("10.0.0.0/x"),
			 "the prefix length is not a decimal number");
	ck_assert_str_eq(parse_error("10.0.0.0/8a"),
			 "the prefix length is not a decimal number");
	ck_assert_str_eq(parse_error("10.0.0.0/-1"),
			 "the prefix length is not a decimal number");
	ck_assert_str_eq(parse_error("10.0.0.0/+8"),
			 "the prefix length is not a decimal number");
	ck_assert_str_eq(parse_error("10.0.0.0/8/8"),
			 "the prefix length is not a decimal number");
	ck_assert_str_eq(parse_error("10.0.0.0/0x8"),
			 "the prefix length is not a decimal number");
	ck_assert_str_eq(parse_error("10.0.0.0/08"),
			 "prefix length 08 has a leading zero");
	ck_assert_str_eq(parse_error("0.0.0.0/00"),
			 "prefix length 00 has a leading zero");
	ck_assert_str_eq(parse_error("10.0.0.0/33"),
			 "prefix length 33 is over 32");
	ck_assert_str_eq(parse_error("10.0.0.0/100"),
			 "prefix length 100 is over 32");
	ck_assert_str_eq(parse_error("10.0.0.0/4294967304"),
			 "prefix length 4294967304 is over 32");
	ck_assert_str_eq(parse_error("10.0.0.0/12345678901234567890"),
			 "prefix length 123456789012... is over 32");
	ck_assert_str_eq(parse_error("::/129"),
			 "prefix length 129 is over 128");
	ck_assert_str_eq(parse_error("10.1.2.3/24"),
			 "host bits set after /24: did you mean 10.1.2.0/24?");
	ck_assert_str_eq(parse_error("10.1.2.3/8"),
			 "host bits set after /8: did you mean 10.0.0.0/8?");
	ck_assert_str_eq(parse_error("10.0.0.1/0"),
			 "host bits set after /0: did you mean 0.0.0.0/0?");
	ck_assert_str_eq(parse_error("10.255.0.0/9"),
			 "host bits set after /9: did you mean 10.128.0.0/9?");
	ck_assert_str_eq(
		parse_error("2001:db8::1/64"),
		"host bits set after /64: did you mean 2001:db8::/64?");
	ck_assert_str_eq(
		parse_error("2001:db8::1/127"),
		"host bits set after /127: did you mean 2001:db8::/127?");
	ck_assert_str_eq(
		parse_error("2001:db8:0:ff::/57"),
		"host bits set after /57: did you mean 2001:db8:0:80::/57?");

	/* What inet_pton refuses. */
	static const char *const bad[] = {
		"10",
		"10.0",
		"10.0.0",
		"10.0.0.0.0",
		"010.0.0.1",
		"1.2.3.256",
		"10.0.0.0x",
		"example.com",
		"localhost",
		"fe80::1%eth0",
		"1:2:3:4:5:6:7:8:9",
		"::1::",
		"2001:db8::g",
		"[::1]",
		":",
		"10.0.0.-1/8",
		"1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb/8",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_str_eq(parse_error(bad[i]),
				 "not an IPv4 or IPv6 address");
}
END_TEST

START_TEST(test_parse_error_buffer)
{
	struct ks_cidr c;
	char small[8];

	/* No buffer, or none to write to: still -1. */
	ck_assert_int_eq(ks_cidr_parse("10.0.0.0/33", &c, NULL, 0), -1);
	ck_assert_int_eq(ks_cidr_parse("10.0.0.0/33", &c, small, 0), -1);
	ck_assert_int_eq(ks_cidr_parse(NULL, &c, NULL, 0), -1);
	/* A short buffer gets the message cut, NUL-terminated. */
	ck_assert_int_eq(ks_cidr_parse("10.1.2.3/24", &c, small, sizeof(small)),
			 -1);
	ck_assert_str_eq(small, "host bi");
	ck_assert_int_eq(ks_cidr_parse("10.1.2.0/24", &c, NULL, 0), 0);
}
END_TEST

START_TEST(test_format)
{
	struct ks_cidr c;
	char buf[KS_CIDR_STRLEN], tiny[6];

	parse_ok("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		 "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
	ck_assert_int_eq(ks_cidr_parse("10.0.0.0/8", &c, NULL, 0), 0);
	ks_cidr_format(&c, tiny, sizeof(tiny));
	ck_assert_str_eq(tiny, "10.0.");
	ks_cidr_format(&c, tiny, 0); /* nothing written, no crash */
	c.family = AF_UNIX;
	ks_cidr_format(&c, buf, sizeof(buf));
	ck_assert_str_eq(buf, "(family 1)");
}
END_TEST

/* ---- matching -------------------------------------------------------- */

START_TEST(test_longest_prefix_wins)
{
	struct ks_acl *acl;

	/* A denied network with an allowed hole... */
	acl = acl_of("-10.0.0.0/8", "+10.1.0.0/16", NULL);
	CHECK(acl, "10.1.2.3", KS_ACL_ALLOW, "10.1.0.0/16");
	CHECK(acl, "10.2.0.1", KS_ACL_DENY, "10.0.0.0/8");
	/* ...outside both: there is an allow rule, so the default denies. */
	CHECK(acl, "192.0.2.1", KS_ACL_DENY, "default");
	ks_acl_free(acl);

	/* ...and the reverse, added in the other order. */
	acl = acl_of("-10.1.0.0/16", "+10.0.0.0/8", NULL);
	CHECK(acl, "10.1.2.3", KS_ACL_DENY, "10.1.0.0/16");
	CHECK(acl, "10.2.0.1", KS_ACL_ALLOW, "10.0.0.0/8");
	CHECK(acl, "10.255.255.255", KS_ACL_ALLOW, "10.0.0.0/8");
	CHECK(acl, "11.0.0.0", KS_ACL_DENY, "default");
	ks_acl_free(acl);

	/* Three levels, and a host rule. */
	acl = acl_of("+10.0.0.0/8", "-10.1.0.0/16", "+10.1.2.0/24", "-10.1.2.3",
		     NULL);
	CHECK(acl, "10.9.9.9", KS_ACL_ALLOW, "10.0.0.0/8");
	CHECK(acl, "10.1.9.9", KS_ACL_DENY, "10.1.0.0/16");
	CHECK(acl, "10.1.2.4", KS_ACL_ALLOW, "10.1.2.0/24");
	CHECK(acl, "10.1.2.3", KS_ACL_DENY, "10.1.2.3/32");
	ks_acl_free(acl);
}
END_TEST

START_TEST(test_deny_wins_ties)
{
	struct ks_acl *acl;

	acl = acl_of("+10.0.0.0/8", "-10.0.0.0/8", NULL);
	CHECK(acl, "10.1.2.3", KS_ACL_DENY, "10.0.0.0/8");
	ks_acl_free(acl);
	acl = acl_of("-10.0.0.0/8", "+10.0.0.0/8", NULL);
	CHECK(acl, "10.1.2.3", KS_ACL_DENY, "10.0.0.0/8");
	ks_acl_free(acl);
	/* Duplicates are harmless, and counted. */
	acl = acl_of("+192.0.2.0/24", "+192.0.2.0/24", "-192.0.2.0/24",
		     "+192.0.2.0/24", "+2001:db8::/32", "-2001:db8::/32", NULL);
	ck_assert_uint_eq(ks_acl_count(acl), 6);
	CHECK(acl, "192.0.2.77", KS_ACL_DENY, "192.0.2.0/24");
	CHECK(acl, "2001:db8::5", KS_ACL_DENY, "2001:db8::/32");
	ks_acl_free(acl);
}
END_TEST

START_TEST(test_defaults)
{
	struct ks_acl *acl;

	/* Empty: everything allowed. */
	acl = acl_of(NULL);
	ck_assert_uint_eq(ks_acl_count(acl), 0);
	CHECK(acl, "10.0.0.1", KS_ACL_ALLOW, "default");
	CHECK(acl, "2001:db8::1", KS_ACL_ALLOW, "default");
	ks_acl_free(acl);
	/* No list at all is the same. */
	CHECK(NULL, "10.0.0.1", KS_ACL_ALLOW, "default");
	ck_assert_uint_eq(ks_acl_count(NULL), 0);
	ks_acl_free(NULL);

	/* Deny rules only: the rest is allowed. */
	acl = acl_of("-10.0.0.0/8", "-2001:db8::/32", NULL);
	CHECK(acl, "10.0.0.1", KS_ACL_DENY, "10.0.0.0/8");
	CHECK(acl, "192.0.2.1", KS_ACL_ALLOW, "default");
	CHECK(acl, "2001:db9::1", KS_ACL_ALLOW, "default");
	ks_acl_free(acl);

	/* Any allow rule, of either family, denies the rest of both. */
	acl = acl_of("+10.0.0.0/8", NULL);
	CHECK(acl, "10.0.0.1", KS_ACL_ALLOW, "10.0.0.0/8");
	CHECK(acl, "192.0.2.1", KS_ACL_DENY, "default");
	CHECK(acl, "2001:db8::1", KS_ACL_DENY, "default");
	ks_acl_free(acl);
	acl = acl_of("+2001:db8::/32", "-10.0.0.0/8", NULL);
	CHECK(acl, "192.0.2.1", KS_ACL_DENY, "default");
	ks_acl_free(acl);
}
END_TEST

START_TEST(test_whole_space)
{
	struct ks_acl *acl;

	/* /0 contains everything of its family, and only that. */
	acl = acl_of("-0.0.0.0/0", "+192.0.2.1", NULL);
	CHECK(acl, "192.0.2.1", KS_ACL_ALLOW, "192.0.2.1/32");
	CHECK(acl, "192.0.2.2", KS_ACL_DENY, "0.0.0.0/0");
	CHECK(acl, "0.0.0.0", KS_ACL_DENY, "0.0.0.0/0");
	CHECK(acl, "255.255.255.255", KS_ACL_DENY, "0.0.0.0/0");
	CHECK(acl, "2001:db8::1", KS_ACL_DENY, "default");
	ks_acl_free(acl);

	acl = acl_of("+::/0", "-::1", NULL);
	CHECK(acl, "::1", KS_ACL_DENY, "::1/128");
	CHECK(acl, "::2", KS_ACL_ALLOW, "::/0");
	CHECK(acl, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", KS_ACL_ALLOW,
	      "::/0");
	/* ::/0 is IPv6: it does not cover IPv4 peers, mapped or not. */
	CHECK(acl, "10.0.0.1", KS_ACL_DENY, "default");
	CHECK(acl, "::ffff:10.0.0.1", KS_ACL_DENY, "default");
	ks_acl_free(acl);

	/* /32 and /128 are single hosts. */
	acl = acl_of("+192.0.2.7/32", "+2001:db8::7/128", NULL);
	CHECK(acl, "192.0.2.7", KS_ACL_ALLOW, "192.0.2.7/32");
	CHECK(acl, "192.0.2.6", KS_ACL_DENY, "default");
	CHECK(acl, "192.0.2.8", KS_ACL_DENY, "default");
	CHECK(acl, "2001:db8::7", KS_ACL_ALLOW, "2001:db8::7/128");
	CHECK(acl, "2001:db8::6", KS_ACL_DENY, "default");
	ks_acl_free(acl);
}
END_TEST

START_TEST(test_mapped_peers)
{
	struct ks_acl *acl;

	/* A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d. */
	acl = acl_of("+10.0.0.0/8", "-10.1.0.0/16", NULL);
	CHECK(acl, "::ffff:10.2.3.4", KS_ACL_ALLOW, "10.0.0.0/8");
	CHECK(acl, "::ffff:10.1.3.4", KS_ACL_DENY, "10.1.0.0/16");
	CHECK(acl, "::ffff:11.0.0.1", KS_ACL_DENY, "default");
	/* Not mapped: the IPv4-compatible form is just IPv6. */
	CHECK(acl, "::10.2.3.4", KS_ACL_DENY, "default");
	ks_acl_free(acl);

	/* A rule written mapped is the IPv4 rule (reported as written). */
	acl = acl_of("+::ffff:10.0.0.0/104", "-::ffff:10.1.0.0/112", NULL);
	CHECK(acl, "10.2.3.4", KS_ACL_ALLOW, "::ffff:10.0.0.0/104");
	CHECK(acl, "::ffff:10.2.3.4", KS_ACL_ALLOW, "::ffff:10.0.0.0/104");
	CHECK(acl, "10.1.3.4", KS_ACL_DENY, "::ffff:10.1.0.0/112");
	CHECK(acl, "11.0.0.1", KS_ACL_DENY, "default");
	ks_acl_free(acl);

	/* ...and competes with IPv4 rules by its IPv4 length. */
	acl = acl_of("-::ffff:10.0.0.0/104", "+10.1.0.0/16", "+::ffff:0:0/96",
		     NULL);
	CHECK(acl, "10.1.0.1", KS_ACL_ALLOW, "10.1.0.0/16");
	CHECK(acl, "10.2.0.1", KS_ACL_DENY, "::ffff:10.0.0.0/104");
	CHECK(acl, "192.0.2.1", KS_ACL_ALLOW, "::ffff:0.0.0.0/96");
	CHECK(acl, "2001:db8::1", KS_ACL_DENY, "default");
	ks_acl_free(acl);

	/* Shorter than /96 the mapped range is just part of an IPv6 rule. */
	acl = acl_of("-::/64", NULL);
	CHECK(acl, "::1", KS_ACL_DENY, "::/64");
	CHECK(acl, "::ffff:10.0.0.1", KS_ACL_ALLOW, "default");
	ks_acl_free(acl);
}
END_TEST

START_TEST(test_ipv6_prefixes)
{
	struct ks_acl *acl;

	acl = acl_of("+2001:db8:1:2::/64", "-2001:db8:0:80::/57",
		     "+2001:db8::2/127", "-2001:db8::/32", NULL);
	/* /64 */
	CHECK(acl, "2001:db8:1:2::1", KS_ACL_ALLOW, "2001:db8:1:2::/64");
	CHECK(acl, "2001:db8:1:2:ffff:ffff:ffff:ffff", KS_ACL_ALLOW,
	      "2001:db8:1:2::/64");
	CHECK(acl, "2001:db8:1:3::", KS_ACL_DENY, "2001:db8::/32");
	/* /57: the network's 57th bit is the top bit of byte 7. */
	CHECK(acl, "2001:db8:0:80::1", KS_ACL_DENY, "2001:db8:0:80::/57");
	CHECK(acl, "2001:db8:0:ff:ffff::", KS_ACL_DENY, "2001:db8:0:80::/57");
	CHECK(acl, "2001:db8:0:7f::1", KS_ACL_DENY, "2001:db8::/32");
	CHECK(acl, "2001:db8:0:100::", KS_ACL_DENY, "2001:db8::/32");
	/* /127: two addresses, the last bit is free. */
	CHECK(acl, "2001:db8::2", KS_ACL_ALLOW, "2001:db8::2/127");
	CHECK(acl, "2001:db8::3", KS_ACL_ALLOW, "2001:db8::2/127");
	CHECK(acl, "2001:db8::1", KS_ACL_DENY, "2001:db8::/32");
	CHECK(acl, "2001:db8::4", KS_ACL_DENY, "2001:db8::/32");
	CHECK(acl, "2001:db9::", KS_ACL_DENY, "default");
	ks_acl_free(acl);

	/* Odd IPv4 lengths too: /9 splits 10/8 at bit 9, /31 a pair. */
	acl = acl_of("-10.0.0.0/9", "+10.128.0.0/9", "-192.0.2.6/31", NULL);
	CHECK(acl, "10.127.255.255", KS_ACL_DENY, "10.0.0.0/9");
	CHECK(acl, "10.128.0.0", KS_ACL_ALLOW, "10.128.0.0/9");
	CHECK(acl, "192.0.2.6", KS_ACL_DENY, "192.0.2.6/31");
	CHECK(acl, "192.0.2.7", KS_ACL_DENY, "192.0.2.6/31");
	CHECK(acl, "192.0.2.8", KS_ACL_DENY, "default");
	ks_acl_free(acl);
}
END_TEST

START_TEST(test_loopback_sources)
{
	struct ks_acl *acl;

	/* A second loopback source (tests connect from 127.0.0.2) can be
	 * told apart from 127.0.0.1. */
	acl = acl_of("+127.0.0.0/8", "-127.0.0.2", NULL);
	CHECK(acl, "127.0.0.1", KS_ACL_ALLOW, "127.0.0.0/8");
	CHECK(acl, "127.0.0.2", KS_ACL_DENY, "127.0.0.2/32");
	CHECK(acl, "::ffff:127.0.0.2", KS_ACL_DENY, "127.0.0.2/32");
	CHECK(acl, "127.0.0.3", KS_ACL_ALLOW, "127.0.0.0/8");
	CHECK(acl, "::1", KS_ACL_DENY, "default");
	ks_acl_free(acl);
	acl = acl_of("+127.0.0.2", NULL);
	CHECK(acl, "127.0.0.2", KS_ACL_ALLOW, "127.0.0.2/32");
	CHECK(acl, "127.0.0.1", KS_ACL_DENY, "default");
	ks_acl_free(acl);
}
END_TEST

START_TEST(test_unix_allowed)
{
	struct ks_acl *acl = acl_of("+10.0.0.0/8", "-0.0.0.0/0", "-::/0", NULL);
	struct sockaddr_un un;
	const struct ks_cidr *rule = (const struct ks_cidr *)&un;

	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	strcpy(un.sun_path, "/run/ksockd.sock");
	ck_assert_int_eq(ks_acl_check(acl, (struct sockaddr *)&un, &rule),
			 KS_ACL_ALLOW);
	ck_assert_ptr_null(rule);
	ks_acl_free(acl);
}
END_TEST

START_TEST(test_add_rejects)
{
	struct ks_acl *acl = ks_acl_new();
	struct ks_cidr c;

	ck_assert_ptr_nonnull(acl);
	ck_assert_int_eq(ks_cidr_parse("10.0.0.0/8", &c, NULL, 0), 0);
	c.prefix = 33;
	errno = 0;
	ck_assert_int_eq(ks_acl_add(acl, &c, KS_ACL_DENY), -1);
	ck_assert_int_eq(errno, EINVAL);
	c.prefix = 6; /* 10 = 0000 1010: a host bit after /6 */
	ck_assert_int_eq(ks_acl_add(acl, &c, KS_ACL_DENY), -1);
	c.prefix = 8;
	ck_assert_int_eq(ks_acl_add(acl, &c, (enum ks_acl_verdict)2), -1);
	c.family = AF_UNIX;
	ck_assert_int_eq(ks_acl_add(acl, &c, KS_ACL_DENY), -1);
	ck_assert_uint_eq(ks_acl_count(acl), 0);
	/* Nothing was half-added: the empty list still allows. */
	CHECK(acl, "10.0.0.1", KS_ACL_ALLOW, "default");
	ks_acl_free(acl);
}
END_TEST

/* A simple xorshift: the same rules on every run. */
static unsigned
next_rand(unsigned *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* The rule, the slow way: every rule, longest containing one, deny on a
 * tie (the fuzz target fuzz_cidr does the same over arbitrary input). */
static enum ks_acl_verdict
reference(const struct ks_cidr *rules, const enum ks_acl_verdict *v, size_t n,
	  uint32_t ip, int *best)
{
	enum ks_acl_verdict out = KS_ACL_ALLOW;
	int nallow = 0;
	size_t i;

	*best = -1;
	for (i = 0; i < n; i++) {
		uint32_t net, mask;

		nallow += v[i] == KS_ACL_ALLOW;
		memcpy(&net, rules[i].addr, 4);
		mask = rules[i].prefix ? ~0u << (32 - rules[i].prefix) : 0;
		if ((ip & mask) != ntohl(net))
			continue;
		if ((int)rules[i].prefix > *best ||
		    ((int)rules[i].prefix == *best && v[i] == KS_ACL_DENY)) {
			*best = (int)rules[i].prefix;
			out = v[i];
		}
	}
	if (*best < 0)
		out = nallow > 0 ? KS_ACL_DENY : KS_ACL_ALLOW;
	return out;
}

START_TEST(test_thousands)
{
	enum { NRULES = 3000, NPROBES = 20000 };
	struct ks_cidr *rules = calloc(NRULES, sizeof(*rules));
	enum ks_acl_verdict *v = calloc(NRULES, sizeof(*v));
	struct ks_acl *acl = ks_acl_new();
	unsigned seed = 12345, i;

	ck_assert_ptr_nonnull(rules);
	ck_assert_ptr_nonnull(v);
	/* Networks within 10.0.0.0/12 so that they nest and collide. */
	for (i = 0; i < NRULES; i++) {
		uint32_t ip = 0x0a000000u | (next_rand(&seed) & 0x000fffffu);
		unsigned prefix = 8 + next_rand(&seed) % 25;

		ip &= prefix ? ~0u << (32 - prefix) : 0;
		ip = htonl(ip);
		rules[i].family = AF_INET;
		memcpy(rules[i].addr, &ip, 4);
		rules[i].prefix = prefix;
		v[i] = next_rand(&seed) % 2 ? KS_ACL_ALLOW : KS_ACL_DENY;
		ck_assert_int_eq(ks_acl_add(acl, &rules[i], v[i]), 0);
	}
	ck_assert_uint_eq(ks_acl_count(acl), NRULES);
	for (i = 0; i < NPROBES; i++) {
		uint32_t ip = 0x0a000000u | (next_rand(&seed) & 0x001fffffu);
		struct sockaddr_in in = {.sin_family = AF_INET};
		const struct ks_cidr *rule;
		enum ks_acl_verdict got, want;
		int best;

		in.sin_addr.s_addr = htonl(ip);
		want = reference(rules, v, NRULES, ip, &best);
		got = ks_acl_check(acl, (struct sockaddr *)&in, &rule);
		ck_assert_int_eq(got, want);
		if (best < 0)
			ck_assert_ptr_null(rule);
		else
			ck_assert_uint_eq(rule->prefix, (unsigned)best);
	}
	ks_acl_free(acl);
	free(v);
	free(rules);
}
END_TEST

Suite *
ks_suite_acl(void)
{
	Suite *s = suite_create("acl");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_parse_accepts);
	tcase_add_test(tc, test_parse_rejects);
	tcase_add_test(tc, test_parse_error_buffer);
	tcase_add_test(tc, test_format);
	tcase_add_test(tc, test_longest_prefix_wins);
	tcase_add_test(tc, test_deny_wins_ties);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_whole_space);
	tcase_add_test(tc, test_mapped_peers);
	tcase_add_test(tc, test_ipv6_prefixes);
	tcase_add_test(tc, test_loopback_sources);
	tcase_add_test(tc, test_unix_allowed);
	tcase_add_test(tc, test_add_rejects);
	tcase_add_test(tc, test_thousands);
	/* test_thousands under valgrind takes a while. */
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}
