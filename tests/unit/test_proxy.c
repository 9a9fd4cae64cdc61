/* The PROXY protocol header parser: v1 and v2 headers, every prefix of
 * them, and where bad ones are refused. */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "proxy.h"
#include "suites.h"
#include "util.h"

static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
				0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* Every prefix of buf shorter than hlen is "read more", every longer one
 * (application bytes after the header) gives the header's length. */
static void
assert_header(const void *buf, size_t len, size_t hlen, struct ks_proxy_hdr *h)
{
	const char *why;
	size_t k;

	for (k = 0; k < hlen; k++)
		ck_assert_msg(ks_proxy_parse(buf, k, h, &why) == 0,
			      "prefix of %zu bytes of a %zu-byte header", k,
			      hlen);
	for (k = hlen; k <= len; k++) {
		memset(h, 0xa5, sizeof(*h));
		ck_assert_int_eq(ks_proxy_parse(buf, k, h, &why), (int)hlen);
		ck_assert_uint_eq(h->len, hlen);
	}
}

/* Where buf is refused: every shorter prefix is "read more", that one and
 * every longer one -1 with the same reason, which is returned. */
static size_t
refused_at(const void *buf, size_t len, const char **reason)
{
	struct ks_proxy_hdr h;
	const char *why = NULL;
	size_t k, at;
	int r;

	for (k = 0; k <= len; k++) {
		r = ks_proxy_parse(buf, k, &h, &why);
		if (r != 0)
			break;
	}
	ck_assert_msg(k <= len, "never refused");
	ck_assert_int_eq(r, -1);
	ck_assert_ptr_nonnull(why);
	ck_assert_uint_gt(strlen(why), 0);
	at = k;
	*reason = why;
	for (k = at + 1; k <= len; k++) {
		why = NULL;
		ck_assert_int_eq(ks_proxy_parse(buf, k, &h, &why), -1);
		ck_assert_str_eq(why, *reason);
	}
	return at;
}

/* refused_at for a string: the 1-based position of the refusing byte. */
static size_t
str_refused_at(const char *s, const char *reason)
{
	const char *why;
	size_t at = refused_at(s, strlen(s), &why);

	if (reason != NULL)
		ck_assert_str_eq(why, reason);
	return at;
}

static void
assert_addr(const struct sockaddr_storage *ss, socklen_t len, int family,
	    const char *addr, unsigned port)
{
	char text[INET6_ADDRSTRLEN];

	ck_assert_int_eq(ss->ss_family, family);
	if (family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)ss;

		ck_assert_uint_eq(len, sizeof(*sin));
		ck_assert_ptr_nonnull(
			inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text)));
		ck_assert_uint_eq(ntohs(sin->sin_port), port);
	} else {
		const struct sockaddr_in6 *sin6 = (const void *)ss;

		ck_assert_uint_eq(len, sizeof(*sin6));
		ck_assert_ptr_nonnull(inet_ntop(AF_INET6, &sin6->sin6_addr,
						text, sizeof(text)));
		ck_assert_uint_eq(ntohs(sin6->sin6_port), port);
	}
	ck_assert_str_eq(text, addr);
}

/* ---- v1 ---- */

START_TEST(test_v1_tcp4)
{
	const char *s = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
			"GET / HTTP/1.1\r\n";
	struct ks_proxy_hdr h;

	assert_header(s, strlen(s), 47, &h);
	ck_assert_int_eq(h.version, 1);
	ck_assert(h.has_addr);
	ck_assert_int_eq(h.transport, SOCK_STREAM);
	assert_addr(&h.src, h.src_len, AF_INET, "192.168.0.1", 56324);
	assert_addr(&h.dst, h.dst_len, AF_INET, "192.168.0.11", 443);
	/* The longest TCP4 line of the spec, 56 bytes, and the smallest
	 * values. */
	s = "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
	assert_header(s, strlen(s), 56, &h);
	assert_addr(&h.dst, h.dst_len, AF_INET, "255.255.255.255", 65535);
	s = "PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n";
	assert_header(s, strlen(s), strlen(s), &h);
	assert_addr(&h.src, h.src_len, AF_INET, "0.0.0.0", 0);
}
END_TEST

