/*
 * The PROXY protocol header parser (see proxy.h for the contract).
 *
 * Stateless: every call reads the header again from its first byte.  A
 * header is a few dozen bytes (at most KS_PROXY_V2_MAX), it usually comes
 * in one read, and the caller keeps nothing but its input buffer.
 *
 * Why -1 can come at the first wrong byte: every part of a header is
 * checked as it arrives against what a valid header may have there.  The
 * v2 fixed part says how long the header is, so a TLV that cannot fit is
 * known before its bytes are.  v1 fields go through small automata that
 * accept exactly the prefixes of valid fields and know the fewest bytes
 * that complete one, so a line that can no longer end in CRLF within
 * KS_PROXY_V1_MAX bytes is refused as soon as that is certain, which may
 * be a byte or two before the limit.  inet_pton stays the judge of a
 * whole address; the automata only tell early what it will refuse.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "proxy.h"
#include "util.h"

#define STR(x) #x
#define XSTR(x) STR(x)
/* The reasons that name a limit. */
#define V1_TOO_LONG \
	"v1: no CRLF within the first " XSTR(KS_PROXY_V1_MAX) " bytes"
#define V2_TOO_LONG "v2: header over the " XSTR(KS_PROXY_V2_MAX) "-byte limit"

static const uint8_t v2_sig[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
};

static int
fail(const char **why, const char *reason)
{
	if (why != NULL)
		*why = reason;
	return -1;
}

/* ---- v1 fields ---- */

/*
 * An address or port field, read one character at a time.  Addresses are
 * what inet_pton accepts: IPv4 as four decimal parts of 0-255 without
 * leading zeroes (the spec forbids them too); IPv6 as up to eight groups
 * of one to four hex digits, at most one "::" standing for at least one
 * group, and possibly a dotted quad in place of the last two groups (what
 * inet_ntop writes for a v4-mapped address).  The spec describes IPv6
 * groups as "sets of 4 hexadecimal digits", but senders write addresses
 * with inet_ntop, and HAProxy reads them with inet_pton.
 */
struct field {
	int family;   /* AF_INET, AF_INET6, or AF_UNSPEC for a port */
	int groups;   /* IPv6: groups a ':' ended */
	int colons;   /* IPv6: ':' read since the last digit: 0, 1 or 2 */
	bool dcolon;  /* IPv6: the "::" is behind */
	bool dotted;  /* in a dotted quad (always, for IPv4) */
	bool decimal; /* IPv6: the current group may be a dotted part */
	int part;     /* dotted quad: the current part, 1 to 4 */
	int digits;   /* in the current group, part or port */
	unsigned val; /* the current part's or the port's value */
};

static void
field_start(struct field *f, int family)
{
	memset(f, 0, sizeof(*f));
	f->family = family;
	f->dotted = family == AF_INET;
	f->decimal = true;
	f->part = 1;
}

/* One more decimal digit of a number in [0, max] written without leading
 * zeroes ("0" itself is fine); false when no such number starts so.  The
 * spec bans leading zeroes in addresses and ports alike, "to avoid any
 * possible confusion with octal numbers". */
static bool
number_digit(struct field *f, int c, unsigned max)
{
	if (c < '0' || c > '9' || (f->digits > 0 && f->val == 0))
		return false;
	f->val = f->val * 10 + (unsigned)(c - '0');
	return f->val <= max;
}

static bool
dotted_char(struct field *f, int c)
{
	if (c == '.') {
		if (f->digits == 0 || f->part == 4)
			return false;
		f->part++;
		f->digits = 0;
		f->val = 0;
		return true;
	}
	if (!number_digit(f, c, 255))
		return false;
	f->digits++;
	return true;
}

