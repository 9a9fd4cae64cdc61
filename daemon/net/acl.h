/*
 * Access lists: which peer addresses a listener accepts.
 *
 * A listener's `allow` and `deny` lists (and `proxy_protocol_from`, which
 * only allows) are CIDRs.  They are parsed with ks_cidr_parse and added to
 * a ks_acl when the configuration is loaded; from then on the list is
 * read-only, and ks_acl_check gives the verdict for every accepted
 * connection without allocating.  A ks_acl holds no pointers into
 * per-process state, so the workers forked after the load share it as is.
 *
 * The rule: the rule with the longest prefix that contains the address
 * decides; between rules of equal length (the same network allowed and
 * denied) deny wins.  When no rule contains the address, a list with any
 * allow rule denies it (the allow rules name the only peers wanted) and a
 * list of deny rules only allows it.
 */
#ifndef KS_ACL_H
#define KS_ACL_H

#include <stddef.h>

struct sockaddr;

/* Room for any ks_cidr_format result: "ffff:...:255.255.255.255/128". */
#define KS_CIDR_STRLEN (46 + 4)

struct ks_cidr {
	int family;             /* AF_INET or AF_INET6 */
	unsigned char addr[16]; /* network order; 4 bytes used for AF_INET,
				 * the rest zero */
	unsigned prefix;        /* 0..32 or 0..128 */
};

/* Parses "10.0.0.0/8", "192.0.2.7" (= /32), "2001:db8::/32" or "::1"
 * (= /128).  Returns 0 with *out set, or -1 with *out untouched and a
 * short reason in err (if errlen > 0), e.g. "prefix length 33 is over 32"
 * or "host bits set after /24: did you mean 10.1.2.0/24?".  Refused:
 * empty strings, whitespace anywhere, a missing address or prefix length,
 * a prefix length with a leading zero or anything but decimal digits,
 * host bits set, and any address inet_pton refuses (IPv4 must be a full
 * dotted quad without leading zeros; no IPv6 zone ids). */
int ks_cidr_parse(const char *s, struct ks_cidr *out, char *err, size_t errlen);

/* "10.0.0.0/8", "2001:db8::/32": the prefix length is always written, so
 * the logs never leave a host and a /32 to guess apart.  The result parses
 * back to *c.  len of KS_CIDR_STRLEN is always enough. */
void ks_cidr_format(const struct ks_cidr *c, char *buf, size_t len);

enum ks_acl_verdict {
	KS_ACL_DENY = 0,
	KS_ACL_ALLOW = 1,
};

struct ks_acl;

/* An empty list (which allows everything); NULL when out of memory. */
struct ks_acl *ks_acl_new(void);

/* Adds a rule.  c must be valid as ks_cidr_parse makes them (family,
 * prefix range, no host bits); it is copied.  A rule written in the
 * IPv4-mapped form ::ffff:a.b.c.d/n with n >= 96 is the IPv4 rule
 * a.b.c.d/(n - 96), since mapped peers are matched as IPv4 (it is still
 * reported as written).  Duplicates are kept and harmless.  Costs O(rules)
 * (the rules are kept sorted): meant for the configuration load.  Returns
 * 0, or -1 with errno ENOMEM, or EINVAL for an invalid c or v. */
int ks_acl_add(struct ks_acl *acl, const struct ks_cidr *c,
	       enum ks_acl_verdict v);

/* The verdict for the address in sa (AF_INET or AF_INET6; only the family
 * and address are read).  An IPv4-mapped IPv6 address, what a dual-stack
 * socket reports for an IPv4 peer, is matched as the IPv4 address.  Other
 * families (AF_UNIX) are allowed: the list does not apply to them.  A NULL
 * acl (none configured) allows everything.  If rule is not NULL, *rule is
 * the rule that decided, as it was added, or NULL when the default did;
 * it stays valid until the next ks_acl_add or ks_acl_free.  Never
 * allocates. */
enum ks_acl_verdict ks_acl_check(const struct ks_acl *acl,
				 const struct sockaddr *sa,
				 const struct ks_cidr **rule);

/* The number of rules added (0 for NULL). */
size_t ks_acl_count(const struct ks_acl *acl);

/* Frees the list (NULL is fine). */
void ks_acl_free(struct ks_acl *acl);

#endif