START_TEST(test_v1_tcp6)
{
	const char *s = "PROXY TCP6 2001:db8::1 ::ffff:192.0.2.1 0 65535\r\n"
			"\x16\x03\x01\x02\x00";
	struct ks_proxy_hdr h;
	size_t n;

	n = strlen("PROXY TCP6 2001:db8::1 ::ffff:192.0.2.1 0 65535\r\n");
	assert_header(s, strlen(s), n, &h);
	ck_assert(h.has_addr);
	ck_assert_int_eq(h.transport, SOCK_STREAM);
	assert_addr(&h.src, h.src_len, AF_INET6, "2001:db8::1", 0);
	assert_addr(&h.dst, h.dst_len, AF_INET6, "::ffff:192.0.2.1", 65535);
	/* The longest of the spec (104 bytes), upper case, and "::". */
	s = "PROXY TCP6 FFFF:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffE 65535 65535\r\n";
	assert_header(s, strlen(s), 104, &h);
	assert_addr(&h.dst, h.dst_len, AF_INET6,
		    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535);
	s = "PROXY TCP6 :: 1:: 1 2\r\n";
	assert_header(s, strlen(s), strlen(s), &h);
	assert_addr(&h.src, h.src_len, AF_INET6, "::", 1);
	assert_addr(&h.dst, h.dst_len, AF_INET6, "1::", 2);
	s = "PROXY TCP6 1:2:3:4:5:6:7:8 1::3:4:5:6:7:8 1 2\r\n";
	assert_header(s, strlen(s), strlen(s), &h);
	assert_addr(&h.dst, h.dst_len, AF_INET6, "1:0:3:4:5:6:7:8", 2);
	s = "PROXY TCP6 1:2:3:4:5:6:1.2.3.4 ::1.2.3.4 1 2\r\n";
	assert_header(s, strlen(s), strlen(s), &h);
}
END_TEST

START_TEST(test_v1_unknown)
{
	const char *s = "PROXY UNKNOWN\r\nHELO";
	char line[200];
	struct ks_proxy_hdr h;

	assert_header(s, strlen(s), 15, &h);
	ck_assert_int_eq(h.version, 1);
	ck_assert(!h.has_addr);
	ck_assert_int_eq(h.transport, 0);
	/* Whatever follows is ignored, addresses or not. */
	s = "PROXY UNKNOWN ffff:f...f:ffff nonsense 65535 99999\r\n";
	assert_header(s, strlen(s), strlen(s), &h);
	ck_assert(!h.has_addr);
	/* The spec's worst case is 107 bytes: the longest line there is. */
	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	memcpy(line + 105, "\r\n", 2);
	assert_header(line, 107, 107, &h);
}
END_TEST

START_TEST(test_v1_too_long)
{
	const char *why;
	char line[200];

	/* No CRLF in the first 107 bytes: refused at the 108th at the
	 * latest, and in fact as soon as a CRLF can no longer end the line
	 * in time: at 106 bytes without a CR, 2 more are needed. */
	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	ck_assert_uint_eq(refused_at(line, sizeof(line), &why), 106);
	ck_assert_str_eq(why, "v1: no CRLF within the first 107 bytes");
	/* A CR as the 107th byte is too late for its LF. */
	line[106] = '\r';
	ck_assert_uint_eq(refused_at(line, sizeof(line), &why), 106);
	line[105] = '\r';
	line[106] = 'x';
	ck_assert_uint_eq(refused_at(line, sizeof(line), &why), 107);
	ck_assert_str_eq(why, "v1: CR not followed by LF");
	/* A TCP6 line too long for the limit (v4-mapped addresses are the
	 * longest inet_pton takes): refused once the fewest bytes that
	 * could finish it no longer fit. */
	ck_assert_uint_eq(str_refused_at("PROXY TCP6 "
					 "ffff:ffff:ffff:ffff:ffff:ffff:"
					 "255.255.255.255 "
					 "ffff:ffff:ffff:ffff:ffff:ffff:"
					 "255.255.255.255 "
					 "65535 65535\r\n",
					 "v1: no CRLF within the first 107 "
					 "bytes"),
			  102);
}
END_TEST