static bool
is_hex(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

/* The room rules keep every state completable: eight groups in all, or
 * fewer plus a "::" that stands for at least one. */
static bool
ip6_char(struct field *f, int c)
{
	if (f->dotted)
		return dotted_char(f, c);
	if (c == ':') {
		if (f->digits > 0) {
			/* A group ends: another one, or the "::", must fit. */
			f->groups++;
			f->colons = 1;
			f->digits = 0;
			f->val = 0;
			f->decimal = true;
			return f->groups <= (f->dcolon ? 6 : 7);
		}
		if (f->colons == 0) { /* the first character: "::" or nothing */
			f->colons = 1;
			return true;
		}
		if (f->colons == 2 || f->dcolon)
			return false; /* ":::" or a second "::" */
		f->dcolon = true;
		f->colons = 2;
		return true;
	}
	if (c == '.') {
		/* The group so far was the first part of a dotted quad, which
		 * takes the place of the last two groups. */
		if (f->digits == 0 || !f->decimal ||
		    (f->dcolon ? f->groups + 2 > 7 : f->groups + 2 != 8))
			return false;
		f->dotted = true;
		f->part = 2;
		f->digits = 0;
		f->val = 0;
		return true;
	}
	if (!is_hex(c))
		return false;
	if (f->digits == 0) {
		if (f->colons == 1 && f->groups == 0)
			return false; /* a lone ':' at the start */
		if (f->groups + 1 + (f->dcolon ? 1 : 0) > 8)
			return false; /* no room for a group */
	} else if (f->digits == 4) {
		return false;
	}
	if (f->decimal)
		f->decimal = number_digit(f, c, 255);
	f->digits++;
	f->colons = 0;
	return true;
}

static bool
field_char(struct field *f, int c)
{
	switch (f->family) {
	case AF_INET:
		return dotted_char(f, c);
	case AF_INET6:
		return ip6_char(f, c);
	}
	if (!number_digit(f, c, 65535))
		return false;
	f->digits++;
	return true;
}

/* The fewest characters that would make the field whole (0: it is). */
static size_t
field_need(const struct field *f)
{
	if (f->family == AF_UNSPEC)
		return f->digits == 0 ? 1 : 0;
	if (f->dotted)
		return (f->digits == 0 ? 1 : 0) + (size_t)(4 - f->part) * 2;
	if (f->digits > 0) /* whole, or one "::" away */
		return f->dcolon || f->groups + 1 == 8 ? 0 : 2;
	switch (f->colons) {
	case 2:
		return 0; /* "::" ends an address */
	case 1:
		return 1; /* a digit, or the ':' of a "::" */
	}
	return 2; /* nothing yet: "::" */
}

/* ---- v1 ---- */

/* The fields of a TCP4 or TCP6 line, in order; a space ends each but the
 * last, which CRLF ends. */
enum { SRC_ADDR, DST_ADDR, SRC_PORT, DST_PORT, NFIELDS };

static const char *const bad_field[NFIELDS] = {
	"v1: bad source address",
	"v1: bad destination address",
	"v1: bad source port",
	"v1: bad destination port",
};

/* v1 fits in KS_PROXY_V1_MAX bytes or not at all: a prefix needing `need`
 * more bytes is worth waiting for only if they fit. */
static int
v1_more(size_t n, size_t need, const char **why)
{
	if (n + need > KS_PROXY_V1_MAX)
		return fail(why, V1_TOO_LONG);
	return 0;
}

/* The fewest bytes after field i: the delimiters from its own on, the
 * shortest later fields ("0.0.0.0" or "::", "0"), the final LF. */
static size_t
v1_rest(int i, int family)
{
	size_t addr = family == AF_INET ? 7 : 2, rest = NFIELDS - i + 1;

	for (i++; i < NFIELDS; i++)
		rest += i <= DST_ADDR ? addr : 1;
	return rest;
}

/* Why character c cannot continue field i (start: c would be the field's
 * first character). */
static const char *
v1_bad_char(int i, int c, bool start)
{
	if (c == ' ' && start)
		return "v1: more than one space between fields";
	if (c == '\n')
		return "v1: LF without CR";
	return bad_field[i];
}

static void
v1_set_addr(struct sockaddr_storage *ss, socklen_t *len, int family,
	    const void *addr, unsigned port)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, addr, sizeof(sin->sin_addr));
		sin->sin_port = htons((uint16_t)port);
		*len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, addr, sizeof(sin6->sin6_addr));
		sin6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*sin6);
	}
}

/* The fields of "PROXY TCP4 " or "PROXY TCP6 " lines, from p[pos]. */
static int
v1_tcp(const uint8_t *p, size_t n, size_t pos, int family,
       struct ks_proxy_hdr *h, const char **why)
{
	unsigned char addr[2][sizeof(struct in6_addr)];
	unsigned port[2];
	struct field f;
	int i;

