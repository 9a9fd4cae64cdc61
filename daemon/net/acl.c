/*
 * Access lists: see acl.h for the rule and the contracts.
 *
 * The data structure.  Each family has one array of rules sorted by prefix
 * length (longest first), then by network, then by verdict (deny first),
 * and the list of the distinct prefix lengths it holds, longest first.  A
 * check masks the address to each of those lengths in turn and
 * binary-searches the array for that (length, network): the first hit is
 * the longest match, and the sort puts a deny before an allow of the same
 * network, which is the tie rule.  That is O(L log n) for L distinct
 * lengths (a handful in practice; at most 33 or 129), comparing small keys
 * in one contiguous array, with no allocation.
 *
 * Why not something else: a linear scan in priority order is the fastest
 * for three rules but poor for thousands; the sorted array costs about the
 * same for a few rules (one probe per distinct length) and stays cheap for
 * thousands.  A binary trie is O(prefix length) per check, but one node per
 * bit is up to 128 nodes for each IPv6 rule, and a path-compressed trie is
 * more code to get right than an access list deserves.  Keeping the array
 * sorted makes ks_acl_add an insertion, O(n), which only the configuration
 * load pays.
 *
 * The array is one heap block reached from the ks_acl: after a fork every
 * worker has its own copy-on-write view of it, and nothing in it points at
 * per-process state.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "acl.h"

/* The IPv4-mapped IPv6 prefix, ::ffff:0:0/96. */
#define MAPPED_PREFIX 96
static const unsigned char mapped[12] = {[10] = 0xff, [11] = 0xff};

struct acl_rule {
	unsigned prefix;             /* of net: the first sort key */
	unsigned char net[16];       /* the network as matched */
	enum ks_acl_verdict verdict; /* the last sort key: deny first */
	struct ks_cidr written;      /* what ks_acl_check reports */
};

struct acl_family {
	struct acl_rule *rules; /* sorted, see above */
	size_t n, cap;
	size_t alen; /* address bytes: 4 or 16 */
	unsigned nlens;
	unsigned char lens[129]; /* distinct prefix lengths, longest first */
};

struct ks_acl {
	struct acl_family v4, v6;
	size_t nallow; /* any allow rule makes the default deny */
};

/* ---- CIDRs ----------------------------------------------------------- */

static size_t
family_len(int family)
{
	if (family == AF_INET)
		return 4;
	if (family == AF_INET6)
		return 16;
	return 0;
}

/* dst = src with every bit after the first `prefix` cleared. */
static void
mask_to(unsigned char *dst, const unsigned char *src, size_t alen,
	unsigned prefix)
{
	size_t full = prefix / 8;

	memcpy(dst, src, full);
	if (full < alen) {
		/* prefix % 8 == 0 shifts the whole byte out: 0. */
		dst[full] =
			src[full] & (unsigned char)(0xff << (8 - prefix % 8));
		memset(dst + full + 1, 0, alen - full - 1);
	}
}