/* A header refused at its byte `at` (1-based), for reason `why` (NULL:
 * whatever the reason). */
struct refusal {
	const char *input;
	size_t at;
	const char *why;
};

static void
assert_refusals(const struct refusal *r, size_t n)
{
	const char *why;
	size_t i, at;

	for (i = 0; i < n; i++) {
		at = refused_at(r[i].input, strlen(r[i].input), &why);
		ck_assert_msg(at == r[i].at,
			      "\"%s\" refused at byte %zu, not %zu", r[i].input,
			      at, r[i].at);
		if (r[i].why != NULL)
			ck_assert_str_eq(why, r[i].why);
	}
}

/* Refused at the first byte no valid address has there. */
static const struct refusal bad_addresses[] = {
	/* the other family's address */
	{"PROXY TCP4 ::1 ::1 1 2\r\n", 12, "v1: bad source address"},
	{"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", 13, "v1: bad source address"},
	/* IPv4: four parts of 0-255, no leading zeroes (octal to some) */
	{"PROXY TCP4 1.2.3.4 1.2.3.256 1 2\r\n", 28,
	 "v1: bad destination address"},
	{"PROXY TCP4 1.2.3 1.2.3.4 1 2\r\n", 17, "v1: bad source address"},
	{"PROXY TCP4 1.2.3.4.5 1.2.3.4 1 2\r\n", 19, "v1: bad source address"},
	{"PROXY TCP4 01.2.3.4 1.2.3.4 1 2\r\n", 13, "v1: bad source address"},
	{"PROXY TCP4 1.2.3.04 1.2.3.4 1 2\r\n", 19, "v1: bad source address"},
	{"PROXY TCP4 1..2.3 1.2.3.4 1 2\r\n", 14, NULL},
	{"PROXY TCP4 1.2.3.4 hostname 1 2\r\n", 20,
	 "v1: bad destination address"},
	/* IPv6: colons, group sizes */
	{"PROXY TCP6 :1:: ::1 1 2\r\n", 13, "v1: bad source address"},
	{"PROXY TCP6 1:::2 ::1 1 2\r\n", 15, NULL},
	{"PROXY TCP6 1::2::3 ::1 1 2\r\n", 17, NULL},
	{"PROXY TCP6 12345:: ::1 1 2\r\n", 16, NULL},
	{"PROXY TCP6 1: ::1 1 2\r\n", 14, NULL},
	{"PROXY TCP6 ::1 fe80::1%eth0 1 2\r\n", 23,
	 "v1: bad destination address"},
	/* nine groups; eight and a "::", which must stand for one */
	{"PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", 27, NULL},
	{"PROXY TCP6 1:2:3:4:5:6:7:8:: ::1 1 2\r\n", 27, NULL},
	{"PROXY TCP6 1::3:4:5:6:7:8:9 ::1 1 2\r\n", 26, NULL},
	{"PROXY TCP6 1:2:3:4:5:6:7 ::1 1 2\r\n", 25, NULL},
	/* a dotted quad only in place of the last two groups */
	{"PROXY TCP6 1:2:3:4:5:1.2.3.4 ::1 1 2\r\n", 23, NULL},
	{"PROXY TCP6 1:2:3:4:5:6:7:1.2.3.4 ::1 1 2\r\n", 27, NULL},
	{"PROXY TCP6 ::ff.1.2.3 ::1 1 2\r\n", 16, NULL},
	{"PROXY TCP6 ::1.2.3.4:5 ::1 1 2\r\n", 21, NULL},
};

START_TEST(test_v1_bad_addresses)
{
	assert_refusals(bad_addresses, KS_ARRAY_SIZE(bad_addresses));
}
END_TEST

