/* libFuzzer target for CIDR parsing and access lists.  The input is lines:
 * each is parsed (a success must format and parse back to itself, with no
 * host bits), the successes make an access list with alternating
 * verdicts, and addresses taken from the input are checked against a
 * brute-force reading of the rule: the longest prefix containing the
 * address wins, deny on ties, and without a match deny if any allow rule
 * exists. */
#include "config.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RULES 64

static int
contains(const struct ks_cidr *c, int family, const unsigned char *a)
{
	unsigned i, p = c->prefix;

	if (c->family != family)
		return 0;
	for (i = 0; p > 0; i++) {
		unsigned bits = p < 8 ? p : 8;
		unsigned char m = (unsigned char)(0xff00 >> bits);

		if ((a[i] & m) != c->addr[i])
			return 0;
		p -= bits;
	}
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ks_cidr rules[MAX_RULES], c, back;
	enum ks_acl_verdict vs[MAX_RULES];
	char line[128], buf[KS_CIDR_STRLEN], err[160];
	size_t pos = 0, n, nrules = 0, nallow = 0, i, k;
	struct ks_acl *acl = ks_acl_new();

	if (acl == NULL)
		return 0;
	while (pos < size && nrules < MAX_RULES) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);

		n = nl ? (size_t)(nl - (data + pos)) : size - pos;
		if (n < sizeof(line)) {
			memcpy(line, data + pos, n);
			line[n] = '\0';
			if (strlen(line) == n &&
			    ks_cidr_parse(line, &c, err, sizeof(err)) == 0) {
				ks_cidr_format(&c, buf, sizeof(buf));
				if (ks_cidr_parse(buf, &back, err, sizeof(err)) != 0 ||
				    back.family != c.family ||
				    back.prefix != c.prefix ||
				    memcmp(back.addr, c.addr, 16) != 0)
					abort();
				if (c.prefix > (c.family == AF_INET ? 32u : 128u))
					abort();
				vs[nrules] = nrules % 2 ? KS_ACL_DENY : KS_ACL_ALLOW;
				nallow += vs[nrules] == KS_ACL_ALLOW;
				rules[nrules] = c;
				if (ks_acl_add(acl, &c, vs[nrules]) != 0)
					abort();
				nrules++;
			}
		}
		pos += n + 1;
	}
	/* addresses: each rule's network and neighbours, and the input */
	for (k = 0; k < nrules * 3 + 4; k++) {
		struct sockaddr_in in = {.sin_family = AF_INET};
		struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
		unsigned char a[16];
		int family, best = -1;
		enum ks_acl_verdict want, got;

		memset(a, 0, sizeof(a));
		if (k < nrules * 3) {
			memcpy(a, rules[k / 3].addr, 16);
			family = rules[k / 3].family;
			a[(family == AF_INET ? 3 : 15)] ^= (unsigned char)(k % 3);
			if (k % 3 == 2)
				a[0] ^= 0x80;
		} else {
			for (i = 0; i < 16 && i < size; i++)
				a[i] = data[(i + k) % size];
			family = k % 2 ? AF_INET : AF_INET6;
		}
		want = nallow > 0 ? KS_ACL_DENY : KS_ACL_ALLOW;
		for (i = 0; i < nrules; i++) {
			if (!contains(&rules[i], family, a))
				continue;
			if ((int)rules[i].prefix > best ||
			    ((int)rules[i].prefix == best && vs[i] == KS_ACL_DENY)) {
				best = (int)rules[i].prefix;
				want = vs[i];
			}
		}
		if (family == AF_INET) {
			memcpy(&in.sin_addr, a, 4);
			got = ks_acl_check(acl, (struct sockaddr *)&in, NULL);
		} else {
			memcpy(&in6.sin6_addr, a, 16);
			/* a mapped address is matched as IPv4: not modelled */
			if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr))
				continue;
			got = ks_acl_check(acl, (struct sockaddr *)&in6, NULL);
		}
		if (got != want)
			abort();
	}
	ks_acl_free(acl);
	return 0;
}