static int
has_host_bits(const unsigned char *addr, size_t alen, unsigned prefix)
{
	unsigned char net[16];

	mask_to(net, addr, alen, prefix);
	return memcmp(net, addr, alen) != 0;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

int
ks_cidr_parse(const char *s, struct ks_cidr *out, char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN], net[KS_CIDR_STRLEN];
	const char *slash, *digits;
	size_t hlen, ndigits, alen, i;
	struct ks_cidr c, m;
	unsigned max;

	if (s == NULL || *s == '\0')
		return fail(err, errlen, "empty address");
	/* inet_pton would refuse most of it too, but "10.0.0.0/8 " should
	 * not be reported as a bad prefix length. */
	if (strpbrk(s, " \t\n\v\f\r") != NULL)
		return fail(err, errlen, "whitespace in the address");
	slash = strchr(s, '/');
	hlen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (hlen == 0)
		return fail(err, errlen, "no address before the /");
	memset(&c, 0, sizeof(c));
	if (hlen >= sizeof(host))
		return fail(err, errlen, "not an IPv4 or IPv6 address");
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	c.family = memchr(host, ':', hlen) != NULL ? AF_INET6 : AF_INET;
	if (inet_pton(c.family, host, c.addr) != 1)
		return fail(err, errlen, "not an IPv4 or IPv6 address");
	alen = family_len(c.family);
	max = (unsigned)alen * 8;
	if (slash == NULL) {
		c.prefix = max;
		*out = c;
		return 0;
	}

	digits = slash + 1;
	ndigits = strspn(digits, "0123456789");
	if (*digits == '\0')
		return fail(err, errlen, "no prefix length after the /");
	if (ndigits == 0 || digits[ndigits] != '\0')
		return fail(err, errlen,
			    "the prefix length is not a decimal number");
	/* "/08" would be 8 to us and 8 or an error elsewhere: refuse it. */
	if (ndigits > 1 && digits[0] == '0')
		return fail(err, errlen,
			    "prefix length %.*s has a leading zero",
			    (int)(ndigits > 12 ? 12 : ndigits), digits);
	if (ndigits > 3)
		return fail(err, errlen, "prefix length %.12s%s is over %u",
			    digits, ndigits > 12 ? "..." : "", max);
	for (i = 0; i < ndigits; i++)
		c.prefix = c.prefix * 10 + (unsigned)(digits[i] - '0');
	if (c.prefix > max)
		return fail(err, errlen, "prefix length %u is over %u",
			    c.prefix, max);
	/* 10.1.2.3/24 is most likely a typo for either the host or the
	 * network: name the network, the user knows which was meant. */
	if (has_host_bits(c.addr, alen, c.prefix)) {
		m = c;
		mask_to(m.addr, c.addr, alen, c.prefix);
		ks_cidr_format(&m, net, sizeof(net));
		return fail(err, errlen,
			    "host bits set after /%u: did you mean %s?",
			    c.prefix, net);
	}
	*out = c;
	return 0;
}

void
ks_cidr_format(const struct ks_cidr *c, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (len == 0)
		return;
	if (family_len(c->family) == 0 ||
	    inet_ntop(c->family, c->addr, host, sizeof(host)) == NULL) {
		snprintf(buf, len, "(family %d)", c->family);
		return;
	}
	snprintf(buf, len, "%s/%u", host, c->prefix);
}

/* ---- the list -------------------------------------------------------- */

struct ks_acl *
ks_acl_new(void)
{
	struct ks_acl *acl = calloc(1, sizeof(*acl));

	if (acl == NULL)
		return NULL;
	acl->v4.alen = 4;
	acl->v6.alen = 16;
	return acl;
}

/* <0, 0, >0 as (prefix, net, v) sorts before, with or after r. */
static int
rule_cmp(const struct acl_family *f, unsigned prefix, const unsigned char *net,
	 enum ks_acl_verdict v, const struct acl_rule *r)
{
	int c;

	if (prefix != r->prefix)
		return prefix > r->prefix ? -1 : 1;
	if ((c = memcmp(net, r->net, f->alen)) != 0)
		return c;
	return (int)v - (int)r->verdict;
}