static const struct refusal bad_ports[] = {
	{"PROXY TCP4 1.2.3.4 1.2.3.4 65536 1\r\n", 32, "v1: bad source port"},
	{"PROXY TCP4 1.2.3.4 1.2.3.4 1 123456\r\n", 35,
	 "v1: bad destination port"},
	/* "0" is a port, "00" and "080" are not */
	{"PROXY TCP4 1.2.3.4 1.2.3.4 00 1\r\n", 29, "v1: bad source port"},
	{"PROXY TCP4 1.2.3.4 1.2.3.4 1 080\r\n", 31,
	 "v1: bad destination port"},
	{"PROXY TCP4 1.2.3.4 1.2.3.4 -1 1\r\n", 28, "v1: bad source port"},
	{"PROXY TCP4 1.2.3.4 1.2.3.4 +1 1\r\n", 28, "v1: bad source port"},
	{"PROXY TCP4 1.2.3.4 1.2.3.4 1 8a\r\n", 31, "v1: bad destination port"},
	/* empty, missing, one too many */
	{"PROXY TCP4 1.2.3.4 1.2.3.4 1 \r\n", 30, "v1: bad destination port"},
	{"PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n", 29, "v1: bad source port"},
	{"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n", 31,
	 "v1: bad destination port"},
};

START_TEST(test_v1_bad_ports)
{
	assert_refusals(bad_ports, KS_ARRAY_SIZE(bad_ports));
}
END_TEST

static const struct refusal bad_syntax[] = {
	/* exactly one space between fields */
	{"PROXY  TCP4 1.2.3.4 1.2.3.4 1 2\r\n", 7, NULL},
	{"PROXY TCP4  1.2.3.4 1.2.3.4 1 2\r\n", 12,
	 "v1: more than one space between fields"},
	{"PROXY TCP4 1.2.3.4 1.2.3.4  1 2\r\n", 28,
	 "v1: more than one space between fields"},
	{"PROXY\tTCP4 1.2.3.4 1.2.3.4 1 2\r\n", 6,
	 "v1: PROXY not followed by a space"},
	/* CRLF and nothing else ends a line */
	{"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n", 31, "v1: LF without CR"},
	{"PROXY UNKNOWN\n", 14, "v1: LF without CR"},
	{"PROXY UNKNOWN 1.2.3.4\n", 22, "v1: LF without CR"},
	{"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\rX", 32, "v1: CR not followed by LF"},
	{"PROXY UNKNOWN\r\r\n", 15, "v1: CR not followed by LF"},
	{"PROXY UNKNOWN a\rb\r\n", 17, "v1: CR not followed by LF"},
	/* these three protocols, in upper case */
	{"PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n", 10,
	 "v1: protocol is not TCP4, TCP6 or UNKNOWN"},
	{"PROXY tcp4 1.2.3.4 1.2.3.4 1 2\r\n", 7, NULL},
	{"PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n", 8, NULL}, /* U of UNKNOWN */
	{"PROXY TCP4\r\n", 11, NULL},
	{"PROXY UNKNOWNX\r\n", 14, NULL},
};

START_TEST(test_v1_syntax)
{
	assert_refusals(bad_syntax, KS_ARRAY_SIZE(bad_syntax));
}
END_TEST

/* ---- v2 ---- */

/* A v2 header: the fixed part announcing `len` bytes, then `body`. */
static size_t
v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, size_t len, const void *body,
   size_t body_len)
{
	memcpy(out, sig, sizeof(sig));
	out[12] = ver_cmd;
	out[13] = fam;
	out[14] = (uint8_t)(len >> 8);
	out[15] = (uint8_t)len;
	if (body_len > 0)
		memcpy(out + 16, body, body_len);
	return 16 + body_len;
}

static const uint8_t ip4_block[12] = {
	192, 0, 2, 1, 198, 51, 100, 7, 0xdb, 0xc4, 0x01, 0xbb}; /* 56260, 443 */