	for (i = 0; i < NFIELDS; i++) {
		int delim = i == DST_PORT ? '\r' : ' ';
		size_t start = pos;
		char text[INET6_ADDRSTRLEN];

		field_start(&f, i <= DST_ADDR ? family : AF_UNSPEC);
		for (; pos < n; pos++) {
			if (p[pos] == delim && field_need(&f) == 0)
				break;
			if (!field_char(&f, p[pos]))
				return fail(why, v1_bad_char(i, p[pos],
							     pos == start));
		}
		if (pos == n)
			return v1_more(n, field_need(&f) + v1_rest(i, family),
				       why);
		if (i >= SRC_PORT) {
			port[i - SRC_PORT] = f.val;
		} else {
			/* The automaton bounds a field to 45 characters. */
			if (pos - start >= sizeof(text))
				return fail(why, bad_field[i]);
			memcpy(text, p + start, pos - start);
			text[pos - start] = '\0';
			if (inet_pton(family, text, addr[i]) != 1)
				return fail(why, bad_field[i]);
		}
		pos++; /* the delimiter */
	}
	if (pos == n)
		return v1_more(n, 1, why);
	if (p[pos] != '\n')
		return fail(why, "v1: CR not followed by LF");
	pos++;
	memset(h, 0, sizeof(*h));
	h->version = 1;
	h->has_addr = true;
	h->transport = SOCK_STREAM;
	v1_set_addr(&h->src, &h->src_len, family, addr[0], port[0]);
	v1_set_addr(&h->dst, &h->dst_len, family, addr[1], port[1]);
	h->len = pos;
	return (int)pos;
}

/* "PROXY UNKNOWN" then CRLF, or a space and anything but CR or LF up to
 * the CRLF ("the receiver must ignore anything presented before the
 * CRLF"): no addresses. */
static int
v1_unknown(const uint8_t *p, size_t n, size_t pos, struct ks_proxy_hdr *h,
	   const char **why)
{
	if (pos < n && p[pos] != ' ' && p[pos] != '\r' && p[pos] != '\n')
		return fail(why, "v1: protocol is not TCP4, TCP6 or UNKNOWN");
	for (; pos < n && p[pos] != '\r'; pos++) {
		if (p[pos] == '\n')
			return fail(why, "v1: LF without CR");
	}
	if (pos == n)
		return v1_more(n, 2, why);
	if (++pos == n)
		return v1_more(n, 1, why);
	if (p[pos] != '\n')
		return fail(why, "v1: CR not followed by LF");
	pos++;
	memset(h, 0, sizeof(*h));
	h->version = 1;
	h->len = pos;
	return (int)pos;
}

static int
v1_parse(const uint8_t *p, size_t n, struct ks_proxy_hdr *h, const char **why)
{
	static const struct {
		const char *word; /* with the space after it, if one must be */
		int family;
	} protos[] = {
		{"TCP4 ", AF_INET},
		{"TCP6 ", AF_INET6},
		{"UNKNOWN", AF_UNSPEC},
	};
	size_t i, m;
	bool partial = false;

	/* Bytes past the limit cannot be part of a v1 header. */
	if (n > KS_PROXY_V1_MAX)
		n = KS_PROXY_V1_MAX;
	if (memcmp(p, "PROXY ", KS_MIN(n, 6)) != 0)
		return fail(why, n >= 6 && memcmp(p, "PROXY", 5) == 0
					 ? "v1: PROXY not followed by a space"
					 : "not a PROXY header");
	if (n <= 6)
		return 0;
	for (i = 0; i < KS_ARRAY_SIZE(protos); i++) {
		m = strlen(protos[i].word);
		if (memcmp(p + 6, protos[i].word, KS_MIN(n - 6, m)) != 0)
			continue;
		if (n - 6 < m) {
			partial = true; /* far from the length limit */
			continue;
		}
		if (protos[i].family == AF_UNSPEC)
			return v1_unknown(p, n, 6 + m, h, why);
		return v1_tcp(p, n, 6 + m, protos[i].family, h, why);
	}
	if (partial)
		return 0;
	return fail(why, "v1: protocol is not TCP4, TCP6 or UNKNOWN");
}

/* ---- v2 ---- */

enum { V2_LOCAL = 0x0, V2_PROXY = 0x1 };

static const char *const v2_bad_command[16] = {
	[0x2] = "v2: unknown command 0x2", [0x3] = "v2: unknown command 0x3",
	[0x4] = "v2: unknown command 0x4", [0x5] = "v2: unknown command 0x5",
	[0x6] = "v2: unknown command 0x6", [0x7] = "v2: unknown command 0x7",
	[0x8] = "v2: unknown command 0x8", [0x9] = "v2: unknown command 0x9",
	[0xa] = "v2: unknown command 0xa", [0xb] = "v2: unknown command 0xb",
	[0xc] = "v2: unknown command 0xc", [0xd] = "v2: unknown command 0xd",
	[0xe] = "v2: unknown command 0xe", [0xf] = "v2: unknown command 0xf",
};

/* The address block of a family nibble: AF_INET, AF_INET6, AF_UNIX. */
static const size_t v2_addr_len[4] = {0, 12, 36, 216};