/* The index of the first rule not sorting before (prefix, net, v). */
static size_t
lower_bound(const struct acl_family *f, unsigned prefix,
	    const unsigned char *net, enum ks_acl_verdict v)
{
	size_t lo = 0, hi = f->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (rule_cmp(f, prefix, net, v, &f->rules[mid]) > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void
add_len(struct acl_family *f, unsigned prefix)
{
	unsigned i = 0;

	while (i < f->nlens && f->lens[i] > prefix)
		i++;
	if (i < f->nlens && f->lens[i] == prefix)
		return;
	memmove(f->lens + i + 1, f->lens + i, f->nlens - i);
	f->lens[i] = (unsigned char)prefix;
	f->nlens++;
}

int
ks_acl_add(struct ks_acl *acl, const struct ks_cidr *c, enum ks_acl_verdict v)
{
	struct acl_family *f;
	struct acl_rule r, *n;
	size_t alen = family_len(c->family), pos, cap;

	if (alen == 0 || c->prefix > alen * 8 ||
	    has_host_bits(c->addr, alen, c->prefix) ||
	    (v != KS_ACL_ALLOW && v != KS_ACL_DENY)) {
		errno = EINVAL;
		return -1;
	}
	memset(&r, 0, sizeof(r));
	r.written.family = c->family;
	memcpy(r.written.addr, c->addr, alen);
	r.written.prefix = c->prefix;
	r.verdict = v;
	if (c->family == AF_INET6 && c->prefix >= MAPPED_PREFIX &&
	    memcmp(c->addr, mapped, sizeof(mapped)) == 0) {
		/* Mapped peers are matched as IPv4, so must this rule be,
		 * or it could never match anything. */
		f = &acl->v4;
		memcpy(r.net, c->addr + 12, 4);
		r.prefix = c->prefix - MAPPED_PREFIX;
	} else {
		f = c->family == AF_INET ? &acl->v4 : &acl->v6;
		memcpy(r.net, c->addr, alen);
		r.prefix = c->prefix;
	}

	if (f->n == f->cap) {
		cap = f->cap ? f->cap * 2 : 8;
		if (cap > SIZE_MAX / sizeof(*n) ||
		    (n = realloc(f->rules, cap * sizeof(*n))) == NULL) {
			errno = ENOMEM;
			return -1;
		}
		f->rules = n;
		f->cap = cap;
	}
	pos = lower_bound(f, r.prefix, r.net, r.verdict);
	memmove(f->rules + pos + 1, f->rules + pos,
		(f->n - pos) * sizeof(*f->rules));
	f->rules[pos] = r;
	f->n++;
	add_len(f, r.prefix);
	if (v == KS_ACL_ALLOW)
		acl->nallow++;
	return 0;
}

enum ks_acl_verdict
ks_acl_check(const struct ks_acl *acl, const struct sockaddr *sa,
	     const struct ks_cidr **rule)
{
	const struct acl_family *f;
	const struct sockaddr_in *in;
	const struct sockaddr_in6 *in6;
	const unsigned char *addr;
	const struct acl_rule *r;
	unsigned char net[16];
	unsigned i;
	size_t k;

	if (rule != NULL)
		*rule = NULL;
	if (acl == NULL)
		return KS_ACL_ALLOW;
	switch (sa->sa_family) {
	case AF_INET:
		in = (const struct sockaddr_in *)(const void *)sa;
		f = &acl->v4;
		addr = (const unsigned char *)&in->sin_addr;
		break;
	case AF_INET6:
		in6 = (const struct sockaddr_in6 *)(const void *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			f = &acl->v4;
			addr = in6->sin6_addr.s6_addr + 12;
		} else {
			f = &acl->v6;
			addr = in6->sin6_addr.s6_addr;
		}
		break;
	default:
		return KS_ACL_ALLOW;
	}
	for (i = 0; i < f->nlens; i++) {
		mask_to(net, addr, f->alen, f->lens[i]);
		/* Deny sorts first: a hit is the deny if there is one. */
		k = lower_bound(f, f->lens[i], net, KS_ACL_DENY);
		if (k == f->n)
			continue;
		r = &f->rules[k];
		if (r->prefix == f->lens[i] &&
		    memcmp(r->net, net, f->alen) == 0) {
			if (rule != NULL)
				*rule = &r->written;
			return r->verdict;
		}
	}
	return acl->nallow > 0 ? KS_ACL_DENY : KS_ACL_ALLOW;
}

size_t
ks_acl_count(const struct ks_acl *acl)
{
	return acl != NULL ? acl->v4.n + acl->v6.n : 0;
}

void
ks_acl_free(struct ks_acl *acl)
{
	if (acl == NULL)
		return;
	free(acl->v4.rules);
	free(acl->v6.rules);
	free(acl);
}