START_TEST(test_v2_tcp4)
{
	uint8_t buf[256], body[64];
	struct ks_proxy_hdr h;
	size_t n;

	/* Application bytes (a TLS ClientHello) after the header. */
	n = v2(buf, 0x21, 0x11, 12, ip4_block, 12);
	memcpy(buf + n, "\x16\x03\x01", 3);
	assert_header(buf, n + 3, 28, &h);
	ck_assert_int_eq(h.version, 2);
	ck_assert(h.has_addr);
	ck_assert_int_eq(h.transport, SOCK_STREAM);
	assert_addr(&h.src, h.src_len, AF_INET, "192.0.2.1", 56260);
	assert_addr(&h.dst, h.dst_len, AF_INET, "198.51.100.7", 443);
	/* TLVs: ALPN "h2", an empty NOOP, a CRC32C that is not checked. */
	memcpy(body, ip4_block, 12);
	memcpy(body + 12,
	       "\x01\x00\x02h2"
	       "\x04\x00\x00"
	       "\x03\x00\x04\xde\xad\xbe\xef",
	       5 + 3 + 7);
	n = v2(buf, 0x21, 0x12, 27, body, 27);
	assert_header(buf, n, 43, &h);
	ck_assert_int_eq(h.transport, SOCK_DGRAM);
	assert_addr(&h.dst, h.dst_len, AF_INET, "198.51.100.7", 443);
}
END_TEST

START_TEST(test_v2_tcp6)
{
	uint8_t buf[256], body[64];
	struct ks_proxy_hdr h;
	size_t n;

	memset(body, 0, sizeof(body));
	inet_pton(AF_INET6, "2001:db8::1", body);
	inet_pton(AF_INET6, "fe80::2", body + 16);
	memcpy(body + 32, "\x00\x00\xff\xff", 4); /* ports 0, 65535 */
	n = v2(buf, 0x21, 0x21, 36, body, 36);
	assert_header(buf, n, 52, &h);
	ck_assert(h.has_addr);
	ck_assert_int_eq(h.transport, SOCK_STREAM);
	assert_addr(&h.src, h.src_len, AF_INET6, "2001:db8::1", 0);
	assert_addr(&h.dst, h.dst_len, AF_INET6, "fe80::2", 65535);
	/* A unique ID TLV of 128 bytes, then the application's bytes. */
	memset(buf, 0, sizeof(buf));
	n = v2(buf, 0x21, 0x22, 36 + 3 + 128, body, 36);
	memcpy(buf + n, "\x05\x00\x80", 3);
	memset(buf + n + 3, 'u', 128);
	memcpy(buf + n + 131, "GET", 3);
	assert_header(buf, n + 134, 16 + 36 + 131, &h);
	ck_assert_int_eq(h.transport, SOCK_DGRAM);
	assert_addr(&h.src, h.src_len, AF_INET6, "2001:db8::1", 0);
}
END_TEST

START_TEST(test_v2_no_addresses)
{
	uint8_t buf[512], body[300];
	struct ks_proxy_hdr h;
	size_t n;

	/* LOCAL: the whole block is skipped and the family ignored, even
	 * one PROXY would refuse. */
	memset(body, 0x42, sizeof(body));
	n = v2(buf, 0x20, 0x00, 0, NULL, 0);
	assert_header(buf, n, 16, &h);
	ck_assert_int_eq(h.version, 2);
	ck_assert(!h.has_addr);
	ck_assert_int_eq(h.transport, 0);
	n = v2(buf, 0x20, 0xff, 5, body, 5);
	assert_header(buf, n, 21, &h);
	ck_assert(!h.has_addr);
	/* PROXY with AF_UNSPEC: the addresses are ignored, the block too. */
	n = v2(buf, 0x21, 0x00, 7, body, 7);
	assert_header(buf, n, 23, &h);
	ck_assert(!h.has_addr);
	ck_assert_int_eq(h.transport, 0);
	/* AF_UNIX: 216 address bytes, then a TLV; no usable address. */
	n = v2(buf, 0x21, 0x31, 216 + 4, body, 216);
	memcpy(buf + n, "\x04\x00\x01\x00", 4);
	assert_header(buf, n + 4, 16 + 220, &h);
	ck_assert(!h.has_addr);
	ck_assert_int_eq(h.transport, SOCK_STREAM);
	n = v2(buf, 0x21, 0x32, 216, body, 216);
	assert_header(buf, n, 232, &h);
	ck_assert_int_eq(h.transport, SOCK_DGRAM);
}
END_TEST