static void
v2_set_addrs(const uint8_t *a, int family, struct ks_proxy_hdr *h)
{
	if (family == 1) {
		struct sockaddr_in *src = (struct sockaddr_in *)&h->src;
		struct sockaddr_in *dst = (struct sockaddr_in *)&h->dst;

		src->sin_family = dst->sin_family = AF_INET;
		memcpy(&src->sin_addr, a, 4);
		memcpy(&dst->sin_addr, a + 4, 4);
		memcpy(&src->sin_port, a + 8, 2);
		memcpy(&dst->sin_port, a + 10, 2);
		h->src_len = h->dst_len = sizeof(*src);
	} else {
		struct sockaddr_in6 *src = (struct sockaddr_in6 *)&h->src;
		struct sockaddr_in6 *dst = (struct sockaddr_in6 *)&h->dst;

		src->sin6_family = dst->sin6_family = AF_INET6;
		memcpy(&src->sin6_addr, a, 16);
		memcpy(&dst->sin6_addr, a + 16, 16);
		memcpy(&src->sin6_port, a + 32, 2);
		memcpy(&dst->sin6_port, a + 34, 2);
		h->src_len = h->dst_len = sizeof(*src);
	}
}

/*
 * Walks the TLVs in p[pos, total), as far as n bytes allow: -1 when one
 * cannot fit (this is known from the lengths alone, before its value
 * arrives), 0 when they all fit so far.  Even 1 or 2 bytes left over are
 * a TLV that overruns: every TLV has a 3-byte type and length.
 */
static int
v2_tlvs(const uint8_t *p, size_t n, size_t pos, size_t total, const char **why)
{
	size_t tlen;

	for (; pos < total; pos += 3 + tlen) {
		if (total - pos < 3)
			return fail(why, "v2: TLV overruns the header");
		if (n < pos + 3)
			return 0;
		tlen = (size_t)p[pos + 1] << 8 | p[pos + 2];
		if (tlen > total - pos - 3)
			return fail(why, "v2: TLV overruns the header");
	}
	return 0;
}

static int
v2_parse(const uint8_t *p, size_t n, struct ks_proxy_hdr *h, const char **why)
{
	int cmd, family = 0, transport = 0;
	size_t total;

	if (memcmp(p, v2_sig, KS_MIN(n, sizeof(v2_sig))) != 0)
		return fail(why, "not a PROXY header");
	if (n < 13)
		return 0;
	if (p[12] >> 4 != 2)
		return fail(why, "v2: version is not 2");
	cmd = p[12] & 0xf;
	if (cmd != V2_LOCAL && cmd != V2_PROXY)
		return fail(why, v2_bad_command[cmd]);
	if (n < 14)
		return 0;
	/* LOCAL: "discard the protocol block including the family which is
	 * ignored", so only PROXY looks at the family and transport. */
	if (cmd == V2_PROXY) {
		family = p[13] >> 4;
		transport = p[13] & 0xf;
		if (family > 3)
			return fail(why, "v2: unknown address family");
		if (transport > 2)
			return fail(why, "v2: unknown transport protocol");
	}
	if (n < KS_PROXY_V2_FIXED)
		return 0;
	total = KS_PROXY_V2_FIXED + ((size_t)p[14] << 8 | p[15]);
	if (total > KS_PROXY_V2_MAX)
		return fail(why, V2_TOO_LONG);
	/* With an UNSPEC family or transport the block's layout is unknown
	 * ("the receiver should ignore address information"): all of it is
	 * skipped, TLVs or not.  Otherwise the addresses must be there and
	 * TLVs fill the rest. */
	if (family != 0 && transport != 0) {
		size_t alen = v2_addr_len[family];

		if (total - KS_PROXY_V2_FIXED < alen)
			return fail(why, "v2: length shorter than the address "
					 "block");
		if (v2_tlvs(p, n, KS_PROXY_V2_FIXED + alen, total, why) < 0)
			return -1;
	}
	if (n < total)
		return 0;
	memset(h, 0, sizeof(*h));
	h->version = 2;
	h->transport = transport == 1   ? SOCK_STREAM
		       : transport == 2 ? SOCK_DGRAM
					: 0;
	if ((family == 1 || family == 2) && transport != 0) {
		h->has_addr = true;
		v2_set_addrs(p + KS_PROXY_V2_FIXED, family, h);
	}
	h->len = total;
	return (int)total;
}

int
ks_proxy_parse(const void *buf, size_t len, struct ks_proxy_hdr *h,
	       const char **why)
{
	const uint8_t *p = buf;

	if (len == 0)
		return 0;
	/* The first byte tells the versions apart: 'P' of "PROXY", CR of
	 * the v2 signature. */
	if (p[0] == 'P')
		return v1_parse(p, len, h, why);
	if (p[0] == v2_sig[0])
		return v2_parse(p, len, h, why);
	return fail(why, "not a PROXY header");
}
