/*
 * The multicast keys of a udp listener (multicast_groups and
 * multicast_interface; the rows are in conf_keys.c), which need more than
 * a type and a range: group addresses of the listener's family, an address
 * that can receive group traffic, an interface that exists.
 */
#include "config.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <ksockd/plugin.h>

#include "conf.h"
#include "conf_int.h"

static int
is_multicast(int family, const unsigned char *a)
{
	if (family == AF_INET)
		return (a[0] & 0xf0) == 0xe0; /* 224.0.0.0/4 */
	return a[0] == 0xff;                  /* ff00::/8 */
}

static int
is_wildcard(int family, const unsigned char *a)
{
	static const unsigned char zero[16];

	return memcmp(a, zero, family == AF_INET ? 4 : 16) == 0;
}

static void
parse_groups(struct ks_conf_parse *p, const config_setting_t *s,
	     const char *ctx, struct ks_lconf *lc, int family,
	     const unsigned char *ip)
{
	const config_setting_t *e;
	struct ks_mcast *m;
	int i, n, bound_group = 0;

	if (!config_setting_is_array(s) && !config_setting_is_list(s)) {
		ks_conf_err(p, s, "%s: multicast_groups must be a list of "
			    "addresses", ctx);
		return;
	}
	n = config_setting_length(s);
	if (n == 0)
		return;
	if ((lc->mcast = calloc((size_t)n, sizeof(*lc->mcast))) == NULL) {
		ks_conf_err(p, s, "%s: out of memory", ctx);
		return;
	}
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(s, (unsigned)i);
		m = &lc->mcast[lc->nmcast];
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			ks_conf_err(p, e, "%s: multicast_groups: entry #%d "
				    "must be a string", ctx, i + 1);
			continue;
		}
		m->text = config_setting_get_string(e);
		if (inet_pton(AF_INET, m->text, m->addr) == 1) {
			m->family = AF_INET;
		} else if (inet_pton(AF_INET6, m->text, m->addr) == 1) {
			m->family = AF_INET6;
		} else {
			ks_conf_err(p, e, "%s: multicast_groups: \"%s\" is not "
				    "an IPv4 or IPv6 address", ctx, m->text);
			continue;
		}
		if (!is_multicast(m->family, m->addr)) {
			ks_conf_err(p, e, "%s: multicast_groups: %s is not a "
				    "multicast address (224.0.0.0/4, "
				    "ff00::/8)", ctx, m->text);
			continue;
		}
		if (family != 0 && m->family != family) {
			ks_conf_err(p, e, "%s: multicast_groups: %s and address "
				    "%s are of different families", ctx,
				    m->text, lc->address);
			continue;
		}
		if (family != 0 &&
		    memcmp(m->addr, ip, family == AF_INET ? 4 : 16) == 0)
			bound_group = 1;
		lc->nmcast++;
	}
	/* The kernel hands group traffic only to sockets bound to the
	 * wildcard or to the group itself: a listener on 127.0.0.1 that
	 * joined 239.1.2.3 would never see a datagram of it. */
	if (family != 0 && lc->nmcast > 0 && !is_wildcard(family, ip) &&
	    !(bound_group && lc->nmcast == 1))
		ks_conf_err(p, s, "%s: with multicast_groups the address must "
			    "be %s or the one group itself (a socket bound to "
			    "%s never receives group traffic)", ctx,
			    family == AF_INET ? "0.0.0.0" : "::", lc->address);
}

void
ks_conf_key_mcast_if(struct ks_conf_parse *p, const config_setting_t *g,
		     const char *ctx, void *obj)
{
	struct ks_lconf *lc = obj;

	if (ks_conf_get_string(p, g, ctx, "multicast_interface",
			       &lc->mcast_if) > 0 &&
	    if_nametoindex(lc->mcast_if) == 0)
		ks_conf_err(p, config_setting_get_member(g, "multicast_interface"),
			    "%s: multicast_interface %s: no such network "
			    "interface", ctx, lc->mcast_if);
}

void
ks_conf_key_mcast_groups(struct ks_conf_parse *p, const config_setting_t *g,
			 const char *ctx, void *obj)
{
	const config_setting_t *s = config_setting_get_member(g, "multicast_groups");

	if (s != NULL)
		parse_groups(p, s, ctx, obj, p->ck->family, p->ck->ip);
}

void
ks_conf_udp_finish(struct ks_conf_parse *p, const config_setting_t *g,
		   const char *ctx, struct ks_lconf *lc)
{
	if (lc->mcast_if != NULL &&
	    config_setting_get_member(g, "multicast_groups") == NULL)
		ks_conf_err(p, config_setting_get_member(g, "multicast_interface"),
			    "%s: multicast_interface without multicast_groups",
			    ctx);
}