START_TEST(test_v2_bad_fixed_part)
{
	uint8_t buf[64];
	const char *why;
	size_t n;

	/* Version, command, family, transport: refused at their byte. */
	n = v2(buf, 0x11, 0x11, 12, ip4_block, 12);
	ck_assert_uint_eq(refused_at(buf, n, &why), 13);
	ck_assert_str_eq(why, "v2: version is not 2");
	n = v2(buf, 0x31, 0x11, 12, ip4_block, 12);
	ck_assert_uint_eq(refused_at(buf, n, &why), 13);
	n = v2(buf, 0x23, 0x11, 12, ip4_block, 12);
	ck_assert_uint_eq(refused_at(buf, n, &why), 13);
	ck_assert_str_eq(why, "v2: unknown command 0x3");
	n = v2(buf, 0x2f, 0x11, 12, ip4_block, 12);
	ck_assert_uint_eq(refused_at(buf, n, &why), 13);
	ck_assert_str_eq(why, "v2: unknown command 0xf");
	n = v2(buf, 0x21, 0x41, 12, ip4_block, 12);
	ck_assert_uint_eq(refused_at(buf, n, &why), 14);
	ck_assert_str_eq(why, "v2: unknown address family");
	n = v2(buf, 0x21, 0x13, 12, ip4_block, 12);
	ck_assert_uint_eq(refused_at(buf, n, &why), 14);
	ck_assert_str_eq(why, "v2: unknown transport protocol");
	/* A length that does not cover the addresses: known at byte 16. */
	n = v2(buf, 0x21, 0x11, 11, ip4_block, 11);
	ck_assert_uint_eq(refused_at(buf, n, &why), 16);
	ck_assert_str_eq(why, "v2: length shorter than the address block");
	n = v2(buf, 0x21, 0x21, 35, ip4_block, 12);
	ck_assert_uint_eq(refused_at(buf, n, &why), 16);
	n = v2(buf, 0x21, 0x31, 0, NULL, 0);
	ck_assert_uint_eq(refused_at(buf, n, &why), 16);
}
END_TEST

START_TEST(test_v2_size_limit)
{
	static uint8_t buf[16 + 65535];
	struct ks_proxy_hdr h;
	const char *why;
	size_t max = KS_PROXY_V2_MAX - 16;

	/* Refused as soon as the fixed part announces too much. */
	memset(buf, 0, sizeof(buf));
	v2(buf, 0x21, 0x00, max + 1, NULL, 0);
	ck_assert_uint_eq(refused_at(buf, sizeof(buf), &why), 16);
	ck_assert_str_eq(why, "v2: header over the 4096-byte limit");
	v2(buf, 0x20, 0x00, 65535, NULL, 0);
	ck_assert_uint_eq(refused_at(buf, sizeof(buf), &why), 16);
	/* Exactly the limit is fine, one NOOP TLV filling it. */
	v2(buf, 0x21, 0x11, max, ip4_block, 12);
	buf[28] = 0x04;
	buf[29] = (uint8_t)((max - 15) >> 8);
	buf[30] = (uint8_t)(max - 15);
	ck_assert_int_eq(ks_proxy_parse(buf, KS_PROXY_V2_MAX - 1, &h, &why), 0);
	ck_assert_int_eq(ks_proxy_parse(buf, sizeof(buf), &h, &why),
			 KS_PROXY_V2_MAX);
}
END_TEST

START_TEST(test_v2_bad_tlvs)
{
	uint8_t buf[128], body[64];
	const char *why;
	size_t n;

	/* A TLV longer than what the header has left: refused once its
	 * length is in, before its value. */
	memcpy(body, ip4_block, 12);
	memcpy(body + 12, "\x02\x00\x05host", 7);
	n = v2(buf, 0x21, 0x11, 19, body, 19);
	ck_assert_uint_eq(refused_at(buf, n, &why), 31);
	ck_assert_str_eq(why, "v2: TLV overruns the header");
	/* The second TLV overruns. */
	memcpy(body + 12,
	       "\x04\x00\x00"
	       "\x01\x00\x09",
	       6);
	n = v2(buf, 0x21, 0x11, 20, body, 20);
	ck_assert_uint_eq(refused_at(buf, n, &why), 34);
	/* One or two bytes left after the addresses cannot be a TLV: known
	 * from the length field alone. */
	n = v2(buf, 0x21, 0x11, 14, body, 14);
	ck_assert_uint_eq(refused_at(buf, n, &why), 16);
	ck_assert_str_eq(why, "v2: TLV overruns the header");
	memcpy(body + 12, "\x04\x00\x00\x04", 4);
	n = v2(buf, 0x21, 0x11, 16, body, 16);
	ck_assert_uint_eq(refused_at(buf, n, &why), 31);
}
END_TEST

/* ---- neither ---- */

static const struct refusal junk[] = {
	{"GET / HTTP/1.1\r\n", 1, "not a PROXY header"},
	{"SSH-2.0-OpenSSH_9.2\r\n", 1, "not a PROXY header"},
	{"POST / HTTP/1.1\r\n", 2, "not a PROXY header"},
	{"PROXZ TCP4", 5, "not a PROXY header"},
	{"\r\n\r\nGET", 5, "not a PROXY header"},
};

START_TEST(test_junk)
{
	static const uint8_t tls[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01};
	static const uint8_t almost_sig[] = {0x0D, 0x0A, 0x0D, 0x0A,
					     0x00, 0x0D, 0x0A, 0x51,
					     0x55, 0x49, 0x54, 0x0D};
	struct ks_proxy_hdr h;
	const char *why = "unchanged";

	/* Nothing yet: read more. */
	ck_assert_int_eq(ks_proxy_parse(NULL, 0, &h, &why), 0);
	ck_assert_str_eq(why, "unchanged");
	/* No guessing: refused at the first byte that rules a header out. */
	assert_refusals(junk, KS_ARRAY_SIZE(junk));
	ck_assert_uint_eq(refused_at(tls, sizeof(tls), &why), 1);
	ck_assert_str_eq(why, "not a PROXY header");
	ck_assert_uint_eq(refused_at(almost_sig, sizeof(almost_sig), &why), 12);
	/* A 0 or -1 leaves *h alone. */
	memset(&h, 0x5a, sizeof(h));
	ck_assert_int_eq(ks_proxy_parse("PROXY TCP4 1", 12, &h, NULL), 0);
	ck_assert_int_eq(ks_proxy_parse("PROXY TCP4 x", 12, &h, NULL), -1);
	ck_assert_int_eq(h.version, 0x5a5a5a5a);
	ck_assert_int_eq(ks_proxy_parse("PROXY UNKNOWN\r\n", 15, &h, NULL), 15);
	ck_assert_int_eq(h.version, 1);
}
END_TEST

Suite *
ks_suite_proxy(void)
{
	Suite *s = suite_create("proxy");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_v1_tcp4);
	tcase_add_test(tc, test_v1_tcp6);
	tcase_add_test(tc, test_v1_unknown);
	tcase_add_test(tc, test_v1_too_long);
	tcase_add_test(tc, test_v1_bad_addresses);
	tcase_add_test(tc, test_v1_bad_ports);
	tcase_add_test(tc, test_v1_syntax);
	tcase_add_test(tc, test_v2_tcp4);
	tcase_add_test(tc, test_v2_tcp6);
	tcase_add_test(tc, test_v2_no_addresses);
	tcase_add_test(tc, test_v2_bad_fixed_part);
	tcase_add_test(tc, test_v2_size_limit);
	tcase_add_test(tc, test_v2_bad_tlvs);
	tcase_add_test(tc, test_junk);
	suite_add_tcase(s, tc);
	return s;
}
